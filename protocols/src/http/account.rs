//! Registration, login, token rotation, logout and token checks, under every path the
//! landscapes use: `/auth/*`, `/api/auth/*`, `/login`, `/users/register`,
//! `/api/v1/airliner/*`, and the admin account operations `/auth/admin/*`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::{Call, Code, MeshError};
use troupe_actors::users::{self, messages as um};

use super::auth::{authenticate, Admin, Caller};
use super::identity::{client, user_json};
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Body of every register path.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterBody {
    /// Username.
    #[serde(default)]
    pub username: String,
    /// Email.
    #[serde(default)]
    pub email: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Optional display name.
    #[serde(default)]
    pub full_name: String,
}

/// `POST /auth/register`, `/api/auth/register`, `/users/register`,
/// `/api/v1/airliner/registerUser`: 201 with the new user.
pub async fn register(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<RegisterBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user: um::User = ask(
        &state,
        Call::new(users::NAME, users::REGISTER)
            .request_id(rid)
            .payload(&um::RegisterRequest {
                username: b.username,
                email: b.email,
                password: b.password,
                full_name: b.full_name,
            }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// Body of every login path: `username` or `email` (or `login`), and `password`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginBody {
    /// Username.
    pub username: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Either.
    pub login: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Device label.
    #[serde(default)]
    pub device: String,
}

fn pair_json(p: &am::TokenPair) -> Value {
    let user = p.user.as_ref();
    json!({
        "access_token": p.access_token,
        "refresh_token": p.refresh_token,
        "token_type": "Bearer",
        "expires_in": p.expires_in,
        "token": p.access_token,
        "session_id": p.session_id,
        "user": user.map(|u| json!({
            "id": u.id, "username": u.username, "email": u.email, "roles": u.roles,
        })),
    })
}

/// `POST /login`, `/auth/login`, `/api/auth/login`, `/api/v1/airliner/login`,
/// `/api/v1/airliner/generateToken`.
pub async fn login(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let (ip, user_agent) = client(addr, &headers);
    let login = b.login.or(b.username).or(b.email).unwrap_or_default();
    let pair: am::TokenPair = ask(
        &state,
        Call::new(auth::NAME, auth::ops::LOGIN)
            .request_id(rid)
            .payload(&am::LoginRequest {
                login,
                password: b.password,
                ip,
                user_agent,
                device: b.device,
            }),
    )
    .await?;
    Ok(Json(pair_json(&pair)))
}

/// Body of `POST /auth/refresh`.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    /// The refresh token.
    pub refresh_token: String,
}

/// `POST /auth/refresh`: a new pair; the presented refresh token is spent, and a reused one
/// ends its session.
pub async fn refresh(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    let pair: am::TokenPair = ask(
        &state,
        Call::new(auth::NAME, auth::ops::REFRESH)
            .request_id(rid)
            .payload(&am::RefreshRequest {
                refresh_token: b.refresh_token,
            }),
    )
    .await?;
    Ok(Json(pair_json(&pair)))
}

/// `POST /auth/logout`: ends the caller's session on every node.
pub async fn logout(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let _: troupe_actors::sessions::messages::SessionInfo = ask(
        &state,
        Call::new(auth::NAME, auth::ops::LOGOUT)
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(
        json!({ "logged_out": true, "session_id": caller.session_id }),
    ))
}

fn claims_json(c: &Caller) -> Value {
    json!({
        "valid": true,
        "user_id": c.user_id,
        "username": c.username,
        "roles": c.roles,
        "session_id": c.session_id,
    })
}

/// `GET /auth/verify-token`: the bearer token's claims, or 401.
pub async fn verify_token(caller: Caller) -> Json<Value> {
    Json(claims_json(&caller))
}

/// `GET /auth/verify/:token`: the same for a token given in the path.
pub async fn verify_path(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(claims_json(&authenticate(&state, &token)?)))
}

/// Body of `POST /auth/admin/create-user`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateBody {
    /// Username.
    #[serde(default)]
    pub username: String,
    /// Email.
    #[serde(default)]
    pub email: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Display name.
    #[serde(default)]
    pub full_name: String,
    /// Roles (default `user`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Mark the account confirmed (default true for admin-created users).
    pub confirmed: Option<bool>,
}

/// `POST /auth/admin/create-user` and `POST /users` (admin): 201 with the user.
pub async fn admin_create(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user: um::User = ask(
        &state,
        Call::new(users::NAME, users::CREATE)
            .request_id(rid)
            .payload(&um::CreateRequest {
                username: b.username,
                email: b.email,
                password: b.password,
                full_name: b.full_name,
                roles: b.roles,
                confirmed: b.confirmed.unwrap_or(true),
            }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// Body of `POST /auth/admin/set-password` and `/auth/admin/delete-user`: the user by id,
/// username or email.
#[derive(Debug, Default, Deserialize)]
pub struct TargetBody {
    /// User id.
    pub user_id: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// New password (set-password only).
    #[serde(default)]
    pub password: String,
}

async fn resolve(state: &AppState, rid: &str, b: &TargetBody) -> Result<String, ApiError> {
    if let Some(id) = b.user_id.as_ref().filter(|s| !s.is_empty()) {
        return Ok(id.clone());
    }
    let login = b
        .username
        .clone()
        .or_else(|| b.email.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MeshError::invalid("user_id, username or email is required"))?;
    let user: um::User = ask(
        state,
        Call::new(users::NAME, users::GET_BY_LOGIN)
            .request_id(rid.to_string())
            .payload(&um::GetByLoginRequest { login }),
    )
    .await?;
    Ok(user.id)
}

/// `POST /auth/admin/set-password`: a new password; the user's sessions end.
pub async fn admin_set_password(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<TargetBody>,
) -> Result<Json<Value>, ApiError> {
    let user_id = resolve(&state, &rid, &b).await?;
    let user: um::User = ask(
        &state,
        Call::new(auth::NAME, auth::ops::SET_PASSWORD)
            .request_id(rid)
            .payload(&am::SetPasswordRequest {
                user_id,
                password: b.password,
            }),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

/// `POST /auth/admin/delete-user`: deletes the user after ending their sessions.
pub async fn admin_delete(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<TargetBody>,
) -> Result<Json<Value>, ApiError> {
    let user_id = resolve(&state, &rid, &b).await?;
    delete_user(&state, rid, user_id).await
}

/// Deletes a user through the auth service (sessions end first).
pub async fn delete_user(
    state: &AppState,
    rid: String,
    user_id: String,
) -> Result<Json<Value>, ApiError> {
    let user: um::User = ask(
        state,
        Call::new(auth::NAME, auth::ops::DELETE_USER)
            .request_id(rid)
            .payload(&am::DeleteUserRequest { user_id }),
    )
    .await?;
    Ok(Json(json!({ "deleted": true, "user": user_json(&user) })))
}

/// An error for a request that names nobody.
pub fn no_such_user() -> ApiError {
    MeshError::new(Code::NotFound, "no such user").into()
}
