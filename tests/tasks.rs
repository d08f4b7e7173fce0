//! Tasks and todos, black-box: real node processes, on the embedded SQLite store and (when
//! `TROUPE_TEST_PG` is set) PostgreSQL. A task runs in an actor on its home node and is read
//! from any node; losing that node mid-way hands the task to a survivor.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const TASKS: &str = "/api/v1/eventstreammonitor/tasks";

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            // Scan often, so a task whose node died is picked up quickly even without the
            // membership change (which normally triggers it at once).
            extra_toml: "[tasks]\nscan_interval_ms = 500\n".into(),
            ..Options::default()
        },
    )
}

/// Every scenario, on one cluster; the node kill comes last.
fn suite(c: &mut Cluster) {
    task_created_on_n2_runs_to_completion_with_progress_visible_from_n1(c);
    cancel_stops_a_task_and_cancelling_a_finished_task_is_409(c);
    tasks_are_owner_only_and_admins_see_all(c);
    bad_task_requests_are_refused_and_create_nothing(c);
    todos_work_across_nodes(c);
    todos_are_isolated_between_users(c);
    bad_todo_requests_are_refused_and_change_nothing(c);
    a_task_whose_node_is_sigkilled_finishes_on_a_survivor_with_each_step_done_once(c);
}

#[test]
fn tasks_and_todos_on_sqlite() {
    let mut c = cluster("tasks-sqlite", None);
    suite(&mut c);
}

#[test]
fn tasks_and_todos_on_postgres() {
    let Some(storage) = postgres_storage("tasks_and_todos_on_postgres") else {
        return;
    };
    let mut c = cluster("tasks-pg", Some(storage));
    suite(&mut c);
}

