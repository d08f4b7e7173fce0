//! Every outside channel end to end, and the node's health following each dependency:
//! email through a real SMTP server the test starts (Python's `aiosmtpd`), task and todo
//! events on their MQTT topics as a real subscriber of a private Mosquitto sees them, and
//! `/health` turning `degraded` while the test's own SMTP server or broker is stopped and
//! `ok` once it is back. Real `troupe` processes throughout.
//!
//! The email test needs `python3 -c "import aiosmtpd"` (`.ci/run` installs it); the MQTT
//! test needs `/usr/sbin/mosquitto`. Each prints a `skipped:` line without it.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::mqtt::{Broker, Subscriber};
use support::smtp::SmtpServer;
use support::*;

/// Checks every 200 ms, each bounded at 1 s: a stopped dependency shows within a second.
const FAST_HEALTH: &str = "\n[health]\ncheck_interval_ms = 200\ncheck_timeout_ms = 1000\n";
/// Retries soon after a failed delivery, so a mail or an event waits little once its
/// server is back, and often enough not to become a dead letter meanwhile.
const FAST_RETRY: &str = "\n[events]\nmax_attempts = 1000\nbackoff_base_ms = 20\nbackoff_max_ms = 500\nattempt_timeout_ms = 2000\n";

/// `name`'s entry in a node's `/health`.
fn dependency(health: &Value, name: &str) -> Value {
    health["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until `node`'s `/health` says `status` overall and `status_of_dep` for `dep`;
/// answers that `/health`.
fn wait_health(node: &Node, status: &str, dep: &str, status_of_dep: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(Duration::from_secs(15), || {
        let Ok((code, v)) = get(&node.url("/health"), None) else {
            return false;
        };
        assert_eq!(code, 200, "a node with a dependency down still serves: {v}");
        last = v;
        last["status"] == status && dependency(&last, dep)["status"] == status_of_dep
    });
    assert!(
        ok,
        "{} never {status} with {dep} {status_of_dep}: {last}",
        node.addrs.name
    );
    last
}

/// The six-digit code after `marker` in a mail's text.
fn code_in(mail: &Value, marker: &str) -> String {
    let text = mail["text"].as_str().unwrap_or_default();
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {mail}"));
    let code: String = text[at + marker.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 6, "{mail}");
    code
}

/// The one mail to `to` with `subject` (waiting for it), checked for its sender and
/// recipient header, with its text and HTML parts.
fn one_mail(smtp: &SmtpServer, to: &str, subject: &str) -> Value {
    let found = smtp.wait_for(to, subject, 1, Duration::from_secs(20));
    assert_eq!(
        found.len(),
        1,
        "one {subject:?} mail to {to}: {:?}",
        smtp.messages()
    );
    let mail = found.into_iter().next().unwrap();
    assert_eq!(mail["mail_from"], "noreply@troupe.test", "{mail}");
    assert_eq!(mail["from"], "Troupe <noreply@troupe.test>", "{mail}");
    assert_eq!(mail["to"], to, "{mail}");
    assert!(
        mail["html"].as_str().is_some_and(|h| h.contains("<h1>")),
        "{mail}"
    );
    mail
}

#[test]
fn welcome_code_and_reset_mails_arrive_through_a_real_smtp_server_and_its_outage_shows_on_health() {
    let test = "welcome_code_and_reset_mails_arrive_through_a_real_smtp_server_and_its_outage_shows_on_health";
    if !SmtpServer::available(test) {
        return;
    }
    let dir = scratch_dir("channels-smtp");
    let mut smtp = SmtpServer::new(&dir);
    smtp.start();
    let cluster = Cluster::start(
        "channels-smtp",
        Options {
            nodes: 2,
            extra_toml: format!(
                "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"Troupe <noreply@troupe.test>\"\nstarttls = false\n{FAST_HEALTH}{FAST_RETRY}",
                smtp.port
            ),
            ..Options::default()
        },
    );
    let (n1, n2) = (cluster.node("n1"), cluster.node("n2"));

    // Both dependencies of this node are up: the store and the SMTP server; no broker.
    let h = wait_health(n1, "ok", "smtp", "ok");
    assert_eq!(dependency(&h, "store")["status"], "ok", "{h}");
    assert_eq!(dependency(&h, "store")["target"], "sqlite", "{h}");
    assert_eq!(
        dependency(&h, "smtp")["target"],
        format!("127.0.0.1:{}", smtp.port)
    );
    assert!(
        dependency(&h, "mqtt").is_null(),
        "no [mqtt], no broker: {h}"
    );
    assert!(dependency(&h, "smtp")["latency_ms"].as_f64().unwrap() > 0.0);

    // Registration: a welcome mail and a code mail, to the address registered.
    let username = format!("mail_{}", unique());
    let address = format!("{username}@example.com");
    register(n1, &username, "passw0rd-long");
    let welcome = one_mail(&smtp, &address, "Welcome to Troupe");
    assert!(
        welcome["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Hello {username}, welcome aboard!")),
        "{welcome}"
    );
    let mail = one_mail(&smtp, &address, "Confirm your registration");
    let code = code_in(&mail, "Your confirmation code is");
    // The code in the mail confirms the registration, on another node.
    let (status, v) = post(
        &n2.url("/users/confirm-registration"),
        &json!({"username": username, "code": code}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["confirmed"], true, "{v}");
    one_mail(&smtp, &address, "Registration confirmed");

    // Password reset: the code arrives by mail and resets the password.
    let (status, _) = post(
        &n2.url("/auth/forgot-password"),
        &json!({"email": address}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let mail = one_mail(&smtp, &address, "Password reset");
    let code = code_in(&mail, "Your password reset code is");
    let (status, v) = post(
        &n1.url("/auth/confirm-forgot-password"),
        &json!({"username": username, "code": code, "new_password": "n3w-passw0rd-long"}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    one_mail(&smtp, &address, "Your password was changed");
    assert_eq!(login(n2, &username, "n3w-passw0rd-long").0, 200);

    // The SMTP server stops: both nodes say degraded with its error, and still serve.
    smtp.stop();
    for n in [n1, n2] {
        let mut h = wait_health(n, "degraded", "smtp", "down");
        // Refused once it is gone. A probe in flight as it stopped fails otherwise (a
        // reset, a reply cut short), so the check waits for a probe made after that.
        let refused = wait_until(Duration::from_secs(5), || {
            h = get(&n.url("/health"), None).unwrap().1;
            let smtp_dep = dependency(&h, "smtp");
            smtp_dep["status"] == "down"
                && smtp_dep["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("smtp: Connection error: ")
        });
        assert!(refused, "{}", dependency(&h, "smtp"));
        assert_eq!(h["status"], "degraded", "{h}");
        assert_eq!(dependency(&h, "store")["status"], "ok", "{h}");
    }
    let (status, v) = get(&n1.url("/health/cluster"), None).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["dependencies"]["smtp"]["status"], "down", "{v}");
    assert_eq!(v["dependencies"]["store"]["nodes_up"], 2, "{v}");
    // A reset asked for meanwhile is answered, and its mail waits in the outbox.
    let (status, _) = post(
        &n1.url("/auth/forgot-password"),
        &json!({"username": username}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);

    // Back: ok again, the last error kept, and the waiting mail arrives.
    smtp.start();
    for n in [n1, n2] {
        let h = wait_health(n, "ok", "smtp", "ok");
        let smtp_dep = dependency(&h, "smtp");
        assert!(
            smtp_dep["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("smtp: ")),
            "{smtp_dep}"
        );
        assert!(smtp_dep["since_ms"].as_u64() >= smtp_dep["last_error_at_ms"].as_u64());
    }
    let found = smtp.wait_for(&address, "Password reset", 2, Duration::from_secs(20));
    assert_eq!(
        found.len(),
        2,
        "the reset mail sent while it was down: {found:?}"
    );
    let (status, v) = get(&n2.url("/health/cluster"), None).unwrap();
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")), "{v}");
    drop(smtp);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Messages of `kind` about `id` (under `id_field` of the payload) on `topic`.
fn on_topic(sub: &Subscriber, topic: &str, kind: &str, id_field: &str, id: &str) -> usize {
    sub.messages()
        .iter()
        .filter(|(t, v)| t == topic && v["type"] == kind && v["payload"][id_field] == id)
        .count()
}

/// Waits until the subscriber has seen a `kind` event about `id` on `topic`.
fn wait_topic(sub: &Subscriber, topic: &str, kind: &str, id_field: &str, id: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || on_topic(
            sub, topic, kind, id_field, id
        ) > 0),
        "no {kind} for {id} on {topic}; saw {:?}",
        sub.messages()
            .iter()
            .map(|(t, v)| format!("{t}: {}", v["type"]))
            .collect::<Vec<_>>()
    );
}

#[test]
fn task_and_todo_events_reach_their_mqtt_topics_and_a_broker_outage_shows_on_health() {
    let test = "task_and_todo_events_reach_their_mqtt_topics_and_a_broker_outage_shows_on_health";
    if !Broker::available(test) {
        return;
    }
    let dir = scratch_dir("channels-mqtt");
    let mut broker = Broker::new(&dir, free_port());
    broker.start();
    let sub = Subscriber::start("127.0.0.1", broker.port, "#");
    let cluster = Cluster::start(
        "channels-mqtt",
        Options {
            nodes: 2,
            extra_toml: format!(
                "\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n{FAST_HEALTH}{FAST_RETRY}",
                broker.port
            ),
            ..Options::default()
        },
    );
    let (n1, n2) = (cluster.node("n1"), cluster.node("n2"));
    let h = wait_health(n1, "ok", "mqtt", "ok");
    assert_eq!(
        dependency(&h, "mqtt")["target"],
        format!("127.0.0.1:{}", broker.port)
    );
    assert!(dependency(&h, "smtp").is_null(), "no [smtp]: {h}");

    let user = new_user(n1, n2, "mqtt");
    wait_topic(
        &sub,
        "user-registration-events",
        "user.registered",
        "username",
        &user.username,
    );

    // A task, created on n2, runs to completion: its events on task-processing-events.
    let (status, task) = send(
        "POST",
        &n2.url("/api/v1/eventstreammonitor/tasks"),
        Some(&json!({"name": "report", "steps": 2, "delay_ms": 50})),
        Some(&user.access),
    );
    assert_eq!(status, 201, "{task}");
    let task_id = task["id"].as_str().unwrap();
    for kind in ["task.created", "task.completed"] {
        wait_topic(&sub, "task-processing-events", kind, "task_id", task_id);
    }
    let created = sub
        .messages()
        .into_iter()
        .find(|(_, v)| v["type"] == "task.created" && v["payload"]["task_id"] == task_id)
        .unwrap()
        .1;
    assert_eq!(created["user_id"], user.id.as_str(), "{created}");
    assert_eq!(created["payload"]["name"], "report", "{created}");

    // A todo, created, changed and deleted: each on troupe/events/<kind>.
    let (status, todo) = send(
        "POST",
        &n1.url("/todos"),
        Some(&json!({"title": "ship it"})),
        Some(&user.access),
    );
    assert_eq!(status, 201, "{todo}");
    let todo_id = todo["id"].as_str().unwrap().to_string();
    let url = n2.url(&format!("/todos/{todo_id}"));
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"status": "done"})),
        Some(&user.access),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = send("DELETE", &url, None, Some(&user.access));
    assert!(status == 200 || status == 204, "{status} {v}");
    for kind in ["todo.created", "todo.updated", "todo.deleted"] {
        wait_topic(
            &sub,
            &format!("troupe/events/{kind}"),
            kind,
            "todo_id",
            &todo_id,
        );
    }
    let updated = sub
        .messages()
        .into_iter()
        .find(|(_, v)| v["type"] == "todo.updated" && v["payload"]["todo_id"] == todo_id.as_str())
        .unwrap()
        .1;
    assert_eq!(updated["payload"]["status"], "done", "{updated}");
    assert_eq!(updated["payload"]["title"], "ship it", "{updated}");

    // The broker stops: degraded with its error on both nodes, which still serve.
    broker.stop();
    for n in [n1, n2] {
        let h = wait_health(n, "degraded", "mqtt", "down");
        let mqtt = dependency(&h, "mqtt");
        let error = mqtt["last_error"].as_str().unwrap_or_default();
        // Refused, or reset when the check met the broker going down.
        assert!(error.starts_with("mqtt: I/O: Connection "), "{mqtt}");
    }
    let (status, v) = get(&n2.url("/health/cluster"), None).unwrap();
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("degraded")),
        "{v}"
    );
    assert_eq!(v["dependencies"]["mqtt"]["nodes_up"], 0, "{v}");
    // A todo created meanwhile is acknowledged; its event waits in the outbox.
    let (status, late) = send(
        "POST",
        &n2.url("/todos"),
        Some(&json!({"title": "while the broker is down"})),
        Some(&user.access),
    );
    assert_eq!(status, 201, "{late}");

    // Back: ok on both nodes, and the waiting event reaches the subscriber.
    broker.start();
    for n in [n1, n2] {
        wait_health(n, "ok", "mqtt", "ok");
    }
    wait_topic(
        &sub,
        "troupe/events/todo.created",
        "todo.created",
        "todo_id",
        late["id"].as_str().unwrap(),
    );
    let (status, v) = get(&n1.url("/health/cluster"), None).unwrap();
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")), "{v}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn health_names_the_postgres_store_without_credentials() {
    let Some(storage) = postgres_storage("health_names_the_postgres_store_without_credentials")
    else {
        return;
    };
    let url = std::env::var("TROUPE_TEST_PG").unwrap();
    let cluster = Cluster::start(
        "channels-pg",
        Options {
            nodes: 1,
            storage_toml: storage,
            extra_toml: FAST_HEALTH.into(),
            ..Options::default()
        },
    );
    let h = wait_health(cluster.node("n1"), "ok", "store", "ok");
    let store = dependency(&h, "store");
    let server = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(&url)
        .split('?')
        .next()
        .unwrap();
    let server = server.rsplit_once('@').map_or(server, |(_, s)| s);
    assert_eq!(store["target"], format!("postgres {server}"), "{store}");
    assert!(!store["target"].as_str().unwrap().contains('@'), "{store}");
    assert!(store["latency_ms"].as_f64().unwrap() > 0.0, "{store}");
}
