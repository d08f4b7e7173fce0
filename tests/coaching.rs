//! Coaching, black-box: a 3-node cluster of real processes (mutual TLS between them), on
//! the embedded SQLite store and (when `TROUPE_TEST_PG` is set) PostgreSQL. Coaches are
//! created by admins and changed by them or the coach's own user; open slots are listed in
//! the coach's time zone; 50 clients racing from threads on every node for one slot give
//! exactly one booking; a cancellation opens the slot again; notes are seen by the coach
//! and the client only; every bad input is refused naming its field; a booking earns its
//! client engagement points once.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

fn cluster(tag: &str, storage: Option<String>) -> Cluster {
    Cluster::start(
        tag,
        Options {
            storage_toml: storage.unwrap_or_default(),
            // 50 racers log in from one address.
            auth_toml: "login_per_ip_per_minute = 100000\nlogin_per_account_per_minute = 1000\n"
                .into(),
            ..Options::default()
        },
    )
}

/// Every scenario, on one cluster.
fn suite(c: &Cluster, sqlite: bool) {
    let admin = admin_token(c);
    let coach_user = new_user(c.node("n1"), c.node("n2"), "coach");
    let coach =
        coaches_are_created_by_admins_and_changed_by_them_or_the_coach(c, &admin, &coach_user);
    open_slots_are_listed_in_the_coachs_zone_and_a_booked_one_disappears(c, &coach);
    fifty_clients_on_three_nodes_race_for_one_slot_and_exactly_one_books_it(
        c,
        &admin,
        &coach,
        &coach_user,
        sqlite,
    );
    notes_are_seen_by_the_coach_and_the_client_only(c, &coach, &coach_user);
    bad_input_is_refused_naming_the_field(c, &admin, &coach);
}

#[test]
fn coaching_on_sqlite() {
    let c = cluster("coaching-sqlite", None);
    suite(&c, true);
}

#[test]
fn coaching_on_postgres() {
    let Some(storage) = postgres_storage("coaching_on_postgres") else {
        return;
    };
    let c = cluster("coaching-pg", Some(storage));
    suite(&c, false);
}

/// Every day 09:00-12:00 in Berlin, one-hour slots.
fn coach_body(name: &str) -> Value {
    let availability: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "12:00"}))
        .collect();
    json!({
        "name": name,
        "bio": "Leadership, engineering management",
        "timezone": "Europe/Berlin",
        "availability": availability,
        // Tuesday 4 June 2030 off; Wednesday 5 June closed 10:00-11:00.
        "exceptions": [
            {"date": "2030-06-04"},
            {"date": "2030-06-05", "start": "10:00", "end": "11:00"},
        ],
    })
}

/// Slots of Monday 3 June 2030 (CEST, UTC+2): 09:00, 10:00 and 11:00 local.
const MONDAY: [&str; 3] = [
    "2030-06-03T07:00:00.000Z",
    "2030-06-03T08:00:00.000Z",
    "2030-06-03T09:00:00.000Z",
];

fn open_slots(node: &Node, coach: &str, token: &str, from: &str, to: &str) -> Vec<String> {
    let url = node.url(&format!(
        "/coaching/coaches/{coach}/availability?from={from}&to={to}"
    ));
    let (status, v) = send("GET", &url, None, Some(token));
    assert_eq!(status, 200, "{v}");
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect()
}

fn monday(node: &Node, coach: &str, token: &str) -> Vec<String> {
    open_slots(
        node,
        coach,
        token,
        "2030-06-03T00:00:00Z",
        "2030-06-04T00:00:00Z",
    )
}

