//! `POST /admin/mesh/bench` (admin): a load generator inside the node, for measuring the
//! mesh itself without HTTP in the loop. It runs `calls` `ping` calls from this node to
//! `node` with `concurrency` callers, optionally paced at `rate` calls per second, and
//! reports throughput and latency percentiles. Paced calls are started by a dedicated
//! thread at their scheduled times and timed from then, so queueing delay counts; they are
//! also timed from the moment the thread actually started them, which leaves out how late
//! the pacer thread itself woke (a sleeping thread can wake milliseconds late on a busy or
//! virtual machine, see `node/examples/wake_latency.rs`), and the report gives both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use troupe_actors::mesh::heartbeat::PING;
use troupe_actors::mesh::{Call, MeshError, Router, Target};
use troupe_proto::mesh::PingReply;
use utoipa::ToSchema;

use super::auth::Admin;
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::{ApiError, AppState};

/// Body of `POST /admin/mesh/bench`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = MeshBenchBody)]
pub struct BenchBody {
    /// Target node (this node when absent).
    pub node: Option<String>,
    /// Number of calls, 1..=2,000,000.
    #[schema(minimum = 1, maximum = 2_000_000)]
    pub calls: usize,
    /// Concurrent callers, 1..=4096 (default 64).
    #[schema(minimum = 1, maximum = 4096)]
    pub concurrency: Option<usize>,
    /// Calls per second, 1 to 10,000,000; unpaced (as fast as possible) when absent.
    /// Paced calls do not wait for one another, so `concurrency` does not apply.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub rate: Option<f64>,
}

/// Answer of `POST /admin/mesh/bench`: throughput, and latency percentiles of the calls that
/// succeeded, from each call's scheduled start.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeshBenchReport {
    /// The node that called.
    pub from: String,
    /// The node called.
    pub to: String,
    /// Calls asked for.
    pub calls: usize,
    /// Calls that failed.
    pub errors: usize,
    /// Concurrent callers (used by unpaced runs only).
    pub concurrency: usize,
    /// Calls per second asked for; `null` when unpaced.
    pub rate: Option<f64>,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Successful calls per second.
    pub calls_per_sec: f64,
    /// Latency from each call's scheduled start.
    #[serde(flatten)]
    pub latency: MeshBenchLatency,
    /// Paced runs only: latency from the moment the call was actually started, which
    /// leaves out how late the pacer thread woke.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = MeshBenchLatency)]
    pub from_send: Option<MeshBenchLatency>,
}

/// Latency percentiles of the calls that succeeded, microseconds (0 when none did).
#[derive(Debug, Serialize, ToSchema)]
pub struct MeshBenchLatency {
    /// Median.
    pub p50_us: u32,
    /// 90th percentile.
    pub p90_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// 99.9th percentile.
    pub p999_us: u32,
    /// Maximum.
    pub max_us: u32,
}

fn ping_call(node: &str) -> Call<PingReply> {
    PING.call(())
        .to(Target::Node(node.to_string()))
        .timeout(Duration::from_secs(5))
}

/// Latencies of the calls that succeeded (microseconds), and the count that failed.
struct Timings {
    /// From each call's scheduled start.
    scheduled: Vec<u32>,
    /// From the moment the call was actually started; paced runs only (unpaced calls start
    /// when they are scheduled).
    sent: Option<Vec<u32>>,
    errors: usize,
}

