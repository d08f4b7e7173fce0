//! Chat and live connections, black-box: real node processes, real WebSocket clients
//! (sync `tungstenite`), chat requests and messages delivered live across nodes, broadcast,
//! presence, a node's SIGKILL, and every kind of bad input.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Cap of a chat ciphertext in these tests.
const CAP: usize = 2048;
/// Largest WebSocket frame in these tests.
const FRAME: usize = 4096;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// How a client presents its token.
enum Token<'a> {
    Query(&'a str),
    Protocol(&'a str),
    None,
}

/// Opens `WS /ws/:user_id` on `node`.
fn connect(node: &Node, user_id: &str, token: Token<'_>) -> Ws {
    let mut url = format!("ws://{}/ws/{user_id}", node.addrs.http);
    if let Token::Query(t) = token {
        url.push_str(&format!("?token={t}"));
    }
    let mut req = url.into_client_request().expect("request");
    if let Token::Protocol(t) = token {
        req.headers_mut()
            .insert("sec-websocket-protocol", t.parse().expect("header"));
    }
    let tcp = TcpStream::connect(node.addrs.http).expect("tcp connect");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (ws, resp) =
        tungstenite::client(req, MaybeTlsStream::Plain(tcp)).expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// What reading brought.
#[derive(Debug)]
enum Got {
    Frame(Value),
    /// The close code and reason (`None`: the connection ended without a close frame).
    Closed(Option<u16>, String),
    Nothing,
}

/// Reads one JSON frame (or the close) within `timeout`; pings are answered on the way.
fn next(ws: &mut Ws, timeout: Duration) -> Got {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => {
                return Got::Frame(serde_json::from_str(t.as_str()).expect("json frame"))
            }
            Ok(Message::Close(frame)) => {
                return match frame {
                    Some(f) => Got::Closed(Some(u16::from(f.code)), f.reason.to_string()),
                    None => Got::Closed(None, String::new()),
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Got::Closed(None, String::new()),
        }
    }
    Got::Nothing
}

/// Reads until a frame of `kind` matching `pred` arrives; panics after `timeout`.
fn expect_frame(ws: &mut Ws, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match next(ws, Duration::from_millis(500)) {
            Got::Frame(v) if v["type"] == kind && pred(&v) => return v,
            Got::Frame(v) => seen.push(v),
            Got::Closed(code, _) => {
                panic!("closed ({code:?}) waiting for a {kind} frame; saw {seen:?}")
            }
            Got::Nothing => {}
        }
    }
    panic!("no {kind} frame within 5s; saw {seen:?}")
}

/// Reads until the server closes; the close code.
fn expect_close(ws: &mut Ws) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Got::Closed(code, _) = next(ws, Duration::from_millis(500)) {
            return code;
        }
    }
    panic!("the server did not close within 5s")
}

/// A ping/pong round trip: once answered, the connection is registered in its hub.
fn ping(ws: &mut Ws) {
    ws.send(Message::text(
        json!({"type": "ping", "ref": "p"}).to_string(),
    ))
    .expect("send ping");
    expect_frame(ws, "pong", |v| v["ref"] == "p");
}

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            extra_toml: format!(
                "[ws]\nmax_frame_bytes = {FRAME}\nping_interval_s = 2\nidle_timeout_s = 60\n\
                 [chat]\nmax_message_bytes = {CAP}\n"
            ),
            ..Options::default()
        },
    )
}

