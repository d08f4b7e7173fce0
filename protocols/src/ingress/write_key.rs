//! The idempotency key of the write an ingress request makes: the client's
//! (`Idempotency-Key` on REST), or one made here. REST runs a write's handler inside
//! [`scope`]; [`super::Ingress::ask`] puts the key on every effectful call it makes (a key
//! made for the call when there is no scope: SOAP, gRPC and WebSocket frames) (see `troupe_actors::store::idempotency`), so the
//! router may retry the call when its worker dies or its node leaves, and a client's
//! repeat gets the first answer.

use std::future::Future;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Method, Request};
use futures_util::future::Either;
use tokio::task::futures::TaskLocalFuture;

use troupe_actors::mesh::MeshError;
use troupe_actors::store::idempotency;

tokio::task_local! {
    static KEY: String;
}

/// Made keys start with this (a space, which a client key cannot hold): a made key is
/// never anyone's repeat, so the service need not look it up before the first run.
pub use idempotency::MADE;

/// The key for a request that sent `given`: the client's when given (checked), else a new
/// one.
pub fn accept(given: Option<&str>) -> Result<String, MeshError> {
    match given {
        Some(key) => {
            idempotency::check(key)?;
            Ok(key.to_string())
        }
        None => Ok(made()),
    }
}

/// A key made here.
pub fn made() -> String {
    format!("{MADE}{}", uuid::Uuid::new_v4().simple())
}

/// Runs `fut` (a write's handler) with `key` as its idempotency key.
pub fn scope<F: Future>(key: String, fut: F) -> tokio::task::futures::TaskLocalFuture<String, F> {
    KEY.scope(key, fut)
}

/// The key of the write this task handles, if any; `invalid_argument` for a client's key
/// that was refused ([`refused`]).
pub fn current() -> Result<Option<String>, MeshError> {
    match KEY.try_with(String::clone).ok() {
        Some(key) => match key.strip_prefix(REFUSED) {
            Some(why) => Err(MeshError::invalid(why)),
            None => Ok(Some(key)),
        },
        None => Ok(None),
    }
}

/// Marks a client's key refused: the request still runs (so a missing credential is
/// answered first, as 401), and its first write is refused with `e` before anything is
/// written.
pub fn refused(e: &MeshError) -> String {
    format!("{REFUSED}{}", e.message)
}

/// The key of a request that sent `given` (a header's value): the client's when it is
/// good, a made one when there is none, and a bad one marked [`refused`].
pub fn accept_or_mark(given: Option<&HeaderValue>) -> String {
    accept(given.map(|v| v.to_str().unwrap_or("\u{7f}"))).unwrap_or_else(|e| refused(&e))
}

/// Which key a request's handler runs with, from its method and headers; `None`: no
/// scope (a read).
pub type Pick = fn(&Method, &HeaderMap) -> Option<String>;

/// A tower layer (REST's `Idempotency-Key`, gRPC's `idempotency-key` metadata) that runs
/// each request's handler inside the key its [`Pick`] picks. A refused key runs on marked,
/// so the route's method and credential are checked first and the write is refused after
/// (see [`current`]). Reads pass through with no allocation and no extra future.
#[derive(Clone, Copy, Debug)]
pub struct ScopeLayer(pub Pick);

impl<S> tower::Layer<S> for ScopeLayer {
    type Service = Scoped<S>;

    fn layer(&self, inner: S) -> Scoped<S> {
        Scoped {
            inner,
            pick: self.0,
        }
    }
}

/// The service of [`ScopeLayer`].
#[derive(Clone, Debug)]
pub struct Scoped<S> {
    inner: S,
    pick: Pick,
}

impl<S, B> tower::Service<Request<B>> for Scoped<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<TaskLocalFuture<String, S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match (self.pick)(req.method(), req.headers()) {
            Some(key) => Either::Left(scope(key, self.inner.call(req))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

/// The first character of a refused key's mark (DEL: no key, client or made, holds it).
const REFUSED: char = '\u{7f}';

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_are_checked_and_made_ones_marked() {
        assert_eq!(accept(Some("order-42")).unwrap(), "order-42");
        for bad in ["", "a b", "é", &"k".repeat(256)] {
            assert!(accept(Some(bad)).is_err(), "{bad:?}");
        }
        let made = accept(None).unwrap();
        assert!(made.starts_with(MADE) && made.len() == 33);
        assert_ne!(made, accept(None).unwrap());
    }

    #[tokio::test]
    async fn the_key_is_seen_inside_its_scope_only() {
        assert_eq!(current(), Ok(None));
        let seen = scope("k1".into(), async { current() }).await;
        assert_eq!(seen, Ok(Some("k1".to_string())));
        assert_eq!(current(), Ok(None));
    }

    #[tokio::test]
    async fn a_refused_key_refuses_the_first_write_with_its_reason() {
        let e = accept(Some("a b")).unwrap_err();
        let seen = scope(refused(&e), async { current() }).await;
        assert_eq!(seen.unwrap_err(), e);
    }
}
