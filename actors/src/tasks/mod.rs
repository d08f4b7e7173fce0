//! The `tasks` service: step-wise background jobs, one actor per running task.
//!
//! # Ops
//! | op | kind | target | request | reply |
//! |---|---|---|---|---|
//! | `create` | effectful | any | [`CreateTask`] | [`Task`] |
//! | `get` | idempotent | any | [`TaskRef`] | [`Task`] |
//! | `list` | idempotent | any | [`ListTasks`] | [`TaskPage`] |
//! | `cancel` | effectful | entity (task id) | [`TaskRef`] | [`Task`] |
//!
//! The companion service `task_runs` ([`Runs`]) has one op, `run` (idempotent, entity-routed,
//! [`TaskRef`] -> [`Task`]): run the task on this node, its home.
//!
//! Every op of `tasks` needs a caller. A task is visible to its owner and to admins only; anyone else
//! is told `not_found`. Cancelling a finished task is `failed_precondition` (HTTP 409).
//!
//! # How a task runs
//! `create` stores the task as `pending` (that write is the acknowledgement), publishes
//! `task.created` and asks the task's *home* node (rendezvous hashing of the id over the
//! routable members, [`crate::mesh::placement::home`]) to `run` it. There the node's
//! [`host::Host`] spawns a [`runner::Runner`] actor that claims the task and runs its steps,
//! writing the row after each step (`task.progress`, and `task.completed` at the end).
//! `get` and `list` read the store, so progress is visible from every node.
//!
//! Nothing depends on the `run` call arriving: every node watches the routable members and
//! scans the unfinished tasks when they change and every `scan_interval` (the first time and
//! every tenth time also those it claimed itself), and runs each one
//! whose home it is and that no actor runs here ([`orphans`]). So a task whose node died
//! resumes on the survivor that is its new home, from its last committed step; a task that
//! is not `resumable` is failed with the reason instead. When a node joins, the tasks homed
//! on it move there (their old actors are released). Every write is versioned, so duplicate
//! activations during churn never commit a step twice nor complete a task twice.
//!
//! # Layout
//! - this file: the [`Service`] impl, the membership watcher and the orphan scan;
//! - [`host`]: the per-node actor owning the task actors;
//! - [`runner`]: the per-task actor;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL;
//! - [`validate`]: field checks.

pub mod host;
pub mod messages;
pub mod runner;
pub mod store;
pub mod validate;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, ActorStatus};

pub use messages::*;

use self::host::{Host, HostMsg};
use self::runner::Ctx;
use self::store::{Status, TaskRow, Unfinished};
use crate::common::{self, quota, validate::Fields, Who};
use crate::events::{kinds, Publisher};
use crate::mesh::placement;
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo, Request, Service, Target};
use crate::store::time::now_ms;
use crate::store::Store;
use ops::{Cmd, RunCmd};

/// Service name.
pub const NAME: &str = "tasks";
/// Name of the companion service that only runs tasks ([`Runs`]).
pub const RUNS: &str = "task_runs";

/// The ops of `tasks` and of its companion `task_runs`, declared once.
pub mod ops {
    use super::messages::{CreateTask, ListTasks, Task, TaskPage, TaskRef};

    crate::ops! {
        /// An op of `tasks`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create a task for the caller.
            Create = CREATE("create", effectful): CreateTask => Task,
            /// One task.
            Get = GET("get", idempotent): TaskRef => Task,
            /// A page of tasks.
            List = LIST("list", idempotent): ListTasks => TaskPage,
            /// Cancel a task (entity-routed).
            Cancel = CANCEL("cancel", effectful): TaskRef => Task,
        }
    }

    crate::ops! {
        /// An op of `task_runs`, decoded at the service's edge.
        pub enum RunCmd for super::RUNS {
            /// Run a task on this node, its home (entity-routed; internal; served by
            /// [`super::Runs`]).
            Run = RUN("run", idempotent): TaskRef => Task,
        }
    }
}

