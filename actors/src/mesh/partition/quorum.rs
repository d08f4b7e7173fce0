//! The decision of a split, and the tracker that tells when to make it.
//!
//! Pure: the membership actor feeds [`Tracker::observe`] the members it reaches on every
//! reconcile and acts on the [`Verdict`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::Strategy;

/// What this node should do about the members it cannot reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It reaches every member it knows.
    Healthy,
    /// Some members are unreachable, but that set changed less than `stable_after` ago.
    Undecided,
    /// This side wins: these unreachable members are to be downed (each once its lease
    /// is released or expired).
    Win {
        /// The unreachable members, by name.
        down: Vec<String>,
    },
    /// This side loses: it must fence itself.
    Lose {
        /// Why, for logs and `/cluster`.
        reason: String,
    },
}

/// Whether the side reaching `reachable` of `universe` wins under `strategy`.
/// `reachable` is a subset of `universe`.
pub fn decide(
    strategy: Strategy,
    universe: &BTreeSet<String>,
    reachable: &BTreeSet<String>,
) -> bool {
    let (n, r) = (universe.len(), reachable.len());
    match strategy {
        Strategy::KeepMajority => {
            r * 2 > n || (r * 2 == n && universe.first().is_some_and(|l| reachable.contains(l)))
        }
        Strategy::StaticQuorum(q) => r >= q,
    }
}

/// The members this node counts (its *universe*: up members plus those unreachable but not
/// downed) and how long the unreachable set has been what it is.
#[derive(Debug)]
pub struct Tracker {
    strategy: Strategy,
    stable_after: Duration,
    universe: BTreeSet<String>,
    reachable: BTreeSet<String>,
    changed_at: Instant,
}

impl Tracker {
    /// A tracker for node `me`, which counts only itself so far.
    pub fn new(me: &str, strategy: Strategy, stable_after: Duration, now: Instant) -> Self {
        let only_me: BTreeSet<String> = [me.to_string()].into();
        Self {
            strategy,
            stable_after,
            universe: only_me.clone(),
            reachable: only_me,
            changed_at: now,
        }
    }

    /// Feeds what membership sees now: the members that are up (this node included) and
    /// those that left gracefully (they handed their state off). Answers the verdict.
    pub fn observe(
        &mut self,
        up: &BTreeSet<String>,
        left: &BTreeSet<String>,
        now: Instant,
    ) -> Verdict {
        self.universe.retain(|m| !left.contains(m));
        self.universe.extend(up.iter().cloned());
        let reachable: BTreeSet<String> = up.intersection(&self.universe).cloned().collect();
        if reachable != self.reachable {
            self.reachable = reachable;
            self.changed_at = now;
        }
        if self.reachable.len() == self.universe.len() {
            return Verdict::Healthy;
        }
        if now.duration_since(self.changed_at) < self.stable_after {
            return Verdict::Undecided;
        }
        if decide(self.strategy, &self.universe, &self.reachable) {
            Verdict::Win {
                down: self.unreachable(),
            }
        } else {
            Verdict::Lose {
                reason: format!(
                    "{} reaches {} of {} members ({}); unreachable: {}",
                    self.strategy.name(),
                    self.reachable.len(),
                    self.universe.len(),
                    match self.strategy {
                        Strategy::KeepMajority => "not a majority".to_string(),
                        Strategy::StaticQuorum(q) => format!("quorum is {q}"),
                    },
                    self.unreachable().join(", ")
                ),
            }
        }
    }

    /// Removes a downed member: it no longer counts, and placement forgets it.
    pub fn down(&mut self, member: &str) {
        self.universe.remove(member);
    }

    /// The members that own single-owner state as far as this node knows: the universe
    /// (unreachable members keep theirs until downed).
    pub fn placement(&self) -> Vec<String> {
        self.universe.iter().cloned().collect()
    }

