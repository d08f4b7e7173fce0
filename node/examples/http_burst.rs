//! Burst driver: many clients, each on its own open keep-alive connection, send one request
//! each at the same instant, and the latency of every answer is printed (used by
//! `scripts/bench_bookings.sh` for the coaching race).
//!
//! ```text
//! http_burst < requests.jsonl > answers.jsonl
//! ```
//! Each input line is one client: `{"url": "http://127.0.0.1:8080/coaching/bookings",
//! "method": "POST", "token": "...", "body": {...}}` (`token` and `body` optional). Every
//! client first opens its connection (a `GET /health` on the same node), then all wait at a
//! barrier and send together. Each output line is `{"i": <line>, "status": <u16>, "ms":
//! <f64>}`, in input order, where `ms` runs from the common release instant to the whole
//! answer read: the client's own wait to be scheduled counts, as it would for a person.
//!
//! One OS thread per client (small stacks): a thread blocked on its socket costs nothing,
//! and unlike an interpreter's threads none of them waits for a lock to read its answer.

use std::io::{BufRead as _, Write as _};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The origin (`scheme://host:port`) of `url`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn main() {
    let lines: Vec<Value> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| l.expect("read stdin"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(&l).expect("each line is a JSON object"))
        .collect();
    let n = lines.len();
    // Everyone connected; then everyone released (the start instant is taken between).
    let connected = Arc::new(Barrier::new(n + 1));
    let release = Arc::new(Barrier::new(n + 1));
    let start: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let handles: Vec<_> = lines
        .into_iter()
        .map(|line| {
            let connected = connected.clone();
            let release = release.clone();
            let start = start.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let url = line["url"].as_str().expect("url").to_string();
                    let method = line["method"].as_str().unwrap_or("GET").to_string();
                    let a = agent();
                    // Opens (and keeps) the connection before the race.
                    let warm = a.get(&format!("{}/health", origin(&url))).call();
                    if let Ok(mut r) = warm {
                        let _ = r.body_mut().read_to_string();
                    }
                    let body = line.get("body").map(Value::to_string);
                    let mut req = ureq::http::Request::builder()
                        .method(method.as_str())
                        .uri(&url)
                        .header("content-type", "application/json");
                    if let Some(t) = line["token"].as_str() {
                        req = req.header("authorization", format!("Bearer {t}"));
                    }
                    let req = req
                        .body(body.unwrap_or_default())
                        .expect("a well-formed request");
                    connected.wait();
                    release.wait();
                    let t0 = *start.get().expect("set before the barrier opens");
                    let status = match a.run(req) {
                        Ok(mut r) => {
                            let _ = r.body_mut().read_to_string();
                            r.status().as_u16()
                        }
                        Err(_) => 0,
                    };
                    (status, t0.elapsed().as_secs_f64() * 1000.0)
                })
                .expect("spawn a client thread")
        })
        .collect();
    connected.wait();
    start.set(Instant::now()).expect("set once");
    release.wait();
    let mut out = std::io::stdout().lock();
    for (i, h) in handles.into_iter().enumerate() {
        let (status, ms) = h.join().expect("a client thread");
        writeln!(out, "{}", json!({"i": i, "status": status, "ms": ms})).expect("write stdout");
    }
}