/// Names of the metrics this service records.
pub mod metrics {
    /// Task actors alive on this node.
    pub const RUNNING: &str = "troupe_tasks_running";
    /// Steps committed on this node.
    pub const STEPS: &str = "troupe_task_steps_total";
    /// Tasks finished on this node, by status.
    pub const FINISHED: &str = "troupe_tasks_finished_total";
    /// Running tasks this node took over from another node.
    pub const TAKEOVERS: &str = "troupe_task_takeovers_total";

    /// Describes them for `/metrics`.
    pub fn describe() {
        ::metrics::describe_gauge!(RUNNING, "task actors alive on this node");
        ::metrics::describe_counter!(STEPS, "task steps committed on this node");
        ::metrics::describe_counter!(FINISHED, "tasks finished on this node, by status");
        ::metrics::describe_counter!(
            TAKEOVERS,
            "running tasks this node took over from another node"
        );
    }
}

/// The per-user quota on active tasks (`[quotas] tasks_active_per_user`).
pub const QUOTA: &str = "tasks_active_per_user";

/// Settings of the service.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often every node scans for unfinished tasks it should run.
    pub scan_interval: Duration,
    /// Claims a task may have before it is failed instead of claimed again.
    pub max_activations: u32,
    /// Tasks pending or running one user may have (`[quotas] tasks_active_per_user`).
    pub max_active_per_user: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            scan_interval: Duration::from_secs(2),
            max_activations: 5,
            max_active_per_user: 100,
        }
    }
}

/// The service.
pub struct Tasks {
    info: Arc<NodeInfo>,
    ctx: Arc<Ctx>,
    host: Mutex<ActorRef<HostMsg>>,
    settings: Settings,
}

