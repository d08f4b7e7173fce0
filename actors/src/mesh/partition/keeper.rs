//! The lease keeper: one task per node that turns the membership verdict into this node's
//! [`Ownership`], holding a node lease in the store while it owns.
//!
//! - Allowed to own (no lost split) and no lease: take one ([`Leases::acquire`]); own.
//! - Holding one: renew it every third of the lease's lifetime. A renewal the store refuses
//!   (this node was downed) fences at once; a store that does not answer fences when the
//!   local deadline passes: `sent + ttl - margin` of the last renewal that succeeded, on
//!   this node's monotonic clock, so the node stops acting before anyone may take over.
//! - Told to fence (a lost split): fence at once, give the entity and task hosts a moment
//!   to let go, then release the lease so the winners need not wait for it to run out.
//!
//! Without a lease store (the test harness) ownership simply follows the verdict.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Deadline, Leases, Owner, Ownership};

/// What the membership actor allows: `Ok` to own, or the reason to fence.
pub type Allowed = Result<(), Arc<str>>;

/// How long a fenced node waits for its hosts to let go before releasing its lease.
const RELEASE_GRACE: Duration = Duration::from_millis(300);
/// Pause before retrying a lease the store did not grant.
const RETRY: Duration = Duration::from_millis(500);

/// Safety margin under the lease lifetime before the node stops acting on its own.
fn margin(ttl: Duration) -> Duration {
    (ttl / 4).min(Duration::from_secs(1))
}

/// Starts the keeper of `node`; answers its ownership (fenced until a lease is held).
pub fn spawn(
    node: Arc<str>,
    leases: Option<Arc<dyn Leases>>,
    ttl: Duration,
    allowed: watch::Receiver<Allowed>,
) -> Ownership {
    let (tx, rx) = watch::channel(Owner::Fenced("starting: no lease yet".into()));
    let deadline = Arc::new(Deadline::never());
    tokio::spawn(run(node, leases, ttl, allowed, tx, deadline.clone()));
    Ownership::new(rx, deadline)
}

struct Held {
    epoch: i64,
    /// Last moment this node may act without a newer renewal.
    deadline: Instant,
    /// When the next renewal is due.
    renew_at: Instant,
}

fn publish(tx: &watch::Sender<Owner>, owner: Owner) {
    tx.send_if_modified(|cur| {
        if *cur == owner {
            return false;
        }
        match &owner {
            Owner::Owner { epoch } => tracing::info!(epoch, "this node owns entities and tasks"),
            Owner::Fenced(why) => {
                tracing::warn!(reason = %why, "this node is fenced: it owns no entities nor tasks")
            }
        }
        metrics::gauge!(crate::metrics::NODE_OWNER).set(if owner.is_owner() { 1.0 } else { 0.0 });
        *cur = owner;
        true
    });
}

