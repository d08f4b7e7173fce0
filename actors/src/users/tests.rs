//! The `users` service against SQLite (always) and PostgreSQL (when `TROUPE_TEST_PG` is
//! set). Every case is one async fn taking a [`Store`]; PostgreSQL tables are shared with
//! concurrently running tests, so cases use unique names and never drop anything.

use std::time::Duration;

use sqlx::Row as _;
use troupe_proto::mesh::Caller;

use super::*;
use crate::mesh::service::call_op as call;
use crate::mesh::OpInfo;
use crate::store::tests::on_each_backend;

/// Cheap hashing for tests.
const ITERATIONS: u32 = 1000;

fn users(store: Store) -> Users {
    Users::new(store, Hasher::new(ITERATIONS))
}

/// A short unique token for names.
fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

fn register_req(username: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.to_string(),
        email: format!("{username}@example.com"),
        password: "password1".to_string(),
        full_name: format!("Full {username}"),
    }
}

async fn count(store: &Store, sql: &str, id: &str) -> i64 {
    sqlx::query(sql)
        .bind(id)
        .fetch_one(store.pool())
        .await
        .expect("count")
        .get::<i64, _>(0)
}

fn field_keys(e: &MeshError) -> Vec<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).expect("details json");
    details["fields"]
        .as_object()
        .expect("fields object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_op_is_listed_once() {
    const OPS: &[OpInfo] = Cmd::OPS;
    let mut names: Vec<&str> = OPS.iter().map(|o| o.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), OPS.len());
    for idempotent in [
        GET.name,
        GET_BY_LOGIN.name,
        LIST.name,
        SEARCH.name,
        GET_KEY.name,
        LIST_CONTACTS.name,
    ] {
        assert!(OPS.iter().any(|o| o.name == idempotent && o.idempotent));
    }
    for effectful in [
        REGISTER.name,
        CREATE.name,
        UPDATE.name,
        DELETE.name,
        SET_PASSWORD.name,
        PUT_KEY.name,
        ENSURE_ADMIN.name,
    ] {
        assert!(OPS.iter().any(|o| o.name == effectful && !o.idempotent));
    }
}

#[tokio::test]
async fn register_then_get_round_trips() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let name = format!("Alice_{}", token());
        let made: User = call(&svc, &REGISTER, register_req(&name), None)
            .await
            .unwrap();
        assert_eq!(made.username, name);
        assert_eq!(made.email, format!("{name}@example.com"));
        assert_eq!(made.roles, ["user"]);
        assert!(!made.confirmed);
        assert_eq!(made.version, 1);
        assert!(made.password_hash.is_empty());
        assert_eq!(made.created_at.len(), "2024-01-01T00:00:00.000Z".len());
        assert!(made.created_at.ends_with('Z'));

        let got: User = call(
            &svc,
            &GET,
            GetRequest {
                id: made.id.clone(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(got, made);

        // Login by either name, ignoring case, carries the hash.
        for login in [
            name.to_uppercase(),
            format!("{}@EXAMPLE.com", name.to_lowercase()),
        ] {
            let by_login: User = call(&svc, &GET_BY_LOGIN, GetByLoginRequest { login }, None)
                .await
                .unwrap();
            assert_eq!(by_login.id, made.id);
            assert!(Hasher::verify_blocking(
                &by_login.password_hash,
                "password1"
            ));
        }

        let missing = call::<_, _, User>(&svc, &GET, GetRequest { id: "nope".into() }, None)
            .await
            .unwrap_err();
        assert_eq!(missing.code, Code::NotFound);
        let missing = call::<_, _, User>(
            &svc,
            &GET_BY_LOGIN,
            GetByLoginRequest {
                login: format!("ghost_{}", token()),
            },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code, Code::NotFound);
        let empty = call::<_, _, User>(&svc, &GET, GetRequest::default(), None)
            .await
            .unwrap_err();
        assert_eq!(empty.code, Code::InvalidArgument);
    })
    .await;
}

