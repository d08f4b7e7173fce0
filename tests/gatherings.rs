//! Calendar events (the `events` service), black-box: a 3-node cluster of real processes
//! (mutual TLS between them), on the embedded SQLite store and (when `TROUPE_TEST_PG` is
//! set) PostgreSQL. Registrations raced from every node never exceed an event's capacity,
//! the waitlist keeps its order and moves up on a cancellation, and `calendar.ics` reads
//! with an off-the-shelf iCalendar parser (Python's `icalendar`).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use serde_json::{json, Value};
use support::*;

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            // 100 users log in from one address.
            auth_toml: "login_per_ip_per_minute = 100000\nlogin_per_account_per_minute = 1000\n"
                .into(),
            ..Options::default()
        },
    )
}

/// Every scenario, on one cluster.
fn suite(c: &Cluster) {
    let organiser = new_user(c.node("n1"), c.node("n2"), "org");
    capacity_race_from_three_nodes_seats_exactly_ten_and_a_cancellation_promotes_the_first(
        c, &organiser,
    );
    only_the_organiser_or_an_admin_changes_an_event(c, &organiser);
    bad_input_is_refused_naming_the_field(c, &organiser);
    calendar_ics_lists_exactly_the_callers_events_for_a_real_parser(c, &organiser);
}

#[test]
fn events_on_sqlite() {
    let c = cluster("events-sqlite", None);
    suite(&c);
}

#[test]
fn events_on_postgres() {
    let Some(storage) = postgres_storage("events_on_postgres") else {
        return;
    };
    let c = cluster("events-pg", Some(storage));
    suite(&c);
}

fn event_body(title: &str, capacity: i64) -> Value {
    json!({
        "title": title,
        "description": "Bring: pens, paper; and a \\ backslash\nsecond line",
        "location": "Room 4, East wing",
        "start": "2030-03-01T09:30:00Z",
        "end": "2030-03-01T11:00:00+01:00",
        "timezone": "Europe/Paris",
        "capacity": capacity,
    })
}

