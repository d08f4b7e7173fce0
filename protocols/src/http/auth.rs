//! Who is calling: [`Caller`] (a valid access token of a live session, checked locally on
//! this node: signature, expiry, and the node's revocation set) and [`Admin`] (the admin
//! token of `[admin] token` / `TROUPE_ADMIN_TOKEN`, or an access token with role `admin`).
//! Missing credentials are 401, insufficient ones 403. Either refuses a write whose
//! `Idempotency-Key` was malformed (400), once the credential is good
//! ([`super::idempotency`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use troupe_actors::mesh::{Code, MeshError};

use super::{ApiError, AppState};
use crate::ingress::write_key;

pub use crate::ingress::Caller;

fn missing() -> ApiError {
    MeshError::new(Code::Unauthenticated, "missing bearer token").into()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = state.authenticate(bearer(parts).ok_or_else(missing)?)?;
        write_key::current()?;
        Ok(caller)
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
                write_key::current()?;
                return Ok(Admin(None));
            }
        }
        // Not the admin token: it may be an admin user's access token.
        match state.authenticate(presented) {
            Ok(caller) if caller.is_admin() => {
                write_key::current()?;
                Ok(Admin(Some(caller)))
            }
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

/// Compares in time independent of where the bytes differ (`subtle`; a length mismatch
/// answers at once, and the token's length is no secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
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
