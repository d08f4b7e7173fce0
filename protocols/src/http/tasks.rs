//! Tasks (`/api/v1/eventstreammonitor/tasks*`): create, list, read and cancel step-wise jobs.
//! Each runs in an actor on its home node; reads come from the store, so progress is visible
//! from every node. A user sees only their own tasks unless admin.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::mesh::{Call, Target};
use troupe_actors::tasks::{self, messages as tm, ops};

use super::auth::Caller;
use super::identity::Paging;
use super::json::Json as Body;
use super::object::Object;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// The JSON of a task.
pub fn task_json(t: &tm::Task) -> Value {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let percent = f64::from((t.step * 1000).checked_div(t.steps).unwrap_or(0)) / 10.0;
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "user_id": t.owner_id,
        "payload": serde_json::from_str::<Value>(&t.payload).unwrap_or(Value::Null),
        "status": t.status,
        "progress": {"step": t.step, "steps": t.steps, "percent": percent},
        "steps": t.steps,
        "delay_ms": t.delay_ms,
        "resumable": t.resumable,
        "fail_at_step": (t.fail_at_step > 0).then_some(t.fail_at_step),
        "error": opt(&t.error),
        "node": opt(&t.node),
        "activations": t.activations,
        "version": t.version,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "started_at": opt(&t.started_at),
        "finished_at": opt(&t.finished_at),
    });
    if !t.history.is_empty() {
        v["history"] = t
            .history
            .iter()
            .map(|h| json!({"step": h.step, "node": h.node, "activation": h.activation, "done_at": h.done_at}))
            .collect();
    }
    v
}

/// `POST /api/v1/eventstreammonitor/tasks`: `{"name", "payload"?, "steps"?, "delay_ms"?,
/// "resumable"?, "fail_at_step"?}`; 201 with the task.
pub async fn create(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Call::new(tasks::NAME, ops::CREATE)
            .request_id(rid)
            .caller(caller.to_proto())
            .payload(&c),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(task_json(&t))))
}

/// Filters of `GET /api/v1/eventstreammonitor/tasks`.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this owner (admins).
    pub user_id: Option<String>,
}

/// `GET /api/v1/eventstreammonitor/tasks?status=&page=&per_page=`: the caller's tasks (an
/// admin's: everyone's, or `user_id`'s), newest first.
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: tm::TaskPage = ask(
        &state,
        Call::new(tasks::NAME, ops::LIST)
            .request_id(rid)
            .caller(caller.to_proto())
            .payload(&tm::ListTasks {
                status: filter.status.unwrap_or_default(),
                owner_id: filter.user_id.unwrap_or_default(),
                page,
                per_page,
            }),
    )
    .await?;
    Ok(Json(json!({
        "items": p.items.iter().map(task_json).collect::<Vec<_>>(),
        "total": p.total,
        "page": p.page,
        "per_page": p.per_page,
    })))
}

/// `GET /api/v1/eventstreammonitor/tasks/:id`: status, progress and the step log.
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t: tm::Task = ask(
        &state,
        Call::new(tasks::NAME, ops::GET)
            .request_id(rid)
            .caller(caller.to_proto())
            .payload(&tm::TaskRef { id, history: true }),
    )
    .await?;
    Ok(Json(task_json(&t)))
}

/// `PUT /api/v1/eventstreammonitor/tasks/:id/cancel`: 200 with the cancelled task; 409 when
/// it has finished already.
pub async fn cancel(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t: tm::Task = ask(
        &state,
        Call::new(tasks::NAME, ops::CANCEL)
            .request_id(rid)
            .caller(caller.to_proto())
            .to(Target::Entity(id.clone()))
            .payload(&tm::TaskRef { id, history: false }),
    )
    .await?;
    Ok(Json(task_json(&t)))
}
