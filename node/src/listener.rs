//! The HTTP listener: hyper's HTTP/1.1 connections under an accept loop of the node's own,
//! because `axum::serve` sets no header-read timeout and takes any number of connections.
//!
//! - **Header-read timeout** (`[http] header_read_timeout_ms`): a client must send a whole
//!   request head within it, or the connection is closed. Hyper starts the clock whenever a
//!   connection waits for a head, so it also closes a keep-alive connection left idle that
//!   long. A slow-header client (slowloris) holds a connection for at most this long.
//! - **Connection cap** (`[http] max_connections`): past it, a new connection is closed as
//!   soon as it is accepted (counted in `troupe_http_connections_refused_total`), so the
//!   node's memory and file descriptors stay bounded; the ones already open are served. A
//!   connection upgraded to a WebSocket leaves the count (the hub bounds those).
//! - **Graceful shutdown**: on the shutdown signal the loop stops accepting and every open
//!   connection finishes its request in flight, then closes (the caller bounds the wait).
//!
//! Request bodies are bounded in time by `[http] body_timeout_ms` (tower-http's
//! `RequestBodyTimeoutLayer`, in `troupe_protocols::http::router`) and in size by
//! `max_body_bytes`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Connections closed at once because the node had `max_connections` open.
pub const REFUSED: &str = "troupe_http_connections_refused_total";
/// HTTP connections open (not counting those upgraded to WebSockets).
pub const OPEN: &str = "troupe_http_connections_open";

/// Limits of the HTTP listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest a client may take to send a request head (and longest a keep-alive
    /// connection may wait idle).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the open connections
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Reaps the tasks of connections that ended.
        while conns.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, not a busy loop.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!(REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        metrics::gauge!(OPEN).increment(1.0);
        conns.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = async {
                    let _ = stop.wait_for(|s| *s).await;
                } => {
                    // Finish the request in flight, take no other.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
            }
            metrics::gauge!(OPEN).decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
}
