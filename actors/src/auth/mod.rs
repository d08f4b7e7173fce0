//! The `auth` service: passwords, tokens, login.

pub mod password;
pub mod token;
