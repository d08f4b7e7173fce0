//! The worker pool of one service on one node, shared by its supervisor (which fills the
//! slots), the router (which dispatches local calls) and the endpoint (remote calls).
//!
//! Admission control lives here: at most `capacity` requests are in flight per service per
//! node; one more is answered `resource_exhausted` at once instead of queueing without bound.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a request waits for a worker of a pool whose workers are all restarting.
pub const RESTART_GRACE: Duration = Duration::from_secs(1);

use bytes::Bytes;
use ractor::{ActorRef, ActorStatus};
use rand::seq::IteratorRandom;

use super::admission::Admitted;
use super::worker::{Remote, Reply, WorkerMsg};
use super::{lane, wire, Code, MeshError, Request, Service};

/// One worker slot: the live actor (if any) and a display name with its restart generation.
#[derive(Clone)]
pub struct Slot {
    /// The live worker, `None` while it is being restarted.
    pub actor: Option<ActorRef<WorkerMsg>>,
    /// `"<service>.w<index>#<generation>"`.
    pub name: String,
    /// How many times this slot was started.
    pub generation: u64,
}

/// A snapshot of one worker for `/admin/actors`.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Display name.
    pub name: String,
    /// ractor actor id, or empty while restarting.
    pub id: String,
    /// `running`, `restarting`, ...
    pub status: String,
}

/// The workers of one service on this node.
pub struct Pool {
    service: Arc<dyn Service>,
    slots: RwLock<Vec<Slot>>,
    next: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    restarts: AtomicU64,
}

impl Pool {
    /// A pool of `workers` empty slots for `service`, admitting `capacity` requests in flight.
    pub fn new(service: Arc<dyn Service>, workers: usize, capacity: usize) -> Arc<Self> {
        let name = service.name();
        let slots = (0..workers)
            .map(|i| Slot {
                actor: None,
                name: format!("{name}.w{i}#0"),
                generation: 0,
            })
            .collect();
        Arc::new(Self {
            service,
            slots: RwLock::new(slots),
            next: AtomicUsize::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
            restarts: AtomicU64::new(0),
        })
    }

    /// The service this pool runs.
    pub fn service(&self) -> &Arc<dyn Service> {
        &self.service
    }

