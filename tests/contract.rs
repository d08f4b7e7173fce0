//! `/openapi.json` against a real node: it describes every REST route of the API contract
//! that Troupe serves, and every route it describes is served.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

/// The REST routes of `../shared/API.md` that Troupe serves (path parameters in OpenAPI's
/// `{name}` form).
const CONTRACT: &[(&str, &str)] = &[
    // A. Auth / SOAP / sessions / images
    ("post", "/login"),
    ("get", "/profile"),
    ("get", "/test-db"),
    ("get", "/health"),
    ("post", "/register"),
    ("get", "/user/soap"),
    ("post", "/api/sessions"),
    ("get", "/api/sessions/{user_id}"),
    ("put", "/api/sessions/{user_id}"),
    ("delete", "/api/sessions/{user_id}"),
    ("get", "/api/sessions/verify"),
    ("get", "/last-connection"),
    ("get", "/connected/health"),
    ("get", "/images/{id}"),
    // B. Airliner administration
    ("post", "/api/v1/airliner/registerUser"),
    ("post", "/api/v1/airliner/login"),
    ("post", "/api/v1/airliner/generateToken"),
    ("post", "/api/v1/eventstreammonitor/tasks"),
    ("get", "/api/v1/eventstreammonitor/tasks"),
    ("get", "/api/v1/eventstreammonitor/tasks/{id}"),
    ("put", "/api/v1/eventstreammonitor/tasks/{id}/cancel"),
    ("get", "/notifications/logs"),
    // C. WeAce (the served part: auth, users, notifications, events, training, coaching,
    // engagement)
    ("post", "/auth/login"),
    ("get", "/auth/verify-token"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/confirm-forgot-password"),
    ("post", "/auth/admin/create-user"),
    ("post", "/auth/admin/set-password"),
    ("post", "/auth/admin/delete-user"),
    ("get", "/auth/login-url"),
    ("get", "/auth/logout-url"),
    ("get", "/auth/sso/login"),
    ("get", "/auth/sso/logout"),
    ("get", "/auth/sso/callback"),
    ("post", "/auth/sso/refresh"),
    ("get", "/auth/sso/user-info"),
    ("post", "/users/register"),
    ("post", "/users/confirm-registration"),
    ("get", "/users/profile"),
    ("put", "/users/profile"),
    ("get", "/users/profile/{id}"),
    ("get", "/users"),
    ("get", "/users/{id}"),
    ("post", "/users/search"),
    ("post", "/users"),
    ("put", "/users/{id}"),
    ("delete", "/users/{id}"),
    ("get", "/notifications"),
    ("put", "/notifications/{id}/read"),
    ("get", "/notifications/preferences"),
    ("put", "/notifications/preferences"),
    ("get", "/events"),
    ("post", "/events"),
    ("get", "/events/{id}"),
    ("put", "/events/{id}"),
    ("delete", "/events/{id}"),
    ("post", "/events/{id}/register"),
    ("delete", "/events/{id}/register"),
    ("get", "/events/{id}/registrations"),
    ("get", "/events/calendar.ics"),
    ("get", "/training/courses"),
    ("post", "/training/courses"),
    ("get", "/training/courses/{id}"),
    ("put", "/training/courses/{id}"),
    ("delete", "/training/courses/{id}"),
    ("post", "/training/courses/{id}/enroll"),
    ("get", "/training/progress"),
    ("put", "/training/courses/{id}/progress"),
    ("get", "/training/courses/{id}/assessments"),
    ("post", "/training/courses/{id}/assessments"),
    ("post", "/training/assessments/{id}/submit"),
    ("get", "/training/certificates"),
    ("get", "/training/certificates/{id}"),
    ("get", "/coaching/coaches"),
    ("post", "/coaching/coaches"),
    ("get", "/coaching/coaches/{id}"),
    ("put", "/coaching/coaches/{id}"),
    ("get", "/coaching/coaches/{id}/availability"),
    ("post", "/coaching/bookings"),
    ("get", "/coaching/bookings"),
    ("delete", "/coaching/bookings/{id}"),
    ("get", "/coaching/bookings/{id}/notes"),
    ("post", "/coaching/bookings/{id}/notes"),
    ("post", "/engagement/track"),
    ("post", "/engagement/feedback"),
    ("get", "/engagement/feedback"),
    ("get", "/engagement/points"),
    ("get", "/engagement/badges"),
    ("get", "/engagement/leaderboard"),
    ("get", "/engagement/analytics"),
    // D. Todo
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("get", "/todos"),
    ("post", "/todos"),
    ("get", "/todos/{id}"),
    ("put", "/todos/{id}"),
    ("delete", "/todos/{id}"),
    ("get", "/health/cluster"),
    // E. LockBox
    ("post", "/auth/register"),
    ("get", "/auth/verify/{token}"),
    ("get", "/contacts/"),
    ("get", "/users/search"),
    ("post", "/keys"),
    ("get", "/keys/{user_id}"),
    ("post", "/messages/send"),
    ("get", "/messages/"),
    ("get", "/messages/conversation/{contact_id}"),
    ("get", "/chat-requests/incoming"),
    ("post", "/chat-requests/send"),
    ("post", "/chat-requests/{id}/accept"),
    ("get", "/ws/{user_id}"),
    ("post", "/broadcast"),
    ("get", "/connections"),
    // F. The runtime's own
    ("get", "/ping"),
    ("get", "/cluster"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/soap"),
    ("get", "/dashboard"),
    ("get", "/admin/actors"),
    ("get", "/admin/reminders"),
    ("post", "/admin/chaos/kill"),
    ("get", "/admin/dead-letters"),
    ("post", "/admin/dead-letters/{id}/replay"),
    ("delete", "/admin/dead-letters/{id}"),
];

const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                ops.push((m.to_string(), path.clone(), op));
            }
        }
    }
    ops
}

