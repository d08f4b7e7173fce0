//! What several services share.
//!
//! - [`Who`]: who makes a request, as far as owner-or-admin visibility goes (`tasks`,
//!   `todos`).
//! - [`validate`]: collecting bad fields into one answer, ids and page requests.
//! - [`quota`]: the per-user lock that makes a quota's count and write atomic (`tasks`,
//!   `images`).

pub mod quota;
pub mod validate;
mod who;

pub use who::Who;
