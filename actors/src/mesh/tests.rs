//! Actor-level tests of the runtime: supervision, admission control, routing, on one node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::Actor;

use super::backoff::{Backoff, Policy};
use super::groups::{self, Groups};
use super::*;

/// `echo` of the test services: answers its payload (bytes, as `BytesValue`).
const ECHO: Op<Vec<u8>, Vec<u8>> = Op::idempotent("t-router", "echo");

/// A service whose `slow` op sleeps and whose `echo` op answers its payload.
struct Echo {
    name: &'static str,
    ran: AtomicUsize,
}

impl Service for Echo {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            self.ran.fetch_add(1, Ordering::SeqCst);
            if req.op == "slow" {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(req.payload)
        })
    }
}

fn policy(max_restarts: u32) -> Policy {
    Policy {
        backoff: Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(50),
        },
        max_restarts,
        window: Duration::from_secs(10),
    }
}

async fn start(
    name: &'static str,
    workers: usize,
    capacity: usize,
    max_restarts: u32,
) -> (Arc<Pool>, ractor::ActorRef<groups::GroupsMsg>) {
    let pool = Pool::new(
        Arc::new(Echo {
            name,
            ran: AtomicUsize::new(0),
        }),
        workers,
        capacity,
    );
    let root = supervise(vec![pool.clone()], max_restarts, Duration::from_secs(1)).await;
    (pool, root)
}

/// Starts the node's groups actor over `pools`, restarting each worker up to
/// `max_restarts` times, with calls given `default_timeout` unless they carry their own.
async fn supervise(
    pools: Vec<Arc<Pool>>,
    max_restarts: u32,
    default_timeout: Duration,
) -> ractor::ActorRef<groups::GroupsMsg> {
    let (root, _) = Actor::spawn(
        None,
        Groups,
        groups::Args {
            pools,
            policy: policy(max_restarts),
            node: "test-node".into(),
            default_timeout,
        },
    )
    .await
    .unwrap();
    root
}

fn request(op: &str, timeout: Duration) -> Request {
    Request::new(op, Bytes::from_static(b"hi"), timeout)
}

async fn wait_alive(pool: &Pool, n: usize, within: Duration) -> bool {
    wait_for(pool, n, 0, within).await
}

