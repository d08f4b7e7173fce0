//! `[cluster.tls]`, `[cluster] insecure_plaintext` and the `tls_cert` / `tls_key` of a
//! `[[nodes]]` entry: how node-to-node sessions are secured.
//!
//! A node runs mutual TLS with `[cluster.tls] ca = "<path>"`; its own certificate and key
//! default to `<dir of ca>/<node>.pem` and `<dir of ca>/<node>.key` (what `troupe certs`
//! writes) and can be set per `[[nodes]]` entry. Plaintext needs an explicit
//! `insecure_plaintext = true`; with neither, the node refuses to start. Parsing only
//! records the paths; [`Files::load`] reads and checks the files when the node starts, with
//! errors that name the setting each path came from.

use std::path::{Path, PathBuf};

use troupe_actors::mesh::tls::{self, File, Tls};

use super::nodes::PartialNode;
use super::reader::{any, Reader, Section};
use super::{ConfigError, Node};

/// The TLS files of the selected node, with the settings they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The cluster CA certificate(s), PEM (`cluster.tls.ca`).
    pub ca: PathBuf,
    /// This node's certificate (chain), PEM.
    pub cert: PathBuf,
    /// This node's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// Where `ca`, `cert` and `key` were set, e.g. `nodes[1].tls_cert`, or for a default
    /// `cluster.tls.ca (default <path>)`.
    pub settings: [String; 3],
}

impl Files {
    /// Reads and checks the files for node `node`: each parses, the key matches the
    /// certificate, which chains to the CA, is valid now and names the node. The error
    /// names the setting at fault.
    pub fn load(&self, node: &str) -> Result<Tls, ConfigError> {
        Tls::load(node, &self.ca, &self.cert, &self.key).map_err(|e| {
            let setting = match e.file {
                File::Ca => &self.settings[0],
                File::Cert => &self.settings[1],
                File::Key => &self.settings[2],
            };
            ConfigError {
                key: setting.clone(),
                message: e.message,
            }
        })
    }
}

/// What `[cluster]` says about transport security, before the node is known.
#[derive(Default)]
pub(super) struct Security {
    /// `[cluster.tls] ca` (or `TROUPE_CLUSTER_TLS_CA`).
    ca: Option<PathBuf>,
    /// `[cluster] insecure_plaintext` (or `TROUPE_CLUSTER_INSECURE_PLAINTEXT`).
    insecure_plaintext: bool,
}

/// The key of `[cluster.tls] ca`.
const CA_KEY: &str = "cluster.tls.ca (TROUPE_CLUSTER_TLS_CA)";

impl Reader<'_> {
    /// Reads `insecure_plaintext` and `[cluster.tls]` of the `[cluster]` section.
    pub(super) fn security(&mut self, cluster: &mut Section<'_>) -> Security {
        let env = Some("TROUPE_CLUSTER_INSECURE_PLAINTEXT");
        let insecure_plaintext = self.get(cluster, "insecure_plaintext", env, &any);
        let mut section = self.section(cluster, "tls");
        let ca: Option<PathBuf> = self.get(&mut section, "ca", Some("TROUPE_CLUSTER_TLS_CA"), &any);
        self.finish(section);
        Security {
            ca,
            insecure_plaintext: insecure_plaintext.unwrap_or(false),
        }
    }

    /// The TLS files of `node` (`None`: plaintext), or an error when neither TLS nor
    /// plaintext was chosen, or both.
    pub(super) fn tls_files(
        &mut self,
        security: &Security,
        node: &Node,
        nodes: &[PartialNode],
    ) -> Option<Files> {
        let entry = nodes.iter().find(|n| n.name.as_ref() == Some(&node.name));
        let Some(ca) = &security.ca else {
            if !security.insecure_plaintext {
                self.error(
                    "cluster.tls",
                    "node-to-node sessions are not secured: set [cluster.tls] ca = \"<path>\" \
                     (mutual TLS; make certificates with `troupe certs`) or, on a network you \
                     trust, [cluster] insecure_plaintext = true",
                );
            }
            for (key, given) in entry.map(PartialNode::tls_paths).into_iter().flatten() {
                if given.is_some() {
                    self.error(key, "set without [cluster.tls] ca");
                }
            }
            return None;
        };
        if security.insecure_plaintext {
            self.error(
                "cluster.insecure_plaintext",
                "set together with [cluster.tls]; choose one",
            );
            return None;
        }
        if let Err(message) = tls::dns_name(&node.name) {
            self.error("node", message);
        }
        let dir = ca.parent().unwrap_or(Path::new(""));
        let mut settings = [CA_KEY.to_owned(), String::new(), String::new()];
        let mut paths = [PathBuf::new(), PathBuf::new()];
        let given = entry.map(PartialNode::tls_paths);
        for (i, ext) in ["pem", "key"].into_iter().enumerate() {
            let default = dir.join(format!("{}.{ext}", node.name));
            (paths[i], settings[i + 1]) = match given.as_ref().map(|g| &g[i]) {
                Some((key, Some(path))) => (path.clone(), key.clone()),
                _ => {
                    let key = format!("{CA_KEY} (default {})", default.display());
                    (default, key)
                }
            };
        }
        let [cert, key] = paths;
        Some(Files {
            ca: ca.clone(),
            cert,
            key,
            settings,
        })
    }
}
