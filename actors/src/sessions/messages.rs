//! Requests and replies of the `sessions` service (prost-encoded in the mesh envelope).

/// Reply of `stats`: the session actors of one node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HostCounts {
    /// Session actors running now.
    #[prost(uint64, tag = "1")]
    pub active: u64,
}

/// One login session as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionInfo {
    /// Session id (the `sid` claim of its tokens).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Owner.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// RFC 3339.
    #[prost(string, tag = "3")]
    pub created_at: String,
    /// RFC 3339.
    #[prost(string, tag = "4")]
    pub last_activity: String,
    /// RFC 3339.
    #[prost(string, tag = "5")]
    pub expires_at: String,
    /// Device label given by the client.
    #[prost(string, tag = "6")]
    pub device: String,
    /// Client address seen by ingress.
    #[prost(string, tag = "7")]
    pub ip: String,
    /// User agent.
    #[prost(string, tag = "8")]
    pub user_agent: String,
    /// Client metadata, JSON text.
    #[prost(string, tag = "9")]
    pub metadata: String,
    /// Whether the session was ended.
    #[prost(bool, tag = "10")]
    pub revoked: bool,
    /// Node whose session actor answered.
    #[prost(string, tag = "11")]
    pub served_by: String,
    /// Optimistic-concurrency version of the stored row.
    #[prost(uint64, tag = "12")]
    pub version: u64,
    /// Unix ms of the last activity (for sorting without parsing).
    #[prost(int64, tag = "13")]
    pub last_activity_ms: i64,
    /// Unix ms when its tokens expire anyway.
    #[prost(int64, tag = "14")]
    pub expires_at_ms: i64,
}

/// `start`: create a session (sent by the auth service at login, to the session's home node).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Start {
    /// Owner.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Device label.
    #[prost(string, tag = "2")]
    pub device: String,
    /// Client address.
    #[prost(string, tag = "3")]
    pub ip: String,
    /// User agent.
    #[prost(string, tag = "4")]
    pub user_agent: String,
    /// Metadata, JSON text (`{}` when empty).
    #[prost(string, tag = "5")]
    pub metadata: String,
    /// Lifetime in seconds.
    #[prost(uint64, tag = "6")]
    pub ttl_s: u64,
}

/// `touch`: record activity, optionally updating device details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Touch {
    /// New device label, if any.
    #[prost(string, optional, tag = "1")]
    pub device: Option<String>,
    /// New user agent, if any.
    #[prost(string, optional, tag = "2")]
    pub user_agent: Option<String>,
    /// New metadata (JSON text), if any.
    #[prost(string, optional, tag = "3")]
    pub metadata: Option<String>,
    /// Client address of this activity, if known.
    #[prost(string, optional, tag = "4")]
    pub ip: Option<String>,
    /// Keep the session this long from now (a refresh), but never past its absolute end.
    #[prost(uint64, optional, tag = "5")]
    pub extend_ttl_s: Option<u64>,
    /// The absolute end: this long after the session started, however often it is
    /// extended.
    #[prost(uint64, optional, tag = "6")]
    pub max_lifetime_s: Option<u64>,
}

/// `list`, `revoke_user`, `last_connection`: by owner.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ByUser {
    /// Owner.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// `revoke_user` only: a session to leave open (the caller's own, after they changed
    /// their password); empty ends every session.
    #[prost(string, tag = "2")]
    pub keep: String,
}

/// Several sessions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionList {
    /// Newest activity first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<SessionInfo>,
}

/// `note_revoked`: broadcast to every node so ingress refuses these sessions' tokens.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Revoked {
    /// Session ids.
    #[prost(string, repeated, tag = "1")]
    pub ids: Vec<String>,
    /// Unix ms after which each id's tokens are expired anyway (same order as `ids`).
    #[prost(int64, repeated, tag = "2")]
    pub expires_at_ms: Vec<i64>,
}
