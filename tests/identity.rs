//! Identity on the mesh, black-box: users, auth and per-session actors across real node
//! processes, on the embedded SQLite store and (when `TROUPE_TEST_PG` is set) PostgreSQL.

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
fn identity_suite(c: &mut Cluster) {
    register_on_n1_login_on_n2_use_on_n3(c);
    every_register_and_login_path_works(c);
    revocations_are_refused_on_every_node(c);
    a_stolen_token_cannot_change_the_password(c);
    the_current_password_changes_it_and_ends_the_other_sessions_everywhere(c);
    a_stolen_token_cannot_change_the_email(c);
    a_new_email_is_unconfirmed_until_its_code_and_the_old_address_is_told(c);
    a_taken_email_is_answered_as_a_new_account_and_its_owner_is_told(c);
    the_directory_shows_emails_only_to_their_owner_and_admins(c);
    refresh_rotates_and_a_reused_refresh_token_ends_the_session(c);
    bad_input_is_refused_and_changes_nothing(c);
    ownership_is_enforced(c);
    admin_manages_users(c);
    session_survives_the_loss_of_its_home_node(c);
}

#[test]
fn identity_on_sqlite() {
    let mut c = cluster("identity-sqlite", None);
    identity_suite(&mut c);
}

/// Ending 100 sessions of one user at once: the pool of `sessions` used to starve itself
/// (each revocation waited on calls that needed its own workers) and answered 504 after 5 s.
/// Issue 23: wrong logins for one account spread over three nodes. The account's limit
/// (10 a minute here, the default) holds for the cluster, not per node: the eleventh
/// attempt, wherever it lands, is refused with 429 and a Retry-After; another account is
/// not affected.
#[test]
fn login_limits_hold_across_three_nodes_together() {
    let c = Cluster::start("login-limit", Options::default());
    let u = new_user(c.node("n1"), c.node("n2"), "limited");
    let other = new_user(c.node("n2"), c.node("n3"), "bystander");
    let mut refused_at = None;
    for i in 0..15 {
        let node = &c.nodes[i % 3];
        let mut resp = post_json_raw(
            &node.url("/auth/login"),
            &json!({"username": u.username, "password": "wrong-password-1"}),
        );
        let status = resp.status().as_u16();
        if status == 429 {
            let retry: u64 = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("a Retry-After header in seconds");
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            let body: Value =
                serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "resource_exhausted", "{body}");
            refused_at.get_or_insert(i);
        } else {
            assert_eq!(status, 401, "attempt {i}");
            assert!(
                refused_at.is_none(),
                "attempt {i} let through after a refusal"
            );
        }
    }
    // The new_user login counted too: 10 in all are allowed, the 10th wrong one refused.
    assert_eq!(refused_at, Some(9), "refused from attempt {refused_at:?}");
    // Even the right password waits now; another account logs in at once.
    let (status, _) = login(c.node("n3"), &u.username, &u.password);
    assert_eq!(status, 429);
    let (status, v) = login(c.node("n1"), &other.username, &other.password);
    assert_eq!(status, 200, "{v}");
}

/// Issue 23's revocation hole: a session past its end (here its 2 s refresh lifetime)
/// can no longer be refreshed, but an access token minted before still works for its own
/// lifetime (60 s). Ending the session must stop that token on every node: before, the
/// revocation was kept only until the session's end, already past, so it was dropped at
/// once and the token kept working.
#[test]
fn an_ended_session_past_its_end_stops_its_tokens_everywhere() {
    let c = Cluster::start(
        "revoke-old",
        Options {
            auth_toml: "refresh_ttl_s = 2\naccess_ttl_s = 60".into(),
            ..Options::default()
        },
    );
    let u = new_user(c.node("n1"), c.node("n2"), "old");
    std::thread::sleep(Duration::from_millis(2500));
    // Past its end: the refresh is refused.
    let (status, v) = post(
        &c.node("n3").url("/auth/refresh"),
        &json!({"refresh_token": u.refresh}),
        None,
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["message"].as_str()),
        (401, Some("session has ended")),
        "{v}"
    );
    // The access token still works, until its own expiry.
    let (status, v) = send("GET", &c.node("n1").url("/profile"), None, Some(&u.access));
    assert_eq!(status, 200, "{v}");
    // Logging out ends it on every node.
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/auth/logout"),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    refused_everywhere(&c, &u.access);
    // And it stays refused: the revocation is not pruned at the session's past end.
    std::thread::sleep(Duration::from_millis(1500));
    for n in &c.nodes {
        assert_eq!(
            send("GET", &n.url("/profile"), None, Some(&u.access)).0,
            401
        );
    }
}