    /// The service name.
    pub fn name(&self) -> &'static str {
        self.service.name()
    }

    /// Number of worker slots.
    pub fn size(&self) -> usize {
        self.slots.read().expect("pool lock").len()
    }

    /// Workers currently running.
    pub fn alive(&self) -> usize {
        self.slots
            .read()
            .expect("pool lock")
            .iter()
            .filter(|s| is_running(&s.actor))
            .count()
    }

    /// Requests admitted and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Admission limit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Worker restarts since the node started.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Puts a (re)started worker in slot `index`; called by the supervisor.
    pub fn fill(&self, index: usize, actor: ActorRef<WorkerMsg>) -> String {
        let mut slots = self.slots.write().expect("pool lock");
        let slot = &mut slots[index];
        if slot.generation > 0 {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        slot.generation += 1;
        slot.name = format!("{}.w{index}#{}", self.name(), slot.generation);
        slot.actor = Some(actor);
        slot.name.clone()
    }

    /// Empties the slot that held `actor`; returns its index. Called by the supervisor.
    pub fn clear(&self, actor: &ractor::ActorId) -> Option<usize> {
        let mut slots = self.slots.write().expect("pool lock");
        let index = slots
            .iter()
            .position(|s| s.actor.as_ref().is_some_and(|a| a.get_id() == *actor))?;
        slots[index].actor = None;
        Some(index)
    }

    /// Every worker that is running now.
    pub fn workers(&self) -> Vec<ActorRef<WorkerMsg>> {
        self.slots
            .read()
            .expect("pool lock")
            .iter()
            .filter_map(|s| {
                s.actor
                    .clone()
                    .filter(|a| a.get_status() == ActorStatus::Running)
            })
            .collect()
    }

    /// Snapshot for listings.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.slots
            .read()
            .expect("pool lock")
            .iter()
            .map(|s| WorkerInfo {
                name: s.name.clone(),
                id: s
                    .actor
                    .as_ref()
                    .map(|a| a.get_id().to_string())
                    .unwrap_or_default(),
                status: match &s.actor {
                    Some(a) if a.get_status() == ActorStatus::Running => "running".into(),
                    Some(a) => format!("{:?}", a.get_status()).to_lowercase(),
                    None => "restarting".into(),
                },
            })
            .collect()
    }

    /// Kills up to `count` running workers chosen at random, never the worker running the
    /// calling request; returns their names. Their supervisor restarts them.
    pub fn kill_random(&self, count: usize) -> Vec<String> {
        let me = super::worker::CURRENT.try_with(|id| *id).ok();
        let victims: Vec<(String, ActorRef<WorkerMsg>)> = {
            let slots = self.slots.read().expect("pool lock");
            slots
                .iter()
                .filter_map(|s| {
                    s.actor
                        .clone()
                        .filter(|a| a.get_status() == ActorStatus::Running)
                        .filter(|a| Some(a.get_id()) != me)
                        .map(|a| (s.name.clone(), a))
                })
                .choose_multiple(&mut rand::rng(), count)
        };
        victims
            .into_iter()
            .map(|(name, actor)| {
                actor.kill();
                name
            })
            .collect()
    }

    /// Runs `req` on one of this node's workers (round robin over the live ones), within the
    /// request's deadline and the pool's admission limit.
    ///
    /// A request whose chain already holds this service runs on the lane instead (see
    /// [`super::lane`]): a worker of this pool is waiting on it, so it must not wait for one.
    /// So does an op that waits on a group-commit writer ([`Service::waits_on_batch`]).
    pub async fn dispatch(&self, req: Request) -> Result<Bytes, MeshError> {
        let admitted = self.admit()?;
        if self.lane_for(&req) {
            return on_lane(self.service.clone(), req, admitted).await;
        }
        let _admitted = admitted;
        let deadline = req.deadline;
        let worker = self.wait_for_worker(deadline).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        worker
            .send_message(WorkerMsg::Handle(req, Reply::Local(tx.into())))
            .map_err(|_| MeshError::unavailable("worker stopped"))?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(MeshError::unavailable("worker stopped before answering")),
            Err(_) => Err(MeshError::deadline()),
        }
    }

    /// A live worker, waiting (briefly, within the deadline) while its supervisor restarts
    /// killed ones: a request that arrives during a restart is served late, not refused.
    async fn wait_for_worker(&self, deadline: Instant) -> Result<ActorRef<WorkerMsg>, MeshError> {
        let give_up = deadline.min(Instant::now() + RESTART_GRACE);
        let mut pause = Duration::from_micros(250);
        loop {
            if let Some(w) = self.pick() {
                return Ok(w);
            }
            if Instant::now() + pause > give_up {
                return Err(MeshError::unavailable(format!(
                    "no live {} worker on this node",
                    self.name()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Runs a request that came from another node on a live worker at once, handing the
    /// worker the remote reply port: no task, no extra hop. Returns the port back when no
    /// worker is live right now (the caller then waits with [`Pool::dispatch`]), or answers
    /// `resource_exhausted` itself.
    pub fn dispatch_remote(
        &self,
        req: Request,
        port: ractor::RpcReplyPort<Vec<u8>>,
        node: Arc<str>,
    ) -> Result<(), Box<Unsent>> {
        let admitted = match self.admit() {
            Ok(a) => a,
            Err(e) => {
                let _ = port.send(wire::encode_reply(Err(e), &node));
                return Ok(());
            }
        };
        if self.lane_for(&req) {
            let service = self.service.clone();
            tokio::spawn(async move {
                let answer = on_lane(service, req, admitted).await;
                let _ = port.send(wire::encode_reply(answer, &node));
            });
            return Ok(());
        }
        let Some(worker) = self.pick() else {
            return Err(Box::new((req, port)));
        };
        let msg = WorkerMsg::Handle(req, Reply::Remote(Remote::new(port, node, admitted)));
        if let Err(ractor::MessagingErr::SendErr(WorkerMsg::Handle(req, Reply::Remote(r)))) =
            worker.send_message(msg)
        {
            return Err(Box::new((req, r.into_port())));
        }
        Ok(())
    }

    /// Whether `req` runs on the lane: a call into this service from a request it is
    /// already serving (counted in [`crate::metrics::LANE_CALLS`]), or an op that waits on
    /// a group-commit writer.
    fn lane_for(&self, req: &Request) -> bool {
        if lane::is_reentrant(&req.chain, self.name()) {
            metrics::counter!(crate::metrics::LANE_CALLS, "service" => self.name()).increment(1);
            return true;
        }
        self.service.waits_on_batch(&req.op)
    }

    fn admit(&self) -> Result<Admitted, MeshError> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(crate::metrics::REJECTED, "service" => self.name()).increment(1);
            return Err(MeshError::new(
                Code::ResourceExhausted,
                format!(
                    "{} is at capacity ({} in flight)",
                    self.name(),
                    self.capacity
                ),
            ));
        }
        Ok(Admitted::new(self.in_flight.clone()))
    }

    fn pick(&self) -> Option<ActorRef<WorkerMsg>> {
        let slots = self.slots.read().expect("pool lock");
        let n = slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &slots[(start + i) % n])
            .find(|s| is_running(&s.actor))
            .and_then(|s| s.actor.clone())
    }
}

/// Runs an admitted request of `service` on its lane: a task of its own, no worker; the
/// deadline still applies.
async fn on_lane(
    service: Arc<dyn Service>,
    mut req: Request,
    admitted: Admitted,
) -> Result<Bytes, MeshError> {
    let deadline = req.deadline;
    let outer = std::mem::take(&mut req.chain);
    let task = tokio::spawn(async move {
        let _admitted = admitted;
        let name = service.name();
        let trace = req.trace;
        let op = super::trace::exporting().then(|| req.op.clone());
        let handling = lane::scope(outer, name, service.handle(req));
        match trace {
            Some(t) => {
                let span = || format!("{name}.{}", op.unwrap_or_default());
                super::trace::serve(t, span, handling).await
            }
            None => handling.await,
        }
    });
    match tokio::time::timeout_at(deadline.into(), task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(MeshError::internal(format!("lane task failed: {e}"))),
        Err(_) => Err(MeshError::deadline()),
    }
}

fn is_running(actor: &Option<ActorRef<WorkerMsg>>) -> bool {
    actor
        .as_ref()
        .is_some_and(|a| a.get_status() == ActorStatus::Running)
}

/// A remote call handed back by [`Pool::dispatch_remote`]: the request and its reply port.
pub type Unsent = (Request, ractor::RpcReplyPort<Vec<u8>>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::BoxFuture;

    struct Nop;

    impl Service for Nop {
        fn name(&self) -> &'static str {
            "t-nop"
        }

        fn handle(&self, _: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
            Box::pin(async { Ok(Bytes::new()) })
        }
    }

    #[test]
    fn a_remote_call_dropped_unanswered_answers_unavailable_and_frees_its_slot() {
        let pool = Pool::new(Arc::new(Nop), 1, 4);
        let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let reply = Remote::new(tx.into(), "n1".into(), pool.admit().unwrap());
        assert_eq!(pool.in_flight(), 1);
        drop(reply);
        let bytes = rx.blocking_recv().expect("the caller hears back");
        let err = super::super::wire::decode_reply(&bytes).unwrap_err();
        assert_eq!(err.code, Code::Unavailable);
        assert_eq!(pool.in_flight(), 0);
    }
}
