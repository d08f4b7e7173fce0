//! Node configuration: `cluster.toml`, `TROUPE_*` environment variables and
//! command-line overrides, merged into one validated [`Config`].
//!
//! Precedence is file < environment < command line. The whole configuration
//! is read and checked before anything starts, and every problem found is
//! reported at once ([`ConfigErrors`]), each keyed by where the bad value came
//! from: a TOML key path (`services.workers`, `nodes[1].http_addr`), an
//! environment variable (`TROUPE_SERVICES_WORKERS`) or a flag (`--http-addr`).
//!
//! The file is parsed into a [`toml::Table`] and walked with small typed
//! getters (see `reader::Setting`) rather than deserialized with serde, so that all
//! unknown keys and type errors are collected instead of only the first.
//!
//! # Layout
//! - `mod.rs`: [`Config`], [`Overrides`], the errors, and the entry points [`load`] and
//!   [`parse`], which read every section in turn and assemble the result.
//! - `reader.rs`: the generic reader: typed settings, the validation rules several
//!   sections share, the TOML table being read, and the `Reader` that applies `TROUPE_*`
//!   overrides and collects every error.
//! - One file per section, each with its type, its own rules and its `impl Reader`
//!   method: `cluster.rs` (`[cluster]`), `tls.rs` (`[cluster.tls]`, `insecure_plaintext`
//!   and the TLS files of a node), `admin.rs` (`[admin]`), `storage.rs`
//!   (`[storage]`), `auth.rs` (`[auth]`), `http.rs` (`[http]`), `grpc.rs` (`[grpc]`),
//!   `images.rs` (`[images]`), `limits.rs` (`[limits]` and `[quotas]`),
//!   `services.rs` (`[services]` and `[services.<name>]`), `sso.rs` (`[sso]` and
//!   `[[sso.providers]]`), `supervision.rs`
//!   (`[supervision]`), `log.rs` (`[log]`), `telemetry.rs` (`[telemetry]`), `tasks.rs` (`[tasks]`), `reminders.rs`
//!   (`[reminders]`), `ws.rs` (`[ws]` and
//!   `[chat]`), `events.rs` (`[events]`, `[mqtt]`, `[smtp]`, `[notifications]`),
//!   `health.rs` (`[health]`: the dependency checks) and `nodes.rs` (`[[nodes]]` and the choice of the node this process runs as).
//! - `tests.rs`: tests of the whole file (defaults, precedence, every error at once); a
//!   section's own tests sit in its file.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use toml::Table;

mod admin;
mod auth;
mod cluster;
mod events;
mod grpc;
mod health;
mod http;
mod images;
mod limits;
mod log;
mod nodes;
mod partition;
mod reader;
mod reminders;
mod services;
mod sso;
mod storage;
mod supervision;
mod tasks;
mod telemetry;
#[cfg(test)]
mod tests;
mod tls;
mod ws;

pub use admin::Admin;
pub use auth::Auth;
pub use cluster::{Cluster, PeerAddr, Seed};
pub use events::{Events, Mqtt, Notifications, Smtp};
pub use grpc::Grpc;
pub use health::Health;
pub use http::Http;
pub use images::Images;
pub use limits::{Limits, Quotas};
pub use log::{Log, LogFormat};
pub use nodes::Node;
pub use reminders::Reminders;
pub use services::Services;
pub use sso::{Provider as SsoProvider, Sso};
pub use storage::Storage;
pub use supervision::Supervision;
pub use tasks::Tasks;
pub use telemetry::Telemetry;
pub use tls::Files as TlsFiles;
pub use ws::Ws;

use nodes::PartialNode;
use reader::{any, Reader, Section};

