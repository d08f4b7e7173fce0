//! The `idempotency-key` metadata of a gRPC call: the client's key for the writes the call
//! makes, as REST's `Idempotency-Key` header ([`crate::http::idempotency`]). A call that
//! sends one runs inside it ([`crate::ingress::write_key::scope`]), so its effectful mesh
//! calls are keyed with it and a client that sends the call again with the same key and
//! the same request gets the first answer, nothing applied twice. A call without one gets
//! a key made for each write, as before. A key that is not 1-255 visible ASCII characters
//! is refused with `INVALID_ARGUMENT` at the call's first write, after its credential is
//! checked and before anything is written.

use axum::http::{HeaderMap, HeaderName, Method};

use crate::ingress::write_key::{self, ScopeLayer};

/// The metadata key (lower case, as HTTP/2 sends it).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The layer, for every gRPC service at once: a call that sends a key runs inside it.
pub const WRITE_KEY: ScopeLayer = ScopeLayer(pick);

/// The call's key, when it sends one (checked, or marked refused).
fn pick(_: &Method, headers: &HeaderMap) -> Option<String> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|key| write_key::accept_or_mark(Some(key)))
}