async fn run(
    node: Arc<str>,
    leases: Option<Arc<dyn Leases>>,
    ttl: Duration,
    mut allowed: watch::Receiver<Allowed>,
    tx: watch::Sender<Owner>,
    gate: Arc<Deadline>,
) {
    let mut held: Option<Held> = None;
    let mut failing = false;
    loop {
        let verdict = allowed.borrow_and_update().clone();
        let now = Instant::now();
        let mut wake = now + ttl / 3;
        match (verdict, &leases) {
            (Ok(()), None) => {
                gate.set_never();
                publish(&tx, Owner::Owner { epoch: 0 })
            }
            (Err(why), None) => publish(&tx, Owner::Fenced(why)),
            (Err(why), Some(leases)) => {
                publish(&tx, Owner::Fenced(why));
                if let Some(h) = held.take() {
                    tokio::time::sleep(RELEASE_GRACE).await;
                    if let Err(e) = leases.release(&node, h.epoch).await {
                        // It runs out on its own; the winners wait for that instead.
                        tracing::warn!(error = %e, "could not release the node lease");
                    }
                }
            }
            (Ok(()), Some(leases)) => match held.as_mut() {
                None => match leases.acquire(&node, ttl).await {
                    Ok(epoch) => {
                        failing = false;
                        held = Some(Held {
                            epoch,
                            deadline: now + ttl - margin(ttl),
                            renew_at: now + ttl / 3,
                        });
                        gate.set((now + ttl - margin(ttl)).into_std());
                        publish(&tx, Owner::Owner { epoch });
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "cannot take the node lease; retrying");
                        }
                        failing = true;
                        publish(
                            &tx,
                            Owner::Fenced("no node lease: the store did not grant it".into()),
                        );
                        wake = now + RETRY;
                    }
                },
                Some(h) if now >= h.renew_at => {
                    let left = h.deadline.saturating_duration_since(now);
                    match tokio::time::timeout(left, leases.renew(&node, h.epoch, ttl)).await {
                        Ok(Ok(true)) => {
                            failing = false;
                            h.deadline = now + ttl - margin(ttl);
                            h.renew_at = now + ttl / 3;
                            gate.set(h.deadline.into_std());
                        }
                        Ok(Ok(false)) => {
                            held = None;
                            publish(
                                &tx,
                                Owner::Fenced(
                                    "the node lease was taken over: this node was downed".into(),
                                ),
                            );
                            wake = now + RETRY;
                        }
                        Ok(Err(e)) => {
                            if !failing {
                                tracing::warn!(error = %e, "cannot renew the node lease; retrying");
                            }
                            failing = true;
                            h.renew_at = now + RETRY;
                        }
                        Err(_) => {}
                    }
                    if let Some(h) = &held {
                        if Instant::now() >= h.deadline {
                            held = None;
                            publish(
                                &tx,
                                Owner::Fenced(
                                    "the node lease ran out: the store did not answer".into(),
                                ),
                            );
                        } else {
                            wake = h.renew_at.min(h.deadline);
                        }
                    }
                }
                Some(h) => wake = h.renew_at.min(h.deadline),
            },
        }
        tokio::select! {
            changed = allowed.changed() => if changed.is_err() {
                return;
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::mesh::{BoxFuture, MeshError};

    /// Leases in memory, with a switch that makes the store stop answering.
    #[derive(Debug, Default)]
    struct Memory {
        rows: Mutex<HashMap<String, (i64, Option<std::time::Instant>)>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl Leases for Memory {
        fn acquire(&self, node: &str, ttl: Duration) -> BoxFuture<'_, Result<i64, MeshError>> {
            let node = node.to_string();
            Box::pin(async move {
                let mut rows = self.rows.lock().unwrap();
                let row = rows.entry(node).or_insert((0, None));
                row.0 += 1;
                row.1 = Some(std::time::Instant::now() + ttl);
                Ok(row.0)
            })
        }
        fn renew(
            &self,
            node: &str,
            epoch: i64,
            ttl: Duration,
        ) -> BoxFuture<'_, Result<bool, MeshError>> {
            let node = node.to_string();
            Box::pin(async move {
                if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(MeshError::unavailable("store down"));
                }
                let mut rows = self.rows.lock().unwrap();
                match rows.get_mut(&node) {
                    Some(row) if row.0 == epoch => {
                        row.1 = Some(std::time::Instant::now() + ttl);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            })
        }
        fn release(&self, node: &str, epoch: i64) -> BoxFuture<'_, Result<(), MeshError>> {
            let node = node.to_string();
            Box::pin(async move {
                if let Some(row) = self.rows.lock().unwrap().get_mut(&node) {
                    if row.0 == epoch {
                        row.1 = None;
                    }
                }
                Ok(())
            })
        }
        fn down(&self, node: &str) -> BoxFuture<'_, Result<bool, MeshError>> {
            let node = node.to_string();
            Box::pin(async move {
                let mut rows = self.rows.lock().unwrap();
                let Some(row) = rows.get_mut(&node) else {
                    return Ok(true);
                };
                if row.1.is_some_and(|t| t > std::time::Instant::now()) {
                    return Ok(false);
                }
                row.0 += 1;
                Ok(true)
            })
        }
    }

    async fn until(own: &Ownership, want: bool) -> Owner {
        let mut rx = own.watch();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let cur = rx.borrow_and_update().clone();
                if cur.is_owner() == want {
                    return cur;
                }
                rx.changed().await.unwrap();
            }
        })
        .await
        .expect("ownership did not change in time")
    }

    #[tokio::test]
    async fn owns_with_a_lease_fences_on_a_lost_split_and_releases_the_lease() {
        let leases = Arc::new(Memory::default());
        let (allow, allowed) = watch::channel(Ok(()));
        let own = spawn(
            "n3".into(),
            Some(leases.clone()),
            Duration::from_secs(6),
            allowed,
        );
        assert_eq!(until(&own, true).await, Owner::Owner { epoch: 1 });
        // While it holds a valid lease nobody can down it.
        assert!(!leases.down("n3").await.unwrap());

        allow.send(Err("lost".into())).unwrap();
        assert_eq!(until(&own, false).await, Owner::Fenced("lost".into()));
        // Released after the grace: now it can be downed, which bumps the epoch.
        tokio::time::sleep(RELEASE_GRACE * 2).await;
        assert!(leases.down("n3").await.unwrap());

        // Heal: a new lease under a newer epoch.
        allow.send(Ok(())).unwrap();
        assert_eq!(until(&own, true).await, Owner::Owner { epoch: 3 });
    }

    #[tokio::test]
    async fn a_node_whose_lease_was_taken_over_fences_at_its_next_renewal() {
        let leases = Arc::new(Memory::default());
        let (_allow, allowed) = watch::channel(Ok(()));
        let ttl = Duration::from_millis(600);
        let own = spawn("n1".into(), Some(leases.clone()), ttl, allowed);
        until(&own, true).await;
        // Another node's downing bumps the epoch (as after a frozen node's lease ran out).
        leases.rows.lock().unwrap().get_mut("n1").unwrap().0 += 1;
        match until(&own, false).await {
            Owner::Fenced(why) => assert!(why.contains("downed"), "{why}"),
            o => panic!("{o:?}"),
        }
        // It is allowed to own, so it takes a fresh lease again.
        assert_eq!(until(&own, true).await, Owner::Owner { epoch: 3 });
    }

    #[tokio::test]
    async fn a_store_that_stops_answering_fences_the_node_before_its_lease_runs_out() {
        let leases = Arc::new(Memory::default());
        let (_allow, allowed) = watch::channel(Ok(()));
        let ttl = Duration::from_millis(800);
        let own = spawn("n1".into(), Some(leases.clone()), ttl, allowed);
        until(&own, true).await;
        leases.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let cut = std::time::Instant::now();
        match until(&own, false).await {
            Owner::Fenced(why) => assert!(why.contains("ran out"), "{why}"),
            o => panic!("{o:?}"),
        }
        // Fenced before the lease's own expiry as others see it (renewed at most ttl/3 + a
        // retry ago): the local deadline keeps a margin.
        let row_expiry = leases.rows.lock().unwrap()["n1"].1.unwrap();
        assert!(
            std::time::Instant::now() < row_expiry,
            "fenced after the lease expired (cut {:?} ago)",
            cut.elapsed()
        );
    }

    #[tokio::test]
    async fn without_a_lease_store_ownership_follows_the_verdict() {
        let (allow, allowed) = watch::channel(Ok(()));
        let own = spawn("n1".into(), None, Duration::from_secs(6), allowed);
        assert_eq!(until(&own, true).await, Owner::Owner { epoch: 0 });
        allow.send(Err("lost".into())).unwrap();
        assert_eq!(until(&own, false).await, Owner::Fenced("lost".into()));
    }
}
