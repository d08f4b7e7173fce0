//! `/dashboard` in a real browser (headless Chromium) and one trace per request across
//! nodes: issue 25.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// A client's trace context, as in the W3C specification's examples.
const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const GIVEN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// JSON logs, with the mesh's per-call debug lines ("call to a peer", "call from a peer").
fn traced() -> Options {
    Options {
        env: vec![
            ("TROUPE_LOG_FORMAT".into(), "json".into()),
            (
                "RUST_LOG".into(),
                "info,troupe_actors::mesh::router=debug,troupe_actors::mesh::endpoint=debug".into(),
            ),
        ],
        ..Options::default()
    }
}

/// The JSON log lines of `log` that carry `trace_id`.
fn lines_with_trace(log: &str, trace_id: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["trace_id"] == trace_id)
        .collect()
}

/// The trace id of a `traceparent` value, checking its form.
fn trace_id_of(traceparent: &str) -> String {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    assert!(traceparent
        .bytes()
        .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    parts[1].to_string()
}

fn traceparent_of(resp: &ureq::http::Response<ureq::Body>) -> String {
    resp.headers()
        .get("traceparent")
        .expect("the reply carries traceparent")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_request_answered_on_another_node_leaves_one_trace_id_in_both_logs() {
    let c = Cluster::start("trace", traced());
    let (n1, n3) = (c.node("n1"), c.node("n3"));

    let mut resp = get_raw(&n1.url("/ping?node=n3"), &[("traceparent", GIVEN)]);
    assert_eq!(resp.status().as_u16(), 200);
    let echoed = traceparent_of(&resp);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["node"], "n3", "answered on n3");
    assert_eq!(
        trace_id_of(&echoed),
        GIVEN_TRACE,
        "the reply continues the client's trace"
    );
    assert_ne!(echoed, GIVEN, "in a span of its own");

    // Both nodes log the call under the client's trace id.
    let logged = wait_until(Duration::from_secs(5), || {
        !lines_with_trace(&n1.log_text(), GIVEN_TRACE).is_empty()
            && !lines_with_trace(&n3.log_text(), GIVEN_TRACE).is_empty()
    });
    assert!(
        logged,
        "no line with the trace id in both logs:\n{}",
        c.logs()
    );
    let on_n1 = lines_with_trace(&n1.log_text(), GIVEN_TRACE);
    let on_n3 = lines_with_trace(&n3.log_text(), GIVEN_TRACE);
    assert!(
        on_n1
            .iter()
            .any(|l| l["fields"]["message"] == "call to a peer"),
        "{on_n1:?}"
    );
    assert!(
        on_n3
            .iter()
            .any(|l| l["fields"]["message"] == "call from a peer"),
        "{on_n3:?}"
    );
    assert!(on_n3
        .iter()
        .all(|l| l["span_id"].as_str().is_some_and(|s| s.len() == 16)));
    // No traceparent: a fresh trace, answered, and logged on the answering node.
    let resp = get_raw(&n1.url("/ping?node=n3"), &[]);
    assert_eq!(resp.status().as_u16(), 200);
    let fresh = trace_id_of(&traceparent_of(&resp));
    assert_ne!(fresh, GIVEN_TRACE);
    assert!(wait_until(Duration::from_secs(5), || {
        !lines_with_trace(&n3.log_text(), &fresh).is_empty()
    }));

    // A malformed one is replaced by a fresh trace, never refused.
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ] {
        let resp = get_raw(&n1.url("/ping?node=n2"), &[("traceparent", bad)]);
        assert_eq!(resp.status().as_u16(), 200, "{bad}");
        let t = trace_id_of(&traceparent_of(&resp));
        assert_ne!(t, GIVEN_TRACE, "{bad}");
        assert_ne!(t, "0".repeat(32), "{bad}");
    }

    // Errors echo it too.
    let resp = get_raw(&n1.url("/ping?node=nobody"), &[("traceparent", GIVEN)]);
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(trace_id_of(&traceparent_of(&resp)), GIVEN_TRACE);
}

