//! Engagement, black-box: real node processes on a 3-node cluster, on the embedded SQLite
//! store and (when `TROUPE_TEST_PG` is set) PostgreSQL. Activities tracked on different
//! nodes add up to the same points and leaderboard from every node; a lesson completed
//! through the training API awards its points once, through the bus, even when marked
//! again; analytics are for admins; bad input names the field.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            ..Options::default()
        },
    )
}

/// Every scenario, on one cluster.
fn suite(c: &Cluster) {
    let admin = admin_token(c);
    activities_tracked_on_different_nodes_agree_from_every_node(c);
    a_completed_lesson_awards_its_points_once(c, &admin);
    analytics_and_feedback_lists_are_for_admins_only(c, &admin);
    bad_engagement_requests_name_the_field_and_change_nothing(c);
}

#[test]
fn engagement_on_sqlite() {
    let c = cluster("engagement-sqlite", None);
    suite(&c);
}

#[test]
fn engagement_on_postgres() {
    let Some(storage) = postgres_storage("engagement_on_postgres") else {
        return;
    };
    let c = cluster("engagement-pg", Some(storage));
    suite(&c);
}

fn track(node: &Node, kind: &str, token: &str) -> Value {
    let (status, v) = send(
        "POST",
        &node.url("/engagement/track"),
        Some(&json!({"kind": kind, "ref": "home"})),
        Some(token),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn points(node: &Node, token: &str) -> Value {
    let (status, v) = send("GET", &node.url("/engagement/points"), None, Some(token));
    assert_eq!(status, 200, "{v}");
    v
}

fn activities_tracked_on_different_nodes_agree_from_every_node(c: &Cluster) {
    let ann = new_user(c.node("n1"), c.node("n2"), "eng_ann");
    let bob = new_user(c.node("n2"), c.node("n3"), "eng_bob");
    // ann: share (5) on each node, five times in all: 25 points, the bronze badge.
    let mut last = Value::Null;
    for (i, n) in ["n1", "n2", "n3", "n1", "n2"].iter().enumerate() {
        last = track(c.node(n), "share", &ann.access);
        assert_eq!(last["awarded"], 5, "{last}");
        assert_eq!(last["points"], 5 * (i as i64 + 1), "{last}");
    }
    assert_eq!(last["new_badges"], json!(["bronze"]), "{last}");
    track(c.node("n3"), "comment", &bob.access);
    for n in ["n1", "n2", "n3"] {
        let p = points(c.node(n), &ann.access);
        assert_eq!(
            (p["points"].as_i64(), &p["badges"]),
            (Some(25), &json!(["bronze"])),
            "{n}: {p}"
        );
        let p = points(c.node(n), &bob.access);
        assert_eq!(p["points"], 3, "{n}: {p}");
        let (status, b) = send(
            "GET",
            &c.node(n).url("/engagement/badges"),
            None,
            Some(&ann.access),
        );
        assert_eq!(status, 200, "{b}");
        assert_eq!(
            b["items"][0],
            json!({"name": "bronze", "threshold": 25, "earned": true})
        );
    }
    // Another user's points: not for a non-admin.
    let (status, v) = send(
        "GET",
        &c.node("n2")
            .url(&format!("/engagement/points?user_id={}", ann.id)),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 403, "{v}");

    let boards: Vec<Value> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            let (status, v) = send(
                "GET",
                &c.node(n).url("/engagement/leaderboard?limit=100"),
                None,
                Some(&bob.access),
            );
            assert_eq!(status, 200, "{v}");
            v["items"].clone()
        })
        .collect();
    assert_eq!(boards[0], boards[1]);
    assert_eq!(boards[1], boards[2]);
    let items = boards[0].as_array().unwrap();
    // A shared PostgreSQL database may hold other runs' users: only a short board is whole.
    if items.len() < 100 {
        let rank = |id: &str| items.iter().position(|s| s["user_id"] == id);
        let (a, b) = (rank(&ann.id).unwrap(), rank(&bob.id).unwrap());
        assert!(a < b, "{boards:?}");
        assert_eq!(items[a]["username"], ann.username.as_str());
        assert_eq!(items[a]["points"], 25);
    }
}

