//! The `todos` service's prost messages, written by hand (no `.proto`, no build step).

/// A todo as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Todo {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The owner.
    #[prost(string, tag = "2")]
    pub owner_id: String,
    /// Title.
    #[prost(string, tag = "3")]
    pub title: String,
    /// Description; may be empty.
    #[prost(string, tag = "4")]
    pub description: String,
    /// `pending`, `in_progress` or `done`.
    #[prost(string, tag = "5")]
    pub status: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "6")]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "7")]
    pub updated_at: String,
    /// Row version, raised by every change.
    #[prost(uint64, tag = "8")]
    pub version: u64,
}

/// `create`: a todo for the caller. Field presence matters (a missing title is an error of
/// its own), so every field is optional on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTodo {
    /// Required.
    #[prost(string, optional, tag = "1")]
    pub title: Option<String>,
    /// Default empty.
    #[prost(string, optional, tag = "2")]
    pub description: Option<String>,
    /// Default `pending`.
    #[prost(string, optional, tag = "3")]
    pub status: Option<String>,
}

/// `update`: changes the given fields of one todo.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateTodo {
    /// Todo id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// New title.
    #[prost(string, optional, tag = "2")]
    pub title: Option<String>,
    /// New description.
    #[prost(string, optional, tag = "3")]
    pub description: Option<String>,
    /// New status.
    #[prost(string, optional, tag = "4")]
    pub status: Option<String>,
    /// When given, the change applies only if the todo is still at this version.
    #[prost(uint64, optional, tag = "5")]
    pub version: Option<u64>,
}

/// `get`, `delete`: one todo by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TodoRef {
    /// Todo id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `list`: one page of todos.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTodos {
    /// Only this status (empty: any).
    #[prost(string, tag = "1")]
    pub status: String,
    /// Only this owner (admins only; empty: the caller's own, or every todo for an admin).
    #[prost(string, tag = "2")]
    pub owner_id: String,
    /// 1-based page (0: 1).
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// Page size (0: 20; at most 100).
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// One page of todos.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TodoPage {
    /// The todos, newest first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Todo>,
    /// Matching todos in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}
