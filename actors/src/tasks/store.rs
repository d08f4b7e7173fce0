//! All SQL of the `tasks` service: tables `tasks` and `task_steps` (see
//! `actors/migrations/0004_tasks_todos.sql`).
//!
//! Every change of a task row is a *versioned write*: `UPDATE ... WHERE id = $ AND version =
//! $expected`, so two actors that both believe they run a task (a duplicate activation during
//! membership churn) can never both commit: the loser sees `false` and reloads. A committed
//! step also inserts its row into `task_steps` in the same transaction; that table's primary
//! key `(task_id, step)` is a second, independent guarantee that a step is done at most once.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::{StepRecord, Task};
use crate::events::Staged;
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created, no actor has claimed it yet.
    Pending,
    /// An actor runs it.
    Running,
    /// Every step is done.
    Completed,
    /// A step failed, or the task could not be resumed.
    Failed,
    /// Cancelled by its owner or an admin.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the task is over (nothing runs it any more).
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// One row of `tasks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// Id (a UUID).
    pub id: String,
    /// The user who created it.
    pub owner_id: String,
    /// Display name.
    pub name: String,
    /// The caller's payload, JSON text.
    pub payload: String,
    /// Status.
    pub status: Status,
    /// Steps done.
    pub step: i64,
    /// Steps in all.
    pub steps: i64,
    /// Pause before each step, ms.
    pub delay_ms: i64,
    /// The step that fails on purpose (0: none).
    pub fail_at_step: i64,
    /// Whether another node may continue it after its node is lost.
    pub resumable: bool,
    /// Why it failed (empty otherwise).
    pub error: String,
    /// The node whose actor claimed it last.
    pub node: String,
    /// Claims so far; the claim epoch of the actor running it.
    pub activations: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms of the first claim (0: not yet).
    pub started_at: i64,
    /// Unix ms it finished (0: not yet).
    pub finished_at: i64,
    /// Optimistic-concurrency version, raised by every write.
    pub version: i64,
}

const COLUMNS: &str = "id, owner_id, name, payload, status, step, steps, delay_ms, fail_at_step, \
                       resumable, error, node, activations, created_at, updated_at, started_at, \
                       finished_at, version";

impl TaskRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let status: String = r.try_get("status")?;
        Ok(Self {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            payload: r.try_get("payload")?,
            status: Status::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown task status {status:?}").into())
            })?,
            step: r.try_get("step")?,
            steps: r.try_get("steps")?,
            delay_ms: r.try_get("delay_ms")?,
            fail_at_step: r.try_get("fail_at_step")?,
            resumable: r.try_get::<i64, _>("resumable")? != 0,
            error: r.try_get("error")?,
            node: r.try_get("node")?,
            activations: r.try_get("activations")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            started_at: r.try_get("started_at")?,
            finished_at: r.try_get("finished_at")?,
            version: r.try_get("version")?,
        })
    }

    /// Percent done, one decimal.
    pub fn percent(&self) -> f64 {
        if self.steps <= 0 {
            return 0.0;
        }
        (self.step * 1000 / self.steps) as f64 / 10.0
    }

    /// The client view, with the step log when given.
    pub fn to_task(&self, history: Vec<StepRecord>) -> Task {
        let time = |ms: i64| {
            if ms > 0 {
                rfc3339_millis(ms)
            } else {
                String::new()
            }
        };
        Task {
            id: self.id.clone(),
            owner_id: self.owner_id.clone(),
            name: self.name.clone(),
            payload: self.payload.clone(),
            status: self.status.as_str().to_string(),
            step: u32::try_from(self.step).unwrap_or_default(),
            steps: u32::try_from(self.steps).unwrap_or_default(),
            delay_ms: u64::try_from(self.delay_ms).unwrap_or_default(),
            error: self.error.clone(),
            node: self.node.clone(),
            activations: u32::try_from(self.activations).unwrap_or_default(),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            started_at: time(self.started_at),
            finished_at: time(self.finished_at),
            version: u64::try_from(self.version).unwrap_or_default(),
            resumable: self.resumable,
            fail_at_step: u32::try_from(self.fail_at_step).unwrap_or_default(),
            history,
        }
    }
}

/// Inserts a new task (version 1) unless its owner already has `max_active` tasks pending
/// or running: the count and the insert are one statement. Whether it was inserted.
///
/// Exact on every backend when the transaction holds the owner's quota lock first
/// ([`crate::common::quota::hold`]), as `create` does.
pub async fn insert<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    t: &TaskRow,
    max_active: u32,
) -> Result<bool, MeshError> {
    let done = sqlx::query(&format!(
        "INSERT INTO tasks ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18 WHERE (SELECT COUNT(*) FROM tasks WHERE owner_id = $2 \
         AND (status = 'pending' OR status = 'running')) < $19"
    ))
    .bind(&t.id)
    .bind(&t.owner_id)
    .bind(&t.name)
    .bind(&t.payload)
    .bind(t.status.as_str())
    .bind(t.step)
    .bind(t.steps)
    .bind(t.delay_ms)
    .bind(t.fail_at_step)
    .bind(i64::from(t.resumable))
    .bind(&t.error)
    .bind(&t.node)
    .bind(t.activations)
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.started_at)
    .bind(t.finished_at)
    .bind(t.version)
    .bind(i64::from(max_active))
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// One task by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<TaskRow>, MeshError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM tasks WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    r.as_ref()
        .map(TaskRow::from_row)
        .transpose()
        .map_err(db_error)
}

