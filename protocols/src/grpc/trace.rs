//! The trace of a gRPC call: the `traceparent` metadata continued (or a fresh trace when it
//! is absent or malformed, never an error), the call served inside it, this node's
//! `traceparent` answered in the response metadata, and the call's span exported when spans
//! are (`troupe_actors::mesh::trace::exporting`). It also counts the call and its latency
//! for the dashboard's history (`troupe_actors::system::history`). The same rules as the
//! HTTP layer (`crate::http::middleware`), applied to every gRPC service at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Request, Response};
use troupe_actors::mesh::trace;

const TRACEPARENT: HeaderName = HeaderName::from_static(trace::HEADER);

/// Runs every call inside its trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for Traced<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
    R: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let t = trace::accept(req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()));
        let exported = trace::exporting().then(|| {
            let method = req.uri().path().trim_start_matches('/').to_string();
            (method, std::time::SystemTime::now())
        });
        let served = self.inner.call(req);
        let started = std::time::Instant::now();
        Box::pin(trace::scope(t, async move {
            let mut resp = served.await?;
            if troupe_actors::system::history::recording() {
                troupe_actors::metrics::GRPC_REQUESTS.increment();
                troupe_actors::metrics::REQUEST_LATENCY.record(started.elapsed());
            }
            if let Some((method, start)) = exported {
                // An error answered at once is a trailers-only response: its `grpc-status`
                // is in these headers. An answer's status travels in the trailers, after
                // this future, and the span ends with the headers (a stream's too).
                let error = resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .filter(|code| *code != "0")
                    .map(|code| format!("grpc-status {code}"));
                trace::finished(trace::Span {
                    trace: t,
                    name: method.clone(),
                    kind: trace::Kind::Server,
                    start,
                    end: std::time::SystemTime::now(),
                    error,
                    attributes: vec![("rpc.system", "grpc".to_string()), ("rpc.method", method)],
                });
            }
            let mut buf = [0u8; trace::LEN];
            if let Ok(v) = HeaderValue::from_str(t.encode_in(&mut buf)) {
                resp.headers_mut().insert(TRACEPARENT, v);
            }
            Ok(resp)
        }))
    }
}
