//! The `todos` service: each user's todo list.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `create` | effectful | [`CreateTodo`] | [`Todo`] |
//! | `get` | idempotent | [`TodoRef`] | [`Todo`] |
//! | `list` | idempotent | [`ListTodos`] | [`TodoPage`] |
//! | `update` | effectful | [`UpdateTodo`] | [`Todo`] |
//! | `delete` | effectful | [`TodoRef`] | [`Todo`] (as it was) |
//!
//! Every op needs a caller. A todo is visible to its owner and to admins; anyone else is
//! told `not_found`. Only the owner changes or deletes it (an admin who is not the owner gets
//! `permission_denied`). Bad fields are `invalid_argument` "validation failed" with every bad
//! field in the details. Every change publishes `todo.created`, `todo.updated` or
//! `todo.deleted` about the owner, so notifications can tell them.
//!
//! # Layout
//! - this file: the [`Service`] impl, one method per op;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL;
//! - [`validate`]: field checks.

pub mod messages;
pub mod store;
pub mod validate;

use bytes::Bytes;

pub use messages::*;

use self::store::TodoRow;
use crate::common::{self, validate::Fields, Who};
use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service};
use crate::store::time::now_ms;
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "todos";

/// The ops of `todos`, declared once.
pub mod ops {
    use super::messages::{CreateTodo, ListTodos, Todo, TodoPage, TodoRef, UpdateTodo};

    crate::ops! {
        /// An op of `todos`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create a todo for the caller.
            Create = CREATE("create", effectful): CreateTodo => Todo,
            /// One todo.
            Get = GET("get", idempotent): TodoRef => Todo,
            /// A page of todos.
            List = LIST("list", idempotent): ListTodos => TodoPage,
            /// Change a todo.
            Update = UPDATE("update", effectful): UpdateTodo => Todo,
            /// Delete a todo; answers it as it was.
            Delete = DELETE("delete", effectful): TodoRef => Todo,
        }
    }
}

/// Read-modify-write attempts of a change that keeps losing races.
const ATTEMPTS: usize = 3;

/// The service.
pub struct Todos {
    store: Store,
    publisher: Publisher,
}

impl Todos {
    /// The service over `store`, publishing through `publisher`.
    pub fn new(store: Store, publisher: Publisher) -> Self {
        Self { store, publisher }
    }

