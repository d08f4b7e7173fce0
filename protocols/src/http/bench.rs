//! `POST /admin/mesh/bench` (admin): a load generator inside the node, for measuring the
//! mesh itself without HTTP in the loop. It runs `calls` `ping` calls from this node to
//! `node` with `concurrency` callers, optionally paced at `rate` calls per second, and
//! reports throughput and latency percentiles. Paced calls are started by a dedicated
//! thread at their scheduled times and timed from then, so queueing delay counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::mesh::{Call, MeshError, Router, Target};
use troupe_actors::system::{ping, PING};

use super::auth::Admin;
use super::json::Json as Body;
use super::{ApiError, AppState};

/// Body of `POST /admin/mesh/bench`.
#[derive(Debug, Deserialize)]
pub struct BenchBody {
    /// Target node (this node when absent).
    pub node: Option<String>,
    /// Number of calls, 1..=2,000,000.
    pub calls: usize,
    /// Concurrent callers, 1..=4096 (default 64).
    pub concurrency: Option<usize>,
    /// Calls per second; unpaced (as fast as possible) when absent.
    pub rate: Option<f64>,
}

fn ping_call(node: &str) -> Call {
    Call::new(PING, ping::OP)
        .to(Target::Node(node.to_string()))
        .timeout(Duration::from_secs(5))
}

/// `concurrency` callers, each sending its next call when the previous one answered.
async fn unpaced(
    router: Router,
    node: String,
    calls: usize,
    concurrency: usize,
    next: Arc<AtomicUsize>,
) -> Result<(Vec<u32>, usize), ApiError> {
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
    Ok((lat, errors))
}

/// Calls started at `rate` per second by a pacer thread (tokio's timer has millisecond
/// granularity, which would start calls in bursts); latency is measured from each call's
/// scheduled start, so queueing behind the previous calls counts.
async fn paced(
    router: Router,
    node: String,
    calls: usize,
    rate: f64,
) -> Result<(Vec<u32>, usize), ApiError> {
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
            handle.spawn(async move {
                let result = router.call(ping_call(&node)).await;
                let _ = tx.send(result.map(|_| at.elapsed().as_micros() as u32));
            });
        }
    });
    let mut lat = Vec::with_capacity(calls);
    let mut errors = 0;
    for _ in 0..calls {
        match rx.recv().await {
            Some(Ok(us)) => lat.push(us),
            Some(Err(_)) => errors += 1,
            None => break,
        }
    }
    Ok((lat, errors))
}

/// Runs the benchmark.
pub async fn run(
    _: Admin,
    State(state): State<AppState>,
    Body(body): Body<BenchBody>,
) -> Result<Json<Value>, ApiError> {
    let concurrency = body.concurrency.unwrap_or(64);
    if !(1..=2_000_000).contains(&body.calls) {
        return Err(MeshError::invalid("calls must be between 1 and 2000000").into());
    }
    if !(1..=4096).contains(&concurrency) {
        return Err(MeshError::invalid("concurrency must be between 1 and 4096").into());
    }
    if body.rate.is_some_and(|r| !(r > 0.0 && r <= 10_000_000.0)) {
        return Err(MeshError::invalid("rate must be positive").into());
    }
    let node = body
        .node
        .unwrap_or_else(|| state.mesh.info().node.to_string());
    let router = state.mesh.router().clone();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (mut lat, errors) = match body.rate {
        Some(rate) => paced(router, node.clone(), body.calls, rate).await?,
        None => unpaced(router, node.clone(), body.calls, concurrency, next).await?,
    };
    let secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    Ok(Json(json!({
        "from": state.mesh.info().node,
        "to": node,
        "calls": body.calls,
        "errors": errors,
        "concurrency": concurrency,
        "rate": body.rate,
        "seconds": secs,
        "calls_per_sec": lat.len() as f64 / secs,
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": lat.last().copied().unwrap_or(0),
    })))
}
