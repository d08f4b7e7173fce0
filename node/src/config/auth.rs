//! `[auth]`: JWT signing keys, token lifetimes, password hashing and login limits.

use std::fmt;
use std::time::Duration;

use troupe_actors::auth::password::Scheme;

use super::reader::{any, at_least, between, one_of, section_key, Reader, Section};

/// `[auth]` settings.
#[derive(Clone, PartialEq)]
pub struct Auth {
    /// JWT signing keys as `(kid, secret)`; the first signs, all verify (rotation).
    pub keys: Vec<(String, String)>,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (a session lasts this long after its last refresh).
    pub refresh_ttl: Duration,
    /// A session's absolute end after its login, however often it is refreshed
    /// (`session_max_lifetime_s`, default 30 days).
    pub session_max_lifetime: Duration,
    /// How new password hashes are made (`password_hash` = `argon2id`, the default, with
    /// `argon2_memory_kib` / `argon2_iterations` / `argon2_parallelism`; or `pbkdf2` with
    /// `pbkdf2_iterations`). Hashes of either kind verify; one not of this scheme is
    /// replaced at the next login.
    pub password_scheme: troupe_actors::auth::password::Scheme,
    /// PBKDF2 iterations of new password hashes when `password_hash = "pbkdf2"`.
    pub pbkdf2_iterations: u32,
    /// Login attempts allowed per account per minute.
    pub login_per_account_per_minute: u32,
    /// Login attempts allowed per client address per minute.
    pub login_per_ip_per_minute: u32,
    /// Whether a registration under an email in use is refused as such (409) rather than
    /// answered as a new account while the owner is told (`reveal_taken_email`, default
    /// `false`: the address's registration is not told; `docs/security.md`).
    pub reveal_taken_email: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Auth")
            .field("kids", &kids)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("session_max_lifetime", &self.session_max_lifetime)
            .field("password_scheme", &self.password_scheme)
            .field("pbkdf2_iterations", &self.pbkdf2_iterations)
            .field(
                "login_per_account_per_minute",
                &self.login_per_account_per_minute,
            )
            .field("login_per_ip_per_minute", &self.login_per_ip_per_minute)
            .field("reveal_taken_email", &self.reveal_taken_email)
            .finish()
    }
}

/// Requires `<kid>:<secret>` with a 1-64 character kid and a secret of 32+ characters (the
/// secret is not echoed).
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn signing_key(value: &String) -> Result<(), String> {
    match value.split_once(':') {
        Some((kid, secret))
            if !kid.is_empty() && kid.len() <= 64 && secret.chars().count() >= 32 =>
        {
            Ok(())
        }
        Some((kid, _)) if !kid.is_empty() && kid.len() <= 64 => Err(format!(
            "the secret of key {kid:?} must be at least 32 characters"
        )),
        _ => Err("expected \"<kid>:<secret>\"".to_owned()),
    }
}

