//! Todos (`/todos*`): a user's todo list. Only the owner sees a todo (an admin may read every
//! one) and only the owner changes it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::mesh::Op;
use troupe_actors::todos::{messages as dm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A todo as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TodoView {
    /// Opaque id.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Title.
    pub title: String,
    /// Description; may be empty.
    pub description: String,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Bumped by every change; give it back in `PUT` to change only this version.
    pub version: u64,
}

impl From<dm::Todo> for TodoView {
    fn from(t: dm::Todo) -> Self {
        Self {
            id: t.id,
            user_id: t.owner_id,
            title: t.title,
            description: t.description,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
        }
    }
}

/// Body of `POST /todos` (read field by field, see [`Object`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct CreateTodoBody {
    /// Title: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: String,
    /// Description: at most 2000 characters; line breaks and tabs are the only control
    /// characters allowed.
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    description: Option<String>,
    /// `pending` (default), `in_progress` or `done`.
    #[schema(pattern = "^(pending|in_progress|done)$")]
    status: Option<String>,
}

/// Body of `PUT /todos/:id` (read field by field, see [`Object`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct UpdateTodoBody {
    /// New title: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: Option<String>,
    /// New description: at most 2000 characters; line breaks and tabs are the only control
    /// characters allowed.
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    description: Option<String>,
    /// New status: `pending`, `in_progress` or `done`.
    #[schema(pattern = "^(pending|in_progress|done)$")]
    status: Option<String>,
    /// Change only if the todo is still at this version (409 otherwise).
    version: Option<u64>,
}

/// Filters of `GET /todos`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only this status: `pending`, `in_progress` or `done` (empty: any).
    #[param(pattern = "^(pending|in_progress|done)?$")]
    pub status: Option<String>,
    /// Only this owner (admins; anyone else's own id); empty: the caller's (an admin's:
    /// everyone's).
    pub user_id: Option<String>,
}

async fn one<Req: prost::Message + Default>(
    state: &AppState,
    rid: String,
    caller: &Caller,
    op: &Op<Req, dm::Todo>,
    msg: Req,
) -> Result<Json<TodoView>, ApiError> {
    let t = ask(
        state,
        op.call(msg).request_id(rid).caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(t.into()))
}

/// `GET /todos?status=&page=&per_page=`: the caller's todos (an admin's: everyone's, or
/// `user_id`'s), newest first.
#[utoipa::path(
    get,
    path = "/todos",
    tag = "todos",
    security(("bearer" = [])),
    params(Filter, Paging),
    responses((status = 200, description = "A page of the caller's todos, newest first", body = Page<TodoView>))
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<TodoView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: dm::TodoPage = ask(
        &state,
        ops::LIST
            .call(dm::ListTodos {
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
        items: p.items.into_iter().map(TodoView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `POST /todos`: `{"title", "description"?, "status"?}`; 201 with the todo.
#[utoipa::path(
    post,
    path = "/todos",
    tag = "todos",
    security(("bearer" = [])),
    request_body = CreateTodoBody,
    responses(
        (status = 201, description = "The new todo", body = TodoView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<TodoView>), ApiError> {
    let mut o = Object::new(&body)?;
    let c = dm::CreateTodo {
        title: o.string("title"),
        description: o.string("description"),
        status: o.string("status"),
    };
    o.finish()?;
    let todo = one(&state, rid, &caller, &ops::CREATE, c).await?;
    Ok((StatusCode::CREATED, todo))
}

/// `GET /todos/:id`.
#[utoipa::path(
    get,
    path = "/todos/{id}",
    tag = "todos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The todo's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The todo", body = TodoView),
        (status = 404, description = "No such todo, or not the caller's", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TodoView>, ApiError> {
    one(&state, rid, &caller, &ops::GET, dm::TodoRef { id }).await
}

/// `PUT /todos/:id`: `{"title"?, "description"?, "status"?, "version"?}`; the fields given
/// change, and with `version` only if the todo is still at it.
#[utoipa::path(
    put,
    path = "/todos/{id}",
    tag = "todos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The todo's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = UpdateTodoBody,
    responses(
        (status = 200, description = "The todo as changed", body = TodoView),
        (status = 404, description = "No such todo, or not the caller's", body = ErrorBody),
        (status = 409, description = "`version` given and the todo has moved on", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<TodoView>, ApiError> {
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
    one(&state, rid, &caller, &ops::UPDATE, u).await
}

/// `DELETE /todos/:id`: 200 with the todo as it was.
#[utoipa::path(
    delete,
    path = "/todos/{id}",
    tag = "todos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The todo's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The todo as it was", body = TodoView),
        (status = 404, description = "No such todo, or not the caller's", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TodoView>, ApiError> {
    one(&state, rid, &caller, &ops::DELETE, dm::TodoRef { id }).await
}
