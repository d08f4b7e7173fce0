//! Shared pieces of the identity routes: the API form of a user ([`UserView`]), paging,
//! client details.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use troupe_actors::users::messages::User;
use utoipa::ToSchema;

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

/// `?page=&per_page=` or `?limit=&offset=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1-based page.
    pub page: Option<u32>,
    /// Items per page.
    pub per_page: Option<u32>,
    /// Alternative: items per page; above 0, `page` and `per_page` are ignored.
    pub limit: Option<u32>,
    /// With `limit`: items to skip, rounded down to a whole number of pages.
    pub offset: Option<u32>,
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
