//! The emailed-code flows: `POST /users/confirm-registration`, `POST /auth/forgot-password`
//! and `POST /auth/confirm-forgot-password`. The codes reach the user as notifications
//! (in-app, and email when SMTP is configured).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::{Call, MeshError};
use troupe_actors::users::{self, messages as um};

use super::identity::user_json;
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// Body of the code flows: the account (`username`, `email` or `login`), the code
/// (`code` or `confirmation_code`) and, for a reset, the new password (`new_password` or
/// `password`).
#[derive(Debug, Default, Deserialize)]
pub struct CodeBody {
    /// Username.
    pub username: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Either.
    pub login: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// The same (Cognito's name).
    pub confirmation_code: Option<String>,
    /// The new password.
    pub new_password: Option<String>,
    /// The same.
    pub password: Option<String>,
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
pub async fn confirm_registration(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let req = um::ConfirmRequest {
        login: b.account()?,
        code: b.code()?,
    };
    let user: um::User = ask(
        &state,
        Call::new(users::NAME, users::CONFIRM_REGISTRATION)
            .request_id(rid)
            .payload(&req),
    )
    .await?;
    Ok(Json(json!({ "confirmed": true, "user": user_json(&user) })))
}

/// `POST /auth/forgot-password`: sends a reset code to the account's owner. The answer is
/// the same whether or not the account exists.
pub async fn forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let reply: am::ForgotReply = ask(
        &state,
        Call::new(auth::NAME, auth::ops::FORGOT_PASSWORD)
            .request_id(rid)
            .payload(&am::ForgotRequest {
                login: b.account()?,
            }),
    )
    .await?;
    Ok(Json(json!({
        "sent": true,
        "message": "if the account exists, a reset code was sent to its owner",
        "expires_in": reply.expires_in,
    })))
}

/// `POST /auth/confirm-forgot-password`: the code and a new password; every session of the
/// user ends.
pub async fn confirm_forgot_password(
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<CodeBody>,
) -> Result<Json<Value>, ApiError> {
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
        Call::new(auth::NAME, auth::ops::CONFIRM_FORGOT_PASSWORD)
            .request_id(rid)
            .payload(&req),
    )
    .await?;
    Ok(Json(json!({ "reset": true, "user": user_json(&user) })))
}