#[test]
fn ending_a_hundred_sessions_answers_at_once_and_every_token_stops_everywhere() {
    let c = Cluster::start(
        "revoke-100",
        Options {
            auth_toml: "login_per_account_per_minute = 1000\nlogin_per_ip_per_minute = 1000".into(),
            ..Options::default()
        },
    );
    let u = new_user(c.node("n1"), c.node("n2"), "many");
    let mut tokens = vec![u.access.clone()];
    for i in 1..100 {
        let node = &c.nodes[i % c.nodes.len()];
        let (status, v) = login(node, &u.username, &u.password);
        assert_eq!(status, 200, "login {i}: {v}");
        tokens.push(v["access_token"].as_str().unwrap().to_string());
    }
    let (status, v) = send(
        "DELETE",
        &c.node("n2").url(&format!("/api/sessions/{}", u.id)),
        None,
        Some(&u.access),
    );
    let answered = std::time::Instant::now();
    // 200 means it answered within the request deadline (5 s): past it, 504.
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ended"], 100, "{v}");
    // Every token is refused on every node within a second of the answer.
    let mut accepted: Vec<(&Node, &String)> = c
        .nodes
        .iter()
        .flat_map(|n| tokens.iter().map(move |t| (n, t)))
        .collect();
    while !accepted.is_empty() && answered.elapsed() < Duration::from_secs(1) {
        accepted.retain(|(n, t)| send("GET", &n.url("/profile"), None, Some(t)).0 != 401);
    }
    let late: Vec<&str> = accepted
        .iter()
        .map(|(n, _)| n.addrs.name.as_str())
        .collect();
    assert!(
        late.is_empty(),
        "tokens still accepted a second later on {late:?}"
    );
}

#[test]
fn identity_on_postgres() {
    let Some(storage) = postgres_storage("identity_on_postgres") else {
        return;
    };
    let mut c = cluster("identity-pg", Some(storage));
    identity_suite(&mut c);
}

fn register_on_n1_login_on_n2_use_on_n3(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "alice");
    let (status, v) = send("GET", &c.node("n3").url("/profile"), None, Some(&u.access));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], u.id.as_str());
    assert_eq!(v["username"], u.username.as_str());
    assert!(
        v.get("password_hash").is_none()
            && !v.to_string().contains("pbkdf2")
            && !v.to_string().contains("argon2")
    );
    let (status, v) = send(
        "GET",
        &c.node("n1").url("/auth/verify-token"),
        None,
        Some(&u.access),
    );
    assert_eq!((status, v["user_id"].as_str()), (200, Some(u.id.as_str())));
    let (status, v) = send(
        "GET",
        &c.node("n2").url(&format!("/auth/verify/{}", u.access)),
        None,
        None,
    );
    assert_eq!(
        (status, v["session_id"].as_str()),
        (200, Some(u.session.as_str()))
    );
    let (status, v) = send("GET", &c.node("n3").url("/test-db"), None, None);
    assert_eq!((status, v["db"].as_str()), (200, Some("ok")), "{v}");
}