    /// `create`.
    pub async fn create(&self, who: &Who, c: CreateTodo) -> Result<Todo, MeshError> {
        let status = c.status.unwrap_or_else(|| "pending".into());
        let description = c.description.unwrap_or_default();
        let mut fields = Fields::new();
        match &c.title {
            Some(t) => fields.check("title", validate::title(t)),
            None => fields.check("title", Err("is required".into())),
        }
        fields.check("description", validate::description(&description));
        fields.check("status", validate::status(&status));
        fields.finish()?;
        let now = now_ms();
        let row = TodoRow {
            id: uuid::Uuid::new_v4().to_string(),
            owner_id: who.user_id.clone(),
            title: c.title.unwrap_or_default(),
            description,
            status,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let staged = self.staged(kinds::TODO_CREATED, &row, None)?;
        let mut tx = self.store.begin().await?;
        store::insert(&mut *tx, &row).await?;
        staged.commit(tx).await?;
        Ok(row.to_todo())
    }

    async fn visible(&self, who: &Who, id: &str) -> Result<TodoRow, MeshError> {
        common::validate::id("id", id)?;
        match store::get(&self.store, id).await? {
            Some(row) if who.may_see(&row.owner_id) => Ok(row),
            _ => Err(MeshError::not_found("todo not found")),
        }
    }

    /// The todo, if `who` may change it.
    async fn owned(&self, who: &Who, id: &str) -> Result<TodoRow, MeshError> {
        let row = self.visible(who, id).await?;
        if row.owner_id != who.user_id {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only the owner may change a todo",
            ));
        }
        Ok(row)
    }

    /// `get`.
    pub async fn get(&self, who: &Who, r: &TodoRef) -> Result<Todo, MeshError> {
        Ok(self.visible(who, &r.id).await?.to_todo())
    }

    /// `list`: the caller's todos (an admin: everyone's, or one owner's), newest first.
    pub async fn list(&self, who: &Who, l: &ListTodos) -> Result<TodoPage, MeshError> {
        let status = if l.status.is_empty() {
            None
        } else {
            let mut fields = Fields::new();
            fields.check("status", validate::status(&l.status));
            fields.finish()?;
            Some(l.status.as_str())
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
                    "only an admin may list other users' todos",
                ))
            }
        };
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) = store::list(&self.store, owner, status, limit, offset).await?;
        Ok(TodoPage {
            items: rows.iter().map(TodoRow::to_todo).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `update`: changes the given fields; nothing given changes nothing.
    pub async fn update(&self, who: &Who, u: UpdateTodo) -> Result<Todo, MeshError> {
        common::validate::id("id", &u.id)?;
        let mut fields = Fields::new();
        if let Some(t) = &u.title {
            fields.check("title", validate::title(t));
        }
        if let Some(d) = &u.description {
            fields.check("description", validate::description(d));
        }
        if let Some(s) = &u.status {
            fields.check("status", validate::status(s));
        }
        fields.finish()?;
        for _ in 0..ATTEMPTS {
            let row = self.owned(who, &u.id).await?;
            if let Some(v) = u.version {
                if u64::try_from(row.version).ok() != Some(v) {
                    return Err(MeshError::new(
                        Code::FailedPrecondition,
                        format!("version mismatch: the todo is at version {}", row.version),
                    ));
                }
            }
            let mut next = row.clone();
            if let Some(t) = &u.title {
                next.title.clone_from(t);
            }
            if let Some(d) = &u.description {
                next.description.clone_from(d);
            }
            if let Some(s) = &u.status {
                next.status.clone_from(s);
            }
            if next == row {
                return Ok(row.to_todo());
            }
            next.updated_at = now_ms().max(row.updated_at);
            next.version += 1;
            let changed: Vec<&str> = [
                ("title", next.title != row.title),
                ("description", next.description != row.description),
                ("status", next.status != row.status),
            ]
            .into_iter()
            .filter_map(|(name, changed)| changed.then_some(name))
            .collect();
            let staged = self.staged(kinds::TODO_UPDATED, &next, Some(changed))?;
            let mut tx = self.store.begin().await?;
            if store::update(&mut *tx, &next, row.version).await? {
                staged.commit(tx).await?;
                return Ok(next.to_todo());
            }
        }
        Err(MeshError::new(
            Code::FailedPrecondition,
            "the todo is being changed concurrently, try again",
        ))
    }

    /// `delete`: answers the todo as it was.
    pub async fn delete(&self, who: &Who, r: &TodoRef) -> Result<Todo, MeshError> {
        for _ in 0..ATTEMPTS {
            let row = self.owned(who, &r.id).await?;
            let staged = self.staged(kinds::TODO_DELETED, &row, None)?;
            let mut tx = self.store.begin().await?;
            if store::delete(&mut *tx, &row.id, row.version).await? {
                staged.commit(tx).await?;
                return Ok(row.to_todo());
            }
        }
        Err(MeshError::new(
            Code::FailedPrecondition,
            "the todo is being changed concurrently, try again",
        ))
    }

    /// The event of a change to `row`, staged for the change's transaction.
    fn staged(
        &self,
        kind: &str,
        row: &TodoRow,
        changed: Option<Vec<&str>>,
    ) -> Result<Staged, MeshError> {
        let mut payload = serde_json::json!({
            "todo_id": row.id,
            "title": row.title,
            "status": row.status,
        });
        if let Some(changed) = changed {
            payload["changed"] = changed.into();
        }
        let mut staged = Staged::new(Some(&self.publisher));
        staged.add(NewEvent::new(kind, Some(&row.owner_id), payload))?;
        Ok(staged)
    }
}

impl Service for Todos {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let who = Who::of(req.caller.as_ref())?;
            match Cmd::parse(&req)? {
                Cmd::Create(c) => ops::CREATE.reply(self.create(&who, c).await),
                Cmd::Get(r) => ops::GET.reply(self.get(&who, &r).await),
                Cmd::List(l) => ops::LIST.reply(self.list(&who, &l).await),
                Cmd::Update(u) => ops::UPDATE.reply(self.update(&who, u).await),
                Cmd::Delete(r) => ops::DELETE.reply(self.delete(&who, &r).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