fn book(node: &Node, coach: &str, start: &str, token: &str) -> Answer {
    send(
        "POST",
        &node.url("/coaching/bookings"),
        Some(&json!({"coach_id": coach, "start": start})),
        Some(token),
    )
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

fn my_bookings(node: &Node, token: &str) -> Vec<Value> {
    let (status, v) = send(
        "GET",
        &node.url("/coaching/bookings?per_page=100"),
        None,
        Some(token),
    );
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn coaches_are_created_by_admins_and_changed_by_them_or_the_coach(
    c: &Cluster,
    admin: &str,
    coach_user: &User,
) -> String {
    let other = new_user(c.node("n3"), c.node("n1"), "other");
    let create = |token: &str, body: &Value| {
        send(
            "POST",
            &c.node("n2").url("/coaching/coaches"),
            Some(body),
            Some(token),
        )
    };
    let (status, v) = create(&other.access, &coach_body("Not allowed"));
    assert_eq!(status, 403, "{v}");
    let mut body = coach_body("Ada Coach");
    body["user_id"] = json!(coach_user.id);
    let (status, v) = create(admin, &body);
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["timezone"].as_str(),
            v["slot_minutes"].as_u64(),
            v["user_id"].as_str(),
            v["availability"].as_array().map(Vec::len),
            v["exceptions"][1]["start"].as_str(),
        ),
        (
            Some("Europe/Berlin"),
            Some(60),
            Some(coach_user.id.as_str()),
            Some(7),
            Some("10:00")
        ),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_string();

    let url = c.node("n3").url(&format!("/coaching/coaches/{id}"));
    let (status, got) = send("GET", &url, None, Some(&other.access));
    assert_eq!((status, &got), (200, &v));
    let (status, list) = send(
        "GET",
        &c.node("n1").url("/coaching/coaches?per_page=100"),
        None,
        Some(&other.access),
    );
    assert_eq!(status, 200, "{list}");
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == id.as_str()));

    // Anyone else: 403; the coach's user changes what it is told, but not the link.
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"bio": "Hijacked"})),
        Some(&other.access),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"bio": "Ten years of coaching"})),
        Some(&coach_user.access),
    );
    assert_eq!(
        (status, v["bio"].as_str(), v["name"].as_str()),
        (200, Some("Ten years of coaching"), Some("Ada Coach")),
        "{v}"
    );
    let (status, v) = send(
        "PUT",
        &url,
        Some(&json!({"user_id": other.id})),
        Some(&coach_user.access),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = send("PUT", &url, Some(&json!({"name": "Ada L."})), Some(admin));
    assert_eq!((status, v["name"].as_str()), (200, Some("Ada L.")), "{v}");
    let (status, v) = send(
        "PUT",
        &c.node("n1").url("/coaching/coaches/no-such-coach"),
        Some(&json!({"name": "x"})),
        Some(admin),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = send("GET", &url, None, None);
    assert_eq!(status, 401, "{v}");
    id
}

fn open_slots_are_listed_in_the_coachs_zone_and_a_booked_one_disappears(c: &Cluster, coach: &str) {
    let client = new_user(c.node("n2"), c.node("n3"), "client");
    assert_eq!(monday(c.node("n1"), coach, &client.access), MONDAY);
    // Tuesday is an exception; Wednesday has 10:00-11:00 closed.
    let week = open_slots(
        c.node("n2"),
        coach,
        &client.access,
        "2030-06-03T00:00:00Z",
        "2030-06-06T00:00:00Z",
    );
    assert_eq!(
        week,
        [
            MONDAY[0],
            MONDAY[1],
            MONDAY[2],
            "2030-06-05T07:00:00.000Z",
            "2030-06-05T09:00:00.000Z"
        ]
    );
    // An offset in the query is percent-encoded; the slot is the same instant.
    let (status, v) = book(
        c.node("n3"),
        coach,
        "2030-06-03T10:00:00+02:00",
        &client.access,
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["coach_id"].as_str(),
            v["client_id"].as_str(),
            v["start"].as_str(),
            v["end"].as_str()
        ),
        (
            Some(coach),
            Some(client.id.as_str()),
            Some(MONDAY[1]),
            Some("2030-06-03T09:00:00.000Z")
        ),
        "{v}"
    );
    assert_eq!(
        monday(c.node("n2"), coach, &client.access),
        [MONDAY[0], MONDAY[2]]
    );
    let mine = my_bookings(c.node("n1"), &client.access);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], v["id"]);
    // Booking it again, from anyone, is 409.
    let (status, again) = book(c.node("n1"), coach, MONDAY[1], &client.access);
    assert_eq!(status, 409, "{again}");

    // Its client earns engagement points for it, once (the bus delivers asynchronously).
    let points = || {
        let (status, p) = send(
            "GET",
            &c.node("n2").url("/engagement/points"),
            None,
            Some(&client.access),
        );
        assert_eq!(status, 200, "{p}");
        p["points"].as_i64().unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(15), || points() == 20),
        "points: {}",
        points()
    );
}

