//! Sessions: `/api/sessions*`, `/last-connection`, `/connected/health`. A user sees and ends
//! only their own sessions unless admin; ending them stops their tokens on every node.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use troupe_actors::mesh::{MeshError, Target};
use troupe_actors::sessions::{self, messages as sm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{client, List};
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A login session as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (the `sid` claim of its tokens).
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// Last recorded activity, RFC 3339 UTC.
    pub last_activity: String,
    /// When the session's tokens stop working anyway, RFC 3339 UTC.
    pub expires_at: String,
    /// Device label given by the client; may be empty.
    pub device: String,
    /// Client address last seen by a node; may be empty.
    pub ip: String,
    /// User agent; may be empty.
    pub user_agent: String,
    /// The client's metadata object; `null` when the stored text is not JSON.
    #[schema(value_type = Option<Object>, required = true)]
    pub metadata: Value,
    /// Whether the session was ended.
    pub revoked: bool,
    /// Whether this is the session of the token that made the request.
    pub current: bool,
    /// The node whose session actor answered.
    pub served_by: String,
}

impl SessionView {
    /// The view of `s`, `current` being the caller's session id.
    fn new(s: &sm::SessionInfo, current: &str) -> Self {
        Self {
            id: s.id.clone(),
            user_id: s.user_id.clone(),
            created_at: s.created_at.clone(),
            last_activity: s.last_activity.clone(),
            expires_at: s.expires_at.clone(),
            device: s.device.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            metadata: serde_json::from_str::<Value>(&s.metadata).unwrap_or(Value::Null),
            revoked: s.revoked,
            current: s.id == current,
            served_by: s.served_by.clone(),
        }
    }
}

/// The sessions `DELETE /api/sessions/:userId` ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndedSessions {
    /// How many sessions were ended (0 when none was open).
    pub ended: usize,
    /// Their ids.
    pub session_ids: Vec<String>,
}

/// The presented token's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCheck {
    /// Whether the session is still open (not ended).
    pub valid: bool,
    /// The session.
    pub session: SessionView,
}

/// A user's last connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastConnection {
    /// The user.
    pub user_id: String,
    /// Last activity of their most recently active session, RFC 3339 UTC; `null` when the
    /// user has no stored session.
    #[schema(required = true)]
    pub last_connection: Option<String>,
    /// That session's id; `null` when none.
    #[schema(required = true)]
    pub session_id: Option<String>,
    /// That session's device label (may be empty); `null` when none.
    #[schema(required = true)]
    pub device: Option<String>,
    /// That session's client address (may be empty); `null` when none.
    #[schema(required = true)]
    pub ip: Option<String>,
}

/// The session tracker on one node.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackerHealth {
    /// `ok` when at least one session worker is alive on this node, else `down`.
    pub status: &'static str,
    /// This node's name.
    pub node: String,
    /// Session workers alive on this node.
    pub workers_alive: usize,
    /// Ended sessions this node knows of (their tokens are refused).
    pub revoked_sessions_known: usize,
}

/// Body of `POST /api/sessions` and `PUT /api/sessions/:userId`; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SessionBody {
    /// New device label; cut to its first 128 characters.
    pub device: Option<String>,
    /// User agent; defaults to the request's `User-Agent`; cut to its first 512 characters.
    pub user_agent: Option<String>,
    /// Free-form metadata; must be a JSON object of at most 4096 bytes (as JSON text),
    /// which replaces the stored one.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

async fn touch(
    state: &AppState,
    rid: String,
    caller: &Caller,
    ip: String,
    ua: String,
    b: SessionBody,
) -> Result<sm::SessionInfo, ApiError> {
    let metadata = match b.metadata {
        None => None,
        Some(v @ Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > 4096 {
                return Err(
                    MeshError::invalid("metadata must be at most 4096 bytes of JSON")
                        .with_details(json!({"fields": {"metadata": "too large"}}))
                        .into(),
                );
            }
            Some(text)
        }
        Some(_) => {
            return Err(MeshError::invalid("metadata must be a JSON object")
                .with_details(json!({"fields": {"metadata": "must be an object"}}))
                .into())
        }
    };
    let device = b.device.map(|d| d.chars().take(128).collect());
    let t = sm::Touch {
        device,
        user_agent: Some(b.user_agent.unwrap_or(ua).chars().take(512).collect()),
        metadata,
        ip: Some(ip).filter(|i| !i.is_empty()),
        ..sm::Touch::default()
    };
    ask(
        state,
        ops::TOUCH
            .call(t)
            .request_id(rid)
            .to(Target::Entity(caller.session_id.clone())),
    )
    .await
}

/// `POST /api/sessions`: record the caller's device, address and user agent on their current
/// session (created at login) and return it.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = SessionBody,
    responses(
        (status = 201, description = "The caller's current session, as recorded", body = SessionView),
        (status = 400, description = "`metadata` is not a JSON object or is over 4096 bytes (`details.fields`)", body = ErrorBody),
        (status = 409, description = "The caller's session has ended", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<SessionBody>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let (ip, ua) = client(addr, &headers);
    let s = touch(&state, rid, &caller, ip, ua, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionView::new(&s, &caller.session_id)),
    ))
}