/// alice and bob become contacts through a chat request (by username, accepted on another
/// node); the request id.
fn make_contacts(c: &Cluster, a: &User, b: &User) -> String {
    let (status, r) = send(
        "POST",
        &c.node("n1").url("/chat-requests/send"),
        Some(&json!({"username": b.username.to_uppercase()})),
        Some(&a.access),
    );
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["to_user_id"], b.id.as_str());
    let id = r["id"].as_str().unwrap().to_string();
    let (status, v) = send(
        "GET",
        &c.node("n3").url("/chat-requests/incoming"),
        None,
        Some(&b.access),
    );
    assert_eq!(status, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["from_username"], a.username.as_str());
    let (status, v) = send(
        "POST",
        &c.node("n3").url(&format!("/chat-requests/{id}/accept")),
        None,
        Some(&b.access),
    );
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("accepted")),
        "{v}"
    );
    for (me, other, node) in [(a, b, "n2"), (b, a, "n1")] {
        let (status, v) = send(
            "GET",
            &c.node(node).url("/contacts/"),
            None,
            Some(&me.access),
        );
        assert_eq!(status, 200, "{v}");
        let ids: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["user_id"].as_str())
            .collect();
        assert_eq!(ids, [other.id.as_str()], "{v}");
    }
    let (status, v) = send(
        "GET",
        &c.node("n3").url("/chat-requests/incoming"),
        None,
        Some(&b.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(0)), "{v}");
    id
}

