//! The relay: moves committed outbox rows to the delivery lanes, and settles them.
//!
//! One per node. It claims rows in publish order while it holds fewer than
//! `max_in_flight` ([`Outbox::claim`]), hands each to the lanes of the sinks that want it,
//! and once every lane is done with a row deletes it (burying the deliveries that gave
//! up) in one batched transaction ([`Outbox::settle`]). It renews its claims every third
//! of their lease, and counts the outbox (the depth the publish bound reads): every second
//! while it is at least half full, every five seconds otherwise.
//!
//! What it holds is bounded by `max_in_flight`, and so are the lanes and their retry
//! state: a backlog of any size waits in the store and is streamed in, never loaded whole.
//! A row that does not hold an event is quarantined (a dead letter, counted), never
//! dropped and never fatal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::delivery::{Done, Job, Lane};
use super::outbox::{Claimed, DeadLetter, Outbox};
use super::Event;

/// How the relay runs (`[events]`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Rows held (claimed, being delivered) at once.
    pub max_in_flight: usize,
    /// Lease of a claim.
    pub claim_ttl: Duration,
}

/// Rows claimed in one statement.
const CLAIM_BATCH: usize = 256;
/// How often an idle relay looks for rows it was not told about (other nodes' and
/// expired claims).
const POLL: Duration = Duration::from_millis(250);
/// How often the outbox is counted while it is at least half full (the publish bound is
/// near)...
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// ... and while it is less: every node counts the same table, and on PostgreSQL a large
/// backlog costs tens of milliseconds a count. Between counts a node adds its own writes.
const COUNT_EVERY_FAR: Duration = Duration::from_secs(5);
/// Pause after a failed statement.
const BACKOFF: Duration = Duration::from_millis(500);

/// Runs the relay until the lanes' reports stop.
pub async fn run(
    outbox: Arc<Outbox>,
    lanes: Vec<Lane>,
    mut reports: mpsc::UnboundedReceiver<Done>,
    settings: Settings,
) {
    match outbox.release_earlier_runs().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            rows = n,
            "released the outbox claims of this node's earlier run"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot release the claims of this node's earlier run; they run out instead")
        }
    }
    let mut relay = Relay {
        outbox,
        lanes,
        held: HashMap::new(),
        done: Vec::new(),
        dead: Vec::new(),
    };
    let ttl = settings.claim_ttl;
    let mut renew_at = Instant::now() + ttl / 3;
    let mut count_at = Instant::now();
    let mut more = true;
    loop {
        let room = settings.max_in_flight.saturating_sub(relay.held.len());
        if more && room > 0 {
            let want = room.min(CLAIM_BATCH);
            match relay.outbox.claim(want, ttl).await {
                Ok(rows) => {
                    more = rows.len() == want;
                    for row in rows {
                        relay.dispatch(row);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim outbox rows; retrying");
                    more = false;
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
        while let Ok(report) = reports.try_recv() {
            relay.report(report);
        }
        relay.settle().await;
        let now = Instant::now();
        if now >= renew_at {
            renew_at = now + ttl / 3;
            if !relay.held.is_empty() {
                if let Err(e) = relay.outbox.renew(ttl).await {
                    tracing::warn!(error = %e, "cannot renew outbox claims; they may be delivered twice");
                }
            }
        }
        if now >= count_at {
            count_at = now + COUNT_EVERY;
            match relay.outbox.count().await {
                Ok(_) if !relay.outbox.half_full() => count_at = now + COUNT_EVERY_FAR,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot count the outbox"),
            }
        }
        if more && relay.held.len() < settings.max_in_flight {
            continue;
        }
        let wait = POLL.min(renew_at.saturating_duration_since(Instant::now()));
        tokio::select! {
            got = reports.recv() => match got {
                Some(report) => relay.report(report),
                None => return,
            },
            _ = relay.outbox.woken(wait) => more = true,
        }
    }
}

struct Relay {
    outbox: Arc<Outbox>,
    lanes: Vec<Lane>,
    /// Rows being delivered: how many lanes still have them.
    held: HashMap<Arc<str>, usize>,
    /// Rows to delete.
    done: Vec<String>,
    /// Dead letters to write.
    dead: Vec<DeadLetter>,
}

impl Relay {
    /// Hands a claimed row to the lanes that want it.
    fn dispatch(&mut self, row: Claimed) {
        if self.held.contains_key(row.id.as_str()) {
            // Claimed again after a lease ran out under us: it is on its way already.
            return;
        }
        let event: Event = match serde_json::from_str(&row.body) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(row = %row.id, error = %e, "an outbox row does not hold an event; quarantined");
                metrics::counter!(super::metrics::QUARANTINED).increment(1);
                let error = format!("undecodable: {e}");
                self.dead
                    .push(DeadLetter::quarantined(&row, &error, self.outbox.node()));
                self.done.push(row.id);
                return;
            }
        };
        let targets: Vec<&Lane> = self
            .lanes
            .iter()
            .filter(|l| {
                if row.sink.is_empty() {
                    l.sink.wants(&event.kind)
                } else {
                    l.sink.name() == row.sink
                }
            })
            .collect();
        if targets.is_empty() {
            if !row.sink.is_empty() {
                let error = format!(
                    "sink {} is not configured on node {}",
                    row.sink,
                    self.outbox.node()
                );
                self.dead.push(DeadLetter::gave_up(
                    &event,
                    &row.sink,
                    0,
                    &error,
                    self.outbox.node(),
                ));
            }
            self.done.push(row.id);
            return;
        }
        let id: Arc<str> = row.id.into();
        let event = Arc::new(event);
        let mut sent = 0;
        for lane in targets {
            let job = Job {
                row: id.clone(),
                event: event.clone(),
                attempts: 0,
                last_error: String::new(),
            };
            if lane.send(job) {
                sent += 1;
            }
        }
        if sent > 0 {
            self.held.insert(id, sent);
        }
    }

    /// A lane is done with a row.
    fn report(&mut self, done: Done) {
        let Some(left) = self.held.get_mut(&done.row) else {
            return;
        };
        if let Err(job) = done.outcome {
            self.dead.push(DeadLetter::gave_up(
                &job.event,
                &done.sink,
                job.attempts,
                &job.last_error,
                self.outbox.node(),
            ));
        }
        *left -= 1;
        if *left == 0 {
            self.held.remove(&done.row);
            self.done.push(done.row.to_string());
        }
    }

    /// Deletes the finished rows and writes the dead letters; keeps them for the next
    /// round when the store fails.
    async fn settle(&mut self) {
        if self.done.is_empty() && self.dead.is_empty() {
            return;
        }
        match self.outbox.settle(&self.done, &self.dead).await {
            Ok(()) => {
                self.done.clear();
                self.dead.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = self.done.len(), "cannot settle delivered outbox rows; retrying");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}
