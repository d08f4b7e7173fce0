//! The JSON frames live connections receive, built once per event and shared by every
//! connection that gets it. Every frame is an object with a `type`: `message`, `receipt`,
//! `presence`, `broadcast`, `error`, `pong`.

use bytes::Bytes;
use serde_json::json;

use crate::chat::messages::ChatMessage;
use crate::mesh::MeshError;
use crate::store::time::{now_ms, rfc3339_millis};

fn frame(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

/// A chat message for its recipient.
pub fn message(m: &ChatMessage) -> Bytes {
    frame(json!({
        "type": "message",
        "id": m.id,
        "sender_id": m.sender_id,
        "recipient_id": m.recipient_id,
        "ciphertext": m.ciphertext,
        "nonce": m.nonce,
        "created_at": m.created_at,
    }))
}

/// A receipt for the sender: `status` is `stored` (answer to a WebSocket `send`) or
/// `delivered` (`delivered` = connections of the recipient that got it live; 0 means the
/// recipient reads it from history later).
pub fn receipt(m: &ChatMessage, status: &str, delivered: u32, reference: &str) -> Bytes {
    let mut v = json!({
        "type": "receipt",
        "message_id": m.id,
        "recipient_id": m.recipient_id,
        "status": status,
        "delivered": delivered,
        "created_at": m.created_at,
    });
    if !reference.is_empty() {
        v["ref"] = reference.into();
    }
    frame(v)
}

/// A contact came (`online`) or went (`offline`).
pub fn presence(user_id: &str, username: &str, online: bool, node: &str) -> Bytes {
    frame(json!({
        "type": "presence",
        "user_id": user_id,
        "username": username,
        "status": if online { "online" } else { "offline" },
        "node": node,
        "at": rfc3339_millis(now_ms()),
    }))
}

/// An admin broadcast.
pub fn broadcast(message: &str, id: &str) -> Bytes {
    frame(json!({
        "type": "broadcast",
        "id": id,
        "message": message,
        "sent_at": rfc3339_millis(now_ms()),
    }))
}

/// An error answering one client frame; the connection stays open.
pub fn error(e: &MeshError, reference: &str) -> Bytes {
    let mut v = json!({ "type": "error", "code": e.code.as_str(), "message": e.message });
    if !reference.is_empty() {
        v["ref"] = reference.into();
    }
    frame(v)
}

/// `frame` (a JSON object) with the `traceparent` of the trace that answered it as its
/// first member: the WebSocket form of the header HTTP replies carry.
pub fn traced(frame: &[u8], trace: &crate::mesh::trace::Trace) -> Bytes {
    let mut buf = [0u8; crate::mesh::trace::LEN];
    let traceparent = trace.encode_in(&mut buf);
    let rest = frame.strip_prefix(b"{").unwrap_or(frame);
    let mut out = Vec::with_capacity(frame.len() + traceparent.len() + 18);
    out.extend_from_slice(b"{\"traceparent\":\"");
    out.extend_from_slice(traceparent.as_bytes());
    out.push(b'"');
    if rest != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// The answer to a client's `{"type": "ping"}`.
pub fn pong(reference: &str) -> Bytes {
    let mut v = json!({ "type": "pong", "at": rfc3339_millis(now_ms()) });
    if !reference.is_empty() {
        v["ref"] = reference.into();
    }
    frame(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::trace::Trace;

    #[test]
    fn a_traced_frame_is_the_same_object_with_its_traceparent() {
        let t = Trace::fresh();
        let plain = pong("r1");
        let traced = traced(&plain, &t);
        let v: serde_json::Value = serde_json::from_slice(&traced).unwrap();
        let mut want: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        want["traceparent"] = t.encode().into();
        assert_eq!(v, want);
        let empty: serde_json::Value = serde_json::from_slice(&super::traced(b"{}", &t)).unwrap();
        assert_eq!(empty, json!({ "traceparent": t.encode() }));
    }
}
