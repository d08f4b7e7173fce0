//! The `engagement` service's prost messages, written by hand (no `.proto`, no build step).
//! Request fields that may be missing are optional on the wire, so "not given" is an error of
//! its own.

/// Request of `track`: one activity of the caller.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Track {
    /// The activity kind (see [`super::KINDS`]).
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    /// What the activity was about (free text, e.g. a page or an id); may be absent.
    #[prost(string, optional, tag = "2")]
    pub reference: Option<String>,
}

/// Reply of `track`: what was awarded and where the caller stands now.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tracked {
    /// The activity kind.
    #[prost(string, tag = "1")]
    pub kind: String,
    /// Points awarded for this activity.
    #[prost(int64, tag = "2")]
    pub awarded: i64,
    /// The caller's points after it.
    #[prost(int64, tag = "3")]
    pub points: i64,
    /// Badges earned by this activity (crossed thresholds).
    #[prost(string, repeated, tag = "4")]
    pub new_badges: Vec<String>,
}

/// Request of `feedback`: a rating with optional text.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NewFeedback {
    /// 1 to 5.
    #[prost(int64, optional, tag = "1")]
    pub rating: Option<i64>,
    /// Free text; may be absent.
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
    /// What the feedback is about; may be absent.
    #[prost(string, optional, tag = "3")]
    pub reference: Option<String>,
}

/// One stored feedback.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Feedback {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Who gave it.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// 1 to 5.
    #[prost(int64, tag = "3")]
    pub rating: i64,
    /// Free text; may be empty.
    #[prost(string, tag = "4")]
    pub text: String,
    /// What it is about; may be empty.
    #[prost(string, tag = "5")]
    pub reference: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "6")]
    pub created_at: String,
}

/// Request of `list_feedback` (admin): one page, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListFeedback {
    /// 1-based page; 0 means 1.
    #[prost(uint32, tag = "1")]
    pub page: u32,
    /// Page size; 0 means 20.
    #[prost(uint32, tag = "2")]
    pub per_page: u32,
}

/// Reply of `list_feedback`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeedbackPage {
    /// This page's feedback.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Feedback>,
    /// Feedback in all pages.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// This page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// Page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// Request of `points` and `badges`: whose (empty: the caller's; another user's: admins).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserRef {
    /// The user; empty means the caller.
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// Reply of `points`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Points {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Points so far.
    #[prost(int64, tag = "2")]
    pub points: i64,
    /// Names of the badges earned, lowest threshold first.
    #[prost(string, repeated, tag = "3")]
    pub badges: Vec<String>,
}

/// A badge and whether the user has it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Badge {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Points it takes.
    #[prost(int64, tag = "2")]
    pub threshold: i64,
    /// Whether the user has it.
    #[prost(bool, tag = "3")]
    pub earned: bool,
}

/// Reply of `badges`: every badge, lowest threshold first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Badges {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Every badge.
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<Badge>,
}

/// Request of `leaderboard`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaderboardQuery {
    /// How many (top N); 0 means 10, at most 100.
    #[prost(uint32, tag = "1")]
    pub limit: u32,
}

/// One leaderboard row.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Standing {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Their username (empty if the user is gone).
    #[prost(string, tag = "2")]
    pub username: String,
    /// Their points.
    #[prost(int64, tag = "3")]
    pub points: i64,
}

/// Reply of `leaderboard`: most points first (ties: the earlier to reach them first).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Leaderboard {
    /// The top users.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Standing>,
}

/// Request of `analytics` (admin).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnalyticsQuery {
    /// Days back from today (UTC) to count active users; 0 means 30, at most 366.
    #[prost(uint32, tag = "1")]
    pub days: u32,
}

/// Active users on one day.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DayActive {
    /// `YYYY-MM-DD` (UTC).
    #[prost(string, tag = "1")]
    pub day: String,
    /// Distinct users with an activity that day.
    #[prost(int64, tag = "2")]
    pub users: i64,
}

/// How often one activity kind occurred.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KindCount {
    /// The activity kind.
    #[prost(string, tag = "1")]
    pub kind: String,
    /// Occurrences.
    #[prost(int64, tag = "2")]
    pub count: i64,
    /// Points awarded for them.
    #[prost(int64, tag = "3")]
    pub points: i64,
}

/// Reply of `analytics`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Analytics {
    /// Active users per day, newest day first (days without activity left out).
    #[prost(message, repeated, tag = "1")]
    pub active_users: Vec<DayActive>,
    /// Activity kinds, most frequent first (at most 10).
    #[prost(message, repeated, tag = "2")]
    pub top_activities: Vec<KindCount>,
    /// Feedback given.
    #[prost(int64, tag = "3")]
    pub feedback_count: i64,
    /// Average feedback rating (0 without feedback).
    #[prost(double, tag = "4")]
    pub average_rating: f64,
}

/// Reply of `consume`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Consumed {
    /// Points awarded for the event (0 for a redelivery or a kind that earns nothing).
    #[prost(int64, tag = "1")]
    pub awarded: i64,
}
