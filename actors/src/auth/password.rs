//! Password hashing (argon2id by default, PBKDF2-HMAC-SHA256 still verified; PHC strings)
//! off the actor threads.
//!
//! Hashes are stored as PHC strings (`$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`
//! or `$pbkdf2-sha256$i=<iterations>,l=32$<salt>$<hash>`), so each one carries its own
//! algorithm, salt and parameters: a hash made under older settings keeps verifying, and
//! [`Hasher::needs_rehash`] tells when to replace one after a successful login (the auth
//! service then stores a fresh hash of the password just checked). All the cryptography
//! (argon2, PBKDF2, PHC parsing, constant-time comparison) comes from the `argon2`,
//! `pbkdf2` and `password-hash` crates.
//!
//! Hashing is deliberately slow, so the async entry points ([`Hasher::hash`],
//! [`Hasher::verify`]) run it on tokio's blocking pool, never on the async worker threads,
//! and at most two computations per core at a time: a burst of logins queues instead of
//! starting hundreds of blocking threads that share the cores with the rest of the node (and
//! with each other) in time slices.

use std::sync::{Arc, LazyLock};

use argon2::Argon2;
use password_hash::rand_core::{OsRng, RngCore};
use password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};

use crate::mesh::MeshError;

/// Length in bytes of the derived key stored in a hash (PBKDF2's `l`, argon2's output).
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

/// How new hashes are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// argon2id (RFC 9106) with this memory (KiB), passes and lanes. OWASP's minimum:
    /// 19,456 KiB, 2 passes, 1 lane ([`Scheme::ARGON2ID_DEFAULT`]).
    Argon2id {
        /// Memory per hash, in KiB (`m`).
        memory_kib: u32,
        /// Passes over the memory (`t`).
        iterations: u32,
        /// Lanes (`p`).
        parallelism: u32,
    },
    /// PBKDF2-HMAC-SHA256 with this many rounds.
    Pbkdf2 {
        /// Rounds (`i`).
        iterations: u32,
    },
}

impl Scheme {
    /// OWASP's recommended minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    pub const ARGON2ID_DEFAULT: Scheme = Scheme::Argon2id {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

/// Hashes and verifies passwords.
#[derive(Clone, Debug)]
pub struct Hasher {
    scheme: Scheme,
    /// A hash made with `scheme`, verified against when the user does not exist so that
    /// "no such user" costs as much time as "wrong password".
    dummy: String,
}

impl Hasher {
    /// A PBKDF2 hasher using `iterations` rounds for new hashes (0 is treated as 1).
    pub fn new(iterations: u32) -> Self {
        Self::with(Scheme::Pbkdf2 {
            iterations: iterations.max(1),
        })
        .expect("PBKDF2 takes any positive round count")
    }

    /// A hasher making new hashes with `scheme`; refuses argon2 parameters the algorithm
    /// does not accept (memory below 8 KiB per lane, no pass, no lane).
    ///
    /// Computes one dummy hash up front, so this takes as long as one [`Self::hash_blocking`].
    pub fn with(scheme: Scheme) -> Result<Self, MeshError> {
        let dummy = hash_with(scheme, DUMMY_PASSWORD)?;
        Ok(Self { scheme, dummy })
    }

    /// How new hashes are made.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Hashes `password` with a fresh random salt into a PHC string. Blocks for the whole
    /// computation: use [`Self::hash`] from async code.
    pub fn hash_blocking(&self, password: &str) -> Result<String, MeshError> {
        hash_with(self.scheme, password)
    }

    /// Whether `password` matches the PHC string `phc`, whatever parameters `phc` was made
    /// with. False for a malformed hash or one that is neither `argon2id` nor
    /// `pbkdf2-sha256`. Blocks for the whole computation: use [`Self::verify`] from async
    /// code.
    pub fn verify_blocking(phc: &str, password: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        // The crates compare outputs in constant time, with the parameters in the hash.
        if hash.algorithm == argon2::Algorithm::Argon2id.ident() {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        } else if hash.algorithm == Algorithm::Pbkdf2Sha256.ident() {
            Pbkdf2.verify_password(password.as_bytes(), &hash).is_ok()
        } else {
            false
        }
    }

