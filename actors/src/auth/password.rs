//! Password hashing (PBKDF2-HMAC-SHA256, PHC strings) off the actor threads.
//!
//! Hashes are stored as PHC strings (`$pbkdf2-sha256$i=<iterations>,l=32$<salt>$<hash>`), so
//! each one carries its own salt and iteration count: raising the configured count later
//! keeps old hashes verifiable, and [`Hasher::needs_rehash`] tells when to upgrade one after a
//! successful login. All the cryptography (PBKDF2, PHC parsing, constant-time comparison)
//! comes from the `pbkdf2` and `password-hash` crates.
//!
//! Hashing is deliberately slow, so the async entry points ([`Hasher::hash`],
//! [`Hasher::verify`]) run it on tokio's blocking pool, never on the async worker threads,
//! and at most two computations per core at a time: a burst of logins queues instead of
//! starting hundreds of blocking threads that share the cores with the rest of the node (and
//! with each other) in time slices.

use std::sync::{Arc, LazyLock};

use password_hash::rand_core::{OsRng, RngCore};
use password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};

use crate::mesh::MeshError;

/// Length in bytes of the derived key stored in a hash (the `l` parameter).
pub const OUTPUT_LEN: usize = 32;

/// The password fed to the dummy hash; never matches anything that matters, since
/// [`Hasher::verify`] returns false for unknown users whatever the outcome.
const DUMMY_PASSWORD: &str = "troupe: no such user";

/// Admission to the blocking pool for hashing, shared by every [`Hasher`] of the process:
/// two computations per core, so a core never idles while the next queued login is handed
/// to a blocking thread (with one per core, login throughput dropped by about 8 %).
static CORES: LazyLock<Arc<tokio::sync::Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(tokio::sync::Semaphore::new(2 * cores))
});

/// Runs `job` on the blocking pool once a core is free for it.
async fn on_a_core<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MeshError> {
    let permit = CORES
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| MeshError::internal("password hashing is shut down"))?;
    tokio::task::spawn_blocking(move || {
        let out = job();
        drop(permit);
        out
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing task failed");
        MeshError::internal("password hashing failed")
    })
}

/// Hashes and verifies passwords with a configured PBKDF2 iteration count.
#[derive(Clone, Debug)]
pub struct Hasher {
    iterations: u32,
    /// A hash made with `iterations`, verified against when the user does not exist so that
    /// "no such user" costs as much time as "wrong password".
    dummy: String,
}

impl Hasher {
    /// A hasher using `iterations` PBKDF2 rounds for new hashes (0 is treated as 1).
    ///
    /// Computes one dummy hash up front, so this takes as long as one [`Self::hash_blocking`].
    /// Panics only if the operating system's random number generator fails.
    pub fn new(iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let dummy = hash_with(iterations, DUMMY_PASSWORD)
            .expect("hashing a constant password with a fresh salt cannot fail");
        Self { iterations, dummy }
    }

    /// The iteration count used for new hashes.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Hashes `password` with a fresh random salt into a PHC string. Blocks for the whole
    /// PBKDF2 computation: use [`Self::hash`] from async code.
    pub fn hash_blocking(&self, password: &str) -> Result<String, MeshError> {
        hash_with(self.iterations, password)
    }

    /// Whether `password` matches the PHC string `phc`, whatever iteration count `phc` was
    /// made with. False for a malformed hash or one that is not `pbkdf2-sha256`. Blocks for
    /// the whole PBKDF2 computation: use [`Self::verify`] from async code.
    pub fn verify_blocking(phc: &str, password: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        if hash.algorithm != Algorithm::Pbkdf2Sha256.ident() {
            return false;
        }
        // The crate compares outputs in constant time.
        Pbkdf2.verify_password(password.as_bytes(), &hash).is_ok()
    }

    /// [`Self::hash_blocking`] on tokio's blocking pool, at most two computations per core.
    pub async fn hash(&self, password: String) -> Result<String, MeshError> {
        let iterations = self.iterations;
        on_a_core(move || hash_with(iterations, &password)).await?
    }

    /// [`Self::verify_blocking`] on tokio's blocking pool, at most two computations per core.
    ///
    /// With `phc` = `None` (no such user) this verifies against the dummy hash, so it takes
    /// as long as a wrong password, and returns false.
    pub async fn verify(&self, phc: Option<String>, password: String) -> bool {
        let (phc, known_user) = match phc {
            Some(phc) => (phc, true),
            None => (self.dummy.clone(), false),
        };
        let matches = on_a_core(move || Self::verify_blocking(&phc, &password))
            .await
            .unwrap_or(false);
        matches && known_user
    }