impl Tasks {
    /// Starts the node's task host, the membership watcher and the periodic orphan scan.
    pub async fn start(
        info: Arc<NodeInfo>,
        store: Store,
        publisher: Publisher,
        settings: Settings,
    ) -> anyhow::Result<Arc<Self>> {
        metrics::describe();
        let ctx = Arc::new(Ctx::new(
            store,
            publisher,
            info.node.clone(),
            settings.max_activations,
        ));
        let (host, _) = Actor::spawn(None, Host::new(ctx.clone()), ()).await?;
        let me = Arc::new(Self {
            info,
            ctx,
            host: Mutex::new(host),
            settings,
        });
        tokio::spawn(watch(Arc::downgrade(&me)));
        let weak = Arc::downgrade(&me);
        me.info.list_hosted_with(
            "task",
            Arc::new(move || -> crate::mesh::BoxFuture<'static, Vec<String>> {
                let weak = weak.clone();
                Box::pin(async move {
                    let Some(me) = weak.upgrade() else {
                        return Vec::new();
                    };
                    let Ok(host) = me.host().await else {
                        return Vec::new();
                    };
                    ractor::call!(host, HostMsg::Running).unwrap_or_default()
                })
            }),
        );
        Ok(me)
    }

    /// The host, respawned if it died (the scan then resumes its tasks).
    async fn host(&self) -> Result<ActorRef<HostMsg>, MeshError> {
        let current = self.host.lock().expect("host lock").clone();
        if current.get_status() == ActorStatus::Running {
            return Ok(current);
        }
        let (fresh, _) = Actor::spawn(None, Host::new(self.ctx.clone()), ())
            .await
            .map_err(|e| MeshError::unavailable(format!("task host restart failed: {e}")))?;
        tracing::warn!("task host was down, restarted it");
        *self.host.lock().expect("host lock") = fresh.clone();
        Ok(fresh)
    }

    /// `create`: stores the task as pending, then has its home node run it.
    pub async fn create(&self, who: &Who, req: &Request, c: CreateTask) -> Result<Task, MeshError> {
        let steps = c.steps.unwrap_or(validate::STEPS_DEFAULT);
        let delay_ms = c.delay_ms.unwrap_or(validate::DELAY_DEFAULT_MS);
        let mut fields = Fields::new();
        fields.check("name", validate::name(c.name.as_deref()));
        fields.check("payload", validate::payload(&c.payload));
        fields.check("steps", validate::steps(steps));
        fields.check("delay_ms", validate::delay_ms(delay_ms));
        if let Some(k) = c.fail_at_step {
            fields.check("fail_at_step", validate::fail_at_step(k, steps));
        }
        fields.finish()?;
        let now = now_ms();
        let row = TaskRow {
            id: uuid::Uuid::new_v4().to_string(),
            owner_id: who.user_id.clone(),
            name: c.name.unwrap_or_default(),
            payload: if c.payload.is_empty() {
                "null".into()
            } else {
                c.payload
            },
            status: Status::Pending,
            step: 0,
            steps,
            delay_ms,
            fail_at_step: c.fail_at_step.unwrap_or(0),
            resumable: c.resumable.unwrap_or(true),
            error: String::new(),
            node: String::new(),
            activations: 0,
            created_at: now,
            updated_at: now,
            started_at: 0,
            finished_at: 0,
            version: 1,
        };
        let limit = self.settings.max_active_per_user;
        let staged = self.ctx.staged(kinds::TASK_CREATED, &row)?;
        let mut tx = self.ctx.store.begin().await?;
        // The owner's other creates wait here, so each counts this one (see `common::quota`).
        quota::hold(&mut tx, self.ctx.store.backend(), QUOTA, &row.owner_id).await?;
        if !store::insert(&mut *tx, &row, limit).await? {
            return Err(crate::auth::limits::over_quota(
                QUOTA,
                u64::from(limit),
                false,
            ));
        }
        staged.commit(tx).await?;
        match self.run_on_home(&row.id, req).await {
            Ok(running) => Ok(running),
            Err(e) => {
                // Stored, so acknowledged: the scan of its home node starts it.
                tracing::warn!(task = %row.id, error = %e, "task not started at once; the scan will start it");
                Ok(row.to_task(Vec::new()))
            }
        }
    }

    /// Asks the task's home node to run it (this node when there is no mesh, in tests).
    async fn run_on_home(&self, id: &str, req: &Request) -> Result<Task, MeshError> {
        let router = match self.info.router() {
            Ok(r) if r.home_of(id).is_some_and(|h| h != *self.info.node) => r,
            // Homed here (or no mesh, in tests): no hop through a worker pool.
            _ => return Ok(self.run_here(id, req.deadline).await?.to_task(Vec::new())),
        };
        let remaining = req.deadline.saturating_duration_since(Instant::now());
        let call = ops::RUN
            .call(TaskRef {
                id: id.to_string(),
                history: false,
            })
            .to(Target::Entity(id.to_string()))
            .request_id(req.request_id.clone())
            .timeout(remaining);
        router.call(call).await
    }

    /// `run`: runs the task on this node.
    async fn run_here(&self, id: &str, deadline: Instant) -> Result<TaskRow, MeshError> {
        if let Ok(router) = self.info.router() {
            router.ownership().check()?;
        }
        let host = self.host().await?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let id = id.to_string();
        match host
            .call(
                |reply| HostMsg::Run {
                    id,
                    reply: Some(reply),
                    trace: crate::mesh::trace::current(),
                },
                Some(timeout),
            )
            .await
        {
            Ok(CallResult::Success(answer)) => answer,
            Ok(CallResult::Timeout) => Err(MeshError::deadline()),
            Ok(CallResult::SenderError) => Err(MeshError::unavailable("task actor stopped")),
            Err(e) => Err(MeshError::unavailable(format!(
                "task host unreachable: {e}"
            ))),
        }
    }

    /// `get`: one task, for its owner or an admin.
    pub async fn get(&self, who: &Who, r: &TaskRef) -> Result<Task, MeshError> {
        let row = self.visible(who, &r.id).await?;
        let history = if r.history {
            store::history(&self.ctx.store, &row.id).await?
        } else {
            Vec::new()
        };
        Ok(row.to_task(history))
    }

    async fn visible(&self, who: &Who, id: &str) -> Result<TaskRow, MeshError> {
        common::validate::id("id", id)?;
        match store::get(&self.ctx.store, id).await? {
            Some(row) if who.may_see(&row.owner_id) => Ok(row),
            _ => Err(MeshError::not_found("task not found")),
        }
    }

    /// `list`: the caller's tasks (an admin: everyone's, or one owner's), newest first.
    pub async fn list(&self, who: &Who, l: &ListTasks) -> Result<TaskPage, MeshError> {
        let status = if l.status.is_empty() {
            None
        } else {
            let mut fields = Fields::new();
            let parsed = fields.take("status", parse_status(&l.status));
            fields.finish()?;
            parsed
        };
        let owner = match (who.admin, l.owner_id.as_str()) {
            (true, "") => None,
            (true, owner) => Some(owner),
            (false, owner) if owner.is_empty() || owner == who.user_id => {
                Some(who.user_id.as_str())
            }
            (false, _) => {
                return Err(MeshError::new(
                    Code::PermissionDenied,
                    "only an admin may list other users' tasks",
                ))
            }
        };
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) = store::list(&self.ctx.store, owner, status, limit, offset).await?;
        Ok(TaskPage {
            items: rows.iter().map(|r| r.to_task(Vec::new())).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `cancel`: a versioned write of `cancelled` (so an actor running the task anywhere
    /// loses its next step write and stops), then the actor here, the task's home, is told
    /// to stop at once. The actor never delays the answer, even when it is busy committing.
    pub async fn cancel(&self, who: &Who, r: &TaskRef) -> Result<Task, MeshError> {
        let row = self.cancel_in_store(who, &r.id).await?;
        if let Ok(host) = self.host().await {
            let _ = host.cast(HostMsg::Cancelled { id: r.id.clone() });
        }
        Ok(row.to_task(Vec::new()))
    }

    async fn cancel_in_store(&self, who: &Who, id: &str) -> Result<TaskRow, MeshError> {
        for _ in 0..5 {
            let row = self.visible(who, id).await?;
            if row.status.is_finished() {
                return Err(runner::already_finished(&row));
            }
            let now = now_ms();
            let mut next = row.clone();
            next.status = Status::Cancelled;
            next.updated_at = now.max(row.updated_at);
            next.finished_at = next.updated_at;
            next.version += 1;
            let staged = self.ctx.staged(kinds::TASK_CANCELLED, &next)?;
            let turn = self.ctx.urgent_turn().await;
            let mut tx = self.ctx.store.begin().await?;
            let written = store::update(&mut *tx, &next, row.version).await?;
            if written {
                staged.commit(tx).await?;
            }
            drop(turn);
            if written {
                ::metrics::counter!(metrics::FINISHED, "status" => "cancelled").increment(1);
                return Ok(next);
            }
        }
        Err(MeshError::unavailable("task is being changed concurrently"))
    }

    /// Runs every unfinished task whose home is this node and that no actor runs here. A
    /// `light` scan skips the tasks this node claimed last (those only go missing when this
    /// node restarted, which a full scan at start covers, or when their actor gave up on
    /// the store, which the next full scan covers): it stays cheap on a node running
    /// thousands of tasks.
    pub async fn scan(&self, light: bool) -> Result<usize, MeshError> {
        let router = self.info.router()?;
        if !router.ownership().is_owner() {
            return Ok(0);
        }
        let members = router.placement();
        let host = self.host().await?;
        let running: HashSet<String> = match host
            .call(HostMsg::Running, Some(Duration::from_secs(5)))
            .await
        {
            Ok(CallResult::Success(ids)) => ids.into_iter().collect(),
            _ => return Err(MeshError::unavailable("task host did not answer")),
        };
        let except = light.then_some(&*self.info.node);
        let rows = store::unfinished(&self.ctx.store, except).await?;
        let ids = orphans(&rows, &members, &self.info.node, &running);
        let n = ids.len();
        for id in ids {
            let _ = host.cast(HostMsg::Run {
                id,
                reply: None,
                trace: None,
            });
        }
        if n > 0 {
            tracing::info!(
                tasks = n,
                "scan found unfinished tasks homed here, running them"
            );
        }
        Ok(n)
    }
}

/// The tasks of `rows` this node (`me`, among `members`) should run now: those homed here
/// that no actor runs here, except a non-resumable task still running on another live
/// member (it finishes where it started).
pub fn orphans(
    rows: &[Unfinished],
    members: &[String],
    me: &str,
    running: &HashSet<String>,
) -> Vec<String> {
    rows.iter()
        .filter(|r| !running.contains(&r.id))
        .filter(|r| placement::home(&r.id, members).is_some_and(|h| h == me))
        .filter(|r| {
            let elsewhere_alive = r.status == Status::Running
                && !r.node.is_empty()
                && r.node != me
                && members.contains(&r.node);
            r.resumable || !elsewhere_alive
        })
        .map(|r| r.id.clone())
        .collect()
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    })
}

