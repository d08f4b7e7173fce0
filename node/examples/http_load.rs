//! HTTP load driver for benchmarks that need each request sent exactly once (one
//! registration per user) or a burst of clients released together (the coaching race).
//! Wrk runs for a duration and cannot do either; a Python client took a core of the same
//! two the node runs on.
//!
//! ```text
//! http_load each  <port> <connections> <requests.jsonl> [answers.jsonl] > summary.json
//! http_load burst < requests.jsonl > answers.jsonl
//! ```
//! A request line is `{"method", "path" | "url", "body"?, "token"?}`: `body` is sent as
//! JSON, `token` as a bearer token, `path` goes to `127.0.0.1:<port>`.
//!
//! - `each`: `connections` keep-alive connections, each sending one request at a time and
//!   taking the next unsent line, until every line is sent once (never retried; a lost
//!   answer counts as status 0). Prints `{"requests", "connections", "seconds", "per_s",
//!   "latency_ms": {"p50", "p90", "p99", "max"}, "statuses"}`; latency runs from send to
//!   the answer's last byte. `answers.jsonl` gets each `{"status", "body"}` in input order.
//! - `burst`: one client per line, each on its own connection opened first (a
//!   `GET /health`); all released at one instant. Prints `{"i", "status", "ms"}` per line,
//!   in input order, `ms` from the release to the whole answer, so a client's own wait to
//!   be scheduled counts, as it would for a person. Every connection stays open until the
//!   last answer is in, as a browser's would: a client that closed its connection on its
//!   answer would put the teardown of both ends on the cores the clients still waiting
//!   share.
//!
//! `each` runs one OS thread per connection: a thread blocked on its socket costs nothing.
//! `burst` runs its clients as tasks of one thread (hyper's HTTP/1.1 client connections):
//! released as a thousand threads, the clients themselves took 60 % of the two cores the
//! nodes share in the race (`perf record -a`: thread wake-ups, and buffers allocated and
//! faulted in per request), so the latency measured was mostly the load driver's.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A request ready to send.
struct Req {
    method: String,
    url: String,
    token: Option<String>,
    body: String,
}

impl Req {
    fn parse(line: &str, port: Option<u16>) -> Req {
        let v: Value = serde_json::from_str(line).expect("each line is a JSON object");
        let url = match (v["url"].as_str(), v["path"].as_str(), port) {
            (Some(url), _, _) => url.to_string(),
            (None, Some(path), Some(port)) => format!("http://127.0.0.1:{port}{path}"),
            _ => panic!("a line needs a url (or a path and a port): {line}"),
        };
        Req {
            method: v["method"].as_str().unwrap_or("GET").to_string(),
            url,
            token: v["token"].as_str().map(str::to_string),
            body: v
                .get("body")
                .filter(|b| !b.is_null())
                .map(Value::to_string)
                .unwrap_or_default(),
        }
    }

    /// Sends it on `agent`'s connection; answers status (0 when lost) and body.
    fn send(&self, agent: &ureq::Agent) -> (u16, String) {
        let mut req = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url)
            .header("content-type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(self.body.clone()).expect("a well-formed request");
        match agent.run(req) {
            Ok(mut r) => {
                let body = r.body_mut().read_to_string().unwrap_or_default();
                (r.status().as_u16(), body)
            }
            Err(e) => (0, e.to_string()),
        }
    }
}

/// Status (0 when lost), body and milliseconds of one answer.
type Answer = (u16, String, f64);

