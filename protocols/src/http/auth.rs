//! Who is calling: [`Caller`] (a valid access token of a live session, checked locally on
//! this node: signature, expiry, and the node's revocation set) and [`Admin`] (the admin
//! token of `[admin] token` / `TROUPE_ADMIN_TOKEN`, or an access token with role `admin`).
//! Missing credentials are 401, insufficient ones 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use troupe_actors::auth::token::TokenKind;
use troupe_actors::mesh::{Code, MeshError};
use troupe_proto::mesh as pb;

use super::{ApiError, AppState};

/// An authenticated user: a valid access token whose session is not revoked.
#[derive(Clone, Debug)]
pub struct Caller {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Session id.
    pub session_id: String,
    /// When the access token expires (its `exp` claim), unix seconds. This node accepts the
    /// token until [`LEEWAY_SECS`](troupe_actors::auth::token::LEEWAY_SECS) later; an open WebSocket closes then.
    pub expires_at: u64,
}

impl Caller {
    /// Whether the caller has role `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The caller as carried in mesh envelopes.
    pub fn to_proto(&self) -> pb::Caller {
        pb::Caller {
            user_id: self.user_id.clone(),
            roles: self.roles.clone(),
            session_id: self.session_id.clone(),
        }
    }

    /// Allows acting on `user_id`'s resources: the owner or an admin.
    pub fn may_act_for(&self, user_id: &str) -> Result<(), ApiError> {
        if self.user_id == user_id || self.is_admin() {
            Ok(())
        } else {
            Err(MeshError::new(Code::PermissionDenied, "not your resource").into())
        }
    }
}

fn missing() -> ApiError {
    MeshError::new(Code::Unauthenticated, "missing bearer token").into()
}

/// Verifies an access token on this node (no mesh hop): signature, expiry, revocation.
pub fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let claims = state
        .tokens
        .verify(token, TokenKind::Access)
        .map_err(MeshError::from)?;
    if state.revocations.is_revoked(&claims.sid) {
        return Err(MeshError::new(Code::Unauthenticated, "session has ended").into());
    }
    Ok(Caller {
        user_id: claims.sub,
        username: claims.username,
        roles: claims.roles,
        session_id: claims.sid,
        expires_at: claims.exp,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, bearer(parts).ok_or_else(missing)?)
    }
}

/// Proof of admin rights: the admin token, or an access token with role `admin`.
#[derive(Debug)]
pub struct Admin(pub Option<Caller>);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = bearer(parts).ok_or_else(missing)?;
        if let Some(expected) = state.config.admin_token.as_deref() {
            if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
                return Ok(Admin(None));
            }
        }
        // Not the admin token: it may be an admin user's access token.
        match authenticate(state, presented) {
            Ok(caller) if caller.is_admin() => Ok(Admin(Some(caller))),
            Ok(_) => Err(MeshError::new(Code::PermissionDenied, "admin only").into()),
            Err(_) => Err(MeshError::new(Code::PermissionDenied, "not an admin credential").into()),
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tokens_match_and_others_do_not() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
    }

    #[test]
    fn bearer_scheme_is_parsed_case_insensitively() {
        let req = axum::http::Request::builder()
            .header(AUTHORIZATION, "bearer abc")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(bearer(&parts), Some("abc"));
        let req = axum::http::Request::builder()
            .header(AUTHORIZATION, "Basic abc")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(bearer(&parts), None);
    }
}
