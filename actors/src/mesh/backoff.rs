//! Restart policy for supervisors: jittered exponential backoff plus a
//! restart-intensity limit.
//!
//! A supervisor that restarts a crashed child needs two independent answers:
//!
//! 1. **How long to wait before the next restart?** — [`Backoff`] computes a
//!    "full jitter" exponential delay: a uniformly random duration in
//!    `[0, min(max, base * 2^attempt)]`. The randomness spreads restarts of many
//!    workers that crashed together (for example because a shared dependency
//!    went away) so they do not hammer that dependency in lock-step. Attempt `0`
//!    is special-cased to [`Duration::ZERO`]: the first restart is immediate, so
//!    a worker that was killed once is serving again within milliseconds.
//! 2. **Should we restart at all?** — [`RestartIntensity`] counts restarts in a
//!    sliding time window (the Erlang/OTP "max restart intensity" rule). When
//!    more than `max_restarts` restarts happen within `window`, it answers
//!    [`Verdict::Escalate`]: the failure is not transient and the supervisor
//!    should give up and fail itself so that *its* supervisor can react.
//!
//! [`Policy`] bundles the configuration of both.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use troupe_actors::mesh::backoff::{Policy, Verdict};
//!
//! let policy = Policy::default();
//! let mut intensity = policy.intensity();
//! match intensity.record(Instant::now()) {
//!     Verdict::Restart { attempt } => {
//!         let delay = policy.backoff.delay(attempt, &mut rand::rng());
//!         assert!(delay.is_zero(), "the first restart is immediate");
//!         // ... sleep(delay), then respawn the child
//!     }
//!     Verdict::Escalate => unreachable!("one restart is within the default limit"),
//! }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Exponential backoff with "full jitter".
///
/// For attempt `n >= 1` the delay is drawn uniformly from
/// `[0, min(max, base * 2^n)]`; attempt `0` always yields [`Duration::ZERO`].
/// All arithmetic saturates, so any `attempt` up to [`u32::MAX`] is valid and
/// simply yields a ceiling of `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Scale of the exponential: the ceiling for attempt `n >= 1` is
    /// `base * 2^n` (before capping at [`max`](Self::max)).
    pub base: Duration,
    /// Upper bound on any delay, regardless of the attempt number.
    pub max: Duration,
}

impl Backoff {
    /// Creates a backoff with the given `base` and `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The ceiling (largest possible delay, no jitter) used for `attempt`.
    ///
    /// Returns [`Duration::ZERO`] for attempt `0` and
    /// `min(max, base * 2^attempt)` otherwise, computed with saturating
    /// arithmetic. The result is monotonically non-decreasing in `attempt`
    /// and never exceeds [`max`](Self::max). Useful for logging and tests.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        // `checked_shl` fails once the shift reaches the bit width; any factor
        // of 2^32 or more certainly saturates, so treat it as u32::MAX.
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random delay for `attempt`, uniform in `[0, ceiling(attempt)]`.
    ///
    /// Attempt `0` (the first restart) returns [`Duration::ZERO`] without
    /// consuming randomness. The delay is drawn with nanosecond resolution;
    /// ceilings above `u64::MAX` nanoseconds (about 584 years) are clamped.
    pub fn delay(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let cap = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=cap))
    }
}

/// What a supervisor should do about a crash, as decided by
/// [`RestartIntensity::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart the child. `attempt` is the number of restarts already
    /// recorded within the window before this one (`0` for the first), and is
    /// meant to be passed to [`Backoff::delay`].
    Restart {
        /// Restarts already in the window before this one.
        attempt: u32,
    },
    /// Too many restarts within the window: stop restarting and escalate the
    /// failure to the next supervisor up the tree.
    Escalate,
}

/// Sliding-window restart counter ("max restart intensity").
///
/// Allows at most `max_restarts` restarts within any `window`; the
/// `max_restarts + 1`-th restart inside the window yields
/// [`Verdict::Escalate`]. Restarts older than `window` are forgotten, so a
/// child that crashes only occasionally is restarted forever, while a child
/// that crash-loops is given up on. Memory use is bounded by
/// `max_restarts + 1` timestamps.
#[derive(Debug, Clone)]
pub struct RestartIntensity {
    max_restarts: u32,
    window: Duration,
    history: VecDeque<Instant>,
}

impl RestartIntensity {
    /// Creates a counter allowing `max_restarts` restarts per `window`.
    ///
    /// With `max_restarts == 0` every restart escalates.
    pub fn new(max_restarts: u32, window: Duration) -> Self {
        Self {
            max_restarts,
            window,
            history: VecDeque::new(),
        }
    }

