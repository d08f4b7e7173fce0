//! Single sign-on with OpenID Connect (landscape C): `/auth/sso/*`, `/auth/login-url` and
//! `/auth/logout-url`. Each handler is one call to the `sso` service; the flow, the
//! cluster-wide state and the checks are in `troupe_actors::sso`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::auth::messages as am;
use troupe_actors::mesh::MeshError;
use troupe_actors::sso::{self, messages as sm};
use utoipa::ToSchema;

use super::account::{RefreshBody, TokenPairView};
use super::auth::Caller;
use super::identity::client;
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Query of `GET /auth/sso/login` and `GET /auth/sso/logout`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// A provider name of `[[sso.providers]]`; absent means the first one. An unknown
    /// name is a 400 that lists the configured ones.
    #[param(max_length = 64)]
    pub provider: Option<String>,
    /// `true`: answer `302 Found` to the URL instead of JSON.
    pub redirect: Option<bool>,
}

/// Where to send the browser to sign in.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginUrlView {
    /// The provider's authorization URL (authorization code flow, PKCE S256, state, nonce).
    pub url: String,
    /// The provider's name.
    pub provider: String,
    /// The `state` the callback must bring back; it works once, on any node.
    pub state: String,
    /// Seconds the sign-in may take before the state expires.
    pub expires_in: u64,
}

fn found(url: &str) -> Result<Response, ApiError> {
    if url.is_empty() {
        return Err(MeshError::new(
            troupe_actors::mesh::Code::FailedPrecondition,
            "the provider has no logout endpoint to redirect to",
        )
        .into());
    }
    Ok((StatusCode::FOUND, [(LOCATION, url.to_owned())]).into_response())
}

/// `GET /auth/sso/login`, `GET /auth/login-url`: begin a sign-in.
#[utoipa::path(
    get,
    path = "/auth/sso/login",
    tag = "auth",
    params(ProviderQuery),
    responses(
        (status = 200, description = "The provider's authorization URL", body = LoginUrlView),
        (status = 302, description = "With `redirect=true`: to the provider's authorization URL"),
        (status = 400, description = "Unknown provider", body = ErrorBody),
        (status = 404, description = "No provider is configured", body = ErrorBody),
        (status = 502, description = "The provider failed (discovery)", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Query(q): Query<ProviderQuery>,
) -> Result<Response, ApiError> {
    let request = sm::LoginUrlRequest {
        provider: q.provider.unwrap_or_default(),
    };
    let answer: sm::LoginUrl =
        ask(&state, sso::ops::LOGIN_URL.call(request).request_id(rid)).await?;
    if q.redirect.unwrap_or(false) {
        return found(&answer.url);
    }
    Ok(Json(LoginUrlView {
        url: answer.url,
        provider: answer.provider,
        state: answer.state,
        expires_in: answer.expires_in,
    })
    .into_response())
}

/// Query of `GET /auth/sso/callback`: what the provider appends to the redirect URL.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    #[param(max_length = 2048)]
    pub code: Option<String>,
    /// The state of `GET /auth/sso/login`: every callback carries it, a provider's error
    /// too (RFC 6749, 4.1.2.1); missing or blank is 400.
    #[param(required = true, min_length = 1, max_length = 256, pattern = r"\S")]
    pub state: Option<String>,
    /// The issuer (RFC 9207), when the provider sends it; must be the provider's.
    #[param(max_length = 2048)]
    pub iss: Option<String>,
    /// The provider's error (e.g. `access_denied`) instead of a code.
    #[param(max_length = 256)]
    pub error: Option<String>,
    /// The provider's description of `error`.
    #[param(max_length = 2048)]
    pub error_description: Option<String>,
    /// Optional: must name the provider the sign-in began with.
    #[param(max_length = 64)]
    pub provider: Option<String>,
    /// Sent back by some providers; ignored.
    pub session_state: Option<String>,
}

/// A signed-in user's Troupe session: the token pair of a password login, and how it came.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInView {
    /// The Troupe tokens.
    #[serde(flatten)]
    pub pair: TokenPairView,
    /// The provider's name.
    pub provider: String,
    /// Whether this sign-in created the Troupe user.
    pub created: bool,
    /// Whether this sign-in linked the provider identity to an existing account with the
    /// same verified email (`link_verified_email`).
    pub linked: bool,
}

impl SignInView {
    fn from(s: sm::SignIn) -> Result<Self, ApiError> {
        let pair = s
            .pair
            .ok_or_else(|| MeshError::internal("sign-in without tokens"))?;
        Ok(Self {
            pair: pair.into(),
            provider: s.provider,
            created: s.created,
            linked: s.linked,
        })
    }
}