fn task(node: &Node, id: &str, token: &str) -> Value {
    let (status, v) = send(
        "GET",
        &node.url(&format!("{TASKS}/{id}")),
        None,
        Some(token),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn create_task(node: &Node, body: Value, token: &str) -> Value {
    let (status, v) = send("POST", &node.url(TASKS), Some(&body), Some(token));
    assert_eq!(status, 201, "{v}");
    v
}

/// The steps of the task's log, in order.
fn logged_steps(t: &Value) -> Vec<u64> {
    t["history"]
        .as_array()
        .map(|h| h.iter().map(|s| s["step"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

fn task_created_on_n2_runs_to_completion_with_progress_visible_from_n1(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "runner");
    let t = create_task(
        c.node("n2"),
        json!({"name": "report", "payload": {"rows": 3}, "steps": 6, "delay_ms": 150}),
        &u.access,
    );
    assert_eq!(t["name"], "report");
    assert_eq!(t["payload"]["rows"], 3);
    assert_eq!(t["user_id"], u.id.as_str());
    assert_eq!(t["progress"]["steps"], 6);
    assert!(t["status"] == "running" || t["status"] == "pending", "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        let v = task(c.node("n1"), &id, &u.access);
        let step = v["progress"]["step"].as_u64().unwrap();
        if seen.last() != Some(&step) {
            seen.push(step);
        }
        v["status"] == "completed"
    });
    assert!(
        done,
        "task never completed; seen steps {seen:?}\n{}",
        c.logs()
    );
    assert!(
        seen.len() >= 3,
        "progress not visible while running: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let v = task(c.node("n1"), &id, &u.access);
    assert_eq!(v["progress"]["percent"], 100.0);
    assert_eq!(v["progress"]["step"], 6);
    assert_eq!(logged_steps(&v), (1..=6).collect::<Vec<_>>());
    assert!(v["finished_at"].is_string() && v["error"].is_null());
    // The same from n3.
    assert_eq!(task(c.node("n3"), &id, &u.access)["status"], "completed");
}

fn cancel_stops_a_task_and_cancelling_a_finished_task_is_409(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n1"), "canceller");
    let t = create_task(
        c.node("n1"),
        json!({"name": "long", "steps": 500, "delay_ms": 60}),
        &u.access,
    );
    let id = t["id"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(10), || task(
        c.node("n3"),
        &id,
        &u.access
    )["progress"]["step"]
        .as_u64()
        .unwrap()
        >= 2));
    let url = c.node("n3").url(&format!("{TASKS}/{id}/cancel"));
    let (status, v) = send("PUT", &url, None, Some(&u.access));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    let at = v["progress"]["step"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let later = task(c.node("n2"), &id, &u.access);
    assert_eq!(later["status"], "cancelled");
    assert_eq!(
        later["progress"]["step"].as_u64(),
        Some(at),
        "progress stopped"
    );
    assert_eq!(logged_steps(&later).len() as u64, at);
    let (status, v) = send("PUT", &url, None, Some(&u.access));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "failed_precondition");

    let quick = create_task(
        c.node("n2"),
        json!({"name": "quick", "steps": 1, "delay_ms": 0}),
        &u.access,
    );
    let qid = quick["id"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(10), || task(
        c.node("n1"),
        &qid,
        &u.access
    )["status"]
        == "completed"));
    let (status, v) = send(
        "PUT",
        &c.node("n1").url(&format!("{TASKS}/{qid}/cancel")),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["message"], "task is already completed");
}

fn tasks_are_owner_only_and_admins_see_all(c: &Cluster) {
    let alice = new_user(c.node("n1"), c.node("n2"), "talice");
    let bob = new_user(c.node("n2"), c.node("n3"), "tbob");
    let t = create_task(
        c.node("n1"),
        json!({"name": "a1", "steps": 1, "delay_ms": 0}),
        &alice.access,
    );
    let long = create_task(
        c.node("n2"),
        json!({"name": "a2", "steps": 1000, "delay_ms": 1000}),
        &alice.access,
    );
    create_task(
        c.node("n3"),
        json!({"name": "b1", "steps": 1, "delay_ms": 0}),
        &bob.access,
    );
    let id = t["id"].as_str().unwrap();

    let (status, v) = send(
        "GET",
        &c.node("n2").url(&format!("{TASKS}/{id}")),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 404, "{v}");
    let (status, _) = send(
        "PUT",
        &c.node("n3").url(&format!("{TASKS}/{id}/cancel")),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 404);
    let (status, _) = send(
        "GET",
        &c.node("n2").url(&format!("{TASKS}/{id}")),
        None,
        None,
    );
    assert_eq!(status, 401);

    let (status, v) = send("GET", &c.node("n3").url(TASKS), None, Some(&alice.access));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 2);
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["user_id"] == alice.id.as_str()));
    assert!(wait_until(Duration::from_secs(10), || {
        let (_, v) = send(
            "GET",
            &c.node("n1").url(&format!("{TASKS}?status=completed")),
            None,
            Some(&alice.access),
        );
        v["total"] == 1 && v["items"][0]["id"] == id
    }));
    let (_, v) = send(
        "GET",
        &c.node("n1")
            .url(&format!("{TASKS}?status=running&per_page=1")),
        None,
        Some(&alice.access),
    );
    assert_eq!(
        (v["total"].as_u64(), v["items"].as_array().unwrap().len()),
        (Some(1), 1)
    );
    let (status, v) = send(
        "GET",
        &c.node("n1").url(&format!("{TASKS}?status=done")),
        None,
        Some(&alice.access),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(field_errors(&v), ["status"]);

    let admin = admin_token(c);
    let (status, v) = send(
        "GET",
        &c.node("n2").url(&format!("{TASKS}?per_page=100")),
        None,
        Some(&admin),
    );
    assert_eq!(status, 200, "{v}");
    let owners: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user_id"].as_str().unwrap())
        .collect();
    assert!(
        owners.contains(&alice.id.as_str()) && owners.contains(&bob.id.as_str()),
        "{v}"
    );
    assert_eq!(task(c.node("n3"), id, &admin)["name"], "a1");
    let (_, v) = send(
        "GET",
        &c.node("n2").url(&format!("{TASKS}?user_id={}", bob.id)),
        None,
        Some(&admin),
    );
    assert_eq!(v["total"], 1);
    // An admin may cancel another user's task.
    let long_id = long["id"].as_str().unwrap();
    let url = c.node("n1").url(&format!("{TASKS}/{long_id}/cancel"));
    let (status, v) = send("PUT", &url, None, Some(&admin));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
}

fn bad_task_requests_are_refused_and_create_nothing(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n1"), "tbad");
    let url = c.node("n2").url(TASKS);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"payload": {}}), vec!["name"]),
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "x".repeat(201)}), vec!["name"]),
        (
            json!({"name": "x", "steps": 0, "delay_ms": -5}),
            vec!["delay_ms", "steps"],
        ),
        (json!({"name": "x", "steps": "ten"}), vec!["steps"]),
        (json!({"name": "x", "steps": 1.5}), vec!["steps"]),
        (
            json!({"name": 7, "resumable": "yes"}),
            vec!["name", "resumable"],
        ),
        (
            json!({"name": "x", "steps": 3, "fail_at_step": 9}),
            vec!["fail_at_step"],
        ),
        (
            json!({"name": "x", "payload": "p".repeat(17 * 1024)}),
            vec!["payload"],
        ),
    ];
    for (body, fields) in cases {
        let (status, v) = send("POST", &url, Some(&body), Some(&u.access));
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_argument");
        assert_eq!(field_errors(&v), fields, "{body}: {v}");
    }
    for raw in ["{\"name\": ", "[1, 2]", "\"name\""] {
        let (status, v) =
            post_raw(&url, raw.as_bytes(), "application/json", Some(&u.access)).unwrap();
        assert_eq!(status, 400, "{raw}: {v}");
        assert_eq!(v["error"]["code"], "invalid_argument");
    }
    let (status, _) = send("POST", &url, Some(&json!({"name": "x"})), None);
    assert_eq!(status, 401);
    let (status, v) = send(
        "GET",
        &c.node("n1").url(&format!("{TASKS}/no-such-task")),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 404, "{v}");
    let (_, v) = send("GET", &c.node("n3").url(TASKS), None, Some(&u.access));
    assert_eq!(v["total"], 0, "nothing was created: {v}");
}