fn fifty_clients_on_three_nodes_race_for_one_slot_and_exactly_one_books_it(
    c: &Cluster,
    admin: &str,
    coach: &str,
    coach_user: &User,
    sqlite: bool,
) {
    let slot = MONDAY[2];
    let racers = users(c, 50, "racer");
    let barrier = Arc::new(Barrier::new(racers.len()));
    let names = ["n1", "n2", "n3"];
    let written_before = bookings_written(c);
    let answers: Vec<(String, u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = racers
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let node = c.node(names[i % 3]);
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    let (status, v) = book(node, coach, slot, &u.access);
                    (u.id.clone(), status, v)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<&(String, u16, Value)> = answers.iter().filter(|a| a.1 == 201).collect();
    let lost = answers.iter().filter(|a| a.1 == 409).count();
    assert_eq!(
        (won.len(), lost),
        (1, 49),
        "{:?}",
        answers.iter().map(|a| (a.1, &a.2)).collect::<Vec<_>>()
    );
    // The coach's writer decided all fifty, in one transaction each batch of them.
    let (items, batches) = bookings_written(c);
    let (items, batches) = (items - written_before.0, batches - written_before.1);
    assert_eq!(items, 50, "bookings decided by the group-commit writer");
    assert!((1..=50).contains(&batches), "{batches} batches");
    let (winner_id, _, booking) = won[0];
    assert!(answers
        .iter()
        .filter(|a| a.1 == 409)
        .all(|a| a.2["error"]["code"] == "already_exists"));

    // The store holds exactly one booking of the slot: as the coach's user lists them ...
    let of_slot = |token: &str| -> Vec<Value> {
        my_bookings(c.node("n3"), token)
            .into_iter()
            .filter(|b| b["start"] == slot && b["status"] == "booked")
            .collect()
    };
    let held = of_slot(&coach_user.access);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["client_id"], winner_id.as_str());
    // ... and as the database file has them.
    if sqlite {
        let db = c.dir.join("data").join("troupe.db");
        // 2030-06-03T09:00:00Z in unix ms.
        let sql = format!(
            "SELECT COUNT(*) FROM coaching_bookings WHERE coach_id = '{coach}' \
             AND start_at = 1906707600000 AND status = 'booked'"
        );
        match count_rows(&db, &sql) {
            Some(n) => assert_eq!(n, 1),
            None => println!("skipped: counting rows in the SQLite file (no python3 sqlite3)"),
        }
    }

    // The winner cancels (on n2): the slot is open again and someone else books it.
    let winner = racers.iter().find(|u| &u.id == winner_id).unwrap();
    let url = c.node("n2").url(&format!(
        "/coaching/bookings/{}",
        booking["id"].as_str().unwrap()
    ));
    let outsider = racers.iter().find(|u| &u.id != winner_id).unwrap();
    let (status, v) = send("DELETE", &url, None, Some(&outsider.access));
    assert_eq!(status, 404, "{v}");
    let (status, v) = send("DELETE", &url, None, Some(&winner.access));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let (status, v) = send("DELETE", &url, None, Some(&winner.access));
    assert_eq!(status, 409, "{v}");
    assert!(monday(c.node("n1"), coach, &winner.access).contains(&slot.to_string()));
    let (status, v) = book(c.node("n3"), coach, slot, &outsider.access);
    assert_eq!(status, 201, "{v}");
    assert!(!monday(c.node("n2"), coach, &winner.access).contains(&slot.to_string()));
    // An admin may cancel anyone's booking; the coach's user too.
    let url = c
        .node("n1")
        .url(&format!("/coaching/bookings/{}", v["id"].as_str().unwrap()));
    let (status, v) = send("DELETE", &url, None, Some(admin));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let (status, v) = book(c.node("n1"), coach, slot, &outsider.access);
    assert_eq!(status, 201, "{v}");
    let url = c
        .node("n3")
        .url(&format!("/coaching/bookings/{}", v["id"].as_str().unwrap()));
    let (status, v) = send("DELETE", &url, None, Some(&coach_user.access));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let (status, v) = book(c.node("n2"), coach, slot, &winner.access);
    assert_eq!(status, 201, "{v}");
    assert_eq!(of_slot(&coach_user.access).len(), 1);
}