fn conversation(node: &Node, me: &User, with: &User, query: &str) -> Value {
    let (status, v) = send(
        "GET",
        &node.url(&format!("/messages/conversation/{}{query}", with.id)),
        None,
        Some(&me.access),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn connected_users(node: &Node, token: &str) -> Vec<(String, String)> {
    let (status, v) = send("GET", &node.url("/connections"), None, Some(token));
    assert_eq!(status, 200, "{v}");
    let mut out: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(i["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{i}");
            (
                i["user_id"].as_str().unwrap().to_string(),
                i["node"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn chat_across_nodes_on_sqlite() {
    let mut c = cluster("chat-sqlite", None);
    chat_across_nodes_with_live_delivery_presence_broadcast_and_node_loss(&mut c);
}

#[test]
fn chat_across_nodes_on_postgres() {
    let Some(storage) = postgres_storage("chat_across_nodes_on_postgres") else {
        return;
    };
    let mut c = cluster("chat-pg", Some(storage));
    chat_across_nodes_with_live_delivery_presence_broadcast_and_node_loss(&mut c);
}

fn chat_across_nodes_with_live_delivery_presence_broadcast_and_node_loss(c: &mut Cluster) {
    let alice = new_user(c.node("n1"), c.node("n1"), "alice");
    let bob = new_user(c.node("n3"), c.node("n3"), "bob");
    let carol = new_user(c.node("n2"), c.node("n2"), "carol");

    let mut a_ws = connect(c.node("n1"), &alice.id, Token::Query(&alice.access));
    let mut b_ws = connect(c.node("n3"), &bob.id, Token::Protocol(&bob.access));
    ping(&mut a_ws);
    ping(&mut b_ws);
    let request = make_contacts(c, &alice, &bob);

    // A request cannot be accepted twice, nor by anyone but its addressee.
    let (status, v) = send(
        "POST",
        &c.node("n2")
            .url(&format!("/chat-requests/{request}/accept")),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = send(
        "POST",
        &c.node("n2")
            .url(&format!("/chat-requests/{request}/accept")),
        None,
        Some(&carol.access),
    );
    assert_eq!(status, 404, "{v}");

    // Presence: bob goes and comes back; alice (his contact) sees both, and /connections
    // agrees on every node.
    b_ws.close(None).ok();
    let v = expect_frame(&mut a_ws, "presence", |v| v["status"] == "offline");
    assert_eq!(v["user_id"], bob.id.as_str());
    let mut b_ws = connect(c.node("n3"), &bob.id, Token::Query(&bob.access));
    ping(&mut b_ws);
    let v = expect_frame(&mut a_ws, "presence", |v| v["status"] == "online");
    assert_eq!(
        (v["user_id"].as_str(), v["node"].as_str()),
        (Some(bob.id.as_str()), Some("n3"))
    );
    for n in ["n1", "n2", "n3"] {
        let seen = connected_users(c.node(n), &carol.access);
        assert!(
            seen.contains(&(alice.id.clone(), "n1".into())),
            "{n}: {seen:?}"
        );
        assert!(
            seen.contains(&(bob.id.clone(), "n3".into())),
            "{n}: {seen:?}"
        );
    }

    // alice (n1) -> bob (n3) over REST: stored, delivered live, receipt to alice.
    let (status, m1) = send(
        "POST",
        &c.node("n1").url("/messages/send"),
        Some(&json!({"recipient_id": bob.id, "ciphertext": "b64:aGVsbG8=", "nonce": "n-1"})),
        Some(&alice.access),
    );
    assert_eq!(status, 201, "{m1}");
    let live = expect_frame(&mut b_ws, "message", |v| v["id"] == m1["id"]);
    assert_eq!(live["ciphertext"], "b64:aGVsbG8=");
    assert_eq!(live["nonce"], "n-1");
    assert_eq!(live["sender_id"], alice.id.as_str());
    let receipt = expect_frame(&mut a_ws, "receipt", |v| v["message_id"] == m1["id"]);
    assert_eq!(
        (receipt["status"].as_str(), receipt["delivered"].as_u64()),
        (Some("delivered"), Some(1))
    );

    // bob (n3) -> alice (n1) over the WebSocket.
    b_ws.send(Message::text(
        json!({"type": "send", "recipient_id": alice.id, "ciphertext": "b64:aGk=", "ref": "r1"})
            .to_string(),
    ))
    .unwrap();
    let stored = expect_frame(&mut b_ws, "receipt", |v| v["ref"] == "r1");
    assert_eq!(stored["status"], "stored");
    let m2 = expect_frame(&mut a_ws, "message", |v| v["id"] == stored["message_id"]);
    assert_eq!(m2["ciphertext"], "b64:aGk=");
    // A WebSocket send to a non-contact is an error frame; the connection stays.
    b_ws.send(Message::text(
        json!({"type": "send", "recipient_id": carol.id, "ciphertext": "x", "ref": "r2"})
            .to_string(),
    ))
    .unwrap();
    let e = expect_frame(&mut b_ws, "error", |v| v["ref"] == "r2");
    assert_eq!(e["code"], "permission_denied");

    // History on any node: oldest first, paged.
    let v = conversation(c.node("n2"), &alice, &bob, "");
    assert_eq!(v["total"], 2, "{v}");
    let ids: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&m1["id"], &m2["id"]]);
    let v = conversation(c.node("n3"), &bob, &alice, "?page=2&per_page=1");
    assert_eq!(
        (v["total"].as_u64(), v["items"].as_array().unwrap().len()),
        (Some(2), 1)
    );
    assert_eq!(v["items"][0]["id"], m2["id"]);
    let (status, v) = send(
        "GET",
        &c.node("n1").url("/messages/"),
        None,
        Some(&alice.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(2)), "{v}");

    // A send frame with an idempotency key, sent twice: stored once, both receipts name it.
    let keyed = |reference: &str, key: &str| {
        Message::text(
            json!({"type": "send", "recipient_id": alice.id, "ciphertext": "b64:b25jZQ==",
                   "ref": reference, "idempotency_key": key})
            .to_string(),
        )
    };
    b_ws.send(keyed("k1", "ws-send-once")).unwrap();
    let first = expect_frame(&mut b_ws, "receipt", |v| v["ref"] == "k1");
    b_ws.send(keyed("k2", "ws-send-once")).unwrap();
    let again = expect_frame(&mut b_ws, "receipt", |v| v["ref"] == "k2");
    assert_eq!(again["message_id"], first["message_id"]);
    let v = conversation(c.node("n2"), &alice, &bob, "");
    assert_eq!(v["total"], 3, "{v}");
    // A malformed key is an error frame, nothing stored; the connection stays.
    b_ws.send(keyed("k3", "two words")).unwrap();
    let e = expect_frame(&mut b_ws, "error", |v| v["ref"] == "k3");
    assert_eq!(e["code"], "invalid_argument", "{e}");
    assert_eq!(conversation(c.node("n2"), &alice, &bob, "")["total"], 3);

    // Broadcast from n2 reaches connections on all three nodes.
    let mut c_ws = connect(c.node("n2"), &carol.id, Token::Query(&carol.access));
    ping(&mut c_ws);
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/broadcast"),
        Some(&json!({"message": "maintenance at noon"})),
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["nodes"], json!(["n1", "n2", "n3"]));
    assert!(v["delivered"].as_u64().unwrap() >= 3, "{v}");
    let id = v["id"].clone();
    for ws in [&mut a_ws, &mut b_ws, &mut c_ws] {
        let b = expect_frame(ws, "broadcast", |f| f["id"] == id);
        assert_eq!(b["message"], "maintenance at noon");
    }

    bad_rest_input_is_refused(c, &alice, &bob, &carol);
    bad_connections_are_closed_with_the_right_code(c, &alice, &bob);
    // The good connections were not harmed.
    ping(&mut a_ws);
    ping(&mut b_ws);

    // A revoked session's connection is closed (policy violation).
    let (status, v) = login(c.node("n2"), &carol.username, &carol.password);
    assert_eq!(status, 200, "{v}");
    let second = v["access_token"].as_str().unwrap().to_string();
    let mut doomed = connect(c.node("n1"), &carol.id, Token::Query(&second));
    ping(&mut doomed);
    let (status, v) = send(
        "POST",
        &c.node("n3").url("/auth/logout"),
        None,
        Some(&second),
    );
    assert!(status == 200 || status == 204, "{status} {v}");
    assert_eq!(expect_close(&mut doomed), Some(1008));
    ping(&mut c_ws);

    // SIGKILL n3: bob's connection drops, n3's connections leave /connections within 2 s,
    // what alice sends meanwhile is kept, and bob reads it after reconnecting to n2.
    c.node_mut("n3").kill();
    let killed = Instant::now();
    assert!(matches!(expect_close_or_eof(&mut b_ws), Got::Closed(..)));
    // A survivor tells bob's contacts he went offline.
    let v = expect_frame(&mut a_ws, "presence", |v| {
        v["status"] == "offline" && v["user_id"] == bob.id.as_str()
    });
    assert_eq!(v["username"], bob.username.as_str());
    let gone = wait_until(Duration::from_secs(5), || {
        !connected_users(c.node("n1"), &alice.access)
            .iter()
            .any(|(_, n)| n == "n3")
    });
    assert!(gone, "n3's connections still listed");
    eprintln!(
        "n3's connections left /connections after {:?}",
        killed.elapsed()
    );
    let mut sent = Vec::new();
    for i in 0..3 {
        let (status, m) = send(
            "POST",
            &c.node("n1").url("/messages/send"),
            Some(&json!({"recipient_id": bob.id, "ciphertext": format!("offline-{i}")})),
            Some(&alice.access),
        );
        assert_eq!(status, 201, "{m}");
        sent.push(m["id"].clone());
    }
    let mut b_ws = connect(c.node("n2"), &bob.id, Token::Query(&bob.access));
    ping(&mut b_ws);
    let v = conversation(c.node("n2"), &bob, &alice, "?per_page=100");
    let ids: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    // The two first messages, the keyed one, then the three sent while bob was away.
    assert_eq!(ids.len(), 6, "{v}");
    assert_eq!(&ids[3..], sent.iter().collect::<Vec<_>>().as_slice());
    // And live again, now through n2.
    let (status, m) = send(
        "POST",
        &c.node("n1").url("/messages/send"),
        Some(&json!({"recipient_id": bob.id, "ciphertext": "welcome back"})),
        Some(&alice.access),
    );
    assert_eq!(status, 201, "{m}");
    expect_frame(&mut b_ws, "message", |v| v["id"] == m["id"]);
}

/// After a SIGKILL of its node a connection ends with an error or EOF, not a close frame.
fn expect_close_or_eof(ws: &mut Ws) -> Got {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let g @ Got::Closed(..) = next(ws, Duration::from_millis(500)) {
            return g;
        }
    }
    Got::Nothing
}

fn bad_rest_input_is_refused(c: &Cluster, alice: &User, bob: &User, carol: &User) {
    let n2 = c.node("n2");
    let post = |path: &str, body: Value, token: Option<&str>| {
        send("POST", &n2.url(path), Some(&body), token)
    };
    let before = conversation(n2, alice, bob, "")["total"].clone();
    // A message to someone who is not a contact, to nobody, too large, or empty.
    let (status, v) = post(
        "/messages/send",
        json!({"recipient_id": carol.id, "ciphertext": "x"}),
        Some(&alice.access),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("permission_denied")),
        "{v}"
    );
    let (status, v) = post(
        "/messages/send",
        json!({"recipient_id": "no-such-user", "ciphertext": "x"}),
        Some(&alice.access),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = post(
        "/messages/send",
        json!({"recipient_id": bob.id, "ciphertext": "x".repeat(CAP + 1)}),
        Some(&alice.access),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("resource_exhausted")),
        "{v}"
    );
    assert!(
        v["error"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    let (status, v) = post(
        "/messages/send",
        json!({"recipient_id": bob.id, "ciphertext": ""}),
        Some(&alice.access),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(
        "/messages/send",
        json!({"recipient_id": bob.id, "ciphertext": 42}),
        Some(&alice.access),
    );
    assert_eq!(status, 400, "{v}");
    let (status, _) = post(
        "/messages/send",
        json!({"recipient_id": bob.id, "ciphertext": "x"}),
        None,
    );
    assert_eq!(status, 401);
    assert_eq!(
        conversation(n2, alice, bob, "")["total"],
        before,
        "nothing was stored"
    );
    // Chat requests: to oneself, to nobody, to a contact, twice, with no addressee.
    let (status, v) = post(
        "/chat-requests/send",
        json!({"to_user_id": alice.id}),
        Some(&alice.access),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(
        "/chat-requests/send",
        json!({"username": "nobody_at_all"}),
        Some(&alice.access),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = post(
        "/chat-requests/send",
        json!({"to_user_id": bob.id}),
        Some(&alice.access),
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = post(
        "/chat-requests/send",
        json!({"to_user_id": carol.id}),
        Some(&alice.access),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = post(
        "/chat-requests/send",
        json!({"username": alice.username}),
        Some(&carol.access),
    );
    assert_eq!(status, 409, "a request is pending the other way: {v}");
    let (status, v) = post("/chat-requests/send", json!({}), Some(&alice.access));
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(
        "/chat-requests/no-such-request/accept",
        json!({}),
        Some(&carol.access),
    );
    assert_eq!(status, 404, "{v}");
    // History of a stranger is empty, of nobody 404.
    let v = conversation(n2, alice, carol, "");
    assert_eq!(v["total"], 0);
    let (status, _) = send(
        "GET",
        &n2.url("/messages/conversation/no-such-user"),
        None,
        Some(&alice.access),
    );
    assert_eq!(status, 404);
    let (status, _) = send(
        "GET",
        &n2.url("/messages/?per_page=100000"),
        None,
        Some(&alice.access),
    );
    assert_eq!(status, 400);
    // Broadcast: admin only, and not empty.
    let (status, _) = post("/broadcast", json!({"message": "hi"}), Some(&alice.access));
    assert_eq!(status, 403);
    let (status, _) = post("/broadcast", json!({"message": " "}), Some(ADMIN_TOKEN));
    assert_eq!(status, 400);
    let (status, _) = send("GET", &n2.url("/connections"), None, None);
    assert_eq!(status, 401);
}

fn bad_connections_are_closed_with_the_right_code(c: &Cluster, alice: &User, bob: &User) {
    let n1 = c.node("n1");
    // A forged token, no token, another user's path.
    let forged = format!("{}x", alice.access);
    let mut ws = connect(n1, &alice.id, Token::Query(&forged));
    assert_eq!(expect_close(&mut ws), Some(1008));
    let mut ws = connect(n1, &alice.id, Token::None);
    assert_eq!(expect_close(&mut ws), Some(1008));
    let mut ws = connect(n1, &bob.id, Token::Query(&alice.access));
    assert_eq!(expect_close(&mut ws), Some(1008));
    let mut ws = connect(n1, &bob.id, Token::Protocol("not-a-token"));
    assert_eq!(expect_close(&mut ws), Some(1008));
    // Binary garbage is unsupported data.
    let mut ws = connect(n1, &alice.id, Token::Query(&alice.access));
    ping(&mut ws);
    ws.send(Message::binary(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]))
        .unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003));
    // A frame over the limit is too big.
    let mut ws = connect(n1, &alice.id, Token::Query(&alice.access));
    ping(&mut ws);
    let huge = json!({"type": "ping", "ref": "x".repeat(FRAME * 2)}).to_string();
    ws.send(Message::text(huge)).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1009));
    // Text that is not a frame gets an error frame and the connection stays.
    let mut ws = connect(n1, &alice.id, Token::Query(&alice.access));
    ws.send(Message::text("{not json")).unwrap();
    let e = expect_frame(&mut ws, "error", |_| true);
    assert_eq!(e["code"], "invalid_argument");
    ws.send(Message::text(json!({"type": "dance"}).to_string()))
        .unwrap();
    let e = expect_frame(&mut ws, "error", |_| true);
    assert_eq!(e["code"], "invalid_argument");
    ping(&mut ws);
    // Not a WebSocket request at all: an HTTP error, in the API's form.
    let (status, _) = send(
        "GET",
        &n1.url(&format!("/ws/{}", alice.id)),
        None,
        Some(&alice.access),
    );
    assert!((400..500).contains(&status), "{status}");
}

/// A one-node cluster with `[ws]` settings and `TROUPE_*` variables of its own.
fn one_node(tag: &str, ws_toml: &str, env: &[(&str, &str)]) -> Cluster {
    Cluster::start(
        tag,
        Options {
            nodes: 1,
            extra_toml: format!("[ws]\nmax_frame_bytes = {FRAME}\n{ws_toml}\n"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        },
    )
}

/// Unix time in milliseconds, on the clock the node shares with the test.
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn websocket_is_closed_with_1008_once_its_token_expires() {
    const TTL_S: u64 = 2;
    let c = one_node("ws-expiry", "", &[("TROUPE_AUTH_ACCESS_TTL_S", "2")]);
    let n1 = c.node("n1");
    let username = format!("exp_{}", unique());
    let id = register(n1, &username, "passw0rd-long");
    let before_s = (unix_ms() / 1000) as u64;
    let (status, v) = login(n1, &username, "passw0rd-long");
    let after_s = (unix_ms() / 1000) as u64;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["expires_in"], TTL_S, "{v}");
    let access = v["access_token"].as_str().unwrap().to_string();
    // exp is between before_s + TTL_S and after_s + TTL_S; the node accepts the token
    // LEEWAY_SECS longer and refuses it from the second after.
    let leeway = troupe_actors::auth::token::LEEWAY_SECS;
    let earliest_ms = u128::from(before_s + TTL_S + leeway + 1) * 1000;
    let latest_ms = u128::from(after_s + TTL_S + leeway + 1) * 1000;

    let mut ws = connect(n1, &id, Token::Query(&access));
    // The connection keeps working past exp itself (within the leeway), pinged twice a second.
    let mut last_pong_ms = 0;
    let (code, reason, closed_ms) = loop {
        assert!(
            unix_ms() < latest_ms + 5_000,
            "no close frame; last pong at {last_pong_ms}, token refused from {latest_ms}"
        );
        ws.send(Message::text(
            json!({"type": "ping", "ref": "p"}).to_string(),
        ))
        .expect("send ping");
        match next(&mut ws, Duration::from_secs(1)) {
            Got::Frame(f) if f["type"] == "pong" => {
                last_pong_ms = unix_ms();
                std::thread::sleep(Duration::from_millis(500));
            }
            Got::Frame(f) => panic!("unexpected frame {f}"),
            Got::Closed(code, reason) => break (code, reason, unix_ms()),
            Got::Nothing => panic!("no pong within 1 s"),
        }
    };
    assert_eq!(
        (code, reason.as_str()),
        (Some(1008), "token expired"),
        "{}",
        c.logs()
    );
    assert!(
        closed_ms >= earliest_ms,
        "closed at {closed_ms}, before the token expired ({earliest_ms})"
    );
    assert!(
        closed_ms <= latest_ms + 1_500,
        "closed at {closed_ms}, long after the token expired ({latest_ms})"
    );
    assert!(
        last_pong_ms >= u128::from(after_s + TTL_S) * 1000,
        "the connection should outlive exp by the leeway (last pong {last_pong_ms})"
    );
    // The same token cannot open a new connection.
    let mut again = connect(n1, &id, Token::Query(&access));
    assert_eq!(expect_close(&mut again), Some(1008));
}

#[test]
fn silent_client_is_closed_with_1001_after_the_idle_timeout_but_one_answering_pings_stays() {
    const IDLE: Duration = Duration::from_secs(2);
    let c = one_node("ws-idle", "idle_timeout_s = 2\nping_interval_s = 1", &[]);
    let n1 = c.node("n1");
    let quiet = new_user(n1, n1, "quiet");
    let awake = new_user(n1, n1, "awake");
    let mut quiet_ws = connect(n1, &quiet.id, Token::Query(&quiet.access));
    let mut awake_ws = connect(n1, &awake.id, Token::Query(&awake.access));
    ping(&mut awake_ws);
    ping(&mut quiet_ws);
    // From here quiet neither sends nor reads (so it answers no ping); awake only reads,
    // which answers the server's pings.
    let quiet_since = Instant::now();
    let listed = |user: &User| {
        connected_users(n1, &awake.access)
            .iter()
            .any(|(u, _)| *u == user.id)
    };
    let mut gone_after = None;
    while quiet_since.elapsed() < IDLE * 4 {
        match next(&mut awake_ws, Duration::from_millis(200)) {
            Got::Closed(code, why) => panic!("awake was closed: {code:?} {why}"),
            Got::Frame(f) => panic!("unexpected frame {f}"),
            Got::Nothing => {}
        }
        if gone_after.is_none() && !listed(&quiet) {
            gone_after = Some(quiet_since.elapsed());
        }
        assert!(listed(&awake), "awake left the hub");
    }
    let gone_after = gone_after.expect("the silent connection was never closed");
    eprintln!("the silent connection left the hub {gone_after:?} after its last frame");
    // Closed at the first ping tick after the idle timeout, then a second for the close
    // handshake the silent client never answers.
    assert!(
        gone_after >= IDLE,
        "closed after {gone_after:?}, before {IDLE:?}"
    );
    assert!(
        gone_after <= IDLE + Duration::from_millis(3_500),
        "closed after {gone_after:?}"
    );
    // The close frame waits in quiet's socket behind the server's pings.
    match next(&mut quiet_ws, Duration::from_secs(2)) {
        Got::Closed(code, why) => assert_eq!((code, why.as_str()), (Some(1001), "idle timeout")),
        other => panic!("no close frame for the silent client: {other:?}"),
    }
    ping(&mut awake_ws);
}

#[test]
fn client_that_does_not_read_is_closed_with_1013_when_its_send_queue_fills() {
    const QUEUE: u64 = 8;
    let c = one_node("ws-slow", &format!("send_queue = {QUEUE}"), &[]);
    let n1 = c.node("n1");
    let slow = new_user(n1, n1, "slow");
    let mut ws = connect(n1, &slow.id, Token::Query(&slow.access));
    ping(&mut ws);
    // The client stops reading: once the socket buffers are full, frames queue in front of
    // the connection until the queue overflows and the hub stops taking them.
    let big = "x".repeat(16 * 1024);
    let mut taken = 0u64;
    let mut refused = false;
    for _ in 0..4_000 {
        let (status, v) = send(
            "POST",
            &n1.url("/broadcast"),
            Some(&json!({"message": big})),
            Some(ADMIN_TOKEN),
        );
        assert_eq!(status, 200, "{v}");
        match v["delivered"].as_u64() {
            Some(1) => taken += 1,
            Some(0) => {
                refused = true;
                break;
            }
            other => panic!("delivered {other:?}: {v}"),
        }
    }
    assert!(
        refused,
        "{taken} broadcasts taken and the queue never filled"
    );
    eprintln!("the hub refused broadcast {} (16 KiB each)", taken + 1);
    assert!(taken > QUEUE, "{taken}");
    // Reading now: the frames written before the overflow, then the close. Of the QUEUE
    // frames that were waiting, the first had been started on the socket when it filled up
    // (the rest of it is written, a frame is never cut), the other QUEUE - 1 are dropped.
    let mut read = 0u64;
    let (code, why) = loop {
        match next(&mut ws, Duration::from_secs(3)) {
            Got::Frame(f) if f["type"] == "broadcast" => read += 1,
            Got::Frame(f) => panic!("unexpected frame {f}"),
            Got::Closed(code, why) => break (code, why),
            Got::Nothing => panic!("no close frame after {read} broadcasts"),
        }
    };
    assert_eq!(
        (code, why.as_str()),
        (Some(1013), "send queue full: the client reads too slowly"),
        "{}",
        c.logs()
    );
    assert_eq!(read, taken - (QUEUE - 1), "{taken} taken");
    // The connection is gone from the hub.
    assert!(wait_until(Duration::from_secs(3), || {
        let (status, v) = send("GET", &n1.url("/connections"), None, Some(ADMIN_TOKEN));
        status == 200 && v["total"] == 0
    }));
}

/// `a` asks `b` to be contacts on `node`, and `b` accepts.
fn befriend(node: &Node, a: &User, b: &User) {
    let (status, r) = send(
        "POST",
        &node.url("/chat-requests/send"),
        Some(&json!({"to_user_id": b.id})),
        Some(&a.access),
    );
    assert_eq!(status, 201, "{r}");
    let accept = format!("/chat-requests/{}/accept", r["id"].as_str().unwrap());
    let (status, v) = send("POST", &node.url(&accept), None, Some(&b.access));
    assert_eq!(status, 200, "{v}");
}

#[test]
fn node_that_joins_late_learns_who_is_connected_elsewhere() {
    // n1 starts last, and is then the first member by name: the one that announces the
    // users of a member that dies.
    let mut c = Cluster::start(
        "chat-late",
        Options {
            single_seed: false,
            late: vec!["n1".into()],
            extra_toml: format!("[ws]\nmax_frame_bytes = {FRAME}\n"),
            ..Options::default()
        },
    );
    let alice = new_user(c.node("n2"), c.node("n3"), "alice");
    let bob = new_user(c.node("n2"), c.node("n2"), "bob");
    befriend(c.node("n2"), &alice, &bob);
    let mut b_ws = connect(c.node("n2"), &bob.id, Token::Query(&bob.access));
    ping(&mut b_ws);
    let mut a_ws = connect(c.node("n3"), &alice.id, Token::Query(&alice.access));
    ping(&mut a_ws);
    expect_frame(&mut b_ws, "presence", |v| {
        v["status"] == "online" && v["user_id"] == alice.id.as_str()
    });

    c.start_node("n1");
    let want = [
        (alice.id.clone(), "n3".to_string()),
        (bob.id.clone(), "n2".to_string()),
    ];
    let mut seen = Vec::new();
    let listed = wait_until(Duration::from_secs(2), || {
        seen = connected_users(c.node("n1"), &bob.access);
        want.iter().all(|w| seen.contains(w))
    });
    assert!(listed, "n1 lists {seen:?}");

    // n3 dies: n1, first of the survivors, tells bob alice went offline, which it can only
    // do if it learned that n3 held her.
    c.node_mut("n3").kill();
    let v = expect_frame(&mut b_ws, "presence", |v| {
        v["status"] == "offline" && v["user_id"] == alice.id.as_str()
    });
    assert_eq!(
        (v["username"].as_str(), v["node"].as_str()),
        (Some(alice.username.as_str()), Some("n1")),
        "{v}"
    );
}
