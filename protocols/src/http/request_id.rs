//! `x-request-id`: taken from the client or made here, echoed on every reply, carried in
//! every mesh call and every JSON error body. Its companion `traceparent` is taken or made
//! in the same place ([`super::middleware`]) and travels the same way.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};

/// The header name.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The W3C trace context header, read and answered next to the request id (see
/// `troupe_actors::mesh::trace`).
pub const TRACEPARENT: HeaderName = HeaderName::from_static(troupe_actors::mesh::trace::HEADER);

/// The request id of the current request (set by [`super::middleware::ObserveLayer`]
/// before handlers run).
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

/// Makes the id of a request that came without one ([`crate::ingress::request_id`]) as a
/// header value, with no `String` in between.
pub fn new_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = crate::ingress::request_id::new_id_in(&mut buf);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_are_distinct_v4_uuids() {
        let (a, b) = (new_id(), new_id());
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
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
