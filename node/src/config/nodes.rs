//! `[[nodes]]` and the selection of the node this process runs as (`--name` /
//! `TROUPE_NODE_NAME`), with its address overrides (flags, then `TROUPE_*_ADDR`).
//!
//! A node binds its `cluster_addr` and tells peers to reach it at its
//! `advertise_cluster_addr` (default: the bind address). The two differ behind NAT or in a
//! container, where a node binds `0.0.0.0:7101` and is reached at a name or address it
//! cannot see on its own interfaces; an unspecified bind address therefore needs an explicit
//! advertised one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Value;

use super::reader::{any, mismatch, name_chars, Reader, Section};
use super::{Overrides, PeerAddr};

/// Cluster address used when there is no `[[nodes]]` entry to take it from.
pub(super) const DEFAULT_CLUSTER_ADDR: &str = "127.0.0.1:7101";
/// HTTP address used when there is no `[[nodes]]` entry to take it from.
pub(super) const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7181";
/// gRPC address used when there is no `[[nodes]]` entry to take it from.
pub(super) const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:7191";

/// One `[[nodes]]` entry, or the selected node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name, unique in the cluster: 1-64 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// TCP (ractor_cluster) and UDP (gossip) address, same port number.
    pub cluster_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Where peers dial and gossip to this node (`IP:port` or `host:port`); the same port
    /// number carries TCP and UDP. Default: `cluster_addr`.
    pub advertise_cluster_addr: PeerAddr,
}

/// One `[[nodes]]` entry as far as it could be read.
#[derive(Default)]
pub(super) struct PartialNode {
    path: String,
    pub(super) name: Option<String>,
    pub(super) cluster_addr: Option<SocketAddr>,
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) grpc_addr: Option<SocketAddr>,
    /// `advertise_cluster_addr` when the entry gives a good one.
    pub(super) advertise_cluster_addr: Option<PeerAddr>,
    /// The entry gives `advertise_cluster_addr`, good or bad.
    advertise_given: bool,
    /// `tls_cert`: this node's certificate (default `<dir of cluster.tls.ca>/<name>.pem`).
    pub(super) tls_cert: Option<PathBuf>,
    /// `tls_key`: this node's private key (default `<dir of cluster.tls.ca>/<name>.key`).
    pub(super) tls_key: Option<PathBuf>,
}

impl PartialNode {
    pub(super) fn complete(&self) -> Option<Node> {
        Some(Node {
            name: self.name.clone()?,
            cluster_addr: self.cluster_addr?,
            http_addr: self.http_addr?,
            grpc_addr: self.grpc_addr?,
            advertise_cluster_addr: self.peer_addr()?,
        })
    }

    /// Where peers reach this entry's node: its advertised address, else its cluster address.
    pub(super) fn peer_addr(&self) -> Option<PeerAddr> {
        let bound = self.cluster_addr.map(PeerAddr::Addr);
        self.advertise_cluster_addr.clone().or(bound)
    }

    /// Its cluster address binds every interface and nothing says where peers reach it.
    fn unadvertised(&self) -> bool {
        !self.advertise_given && self.cluster_addr.is_some_and(|a| a.ip().is_unspecified())
    }

    /// `tls_cert` and `tls_key` with their keys.
    pub(super) fn tls_paths(&self) -> [(String, Option<PathBuf>); 2] {
        [
            (format!("{}.tls_cert", self.path), self.tls_cert.clone()),
            (format!("{}.tls_key", self.path), self.tls_key.clone()),
        ]
    }

