//! The `sessions` service on a one-node harness ([`crate::mesh::harness`]) over SQLite, and
//! PostgreSQL when `TROUPE_TEST_PG` is set: ending sessions one at a time and all of a
//! user's at once, and what a revoked session answers afterwards.

use std::time::{Duration, Instant};

use super::messages::Touch;
use super::ops::{GET, LIST, REVOKE, REVOKE_USER, START, TOUCH};
use super::*;
use crate::mesh::harness::Harness;
use crate::mesh::Code;
use crate::store::tests::on_each_backend;

/// A node running `sessions` (with `workers` workers when given) and its revocation set.
async fn node(store: Store, workers: Option<usize>) -> (Harness, Revocations) {
    let mut builder = Harness::builder();
    if let Some(n) = workers {
        builder = builder.workers(NAME, n);
    }
    let revocations = Revocations::default();
    let sessions = Sessions::start(builder.info(), store, revocations.clone())
        .await
        .expect("sessions start");
    (builder.start(vec![sessions]).await, revocations)
}

fn new_user() -> String {
    format!("u-{}", uuid::Uuid::new_v4().simple())
}

/// Starts `n` sessions of `user`, through the mesh as auth does at login; their ids.
async fn start_sessions(h: &Harness, user: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let sid = uuid::Uuid::new_v4().to_string();
        let start = Start {
            user_id: user.to_string(),
            device: format!("device-{i}"),
            ip: "10.0.0.1".into(),
            user_agent: "test".into(),
            metadata: String::new(),
            ttl_s: 3600,
        };
        let info = h
            .router()
            .call(START.call(start).to(Target::Entity(sid.clone())))
            .await
            .expect("start");
        assert_eq!((info.id.as_str(), info.revoked), (sid.as_str(), false));
        ids.push(sid);
    }
    ids.sort();
    ids
}

async fn get(h: &Harness, sid: &str) -> Result<SessionInfo, MeshError> {
    let call = GET.call(()).to(Target::Entity(sid.to_string()));
    h.router().call(call).await
}

async fn touch(h: &Harness, sid: &str) -> Result<SessionInfo, MeshError> {
    let t = Touch {
        device: Some("laptop".into()),
        ..Touch::default()
    };
    let call = TOUCH.call(t).to(Target::Entity(sid.to_string()));
    h.router().call(call).await
}

async fn revoke_user(h: &Harness, user: &str, timeout: Duration) -> Result<SessionList, MeshError> {
    let by = ByUser {
        user_id: user.to_string(),
        ..Default::default()
    };
    h.router().call(REVOKE_USER.call(by).timeout(timeout)).await
}