fn create_event(node: &Node, token: &str, title: &str, capacity: i64) -> String {
    let (status, v) = send(
        "POST",
        &node.url("/events"),
        Some(&event_body(title, capacity)),
        Some(token),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["end"], "2030-03-01T10:00:00.000Z", "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Users `n` at once, each registered on one node and logged in on the next.
fn users(c: &Cluster, n: usize, prefix: &str) -> Vec<User> {
    let names = ["n1", "n2", "n3"];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (a, b) = (c.node(names[i % 3]), c.node(names[(i + 1) % 3]));
                s.spawn(move || new_user(a, b, prefix))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn registrations(node: &Node, event: &str, token: &str) -> Vec<Value> {
    let url = node.url(&format!("/events/{event}/registrations"));
    let (status, v) = send("GET", &url, None, Some(token));
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn capacity_race_from_three_nodes_seats_exactly_ten_and_a_cancellation_promotes_the_first(
    c: &Cluster,
    organiser: &User,
) {
    let event = create_event(c.node("n1"), &organiser.access, "Popular talk", 10);
    let racers = users(c, 100, "racer");
    let barrier = Arc::new(Barrier::new(racers.len()));
    let names = ["n1", "n2", "n3"];
    let answers: Vec<(String, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = racers
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let node = c.node(names[i % 3]);
                let url = node.url(&format!("/events/{event}/register"));
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    let (status, v) = send("POST", &url, None, Some(&u.access));
                    assert_eq!(status, 200, "{v}");
                    (u.id.clone(), v)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seated = answers
        .iter()
        .filter(|(_, v)| v["status"] == "registered")
        .count();
    let mut positions: Vec<u64> = answers
        .iter()
        .filter(|(_, v)| v["status"] == "waitlisted")
        .map(|(_, v)| {
            v["position"]
                .as_u64()
                .expect("a waitlisted answer has a position")
        })
        .collect();
    positions.sort_unstable();
    assert_eq!(seated, 10);
    assert_eq!(positions, (1..=90).collect::<Vec<u64>>());

    // The organiser's list: 10 seats, then the waitlist in the order registrations were
    // accepted, each at the position its registrant was told.
    let list = registrations(c.node("n2"), &event, &organiser.access);
    assert_eq!(list.len(), 100);
    assert!(list[..10].iter().all(|r| r["status"] == "registered"));
    for (i, r) in list[10..].iter().enumerate() {
        assert_eq!(r["status"], "waitlisted", "{r}");
        assert_eq!(r["position"], (i + 1) as u64, "{r}");
        let told = answers.iter().find(|(id, _)| *id == r["user_id"]).unwrap();
        assert_eq!(told.1["position"], r["position"], "{r}");
    }
    let (status, e) = send(
        "GET",
        &c.node("n3").url(&format!("/events/{event}")),
        None,
        Some(&organiser.access),
    );
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        (e["registered"].as_u64(), e["waitlisted"].as_u64()),
        (Some(10), Some(90))
    );

    // A seat holder cancels (on n3): position 1 takes the seat, position 2 becomes 1.
    let first = list[10]["user_id"].as_str().unwrap().to_string();
    let second = list[11]["user_id"].as_str().unwrap().to_string();
    let holder = racers.iter().find(|u| u.id == list[0]["user_id"]).unwrap();
    let url = c.node("n3").url(&format!("/events/{event}/register"));
    let (status, v) = send("DELETE", &url, None, Some(&holder.access));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let (status, v) = send("DELETE", &url, None, Some(&holder.access));
    assert_eq!(status, 404, "{v}");
    let list = registrations(c.node("n1"), &event, &organiser.access);
    let of = |id: &str| list.iter().find(|r| r["user_id"] == id).unwrap().clone();
    assert_eq!(of(&first)["status"], "registered");
    assert_eq!(
        (
            of(&second)["status"].as_str(),
            of(&second)["position"].as_u64()
        ),
        (Some("waitlisted"), Some(1))
    );
    assert_eq!(
        list.iter().filter(|r| r["status"] == "registered").count(),
        10
    );

    // Capacity below the seats taken is refused, naming the field.
    let (status, v) = send(
        "PUT",
        &c.node("n2").url(&format!("/events/{event}")),
        Some(&json!({"capacity": 9})),
        Some(&organiser.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["capacity".to_string()]),
        "{v}"
    );
}

fn only_the_organiser_or_an_admin_changes_an_event(c: &Cluster, organiser: &User) {
    let event = create_event(c.node("n2"), &organiser.access, "Private", 5);
    let other = new_user(c.node("n3"), c.node("n1"), "other");
    let url = c.node("n1").url(&format!("/events/{event}"));
    let change = json!({"title": "Hijacked"});
    let (status, v) = send("PUT", &url, Some(&change), Some(&other.access));
    assert_eq!(status, 403, "{v}");
    let (status, v) = send("DELETE", &url, None, Some(&other.access));
    assert_eq!(status, 403, "{v}");
    let regs = c.node("n1").url(&format!("/events/{event}/registrations"));
    let (status, v) = send("GET", &regs, None, Some(&other.access));
    assert_eq!(status, 403, "{v}");
    let (status, v) = send("GET", &url, None, Some(&other.access));
    assert_eq!((status, v["title"].as_str()), (200, Some("Private")), "{v}");

    let (status, v) = login(c.node("n2"), "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    let admin = v["access_token"].as_str().unwrap().to_string();
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"title": "Renamed"})),
        Some(&admin),
    );
    assert_eq!((status, v["title"].as_str()), (200, Some("Renamed")), "{v}");
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"location": "Room 9"})),
        Some(&organiser.access),
    );
    assert_eq!(
        (status, v["location"].as_str()),
        (200, Some("Room 9")),
        "{v}"
    );
    let (status, v) = send("DELETE", &url, None, Some(&organiser.access));
    assert_eq!(status, 200, "{v}");
    let (status, v) = send("GET", &url, None, Some(&other.access));
    assert_eq!(status, 404, "{v}");
    let (status, v) = send("GET", &url, None, None);
    assert_eq!(status, 401, "{v}");
}

fn bad_input_is_refused_naming_the_field(c: &Cluster, organiser: &User) {
    let n = c.node("n3");
    let post = |body: Value| {
        send(
            "POST",
            &n.url("/events"),
            Some(&body),
            Some(&organiser.access),
        )
    };
    let (status, v) = post(json!({}));
    assert_eq!(status, 400, "{v}");
    assert_eq!(field_errors(&v), ["capacity", "end", "start", "title"]);
    let cases = [
        ("timezone", json!({"timezone": "Mars/Olympus_Mons"})),
        ("start", json!({"start": "1 March 2030"})),
        ("end", json!({"end": "2030-03-01T08:00:00Z"})),
        ("capacity", json!({"capacity": 0})),
        ("capacity", json!({"capacity": "ten"})),
        ("title", json!({"title": "  "})),
    ];
    for (field, patch) in cases {
        let mut body = event_body("Bad", 3);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = post(body);
        assert_eq!(
            (status, field_errors(&v)),
            (400, vec![field.to_string()]),
            "{v}"
        );
    }
    let (status, v) = send(
        "POST",
        &n.url("/events/no-such-event/register"),
        None,
        Some(&organiser.access),
    );
    assert_eq!(status, 404, "{v}");
}

const ICAL_SCRIPT: &str = r#"
import json, sys
try:
    import icalendar
except ImportError:
    print("NO_ICALENDAR")
    sys.exit(0)
