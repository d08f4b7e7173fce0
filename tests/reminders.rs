//! Durable reminders, black-box: a 3-node cluster of real processes, on the embedded SQLite
//! store and (when `TROUPE_TEST_PG` is set) PostgreSQL. A seat at an event schedules a
//! reminder before it starts and an attendance timer at its end; the node that owns the
//! reminder's shard is SIGKILLed before it is due, and a survivor fires it, once: one
//! `reminder.due` notification, and the attendance earns its points once. A cancelled
//! registration's reminder is dropped and never fires. A coaching booking inside its lead
//! time reminds its client at once.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// Lead time of an event's reminder in these clusters.
const BEFORE_S: u64 = 20;

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            extra_toml: format!(
                "\n[reminders]\nevent_before_s = {BEFORE_S}\nbooking_before_s = 86400\npoll_ms = 200\n"
            ),
            ..Options::default()
        },
    )
}

#[test]
fn reminders_on_sqlite() {
    let c = cluster("reminders-sqlite", None);
    a_reminder_fires_once_from_a_survivor_and_a_cancelled_one_never(c);
}

#[test]
fn reminders_on_postgres() {
    let Some(storage) = postgres_storage("reminders_on_postgres") else {
        return;
    };
    let c = cluster("reminders-pg", Some(storage));
    a_reminder_fires_once_from_a_survivor_and_a_cancelled_one_never(c);
}

/// RFC 3339 UTC, `secs` from now, on a whole second.
fn rfc3339_in(secs: i64) -> String {
    let now = troupe_actors::store::time::now_ms();
    troupe_actors::store::time::rfc3339_millis((now / 1000 + secs) * 1000)
}

fn admin(node: &Node, path: &str) -> Value {
    let (status, v) = send("GET", &node.url(path), None, Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn notifications_of(node: &Node, user: &User, kind: &str) -> Vec<Value> {
    let (status, v) = send("GET", &node.url("/notifications"), None, Some(&user.access));
    assert_eq!(status, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == kind)
        .cloned()
        .collect()
}

fn a_reminder_fires_once_from_a_survivor_and_a_cancelled_one_never(mut c: Cluster) {
    let (n1, n2, n3) = (c.node("n1"), c.node("n2"), c.node("n3"));
    let organiser = new_user(n1, n2, "org");
    let (ann, bob) = (new_user(n2, n3, "ann"), new_user(n3, n1, "bob"));
    // Starts in 30 s: the reminder is due in 10 s; ends 2 s later.
    let (status, e) = send(
        "POST",
        &n1.url("/events"),
        Some(&json!({
            "title": "Stand-up",
            "location": "Room 2",
            "start": rfc3339_in(30),
            "end": rfc3339_in(32),
            "capacity": 5,
        })),
        Some(&organiser.access),
    );
    assert_eq!(status, 201, "{e}");
    let id = e["id"].as_str().unwrap().to_string();
    for (node, user) in [(n2, &ann), (n3, &bob)] {
        let (status, v) = send(
            "POST",
            &node.url(&format!("/events/{id}/register")),
            None,
            Some(&user.access),
        );
        assert_eq!((status, &v["status"]), (200, &json!("registered")), "{v}");
    }
    // Bob cancels: his reminder and attendance go with the registration.
    let (status, v) = send(
        "DELETE",
        &n1.url(&format!("/events/{id}/register")),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 200, "{v}");
    let path = |user: &User| format!("/admin/reminders?subject=event:{id}&user_id={}", user.id);
    assert_eq!(admin(n1, &path(&bob))["total"], 0);
    let mine = admin(n2, &path(&ann));
    assert_eq!(mine["total"], 2, "{mine}");
    let items = mine["items"].as_array().unwrap();
    let reminder = items.iter().find(|r| r["kind"] == "reminder.due").unwrap();
    assert_eq!(reminder["state"], "pending");
    assert_eq!(reminder["expires_at"], e["start"]);
    let owner = reminder["owner"].as_str().unwrap().to_string();
    // Every node agrees who fires it.
    for n in ["n1", "n2", "n3"] {
        assert_eq!(
            admin(c.node(n), &path(&ann))["items"][0]["owner"],
            items[0]["owner"]
        );
    }
    // Not for anyone but admins.
    let (status, _) = send("GET", &n1.url(&path(&ann)), None, Some(&ann.access));
    assert_eq!(status, 403);
    let (status, v) = send(
        "GET",
        &n1.url("/admin/reminders?state=soon"),
        None,
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 400, "{v}");

    // Bob books the next open coaching slot: it starts within the day's lead time, so its
    // reminder is due at once.
    let admin_access = admin_token(&c);
    let every_day: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "23:59"}))
        .collect();
    let (status, coach) = send(
        "POST",
        &n1.url("/coaching/coaches"),
        Some(
            &json!({"name": "Kim", "timezone": "UTC", "slot_minutes": 30, "availability": every_day}),
        ),
        Some(&admin_access),
    );
    assert_eq!(status, 201, "{coach}");
    let coach = coach["id"].as_str().unwrap().to_string();
    let (status, open) = send(
        "GET",
        &n2.url(&format!(
            "/coaching/coaches/{coach}/availability?from={}&to={}",
            rfc3339_in(60),
            rfc3339_in(2 * 86_400)
        )),
        None,
        Some(&bob.access),
    );
    assert_eq!(status, 200, "{open}");
    let slot = open["slots"][0]["start"].as_str().unwrap().to_string();
    let (status, booking) = send(
        "POST",
        &n3.url("/coaching/bookings"),
        Some(&json!({"coach_id": coach, "start": slot})),
        Some(&bob.access),
    );
    assert_eq!(status, 201, "{booking}");

    // The owner dies before the reminder is due; a survivor fires it.
    c.node_mut(&owner).kill();
    let survivor = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != owner)
        .unwrap();
    let s = c.node(survivor);
    assert!(
        wait_until(Duration::from_secs(40), || {
            !notifications_of(s, &ann, "reminder.due").is_empty()
        }),
        "no reminder for ann; logs:\n{}",
        c.logs()
    );
    let fired = admin(s, &path(&ann));
    let fired = fired["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "reminder.due")
        .unwrap()
        .clone();
    assert_eq!(fired["state"], "fired", "{fired}");
    assert_ne!(fired["fired_by"], json!(owner), "{fired}");
    assert_ne!(fired["owner"], json!(owner), "{fired}");
    // Attendance at the end earns its points, once.
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (_, p) = send("GET", &s.url("/engagement/points"), None, Some(&ann.access));
            p["points"] == 15
        }),
        "no attendance points for ann"
    );
    std::thread::sleep(Duration::from_secs(2));
    let reminders = notifications_of(s, &ann, "reminder.due");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0]["title"], "Reminder: Stand-up", "{reminders:?}");
    let (_, p) = send("GET", &s.url("/engagement/points"), None, Some(&ann.access));
    assert_eq!(p["points"], 15, "{p}");
    // Bob: the booking's reminder only, none for the registration he cancelled.
    let bobs = notifications_of(s, &bob, "reminder.due");
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert_eq!(
        bobs[0]["title"], "Reminder: Coaching session with Kim",
        "{bobs:?}"
    );
    assert_eq!(bobs[0]["data"]["booking_id"], booking["id"], "{bobs:?}");
    let done = admin(
        s,
        &format!("/admin/reminders?subject=event:{id}&state=done"),
    );
    assert_eq!(done["total"], 2, "{done}");
}