    /// [`Self::hash_blocking`] on tokio's blocking pool, at most two computations per core.
    pub async fn hash(&self, password: String) -> Result<String, MeshError> {
        let scheme = self.scheme;
        on_a_core(move || hash_with(scheme, &password)).await?
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

    /// Whether the hash `phc` should be replaced by a fresh one made with this hasher's
    /// scheme: another algorithm (a PBKDF2 hash once argon2id is configured), other
    /// parameters, another output length, or a hash that does not parse at all.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return true;
        };
        let wrong_len = hash.hash.map(|h| h.len()) != Some(OUTPUT_LEN);
        match self.scheme {
            Scheme::Argon2id {
                memory_kib,
                iterations,
                parallelism,
            } => {
                hash.algorithm != argon2::Algorithm::Argon2id.ident()
                    || hash.params.get_decimal("m") != Some(memory_kib)
                    || hash.params.get_decimal("t") != Some(iterations)
                    || hash.params.get_decimal("p") != Some(parallelism)
                    || wrong_len
            }
            Scheme::Pbkdf2 { iterations } => {
                hash.algorithm != Algorithm::Pbkdf2Sha256.ident()
                    || hash.params.get_decimal("i") != Some(iterations)
                    || wrong_len
            }
        }
    }
}

fn failed(e: impl std::fmt::Display) -> MeshError {
    MeshError::internal(format!("password hashing failed: {e}"))
}

/// A hash of `password` made with `scheme` and a fresh salt from the OS.
fn hash_with(scheme: Scheme, password: &str) -> Result<String, MeshError> {
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| {
        tracing::error!(error = %e, "os random number generator failed");
        MeshError::internal("password hashing failed")
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(failed)?;
    match scheme {
        Scheme::Argon2id {
            memory_kib,
            iterations,
            parallelism,
        } => {
            let params = argon2::Params::new(memory_kib, iterations, parallelism, Some(OUTPUT_LEN))
                .map_err(|e| MeshError::invalid(format!("argon2 parameters: {e}")))?;
            Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(failed)
        }
        Scheme::Pbkdf2 { iterations } => {
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
                .map_err(failed)
        }
    }
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
        assert_eq!(
            hasher.scheme(),
            Scheme::Pbkdf2 {
                iterations: ITERATIONS
            }
        );
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
            "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            truncated,
            &sha512,
        ] {
            assert!(!Hasher::verify_blocking(bad, "pw"), "{bad:?}");
        }
    }

    #[test]
    fn needs_rehash_compares_the_stored_iteration_count() {
        let phc = Hasher::new(ITERATIONS).hash_blocking("pw").unwrap();
        assert!(!Hasher::new(ITERATIONS).needs_rehash(&phc));
        assert!(Hasher::new(ITERATIONS + 1).needs_rehash(&phc));
        assert!(Hasher::new(600_000).needs_rehash(&phc));
        assert!(Hasher::new(ITERATIONS).needs_rehash("garbage"));
    }

    /// Small argon2id parameters, so the tests run fast; the algorithm is the same.
    const CHEAP: Scheme = Scheme::Argon2id {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn argon2id_hashes_verify_and_carry_their_parameters() {
        let hasher = Hasher::with(CHEAP).unwrap();
        let phc = hasher.hash_blocking("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(Hasher::verify_blocking(&phc, "correct horse"));
        assert!(!Hasher::verify_blocking(&phc, "correct horsf"));
        assert_ne!(phc, hasher.hash_blocking("correct horse").unwrap());
        assert!(!hasher.needs_rehash(&phc));
        let more = Hasher::with(Scheme::Argon2id {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(more.needs_rehash(&phc));
        assert!(Hasher::verify_blocking(&phc, "correct horse"));
    }

    /// The upgrade path: a PBKDF2 hash still verifies under an argon2id hasher, which asks
    /// for it to be replaced; the argon2id hash it makes needs nothing more.
    #[test]
    fn pbkdf2_hashes_verify_under_argon2id_and_ask_for_a_rehash() {
        let old = Hasher::new(ITERATIONS).hash_blocking("pw").unwrap();
        let argon = Hasher::with(CHEAP).unwrap();
        assert!(Hasher::verify_blocking(&old, "pw"));
        assert!(argon.needs_rehash(&old));
        let fresh = argon.hash_blocking("pw").unwrap();
        assert!(Hasher::verify_blocking(&fresh, "pw"));
        assert!(!argon.needs_rehash(&fresh));
        assert!(Hasher::new(ITERATIONS).needs_rehash(&fresh));
    }

    #[test]
    fn argon2_parameters_the_algorithm_refuses_are_an_error() {
        let bad = Scheme::Argon2id {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Hasher::with(bad).is_err());
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