fn every_register_and_login_path_works(c: &Cluster) {
    let paths = [
        "/auth/register",
        "/api/auth/register",
        "/users/register",
        "/api/v1/airliner/registerUser",
    ];
    let logins = [
        "/login",
        "/auth/login",
        "/api/auth/login",
        "/api/v1/airliner/login",
        "/api/v1/airliner/generateToken",
    ];
    for (i, path) in paths.iter().enumerate() {
        let name = format!("path{i}_{}", unique());
        let node = &c.nodes[i % 3];
        let (status, v) = post(
            &node.url(path),
            &json!({"username": name, "email": format!("{name}@example.com"), "password": "passw0rd-long", "full_name": "P", "extra": "ignored"}),
            None,
        )
        .unwrap();
        assert_eq!(status, 201, "{path}: {v}");
        for (j, login_path) in logins.iter().enumerate() {
            let node = &c.nodes[(i + j) % 3];
            // By username on some paths, by email on others.
            let body = if j % 2 == 0 {
                json!({"username": name, "password": "passw0rd-long"})
            } else {
                json!({"email": format!("{}@EXAMPLE.com", name.to_uppercase()), "password": "passw0rd-long"})
            };
            let (status, v) = post(&node.url(login_path), &body, None).unwrap();
            assert_eq!(status, 200, "{login_path}: {v}");
            assert_eq!(v["token_type"], "Bearer");
            assert!(v["expires_in"].as_u64().unwrap() > 0);
            assert!(v["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
            assert_eq!(v["user"]["username"], name.as_str());
            assert_eq!(v["user"]["roles"], json!(["user"]));
        }
    }
}

fn refused_everywhere(c: &Cluster, token: &str) {
    for n in &c.nodes {
        let ok = wait_until(Duration::from_secs(1), || {
            send("GET", &n.url("/profile"), None, Some(token)).0 == 401
        });
        assert!(
            ok,
            "token still accepted on {} a second after revocation",
            n.addrs.name
        );
    }
}

fn revocations_are_refused_on_every_node(c: &Cluster) {
    // Logout on n2.
    let u = new_user(c.node("n1"), c.node("n3"), "rev");
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/auth/logout"),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    refused_everywhere(c, &u.access);
    let (status, v) = send("GET", &c.node("n1").url("/profile"), None, Some(&u.access));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // DELETE /api/sessions/:userId ends every session of the user.
    let u = new_user(c.node("n1"), c.node("n2"), "revall");
    let (_, second) = login(c.node("n3"), &u.username, &u.password);
    let second = second["access_token"].as_str().unwrap().to_string();
    let (status, v) = send(
        "DELETE",
        &c.node("n2").url(&format!("/api/sessions/{}", u.id)),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ended"], 2, "{v}");
    refused_everywhere(c, &u.access);
    refused_everywhere(c, &second);

    // An admin's password change ends every session; the new password works, the old one
    // does not.
    let u = new_user(c.node("n2"), c.node("n3"), "pwchange");
    let (status, v) = send(
        "PUT",
        &c.node("n1").url(&format!("/users/{}", u.id)),
        Some(&json!({"password": "n3w-passw0rd"})),
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{v}");
    refused_everywhere(c, &u.access);
    assert_eq!(login(c.node("n1"), &u.username, &u.password).0, 401);
    assert_eq!(login(c.node("n2"), &u.username, "n3w-passw0rd").0, 200);

    // Deleting the user ends the sessions too.
    let u = new_user(c.node("n3"), c.node("n1"), "deleted");
    let (status, v) = send(
        "DELETE",
        &c.node("n2").url(&format!("/users/{}", u.id)),
        None,
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{v}");
    refused_everywhere(c, &u.access);
    assert_eq!(login(c.node("n1"), &u.username, &u.password).0, 401);
}

/// The error code and the fields named by an error answer.
fn refusal(a: &Answer) -> (u16, String, Vec<String>) {
    (
        a.0,
        a.1["error"]["code"].as_str().unwrap_or_default().into(),
        field_errors(&a.1),
    )
}

/// The caller's profile, read on `node`.
fn profile_on(node: &Node, token: &str) -> Value {
    let (status, v) = send("GET", &node.url("/users/profile"), None, Some(token));
    assert_eq!(status, 200, "{v}");
    v
}

fn a_stolen_token_cannot_change_the_password(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "stolen");
    let before = profile_on(c.node("n3"), &u.access);
    let put = |body: Value| {
        send(
            "PUT",
            &c.node("n3").url("/users/profile"),
            Some(&body),
            Some(&u.access),
        )
    };
    // The token alone: 400 naming current_password.
    let a = put(json!({"password": "taken-0ver-pw"}));
    assert_eq!(
        refusal(&a),
        (
            400,
            "invalid_argument".into(),
            vec!["current_password".into()]
        ),
        "{}",
        a.1
    );
    // A wrong guess: 403, and an empty one counts as none.
    let a = put(json!({"password": "taken-0ver-pw", "current_password": "guess-passw0rd"}));
    assert_eq!(refusal(&a).0, 403, "{}", a.1);
    assert_eq!(a.1["error"]["code"], "permission_denied");
    assert_eq!(a.1["error"]["message"], "current password is incorrect");
    let a = put(json!({"password": "taken-0ver-pw", "current_password": ""}));
    assert_eq!(refusal(&a).0, 400, "{}", a.1);
    // A bad new password is reported with the missing current one, at once.
    let a = put(json!({"password": "short"}));
    assert_eq!(
        refusal(&a).2,
        ["current_password".to_string(), "password".to_string()],
        "{}",
        a.1
    );
    // Nothing changed: the old password logs in, the new one does not, the profile is the
    // same and the token still works.
    assert_eq!(login(c.node("n1"), &u.username, &u.password).0, 200);
    assert_eq!(login(c.node("n2"), &u.username, "taken-0ver-pw").0, 401);
    let after = profile_on(c.node("n1"), &u.access);
    assert_eq!(after, before);
    // Other fields still change with the token alone (clients that never send a password
    // keep working).
    let a =
        put(json!({"full_name": "Still Me", "email": u.username.to_uppercase() + "@EXAMPLE.COM"}));
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!(a.1["full_name"], "Still Me");
    assert_eq!(
        a.1["confirmed"], before["confirmed"],
        "same address, same state"
    );
}

fn the_current_password_changes_it_and_ends_the_other_sessions_everywhere(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "pwself");
    let (_, second) = login(c.node("n3"), &u.username, &u.password);
    let second = second["access_token"].as_str().unwrap().to_string();
    let (_, third) = login(c.node("n1"), &u.username, &u.password);
    let third_refresh = third["refresh_token"].as_str().unwrap().to_string();
    let third = third["access_token"].as_str().unwrap().to_string();

    let (status, v) = send(
        "PUT",
        &c.node("n2").url("/users/profile"),
        Some(&json!({"password": "n3w-passw0rd", "current_password": u.password})),
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], u.id.as_str());
    assert!(v.get("current_password").is_none() && v.get("password").is_none());
    // The other sessions' tokens are refused on every node within a second; the caller's
    // own still works everywhere.
    refused_everywhere(c, &second);
    refused_everywhere(c, &third);
    let (status, _) = post(
        &c.node("n3").url("/auth/refresh"),
        &json!({"refresh_token": third_refresh}),
        None,
    )
    .unwrap();
    assert_eq!(status, 401);
    for n in &c.nodes {
        assert_eq!(profile_on(n, &u.access)["id"], u.id.as_str());
    }
    let (status, v) = send(
        "GET",
        &c.node("n3").url(&format!("/api/sessions/{}", u.id)),
        None,
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    let open: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["revoked"] == false)
        .collect();
    assert_eq!(open.len(), 1, "{v}");
    assert_eq!(open[0]["id"], u.session.as_str());
    assert_eq!(login(c.node("n1"), &u.username, &u.password).0, 401);
    assert_eq!(login(c.node("n2"), &u.username, "n3w-passw0rd").0, 200);
}

fn a_stolen_token_cannot_change_the_email(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "stolenmail");
    let before = profile_on(c.node("n1"), &u.access);
    let thief = format!("thief_{}@example.com", unique());
    let a = send(
        "PUT",
        &c.node("n3").url("/users/profile"),
        Some(&json!({"email": thief, "full_name": "Thief"})),
        Some(&u.access),
    );
    assert_eq!(
        refusal(&a),
        (
            400,
            "invalid_argument".into(),
            vec!["current_password".into()]
        ),
        "{}",
        a.1
    );
    let a = send(
        "PUT",
        &c.node("n3").url("/users/profile"),
        Some(&json!({"email": thief, "current_password": "guess-passw0rd"})),
        Some(&u.access),
    );
    assert_eq!(refusal(&a).0, 403, "{}", a.1);
    // Nothing changed, the full name in the refused request included.
    assert_eq!(profile_on(c.node("n2"), &u.access), before);
    assert_eq!(
        post(
            &c.node("n1").url("/auth/login"),
            &json!({"email": thief, "password": u.password}),
            None
        )
        .unwrap()
        .0,
        401
    );
}

/// Waits for the caller's notification of `kind` and answers its data.
fn notification(node: &Node, token: &str, kind: &str) -> Value {
    let mut data = Value::Null;
    let found = wait_until(Duration::from_secs(10), || {
        let (status, v) = send("GET", &node.url("/notifications"), None, Some(token));
        assert_eq!(status, 200, "{v}");
        if let Some(n) = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["type"] == kind)
        {
            data = n["data"].clone();
        }
        !data.is_null()
    });
    assert!(found, "no {kind} notification");
    data
}

