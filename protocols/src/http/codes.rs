//! The emailed-code flows: `POST /users/confirm-registration`, `POST /auth/forgot-password`
//! and `POST /auth/confirm-forgot-password`. The codes reach the user as notifications
//! (in-app, and email when SMTP is configured).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use troupe_actors::auth::limits::Class;
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::MeshError;
use troupe_actors::users::{self, messages as um};
use utoipa::ToSchema;

use super::identity::UserView;
use super::json::Json as Body;
use super::openapi::{self, ErrorBody, Rule};
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// The account a code flow is about, and the body of `POST /auth/forgot-password`:
/// `username`, `email` or `login`. The first given (not absent, not `null`) names the
/// account, and one is required: 1 to 254 characters once trimmed, without control
/// characters (the schema's `allOf` states it).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Account {
    /// The account, when `login` is absent: a username or an email address, matched
    /// ignoring case.
    pub username: Option<String>,
    /// The account, when `login` and `username` are absent: an email address or a
    /// username, matched ignoring case.
    pub email: Option<String>,
    /// The account: a username or an email address, matched ignoring case; comes first.
    pub login: Option<String>,
}

impl Rule for Account {
    fn rules() -> Vec<Value> {
        vec![openapi::first_non_null(
            &["login", "username", "email"],
            openapi::account(),
        )]
    }
}

/// Body of `POST /users/confirm-registration`: the account ([`Account`]) and the code from
/// the notification, `code` or `confirmation_code` (the first given is used; one is
/// required).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ConfirmBody {
    /// The account.
    #[serde(flatten)]
    pub account: Account,
    /// The code from the notification: six digits. A code works once, until it expires,
    /// and not after too many wrong guesses; a wrong one is a 400.
    pub code: Option<String>,
    /// The same as `code` (Cognito's name), used when `code` is absent.
    pub confirmation_code: Option<String>,
}

impl Rule for ConfirmBody {
    fn rules() -> Vec<Value> {
        vec![openapi::first_non_null(
            &["code", "confirmation_code"],
            json!({"type": "string", "pattern": "^[0-9]{6}$"}),
        )]
    }
}

/// Body of `POST /auth/confirm-forgot-password`: the account and code ([`ConfirmBody`]),
/// and the new password, `new_password` or `password` (the first given is used; one is
/// required).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ResetBody {
    /// The account and the code.
    #[serde(flatten)]
    pub confirm: ConfirmBody,
    /// The new password: 8 to 128 characters with at least one letter and one digit.
    pub new_password: Option<String>,
    /// The same as `new_password`, used when `new_password` is absent.
    pub password: Option<String>,
}

impl Rule for ResetBody {
    fn rules() -> Vec<Value> {
        vec![openapi::first_non_null(
            &["new_password", "password"],
            openapi::password(),
        )]
    }
}

/// The answer of `POST /users/confirm-registration`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmedView {
    /// Always `true`.
    pub confirmed: bool,
    /// The user, now confirmed.
    pub user: UserView,
}

/// The answer of `POST /auth/forgot-password`, the same whether or not the account exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetCodeSentView {
    /// Always `true`.
    pub sent: bool,
    /// Always "if the account exists, a reset code was sent to its owner".
    pub message: &'static str,
    /// Seconds the code works.
    pub expires_in: u64,
}

/// The answer of `POST /auth/confirm-forgot-password`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetView {
    /// Always `true`.
    pub reset: bool,
    /// The user, with the new password set.
    pub user: UserView,
}

impl Account {
    /// The account name, trimmed (as the logins read it).
    fn account(&self) -> Result<String, ApiError> {
        self.login
            .as_deref()
            .or(self.username.as_deref())
            .or(self.email.as_deref())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| MeshError::invalid("username or email is required").into())
    }
}

impl ConfirmBody {
    fn account(&self) -> Result<String, ApiError> {
        self.account.account()
    }

    fn code(&self) -> Result<String, ApiError> {
        self.code
            .clone()
            .or_else(|| self.confirmation_code.clone())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| MeshError::invalid("code is required").into())
    }
}

impl ResetBody {
    fn account(&self) -> Result<String, ApiError> {
        self.confirm.account()
    }

    fn code(&self) -> Result<String, ApiError> {
        self.confirm.code()
    }
}

/// `POST /users/confirm-registration`: the registration code confirms the account.
#[utoipa::path(
    post,
    path = "/users/confirm-registration",
    tag = "auth",
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "The account is confirmed", body = ConfirmedView),
        (status = 400, description = "No account or no code given, or an invalid or expired code (whatever was wrong, also an unknown account)", body = ErrorBody),
        (status = 409, description = "The registration is already confirmed", body = ErrorBody),
    )
)]
pub async fn confirm_registration(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<ConfirmBody>,
) -> Result<Json<ConfirmedView>, ApiError> {
    let req = um::ConfirmRequest {
        login: b.account()?,
        code: b.code()?,
    };
    let user: um::User = ask(
        &state,
        users::CONFIRM_REGISTRATION.call(req).request_id(rid),
    )
    .await?;
    Ok(Json(ConfirmedView {
        confirmed: true,
        user: user.into(),
    }))
}

/// `POST /auth/forgot-password`: sends a reset code to the account's owner. The answer is
/// the same whether or not the account exists.
#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    tag = "auth",
    request_body = Account,
    responses(
        (status = 200, description = "A reset code was sent if the account exists (the same answer otherwise)", body = ResetCodeSentView),
        (status = 400, description = "No account given", body = ErrorBody),
        (status = 429, description = "Too many code requests and guesses from the address (`[limits] codes_per_ip_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Body(b): Body<Account>,
) -> Result<Json<ResetCodeSentView>, ApiError> {
    state
        .limit(Class::Codes, &addr.0.ip().to_string(), &rid)
        .await?;
    let reply: am::ForgotReply = ask(
        &state,
        auth::ops::FORGOT_PASSWORD
            .call(am::ForgotRequest {
                login: b.account()?,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(ResetCodeSentView {
        sent: true,
        message: "if the account exists, a reset code was sent to its owner",
        expires_in: reply.expires_in,
    }))
}

/// `POST /auth/confirm-forgot-password`: the code and a new password; every session of the
/// user ends.
#[utoipa::path(
    post,
    path = "/auth/confirm-forgot-password",
    tag = "auth",
    request_body = ResetBody,
    responses(
        (status = 200, description = "The new password is set and every session of the user has ended", body = PasswordResetView),
        (status = 400, description = "No account, code or new password given, an invalid password (`details.fields`), or an invalid or expired code (whatever was wrong, also an unknown account)", body = ErrorBody),
        (status = 429, description = "Too many code requests and guesses from the address (`[limits] codes_per_ip_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn confirm_forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Body(b): Body<ResetBody>,
) -> Result<Json<PasswordResetView>, ApiError> {
    state
        .limit(Class::Codes, &addr.0.ip().to_string(), &rid)
        .await?;
    let password = b
        .new_password
        .clone()
        .or_else(|| b.password.clone())
        .unwrap_or_default();
    if password.is_empty() {
        return Err(MeshError::invalid("new_password is required").into());
    }
    let req = am::ResetRequest {
        login: b.account()?,
        code: b.code()?,
        password,
    };
    let user: um::User = ask(
        &state,
        auth::ops::CONFIRM_FORGOT_PASSWORD.call(req).request_id(rid),
    )
    .await?;
    Ok(Json(PasswordResetView {
        reset: true,
        user: user.into(),
    }))
}