#[test]
fn openapi_describes_the_contract_and_only_routes_that_are_served() {
    let c = Cluster::start(
        "contract",
        Options {
            nodes: 1,
            ..Options::default()
        },
    );
    let n1 = c.node("n1");
    let resp = get_raw(&n1.url("/openapi.json"), &[]);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let (_, doc) = get(&n1.url("/openapi.json"), None).unwrap();
    assert_eq!(doc["openapi"], "3.1.0", "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "Troupe");

    // Every route of the contract is described ...
    let ops = operations(&doc);
    let described: BTreeSet<(String, String)> =
        ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    let missing: Vec<_> = CONTRACT
        .iter()
        .filter(|(m, p)| !described.contains(&(m.to_string(), p.to_string())))
        .collect();
    assert!(missing.is_empty(), "not in /openapi.json: {missing:?}");

    // ... each operation once, with a unique id, a tag, a success answer and the error form.
    let mut ids = BTreeSet::new();
    for (m, p, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_string()),
            "{m} {p}: operationId {id:?} repeats"
        );
        assert!(op["tags"][0].is_string(), "{m} {p}: no tag");
        let answers = op["responses"].as_object().expect("responses");
        assert!(
            answers.keys().any(|s| s.starts_with('2') || s == "101"),
            "{m} {p}: no success answer in {answers:?}"
        );
        assert_eq!(
            op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{m} {p}"
        );
        // Every write takes the optional Idempotency-Key header, and nothing else does.
        let keyed = op["parameters"].as_array().is_some_and(|ps| {
            ps.iter().any(|x| {
                x["name"] == "Idempotency-Key" && x["in"] == "header" && x["required"] == false
            })
        });
        assert_eq!(
            keyed,
            m != "get",
            "{m} {p}: Idempotency-Key described: {keyed}"
        );
    }

    // Credentials as the handlers demand them.
    let security = |m: &str, p: &str| doc["paths"][p][m]["security"].clone();
    assert_eq!(
        security("get", "/admin/actors")[0]["admin"],
        Value::Array(vec![])
    );
    assert_eq!(security("get", "/todos")[0]["bearer"], Value::Array(vec![]));
    assert!(security("post", "/auth/login").is_null());
    assert!(security("get", "/health").is_null());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["admin"]["scheme"], "bearer");

    // Bodies and answers are described from the code's types.
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let body_ref = |m: &str, p: &str| {
        doc["paths"][p][m]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(|r| r.rsplit('/').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("{m} {p}: no JSON request body schema"))
    };
    let register = schema(&body_ref("post", "/auth/register"));
    for field in ["username", "email", "password", "full_name"] {
        assert!(
            register["properties"][field].is_object(),
            "register body lacks {field}: {register}"
        );
    }
    // ... with the validators' limits.
    assert_eq!(register["properties"]["username"]["minLength"], 3);
    assert_eq!(register["properties"]["username"]["maxLength"], 32);
    assert_eq!(register["properties"]["password"]["minLength"], 8);
    assert_eq!(register["properties"]["email"]["maxLength"], 254);
    // Aliases are described like the path they stand for.
    assert_eq!(
        body_ref("post", "/api/v1/airliner/registerUser"),
        body_ref("post", "/auth/register")
    );
    // A user's own password or email change names the current password; an admin's does
    // not.
    let profile = schema(&body_ref("put", "/users/profile"));
    let parts = profile["allOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{profile}"));
    assert!(
        parts
            .iter()
            .any(|p| p["properties"]["current_password"]["maxLength"] == 128),
        "no current_password: {profile}"
    );
    assert!(
        parts
            .iter()
            .any(|p| p["if"]["required"] == serde_json::json!(["password"])
                && p["then"]["required"] == serde_json::json!(["current_password"])),
        "no rule tying password to current_password: {profile}"
    );
    let admin_update = schema(&body_ref("put", "/users/{id}"));
    assert!(
        admin_update["properties"]["current_password"].is_null(),
        "{admin_update}"
    );
    assert!(
        admin_update["properties"]["password"].is_object(),
        "{admin_update}"
    );
    let todo = schema(&body_ref("post", "/todos"));
    assert_eq!(todo["required"], serde_json::json!(["title"]), "{todo}");
    let coach = schema(&body_ref("post", "/coaching/coaches"));
    for field in [
        "name",
        "bio",
        "user_id",
        "timezone",
        "slot_minutes",
        "availability",
    ] {
        assert!(
            coach["properties"][field].is_object(),
            "coach body lacks {field}: {coach}"
        );
    }
    assert_eq!(
        coach["properties"]["slot_minutes"]["minimum"], 15,
        "{coach}"
    );
    assert_eq!(
        coach["properties"]["slot_minutes"]["maximum"], 480,
        "{coach}"
    );
    let booking = schema(&body_ref("post", "/coaching/bookings"));
    assert_eq!(
        booking["required"],
        serde_json::json!(["coach_id", "start"]),
        "{booking}"
    );
    let error = schema("ErrorBody");
    assert!(error["properties"]["error"].is_object(), "{error}");

    // Every described route is served: without credentials or a body each answers with
    // its own error (or page), never the router's "no such route" or 405.
    for (m, p, _) in &ops {
        let url = n1.url(&p.replace(['{', '}'], ""));
        let (status, body) = request(m, &url);
        assert!(
            status != 405 && body["error"]["message"] != "no such route",
            "{m} {p}: {status} {body}"
        );
    }
}

