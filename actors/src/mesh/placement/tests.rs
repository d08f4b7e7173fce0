//! The entity host and its entities, driven through [`request`] with a counter
//! entity persisted in an in-memory store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};

use super::*;

type Store = Arc<Mutex<HashMap<String, i64>>>;

/// A counter entity persisted in an in-memory "store".
#[derive(Default)]
struct Counter {
    store: Store,
    passivated: Arc<Mutex<Vec<String>>>,
    activated: Arc<Mutex<Vec<String>>>,
    /// Artificial latency of activate, to widen races.
    activate_delay: Duration,
    /// Artificial latency of passivate (before the write), to widen races.
    passivate_delay: Duration,
    /// The trace each activation ran in ([`crate::mesh::trace::current`]).
    activation_traces: Arc<Mutex<Vec<Option<[u8; 16]>>>>,
}

enum Op {
    Add(i64),
    Get,
    Panic,
    /// Answers the low 8 bytes of the trace id the turn runs in, 0 outside a trace.
    TraceLow,
}

/// The low 8 bytes of a trace id, as [`Op::TraceLow`] answers them.
fn low(trace_id: [u8; 16]) -> i64 {
    i64::from_be_bytes(trace_id[8..].try_into().unwrap())
}

impl Entity for Counter {
    type State = i64;
    type Request = Op;
    type Reply = i64;
    const KIND: &'static str = "counter";

    async fn activate(&self, id: &str) -> Result<i64, EntityError> {
        if !self.activate_delay.is_zero() {
            tokio::time::sleep(self.activate_delay).await;
        }
        if id.starts_with("missing") {
            return Err(EntityError::NotFound);
        }
        if id.starts_with("broken") {
            return Err(EntityError::Unavailable("store down".to_string()));
        }
        self.activated.lock().unwrap().push(id.to_string());
        self.activation_traces
            .lock()
            .unwrap()
            .push(crate::mesh::trace::current().map(|t| t.trace_id));
        Ok(self.store.lock().unwrap().get(id).copied().unwrap_or(0))
    }

    async fn handle(&self, _id: &str, state: &mut i64, req: Op) -> i64 {
        match req {
            Op::Add(n) => {
                *state += n;
                *state
            }
            Op::Get => *state,
            Op::Panic => panic!("counter handler exploded"),
            Op::TraceLow => crate::mesh::trace::current().map_or(0, |t| low(t.trace_id)),
        }
    }

    async fn passivate(&self, id: &str, state: i64) {
        if !self.passivate_delay.is_zero() {
            tokio::time::sleep(self.passivate_delay).await;
        }
        self.store.lock().unwrap().insert(id.to_string(), state);
        self.passivated.lock().unwrap().push(id.to_string());
    }
}

struct Harness {
    host: ActorRef<EntityHostMsg<Counter>>,
    join: tokio::task::JoinHandle<()>,
    store: Store,
    passivated: Arc<Mutex<Vec<String>>>,
    activated: Arc<Mutex<Vec<String>>>,
}

async fn start(idle: Duration, activate_delay: Duration, passivate_delay: Duration) -> Harness {
    let counter = Counter {
        activate_delay,
        passivate_delay,
        ..Counter::default()
    };
    let store = Arc::clone(&counter.store);
    let passivated = Arc::clone(&counter.passivated);
    let activated = Arc::clone(&counter.activated);
    let (host, join) = Actor::spawn(None, EntityHost::new(counter, idle), ())
        .await
        .expect("host spawns");
    Harness {
        host,
        join,
        store,
        passivated,
        activated,
    }
}

const LONG: Duration = Duration::from_secs(3600);

async fn call(h: &Harness, id: &str, op: Op) -> Result<i64, EntityError> {
    request(&h.host, id, op, Some(Duration::from_secs(5))).await
}

async fn stats(h: &Harness) -> HostStats {
    ractor::call!(h.host, EntityHostMsg::Stats).expect("stats")
}

