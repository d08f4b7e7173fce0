//! Tasks (`/api/v1/eventstreammonitor/tasks*`): create, list, read and cancel step-wise jobs.
//! Each runs in an actor on its home node; reads come from the store, so progress is visible
//! from every node. A user sees only their own tasks unless admin.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::mesh::Target;
use troupe_actors::tasks::{messages as tm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A task as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    /// Opaque id (a UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The user who created it.
    pub user_id: String,
    /// The payload given at creation, any JSON; `null` when none was given.
    #[schema(value_type = Value)]
    pub payload: Value,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Steps done so far.
    pub progress: TaskProgress,
    /// Steps in all.
    pub steps: u32,
    /// Pause before each step, ms.
    pub delay_ms: u64,
    /// Whether another node may continue it after its node is lost.
    pub resumable: bool,
    /// The step that fails on purpose; `null` when none.
    pub fail_at_step: Option<u32>,
    /// Why it failed; `null` otherwise.
    pub error: Option<String>,
    /// The node that runs (or last ran) it; `null` until first claimed.
    pub node: Option<String>,
    /// How many times an actor claimed it (1 unless it moved between nodes).
    pub activations: u32,
    /// Bumped by every write.
    pub version: u64,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// RFC 3339 UTC; `null` until first claimed.
    pub started_at: Option<String>,
    /// RFC 3339 UTC; `null` until finished.
    pub finished_at: Option<String>,
    /// The step log, oldest first: only in `GET /api/v1/eventstreammonitor/tasks/{id}`,
    /// and absent while no step is done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TaskStep>,
}

/// How far a task is.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskProgress {
    /// Steps done.
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// `step` of `steps` in percent, rounded down to one decimal (0 to 100).
    pub percent: f64,
}

/// One committed step of a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskStep {
    /// Step number, from 1.
    pub step: u32,
    /// The node whose actor did it.
    pub node: String,
    /// The claim (activation) that did it.
    pub activation: u32,
    /// RFC 3339 UTC.
    pub done_at: String,
}

impl From<tm::Task> for TaskView {
    fn from(t: tm::Task) -> Self {
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let percent = f64::from((t.step * 1000).checked_div(t.steps).unwrap_or(0)) / 10.0;
        Self {
            id: t.id,
            name: t.name,
            user_id: t.owner_id,
            payload: serde_json::from_str::<Value>(&t.payload).unwrap_or(Value::Null),
            status: t.status,
            progress: TaskProgress {
                step: t.step,
                steps: t.steps,
                percent,
            },
            steps: t.steps,
            delay_ms: t.delay_ms,
            resumable: t.resumable,
            fail_at_step: (t.fail_at_step > 0).then_some(t.fail_at_step),
            error: opt(t.error),
            node: opt(t.node),
            activations: t.activations,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            started_at: opt(t.started_at),
            finished_at: opt(t.finished_at),
            history: t
                .history
                .into_iter()
                .map(|h| TaskStep {
                    step: h.step,
                    node: h.node,
                    activation: h.activation,
                    done_at: h.done_at,
                })
                .collect(),
        }
    }
}

/// Body of `POST /api/v1/eventstreammonitor/tasks` (read field by field, see [`Object`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct CreateTaskBody {
    /// Display name (required): 1 to 200 characters, not blank, without control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// Any JSON, kept with the task and shown as its `payload`; at most 16 KiB as JSON text.
    #[schema(value_type = Option<Value>)]
    payload: Option<Value>,
    /// Steps, 1 to 10000 (default 10).
    #[schema(minimum = 1, maximum = 10000)]
    steps: Option<i64>,
    /// Pause before each step, ms, 0 to 3600000 (default 100).
    #[schema(minimum = 0, maximum = 3600000)]
    delay_ms: Option<i64>,
    /// Whether another node may continue it after its node is lost (default true).
    resumable: Option<bool>,
    /// Make this step fail on purpose (to exercise `failed`): 1 to `steps`.
    #[schema(minimum = 1, maximum = 10000)]
    fail_at_step: Option<i64>,
}

/// `POST /api/v1/eventstreammonitor/tasks`: `{"name", "payload"?, "steps"?, "delay_ms"?,
/// "resumable"?, "fail_at_step"?}`; 201 with the task.
#[utoipa::path(
    post,
    path = "/api/v1/eventstreammonitor/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    request_body = CreateTaskBody,
    responses(
        (status = 201, description = "The new task", body = TaskView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let mut o = Object::new(&body)?;
    let c = tm::CreateTask {
        name: o.string("name"),
        payload: o.json_text("payload").unwrap_or_default(),
        steps: o.int("steps"),
        delay_ms: o.int("delay_ms"),
        resumable: o.bool("resumable"),
        fail_at_step: o.int("fail_at_step"),
    };
    o.finish()?;
    let t: tm::Task = ask(
        &state,
        ops::CREATE
            .call(c)
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// Filters of `GET /api/v1/eventstreammonitor/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only this status: `pending`, `running`, `completed`, `failed` or `cancelled`
    /// (empty: any).
    #[param(pattern = "^(pending|running|completed|failed|cancelled)?$")]
    pub status: Option<String>,
    /// Only this owner (admins; anyone else's own id); empty: the caller's (an admin's:
    /// everyone's).
    pub user_id: Option<String>,
}

/// `GET /api/v1/eventstreammonitor/tasks?status=&page=&per_page=`: the caller's tasks (an
/// admin's: everyone's, or `user_id`'s), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/eventstreammonitor/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    params(Filter, Paging),
    responses(
        (status = 200, description = "A page of the caller's tasks, newest first", body = Page<TaskView>),
        (status = 400, description = "Unknown `status`, or `per_page` over 100", body = ErrorBody),
        (status = 403, description = "`user_id` of another user, and the caller is not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<TaskView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: tm::TaskPage = ask(
        &state,
        ops::LIST
            .call(tm::ListTasks {
                status: filter.status.unwrap_or_default(),
                owner_id: filter.user_id.unwrap_or_default(),
                page,
                per_page,
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(TaskView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `GET /api/v1/eventstreammonitor/tasks/:id`: status, progress and the step log.
#[utoipa::path(
    get,
    path = "/api/v1/eventstreammonitor/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The task, with its step log (`history`)", body = TaskView),
        (status = 404, description = "No such task, or not the caller's", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let t: tm::Task = ask(
        &state,
        ops::GET
            .call(tm::TaskRef { id, history: true })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(t.into()))
}

/// `PUT /api/v1/eventstreammonitor/tasks/:id/cancel`: 200 with the cancelled task; 409 when
/// it has finished already.
#[utoipa::path(
    put,
    path = "/api/v1/eventstreammonitor/tasks/{id}/cancel",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The cancelled task", body = TaskView),
        (status = 404, description = "No such task, or not the caller's", body = ErrorBody),
        (status = 409, description = "The task has finished already (`completed`, `failed` or `cancelled`)", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let t: tm::Task = ask(
        &state,
        ops::CANCEL
            .call(tm::TaskRef {
                id: id.clone(),
                history: false,
            })
            .request_id(rid)
            .caller(caller.to_proto())
            .to(Target::Entity(id.clone())),
    )
    .await?;
    Ok(Json(t.into()))
}
