//! The per-task actor: one local-only ractor actor per task running on this node.
//!
//! It claims the task (a versioned write that sets `status = running`, `node = <this node>`
//! and raises `activations`, the claim epoch), then runs one step per timer tick: it waits
//! `delay_ms` (a ractor timer, no busy loop, no blocking), commits the step (versioned write
//! plus a `task_steps` row in one transaction) and publishes the step's event. The final step
//! completes the task.
//!
//! A lost versioned write means someone else wrote the row: a cancel made elsewhere, or a
//! claim by another actor (the task moved to another node while this one still ran it). The
//! actor reloads the row and stops unless it is still running under its own claim, so a task
//! never completes twice and no step is ever committed twice.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tokio::task::JoinHandle;

use super::metrics;
use super::store::{self, Status, TaskRow};
use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::mesh::trace::{self, Trace};
use crate::mesh::{Code, MeshError};
use crate::store::time::now_ms;
use crate::store::Store;

/// Attempts at a claim or a cancel that keep losing races before giving up.
const WRITE_ATTEMPTS: usize = 5;
/// Longest pause before retrying a step the store refused.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What every task actor of a node shares.
pub struct Ctx {
    /// The store.
    pub store: Store,
    /// Where task events go.
    pub publisher: Publisher,
    /// This node's name (written as the task's `node`).
    pub node: Arc<str>,
    /// Claims a task may have before it is failed instead of claimed again.
    pub max_activations: u32,
    /// The order of this node's task writes.
    pub writes: Writes,
}

/// Steps on PostgreSQL write at most this many at a time, leaving connections of the pool
/// (16) free for cancels, reads and the other services.
const PG_STEP_WRITERS: usize = 12;

/// The order of a node's task writes.
///
/// Left alone, thousands of actors would take every pooled connection (PostgreSQL) or collide
/// on the database's write lock and sleep in SQLite's busy handler, and a cancel would wait
/// behind them or keep missing the moment the lock is free. Instead step commits and claims
/// queue in order on `steps` (one at a time on SQLite, a few on PostgreSQL); a cancel skips
/// that queue. On SQLite both also take `lock`, so a cancel waits for at most the one step
/// being written (the locks are fair, first come first served).
pub struct Writes {
    steps: tokio::sync::Semaphore,
    lock: Option<tokio::sync::Mutex<()>>,
}

/// A turn to write, held until dropped.
pub struct Turn<'a> {
    _step: Option<tokio::sync::SemaphorePermit<'a>>,
    _lock: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Ctx {
    /// The event of `kind` about `row`, staged for the write that makes it true.
    pub fn staged(&self, kind: &str, row: &TaskRow) -> Result<Staged, MeshError> {
        let mut staged = Staged::new(Some(&self.publisher));
        staged.add(event(kind, row))?;
        Ok(staged)
    }

    /// The shared context of a node's task actors.
    pub fn new(store: Store, publisher: Publisher, node: Arc<str>, max_activations: u32) -> Self {
        let sqlite = store.backend() == crate::store::Backend::Sqlite;
        let writes = Writes {
            steps: tokio::sync::Semaphore::new(if sqlite { 1 } else { PG_STEP_WRITERS }),
            lock: sqlite.then(|| tokio::sync::Mutex::new(())),
        };
        Self {
            store,
            publisher,
            node,
            max_activations,
            writes,
        }
    }

    /// A turn to write a step or a claim, behind the steps queued before it.
    pub async fn step_turn(&self) -> Turn<'_> {
        let step = self.writes.steps.acquire().await.ok();
        let lock = match &self.writes.lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        Turn {
            _step: step,
            _lock: lock,
        }
    }

    /// A turn to write a cancel: past the queued steps.
    pub async fn urgent_turn(&self) -> Turn<'_> {
        let lock = match &self.writes.lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        Turn {
            _step: None,
            _lock: lock,
        }
    }
}

/// An answer of a task actor: the task as written, or why not.
pub type Answer = Result<TaskRow, MeshError>;

/// Messages of a task actor.
#[derive(RactorMessage)]
pub enum TaskMsg {
    /// Claim the task for this node and start its steps; answers the task as claimed (or as
    /// found, when it is finished already). Sent once, by the host, right after spawning,
    /// with the trace of the request that asked for the run, if any: every turn of the
    /// actor, its later steps included, runs inside it, so their log lines carry that
    /// request's `trace_id`.
    Begin(Option<RpcReplyPort<Answer>>, Option<Trace>),
    /// Do the next step. Sent by the actor's own timer.
    Step,
    /// The task was cancelled in the store: drop the pending step and stop. Forwarded by the
    /// host right after the cancel was written (a step in flight meanwhile loses its
    /// versioned write, so nothing is committed after the cancel either way).
    Cancelled,
    /// Answer the task as this actor last wrote it. Forwarded by the host when asked to run
    /// a task that runs here already.
    Get(RpcReplyPort<Answer>),
    /// The task's home moved to another node (membership changed): stop so the new home
    /// claims it, unless it is not resumable (those finish where they started). Sent by the
    /// host.
    Release,
}