/// `GET /auth/sso/callback`: the provider's redirect back, on any node.
#[utoipa::path(
    get,
    path = "/auth/sso/callback",
    tag = "auth",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Signed in: a new session's token pair", body = SignInView),
        (status = 400, description = "No state or code, or another provider named", body = ErrorBody),
        (status = 401, description = "Unknown, used or expired state; code or ID token refused (signature, issuer, audience, expiry, nonce); sign-in refused at the provider", body = ErrorBody),
        (status = 409, description = "A local account has the email and linking is off, or the provider gave no email", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Json<SignInView>, ApiError> {
    let (ip, user_agent) = client(addr, &headers);
    let request = sm::CallbackRequest {
        provider: q.provider.unwrap_or_default(),
        code: q.code.unwrap_or_default(),
        state: q.state.unwrap_or_default(),
        iss: q.iss.unwrap_or_default(),
        error: q.error.unwrap_or_default(),
        error_description: q.error_description.unwrap_or_default(),
        ip,
        user_agent,
    };
    let answer: sm::SignIn = ask(&state, sso::ops::CALLBACK.call(request).request_id(rid)).await?;
    Ok(Json(SignInView::from(answer)?))
}

/// `POST /auth/sso/refresh`: refresh through the provider, then rotate the Troupe pair.
#[utoipa::path(
    post,
    path = "/auth/sso/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair for the same session", body = SignInView),
        (status = 400, description = "Not a session opened by SSO", body = ErrorBody),
        (status = 401, description = "Invalid, used or expired refresh token; or the provider refused its refresh token (the session is ended)", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
        (status = 429, description = "Too many refreshes from the address (`[limits] refresh_per_ip_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Body(b): Body<RefreshBody>,
) -> Result<Json<SignInView>, ApiError> {
    state
        .limit(
            troupe_actors::auth::limits::Class::Refresh,
            &addr.0.ip().to_string(),
            &rid,
        )
        .await?;
    let request = am::RefreshRequest {
        refresh_token: b.refresh_token,
    };
    let answer: sm::SignIn = ask(&state, sso::ops::REFRESH.call(request).request_id(rid)).await?;
    Ok(Json(SignInView::from(answer)?))
}

/// The caller's claims at the provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfoView {
    /// The provider's name.
    pub provider: String,
    /// The claims of the provider's userinfo endpoint (`sub`, and `email`, `name`, ...
    /// as the scopes allow).
    #[schema(value_type = Object)]
    pub claims: serde_json::Value,
}

/// `GET /auth/sso/user-info`: the caller's claims from the provider's userinfo endpoint.
#[utoipa::path(
    get,
    path = "/auth/sso/user-info",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The provider's claims about the caller", body = UserInfoView),
        (status = 400, description = "The caller's session was not opened by SSO", body = ErrorBody),
        (status = 401, description = "No valid token; or the provider no longer accepts the session's access token", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    )
)]
pub async fn user_info(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<UserInfoView>, ApiError> {
    let call = sso::ops::USER_INFO
        .call(())
        .request_id(rid)
        .caller(caller.to_proto());
    let answer: sm::UserInfo = ask(&state, call).await?;
    let claims = serde_json::from_str(&answer.claims_json)
        .map_err(|e| MeshError::internal(format!("userinfo claims: {e}")))?;
    Ok(Json(UserInfoView {
        provider: answer.provider,
        claims,
    }))
}

/// The ended session and where to end the provider's.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutView {
    /// Always `true`: the session's tokens no longer work on any node.
    pub logged_out: bool,
    /// The session that ended.
    pub session_id: String,
    /// The provider's name.
    pub provider: String,
    /// The provider's RP-initiated logout URL (`end_session_endpoint` with
    /// `id_token_hint`); empty when the provider has none.
    pub logout_url: String,
}

/// `GET /auth/sso/logout`, `GET /auth/logout-url`: end the caller's session on every node
/// and give the provider's logout URL.
#[utoipa::path(
    get,
    path = "/auth/sso/logout",
    tag = "auth",
    security(("bearer" = [])),
    params(ProviderQuery),
    responses(
        (status = 200, description = "The session has ended; the provider's logout URL", body = LogoutView),
        (status = 302, description = "With `redirect=true`: the session has ended; to the provider's logout URL"),
        (status = 400, description = "Unknown provider", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<ProviderQuery>,
) -> Result<Response, ApiError> {
    let request = sm::LogoutRequest {
        provider: q.provider.unwrap_or_default(),
    };
    let call = sso::ops::LOGOUT
        .call(request)
        .request_id(rid)
        .caller(caller.to_proto());
    let answer: sm::LogoutUrl = ask(&state, call).await?;
    if q.redirect.unwrap_or(false) {
        return found(&answer.url);
    }
    Ok(Json(LogoutView {
        logged_out: true,
        session_id: answer.session_id,
        provider: answer.provider,
        logout_url: answer.url,
    })
    .into_response())
}
