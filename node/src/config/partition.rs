//! `[cluster.partition]`: how a network split is decided and how long a node lease lasts
//! (see `troupe_actors::mesh::partition`).

use std::time::Duration;

use troupe_actors::mesh::partition::{Config as Partition, Strategy};

use super::reader::{at_least, between, Reader, Section};

/// The strategy names `strategy` accepts.
const STRATEGIES: [&str; 2] = ["keep-majority", "static-quorum"];

impl Reader<'_> {
    /// Reads `[cluster.partition]` inside `cluster`; defaults for what is not given.
    pub(super) fn partition(&mut self, cluster: &mut Section<'_>) -> Partition {
        let defaults = Partition::default();
        let mut section = self.section(cluster, "partition");
        let env = Some("TROUPE_CLUSTER_PARTITION_STRATEGY");
        let strategy_given = section.has("strategy");
        let strategy: Option<String> = self.get(&mut section, "strategy", env, &|s: &String| {
            if STRATEGIES.contains(&s.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "must be one of {}, got {s:?}",
                    STRATEGIES.join(", ")
                ))
            }
        });
        let has_quorum = section.has("quorum");
        let quorum: Option<usize> = self.get(&mut section, "quorum", None, &at_least(1));
        let stable_ms = self.get(&mut section, "stable_after_ms", None, &between(100, 60_000));
        let lease_ms = self.get(&mut section, "lease_ttl_ms", None, &between(1_000, 600_000));
        let strategy = match strategy.as_deref() {
            Some("static-quorum") => match quorum {
                Some(q) => Strategy::StaticQuorum(q),
                None => {
                    if !has_quorum {
                        self.error(section.key("quorum"), "missing: static-quorum needs the quorum size (more than half of the nodes)");
                    }
                    defaults.strategy
                }
            },
            _ => {
                // A bad strategy or quorum value is reported already.
                if quorum.is_some() && !(strategy_given && strategy.is_none()) {
                    self.error(
                        section.key("quorum"),
                        "only with strategy = \"static-quorum\"",
                    );
                }
                Strategy::KeepMajority
            }
        };
        self.finish(section);
        Partition {
            strategy,
            stable_after: stable_ms.map_or(defaults.stable_after, Duration::from_millis),
            lease_ttl: lease_ms.map_or(defaults.lease_ttl, Duration::from_millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use troupe_actors::mesh::partition::Strategy;

    use crate::config::parse;
    use crate::config::tests::{env, errors, keys, named, SAMPLE};

    /// The sample with its `[cluster.partition]` keys replaced by `body`.
    fn with_partition(body: &str) -> String {
        let kept: Vec<&str> = SAMPLE
            .lines()
            .filter(|l| {
                !["strategy =", "stable_after_ms =", "lease_ttl_ms ="]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect();
        kept.join("\n").replace(
            "[cluster.partition]\n",
            &format!("[cluster.partition]\n{body}"),
        )
    }

    #[test]
    fn keep_majority_is_the_default_and_every_setting_reaches_the_mesh() {
        let config = parse(SAMPLE, "t", &named("n1"), &env(&[])).unwrap();
        let p = &config.cluster.partition;
        assert_eq!(p.strategy, Strategy::KeepMajority);
        assert_eq!(p.stable_after, Duration::from_secs(2));
        assert_eq!(p.lease_ttl, Duration::from_secs(4));

        let text = with_partition(
            "strategy = \"static-quorum\"\nquorum = 2\nstable_after_ms = 1500\nlease_ttl_ms = 9000\n",
        );
        let config = parse(&text, "t", &named("n1"), &env(&[])).unwrap();
        let settings = crate::settings(&config, 1);
        let p = settings.membership.partition;
        assert_eq!(p.strategy, Strategy::StaticQuorum(2));
        assert_eq!(p.stable_after, Duration::from_millis(1500));
        assert_eq!(p.lease_ttl, Duration::from_millis(9000));

        let config = parse(
            SAMPLE,
            "t",
            &named("n1"),
            &env(&[("TROUPE_CLUSTER_PARTITION_STRATEGY", "keep-majority")]),
        )
        .unwrap();
        assert_eq!(config.cluster.partition.strategy, Strategy::KeepMajority);
    }

    #[test]
    fn every_bad_partition_setting_is_reported_at_once() {
        let bad = |body: &str| {
            let text = with_partition(body);
            let errors = errors(&text, &named("n1"), &env(&[]));
            let mut found: Vec<String> = keys(&errors).into_iter().map(String::from).collect();
            found.sort_unstable();
            (found, errors.to_string())
        };
        let (found, text) = bad(
            "strategy = \"majority\"\nstable_after_ms = 5\nlease_ttl_ms = 10\nquorum = 0\nfoo = 1\n",
        );
        assert_eq!(
            found,
            [
                "cluster.partition.foo",
                "cluster.partition.lease_ttl_ms",
                "cluster.partition.quorum",
                "cluster.partition.stable_after_ms",
                "cluster.partition.strategy",
            ],
            "{text}"
        );
        assert!(
            text.contains("must be one of keep-majority, static-quorum"),
            "{text}"
        );
        let (found, text) = bad("strategy = \"static-quorum\"\n");
        assert_eq!(found, ["cluster.partition.quorum"], "{text}");
        assert!(
            text.contains("static-quorum needs the quorum size"),
            "{text}"
        );
        let (found, text) = bad("quorum = 2\n");
        assert_eq!(found, ["cluster.partition.quorum"], "{text}");
        assert!(text.contains("only with strategy"), "{text}");
    }
}