/// Polls the host until `pred` holds, failing after 5 s.
async fn wait_for(h: &Harness, pred: impl Fn(&HostStats) -> bool) -> HostStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(h).await;
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "condition not reached: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn shutdown(h: Harness) {
    h.host.stop(None);
    h.join.await.expect("host task");
}

#[tokio::test]
async fn activates_on_demand_and_keeps_state() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    assert_eq!(stats(&h).await, HostStats::default());

    assert_eq!(call(&h, "a", Op::Add(1)).await, Ok(1));
    assert_eq!(call(&h, "a", Op::Add(2)).await, Ok(3));
    assert_eq!(call(&h, "a", Op::Get).await, Ok(3));
    assert_eq!(call(&h, "b", Op::Add(10)).await, Ok(10));

    let s = stats(&h).await;
    assert_eq!(s.active, 2);
    assert_eq!(s.activations, 2);
    assert_eq!(s.passivations, 0);
    assert_eq!(*h.activated.lock().unwrap(), vec!["a", "b"]);
    // Nothing persisted while active.
    assert!(h.store.lock().unwrap().is_empty());

    // Stopping the host passivates its entities.
    let store = Arc::clone(&h.store);
    shutdown(h).await;
    let store = store.lock().unwrap();
    assert_eq!(store.get("a"), Some(&3));
    assert_eq!(store.get("b"), Some(&10));
}

#[tokio::test]
async fn passivates_idle_entities_and_reactivates_from_store() {
    let h = start(Duration::from_millis(150), Duration::ZERO, Duration::ZERO).await;
    assert_eq!(call(&h, "idle", Op::Add(5)).await, Ok(5));
    assert_eq!(stats(&h).await.active, 1);

    let s = wait_for(&h, |s| s.active == 0 && s.passivating == 0).await;
    assert_eq!(s.passivations, 1);
    assert_eq!(h.store.lock().unwrap().get("idle"), Some(&5));
    assert_eq!(*h.passivated.lock().unwrap(), vec!["idle"]);

    assert_eq!(call(&h, "idle", Op::Add(1)).await, Ok(6));
    let s = stats(&h).await;
    assert_eq!(s.activations, 2);
    assert_eq!(s.active, 1);
    shutdown(h).await;
}

