//! Issue 23's rate limits, per-user quotas and the trusted-proxy setting, black-box and
//! written as the attack: real node processes, clients connecting from distinct loopback
//! addresses (127.0.0.0/8 is all loopback on Linux), every limit tried across the three
//! nodes together, and each refusal checked in its protocol's own form.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::stream::MaybeTlsStream;

/// The proxy the nodes of [`limits_cluster`] trust.
const PROXY: &str = "127.0.0.2";

/// Three nodes with small limits and quotas (env wins over the generated file), trusting
/// [`PROXY`] only.
fn limits_cluster(tag: &str) -> Cluster {
    let env = [
        ("TROUPE_LIMITS_REGISTER_PER_IP_PER_MINUTE", "3"),
        ("TROUPE_LIMITS_REFRESH_PER_IP_PER_MINUTE", "3"),
        ("TROUPE_LIMITS_SEARCH_PER_USER_PER_MINUTE", "3"),
        ("TROUPE_LIMITS_WS_UPGRADES_PER_IP_PER_MINUTE", "3"),
        ("TROUPE_LIMITS_CODES_PER_IP_PER_MINUTE", "3"),
        ("TROUPE_LIMITS_GRPC_CALLS_PER_IP_PER_MINUTE", "5"),
        ("TROUPE_QUOTAS_CHAT_REQUESTS_PER_USER_PER_MINUTE", "4"),
        ("TROUPE_QUOTAS_PENDING_CHAT_REQUESTS_PER_USER", "2"),
        ("TROUPE_QUOTAS_WS_CONNECTIONS_PER_USER", "2"),
        ("TROUPE_QUOTAS_TASKS_ACTIVE_PER_USER", "2"),
        ("TROUPE_HTTP_TRUSTED_PROXIES", PROXY),
    ];
    Cluster::start(
        tag,
        Options {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        },
    )
}

/// A TCP connection to `to` from local address `from` (any 127.x.y.z).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind");
        let stream = socket.connect(to).await.expect("connect");
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
    })
}

/// An HTTP answer read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request from local address `from`, with extra headers and a body.
fn http_from(
    from: &str,
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = connect_from(from, node.addrs.http);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        node.addrs.http,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The body of a chunked transfer.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

/// `POST path` with a JSON body from `from`.
fn post_from(from: &str, node: &Node, path: &str, extra: &[(&str, &str)], body: &Value) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(extra);
    http_from(from, node, "POST", path, &headers, &body.to_string())
}

/// A register body for a new unique user.
fn new_account(prefix: &str) -> Value {
    let name = format!("{prefix}_{}", unique());
    json!({"username": name, "email": format!("{name}@example.com"), "password": "passw0rd-long"})
}

/// A user registered from its own loopback address `from` (so the register limit of the
/// test's main address is not spent) and logged in on `node`.
fn user_from(from: &str, node: &Node, prefix: &str) -> User {
    let account = new_account(prefix);
    let r = post_from(from, node, "/auth/register", &[], &account);
    assert_eq!(r.status, 201, "{r:?}");
    let username = account["username"].as_str().unwrap().to_string();
    let (status, v) = login(node, &username, "passw0rd-long");
    assert_eq!(status, 200, "{v}");
    User {
        id: r.json()["id"].as_str().unwrap().to_string(),
        username,
        password: "passw0rd-long".into(),
        access: v["access_token"].as_str().unwrap().to_string(),
        refresh: v["refresh_token"].as_str().unwrap().to_string(),
        session: v["session_id"].as_str().unwrap().to_string(),
    }
}

/// A refusal by a limit over HTTP: 429, a `Retry-After` of 1 to 60 seconds, and the API's
/// JSON error (`resource_exhausted`).
fn assert_limited(r: &Reply, what: &str) -> Value {
    assert_eq!(r.status, 429, "{what}: {r:?}");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After in {r:?}"));
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
    let body = r.json();
    assert_eq!(
        body["error"]["code"], "resource_exhausted",
        "{what}: {body}"
    );
    body
}

