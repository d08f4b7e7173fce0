//! The `hub` service's prost messages, written by hand (no `.proto`, no build step).

/// One frame for one user's connections.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Delivery {
    /// The user whose connections get the frame.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The frame: UTF-8 JSON text (see [`super::frames`]).
    #[prost(bytes = "bytes", tag = "2")]
    pub frame: bytes::Bytes,
}

/// `deliver`: frames for users' connections on the receiving node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeliverRequest {
    /// The frames.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Delivery>,
}

/// Reply of `deliver`: per item, how many connections took the frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeliverReply {
    /// Connections reached, in the order of the request's items.
    #[prost(uint32, repeated, tag = "1")]
    pub delivered: Vec<u32>,
}

/// `broadcast`: one frame for every connection on the receiving node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastRequest {
    /// The frame: UTF-8 JSON text.
    #[prost(bytes = "bytes", tag = "1")]
    pub frame: bytes::Bytes,
}

/// Reply of `broadcast`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastReply {
    /// Connections that took the frame.
    #[prost(uint32, tag = "1")]
    pub delivered: u32,
}

/// `list`: the receiving node's open connections.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRequest {
    /// Only this user's connections; empty for all.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// One open connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionInfo {
    /// Connection id, unique on its node.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The connected user.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// The user's name.
    #[prost(string, tag = "3")]
    pub username: String,
    /// The node holding the connection.
    #[prost(string, tag = "4")]
    pub node: String,
    /// When it opened, unix milliseconds.
    #[prost(int64, tag = "5")]
    pub since_ms: i64,
}

/// Reply of `list`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionList {
    /// The connections.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<ConnectionInfo>,
    /// How many connections the node holds in all (also when `items` is filtered).
    #[prost(uint64, tag = "2")]
    pub total: u64,
}

/// `note`: a user's first connection opened on `node`, or their last one there closed.
/// Every hub keeps these notes so that, when `node` dies, a survivor can tell the user's
/// contacts they went offline.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PresenceNote {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Their name.
    #[prost(string, tag = "2")]
    pub username: String,
    /// The node the note is about.
    #[prost(string, tag = "3")]
    pub node: String,
    /// Connected (`true`) or no longer connected there.
    #[prost(bool, tag = "4")]
    pub online: bool,
}
