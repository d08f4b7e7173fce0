//! Training, black-box: real node processes on a 3-node cluster, on the embedded SQLite
//! store and (when `TROUPE_TEST_PG` is set) PostgreSQL. A learner works through a course
//! on different nodes; the certificate is issued exactly once, even when two passing
//! submits race on two nodes.

mod support;

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
    a_course_completed_and_passed_across_nodes_gives_one_certificate(c, &admin);
    racing_passing_submits_on_two_nodes_issue_one_certificate(c, &admin);
    only_admins_write_courses_and_learners_never_see_answers(c, &admin);
    bad_training_requests_name_the_field_and_change_nothing(c, &admin);
}

#[test]
fn training_on_sqlite() {
    let c = cluster("training-sqlite", None);
    suite(&c);
}

#[test]
fn training_on_postgres() {
    let Some(storage) = postgres_storage("training_on_postgres") else {
        return;
    };
    let c = cluster("training-pg", Some(storage));
    suite(&c);
}

fn ok(status: u16, v: &Value, want: u16) {
    assert_eq!(status, want, "{v}");
}

/// A course of three lessons and a four-question quiz (answers 0, 1, 2, 0), made on n1.
fn course_with_quiz(c: &Cluster, admin: &str, max_attempts: u64) -> (Value, String) {
    let n1 = c.node("n1");
    let (status, course) = send(
        "POST",
        &n1.url("/training/courses"),
        Some(&json!({
            "title": format!("Onboarding {}", unique()),
            "description": "the first week",
            "lessons": [
                {"title": "Welcome", "content": "hello"},
                {"title": "Tools"},
                {"title": "Safety", "content": "be careful"},
            ],
        })),
        Some(admin),
    );
    ok(status, &course, 201);
    assert_eq!(course["pass_mark"], 70);
    assert_eq!(course["lessons"].as_array().unwrap().len(), 3);
    assert!(course["lessons"][2]["id"].is_string(), "{course}");
    let id = course["id"].as_str().unwrap();
    let (status, quiz) = send(
        "POST",
        &n1.url(&format!("/training/courses/{id}/assessments")),
        Some(&json!({
            "title": "Final quiz",
            "questions": [
                {"text": "q0", "choices": ["a", "b", "c"], "answer": 0},
                {"text": "q1", "choices": ["a", "b", "c"], "answer": 1},
                {"text": "q2", "choices": ["a", "b", "c"], "answer": 2},
                {"text": "q3", "choices": ["a", "b"], "answer": 0},
            ],
            "max_attempts": max_attempts,
        })),
        Some(admin),
    );
    ok(status, &quiz, 201);
    (course, quiz["id"].as_str().unwrap().to_string())
}

fn enroll(node: &Node, course: &Value, token: &str) {
    let id = course["id"].as_str().unwrap();
    let (status, v) = send(
        "POST",
        &node.url(&format!("/training/courses/{id}/enroll")),
        None,
        Some(token),
    );
    ok(status, &v, 200);
    assert_eq!(v["total_lessons"], 3);
}

fn complete(node: &Node, course: &Value, lesson: usize, token: &str) -> Value {
    let id = course["id"].as_str().unwrap();
    let (status, v) = send(
        "PUT",
        &node.url(&format!("/training/courses/{id}/progress")),
        Some(&json!({"lesson_id": course["lessons"][lesson]["id"], "completed": true})),
        Some(token),
    );
    ok(status, &v, 200);
    v
}

fn submit(node: &Node, quiz: &str, answers: Value, token: &str) -> (u16, Value) {
    send(
        "POST",
        &node.url(&format!("/training/assessments/{quiz}/submit")),
        Some(&json!({ "answers": answers })),
        Some(token),
    )
}

fn certificates(node: &Node, token: &str) -> Value {
    let (status, v) = send(
        "GET",
        &node.url("/training/certificates"),
        None,
        Some(token),
    );
    ok(status, &v, 200);
    v
}

