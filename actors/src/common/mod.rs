//! What several services share.
//!
//! - [`Who`]: who makes a request, as far as owner-or-admin visibility goes (`tasks`,
//!   `todos`).
//! - [`validate`]: collecting bad fields into one answer, ids and page requests.

pub mod validate;
mod who;

pub use who::Who;