/// The complete, validated configuration of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[cluster]`: membership and node-to-node sessions.
    pub cluster: Cluster,
    /// `[admin]`: access to the admin endpoints.
    pub admin: Admin,
    /// `[storage]`: the SQL store.
    pub storage: Storage,
    /// `[auth]`: tokens, passwords, login limits.
    pub auth: Auth,
    /// `[http]`: the HTTP front end.
    pub http: Http,
    /// `[grpc]`: the gRPC listener's limits.
    pub grpc: Grpc,
    /// `[images]`: image uploads (gRPC) and their public URLs.
    pub images: Images,
    /// `[limits]`: rate limits other than logins'.
    pub limits: Limits,
    /// `[quotas]`: per-user quotas.
    pub quotas: Quotas,
    /// `[services]`: service actors hosted on every node.
    pub services: Services,
    /// `[sso]` and `[[sso.providers]]`: OpenID Connect sign-in; off without providers.
    pub sso: Sso,
    /// `[supervision]`: restart policy of supervised actors.
    pub supervision: Supervision,
    /// `[log]`: logging output.
    pub log: Log,
    /// `[telemetry]`: OTLP export of request spans; off without `otlp_endpoint`.
    pub telemetry: Telemetry,
    /// `[tasks]`: the tasks service.
    pub tasks: Tasks,
    /// `[reminders]`: lead times and the keeper's poll.
    pub reminders: Reminders,
    /// `[ws]` and `[chat]`: WebSocket connections and chat messages.
    pub ws: Ws,
    /// `[events]`: outbox delivery retries.
    pub events: Events,
    /// `[mqtt]`: the MQTT bridge; off when absent.
    pub mqtt: Option<Mqtt>,
    /// `[smtp]`: the email channel; off when absent.
    pub smtp: Option<Smtp>,
    /// `[notifications]`: emailed codes.
    pub notifications: Notifications,
    /// `[health]`: the dependency checks behind `/health`.
    pub health: Health,
    /// `data_dir`: directory for node-local state.
    pub data_dir: PathBuf,
    /// `[[nodes]]`: every node listed in the file, as written there (an
    /// address override for the selected node is reflected in
    /// [`Config::node`] only).
    pub nodes: Vec<Node>,
    /// The node this process runs as, with overrides applied.
    pub node: Node,
}

/// Command-line overrides (highest precedence), all optional.
///
/// Errors in these values are keyed by flag: `--name`, `--cluster-addr`,
/// `--http-addr`, `--grpc-addr`, `--advertise-cluster-addr`, `--seed` and `--data-dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Name of the node to run as.
    pub name: Option<String>,
    /// Cluster address of this node (`IP:port`).
    pub cluster_addr: Option<String>,
    /// HTTP address of this node (`IP:port`).
    pub http_addr: Option<String>,
    /// gRPC address of this node (`IP:port`).
    pub grpc_addr: Option<String>,
    /// Where peers reach this node's cluster address (`IP:port` or `host:port`).
    pub advertise_cluster_addr: Option<String>,
    /// Seed addresses; each item may itself be comma-separated. When
    /// non-empty, replaces the seeds from the file and environment.
    pub seeds: Vec<String>,
    /// Directory for node-local state.
    pub data_dir: Option<String>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the bad value came from: a TOML key path, an environment
    /// variable, a flag, the file name, or `node` for node selection.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads the file at `path` (if any) and parses it with [`parse`].
///
/// With `path` `None`, every setting takes its default, except the node name
/// and cookie, which must then come from `overrides` or `env`.
pub fn load(
    path: Option<&Path>,
    overrides: &Overrides,
    env: &HashMap<String, String>,
) -> Result<Config, ConfigErrors> {
    match path {
        None => parse("", "<defaults>", overrides, env),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, &path.display().to_string(), overrides, env),
            Err(error) => Err(ConfigErrors(vec![ConfigError {
                key: path.display().to_string(),
                message: format!("cannot read config file: {error}"),
            }])),
        },
    }
}

/// Parses configuration `text` (named `source` in errors), applies the
/// `TROUPE_*` variables of `env` and then `overrides`, and validates it all.
pub fn parse(
    text: &str,
    source: &str,
    overrides: &Overrides,
    env: &HashMap<String, String>,
) -> Result<Config, ConfigErrors> {
    let table: Table = text.parse().map_err(|error: toml::de::Error| {
        let message = match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: {}", error.message().trim())
            }
            None => error.message().trim().to_owned(),
        };
        let key = source.to_owned();
        ConfigErrors(vec![ConfigError { key, message }])
    })?;
    let mut reader = Reader {
        errors: Vec::new(),
        env,
    };
    let config = reader.config(&table, overrides);
    match config {
        Some(config) if reader.errors.is_empty() => Ok(config),
        None if reader.errors.is_empty() => Err(ConfigErrors(vec![ConfigError {
            key: source.to_owned(),
            message: "incomplete configuration".to_owned(),
        }])),
        _ => Err(ConfigErrors(reader.errors)),
    }
}

