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
//! getters (see [`Setting`]) rather than deserialized with serde, so that all
//! unknown keys and type errors are collected instead of only the first.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

mod events;
pub use events::{Events, Mqtt, Notifications, Smtp};

/// Cluster address used when there is no `[[nodes]]` entry to take it from.
const DEFAULT_CLUSTER_ADDR: &str = "127.0.0.1:7101";
/// HTTP address used when there is no `[[nodes]]` entry to take it from.
const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7181";
/// gRPC address used when there is no `[[nodes]]` entry to take it from.
const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:7191";

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
    /// `[images]`: image uploads (gRPC) and their public URLs.
    pub images: Images,
    /// `[services]`: service actors hosted on every node.
    pub services: Services,
    /// `[supervision]`: restart policy of supervised actors.
    pub supervision: Supervision,
    /// `[log]`: logging output.
    pub log: Log,
    /// `[tasks]`: the tasks service.
    pub tasks: Tasks,
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
    /// `data_dir`: directory for node-local state.
    pub data_dir: PathBuf,
    /// `[[nodes]]`: every node listed in the file, as written there (an
    /// address override for the selected node is reflected in
    /// [`Config::node`] only).
    pub nodes: Vec<Node>,
    /// The node this process runs as, with overrides applied.
    pub node: Node,
}

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

/// `[admin]` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// Bearer token for the admin endpoints (at least 16 characters), if any.
    pub token: Option<String>,
    /// Username of the bootstrap admin user.
    pub username: String,
    /// Email of the bootstrap admin user.
    pub email: String,
    /// Password of the bootstrap admin user; the user is created at start-up when set.
    pub password: Option<String>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        let password = self.password.as_ref().map(|_| "<redacted>");
        f.debug_struct("Admin")
            .field("token", &token)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &password)
            .finish()
    }
}

/// `[storage]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `postgres://...` or `sqlite:...`; `None` = the embedded SQLite file in `data_dir`.
    pub url: Option<String>,
}

/// `[auth]` settings.
#[derive(Clone, PartialEq)]
pub struct Auth {
    /// JWT signing keys as `(kid, secret)`; the first signs, all verify (rotation).
    pub keys: Vec<(String, String)>,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_ttl: Duration,
    /// PBKDF2 iterations of new password hashes.
    pub pbkdf2_iterations: u32,
    /// Login attempts allowed per account per minute.
    pub login_per_account_per_minute: u32,
    /// Login attempts allowed per client address per minute.
    pub login_per_ip_per_minute: u32,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Auth")
            .field("kids", &kids)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("pbkdf2_iterations", &self.pbkdf2_iterations)
            .field(
                "login_per_account_per_minute",
                &self.login_per_account_per_minute,
            )
            .field("login_per_ip_per_minute", &self.login_per_ip_per_minute)
            .finish()
    }
}

/// `[http]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Deadline of a whole HTTP request (`request_timeout_ms`).
    pub request_timeout: Duration,
    /// Strict CORS allow-list of origins such as `https://example.com`.
    pub cors_origins: Vec<String>,
}

/// `[images]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Largest accepted image, in bytes (1 KiB to 64 MiB).
    pub max_bytes: usize,
    /// Base of the public image URLs (`<public_url>/images/<id>`); `None` = this node's
    /// `http://<http_addr>`.
    pub public_url: Option<String>,
}

/// `[services]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Worker actors per service per node.
    pub workers: usize,
    /// In-flight requests per service per node before `resource_exhausted`.
    pub queue_capacity: usize,
    /// Default deadline of a mesh call (`call_timeout_ms`).
    pub call_timeout: Duration,
}

/// `[supervision]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// First restart delay; it doubles on each restart (`restart_base_ms`).
    pub restart_base: Duration,
    /// Upper bound of the restart delay (`restart_max_ms`).
    pub restart_max: Duration,
    /// Restarts allowed within `restart_window` before escalating.
    pub max_restarts: u32,
    /// Window over which restarts are counted (`restart_window_s`).
    pub restart_window: Duration,
}

/// `[tasks]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tasks {
    /// How often every node scans for unfinished tasks homed on it (`scan_interval_ms`).
    pub scan_interval: Duration,
    /// Claims a task may have before it is failed instead of claimed again.
    pub max_activations: u32,
}

/// `[ws]` settings, with `[chat] max_message_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ws {
    /// Largest frame (and message) a client may send, in bytes (`max_frame_bytes`).
    pub max_frame_bytes: usize,
    /// Frames waiting for one client before it is closed as too slow (`send_queue`).
    pub send_queue: usize,
    /// A connection without any frame from its client this long is closed (`idle_timeout_s`).
    pub idle_timeout: Duration,
    /// A ping goes out after this long without a frame from the client (`ping_interval_s`).
    pub ping_interval: Duration,
    /// `[chat] max_message_bytes`: the largest accepted message ciphertext.
    pub max_message_bytes: usize,
}

/// `[log]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Output format.
    pub format: LogFormat,
    /// An `EnvFilter` directive string such as `info,troupe=debug`.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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

/// Command-line overrides (highest precedence), all optional.
///
/// Errors in these values are keyed by flag: `--name`, `--cluster-addr`,
/// `--http-addr`, `--grpc-addr`, `--seed` and `--data-dir`.
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

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A value type that can be read from TOML and from text (env vars, flags).
trait Setting: Sized {
    /// Converts a TOML value; the default expects a string and delegates to
    /// [`Setting::from_text`].
    fn from_toml(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::from_text(text),
            other => Err(mismatch("a string", other)),
        }
    }

    /// Converts the text of an environment variable or flag.
    fn from_text(text: &str) -> Result<Self, String>;
}

impl Setting for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl Setting for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(PathBuf::from(text))
    }
}

impl Setting for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected an IP:port address, got {text:?}"))
    }
}

impl Setting for LogFormat {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected \"text\" or \"json\", got {text:?}")),
        }
    }
}

