//! Emailed one-time codes (registration confirmation, password reset): table
//! `one_time_codes`, one live code per user and purpose.
//!
//! A code is six digits, kept only as a SHA-256 digest bound to the user and purpose. It is
//! redeemed by one conditional UPDATE, so two nodes racing with the same code cannot both
//! win; it stops working once used, once expired, or after [`Settings::max_failures`]
//! wrong guesses. Issuing a new code replaces the old one.

use std::time::Duration;

use rand::Rng as _;
use sha2::{Digest, Sha256};

use crate::mesh::MeshError;
use crate::store::time::now_ms;
use crate::store::{db_error, Store};

/// What a code is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms a registration's email address.
    Registration,
    /// Allows setting a new password.
    PasswordReset,
}

impl Purpose {
    /// The name stored in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

/// Lifetimes and limits of codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a registration code works.
    pub registration_ttl: Duration,
    /// How long a password reset code works.
    pub reset_ttl: Duration,
    /// Wrong guesses after which a code stops working.
    pub max_failures: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registration_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(15 * 60),
            max_failures: 5,
        }
    }
}

impl Settings {
    /// The lifetime of a code for `purpose`.
    pub fn ttl(&self, purpose: Purpose) -> Duration {
        match purpose {
            Purpose::Registration => self.registration_ttl,
            Purpose::PasswordReset => self.reset_ttl,
        }
    }
}

/// The one answer to a code that does not work, whatever the reason.
pub fn bad_code() -> MeshError {
    MeshError::invalid("invalid or expired code")
}

fn digest(user_id: &str, purpose: Purpose, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(user_id.as_bytes());
    h.update(b"\0");
    h.update(purpose.as_str().as_bytes());
    h.update(b"\0");
    h.update(code.trim().as_bytes());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// A fresh random six-digit code.
pub fn generate() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Issues a new code for `user_id` and `purpose` (replacing any earlier one); answers it.
pub async fn issue(
    store: &Store,
    user_id: &str,
    purpose: Purpose,
    ttl: Duration,
) -> Result<String, MeshError> {
    let code = generate();
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO one_time_codes (user_id, purpose, code_hash, expires_at, used_at, failures, created_at) \
         VALUES ($1, $2, $3, $4, 0, 0, $5) \
         ON CONFLICT (user_id, purpose) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
         used_at = 0, failures = 0, created_at = excluded.created_at",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(digest(user_id, purpose, &code))
    .bind(expires)
    .bind(now)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(code)
}

/// Spends the code: `Ok` once for the right, live code; [`bad_code`] otherwise (a wrong
/// guess counts towards the failure limit).
pub async fn redeem(
    store: &Store,
    user_id: &str,
    purpose: Purpose,
    code: &str,
    max_failures: u32,
) -> Result<(), MeshError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 32 {
        return Err(bad_code());
    }
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE one_time_codes SET used_at = $1 \
         WHERE user_id = $2 AND purpose = $3 AND code_hash = $4 AND used_at = 0 \
         AND expires_at > $5 AND failures < $6",
    )
    .bind(now)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(digest(user_id, purpose, code))
    .bind(now)
    .bind(i64::from(max_failures))
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE one_time_codes SET failures = failures + 1 \
         WHERE user_id = $1 AND purpose = $2 AND used_at = 0",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Err(bad_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        let dir = std::env::temp_dir().join(format!("troupe-codes-{}", uuid::Uuid::new_v4()));
        Store::connect(None, &dir).await.unwrap()
    }

    #[tokio::test]
    async fn a_code_works_once() {
        let store = store().await;
        let code = issue(
            &store,
            "u1",
            Purpose::PasswordReset,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(code.len(), 6);
        redeem(&store, "u1", Purpose::PasswordReset, &code, 5)
            .await
            .unwrap();
        let again = redeem(&store, "u1", Purpose::PasswordReset, &code, 5).await;
        assert_eq!(again.unwrap_err().message, "invalid or expired code");
    }

    #[tokio::test]
    async fn a_code_is_bound_to_its_user_and_purpose() {
        let store = store().await;
        let code = issue(&store, "u1", Purpose::Registration, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(redeem(&store, "u2", Purpose::Registration, &code, 5)
            .await
            .is_err());
        assert!(redeem(&store, "u1", Purpose::PasswordReset, &code, 5)
            .await
            .is_err());
        redeem(&store, "u1", Purpose::Registration, &code, 5)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_expired_code_is_refused() {
        let store = store().await;
        let code = issue(&store, "u1", Purpose::PasswordReset, Duration::ZERO)
            .await
            .unwrap();
        assert!(redeem(&store, "u1", Purpose::PasswordReset, &code, 5)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn too_many_wrong_guesses_kill_the_code() {
        let store = store().await;
        let code = issue(
            &store,
            "u1",
            Purpose::PasswordReset,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..3 {
            assert!(redeem(&store, "u1", Purpose::PasswordReset, wrong, 3)
                .await
                .is_err());
        }
        assert!(redeem(&store, "u1", Purpose::PasswordReset, &code, 3)
            .await
            .is_err());
        // A new code starts over.
        let code = issue(
            &store,
            "u1",
            Purpose::PasswordReset,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        redeem(&store, "u1", Purpose::PasswordReset, &code, 3)
            .await
            .unwrap();
    }
}
