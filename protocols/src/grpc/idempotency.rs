//! The `idempotency-key` metadata of a gRPC call: the client's key for the writes the call
//! makes, as REST's `Idempotency-Key` header ([`crate::http::idempotency`]). A call that
//! sends one runs inside it ([`crate::ingress::write_key::scope`]), so its effectful mesh
//! calls are keyed with it and a client that sends the call again with the same key and
//! the same request gets the first answer, nothing applied twice. A call without one gets
//! a key made for each write, as before. A key that is not 1-255 visible ASCII characters
//! is refused with `INVALID_ARGUMENT` before anything runs.

use std::task::{Context, Poll};

use axum::http::{HeaderName, Request, Response};
use futures_util::future::{Either, Ready};
use tokio::task::futures::TaskLocalFuture;

use crate::ingress::write_key;

/// The metadata key (lower case, as HTTP/2 sends it).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The layer, for every gRPC service at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteKeyLayer;

impl<S> tower::Layer<S> for WriteKeyLayer {
    type Service = WriteKey<S>;

    fn layer(&self, inner: S) -> WriteKey<S> {
        WriteKey { inner }
    }
}

/// The service of [`WriteKeyLayer`].
#[derive(Clone, Debug)]
pub struct WriteKey<S> {
    inner: S,
}

/// A call without a key, one run inside the client's key, or a refusal.
type Future<F, E> =
    Either<F, Either<TaskLocalFuture<String, F>, Ready<Result<Response<tonic::body::Body>, E>>>>;

impl<S, B> tower::Service<Request<B>> for WriteKey<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Future<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(given) = req.headers().get(IDEMPOTENCY_KEY) else {
            return Either::Left(self.inner.call(req));
        };
        match write_key::accept(Some(given.to_str().unwrap_or("\u{7f}"))) {
            Ok(key) => Either::Right(Either::Left(write_key::scope(key, self.inner.call(req)))),
            Err(e) => Either::Right(Either::Right(futures_util::future::ready(Ok(
                super::error::status(e).into_http(),
            )))),
        }
    }
}