impl Setting for u64 {
    fn from_toml(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(i) => {
                u64::try_from(*i).map_err(|_| format!("must not be negative, got {i}"))
            }
            other => Err(mismatch("an integer", other)),
        }
    }

    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected a non-negative integer, got {text:?}"))
    }
}

/// Narrower unsigned integers, read as `u64` and range-checked.
macro_rules! narrow_setting {
    ($($ty:ty),*) => {$(
        impl Setting for $ty {
            fn from_toml(value: &Value) -> Result<Self, String> {
                u64::from_toml(value).and_then(narrow)
            }

            fn from_text(text: &str) -> Result<Self, String> {
                u64::from_text(text).and_then(narrow)
            }
        }
    )*};
}

narrow_setting!(usize, u32);

/// Converts `value` to a narrower integer type, or says it is too large.
fn narrow<T: TryFrom<u64>>(value: u64) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("{value} is too large"))
}

impl Setting for f64 {
    fn from_toml(value: &Value) -> Result<Self, String> {
        let number = match value {
            Value::Float(f) => *f,
            // Whole numbers such as `phi_threshold = 8` are fine too.
            Value::Integer(i) => *i as f64,
            other => return Err(mismatch("a number", other)),
        };
        finite(number)
    }

    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().parse() {
            Ok(number) => finite(number),
            Err(_) => Err(format!("expected a number, got {text:?}")),
        }
    }
}

/// Rejects NaN and infinities.
fn finite(number: f64) -> Result<f64, String> {
    if number.is_finite() {
        Ok(number)
    } else {
        Err(format!("expected a finite number, got {number}"))
    }
}

/// "expected `expected`, got a string"-style message.
fn mismatch(expected: &str, got: &Value) -> String {
    let got = match got {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    };
    format!("expected {expected}, got {got}")
}

/// A validation rule applied to every value given for a setting.
type Check<'c, T> = &'c dyn Fn(&T) -> Result<(), String>;

/// Accepts anything.
fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Requires `value >= min`.
fn at_least<T: PartialOrd + fmt::Display>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min}, got {value}"))
        }
    }
}

/// Requires `min <= value <= max`.
fn between<T: PartialOrd + fmt::Display>(min: T, max: T) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min && *value <= max {
            Ok(())
        } else {
            Err(format!("must be between {min} and {max}, got {value}"))
        }
    }
}

/// Requires a string of at least `min` characters (the value is not echoed:
/// it may be a secret).
fn min_chars(min: usize) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        let len = value.chars().count();
        if len >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min} characters, got {len}"))
        }
    }
}

/// Requires a 1-64 character name of `[A-Za-z0-9_-]` (plus `extra`).
fn name_chars(extra: &'static str) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "must be 1-64 characters of A-Z, a-z, 0-9, '_', '-'{extra}, got {value:?}"
            ))
        }
    }
}

/// Requires a positive number.
fn positive(value: &f64) -> Result<(), String> {
    if *value > 0.0 {
        Ok(())
    } else {
        Err(format!("must be greater than 0, got {value}"))
    }
}

/// Requires an `EnvFilter` directive string.
fn log_directives(value: &String) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map(drop)
        .map_err(|error| format!("invalid filter directive {value:?}: {error}"))
}

/// `<section>.<key>`.
fn section_key(section: &str, key: &str) -> String {
    format!("{section}.{key}")
}

/// Requires `<kid>:<secret>` with a 1-64 character kid and a secret of 32+ characters (the
/// secret is not echoed).
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn signing_key(value: &String) -> Result<(), String> {
    match value.split_once(':') {
        Some((kid, secret))
            if !kid.is_empty() && kid.len() <= 64 && secret.chars().count() >= 32 =>
        {
            Ok(())
        }
        Some((kid, _)) if !kid.is_empty() && kid.len() <= 64 => Err(format!(
            "the secret of key {kid:?} must be at least 32 characters"
        )),
        _ => Err("expected \"<kid>:<secret>\"".to_owned()),
    }
}

/// Requires something shaped like an email address.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn email_like(value: &String) -> Result<(), String> {
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(()),
        _ => Err(format!("expected an email address, got {value:?}")),
    }
}

/// Requires a `postgres://`, `postgresql://` or `sqlite:` URL.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn storage_url(value: &String) -> Result<(), String> {
    if ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|p| value.starts_with(p))
    {
        Ok(())
    } else {
        Err("expected a postgres:// or sqlite: url".to_owned())
    }
}

/// Requires an exact origin such as `https://example.com:8443`.
fn cors_origin(value: &String) -> Result<(), String> {
    if value == "*" {
        return Err("wildcard origin is not allowed (strict allow-list)".to_owned());
    }
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match host {
        Some(host) if !host.is_empty() && !host.contains(['/', ' ', '*']) => Ok(()),
        _ => Err(format!(
            "expected an origin like \"https://example.com\" (no path), got {value:?}"
        )),
    }
}

/// Requires an `http://` or `https://` URL without query or fragment.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn public_url(value: &String) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ', '"', '<', '>']) => Ok(()),
        _ => Err(format!(
            "expected a URL like \"https://images.example.com\", got {value:?}"
        )),
    }
}

/// A TOML table being read; remembers the keys asked for so the rest can
/// be reported as unknown.
struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    used: HashSet<String>,
}

impl<'t> Section<'t> {
    fn new(path: String, table: Option<&'t Table>) -> Self {
        Section {
            path,
            table,
            used: HashSet::new(),
        }
    }

    /// Full key path of `key` in this section.
    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|table| table.contains_key(key))
    }

    /// The value of `key`, marking it known.
    fn take(&mut self, key: &str) -> Option<&'t Value> {
        self.used.insert(key.to_owned());
        self.table?.get(key)
    }
}

/// One `[[nodes]]` entry as far as it could be read.
#[derive(Default)]
struct PartialNode {
    path: String,
    name: Option<String>,
    cluster_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
}