const UPDATE: &str = "UPDATE tasks SET status = $1, step = $2, error = $3, node = $4, \
                      activations = $5, updated_at = $6, started_at = $7, finished_at = $8, \
                      version = $9 WHERE id = $10 AND version = $11";

fn update_query<'q>(
    t: &'q TaskRow,
    expected: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(UPDATE)
        .bind(t.status.as_str())
        .bind(t.step)
        .bind(&t.error)
        .bind(&t.node)
        .bind(t.activations)
        .bind(t.updated_at)
        .bind(t.started_at)
        .bind(t.finished_at)
        .bind(t.version)
        .bind(&t.id)
        .bind(expected)
}

/// Writes `t` if the stored row is still at version `expected`; `false` when another writer
/// got there first.
pub async fn update<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    t: &TaskRow,
    expected: i64,
) -> Result<bool, MeshError> {
    let done = update_query(t, expected)
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Commits step `t.step` (done by claim `t.activations` on `t.node`): the versioned write of
/// `t`, the step's row in `task_steps` and the step's event (`staged`), in one transaction.
/// `false` when another writer changed the task first or the step is recorded already;
/// nothing is written then.
pub async fn commit_step(
    store: &Store,
    t: &TaskRow,
    expected: i64,
    staged: Staged,
) -> Result<bool, MeshError> {
    let mut tx = store.begin().await?;
    let done = update_query(t, expected)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    if done.rows_affected() != 1 {
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    let logged = sqlx::query(
        "INSERT INTO task_steps (task_id, step, node, activation, done_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&t.id)
    .bind(t.step)
    .bind(&t.node)
    .bind(t.activations)
    .bind(t.updated_at)
    .execute(&mut *tx)
    .await;
    match logged {
        Ok(_) => {
            staged.commit(tx).await?;
            Ok(true)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            let e = db_error(e);
            if e.code == crate::mesh::Code::AlreadyExists {
                tracing::warn!(task = %t.id, step = t.step, "step already recorded, not committing it twice");
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The step log of a task, in step order.
pub async fn history(store: &Store, id: &str) -> Result<Vec<StepRecord>, MeshError> {
    let rows = sqlx::query(
        "SELECT step, node, activation, done_at FROM task_steps WHERE task_id = $1 ORDER BY step",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(StepRecord {
                step: u32::try_from(r.try_get::<i64, _>("step")?).unwrap_or_default(),
                node: r.try_get("node")?,
                activation: u32::try_from(r.try_get::<i64, _>("activation")?).unwrap_or_default(),
                done_at: rfc3339_millis(r.try_get("done_at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// One page of tasks, newest first, optionally of one owner and one status; with the total.
pub async fn list(
    store: &Store,
    owner: Option<&str>,
    status: Option<Status>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), MeshError> {
    let (rows, total) = crate::store::page_where_equal(
        store,
        "tasks",
        COLUMNS,
        &[("owner_id", owner), ("status", status.map(Status::as_str))],
        limit,
        offset,
    )
    .await?;
    let rows = rows
        .iter()
        .map(TaskRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((rows, total))
}

/// What the orphan scan needs of a task nothing may have claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Task id.
    pub id: String,
    /// Pending or running.
    pub status: Status,
    /// The node that claimed it last (empty: none).
    pub node: String,
    /// Whether it may move to another node.
    pub resumable: bool,
}

/// Every pending or running task; with `except_node`, not those last claimed by that node.
pub async fn unfinished(
    store: &Store,
    except_node: Option<&str>,
) -> Result<Vec<Unfinished>, MeshError> {
    const SQL: &str = "SELECT id, status, node, resumable FROM tasks \
                       WHERE (status = 'pending' OR status = 'running')";
    let rows = match except_node {
        None => sqlx::query(SQL).fetch_all(store.pool()).await,
        Some(node) => {
            sqlx::query(&format!("{SQL} AND node <> $1"))
                .bind(node)
                .fetch_all(store.pool())
                .await
        }
    }
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(Unfinished {
                id: r.try_get("id")?,
                status: Status::parse(&status).unwrap_or(Status::Running),
                node: r.try_get("node")?,
                resumable: r.try_get::<i64, _>("resumable")? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}
