//! `x-request-id`: taken from the client or made here, echoed on every reply, carried in
//! every mesh call and every JSON error body.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

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

/// Makes the id of a request that came without one: a random (v4) UUID, lower-case and
/// hyphenated, as tower-http's `MakeRequestUuid` makes it, but encoded straight into a stack
/// buffer instead of through `Display` into a `String` and parsed back (one allocation
/// and the formatting machinery less on every such request).
#[derive(Clone, Copy, Debug, Default)]
pub struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        let value = HeaderValue::from_str(id).expect("a UUID is a valid header value");
        Some(RequestId::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_are_distinct_v4_uuids() {
        let req = Request::new(());
        let mut make = MakeRequestUuid;
        let a = make.make_request_id(&req).unwrap();
        let b = make.make_request_id(&req).unwrap();
        let a = a.header_value().to_str().unwrap();
        let b = b.header_value().to_str().unwrap();
        assert_ne!(a, b);
        for id in [a, b] {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(
                id,
                parsed.hyphenated().to_string(),
                "lower-case, hyphenated"
            );
        }
    }
}
