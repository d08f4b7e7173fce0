//! WebSocket and chat benchmark driver (see `scripts/bench_ws.sh` and `docs/bench-ws.md`).
//!
//! ```text
//! ws_bench idle      <http-url> <count> <node-pid>        # RSS per idle connection
//! ws_bench latency   <send-url> <recv-url> <rate> <secs>  # POST /messages/send -> frame
//! ws_bench listen    <url,url,..> <count> <secs> <tag>    # hold connections, time broadcasts
//! ws_bench broadcast <http-url> <admin-token> <repeats> <interval-ms>
//! ```
//! Users are registered (or reused) and logged in through the HTTP API; the node must allow
//! many logins per minute from one address (the script's config does).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The node's allocator here too: with glibc's, malloc was a fifth of a listener's time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const PASSWORD: &str = "bench-passw0rd-ws";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = agent.post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    match req.send(body.to_string().as_bytes()) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(e) => panic!("POST {url}: {e}"),
    }
}

/// A logged-in user: id and access token.
#[derive(Clone, Debug)]
struct User {
    id: String,
    token: String,
}

/// POST, retried for a while when the node answers 5xx (busy after a previous phase).
fn post_patiently(a: &ureq::Agent, url: &str, body: &Value) -> (u16, Value) {
    for _ in 0..30 {
        let (status, v) = post(a, url, body, None);
        if status < 500 {
            return (status, v);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    post(a, url, body, None)
}

/// Registers `name` unless it exists, then logs in.
fn user(base: &str, name: &str) -> User {
    let a = agent();
    let (status, v) = post_patiently(
        &a,
        &format!("{base}/auth/register"),
        &json!({"username": name, "email": format!("{name}@bench.local"), "password": PASSWORD}),
    );
    assert!(
        status == 201 || status == 409,
        "register {name}: {status} {v}"
    );
    let (status, v) = post_patiently(
        &a,
        &format!("{base}/auth/login"),
        &json!({"username": name, "password": PASSWORD}),
    );
    assert_eq!(status, 200, "login {name}: {v}");
    User {
        id: v["user"]["id"].as_str().expect("user id").to_string(),
        token: v["access_token"].as_str().expect("token").to_string(),
    }
}

fn users(base: &str, prefix: &str, n: usize) -> Vec<User> {
    (0..n)
        .map(|i| user(base, &format!("{prefix}{i}")))
        .collect()
}

fn ws_url(base: &str, u: &User) -> String {
    format!(
        "{}/ws/{}?token={}",
        base.replacen("http://", "ws://", 1),
        u.id,
        u.token
    )
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("node status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Text frames as they arrive: the receipt time (microseconds since the epoch, taken in the
/// connection's task, so the aggregator's own queue does not count) and the raw text.
type Frames = tokio::sync::mpsc::UnboundedSender<(u128, Utf8Bytes)>;

/// The fields of a server frame the drivers read, borrowed from the text (no `Value` tree
/// per frame: with 20,000 connections the listeners share the cores with the nodes).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    ciphertext: Option<Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Opens `count` connections spread over `bases` and `users`; every text frame goes to
/// `frames_tx` (when given). Returns once all are open.
async fn open(bases: &[String], users: &[User], count: usize, frames_tx: Option<Frames>) -> usize {
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let mut joins = Vec::new();
    for i in 0..count {
        let url = ws_url(&bases[i % bases.len()], &users[i % users.len()]);
        let (opened, failed, limit, tx) = (
            opened.clone(),
            failed.clone(),
            limit.clone(),
            frames_tx.clone(),
        );
        joins.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await.unwrap();
            // tungstenite's default 128 KiB read buffer is zeroed on every read; with
            // 10,000 connections per process that memset was 30 % of the listener's time
            // and made the client, not the server, the bottleneck of a broadcast.
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let ws =
                match tokio_tungstenite::connect_async_with_config(url, Some(config), true).await {
                    Ok((ws, _)) => ws,
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("connect failed: {e}");
                        }
                        return;
                    }
                };
            drop(permit);
            opened.fetch_add(1, Ordering::Relaxed);
            // One task reads the whole socket (no split and its lock per frame);
            // tungstenite queues the pong to a ping and sends it on the next read.
            let mut ws = ws;
            while let Some(Ok(m)) = ws.next().await {
                match m {
                    Message::Text(t) => {
                        if let Some(tx) = &tx {
                            let _ = tx.send((now_us(), t));
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        }));
    }
    let started = Instant::now();
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let n = opened.load(Ordering::Relaxed);
    eprintln!(
        "opened {n} of {count} connections in {:.1}s ({} failed)",
        started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    std::mem::forget(joins);
    n
}

async fn idle(base: String, count: usize, pid: String) {
    let users = tokio::task::spawn_blocking(move || {
        let u = users(&base, "idle", 20);
        (base, u)
    })
    .await
    .unwrap();
    let (base, users) = users;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(&pid);
    let n = open(&[base], &users, count, None).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(&pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n.max(1) as f64;
    println!(
        "idle: connections={n} rss_before_kib={before} rss_after_kib={after} bytes_per_connection={per:.0}"
    );
}

async fn latency(send: String, recv: String, rate: u64, secs: u64) {
    let (alice, bob) = {
        let (send, recv) = (send.clone(), recv.clone());
        tokio::task::spawn_blocking(move || {
            let tag = now_us() % 1_000_000_000;
            let alice = user(&send, &format!("lat_a{tag}"));
            let bob = user(&recv, &format!("lat_b{tag}"));
            let a = agent();
            let (s, v) = post(
                &a,
                &format!("{send}/chat-requests/send"),
                &json!({"to_user_id": bob.id}),
                Some(&alice.token),
            );
            assert_eq!(s, 201, "{v}");
            let id = v["id"].as_str().unwrap().to_string();
            let (s, v) = post(
                &a,
                &format!("{recv}/chat-requests/{id}/accept"),
                &json!({}),
                Some(&bob.token),
            );
            assert_eq!(s, 200, "{v}");
            (alice, bob)
        })
        .await
        .unwrap()
    };
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::unbounded_channel();
    open(
        std::slice::from_ref(&recv),
        std::slice::from_ref(&bob),
        1,
        Some(frames_tx),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = rate * secs;
    let start = Instant::now() + Duration::from_millis(200);
    let start_us = now_us() + 200_000;
    let next = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let (next, acks, send, alice, bob) =
                (next.clone(), acks.clone(), send.clone(), alice.clone(), bob.clone());
            std::thread::spawn(move || {
                let a = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as u64;
                    if i >= total {
                        return;
                    }
                    let at = start + Duration::from_micros(i * 1_000_000 / rate);
                    if let Some(wait) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let scheduled_us = start_us + (i * 1_000_000 / rate) as u128;
                    let body = json!({"recipient_id": bob.id, "ciphertext": format!("{i} {scheduled_us}")});
                    let t = Instant::now();
                    let (s, _) = post(&a, &format!("{send}/messages/send"), &body, Some(&alice.token));
                    let ack = t.elapsed().as_secs_f64() * 1000.0;
                    acks.lock().unwrap().push((s, ack));
                }
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(total as usize);
    // With LAT_DUMP=<file>: one "<message index> <send to delivery ms>" line per message.
    let mut dump =
        std::env::var_os("LAT_DUMP").map(|p| std::fs::File::create(p).expect("LAT_DUMP"));
    let deadline = Instant::now() + Duration::from_secs(secs + 10);
    while (lat.len() as u64) < total && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), frames_rx.recv()).await {
            Ok(Some((got, raw))) => {
                let Some(frame) = Frame::parse(raw.as_str()).filter(|f| f.kind == "message") else {
                    continue;
                };
                let text = frame.ciphertext.as_deref().unwrap_or_default();
                let mut fields = text.split(' ');
                let index = fields.next().unwrap_or_default();
                if let Some(sched) = fields.next().and_then(|s| s.parse::<u128>().ok()) {
                    let ms = got.saturating_sub(sched) as f64 / 1000.0;
                    if let Some(f) = dump.as_mut() {
                        use std::io::Write as _;
                        let _ = writeln!(f, "{index} {ms:.3}");
                    }
                    lat.push(ms);
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let acks = acks.lock().unwrap();
    let ok = acks.iter().filter(|(s, _)| *s == 201).count();
    let mut ack_ms: Vec<f64> = acks.iter().map(|(_, ms)| *ms).collect();
    ack_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency: rate={rate}/s secs={secs} sent={} acked_201={ok} delivered={} \
         send_to_delivery_ms p50={:.2} p99={:.2} max={:.2} http_ack_ms p50={:.2} p99={:.2}",
        acks.len(),
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        percentile(&ack_ms, 0.5),
        percentile(&ack_ms, 0.99),
    );
}

async fn listen(bases: Vec<String>, count: usize, secs: u64, tag: String) {
    let first = bases[0].clone();
    let users = tokio::task::spawn_blocking(move || users(&first, &format!("bc{tag}_"), 20))
        .await
        .unwrap();
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::unbounded_channel();
    let n = open(&bases, &users, count, Some(frames_tx)).await;
    println!("listening {n}");
    // seq -> (count, max latency us)
    let mut seen: HashMap<u64, (usize, u128)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = tokio::select! {
            v = frames_rx.recv() => v,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some((got, raw)) = v else { break };
        let Some(frame) = Frame::parse(raw.as_str()).filter(|f| f.kind == "broadcast") else {
            continue;
        };
        let msg = frame.message.as_deref().unwrap_or_default();
        let mut parts = msg.split(' ').skip(1);
        let (Some(seq), Some(sent)) = (
            parts.next().and_then(|s| s.parse::<u64>().ok()),
            parts.next().and_then(|s| s.parse::<u128>().ok()),
        ) else {
            continue;
        };
        let e = seen.entry(seq).or_default();
        e.0 += 1;
        e.1 = e.1.max(got.saturating_sub(sent));
    }
    let mut seqs: Vec<_> = seen.into_iter().collect();
    seqs.sort();
    for (seq, (c, max)) in seqs {
        println!("bcast {seq} {max} {c}");
    }
}

fn broadcast(base: String, token: String, repeats: u64, interval_ms: u64) {
    let a = agent();
    for seq in 0..repeats {
        let msg = format!("bench {seq} {}", now_us());
        let (s, v) = post(
            &a,
            &format!("{base}/broadcast"),
            &json!({"message": msg}),
            Some(&token),
        );
        eprintln!("broadcast {seq}: {s} delivered={}", v["delivered"]);
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| panic!("missing argument {i}; see the doc comment"))
    };
    // One thread per driver process: the listeners run as two processes beside three nodes
    // on two cores, and a second worker thread per process only added cross-thread wake-ups.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match arg(0).as_str() {
        "idle" => rt.block_on(idle(arg(1), arg(2).parse().unwrap(), arg(3))),
        "latency" => rt.block_on(latency(
            arg(1),
            arg(2),
            arg(3).parse().unwrap(),
            arg(4).parse().unwrap(),
        )),
        "listen" => rt.block_on(listen(
            arg(1).split(',').map(String::from).collect(),
            arg(2).parse().unwrap(),
            arg(3).parse().unwrap(),
            arg(4),
        )),
        "broadcast" => broadcast(
            arg(1),
            arg(2),
            arg(3).parse().unwrap(),
            arg(4).parse().unwrap(),
        ),
        other => panic!("unknown mode {other}"),
    }
}
