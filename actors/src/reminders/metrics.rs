//! Names of the metrics reminders record.

/// Reminders published when due, on this node.
pub const FIRED_TOTAL: &str = "troupe_reminders_fired_total";
/// Reminders that came due after their expiry (their owner was down too long).
pub const EXPIRED_TOTAL: &str = "troupe_reminders_expired_total";
/// How late reminders were published after their due time.
pub const LATENESS_SECONDS: &str = "troupe_reminder_lateness_seconds";

/// Describes the metrics once.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(FIRED_TOTAL, "reminders published when due, on this node");
    describe_counter!(
        EXPIRED_TOTAL,
        "reminders recorded as expired: due after what they remind of had started"
    );
    describe_histogram!(
        LATENESS_SECONDS,
        Unit::Seconds,
        "how long after its due time a reminder was published"
    );
}
