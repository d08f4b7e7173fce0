//! Reminders: shards split over members, claims that exclude each other, and the keeper
//! firing a due reminder once under its own id (and recording a late one as expired).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::keeper::{owned_shards, Settings};
use super::store::{self, Due, SHARDS};
use super::*;
use crate::events::Recorder;
use crate::mesh::harness::Harness;
use crate::mesh::service::call_op;
use crate::store::tests::{on_each_backend, sqlite};
use crate::store::time::now_ms;

fn due(subject: &str, user: &str, due_at: i64, expires_at: Option<i64>) -> Due {
    Due {
        subject: subject.to_string(),
        user_id: user.to_string(),
        kind: REMINDER_DUE,
        due_at,
        expires_at,
        payload: serde_json::json!({"title": "Kick-off"}),
    }
}

async fn schedule(store: &Store, d: &Due) -> String {
    let mut tx = store.writer().begin().await.unwrap();
    let id = store::schedule(&mut tx, d, now_ms()).await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn unique(prefix: &str) -> String {
    format!("{prefix}:{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn every_shard_has_exactly_one_owner() {
    let members: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
    let owned: Vec<Vec<u32>> = members.iter().map(|m| owned_shards(&members, m)).collect();
    let all: BTreeSet<u32> = owned.iter().flatten().copied().collect();
    assert_eq!(all.len(), SHARDS as usize);
    assert_eq!(owned.iter().map(Vec::len).sum::<usize>(), SHARDS as usize);
    assert!(owned.iter().all(|o| !o.is_empty()), "{owned:?}");
    // A member that leaves hands its shards over; the others keep theirs.
    let two = &members[..2];
    for m in two {
        let before: BTreeSet<u32> = owned_shards(&members, m).into_iter().collect();
        let after: BTreeSet<u32> = owned_shards(two, m).into_iter().collect();
        assert!(before.is_subset(&after));
    }
    assert!(owned_shards(&[], "n1").is_empty());
}

#[test]
fn shards_are_stable_and_in_range() {
    assert_eq!(store::shard_of("a"), store::shard_of("a"));
    let spread: BTreeSet<u32> = (0..2000)
        .map(|i| store::shard_of(&format!("r-{i}")))
        .collect();
    assert_eq!(spread.len(), SHARDS as usize);
    assert!(spread.iter().all(|s| *s < SHARDS));
}

#[tokio::test]
async fn a_claim_holds_a_due_reminder_for_one_node_only() {
    on_each_backend(|store, _| async move {
        let now = now_ms();
        let subject = unique("event");
        let id = schedule(&store, &due(&subject, "u1", now - 10, None)).await;
        let later = schedule(&store, &due(&subject, "u2", now + 60_000, None)).await;
        let ids = [id.as_str(), later.as_str()];
        let a = store::claim(store.writer(), &ids, "a", now, now + 30_000)
            .await
            .unwrap();
        assert_eq!(
            a.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            [id.as_str()]
        );
        assert_eq!(a[0].payload, r#"{"title":"Kick-off"}"#);
        // Held: b gets nothing until the hold runs out.
        assert!(store::claim(store.writer(), &ids, "b", now, now + 30_000)
            .await
            .unwrap()
            .is_empty());
        let b = store::claim(store.writer(), &ids, "b", now + 30_001, now + 60_000)
            .await
            .unwrap();
        assert_eq!(b.len(), 1);
        // Released, it can be claimed again; recorded, never again.
        store::release(&store, std::slice::from_ref(&id), "b")
            .await
            .unwrap();
        assert_eq!(
            store::claim(store.writer(), &ids, "a", now, now + 1)
                .await
                .unwrap()
                .len(),
            1
        );
        store::record(
            store.writer(),
            std::slice::from_ref(&id),
            "a",
            now,
            store::FIRED,
        )
        .await
        .unwrap();
        assert!(
            store::claim(store.writer(), &ids, "b", now + 99_999, now + 100_000)
                .await
                .unwrap()
                .iter()
                .all(|p| p.id != id)
        );
        let (rows, total) = store::list(&store, None, Some(&subject), None, 10, 0)
            .await
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(rows[0].outcome.as_deref(), Some(store::FIRED));
        assert_eq!(rows[0].fired_by.as_deref(), Some("a"));
        assert_eq!(rows[1].outcome, None);
        // Scheduling again replaces; dropping removes.
        let again = schedule(&store, &due(&subject, "u2", now + 5_000, None)).await;
        assert_ne!(again, later);
        let (_, total) = store::list(&store, Some("u2"), Some(&subject), Some(true), 10, 0)
            .await
            .unwrap();
        assert_eq!(total, 1);
        let mut tx = store.writer().begin().await.unwrap();
        assert_eq!(
            store::drop_for(&mut tx, &subject, Some("u2"))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store::drop_for(&mut tx, &subject, None).await.unwrap(), 1);
        tx.commit().await.unwrap();
        let (_, total) = store::list(&store, None, Some(&subject), None, 10, 0)
            .await
            .unwrap();
        assert_eq!(total, 0);
    })
    .await;
}

#[test]
fn a_reminder_is_due_its_lead_before_the_start_and_never_after_it() {
    let now = 1_000_000;
    let d = Plan::before(
        600_000,
        "event:e",
        "u",
        now + 3_600_000,
        serde_json::json!({}),
        now,
    )
    .unwrap();
    assert_eq!(
        (d.due_at, d.expires_at),
        (now + 3_000_000, Some(now + 3_600_000))
    );
    // The lead has passed: due at once.
    let d = Plan::before(
        600_000,
        "event:e",
        "u",
        now + 60_000,
        serde_json::json!({}),
        now,
    )
    .unwrap();
    assert_eq!(d.due_at, now);
    assert!(Plan::before(600_000, "event:e", "u", now, serde_json::json!({}), now).is_none());
}

/// The keeper on a one-node harness (SQLite only: on a shared PostgreSQL database every
/// harness's keeper would fire every other test's reminders).
#[tokio::test]
async fn the_keeper_fires_a_due_reminder_once_under_its_id_and_expires_a_late_one() {
    let (store, _dir) = sqlite().await;
    let recorder = Arc::new(Recorder::default());
    let builder = Harness::builder();
    let svc = Reminders::start(
        builder.info(),
        store.clone(),
        recorder.clone(),
        Settings::every(Duration::from_millis(100)),
    );
    let harness = builder.start(vec![svc.clone()]).await;
    let now = now_ms();
    let subject = unique("booking");
    let soon = schedule(&store, &due(&subject, "u1", now + 300, Some(now + 60_000))).await;
    let late = schedule(&store, &due(&subject, "u2", now - 5_000, Some(now - 1_000))).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.events().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a second firing every chance to happen before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = recorder.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].id, soon);
    assert_eq!(events[0].kind, REMINDER_DUE);
    assert_eq!(events[0].user_id.as_deref(), Some("u1"));
    assert_eq!(events[0].payload["title"], "Kick-off");
    let page = svc
        .list(&ListReminders {
            subject: Some(subject.clone()),
            ..ListReminders::default()
        })
        .await
        .unwrap();
    let state = |id: &str| {
        let r = page.items.iter().find(|r| r.id == id).unwrap();
        (r.state.clone(), r.fired_by.clone(), r.owner.clone())
    };
    let node = harness.info().node.to_string();
    assert_eq!(state(&soon), ("fired".into(), node.clone(), node.clone()));
    assert_eq!(state(&late), ("expired".into(), node.clone(), node));
    // Not for anyone but admins; a bad state is named.
    let user = troupe_proto::mesh::Caller {
        user_id: "u1".into(),
        ..Default::default()
    };
    let refused = call_op(&*svc, &ops::LIST, ListReminders::default(), Some(user))
        .await
        .unwrap_err();
    assert_eq!(refused.code, Code::PermissionDenied);
    let bad = svc
        .list(&ListReminders {
            state: Some("soon".into()),
            ..ListReminders::default()
        })
        .await
        .unwrap_err();
    assert!(bad.details.contains("state"), "{bad:?}");
    harness.stop().await;
}
