//! Notifications: the caller's notifications (`GET /notifications`,
//! `PUT /notifications/:id/read`), channel preferences (`GET|PUT
//! /notifications/preferences`), and the admin's notification log
//! (`GET /notifications/logs`).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::mesh::{Call, MeshError};
use troupe_actors::notifications::{self as n, messages as nm, ops};

use super::auth::{Admin, Caller};
use super::identity::Paging;
use super::json::Json as Body;
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

fn notification_json(x: &nm::Notification) -> Value {
    json!({
        "id": x.id,
        "user_id": x.user_id,
        "type": x.kind,
        "title": x.title,
        "body": x.body,
        "message": x.body,
        "data": json_text(&x.data_json),
        "read": x.read,
        "read_at": (!x.read_at.is_empty()).then_some(&x.read_at),
        "created_at": x.created_at,
    })
}

fn prefs_json(p: &nm::Preferences) -> Value {
    json!({
        "in_app": true,
        "email": p.email,
        "log": p.log,
        "channels": { "in_app": true, "email": p.email, "log": p.log },
        "updated_at": (!p.updated_at.is_empty()).then_some(&p.updated_at),
    })
}

/// Query of `GET /notifications`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// 1-based page.
    pub page: Option<u32>,
    /// Items per page.
    pub per_page: Option<u32>,
    /// Alternative: items per page.
    pub limit: Option<u32>,
    /// Alternative: items to skip.
    pub offset: Option<u32>,
    /// Only unread ones (`?unread=true`).
    pub unread: Option<bool>,
}

/// `GET /notifications`: the caller's notifications, newest first, with the unread count.
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging(q.page, q.per_page, q.limit, q.offset);
    let p: nm::NotificationPage = ask(
        &state,
        Call::new(n::NAME, ops::LIST)
            .request_id(rid)
            .payload(&nm::ListRequest {
                user_id: caller.user_id,
                page,
                per_page,
                unread_only: q.unread.unwrap_or(false),
            }),
    )
    .await?;
    Ok(Json(json!({
        "items": p.items.iter().map(notification_json).collect::<Vec<_>>(),
        "total": p.total,
        "unread": p.unread,
        "unread_count": p.unread,
        "page": p.page,
        "per_page": p.per_page,
    })))
}

/// `PUT /notifications/:id/read`: marks one of the caller's notifications read.
pub async fn read(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let x: nm::Notification = ask(
        &state,
        Call::new(n::NAME, ops::READ)
            .request_id(rid)
            .payload(&nm::ReadRequest {
                user_id: caller.user_id,
                id,
            }),
    )
    .await?;
    Ok(Json(notification_json(&x)))
}

/// `GET /notifications/preferences`: the caller's channels.
pub async fn preferences(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let p: nm::Preferences = ask(
        &state,
        Call::new(n::NAME, ops::PREFS_GET)
            .request_id(rid)
            .payload(&nm::PrefsRequest {
                user_id: caller.user_id,
            }),
    )
    .await?;
    Ok(Json(prefs_json(&p)))
}

/// Body of `PUT /notifications/preferences`: channels to change, flat or under
/// `channels`.
#[derive(Debug, Default, Deserialize)]
pub struct PrefsBody {
    /// Email on or off.
    pub email: Option<bool>,
    /// Log on or off.
    pub log: Option<bool>,
    /// In-app is always on: `false` is refused.
    pub in_app: Option<bool>,
    /// The same, nested.
    pub channels: Option<Box<PrefsBody>>,
}

/// `PUT /notifications/preferences`: changes the caller's channels.
pub async fn set_preferences(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<PrefsBody>,
) -> Result<Json<Value>, ApiError> {
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
        Call::new(n::NAME, ops::PREFS_PUT)
            .request_id(rid)
            .payload(&nm::PrefsUpdate {
                user_id: caller.user_id,
                email,
                log,
            }),
    )
    .await?;
    Ok(Json(prefs_json(&p)))
}

/// Query of `GET /notifications/logs`.
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    /// 1-based page.
    pub page: Option<u32>,
    /// Items per page.
    pub per_page: Option<u32>,
    /// Alternative: items per page.
    pub limit: Option<u32>,
    /// Alternative: items to skip.
    pub offset: Option<u32>,
    /// Event kind, exact or with a trailing `*`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The same.
    pub event_type: Option<String>,
    /// User id.
    pub user: Option<String>,
    /// The same.
    pub user_id: Option<String>,
    /// Consumed at or after (RFC 3339).
    pub since: Option<String>,
    /// Consumed before (RFC 3339).
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

/// `GET /notifications/logs` (admin): one row per consumed event, newest first,
/// filterable by `type`, `user` and `since`/`until`.
pub async fn logs(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
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
        Call::new(n::NAME, ops::LOGS)
            .request_id(rid)
            .payload(&nm::LogsRequest {
                kind: q.kind.or(q.event_type).unwrap_or_default(),
                user_id: q.user.or(q.user_id).unwrap_or_default(),
                since_ms,
                until_ms,
                offset,
                limit: per_page,
            }),
    )
    .await?;
    let items: Vec<Value> = p
        .items
        .iter()
        .map(|r| {
            json!({
                "event_id": r.event_id,
                "type": r.kind,
                "user_id": (!r.user_id.is_empty()).then_some(&r.user_id),
                "source": r.source,
                "event_time": r.event_time,
                "payload": json_text(&r.payload_json),
                "channels": r.channels,
                "created_at": r.created_at,
            })
        })
        .collect();
    Ok(Json(json!({
        "items": items,
        "total": p.total,
        "page": page,
        "per_page": per_page,
    })))
}
