//! `[cluster]`: the cluster's name and cookie, seeds, gossip and failure detection.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::reader::{any, at_least, between, min_chars, name_chars, positive, Reader, Section};
use super::Overrides;

/// `[cluster]` settings.
#[derive(Clone, PartialEq)]
pub struct Cluster {
    /// Cluster id; nodes configured with another name ignore each other.
    pub name: String,
    /// Shared secret for node-to-node sessions (at least 8 characters).
    pub cookie: String,
    /// Cluster addresses to contact first, never including this node's own.
    pub seeds: Vec<SocketAddr>,
    /// Interval between gossip rounds (`gossip_interval_ms`).
    pub gossip_interval: Duration,
    /// Phi-accrual failure detector threshold.
    pub phi_threshold: f64,
    /// Upper bound of the jittered backoff between dials to a member
    /// (`dial_backoff_max_ms`).
    pub dial_backoff_max: Duration,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("cookie", &"<redacted>")
            .field("seeds", &self.seeds)
            .field("gossip_interval", &self.gossip_interval)
            .field("phi_threshold", &self.phi_threshold)
            .field("dial_backoff_max", &self.dial_backoff_max)
            .finish()
    }
}

impl Reader<'_> {
    /// Reads `[cluster]`; the seeds are returned apart (`None`: not given)
    /// since their default depends on the selected node.
    pub(super) fn cluster(
        &mut self,
        root: &mut Section<'_>,
        overrides: &Overrides,
    ) -> (Option<Cluster>, Option<Vec<SocketAddr>>) {
        let mut section = self.section(root, "cluster");
        let name = self.get(
            &mut section,
            "name",
            Some("TROUPE_CLUSTER_NAME"),
            &name_chars("."),
        );
        let cookie_given = section.has("cookie") || self.env("TROUPE_CLUSTER_COOKIE").is_some();
        let cookie = self.get(
            &mut section,
            "cookie",
            Some("TROUPE_CLUSTER_COOKIE"),
            &min_chars(8),
        );
        if !cookie_given {
            self.error(
                section.key("cookie"),
                "missing (set [cluster] cookie or TROUPE_CLUSTER_COOKIE)",
            );
        }
        let seeds = self.list(&mut section, "seeds", Some("TROUPE_CLUSTER_SEEDS"), &any);
        let flag_seeds = overrides.seeds.iter().map(String::as_str);
        let seeds = self.text_list("--seed", flag_seeds, &any).or(seeds);
        let gossip_env = Some("TROUPE_CLUSTER_GOSSIP_INTERVAL_MS");
        let gossip_ms = self.get(
            &mut section,
            "gossip_interval_ms",
            gossip_env,
            &between(1, 10_000),
        );
        let phi_env = Some("TROUPE_CLUSTER_PHI_THRESHOLD");
        let phi_threshold = self.get(&mut section, "phi_threshold", phi_env, &positive);
        let dial_ms = self.get(&mut section, "dial_backoff_max_ms", None, &at_least(1));
        self.finish(section);
        let cluster = cookie.map(|cookie| Cluster {
            name: name.unwrap_or_else(|| "troupe-dev".to_owned()),
            cookie,
            seeds: Vec::new(),
            gossip_interval: Duration::from_millis(gossip_ms.unwrap_or(100)),
            phi_threshold: phi_threshold.unwrap_or(8.0),
            dial_backoff_max: Duration::from_millis(dial_ms.unwrap_or(1000)),
        });
        (cluster, seeds)
    }
}