fn a_completed_lesson_awards_its_points_once(c: &Cluster, admin: &str) {
    let n1 = c.node("n1");
    let (status, course) = send(
        "POST",
        &n1.url("/training/courses"),
        Some(&json!({
            "title": format!("Engagement {}", unique()),
            "lessons": [{"title": "One"}, {"title": "Two"}],
        })),
        Some(admin),
    );
    assert_eq!(status, 201, "{course}");
    let id = course["id"].as_str().unwrap();
    let u = new_user(c.node("n2"), c.node("n3"), "eng_learner");
    let (status, v) = send(
        "POST",
        &c.node("n2").url(&format!("/training/courses/{id}/enroll")),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    let progress = c
        .node("n3")
        .url(&format!("/training/courses/{id}/progress"));
    let body = json!({"lesson_id": course["lessons"][0]["id"], "completed": true});
    for _ in 0..2 {
        // The second mark changes nothing, so publishes nothing.
        let (status, v) = send("PUT", &progress, Some(&body), Some(&u.access));
        assert_eq!(status, 200, "{v}");
    }
    let awarded = wait_until(Duration::from_secs(20), || {
        points(c.node("n1"), &u.access)["points"] == 10
    });
    assert!(awarded, "{}", points(c.node("n1"), &u.access));
    // Withdrawn and marked again: a new event about the same lesson, no more points.
    for completed in [false, true] {
        let body = json!({"lesson_id": course["lessons"][0]["id"], "completed": completed});
        let (status, v) = send("PUT", &progress, Some(&body), Some(&u.access));
        assert_eq!(status, 200, "{v}");
    }
    // Redelivery of one event is covered by the unit tests; here, nothing more arrives.
    std::thread::sleep(Duration::from_secs(2));
    for n in ["n1", "n2", "n3"] {
        assert_eq!(points(c.node(n), &u.access)["points"], 10, "{n}");
    }
}

fn analytics_and_feedback_lists_are_for_admins_only(c: &Cluster, admin: &str) {
    let u = new_user(c.node("n1"), c.node("n3"), "eng_fb");
    let (status, f) = send(
        "POST",
        &c.node("n2").url("/engagement/feedback"),
        Some(&json!({"rating": 5, "text": "great sessions", "ref": "course"})),
        Some(&u.access),
    );
    assert_eq!(status, 201, "{f}");
    assert_eq!(
        (f["rating"].as_i64(), f["ref"].as_str()),
        (Some(5), Some("course"))
    );
    for path in ["/engagement/analytics", "/engagement/feedback"] {
        let (status, v) = send("GET", &c.node("n3").url(path), None, Some(&u.access));
        assert_eq!(status, 403, "{path}: {v}");
    }
    track(c.node("n1"), "login", &u.access);
    let (status, a) = send(
        "GET",
        &c.node("n3").url("/engagement/analytics?days=7"),
        None,
        Some(admin),
    );
    assert_eq!(status, 200, "{a}");
    assert!(a["active_users"][0]["users"].as_i64().unwrap() >= 1, "{a}");
    let kinds: Vec<&str> = a["top_activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"login"), "{a}");
    assert!(a["feedback_count"].as_i64().unwrap() >= 1, "{a}");
    let (status, l) = send(
        "GET",
        &c.node("n1").url("/engagement/feedback?per_page=100"),
        None,
        Some(admin),
    );
    assert_eq!(status, 200, "{l}");
    assert!(l["total"].as_u64().unwrap() >= 1, "{l}");
    let (status, v) = send(
        "GET",
        &c.node("n1").url("/engagement/points?user_id=no-such-user"),
        None,
        Some(admin),
    );
    assert_eq!(status, 404, "{v}");
}

fn bad_engagement_requests_name_the_field_and_change_nothing(c: &Cluster) {
    let n2 = c.node("n2");
    let u = new_user(c.node("n1"), n2, "eng_bad");
    for (body, field) in [
        (json!({}), "kind"),
        (json!({"kind": "juggling"}), "kind"),
        (json!({"kind": "lesson_completed"}), "kind"),
        (json!({"kind": 3}), "kind"),
        (json!({"kind": "share", "ref": "x".repeat(201)}), "ref"),
    ] {
        let (status, v) = send(
            "POST",
            &n2.url("/engagement/track"),
            Some(&body),
            Some(&u.access),
        );
        assert_eq!(
            (status, field_errors(&v)),
            (400, vec![field.to_string()]),
            "{body}: {v}"
        );
    }
    for body in [
        json!({}),
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": "5"}),
    ] {
        let (status, v) = send(
            "POST",
            &n2.url("/engagement/feedback"),
            Some(&body),
            Some(&u.access),
        );
        assert_eq!(
            (status, field_errors(&v)),
            (400, vec!["rating".to_string()]),
            "{body}: {v}"
        );
    }
    let (status, v) = send(
        "GET",
        &n2.url("/engagement/leaderboard?limit=1000"),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = send("GET", &n2.url("/engagement/points"), None, None);
    assert_eq!(status, 401, "{v}");
    assert_eq!(points(n2, &u.access)["points"], 0);
}