    /// Records a restart happening at `now` and decides whether it may go ahead.
    ///
    /// Restarts at least `window` older than `now` are dropped first. Returns
    /// [`Verdict::Escalate`] when, counting this one, more than `max_restarts`
    /// restarts fall within the window; otherwise [`Verdict::Restart`] with
    /// `attempt` equal to the number of restarts already in the window.
    ///
    /// `now` should be non-decreasing across calls; an earlier `now` is
    /// tolerated (older entries are then simply kept).
    pub fn record(&mut self, now: Instant) -> Verdict {
        while let Some(&oldest) = self.history.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.history.pop_front();
            } else {
                break;
            }
        }
        let attempt = u32::try_from(self.history.len()).unwrap_or(u32::MAX);
        self.history.push_back(now);
        // Keep at most max_restarts + 1 entries: enough to keep escalating
        // while the window is saturated, without unbounded growth.
        let bound = usize::try_from(self.max_restarts)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        while self.history.len() > bound {
            self.history.pop_front();
        }
        if attempt >= self.max_restarts {
            Verdict::Escalate
        } else {
            Verdict::Restart { attempt }
        }
    }

    /// Forgets all recorded restarts (e.g. after the child has been healthy
    /// for a while, or after a manual intervention).
    pub fn reset(&mut self) {
        self.history.clear();
    }

    /// Number of restarts currently remembered (those not yet pruned by
    /// [`record`](Self::record); pruning happens lazily on the next record).
    pub fn recorded(&self) -> usize {
        self.history.len()
    }

    /// The configured maximum number of restarts per window.
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The configured sliding window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// Supervisor restart configuration: a backoff curve plus an intensity limit.
///
/// A plain configuration bundle; build the mutable counter with
/// [`Policy::intensity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Delay curve between restarts.
    pub backoff: Backoff,
    /// Maximum restarts allowed within [`window`](Self::window) before
    /// escalating.
    pub max_restarts: u32,
    /// Sliding window over which restarts are counted.
    pub window: Duration,
}

impl Policy {
    /// A fresh [`RestartIntensity`] counter configured from this policy.
    pub fn intensity(&self) -> RestartIntensity {
        RestartIntensity::new(self.max_restarts, self.window)
    }
}