/// `method` on `url` with no credentials and an empty JSON object as the body.
fn request(method: &str, url: &str) -> Answer {
    let body = serde_json::json!({});
    send(&method.to_uppercase(), url, Some(&body), None)
}

#[test]
fn the_document_states_the_rules_the_server_enforces() {
    let c = Cluster::start(
        "contract_rules",
        Options {
            nodes: 1,
            ..Options::default()
        },
    );
    let n1 = c.node("n1");
    let (_, doc) = get(&n1.url("/openapi.json"), None).unwrap();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let param = |m: &str, p: &str, name: &str| {
        doc["paths"][p][m]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|x| x["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{m} {p}: no parameter {name}"))
    };

    // A login names its account by the first of `login`, `username` and `email` given, and
    // needs one: the schema says so, and a body without one is refused.
    let login = schema("LoginBody");
    let alternatives = login["allOf"][0]["anyOf"]
        .as_array()
        .unwrap_or_else(|| panic!("no alternatives: {login}"));
    let required: Vec<&str> = alternatives
        .iter()
        .map(|a| a["required"][0].as_str().unwrap())
        .collect();
    assert_eq!(required, ["login", "username", "email"], "{login}");
    let (status, _) = post(
        &n1.url("/auth/login"),
        &serde_json::json!({"password": "passw0rd-long"}),
        None,
    )
    .unwrap();
    assert_eq!(status, 400);
    let (status, _) = post(
        &n1.url("/auth/login"),
        &serde_json::json!({"username": null, "email": "nobody@example.com", "password": "x"}),
        None,
    )
    .unwrap();
    assert_eq!(
        status, 401,
        "an account given by email alone is a login attempt"
    );

    // Page bounds are in the schema, and the server refuses what is above them.
    let page = param("get", "/notifications/logs", "page");
    assert_eq!(page["schema"]["maximum"], 1_000_000, "{page}");
    let per_page = param("get", "/notifications/logs", "per_page");
    assert_eq!(per_page["schema"]["maximum"], 500, "{per_page}");
    assert_eq!(param("get", "/todos", "per_page")["schema"]["maximum"], 100);
    let logs = |query: &str| {
        get(
            &n1.url(&format!("/notifications/logs?{query}")),
            Some(ADMIN_TOKEN),
        )
        .unwrap()
        .0
    };
    assert_eq!(logs("page=1000000"), 200);
    assert_eq!(logs("page=1000001"), 400);
    assert_eq!(logs("per_page=500"), 200);
    assert_eq!(logs("per_page=501"), 400);
    assert_eq!(logs("since=2026-01-31T12:00:00Z"), 200);
    assert_eq!(logs("since=+026-01-31T12:00:00Z"), 400);

    // The WebSocket upgrade states its headers; a plain GET is refused.
    assert_eq!(param("get", "/ws/{user_id}", "Upgrade")["required"], true);
    assert_eq!(get(&n1.url("/ws/someone"), None).unwrap().0, 400);

    // Ids in paths have their length; whole floats are integers, as in JSON Schema.
    let id = param("get", "/todos/{id}", "id");
    assert_eq!(id["schema"]["maxLength"], 64, "{id}");
    let user = new_user(n1, n1, "rules");
    let (status, v) = post(
        &n1.url("/users/search"),
        &serde_json::json!({"query": "rules", "page": 1.0, "per_page": 5.0}),
        Some(&user.access),
    )
    .unwrap();
    assert_eq!(
        (status, &v["per_page"]),
        (200, &serde_json::json!(5)),
        "{v}"
    );
}
