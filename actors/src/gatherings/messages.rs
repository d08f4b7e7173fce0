//! The `events` service's prost messages, written by hand (no `.proto`, no build step).

/// An event as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The user who created it; they (and admins) change it.
    #[prost(string, tag = "2")]
    pub organiser_id: String,
    /// Title.
    #[prost(string, tag = "3")]
    pub title: String,
    /// Description; may be empty.
    #[prost(string, tag = "4")]
    pub description: String,
    /// Location; may be empty.
    #[prost(string, tag = "5")]
    pub location: String,
    /// Start, RFC 3339 UTC.
    #[prost(string, tag = "6")]
    pub start: String,
    /// End, RFC 3339 UTC.
    #[prost(string, tag = "7")]
    pub end: String,
    /// IANA time zone the organiser gave (`UTC` by default).
    #[prost(string, tag = "8")]
    pub timezone: String,
    /// Seats.
    #[prost(uint64, tag = "9")]
    pub capacity: u64,
    /// Seats taken.
    #[prost(uint64, tag = "10")]
    pub registered: u64,
    /// Registrations waiting for a seat.
    #[prost(uint64, tag = "11")]
    pub waitlisted: u64,
    /// RFC 3339 UTC.
    #[prost(string, tag = "12")]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "13")]
    pub updated_at: String,
}

/// `create` (`id` empty) and `update` (`id` given: only the fields given change). Field
/// presence matters, so every field is optional on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventInput {
    /// The event to change (`update` only).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Required on create: 1 to 200 characters.
    #[prost(string, optional, tag = "2")]
    pub title: Option<String>,
    /// At most 4000 characters.
    #[prost(string, optional, tag = "3")]
    pub description: Option<String>,
    /// At most 200 characters.
    #[prost(string, optional, tag = "4")]
    pub location: Option<String>,
    /// Required on create: RFC 3339.
    #[prost(string, optional, tag = "5")]
    pub start: Option<String>,
    /// Required on create: RFC 3339, after `start`.
    #[prost(string, optional, tag = "6")]
    pub end: Option<String>,
    /// An IANA time zone name; default `UTC`.
    #[prost(string, optional, tag = "7")]
    pub timezone: Option<String>,
    /// Required on create: at least 1 (and, on update, not below the seats taken).
    #[prost(int64, optional, tag = "8")]
    pub capacity: Option<i64>,
}

/// `get`, `delete`, `register`, `cancel`, `registrations`: one event by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventRef {
    /// Event id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `list`: one page of events.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListEvents {
    /// 1-based page (0: 1).
    #[prost(uint32, tag = "1")]
    pub page: u32,
    /// Page size (0: 20; at most 100).
    #[prost(uint32, tag = "2")]
    pub per_page: u32,
}

/// One page of events.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventPage {
    /// The events, soonest first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Event>,
    /// Events in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// One user's registration for one event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Registration {
    /// Event id.
    #[prost(string, tag = "1")]
    pub event_id: String,
    /// The registered user.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// `registered`, `waitlisted` or (answering `cancel`) `cancelled`.
    #[prost(string, tag = "3")]
    pub status: String,
    /// Place on the waitlist, from 1 (0: not waitlisted).
    #[prost(uint64, tag = "4")]
    pub position: u64,
    /// When the registration was accepted, RFC 3339 UTC.
    #[prost(string, tag = "5")]
    pub created_at: String,
}

/// `registrations`: everyone registered, then the waitlist in order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Registrations {
    /// The registrations.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Registration>,
}

/// `calendar`: the caller's registered events as an RFC 5545 document.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Calendar {
    /// `text/calendar` content.
    #[prost(string, tag = "1")]
    pub ics: String,
}
