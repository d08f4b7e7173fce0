//! Notifications: the caller's notifications (`GET /notifications`,
//! `PUT /notifications/:id/read`), channel preferences (`GET|PUT
//! /notifications/preferences`), and the admin's notification log
//! (`GET /notifications/logs`).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use troupe_actors::mesh::MeshError;
use troupe_actors::notifications::{self as n, messages as nm, ops};
use utoipa::ToSchema;

use super::auth::{Admin, Caller};
use super::identity::{Page, Paging};
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// `(page, per_page)` of `?page=&per_page=` or `?limit=&offset=` (0 = default).
fn paging(
    page: Option<u32>,
    per_page: Option<u32>,
    limit: Option<u32>,
    offset: Option<u32>,
) -> (u32, u32) {
    Paging {
        page,
        per_page,
        limit,
        offset,
    }
    .resolve()
}

/// The JSON of a stored JSON text (an empty or broken one is `{}`).
fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| json!({}))
}

/// A notification as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Id (the id of the event that caused it).
    pub id: String,
    /// The recipient.
    pub user_id: String,
    /// The event kind, e.g. `user.registered`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Text body.
    pub body: String,
    /// The same as `body`.
    pub message: String,
    /// The event's payload, as JSON (`{}` when the stored one is empty or unreadable).
    pub data: Value,
    /// Whether it was read.
    pub read: bool,
    /// When it was read, RFC 3339 UTC; `null` while unread.
    #[schema(required = true)]
    pub read_at: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<nm::Notification> for NotificationView {
    fn from(x: nm::Notification) -> Self {
        Self {
            data: json_text(&x.data_json),
            read_at: (!x.read_at.is_empty()).then_some(x.read_at),
            id: x.id,
            user_id: x.user_id,
            kind: x.kind,
            title: x.title,
            message: x.body.clone(),
            body: x.body,
            read: x.read,
            created_at: x.created_at,
        }
    }
}

/// A page of notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// The notifications of this page, newest first.
    pub items: Vec<NotificationView>,
    /// Matching notifications in all pages.
    pub total: u64,
    /// Unread notifications of the user (whatever the filter).
    pub unread: u64,
    /// The same as `unread`.
    pub unread_count: u64,
    /// This page (1-based).
    pub page: u32,
    /// Notifications per page.
    pub per_page: u32,
}

/// A user's notification channels.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationChannels {
    /// In-app notifications: always `true`.
    pub in_app: bool,
    /// Email (sent only when the node has SMTP configured).
    pub email: bool,
    /// A line in the node's log.
    pub log: bool,
}

/// A user's notification preferences: the channels, flat and under `channels`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPreferences {
    /// In-app notifications: always `true`.
    pub in_app: bool,
    /// Email (sent only when the node has SMTP configured).
    pub email: bool,
    /// A line in the node's log.
    pub log: bool,
    /// The same three channels.
    pub channels: NotificationChannels,
    /// Last change, RFC 3339 UTC; `null` when never set.
    #[schema(required = true)]
    pub updated_at: Option<String>,
}

impl From<nm::Preferences> for NotificationPreferences {
    fn from(p: nm::Preferences) -> Self {
        Self {
            in_app: true,
            email: p.email,
            log: p.log,
            channels: NotificationChannels {
                in_app: true,
                email: p.email,
                log: p.log,
            },
            updated_at: (!p.updated_at.is_empty()).then_some(p.updated_at),
        }
    }
}

/// Query of `GET /notifications`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1-based page (default 1).
    pub page: Option<u32>,
    /// Items per page: 1 to 100 (default 20).
    pub per_page: Option<u32>,
    /// Alternative: items per page; when given (and not 0), `page` and `per_page` are
    /// ignored.
    pub limit: Option<u32>,
    /// Alternative: items to skip, with `limit` (rounded down to a multiple of it).
    pub offset: Option<u32>,
    /// Only unread ones (`?unread=true`).
    pub unread: Option<bool>,
}

