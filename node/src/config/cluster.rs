//! `[cluster]`: the cluster's name and cookie, seeds, gossip and failure detection.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::reader::{any, at_least, between, min_chars, name_chars, positive, Reader, Section};
use super::tls::{Files, Security};
use super::Overrides;

/// `[cluster]` settings.
#[derive(Clone, PartialEq)]
pub struct Cluster {
    /// Cluster id; nodes configured with another name ignore each other.
    pub name: String,
    /// Shared secret for node-to-node sessions (at least 8 characters).
    pub cookie: String,
    /// Cluster addresses to contact first, never including this node's own.
    pub seeds: Vec<Seed>,
    /// Interval between gossip rounds (`gossip_interval_ms`).
    pub gossip_interval: Duration,
    /// Phi-accrual failure detector threshold.
    pub phi_threshold: f64,
    /// Upper bound of the jittered backoff between dials to a member
    /// (`dial_backoff_max_ms`).
    pub dial_backoff_max: Duration,
    /// How network splits are decided (`[cluster.partition]`).
    pub partition: troupe_actors::mesh::partition::Config,
    /// Mutual TLS between nodes (`[cluster.tls]`); `None` only with `insecure_plaintext`.
    pub tls: Option<Files>,
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
            .field("partition", &self.partition)
            .field("tls", &self.tls)
            .finish()
    }
}

/// An address peers reach a node at: an `IP:port`, or a `host:port` resolved again each time
/// it is used (so it may be a DNS name whose addresses change, e.g. a Kubernetes headless
/// service or a StatefulSet pod's stable name). Seeds and advertised cluster addresses
/// (`nodes.rs`) are both of this kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An address as given.
    Addr(SocketAddr),
    /// A host name and port, resolved by whoever dials it, each time.
    Host(String),
}

/// A seed: gossip resolves a host name again on every round.
pub type Seed = PeerAddr;

impl PeerAddr {
    /// `host:port` with a host of letters, digits, `-` and `.` (1-253 characters) and a port.
    pub(super) fn parse(text: &str) -> Result<PeerAddr, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse() {
            return Ok(PeerAddr::Addr(addr));
        }
        let bad = || format!("expected IP:port or host:port, got {text:?}");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = (1..=253).contains(&host.len())
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['-', '.']);
        match port.parse::<u16>() {
            Ok(p) if p > 0 && host_ok => Ok(PeerAddr::Host(text.to_owned())),
            _ => Err(bad()),
        }
    }

    /// A loopback address, or the host name `localhost`: reachable from this machine only.
    pub fn is_loopback(&self) -> bool {
        match self {
            PeerAddr::Addr(addr) => addr.ip().is_loopback(),
            PeerAddr::Host(host) => host
                .rsplit_once(':')
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case("localhost")),
        }
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Addr(addr) => write!(f, "{addr}"),
            PeerAddr::Host(host) => f.write_str(host),
        }
    }
}

impl PartialEq<SocketAddr> for PeerAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        matches!(self, PeerAddr::Addr(addr) if addr == other)
    }
}

impl super::reader::Setting for PeerAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        PeerAddr::parse(text)
    }
}

impl Reader<'_> {
    /// Reads `[cluster]`; the seeds and the transport security are returned apart
    /// (seeds `None`: not given) since their defaults depend on the selected node.
    pub(super) fn cluster(
        &mut self,
        root: &mut Section<'_>,
        overrides: &Overrides,
    ) -> (Option<Cluster>, Option<Vec<Seed>>, Security) {
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
        let partition = self.partition(&mut section);
        let security = self.security(&mut section);
        self.finish(section);
        let cluster = cookie.map(|cookie| Cluster {
            name: name.unwrap_or_else(|| "troupe-dev".to_owned()),
            cookie,
            seeds: Vec::new(),
            gossip_interval: Duration::from_millis(gossip_ms.unwrap_or(100)),
            phi_threshold: phi_threshold.unwrap_or(8.0),
            dial_backoff_max: Duration::from_millis(dial_ms.unwrap_or(1000)),
            partition,
            tls: None,
        });
        (cluster, seeds, security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_addresses_or_host_names_with_a_port() {
        assert_eq!(
            Seed::parse("10.0.0.1:7101"),
            Ok(Seed::Addr("10.0.0.1:7101".parse().unwrap()))
        );
        assert_eq!(
            Seed::parse(" troupe-0.troupe.default.svc.cluster.local:7101 "),
            Ok(Seed::Host(
                "troupe-0.troupe.default.svc.cluster.local:7101".into()
            ))
        );
        assert_eq!(
            Seed::parse("localhost:7101").unwrap().to_string(),
            "localhost:7101"
        );
        for bad in [
            "localhost",
            "host:0",
            "host:70000",
            ":7101",
            "-x:7101",
            "a b:7101",
            "h/x:1",
        ] {
            assert!(Seed::parse(bad).is_err(), "{bad}");
        }
    }
}
