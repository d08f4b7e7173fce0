//! Registration, login, token rotation, logout and token checks, under every path the
//! landscapes use: `/auth/*`, `/api/auth/*`, `/login`, `/users/register`,
//! `/api/v1/airliner/*`, and the admin account operations `/auth/admin/*`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::auth::limits::Class;
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::{Code, MeshError};
use troupe_actors::users::{self, messages as um};
use utoipa::ToSchema;

use super::auth::{Admin, Caller};
use super::identity::{client, RoleName, UserView};
use super::json::Json as Body;
use super::openapi::{self, ErrorBody, Rule};
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Body of every register path. An absent field reads as empty, so that validation reports
/// every missing or bad field at once (`details.fields`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// Required: 3 to 32 characters of letters, digits, `_`, `.` or `-`; unique ignoring
    /// case.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 3,
        max_length = 32,
        pattern = r"^[A-Za-z0-9_.-]+$"
    )]
    pub username: String,
    /// Required: an email address of at most 254 characters (one `@`, a non-empty local
    /// part, a domain with a dot between non-empty labels, no spaces); unique ignoring case
    /// (an address in use is answered as a new account, see the 201).
    #[serde(default)]
    #[schema(
        required = true,
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@.\s\x00-\x1f\x7f-\x9f]+(\.[^@.\s\x00-\x1f\x7f-\x9f]+)+$"
    )]
    pub email: String,
    /// Required: 8 to 128 characters with at least one letter and one digit.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 8,
        max_length = 128,
        pattern = r"([^\W\d_][\s\S]*[0-9]|[0-9][\s\S]*[^\W\d_])"
    )]
    pub password: String,
    /// Display name: at most 100 characters without control characters; may be empty or
    /// absent.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub full_name: String,
}

/// `POST /auth/register`, `/api/auth/register`, `/users/register`,
/// `/api/v1/airliner/registerUser`: 201 with the new user.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new user: role `user`, not confirmed yet. Also the answer when the email already has an account (ignoring case) under another username: then nothing is created, the answered user does not exist, and the address's owner is mailed instead (`user.register_attempted`), so the answer does not tell whether an address is registered (unless the operator set `[auth] reveal_taken_email`)", body = UserView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 409, description = "Username already taken (ignoring case; usernames are public); \"email already registered\" only where the operator set `[auth] reveal_taken_email = true`", body = ErrorBody),
        (status = 429, description = "Too many registrations from the address (`[limits] register_per_ip_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Body(b): Body<RegisterBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    // Before the hash and the uniqueness check: a flood costs no hashing, and a 409 (which
    // tells that a username is taken) can be asked only this often per address.
    state
        .limit(Class::Register, &addr.0.ip().to_string(), &rid)
        .await?;
    let user: um::User = ask(
        &state,
        users::REGISTER
            .call(um::RegisterRequest {
                username: b.username,
                email: b.email,
                password: b.password,
                full_name: b.full_name,
            })
            .request_id(rid),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Body of every login path: `username` or `email` (or `login`), and `password`. Of
/// `login`, `username` and `email` the first given (not absent, not `null`) names the
/// account, and one is required: 1 to 254 characters once trimmed, without control
/// characters (the schema's `allOf` states it).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The account, when `login` is absent: a username or an email address, matched
    /// ignoring case.
    pub username: Option<String>,
    /// The account, when `login` and `username` are absent: an email address or a
    /// username, matched ignoring case.
    pub email: Option<String>,
    /// The account: a username or an email address, matched ignoring case. Of `login`,
    /// `username` and `email` the first present is used; one is required (not blank).
    pub login: Option<String>,
    /// Required (not empty): the account's password.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub password: String,
    /// Optional label of the client's device, kept with the new session.
    #[serde(default)]
    pub device: String,
}

impl Rule for LoginBody {
    fn rules() -> Vec<serde_json::Value> {
        vec![openapi::first_non_null(
            &["login", "username", "email"],
            openapi::account(),
        )]
    }
}

/// A new token pair, the answer of every login path and of `POST /auth/refresh`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPairView {
    /// Access token (a JWT) for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The access token again (the name some clients read).
    pub token: String,
    /// The session's id (the tokens' `sid` claim).
    pub session_id: String,
    /// The user the tokens are for.
    pub user: Option<TokenUserView>,
}

/// The user in a [`TokenPairView`].
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenUserView {
    /// Opaque id (a UUID).
    pub id: String,
    /// Login name, as registered.
    pub username: String,
    /// Email address, as registered.
    pub email: String,
    /// Roles, e.g. `["user"]`.
    pub roles: Vec<String>,
}

impl From<am::TokenPair> for TokenPairView {
    fn from(p: am::TokenPair) -> Self {
        Self {
            token: p.access_token.clone(),
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
            session_id: p.session_id,
            user: p.user.map(|u| TokenUserView {
                id: u.id,
                username: u.username,
                email: u.email,
                roles: u.roles,
            }),
        }
    }
}