/// The cookie of the sample `cluster.toml`: for one machine's development cluster only.
pub const SAMPLE_COOKIE: &str = "troupe-dev-cookie";
/// The signing secret of the sample `cluster.toml`: for one machine's development cluster only.
pub const SAMPLE_SIGNING_SECRET: &str = "troupe-dev-signing-key-0123456789abcdef";

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Reader<'_> {
    /// The sample cookie and signing key are published in this repository: a node that
    /// listens on, or advertises, any address other than loopback refuses them, naming the
    /// setting.
    fn refuse_samples_off_loopback(
        &mut self,
        node: &Node,
        cluster: Option<&Cluster>,
        auth: Option<&Auth>,
    ) {
        let listened = [node.cluster_addr, node.http_addr, node.grpc_addr]
            .into_iter()
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string());
        let advertised = Some(&node.advertise_cluster_addr)
            .filter(|a| !a.is_loopback())
            .map(|a| a.to_string());
        let exposed: Vec<String> = listened.chain(advertised).collect();
        let Some(first) = exposed.first() else {
            return;
        };
        let why = format!(
            "the sample value from cluster.toml is refused on a node that listens on or \
             advertises {first}, which is not loopback; set a secret of your own"
        );
        if cluster.is_some_and(|c| c.cookie == SAMPLE_COOKIE) {
            self.error("cluster.cookie (TROUPE_CLUSTER_COOKIE)", why.clone());
        }
        if auth.is_some_and(|a| {
            a.keys
                .iter()
                .any(|(_, secret)| secret == SAMPLE_SIGNING_SECRET)
        }) {
            self.error("auth.keys (TROUPE_AUTH_KEYS)", why);
        }
    }

    /// Reads every section of `table` in turn, then assembles the [`Config`] (`None`
    /// when a required part is missing; the errors say why).
    fn config(&mut self, table: &Table, overrides: &Overrides) -> Option<Config> {
        let mut root = Section::new(String::new(), Some(table));
        let file_data_dir = self.get(&mut root, "data_dir", Some("TROUPE_DATA_DIR"), &any);
        let data_dir = self.text("--data-dir", overrides.data_dir.as_deref(), &any);
        let data_dir = data_dir.or(file_data_dir).unwrap_or_else(|| "data".into());

        let (cluster, explicit_seeds, security) = self.cluster(&mut root, overrides);

        let admin = self.admin(&mut root);
        let storage = self.storage(&mut root);
        let auth = self.auth(&mut root);

        let http = self.http(&mut root);
        let grpc = self.grpc(&mut root);
        let images = self.images(&mut root);
        let limits = self.limits(&mut root);
        let quotas = self.quotas(&mut root);
        let sso = self.sso(&mut root, &http);
        let services = self.services(&mut root);
        let supervision = self.supervision(&mut root);
        let log = self.log(&mut root);
        let telemetry = self.telemetry(&mut root);
        let tasks = self.tasks(&mut root);
        let reminders = self.reminders(&mut root);
        let ws = self.ws(&mut root, &http);
        let (events, mqtt, smtp, notifications) = self.event_sections(&mut root);
        let health = self.health(&mut root);
        let partial_nodes = self.nodes(&mut root);
        let node = self.select_node(&partial_nodes, overrides);
        self.finish(root);

        let node = node?;
        self.refuse_samples_off_loopback(&node, cluster.as_ref(), auth.as_ref());
        let tls = self.tls_files(&security, &node, &partial_nodes);
        // Seed with every other listed node unless told otherwise; never self.
        let seeds = explicit_seeds.unwrap_or_else(|| {
            let others = partial_nodes
                .iter()
                .filter(|n| n.name.as_ref() != Some(&node.name));
            others.filter_map(PartialNode::peer_addr).collect()
        });
        let mut seen = HashSet::new();
        let seeds = seeds
            .into_iter()
            .filter(|seed| {
                *seed != node.cluster_addr
                    && *seed != node.advertise_cluster_addr
                    && seen.insert(seed.clone())
            })
            .collect();
        let nodes = partial_nodes
            .iter()
            .filter_map(PartialNode::complete)
            .collect();
        Some(Config {
            cluster: Cluster {
                seeds,
                tls,
                ..cluster?
            },
            admin,
            storage,
            auth: auth?,
            http,
            grpc,
            images,
            limits,
            quotas,
            services,
            sso,
            supervision,
            log,
            telemetry,
            tasks,
            reminders,
            ws,
            events,
            mqtt,
            smtp,
            notifications,
            health,
            data_dir,
            nodes,
            node,
        })
    }
}