#[tokio::test]
async fn duplicates_ignoring_case_already_exist() {
    on_each_backend(|store, _| async move {
        let svc = users(store.clone());
        let name = format!("bob_{}", token());
        svc.register(register_req(&name)).await.unwrap();

        let mut same_name = register_req(&name.to_uppercase());
        same_name.email = format!("other_{name}@example.com");
        let e = svc.register(same_name).await.unwrap_err();
        assert_eq!(e.code, Code::AlreadyExists);
        assert_eq!(e.message, "username already taken");

        // Only where the operator chose to reveal it is a taken email refused as such.
        let mut same_email = register_req(&format!("b2_{}", token()));
        same_email.email = format!("{}@Example.COM", name.to_uppercase());
        let e = users(store.clone())
            .reveal_taken_email(true)
            .register(same_email)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::AlreadyExists);
        assert_eq!(e.message, "email already registered");

        // Nothing half-written.
        let n = count(
            &store,
            "SELECT COUNT(*) FROM users WHERE email_lower = $1",
            &format!("{}@example.com", name.to_lowercase()),
        )
        .await;
        assert_eq!(n, 1);

        // A racing insert that slips past the check maps the same way.
        let row = UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: name.to_uppercase(),
            email: format!("race_{name}@example.com"),
            full_name: String::new(),
            password_hash: "x".into(),
            roles: "user".into(),
            confirmed: false,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        let e = store::insert(store.writer(), &row).await.unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::AlreadyExists, "username already taken")
        );
    })
    .await;
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let e = call::<_, _, User>(
            &svc,
            &REGISTER,
            RegisterRequest {
                username: "x".into(),
                email: "not-an-email".into(),
                password: "short".into(),
                full_name: "n".repeat(101),
            },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(e.message, "validation failed");
        assert_eq!(
            field_keys(&e),
            ["email", "full_name", "password", "username"]
        );

        let e = svc
            .create(CreateRequest {
                username: format!("ok_{}", token()),
                email: "ok@example.com".into(),
                password: "password1".into(),
                full_name: String::new(),
                roles: vec!["Admin!".into()],
                confirmed: true,
                sso_provider: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_keys(&e), ["roles"]);
    })
    .await;
}

