//! The bus over a real outbox, with in-process sinks that fail on demand.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::bus::Bus;
use super::delivery::Retry;
use super::outbox::Outbox;
use super::sink::Sink;
use super::{admin, kinds, outbox, Event, NewEvent, Publish};
use crate::mesh::backoff::Backoff;
use crate::mesh::{BoxFuture, MeshError};

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

fn outbox() -> Arc<Outbox> {
    let dir = std::env::temp_dir().join(format!("troupe-bus-{}", uuid::Uuid::new_v4()));
    Outbox::open(&dir).unwrap()
}

async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_they_succeed() {
    let sink = Flaky::new(3);
    let outbox = outbox();
    let bus = Bus::start(
        "n1".into(),
        outbox.clone(),
        vec![Arc::new(sink.clone())],
        retry(5),
    );
    let e = bus
        .publish(NewEvent::new(
            "todo.created",
            Some("u1"),
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(e.source, "n1");
    assert!(eventually(|| sink.got() == [e.id.clone()]).await);
    assert!(eventually(|| outbox.depth() == 0).await);
    assert!(outbox.dead_letters().is_empty());
}

#[tokio::test]
async fn exhausted_deliveries_become_dead_letters_and_replay() {
    let sink = Flaky::new(u32::MAX);
    let outbox = outbox();
    let bus = Bus::start(
        "n1".into(),
        outbox.clone(),
        vec![Arc::new(sink.clone())],
        retry(3),
    );
    let e = bus
        .publish(NewEvent::new(
            "task.created",
            None,
            serde_json::json!({"n": 1}),
        ))
        .await
        .unwrap();
    assert!(eventually(|| outbox.dead_letters().len() == 1).await);
    let dead = &outbox.dead_letters()[0];
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.dead_id(), format!("{}.flaky", e.id));
    assert_eq!(outbox.depth(), 0);
    assert!(sink.got().is_empty());

    sink.failures.store(0, Ordering::SeqCst);
    bus.replay(&dead.dead_id()).await.unwrap();
    assert!(eventually(|| sink.got() == [e.id.clone()]).await);
    assert!(outbox.dead_letters().is_empty());
    assert_eq!(
        bus.replay(&dead.dead_id()).await.unwrap_err().code,
        crate::mesh::Code::NotFound
    );
}

#[tokio::test]
async fn bad_kinds_are_refused_and_nothing_is_stored() {
    let outbox = outbox();
    let bus = Bus::start(
        "n1".into(),
        outbox.clone(),
        vec![Arc::new(Flaky::new(0))],
        retry(3),
    );
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
    assert_eq!(outbox.depth(), 0);
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
    let entry = outbox::Entry::new(e, "notifications");
    let shown: serde_json::Value = serde_json::from_str(&admin::shown(&entry)).unwrap();
    assert_eq!(shown["payload"]["code"], "***");
    assert_eq!(shown["payload"]["username"], "ann");
    assert!(!admin::shown(&entry).contains("123456"));
    assert_eq!(entry.event.payload["code"], "123456");
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
