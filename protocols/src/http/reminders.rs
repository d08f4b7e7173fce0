//! Reminders (`/admin/reminders`, admin): the durable reminders and attendance timers the
//! store holds, with the node that fires each one now.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::reminders::{messages as rm, ops};
use utoipa::ToSchema;

use super::auth::Admin;
use super::identity::{Page, Paging};
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Filters of `GET /admin/reminders`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReminderFilter {
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only this subject's: `event:<id>` or `booking:<id>`.
    pub subject: Option<String>,
    /// `pending` or `done` (fired or expired); absent: both.
    pub state: Option<String>,
}

/// One reminder.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "5f1c1e9e-8d7e-4c1e-9a55-0c2b8f0e7a11", "subject": "event:0b6f3c1e-2f5d-4c1e-8a55-1c2b8f0e7a22",
    "user_id": "0d3f...", "kind": "reminder.due", "due_at": "2027-01-04T08:00:00.000Z",
    "expires_at": "2027-01-04T09:00:00.000Z", "shard": 17, "owner": "n2", "state": "pending"
}))]
pub struct ReminderView {
    /// Opaque id; also the id of the bus event it publishes.
    pub id: String,
    /// What it belongs to.
    pub subject: String,
    /// The user it is for.
    pub user_id: String,
    /// The event kind it publishes: `reminder.due` or `event.attended`.
    pub kind: String,
    /// When it is due, RFC 3339 UTC.
    pub due_at: String,
    /// After this it is recorded as expired instead of sent; absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Its shard, 0..63.
    pub shard: u32,
    /// The node that fires it (the home of its shard as the answering node sees it).
    pub owner: String,
    /// `pending`, `fired` or `expired`.
    pub state: String,
    /// When it was fired or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<String>,
    /// The node that fired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fired_by: Option<String>,
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<rm::Reminder> for ReminderView {
    fn from(r: rm::Reminder) -> Self {
        Self {
            id: r.id,
            subject: r.subject,
            user_id: r.user_id,
            kind: r.kind,
            due_at: r.due_at,
            expires_at: some(r.expires_at),
            shard: r.shard,
            owner: r.owner,
            state: r.state,
            fired_at: some(r.fired_at),
            fired_by: some(r.fired_by),
        }
    }
}

/// `GET /admin/reminders` (admin): reminders soonest due first, filterable by user,
/// subject and state.
#[utoipa::path(
    get,
    path = "/admin/reminders",
    tag = "admin",
    security(("admin" = [])),
    params(ReminderFilter, Paging),
    responses(
        (status = 200, description = "A page of reminders, soonest due first", body = Page<ReminderView>),
        (status = 400, description = "`state` not `pending` or `done`, or a page out of bounds", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    admin: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(filter): Query<ReminderFilter>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<ReminderView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let mut call = ops::LIST
        .call(rm::ListReminders {
            user_id: filter.user_id,
            subject: filter.subject,
            state: filter.state,
            page,
            per_page,
        })
        .request_id(rid);
    if let Some(caller) = admin.0 {
        call = call.caller(caller.to_proto());
    }
    let p = ask(&state, call).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(ReminderView::from).collect(),
        total: u64::try_from(p.total).unwrap_or(0),
        page: p.page,
        per_page: p.per_page,
    }))
}