#[tokio::test]
async fn sql_looking_input_is_harmless() {
    on_each_backend(|store, _| async move {
        let svc = users(store.clone());
        let mut req = register_req("robert'); DROP TABLE users;--");
        req.email = format!("robert_{}@example.com", token());
        let e = svc.register(req).await.unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(field_keys(&e), ["username"]);

        let name = format!("bobby_{}", token());
        let evil = "'; DROP TABLE users; --";
        let mut req = register_req(&name);
        req.full_name = evil.to_string();
        let made = svc.register(req).await.unwrap();
        assert_eq!(made.full_name, evil);
        let got = svc
            .get(GetRequest {
                id: made.id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(got.full_name, evil);

        // The table is still there and works.
        let page = svc.list(ListRequest::default()).await.unwrap();
        assert!(page.total >= 1);
        let found = svc
            .search(SearchRequest {
                query: "drop table users; --".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(found.items.iter().any(|u| u.id == made.id));
        let e = svc
            .get_by_login(GetByLoginRequest {
                login: "' OR '1'='1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn search_treats_wildcards_literally() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let t = token();
        let under = svc.register(register_req(&format!("u_{t}"))).await.unwrap();
        let other = svc.register(register_req(&format!("ux{t}"))).await.unwrap();
        let mut pct = register_req(&format!("p1{t}"));
        pct.full_name = format!("{t} 50% off");
        let pct = svc.register(pct).await.unwrap();
        let mut plain = register_req(&format!("p2{t}"));
        plain.full_name = format!("{t} 50x off");
        svc.register(plain).await.unwrap();

        let search = |query: String, prefix_only: bool| {
            let svc = svc.clone();
            async move {
                svc.search(SearchRequest {
                    query,
                    prefix_only,
                    ..Default::default()
                })
                .await
                .unwrap()
            }
        };
        let ids = |p: &UserPage| p.items.iter().map(|u| u.id.clone()).collect::<Vec<_>>();

        let found = search(format!("U_{t}"), false).await;
        assert_eq!(ids(&found), [under.id.as_str()]);
        assert_eq!(found.total, 1);

        let found = search(format!("{t} 50%"), false).await;
        assert_eq!(ids(&found), [pct.id.as_str()]);

        // Both usernames contain the token; `%` alone matches nothing here.
        let found = search(t.clone(), false).await;
        assert_eq!(found.total, 4);
        assert!(search("%".into(), true).await.items.is_empty());

        // Prefix: only usernames, only from the start.
        let found = search(format!("u_{t}"), true).await;
        assert_eq!(ids(&found), [under.id.as_str()]);
        let found = search(format!("ux{}", &t[..4]), true).await;
        assert_eq!(ids(&found), [other.id.as_str()]);
        assert!(search(t.clone(), true).await.items.is_empty());

        let e = svc.search(SearchRequest::default()).await.unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    })
    .await;
}

#[tokio::test]
async fn list_pages_and_totals() {
    on_each_backend(|store, exclusive| async move {
        let svc = users(store);
        let before = svc.list(ListRequest::default()).await.unwrap().total;
        let t = token();
        let mut made = Vec::new();
        for i in 0..5 {
            made.push(
                svc.register(register_req(&format!("l{i}_{t}")))
                    .await
                    .unwrap(),
            );
        }
        let page1 = svc
            .list(ListRequest {
                page: 1,
                per_page: 2,
            })
            .await
            .unwrap();
        assert_eq!((page1.page, page1.per_page), (1, 2));
        assert_eq!(page1.items.len(), 2);
        assert!(page1.total >= before + 5);

        if exclusive {
            assert_eq!(page1.total, 5);
            let mut seen = Vec::new();
            for page in 1..=3 {
                let p = svc.list(ListRequest { page, per_page: 2 }).await.unwrap();
                assert_eq!(p.total, 5);
                seen.extend(p.items.into_iter().map(|u| u.id));
            }
            // Oldest first; users made within one millisecond are ordered by id.
            let mut by_age: Vec<&User> = made.iter().collect();
            by_age.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
            let expected: Vec<String> = by_age.iter().map(|u| u.id.clone()).collect();
            assert_eq!(seen, expected, "no gaps or repeats");
            let past = svc
                .list(ListRequest {
                    page: 4,
                    per_page: 2,
                })
                .await
                .unwrap();
            assert!(past.items.is_empty());
            assert_eq!(past.total, 5);
        }

        // Paging through a search is exact even on a shared database.
        let mut seen = Vec::new();
        for page in 1..=3 {
            let p = svc
                .search(SearchRequest {
                    query: format!("_{t}"),
                    prefix_only: false,
                    page,
                    per_page: 2,
                    match_email: false,
                })
                .await
                .unwrap();
            assert_eq!(p.total, 5);
            seen.extend(p.items.into_iter().map(|u| u.username));
        }
        let mut expected: Vec<String> = made.iter().map(|u| u.username.clone()).collect();
        expected.sort();
        assert_eq!(seen, expected);

        let defaults = svc.list(ListRequest::default()).await.unwrap();
        assert_eq!((defaults.page, defaults.per_page), (1, 20));
        let e = svc
            .list(ListRequest {
                page: 1,
                per_page: 101,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    })
    .await;
}

#[tokio::test]
async fn update_changes_fields_and_respects_versions() {
    on_each_backend(|store, _| async move {
        let svc = users(store.clone());
        let name = format!("upd_{}", token());
        let made = svc.register(register_req(&name)).await.unwrap();

        let updated: User = call(
            &svc,
            &UPDATE,
            UpdateRequest {
                id: made.id.clone(),
                full_name: Some("New Name".into()),
                email: Some(format!("NEW_{name}@example.com")),
                password: Some("newpassword2".into()),
                version: 1,
                reauthenticated: true,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(updated.full_name, "New Name");
        assert_eq!(updated.email, format!("NEW_{name}@example.com"));
        assert!(!updated.confirmed, "a new email is unconfirmed");
        assert_eq!(updated.version, 2);
        assert_eq!(updated.roles, ["user"]);
        assert_eq!(
            svc.get(GetRequest {
                id: made.id.clone()
            })
            .await
            .unwrap(),
            updated
        );
        let login = svc
            .get_by_login(GetByLoginRequest {
                login: format!("new_{name}@example.com"),
            })
            .await
            .unwrap();
        assert!(Hasher::verify_blocking(
            &login.password_hash,
            "newpassword2"
        ));

        // A stale version the client asked for is refused, nothing changes.
        let e = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                full_name: Some("Stale".into()),
                version: 1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::FailedPrecondition);
        assert_eq!(
            svc.get(GetRequest {
                id: made.id.clone()
            })
            .await
            .unwrap()
            .version,
            2
        );

        // The store refuses a write based on a stale read...
        let mut stale = store::get(&store, &made.id).await.unwrap().unwrap();
        let read_version = stale.version;
        svc.update(UpdateRequest {
            id: made.id.clone(),
            full_name: Some("Racer".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        stale.full_name = "Lost write".into();
        assert!(
            !store::update_if_version(store.writer(), &stale, read_version)
                .await
                .unwrap()
        );
        let now = svc
            .get(GetRequest {
                id: made.id.clone(),
            })
            .await
            .unwrap();
        assert_eq!((now.full_name.as_str(), now.version), ("Racer", 3));

        // ...and the service redoes such a write on the fresh row: racing updates all land.
        let racers = (0..3).map(|i| {
            let svc = svc.clone();
            let id = made.id.clone();
            tokio::spawn(async move {
                svc.update(UpdateRequest {
                    id,
                    full_name: Some(format!("racer {i}")),
                    ..Default::default()
                })
                .await
            })
        });
        for r in racers.collect::<Vec<_>>() {
            r.await.unwrap().unwrap();
        }
        assert_eq!(
            svc.get(GetRequest {
                id: made.id.clone()
            })
            .await
            .unwrap()
            .version,
            6
        );

        // Roles need an admin.
        let roles = Some(RoleList {
            roles: vec!["user".into(), "admin".into()],
        });
        let e = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                roles: roles.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied);
        let admin = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                roles,
                as_admin: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(admin.roles, ["user", "admin"]);

        // Bad fields, all at once; another user's email; a missing user.
        let e = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                email: Some("bad".into()),
                password: Some("bad".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field_keys(&e), ["current_password", "email", "password"]);
        let other = svc
            .register(register_req(&format!("oth_{}", token())))
            .await
            .unwrap();
        let e = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                email: Some(other.email.to_uppercase()),
                reauthenticated: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::AlreadyExists, "email already registered")
        );
        let e = svc
            .update(UpdateRequest {
                id: "missing".into(),
                full_name: Some("x".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn set_password_rehashes() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let name = format!("pw_{}", token());
        let made = svc.register(register_req(&name)).await.unwrap();
        let u: User = call(
            &svc,
            &SET_PASSWORD,
            SetPasswordRequest {
                id: made.id.clone(),
                password: "another9pass".into(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(u.version, 2);
        assert!(u.password_hash.is_empty());
        let login = svc
            .get_by_login(GetByLoginRequest { login: name })
            .await
            .unwrap();
        assert!(Hasher::verify_blocking(
            &login.password_hash,
            "another9pass"
        ));
        assert!(!Hasher::verify_blocking(&login.password_hash, "password1"));

        let e = svc
            .set_password(SetPasswordRequest {
                id: made.id.clone(),
                password: "weak".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_keys(&e), ["password"]);
        let e = svc
            .set_password(SetPasswordRequest {
                id: "missing".into(),
                password: "another9pass".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn keys_and_contacts() {
    on_each_backend(|store, _| async move {
        let svc = users(store.clone());
        let t = token();
        let me = svc
            .register(register_req(&format!("me_{t}")))
            .await
            .unwrap();
        let zed = svc
            .register(register_req(&format!("zed_{t}")))
            .await
            .unwrap();
        let amy = svc
            .register(register_req(&format!("amy_{t}")))
            .await
            .unwrap();

        let key: PublicKey = call(
            &svc,
            &PUT_KEY,
            PutKeyRequest {
                user_id: me.id.clone(),
                public_key: "AAAA".into(),
                algorithm: String::new(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(key.algorithm, DEFAULT_ALGORITHM);
        let key = svc
            .put_key(PutKeyRequest {
                user_id: me.id.clone(),
                public_key: "BBBB".into(),
                algorithm: "ed25519".into(),
            })
            .await
            .unwrap();
        let got: PublicKey = call(
            &svc,
            &GET_KEY,
            GetKeyRequest {
                user_id: me.id.clone(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(got, key);
        assert_eq!(got.public_key, "BBBB");

        let e = svc
            .get_key(GetKeyRequest {
                user_id: zed.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        let e = svc
            .put_key(PutKeyRequest {
                user_id: "missing".into(),
                public_key: "AAAA".into(),
                algorithm: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        let e = svc
            .put_key(PutKeyRequest {
                user_id: me.id.clone(),
                public_key: "k".repeat(8 * 1024 + 1),
                algorithm: "bad alg".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(field_keys(&e), ["algorithm", "public_key"]);

        for (contact, at) in [(&zed, 1_000_i64), (&amy, 2_000_i64)] {
            sqlx::query(
                "INSERT INTO contacts (user_id, contact_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(&me.id)
            .bind(&contact.id)
            .bind(at)
            .execute(store.pool())
            .await
            .unwrap();
        }
        // Empty user_id means the caller.
        let caller = Caller {
            user_id: me.id.clone(),
            roles: vec!["user".into()],
            session_id: String::new(),
        };
        let list: ContactList = call(
            &svc,
            &LIST_CONTACTS,
            ListContactsRequest::default(),
            Some(caller),
        )
        .await
        .unwrap();
        let names: Vec<&str> = list.items.iter().map(|c| c.username.as_str()).collect();
        assert_eq!(names, [amy.username.as_str(), zed.username.as_str()]);
        assert_eq!(list.items[0].user_id, amy.id);
        assert_eq!(list.items[0].added_at, "1970-01-01T00:00:02.000Z");
        let none = svc.list_contacts(&zed.id).await.unwrap();
        assert!(none.items.is_empty());
        let e =
            call::<_, _, ContactList>(&svc, &LIST_CONTACTS, ListContactsRequest::default(), None)
                .await
                .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    })
    .await;
}

#[tokio::test]
async fn delete_removes_the_user_and_everything_theirs() {
    on_each_backend(|store, _| async move {
        let svc = users(store.clone());
        let t = token();
        let doomed = svc
            .register(register_req(&format!("del_{t}")))
            .await
            .unwrap();
        let friend = svc
            .register(register_req(&format!("fr_{t}")))
            .await
            .unwrap();
        let session = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_activity, expires_at) \
             VALUES ($1, $2, 1, 1, 2)",
        )
        .bind(&session)
        .bind(&doomed.id)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (jti, session_id, user_id, expires_at) \
             VALUES ($1, $2, $3, 2)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&session)
        .bind(&doomed.id)
        .execute(store.pool())
        .await
        .unwrap();
        for (a, b) in [(&doomed.id, &friend.id), (&friend.id, &doomed.id)] {
            sqlx::query(
                "INSERT INTO contacts (user_id, contact_id, created_at) VALUES ($1, $2, 1)",
            )
            .bind(a)
            .bind(b)
            .execute(store.pool())
            .await
            .unwrap();
        }
        svc.put_key(PutKeyRequest {
            user_id: doomed.id.clone(),
            public_key: "AAAA".into(),
            algorithm: String::new(),
        })
        .await
        .unwrap();

        let gone: User = call(
            &svc,
            &DELETE,
            DeleteRequest {
                id: doomed.id.clone(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(gone, doomed);

        let id = doomed.id.as_str();
        for sql in [
            "SELECT COUNT(*) FROM users WHERE id = $1",
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at = 0",
            "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1",
            "SELECT COUNT(*) FROM public_keys WHERE user_id = $1",
            "SELECT COUNT(*) FROM contacts WHERE user_id = $1 OR contact_id = $1",
        ] {
            assert_eq!(count(&store, sql, id).await, 0, "{sql}");
        }
        // The session row stays, revoked, so every node's revocation poll finds it.
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at > 0",
                id
            )
            .await,
            1
        );
        // The friend is untouched.
        assert_eq!(
            svc.get(GetRequest {
                id: friend.id.clone()
            })
            .await
            .unwrap(),
            friend
        );
        let e = svc
            .delete(DeleteRequest {
                id: doomed.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        // The username is free again.
        svc.register(register_req(&format!("DEL_{t}")))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn ensure_admin_is_idempotent() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let name = format!("root_{}", token());
        let req = EnsureAdminRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: "adminpass1".into(),
            full_name: "Admin".into(),
        };
        let first: EnsureAdminReply = call(&svc, &ENSURE_ADMIN, req.clone(), None).await.unwrap();
        assert!(first.created);
        let admin = first.user.unwrap();
        assert_eq!(admin.roles, ["user", "admin"]);
        assert!(admin.confirmed);

        // Again, even with another password and email: nothing changes.
        let mut again = req.clone();
        again.password = "otherpass2".into();
        again.email = format!("changed_{name}@example.com");
        let second = svc.ensure_admin(again).await.unwrap();
        assert!(!second.created);
        assert_eq!(second.user.unwrap(), admin);

        // Concurrent bootstraps of a fresh name: exactly one creates it.
        let name = format!("boot_{}", token());
        let req = EnsureAdminRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: "adminpass1".into(),
            full_name: String::new(),
        };
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let svc = svc.clone();
                let req = req.clone();
                tokio::spawn(async move { svc.ensure_admin(req).await })
            })
            .collect();
        let mut created = 0;
        let mut ids = Vec::new();
        for r in runs {
            let reply = r.await.unwrap().unwrap();
            created += usize::from(reply.created);
            ids.push(reply.user.unwrap().id);
        }
        assert_eq!(created, 1);
        ids.dedup();
        assert_eq!(ids.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_ops_and_garbage_payloads_are_errors() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let nope = Request::new("nope", Bytes::new(), Duration::from_secs(5));
        let e = svc.handle(nope).await.unwrap_err();
        assert_eq!(e.code, Code::NotFound);
        let garbage = Bytes::from_static(&[0xff, 0xff, 0xff]);
        let e = svc
            .handle(Request::new(REGISTER.name, garbage, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    })
    .await;
}

/// Issue 23, the attack: an attacker registers a victim's address (in other case) under a
/// name of their own to learn whether it has an account. The answer is a new account's, in
/// the same shape as a real one; nothing is created, and the owner is told by mail.
#[tokio::test]
async fn registering_a_taken_email_answers_like_a_new_account_and_tells_the_owner() {
    on_each_backend(|store, _| async move {
        let events = std::sync::Arc::new(crate::events::Recorder::default());
        let svc = users(store.clone()).with_events(events.clone(), Default::default());
        let victim = format!("victim_{}", token());
        let owner = svc.register(register_req(&victim)).await.unwrap();
        let before = events.events().len();

        let attacker = format!("probe_{}", token());
        let mut probe = register_req(&attacker);
        probe.email = format!("{}@EXAMPLE.com", victim.to_uppercase());
        let fresh = register_req(&format!("fresh_{}", token()));
        let answered: User = call(&svc, &REGISTER, probe.clone(), None).await.unwrap();
        let real: User = call(&svc, &REGISTER, fresh, None).await.unwrap();

        // The same shape as a real registration's answer, with what was asked for.
        assert_eq!(answered.username, attacker);
        assert_eq!(answered.email, probe.email);
        assert_eq!(answered.full_name, probe.full_name);
        assert_eq!(
            (answered.roles.clone(), answered.confirmed, answered.version),
            (real.roles.clone(), real.confirmed, real.version)
        );
        assert!(uuid::Uuid::parse_str(&answered.id).is_ok());
        assert_ne!(answered.id, owner.id);
        assert_eq!(answered.id.len(), real.id.len());
        assert_eq!(answered.created_at.len(), real.created_at.len());
        assert!(answered.password_hash.is_empty());

        // Nothing was created: the address has one account, the name none, the id no user.
        let n = count(
            &store,
            "SELECT COUNT(*) FROM users WHERE email_lower = $1",
            &format!("{}@example.com", victim.to_lowercase()),
        )
        .await;
        assert_eq!(n, 1);
        let n = count(
            &store,
            "SELECT COUNT(*) FROM users WHERE username_lower = $1",
            &attacker.to_lowercase(),
        )
        .await;
        assert_eq!(n, 0);
        let e = svc
            .get(GetRequest {
                id: answered.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::NotFound);

        // The owner is told, at their own address; no account event, no code for the probe.
        let published = events.events();
        let about_probe: Vec<_> = published[before..]
            .iter()
            .filter(|e| e.user_id.as_deref() != Some(real.id.as_str()))
            .collect();
        assert_eq!(about_probe.len(), 1, "{about_probe:?}");
        let told = about_probe[0];
        assert_eq!(told.kind, crate::events::kinds::USER_REGISTER_ATTEMPTED);
        assert_eq!(told.user_id.as_deref(), Some(owner.id.as_str()));
        assert_eq!(
            told.payload,
            serde_json::json!({
                "username": victim, "attempted_username": attacker,
                "to": format!("{victim}@example.com"),
            })
        );

        // Registering the probe again answers alike (a fresh id each time).
        let again: User = call(&svc, &REGISTER, probe, None).await.unwrap();
        assert_ne!(again.id, answered.id);
    })
    .await;
}

#[tokio::test]
async fn users_created_at_a_first_sso_sign_in_are_published_with_their_provider() {
    on_each_backend(|store, _| async move {
        let events = std::sync::Arc::new(crate::events::Recorder::default());
        let svc = users(store).with_events(events.clone(), Default::default());
        let name = format!("sso_{}", token());
        let req = CreateRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: "password1".into(),
            full_name: String::new(),
            roles: vec!["user".into()],
            confirmed: true,
            sso_provider: "corp".into(),
        };
        let made: User = call(&svc, &CREATE, req, None).await.unwrap();
        let published = events.events();
        let registered: Vec<_> = published
            .iter()
            .filter(|e| e.kind == crate::events::kinds::USER_REGISTERED)
            .collect();
        assert_eq!(registered.len(), 1, "{published:?}");
        assert_eq!(registered[0].user_id.as_deref(), Some(made.id.as_str()));
        assert_eq!(
            registered[0].payload,
            serde_json::json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "full_name": "",
                "sso_provider": "corp",
            })
        );
    })
    .await;
}

#[tokio::test]
async fn users_created_by_an_admin_are_published_as_registered_too() {
    on_each_backend(|store, _| async move {
        let events = std::sync::Arc::new(crate::events::Recorder::default());
        let svc = users(store).with_events(events.clone(), Default::default());
        let kind = crate::events::kinds::USER_REGISTERED;
        let self_made: User = call(
            &svc,
            &REGISTER,
            register_req(&format!("self_{}", token())),
            None,
        )
        .await
        .unwrap();
        let name = format!("made_{}", token());
        let req = CreateRequest {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: "password1".into(),
            full_name: "Made By Admin".into(),
            roles: vec!["user".into(), "admin".into()],
            confirmed: true,
            sso_provider: String::new(),
        };
        let made: User = call(&svc, &CREATE, req.clone(), None).await.unwrap();
        // A refused create publishes nothing.
        call::<_, _, User>(&svc, &CREATE, req, None)
            .await
            .unwrap_err();

        let published = events.events();
        let registered: Vec<_> = published.iter().filter(|e| e.kind == kind).collect();
        assert_eq!(registered.len(), 2, "{published:?}");
        assert_eq!(
            registered[0].user_id.as_deref(),
            Some(self_made.id.as_str())
        );
        assert_eq!(registered[0].payload.get("created_by_admin"), None);
        let by_admin = registered[1];
        assert_eq!(by_admin.user_id.as_deref(), Some(made.id.as_str()));
        assert_eq!(
            by_admin.payload,
            serde_json::json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "full_name": "Made By Admin",
                "created_by_admin": true,
            })
        );
        // Only self-registration asks for an emailed confirmation code.
        let codes: Vec<Option<&str>> = published
            .iter()
            .filter(|e| e.kind == crate::events::kinds::REGISTRATION_CODE)
            .map(|e| e.user_id.as_deref())
            .collect();
        assert_eq!(codes, [Some(self_made.id.as_str())]);
    })
    .await;
}

#[tokio::test]
async fn a_password_or_email_change_without_reauthentication_is_refused_and_changes_nothing() {
    on_each_backend(|store, _| async move {
        let events = std::sync::Arc::new(crate::events::Recorder::default());
        let svc = users(store.clone()).with_events(events.clone(), Default::default());
        let name = format!("reauth_{}", token());
        let made = svc.register(register_req(&name)).await.unwrap();
        store::confirm(store.writer(), &made.id, crate::store::time::now_ms())
            .await
            .unwrap();
        let before = store::get(&store, &made.id).await.unwrap().unwrap();
        let published = events.events().len();

        for req in [
            UpdateRequest {
                password: Some("stolen-token1".into()),
                ..Default::default()
            },
            UpdateRequest {
                email: Some(format!("thief_{name}@example.com")),
                full_name: Some("Thief".into()),
                ..Default::default()
            },
        ] {
            let e = svc
                .update(UpdateRequest {
                    id: made.id.clone(),
                    ..req
                })
                .await
                .unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument);
            assert_eq!(field_keys(&e), ["current_password"]);
            let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
            assert_eq!(
                details["fields"]["current_password"],
                crate::auth::CURRENT_PASSWORD_REQUIRED
            );
        }
        let after = store::get(&store, &made.id).await.unwrap().unwrap();
        assert_eq!(
            (&after.email, &after.full_name, &after.password_hash),
            (&before.email, &before.full_name, &before.password_hash)
        );
        assert!(after.confirmed);
        assert_eq!(after.version, before.version);
        assert_eq!(events.events().len(), published, "nothing published");

        // The same address in other case, and other fields, need no password.
        let same = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                email: Some(made.email.to_uppercase()),
                full_name: Some("Only A Name".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(same.email, made.email.to_uppercase());
        assert_eq!(same.full_name, "Only A Name");
        assert!(same.confirmed, "the same address stays confirmed");
        assert_eq!(events.events().len(), published, "nothing published");

        // An admin needs no password.
        let by_admin = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                password: Some("admin-set-1".into()),
                as_admin: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let hash = store::get(&store, &by_admin.id).await.unwrap().unwrap();
        assert!(Hasher::verify_blocking(&hash.password_hash, "admin-set-1"));
    })
    .await;
}

#[tokio::test]
async fn a_new_email_is_unconfirmed_gets_a_code_and_the_old_address_is_told() {
    on_each_backend(|store, _| async move {
        let events = std::sync::Arc::new(crate::events::Recorder::default());
        let svc = users(store.clone()).with_events(events.clone(), Default::default());
        let name = format!("moved_{}", token());
        let made = svc.register(register_req(&name)).await.unwrap();
        store::confirm(store.writer(), &made.id, crate::store::time::now_ms())
            .await
            .unwrap();
        let old = made.email.clone();
        let new = format!("new_{name}@example.com");
        let published = events.events().len();

        let moved = svc
            .update(UpdateRequest {
                id: made.id.clone(),
                email: Some(new.clone()),
                reauthenticated: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(moved.email, new);
        assert!(!moved.confirmed);
        assert!(
            !store::get(&store, &made.id)
                .await
                .unwrap()
                .unwrap()
                .confirmed
        );

        let fresh = &events.events()[published..];
        let kinds: Vec<&str> = fresh.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                crate::events::kinds::USER_EMAIL_CHANGED,
                crate::events::kinds::REGISTRATION_CODE
            ]
        );
        assert_eq!(fresh[0].user_id.as_deref(), Some(made.id.as_str()));
        assert_eq!(
            fresh[0].payload,
            serde_json::json!({"username": name, "old_email": old, "new_email": new, "to": old})
        );
        assert_eq!(fresh[1].payload["email"], new.as_str());
        let code = fresh[1].payload["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 6);

        // The code sent to the new address confirms it.
        let confirmed = svc
            .confirm_registration(ConfirmRequest {
                login: new.clone(),
                code,
            })
            .await
            .unwrap();
        assert!(confirmed.confirmed);
        assert_eq!(confirmed.email, new);
    })
    .await;
}

#[tokio::test]
async fn only_a_search_that_may_match_emails_finds_users_by_email() {
    on_each_backend(|store, _| async move {
        let svc = users(store);
        let t = token();
        let mut req = register_req(&format!("hidden{t}"));
        req.email = format!("secret.{t}@corp.example");
        let made = svc.register(req).await.unwrap();
        let search = |match_email: bool| {
            let svc = svc.clone();
            let query = format!("secret.{t}@corp");
            async move {
                svc.search(SearchRequest {
                    query,
                    match_email,
                    ..Default::default()
                })
                .await
                .unwrap()
            }
        };
        let hidden = search(false).await;
        assert_eq!((hidden.total, hidden.items.len()), (0, 0));
        let found = search(true).await;
        assert_eq!(found.total, 1);
        assert_eq!(found.items[0].id, made.id);
    })
    .await;
}