/// `POST /login`, `/auth/login`, `/api/auth/login`, `/api/v1/airliner/login`,
/// `/api/v1/airliner/generateToken`.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new session's token pair", body = TokenPairView),
        (status = 400, description = "No account, or no password, given", body = ErrorBody),
        (status = 401, description = "Invalid credentials (whatever was wrong)", body = ErrorBody),
        (status = 429, description = "Too many login attempts for the account or from the address", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<LoginBody>,
) -> Result<Json<TokenPairView>, ApiError> {
    let (ip, user_agent) = client(addr, &headers);
    let login = b.login.or(b.username).or(b.email).unwrap_or_default();
    let pair: am::TokenPair = ask(
        &state,
        auth::ops::LOGIN
            .call(am::LoginRequest {
                login,
                password: b.password,
                ip,
                user_agent,
                device: b.device,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(pair.into()))
}

/// Body of `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// Required: the refresh token of the session's latest pair. It works once; a reused
    /// one ends its session.
    pub refresh_token: String,
}

/// `POST /auth/refresh`: a new pair; the presented refresh token is spent, and a reused one
/// ends its session.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair for the same session", body = TokenPairView),
        (status = 401, description = "Invalid or expired refresh token, token already used (the session is ended), session ended, or user gone", body = ErrorBody),
        (status = 429, description = "Too many refreshes from the address (`[limits] refresh_per_ip_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Body(b): Body<RefreshBody>,
) -> Result<Json<TokenPairView>, ApiError> {
    state
        .limit(Class::Refresh, &addr.0.ip().to_string(), &rid)
        .await?;
    let pair: am::TokenPair = ask(
        &state,
        auth::ops::REFRESH
            .call(am::RefreshRequest {
                refresh_token: b.refresh_token,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(pair.into()))
}

/// The answer of `POST /auth/logout`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOutView {
    /// Always `true`.
    pub logged_out: bool,
    /// The session that ended.
    pub session_id: String,
}

/// `POST /auth/logout`: ends the caller's session on every node.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's session has ended; its tokens no longer work", body = LoggedOutView))
)]
pub async fn logout(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<LoggedOutView>, ApiError> {
    let _: troupe_actors::sessions::messages::SessionInfo = ask(
        &state,
        auth::ops::LOGOUT
            .call(())
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(LoggedOutView {
        logged_out: true,
        session_id: caller.session_id,
    }))
}

/// What a valid access token says.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimsView {
    /// Always `true` (an invalid token is a 401).
    pub valid: bool,
    /// The user's id.
    pub user_id: String,
    /// The user's username.
    pub username: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The session's id.
    pub session_id: String,
}

impl From<Caller> for ClaimsView {
    fn from(c: Caller) -> Self {
        Self {
            valid: true,
            user_id: c.user_id,
            username: c.username,
            roles: c.roles,
            session_id: c.session_id,
        }
    }
}

/// `GET /auth/verify-token`: the bearer token's claims, or 401.
#[utoipa::path(
    get,
    path = "/auth/verify-token",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bearer token is valid; its claims", body = ClaimsView),
        (status = 401, description = "No token, or an invalid, expired or revoked one", body = ErrorBody),
    )
)]
pub async fn verify_token(caller: Caller) -> Json<ClaimsView> {
    Json(caller.into())
}

/// `GET /auth/verify/:token`: the same for a token given in the path.
#[utoipa::path(
    get,
    path = "/auth/verify/{token}",
    tag = "auth",
    params(("token" = String, Path, description = "An access token")),
    responses(
        (status = 200, description = "The token is valid; its claims", body = ClaimsView),
        (status = 401, description = "An invalid, expired or revoked token", body = ErrorBody),
    )
)]
pub async fn verify_path(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<ClaimsView>, ApiError> {
    Ok(Json(state.authenticate(&token)?.into()))
}

/// Body of `POST /auth/admin/create-user`. An absent field reads as empty, so that validation reports
/// every missing or bad field at once (`details.fields`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateBody {
    /// Required: 3 to 32 characters of letters, digits, `_`, `.` or `-`; unique ignoring
    /// case.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 3,
        max_length = 32,
        pattern = r"^[A-Za-z0-9_.-]+$"
    )]
    pub username: String,
    /// Required: an email address of at most 254 characters (one `@`, a non-empty local
    /// part, a domain with a dot between non-empty labels, no spaces); unique ignoring case.
    #[serde(default)]
    #[schema(
        required = true,
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@.\s\x00-\x1f\x7f-\x9f]+(\.[^@.\s\x00-\x1f\x7f-\x9f]+)+$"
    )]
    pub email: String,
    /// Required: 8 to 128 characters with at least one letter and one digit.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 8,
        max_length = 128,
        pattern = r"([^\W\d_][\s\S]*[0-9]|[0-9][\s\S]*[^\W\d_])"
    )]
    pub password: String,
    /// Display name: at most 100 characters without control characters; may be empty or
    /// absent.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub full_name: String,
    /// Roles: at most 16 names of 1 to 32 lowercase letters, digits, `_` or `-`
    /// (duplicates dropped); empty or absent means `["user"]`.
    #[serde(default)]
    #[schema(max_items = 16, value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
    /// Whether the email address counts as confirmed; absent means `true`.
    pub confirmed: Option<bool>,
}