    /// Whether the hash `phc` should be replaced by a fresh one made with `iterations` rounds:
    /// its iteration count differs, or it is not a `pbkdf2-sha256` hash with a 32-byte output
    /// (including when it does not parse at all).
    pub fn needs_rehash(phc: &str, iterations: u32) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return true;
        };
        hash.algorithm != Algorithm::Pbkdf2Sha256.ident()
            || hash.params.get_decimal("i") != Some(iterations)
            || hash.hash.map(|h| h.len()) != Some(OUTPUT_LEN)
    }
}

/// PBKDF2-HMAC-SHA256 of `password` with `iterations` rounds and a fresh salt from the OS.
fn hash_with(iterations: u32, password: &str) -> Result<String, MeshError> {
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| {
        tracing::error!(error = %e, "os random number generator failed");
        MeshError::internal("password hashing failed")
    })?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| MeshError::internal(format!("password hashing failed: {e}")))?;
    let params = Params {
        rounds: iterations,
        output_length: OUTPUT_LEN,
    };
    Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            Some(Algorithm::Pbkdf2Sha256.ident()),
            None,
            params,
            &salt,
        )
        .map(|hash| hash.to_string())
        .map_err(|e| MeshError::internal(format!("password hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITERATIONS: u32 = 1000;

    #[test]
    fn hash_then_verify_round_trips() {
        let hasher = Hasher::new(ITERATIONS);
        let phc = hasher.hash_blocking("correct horse").unwrap();
        assert!(Hasher::verify_blocking(&phc, "correct horse"));
    }

    #[test]
    fn wrong_password_is_refused() {
        let hasher = Hasher::new(ITERATIONS);
        let phc = hasher.hash_blocking("correct horse").unwrap();
        assert!(!Hasher::verify_blocking(&phc, "correct horsf"));
        assert!(!Hasher::verify_blocking(&phc, ""));
    }

    #[test]
    fn hash_is_a_pbkdf2_sha256_phc_string_with_the_iteration_count() {
        let hasher = Hasher::new(ITERATIONS);
        assert_eq!(hasher.iterations(), ITERATIONS);
        let phc = hasher.hash_blocking("pw").unwrap();
        assert!(
            phc.starts_with(&format!("$pbkdf2-sha256$i={ITERATIONS},l=32$")),
            "{phc}"
        );
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.hash.unwrap().len(), OUTPUT_LEN);
    }

    #[test]
    fn same_password_hashes_differently_each_time() {
        let hasher = Hasher::new(ITERATIONS);
        let a = hasher.hash_blocking("pw").unwrap();
        let b = hasher.hash_blocking("pw").unwrap();
        assert_ne!(a, b);
        assert!(Hasher::verify_blocking(&a, "pw"));
        assert!(Hasher::verify_blocking(&b, "pw"));
    }

    #[test]
    fn hashes_made_with_another_iteration_count_still_verify() {
        let old = Hasher::new(500).hash_blocking("pw").unwrap();
        let _current = Hasher::new(ITERATIONS);
        assert!(Hasher::verify_blocking(&old, "pw"));
    }

    #[test]
    fn malformed_or_foreign_hashes_are_refused() {
        let phc = Hasher::new(ITERATIONS).hash_blocking("pw").unwrap();
        let truncated = &phc[..phc.len() - 4];
        let sha512 = phc.replacen("pbkdf2-sha256", "pbkdf2-sha512", 1);
        for bad in [
            "",
            "pw",
            "$pbkdf2-sha256$",
            "$pbkdf2-sha256$i=1000,l=32$$",
            "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            truncated,
            &sha512,
        ] {
            assert!(!Hasher::verify_blocking(bad, "pw"), "{bad:?}");
        }
    }

    #[test]
    fn needs_rehash_compares_the_stored_iteration_count() {
        let phc = Hasher::new(ITERATIONS).hash_blocking("pw").unwrap();
        assert!(!Hasher::needs_rehash(&phc, ITERATIONS));
        assert!(Hasher::needs_rehash(&phc, ITERATIONS + 1));
        assert!(Hasher::needs_rehash(&phc, 600_000));
        assert!(Hasher::needs_rehash("garbage", ITERATIONS));
    }

    #[tokio::test]
    async fn async_hash_and_verify_work() {
        let hasher = Hasher::new(ITERATIONS);
        let phc = hasher.hash("pw".to_string()).await.unwrap();
        assert!(phc.starts_with(&format!("$pbkdf2-sha256$i={ITERATIONS},")));
        assert!(hasher.verify(Some(phc.clone()), "pw".to_string()).await);
        assert!(!hasher.verify(Some(phc), "nope".to_string()).await);
    }

    #[tokio::test]
    async fn unknown_user_is_refused_even_with_the_dummy_password() {
        let hasher = Hasher::new(ITERATIONS);
        // The dummy hash is real, so the work is done...
        assert!(Hasher::verify_blocking(&hasher.dummy, DUMMY_PASSWORD));
        // ...but an unknown user never gets in.
        assert!(!hasher.verify(None, DUMMY_PASSWORD.to_string()).await);
        assert!(!hasher.verify(None, "pw".to_string()).await);
    }
}