    /// The members counted but not reached, by name.
    pub fn unreachable(&self) -> Vec<String> {
        self.universe.difference(&self.reachable).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keep_majority_needs_more_than_half_and_breaks_ties_by_the_lowest_name() {
        let s = Strategy::KeepMajority;
        let three = set(&["n1", "n2", "n3"]);
        assert!(decide(s, &three, &set(&["n1", "n2"])));
        assert!(decide(s, &three, &set(&["n2", "n3"])));
        assert!(!decide(s, &three, &set(&["n3"])));
        assert!(!decide(s, &three, &set(&["n1"])));
        let four = set(&["n1", "n2", "n3", "n4"]);
        assert!(decide(s, &four, &set(&["n1", "n4"])));
        assert!(!decide(s, &four, &set(&["n2", "n3"])));
        // Exactly one side of any split wins.
        for side in [set(&["n1", "n2"]), set(&["n1"]), set(&["n1", "n2", "n3"])] {
            let other: BTreeSet<String> = four.difference(&side).cloned().collect();
            assert_ne!(decide(s, &four, &side), decide(s, &four, &other));
        }
    }

    #[test]
    fn static_quorum_counts_reachable_members() {
        let s = Strategy::StaticQuorum(3);
        let five = set(&["a", "b", "c", "d", "e"]);
        assert!(decide(s, &five, &set(&["c", "d", "e"])));
        assert!(!decide(s, &five, &set(&["a", "b"])));
    }

    #[test]
    fn a_split_is_decided_only_once_it_stayed_the_same_for_stable_after() {
        let t0 = Instant::now();
        let stable = Duration::from_secs(2);
        let mut major = Tracker::new("n1", Strategy::KeepMajority, stable, t0);
        let mut minor = Tracker::new("n3", Strategy::KeepMajority, stable, t0);
        let all = set(&["n1", "n2", "n3"]);
        let none = BTreeSet::new();
        assert_eq!(major.observe(&all, &none, t0), Verdict::Healthy);
        assert_eq!(minor.observe(&all, &none, t0), Verdict::Healthy);

        let t1 = t0 + Duration::from_secs(10);
        let (a, b) = (set(&["n1", "n2"]), set(&["n3"]));
        assert_eq!(major.observe(&a, &none, t1), Verdict::Undecided);
        assert_eq!(minor.observe(&b, &none, t1), Verdict::Undecided);
        let t2 = t1 + Duration::from_millis(1999);
        assert_eq!(major.observe(&a, &none, t2), Verdict::Undecided);
        let t3 = t1 + stable;
        assert_eq!(
            major.observe(&a, &none, t3),
            Verdict::Win {
                down: vec!["n3".into()]
            }
        );
        assert!(matches!(minor.observe(&b, &none, t3), Verdict::Lose { .. }));
        // Placement keeps the unreachable member until it is downed.
        assert_eq!(major.placement(), ["n1", "n2", "n3"]);
        major.down("n3");
        assert_eq!(major.placement(), ["n1", "n2"]);
        assert_eq!(major.observe(&a, &none, t3), Verdict::Healthy);

        // Heal: the loser reaches everyone it knew again; the winners count it again.
        let t4 = t3 + Duration::from_secs(5);
        assert_eq!(minor.observe(&all, &none, t4), Verdict::Healthy);
        assert_eq!(major.observe(&all, &none, t4), Verdict::Healthy);
        assert_eq!(major.placement(), ["n1", "n2", "n3"]);
    }

    #[test]
    fn a_change_in_the_unreachable_set_restarts_the_wait() {
        let t0 = Instant::now();
        let stable = Duration::from_secs(2);
        let mut t = Tracker::new("n1", Strategy::KeepMajority, stable, t0);
        let none = BTreeSet::new();
        t.observe(&set(&["n1", "n2", "n3", "n4", "n5"]), &none, t0);
        let t1 = t0 + Duration::from_secs(1);
        t.observe(&set(&["n1", "n2", "n3", "n4"]), &none, t1);
        let t2 = t1 + Duration::from_millis(1500);
        assert_eq!(
            t.observe(&set(&["n1", "n2", "n3"]), &none, t2),
            Verdict::Undecided
        );
        let t3 = t1 + Duration::from_millis(3000);
        assert_eq!(
            t.observe(&set(&["n1", "n2", "n3"]), &none, t3),
            Verdict::Undecided
        );
        let t4 = t2 + stable;
        assert_eq!(
            t.observe(&set(&["n1", "n2", "n3"]), &none, t4),
            Verdict::Win {
                down: vec!["n4".into(), "n5".into()]
            }
        );
    }

    #[test]
    fn members_that_left_gracefully_are_not_counted() {
        let t0 = Instant::now();
        let mut t = Tracker::new("n1", Strategy::KeepMajority, Duration::ZERO, t0);
        let none = BTreeSet::new();
        t.observe(&set(&["n1", "n2", "n3"]), &none, t0);
        // n2 and n3 leave: n1 alone is still the whole cluster, not a minority.
        assert_eq!(
            t.observe(&set(&["n1"]), &set(&["n2", "n3"]), t0),
            Verdict::Healthy
        );
        assert_eq!(t.placement(), ["n1"]);
    }

    #[test]
    fn after_a_loss_of_two_of_three_the_lone_survivor_fences_itself() {
        let t0 = Instant::now();
        let mut t = Tracker::new("n2", Strategy::KeepMajority, Duration::ZERO, t0);
        let none = BTreeSet::new();
        t.observe(&set(&["n1", "n2", "n3"]), &none, t0);
        match t.observe(&set(&["n2"]), &none, t0) {
            Verdict::Lose { reason } => {
                assert!(reason.contains("reaches 1 of 3"), "{reason}");
                assert!(reason.contains("n1, n3"), "{reason}");
            }
            v => panic!("expected a loss, got {v:?}"),
        }
    }
}