/// Every scenario on one cluster (the limits are per key, so they do not meet).
#[test]
fn rate_limits_quotas_and_trusted_proxies_hold_across_three_nodes() {
    let c = limits_cluster("limits");
    a_spoofed_forwarded_for_does_not_dodge_the_register_limit(&c);
    clients_behind_the_trusted_proxy_get_their_own_limits(&c);
    refreshes_are_limited_per_address(&c);
    code_requests_are_limited_per_address(&c);
    searches_are_limited_per_user(&c);
    chat_requests_are_limited_per_user(&c);
    active_tasks_are_limited_per_user(&c);
    websocket_upgrades_are_limited_per_address_and_connections_per_user(&c);
    grpc_calls_are_limited_per_address(&c);
}

/// A client not behind the trusted proxy forges a new `X-Forwarded-For` for every
/// registration, on every node in turn: the header is ignored and its own address is
/// limited (3 a minute), on REST and on SOAP alike.
fn a_spoofed_forwarded_for_does_not_dodge_the_register_limit(c: &Cluster) {
    let from = "127.0.0.7";
    let mut refused_at = None;
    for i in 0..6 {
        let node = &c.nodes[i % 3];
        let spoofed = format!("10.66.{i}.1");
        let r = post_from(
            from,
            node,
            "/auth/register",
            &[("x-forwarded-for", &spoofed)],
            &new_account("spoof"),
        );
        if r.status == 429 {
            let body = assert_limited(&r, "register");
            assert_eq!(body["error"]["details"]["limit"], "register-ip", "{body}");
            refused_at.get_or_insert(i);
        } else {
            assert_eq!(r.status, 201, "attempt {i}: {r:?}");
            assert!(
                refused_at.is_none(),
                "attempt {i} let through after a refusal"
            );
        }
    }
    assert_eq!(refused_at, Some(3), "the fourth registration is refused");
    // SOAP's RegisterUser counts against the same limit, and answers a Fault.
    let account = new_account("soap");
    let envelope = format!(
        "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:u=\"urn:troupe:users:v1\"><soap:Body><u:RegisterUser><u:username>{}</u:username>\
         <u:email>{}</u:email><u:password>passw0rd-long</u:password></u:RegisterUser></soap:Body></soap:Envelope>",
        account["username"].as_str().unwrap(),
        account["email"].as_str().unwrap()
    );
    let r = http_from(
        from,
        c.node("n2"),
        "POST",
        "/register",
        &[("content-type", "text/xml")],
        &envelope,
    );
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.body.contains("soap:Fault"), "{}", r.body);
    assert!(r.body.contains("too many registrations"), "{}", r.body);
}

/// Through the trusted proxy, each client (the right-most address the proxy did not
/// itself add) has its own count: one client is refused after 3, the next one, and one
/// that forged a hop in front of its real address, are not.
fn clients_behind_the_trusted_proxy_get_their_own_limits(c: &Cluster) {
    let register = |i: usize, xff: &str| {
        post_from(
            PROXY,
            &c.nodes[i % 3],
            "/auth/register",
            &[("x-forwarded-for", xff)],
            &new_account("proxied"),
        )
    };
    for i in 0..3 {
        let r = register(i, "203.0.113.5");
        assert_eq!(r.status, 201, "client 1, attempt {i}: {r:?}");
    }
    assert_limited(&register(3, "203.0.113.5"), "client 1, fourth");
    // Another client behind the same proxy.
    for i in 0..3 {
        let r = register(i, "203.0.113.6");
        assert_eq!(r.status, 201, "client 2, attempt {i}: {r:?}");
    }
    // A client that forged "203.0.113.5" in front: the proxy appended its real address,
    // which is what counts.
    let r = register(1, "203.0.113.5, 198.51.100.9");
    assert_eq!(r.status, 201, "{r:?}");
    // The proxy's own requests without the header count as the proxy.
    let r = post_from(
        PROXY,
        c.node("n3"),
        "/auth/register",
        &[],
        &new_account("proxy"),
    );
    assert_eq!(r.status, 201, "{r:?}");
}