/// `PUT /api/sessions/:userId`: touch the caller's current session (own user, or an admin
/// touching their own current session).
#[utoipa::path(
    put,
    path = "/api/sessions/{user_id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The caller's user id (any user's for an admin)")),
    request_body = SessionBody,
    responses(
        (status = 200, description = "The caller's current session, as recorded", body = SessionView),
        (status = 400, description = "`metadata` is not a JSON object or is over 4096 bytes (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Another user's id, and the caller is not an admin", body = ErrorBody),
        (status = 409, description = "The caller's session has ended", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<SessionBody>,
) -> Result<Json<SessionView>, ApiError> {
    caller.may_act_for(&user_id)?;
    let (ip, ua) = client(addr, &headers);
    let s = touch(&state, rid, &caller, ip, ua, b).await?;
    Ok(Json(SessionView::new(&s, &caller.session_id)))
}

async fn list_of(
    state: &AppState,
    rid: String,
    user_id: String,
) -> Result<sm::SessionList, ApiError> {
    ask(
        state,
        ops::LIST
            .call(sm::ByUser {
                user_id,
                keep: String::new(),
            })
            .request_id(rid),
    )
    .await
}

/// `GET /api/sessions/:userId`: that user's sessions (own user, or admin).
#[utoipa::path(
    get,
    path = "/api/sessions/{user_id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user whose sessions to list")),
    responses(
        (status = 200, description = "Every stored session of the user (ended ones too), latest activity first", body = List<SessionView>),
        (status = 403, description = "Another user's id, and the caller is not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<List<SessionView>>, ApiError> {
    caller.may_act_for(&user_id)?;
    let list = list_of(&state, rid, user_id).await?;
    let items: Vec<SessionView> = list
        .items
        .iter()
        .map(|s| SessionView::new(s, &caller.session_id))
        .collect();
    Ok(Json(items.into()))
}

/// `DELETE /api/sessions/:userId`: end every session of the user; their tokens stop
/// working on every node.
#[utoipa::path(
    delete,
    path = "/api/sessions/{user_id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user whose sessions to end")),
    responses(
        (status = 200, description = "The sessions that were open and are now ended", body = EndedSessions),
        (status = 403, description = "Another user's id, and the caller is not an admin", body = ErrorBody),
    )
)]
pub async fn end_all(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<EndedSessions>, ApiError> {
    caller.may_act_for(&user_id)?;
    let ended: sm::SessionList = ask(
        &state,
        ops::REVOKE_USER
            .call(sm::ByUser {
                user_id,
                keep: String::new(),
            })
            .request_id(rid),
    )
    .await?;
    let ids: Vec<String> = ended.items.into_iter().map(|s| s.id).collect();
    Ok(Json(EndedSessions {
        ended: ids.len(),
        session_ids: ids,
    }))
}

/// `GET /api/sessions/verify`: the presented token's session, from its actor.
#[utoipa::path(
    get,
    path = "/api/sessions/verify",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's session and whether it is still open", body = SessionCheck),
        (status = 404, description = "The token's session is not stored", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<SessionCheck>, ApiError> {
    let s: sm::SessionInfo = ask(
        &state,
        ops::GET
            .call(())
            .request_id(rid)
            .to(Target::Entity(caller.session_id.clone())),
    )
    .await?;
    Ok(Json(SessionCheck {
        valid: !s.revoked,
        session: SessionView::new(&s, &caller.session_id),
    }))
}

/// Query of `/last-connection`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LastQuery {
    /// Another user's id (admins only); defaults to the caller.
    #[serde(rename = "userId")]
    pub user_id: Option<String>,
}

/// `GET /last-connection`: the caller's (or, for admins, `?userId=`'s) last activity.
#[utoipa::path(
    get,
    path = "/last-connection",
    tag = "sessions",
    security(("bearer" = [])),
    params(LastQuery),
    responses(
        (status = 200, description = "The user's last activity, from their most recently active session", body = LastConnection),
        (status = 403, description = "`userId` is another user, and the caller is not an admin", body = ErrorBody),
    )
)]
pub async fn last_connection(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<LastQuery>,
) -> Result<Json<LastConnection>, ApiError> {
    let user_id = q.user_id.unwrap_or_else(|| caller.user_id.clone());
    caller.may_act_for(&user_id)?;
    let list = list_of(&state, rid, user_id.clone()).await?;
    let last = list.items.iter().max_by_key(|s| s.last_activity_ms);
    Ok(Json(LastConnection {
        user_id,
        last_connection: last.map(|s| s.last_activity.clone()),
        session_id: last.map(|s| s.id.clone()),
        device: last.map(|s| s.device.clone()),
        ip: last.map(|s| s.ip.clone()),
    }))
}

/// `GET /connected/health`: the session tracker on this node.
#[utoipa::path(
    get,
    path = "/connected/health",
    tag = "sessions",
    responses(
        (status = 200, description = "Session workers are alive on this node (`status`: `ok`)", body = TrackerHealth),
        (status = 503, description = "No session worker is alive on this node (`status`: `down`)", body = TrackerHealth),
    )
)]
pub async fn tracker_health(State(state): State<AppState>) -> (StatusCode, Json<TrackerHealth>) {
    let pool = state.mesh.info().pool(sessions::NAME);
    let alive = pool.as_ref().map_or(0, |p| p.alive());
    let status = if alive > 0 { "ok" } else { "down" };
    let code = if alive > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(TrackerHealth {
            status,
            node: state.mesh.info().node.to_string(),
            workers_alive: alive,
            revoked_sessions_known: state.revocations.len(),
        }),
    )
}
