//! Field validation every service uses.
//!
//! Field checks answer `Err(message)` for a bad value; a [`Fields`] collects them so a
//! request reports every bad field at once, as
//! `invalid_argument "validation failed"` with details `{"fields": {"<name>": "<message>"}}`.
//! Each service keeps its own field checks next to it (`users::validate`,
//! `tasks::validate`, `todos::validate`).

use std::collections::BTreeMap;

use crate::mesh::MeshError;

/// Longest id.
pub const ID_MAX: usize = 64;
/// Largest page size.
pub const PER_PAGE_MAX: u32 = 100;
/// Page size when none is asked for.
pub const PER_PAGE_DEFAULT: u32 = 20;

/// Field errors of one request, by field name.
#[derive(Debug, Default)]
pub struct Fields {
    errors: BTreeMap<&'static str, String>,
}

impl Fields {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field`'s error, if any.
    pub fn check(&mut self, field: &'static str, result: Result<(), String>) {
        if let Err(message) = result {
            self.errors.insert(field, message);
        }
    }

    /// Records `field`'s error, if any, and passes a valid value on.
    pub fn take<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.insert(field, message);
                None
            }
        }
    }

    /// `Ok` when no field was bad; otherwise the error listing them all.
    pub fn finish(self) -> Result<(), MeshError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(MeshError::invalid("validation failed")
            .with_details(serde_json::json!({ "fields": self.errors })))
    }
}

/// An id: 1 to 64 characters without control characters (characters, as the API's schema
/// counts them, not bytes).
pub fn id(field: &'static str, s: &str) -> Result<(), MeshError> {
    if s.is_empty() {
        return Err(MeshError::invalid(format!("{field} is required")));
    }
    if s.chars().count() > ID_MAX || s.chars().any(char::is_control) {
        return Err(MeshError::invalid(format!("{field} is malformed")));
    }
    Ok(())
}

/// Page number (0 means 1) and page size (0 means 20; at most 100).
pub fn page(page: u32, per_page: u32) -> Result<(u32, u32), MeshError> {
    let per_page = if per_page == 0 {
        PER_PAGE_DEFAULT
    } else {
        per_page
    };
    if per_page > PER_PAGE_MAX {
        return Err(MeshError::invalid(format!(
            "per_page must be between 1 and {PER_PAGE_MAX}"
        )));
    }
    Ok((page.max(1), per_page))
}

/// SQL `LIMIT` and `OFFSET` of a page checked by [`page`].
pub fn limit_offset(page: u32, per_page: u32) -> (i64, i64) {
    let limit = i64::from(per_page);
    (limit, (i64::from(page) - 1) * limit)
}