/// Every how many periodic scans one is full (see [`Tasks::scan`]).
const FULL_SCAN_EVERY: u64 = 10;

/// Watches the placement members and this node's ownership: on every change, releases the tasks whose home moved (all of them when fenced) and
/// scans for tasks to run; scans every `scan_interval` besides.
async fn watch(me: Weak<Tasks>) {
    let (mut placement, every) = loop {
        let Some(t) = me.upgrade() else { return };
        if let Ok(r) = t.info.router() {
            break (r.watch_owned_placement(), t.settings.scan_interval);
        }
        drop(t);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        // A placement change (every task actor here lets go when fenced), or the timer.
        let moved = tokio::select! {
            c = placement.changed() => match c {
                Some(list) => Some(list),
                None => return,
            },
            _ = tick.tick() => None,
        };
        let changed = moved.is_some();
        let Some(t) = me.upgrade() else { return };
        if let Some(list) = moved {
            if let Ok(host) = t.host().await {
                let _ = host.cast(HostMsg::Rebalance { members: list });
            }
        }
        // Full scans on membership changes, at start and every FULL_SCAN_EVERY ticks; light
        // ones otherwise.
        let light = !changed && !ticks.is_multiple_of(FULL_SCAN_EVERY);
        ticks += 1;
        if let Err(e) = t.scan(light).await {
            tracing::warn!(error = %e, "task scan failed");
        }
    }
}