/// `POST /auth/admin/create-user` and `POST /users` (admin): 201 with the user.
#[utoipa::path(
    post,
    path = "/auth/admin/create-user",
    tag = "auth",
    security(("admin" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin credential", body = ErrorBody),
        (status = 409, description = "Username already taken, or email already registered", body = ErrorBody),
    )
)]
pub async fn admin_create(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user: um::User = ask(
        &state,
        users::CREATE
            .call(um::CreateRequest {
                username: b.username,
                email: b.email,
                password: b.password,
                full_name: b.full_name,
                roles: b.roles,
                confirmed: b.confirmed.unwrap_or(true),
                sso_provider: String::new(),
            })
            .request_id(rid),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Body of `POST /auth/admin/delete-user`, and the user of `/auth/admin/set-password`: the
/// user by id, username or email. The first of them given names the user (`user_id` counts
/// as not given when empty), and one is required (the schema's `allOf` states it).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TargetBody {
    /// The user's id (1 to 64 characters without control characters); used when not
    /// empty.
    pub user_id: Option<String>,
    /// Otherwise the user by username or email address (1 to 254 characters without
    /// control characters), matched ignoring case.
    pub username: Option<String>,
    /// Otherwise (no `username`) the user by email address or username, the same way.
    pub email: Option<String>,
}

impl Rule for TargetBody {
    fn rules() -> Vec<serde_json::Value> {
        let login = serde_json::json!({
            "type": "string", "minLength": 1, "maxLength": 254, "pattern": openapi::NO_CONTROL
        });
        let null = serde_json::json!({"type": "null"});
        vec![openapi::first_given(&[
            (
                "user_id",
                serde_json::json!({
                    "type": "string", "minLength": 1, "maxLength": 64,
                    "pattern": openapi::NO_CONTROL
                }),
                serde_json::json!({"type": ["string", "null"], "maxLength": 0}),
            ),
            ("username", login.clone(), null.clone()),
            ("email", login, null),
        ])]
    }
}

/// Body of `POST /auth/admin/set-password`: the user ([`TargetBody`]) and the new password.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetPasswordBody {
    /// The user.
    #[serde(flatten)]
    pub user: TargetBody,
    /// Required: the new password, 8 to 128 characters with at least one letter and one
    /// digit.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 8,
        max_length = 128,
        pattern = r"([^\W\d_][\s\S]*[0-9]|[0-9][\s\S]*[^\W\d_])"
    )]
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
        users::GET_BY_LOGIN
            .call(um::GetByLoginRequest { login })
            .request_id(rid.to_string()),
    )
    .await?;
    Ok(user.id)
}

/// `POST /auth/admin/set-password`: a new password; the user's sessions end.
#[utoipa::path(
    post,
    path = "/auth/admin/set-password",
    tag = "auth",
    security(("admin" = [])),
    request_body = SetPasswordBody,
    responses(
        (status = 200, description = "The user, with the new password set and every session ended", body = UserView),
        (status = 400, description = "No user named, or an invalid password (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin credential", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn admin_set_password(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<SetPasswordBody>,
) -> Result<Json<UserView>, ApiError> {
    let user_id = resolve(&state, &rid, &b.user).await?;
    let user: um::User = ask(
        &state,
        auth::ops::SET_PASSWORD
            .call(am::SetPasswordRequest {
                user_id,
                password: b.password,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(user.into()))
}

/// `POST /auth/admin/delete-user`: deletes the user after ending their sessions.
#[utoipa::path(
    post,
    path = "/auth/admin/delete-user",
    tag = "auth",
    security(("admin" = [])),
    request_body = TargetBody,
    responses(
        (status = 200, description = "The user is deleted; as it was", body = DeletedUserView),
        (status = 400, description = "No user named", body = ErrorBody),
        (status = 403, description = "Not an admin credential", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn admin_delete(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<TargetBody>,
) -> Result<Json<DeletedUserView>, ApiError> {
    let user_id = resolve(&state, &rid, &b).await?;
    delete_user(&state, rid, user_id).await
}

/// The answer of a user's deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedUserView {
    /// Always `true`.
    pub deleted: bool,
    /// The user as it was.
    pub user: UserView,
}

/// Deletes a user through the auth service (sessions end first).
pub async fn delete_user(
    state: &AppState,
    rid: String,
    user_id: String,
) -> Result<Json<DeletedUserView>, ApiError> {
    let user: um::User = ask(
        state,
        auth::ops::DELETE_USER
            .call(am::DeleteUserRequest { user_id })
            .request_id(rid),
    )
    .await?;
    Ok(Json(DeletedUserView {
        deleted: true,
        user: user.into(),
    }))
}

/// An error for a request that names nobody.
pub fn no_such_user() -> ApiError {
    MeshError::new(Code::NotFound, "no such user").into()
}
