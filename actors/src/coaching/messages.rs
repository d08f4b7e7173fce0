//! The `coaching` service's prost messages, written by hand (no `.proto`, no build step).

/// One weekly availability window.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Window {
    /// ISO weekday: 1 (Monday) to 7 (Sunday).
    #[prost(int64, tag = "1")]
    pub weekday: i64,
    /// Local start, `HH:MM`.
    #[prost(string, tag = "2")]
    pub start: String,
    /// Local end, `HH:MM` (or `24:00`).
    #[prost(string, tag = "3")]
    pub end: String,
}

/// A local date (or a window of it) when the coach is not available.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exception {
    /// Local date, `YYYY-MM-DD`.
    #[prost(string, tag = "1")]
    pub date: String,
    /// Local start, `HH:MM` (with `end`; neither: the whole day).
    #[prost(string, optional, tag = "2")]
    pub start: Option<String>,
    /// Local end, `HH:MM` (with `start`).
    #[prost(string, optional, tag = "3")]
    pub end: Option<String>,
}

/// The weekly windows, as one optional field of [`CoachInput`] (given or not).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Windows {
    /// The windows.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Window>,
}

/// The exceptions, as one optional field of [`CoachInput`] (given or not).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exceptions {
    /// The exceptions.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Exception>,
}

/// A coach as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Coach {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The user who is this coach (may edit it, sees its bookings); empty: none.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// Name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Biography; may be empty.
    #[prost(string, tag = "4")]
    pub bio: String,
    /// IANA time zone of the schedule.
    #[prost(string, tag = "5")]
    pub timezone: String,
    /// Slot length in minutes.
    #[prost(uint32, tag = "6")]
    pub slot_minutes: u32,
    /// Weekly windows, by weekday then start.
    #[prost(message, repeated, tag = "7")]
    pub availability: Vec<Window>,
    /// Exceptions, by date.
    #[prost(message, repeated, tag = "8")]
    pub exceptions: Vec<Exception>,
    /// RFC 3339 UTC.
    #[prost(string, tag = "9")]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "10")]
    pub updated_at: String,
}

/// `create_coach` (`id` empty) and `update_coach` (`id` given: only the fields given
/// change). Field presence matters, so every field is optional on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CoachInput {
    /// The coach to change (`update_coach` only).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Required on create: 1 to 200 characters.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// At most 4000 characters.
    #[prost(string, optional, tag = "3")]
    pub bio: Option<String>,
    /// A registered user's id; empty: no linked user.
    #[prost(string, optional, tag = "4")]
    pub user_id: Option<String>,
    /// Required on create: an IANA time zone name.
    #[prost(string, optional, tag = "5")]
    pub timezone: Option<String>,
    /// 15 to 480 (default 60).
    #[prost(int64, optional, tag = "6")]
    pub slot_minutes: Option<i64>,
    /// Required on create: the weekly windows.
    #[prost(message, optional, tag = "7")]
    pub availability: Option<Windows>,
    /// The exceptions (default none).
    #[prost(message, optional, tag = "8")]
    pub exceptions: Option<Exceptions>,
}

/// One coach (or booking) by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ref {
    /// Id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `list_coaches` and `list_bookings`: one page.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPage {
    /// 1-based page (0: 1).
    #[prost(uint32, tag = "1")]
    pub page: u32,
    /// Page size (0: 20; at most 100).
    #[prost(uint32, tag = "2")]
    pub per_page: u32,
}

/// One page of coaches.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CoachPage {
    /// The coaches, by name.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Coach>,
    /// Coaches in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// `availability`: a coach's open slots in a window of time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SlotQuery {
    /// Coach id.
    #[prost(string, tag = "1")]
    pub coach_id: String,
    /// RFC 3339; default now.
    #[prost(string, optional, tag = "2")]
    pub from: Option<String>,
    /// RFC 3339, after `from`, at most 62 days later; default 7 days after `from`.
    #[prost(string, optional, tag = "3")]
    pub to: Option<String>,
}

/// One slot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Slot {
    /// Start, RFC 3339 UTC.
    #[prost(string, tag = "1")]
    pub start: String,
    /// End, RFC 3339 UTC.
    #[prost(string, tag = "2")]
    pub end: String,
}

/// The open slots, soonest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Slots {
    /// The slots.
    #[prost(message, repeated, tag = "1")]
    pub slots: Vec<Slot>,
}

/// `book`: the caller books a coach's slot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BookInput {
    /// Coach id.
    #[prost(string, tag = "1")]
    pub coach_id: String,
    /// The slot's start, RFC 3339.
    #[prost(string, tag = "2")]
    pub start: String,
}

/// A booking as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Booking {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The coach.
    #[prost(string, tag = "2")]
    pub coach_id: String,
    /// The user who booked.
    #[prost(string, tag = "3")]
    pub client_id: String,
    /// Start, RFC 3339 UTC.
    #[prost(string, tag = "4")]
    pub start: String,
    /// End, RFC 3339 UTC.
    #[prost(string, tag = "5")]
    pub end: String,
    /// `booked` or `cancelled`.
    #[prost(string, tag = "6")]
    pub status: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "7")]
    pub created_at: String,
}

/// One page of bookings.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BookingPage {
    /// The bookings, soonest first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Booking>,
    /// Bookings in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// `add_note`: a note on a booking.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoteInput {
    /// Booking id.
    #[prost(string, tag = "1")]
    pub booking_id: String,
    /// 1 to 4000 characters.
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
}

/// A session note.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The booking.
    #[prost(string, tag = "2")]
    pub booking_id: String,
    /// Who wrote it (the client or the coach's user).
    #[prost(string, tag = "3")]
    pub author_id: String,
    /// The text.
    #[prost(string, tag = "4")]
    pub text: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "5")]
    pub created_at: String,
}

/// A booking's notes, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notes {
    /// The notes.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Note>,
}