impl Reader<'_> {
    /// Reads `[auth]`: at least one key is required (in the file or `TROUPE_AUTH_KEYS`),
    /// and kids must be unique.
    pub(super) fn auth(&mut self, root: &mut Section<'_>) -> Option<Auth> {
        let mut section = self.section(root, "auth");
        let keys_given = section.has("keys") || self.env("TROUPE_AUTH_KEYS").is_some();
        let keys = self.list(&mut section, "keys", Some("TROUPE_AUTH_KEYS"), &signing_key);
        if !keys_given {
            self.error(
                section.key("keys"),
                "missing (set [auth] keys = [\"<kid>:<secret of 32+ chars>\"] or TROUPE_AUTH_KEYS)",
            );
        }
        let access = self.get(
            &mut section,
            "access_ttl_s",
            Some("TROUPE_AUTH_ACCESS_TTL_S"),
            &between(1, 86_400),
        );
        let refresh = self.get(
            &mut section,
            "refresh_ttl_s",
            Some("TROUPE_AUTH_REFRESH_TTL_S"),
            &between(1, 31_536_000),
        );
        let max_lifetime = self.get(
            &mut section,
            "session_max_lifetime_s",
            Some("TROUPE_AUTH_SESSION_MAX_LIFETIME_S"),
            &between(60, 10 * 31_536_000),
        );
        let iterations = self.get(
            &mut section,
            "pbkdf2_iterations",
            Some("TROUPE_AUTH_PBKDF2_ITERATIONS"),
            &between(1_000, 10_000_000),
        );
        let scheme_name: Option<String> = self.get(
            &mut section,
            "password_hash",
            Some("TROUPE_AUTH_PASSWORD_HASH"),
            &one_of(&["argon2id", "pbkdf2"]),
        );
        let memory = self.get(
            &mut section,
            "argon2_memory_kib",
            Some("TROUPE_AUTH_ARGON2_MEMORY_KIB"),
            &between(64u32, 4 * 1024 * 1024),
        );
        let passes = self.get(
            &mut section,
            "argon2_iterations",
            Some("TROUPE_AUTH_ARGON2_ITERATIONS"),
            &between(1u32, 100),
        );
        let lanes = self.get(
            &mut section,
            "argon2_parallelism",
            Some("TROUPE_AUTH_ARGON2_PARALLELISM"),
            &between(1u32, 16),
        );
        if let (Some(m), Some(p)) = (memory, lanes.or(Some(1))) {
            if m < 8 * p {
                self.error(
                    section.key("argon2_memory_kib"),
                    format!(
                        "must be at least 8 KiB per lane ({} for {p}), got {m}",
                        8 * p
                    ),
                );
            }
        }
        let per_account = self.get(
            &mut section,
            "login_per_account_per_minute",
            None,
            &at_least(1),
        );
        let per_ip = self.get(&mut section, "login_per_ip_per_minute", None, &at_least(1));
        let reveal_taken_email = self.get(
            &mut section,
            "reveal_taken_email",
            Some("TROUPE_AUTH_REVEAL_TAKEN_EMAIL"),
            &any,
        );
        self.finish(section);
        let mut pairs = Vec::new();
        for key in keys.unwrap_or_default() {
            let (kid, secret) = key.split_once(':').expect("checked by signing_key");
            if pairs.iter().any(|(k, _): &(String, String)| k == kid) {
                self.error(
                    section_key("auth", "keys"),
                    format!("duplicate kid {kid:?}"),
                );
            }
            pairs.push((kid.to_owned(), secret.to_owned()));
        }
        if pairs.is_empty() {
            return None;
        }
        Some(Auth {
            keys: pairs,
            access_ttl: Duration::from_secs(access.unwrap_or(900)),
            refresh_ttl: Duration::from_secs(refresh.unwrap_or(30 * 86_400)),
            session_max_lifetime: max_lifetime.map_or(
                troupe_actors::auth::token::DEFAULT_SESSION_MAX_LIFETIME,
                Duration::from_secs,
            ),
            password_scheme: match scheme_name.as_deref() {
                Some("pbkdf2") => Scheme::Pbkdf2 {
                    iterations: iterations.unwrap_or(100_000),
                },
                _ => {
                    let Scheme::Argon2id {
                        memory_kib,
                        iterations: t,
                        parallelism,
                    } = Scheme::ARGON2ID_DEFAULT
                    else {
                        unreachable!("the default is argon2id")
                    };
                    Scheme::Argon2id {
                        memory_kib: memory.unwrap_or(memory_kib),
                        iterations: passes.unwrap_or(t),
                        parallelism: lanes.unwrap_or(parallelism),
                    }
                }
            },
            pbkdf2_iterations: iterations.unwrap_or(100_000),
            login_per_account_per_minute: per_account.unwrap_or(10),
            login_per_ip_per_minute: per_ip.unwrap_or(60),
            reveal_taken_email: reveal_taken_email.unwrap_or(false),
        })
    }
}
