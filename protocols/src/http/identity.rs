//! Shared pieces of the identity routes: the JSON form of a user, paging, client details.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::users::messages::User;

/// The public JSON of a user (never a password hash).
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "full_name": u.full_name,
        "roles": u.roles,
        "confirmed": u.confirmed,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

/// `?page=&per_page=` or `?limit=&offset=`.
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    /// 1-based page.
    pub page: Option<u32>,
    /// Items per page.
    pub per_page: Option<u32>,
    /// Alternative: items per page.
    pub limit: Option<u32>,
    /// Alternative: items to skip.
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