/// `concurrency` callers, each sending its next call when the previous one answered.
async fn unpaced(
    router: Router,
    node: String,
    calls: usize,
    concurrency: usize,
    next: Arc<AtomicUsize>,
) -> Result<Timings, ApiError> {
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (router, next, node) = (router.clone(), next.clone(), node.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let t0 = Instant::now();
                    match router.call(ping_call(&node)).await {
                        Ok(_) => lat.push(t0.elapsed().as_micros() as u32),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat: Vec<u32> = Vec::with_capacity(calls);
    let mut errors = 0;
    for w in workers {
        let (l, e) = w
            .await
            .map_err(|e| MeshError::internal(format!("bench task failed: {e}")))?;
        lat.extend(l);
        errors += e;
    }
    Ok(Timings {
        scheduled: lat,
        sent: None,
        errors,
    })
}

/// Calls started at `rate` per second by a pacer thread (tokio's timer has millisecond
/// granularity, which would start calls in bursts); latency is measured from each call's
/// scheduled start, so queueing behind the previous calls counts.
async fn paced(router: Router, node: String, calls: usize, rate: f64) -> Result<Timings, ApiError> {
    let handle = tokio::runtime::Handle::current();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let interval = Duration::from_secs_f64(1.0 / rate);
    std::thread::spawn(move || {
        let started = Instant::now();
        for i in 0..calls {
            let at = started + interval.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let (router, node, tx) = (router.clone(), node.clone(), tx.clone());
            let sent = Instant::now();
            handle.spawn(async move {
                let result = router.call(ping_call(&node)).await;
                let _ = tx.send(result.map(|_| {
                    let us = |t: Instant| t.elapsed().as_micros() as u32;
                    (us(at), us(sent))
                }));
            });
        }
    });
    let mut scheduled = Vec::with_capacity(calls);
    let mut sent = Vec::with_capacity(calls);
    let mut errors = 0;
    for _ in 0..calls {
        match rx.recv().await {
            Some(Ok((from_schedule, from_send))) => {
                scheduled.push(from_schedule);
                sent.push(from_send);
            }
            Some(Err(_)) => errors += 1,
            None => break,
        }
    }
    Ok(Timings {
        scheduled,
        sent: Some(sent),
        errors,
    })
}

/// Runs the benchmark.
#[utoipa::path(
    post,
    path = "/admin/mesh/bench",
    tag = "admin",
    security(("admin" = [])),
    request_body = BenchBody,
    responses(
        (status = 200, description = "Throughput and latency of the run", body = MeshBenchReport),
        (status = 400, description = "`calls`, `concurrency` or `rate` out of range, or a malformed body", body = ErrorBody),
    )
)]
pub async fn run(
    _: Admin,
    State(state): State<AppState>,
    Body(body): Body<BenchBody>,
) -> Result<Json<MeshBenchReport>, ApiError> {
    let concurrency = body.concurrency.unwrap_or(64);
    if !(1..=2_000_000).contains(&body.calls) {
        return Err(MeshError::invalid("calls must be between 1 and 2000000").into());
    }
    if !(1..=4096).contains(&concurrency) {
        return Err(MeshError::invalid("concurrency must be between 1 and 4096").into());
    }
    if body
        .rate
        .is_some_and(|r| !(1.0..=10_000_000.0).contains(&r))
    {
        return Err(MeshError::invalid("rate must be between 1 and 10000000").into());
    }
    let node = body
        .node
        .unwrap_or_else(|| state.mesh.info().node.to_string());
    let router = state.mesh.router().clone();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let Timings {
        scheduled,
        sent,
        errors,
    } = match body.rate {
        Some(rate) => paced(router, node.clone(), body.calls, rate).await?,
        None => unpaced(router, node.clone(), body.calls, concurrency, next).await?,
    };
    let secs = started.elapsed().as_secs_f64();
    Ok(Json(MeshBenchReport {
        from: state.mesh.info().node.to_string(),
        to: node,
        calls: body.calls,
        errors,
        concurrency,
        rate: body.rate,
        seconds: secs,
        calls_per_sec: scheduled.len() as f64 / secs,
        latency: percentiles(scheduled),
        from_send: sent.map(percentiles),
    }))
}

/// The p50, p90, p99, p99.9 and maximum of latencies in microseconds (0 when there are
/// none).
fn percentiles(mut lat: Vec<u32>) -> MeshBenchLatency {
    lat.sort_unstable();
    let at = |p: f64| {
        let i = (lat.len().saturating_sub(1) as f64 * p).round() as usize;
        lat.get(i).copied().unwrap_or(0)
    };
    MeshBenchLatency {
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        p999_us: at(0.999),
        max_us: lat.last().copied().unwrap_or(0),
    }
}