#[tokio::test]
async fn revoke_user_ends_every_session_of_the_user_once() {
    on_each_backend(|store, _| async move {
        let (h, revocations) = node(store, None).await;
        let (user, other) = (new_user(), new_user());
        let ids = start_sessions(&h, &user, 5).await;
        let kept = start_sessions(&h, &other, 1).await;

        let answer = revoke_user(&h, &user, Duration::from_secs(10))
            .await
            .unwrap();
        // Each session answered once, sorted by id, revoked, and noted on this node.
        let answered: Vec<String> = answer.items.iter().map(|s| s.id.clone()).collect();
        assert_eq!(answered, ids);
        for s in &answer.items {
            assert!(s.revoked, "{} not revoked", s.id);
            assert_eq!(s.user_id, user);
            assert!(revocations.is_revoked(&s.id), "{} not in revocations", s.id);
        }
        // Another user's session is untouched.
        assert!(!revocations.is_revoked(&kept[0]));
        assert!(!get(&h, &kept[0]).await.unwrap().revoked);

        // Afterwards every session reads revoked and refuses activity...
        for sid in &ids {
            assert!(get(&h, sid).await.unwrap().revoked);
            let refused = touch(&h, sid).await.unwrap_err();
            assert_eq!(refused.code, Code::FailedPrecondition, "{refused}");
        }
        let listed = h
            .router()
            .call(LIST.call(ByUser {
                user_id: user.clone(),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 5);
        assert!(listed.items.iter().all(|s| s.revoked));
        // ...and a second revoke_user has nothing left to end.
        let again = revoke_user(&h, &user, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(again.items.is_empty(), "{:?}", again.items);
        h.stop().await;
    })
    .await;
}

/// The self-starvation regression: `revoke_user` runs on a sessions worker (it used to
/// call the sessions entities once per session). With one worker it must still answer.
#[tokio::test]
async fn revoke_user_of_100_sessions_answers_promptly_with_one_worker() {
    on_each_backend(|store, _| async move {
        let (h, revocations) = node(store, Some(1)).await;
        assert_eq!(h.info().pool(NAME).unwrap().size(), 1);
        let user = new_user();
        let ids = start_sessions(&h, &user, 100).await;

        let deadline = Duration::from_secs(5);
        let started = Instant::now();
        let answer = revoke_user(&h, &user, deadline).await;
        let took = started.elapsed();
        let answer = answer.unwrap_or_else(|e| panic!("revoke_user failed after {took:?}: {e}"));
        assert!(took < deadline, "took {took:?}");
        let answered: Vec<String> = answer.items.iter().map(|s| s.id.clone()).collect();
        assert_eq!(answered, ids);
        assert!(ids.iter().all(|sid| revocations.is_revoked(sid)));
        assert_eq!(h.info().pool(NAME).unwrap().in_flight(), 0);
        h.stop().await;
    })
    .await;
}

/// "End all sessions" has no cap and does not go through the session actors: 1,500
/// sessions of one user (more than any page of sessions) end in one call, every row is
/// revoked in the store, a live session actor among them reads revoked at once and refuses
/// activity, and the session `keep` names stays open.
#[tokio::test]
async fn revoke_user_ends_all_of_1500_sessions_but_the_kept_one() {
    on_each_backend(|store, _| async move {
        let (h, revocations) = node(store.clone(), Some(1)).await;
        let user = new_user();
        let live = start_sessions(&h, &user, 2).await;
        let now = now_ms();
        for _ in 0..1500 {
            let row = store::Row {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user.clone(),
                created_at: now,
                last_activity: now,
                expires_at: now + 3_600_000,
                device: String::new(),
                ip: String::new(),
                user_agent: String::new(),
                metadata: "{}".into(),
                revoked_at: 0,
                version: 1,
            };
            store::insert(&store, &row).await.expect("insert");
        }
        let by = ByUser {
            user_id: user.clone(),
            keep: live[1].clone(),
        };
        let answer = h
            .router()
            .call(REVOKE_USER.call(by).timeout(Duration::from_secs(10)))
            .await
            .expect("revoke_user");
        assert_eq!(answer.items.len(), 1501);
        assert!(answer.items.iter().all(|s| s.revoked && s.id != live[1]));
        assert!(answer.items.iter().all(|s| revocations.is_revoked(&s.id)));
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at = 0",
        )
        .bind(&user)
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(open, 1, "only the kept session is open in the store");
        // The live actor of an ended session read the row again.
        assert!(get(&h, &live[0]).await.unwrap().revoked);
        let refused = touch(&h, &live[0]).await.unwrap_err();
        assert_eq!(refused.message, "session has ended");
        assert!(!get(&h, &live[1]).await.unwrap().revoked, "the kept one");
        touch(&h, &live[1])
            .await
            .expect("the kept one is still usable");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_revoked_session_reads_revoked_and_refuses_touch() {
    on_each_backend(|store, _| async move {
        let (h, revocations) = node(store, None).await;
        let sid = start_sessions(&h, &new_user(), 1).await.remove(0);

        let touched = touch(&h, &sid).await.unwrap();
        assert_eq!(
            (touched.device.as_str(), touched.revoked),
            ("laptop", false)
        );
        assert!(!revocations.is_revoked(&sid));

        let revoked = h
            .router()
            .call(REVOKE.call(()).to(Target::Entity(sid.clone())))
            .await
            .unwrap();
        assert_eq!((revoked.id.as_str(), revoked.revoked), (sid.as_str(), true));
        assert!(revocations.is_revoked(&sid));

        let read = get(&h, &sid).await.unwrap();
        assert!(read.revoked);
        assert_eq!(
            read.device, "laptop",
            "the touch before the revocation was kept"
        );
        let refused = touch(&h, &sid).await.unwrap_err();
        assert_eq!(refused.code, Code::FailedPrecondition);
        assert_eq!(refused.message, "session has ended");
        // Revoking again changes nothing and still answers the session.
        let again = h
            .router()
            .call(REVOKE.call(()).to(Target::Entity(sid.clone())))
            .await
            .unwrap();
        assert_eq!(again.version, revoked.version);

        let unknown = get(&h, &uuid::Uuid::new_v4().to_string())
            .await
            .unwrap_err();
        assert_eq!(unknown.code, Code::NotFound);
        h.stop().await;
    })
    .await;
}

#[test]
fn a_revocation_outlives_the_access_tokens_minted_before_it() {
    let now = now_ms();
    // A session that ended a minute ago, revoked now: its access tokens (60 s) may still
    // work, so the revocation is kept past the session's end.
    let held = Revocations::new(Duration::from_secs(60));
    held.add("old", now - 60_000);
    held.prune(now + 1_000);
    assert!(held.is_revoked("old"));
    held.prune(now + 61_000);
    assert!(!held.is_revoked("old"));
    // A live session's revocation is kept until its end when that is later.
    held.add("live", now + 120_000);
    held.prune(now + 90_000);
    assert!(held.is_revoked("live"));
}