#[tokio::test]
async fn busy_entities_are_not_passivated() {
    let h = start(Duration::from_millis(400), Duration::ZERO, Duration::ZERO).await;
    for i in 1..=15 {
        assert_eq!(call(&h, "busy", Op::Add(1)).await, Ok(i));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = stats(&h).await;
    assert_eq!(s.activations, 1);
    assert_eq!(s.passivations, 0);
    shutdown(h).await;
}

#[tokio::test]
async fn explicit_passivate_persists_and_next_request_reloads() {
    // A slow passivate: the re-activation must wait for it.
    let h = start(LONG, Duration::ZERO, Duration::from_millis(30)).await;
    assert_eq!(call(&h, "p", Op::Add(7)).await, Ok(7));
    h.host
        .cast(EntityHostMsg::Passivate { id: "p".into() })
        .expect("cast");
    // Sent right behind the Passivate: must not be lost, and must see the
    // persisted value (activation strictly after passivation).
    assert_eq!(call(&h, "p", Op::Add(1)).await, Ok(8));
    assert_eq!(h.store.lock().unwrap().get("p"), Some(&7));
    let s = stats(&h).await;
    assert_eq!(s.activations, 2);
    assert_eq!(s.passivations, 1);
    shutdown(h).await;
}

#[tokio::test]
async fn requests_racing_with_passivation_are_not_lost() {
    // Tiny idle timeout, slow store, explicit passivations and several
    // concurrent writers: every Add must be applied exactly once.
    let h = Arc::new(
        start(
            Duration::from_millis(1),
            Duration::from_millis(1),
            Duration::from_millis(4),
        )
        .await,
    );
    let writers = 4;
    let per_writer = 50;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let h = Arc::clone(&h);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let r = call(&h, "hot", Op::Add(1)).await;
                assert!(matches!(r, Ok(n) if n >= 1), "writer {w} op {i}: {r:?}");
                if (i + w) % 7 == 0 {
                    h.host
                        .cast(EntityHostMsg::Passivate { id: "hot".into() })
                        .expect("cast");
                }
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    assert_eq!(call(&h, "hot", Op::Get).await, Ok(writers * per_writer));
    // Once settled, every activation ended in exactly one passivation
    // (or is still active).
    let s = wait_for(&h, |s| s.activating == 0 && s.passivating == 0).await;
    assert!(s.passivations >= 1, "{s:?}");
    assert_eq!(s.activations, s.passivations + s.active as u64, "{s:?}");
    assert_eq!(s.crashes, 0);
    assert_eq!(s.activation_failures, 0);
}

#[tokio::test]
async fn rebalance_passivates_exactly_the_moved_entities() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    let old_members = vec!["a".to_string(), "b".to_string()];
    let new_members = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let ids: Vec<String> = (0..400)
        .map(|i| format!("e{i}"))
        .filter(|id| home(id, &old_members).map(String::as_str) == Some("a"))
        .take(60)
        .collect();
    assert_eq!(ids.len(), 60);
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(call(&h, id, Op::Add(n as i64 + 1)).await, Ok(n as i64 + 1));
    }
    let mut expected: Vec<String> = ids
        .iter()
        .filter(|id| home(id, &new_members).map(String::as_str) == Some("c"))
        .cloned()
        .collect();
    assert!(!expected.is_empty() && expected.len() < ids.len());

    // Unchanged membership: nothing moves.
    h.host
        .cast(EntityHostMsg::Rebalance {
            members: old_members.clone(),
            me: "a".into(),
        })
        .expect("cast");
    assert_eq!(stats(&h).await.active, 60);

    h.host
        .cast(EntityHostMsg::Rebalance {
            members: new_members,
            me: "a".into(),
        })
        .expect("cast");
    let s = wait_for(&h, |s| s.passivating == 0 && s.active < 60).await;
    assert_eq!(s.active, ids.len() - expected.len());
    assert_eq!(s.passivations as usize, expected.len());

    let mut passivated = h.passivated.lock().unwrap().clone();
    passivated.sort();
    expected.sort();
    assert_eq!(passivated, expected);
    let store = h.store.lock().unwrap().clone();
    for id in &expected {
        let n = ids.iter().position(|x| x == id).expect("known id") as i64 + 1;
        assert_eq!(store.get(id), Some(&n), "{id} persisted");
    }
    shutdown(h).await;
}

#[tokio::test]
async fn rebalance_without_me_passivates_everything() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    for id in ["x", "y", "z"] {
        assert_eq!(call(&h, id, Op::Add(1)).await, Ok(1));
    }
    h.host
        .cast(EntityHostMsg::Rebalance {
            members: vec!["other".into()],
            me: "gone".into(),
        })
        .expect("cast");
    let s = wait_for(&h, |s| s.active == 0 && s.passivating == 0).await;
    assert_eq!(s.passivations, 3);
    assert_eq!(h.store.lock().unwrap().len(), 3);
    shutdown(h).await;
}

#[tokio::test]
async fn activation_error_propagates_and_leaves_nothing_behind() {
    let h = start(LONG, Duration::from_millis(5), Duration::ZERO).await;
    // Several requests waiting on the same failing activation all get
    // the error.
    let (r1, r2) = tokio::join!(
        call(&h, "missing-1", Op::Get),
        call(&h, "missing-1", Op::Add(1))
    );
    assert_eq!(r1, Err(EntityError::NotFound));
    assert_eq!(r2, Err(EntityError::NotFound));
    assert_eq!(
        call(&h, "broken-1", Op::Get).await,
        Err(EntityError::Unavailable("store down".to_string()))
    );
    let s = stats(&h).await;
    assert_eq!(s.active + s.activating + s.passivating, 0);
    assert_eq!(s.activations, 0);
    assert!(s.activation_failures >= 2, "{s:?}");

    // The host still works, and retries a failed activation.
    assert_eq!(call(&h, "ok", Op::Add(2)).await, Ok(2));
    assert_eq!(
        call(&h, "missing-1", Op::Get).await,
        Err(EntityError::NotFound)
    );
    assert_eq!(stats(&h).await.active, 1);
    shutdown(h).await;
}

