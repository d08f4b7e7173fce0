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
                if has_quorum {
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