fn a_course_completed_and_passed_across_nodes_gives_one_certificate(c: &Cluster, admin: &str) {
    let (course, quiz) = course_with_quiz(c, admin, 3);
    let u = new_user(c.node("n1"), c.node("n2"), "learner");
    enroll(c.node("n2"), &course, &u.access);
    complete(c.node("n1"), &course, 0, &u.access);
    complete(c.node("n2"), &course, 1, &u.access);
    let done = complete(c.node("n3"), &course, 2, &u.access);
    assert_eq!(
        (
            done["completed_lessons"].as_u64(),
            done["complete"].as_bool()
        ),
        (Some(3), Some(true))
    );
    assert!(
        done.get("certificate_id").is_none(),
        "not passed yet: {done}"
    );

    let (status, failed) = submit(c.node("n3"), &quiz, json!([0, 0, 0, 0]), &u.access);
    ok(status, &failed, 200);
    assert_eq!(
        (failed["score"].as_u64(), failed["passed"].as_bool()),
        (Some(50), Some(false))
    );
    assert!(failed.get("certificate_id").is_none(), "{failed}");
    let (status, passed) = submit(c.node("n1"), &quiz, json!([0, 1, 2, 1]), &u.access);
    ok(status, &passed, 200);
    assert_eq!(
        (passed["score"].as_u64(), passed["passed"].as_bool()),
        (Some(75), Some(true))
    );
    let cert = passed["certificate_id"]
        .as_str()
        .expect("certificate")
        .to_string();

    // A later pass answers the same certificate; the attempts then run out.
    let (status, again) = submit(c.node("n2"), &quiz, json!([0, 1, 2, 0]), &u.access);
    ok(status, &again, 200);
    assert_eq!(again["certificate_id"], cert.as_str());
    let (status, over) = submit(c.node("n2"), &quiz, json!([0, 1, 2, 0]), &u.access);
    assert_eq!(status, 409, "attempts past max_attempts: {over}");

    for n in ["n1", "n2", "n3"] {
        let certs = certificates(c.node(n), &u.access);
        assert_eq!(certs["total"], 1, "{certs}");
        assert_eq!(certs["items"][0]["id"], cert.as_str());
    }
    let (status, one) = send(
        "GET",
        &c.node("n3").url(&format!("/training/certificates/{cert}")),
        None,
        Some(&u.access),
    );
    ok(status, &one, 200);
    assert_eq!(
        (one["user_id"].as_str(), one["score"].as_u64()),
        (Some(u.id.as_str()), Some(75))
    );
    let stranger = new_user(c.node("n2"), c.node("n2"), "stranger");
    let (status, v) = send(
        "GET",
        &c.node("n2").url(&format!("/training/certificates/{cert}")),
        None,
        Some(&stranger.access),
    );
    assert_eq!(status, 404, "another user's certificate: {v}");

    // The bus carried training.certificate_issued to the learner's notifications, once.
    let issued = |v: &Value| -> Vec<Value> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n["type"] == "training.certificate_issued")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let notified = wait_until(std::time::Duration::from_secs(15), || {
        let (_, v) = send(
            "GET",
            &c.node("n2").url("/notifications?per_page=100"),
            None,
            Some(&u.access),
        );
        !issued(&v).is_empty()
    });
    assert!(notified, "no certificate notification\n{}", c.logs());
    let (_, v) = send(
        "GET",
        &c.node("n2").url("/notifications?per_page=100"),
        None,
        Some(&u.access),
    );
    let once = issued(&v);
    assert_eq!(once.len(), 1, "{v}");
    assert_eq!(once[0]["data"]["certificate_id"], cert.as_str());

    let (status, p) = send(
        "GET",
        &c.node("n1").url("/training/progress"),
        None,
        Some(&u.access),
    );
    ok(status, &p, 200);
    assert_eq!(p["total"], 1);
    assert_eq!(p["items"][0]["certificate_id"], cert.as_str());
    let lessons = p["items"][0]["lessons"].as_array().unwrap();
    assert!(lessons.iter().all(|l| l["completed"] == true), "{p}");
}