/// Waits until `n` workers are alive after at least `restarts` restarts.
async fn wait_for(pool: &Pool, n: usize, restarts: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if pool.alive() == n && pool.restarts() >= restarts {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

#[tokio::test]
async fn a_killed_worker_is_restarted_at_once() {
    let (pool, root) = start("t-restart", 2, 16, 10).await;
    assert!(wait_alive(&pool, 2, Duration::from_secs(1)).await);
    let killed = pool.kill_random(1);
    assert_eq!(killed.len(), 1);
    assert!(killed[0].ends_with("#1"), "{killed:?}");
    assert!(wait_for(&pool, 2, 1, Duration::from_millis(100)).await);
    assert_eq!(pool.restarts(), 1);
    assert!(pool.list().iter().any(|w| w.name.ends_with("#2")));
    root.stop(None);
}

#[tokio::test]
async fn requests_during_a_restart_wait_for_the_worker_instead_of_failing() {
    let (pool, root) = start("t-wait", 1, 16, 10).await;
    assert!(wait_alive(&pool, 1, Duration::from_secs(1)).await);
    pool.kill_random(1);
    // Once the kill took effect the pool has no live worker at all...
    let gone = Instant::now() + Duration::from_secs(1);
    while pool.alive() > 0 && Instant::now() < gone {
        tokio::task::yield_now().await;
    }
    // ...and a request waits for the restart instead of being refused.
    let answer = pool.dispatch(request("echo", Duration::from_secs(1))).await;
    assert_eq!(answer, Ok(Bytes::from_static(b"hi")));
    root.stop(None);
}

#[tokio::test]
async fn exceeding_the_restart_intensity_restarts_the_whole_group() {
    let (pool, root) = start("t-escalate", 2, 16, 2).await;
    assert!(wait_alive(&pool, 2, Duration::from_secs(1)).await);
    // Three kills within the window: the third escalates.
    for i in 0..3 {
        assert!(wait_for(&pool, 2, i, Duration::from_secs(1)).await);
        assert_eq!(pool.kill_random(1).len(), 1);
    }
    // The group comes back with fresh workers (generation counters keep counting): two
    // restarts by the supervisor, then both workers again by the restarted group.
    assert!(
        wait_for(&pool, 2, 4, Duration::from_secs(2)).await,
        "restarts {}",
        pool.restarts()
    );
    let answer = pool.dispatch(request("echo", Duration::from_secs(1))).await;
    assert_eq!(answer, Ok(Bytes::from_static(b"hi")));
    root.stop(None);
}

#[tokio::test]
async fn admission_control_refuses_beyond_capacity_instead_of_queueing() {
    let (pool, root) = start("t-admit", 1, 1, 10).await;
    assert!(wait_alive(&pool, 1, Duration::from_secs(1)).await);
    let busy = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.dispatch(request("slow", Duration::from_secs(2))).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = pool.dispatch(request("echo", Duration::from_secs(1))).await;
    assert_eq!(refused.unwrap_err().code, Code::ResourceExhausted);
    assert!(busy.await.unwrap().is_ok());
    assert_eq!(pool.in_flight(), 0);
    root.stop(None);
}

#[tokio::test]
async fn a_request_past_its_deadline_is_answered_deadline_exceeded() {
    let (pool, root) = start("t-deadline", 1, 4, 10).await;
    assert!(wait_alive(&pool, 1, Duration::from_secs(1)).await);
    let answer = pool
        .dispatch(request("slow", Duration::from_millis(30)))
        .await;
    assert_eq!(answer.unwrap_err().code, Code::DeadlineExceeded);
    root.stop(None);
}

#[tokio::test]
async fn the_router_serves_locally_and_reports_unknown_nodes_unavailable() {
    let (pool, root) = start("t-router", 2, 16, 10).await;
    assert!(wait_alive(&pool, 2, Duration::from_secs(1)).await);
    let pools = Arc::new([("t-router", pool.clone())].into_iter().collect());
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(vec!["test-node".to_string()]));
    let router = Router::new("test-node".into(), pools, Duration::from_secs(1), rx);
    let call = ECHO.call(b"hello".to_vec());
    assert_eq!(router.call(call.clone()).await, Ok(b"hello".to_vec()));
    assert_eq!(
        router
            .call(call.clone().to(Target::Node("test-node".into())))
            .await,
        Ok(b"hello".to_vec())
    );
    assert_eq!(
        router
            .call(call.clone().to(Target::Entity("e-1".into())))
            .await,
        Ok(b"hello".to_vec()),
        "a single-member cluster is every entity's home"
    );
    let err = router
        .call(call.to(Target::Node("elsewhere".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    root.stop(None);
}

/// A test service that calls on: `outer` calls `next` (an op of any service) and answers
/// what it answered; `inner` answers where it ran: `worker` or `lane`.
struct Relay {
    name: &'static str,
    next: Option<Op<(), String>>,
    router: Arc<std::sync::OnceLock<Router>>,
}

impl Service for Relay {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let answer = match (req.op.as_str(), self.next) {
                ("inner", _) => {
                    let on_worker = super::worker::CURRENT.try_with(|_| ()).is_ok();
                    if on_worker { "worker" } else { "lane" }.to_string()
                }
                (_, Some(next)) => {
                    let router = self.router.get().expect("router set");
                    router.ask(&next, ()).await?
                }
                (op, None) => return Err(MeshError::not_found(format!("no op {op}"))),
            };
            Ok(Bytes::from(prost::Message::encode_to_vec(&answer)))
        })
    }
}

/// Starts `relays` (one worker each) on one node and answers its router.
async fn relays(relays: Vec<Relay>) -> (Router, ractor::ActorRef<groups::GroupsMsg>) {
    let cell = relays[0].router.clone();
    let pools: Vec<Arc<Pool>> = relays
        .into_iter()
        .map(|r| Pool::new(Arc::new(r), 1, 16))
        .collect();
    let root = supervise(pools.clone(), 10, Duration::from_secs(2)).await;
    for pool in &pools {
        assert!(wait_alive(pool, 1, Duration::from_secs(1)).await);
    }
    let map = Arc::new(pools.iter().map(|p| (p.name(), p.clone())).collect());
    // The sender may go: the members stay as last sent.
    let (_, rx) = tokio::sync::watch::channel(Arc::new(vec!["test-node".to_string()]));
    let router = Router::new("test-node".into(), map, Duration::from_secs(2), rx);
    let _ = cell.set(router.clone());
    (router, root)
}

#[tokio::test]
async fn a_worker_calling_its_own_service_is_served_on_the_lane_not_left_waiting() {
    let cell = Arc::new(std::sync::OnceLock::new());
    const OUTER: Op<(), String> = Op::effectful("t-self", "outer");
    const INNER: Op<(), String> = Op::idempotent("t-self", "inner");
    let (router, root) = relays(vec![Relay {
        name: "t-self",
        next: Some(INNER),
        router: cell,
    }])
    .await;
    // The pool's only worker runs `outer` and waits on `inner` of the same service: with a
    // worker per call this waited until the deadline and answered deadline_exceeded. It must
    // answer within the deadline, from the lane.
    let answer = router
        .call(OUTER.call(()).timeout(Duration::from_secs(2)))
        .await;
    assert_eq!(answer, Ok("lane".to_string()));
    // A call from outside any worker still runs on a worker.
    assert_eq!(router.ask(&INNER, ()).await, Ok("worker".to_string()));
    root.stop(None);
}

#[tokio::test]
async fn a_two_service_cycle_is_served_on_the_lane_not_left_waiting() {
    let cell = Arc::new(std::sync::OnceLock::new());
    const A_OUTER: Op<(), String> = Op::effectful("t-cyc-a", "outer");
    const B_MID: Op<(), String> = Op::effectful("t-cyc-b", "outer");
    const A_INNER: Op<(), String> = Op::idempotent("t-cyc-a", "inner");
    let (router, root) = relays(vec![
        Relay {
            name: "t-cyc-a",
            next: Some(B_MID),
            router: cell.clone(),
        },
        Relay {
            name: "t-cyc-b",
            next: Some(A_INNER),
            router: cell,
        },
    ])
    .await;
    // a's only worker waits on b, whose only worker waits on a: a's `inner` takes the lane.
    let answer = router
        .call(A_OUTER.call(()).timeout(Duration::from_secs(2)))
        .await;
    assert_eq!(answer, Ok("lane".to_string()));
    root.stop(None);
}

#[tokio::test]
async fn the_lane_is_bounded_by_admission_and_refuses_at_once() {
    let svc = Arc::new(Echo {
        name: "t-lane-full",
        ran: AtomicUsize::new(0),
    });
    let pool = Pool::new(svc, 1, 1);
    // No workers at all (no supervisor): a re-entrant request still runs, on the lane...
    let mut req = request("echo", Duration::from_secs(1));
    req.chain = vec!["t-lane-full".into()];
    assert_eq!(pool.dispatch(req).await, Ok(Bytes::from_static(b"hi")));
    // ...but within the admission limit: with the one slot taken, the next is refused now.
    let mut slow = request("slow", Duration::from_secs(2));
    slow.chain = vec!["t-lane-full".into()];
    let busy = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.dispatch(slow).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut next = request("echo", Duration::from_secs(1));
    next.chain = vec!["t-lane-full".into()];
    assert_eq!(
        pool.dispatch(next).await.unwrap_err().code,
        Code::ResourceExhausted
    );
    // Refused while the slot is still taken: it did not wait for the slow request.
    assert!(!busy.is_finished(), "the refusal waited for the slot");
    assert!(busy.await.unwrap().is_ok());
    assert_eq!(pool.in_flight(), 0);
}

/// A service whose `batch` op waits until `peers` requests of it are running at once (as
/// requests wait on a group-commit writer), and says so ([`Service::waits_on_batch`]).
struct Gather {
    peers: tokio::sync::Barrier,
}

impl Service for Gather {
    fn name(&self) -> &'static str {
        "t-gather"
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            if req.op == "batch" {
                self.peers.wait().await;
            }
            let on_worker = super::worker::CURRENT.try_with(|_| ()).is_ok();
            Ok(Bytes::from(if on_worker { "worker" } else { "lane" }))
        })
    }

    fn waits_on_batch(&self, op: &str) -> bool {
        op == "batch"
    }
}

#[tokio::test]
async fn ops_that_wait_on_a_batch_run_together_on_the_lane_not_one_per_worker() {
    let pool = Pool::new(
        Arc::new(Gather {
            peers: tokio::sync::Barrier::new(8),
        }),
        1,
        16,
    );
    let root = supervise(vec![pool.clone()], 10, Duration::from_secs(2)).await;
    assert!(wait_alive(&pool, 1, Duration::from_secs(1)).await);
    // Eight at once on a pool of one worker: on the worker, the first would wait for the
    // seven queued behind it until the deadline. Each must be answered, from the lane.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.dispatch(request("batch", Duration::from_secs(2)))
                    .await
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(Bytes::from_static(b"lane")));
    }
    // Its other ops still take a worker.
    let other = pool.dispatch(request("echo", Duration::from_secs(1))).await;
    assert_eq!(other, Ok(Bytes::from_static(b"worker")));
    assert_eq!(pool.in_flight(), 0);
    root.stop(None);
}
