//! Shared pieces of the identity routes: the API forms of a user ([`UserView`] for the
//! user themselves, [`DirectoryUser`] for everyone else), paging, ids, role names, client
//! details.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use troupe_actors::users::messages::User;

use super::auth::Caller;
use troupe_actors::users::validate::PER_PAGE_MAX;
use utoipa::ToSchema;

/// A role name: 1 to 32 lowercase letters, digits, `_` or `-`.
#[derive(Debug, ToSchema)]
#[schema(pattern = r"^[a-z0-9_-]{1,32}$")]
pub struct RoleName(pub String);

/// A user as the API shows it (never a password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Opaque id (a UUID).
    pub id: String,
    /// Login name, as registered (case preserved; unique ignoring case).
    pub username: String,
    /// Email address, as registered (unique ignoring case).
    pub email: String,
    /// Display name; may be empty.
    pub full_name: String,
    /// Roles, e.g. `["user"]` or `["user", "admin"]`.
    pub roles: Vec<String>,
    /// Whether the email address is confirmed.
    pub confirmed: bool,
    /// Creation time, RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            full_name: u.full_name,
            roles: u.roles,
            confirmed: u.confirmed,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user as the directory shows them (`GET /users`, `/users/search`, `GET /users/{id}`):
/// the email only to that user and to admins; to anyone else the `email` field is absent.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryUser {
    /// Opaque id (a UUID).
    pub id: String,
    /// Login name, as registered (case preserved; unique ignoring case).
    pub username: String,
    /// Email address (unique ignoring case). Present only when the caller is this user or
    /// an admin; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name; may be empty.
    pub full_name: String,
    /// Roles, e.g. `["user"]` or `["user", "admin"]`.
    pub roles: Vec<String>,
    /// Whether the email address is confirmed.
    pub confirmed: bool,
    /// Creation time, RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

impl DirectoryUser {
    /// `u` as `caller` may see them: with the email for the user themselves or an admin.
    pub fn seen_by(u: User, caller: &Caller) -> Self {
        let email = (caller.user_id == u.id || caller.is_admin()).then_some(u.email);
        Self {
            id: u.id,
            username: u.username,
            email,
            full_name: u.full_name,
            roles: u.roles,
            confirmed: u.confirmed,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A page of a list, as every paged list answers: the page's `items`, the `total` in all
/// pages, and the page it is (`page`, 1-based, of `per_page` items).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in all pages.
    pub total: u64,
    /// This page (1-based).
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
}

/// A whole list, unpaged: its `items`, and `total`, their count.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// How many items `items` holds.
    pub total: usize,
    /// Every item.
    pub items: Vec<T>,
}

impl<T> From<Vec<T>> for List<T> {
    fn from(items: Vec<T>) -> Self {
        Self {
            total: items.len(),
            items,
        }
    }
}

/// Highest page number a list serves.
pub const PAGE_MAX: u32 = 1_000_000;

/// Largest `offset`: with `limit` 1 it is the last row of page [`PAGE_MAX`].
pub const OFFSET_MAX: u32 = PAGE_MAX - 1;

/// `?page=&per_page=` or `?limit=&offset=`, in bounds (a value out of them is a 400).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(try_from = "RawPaging")]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1-based page, at most 1000000; 0 or absent means 1.
    #[param(minimum = 0, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Items per page, at most 100; 0 or absent means 20.
    #[param(minimum = 0, maximum = 100)]
    pub per_page: Option<u32>,
    /// Alternative: items per page, at most 100; above 0, `page` and `per_page` are
    /// ignored.
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<u32>,
    /// With `limit`: items to skip, at most 999999, rounded down to a whole number of
    /// pages.
    #[param(minimum = 0, maximum = 999_999)]
    pub offset: Option<u32>,
}

/// [`Paging`] as it arrives, before its bounds are checked.
#[derive(Deserialize)]
struct RawPaging {
    page: Option<u32>,
    per_page: Option<u32>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl TryFrom<RawPaging> for Paging {
    type Error = String;

    fn try_from(p: RawPaging) -> Result<Self, String> {
        check_paging(p.page, p.per_page, p.limit, p.offset, PER_PAGE_MAX)?;
        Ok(Paging {
            page: p.page,
            per_page: p.per_page,
            limit: p.limit,
            offset: p.offset,
        })
    }
}

/// Checks the bounds of a page request: `page` at most [`PAGE_MAX`], `per_page` and
/// `limit` at most `per_page_max`, `offset` at most [`OFFSET_MAX`].
pub fn check_paging(
    page: Option<u32>,
    per_page: Option<u32>,
    limit: Option<u32>,
    offset: Option<u32>,
    per_page_max: u32,
) -> Result<(), String> {
    if page.is_some_and(|p| p > PAGE_MAX) {
        return Err(format!("page must be at most {PAGE_MAX}"));
    }
    for (name, v) in [("per_page", per_page), ("limit", limit)] {
        if v.is_some_and(|v| v > per_page_max) {
            return Err(format!("{name} must be between 1 and {per_page_max}"));
        }
    }
    if offset.is_some_and(|o| o > OFFSET_MAX) {
        return Err(format!("offset must be at most {OFFSET_MAX}"));
    }
    Ok(())
}

impl Paging {
    /// `(page, per_page)`, 0 meaning "the service default".
    pub fn resolve(&self) -> (u32, u32) {
        match (self.limit, self.offset) {
            (Some(limit), offset) if limit > 0 => (offset.unwrap_or(0) / limit + 1, limit),
            _ => (self.page.unwrap_or(0), self.per_page.unwrap_or(0)),
        }
    }
}

/// The client's address as seen by this node, and its user agent.
pub fn client(addr: ConnectInfo<SocketAddr>, headers: &HeaderMap) -> (String, String) {
    let ip = addr.0.ip().to_string();
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    (ip, ua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_offset_becomes_a_page() {
        let p = Paging {
            limit: Some(10),
            offset: Some(20),
            ..Paging::default()
        };
        assert_eq!(p.resolve(), (3, 10));
        let p = Paging {
            page: Some(2),
            per_page: Some(5),
            ..Paging::default()
        };
        assert_eq!(p.resolve(), (2, 5));
        assert_eq!(Paging::default().resolve(), (0, 0));
    }
}
