//! `[admin]`: the admin token and the bootstrap admin user.

use std::fmt;

use super::reader::{email_like, min_chars, Reader, Section};

/// `[admin]` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// Bearer token for the admin endpoints (at least 16 characters), if any.
    pub token: Option<String>,
    /// Username of the bootstrap admin user.
    pub username: String,
    /// Email of the bootstrap admin user.
    pub email: String,
    /// Password of the bootstrap admin user; the user is created at start-up when set.
    pub password: Option<String>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        let password = self.password.as_ref().map(|_| "<redacted>");
        f.debug_struct("Admin")
            .field("token", &token)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &password)
            .finish()
    }
}

impl Reader<'_> {
    /// Reads `[admin]`.
    pub(super) fn admin(&mut self, root: &mut Section<'_>) -> Admin {
        let mut section = self.section(root, "admin");
        let token = self.get(
            &mut section,
            "token",
            Some("TROUPE_ADMIN_TOKEN"),
            &min_chars(16),
        );
        let username = self.get(
            &mut section,
            "username",
            Some("TROUPE_ADMIN_USERNAME"),
            &min_chars(3),
        );
        let email = self.get(
            &mut section,
            "email",
            Some("TROUPE_ADMIN_EMAIL"),
            &email_like,
        );
        let password = self.get(
            &mut section,
            "password",
            Some("TROUPE_ADMIN_PASSWORD"),
            &min_chars(8),
        );
        self.finish(section);
        Admin {
            token,
            username: username.unwrap_or_else(|| "admin".to_owned()),
            email: email.unwrap_or_else(|| "admin@troupe.local".to_owned()),
            password,
        }
    }
}