fn a_new_email_is_unconfirmed_until_its_code_and_the_old_address_is_told(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "newmail");
    let old = format!("{}@example.com", u.username);
    // Confirm the registration first, so the change visibly unconfirms it.
    let code = notification(c.node("n1"), &u.access, "user.registration_code")["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = post(
        &c.node("n2").url("/users/confirm-registration"),
        &json!({"username": u.username, "code": code}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(profile_on(c.node("n3"), &u.access)["confirmed"], true);

    let new = format!("moved_{}@example.com", unique());
    let (status, v) = send(
        "PUT",
        &c.node("n3").url("/users/profile"),
        Some(&json!({"email": new, "current_password": u.password})),
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["email"].as_str(), v["confirmed"].as_bool()),
        (Some(new.as_str()), Some(false))
    );
    for n in &c.nodes {
        let p = profile_on(n, &u.access);
        assert_eq!(
            (p["email"].as_str(), p["confirmed"].as_bool()),
            (Some(new.as_str()), Some(false)),
            "{}",
            n.addrs.name
        );
    }
    // The old address is told, naming both.
    let told = notification(c.node("n2"), &u.access, "user.email_changed");
    assert_eq!(told["old_email"], old.as_str(), "{told}");
    assert_eq!(told["new_email"], new.as_str(), "{told}");
    assert_eq!(told["to"], old.as_str(), "{told}");
    // A code goes to the new address, and confirms it.
    let mut data = Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        let (_, v) = send(
            "GET",
            &c.node("n1").url("/notifications"),
            None,
            Some(&u.access),
        );
        if let Some(n) =
            v["items"].as_array().into_iter().flatten().find(|n| {
                n["type"] == "user.registration_code" && n["data"]["email"] == new.as_str()
            })
        {
            data = n["data"].clone();
        }
        !data.is_null()
    }));
    let code = data["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    let (status, v) = post(
        &c.node("n1").url("/users/confirm-registration"),
        &json!({"email": new, "code": code}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(profile_on(c.node("n2"), &u.access)["confirmed"], true);
    // The account now logs in by its new address, not the old.
    assert_eq!(
        post(
            &c.node("n2").url("/auth/login"),
            &json!({"email": new, "password": u.password}),
            None
        )
        .unwrap()
        .0,
        200
    );
    assert_eq!(
        post(
            &c.node("n2").url("/auth/login"),
            &json!({"email": old, "password": u.password}),
            None
        )
        .unwrap()
        .0,
        401
    );
}

/// Issue 23, the attack: to learn whether an address has an account, register it under a
/// name of one's own, on every register path. Each answer is a 201 of the same shape as a
/// real registration's; the address still has one account, the probes none (their logins
/// fail as an unknown account's do), and the owner is told of each attempt.
fn a_taken_email_is_answered_as_a_new_account_and_its_owner_is_told(c: &Cluster) {
    let owner = new_user(c.node("n1"), c.node("n2"), "taken");
    let owner_email = format!("{}@example.com", owner.username);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let paths = [
        "/auth/register",
        "/api/auth/register",
        "/users/register",
        "/api/v1/airliner/registerUser",
    ];
    let mut probes = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let node = &c.nodes[i % c.nodes.len()];
        let fresh = format!("fresh_{}", unique());
        let (status, real) = post(
            &node.url(path),
            &json!({"username": fresh, "email": format!("{fresh}@example.com"), "password": "passw0rd-long"}),
            None,
        )
        .unwrap();
        assert_eq!(status, 201, "{path}: {real}");
        let probe = format!("probe_{}", unique());
        let email = owner_email.to_uppercase();
        let (status, v) = post(
            &node.url(path),
            &json!({"username": probe, "email": email, "password": "passw0rd-long"}),
            None,
        )
        .unwrap();
        assert_eq!(status, 201, "{path}: {v}");
        assert_eq!(keys(&v), keys(&real), "{path}: {v} against {real}");
        assert_eq!(
            (&v["username"], &v["email"], &v["roles"], &v["confirmed"]),
            (
                &json!(probe),
                &json!(email),
                &real["roles"],
                &real["confirmed"]
            ),
            "{path}: {v}"
        );
        assert_eq!(
            v["id"].as_str().unwrap().len(),
            real["id"].as_str().unwrap().len()
        );
        assert_ne!(v["id"], owner.id.as_str());
        probes.push(probe);
    }

    // One account holds the address, the probes none: they log in as an unknown account.
    let admin = admin_token(c);
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/users/search"),
        Some(&json!({"query": owner_email})),
        Some(&admin),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(v["items"][0]["id"], owner.id.as_str(), "{v}");
    for probe in &probes {
        let (status, v) = send(
            "POST",
            &c.node("n3").url("/users/search"),
            Some(&json!({"query": probe})),
            Some(&admin),
        );
        assert_eq!(
            (status, v["total"].as_u64()),
            (200, Some(0)),
            "{probe}: {v}"
        );
        let (status, v) = login(c.node("n1"), probe, "passw0rd-long");
        assert_eq!(status, 401, "{probe}: {v}");
    }
    let (status, _) = login(c.node("n2"), &owner.username, &owner.password);
    assert_eq!(status, 200, "the owner's account is untouched");

    // The owner is told, at their address, of every attempt.
    let mut told = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (status, v) = send(
                "GET",
                &c.node("n3").url("/notifications?per_page=100"),
                None,
                Some(&owner.access),
            );
            assert_eq!(status, 200, "{v}");
            told = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["type"] == "user.register_attempted")
                .map(|n| n["data"].clone())
                .collect();
            told.len() == probes.len()
        }),
        "{told:?}"
    );
    for data in &told {
        assert_eq!(data["to"], owner_email.as_str(), "{data}");
        assert_eq!(data["username"], owner.username.as_str(), "{data}");
        assert!(
            probes
                .iter()
                .any(|p| data["attempted_username"] == p.as_str()),
            "{data}"
        );
    }
}

