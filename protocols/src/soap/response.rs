//! Writing SOAP 1.1 response envelopes with xml-rs's writer, which escapes text; the shapes
//! are fixed, so they are written as a stream of events, not built as a DOM.

use std::borrow::Cow;

use troupe_actors::users::messages::User;
use xml::common::{is_xml10_char, XmlVersion};
use xml::writer::{EmitterConfig, EventWriter, XmlEvent};

use super::{ENV_NS, NS};

/// The content type of every SOAP 1.1 answer.
pub const CONTENT_TYPE_XML: &str = "text/xml; charset=utf-8";

/// An XML document being written into memory.
pub struct Xml(EventWriter<Vec<u8>>);

impl Xml {
    /// Writes one event. Writing to memory cannot fail, and the callers here always close
    /// what they open, so an error is a bug.
    fn write<'a>(&mut self, event: impl Into<XmlEvent<'a>>) {
        self.0
            .write(event)
            .expect("a balanced event stream written to memory");
    }

    /// Opens an element (`prefix:name`, with the namespace declarations `element` carries).
    pub fn start(&mut self, element: xml::writer::events::StartElementBuilder<'_>) {
        self.write(element);
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) {
        self.write(XmlEvent::end_element());
    }

    /// `<name>text</name>`. xml-rs escapes the text; characters XML 1.0 cannot carry at all
    /// (most C0 controls), which it would write as they are, are left out.
    pub fn text_element(&mut self, name: &str, text: &str) {
        self.start(XmlEvent::start_element(name));
        let text: Cow<'_, str> = if text.chars().all(is_xml10_char) {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(text.chars().filter(|&c| is_xml10_char(c)).collect())
        };
        if !text.is_empty() {
            self.write(XmlEvent::characters(&text));
        }
        self.end();
    }
}

/// A complete envelope (`soap:Envelope` and `soap:Body`, prefix `soap` for [`ENV_NS`])
/// around what `body` writes.
pub fn envelope(body: impl FnOnce(&mut Xml)) -> String {
    let writer = EmitterConfig::new()
        .perform_indent(false)
        .write_document_declaration(false)
        // `<a></a>` rather than `<a/>`: the shapes clients have always been sent.
        .normalize_empty_elements(false)
        .create_writer(Vec::new());
    let mut xml = Xml(writer);
    xml.write(XmlEvent::StartDocument {
        version: XmlVersion::Version10,
        encoding: Some("UTF-8"),
        standalone: None,
    });
    xml.start(XmlEvent::start_element("soap:Envelope").ns("soap", ENV_NS));
    xml.start(XmlEvent::start_element("soap:Body"));
    body(&mut xml);
    xml.end();
    xml.end();
    String::from_utf8(xml.0.into_inner()).expect("xml-rs writes UTF-8")
}

/// Whom a user reply is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The user themselves (the answer of their own registration): with their email.
    Owner,
    /// Anyone (an anonymous `LookupUser`): the public fields only, no email element.
    Public,
}

/// `<tns:{element}>` in [`NS`] with a user's fields: id, username, email (for the
/// [`Audience::Owner`] only) and created_at.
pub fn user(element: &str, u: &User, audience: Audience) -> String {
    envelope(|xml| {
        xml.start(XmlEvent::start_element(format!("tns:{element}").as_str()).ns("tns", NS));
        xml.text_element("tns:id", &u.id);
        xml.text_element("tns:username", &u.username);
        if audience == Audience::Owner {
            xml.text_element("tns:email", &u.email);
        }
        xml.text_element("tns:created_at", &u.created_at);
        xml.end();
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use xml::reader::{ParserConfig, XmlEvent as Read};

    use super::*;

    /// Every text-only element of `xml` in document order, as `({namespace}local, text)`,
    /// read back with xml-rs's reader (which fails on a malformed document).
    pub(crate) fn texts(xml: &str) -> Vec<(String, String)> {
        let reader = ParserConfig::new()
            .trim_whitespace(false)
            .coalesce_characters(true)
            .create_reader(xml.as_bytes());
        let mut open: Vec<(String, String)> = vec![];
        let mut out = vec![];
        for event in reader {
            match event.expect("well-formed xml") {
                Read::StartElement { name, .. } => {
                    let ns = name.namespace.unwrap_or_default();
                    open.push((format!("{{{ns}}}{}", name.local_name), String::new()));
                }
                Read::Characters(t) => open.last_mut().expect("inside an element").1 += &t,
                Read::EndElement { .. } => {
                    let (name, text) = open.pop().expect("balanced");
                    if !name.ends_with("}Envelope") && !name.ends_with("}Body") {
                        out.push((name, text));
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn user(name: &str) -> User {
        User {
            id: "u-1".into(),
            username: name.into(),
            email: "a&b@example.com".into(),
            created_at: "2024-01-01T00:00:00.000Z".into(),
            ..User::default()
        }
    }

    #[test]
    fn a_user_reply_keeps_its_shape() {
        assert_eq!(
            super::user("RegisterUserResponse", &user("ann"), Audience::Owner),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
             <tns:RegisterUserResponse xmlns:tns=\"urn:troupe:users:v1\"><tns:id>u-1</tns:id>\
             <tns:username>ann</tns:username><tns:email>a&amp;b@example.com</tns:email>\
             <tns:created_at>2024-01-01T00:00:00.000Z</tns:created_at>\
             </tns:RegisterUserResponse></soap:Body></soap:Envelope>"
        );
    }

    #[test]
    fn a_public_user_reply_has_no_email() {
        let xml = super::user("LookupUserResponse", &user("ann"), Audience::Public);
        assert!(
            !xml.contains("email") && !xml.contains("example.com"),
            "{xml}"
        );
        let tns = |f: &str| format!("{{{NS}}}{f}");
        assert_eq!(
            texts(&xml),
            [
                (tns("id"), "u-1".to_string()),
                (tns("username"), "ann".to_string()),
                (tns("created_at"), "2024-01-01T00:00:00.000Z".to_string()),
                (tns("LookupUserResponse"), String::new()),
            ]
        );
    }

    #[test]
    fn a_user_reply_round_trips_markup_quotes_and_non_ascii_text() {
        let name = "<b>\"Zoë\" & 'Ågot' ]]> 名前</b>";
        let xml = super::user("RegisterUserResponse", &user(name), Audience::Owner);
        let tns = |f: &str| format!("{{{NS}}}{f}");
        assert_eq!(
            texts(&xml),
            [
                (tns("id"), "u-1".to_string()),
                (tns("username"), name.to_string()),
                (tns("email"), "a&b@example.com".to_string()),
                (tns("created_at"), "2024-01-01T00:00:00.000Z".to_string()),
                (tns("RegisterUserResponse"), String::new()),
            ]
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_left_out() {
        let xml = super::user(
            "LookupUserResponse",
            &user("a\u{0}b\u{1b}c\u{FFFE}\td"),
            Audience::Public,
        );
        assert_eq!(texts(&xml)[1].1, "abc\td");
    }
}