fn read_lines(from: impl std::io::BufRead, port: Option<u16>) -> Vec<Req> {
    from.lines()
        .map(|l| l.expect("read the requests"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| Req::parse(&l, port))
        .collect()
}

/// The `p`th percentile of sorted `ms`, nearest rank.
fn pct(ms: &[f64], p: f64) -> Value {
    if ms.is_empty() {
        return Value::Null;
    }
    let rank = ((p / 100.0 * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
    json!((ms[rank - 1] * 100.0).round() / 100.0)
}

fn each(port: u16, connections: usize, requests: &str, answers: Option<&str>) {
    let file = std::fs::File::open(requests).expect("open the requests file");
    let reqs = Arc::new(read_lines(std::io::BufReader::new(file), Some(port)));
    let next = Arc::new(AtomicUsize::new(0));
    let out: Arc<Mutex<Vec<Option<Answer>>>> = Arc::new(Mutex::new(vec![None; reqs.len()]));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections.min(reqs.len()))
        .map(|_| {
            let (reqs, next, out) = (reqs.clone(), next.clone(), out.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let agent = agent();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(req) = reqs.get(i) else { return };
                        let t0 = Instant::now();
                        let (status, body) = req.send(&agent);
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        out.lock().expect("answers")[i] = Some((status, body, ms));
                    }
                })
                .expect("spawn a connection thread")
        })
        .collect();
    for t in threads {
        t.join().expect("a connection thread");
    }
    let seconds = started.elapsed().as_secs_f64();
    let out = std::mem::take(&mut *out.lock().expect("answers"));
    let mut statuses = serde_json::Map::new();
    let mut ms: Vec<f64> = Vec::with_capacity(out.len());
    for (status, _, t) in out.iter().flatten() {
        let n = statuses.entry(status.to_string()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
        if *status != 0 {
            ms.push(*t);
        }
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "requests": reqs.len(),
            "connections": connections,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "per_s": (reqs.len() as f64 / seconds * 10.0).round() / 10.0,
            "latency_ms": {"p50": pct(&ms, 50.0), "p90": pct(&ms, 90.0), "p99": pct(&ms, 99.0), "max": pct(&ms, 100.0)},
            "statuses": statuses,
        })
    );
    if let Some(path) = answers {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create answers"));
        for (status, body, _) in out.into_iter().flatten() {
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            writeln!(f, "{}", json!({"status": status, "body": body})).expect("write answers");
        }
    }
}

fn burst() {
    let reqs = read_lines(std::io::stdin().lock(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let answers = rt.block_on(async move {
        // Every client connected first, its connection proven by a `GET /health`.
        let mut clients = Vec::with_capacity(reqs.len());
        for req in &reqs {
            clients.push(connect(req).await);
        }
        // The start instant is taken; every client is released.
        let t0 = Instant::now();
        let racing: Vec<_> = clients
            .into_iter()
            .map(|(mut sender, request)| {
                tokio::spawn(async move {
                    let status = match sender.send_request(request).await {
                        Ok(answer) => {
                            let status = answer.status().as_u16();
                            match answer.into_body().collect().await {
                                Ok(_) => status,
                                Err(_) => 0,
                            }
                        }
                        Err(_) => 0,
                    };
                    // Kept open until every client has its answer (see the crate doc).
                    (status, t0.elapsed().as_secs_f64() * 1000.0, sender)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(racing.len());
        let mut open = Vec::with_capacity(racing.len());
        for r in racing {
            let (status, ms, sender) = r.await.expect("a client task");
            answers.push((status, ms));
            open.push(sender);
        }
        drop(open);
        answers
    });
    let mut out = std::io::stdout().lock();
    for (i, (status, ms)) in answers.into_iter().enumerate() {
        writeln!(out, "{}", json!({"i": i, "status": status, "ms": ms})).expect("write stdout");
    }
}

/// A client of `req`'s origin: its own HTTP/1.1 connection, opened and used once (a
/// `GET /health`), and `req` built, ready to send.
async fn connect(
    req: &Req,
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    hyper::Request<Full<Bytes>>,
) {
    let uri: hyper::Uri = req.url.parse().expect("a request url");
    let authority = uri.authority().expect("an absolute url").clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .expect("connect a client");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(conn);
    let health = hyper::Request::get("/health")
        .header("host", authority.as_str())
        .body(Full::default())
        .expect("a health request");
    let answer = sender.send_request(health).await.expect("GET /health");
    answer
        .into_body()
        .collect()
        .await
        .expect("the health answer");
    let mut request = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", authority.as_str())
        .header("content-type", "application/json");
    if let Some(t) = &req.token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request
        .body(Full::new(Bytes::from(req.body.clone())))
        .expect("a well-formed request");
    (sender, request)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: http_load each <port> <connections> <requests.jsonl> [answers.jsonl] | http_load burst < requests.jsonl";
    match args.get(1).map(String::as_str) {
        Some("each") if args.len() >= 5 => each(
            args[2].parse().expect(usage),
            args[3].parse().expect(usage),
            &args[4],
            args.get(5).map(String::as_str),
        ),
        Some("burst") => burst(),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
