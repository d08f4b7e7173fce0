//! The cross-cutting layer: `x-request-id`, `traceparent`, request metrics, and JSON error bodies for every
//! failure (including the router's own 404/405 and the body limit's 413) but those of the
//! SOAP routes, which are Faults already (see `crate::soap::router`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use troupe_actors::mesh::trace::{self, Trace};
use troupe_actors::mesh::MeshError;
use troupe_actors::metrics::{record, HandleMap, LabelMap};

use super::error::{body, from_status, Final};
use super::request_id::{new_id, REQUEST_ID, TRACEPARENT};

thread_local! {
    /// Per route (looked up by `&str`, so no key is allocated), then per method and status.
    static HTTP_METRICS: std::cell::RefCell<
        LabelMap<String, HandleMap<(&'static str, &'static str)>>,
    > = Default::default();
}

/// The one cross-cutting layer. It gives every request an `x-request-id` (the client's, or
/// a new UUID) and echoes it on the reply, runs it inside its trace (the client's valid
/// `traceparent` continued, or a fresh one: [`trace::accept`]) and answers this node's
/// `traceparent`, records request metrics by route, method and
/// status, and gives every error response the JSON form of the API contract, with the
/// request id, unless it is [`Final`] (a SOAP Fault).
///
/// A plain tower layer rather than `axum::middleware::from_fn`, which clones and boxes the
/// inner service and boxes its future on every request; and one layer rather than
/// tower-http's pair of request-id layers in front of it, which would clone the id into
/// the request's extensions and the reply's, and add two more futures to every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Observed<tokio::task::futures::TaskLocalFuture<Trace, S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let rid = match req.headers().get(REQUEST_ID) {
            Some(rid) => rid.clone(),
            None => {
                let rid = new_id();
                req.headers_mut().insert(REQUEST_ID, rid.clone());
                rid
            }
        };
        let trace = trace::accept(req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()));
        let seen = Seen {
            started: Instant::now(),
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
            rid,
            trace,
            wall: trace::exporting().then(SystemTime::now),
        };
        Observed {
            inner: trace::scope(trace, self.inner.call(req)),
            seen: Some(seen),
        }
    }
}

/// What [`Observe`] notes of a request before running it.
struct Seen {
    started: Instant,
    route: Option<MatchedPath>,
    method: &'static str,
    rid: HeaderValue,
    trace: Trace,
    /// When it started, only when spans are exported ([`trace::exporting`]).
    wall: Option<SystemTime>,
}

pin_project_lite::pin_project! {
    /// The future of [`Observe`]: the inner response, then [`finish`].
    pub struct Observed<F> {
        #[pin]
        inner: F,
        seen: Option<Seen>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Observed<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(resp) = ready!(this.inner.poll(cx));
        let seen = this.seen.take().expect("Observed polled after completion");
        Poll::Ready(Ok(finish(resp, seen)))
    }
}

/// Records the metrics of a finished request, echoes its id (unless the handler set one)
/// and turns an error response into JSON.
fn finish(mut resp: Response, seen: Seen) -> Response {
    let Seen {
        started,
        route,
        method,
        rid,
        trace,
        wall,
    } = seen;
    let status = resp.status();
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    let status_label = status_label(status);
    if let Some(start) = wall {
        trace::finished(trace::Span {
            trace,
            name: format!("{method} {route}"),
            kind: trace::Kind::Server,
            start,
            end: SystemTime::now(),
            error: status.is_server_error().then(|| status.to_string()),
            attributes: vec![("http.response.status_code", status_label.to_string())],
        });
    }
    let elapsed = started.elapsed();
    let seconds = elapsed.as_secs_f64();
    troupe_actors::metrics::HTTP_REQUESTS.increment();
    if troupe_actors::system::history::recording() {
        troupe_actors::metrics::REQUEST_LATENCY.record(elapsed);
    }
    HTTP_METRICS.with_borrow_mut(|routes| {
        let per_route = match routes.get_mut(route) {
            Some(m) => m,
            None => routes.entry(route.to_string()).or_default(),
        };
        record(per_route, (method, status_label), seconds, || {
            let route = route.to_string();
            (
                metrics::counter!(crate::http::metrics::REQUESTS, "protocol" => "http", "route" => route.clone(), "method" => method, "status" => status_label),
                metrics::histogram!(crate::http::metrics::REQUEST_SECONDS, "protocol" => "http", "route" => route, "method" => method),
            )
        });
    });
    let mut buf = [0u8; trace::LEN];
    let traceparent = HeaderValue::from_str(trace.encode_in(&mut buf))
        .expect("a traceparent is a valid header value");
    resp.headers_mut().insert(TRACEPARENT, traceparent);
    if !(status.is_client_error() || status.is_server_error()) {
        resp.headers_mut().entry(REQUEST_ID).or_insert(rid);
        return resp;
    }
    resp.headers_mut()
        .entry(REQUEST_ID)
        .or_insert_with(|| rid.clone());
    // Already in its protocol's error form: the SOAP routes answer every error as a Fault.
    if resp.extensions().get::<Final>().is_some() {
        return resp;
    }
    let rid = rid.to_str().unwrap_or_default();
    let error = match resp.extensions().get::<MeshError>() {
        Some(e) => e.clone(),
        None if is_json(&resp) => return resp,
        None => from_status(status),
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let (fresh_parts, fresh_body) = Json(body(&error, rid)).into_response().into_parts();
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, Body::new(fresh_body))
}

/// The method as a static label (no allocation on the hot path).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The status as a static label: `axum::http::StatusCode::as_str` borrows from a static table.
fn status_label(s: axum::http::StatusCode) -> &'static str {
    match s.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
