//! What a node does when the network splits the cluster: a split-brain resolver in the
//! spirit of Akka's, plus node leases fenced in the store.
//!
//! Gossip tells each node which members it can reach. When some members of the cluster
//! become unreachable and that set stays the same for `stable_after`, every node decides on
//! its own, from what it sees, which side of the split it is on ([`quorum::decide`]):
//!
//! - `keep-majority` (default): the side that reaches more than half of the members it knew
//!   before the split wins; on an even split, the side with the lowest node name wins.
//! - `static-quorum`: the side that reaches at least `quorum` members wins.
//!
//! **The losing side fences itself.** Its [`Ownership`] turns to *fenced*: it stops owning
//! entities (the entity hosts passivate them), tasks (the task host releases its runners and
//! scans for none) and every other single-owner state, and the router answers entity-bound
//! calls with `unavailable`. Then it gives up its node lease in the store.
//!
//! **The winning side takes over only once the loser can no longer act.** Each node holds
//! a lease row in the store ([`Leases`]), renewed every third of `lease_ttl` while it owns
//! anything. A winner *downs* an unreachable member (removes it from placement, so its
//! entities and tasks get new homes) only when that member's lease is released or expired,
//! and the downing bumps the lease's epoch, so a frozen node that wakes up later cannot
//! renew it. A node that cannot renew its own lease before it runs out (the store is
//! unreachable, or it was downed) fences itself too: its local deadline is
//! `sent + lease_ttl - margin`, measured on its own monotonic clock from the moment the
//! renewal was sent. So at no moment do two nodes both hold the right to one entity.
//!
//! Until then, the members unreachable from a node stay in its *placement* list (they still
//! own their entities): calls to those entities answer `unavailable` rather than activate a
//! second copy. Calls to stateless services go on everywhere.
//!
//! **On heal**, the loser sees every member it knew again: it takes a new lease (a new
//! epoch) and owns again; the winners see it reachable and add it back to placement, and
//! the entities homed on it move back through the usual hand-off.
//!
//! # Layout
//! - this file: [`Config`], [`Strategy`], the [`Ownership`] gate and the [`Leases`] trait;
//! - [`quorum`]: the pure decision and the split tracker the membership actor feeds;
//! - [`keeper`]: the task that takes, renews and gives up this node's lease.

pub mod keeper;
pub mod quorum;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{BoxFuture, MeshError};

/// How a split is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// More than half of the known members wins; an even split goes to the side holding
    /// the lowest node name.
    KeepMajority,
    /// A side reaching at least this many members wins; the others lose.
    StaticQuorum(usize),
}

impl Strategy {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::KeepMajority => "keep-majority",
            Strategy::StaticQuorum(_) => "static-quorum",
        }
    }
}

/// The partition settings (`[cluster.partition]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Who wins a split.
    pub strategy: Strategy,
    /// How long the set of unreachable members must stay the same before a side decides.
    pub stable_after: Duration,
    /// Lifetime of a node lease; renewed every third of it.
    pub lease_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strategy: Strategy::KeepMajority,
            stable_after: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(4),
        }
    }
}

/// Whether this node may own single-owner state now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// It may: it holds lease `epoch` (0 without a lease store).
    Owner {
        /// The epoch of the lease held.
        epoch: i64,
    },
    /// It may not; why.
    Fenced(Arc<str>),
}

impl Owner {
    /// Whether this is [`Owner::Owner`].
    pub fn is_owner(&self) -> bool {
        matches!(self, Owner::Owner { .. })
    }
}

/// This node's ownership, as the lease keeper publishes it, and the local deadline of the
/// lease it holds: past that deadline the node does not own, even before the keeper runs
/// again (a process that was frozen and resumes must not act on a lease that ran out).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ownership {
    rx: watch::Receiver<Owner>,
    deadline: Arc<Deadline>,
}

/// A monotonic deadline readable without a lock: milliseconds since a process-wide origin.
#[derive(Debug)]
pub(crate) struct Deadline(AtomicU64);

impl Deadline {
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    /// No deadline.
    pub(crate) fn never() -> Self {
        Self(AtomicU64::new(u64::MAX))
    }

    /// Removes the deadline.
    pub(crate) fn set_never(&self) {
        self.0.store(u64::MAX, Ordering::Release);
    }

    /// Sets the deadline to `at`.
    pub(crate) fn set(&self, at: Instant) {
        let ms = at.saturating_duration_since(Self::origin()).as_millis();
        self.0
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        let now = Instant::now()
            .saturating_duration_since(Self::origin())
            .as_millis();
        u128::from(self.0.load(Ordering::Acquire)) <= now
    }
}

impl Ownership {
    /// A gate over a keeper's channel and deadline.
    pub(crate) fn new(rx: watch::Receiver<Owner>, deadline: Arc<Deadline>) -> Self {
        Self { rx, deadline }
    }

    /// A gate that always owns (a node without partitions to fear: the test harness).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(Owner::Owner { epoch: 0 });
        // Keep the sender alive for as long as the process, so `changed()` never ends.
        std::mem::forget(tx);
        Self::new(rx, Arc::new(Deadline::never()))
    }

    /// The state now.
    pub fn get(&self) -> Owner {
        match &*self.rx.borrow() {
            Owner::Owner { .. } if self.deadline.passed() => {
                Owner::Fenced("the node lease ran out before it was renewed".into())
            }
            owner => owner.clone(),
        }
    }

    /// Whether this node may own single-owner state now. On every entity-bound call: reads
    /// the state in place, without the copy [`Ownership::get`] makes.
    pub fn is_owner(&self) -> bool {
        self.rx.borrow().is_owner() && !self.deadline.passed()
    }

    /// `Ok` while this node owns; otherwise the `unavailable` error entity-bound calls get.
    pub fn check(&self) -> Result<(), MeshError> {
        if self.is_owner() {
            return Ok(());
        }
        match self.get() {
            Owner::Owner { .. } => Ok(()),
            Owner::Fenced(why) => Err(MeshError::unavailable(format!(
                "this node does not own entities now: {why}"
            ))),
        }
    }

    /// A receiver that wakes on every change the keeper publishes.
    pub fn watch(&self) -> watch::Receiver<Owner> {
        self.rx.clone()
    }
}

/// Node leases in the store: who may own single-owner state. Implemented by
/// [`crate::store::lease`].
pub trait Leases: Send + Sync + std::fmt::Debug + 'static {
    /// Takes this node's lease for `ttl` under a new epoch, replacing any older lease of
    /// the name (a restarted or rejoining node). Answers the new epoch.
    fn acquire(&self, node: &str, ttl: Duration) -> BoxFuture<'_, Result<i64, MeshError>>;
    /// Extends lease `epoch` of `node` by `ttl`; `false` when that lease is no longer
    /// this node's (downed, or replaced).
    fn renew(
        &self,
        node: &str,
        epoch: i64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<bool, MeshError>>;
    /// Gives lease `epoch` up now (the node holds nothing any more).
    fn release(&self, node: &str, epoch: i64) -> BoxFuture<'_, Result<(), MeshError>>;
    /// Downs `node`: answers `true` (and bumps its epoch, so the holder can no longer renew
    /// it) when its lease is released or expired, or it has none; `false` while it is
    /// valid.
    fn down(&self, node: &str) -> BoxFuture<'_, Result<bool, MeshError>>;
}