fn racing_passing_submits_on_two_nodes_issue_one_certificate(c: &Cluster, admin: &str) {
    for round in 0..3 {
        let (course, quiz) = course_with_quiz(c, admin, 10);
        let u = new_user(c.node("n1"), c.node("n3"), &format!("racer{round}"));
        enroll(c.node("n1"), &course, &u.access);
        for l in 0..3 {
            complete(c.node("n1"), &course, l, &u.access);
        }
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| submit(c.node("n2"), &quiz, json!([0, 1, 2, 0]), &u.access));
            let b = s.spawn(|| submit(c.node("n3"), &quiz, json!([0, 1, 2, 0]), &u.access));
            (a.join().unwrap(), b.join().unwrap())
        });
        ok(a.0, &a.1, 200);
        ok(b.0, &b.1, 200);
        assert!(a.1["certificate_id"].is_string(), "{}", a.1);
        assert_eq!(a.1["certificate_id"], b.1["certificate_id"]);
        assert_ne!(a.1["attempt"], b.1["attempt"]);
        let certs = certificates(c.node("n1"), &u.access);
        assert_eq!(certs["total"], 1, "{certs}");
    }
}

fn only_admins_write_courses_and_learners_never_see_answers(c: &Cluster, admin: &str) {
    let (course, _) = course_with_quiz(c, admin, 3);
    let id = course["id"].as_str().unwrap();
    let u = new_user(c.node("n2"), c.node("n2"), "nonadmin");
    let body = json!({"title": "mine", "lessons": [{"title": "one"}]});
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/training/courses"),
        Some(&body),
        Some(&u.access),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = send(
        "PUT",
        &c.node("n3").url(&format!("/training/courses/{id}")),
        Some(&body),
        Some(&u.access),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = send(
        "DELETE",
        &c.node("n1").url(&format!("/training/courses/{id}")),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 403, "{v}");
    let quiz =
        json!({"title": "q", "questions": [{"text": "t", "choices": ["a", "b"], "answer": 0}]});
    let (status, v) = send(
        "POST",
        &c.node("n1")
            .url(&format!("/training/courses/{id}/assessments")),
        Some(&quiz),
        Some(&u.access),
    );
    assert_eq!(status, 403, "{v}");

    let (status, seen) = send(
        "GET",
        &c.node("n3")
            .url(&format!("/training/courses/{id}/assessments")),
        None,
        Some(&u.access),
    );
    ok(status, &seen, 200);
    assert_eq!(seen["total"], 1);
    assert!(
        !seen.to_string().contains("\"answer\""),
        "learner sees answers: {seen}"
    );
    let (status, full) = send(
        "GET",
        &c.node("n3")
            .url(&format!("/training/courses/{id}/assessments")),
        None,
        Some(admin),
    );
    ok(status, &full, 200);
    assert_eq!(full["items"][0]["questions"][1]["answer"], 1);

    let (status, listed) = send(
        "GET",
        &c.node("n2").url("/training/courses?per_page=100"),
        None,
        Some(&u.access),
    );
    ok(status, &listed, 200);
    assert!(listed["total"].as_u64().unwrap() >= 1, "{listed}");

    // The admin edits and deletes; the course is gone on every node.
    let (status, edited) = send(
        "PUT",
        &c.node("n2").url(&format!("/training/courses/{id}")),
        Some(
            &json!({"title": "Renamed", "lessons": [{"id": course["lessons"][0]["id"], "title": "Welcome"}], "pass_mark": 80}),
        ),
        Some(admin),
    );
    ok(status, &edited, 200);
    assert_eq!(
        (
            edited["pass_mark"].as_u64(),
            edited["lessons"][0]["id"].clone()
        ),
        (Some(80), course["lessons"][0]["id"].clone())
    );
    let (status, v) = send(
        "DELETE",
        &c.node("n3").url(&format!("/training/courses/{id}")),
        None,
        Some(admin),
    );
    ok(status, &v, 200);
    for n in ["n1", "n2", "n3"] {
        let (status, v) = send(
            "GET",
            &c.node(n).url(&format!("/training/courses/{id}")),
            None,
            Some(&u.access),
        );
        assert_eq!(status, 404, "{n}: {v}");
    }
}

fn bad_training_requests_name_the_field_and_change_nothing(c: &Cluster, admin: &str) {
    let n2 = c.node("n2");
    let (status, v) = send(
        "POST",
        &n2.url("/training/courses"),
        Some(&json!({"description": "no title", "lessons": [], "pass_mark": 120})),
        Some(admin),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(field_errors(&v), ["lessons", "pass_mark", "title"]);
    let (status, v) = send(
        "POST",
        &n2.url("/training/courses"),
        Some(&json!({"title": "x"})),
        Some(admin),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["lessons".to_string()]),
        "{v}"
    );
    let (status, v) = send(
        "POST",
        &n2.url("/training/courses"),
        Some(&json!({"title": "x", "lessons": [{"content": "no title"}]})),
        Some(admin),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["lessons".to_string()]),
        "{v}"
    );

    let (course, quiz) = course_with_quiz(c, admin, 3);
    let (other, _) = course_with_quiz(c, admin, 3);
    let id = course["id"].as_str().unwrap();
    let (status, v) = send(
        "POST",
        &n2.url(&format!("/training/courses/{id}/assessments")),
        Some(
            &json!({"title": "bad", "questions": [{"text": "t", "choices": ["a", "b"], "answer": 5}]}),
        ),
        Some(admin),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["questions".to_string()]),
        "{v}"
    );
    let u = new_user(c.node("n3"), n2, "badinput");
    let (status, v) = submit(n2, &quiz, json!([0, 1, 2, 0]), &u.access);
    assert_eq!(status, 409, "not enrolled: {v}");
    enroll(n2, &course, &u.access);
    let (status, v) = submit(n2, &quiz, json!([0, 1]), &u.access);
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["answers".to_string()]),
        "{v}"
    );
    let (status, v) = send(
        "POST",
        &n2.url(&format!("/training/assessments/{quiz}/submit")),
        Some(&json!({"answers": [0, 1, 2, 0], "course_id": other["id"]})),
        Some(&u.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["course_id".to_string()]),
        "{v}"
    );
    let (status, v) = send(
        "POST",
        &n2.url(&format!("/training/assessments/{quiz}/submit")),
        Some(&json!({})),
        Some(&u.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["answers".to_string()]),
        "{v}"
    );
    let (status, v) = submit(n2, "no-such-quiz", json!([0]), &u.access);
    assert_eq!(status, 404, "{v}");
    let (status, v) = send(
        "PUT",
        &n2.url(&format!("/training/courses/{id}/progress")),
        Some(&json!({"lesson_id": other["lessons"][0]["id"], "completed": true})),
        Some(&u.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["lesson_id".to_string()]),
        "{v}"
    );
    let (status, v) = send(
        "PUT",
        &n2.url(&format!("/training/courses/{id}/progress")),
        Some(&json!({})),
        Some(&u.access),
    );
    assert_eq!(
        (status, field_errors(&v)),
        (400, vec!["completed".to_string(), "lesson_id".to_string()]),
        "{v}"
    );
    for path in [
        "/training/courses/no-such-course",
        "/training/courses/no-such-course/assessments",
        "/training/certificates/no-such-cert",
    ] {
        let (status, v) = send("GET", &n2.url(path), None, Some(&u.access));
        assert_eq!(status, 404, "{path}: {v}");
    }
    let (status, v) = send(
        "POST",
        &n2.url("/training/courses/no-such-course/enroll"),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 404, "{v}");

    // Nothing was written by any of it.
    let (status, seen) = send(
        "GET",
        &n2.url(&format!("/training/courses/{id}/assessments")),
        None,
        Some(&u.access),
    );
    ok(status, &seen, 200);
    assert_eq!(
        (
            seen["total"].as_u64(),
            seen["items"][0]["attempts_used"].as_u64()
        ),
        (Some(1), Some(0)),
        "{seen}"
    );
    let (status, p) = send("GET", &n2.url("/training/progress"), None, Some(&u.access));
    ok(status, &p, 200);
    assert_eq!(p["items"][0]["completed_lessons"], 0, "{p}");
}