fn todos_work_across_nodes(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "todoer");
    let (status, t) = send(
        "POST",
        &c.node("n1").url("/todos"),
        Some(&json!({"title": "write tests", "description": "for todos", "extra": "ignored"})),
        Some(&u.access),
    );
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (t["status"].as_str(), t["user_id"].as_str()),
        (Some("pending"), Some(u.id.as_str()))
    );
    let url = |n: &str| {
        c.node(n)
            .url(&format!("/todos/{}", t["id"].as_str().unwrap()))
    };
    let (status, v) = send("GET", &url("n2"), None, Some(&u.access));
    assert_eq!((status, v["title"].as_str()), (200, Some("write tests")));
    let (status, v) = send(
        "PUT",
        &url("n3"),
        Some(&json!({"status": "done"})),
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["title"].as_str(),
            v["version"].as_u64()
        ),
        (Some("done"), Some("write tests"), Some(2))
    );
    let (status, v) = send(
        "PUT",
        &url("n1"),
        Some(&json!({"title": "stale", "version": 1})),
        Some(&u.access),
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = send(
        "GET",
        &c.node("n2").url("/todos?status=done"),
        None,
        Some(&u.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(1)), "{v}");
    let (status, v) = send("DELETE", &url("n1"), None, Some(&u.access));
    assert_eq!((status, v["title"].as_str()), (200, Some("write tests")));
    let (status, _) = send("GET", &url("n3"), None, Some(&u.access));
    assert_eq!(status, 404);
    let (status, v) = send("GET", &c.node("n1").url("/todos"), None, Some(&u.access));
    assert_eq!((status, v["total"].as_u64()), (200, Some(0)), "{v}");
}