/// Bookings decided by the nodes' booking writers so far, and in how many batches (each
/// one transaction): `troupe_store_batch_items_total` and `troupe_store_batches_total`
/// of the `bookings` writer, summed over the nodes.
fn bookings_written(c: &Cluster) -> (u64, u64) {
    let sum = |series: &str| -> u64 {
        ["n1", "n2", "n3"]
            .into_iter()
            .filter_map(|n| metric(c.node(n), series))
            .sum::<f64>() as u64
    };
    (
        sum("troupe_store_batch_items_total{batch=\"bookings\"}"),
        sum("troupe_store_batches_total{batch=\"bookings\"}"),
    )
}

/// `SELECT COUNT(*)` in the SQLite file at `db`, through Python's `sqlite3`; `None` when
/// Python cannot do it here.
fn count_rows(db: &std::path::Path, sql: &str) -> Option<i64> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; \
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True); \
             print(c.execute(sys.argv[2]).fetchone()[0])",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn notes_are_seen_by_the_coach_and_the_client_only(c: &Cluster, coach: &str, coach_user: &User) {
    let [client, outsider]: [User; 2] = users(c, 2, "noted").try_into().unwrap();
    let (status, b) = book(c.node("n1"), coach, "2030-06-05T07:00:00Z", &client.access);
    assert_eq!(status, 201, "{b}");
    let url = |node: &str| {
        c.node(node).url(&format!(
            "/coaching/bookings/{}/notes",
            b["id"].as_str().unwrap()
        ))
    };
    let write = |node: &str, token: &str, text: &str| {
        send(
            "POST",
            &url(node),
            Some(&json!({ "text": text })),
            Some(token),
        )
    };
    let (status, v) = write("n2", &client.access, "Goal: delegate the release");
    assert_eq!(
        (status, v["author_id"].as_str()),
        (201, Some(client.id.as_str())),
        "{v}"
    );
    let (status, v) = write(
        "n3",
        &coach_user.access,
        "Homework: list what only you can do",
    );
    assert_eq!(status, 201, "{v}");
    for reader in [&client.access, &coach_user.access] {
        let (status, v) = send("GET", &url("n1"), None, Some(reader));
        assert_eq!(status, 200, "{v}");
        let texts: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "Goal: delegate the release",
                "Homework: list what only you can do"
            ]
        );
    }
    let (status, v) = send("GET", &url("n2"), None, Some(&outsider.access));
    assert_eq!(status, 404, "{v}");
    let (status, v) = write("n3", &outsider.access, "let me in");
    assert_eq!(status, 404, "{v}");
    let (status, v) = write("n1", &client.access, "   ");
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["text".to_string()]),
        "{v}"
    );
    let (status, v) = send("POST", &url("n1"), Some(&json!({})), Some(&client.access));
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["text".to_string()]),
        "{v}"
    );
    // The booking is in both parties' lists, in nobody else's.
    assert!(my_bookings(c.node("n2"), &coach_user.access)
        .iter()
        .any(|x| x["id"] == b["id"]));
    assert!(my_bookings(c.node("n3"), &outsider.access).is_empty());
}

