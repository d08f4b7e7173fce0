//! `x-request-id`: taken from the client or made here, echoed on every reply, carried in
//! every mesh call and every JSON error body.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderName;

/// The header name.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request (set by the request-id layer before handlers run).
#[derive(Clone, Debug, Default)]
pub struct Rid(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Rid {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Rid(parts
            .headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()))
    }
}