fn todos_are_isolated_between_users(c: &Cluster) {
    let alice = new_user(c.node("n1"), c.node("n2"), "dalice");
    let bob = new_user(c.node("n2"), c.node("n3"), "dbob");
    let mut alices = Vec::new();
    for i in 0..3 {
        let (status, t) = send(
            "POST",
            &c.node("n1").url("/todos"),
            Some(&json!({"title": format!("alice {i}")})),
            Some(&alice.access),
        );
        assert_eq!(status, 201, "{t}");
        alices.push(t);
    }
    let (status, _) = send(
        "POST",
        &c.node("n2").url("/todos"),
        Some(&json!({"title": "bob's"})),
        Some(&bob.access),
    );
    assert_eq!(status, 201);
    let victim = alices[0]["id"].as_str().unwrap();
    let url = c.node("n3").url(&format!("/todos/{victim}"));
    assert_eq!(send("GET", &url, None, Some(&bob.access)).0, 404);
    assert_eq!(
        send(
            "PUT",
            &url,
            Some(&json!({"title": "pwned"})),
            Some(&bob.access)
        )
        .0,
        404
    );
    assert_eq!(send("DELETE", &url, None, Some(&bob.access)).0, 404);
    assert_eq!(send("GET", &url, None, None).0, 401);
    let (_, v) = send("GET", &url, None, Some(&alice.access));
    assert_eq!(v["title"], "alice 0", "unchanged");

    let (_, v) = send("GET", &c.node("n2").url("/todos"), None, Some(&bob.access));
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["title"], "bob's");
    let (_, v) = send(
        "GET",
        &c.node("n3").url("/todos?per_page=2"),
        None,
        Some(&alice.access),
    );
    assert_eq!(
        (v["total"].as_u64(), v["items"].as_array().unwrap().len()),
        (Some(3), 2)
    );
    let (_, v) = send(
        "GET",
        &c.node("n3").url("/todos?limit=2&offset=2"),
        None,
        Some(&alice.access),
    );
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    let admin = admin_token(c);
    let (status, v) = send(
        "GET",
        &c.node("n1").url("/todos?per_page=100"),
        None,
        Some(&admin),
    );
    assert_eq!(status, 200, "{v}");
    let owners: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user_id"].as_str().unwrap())
        .collect();
    assert!(
        owners.contains(&alice.id.as_str()) && owners.contains(&bob.id.as_str()),
        "{v}"
    );
    assert_eq!(send("GET", &url, None, Some(&admin)).0, 200);
    assert_eq!(
        send(
            "PUT",
            &url,
            Some(&json!({"title": "admin edit"})),
            Some(&admin)
        )
        .0,
        403
    );
    assert_eq!(send("DELETE", &url, None, Some(&admin)).0, 403);
    let (_, v) = send(
        "GET",
        &c.node("n1").url(&format!("/todos?user_id={}", alice.id)),
        None,
        Some(&admin),
    );
    assert_eq!(v["total"], 3);
}