from datetime import timezone
cal = icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
out = {"version": str(cal.get("version")), "prodid": str(cal.get("prodid")), "events": []}
# The calendar's own VTIMEZONE rules, not the parser's tz database.
zones = {str(z["tzid"]): z.to_tz() for z in cal.walk("VTIMEZONE")}
for e in cal.walk("VEVENT"):
    tzid = e["dtstart"].params.get("TZID")
    start = e.decoded("dtstart")
    own = zones[tzid].utcoffset(start.replace(tzinfo=None)) if tzid in zones else None
    out["events"].append({
        "uid": str(e.get("uid")),
        "summary": str(e.get("summary")),
        "location": str(e.get("location")),
        "description": str(e.get("description")),
        "start": start.astimezone(timezone.utc).isoformat(),
        "end": e.decoded("dtend").astimezone(timezone.utc).isoformat(),
        "stamp": e.decoded("dtstamp").isoformat(),
        "tzid": tzid,
        "local_start": start.replace(tzinfo=None).isoformat(),
        "vtimezone_offset_s": own.total_seconds() if own is not None else None,
    })
print(json.dumps(out))
"#;

/// `python3 -m pip install icalendar` unless it imports; whether it imports afterwards.
fn icalendar_available() -> bool {
    let imports = || {
        std::process::Command::new("python3")
            .args(["-c", "import icalendar"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports() {
        return true;
    }
    let _ = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "icalendar",
        ])
        .status();
    imports()
}

fn calendar_ics_lists_exactly_the_callers_events_for_a_real_parser(c: &Cluster, organiser: &User) {
    let long = format!("Planning, review; retro \\ {}", "long title ".repeat(12));
    let a = create_event(c.node("n1"), &organiser.access, &long, 5);
    let b = create_event(c.node("n2"), &organiser.access, "Second", 5);
    let full = create_event(c.node("n3"), &organiser.access, "Full", 1);
    let theirs = create_event(c.node("n3"), &organiser.access, "Not mine", 5);
    let [me, someone]: [User; 2] = users(c, 2, "cal").try_into().unwrap();
    let register = |node: &str, event: &str, u: &User| {
        let url = c.node(node).url(&format!("/events/{event}/register"));
        let (status, v) = send("POST", &url, None, Some(&u.access));
        assert_eq!(status, 200, "{v}");
        v["status"].as_str().unwrap().to_string()
    };
    assert_eq!(register("n1", &a, &me), "registered");
    assert_eq!(register("n2", &b, &me), "registered");
    assert_eq!(register("n3", &full, &someone), "registered");
    assert_eq!(register("n1", &full, &me), "waitlisted");
    assert_eq!(register("n2", &theirs, &someone), "registered");

    let mut resp = get_raw(
        &c.node("n2").url("/events/calendar.ics"),
        &[("authorization", &format!("Bearer {}", me.access))],
    );
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/calendar"), "{content_type}");
    let ics = resp.body_mut().read_to_string().unwrap();
    assert!(ics.lines().all(|l| l.len() <= 76), "{ics}"); // 75 octets and the CR
    let uids: BTreeSet<String> = ics
        .replace("\r\n ", "")
        .lines()
        .filter_map(|l| l.strip_prefix("UID:").map(|u| u.trim_end().to_string()))
        .collect();
    let expected: BTreeSet<String> = [&a, &b].iter().map(|id| format!("{id}@troupe")).collect();
    assert_eq!(uids, expected, "{ics}");

    if !icalendar_available() {
        println!("skipped: calendar_ics parsed by python icalendar (not installable)");
        return;
    }
    let file = c.dir.join("me.ics");
    std::fs::write(&file, &ics).unwrap();
    let script = c.dir.join("ical.py");
    std::fs::write(&script, ICAL_SCRIPT).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim() == "NO_ICALENDAR" {
        println!("skipped: calendar_ics parsed by python icalendar (not installed)");
        return;
    }
    let v: Value = serde_json::from_str(stdout.trim()).expect("json from the parser");
    assert_eq!(v["version"], "2.0", "{v}");
    let events = v["events"].as_array().unwrap();
    let parsed: BTreeSet<String> = events
        .iter()
        .map(|e| e["uid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(parsed, expected, "{v}");
    let first = events
        .iter()
        .find(|e| e["uid"] == format!("{a}@troupe"))
        .unwrap();
    assert_eq!(first["summary"], long.as_str(), "{v}");
    assert_eq!(first["location"], "Room 4, East wing", "{v}");
    assert_eq!(
        first["description"], "Bring: pens, paper; and a \\ backslash\nsecond line",
        "{v}"
    );
    assert_eq!(first["start"], "2030-03-01T09:30:00+00:00", "{v}");
    assert_eq!(first["end"], "2030-03-01T10:00:00+00:00", "{v}");
    // Written in the event's zone, which the calendar's own VTIMEZONE defines.
    assert_eq!(first["tzid"], "Europe/Paris", "{v}");
    assert_eq!(first["local_start"], "2030-03-01T10:30:00", "{v}");
    assert_eq!(first["vtimezone_offset_s"], 3600.0, "{v}");

    // The other user's calendar holds only theirs.
    let mut resp = get_raw(
        &c.node("n3").url("/events/calendar.ics"),
        &[("authorization", &format!("Bearer {}", someone.access))],
    );
    let ics = resp.body_mut().read_to_string().unwrap();
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 2, "{ics}");
    assert!(
        ics.contains(&format!("UID:{full}@troupe"))
            && ics.contains(&format!("UID:{theirs}@troupe"))
    );
}