fn the_directory_shows_emails_only_to_their_owner_and_admins(c: &Cluster) {
    let prefix = format!("dir{}", unique());
    let owner = new_user(c.node("n1"), c.node("n2"), &prefix);
    let other = new_user(c.node("n2"), c.node("n3"), &prefix);
    let (status, v) = login(c.node("n3"), "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    let admin = v["access_token"].as_str().unwrap().to_string();
    let email_of = |u: &User| format!("{}@example.com", u.username);

    // Every directory answer, as `token` sees it: the entries of `owner` and `other`.
    let entries = |token: &str| -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (n, path) in [
            (c.node("n1"), format!("/users/search?q={prefix}")),
            (c.node("n2"), "/users?per_page=100".to_string()),
        ] {
            let (status, v) = send("GET", &n.url(&path), None, Some(token));
            assert_eq!(status, 200, "{path}: {v}");
            for item in v["items"].as_array().unwrap() {
                out.push((path.clone(), item.clone()));
            }
        }
        let (status, v) = send(
            "POST",
            &c.node("n3").url("/users/search"),
            Some(&json!({"query": prefix})),
            Some(token),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["total"], 2, "{v}");
        for item in v["items"].as_array().unwrap() {
            out.push(("POST /users/search".into(), item.clone()));
        }
        for u in [&owner, &other] {
            let path = format!("/users/{}", u.id);
            let (status, v) = send("GET", &c.node("n1").url(&path), None, Some(token));
            assert_eq!(status, 200, "{path}: {v}");
            out.push((path, v));
        }
        out.retain(|(_, item)| item["id"] == owner.id.as_str() || item["id"] == other.id.as_str());
        out
    };

    // The owner sees their own email and nobody else's: the field is absent.
    let seen = entries(&owner.access);
    assert!(seen.len() >= 6, "{seen:?}");
    for (path, item) in &seen {
        if item["id"] == owner.id.as_str() {
            assert_eq!(item["email"], email_of(&owner).as_str(), "{path}: {item}");
        } else {
            assert!(item.get("email").is_none(), "{path}: {item}");
            assert!(!item.to_string().contains("@example.com"), "{path}: {item}");
            assert_eq!(item["username"], other.username.as_str(), "{path}: {item}");
        }
    }
    // The admin sees every email.
    for (path, item) in entries(&admin) {
        let u = if item["id"] == owner.id.as_str() {
            &owner
        } else {
            &other
        };
        assert_eq!(item["email"], email_of(u).as_str(), "{path}: {item}");
    }
    // Searching for another user's address finds nobody (it would tell the address);
    // an admin's search does find them.
    let by_email = json!({"query": email_of(&other)});
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/users/search"),
        Some(&by_email),
        Some(&owner.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(0)), "{v}");
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/users/search"),
        Some(&by_email),
        Some(&admin),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(v["items"][0]["id"], other.id.as_str());
    // A bad search is still refused in the API's error form.
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/users/search"),
        Some(&json!({"query": " "})),
        Some(&owner.access),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_argument")),
        "{v}"
    );
}

