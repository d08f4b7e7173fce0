//! Emailed one-time codes (registration confirmation, password reset): table
//! `one_time_codes`, one live code per user and purpose.
//!
//! A code is six digits, kept only as a SHA-256 digest bound to the user and purpose.
//! Guessing is bounded per account, not per code: an account has
//! [`Settings::max_failures`] wrong guesses per [`Settings::window`] for each purpose, and
//! asking for a new code does not give it fresh ones (it did: five guesses per re-issue).
//! At most [`Settings::max_issued`] codes are issued per window, so nobody can flood an
//! address with mail either. A guess is checked and counted by one conditional UPDATE,
//! so guesses racing on several nodes cannot get past the limit between a check and an
//! increment, and two right guesses cannot both win. A code stops working once used,
//! once expired, or once the account's guesses run out.

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
    /// Wrong guesses an account has per purpose and [`Settings::window`], across codes.
    pub max_failures: u32,
    /// Codes issued to an account per purpose and [`Settings::window`].
    pub max_issued: u32,
    /// The window both limits count in; it starts with the first code issued after the
    /// previous window ended.
    pub window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registration_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(15 * 60),
            max_failures: 5,
            max_issued: 5,
            window: Duration::from_secs(3600),
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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

/// Issues a new code for `user_id` and `purpose` (replacing any earlier one); answers it,
/// or `None` when the account had its [`Settings::max_issued`] codes in this window.
pub async fn issue<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
    purpose: Purpose,
    settings: &Settings,
) -> Result<Option<String>, MeshError> {
    let code = generate();
    let now = now_ms();
    let expires = now.saturating_add(millis(settings.ttl(purpose)));
    let window_ended = now.saturating_sub(millis(settings.window));
    // A row whose window ended starts a new one (guesses and codes counted from zero);
    // otherwise the counts carry over, and a full window refuses the code.
    let done = sqlx::query(
        "INSERT INTO one_time_codes (user_id, purpose, code_hash, expires_at, used_at, failures, \
         created_at, window_started_at, issued) VALUES ($1, $2, $3, $4, 0, 0, $5, $5, 1) \
         ON CONFLICT (user_id, purpose) DO UPDATE SET code_hash = excluded.code_hash, \
         expires_at = excluded.expires_at, used_at = 0, created_at = excluded.created_at, \
         failures = CASE WHEN one_time_codes.window_started_at <= $6 THEN 0 \
           ELSE one_time_codes.failures END, \
         issued = CASE WHEN one_time_codes.window_started_at <= $6 THEN 1 \
           ELSE one_time_codes.issued + 1 END, \
         window_started_at = CASE WHEN one_time_codes.window_started_at <= $6 \
           THEN excluded.created_at ELSE one_time_codes.window_started_at END \
         WHERE one_time_codes.window_started_at <= $6 OR one_time_codes.issued < $7",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(digest(user_id, purpose, &code))
    .bind(expires)
    .bind(now)
    .bind(window_ended)
    .bind(i64::from(settings.max_issued))
    .execute(db)
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 0 {
        metrics::counter!(REFUSED, "purpose" => purpose.as_str(), "why" => "issued").increment(1);
        return Ok(None);
    }
    Ok(Some(code))
}

/// Codes refused: `why` = `issued` (the account asked for too many in the window) or
/// `no_live_code` (a guess with no live code to check: none issued, spent, or the
/// account's guesses used up).
pub const REFUSED: &str = "troupe_codes_refused_total";

/// Spends the code: `Ok` once for the right, live code; [`bad_code`] otherwise. A wrong
/// guess spends one of the account's guesses, in the same statement that checks it.
pub async fn redeem(
    store: &Store,
    user_id: &str,
    purpose: Purpose,
    code: &str,
    settings: &Settings,
) -> Result<(), MeshError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 32 {
        return Err(bad_code());
    }
    let now = now_ms();
    // One statement checks the guess, counts it when wrong and spends the code when
    // right; the row is locked while it runs, so no guess is checked past the limit.
    let row = sqlx::query(
        "UPDATE one_time_codes SET \
         used_at = CASE WHEN code_hash = $4 AND expires_at > $5 THEN $1 ELSE 0 END, \
         failures = CASE WHEN code_hash = $4 AND expires_at > $5 THEN 0 ELSE failures + 1 END \
         WHERE user_id = $2 AND purpose = $3 AND used_at = 0 AND failures < $6 \
         RETURNING used_at",
    )
    .bind(now)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(digest(user_id, purpose, code))
    .bind(now)
    .bind(i64::from(settings.max_failures))
    .fetch_optional(store.writer())
    .await
    .map_err(db_error)?;
    let spent = match row {
        Some(r) => sqlx::Row::try_get::<i64, _>(&r, 0).map_err(db_error)? != 0,
        None => {
            metrics::counter!(REFUSED, "purpose" => purpose.as_str(), "why" => "no_live_code")
                .increment(1);
            false
        }
    };
    if spent {
        Ok(())
    } else {
        Err(bad_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_backend;

    /// A user id of its own, as the PostgreSQL run shares its tables with other tests.
    fn user() -> String {
        format!("u-{}", uuid::Uuid::new_v4())
    }

    fn settings(max_failures: u32) -> Settings {
        Settings {
            reset_ttl: Duration::from_secs(60),
            registration_ttl: Duration::from_secs(60),
            max_failures,
            ..Settings::default()
        }
    }

    async fn code(store: &Store, user: &str, purpose: Purpose, s: &Settings) -> String {
        issue(store.writer(), user, purpose, s)
            .await
            .unwrap()
            .expect("issued")
    }

    fn wrong(code: &str) -> &'static str {
        if code == "000000" {
            "111111"
        } else {
            "000000"
        }
    }

    async fn failures(store: &Store, user: &str) -> i64 {
        sqlx::query_scalar("SELECT failures FROM one_time_codes WHERE user_id = $1")
            .bind(user)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_code_works_once() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = settings(5);
            let code = code(&store, &u1, Purpose::PasswordReset, &s).await;
            assert_eq!(code.len(), 6);
            redeem(&store, &u1, Purpose::PasswordReset, &code, &s)
                .await
                .unwrap();
            let again = redeem(&store, &u1, Purpose::PasswordReset, &code, &s).await;
            assert_eq!(again.unwrap_err().message, "invalid or expired code");
        })
        .await;
    }

    #[tokio::test]
    async fn a_code_is_bound_to_its_user_and_purpose() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = settings(5);
            let code = code(&store, &u1, Purpose::Registration, &s).await;
            assert!(redeem(&store, &user(), Purpose::Registration, &code, &s)
                .await
                .is_err());
            assert!(redeem(&store, &u1, Purpose::PasswordReset, &code, &s)
                .await
                .is_err());
            redeem(&store, &u1, Purpose::Registration, &code, &s)
                .await
                .unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn an_expired_code_is_refused() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = Settings {
                reset_ttl: Duration::ZERO,
                ..settings(5)
            };
            let code = code(&store, &u1, Purpose::PasswordReset, &s).await;
            assert!(redeem(&store, &u1, Purpose::PasswordReset, &code, &s)
                .await
                .is_err());
        })
        .await;
    }

    #[tokio::test]
    async fn too_many_wrong_guesses_kill_the_code() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = settings(3);
            let code = code(&store, &u1, Purpose::PasswordReset, &s).await;
            for _ in 0..3 {
                assert!(
                    redeem(&store, &u1, Purpose::PasswordReset, wrong(&code), &s)
                        .await
                        .is_err()
                );
            }
            assert!(redeem(&store, &u1, Purpose::PasswordReset, &code, &s)
                .await
                .is_err());
        })
        .await;
    }

    /// The attack of issue 23: guess, ask for a new code, guess again. The guesses count
    /// against the account, so re-issuing gives none back within the window.
    #[tokio::test]
    async fn guesses_are_counted_across_new_codes() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = Settings {
                max_issued: 100,
                ..settings(5)
            };
            let mut evaluated_wrong = 0;
            let mut last = String::new();
            for _ in 0..8 {
                last = code(&store, &u1, Purpose::PasswordReset, &s).await;
                for _ in 0..5 {
                    let before = failures(&store, &u1).await;
                    let _ = redeem(&store, &u1, Purpose::PasswordReset, wrong(&last), &s).await;
                    evaluated_wrong += failures(&store, &u1).await - before;
                }
            }
            assert_eq!(evaluated_wrong, 5, "five guesses in all, not five per code");
            // The right code of the last issue is refused too: the account is out of guesses.
            assert!(redeem(&store, &u1, Purpose::PasswordReset, &last, &s)
                .await
                .is_err());
            // Another purpose has its own count.
            let reg = code(&store, &u1, Purpose::Registration, &s).await;
            redeem(&store, &u1, Purpose::Registration, &reg, &s)
                .await
                .unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn guesses_racing_in_parallel_stop_at_the_limit() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = settings(5);
            let code = code(&store, &u1, Purpose::PasswordReset, &s).await;
            let guesses: Vec<_> = (0..40)
                .map(|_| {
                    let (store, bad, u1) = (store.clone(), wrong(&code), u1.clone());
                    tokio::spawn(async move {
                        redeem(&store, &u1, Purpose::PasswordReset, bad, &s).await
                    })
                })
                .collect();
            for g in guesses {
                assert!(g.await.unwrap().is_err());
            }
            assert_eq!(failures(&store, &u1).await, 5);
            assert!(redeem(&store, &u1, Purpose::PasswordReset, &code, &s)
                .await
                .is_err());
        })
        .await;
    }

    #[tokio::test]
    async fn a_right_guess_gives_the_guesses_back() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = settings(3);
            let first = code(&store, &u1, Purpose::PasswordReset, &s).await;
            for _ in 0..2 {
                let _ = redeem(&store, &u1, Purpose::PasswordReset, wrong(&first), &s).await;
            }
            redeem(&store, &u1, Purpose::PasswordReset, &first, &s)
                .await
                .unwrap();
            assert_eq!(failures(&store, &u1).await, 0);
        })
        .await;
    }

    #[tokio::test]
    async fn codes_issued_per_window_are_limited_and_the_window_ends() {
        on_each_backend(|store, _| async move {
            let u1 = user();
            let s = Settings {
                max_issued: 3,
                window: Duration::from_millis(400),
                ..settings(2)
            };
            for _ in 0..3 {
                assert!(issue(store.writer(), &u1, Purpose::PasswordReset, &s)
                    .await
                    .unwrap()
                    .is_some());
            }
            assert_eq!(
                issue(store.writer(), &u1, Purpose::PasswordReset, &s)
                    .await
                    .unwrap(),
                None
            );
            let last = {
                let _ = redeem(&store, &u1, Purpose::PasswordReset, "999999x", &s).await;
                let _ = redeem(&store, &u1, Purpose::PasswordReset, "999999x", &s).await;
                failures(&store, &u1).await
            };
            assert_eq!(last, 2);
            tokio::time::sleep(Duration::from_millis(450)).await;
            // A new window: codes and guesses counted from zero.
            let fresh = code(&store, &u1, Purpose::PasswordReset, &s).await;
            assert_eq!(failures(&store, &u1).await, 0);
            redeem(&store, &u1, Purpose::PasswordReset, &fresh, &s)
                .await
                .unwrap();
        })
        .await;
    }
}
