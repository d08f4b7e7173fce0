//! `Idempotency-Key`: a write (POST, PUT, PATCH, DELETE) runs its handler with the client's
//! key, or one made here ([`crate::ingress::write_key`]), so every effectful mesh call it
//! makes is a keyed write: retried by the router when its worker dies, and answered with
//! the first answer when the client sends it again. A key that is not 1-255 visible ASCII
//! characters is refused with 400 before anything runs, once the route and its method have
//! matched (an undeclared method is still 405): the request runs on marked, a route that
//! needs credentials checks them first (401) and then refuses it in its credential's
//! extractor ([`super::auth::Caller`], [`super::auth::Admin`]), and a public write is
//! refused at its first write, before anything is written.
//!
//! The layer is [`write_key::ScopeLayer`], shared with gRPC's metadata.

use axum::http::{HeaderMap, HeaderName, Method};

use crate::ingress::write_key::{self, ScopeLayer};

/// The header name.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The layer: every write's handler runs inside its key.
pub const WRITE_KEY: ScopeLayer = ScopeLayer(pick);

/// A write's key (the client's, made, or refused); `None` for a read.
fn pick(method: &Method, headers: &HeaderMap) -> Option<String> {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
    .then(|| write_key::accept_or_mark(headers.get(IDEMPOTENCY_KEY)))
}