impl Service for Tasks {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Ops mostly wait (on the store, the task actors, the task's home node): more workers.
    fn workers(&self, default: usize) -> usize {
        default * 4
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let cmd = Cmd::parse(&req)?;
            let who = Who::of(req.caller.as_ref())?;
            match cmd {
                Cmd::Create(c) => ops::CREATE.reply(self.create(&who, &req, c).await),
                Cmd::Get(r) => ops::GET.reply(self.get(&who, &r).await),
                Cmd::List(l) => ops::LIST.reply(self.list(&who, &l).await),
                Cmd::Cancel(r) => ops::CANCEL.reply(self.cancel(&who, &r).await),
            }
        })
    }
}

/// The companion service `task_runs`: the one op `run`, which `create` calls on the task's
/// home node. It has a worker pool of its own, so a `create` waiting for it never waits for
/// a worker of the pool it holds one of (which deadlocks under load).
pub struct Runs(Arc<Tasks>);

impl Runs {
    /// The `run` op of `tasks`.
    pub fn new(tasks: Arc<Tasks>) -> Arc<Self> {
        Arc::new(Self(tasks))
    }

    /// `run`: runs the task on this node and answers it as it is once its actor runs.
    async fn run(&self, r: TaskRef, req: &Request) -> Result<Task, MeshError> {
        common::validate::id("id", &r.id)?;
        let row = self.0.run_here(&r.id, req.deadline).await?;
        Ok(row.to_task(Vec::new()))
    }
}

impl Service for Runs {
    fn name(&self) -> &'static str {
        RUNS
    }

    fn workers(&self, default: usize) -> usize {
        default * 4
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match RunCmd::parse(&req)? {
                RunCmd::Run(r) => ops::RUN.reply(self.run(r, &req).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