impl PartialNode {
    fn complete(&self) -> Option<Node> {
        Some(Node {
            name: self.name.clone()?,
            cluster_addr: self.cluster_addr?,
            http_addr: self.http_addr?,
            grpc_addr: self.grpc_addr?,
        })
    }

    fn addrs(&self) -> [(&'static str, Option<SocketAddr>); 3] {
        [
            ("cluster_addr", self.cluster_addr),
            ("http_addr", self.http_addr),
            ("grpc_addr", self.grpc_addr),
        ]
    }
}

/// Collects errors while reading the layers of the configuration.
struct Reader<'e> {
    errors: Vec<ConfigError>,
    env: &'e HashMap<String, String>,
}

impl<'e> Reader<'e> {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    fn env(&self, name: &str) -> Option<&'e str> {
        self.env.get(name).map(String::as_str)
    }

    /// Keeps a parsed and checked value, or records why not.
    fn accept<T>(
        &mut self,
        key: &str,
        parsed: Result<T, String>,
        check: Check<'_, T>,
    ) -> Option<T> {
        match parsed.and_then(|value| check(&value).map(|()| value)) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// Parses the text of an env var or flag named `key`, if given.
    fn text<T: Setting>(
        &mut self,
        key: &str,
        text: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<T> {
        let text = text?;
        self.accept(key, T::from_text(text), check)
    }

    /// `key` of `section`, overridden by env var `env` when that is set.
    fn get<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        env: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<T> {
        let file = section
            .take(key)
            .and_then(|value| self.accept(&section.key(key), T::from_toml(value), check));
        let env = env.and_then(|name| self.text(name, self.env(name), check));
        env.or(file)
    }

    /// Like [`Reader::get`], but `key` must be present.
    fn required<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        check: Check<'_, T>,
    ) -> Option<T> {
        if !section.has(key) {
            self.error(section.key(key), "missing");
        }
        self.get(section, key, None, check)
    }

    /// A list from TOML array `key` of `section`, overridden by the
    /// comma-separated env var `env`. `None` when neither is given or an
    /// item is bad.
    fn list<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        env: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<Vec<T>> {
        let path = section.key(key);
        let file = match section.take(key) {
            None => None,
            Some(Value::Array(items)) => {
                let parsed: Vec<Option<T>> = (items.iter().enumerate())
                    .map(|(i, item)| {
                        self.accept(&format!("{path}[{i}]"), T::from_toml(item), check)
                    })
                    .collect();
                parsed.into_iter().collect()
            }
            Some(other) => {
                self.error(path, mismatch("an array", other));
                None
            }
        };
        let env = env.and_then(|name| self.text_list(name, self.env(name).into_iter(), check));
        env.or(file)
    }

    /// A list from comma-separated `texts` (env var or flag `key`); `None`
    /// when there are no texts or an item is bad.
    fn text_list<'a, T: Setting>(
        &mut self,
        key: &str,
        mut texts: impl Iterator<Item = &'a str>,
        check: Check<'_, T>,
    ) -> Option<Vec<T>> {
        let first = texts.next()?;
        let parsed: Vec<Option<T>> = std::iter::once(first)
            .chain(texts)
            .flat_map(|text| text.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| self.accept(key, T::from_text(item), check))
            .collect();
        parsed.into_iter().collect()
    }

    /// Sub-table `name` of `parent` (absent: an empty section).
    fn section<'t>(&mut self, parent: &mut Section<'t>, name: &str) -> Section<'t> {
        let path = parent.key(name);
        match parent.take(name) {
            Some(Value::Table(table)) => Section::new(path, Some(table)),
            Some(other) => {
                self.error(path.clone(), mismatch("a table", other));
                Section::new(path, None)
            }
            None => Section::new(path, None),
        }
    }

    /// Reports the keys of `section` that nobody asked for.
    fn finish(&mut self, section: Section<'_>) {
        let Some(table) = section.table else { return };
        for key in table.keys() {
            if !section.used.contains(key) {
                self.error(section.key(key), "unknown key");
            }
        }
    }

    fn config(&mut self, table: &Table, overrides: &Overrides) -> Option<Config> {
        let mut root = Section::new(String::new(), Some(table));
        let file_data_dir = self.get(&mut root, "data_dir", Some("TROUPE_DATA_DIR"), &any);
        let data_dir = self.text("--data-dir", overrides.data_dir.as_deref(), &any);
        let data_dir = data_dir.or(file_data_dir).unwrap_or_else(|| "data".into());

        let (cluster, explicit_seeds) = self.cluster(&mut root, overrides);

        let mut section = self.section(&mut root, "admin");
        let token = self.get(
            &mut section,
            "token",
            Some("TROUPE_ADMIN_TOKEN"),
            &min_chars(16),
        );
        let username = self.get(
            &mut section,
            "username",
            Some("TROUPE_ADMIN_USERNAME"),
            &min_chars(3),
        );
        let email = self.get(
            &mut section,
            "email",
            Some("TROUPE_ADMIN_EMAIL"),
            &email_like,
        );
        let password = self.get(
            &mut section,
            "password",
            Some("TROUPE_ADMIN_PASSWORD"),
            &min_chars(8),
        );
        self.finish(section);
        let admin = Admin {
            token,
            username: username.unwrap_or_else(|| "admin".to_owned()),
            email: email.unwrap_or_else(|| "admin@troupe.local".to_owned()),
            password,
        };

        let mut section = self.section(&mut root, "storage");
        let url = self.get(
            &mut section,
            "url",
            Some("TROUPE_STORAGE_URL"),
            &storage_url,
        );
        self.finish(section);
        let storage = Storage { url };
        let auth = self.auth(&mut root);

        let http = self.http(&mut root);
        let images = self.images(&mut root);
        let services = self.services(&mut root);
        let supervision = self.supervision(&mut root);
        let log = self.log(&mut root);
        let tasks = self.tasks(&mut root);
        let ws = self.ws(&mut root, &http);
        let (events, mqtt, smtp, notifications) = self.event_sections(&mut root);
        let partial_nodes = self.nodes(&mut root);
        let node = self.select_node(&partial_nodes, overrides);
        self.finish(root);

        let node = node?;
        // Seed with every other listed node unless told otherwise; never self.
        let seeds = explicit_seeds.unwrap_or_else(|| {
            let others = partial_nodes
                .iter()
                .filter(|n| n.name.as_ref() != Some(&node.name));
            others.filter_map(|n| n.cluster_addr).collect()
        });
        let mut seen = HashSet::new();
        let seeds = seeds
            .into_iter()
            .filter(|addr| *addr != node.cluster_addr && seen.insert(*addr))
            .collect();
        let nodes = partial_nodes
            .iter()
            .filter_map(PartialNode::complete)
            .collect();
        Some(Config {
            cluster: Cluster { seeds, ..cluster? },
            admin,
            storage,
            auth: auth?,
            http,
            images,
            services,
            supervision,
            log,
            tasks,
            ws,
            events,
            mqtt,
            smtp,
            notifications,
            data_dir,
            nodes,
            node,
        })
    }

    /// Reads `[cluster]`; the seeds are returned apart (`None`: not given)
    /// since their default depends on the selected node.
    fn cluster(
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

    fn auth(&mut self, root: &mut Section<'_>) -> Option<Auth> {
        let mut section = self.section(root, "auth");
        let keys_given = section.has("keys") || self.env("TROUPE_AUTH_KEYS").is_some();
        let keys = self.list(&mut section, "keys", Some("TROUPE_AUTH_KEYS"), &signing_key);
        if !keys_given {
            self.error(
                section.key("keys"),
                "missing (set [auth] keys = [\"<kid>:<secret of 32+ chars>\"] or TROUPE_AUTH_KEYS)",
            );
        }
        let access = self.get(
            &mut section,
            "access_ttl_s",
            Some("TROUPE_AUTH_ACCESS_TTL_S"),
            &between(1, 86_400),
        );
        let refresh = self.get(
            &mut section,
            "refresh_ttl_s",
            Some("TROUPE_AUTH_REFRESH_TTL_S"),
            &between(1, 31_536_000),
        );
        let iterations = self.get(
            &mut section,
            "pbkdf2_iterations",
            Some("TROUPE_AUTH_PBKDF2_ITERATIONS"),
            &between(1_000, 10_000_000),
        );
        let per_account = self.get(
            &mut section,
            "login_per_account_per_minute",
            None,
            &at_least(1),
        );
        let per_ip = self.get(&mut section, "login_per_ip_per_minute", None, &at_least(1));
        self.finish(section);
        let mut pairs = Vec::new();
        for key in keys.unwrap_or_default() {
            let (kid, secret) = key.split_once(':').expect("checked by signing_key");
            if pairs.iter().any(|(k, _): &(String, String)| k == kid) {
                self.error(
                    section_key("auth", "keys"),
                    format!("duplicate kid {kid:?}"),
                );
            }
            pairs.push((kid.to_owned(), secret.to_owned()));
        }
        if pairs.is_empty() {
            return None;
        }
        Some(Auth {
            keys: pairs,
            access_ttl: Duration::from_secs(access.unwrap_or(900)),
            refresh_ttl: Duration::from_secs(refresh.unwrap_or(30 * 86_400)),
            pbkdf2_iterations: iterations.unwrap_or(100_000),
            login_per_account_per_minute: per_account.unwrap_or(10),
            login_per_ip_per_minute: per_ip.unwrap_or(60),
        })
    }

    fn http(&mut self, root: &mut Section<'_>) -> Http {
        let mut section = self.section(root, "http");
        let max_body_env = Some("TROUPE_HTTP_MAX_BODY_BYTES");
        let max_body_bytes = self.get(&mut section, "max_body_bytes", max_body_env, &at_least(1));
        let timeout_env = Some("TROUPE_HTTP_REQUEST_TIMEOUT_MS");
        let timeout_ms = self.get(
            &mut section,
            "request_timeout_ms",
            timeout_env,
            &at_least(1),
        );
        let cors_origins = self.list(&mut section, "cors_origins", None, &cors_origin);
        self.finish(section);
        Http {
            max_body_bytes: max_body_bytes.unwrap_or(1024 * 1024),
            request_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
            cors_origins: cors_origins.unwrap_or_default(),
        }
    }

    fn images(&mut self, root: &mut Section<'_>) -> Images {
        let mut section = self.section(root, "images");
        let max_env = Some("TROUPE_IMAGES_MAX_BYTES");
        let max_bytes = self.get(
            &mut section,
            "max_bytes",
            max_env,
            &between(1024, 64 * 1024 * 1024),
        );
        let url_env = Some("TROUPE_IMAGES_PUBLIC_URL");
        let public_url = self.get(&mut section, "public_url", url_env, &public_url);
        self.finish(section);
        Images {
            max_bytes: max_bytes.unwrap_or(5 * 1024 * 1024),
            public_url,
        }
    }

    fn services(&mut self, root: &mut Section<'_>) -> Services {
        let mut section = self.section(root, "services");
        let workers_env = Some("TROUPE_SERVICES_WORKERS");
        let workers = self.get(&mut section, "workers", workers_env, &at_least(1));
        let capacity_env = Some("TROUPE_SERVICES_QUEUE_CAPACITY");
        let capacity = self.get(&mut section, "queue_capacity", capacity_env, &at_least(1));
        let timeout_env = Some("TROUPE_SERVICES_CALL_TIMEOUT_MS");
        let timeout_ms = self.get(&mut section, "call_timeout_ms", timeout_env, &at_least(1));
        self.finish(section);
        Services {
            workers: workers.unwrap_or(4),
            queue_capacity: capacity.unwrap_or(1024),
            call_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
        }
    }

    fn supervision(&mut self, root: &mut Section<'_>) -> Supervision {
        let mut section = self.section(root, "supervision");
        let base_ms = self.get(&mut section, "restart_base_ms", None, &at_least(1));
        let max_ms = self.get(&mut section, "restart_max_ms", None, &at_least(1));
        let max_restarts = self.get(&mut section, "max_restarts", None, &any);
        let window_s = self.get(&mut section, "restart_window_s", None, &at_least(1));
        let (base_ms, max_ms) = (base_ms.unwrap_or(5), max_ms.unwrap_or(5000));
        if max_ms < base_ms {
            let message = format!("must be at least restart_base_ms ({base_ms}), got {max_ms}");
            self.error(section.key("restart_max_ms"), message);
        }
        self.finish(section);
        Supervision {
            restart_base: Duration::from_millis(base_ms),
            restart_max: Duration::from_millis(max_ms),
            max_restarts: max_restarts.unwrap_or(10),
            restart_window: Duration::from_secs(window_s.unwrap_or(10)),
        }
    }

    fn log(&mut self, root: &mut Section<'_>) -> Log {
        let mut section = self.section(root, "log");
        let format = self.get(&mut section, "format", Some("TROUPE_LOG_FORMAT"), &any);
        let level = self.get(
            &mut section,
            "level",
            Some("TROUPE_LOG_LEVEL"),
            &log_directives,
        );
        self.finish(section);
        Log {
            format: format.unwrap_or(LogFormat::Text),
            level: level.unwrap_or_else(|| "info".to_owned()),
        }
    }

    fn tasks(&mut self, root: &mut Section<'_>) -> Tasks {
        let mut section = self.section(root, "tasks");
        let scan_env = Some("TROUPE_TASKS_SCAN_INTERVAL_MS");
        let scan_ms = self.get(
            &mut section,
            "scan_interval_ms",
            scan_env,
            &between(50, 600_000),
        );
        let activations_env = Some("TROUPE_TASKS_MAX_ACTIVATIONS");
        let activations = self.get(
            &mut section,
            "max_activations",
            activations_env,
            &between(1, 1000),
        );
        self.finish(section);
        Tasks {
            scan_interval: Duration::from_millis(scan_ms.unwrap_or(2000)),
            max_activations: activations.unwrap_or(5),
        }
    }

    /// Reads `[ws]` and `[chat]`: the ping interval must be shorter than the idle timeout, and
    /// a chat message must fit in an HTTP body (the default cap is 64 KiB, or half the body
    /// limit when that is smaller).
    fn ws(&mut self, root: &mut Section<'_>, http: &Http) -> Ws {
        let mut section = self.section(root, "ws");
        let frame_env = Some("TROUPE_WS_MAX_FRAME_BYTES");
        let max_frame = self.get(
            &mut section,
            "max_frame_bytes",
            frame_env,
            &between(1024, 16 * 1024 * 1024),
        );
        let queue_env = Some("TROUPE_WS_SEND_QUEUE");
        let queue = self.get(&mut section, "send_queue", queue_env, &between(1, 65_536));
        let idle_env = Some("TROUPE_WS_IDLE_TIMEOUT_S");
        let idle_s = self.get(
            &mut section,
            "idle_timeout_s",
            idle_env,
            &between(1, 86_400),
        );
        let ping_env = Some("TROUPE_WS_PING_INTERVAL_S");
        let ping_s = self.get(
            &mut section,
            "ping_interval_s",
            ping_env,
            &between(1, 3_600),
        );
        let (idle_s, ping_s) = (idle_s.unwrap_or(60), ping_s.unwrap_or(20));
        if ping_s >= idle_s {
            let message = format!("must be less than idle_timeout_s ({idle_s}), got {ping_s}");
            self.error(section.key("ping_interval_s"), message);
        }
        self.finish(section);
        let mut section = self.section(root, "chat");
        let cap_env = Some("TROUPE_CHAT_MAX_MESSAGE_BYTES");
        let cap = self.get(&mut section, "max_message_bytes", cap_env, &at_least(1));
        // Default: 64 KiB, or half the HTTP body limit when that is smaller.
        let given = cap.is_some();
        let cap = cap.unwrap_or((64 * 1024).min(http.max_body_bytes / 2).max(1));
        if given && cap >= http.max_body_bytes {
            let message = format!(
                "must be less than http.max_body_bytes ({}), got {cap}",
                http.max_body_bytes
            );
            self.error(section.key("max_message_bytes"), message);
        }
        self.finish(section);
        Ws {
            max_frame_bytes: max_frame.unwrap_or(64 * 1024),
            send_queue: queue.unwrap_or(256),
            idle_timeout: Duration::from_secs(idle_s),
            ping_interval: Duration::from_secs(ping_s),
            max_message_bytes: cap,
        }
    }

    /// Reads `[[nodes]]` and checks names and addresses are unique.
    fn nodes(&mut self, root: &mut Section<'_>) -> Vec<PartialNode> {
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
    fn select_node(&mut self, nodes: &[PartialNode], overrides: &Overrides) -> Option<Node> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../cluster.toml");

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn named(name: &str) -> Overrides {
        Overrides {
            name: Some(name.to_owned()),
            ..Overrides::default()
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn errors(text: &str, overrides: &Overrides, env: &HashMap<String, String>) -> ConfigErrors {
        match parse(text, "test.toml", overrides, env) {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors,
        }
    }

    fn keys(errors: &ConfigErrors) -> Vec<&str> {
        errors.0.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn sample_parses_for_every_node() {
        for (i, name) in ["n1", "n2", "n3"].into_iter().enumerate() {
            let config = parse(SAMPLE, "cluster.toml", &named(name), &env(&[])).unwrap();
            let port = |base: u16| addr(&format!("127.0.0.1:{}", base + i as u16));
            assert_eq!(config.node.name, name);
            assert_eq!(config.node.cluster_addr, port(7101));
            assert_eq!(config.node.http_addr, port(7181));
            assert_eq!(config.node.grpc_addr, port(7191));
            let expected: Vec<SocketAddr> = (0..3)
                .filter(|j| *j != i)
                .map(|j| addr(&format!("127.0.0.1:{}", 7101 + j)))
                .collect();
            assert_eq!(config.cluster.seeds, expected);
            assert_eq!(config.nodes.len(), 3);
        }
        let config = parse(SAMPLE, "cluster.toml", &named("n1"), &env(&[])).unwrap();
        assert_eq!(config.cluster.name, "troupe-dev");
        assert_eq!(config.cluster.gossip_interval, Duration::from_millis(100));
        assert_eq!(config.cluster.phi_threshold, 8.0);
        assert_eq!(config.cluster.dial_backoff_max, Duration::from_secs(1));
        assert_eq!(config.admin.token, None);
        assert_eq!(config.http.max_body_bytes, 1_048_576);
        assert_eq!(config.http.request_timeout, Duration::from_secs(5));
        assert!(config.http.cors_origins.is_empty());
        assert_eq!(config.services.workers, 4);
        assert_eq!(config.services.queue_capacity, 1024);
        assert_eq!(config.services.call_timeout, Duration::from_secs(5));
        assert_eq!(config.supervision.restart_base, Duration::from_millis(5));
        assert_eq!(config.supervision.restart_max, Duration::from_secs(5));
        assert_eq!(config.supervision.max_restarts, 10);
        assert_eq!(config.supervision.restart_window, Duration::from_secs(10));
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.log.level, "info");
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let text = "[cluster]\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        // A single entry is selected without a name.
        let config = parse(text, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.node.name, "solo");
        assert!(config.cluster.seeds.is_empty());
        assert_eq!(config.services.workers, 4);
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn images_settings_are_read_checked_and_overridden_by_env() {
        let base = "[cluster]\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.images.max_bytes, 5 * 1024 * 1024);
        assert_eq!(config.images.public_url, None);
        let text =
            format!("{base}[images]\nmax_bytes = 2048\npublic_url = \"https://img.example.com\"\n");
        let config = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.images.max_bytes, 2048);
        assert_eq!(
            config.images.public_url.as_deref(),
            Some("https://img.example.com")
        );
        let vars = env(&[("TROUPE_IMAGES_MAX_BYTES", "4096")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.images.max_bytes, 4096);
        let bad = format!("{base}[images]\nmax_bytes = 10\npublic_url = \"ftp://x\"\nsize = 1\n");
        let errs = errors(&bad, &Overrides::default(), &env(&[]));
        assert_eq!(
            keys(&errs),
            vec!["images.max_bytes", "images.public_url", "images.size"]
        );
    }

    #[test]
    fn no_file_uses_default_addresses() {
        let vars = env(&[
            ("TROUPE_CLUSTER_COOKIE", "sekrit-cookie"),
            ("TROUPE_AUTH_KEYS", "k1:0123456789abcdef0123456789abcdef"),
        ]);
        let config = load(None, &named("x"), &vars).unwrap();
        assert_eq!(config.auth.keys[0].0, "k1");
        assert_eq!(config.auth.pbkdf2_iterations, 100_000);
        assert_eq!(config.storage.url, None);
        assert_eq!(config.node.cluster_addr, addr(DEFAULT_CLUSTER_ADDR));
        assert_eq!(config.node.http_addr, addr(DEFAULT_HTTP_ADDR));
        assert_eq!(config.node.grpc_addr, addr(DEFAULT_GRPC_ADDR));
        assert!(config.nodes.is_empty());
        assert!(config.cluster.seeds.is_empty());

        let errors = load(None, &named("x"), &env(&[])).unwrap_err();
        assert_eq!(keys(&errors), ["cluster.cookie", "auth.keys"]);
        assert!(errors.0[0].message.contains("TROUPE_CLUSTER_COOKIE"));
        assert!(errors.0[1].message.contains("TROUPE_AUTH_KEYS"));

        let vars = env(&[
            ("TROUPE_CLUSTER_COOKIE", "sekrit-cookie"),
            (
                "TROUPE_AUTH_KEYS",
                "k1:short,:nokid0123456789abcdef0123456789",
            ),
            ("TROUPE_STORAGE_URL", "mysql://nope"),
        ]);
        let errors = load(None, &named("x"), &vars).unwrap_err();
        assert_eq!(
            keys(&errors),
            ["TROUPE_STORAGE_URL", "TROUPE_AUTH_KEYS", "TROUPE_AUTH_KEYS"]
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let path = Path::new("/nonexistent/troupe/cluster.toml");
        let errors = load(Some(path), &named("n1"), &env(&[])).unwrap_err();
        assert_eq!(keys(&errors), ["/nonexistent/troupe/cluster.toml"]);
    }

    #[test]
    fn env_overrides_file() {
        let vars = env(&[
            ("TROUPE_NODE_NAME", "n2"),
            ("TROUPE_CLUSTER_NAME", "other"),
            ("TROUPE_CLUSTER_COOKIE", "from-the-env"),
            ("TROUPE_CLUSTER_SEEDS", "10.0.0.1:7101, 10.0.0.2:7101"),
            ("TROUPE_CLUSTER_GOSSIP_INTERVAL_MS", "250"),
            ("TROUPE_CLUSTER_PHI_THRESHOLD", "12.5"),
            ("TROUPE_ADMIN_TOKEN", "0123456789abcdef"),
            ("TROUPE_HTTP_MAX_BODY_BYTES", "2048"),
            ("TROUPE_HTTP_REQUEST_TIMEOUT_MS", "700"),
            ("TROUPE_SERVICES_WORKERS", "8"),
            ("TROUPE_SERVICES_QUEUE_CAPACITY", "16"),
            ("TROUPE_SERVICES_CALL_TIMEOUT_MS", "900"),
            ("TROUPE_LOG_FORMAT", "json"),
            ("TROUPE_LOG_LEVEL", "debug,troupe=trace"),
            ("TROUPE_DATA_DIR", "/var/lib/troupe"),
            ("TROUPE_HTTP_ADDR", "127.0.0.1:8181"),
        ]);
        let config = parse(SAMPLE, "cluster.toml", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.node.name, "n2");
        assert_eq!(config.node.cluster_addr, addr("127.0.0.1:7102"));
        assert_eq!(config.node.http_addr, addr("127.0.0.1:8181"));
        assert_eq!(config.node.grpc_addr, addr("127.0.0.1:7192"));
        assert_eq!(config.cluster.name, "other");
        assert_eq!(config.cluster.cookie, "from-the-env");
        let seeds = vec![addr("10.0.0.1:7101"), addr("10.0.0.2:7101")];
        assert_eq!(config.cluster.seeds, seeds);
        assert_eq!(config.cluster.gossip_interval, Duration::from_millis(250));
        assert_eq!(config.cluster.phi_threshold, 12.5);
        assert_eq!(config.admin.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(config.http.max_body_bytes, 2048);
        assert_eq!(config.http.request_timeout, Duration::from_millis(700));
        assert_eq!(config.services.workers, 8);
        assert_eq!(config.services.queue_capacity, 16);
        assert_eq!(config.services.call_timeout, Duration::from_millis(900));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.log.level, "debug,troupe=trace");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/troupe"));
        // The file's entries stay as written.
        assert_eq!(config.nodes[1].http_addr, addr("127.0.0.1:7182"));
    }

    #[test]
    fn overrides_beat_env() {
        let vars = env(&[
            ("TROUPE_NODE_NAME", "n2"),
            ("TROUPE_CLUSTER_SEEDS", "10.0.0.1:7101"),
            ("TROUPE_DATA_DIR", "/from/env"),
            ("TROUPE_CLUSTER_ADDR", "127.0.0.1:8101"),
            ("TROUPE_GRPC_ADDR", "127.0.0.1:8191"),
        ]);
        let overrides = Overrides {
            name: Some("n3".to_owned()),
            cluster_addr: Some("127.0.0.1:9101".to_owned()),
            seeds: vec!["10.0.0.9:7101,10.0.0.8:7101".to_owned()],
            data_dir: Some("/from/flag".to_owned()),
            ..Overrides::default()
        };
        let config = parse(SAMPLE, "cluster.toml", &overrides, &vars).unwrap();
        assert_eq!(config.node.name, "n3");
        assert_eq!(config.node.cluster_addr, addr("127.0.0.1:9101"));
        assert_eq!(config.node.http_addr, addr("127.0.0.1:7183"));
        assert_eq!(config.node.grpc_addr, addr("127.0.0.1:8191"));
        let seeds = vec![addr("10.0.0.9:7101"), addr("10.0.0.8:7101")];
        assert_eq!(config.cluster.seeds, seeds);
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn reports_every_mistake_with_its_key() {
        let text = r#"
data_dir = 7
bogus = true

[cluster]
name = "troupe-dev"
cookie = "short"
seeds = ["127.0.0.1:7101", "nowhere"]
gossip_interval_ms = 0
phi_threshold = -1.0

[admin]
token = "tiny"

[http]
max_body_bytes = "1MB"
cors_origins = ["*"]

[services]
workers = 0
queue_capacity = 0
call_timeout_ms = -5

[supervision]
restart_base_ms = 100
restart_max_ms = 10

[log]
format = "yaml"
level = "info,x=nope"

[[nodes]]
name = "n1"
cluster_addr = "127.0.0.1:7101"
http_addr = "127.0.0.1:7181"
grpc_addr = "127.0.0.1:7181"

[[nodes]]
name = "n1"
cluster_addr = "127.0.0.1:7102"
htp_addr = "127.0.0.1:7182"
grpc_addr = "127.0.0.1:7101"

[[nodes]]
name = "bad name!"
cluster_addr = "localhost"
http_addr = "127.0.0.1:7183"
grpc_addr = "127.0.0.1:7193"
"#;
        let errors = errors(text, &named("n1"), &env(&[]));
        let found = keys(&errors);
        for key in [
            "data_dir",
            "bogus",
            "cluster.cookie",
            "cluster.seeds[1]",
            "cluster.gossip_interval_ms",
            "cluster.phi_threshold",
            "admin.token",
            "http.max_body_bytes",
            "http.cors_origins[0]",
            "services.workers",
            "services.queue_capacity",
            "services.call_timeout_ms",
            "supervision.restart_max_ms",
            "log.format",
            "log.level",
            "nodes[0].grpc_addr",
            "nodes[1].name",
            "nodes[1].htp_addr",
            "nodes[1].http_addr",
            "nodes[1].grpc_addr",
            "nodes[2].name",
            "nodes[2].cluster_addr",
        ] {
            assert!(found.contains(&key), "no error for {key} in:\n{errors}");
        }
        let message = |key: &str| &errors.0.iter().find(|e| e.key == key).unwrap().message;
        assert_eq!(
            message("http.max_body_bytes"),
            "expected an integer, got a string"
        );
        assert_eq!(message("nodes[1].htp_addr"), "unknown key");
        assert_eq!(message("nodes[1].http_addr"), "missing");
        assert_eq!(message("bogus"), "unknown key");
        // One line per error, "<key>: <problem>".
        let display = errors.to_string();
        assert_eq!(display.lines().count(), errors.0.len());
        assert!(display.contains("nodes[1].htp_addr: unknown key"));
        // Secrets are not echoed.
        assert!(!display.contains("short") && !display.contains("tiny"));
    }

    #[test]
    fn syntax_error_is_keyed_by_file() {
        let errors = errors("[cluster\nname = 1", &named("n1"), &env(&[]));
        assert_eq!(keys(&errors), ["test.toml"]);
        assert!(
            errors.0[0].message.starts_with("line 1, column"),
            "{errors}"
        );
        assert_eq!(errors.to_string().lines().count(), 1);
    }

    #[test]
    fn unknown_troupe_env_is_ignored() {
        let vars = env(&[("TROUPE_TEST_PG", "postgres://x"), ("TROUPE_WHATEVER", "1")]);
        let config = parse(SAMPLE, "cluster.toml", &named("n1"), &vars).unwrap();
        assert_eq!(config.node.name, "n1");
    }

    #[test]
    fn bad_env_value_is_keyed_by_variable() {
        let vars = env(&[
            ("TROUPE_SERVICES_WORKERS", "many"),
            ("TROUPE_CLUSTER_PHI_THRESHOLD", "0"),
            ("TROUPE_HTTP_ADDR", "127.0.0.1"),
            ("TROUPE_LOG_FORMAT", "xml"),
        ]);
        let errors = errors(SAMPLE, &named("n1"), &vars);
        let mut found = keys(&errors);
        found.sort_unstable();
        let expected = [
            "TROUPE_CLUSTER_PHI_THRESHOLD",
            "TROUPE_HTTP_ADDR",
            "TROUPE_LOG_FORMAT",
            "TROUPE_SERVICES_WORKERS",
        ];
        assert_eq!(found, expected, "{errors}");
    }

    #[test]
    fn missing_node_name() {
        let errors = errors(SAMPLE, &Overrides::default(), &env(&[]));
        assert_eq!(
            errors.to_string(),
            "node: no node name given (use --name or TROUPE_NODE_NAME)"
        );
    }

    #[test]
    fn unknown_node_needs_all_addresses() {
        let errors = errors(SAMPLE, &named("n9"), &env(&[]));
        let expected = r#"node: no [[nodes]] entry named "n9" (known: n1, n2, n3)"#;
        assert_eq!(errors.to_string(), expected);

        let vars = env(&[("TROUPE_GRPC_ADDR", "10.0.0.9:7191")]);
        let overrides = Overrides {
            name: Some("n9".to_owned()),
            cluster_addr: Some("10.0.0.9:7101".to_owned()),
            http_addr: Some("10.0.0.9:7181".to_owned()),
            ..Overrides::default()
        };
        let config = parse(SAMPLE, "cluster.toml", &overrides, &vars).unwrap();
        assert_eq!(config.node.name, "n9");
        assert_eq!(config.node.cluster_addr, addr("10.0.0.9:7101"));
        assert_eq!(config.node.http_addr, addr("10.0.0.9:7181"));
        assert_eq!(config.node.grpc_addr, addr("10.0.0.9:7191"));
        let seeds: Vec<SocketAddr> = ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]
            .map(addr)
            .to_vec();
        assert_eq!(config.cluster.seeds, seeds);
    }

    #[test]
    fn overridden_addresses_must_not_collide() {
        let overrides = Overrides {
            http_addr: Some("127.0.0.1:7101".to_owned()),
            ..named("n1")
        };
        let errors = errors(SAMPLE, &overrides, &env(&[]));
        assert_eq!(keys(&errors), ["--http-addr"], "{errors}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let vars = env(&[("TROUPE_ADMIN_TOKEN", "0123456789abcdef-secret")]);
        let config = parse(SAMPLE, "cluster.toml", &named("n1"), &vars).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(&config.cluster.cookie));
        assert!(!debug.contains("secret"));
    }

    #[test]
    fn tasks_section_defaults_env_and_bad_values() {
        let base = "[cluster]\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.tasks.scan_interval, Duration::from_secs(2));
        assert_eq!(config.tasks.max_activations, 5);
        let text = format!("{base}[tasks]\nscan_interval_ms = 250\n");
        let vars = env(&[("TROUPE_TASKS_MAX_ACTIVATIONS", "9")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.tasks.scan_interval, Duration::from_millis(250));
        assert_eq!(config.tasks.max_activations, 9);
        let text = format!("{base}[tasks]\nscan_interval_ms = 1\nmax_activations = 0\nscan = 3\n");
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "tasks.scan_interval_ms",
                "tasks.max_activations",
                "tasks.scan"
            ]
        );
    }

    #[test]
    fn ws_and_chat_settings_are_read_and_every_bad_one_reported() {
        let good = format!(
            "{SAMPLE}\n[ws]\nmax_frame_bytes = 2048\nsend_queue = 8\nidle_timeout_s = 30\n\
             ping_interval_s = 5\n[chat]\nmax_message_bytes = 1000\n"
        );
        let config = parse(&good, "t", &named("n1"), &env(&[])).unwrap();
        assert_eq!(config.ws.max_frame_bytes, 2048);
        assert_eq!(config.ws.send_queue, 8);
        assert_eq!(config.ws.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.ws.ping_interval, Duration::from_secs(5));
        assert_eq!(config.ws.max_message_bytes, 1000);
        let vars = env(&[("TROUPE_WS_SEND_QUEUE", "16")]);
        let config = parse(&good, "t", &named("n1"), &vars).unwrap();
        assert_eq!(config.ws.send_queue, 16);
        let defaults = parse(SAMPLE, "t", &named("n1"), &env(&[])).unwrap();
        assert_eq!(defaults.ws.max_message_bytes, 64 * 1024);
        assert!(defaults.ws.ping_interval < defaults.ws.idle_timeout);

        let bad = format!(
            "{SAMPLE}\n[ws]\nmax_frame_bytes = 10\nsend_queue = 0\nidle_timeout_s = 5\n\
             ping_interval_s = 5\nbuffer = 1\n[chat]\nmax_message_bytes = 99999999\n"
        );
        let errors = errors(&bad, &named("n1"), &env(&[]));
        let mut got = keys(&errors);
        got.sort();
        assert_eq!(
            got,
            [
                "chat.max_message_bytes",
                "ws.buffer",
                "ws.max_frame_bytes",
                "ws.ping_interval_s",
                "ws.send_queue"
            ],
            "{errors}"
        );
    }
}