#[tokio::test]
async fn panicking_handler_is_survived() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    assert_eq!(call(&h, "boom", Op::Add(4)).await, Ok(4));
    assert_eq!(call(&h, "other", Op::Add(1)).await, Ok(1));

    // Raw call: the reply port itself carries Unavailable (it is not
    // just dropped), so callers not using `request` get a typed error too.
    let r = ractor::call!(h.host, |reply| EntityHostMsg::Request {
        id: "boom".to_string(),
        req: Op::Panic,
        trace: None,
        reply,
    })
    .expect("host answers");
    assert_eq!(
        r,
        Err(EntityError::Unavailable(
            "entity stopped before answering".to_string()
        ))
    );

    let s = wait_for(&h, |s| s.crashes == 1 && s.passivating == 0).await;
    assert_eq!(s.active, 1, "only the healthy entity remains");

    // Re-activated from the store: the crashed state was never persisted.
    assert_eq!(call(&h, "boom", Op::Get).await, Ok(0));
    // The other entity was unaffected.
    assert_eq!(call(&h, "other", Op::Get).await, Ok(1));
    let s = stats(&h).await;
    assert_eq!(s.activations, 3);
    assert_eq!(s.active, 2);
    assert!(!h.passivated.lock().unwrap().contains(&"boom".to_string()));
    shutdown(h).await;
}

#[tokio::test]
async fn requests_queued_behind_a_panic_are_answered() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    assert_eq!(call(&h, "q", Op::Add(1)).await, Ok(1));
    let (a, b, c) = tokio::join!(
        call(&h, "q", Op::Panic),
        call(&h, "q", Op::Add(1)),
        call(&h, "q", Op::Add(1))
    );
    assert!(matches!(a, Err(EntityError::Unavailable(_))), "{a:?}");
    // Each later request is either answered with Unavailable (it was in
    // the crashed actor's mailbox) or served by a fresh activation.
    for r in [b, c] {
        assert!(
            matches!(r, Ok(1..=2) | Err(EntityError::Unavailable(_))),
            "{r:?}"
        );
    }
    let next = call(&h, "q", Op::Get).await.expect("re-activated");
    assert!((0..=2).contains(&next));
    shutdown(h).await;
}

#[tokio::test]
async fn stopped_host_answers_unavailable() {
    let h = start(LONG, Duration::ZERO, Duration::ZERO).await;
    let host = h.host.clone();
    shutdown(h).await;
    let r = request(&host, "a", Op::Get, Some(Duration::from_secs(1))).await;
    assert!(matches!(r, Err(EntityError::Unavailable(_))), "{r:?}");
}

#[tokio::test]
async fn an_entity_activates_and_serves_inside_the_trace_of_the_request() {
    use crate::mesh::trace::{self, Trace};
    let counter = Counter::default();
    let traces = Arc::clone(&counter.activation_traces);
    let (host, join) = Actor::spawn(None, EntityHost::new(counter, LONG), ())
        .await
        .expect("host spawns");
    let ask = |op| request(&host, "traced", op, Some(Duration::from_secs(5)));

    let first = Trace::fresh();
    let got = trace::scope(first, ask(Op::TraceLow)).await;
    assert_eq!(got, Ok(low(first.trace_id)), "the turn that activated it");
    assert_eq!(*traces.lock().unwrap(), vec![Some(first.trace_id)]);

    // An active entity serves each request in that request's own trace ...
    let second = Trace::fresh();
    let got = trace::scope(second, ask(Op::TraceLow)).await;
    assert_eq!(got, Ok(low(second.trace_id)));
    // ... and a request from outside any trace outside one.
    assert_eq!(ask(Op::TraceLow).await, Ok(0));

    host.stop(None);
    join.await.expect("host task");
}
