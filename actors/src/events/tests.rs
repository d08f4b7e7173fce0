//! The bus over a real outbox (SQLite; PostgreSQL for the concurrent claims when
//! `TROUPE_TEST_PG` is set), with in-process sinks that fail on demand.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::bus::Bus;
use super::delivery::Retry;
use super::outbox::{self, Outbox};
use super::sink::Sink;
use super::{admin, kinds, relay, Event, NewEvent, Publish, Staged};
use crate::mesh::backoff::Backoff;
use crate::mesh::{BoxFuture, MeshError};
use crate::store::tests::{sqlite, TempDir};
use crate::store::Store;

/// Fails its first `failures` deliveries (`u32::MAX`: until told otherwise).
struct Flaky {
    failures: AtomicU32,
    got: Mutex<Vec<String>>,
}

impl Flaky {
    fn new(failures: u32) -> Arc<Self> {
        Arc::new(Self {
            failures: AtomicU32::new(failures),
            got: Mutex::new(Vec::new()),
        })
    }

    fn got(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

impl Sink for Arc<Flaky> {
    fn name(&self) -> &str {
        "flaky"
    }

    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>> {
        let me = self.clone();
        Box::pin(async move {
            let left = me.failures.load(Ordering::SeqCst);
            if left > 0 {
                if left != u32::MAX {
                    me.failures.fetch_sub(1, Ordering::SeqCst);
                }
                return Err(MeshError::unavailable("down"));
            }
            me.got.lock().unwrap().push(event.id.clone());
            Ok(())
        })
    }
}

fn retry(max_attempts: u32) -> Retry {
    Retry {
        max_attempts,
        backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(10)),
        attempt_timeout: Duration::from_secs(1),
    }
}

fn relay() -> relay::Settings {
    relay::Settings {
        max_in_flight: 64,
        claim_ttl: Duration::from_secs(10),
    }
}

/// A bus over a fresh SQLite store, with its relay running.
async fn bus(sink: &Arc<Flaky>, attempts: u32) -> (Arc<Bus>, Store, TempDir) {
    let (store, dir) = sqlite().await;
    let outbox = Outbox::new(store.clone(), "n1".into(), 1, 1_000_000);
    let bus = Bus::start(
        "n1".into(),
        outbox,
        vec![Arc::new(sink.clone())],
        retry(attempts),
        relay(),
    );
    bus.start_relay();
    (bus, store, dir)
}

async fn eventually<F: std::future::Future<Output = bool>>(mut cond: impl FnMut() -> F) -> bool {
    for _ in 0..300 {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

fn event(id: &str) -> Event {
    Event {
        id: id.into(),
        kind: "todo.created".into(),
        time: "2026-01-01T00:00:00.000Z".into(),
        source: "n1".into(),
        user_id: Some("u1".into()),
        payload: serde_json::json!({"n": 1}),
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_they_succeed_and_the_row_goes() {
    let sink = Flaky::new(3);
    let (bus, store, _dir) = bus(&sink, 5).await;
    let e = bus
        .publish(NewEvent::new(
            "todo.created",
            Some("u1"),
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(e.source, "n1");
    assert!(eventually(|| async { sink.got() == [e.id.clone()] }).await);
    assert!(eventually(|| async { rows(&store).await == 0 }).await);
    assert!(bus.outbox().dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn exhausted_deliveries_become_dead_letters_and_replay() {
    let sink = Flaky::new(u32::MAX);
    let (bus, store, _dir) = bus(&sink, 3).await;
    let e = bus
        .publish(NewEvent::new(
            "task.created",
            None,
            serde_json::json!({"n": 1}),
        ))
        .await
        .unwrap();
    let outbox = bus.outbox().clone();
    assert!(eventually(|| async { outbox.dead_count().await.unwrap() == 1 }).await);
    let dead = outbox.dead_letters(10).await.unwrap().remove(0);
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.id, format!("{}.flaky", e.id));
    assert_eq!(dead.node, "n1");
    assert!(eventually(|| async { rows(&store).await == 0 }).await);
    assert!(sink.got().is_empty());

    sink.failures.store(0, Ordering::SeqCst);
    outbox.replay(&dead.id).await.unwrap();
    assert!(eventually(|| async { sink.got() == [e.id.clone()] }).await);
    assert_eq!(outbox.dead_count().await.unwrap(), 0);
    assert_eq!(
        outbox.replay(&dead.id).await.unwrap_err().code,
        crate::mesh::Code::NotFound
    );
}

#[tokio::test]
async fn bad_kinds_are_refused_and_nothing_is_stored() {
    let sink = Flaky::new(0);
    let (bus, store, _dir) = bus(&sink, 3).await;
    for kind in ["", "User.Registered", "a b", &"x".repeat(65)] {
        let r = bus
            .publish(NewEvent::new(kind, None, serde_json::json!({})))
            .await;
        assert_eq!(
            r.unwrap_err().code,
            crate::mesh::Code::InvalidArgument,
            "{kind:?}"
        );
    }
    assert_eq!(rows(&store).await, 0);
}

#[tokio::test]
async fn staged_events_exist_only_if_their_transaction_commits() {
    let sink = Flaky::new(0);
    let (bus, store, _dir) = bus(&sink, 3).await;
    let publisher: super::Publisher = bus.clone();
    // Rolled back: neither the row nor the event.
    let mut staged = Staged::new(Some(&publisher));
    let lost = staged
        .add(NewEvent::new("todo.created", None, serde_json::json!({})))
        .unwrap()
        .id
        .clone();
    let mut tx = store.begin().await.unwrap();
    staged.write(&mut tx).await.unwrap();
    tx.rollback().await.unwrap();
    // Committed: delivered.
    let mut staged = Staged::new(Some(&publisher));
    let kept = staged
        .add(NewEvent::new("todo.created", None, serde_json::json!({})))
        .unwrap()
        .id
        .clone();
    let tx = store.begin().await.unwrap();
    staged.commit(tx).await.unwrap();
    assert!(eventually(|| async { sink.got() == [kept.clone()] }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sink.got().contains(&lost));
    assert!(eventually(|| async { rows(&store).await == 0 }).await);
}

#[tokio::test]
async fn a_full_outbox_refuses_events_as_unavailable() {
    let (store, _dir) = sqlite().await;
    let outbox = Outbox::new(store.clone(), "n1".into(), 1, 3);
    outbox
        .insert(&[event("a"), event("b"), event("c")])
        .await
        .unwrap();
    let bus = Bus::start("n1".into(), outbox, vec![], retry(3), relay());
    let e = bus
        .publish(NewEvent::new("todo.created", None, serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.code, crate::mesh::Code::Unavailable);
    assert!(e.details.contains("outbox_full"), "{}", e.details);
    assert_eq!(rows(&store).await, 3);
}

#[tokio::test]
async fn a_row_that_is_not_an_event_is_quarantined_and_the_rest_delivered() {
    let sink = Flaky::new(0);
    let (store, _dir) = sqlite().await;
    let outbox = Outbox::new(store.clone(), "n1".into(), 1, 1000);
    outbox.insert(&[event("good-1")]).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (id, ord, sink, body, created_at) VALUES ('bad', 1, '', '{not json', 0)",
    )
    .execute(store.writer())
    .await
    .unwrap();
    outbox.insert(&[event("good-2")]).await.unwrap();
    let bus = Bus::start(
        "n1".into(),
        outbox.clone(),
        vec![Arc::new(sink.clone())],
        retry(3),
        relay(),
    );
    bus.start_relay();
    assert!(
        eventually(|| async {
            let mut got = sink.got();
            got.sort();
            got == ["good-1", "good-2"]
        })
        .await
    );
    assert!(eventually(|| async { rows(&store).await == 0 }).await);
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].id.as_str(),
            dead[0].sink.as_str(),
            dead[0].body.as_str()
        ),
        ("bad.quarantine", outbox::QUARANTINE, "{not json")
    );
    assert!(dead[0].last_error.starts_with("undecodable"));
    // Shown as it was; a replay of what is still not an event is refused.
    assert_eq!(admin::shown(&dead[0]), "{not json");
    assert_eq!(
        outbox.replay(&dead[0].id).await.unwrap_err().code,
        crate::mesh::Code::FailedPrecondition
    );
}

#[tokio::test]
async fn claims_are_exclusive_until_their_lease_runs_out_and_a_restart_releases_them() {
    let (store, _dir) = sqlite().await;
    let n1 = Outbox::new(store.clone(), "n1".into(), 1, 1000);
    let n2 = Outbox::new(store.clone(), "n2".into(), 1, 1000);
    n1.insert(&[event("e1"), event("e2"), event("e3")])
        .await
        .unwrap();
    let a = n1.claim(2, Duration::from_secs(60)).await.unwrap();
    let ids: Vec<&str> = a.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"], "oldest first");
    let b = n2.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["e3"]);
    assert!(n2
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    // n1 dies: its lease runs out, and n2 takes its rows.
    sqlx::query("UPDATE outbox SET claimed_until = 1 WHERE claimed_by = 'n1/1'")
        .execute(store.writer())
        .await
        .unwrap();
    let taken = n2.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(taken.len(), 2);
    // n2 restarts (incarnation 2): its earlier run's claims are released at once.
    let n2_again = Outbox::new(store.clone(), "n2".into(), 2, 1000);
    assert_eq!(n2_again.release_earlier_runs().await.unwrap(), 3);
    assert_eq!(
        n2_again
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(n2_again.renew(Duration::from_secs(60)).await.unwrap(), 3);
    // A node name is matched literally: `n_` is not a pattern that takes `n2`'s claims.
    let other = Outbox::new(store.clone(), "n_".into(), 9, 1000);
    assert_eq!(other.release_earlier_runs().await.unwrap(), 0);
}

#[tokio::test]
async fn postgres_relays_claiming_at_once_never_share_a_row() {
    let Some(store) = crate::store::tests::postgres().await else {
        return;
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let writer = Outbox::new(store.clone(), "w".into(), 1, u64::MAX);
    let events: Vec<Event> = (0..200).map(|i| event(&format!("{run}-{i}"))).collect();
    writer.insert(&events).await.unwrap();
    let mut claims = Vec::new();
    for n in 0..4 {
        let o = Outbox::new(store.clone(), format!("pg{n}-{run}").into(), 1, u64::MAX);
        claims.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = o.claim(16, Duration::from_secs(60)).await.unwrap();
                if c.is_empty() {
                    break;
                }
                got.extend(c.into_iter().map(|c| c.id));
            }
            o.settle(&got, &[]).await.unwrap();
            got
        }));
    }
    let mut all = Vec::new();
    for c in claims {
        all.extend(c.await.unwrap());
    }
    let mine: Vec<&String> = all.iter().filter(|id| id.starts_with(&run)).collect();
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a row was claimed twice");
    assert_eq!(mine.len(), 200);
}

#[test]
fn dead_letters_show_codes_masked_and_keep_them_for_replay() {
    let e = Event {
        id: "e1".into(),
        kind: kinds::PASSWORD_RESET_REQUESTED.into(),
        time: "2026-01-01T00:00:00.000Z".into(),
        source: "n1".into(),
        user_id: Some("u1".into()),
        payload: serde_json::json!({"code": "123456", "username": "ann"}),
    };
    let dead = outbox::DeadLetter::gave_up(&e, "notifications", 3, "down", "n1");
    let shown: serde_json::Value = serde_json::from_str(&admin::shown(&dead)).unwrap();
    assert_eq!(shown["payload"]["code"], "***");
    assert_eq!(shown["payload"]["username"], "ann");
    assert!(!admin::shown(&dead).contains("123456"));
    assert_eq!(dead.event().unwrap().payload["code"], "123456");
}

#[test]
fn redaction_masks_codes_only() {
    let e = Event {
        id: "e".into(),
        kind: "password.reset_requested".into(),
        time: String::new(),
        source: "n1".into(),
        user_id: None,
        payload: serde_json::json!({"code": "123456", "username": "ann"}),
    };
    let r = e.redacted();
    assert_eq!(r.payload["code"], "***");
    assert_eq!(r.payload["username"], "ann");
    assert_eq!(e.payload["code"], "123456");
}

#[tokio::test]
async fn an_old_sled_outbox_is_moved_into_the_store_and_removed() {
    let (store, dir) = sqlite().await;
    let old = dir.0.join("n1").join("outbox");
    {
        let db = sled::open(&old).unwrap();
        let pending = db.open_tree("pending").unwrap();
        let dead = db.open_tree("dead").unwrap();
        let entry = |id: &str, sink: &str| {
            serde_json::to_vec(&serde_json::json!({
                "event": event(id), "sink": sink, "attempts": 2,
                "last_error": "refused", "failed_at": 7,
            }))
            .unwrap()
        };
        pending.insert(b"k1", entry("p1", "mqtt")).unwrap();
        pending.insert(b"k2", b"garbage".to_vec()).unwrap();
        dead.insert(b"d1.mqtt", entry("d1", "mqtt")).unwrap();
        db.flush().unwrap();
    }
    let outbox = Outbox::new(store.clone(), "n1".into(), 1, 1000);
    let found = super::legacy::import(&old, &outbox).await.unwrap();
    assert_eq!((found.pending, found.dead, found.quarantined), (1, 1, 1));
    assert!(!old.exists(), "the old outbox is removed once moved");
    let claimed = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].id.as_str(), claimed[0].sink.as_str()),
        ("p1.mqtt", "mqtt")
    );
    let mut dead: Vec<(String, String)> = outbox
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.sink))
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        [
            ("d1.mqtt".to_string(), "mqtt".to_string()),
            (
                format!("legacy-{}.quarantine", "6b32"),
                "quarantine".to_string()
            )
        ]
    );
}

#[tokio::test]
async fn an_unreadable_old_outbox_is_set_aside_and_the_node_goes_on() {
    let (store, dir) = sqlite().await;
    let old = dir.0.join("n1").join("outbox");
    std::fs::create_dir_all(&old).unwrap();
    // sled's config file, overwritten with junk: the database cannot be opened.
    std::fs::write(old.join("conf"), b"\x00\x01 not a sled config \xff").unwrap();
    std::fs::write(old.join("db"), b"\xde\xad\xbe\xef").unwrap();
    let outbox = Outbox::new(store, "n1".into(), 1, 1000);
    let found = super::legacy::import(&old, &outbox).await.unwrap();
    let aside = found.set_aside.expect("set aside");
    assert!(aside.exists() && !old.exists());
    assert!(aside
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("outbox.corrupt-"));
}
