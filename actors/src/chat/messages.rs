//! The `chat` service's prost messages, written by hand (no `.proto`, no build step).
//!
//! The acting user always comes from the envelope's caller; a request names only the other
//! party.

/// `send_request`: ask another user to become a contact. Exactly one of `to_user_id` and
/// `username` is needed (`to_user_id` wins when both are given).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendRequest {
    /// The addressee's id.
    #[prost(string, tag = "1")]
    pub to_user_id: String,
    /// The addressee's username (any case).
    #[prost(string, tag = "2")]
    pub username: String,
}

/// One chat request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatRequest {
    /// Opaque id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Who asked.
    #[prost(string, tag = "2")]
    pub from_user_id: String,
    /// The asker's username.
    #[prost(string, tag = "3")]
    pub from_username: String,
    /// Who is asked.
    #[prost(string, tag = "4")]
    pub to_user_id: String,
    /// The addressee's username.
    #[prost(string, tag = "5")]
    pub to_username: String,
    /// `pending` or `accepted`.
    #[prost(string, tag = "6")]
    pub status: String,
    /// Creation time, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "7")]
    pub created_at: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "8")]
    pub updated_at: String,
}

/// Reply of `incoming`: the caller's pending requests, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatRequestList {
    /// The requests.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<ChatRequest>,
}

/// `accept`: accept a request addressed to the caller.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AcceptRequest {
    /// The request's id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `send_message`: store an (already encrypted) message to a contact, then deliver it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendMessage {
    /// The recipient (a contact of the caller).
    #[prost(string, tag = "1")]
    pub recipient_id: String,
    /// The opaque ciphertext (text, e.g. base64), at most the configured size.
    #[prost(string, tag = "2")]
    pub ciphertext: String,
    /// Optional opaque nonce.
    #[prost(string, tag = "3")]
    pub nonce: String,
}

/// One stored message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatMessage {
    /// Opaque id; ids sort by creation time within one node.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Sender.
    #[prost(string, tag = "2")]
    pub sender_id: String,
    /// Recipient.
    #[prost(string, tag = "3")]
    pub recipient_id: String,
    /// The opaque ciphertext.
    #[prost(string, tag = "4")]
    pub ciphertext: String,
    /// The opaque nonce (may be empty).
    #[prost(string, tag = "5")]
    pub nonce: String,
    /// When it was stored, RFC 3339 UTC with milliseconds.
    #[prost(string, tag = "6")]
    pub created_at: String,
}

/// `list_messages` (`with` empty: every message the caller sent or received, newest
/// first) and `conversation` (`with` set: the conversation with that user, oldest first).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListMessages {
    /// The other party of a conversation; empty for all of the caller's messages.
    #[prost(string, tag = "1")]
    pub with: String,
    /// 1-based page (0: the first).
    #[prost(uint32, tag = "2")]
    pub page: u32,
    /// Items per page (0: the default).
    #[prost(uint32, tag = "3")]
    pub per_page: u32,
}

/// A page of messages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessagePage {
    /// The messages.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<ChatMessage>,
    /// How many there are in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// This page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// Items per page.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}
