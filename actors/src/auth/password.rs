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
//! [`Hasher::verify`]) run it on the process's hashing threads, one per core, never on the
//! async worker threads: a burst of logins queues instead of starting hundreds of blocking
//! threads that share the cores with the rest of the node (and with each other) in time
//! slices.
//!
//! argon2id's working memory (19 MiB at the defaults) is reused from one computation to
//! the next instead of being allocated for each ([`Memory`]): the node's allocator
//! (jemalloc) hands allocations that large back to the kernel as soon as they are freed, so
//! every fresh one page-faulted all of its 4,864 pages in again, about 6 ms of CPU on top of
//! a 14 ms hash (`docs/benchmarks.md`, fifteenth session). The memory is kept only while
//! computations are running or queued, and freed when the last one ends.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use argon2::{Argon2, Block};
use password_hash::rand_core::{OsRng, RngCore};
use password_hash::{
    Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt,
    SaltString,
};
use pbkdf2::{Algorithm, Params, Pbkdf2};

use crate::mesh::MeshError;

/// Length in bytes of the derived key stored in a hash (PBKDF2's `l`, argon2's output).
pub const OUTPUT_LEN: usize = 32;

/// The password fed to the dummy hash; never matches anything that matters, since
/// [`Hasher::verify`] returns false for unknown users whatever the outcome.
const DUMMY_PASSWORD: &str = "troupe: no such user";

/// A computation for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, shared by every [`Hasher`] of the process: one per core
/// ([`slots`]), started on first use, each taking the next queued computation as soon as
/// it ends one, as the raw benchmark's threads do. Two per core (each 19 MiB, time-sliced
/// on one core's cache) cost 19.2 ms of CPU per login against 16.8 ms with one, for the
/// same 13.9 ms raw hash (`docs/benchmarks.md`, fifteenth session). Before these threads,
/// a semaphore admitted computations to tokio's blocking pool: each ended hash released a
/// permit that a tokio worker had to be scheduled to pass on before the next hash started.
static HASHERS: LazyLock<std::sync::mpsc::Sender<Job>> = LazyLock::new(|| {
    let (queue, jobs) = std::sync::mpsc::channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    for i in 0..slots() {
        let jobs = jobs.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("troupe-hash-{i}"))
            .spawn(move || loop {
                // The lock is held while waiting, not while hashing.
                let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "a password hashing thread could not start");
        }
    }
    queue
});

/// How many computations run at once through [`on_a_core`]: one per core.
fn slots() -> usize {
    static SLOTS: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    *SLOTS
}

/// Runs `job` on a hashing thread ([`HASHERS`]) once one is free for it. While it waits
/// or runs, argon2 working memory freed by other computations is kept for it
/// ([`Demand`]). A job whose caller has stopped waiting by the time a thread takes it is
/// skipped.
async fn on_a_core<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MeshError> {
    let demand = Demand::new(&MEMORY);
    let (answer, answered) = tokio::sync::oneshot::channel();
    let run: Job = Box::new(move || {
        if !answer.is_closed() {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            drop(demand);
            let _ = answer.send(out);
        }
    });
    HASHERS
        .send(run)
        .map_err(|_| MeshError::internal("password hashing is shut down"))?;
    match answered.await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(_)) | Err(_) => {
            tracing::error!("password hashing failed (the computation panicked)");
            Err(MeshError::internal("password hashing failed"))
        }
    }
}

/// argon2 working memory kept between computations, shared by every [`Hasher`] of the
/// process.
static MEMORY: Mutex<Memory> = Memory::new();

/// Freed argon2 working memory (block vectors) waiting for the next computation, and how
/// many computations are running or waiting for a core ([`Demand`]). At most as many
/// vectors are kept as computations run at once ([`slots`]), and none once `demand` is
/// back to 0: an idle node holds no hashing memory.
#[derive(Debug)]
struct Memory {
    kept: Vec<Vec<Block>>,
    demand: usize,
}

impl Memory {
    const fn new() -> Mutex<Memory> {
        Mutex::new(Memory {
            kept: Vec::new(),
            demand: 0,
        })
    }
}

fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One computation running or waiting for a core: while any exists, freed argon2 memory is
/// kept for the next; when the last ends, the kept memory is freed.
struct Demand(&'static Mutex<Memory>);

impl Demand {
    fn new(memory: &'static Mutex<Memory>) -> Self {
        lock(memory).demand += 1;
        Demand(memory)
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        let freed = {
            let mut memory = lock(self.0);
            memory.demand -= 1;
            if memory.demand == 0 {
                std::mem::take(&mut memory.kept)
            } else {
                Vec::new()
            }
        };
        // Dropped outside the lock: giving megabytes back to the kernel takes a while.
        drop(freed);
    }
}

/// Runs `f` on `count` blocks of argon2 working memory from `memory`: kept memory when
/// there is some, else a new vector, kept afterwards for the next computation while
/// another is running or waiting.
fn with_blocks<T>(
    memory: &'static Mutex<Memory>,
    count: usize,
    f: impl FnOnce(&mut [Block]) -> T,
) -> T {
    let demand = Demand::new(memory);
    let mut blocks = lock(memory).kept.pop().unwrap_or_default();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    let out = f(&mut blocks[..count]);
    {
        let mut kept = lock(memory);
        if kept.kept.len() < slots() {
            kept.kept.push(blocks);
        }
    }
    drop(demand);
    out
}

/// argon2 through the `argon2` crate, computing in reused working memory ([`with_blocks`])
/// where the crate's own `PasswordHasher` allocates it anew each time. The crate's
/// `PasswordVerifier` (parameters from the hash, constant-time comparison) works on it
/// unchanged.
struct ReusedMemory;

impl PasswordHasher for ReusedMemory {
    type Params = argon2::Params;

    /// What `argon2::Argon2::hash_password_customized` does, with the memory from
    /// [`with_blocks`].
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: argon2::Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm
            .map(argon2::Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(argon2::Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_buf = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let output_len = params
            .output_len()
            .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
        let argon = Argon2::new(algorithm, version, params.clone());
        let output = Output::init_with(output_len, |out| {
            with_blocks(&MEMORY, params.block_count(), |blocks| {
                argon.hash_password_into_with_memory(password, salt_bytes, out, blocks)
            })
            .map_err(password_hash::Error::from)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
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
            ReusedMemory
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        } else if hash.algorithm == Algorithm::Pbkdf2Sha256.ident() {
            Pbkdf2.verify_password(password.as_bytes(), &hash).is_ok()
        } else {
            false
        }
    }

    /// [`Self::hash_blocking`] on tokio's blocking pool, at most one computation per core.
    pub async fn hash(&self, password: String) -> Result<String, MeshError> {
        let scheme = self.scheme;
        on_a_core(move || hash_with(scheme, &password)).await?
    }

    /// [`Self::verify_blocking`] on tokio's blocking pool, at most one computation per core.
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
            ReusedMemory
                .hash_password_customized(
                    password.as_bytes(),
                    Some(argon2::Algorithm::Argon2id.ident()),
                    Some(argon2::Version::V0x13.into()),
                    params,
                    &salt,
                )
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

    #[tokio::test]
    async fn a_panicking_computation_fails_alone_and_the_threads_go_on() {
        let failed = on_a_core(|| -> u32 { panic!("a computation panics") }).await;
        assert_eq!(failed.unwrap_err().code, crate::mesh::Code::Internal);
        // More computations than threads: every one still answers, on a hashing thread.
        let answers = futures_util::future::join_all((0..4 * slots()).map(|i| {
            on_a_core(move || {
                let name = std::thread::current().name().map(str::to_string);
                (i, name)
            })
        }))
        .await;
        for (i, answer) in answers.into_iter().enumerate() {
            let (j, name) = answer.unwrap();
            assert_eq!(i, j);
            assert!(name.unwrap().starts_with("troupe-hash-"));
        }
    }

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

    /// Reused working memory holds the blocks of the previous computation (another
    /// password, other parameters); the hash must not depend on it.
    #[test]
    fn argon2id_in_reused_memory_computes_what_the_crate_computes() {
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let crate_hash = |password: &str, memory_kib: u32, passes: u32| {
            let params = argon2::Params::new(memory_kib, passes, 1, Some(OUTPUT_LEN)).unwrap();
            Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(password.as_bytes(), &salt)
                .unwrap()
                .to_string()
        };
        let reused = |password: &str, memory_kib: u32, passes: u32| {
            let params = argon2::Params::new(memory_kib, passes, 1, Some(OUTPUT_LEN)).unwrap();
            ReusedMemory
                .hash_password_customized(
                    password.as_bytes(),
                    Some(argon2::Algorithm::Argon2id.ident()),
                    Some(argon2::Version::V0x13.into()),
                    params,
                    &salt,
                )
                .unwrap()
                .to_string()
        };
        // Held so the memory is kept between the computations below.
        let _busy = Demand::new(&MEMORY);
        for (password, memory_kib, passes) in
            [("first", 256, 2), ("second", 128, 1), ("first", 256, 2)]
        {
            assert_eq!(
                reused(password, memory_kib, passes),
                crate_hash(password, memory_kib, passes)
            );
        }
        let phc = reused("first", 256, 2);
        assert!(Hasher::verify_blocking(&phc, "first"));
        assert!(!Hasher::verify_blocking(&phc, "second"));
        assert!(Argon2::default()
            .verify_password(b"first", &PasswordHash::new(&phc).unwrap())
            .is_ok());
    }

    #[test]
    fn argon2_memory_is_reused_while_busy_and_freed_when_idle() {
        static OWN: Mutex<Memory> = Memory::new();
        let address = |blocks: &mut [Block]| blocks.as_ptr() as usize;
        {
            let _waiting = Demand::new(&OWN);
            let first = with_blocks(&OWN, 64, address);
            assert_eq!(lock(&OWN).kept.len(), 1, "kept while another is waiting");
            // The next computation gets the same memory, not a new allocation.
            assert_eq!(with_blocks(&OWN, 64, address), first);
            // A larger one grows it.
            with_blocks(&OWN, 128, |blocks| assert_eq!(blocks.len(), 128));
            assert_eq!(lock(&OWN).kept[0].len(), 128);
        }
        let idle = lock(&OWN);
        assert_eq!((idle.demand, idle.kept.len()), (0, 0), "freed once idle");
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
