//! Tests of the whole configuration: the sample file, defaults, precedence of file, env
//! and flags, node selection, and every error reported at once. The helpers here are
//! shared with the sections' own tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::nodes::{DEFAULT_CLUSTER_ADDR, DEFAULT_GRPC_ADDR, DEFAULT_HTTP_ADDR};
use super::*;

/// The sample `cluster.toml` at the repository root.
pub(super) const SAMPLE: &str = include_str!("../../../cluster.toml");

/// An environment of `pairs`.
/// The least config a node starts with (one plaintext node), for the sections' own tests.
pub(super) const MINIMAL: &str = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
    cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
    grpc_addr = \"127.0.0.1:7191\"\n";

pub(super) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Overrides that only name the node.
pub(super) fn named(name: &str) -> Overrides {
    Overrides {
        name: Some(name.to_owned()),
        ..Overrides::default()
    }
}

/// A socket address from text.
pub(super) fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The errors of `text`, which must not parse.
pub(super) fn errors(
    text: &str,
    overrides: &Overrides,
    env: &HashMap<String, String>,
) -> ConfigErrors {
    match parse(text, "test.toml", overrides, env) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors,
    }
}

/// The keys of `errors`, in order.
pub(super) fn keys(errors: &ConfigErrors) -> Vec<&str> {
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
    assert_eq!(config.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.http.body_timeout, Duration::from_secs(10));
    assert_eq!(config.http.max_connections, 50_000);
    assert_eq!(config.grpc.timeout, Duration::from_secs(30));
    assert_eq!(config.grpc.concurrency_per_connection, 64);
    assert_eq!(config.grpc.max_concurrent_streams, 128);
    assert_eq!(config.grpc.max_connections, 10_000);
    assert!(config.http.trusted_proxies.is_empty());
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
fn listener_limits_are_read_and_bad_ones_reported_together() {
    let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\ncluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\ngrpc_addr = \"127.0.0.1:7191\"\n";
    let text = format!(
        "{base}[http]\nheader_read_timeout_ms = 2500\nbody_timeout_ms = 3000\nmax_connections = 100\n\
         trusted_proxies = [\"198.18.0.0/15\", \"10.1.2.3\", \"fd00::/8\"]\n[grpc]\nmax_connections = 7\n"
    );
    let config = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap();
    let nets: Vec<String> = config
        .http
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["198.18.0.0/15", "10.1.2.3/32", "fd00::/8"]);
    assert_eq!(config.grpc.max_connections, 7);
    assert_eq!(
        (
            config.http.header_read_timeout,
            config.http.body_timeout,
            config.http.max_connections
        ),
        (Duration::from_millis(2500), Duration::from_secs(3), 100)
    );
    let text = format!(
        "{base}[http]\nheader_read_timeout_ms = 0\nbody_timeout_ms = \"slow\"\nmax_connections = 0\ntrusted_proxies = [\"10.0.0.0/33\", \"proxy\"]\n[grpc]\ntimeout_ms = 1\nconcurrency_per_connection = 0\nmax_concurrent_streams = -1\nmax_connections = 0\n"
    );
    let e = errors(&text, &Overrides::default(), &env(&[]));
    let keys = keys(&e);
    for key in [
        "http.header_read_timeout_ms",
        "http.body_timeout_ms",
        "http.max_connections",
        "grpc.timeout_ms",
        "grpc.concurrency_per_connection",
        "grpc.max_concurrent_streams",
        "grpc.max_connections",
        "http.trusted_proxies[0]",
        "http.trusted_proxies[1]",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

#[test]
fn password_hash_scheme_is_read_and_bad_settings_reported_together() {
    use troupe_actors::auth::password::Scheme;
    let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[[nodes]]\nname = \"solo\"\ncluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\ngrpc_addr = \"127.0.0.1:7191\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n";
    let read = |extra: &str| {
        parse(
            &format!("{base}{extra}"),
            "t",
            &Overrides::default(),
            &env(&[]),
        )
    };
    let c =
        read("argon2_memory_kib = 65536\nargon2_iterations = 3\nargon2_parallelism = 2\n").unwrap();
    assert_eq!(
        c.auth.password_scheme,
        Scheme::Argon2id {
            memory_kib: 65_536,
            iterations: 3,
            parallelism: 2
        }
    );
    let c = read("password_hash = \"pbkdf2\"\npbkdf2_iterations = 600000\n").unwrap();
    assert_eq!(
        c.auth.password_scheme,
        Scheme::Pbkdf2 {
            iterations: 600_000
        }
    );
    assert!(!c.auth.reveal_taken_email, "the safe answer by default");
    assert!(
        read("reveal_taken_email = true\n")
            .unwrap()
            .auth
            .reveal_taken_email
    );
    let e = read("password_hash = \"md5\"\nargon2_memory_kib = 64\nargon2_parallelism = 16\nargon2_iterations = 0\nreveal_taken_email = \"no\"\n")
        .unwrap_err();
    let keys = keys(&e);
    for key in [
        "auth.password_hash",
        "auth.argon2_memory_kib",
        "auth.argon2_iterations",
        "auth.reveal_taken_email",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

#[test]
fn minimal_file_takes_defaults() {
    let text = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
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
fn no_file_uses_default_addresses() {
    let vars = env(&[
        ("TROUPE_CLUSTER_COOKIE", "sekrit-cookie"),
        ("TROUPE_AUTH_KEYS", "k1:0123456789abcdef0123456789abcdef"),
        ("TROUPE_CLUSTER_INSECURE_PLAINTEXT", "true"),
    ]);
    let config = load(None, &named("x"), &vars).unwrap();
    assert_eq!(config.auth.keys[0].0, "k1");
    assert_eq!(config.auth.pbkdf2_iterations, 100_000);
    assert_eq!(
        config.auth.password_scheme,
        troupe_actors::auth::password::Scheme::ARGON2ID_DEFAULT
    );
    assert_eq!(config.storage.url, None);
    assert_eq!(config.node.cluster_addr, addr(DEFAULT_CLUSTER_ADDR));
    assert_eq!(config.node.http_addr, addr(DEFAULT_HTTP_ADDR));
    assert_eq!(config.node.grpc_addr, addr(DEFAULT_GRPC_ADDR));
    assert!(config.nodes.is_empty());
    assert!(config.cluster.seeds.is_empty());

    let errors = load(None, &named("x"), &env(&[])).unwrap_err();
    assert_eq!(
        keys(&errors),
        ["cluster.cookie", "auth.keys", "cluster.tls"]
    );
    assert!(errors.0[0].message.contains("TROUPE_CLUSTER_COOKIE"));
    assert!(errors.0[1].message.contains("TROUPE_AUTH_KEYS"));

    let vars = env(&[
        ("TROUPE_CLUSTER_COOKIE", "sekrit-cookie"),
        (
            "TROUPE_AUTH_KEYS",
            "k1:short,:nokid0123456789abcdef0123456789",
        ),
        ("TROUPE_STORAGE_URL", "mysql://nope"),
        ("TROUPE_CLUSTER_INSECURE_PLAINTEXT", "true"),
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

    // Secrets of its own: a node off loopback refuses the sample ones.
    let vars = env(&[
        ("TROUPE_GRPC_ADDR", "10.0.0.9:7191"),
        ("TROUPE_CLUSTER_COOKIE", "a-cookie-of-our-own"),
        (
            "TROUPE_AUTH_KEYS",
            "k1:a-signing-secret-of-our-own-0123456789",
        ),
    ]);
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
fn sample_secrets_are_refused_off_loopback_and_name_the_setting() {
    // On loopback the sample is fine (the development cluster).
    assert!(parse(SAMPLE, "cluster.toml", &named("n1"), &env(&[])).is_ok());
    // Listening on a routable address with the sample cookie and key: both refused.
    let exposed = Overrides {
        http_addr: Some("198.18.0.1:7181".to_owned()),
        ..named("n1")
    };
    let refused = errors(SAMPLE, &exposed, &env(&[]));
    assert_eq!(
        keys(&refused),
        [
            "cluster.cookie (TROUPE_CLUSTER_COOKIE)",
            "auth.keys (TROUPE_AUTH_KEYS)"
        ]
    );
    assert!(
        refused.0[0].message.contains("198.18.0.1:7181"),
        "{refused}"
    );
    // Secrets of one's own are accepted on the same address.
    let own = env(&[
        ("TROUPE_CLUSTER_COOKIE", "a-cookie-of-our-own"),
        (
            "TROUPE_AUTH_KEYS",
            "k1:a-signing-secret-of-our-own-0123456789",
        ),
    ]);
    let config = parse(SAMPLE, "cluster.toml", &exposed, &own).unwrap();
    assert_eq!(config.node.http_addr, addr("198.18.0.1:7181"));
    // One sample secret left is still refused, alone.
    let half = env(&[("TROUPE_CLUSTER_COOKIE", "a-cookie-of-our-own")]);
    assert_eq!(
        keys(&errors(SAMPLE, &exposed, &half)),
        ["auth.keys (TROUPE_AUTH_KEYS)"]
    );
}

/// Three nodes as in a container deployment: each binds every interface and is reached at
/// its own name.
const ADVERTISED: &str = r#"
[cluster]
cookie = "a-cookie-of-our-own"
insecure_plaintext = true
[auth]
keys = ["k1:a-signing-secret-of-our-own-0123456789"]
[[nodes]]
name = "n1"
cluster_addr = "0.0.0.0:7101"
http_addr = "0.0.0.0:7181"
grpc_addr = "0.0.0.0:7191"
advertise_cluster_addr = "n1.troupe.internal:7101"
[[nodes]]
name = "n2"
cluster_addr = "0.0.0.0:7102"
http_addr = "0.0.0.0:7182"
grpc_addr = "0.0.0.0:7192"
advertise_cluster_addr = "10.1.0.2:7102"
[[nodes]]
name = "n3"
cluster_addr = "10.1.0.3:7103"
http_addr = "10.1.0.3:7183"
grpc_addr = "10.1.0.3:7193"
"#;

#[test]
fn advertised_cluster_address_defaults_to_the_bind_address_and_seeds_others() {
    let host = |text: &str| PeerAddr::Host(text.to_owned());
    let n1 = parse(ADVERTISED, "t.toml", &named("n1"), &env(&[])).unwrap();
    assert_eq!(n1.node.cluster_addr, addr("0.0.0.0:7101"));
    assert_eq!(
        n1.node.advertise_cluster_addr,
        host("n1.troupe.internal:7101")
    );
    // Seeds are where the others are reached, not where they bind.
    assert_eq!(
        n1.cluster.seeds,
        [
            PeerAddr::Addr(addr("10.1.0.2:7102")),
            PeerAddr::Addr(addr("10.1.0.3:7103"))
        ]
    );
    let n3 = parse(ADVERTISED, "t.toml", &named("n3"), &env(&[])).unwrap();
    assert_eq!(
        n3.node.advertise_cluster_addr,
        PeerAddr::Addr(addr("10.1.0.3:7103"))
    );
    assert_eq!(n3.cluster.seeds[0], host("n1.troupe.internal:7101"));
    assert_eq!(n3.nodes[0].advertise_cluster_addr, n3.cluster.seeds[0]);

    // Environment over file, flag over environment.
    let vars = env(&[("TROUPE_ADVERTISE_CLUSTER_ADDR", "troupe-0.peers:7101")]);
    let config = parse(ADVERTISED, "t.toml", &named("n1"), &vars).unwrap();
    assert_eq!(
        config.node.advertise_cluster_addr,
        host("troupe-0.peers:7101")
    );
    let flag = Overrides {
        advertise_cluster_addr: Some("198.18.0.1:7101".to_owned()),
        ..named("n1")
    };
    let config = parse(ADVERTISED, "t.toml", &flag, &vars).unwrap();
    assert_eq!(
        config.node.advertise_cluster_addr,
        PeerAddr::Addr(addr("198.18.0.1:7101"))
    );
}

#[test]
fn a_node_binding_every_interface_must_say_where_it_is_reached() {
    let unadvertised =
        ADVERTISED.replace("advertise_cluster_addr = \"n1.troupe.internal:7101\"\n", "");
    // Whichever node runs, the entry that binds 0.0.0.0 without an advertised address is
    // named (it is a seed of the others).
    for name in ["n1", "n3"] {
        let refused = errors(&unadvertised, &named(name), &env(&[]));
        assert_eq!(
            keys(&refused),
            ["nodes[0].advertise_cluster_addr"],
            "{refused}"
        );
        assert!(refused.0[0].message.contains("0.0.0.0:7101"), "{refused}");
        assert!(
            refused.0[0]
                .message
                .contains("TROUPE_ADVERTISE_CLUSTER_ADDR"),
            "{refused}"
        );
    }
    // The environment of the node itself supplies it.
    let vars = env(&[("TROUPE_ADVERTISE_CLUSTER_ADDR", "10.1.0.1:7101")]);
    assert!(parse(&unadvertised, "t.toml", &named("n1"), &vars).is_ok());

    // A node that is not in the file: flags and environment only.
    let own = [
        ("TROUPE_CLUSTER_COOKIE", "a-cookie-of-our-own"),
        (
            "TROUPE_AUTH_KEYS",
            "k1:a-signing-secret-of-our-own-0123456789",
        ),
        ("TROUPE_CLUSTER_ADDR", "0.0.0.0:7101"),
        ("TROUPE_CLUSTER_INSECURE_PLAINTEXT", "true"),
    ];
    let refused = load(None, &named("troupe-0"), &env(&own)).unwrap_err();
    assert_eq!(keys(&refused), ["advertise_cluster_addr"], "{refused}");
    let pod = [
        own.as_slice(),
        &[(
            "TROUPE_ADVERTISE_CLUSTER_ADDR",
            "troupe-0.troupe-peers.default.svc.cluster.local:7101",
        )],
    ]
    .concat();
    let config = load(None, &named("troupe-0"), &env(&pod)).unwrap();
    assert_eq!(config.node.cluster_addr, addr("0.0.0.0:7101"));

    // Advertising what cannot be dialed is refused, by its source.
    let bad = [
        ("TROUPE_ADVERTISE_CLUSTER_ADDR", "0.0.0.0:7101"),
        ("TROUPE_CLUSTER_COOKIE", "a-cookie-of-our-own"),
    ];
    let flag = Overrides {
        advertise_cluster_addr: Some("no-port".to_owned()),
        ..named("n1")
    };
    let file = ADVERTISED.replace("10.1.0.2:7102", "10.1.0.2:0");
    let refused = errors(&file, &flag, &env(&bad));
    assert_eq!(
        keys(&refused),
        [
            "nodes[1].advertise_cluster_addr",
            "--advertise-cluster-addr",
            "TROUPE_ADVERTISE_CLUSTER_ADDR"
        ],
        "{refused}"
    );
}

#[test]
fn sample_secrets_are_refused_when_the_advertised_address_is_not_loopback() {
    for advertised in ["198.18.0.1:7101", "troupe-0.peers:7101"] {
        let exposed = Overrides {
            advertise_cluster_addr: Some(advertised.to_owned()),
            ..named("n1")
        };
        let refused = errors(SAMPLE, &exposed, &env(&[]));
        assert_eq!(
            keys(&refused),
            [
                "cluster.cookie (TROUPE_CLUSTER_COOKIE)",
                "auth.keys (TROUPE_AUTH_KEYS)"
            ]
        );
        assert!(refused.0[0].message.contains(advertised), "{refused}");
    }
    let local = Overrides {
        advertise_cluster_addr: Some("localhost:7101".to_owned()),
        ..named("n1")
    };
    assert!(parse(SAMPLE, "cluster.toml", &local, &env(&[])).is_ok());
}

/// The nodes of the sample file, with `cluster` as the `[cluster]` section.
fn with_cluster(cluster: &str, node_extra: &str) -> String {
    format!(
        "[cluster]\ncookie = \"12345678\"\n{cluster}\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n\
         [[nodes]]\nname = \"n1\"\ncluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\ngrpc_addr = \"127.0.0.1:7191\"\n{node_extra}\n\
         [[nodes]]\nname = \"n2\"\ncluster_addr = \"127.0.0.1:7102\"\nhttp_addr = \"127.0.0.1:7182\"\ngrpc_addr = \"127.0.0.1:7192\"\n"
    )
}

#[test]
fn tls_files_default_to_the_ca_directory_and_can_be_set_per_node() {
    let config = parse(SAMPLE, "cluster.toml", &named("n2"), &env(&[])).unwrap();
    let tls = config.cluster.tls.unwrap();
    assert_eq!(tls.ca, Path::new("data/certs/ca.pem"));
    assert_eq!(tls.cert, Path::new("data/certs/n2.pem"));
    assert_eq!(tls.key, Path::new("data/certs/n2.key"));
    assert!(tls.settings[1].starts_with("cluster.tls.ca"), "{tls:?}");

    let text = with_cluster(
        "[cluster.tls]\nca = \"/etc/troupe/ca.pem\"",
        "tls_cert = \"/secrets/n1.crt\"\ntls_key = \"/secrets/n1.key\"",
    );
    let tls = parse(&text, "test.toml", &named("n1"), &env(&[]))
        .unwrap()
        .cluster
        .tls
        .unwrap();
    assert_eq!(tls.cert, Path::new("/secrets/n1.crt"));
    assert_eq!(tls.key, Path::new("/secrets/n1.key"));
    assert_eq!(tls.settings[1], "nodes[0].tls_cert");
    assert_eq!(tls.settings[2], "nodes[0].tls_key");
    // n2 has no entry of its own: the defaults.
    let tls = parse(&text, "test.toml", &named("n2"), &env(&[]))
        .unwrap()
        .cluster
        .tls
        .unwrap();
    assert_eq!(tls.cert, Path::new("/etc/troupe/n2.pem"));

    // The environment can point at another CA.
    let vars = env(&[("TROUPE_CLUSTER_TLS_CA", "/other/ca.pem")]);
    let tls = parse(SAMPLE, "cluster.toml", &named("n1"), &vars)
        .unwrap()
        .cluster
        .tls
        .unwrap();
    assert_eq!(tls.key, Path::new("/other/n1.key"));
}

#[test]
fn a_node_without_tls_or_insecure_plaintext_refuses_to_start() {
    let errors = errors(&with_cluster("", ""), &named("n1"), &env(&[]));
    assert_eq!(keys(&errors), ["cluster.tls"]);
    let message = &errors.0[0].message;
    assert!(message.contains("[cluster.tls] ca"), "{message}");
    assert!(message.contains("insecure_plaintext = true"), "{message}");

    let config = parse(
        &with_cluster("insecure_plaintext = true", ""),
        "test.toml",
        &named("n1"),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(config.cluster.tls, None);
    let vars = env(&[("TROUPE_CLUSTER_INSECURE_PLAINTEXT", "true")]);
    assert!(parse(&with_cluster("", ""), "test.toml", &named("n1"), &vars).is_ok());
}

#[test]
fn tls_settings_that_contradict_each_other_are_reported_together() {
    let text = with_cluster(
        "insecure_plaintext = true\n[cluster.tls]\nca = \"ca.pem\"\nbogus = 1",
        "",
    );
    let both = errors(&text, &named("n1"), &env(&[]));
    assert_eq!(
        keys(&both),
        ["cluster.tls.bogus", "cluster.insecure_plaintext"]
    );
    let text = with_cluster("insecure_plaintext = true", "tls_cert = \"n1.pem\"");
    let stray = errors(&text, &named("n1"), &env(&[]));
    assert_eq!(keys(&stray), ["nodes[0].tls_cert"]);
}

#[test]
fn with_tls_a_node_name_must_be_a_dns_label() {
    let text = with_cluster("[cluster.tls]\nca = \"ca.pem\"", "").replace("\"n1\"", "\"123\"");
    let errors = errors(&text, &named("123"), &env(&[]));
    assert_eq!(keys(&errors), ["node"]);
    assert!(errors.0[0].message.contains("DNS label"), "{errors}");
}
