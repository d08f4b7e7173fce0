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
use super::identity::{check_paging, Page, Paging};
use super::json::Json as Body;
use super::openapi::{ErrorBody, Rule};
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// `(page, per_page)` of `?page=&per_page=` or `?limit=&offset=` (0 = default), in the
/// bounds of [`check_paging`] with pages of at most `per_page_max`.
fn paging(
    page: Option<u32>,
    per_page: Option<u32>,
    limit: Option<u32>,
    offset: Option<u32>,
    per_page_max: u32,
) -> Result<(u32, u32), ApiError> {
    check_paging(page, per_page, limit, offset, per_page_max).map_err(MeshError::invalid)?;
    Ok(Paging {
        page,
        per_page,
        limit,
        offset,
    }
    .resolve())
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
    /// 1-based page, at most 1000000; 0 or absent means 1.
    #[param(minimum = 0, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Items per page, at most 100; 0 or absent means 20.
    #[param(minimum = 0, maximum = 100)]
    pub per_page: Option<u32>,
    /// Alternative: items per page, at most 100; when given (and not 0), `page` and
    /// `per_page` are ignored.
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<u32>,
    /// Alternative: items to skip, with `limit`, at most 999999 (rounded down to a
    /// multiple of `limit`).
    #[param(minimum = 0, maximum = 999_999)]
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
    let (page, per_page) = paging(q.page, q.per_page, q.limit, q.offset, n::MAX_PAGE)?;
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
/// `channels`. At least one of `email`, `log` and `in_app` must be given (flat or nested;
/// the schema's `allOf` states it); the channels not given keep their setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PrefsBody {
    /// Email on or off (sent only when the node has SMTP configured).
    pub email: Option<bool>,
    /// A line in the node's log on or off.
    pub log: Option<bool>,
    /// In-app is always on: `true` changes nothing, `false` is refused (400).
    #[schema(schema_with = always_on)]
    pub in_app: Option<bool>,
    /// The same fields, nested (`{"channels": {"email": true}}`); a flat field wins over
    /// its nested twin.
    pub channels: Option<Channels>,
}

/// The channels of a [`PrefsBody`], nested under `channels`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Channels {
    /// Email on or off.
    pub email: Option<bool>,
    /// A line in the node's log on or off.
    pub log: Option<bool>,
    /// In-app is always on: `true` changes nothing, `false` is refused (400).
    #[schema(schema_with = always_on)]
    pub in_app: Option<bool>,
}

/// The schema of `in_app`: `true` or `null`.
fn always_on() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Boolean,
            Type::Null,
        ]))
        .enum_values(Some([json!(true), Value::Null]))
        .description(Some(
            "In-app is always on: `true` changes nothing, `false` is refused (400).",
        ))
        .build()
}

impl Rule for PrefsBody {
    fn rules() -> Vec<Value> {
        let given = |f: &str| json!({"required": [f], "properties": {f: {"type": "boolean"}}});
        let flat: Vec<Value> = ["email", "log", "in_app"].map(given).into();
        let mut any = flat.clone();
        any.push(json!({
            "required": ["channels"],
            "properties": {"channels": {"type": "object", "anyOf": flat}}
        }));
        vec![json!({ "anyOf": any })]
    }
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
    let nested = b.channels.as_ref();
    let email = b.email.or(nested.and_then(|c| c.email));
    let log = b.log.or(nested.and_then(|c| c.log));
    let in_app = b.in_app.or(nested.and_then(|c| c.in_app));
    // `false` is refused wherever it is, also nested under a flat `true`.
    if in_app == Some(false) || nested.and_then(|c| c.in_app) == Some(false) {
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
    /// 1-based page, at most 1000000; 0 or absent means 1.
    #[param(minimum = 0, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Rows per page, at most 500; 0 or absent means 20.
    #[param(minimum = 0, maximum = 500)]
    pub per_page: Option<u32>,
    /// Alternative: rows per page, at most 500; when given (and not 0), `page` and
    /// `per_page` are ignored.
    #[param(minimum = 0, maximum = 500)]
    pub limit: Option<u32>,
    /// Alternative: rows to skip, with `limit`, at most 999999 (rounded down to a
    /// multiple of `limit`).
    #[param(minimum = 0, maximum = 999_999)]
    pub offset: Option<u32>,
    /// Event kind, exact (`user.registered`) or a prefix with a trailing `*` (`task.*`);
    /// at most 65 characters.
    #[serde(rename = "type")]
    #[param(max_length = 65)]
    pub kind: Option<String>,
    /// The same as `type` (used when `type` is absent).
    #[param(max_length = 65)]
    pub event_type: Option<String>,
    /// Only events about this user id (at most 64 characters).
    #[param(max_length = 64)]
    pub user: Option<String>,
    /// The same as `user` (used when `user` is absent).
    #[param(max_length = 64)]
    pub user_id: Option<String>,
    /// Only rows consumed at or after this time: RFC 3339 UTC,
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, from 1971 on; empty: no bound.
    #[param(
        pattern = r"^((19[7-9][1-9]|19[89]0|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?Z)?$"
    )]
    pub since: Option<String>,
    /// Only rows consumed before this time, in the same form as `since`.
    #[param(
        pattern = r"^((19[7-9][1-9]|19[89]0|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?Z)?$"
    )]
    pub until: Option<String>,
}

/// 1971-01-01T00:00:00Z in unix milliseconds: the first time `since` and `until` take.
const FIRST_TIME_MS: i64 = 365 * 86_400_000;

fn time_param(name: &str, v: &Option<String>) -> Result<i64, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(s) => n::parse_time(s)
            .filter(|ms| *ms >= FIRST_TIME_MS)
            .ok_or_else(|| {
                MeshError::invalid(format!(
                    "{name} must be an RFC 3339 UTC time from 1971 on like 2026-01-31T12:00:00Z"
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
    // Each filter has its length, also the twin that its first name overrides.
    let long = |v: &Option<String>, max: usize| v.as_ref().is_some_and(|v| v.chars().count() > max);
    if long(&q.kind, 65) || long(&q.event_type, 65) || long(&q.user, 64) || long(&q.user_id, 64) {
        return Err(MeshError::invalid("filter too long").into());
    }
    let since_ms = time_param("since", &q.since)?;
    let until_ms = time_param("until", &q.until)?;
    let (page, per_page) = paging(q.page, q.per_page, q.limit, q.offset, n::MAX_LOG_PAGE)?;
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
