//! The emailed-code flows: `POST /users/confirm-registration`, `POST /auth/forgot-password`
//! and `POST /auth/confirm-forgot-password`. The codes reach the user as notifications
//! (in-app, and email when SMTP is configured).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::MeshError;
use troupe_actors::users::{self, messages as um};
use utoipa::ToSchema;

use super::identity::UserView;
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Body of the code flows: the account (`username`, `email` or `login`), the code
/// (`code` or `confirmation_code`) and, for a reset, the new password (`new_password` or
/// `password`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CodeBody {
    /// The account, when `login` is absent: a username or an email address, matched
    /// ignoring case.
    pub username: Option<String>,
    /// The account, when `login` and `username` are absent: an email address or a
    /// username, matched ignoring case.
    pub email: Option<String>,
    /// The account: a username or an email address, matched ignoring case. Of `login`,
    /// `username` and `email` the first present is used; one is required (not blank).
    pub login: Option<String>,
    /// The code from the notification (six digits). Confirmations only, required there
    /// (`code` or `confirmation_code`, the first present is used; not blank). A code works
    /// once, until it expires, and not after too many wrong guesses.
    pub code: Option<String>,
    /// The same as `code` (Cognito's name), used when `code` is absent.
    pub confirmation_code: Option<String>,
    /// `POST /auth/confirm-forgot-password` only, required there (`new_password` or
    /// `password`, the first present is used): the new password, 8 to 128 characters with
    /// at least one letter and one digit.
    pub new_password: Option<String>,
    /// The same as `new_password`, used when `new_password` is absent.
    pub password: Option<String>,
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

impl CodeBody {
    fn account(&self) -> Result<String, ApiError> {
        self.login
            .clone()
            .or_else(|| self.username.clone())
            .or_else(|| self.email.clone())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| MeshError::invalid("username or email is required").into())
    }

    fn code(&self) -> Result<String, ApiError> {
        self.code
            .clone()
            .or_else(|| self.confirmation_code.clone())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| MeshError::invalid("code is required").into())
    }
}

/// `POST /users/confirm-registration`: the registration code confirms the account.
#[utoipa::path(
    post,
    path = "/users/confirm-registration",
    tag = "auth",
    request_body = CodeBody,
    responses(
        (status = 200, description = "The account is confirmed", body = ConfirmedView),
        (status = 400, description = "No account or no code given, or an invalid or expired code (whatever was wrong, also an unknown account)", body = ErrorBody),
        (status = 409, description = "The registration is already confirmed", body = ErrorBody),
    )
)]
pub async fn confirm_registration(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
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
    request_body = CodeBody,
    responses(
        (status = 200, description = "A reset code was sent if the account exists (the same answer otherwise)", body = ResetCodeSentView),
        (status = 400, description = "No account given", body = ErrorBody),
    )
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
) -> Result<Json<ResetCodeSentView>, ApiError> {
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
    request_body = CodeBody,
    responses(
        (status = 200, description = "The new password is set and every session of the user has ended", body = PasswordResetView),
        (status = 400, description = "No account, code or new password given, an invalid password (`details.fields`), or an invalid or expired code (whatever was wrong, also an unknown account)", body = ErrorBody),
    )
)]
pub async fn confirm_forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
) -> Result<Json<PasswordResetView>, ApiError> {
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