fn refresh_rotates_and_a_reused_refresh_token_ends_the_session(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "refresh");
    let (status, v) = post(
        &c.node("n3").url("/auth/refresh"),
        &json!({"refresh_token": u.refresh}),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let access2 = v["access_token"].as_str().unwrap().to_string();
    let refresh2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, u.refresh);
    assert_eq!(v["session_id"], u.session.as_str());
    assert_eq!(
        send("GET", &c.node("n1").url("/profile"), None, Some(&access2)).0,
        200
    );
    // The first refresh token is spent: reusing it is refused and ends the session.
    let (status, v) = post(
        &c.node("n1").url("/auth/refresh"),
        &json!({"refresh_token": u.refresh}),
        None,
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "{v}"
    );
    refused_everywhere(c, &access2);
    let (status, _) = post(
        &c.node("n2").url("/auth/refresh"),
        &json!({"refresh_token": refresh2}),
        None,
    )
    .unwrap();
    assert_eq!(status, 401);
    // An access token is not a refresh token.
    let u = new_user(c.node("n1"), c.node("n2"), "kind");
    let (status, _) = post(
        &c.node("n3").url("/auth/refresh"),
        &json!({"refresh_token": u.access}),
        None,
    )
    .unwrap();
    assert_eq!(status, 401);
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn bad_input_is_refused_and_changes_nothing(c: &Cluster) {
    let n1 = c.node("n1");
    let u = new_user(n1, c.node("n2"), "dup");
    let check = |a: Answer, status: u16, code: &str| {
        assert_eq!(a.0, status, "{}", a.1);
        assert_eq!(a.1["error"]["code"], code, "{}", a.1);
    };
    // Duplicates, case-insensitively.
    let reg = |body: Value| post(&n1.url("/auth/register"), &body, None).unwrap();
    check(
        reg(
            json!({"username": u.username.to_uppercase(), "email": format!("x{}@example.com", unique()), "password": "passw0rd-long"}),
        ),
        409,
        "already_exists",
    );
    // A taken email under a free name is answered as a new account (see
    // `a_taken_email_is_answered_as_a_new_account_and_its_owner_is_told`).
    let (status, v) = reg(
        json!({"username": format!("other_{}", unique()), "email": format!("{}@EXAMPLE.COM", u.username), "password": "passw0rd-long"}),
    );
    assert_eq!(status, 201, "{v}");
    // Weak or missing fields: 400 naming every bad field.
    let (status, v) = reg(json!({"username": "x", "email": "not-an-email", "password": "short"}));
    assert_eq!(status, 400, "{v}");
    for f in ["username", "email", "password"] {
        assert!(
            v["error"]["details"]["fields"].get(f).is_some(),
            "{f} not reported: {v}"
        );
    }
    let (status, v) = reg(json!({}));
    assert_eq!(status, 400, "{v}");
    check(
        post_raw(
            &n1.url("/auth/register"),
            b"{oops",
            "application/json",
            None,
        )
        .unwrap(),
        400,
        "invalid_argument",
    );
    // Wrong password and unknown user look the same.
    let (s1, wrong) = login(n1, &u.username, "wrong-passw0rd");
    let (s2, unknown) = login(n1, &format!("nobody_{}", unique()), "wrong-passw0rd");
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
    check(
        post(&n1.url("/login"), &json!({"username": u.username}), None).unwrap(),
        400,
        "invalid_argument",
    );
    // Forged, alg:none, garbage and missing tokens.
    let parts: Vec<&str> = u.access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64url(br#"{"sub":"someone-else","sid":"x","username":"x","roles":["admin"],"typ":"access","jti":"j","iat":1,"exp":9999999999,"iss":"troupe-test"}"#), parts[2]);
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT","kid":"test"}"#),
        parts[1]
    );
    for bad in [tampered.as_str(), none.as_str(), "garbage", "a.b.c"] {
        check(
            send("GET", &n1.url("/profile"), None, Some(bad)),
            401,
            "unauthenticated",
        );
        check(
            send("GET", &n1.url("/users"), None, Some(bad)),
            401,
            "unauthenticated",
        );
    }
    check(
        send("GET", &n1.url("/profile"), None, None),
        401,
        "unauthenticated",
    );
    // A user token is not an admin credential.
    check(
        send("GET", &n1.url("/admin/actors"), None, Some(&u.access)),
        403,
        "permission_denied",
    );
    // SQL-looking input is stored verbatim and harmless.
    let evil = "Robert'); DROP TABLE users;--";
    let (status, v) = send(
        "PUT",
        &c.node("n2").url("/users/profile"),
        Some(&json!({"full_name": evil})),
        Some(&u.access),
    );
    assert_eq!(status, 200, "{v}");
    let (_, v) = send("GET", &c.node("n3").url("/profile"), None, Some(&u.access));
    assert_eq!(v["full_name"], evil);
    let (status, v) = send(
        "POST",
        &n1.url("/users/search"),
        Some(&json!({"query": "%' OR 1=1 --"})),
        Some(&u.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(0)), "{v}");
    let (status, v) = send(
        "GET",
        &n1.url(&format!("/users/search?q={}", u.username)),
        None,
        Some(&u.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(1)), "{v}");
    // The GET search pages like every list, with either pair of paging parameters.
    let prefix = format!("pg{}", unique());
    let (a, b) = (new_user(n1, n1, &prefix), new_user(n1, n1, &prefix));
    let mut seen = Vec::new();
    for query in ["page=1&per_page=1", "page=2&per_page=1", "limit=1&offset=1"] {
        let (status, v) = send(
            "GET",
            &n1.url(&format!("/users/search?q={prefix}&{query}")),
            None,
            Some(&u.access),
        );
        assert_eq!(status, 200, "{query}: {v}");
        assert_eq!(v["total"], 2, "{query}: {v}");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{query}: {v}");
        seen.push(v["items"][0]["username"].as_str().unwrap().to_string());
    }
    let mut both = [a.username, b.username];
    both.sort();
    assert_eq!(seen, [both[0].clone(), both[1].clone(), both[1].clone()]);
    // Login attempts are rate-limited per account.
    let target = new_user(n1, n1, "ratelimit");
    let mut limited = false;
    for _ in 0..15 {
        let (status, v) = login(n1, &target.username, "wrong-passw0rd");
        if status == 429 {
            assert_eq!(v["error"]["code"], "resource_exhausted");
            limited = true;
            break;
        }
    }
    assert!(limited, "15 bad logins in a row were never rate-limited");
}

