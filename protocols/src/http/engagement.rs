//! Engagement (`/engagement/*`): activity tracking with points, badges at thresholds, a
//! leaderboard, feedback, and admin analytics. A user tracks and sees their own points
//! (admins anyone's, with `?user_id=`); the feedback list and analytics are admin-only.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::engagement::{messages as dm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{List, Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// The activity kinds users may track (the others are earned through other services'
/// events); `troupe_actors::engagement::KINDS` has their points.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub enum TrackedKind {
    /// 1 point.
    Login,
    /// 1 point.
    PageView,
    /// 2 points.
    ResourceView,
    /// 3 points.
    Comment,
    /// 5 points.
    Share,
    /// 10 points.
    ProfileCompleted,
}

/// Body of `POST /engagement/track`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct TrackBody {
    /// The activity kind (see `docs/engagement.md` for the points of each).
    kind: TrackedKind,
    /// What the activity was about (free text).
    #[serde(rename = "ref")]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    reference: Option<String>,
}

/// Reply of `POST /engagement/track`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedView {
    /// The activity kind.
    pub kind: String,
    /// Points awarded for this activity.
    pub awarded: i64,
    /// The caller's points after it.
    pub points: i64,
    /// Badges this activity earned.
    pub new_badges: Vec<String>,
}

/// Body of `POST /engagement/feedback`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct FeedbackBody {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    rating: i64,
    /// Free text (new lines and tabs allowed).
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    text: Option<String>,
    /// What the feedback is about.
    #[serde(rename = "ref")]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    reference: Option<String>,
}

/// A feedback as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    /// Opaque id.
    pub id: String,
    /// Who gave it.
    pub user_id: String,
    /// 1 to 5.
    pub rating: i64,
    /// Free text; may be empty.
    pub text: String,
    /// What it is about; may be empty.
    #[serde(rename = "ref")]
    pub reference: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<dm::Feedback> for FeedbackView {
    fn from(f: dm::Feedback) -> Self {
        Self {
            id: f.id,
            user_id: f.user_id,
            rating: f.rating,
            text: f.text,
            reference: f.reference,
            created_at: f.created_at,
        }
    }
}

/// Reply of `GET /engagement/points`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsView {
    /// The user.
    pub user_id: String,
    /// Points so far.
    pub points: i64,
    /// Names of the badges earned, lowest threshold first.
    pub badges: Vec<String>,
}

/// A badge and whether the user has it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BadgeView {
    /// Name.
    pub name: String,
    /// Points it takes.
    pub threshold: i64,
    /// Whether the user has it.
    pub earned: bool,
}

/// One leaderboard row.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandingView {
    /// The user.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// Their points.
    pub points: i64,
}

/// Active users on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayActiveView {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Distinct users with an activity that day.
    pub users: i64,
}

/// How often one activity kind occurred.
#[derive(Debug, Serialize, ToSchema)]
pub struct KindCountView {
    /// The activity kind.
    pub kind: String,
    /// Occurrences.
    pub count: i64,
    /// Points awarded for them.
    pub points: i64,
}

/// Reply of `GET /engagement/analytics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsView {
    /// Active users per day, newest first (days without activity left out).
    pub active_users: Vec<DayActiveView>,
    /// Activity kinds, most frequent first (at most 10).
    pub top_activities: Vec<KindCountView>,
    /// Feedback given.
    pub feedback_count: i64,
    /// Average feedback rating (0 without feedback).
    pub average_rating: f64,
}

/// Filter of `GET /engagement/points` and `GET /engagement/badges`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Another user's (admins only); empty: the caller's.
    #[param(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub user_id: Option<String>,
}

/// Query of `GET /engagement/leaderboard`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaderboardFilter {
    /// How many (top N), 1-100; absent or 0: 10.
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<u32>,
}

/// Query of `GET /engagement/analytics`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsFilter {
    /// Days back (today included) to count active users, 1-366; absent or 0: 30.
    #[param(minimum = 0, maximum = 366)]
    pub days: Option<u32>,
}

