//! Delivery: one lane per sink, a task that takes jobs from the relay (one per outbox row
//! the sink wants), delivers up to the sink's concurrency at once, and on failure retries
//! with exponential backoff and full jitter until the attempts run out. It reports each
//! job's end to the relay, which deletes the row once every lane is done with it, or
//! buries the delivery in the dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::sink::Sink;
use super::Event;
use crate::mesh::backoff::Backoff;
use crate::mesh::MeshError;

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

/// One event for one lane: a row the relay holds.
#[derive(Clone, Debug)]
pub struct Job {
    /// The outbox row it came from.
    pub row: Arc<str>,
    /// The event.
    pub event: Arc<Event>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure.
    pub last_error: String,
}

/// What became of a job: reported to the relay once, at the end.
#[derive(Debug)]
pub struct Done {
    /// The outbox row.
    pub row: Arc<str>,
    /// The lane's sink.
    pub sink: String,
    /// The job; `Err` when its attempts ran out.
    pub outcome: Result<(), Job>,
}

/// The sending end of a lane.
#[derive(Clone)]
pub struct Lane {
    /// The sink.
    pub sink: Arc<dyn Sink>,
    tx: mpsc::UnboundedSender<Job>,
}

impl Lane {
    /// Starts the lane's task; it reports each job's end on `done`. The channel needs no
    /// bound of its own: the relay hands out at most `max_in_flight` rows at once, and a
    /// lane gets each of them at most once.
    pub fn start(sink: Arc<dyn Sink>, retry: Retry, done: mpsc::UnboundedSender<Done>) -> Lane {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(sink.clone(), retry, rx, done));
        Lane { sink, tx }
    }

    /// Hands a job to the lane; `false` when the lane is gone (the row's claim then runs
    /// out and it is delivered again).
    pub fn send(&self, job: Job) -> bool {
        if self.tx.send(job).is_err() {
            tracing::warn!(sink = %self.sink.name(), "delivery lane is gone; the event waits for its claim to run out");
            return false;
        }
        true
    }
}

/// What an attempt answered.
type Attempt = (Job, Result<(), MeshError>);

async fn run(
    sink: Arc<dyn Sink>,
    retry: Retry,
    mut rx: mpsc::UnboundedReceiver<Job>,
    done: mpsc::UnboundedSender<Done>,
) {
    let name = sink.name().to_string();
    let concurrency = sink.concurrency().max(1);
    let mut in_flight: JoinSet<Attempt> = JoinSet::new();
    // Jobs waiting for their next attempt, by due time (the counter breaks ties).
    let mut waiting: BTreeMap<(Instant, u64), Job> = BTreeMap::new();
    let mut counter = 0u64;
    let mut open = true;
    let delivered = metrics::counter!(super::metrics::DELIVERED, "sink" => name.clone());
    let failed = metrics::counter!(super::metrics::FAILED_ATTEMPTS, "sink" => name.clone());
    let dead = metrics::counter!(super::metrics::DEAD, "sink" => name.clone());
    let report = |row: Arc<str>, outcome: Result<(), Job>| {
        let _ = done.send(Done {
            row,
            sink: name.clone(),
            outcome,
        });
    };
    loop {
        // Due retries go first.
        while in_flight.len() < concurrency {
            let Some(entry) = waiting.first_entry() else {
                break;
            };
            if entry.key().0 > Instant::now() {
                break;
            }
            let job = entry.remove();
            attempt(&mut in_flight, &sink, job, retry.attempt_timeout);
        }
        if !open && in_flight.is_empty() && waiting.is_empty() {
            return;
        }
        let next_due = waiting.first_key_value().map(|(k, _)| k.0);
        let room = in_flight.len() < concurrency;
        tokio::select! {
            got = rx.recv(), if open && room => match got {
                Some(job) => attempt(&mut in_flight, &sink, job, retry.attempt_timeout),
                None => open = false,
            },
            Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                let Ok((mut job, result)) = finished else { continue };
                match result {
                    Ok(()) => {
                        delivered.increment(1);
                        report(job.row.clone(), Ok(()));
                    }
                    Err(e) => {
                        failed.increment(1);
                        job.attempts += 1;
                        job.last_error = e.to_string();
                        if job.attempts >= retry.max_attempts {
                            tracing::warn!(
                                sink = %name,
                                event = %job.event.id,
                                kind = %job.event.kind,
                                attempts = job.attempts,
                                error = %e,
                                "event delivery gave up, moved to the dead-letter queue"
                            );
                            dead.increment(1);
                            report(job.row.clone(), Err(job));
                        } else {
                            tracing::debug!(
                                sink = %name,
                                event = %job.event.id,
                                attempts = job.attempts,
                                error = %e,
                                "event delivery failed, retrying later"
                            );
                            let delay = retry.backoff.delay(job.attempts, &mut rand::rng());
                            counter += 1;
                            waiting.insert((Instant::now() + delay, counter), job);
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

fn attempt(in_flight: &mut JoinSet<Attempt>, sink: &Arc<dyn Sink>, job: Job, timeout: Duration) {
    let delivery = sink.deliver(job.event.clone());
    in_flight.spawn(async move {
        let result = match tokio::time::timeout(timeout, delivery).await {
            Ok(r) => r,
            Err(_) => Err(MeshError::new(
                crate::mesh::Code::DeadlineExceeded,
                "delivery timed out",
            )),
        };
        (job, result)
    });
}