    fn addrs(&self) -> [(&'static str, Option<SocketAddr>); 3] {
        [
            ("cluster_addr", self.cluster_addr),
            ("http_addr", self.http_addr),
            ("grpc_addr", self.grpc_addr),
        ]
    }
}

impl Reader<'_> {
    /// Reads `[[nodes]]` and checks names and addresses are unique.
    pub(super) fn nodes(&mut self, root: &mut Section<'_>) -> Vec<PartialNode> {
        let entries: &[Value] = match root.take("nodes") {
            None => &[],
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                self.error("nodes", mismatch("an array of tables ([[nodes]])", other));
                &[]
            }
        };
        let mut nodes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let path = format!("nodes[{i}]");
            let Value::Table(table) = entry else {
                self.error(path, mismatch("a table", entry));
                continue;
            };
            let mut section = Section::new(path.clone(), Some(table));
            let advertise_given = section.has("advertise_cluster_addr");
            let node = PartialNode {
                path,
                name: self.required(&mut section, "name", &name_chars("")),
                cluster_addr: self.required(&mut section, "cluster_addr", &any),
                http_addr: self.required(&mut section, "http_addr", &any),
                grpc_addr: self.required(&mut section, "grpc_addr", &any),
                advertise_cluster_addr: self.get(
                    &mut section,
                    "advertise_cluster_addr",
                    None,
                    &advertisable,
                ),
                advertise_given,
                tls_cert: self.get(&mut section, "tls_cert", None, &any),
                tls_key: self.get(&mut section, "tls_key", None, &any),
            };
            self.finish(section);
            nodes.push(node);
        }

        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut addrs: HashMap<SocketAddr, String> = HashMap::new();
        for node in &nodes {
            if let Some(name) = &node.name {
                if let Some(first) = names.insert(name, &node.path) {
                    let message = format!("duplicate node name {name:?} (also {first})");
                    self.error(format!("{}.name", node.path), message);
                }
            }
            for (field, addr) in node.addrs() {
                // Port 0 means "any free port": it cannot collide.
                let Some(addr) = addr.filter(|addr| addr.port() != 0) else {
                    continue;
                };
                let key = format!("{}.{field}", node.path);
                if let Some(first) = addrs.get(&addr) {
                    let message = format!("{addr} is already used by {first}");
                    self.error(key, message);
                } else {
                    addrs.insert(addr, key);
                }
            }
        }
        nodes
    }

    /// Picks the node this process runs as and applies address overrides.
    pub(super) fn select_node(
        &mut self,
        nodes: &[PartialNode],
        overrides: &Overrides,
    ) -> Option<Node> {
        let check_name = name_chars("");
        let flag_name = self.text("--name", overrides.name.as_deref(), &check_name);
        let env_name = self.text(
            "TROUPE_NODE_NAME",
            self.env("TROUPE_NODE_NAME"),
            &check_name,
        );
        let name_given = overrides.name.is_some() || self.env("TROUPE_NODE_NAME").is_some();

        // Each address: (flag, env var, flag value, env value).
        let layers = [
            (
                "--cluster-addr",
                "TROUPE_CLUSTER_ADDR",
                &overrides.cluster_addr,
            ),
            ("--http-addr", "TROUPE_HTTP_ADDR", &overrides.http_addr),
            ("--grpc-addr", "TROUPE_GRPC_ADDR", &overrides.grpc_addr),
        ];
        let mut addr_given = [false; 3];
        let mut addr_keys = [""; 3];
        let mut addrs: [Option<SocketAddr>; 3] = [None; 3];
        for (i, (flag, env, value)) in layers.into_iter().enumerate() {
            let flag_addr = self.text(flag, value.as_deref(), &any);
            let env_addr = self.text(env, self.env(env), &any);
            addr_given[i] = value.is_some() || self.env(env).is_some();
            addr_keys[i] = if value.is_some() { flag } else { env };
            addrs[i] = flag_addr.or(env_addr);
        }

        let flag_advertise = self.text(
            "--advertise-cluster-addr",
            overrides.advertise_cluster_addr.as_deref(),
            &advertisable,
        );
        let env_advertise = self.text(
            "TROUPE_ADVERTISE_CLUSTER_ADDR",
            self.env("TROUPE_ADVERTISE_CLUSTER_ADDR"),
            &advertisable,
        );
        let advertise_given = overrides.advertise_cluster_addr.is_some()
            || self.env("TROUPE_ADVERTISE_CLUSTER_ADDR").is_some();

        let name = if name_given {
            flag_name.or(env_name)?
        } else if let [only] = nodes {
            only.name.clone()?
        } else {
            self.error(
                "node",
                "no node name given (use --name or TROUPE_NODE_NAME)",
            );
            return None;
        };

        let entry = nodes.iter().find(|n| n.name.as_ref() == Some(&name));
        let defaults = match entry {
            Some(entry) => entry.addrs().map(|(_, addr)| addr),
            None if nodes.is_empty() => {
                [DEFAULT_CLUSTER_ADDR, DEFAULT_HTTP_ADDR, DEFAULT_GRPC_ADDR]
                    .map(|addr| addr.parse().ok())
            }
            None if addr_given.iter().all(|given| *given) => [None; 3],
            None => {
                let known: Vec<&str> = nodes.iter().filter_map(|n| n.name.as_deref()).collect();
                let message = format!(
                    "no [[nodes]] entry named {name:?} (known: {})",
                    known.join(", ")
                );
                self.error("node", message);
                return None;
            }
        };
        let [cluster_addr, http_addr, grpc_addr] = [0, 1, 2].map(|i| addrs[i].or(defaults[i]));
        let cluster_addr = cluster_addr?;
        let advertised = (flag_advertise.or(env_advertise))
            .or_else(|| entry.and_then(|e| e.advertise_cluster_addr.clone()));
        // Every other entry is a default seed: each must say where it is reached too.
        for other in nodes.iter().filter(|n| n.name.as_ref() != Some(&name)) {
            if other.unadvertised() {
                let key = format!("{}.advertise_cluster_addr", other.path);
                self.error(key, unadvertised_message(other.cluster_addr));
            }
        }
        let advertise_given = advertise_given || entry.is_some_and(|e| e.advertise_given);
        if advertised.is_none() && cluster_addr.ip().is_unspecified() && !advertise_given {
            let key = entry.map_or("advertise_cluster_addr".to_owned(), |e| {
                format!("{}.advertise_cluster_addr", e.path)
            });
            self.error(key, unadvertised_message(Some(cluster_addr)));
        }
        let node = Node {
            name,
            cluster_addr,
            http_addr: http_addr?,
            grpc_addr: grpc_addr?,
            advertise_cluster_addr: advertised.unwrap_or(PeerAddr::Addr(cluster_addr)),
        };

        // Collisions among file addresses are reported by `nodes`; only
        // check again when an override changed something.
        if addr_given.iter().any(|given| *given) {
            let effective = [node.cluster_addr, node.http_addr, node.grpc_addr];
            for i in 0..3 {
                for j in 0..i {
                    let given = addr_given[i] || addr_given[j];
                    if given && effective[i] == effective[j] && effective[i].port() != 0 {
                        let key = if addr_given[i] {
                            addr_keys[i]
                        } else {
                            addr_keys[j]
                        };
                        let message = format!(
                            "{} and {} are both {}",
                            layers[j].0.trim_start_matches('-'),
                            layers[i].0.trim_start_matches('-'),
                            effective[i]
                        );
                        self.error(key, message);
                    }
                }
            }
        }
        Some(node)
    }
}

/// An advertised address must be one a peer can dial: not `0.0.0.0` / `::`, not port 0.
fn advertisable(addr: &PeerAddr) -> Result<(), String> {
    match addr {
        PeerAddr::Addr(a) if a.ip().is_unspecified() => Err(format!(
            "{a} is not an address a peer can dial; give this node's reachable IP or host name"
        )),
        PeerAddr::Addr(a) if a.port() == 0 => Err(format!("{a} has no port")),
        _ => Ok(()),
    }
}

/// Why a node that binds every interface needs an advertised address.
fn unadvertised_message(cluster_addr: Option<SocketAddr>) -> String {
    let bound = cluster_addr.map_or_else(String::new, |a| format!(" {a}"));
    format!(
        "missing: cluster_addr{bound} binds every interface, so peers cannot dial it; set the \
         address they reach this node at (advertise_cluster_addr in its [[nodes]] entry, \
         --advertise-cluster-addr or TROUPE_ADVERTISE_CLUSTER_ADDR)"
    )
}
