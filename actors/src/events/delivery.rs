//! Delivery: one lane per sink, a task that takes pending entries (new ones from the bus,
//! the backlog at start-up, replayed dead letters), delivers up to the sink's concurrency
//! at once, and on failure retries with exponential backoff and full jitter until the
//! attempts run out, when the entry moves to the dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::outbox::{Outbox, Pending};
use super::sink::Sink;
use super::Event;
use crate::mesh::backoff::Backoff;
use crate::mesh::MeshError;
use crate::store::time::now_ms;

/// Retry policy of every lane.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts before an entry becomes a dead letter (at least 1).
    pub max_attempts: u32,
    /// Delay between attempts: full jitter, exponential in the attempt number.
    pub backoff: Backoff,
    /// Longest a single delivery may take before it counts as failed.
    pub attempt_timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(30)),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// The sending end of a lane.
#[derive(Clone)]
pub struct Lane {
    /// The sink.
    pub sink: Arc<dyn Sink>,
    tx: mpsc::UnboundedSender<Pending>,
}

impl Lane {
    /// Starts the lane's task.
    pub fn start(sink: Arc<dyn Sink>, outbox: Arc<Outbox>, retry: Retry) -> Lane {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(sink.clone(), outbox, retry, rx));
        Lane { sink, tx }
    }

    /// Hands a pending entry (already in the outbox) to the lane.
    pub fn send(&self, pending: Pending) {
        if self.tx.send(pending).is_err() {
            tracing::warn!(sink = %self.sink.name(), "delivery lane is gone; the entry waits for a restart");
        }
    }
}

/// What an attempt answered.
type Attempt = (Pending, Result<(), MeshError>);

async fn run(
    sink: Arc<dyn Sink>,
    outbox: Arc<Outbox>,
    retry: Retry,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let name = sink.name().to_string();
    let concurrency = sink.concurrency().max(1);
    let mut in_flight: JoinSet<Attempt> = JoinSet::new();
    // Entries waiting for their next attempt, by due time (the counter breaks ties).
    let mut waiting: BTreeMap<(Instant, u64), Pending> = BTreeMap::new();
    let mut counter = 0u64;
    let mut open = true;
    let delivered = metrics::counter!(super::metrics::DELIVERED, "sink" => name.clone());
    let failed = metrics::counter!(super::metrics::FAILED_ATTEMPTS, "sink" => name.clone());
    let dead = metrics::counter!(super::metrics::DEAD, "sink" => name.clone());
    loop {
        // Due retries go first.
        while in_flight.len() < concurrency {
            let Some(entry) = waiting.first_entry() else {
                break;
            };
            if entry.key().0 > Instant::now() {
                break;
            }
            let pending = entry.remove();
            attempt(&mut in_flight, &sink, pending, retry.attempt_timeout);
        }
        if !open && in_flight.is_empty() && waiting.is_empty() {
            return;
        }
        let next_due = waiting.first_key_value().map(|(k, _)| k.0);
        let room = in_flight.len() < concurrency;
        tokio::select! {
            got = rx.recv(), if open && room => match got {
                Some(pending) => attempt(&mut in_flight, &sink, pending, retry.attempt_timeout),
                None => open = false,
            },
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                let Ok((mut pending, result)) = done else { continue };
                match result {
                    Ok(()) => {
                        delivered.increment(1);
                        if let Err(e) = outbox.delivered(&pending.key) {
                            tracing::warn!(sink = %name, error = %e, "cannot remove a delivered entry");
                        }
                    }
                    Err(e) => {
                        failed.increment(1);
                        pending.entry.attempts += 1;
                        pending.entry.last_error = e.to_string();
                        pending.entry.failed_at = now_ms();
                        if pending.entry.attempts >= retry.max_attempts {
                            tracing::warn!(
                                sink = %name,
                                event = %pending.entry.event.id,
                                kind = %pending.entry.event.kind,
                                attempts = pending.entry.attempts,
                                error = %e,
                                "event delivery gave up, moved to the dead-letter queue"
                            );
                            dead.increment(1);
                            if let Err(e) = outbox.bury(&pending) {
                                tracing::error!(sink = %name, error = %e, "cannot move an entry to the dead-letter queue");
                            }
                        } else {
                            tracing::debug!(
                                sink = %name,
                                event = %pending.entry.event.id,
                                attempts = pending.entry.attempts,
                                error = %e,
                                "event delivery failed, retrying later"
                            );
                            if let Err(e) = outbox.retry_later(&pending) {
                                tracing::warn!(sink = %name, error = %e, "cannot record a failed attempt");
                            }
                            let delay = retry.backoff.delay(pending.entry.attempts, &mut rand::rng());
                            counter += 1;
                            waiting.insert((Instant::now() + delay, counter), pending);
                        }
                    }
                }
            },
            _ = sleep_until(next_due), if next_due.is_some() && room => {},
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

fn attempt(
    in_flight: &mut JoinSet<Attempt>,
    sink: &Arc<dyn Sink>,
    pending: Pending,
    timeout: Duration,
) {
    let event: Arc<Event> = Arc::new(pending.entry.event.clone());
    let delivery = sink.deliver(event);
    in_flight.spawn(async move {
        let result = match tokio::time::timeout(timeout, delivery).await {
            Ok(r) => r,
            Err(_) => Err(MeshError::new(
                crate::mesh::Code::DeadlineExceeded,
                "delivery timed out",
            )),
        };
        (pending, result)
    });
}