/// The actor.
pub struct Runner {
    ctx: Arc<Ctx>,
}

impl Runner {
    /// An actor over the node's shared context.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

/// State of a task actor.
pub struct RunnerState {
    id: String,
    /// The row as this actor last wrote or read it; `None` before `Begin`.
    row: Option<TaskRow>,
    /// The pending step tick.
    timer: Option<JoinHandle<Result<(), MessagingErr<TaskMsg>>>>,
    /// Consecutive store failures of the current step.
    failures: u32,
    /// The trace of the request that began the task here (see [`TaskMsg::Begin`]).
    trace: Option<Trace>,
}

impl Actor for Runner {
    type Msg = TaskMsg;
    type State = RunnerState;
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<TaskMsg>,
        id: String,
    ) -> Result<RunnerState, ActorProcessingErr> {
        Ok(RunnerState {
            id,
            row: None,
            timer: None,
            failures: 0,
            trace: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<TaskMsg>,
        msg: TaskMsg,
        st: &mut RunnerState,
    ) -> Result<(), ActorProcessingErr> {
        if let TaskMsg::Begin(_, t) = &msg {
            st.trace = *t;
        }
        let began_in = st.trace;
        match began_in {
            Some(t) => trace::scope(t, self.turn(myself, msg, st)).await,
            None => self.turn(myself, msg, st).await,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TaskMsg>,
        st: &mut RunnerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = st.timer.take() {
            timer.abort();
        }
        Ok(())
    }
}

impl Runner {
    /// One turn of the actor: `msg` handled.
    async fn turn(&self, myself: ActorRef<TaskMsg>, msg: TaskMsg, st: &mut RunnerState) {
        match msg {
            TaskMsg::Begin(reply, _) => {
                let result = self.begin(&st.id).await;
                let running = matches!(&result, Ok(row) if row.status == Status::Running);
                if let Ok(row) = &result {
                    st.row = Some(row.clone());
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                if running {
                    let delay = st.row.as_ref().map_or(0, |r| r.delay_ms);
                    schedule(&myself, st, Duration::from_millis(delay as u64));
                } else {
                    myself.stop(None);
                }
            }
            TaskMsg::Step => {
                st.timer = None;
                if !self.step(&myself, st).await {
                    myself.stop(None);
                }
            }
            TaskMsg::Cancelled => {
                if let Some(timer) = st.timer.take() {
                    timer.abort();
                }
                myself.stop(Some("cancelled".into()));
            }
            TaskMsg::Get(reply) => {
                let _ = reply.send(
                    st.row
                        .clone()
                        .ok_or_else(|| MeshError::unavailable("task is starting")),
                );
            }
            TaskMsg::Release => {
                if st.row.as_ref().is_none_or(|r| r.resumable) {
                    tracing::debug!(task = %st.id, "task home moved, releasing it");
                    myself.stop(Some("home moved".into()));
                }
            }
        }
    }
}

fn schedule(myself: &ActorRef<TaskMsg>, st: &mut RunnerState, after: Duration) {
    if let Some(old) = st.timer.take() {
        old.abort();
    }
    st.timer = Some(myself.send_after(after, || TaskMsg::Step));
}

impl Runner {
    /// Claims task `id` for this node; fails it instead when it may not run again.
    async fn begin(&self, id: &str) -> Answer {
        let ctx = &self.ctx;
        for _ in 0..WRITE_ATTEMPTS {
            let row = store::get(&ctx.store, id)
                .await?
                .ok_or_else(|| MeshError::not_found("task not found"))?;
            if row.status.is_finished() {
                return Ok(row);
            }
            let lost = row.status == Status::Running && row.step > 0;
            if lost && !row.resumable {
                let reason = format!(
                    "task is not resumable and its runner on node {} was lost after step {} of {}",
                    row.node, row.step, row.steps
                );
                match self.finish(&row, Status::Failed, reason).await? {
                    Some(failed) => return Ok(failed),
                    None => continue,
                }
            }
            if row.activations >= i64::from(ctx.max_activations) {
                let reason = format!(
                    "gave up after {} activations: the nodes running it kept failing",
                    row.activations
                );
                match self.finish(&row, Status::Failed, reason).await? {
                    Some(failed) => return Ok(failed),
                    None => continue,
                }
            }
            let now = now_ms();
            let mut next = row.clone();
            next.status = Status::Running;
            next.node = ctx.node.to_string();
            next.activations += 1;
            if next.started_at == 0 {
                next.started_at = now;
            }
            next.updated_at = now.max(row.updated_at);
            next.version += 1;
            let turn = ctx.step_turn().await;
            let claimed = store::update(ctx.store.writer(), &next, row.version).await?;
            drop(turn);
            if claimed {
                if row.status == Status::Running {
                    ::metrics::counter!(metrics::TAKEOVERS).increment(1);
                    tracing::info!(task = %id, from = %row.node, step = row.step, "took over a running task");
                }
                return Ok(next);
            }
        }
        Err(MeshError::unavailable("task is being claimed concurrently"))
    }

    /// Runs the next step; `false` when the actor should stop.
    async fn step(&self, myself: &ActorRef<TaskMsg>, st: &mut RunnerState) -> bool {
        let ctx = &self.ctx;
        let Some(row) = st.row.clone() else {
            return false;
        };
        if row.status != Status::Running {
            return false;
        }
        let k = row.step + 1;
        if row.fail_at_step == k {
            let reason = format!("step {k} of {} failed (fail_at_step)", row.steps);
            return match self.finish(&row, Status::Failed, reason).await {
                Ok(Some(failed)) => {
                    st.row = Some(failed);
                    false
                }
                Ok(None) => self.reload(st).await,
                Err(e) => self.retry(myself, st, &e),
            };
        }
        let now = now_ms();
        let mut next = row.clone();
        next.step = k;
        next.updated_at = now.max(row.updated_at);
        next.version += 1;
        let done = k >= row.steps;
        if done {
            next.status = Status::Completed;
            next.finished_at = next.updated_at;
        }
        let kind = if done {
            kinds::TASK_COMPLETED
        } else {
            kinds::TASK_PROGRESS
        };
        let committed = match ctx.staged(kind, &next) {
            Ok(staged) => {
                let turn = ctx.step_turn().await;
                let committed = store::commit_step(&ctx.store, &next, row.version, staged).await;
                drop(turn);
                committed
            }
            Err(e) => Err(e),
        };
        match committed {
            Ok(true) => {
                st.failures = 0;
                ::metrics::counter!(metrics::STEPS).increment(1);
                let delay = Duration::from_millis(next.delay_ms as u64);
                st.row = Some(next);
                if done {
                    ::metrics::counter!(metrics::FINISHED, "status" => "completed").increment(1);
                    return false;
                }
                schedule(myself, st, delay);
                true
            }
            Ok(false) => {
                let go_on = self.reload(st).await;
                if go_on {
                    let delay = st.row.as_ref().map_or(0, |r| r.delay_ms);
                    schedule(myself, st, Duration::from_millis(delay as u64));
                }
                go_on
            }
            Err(e) => self.retry(myself, st, &e),
        }
    }

    /// After a lost write: reloads the row; `true` when it still runs under this actor's
    /// claim (the step is then redone from the stored state).
    async fn reload(&self, st: &mut RunnerState) -> bool {
        let mine = st.row.as_ref().map_or(-1, |r| r.activations);
        match store::get(&self.ctx.store, &st.id).await {
            Ok(Some(fresh)) => {
                let go_on = fresh.status == Status::Running
                    && fresh.activations == mine
                    && fresh.node == *self.ctx.node;
                if !go_on {
                    tracing::info!(task = %st.id, status = fresh.status.as_str(), node = %fresh.node, "task changed elsewhere, this actor stops");
                }
                st.row = Some(fresh);
                go_on
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(task = %st.id, error = %e, "cannot reload task, stopping; the scan will resume it");
                false
            }
        }
    }

    /// Schedules the step again after a store failure, with a growing pause.
    fn retry(&self, myself: &ActorRef<TaskMsg>, st: &mut RunnerState, e: &MeshError) -> bool {
        st.failures += 1;
        let pause = Duration::from_millis(50u64 << st.failures.min(6)).min(RETRY_MAX);
        tracing::warn!(task = %st.id, error = %e, ?pause, "task step not written, retrying");
        schedule(myself, st, pause);
        true
    }

    /// Ends `row` with `status` (`failed`; versioned); `None` when another writer got there
    /// first.
    async fn finish(
        &self,
        row: &TaskRow,
        status: Status,
        error: String,
    ) -> Result<Option<TaskRow>, MeshError> {
        let now = now_ms();
        let mut next = row.clone();
        next.status = status;
        next.error = error;
        next.updated_at = now.max(row.updated_at);
        next.finished_at = next.updated_at;
        next.version += 1;
        let staged = self.ctx.staged(kinds::TASK_FAILED, &next)?;
        let mut tx = self.ctx.store.begin().await?;
        if !store::update(&mut *tx, &next, row.version).await? {
            return Ok(None);
        }
        staged.commit(tx).await?;
        ::metrics::counter!(metrics::FINISHED, "status" => status.as_str()).increment(1);
        Ok(Some(next))
    }
}

/// The event of `kind` about `row`.
pub fn event(kind: &str, row: &TaskRow) -> NewEvent {
    let mut payload = serde_json::json!({
        "task_id": row.id,
        "name": row.name,
        "status": row.status.as_str(),
        "step": row.step,
        "steps": row.steps,
        "percent": row.percent(),
        "node": row.node,
    });
    if !row.error.is_empty() {
        payload["error"] = row.error.clone().into();
    }
    NewEvent::new(kind, Some(&row.owner_id), payload)
}

/// The 409 of cancelling a finished task.
pub fn already_finished(row: &TaskRow) -> MeshError {
    MeshError::new(
        Code::FailedPrecondition,
        format!("task is already {}", row.status.as_str()),
    )
}
