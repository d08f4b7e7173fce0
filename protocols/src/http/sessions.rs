//! Sessions: `/api/sessions*`, `/last-connection`, `/connected/health`. A user sees and ends
//! only their own sessions unless admin; ending them stops their tokens on every node.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::mesh::{Call, MeshError, Target};
use troupe_actors::sessions::{self, messages as sm, ops};

use super::auth::Caller;
use super::identity::client;
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// The JSON of a session.
pub fn session_json(s: &sm::SessionInfo, current: &str) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "created_at": s.created_at,
        "last_activity": s.last_activity,
        "expires_at": s.expires_at,
        "device": s.device,
        "ip": s.ip,
        "user_agent": s.user_agent,
        "metadata": serde_json::from_str::<Value>(&s.metadata).unwrap_or(Value::Null),
        "revoked": s.revoked,
        "current": s.id == current,
        "served_by": s.served_by,
    })
}

/// Body of `POST /api/sessions` and `PUT /api/sessions/:userId`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionBody {
    /// Device label.
    pub device: Option<String>,
    /// User agent (defaults to the request's).
    pub user_agent: Option<String>,
    /// Free-form metadata object.
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
    };
    ask(
        state,
        Call::new(sessions::NAME, ops::TOUCH)
            .request_id(rid)
            .payload(&t)
            .to(Target::Entity(caller.session_id.clone())),
    )
    .await
}

/// `POST /api/sessions`: record the caller's device, address and user agent on their current
/// session (created at login) and return it.
pub async fn start(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<SessionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (ip, ua) = client(addr, &headers);
    let s = touch(&state, rid, &caller, ip, ua, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(session_json(&s, &caller.session_id)),
    ))
}

/// `PUT /api/sessions/:userId`: touch the caller's current session (own user, or an admin
/// touching their own current session).
pub async fn update(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<SessionBody>,
) -> Result<Json<Value>, ApiError> {
    caller.may_act_for(&user_id)?;
    let (ip, ua) = client(addr, &headers);
    let s = touch(&state, rid, &caller, ip, ua, b).await?;
    Ok(Json(session_json(&s, &caller.session_id)))
}

async fn list_of(
    state: &AppState,
    rid: String,
    user_id: String,
) -> Result<sm::SessionList, ApiError> {
    ask(
        state,
        Call::new(sessions::NAME, ops::LIST)
            .request_id(rid)
            .payload(&sm::ByUser { user_id }),
    )
    .await
}

/// `GET /api/sessions/:userId`: that user's sessions (own user, or admin).
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.may_act_for(&user_id)?;
    let list = list_of(&state, rid, user_id).await?;
    let items: Vec<Value> = list
        .items
        .iter()
        .map(|s| session_json(s, &caller.session_id))
        .collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// `DELETE /api/sessions/:userId`: end every session of the user; their tokens stop
/// working on every node.
pub async fn end_all(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.may_act_for(&user_id)?;
    let ended: sm::SessionList = ask(
        &state,
        Call::new(sessions::NAME, ops::REVOKE_USER)
            .request_id(rid)
            .payload(&sm::ByUser { user_id }),
    )
    .await?;
    let ids: Vec<&str> = ended.items.iter().map(|s| s.id.as_str()).collect();
    Ok(Json(json!({ "ended": ids.len(), "session_ids": ids })))
}

/// `GET /api/sessions/verify`: the presented token's session, from its actor.
pub async fn verify(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let s: sm::SessionInfo = ask(
        &state,
        Call::new(sessions::NAME, ops::GET)
            .request_id(rid)
            .to(Target::Entity(caller.session_id.clone())),
    )
    .await?;
    Ok(Json(json!({
        "valid": !s.revoked,
        "session": session_json(&s, &caller.session_id),
    })))
}

/// Query of `/last-connection`.
#[derive(Debug, Default, Deserialize)]
pub struct LastQuery {
    /// Another user's (admins only).
    #[serde(rename = "userId")]
    pub user_id: Option<String>,
}

/// `GET /last-connection`: the caller's (or, for admins, `?userId=`'s) last activity.
pub async fn last_connection(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<LastQuery>,
) -> Result<Json<Value>, ApiError> {
    let user_id = q.user_id.unwrap_or_else(|| caller.user_id.clone());
    caller.may_act_for(&user_id)?;
    let list = list_of(&state, rid, user_id.clone()).await?;
    let last = list.items.iter().max_by_key(|s| s.last_activity_ms);
    Ok(Json(json!({
        "user_id": user_id,
        "last_connection": last.map(|s| s.last_activity.clone()),
        "session_id": last.map(|s| s.id.clone()),
        "device": last.map(|s| s.device.clone()),
        "ip": last.map(|s| s.ip.clone()),
    })))
}

/// `GET /connected/health`: the session tracker on this node.
pub async fn tracker_health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
        Json(json!({
            "status": status,
            "node": state.mesh.info().node,
            "workers_alive": alive,
            "revoked_sessions_known": state.revocations.len(),
        })),
    )
}