/// Token refreshes from one address: 3 a minute for the whole cluster.
fn refreshes_are_limited_per_address(c: &Cluster) {
    let u = user_from("127.0.1.1", c.node("n1"), "refresher");
    let from = "127.0.0.8";
    let mut refresh = u.refresh.clone();
    for i in 0..3 {
        let r = post_from(
            from,
            &c.nodes[i % 3],
            "/auth/refresh",
            &[],
            &json!({"refresh_token": refresh}),
        );
        assert_eq!(r.status, 200, "refresh {i}: {r:?}");
        refresh = r.json()["refresh_token"].as_str().unwrap().to_string();
    }
    let r = post_from(
        from,
        c.node("n1"),
        "/auth/refresh",
        &[],
        &json!({"refresh_token": refresh}),
    );
    let body = assert_limited(&r, "fourth refresh");
    assert_eq!(body["error"]["details"]["limit"], "refresh-ip", "{body}");
    // Refused before it was spent: from another address the same token still works.
    let r = post_from(
        "127.0.0.9",
        c.node("n2"),
        "/auth/refresh",
        &[],
        &json!({"refresh_token": refresh}),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

/// Forgot-password requests (email flooding) and code guesses from one address.
fn code_requests_are_limited_per_address(c: &Cluster) {
    let from = "127.0.0.10";
    for i in 0..3 {
        let r = post_from(
            from,
            &c.nodes[i % 3],
            "/auth/forgot-password",
            &[],
            &json!({"username": format!("nobody_{i}")}),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = post_from(
        from,
        c.node("n2"),
        "/auth/confirm-forgot-password",
        &[],
        &json!({"username": "nobody_0", "code": "123456", "new_password": "passw0rd-new"}),
    );
    assert_limited(&r, "fourth code request");
}

/// Directory searches: 3 a minute per user, cluster-wide; another user is not affected.
fn searches_are_limited_per_user(c: &Cluster) {
    let u = user_from("127.0.1.2", c.node("n1"), "searcher");
    let other = user_from("127.0.1.3", c.node("n2"), "other");
    let auth = format!("Bearer {}", u.access);
    for i in 0..3 {
        let r = http_from(
            "127.0.0.1",
            &c.nodes[i % 3],
            "GET",
            "/users/search?q=se",
            &[("authorization", &auth)],
            "",
        );
        assert_eq!(r.status, 200, "search {i}: {r:?}");
    }
    let r = http_from(
        "127.0.0.1",
        c.node("n3"),
        "POST",
        "/users/search",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &json!({"query": "se"}).to_string(),
    );
    let body = assert_limited(&r, "fourth search");
    assert_eq!(body["error"]["details"]["limit"], "search-user", "{body}");
    let (status, v) = get(&c.node("n1").url("/users/search?q=se"), Some(&other.access)).unwrap();
    assert_eq!(status, 200, "{v}");
}

/// Chat requests: 2 pending per user, 4 a minute (the quotas), each named in its refusal.
/// The attack: 3 requests of one user at once over the three nodes; exactly 2 are stored.
/// An accepted request frees a place; the fifth request of the minute meets the rate.
fn chat_requests_are_limited_per_user(c: &Cluster) {
    let u = user_from("127.0.1.4", c.node("n1"), "chatty");
    let targets: Vec<User> = (0..4)
        .map(|i| user_from(&format!("127.0.2.{i}"), c.node("n2"), "target"))
        .collect();
    let auth = format!("Bearer {}", u.access);
    let ask = |node: &Node, t: &User| {
        post_from(
            "127.0.0.1",
            node,
            "/chat-requests/send",
            &[("authorization", &auth)],
            &json!({"to_user_id": t.id}),
        )
    };
    let start = std::sync::Barrier::new(3);
    let answers: Vec<Reply> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..3)
            .map(|i| {
                let (ask, t, start) = (&ask, &targets[i], &start);
                scope.spawn(move || {
                    start.wait();
                    ask(&c.nodes[i], t)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut sent = Vec::new();
    for r in &answers {
        if r.status == 201 {
            sent.push(r.json());
        } else {
            assert_eq!(r.status, 429, "{r:?}");
            let body = r.json();
            assert_eq!(body["error"]["code"], "resource_exhausted", "{body}");
            assert_eq!(
                body["error"]["details"],
                json!({"quota": "pending_chat_requests_per_user", "limit": 2}),
                "{body}"
            );
        }
    }
    assert_eq!(sent.len(), 2, "racing requests stored: {answers:?}");
    // The addressee of one accepts it: a place is free again.
    let to = targets
        .iter()
        .find(|t| sent[0]["to_user_id"] == t.id.as_str())
        .unwrap();
    let (status, v) = send(
        "POST",
        &c.node("n3").url(&format!(
            "/chat-requests/{}/accept",
            sent[0]["id"].as_str().unwrap()
        )),
        None,
        Some(&to.access),
    );
    assert_eq!(status, 200, "{v}");
    let r = ask(c.node("n2"), &targets[3]);
    assert_eq!(r.status, 201, "a place freed by the acceptance: {r:?}");
    // The fifth request of the minute meets the rate first.
    let unasked = targets
        .iter()
        .find(|t| !sent.iter().any(|s| s["to_user_id"] == t.id.as_str()))
        .unwrap();
    let body = assert_limited(&ask(c.node("n1"), unasked), "fifth chat request");
    assert_eq!(
        body["error"]["details"]["quota"], "chat_requests_per_user_per_minute",
        "{body}"
    );
}

/// Active tasks: 2 per user (cluster-wide, in the store); a third is refused with the
/// quota named, while another user still creates one.
fn active_tasks_are_limited_per_user(c: &Cluster) {
    let u = user_from("127.0.1.5", c.node("n1"), "tasker");
    let other = user_from("127.0.1.6", c.node("n1"), "tasker2");
    let slow = json!({"name": "slow", "steps": 100, "delay_ms": 1000});
    for i in 0..2 {
        let (status, v) = send(
            "POST",
            &c.nodes[i].url("/api/v1/eventstreammonitor/tasks"),
            Some(&slow),
            Some(&u.access),
        );
        assert!(
            status == 201 || status == 202 || status == 200,
            "task {i}: {status} {v}"
        );
    }
    let (status, v) = send(
        "POST",
        &c.node("n3").url("/api/v1/eventstreammonitor/tasks"),
        Some(&slow),
        Some(&u.access),
    );
    assert_eq!(status, 429, "{v}");
    assert_eq!(
        v["error"]["details"]["quota"], "tasks_active_per_user",
        "{v}"
    );
    assert_eq!(v["error"]["details"]["limit"], 2, "{v}");
    let (status, v) = send(
        "POST",
        &c.node("n3").url("/api/v1/eventstreammonitor/tasks"),
        Some(&slow),
        Some(&other.access),
    );
    assert!(status < 300, "{status} {v}");
}

/// A WebSocket upgrade from `from` to `node` for `user`: the handshake's status (101 when
/// upgraded), and the socket to keep open.
fn ws_from(
    from: &str,
    node: &Node,
    user: &User,
) -> (
    u16,
    Option<tungstenite::WebSocket<MaybeTlsStream<TcpStream>>>,
    String,
) {
    let url = format!(
        "ws://{}/ws/{}?token={}",
        node.addrs.http, user.id, user.access
    );
    let req = url.into_client_request().expect("request");
    let tcp = connect_from(from, node.addrs.http);
    match tungstenite::client(req, MaybeTlsStream::Plain(tcp)) {
        Ok((ws, resp)) => (resp.status().as_u16(), Some(ws), String::new()),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (resp.status().as_u16(), None, format!("{retry}|{body}"))
        }
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

/// Upgrades from one address: 3 a minute. Connections of one user: 2 open across the
/// cluster. The attack: 12 upgrades of one user at once, spread over the three nodes
/// (each from an address of its own, so the rate does not refuse them): exactly 2 are
/// upgraded, every other is refused with 429 naming the quota; once one closes, one more
/// gets in, and then none.
fn websocket_upgrades_are_limited_per_address_and_connections_per_user(c: &Cluster) {
    let u = user_from("127.0.1.7", c.node("n1"), "ws");
    let start = std::sync::Barrier::new(12);
    let answers: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..12)
            .map(|i| {
                let (node, u, start) = (&c.nodes[i % 3], &u, &start);
                scope.spawn(move || {
                    start.wait();
                    ws_from(&format!("127.0.4.{}", i + 1), node, u)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut open = Vec::new();
    for (status, ws, body) in answers {
        if status == 101 {
            open.push(ws.expect("an upgraded socket"));
        } else {
            assert_eq!(status, 429, "{body}");
            assert!(body.contains("ws_connections_per_user"), "{body}");
        }
    }
    assert_eq!(open.len(), 2, "upgrades admitted out of 12 racing");
    drop(open.pop());
    let mut attempt = 0;
    let mut again = None;
    let freed = wait_until(Duration::from_secs(5), || {
        attempt += 1;
        let (status, ws, _) = ws_from(&format!("127.0.5.{attempt}"), c.node("n3"), &u);
        again = ws;
        status == 101
    });
    assert!(freed, "a connection is allowed again once one closed");
    let (status, _, body) = ws_from("127.0.5.200", c.node("n2"), &u);
    assert_eq!(status, 429, "at the quota again: {body}");
    drop((open, again));
    // The rate: a fourth upgrade from one address within the minute is refused, whatever
    // node it reaches.
    let v = user_from("127.0.1.8", c.node("n2"), "ws2");
    for i in 0..3 {
        // Each closed at once; the third may still meet the connection quota (2) while
        // the hub forgets the first two, and counts against the rate all the same.
        let (status, _, body) = ws_from("127.0.3.9", &c.nodes[i], &v);
        if i < 2 {
            assert_eq!(status, 101, "upgrade {i}: {body}");
        } else {
            assert!(
                status == 101 || body.contains("ws_connections_per_user"),
                "{status} {body}"
            );
        }
    }
    let (status, _, body) = ws_from("127.0.3.9", c.node("n1"), &v);
    assert_eq!(status, 429, "{body}");
    let (retry, json_body) = body.split_once('|').unwrap();
    assert!(
        retry.parse::<u64>().is_ok_and(|r| (1..=60).contains(&r)),
        "{body}"
    );
    assert!(json_body.contains("ws-ip"), "{body}");
}

/// gRPC calls from one address: 5 a minute for the cluster; the sixth, on any node, is
/// answered `RESOURCE_EXHAUSTED`.
fn grpc_calls_are_limited_per_address(c: &Cluster) {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut codes = Vec::new();
        for i in 0..7 {
            let node = &c.nodes[i % 3];
            let ch = tonic::transport::Channel::from_shared(format!("http://{}", node.addrs.grpc))
                .unwrap()
                .connect()
                .await
                .expect("grpc connect");
            let mut health = HealthClient::new(ch);
            let answer = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            codes.push(answer.err().map(|s| s.code()));
        }
        assert_eq!(
            codes,
            [
                None,
                None,
                None,
                None,
                None,
                Some(tonic::Code::ResourceExhausted),
                Some(tonic::Code::ResourceExhausted)
            ]
        );
    });
}

/// `[grpc] max_connections`: past the cap a new connection is closed at once, while the
/// ones open are served; once one closes, a new one is served again.
#[test]
fn grpc_connections_are_capped() {
    let c = Cluster::start(
        "grpc-cap",
        Options {
            nodes: 1,
            env: vec![("TROUPE_GRPC_MAX_CONNECTIONS".into(), "2".into())],
            ..Options::default()
        },
    );
    let addr = c.node("n1").addrs.grpc;
    let idle1 = TcpStream::connect(addr).expect("first");
    let _idle2 = TcpStream::connect(addr).expect("second");
    // The third is accepted and closed: reading gives end of file, not a timeout.
    let mut third = TcpStream::connect(addr).expect("third");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = third
        .read(&mut buf)
        .unwrap_or_else(|e| panic!("closed at once, not {e}"));
    assert_eq!(n, 0, "the third connection is closed");
    drop(idle1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let served = rt.block_on(async {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::HealthCheckRequest;
        for _ in 0..50 {
            if let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
            {
                let answer = HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if answer.is_ok() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    assert!(served, "a connection is served once the first closed");
    let log = c.logs();
    assert!(!log.contains("panicked"), "{log}");
}