impl Default for Policy {
    /// Base 5 ms, max 5 s, at most 10 restarts within 10 s.
    fn default() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_secs(5)),
            max_restarts: 10,
            window: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(5), Duration::from_secs(5))
    }

    #[test]
    fn attempt_zero_is_immediate() {
        let b = backoff();
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(b.ceiling(0), Duration::ZERO);
        for _ in 0..100 {
            assert_eq!(b.delay(0, &mut rng), Duration::ZERO);
        }
    }

    #[test]
    fn ceilings_double_then_cap() {
        let b = backoff();
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(3), Duration::from_millis(40));
        assert_eq!(b.ceiling(9), Duration::from_millis(2560));
        // 5 ms * 2^10 = 5.12 s > 5 s
        assert_eq!(b.ceiling(10), Duration::from_secs(5));
        assert_eq!(b.ceiling(31), Duration::from_secs(5));
        assert_eq!(b.ceiling(32), Duration::from_secs(5));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn ceilings_are_monotone_and_capped() {
        let b = backoff();
        let mut prev = Duration::ZERO;
        for attempt in (0..200).chain([1_000, 65_535, u32::MAX - 1, u32::MAX]) {
            let c = b.ceiling(attempt);
            assert!(c >= prev, "ceiling({attempt}) = {c:?} < {prev:?}");
            assert!(c <= b.max, "ceiling({attempt}) = {c:?} exceeds max");
            prev = c;
        }
        assert_eq!(prev, b.max);
    }

    #[test]
    fn saturates_with_huge_base() {
        let b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.ceiling(1), Duration::MAX);
        assert_eq!(b.ceiling(u32::MAX), Duration::MAX);
        let mut rng = StdRng::seed_from_u64(1);
        // Clamped to u64::MAX nanoseconds, must not panic.
        let d = b.delay(u32::MAX, &mut rng);
        assert!(d <= Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn zero_base_never_waits() {
        let b = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        let mut rng = StdRng::seed_from_u64(3);
        for attempt in [0, 1, 5, 40, u32::MAX] {
            assert_eq!(b.ceiling(attempt), Duration::ZERO);
            assert_eq!(b.delay(attempt, &mut rng), Duration::ZERO);
        }
    }

    #[test]
    fn delays_stay_within_bounds_and_are_jittered() {
        let b = backoff();
        let mut rng = StdRng::seed_from_u64(0xDEC0DE);
        for attempt in 1..64u32 {
            let ceiling = b.ceiling(attempt);
            let mut below_half = 0;
            for _ in 0..200 {
                let d = b.delay(attempt, &mut rng);
                assert!(d <= ceiling, "delay({attempt}) = {d:?} > {ceiling:?}");
                if d < ceiling / 2 {
                    below_half += 1;
                }
            }
            // Uniform over [0, ceiling]: about half the samples fall in the
            // lower half. Not all identical, not all at the cap.
            assert!(
                (50..=150).contains(&below_half),
                "attempt {attempt}: {below_half}/200 below half the ceiling"
            );
        }
    }

    #[test]
    fn delays_are_reproducible_with_same_seed() {
        let b = backoff();
        let mut a = StdRng::seed_from_u64(42);
        let mut c = StdRng::seed_from_u64(42);
        let xs: Vec<_> = (0..20).map(|n| b.delay(n, &mut a)).collect();
        let ys: Vec<_> = (0..20).map(|n| b.delay(n, &mut c)).collect();
        assert_eq!(xs, ys);
        assert!(xs[1..].iter().any(|d| !d.is_zero()));
    }

    #[test]
    fn intensity_escalates_on_max_plus_one_within_window() {
        let start = Instant::now();
        let mut ri = RestartIntensity::new(3, Duration::from_secs(10));
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(ri.record(at(0)), Verdict::Restart { attempt: 0 });
        assert_eq!(ri.record(at(100)), Verdict::Restart { attempt: 1 });
        assert_eq!(ri.record(at(200)), Verdict::Restart { attempt: 2 });
        assert_eq!(ri.record(at(300)), Verdict::Escalate);
        // Still saturated a bit later.
        assert_eq!(ri.record(at(400)), Verdict::Escalate);
        assert!(ri.recorded() <= 4);
    }

    #[test]
    fn intensity_recovers_after_window() {
        let start = Instant::now();
        let window = Duration::from_secs(10);
        let mut ri = RestartIntensity::new(2, window);
        assert_eq!(ri.record(start), Verdict::Restart { attempt: 0 });
        assert_eq!(
            ri.record(start + Duration::from_secs(1)),
            Verdict::Restart { attempt: 1 }
        );
        assert_eq!(ri.record(start + Duration::from_secs(2)), Verdict::Escalate);

        // 11.5 s after the start, the restarts at 0 s and 1 s have aged out
        // but the one at 2 s is still inside the window.
        assert_eq!(
            ri.record(start + Duration::from_millis(11_500)),
            Verdict::Restart { attempt: 1 }
        );
        // Long after everything: back to a first restart.
        assert_eq!(
            ri.record(start + Duration::from_secs(60)),
            Verdict::Restart { attempt: 0 }
        );
    }

    #[test]
    fn restarts_exactly_window_apart_do_not_accumulate() {
        let start = Instant::now();
        let window = Duration::from_secs(1);
        let mut ri = RestartIntensity::new(1, window);
        for n in 0..10u32 {
            assert_eq!(
                ri.record(start + window * n),
                Verdict::Restart { attempt: 0 },
                "restart {n}"
            );
        }
    }

    #[test]
    fn reset_forgets_history() {
        let start = Instant::now();
        let mut ri = RestartIntensity::new(1, Duration::from_secs(10));
        assert_eq!(ri.record(start), Verdict::Restart { attempt: 0 });
        assert_eq!(ri.record(start), Verdict::Escalate);
        ri.reset();
        assert_eq!(ri.recorded(), 0);
        assert_eq!(ri.record(start), Verdict::Restart { attempt: 0 });
    }

    #[test]
    fn zero_max_restarts_always_escalates() {
        let mut ri = RestartIntensity::new(0, Duration::from_secs(1));
        assert_eq!(ri.record(Instant::now()), Verdict::Escalate);
    }

    #[test]
    fn default_policy_values() {
        let p = Policy::default();
        assert_eq!(p.backoff.base, Duration::from_millis(5));
        assert_eq!(p.backoff.max, Duration::from_secs(5));
        assert_eq!(p.max_restarts, 10);
        assert_eq!(p.window, Duration::from_secs(10));
        let ri = p.intensity();
        assert_eq!(ri.max_restarts(), 10);
        assert_eq!(ri.window(), Duration::from_secs(10));
    }

    #[test]
    fn default_policy_escalates_on_eleventh_restart() {
        let p = Policy::default();
        let mut ri = p.intensity();
        let start = Instant::now();
        for n in 0..10u32 {
            assert_eq!(
                ri.record(start + Duration::from_millis(u64::from(n))),
                Verdict::Restart { attempt: n }
            );
        }
        assert_eq!(
            ri.record(start + Duration::from_millis(10)),
            Verdict::Escalate
        );
    }
}
