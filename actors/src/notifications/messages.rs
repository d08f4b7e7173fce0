//! The `notifications` service's prost messages, written by hand.

/// One in-app notification of a user.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notification {
    /// Id (the id of the event that caused it).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The recipient.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// The event kind, e.g. `user.registered`.
    #[prost(string, tag = "3")]
    pub kind: String,
    /// Short title.
    #[prost(string, tag = "4")]
    pub title: String,
    /// Text body.
    #[prost(string, tag = "5")]
    pub body: String,
    /// The event payload, as JSON.
    #[prost(string, tag = "6")]
    pub data_json: String,
    /// Whether it was read.
    #[prost(bool, tag = "7")]
    pub read: bool,
    /// When it was read (RFC 3339), empty when unread.
    #[prost(string, tag = "8")]
    pub read_at: String,
    /// When it was created (RFC 3339).
    #[prost(string, tag = "9")]
    pub created_at: String,
}

/// Request of `list`: one page of a user's notifications, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRequest {
    /// The recipient.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// 1-based page (0 = 1).
    #[prost(uint32, tag = "2")]
    pub page: u32,
    /// Page size (0 = 20, at most 100).
    #[prost(uint32, tag = "3")]
    pub per_page: u32,
    /// Only unread ones.
    #[prost(bool, tag = "4")]
    pub unread_only: bool,
}

/// Reply of `list`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NotificationPage {
    /// The page.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Notification>,
    /// Matching notifications in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// Unread notifications of the user.
    #[prost(uint64, tag = "3")]
    pub unread: u64,
    /// The page.
    #[prost(uint32, tag = "4")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "5")]
    pub per_page: u32,
}

/// Request of `read`: mark one notification read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The owner (a notification of someone else is `not_found`).
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The notification.
    #[prost(string, tag = "2")]
    pub id: String,
}

/// A user's channel preferences. In-app notifications are always on.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Preferences {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Email when SMTP is configured.
    #[prost(bool, tag = "2")]
    pub email: bool,
    /// A line in the node's log.
    #[prost(bool, tag = "3")]
    pub log: bool,
    /// Last change (RFC 3339); empty when never set.
    #[prost(string, tag = "4")]
    pub updated_at: String,
}

/// Request of `prefs_get`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PrefsRequest {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// Request of `prefs_put`: the channels to change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PrefsUpdate {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// New email setting.
    #[prost(bool, optional, tag = "2")]
    pub email: Option<bool>,
    /// New log setting.
    #[prost(bool, optional, tag = "3")]
    pub log: Option<bool>,
}

/// One row of the notification log: one consumed event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRow {
    /// The event id.
    #[prost(string, tag = "1")]
    pub event_id: String,
    /// The event kind.
    #[prost(string, tag = "2")]
    pub kind: String,
    /// The user it is about; empty when none.
    #[prost(string, tag = "3")]
    pub user_id: String,
    /// The node that published it.
    #[prost(string, tag = "4")]
    pub source: String,
    /// When it was published (RFC 3339).
    #[prost(string, tag = "5")]
    pub event_time: String,
    /// The payload without secrets, as JSON.
    #[prost(string, tag = "6")]
    pub payload_json: String,
    /// Channels it went to, e.g. `["in_app", "log"]`.
    #[prost(string, repeated, tag = "7")]
    pub channels: Vec<String>,
    /// When it was consumed (RFC 3339).
    #[prost(string, tag = "8")]
    pub created_at: String,
}

/// Request of `logs`: filters and a page, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogsRequest {
    /// Only this kind (exact), or with a trailing `*` this prefix (`task.*`).
    #[prost(string, tag = "1")]
    pub kind: String,
    /// Only events about this user.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// Only rows consumed at or after this time (unix ms; 0 = no bound).
    #[prost(int64, tag = "3")]
    pub since_ms: i64,
    /// Only rows consumed before this time (unix ms; 0 = no bound).
    #[prost(int64, tag = "4")]
    pub until_ms: i64,
    /// Rows to skip.
    #[prost(uint32, tag = "5")]
    pub offset: u32,
    /// Rows to answer (0 = 20, at most 500).
    #[prost(uint32, tag = "6")]
    pub limit: u32,
}

/// Reply of `logs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogPage {
    /// The rows.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<LogRow>,
    /// Matching rows in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
}

/// Reply of `consume`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Consumed {
    /// False when the event had been consumed before (nothing changed).
    #[prost(bool, tag = "1")]
    pub fresh: bool,
}

/// Request of `bench_stats`: publish-to-log-row latency of a benchmark run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BenchStatsRequest {
    /// The run id the benchmark events carry.
    #[prost(string, tag = "1")]
    pub run: String,
}

/// Reply of `bench_stats`, in milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BenchStats {
    /// Rows of the run.
    #[prost(uint64, tag = "1")]
    pub count: u64,
    /// Median latency.
    #[prost(int64, tag = "2")]
    pub p50_ms: i64,
    /// 99th percentile.
    #[prost(int64, tag = "3")]
    pub p99_ms: i64,
    /// Maximum.
    #[prost(int64, tag = "4")]
    pub max_ms: i64,
}