/// `POST /engagement/track`: `{"kind", "ref"?}`, awards the caller the kind's points.
#[utoipa::path(
    post,
    path = "/engagement/track",
    tag = "engagement",
    security(("bearer" = [])),
    request_body = TrackBody,
    responses(
        (status = 200, description = "The points awarded and the caller's total", body = TrackedView),
        (status = 400, description = "`kind` missing or not a trackable kind; `ref` too long", body = ErrorBody),
    )
)]
pub async fn track(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<Json<TrackedView>, ApiError> {
    let mut o = Object::new(&body)?;
    let kind = o.string("kind");
    let reference = o.string("ref");
    o.finish()?;
    let t = ask(
        &state,
        ops::TRACK
            .call(dm::Track { kind, reference })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(TrackedView {
        kind: t.kind,
        awarded: t.awarded,
        points: t.points,
        new_badges: t.new_badges,
    }))
}

/// `POST /engagement/feedback`: `{"rating": 1-5, "text"?, "ref"?}`.
#[utoipa::path(
    post,
    path = "/engagement/feedback",
    tag = "engagement",
    security(("bearer" = [])),
    request_body = FeedbackBody,
    responses(
        (status = 201, description = "The stored feedback", body = FeedbackView),
        (status = 400, description = "`rating` missing or not 1-5; `text` or `ref` too long", body = ErrorBody),
    )
)]
pub async fn give_feedback(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<FeedbackView>), ApiError> {
    let mut o = Object::new(&body)?;
    let rating = o.int("rating");
    let text = o.string("text");
    let reference = o.string("ref");
    o.finish()?;
    let f = ask(
        &state,
        ops::FEEDBACK
            .call(dm::NewFeedback {
                rating,
                text,
                reference,
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(f.into())))
}

/// `GET /engagement/feedback` (admin): every feedback, newest first, paged.
#[utoipa::path(
    get,
    path = "/engagement/feedback",
    tag = "engagement",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of feedback", body = Page<FeedbackView>),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_feedback(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<FeedbackView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p = ask(
        &state,
        ops::LIST_FEEDBACK
            .call(dm::ListFeedback { page, per_page })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(FeedbackView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `GET /engagement/points`: the caller's points and badges (an admin's: `user_id`'s).
#[utoipa::path(
    get,
    path = "/engagement/points",
    tag = "engagement",
    security(("bearer" = [])),
    params(UserFilter),
    responses(
        (status = 200, description = "Points and badge names", body = PointsView),
        (status = 403, description = "Another user's, and not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn points(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<UserFilter>,
) -> Result<Json<PointsView>, ApiError> {
    let p = ask(
        &state,
        ops::POINTS
            .call(dm::UserRef {
                user_id: filter.user_id.unwrap_or_default(),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(PointsView {
        user_id: p.user_id,
        points: p.points,
        badges: p.badges,
    }))
}

/// `GET /engagement/badges`: every badge and whether the caller (an admin: `user_id`) has it.
#[utoipa::path(
    get,
    path = "/engagement/badges",
    tag = "engagement",
    security(("bearer" = [])),
    params(UserFilter),
    responses(
        (status = 200, description = "Every badge, lowest threshold first", body = List<BadgeView>),
        (status = 403, description = "Another user's, and not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn badges(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<UserFilter>,
) -> Result<Json<List<BadgeView>>, ApiError> {
    let b = ask(
        &state,
        ops::BADGES
            .call(dm::UserRef {
                user_id: filter.user_id.unwrap_or_default(),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    let items: Vec<BadgeView> = b
        .items
        .into_iter()
        .map(|b| BadgeView {
            name: b.name,
            threshold: b.threshold,
            earned: b.earned,
        })
        .collect();
    Ok(Json(items.into()))
}

/// `GET /engagement/leaderboard`: the top users by points.
#[utoipa::path(
    get,
    path = "/engagement/leaderboard",
    tag = "engagement",
    security(("bearer" = [])),
    params(LeaderboardFilter),
    responses(
        (status = 200, description = "Most points first", body = List<StandingView>),
        (status = 400, description = "`limit` above 100", body = ErrorBody),
    )
)]
pub async fn leaderboard(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<LeaderboardFilter>,
) -> Result<Json<List<StandingView>>, ApiError> {
    let l = ask(
        &state,
        ops::LEADERBOARD
            .call(dm::LeaderboardQuery {
                limit: filter.limit.unwrap_or_default(),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    let items: Vec<StandingView> = l
        .items
        .into_iter()
        .map(|s| StandingView {
            user_id: s.user_id,
            username: s.username,
            points: s.points,
        })
        .collect();
    Ok(Json(items.into()))
}

/// `GET /engagement/analytics` (admin): active users per day and top activities.
#[utoipa::path(
    get,
    path = "/engagement/analytics",
    tag = "engagement",
    security(("bearer" = [])),
    params(AnalyticsFilter),
    responses(
        (status = 200, description = "Engagement analytics", body = AnalyticsView),
        (status = 400, description = "`days` above 366", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn analytics(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<AnalyticsFilter>,
) -> Result<Json<AnalyticsView>, ApiError> {
    let a = ask(
        &state,
        ops::ANALYTICS
            .call(dm::AnalyticsQuery {
                days: filter.days.unwrap_or_default(),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(AnalyticsView {
        active_users: a
            .active_users
            .into_iter()
            .map(|d| DayActiveView {
                day: d.day,
                users: d.users,
            })
            .collect(),
        top_activities: a
            .top_activities
            .into_iter()
            .map(|k| KindCountView {
                kind: k.kind,
                count: k.count,
                points: k.points,
            })
            .collect(),
        feedback_count: a.feedback_count,
        average_rating: a.average_rating,
    }))
}

#[cfg(test)]
mod tests {
    use troupe_actors::engagement::{Source, KINDS};

    use super::TrackedKind;

    /// The schema's kinds are exactly the service's trackable kinds.
    #[test]
    fn the_schema_lists_every_trackable_kind() {
        let tracked: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.source == Source::Tracked)
            .map(|k| k.name)
            .collect();
        for name in &tracked {
            let kind: Result<TrackedKind, _> = serde_json::from_value(serde_json::json!(name));
            assert!(kind.is_ok(), "{name} is missing from TrackedKind");
        }
        for k in KINDS.iter().filter(|k| k.source != Source::Tracked) {
            let kind: Result<TrackedKind, _> = serde_json::from_value(serde_json::json!(k.name));
            assert!(kind.is_err(), "{} is earned by events, not tracked", k.name);
        }
        assert_eq!(tracked.len(), 6, "TrackedKind has six variants");
    }
}
