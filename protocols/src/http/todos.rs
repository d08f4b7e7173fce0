//! Todos (`/todos*`): a user's todo list. Only the owner sees a todo (an admin may read every
//! one) and only the owner changes it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use troupe_actors::mesh::Call;
use troupe_actors::todos::{self, messages as dm, ops};

use super::auth::Caller;
use super::identity::Paging;
use super::json::Json as Body;
use super::object::Object;
use super::request_id::Rid;
use super::tasks::Filter;
use super::{ask, ApiError, AppState};

/// The JSON of a todo.
pub fn todo_json(t: &dm::Todo) -> Value {
    json!({
        "id": t.id,
        "user_id": t.owner_id,
        "title": t.title,
        "description": t.description,
        "status": t.status,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "version": t.version,
    })
}

async fn one(
    state: &AppState,
    rid: String,
    caller: &Caller,
    op: &'static str,
    msg: &impl prost::Message,
) -> Result<Json<Value>, ApiError> {
    let t: dm::Todo = ask(
        state,
        Call::new(todos::NAME, op)
            .request_id(rid)
            .caller(caller.to_proto())
            .payload(msg),
    )
    .await?;
    Ok(Json(todo_json(&t)))
}

/// `GET /todos?status=&page=&per_page=`: the caller's todos (an admin's: everyone's, or
/// `user_id`'s), newest first.
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: dm::TodoPage = ask(
        &state,
        Call::new(todos::NAME, ops::LIST)
            .request_id(rid)
            .caller(caller.to_proto())
            .payload(&dm::ListTodos {
                status: filter.status.unwrap_or_default(),
                owner_id: filter.user_id.unwrap_or_default(),
                page,
                per_page,
            }),
    )
    .await?;
    Ok(Json(json!({
        "items": p.items.iter().map(todo_json).collect::<Vec<_>>(),
        "total": p.total,
        "page": p.page,
        "per_page": p.per_page,
    })))
}

/// `POST /todos`: `{"title", "description"?, "status"?}`; 201 with the todo.
pub async fn create(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut o = Object::new(&body)?;
    let c = dm::CreateTodo {
        title: o.string("title"),
        description: o.string("description"),
        status: o.string("status"),
    };
    o.finish()?;
    let todo = one(&state, rid, &caller, ops::CREATE, &c).await?;
    Ok((StatusCode::CREATED, todo))
}

/// `GET /todos/:id`.
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    one(&state, rid, &caller, ops::GET, &dm::TodoRef { id }).await
}

/// `PUT /todos/:id`: `{"title"?, "description"?, "status"?, "version"?}`; the fields given
/// change, and with `version` only if the todo is still at it.
pub async fn update(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut o = Object::new(&body)?;
    let u = dm::UpdateTodo {
        id,
        title: o.string("title"),
        description: o.string("description"),
        status: o.string("status"),
        version: o
            .int("version")
            .map(|v| u64::try_from(v).unwrap_or(u64::MAX)),
    };
    o.finish()?;
    one(&state, rid, &caller, ops::UPDATE, &u).await
}

/// `DELETE /todos/:id`: 200 with the todo as it was.
pub async fn delete(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    one(&state, rid, &caller, ops::DELETE, &dm::TodoRef { id }).await
}