#[test]
fn soap_grpc_and_websocket_replies_echo_the_traceparent() {
    let c = Cluster::start(
        "trace-protocols",
        Options {
            nodes: 2,
            ..traced()
        },
    );
    let n1 = c.node("n1");
    let user = new_user(n1, n1, "tracer");

    // SOAP: the reply (a lookup, then a Fault) carries the request's trace.
    let soap = format!(
        "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:u=\"urn:troupe:users:v1\"><soapenv:Body><u:LookupUser><u:username>{}</u:username>\
         </u:LookupUser></soapenv:Body></soapenv:Envelope>",
        user.username
    );
    for (body, status) in [(soap.as_str(), 200), ("<not-soap/>", 500)] {
        let resp = post_headers_raw(
            &n1.url("/soap"),
            body.as_bytes(),
            &[
                ("content-type", "text/xml; charset=utf-8"),
                ("soapaction", "\"urn:troupe:users:v1#LookupUser\""),
                ("traceparent", GIVEN),
            ],
        );
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let echoed = traceparent_of(&resp);
        assert_eq!(trace_id_of(&echoed), GIVEN_TRACE, "{body}");
        assert_ne!(echoed, GIVEN);
    }

    // gRPC: the response metadata, of an answer and of an error status.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use troupe_proto::auth::user_validation_client::UserValidationClient;
        use troupe_proto::auth::ValidateUserRequest;
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", n1.addrs.grpc))
            .expect("uri")
            .connect()
            .await
            .expect("grpc connect");
        let mut users = UserValidationClient::new(channel);
        let mut req = tonic::Request::new(ValidateUserRequest {
            username: user.username.clone(),
            password: user.password.clone(),
        });
        req.metadata_mut()
            .insert("traceparent", GIVEN.parse().unwrap());
        let resp = users.validate_user(req).await.expect("validate");
        assert!(resp.get_ref().valid);
        let echoed = resp
            .metadata()
            .get("traceparent")
            .expect("traceparent metadata");
        assert_eq!(trace_id_of(echoed.to_str().unwrap()), GIVEN_TRACE);
        // Without one: a fresh trace, answered all the same, on errors too.
        let e = users
            .validate_user(ValidateUserRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let fresh = e
            .metadata()
            .get("traceparent")
            .expect("traceparent on a status");
        assert_ne!(trace_id_of(fresh.to_str().unwrap()), GIVEN_TRACE);
    });

    // WebSocket: the answer to a `send` frame carries the frame's trace, or a fresh one.
    let url = format!(
        "ws://{}/ws/{}?token={}",
        n1.addrs.http, user.id, user.access
    );
    let (mut ws, _) = tungstenite::connect(url).expect("websocket");
    let mut answer = |frame: Value| -> Value {
        ws.send(tungstenite::Message::text(frame.to_string()))
            .expect("send frame");
        loop {
            match ws.read().expect("read frame") {
                tungstenite::Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["ref"] == frame["ref"] {
                        return v;
                    }
                }
                _ => continue,
            }
        }
    };
    let nobody = "00000000-0000-4000-8000-000000000000";
    let v = answer(serde_json::json!({
        "type": "send", "recipient_id": nobody, "ciphertext": "b64:aGk=",
        "ref": "t1", "traceparent": GIVEN,
    }));
    let echoed = v["traceparent"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(trace_id_of(echoed), GIVEN_TRACE, "{v}");
    assert_ne!(echoed, GIVEN);
    assert!(v["type"] == "receipt" || v["type"] == "error", "{v}");
    let v = answer(serde_json::json!({
        "type": "send", "recipient_id": nobody, "ciphertext": "b64:aGk=", "ref": "t2",
    }));
    let fresh = trace_id_of(v["traceparent"].as_str().unwrap_or_else(|| panic!("{v}")));
    assert_ne!(fresh, GIVEN_TRACE);
}

/// The `chromium` binary, or `None` with a printed skip line.
fn chromium(test: &str) -> Option<String> {
    for bin in ["chromium", "chromium-browser"] {
        if Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(bin.to_string());
        }
    }
    println!("skipped: {test} (chromium is not installed)");
    None
}

/// The page's DOM after its script ran (a few polls of virtual time).
fn dump_dom(bin: &str, url: &str, profile: &Path) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=2500",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The attributes of every `<tag ...>` in `dom` that has `class="<class>"`.
fn elements(dom: &str, tag: &str, class: &str) -> Vec<Vec<(String, String)>> {
    let open = format!("<{tag} ");
    dom.match_indices(&open)
        .filter_map(|(i, _)| {
            let end = dom[i..].find('>')? + i;
            let attrs = attributes(&dom[i + open.len()..end]);
            attrs
                .iter()
                .any(|(k, v)| k == "class" && v == class)
                .then_some(attrs)
        })
        .collect()
}

fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 2..];
        let Some(close) = after.find('"') else { break };
        out.push((key, after[..close].to_string()));
        rest = &after[close + 1..];
    }
    out
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The state the picture shows for `node`.
fn drawn_state(dom: &str, node: &str) -> Option<String> {
    elements(dom, "g", "member")
        .iter()
        .find(|a| attr(a, "data-node") == Some(node))
        .and_then(|a| attr(a, "data-state").map(String::from))
}

#[test]
fn the_dashboard_draws_history_cluster_and_placement_and_sees_a_sigkill() {
    const TEST: &str = "the_dashboard_draws_history_cluster_and_placement_and_sees_a_sigkill";
    let Some(bin) = chromium(TEST) else { return };
    let mut c = Cluster::start("dashboard-browser", Options::default());
    let profile = c.dir.join("chromium");

    // Load: sessions on every node (their entities are what the placement view lists),
    // and a steady stream of pings that cross the mesh.
    let user = new_user(c.node("n1"), c.node("n2"), "dash");
    for n in ["n1", "n2", "n3", "n1", "n2", "n3"] {
        let (status, v) = login(c.node(n), &user.username, &user.password);
        assert_eq!(status, 200, "{v}");
        // Verifying the token runs the session's actor on its home node.
        let token = v["access_token"].as_str().unwrap();
        let (status, v) = get(&c.node(n).url("/api/sessions/verify"), Some(token)).unwrap();
        assert_eq!(status, 200, "{v}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .flat_map(|from| {
            ["n1", "n2", "n3"]
                .iter()
                .map(|to| c.node(from).url(&format!("/ping?node={to}")))
                .collect::<Vec<_>>()
        })
        .collect();
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for u in &urls {
                    let _ = get(u, None);
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        })
    };
    // A few seconds of history.
    let n1 = c.node("n1");
    assert!(wait_until(Duration::from_secs(20), || {
        get(&n1.url("/dashboard/state"), None).is_ok_and(|(_, v)| {
            ["n1", "n2", "n3"].iter().all(|n| {
                v["history"][n]["samples"]
                    .as_array()
                    .is_some_and(|s| s.iter().filter(|x| x["rest"].as_u64() > Some(0)).count() >= 3)
            })
        })
    }));

    let dom = dump_dom(&bin, &n1.url("/dashboard"), &profile);
    for node in ["n1", "n2", "n3"] {
        for metric in ["requests", "latency", "mesh", "restarts", "ws", "outbox"] {
            let chart = elements(&dom, "svg", "chart-svg")
                .into_iter()
                .find(|a| {
                    attr(a, "data-node") == Some(node) && attr(a, "data-metric") == Some(metric)
                })
                .unwrap_or_else(|| panic!("no {metric} chart of {node} in:\n{dom}"));
            let points: usize = attr(&chart, "data-points").unwrap().parse().unwrap();
            assert!(points >= 3, "{node} {metric}: {points} points");
        }
        assert_eq!(drawn_state(&dom, node).as_deref(), Some("up"), "{node}");
    }
    // The requests chart draws non-zero rates.
    assert!(dom.contains("REST "), "a legend with the REST rate");
    // The placement lists the sessions of the user, each with where it would move.
    let entities = elements(&dom, "li", "entity");
    assert!(!entities.is_empty(), "no entity listed:\n{dom}");
    assert!(entities.iter().all(|e| attr(e, "data-kind").is_some()));
    assert!(dom.contains("session "), "sessions are listed");

    // SIGKILL n3: the picture (loaded afresh, as a tab polls) shows it down within 2 s.
    let killed_at = Instant::now();
    c.node_mut("n3").kill();
    let mut seen = None;
    loop {
        let started = killed_at.elapsed();
        let dom = dump_dom(&bin, &c.node("n1").url("/dashboard"), &profile);
        if drawn_state(&dom, "n3").as_deref() == Some("down") {
            seen = Some(started);
            break;
        }
        if started > Duration::from_secs(2) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();
    assert!(sent > 0);
    let seen = seen.expect("n3 was never drawn down");
    assert!(
        seen <= Duration::from_secs(2),
        "drawn down by a load started {seen:?} after the kill"
    );
}
