//! `[[nodes]]` and the selection of the node this process runs as (`--name` /
//! `TROUPE_NODE_NAME`), with its address overrides (flags, then `TROUPE_*_ADDR`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Value;

use super::reader::{any, mismatch, name_chars, Reader, Section};
use super::Overrides;

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
}

/// One `[[nodes]]` entry as far as it could be read.
#[derive(Default)]
pub(super) struct PartialNode {
    path: String,
    pub(super) name: Option<String>,
    pub(super) cluster_addr: Option<SocketAddr>,
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) grpc_addr: Option<SocketAddr>,
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
        })
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
            let node = PartialNode {
                path,
                name: self.required(&mut section, "name", &name_chars("")),
                cluster_addr: self.required(&mut section, "cluster_addr", &any),
                http_addr: self.required(&mut section, "http_addr", &any),
                grpc_addr: self.required(&mut section, "grpc_addr", &any),
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
        let node = Node {
            name,
            cluster_addr: cluster_addr?,
            http_addr: http_addr?,
            grpc_addr: grpc_addr?,
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
