//! `Idempotency-Key`: a write (POST, PUT, PATCH, DELETE) runs its handler with the client's
//! key, or one made here ([`crate::ingress::write_key`]), so every effectful mesh call it
//! makes is a keyed write: retried by the router when its worker dies, and answered with
//! the first answer when the client sends it again. A key that is not 1-255 visible ASCII
//! characters is refused with 400 before anything runs; a request without credentials runs
//! on, so a route that needs them answers 401 first, and a public write is refused with
//! 400 at its first write, before anything is written.
//!
//! A plain tower layer, like [`super::middleware::ObserveLayer`]: reads pass through with
//! no allocation and no extra future.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, Method};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready};
use tokio::task::futures::TaskLocalFuture;

use super::error::ApiError;
use crate::ingress::write_key;

/// The header name.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The layer.
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

/// A read's future, a write's (scoped), or a refusal.
type Future<F> = Either<F, Either<TaskLocalFuture<String, F>, Ready<Result<Response, Infallible>>>>;

impl<S> tower::Service<Request> for WriteKey<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Future<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if !matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            return Either::Left(self.inner.call(req));
        }
        let given = req
            .headers()
            .get(IDEMPOTENCY_KEY)
            .map(|v| v.to_str().unwrap_or("\u{7f}"));
        match write_key::accept(given) {
            Ok(key) => Either::Right(Either::Left(write_key::scope(key, self.inner.call(req)))),
            // Without credentials the request runs on, marked: a route that needs them
            // answers 401 first, a public one is refused at its first write.
            Err(e) if !req.headers().contains_key(AUTHORIZATION) => {
                let key = write_key::refused(&e);
                Either::Right(Either::Left(write_key::scope(key, self.inner.call(req))))
            }
            Err(e) => Either::Right(Either::Right(futures_util::future::ready(Ok(
                ApiError(e).into_response()
            )))),
        }
    }
}