/// `GET /notifications`: the caller's notifications, newest first, with the unread count.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's notifications, newest first", body = NotificationPage),
        (status = 400, description = "`per_page` (or `limit`) over 100, or `page` over 1000000", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let (page, per_page) = paging(q.page, q.per_page, q.limit, q.offset);
    let p: nm::NotificationPage = ask(
        &state,
        ops::LIST
            .call(nm::ListRequest {
                user_id: caller.user_id,
                page,
                per_page,
                unread_only: q.unread.unwrap_or(false),
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(NotificationPage {
        items: p.items.into_iter().map(NotificationView::from).collect(),
        total: p.total,
        unread: p.unread,
        unread_count: p.unread,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `PUT /notifications/:id/read`: marks one of the caller's notifications read.
#[utoipa::path(
    put,
    path = "/notifications/{id}/read",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The notification's id")),
    responses(
        (status = 200, description = "The notification, now read", body = NotificationView),
        (status = 404, description = "No such notification of the caller", body = ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotificationView>, ApiError> {
    let x: nm::Notification = ask(
        &state,
        ops::READ
            .call(nm::ReadRequest {
                user_id: caller.user_id,
                id,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(x.into()))
}

/// `GET /notifications/preferences`: the caller's channels.
#[utoipa::path(
    get,
    path = "/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's channels", body = NotificationPreferences))
)]
pub async fn preferences(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<NotificationPreferences>, ApiError> {
    let p: nm::Preferences = ask(
        &state,
        ops::PREFS_GET
            .call(nm::PrefsRequest {
                user_id: caller.user_id,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(p.into()))
}

/// Body of `PUT /notifications/preferences`: channels to change, flat or under
/// `channels`. At least one of `email`, `log` and `in_app` must be given (flat or nested);
/// the channels not given keep their setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PrefsBody {
    /// Email on or off (sent only when the node has SMTP configured).
    pub email: Option<bool>,
    /// A line in the node's log on or off.
    pub log: Option<bool>,
    /// In-app is always on: `true` changes nothing, `false` is refused (400).
    pub in_app: Option<bool>,
    /// The same fields, nested (`{"channels": {"email": true}}`); a flat field wins over
    /// its nested twin, and a `channels` inside `channels` is ignored.
    #[schema(no_recursion)]
    pub channels: Option<Box<PrefsBody>>,
}

/// `PUT /notifications/preferences`: changes the caller's channels.
#[utoipa::path(
    put,
    path = "/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = PrefsBody,
    responses(
        (status = 200, description = "The caller's channels, as changed", body = NotificationPreferences),
        (status = 400, description = "`in_app` is `false`, or no channel was given", body = ErrorBody),
    )
)]
pub async fn set_preferences(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<PrefsBody>,
) -> Result<Json<NotificationPreferences>, ApiError> {
    let nested = b.channels.as_deref();
    let email = b.email.or(nested.and_then(|c| c.email));
    let log = b.log.or(nested.and_then(|c| c.log));
    let in_app = b.in_app.or(nested.and_then(|c| c.in_app));
    if in_app == Some(false) {
        return Err(MeshError::invalid("in-app notifications cannot be turned off").into());
    }
    if email.is_none() && log.is_none() && in_app.is_none() {
        return Err(MeshError::invalid("nothing to change: give email, log or in_app").into());
    }
    let p: nm::Preferences = ask(
        &state,
        ops::PREFS_PUT
            .call(nm::PrefsUpdate {
                user_id: caller.user_id,
                email,
                log,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(p.into()))
}

/// Query of `GET /notifications/logs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// 1-based page (default 1).
    pub page: Option<u32>,
    /// Rows per page: 1 to 500 (default 20).
    pub per_page: Option<u32>,
    /// Alternative: rows per page; when given (and not 0), `page` and `per_page` are
    /// ignored.
    pub limit: Option<u32>,
    /// Alternative: rows to skip, with `limit` (rounded down to a multiple of it).
    pub offset: Option<u32>,
    /// Event kind, exact (`user.registered`) or a prefix with a trailing `*` (`task.*`);
    /// at most 65 bytes.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The same as `type` (used when `type` is absent).
    pub event_type: Option<String>,
    /// Only events about this user id (at most 64 bytes).
    pub user: Option<String>,
    /// The same as `user` (used when `user` is absent).
    pub user_id: Option<String>,
    /// Only rows consumed at or after this time: RFC 3339 UTC,
    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
    pub since: Option<String>,
    /// Only rows consumed before this time, in the same form as `since`.
    pub until: Option<String>,
}

fn time_param(name: &str, v: &Option<String>) -> Result<i64, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(s) => n::parse_time(s).filter(|ms| *ms > 0).ok_or_else(|| {
            MeshError::invalid(format!(
                "{name} must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z"
            ))
            .into()
        }),
    }
}

/// One row of the notification log: one consumed event.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationLogRow {
    /// The event's id.
    pub event_id: String,
    /// The event kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user the event is about; `null` when none.
    #[schema(required = true)]
    pub user_id: Option<String>,
    /// The node that published it.
    pub source: String,
    /// When it was published, RFC 3339 UTC.
    pub event_time: String,
    /// The event's payload without its secret fields, as JSON (`{}` when the stored one is
    /// empty or unreadable).
    pub payload: Value,
    /// Channels it went to: `in_app`, `email`, `log`; empty when the user got no
    /// notification.
    pub channels: Vec<String>,
    /// When it was consumed, RFC 3339 UTC.
    pub created_at: String,
}

impl From<nm::LogRow> for NotificationLogRow {
    fn from(r: nm::LogRow) -> Self {
        Self {
            payload: json_text(&r.payload_json),
            user_id: (!r.user_id.is_empty()).then_some(r.user_id),
            event_id: r.event_id,
            kind: r.kind,
            source: r.source,
            event_time: r.event_time,
            channels: r.channels,
            created_at: r.created_at,
        }
    }
}

/// `GET /notifications/logs` (admin): one row per consumed event, newest first,
/// filterable by `type`, `user` and `since`/`until`.
#[utoipa::path(
    get,
    path = "/notifications/logs",
    tag = "notifications",
    security(("admin" = [])),
    params(LogsQuery),
    responses(
        (status = 200, description = "A page of the log, newest first", body = Page<NotificationLogRow>),
        (status = 400, description = "`since` or `until` not an RFC 3339 UTC time, `per_page` (or `limit`) over 500, or a filter too long", body = ErrorBody),
    )
)]
pub async fn logs(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Page<NotificationLogRow>>, ApiError> {
    let since_ms = time_param("since", &q.since)?;
    let until_ms = time_param("until", &q.until)?;
    let (page, per_page) = paging(q.page, q.per_page, q.limit, q.offset);
    let (page, per_page) = (page.max(1), if per_page == 0 { 20 } else { per_page });
    if per_page > n::MAX_LOG_PAGE {
        return Err(MeshError::invalid(format!(
            "per_page must be between 1 and {}",
            n::MAX_LOG_PAGE
        ))
        .into());
    }
    let offset = (page - 1).saturating_mul(per_page);
    let p: nm::LogPage = ask(
        &state,
        ops::LOGS
            .call(nm::LogsRequest {
                kind: q.kind.or(q.event_type).unwrap_or_default(),
                user_id: q.user.or(q.user_id).unwrap_or_default(),
                since_ms,
                until_ms,
                offset,
                limit: per_page,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(NotificationLogRow::from).collect(),
        total: p.total,
        page,
        per_page,
    }))
}
