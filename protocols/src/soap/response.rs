//! Rendering SOAP 1.1 response envelopes (text, not a DOM: the shapes are fixed).

use troupe_actors::users::messages::User;

use super::{ENV_NS, NS};

/// The content type of every SOAP 1.1 answer.
pub const CONTENT_TYPE_XML: &str = "text/xml; charset=utf-8";

/// Escapes text for element content and attribute values; drops characters XML 1.0 cannot
/// carry at all.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// A complete envelope around `body` (already XML).
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap:Envelope xmlns:soap=\"{ENV_NS}\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// `<{element}>` in [`NS`] with a user's public fields (id, username, email, created_at).
pub fn user(element: &str, u: &User) -> String {
    envelope(&format!(
        "<tns:{element} xmlns:tns=\"{NS}\"><tns:id>{}</tns:id><tns:username>{}</tns:username>\
         <tns:email>{}</tns:email><tns:created_at>{}</tns:created_at></tns:{element}>",
        escape(&u.id),
        escape(&u.username),
        escape(&u.email),
        escape(&u.created_at),
    ))
}