fn bad_todo_requests_are_refused_and_change_nothing(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n1"), "dbad");
    let url = c.node("n2").url("/todos");
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"description": "no title"}), vec!["title"]),
        (json!({"title": "   "}), vec!["title"]),
        (json!({"title": "t".repeat(201)}), vec!["title"]),
        (
            json!({"title": "ok", "description": "d".repeat(2001)}),
            vec!["description"],
        ),
        (json!({"title": "ok", "status": "finished"}), vec!["status"]),
        (
            json!({"title": 42, "status": true}),
            vec!["status", "title"],
        ),
    ];
    for (body, fields) in &cases {
        let (status, v) = send("POST", &url, Some(body), Some(&u.access));
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["message"], "validation failed");
        assert_eq!(field_errors(&v), *fields, "{body}: {v}");
    }
    for raw in ["not json", "{\"title\": \"x\"", "[]", "null"] {
        let (status, v) =
            post_raw(&url, raw.as_bytes(), "application/json", Some(&u.access)).unwrap();
        assert_eq!(status, 400, "{raw}: {v}");
    }
    let (_, v) = send("GET", &url, None, Some(&u.access));
    assert_eq!(v["total"], 0, "nothing created: {v}");

    let (_, t) = send(
        "POST",
        &url,
        Some(&json!({"title": "keep me"})),
        Some(&u.access),
    );
    let one = c
        .node("n3")
        .url(&format!("/todos/{}", t["id"].as_str().unwrap()));
    for (body, fields) in [
        (json!({"status": "DONE"}), vec!["status"]),
        (json!({"title": ""}), vec!["title"]),
        (json!({"title": ["x"]}), vec!["title"]),
        (
            json!({"description": "d".repeat(2001), "status": 1}),
            vec!["description", "status"],
        ),
    ] {
        let (status, v) = send("PUT", &one, Some(&body), Some(&u.access));
        assert_eq!(status, 400, "{body}: {v}");
        let mut want: Vec<&str> = fields.clone();
        want.sort();
        // Type errors are reported before range checks run.
        let got = field_errors(&v);
        assert!(
            !got.is_empty() && got.iter().all(|f| want.contains(&f.as_str())),
            "{body}: {v}"
        );
    }
    let (_, v) = send("GET", &one, None, Some(&u.access));
    assert_eq!(
        (
            v["title"].as_str(),
            v["status"].as_str(),
            v["version"].as_u64()
        ),
        (Some("keep me"), Some("pending"), Some(1))
    );
}

fn a_task_whose_node_is_sigkilled_finishes_on_a_survivor_with_each_step_done_once(c: &mut Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "survivor");
    // Create tasks until one runs on n3 (rendezvous hashing spreads them).
    let mut found = None;
    for _ in 0..40 {
        let t = create_task(
            c.node("n1"),
            json!({"name": "failover", "steps": 25, "delay_ms": 150}),
            &u.access,
        );
        let id = t["id"].as_str().unwrap().to_string();
        let mut node = t["node"].as_str().map(String::from);
        if node.is_none() {
            wait_until(Duration::from_secs(5), || {
                node = task(c.node("n1"), &id, &u.access)["node"]
                    .as_str()
                    .map(String::from);
                node.is_some()
            });
        }
        if node.as_deref() == Some("n3") {
            found = Some(id);
            break;
        }
        // Not on n3: cancel it so it does not load the cluster.
        send(
            "PUT",
            &c.node("n1").url(&format!("{TASKS}/{id}/cancel")),
            None,
            Some(&u.access),
        );
    }
    let id = found.expect("no task ran on n3 in 40 tries");
    assert!(wait_until(Duration::from_secs(10), || task(
        c.node("n1"),
        &id,
        &u.access
    )["progress"]["step"]
        .as_u64()
        .unwrap()
        >= 3));
    c.node_mut("n3").kill();
    let before = task(c.node("n1"), &id, &u.access)["progress"]["step"]
        .as_u64()
        .unwrap();
    assert!(before < 25, "the task finished before the kill");
    let done = wait_until(Duration::from_secs(30), || {
        task(c.node("n1"), &id, &u.access)["status"] == "completed"
    });
    assert!(
        done,
        "task never completed after its node died: {}\n{}",
        task(c.node("n1"), &id, &u.access),
        c.logs()
    );
    let v = task(c.node("n2"), &id, &u.access);
    assert_eq!(
        logged_steps(&v),
        (1..=25).collect::<Vec<_>>(),
        "every step exactly once: {v}"
    );
    let history = v["history"].as_array().unwrap();
    let by_n3 = history.iter().filter(|h| h["node"] == "n3").count() as u64;
    assert!(by_n3 >= before.min(3), "{v}");
    let last_node = history.last().unwrap()["node"].as_str().unwrap();
    assert!(
        last_node == "n1" || last_node == "n2",
        "finished on a survivor: {v}"
    );
    assert_eq!(v["node"].as_str(), Some(last_node));
    assert!(v["activations"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["progress"]["percent"], 100.0);
}
