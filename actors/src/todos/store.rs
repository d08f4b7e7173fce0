//! All SQL of the `todos` service: table `todos` (see
//! `actors/migrations/0004_tasks_todos.sql`).

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::messages::Todo;
use crate::mesh::MeshError;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// One row of `todos`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TodoRow {
    /// Id (a UUID).
    pub id: String,
    /// Owner.
    pub owner_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

const COLUMNS: &str = "id, owner_id, title, description, status, created_at, updated_at, version";

impl TodoRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            title: r.try_get("title")?,
            description: r.try_get("description")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            version: r.try_get("version")?,
        })
    }

    /// The client view.
    pub fn to_todo(&self) -> Todo {
        Todo {
            id: self.id.clone(),
            owner_id: self.owner_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            status: self.status.clone(),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}

/// Inserts a new todo.
pub async fn insert<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    t: &TodoRow,
) -> Result<(), MeshError> {
    sqlx::query(&format!(
        "INSERT INTO todos ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&t.id)
    .bind(&t.owner_id)
    .bind(&t.title)
    .bind(&t.description)
    .bind(&t.status)
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.version)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// One todo by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<TodoRow>, MeshError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM todos WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    r.as_ref()
        .map(TodoRow::from_row)
        .transpose()
        .map_err(db_error)
}

/// Writes `t` if the stored row is still at version `expected`; `false` otherwise.
pub async fn update<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    t: &TodoRow,
    expected: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "UPDATE todos SET title = $1, description = $2, status = $3, updated_at = $4, \
         version = $5 WHERE id = $6 AND version = $7",
    )
    .bind(&t.title)
    .bind(&t.description)
    .bind(&t.status)
    .bind(t.updated_at)
    .bind(t.version)
    .bind(&t.id)
    .bind(expected)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a todo if it is still at version `expected`; `false` otherwise.
pub async fn delete<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
    expected: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query("DELETE FROM todos WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(expected)
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// One page of todos, newest first, optionally of one owner and one status; with the total.
pub async fn list(
    store: &Store,
    owner: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TodoRow>, i64), MeshError> {
    let (rows, total) = crate::store::page_where_equal(
        store,
        "todos",
        COLUMNS,
        &[("owner_id", owner), ("status", status)],
        limit,
        offset,
    )
    .await?;
    let rows = rows
        .iter()
        .map(TodoRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((rows, total))
}
