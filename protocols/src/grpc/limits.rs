//! The gRPC listener's own limits, beside tonic's deadline, concurrency and stream limits:
//!
//! - **Calls per client address** ([`RateLimitLayer`]): every call (the API, health and
//!   reflection alike) is counted by the cluster-wide limiter under `grpc-ip/<address>`
//!   (`[limits] grpc_calls_per_ip_per_minute`); past it the call is answered
//!   `RESOURCE_EXHAUSTED` without reaching a handler. The address is the connection's peer,
//!   or the `x-forwarded-for` client when the peer is a trusted proxy (`[http]
//!   trusted_proxies`), as over HTTP.
//! - **Connections at once** ([`capped`]): past `[grpc] max_connections`, a new connection
//!   is closed as soon as it is accepted (counted in `troupe_grpc_connections_refused_total`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::transport::server::{Connected, TcpConnectInfo};
use troupe_actors::auth::limits::Class;

use super::State;

/// Connections closed at once because the node had `[grpc] max_connections` open.
pub const REFUSED: &str = "troupe_grpc_connections_refused_total";

/// Counts every call against `grpc_calls_per_ip_per_minute`.
#[derive(Clone)]
pub struct RateLimitLayer {
    state: State,
}

impl RateLimitLayer {
    /// The layer over the node's gRPC state.
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] makes.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    state: State,
}

impl<S> tower::Service<Request<Body>> for RateLimit<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was made ready answers this call (tower's readiness contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            if let Some(peer) = req
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
            {
                let forwarded = req
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                let ip = state.client_ip(peer.ip(), forwarded).to_string();
                let rid = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok());
                let rid = crate::ingress::request_id::accept(rid);
                if let Err(e) = state.limit(Class::Grpc, &ip, &rid).await {
                    return Ok(super::error::status(e).into_http());
                }
            }
            inner.call(req).await
        })
    }
}

/// A TCP connection holding one of the listener's connection permits until it closes.
pub struct Capped {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Capped {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The connections `listener` accepts, at most `max` open at once: past it, a new one is
/// closed at once. Ends when the listener fails for good (never, in practice).
pub fn capped(
    listener: TcpListener,
    max: usize,
) -> impl Stream<Item = Result<Capped, io::Error>> + Send + 'static {
    let permits = Arc::new(Semaphore::new(max));
    futures_util::stream::unfold((listener, permits), |(listener, permits)| async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not a busy loop.
                    tracing::warn!(error = %e, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                metrics::counter!(REFUSED).increment(1);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn = Capped {
                stream,
                _permit: permit,
            };
            return Some((Ok(conn), (listener, permits)));
        }
    })
}