fn ownership_is_enforced(c: &Cluster) {
    let a = new_user(c.node("n1"), c.node("n2"), "owner");
    let b = new_user(c.node("n2"), c.node("n3"), "intruder");
    let n3 = c.node("n3");
    for (method, path) in [
        ("GET", format!("/api/sessions/{}", a.id)),
        ("DELETE", format!("/api/sessions/{}", a.id)),
        ("PUT", format!("/api/sessions/{}", a.id)),
        ("GET", format!("/users/profile/{}", a.id)),
        ("GET", format!("/last-connection?userId={}", a.id)),
        ("PUT", format!("/users/{}", a.id)),
        ("DELETE", format!("/users/{}", a.id)),
    ] {
        let (status, v) = send(method, &n3.url(&path), Some(&json!({})), Some(&b.access));
        assert_eq!(status, 403, "{method} {path}: {v}");
    }
    // a's sessions are untouched, and a sees them.
    assert_eq!(
        send("GET", &n3.url("/profile"), None, Some(&a.access)).0,
        200
    );
    let (status, v) = send(
        "GET",
        &n3.url(&format!("/api/sessions/{}", a.id)),
        None,
        Some(&a.access),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["id"], a.session.as_str());
    assert_eq!(v["items"][0]["current"], true);
    let (status, v) = send("GET", &n3.url("/last-connection"), None, Some(&a.access));
    assert_eq!(
        (status, v["session_id"].as_str()),
        (200, Some(a.session.as_str())),
        "{v}"
    );
    // Public keys: put own, read anyone's.
    let (status, v) = send(
        "POST",
        &c.node("n1").url("/keys"),
        Some(&json!({"public_key": "cHVibGljLWtleQ=="})),
        Some(&a.access),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = send(
        "GET",
        &c.node("n2").url(&format!("/keys/{}", a.id)),
        None,
        Some(&b.access),
    );
    assert_eq!(
        (status, v["public_key"].as_str()),
        (200, Some("cHVibGljLWtleQ==")),
        "{v}"
    );
    let (status, v) = send(
        "GET",
        &c.node("n2").url("/contacts/"),
        None,
        Some(&a.access),
    );
    assert_eq!((status, v["total"].as_u64()), (200, Some(0)), "{v}");
}

fn admin_manages_users(c: &Cluster) {
    // The bootstrap admin logs in like anyone and has role admin.
    let (status, v) = login(c.node("n2"), "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    assert!(v["user"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("admin")));
    let admin = v["access_token"].as_str().unwrap().to_string();
    let name = format!("made_{}", unique());
    let (status, v) = send(
        "POST",
        &c.node("n1").url("/auth/admin/create-user"),
        Some(
            &json!({"username": name, "email": format!("{name}@example.com"), "password": "passw0rd-long"}),
        ),
        Some(&admin),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (status, v) = send(
        "PUT",
        &c.node("n3").url(&format!("/users/{id}")),
        Some(&json!({"roles": ["user", "admin"]})),
        Some(&admin),
    );
    assert_eq!(
        (status, v["roles"].clone()),
        (200, json!(["user", "admin"])),
        "{v}"
    );
    let (status, v) = send(
        "POST",
        &c.node("n2").url("/auth/admin/set-password"),
        Some(&json!({"username": name, "password": "an0ther-passw0rd"})),
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(login(c.node("n1"), &name, "an0ther-passw0rd").0, 200);
    let (status, v) = send(
        "GET",
        &c.node("n1").url("/users?per_page=2&page=1"),
        None,
        Some(&admin),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(v["total"].as_u64().unwrap() >= 3);
    let (status, _) = send(
        "POST",
        &c.node("n2").url("/auth/admin/delete-user"),
        Some(&json!({"user_id": id})),
        Some(&admin),
    );
    assert_eq!(status, 200);
    assert_eq!(
        send(
            "GET",
            &c.node("n3").url(&format!("/users/{id}")),
            None,
            Some(&admin)
        )
        .0,
        404
    );
}

fn session_survives_the_loss_of_its_home_node(c: &mut Cluster) {
    // Log in until a session lands on n3 (rendezvous hashing spreads them).
    let mut found = None;
    for _ in 0..30 {
        let u = new_user(c.node("n1"), c.node("n2"), "home");
        let (status, v) = send(
            "POST",
            &c.node("n1").url("/api/sessions"),
            Some(&json!({"device": "phone", "metadata": {"app": "x"}})),
            Some(&u.access),
        );
        assert_eq!(status, 201, "{v}");
        if v["served_by"] == "n3" {
            found = Some(u);
            break;
        }
    }
    let u = found.expect("no session homed on n3 in 30 tries");
    c.node_mut("n3").kill();
    // The survivors take the session over once n3's node lease has run out (it cannot
    // release it when SIGKILLed): stable_after (2 s) or the lease's remaining lifetime (at
    // most 4 s), whichever is later; each survivor downs n3 on its own.
    let ok = wait_until(Duration::from_secs(15), || {
        ["n1", "n2"].iter().all(|n| {
            let (status, v) = send(
                "GET",
                &c.node(n).url("/api/sessions/verify"),
                None,
                Some(&u.access),
            );
            status == 200 && v["session"]["served_by"] != "n3"
        })
    });
    assert!(ok, "the session never answered from a survivor");
    let (_, v) = send(
        "GET",
        &c.node("n2").url("/api/sessions/verify"),
        None,
        Some(&u.access),
    );
    assert_eq!(v["valid"], true);
    assert_eq!(v["session"]["device"], "phone");
    assert_eq!(v["session"]["metadata"]["app"], "x");
    assert_eq!(v["session"]["id"], u.session.as_str());
}

#[test]
fn worker_kills_during_logins_and_profile_reads_lose_no_acknowledged_write() {
    let c = cluster("identity-chaos", None);
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url("")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let base = &urls[i % urls.len()];
                let name = format!("chaos{i}_{}", unique());
                let (status, v) = post(&format!("{base}/auth/register"), &json!({"username": name, "email": format!("{name}@example.com"), "password": "passw0rd-long"}), None).unwrap();
                if status == 201 {
                    acked.push((name.clone(), v["id"].as_str().unwrap().to_string()));
                    let base = &urls[(i + 1) % urls.len()];
                    let (status, v) = post(
                        &format!("{base}/auth/login"),
                        &json!({"username": name, "password": "passw0rd-long"}),
                        None,
                    )
                    .unwrap();
                    if status == 200 {
                        let token = v["access_token"].as_str().unwrap();
                        let base = &urls[(i + 2) % urls.len()];
                        let _ = get(&format!("{base}/profile"), Some(token));
                    }
                }
            }
            acked
        })
    };
    for round in 0..15 {
        let service = ["users", "sessions", "auth"][round % 3];
        let (status, v) = post(
            &c.node("n1").url("/admin/chaos/kill"),
            &json!({"service": service, "count": 2}),
            Some(ADMIN_TOKEN),
        )
        .unwrap();
        assert_eq!(status, 200, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = client.join().unwrap();
    assert!(
        acked.len() >= 5,
        "only {} registrations acknowledged",
        acked.len()
    );
    // Supervisors may still be backing off after the kills: wait for the cluster to heal.
    let mut admin = String::new();
    let healed = wait_until(Duration::from_secs(15), || {
        let (status, v) = login(c.node("n2"), "admin", ADMIN_PASSWORD);
        if status == 200 {
            admin = v["access_token"].as_str().unwrap().to_string();
        }
        status == 200
    });
    assert!(healed, "admin login never worked again after the kills");
    for (name, id) in &acked {
        let (status, v) = send(
            "GET",
            &c.node("n3").url(&format!("/users/{id}")),
            None,
            Some(&admin),
        );
        assert_eq!(
            (status, v["username"].as_str()),
            (200, Some(name.as_str())),
            "acknowledged user lost"
        );
    }
}
