//! The `reminders` service's prost messages, written by hand (no `.proto`, no build step).

/// Request of `list` (admin): reminders filtered by user, subject and state, one page.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListReminders {
    /// Only this user's; absent: everyone's.
    #[prost(string, optional, tag = "1")]
    pub user_id: Option<String>,
    /// Only this subject's (`event:<id>`, `booking:<id>`); absent: every subject.
    #[prost(string, optional, tag = "2")]
    pub subject: Option<String>,
    /// `pending`, `done`, or absent for both.
    #[prost(string, optional, tag = "3")]
    pub state: Option<String>,
    /// 1-based page; 0 means 1.
    #[prost(uint32, tag = "4")]
    pub page: u32,
    /// Page size; 0 means the default.
    #[prost(uint32, tag = "5")]
    pub per_page: u32,
}

/// One reminder.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reminder {
    /// Opaque id (a UUID); also the id of the bus event it publishes.
    #[prost(string, tag = "1")]
    pub id: String,
    /// What it belongs to (`event:<id>`, `booking:<id>`).
    #[prost(string, tag = "2")]
    pub subject: String,
    /// The user it is for.
    #[prost(string, tag = "3")]
    pub user_id: String,
    /// The event kind it publishes (`reminder.due`, `event.attended`).
    #[prost(string, tag = "4")]
    pub kind: String,
    /// When it is due, RFC 3339 UTC.
    #[prost(string, tag = "5")]
    pub due_at: String,
    /// After this it is recorded as expired instead of published (RFC 3339); empty: never.
    #[prost(string, tag = "6")]
    pub expires_at: String,
    /// Its shard (0..63).
    #[prost(uint32, tag = "7")]
    pub shard: u32,
    /// The node that fires it now (the home of its shard, as the answering node sees it).
    #[prost(string, tag = "8")]
    pub owner: String,
    /// `pending`, `fired` or `expired`.
    #[prost(string, tag = "9")]
    pub state: String,
    /// When it was fired or expired (RFC 3339); empty while pending.
    #[prost(string, tag = "10")]
    pub fired_at: String,
    /// The node that fired it; empty while pending.
    #[prost(string, tag = "11")]
    pub fired_by: String,
}

/// Reply of `list`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReminderPage {
    /// This page, soonest due first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Reminder>,
    /// Matching reminders in all.
    #[prost(int64, tag = "2")]
    pub total: i64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}
