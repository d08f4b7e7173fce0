//! Names of the event bus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// The last outbox depth set with [`set_depth`], readable back (the gauge is not).
static DEPTH: AtomicU64 = AtomicU64::new(0);

/// Sets the outbox depth gauge ([`OUTBOX_DEPTH`]).
pub fn set_depth(depth: i64) {
    DEPTH.store(depth.max(0) as u64, Ordering::Relaxed);
    metrics::gauge!(OUTBOX_DEPTH).set(depth as f64);
}

/// The outbox depth last set: what the dashboard's history samples.
pub fn depth() -> u64 {
    DEPTH.load(Ordering::Relaxed)
}

/// Events waiting in the outbox, cluster-wide (as this node last counted them).
pub const OUTBOX_DEPTH: &str = "troupe_outbox_depth";
/// Events refused because the outbox was full.
pub const REFUSED: &str = "troupe_events_refused_total";
/// Outbox rows quarantined because they do not hold an event.
pub const QUARANTINED: &str = "troupe_outbox_quarantined_total";
/// Events published on this node (acknowledged durable).
pub const PUBLISHED: &str = "troupe_events_published_total";
/// Deliveries that succeeded, by sink.
pub const DELIVERED: &str = "troupe_events_delivered_total";
/// Delivery attempts that failed, by sink.
pub const FAILED_ATTEMPTS: &str = "troupe_events_failed_attempts_total";
/// Entries moved to the dead-letter queue, by sink.
pub const DEAD: &str = "troupe_events_dead_letters_total";

/// Describes every metric once, so `/metrics` carries HELP lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        OUTBOX_DEPTH,
        "events waiting in the outbox, cluster-wide, as this node last counted them"
    );
    describe_counter!(REFUSED, "events refused because the outbox was full");
    describe_counter!(
        QUARANTINED,
        "outbox rows quarantined because they do not hold an event"
    );
    describe_counter!(PUBLISHED, "events published on this node");
    describe_counter!(DELIVERED, "event deliveries that succeeded, by sink");
    describe_counter!(
        FAILED_ATTEMPTS,
        "event delivery attempts that failed, by sink"
    );
    describe_counter!(
        DEAD,
        "event deliveries moved to the dead-letter queue, by sink"
    );
}