fn bad_input_is_refused_naming_the_field(c: &Cluster, admin: &str, coach: &str) {
    let n = c.node("n3");
    let user = new_user(n, c.node("n1"), "bad");
    let expect = |(status, v): Answer, field: &str| {
        assert_eq!(
            (status, field_errors(&v)),
            (400, vec![field.to_string()]),
            "{v}"
        );
    };

    // Coaches.
    let create = |body: &Value| send("POST", &n.url("/coaching/coaches"), Some(body), Some(admin));
    let (status, v) = create(&json!({}));
    assert_eq!(
        (status, field_errors(&v)),
        (
            400,
            vec!["availability".into(), "name".into(), "timezone".into()]
        ),
        "{v}"
    );
    let cases = [
        ("timezone", json!({"timezone": "Mars/Olympus_Mons"})),
        ("timezone", json!({"timezone": "Europe/../UTC"})),
        ("slot_minutes", json!({"slot_minutes": 5})),
        ("slot_minutes", json!({"slot_minutes": 481})),
        ("slot_minutes", json!({"slot_minutes": "ten"})),
        ("name", json!({"name": "  "})),
        ("availability", json!({"availability": "mornings"})),
        (
            "availability",
            json!({"availability": [
                {"weekday": 1, "start": "09:00", "end": "11:00"},
                {"weekday": 1, "start": "10:30", "end": "12:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 1, "start": "10:00", "end": "10:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 1, "start": "11:00", "end": "10:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 0, "start": "09:00", "end": "10:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 8, "start": "09:00", "end": "10:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 1, "start": "9:00", "end": "10:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": 1, "start": "09:00", "end": "25:00"}]}),
        ),
        (
            "availability",
            json!({"availability": [{"weekday": "Monday", "start": "09:00", "end": "10:00"}]}),
        ),
        (
            "exceptions",
            json!({"exceptions": [{"date": "2030-02-30"}]}),
        ),
        (
            "exceptions",
            json!({"exceptions": [{"date": "2030-03-01", "start": "10:00"}]}),
        ),
        ("user_id", json!({"user_id": "no-such-user"})),
    ];
    for (field, patch) in cases {
        let mut body = coach_body("Bad");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        expect(create(&body), field);
    }
    let (status, v) = send(
        "PUT",
        &n.url(&format!("/coaching/coaches/{coach}")),
        Some(&json!({"timezone": "Nowhere/City"})),
        Some(admin),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["timezone".to_string()]),
        "{v}"
    );

    // Availability windows.
    let slots = |query: &str| {
        send(
            "GET",
            &n.url(&format!("/coaching/coaches/{coach}/availability?{query}")),
            None,
            Some(&user.access),
        )
    };
    expect(slots("from=tomorrow"), "from");
    expect(slots("from=2030-06-03T00:00:00Z&to=2030-06-03"), "to");
    expect(
        slots("from=2030-06-03T00:00:00Z&to=2030-06-02T00:00:00Z"),
        "to",
    );
    expect(
        slots("from=2030-06-01T00:00:00Z&to=2030-08-03T00:00:00Z"),
        "to",
    );
    let (status, v) = slots("from=2030-06-01T00:00:00Z&to=2030-08-02T00:00:00Z");
    assert_eq!(status, 200, "{v}");
    let (status, v) = send(
        "GET",
        &n.url("/coaching/coaches/no-such-coach/availability"),
        None,
        Some(&user.access),
    );
    assert_eq!(status, 404, "{v}");

    // Bookings.
    for (start, why) in [
        ("2020-06-01T07:00:00Z", "past"),
        ("2030-06-03T07:30:00Z", "off the grid"),
        ("2030-06-03T13:00:00Z", "outside availability (15:00 local)"),
        ("2030-06-04T07:00:00Z", "a day off"),
        ("2030-06-05T08:00:00Z", "a closed window"),
        ("3 June 2030", "not RFC 3339"),
        ("", "missing"),
    ] {
        let (status, v) = book(n, coach, start, &user.access);
        assert_eq!(
            (status, field_errors(&v)),
            (400, vec!["start".to_string()]),
            "{why}: {v}"
        );
    }
    let (status, v) = send(
        "POST",
        &n.url("/coaching/bookings"),
        Some(&json!({"start": MONDAY[0]})),
        Some(&user.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["coach_id".to_string()]),
        "{v}"
    );
    let (status, v) = book(n, "no-such-coach", MONDAY[0], &user.access);
    assert_eq!(status, 404, "{v}");
    for (method, path) in [
        ("DELETE", "/coaching/bookings/no-such-booking"),
        ("GET", "/coaching/bookings/no-such-booking/notes"),
        ("GET", "/coaching/coaches/no-such-coach"),
    ] {
        let (status, v) = send(method, &n.url(path), None, Some(&user.access));
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
    // Nothing was half-written: no bad coach exists.
    let (_, list) = send(
        "GET",
        &n.url("/coaching/coaches?per_page=100"),
        None,
        Some(admin),
    );
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["name"] != "Bad"));
}
