//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Troupe: one self-healing cluster runtime for a company's services.
#[derive(Debug, Parser)]
#[command(name = "troupe", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node of a cluster.
    ///
    /// Reads the config file (if given), then `TROUPE_*` environment variables, then these
    /// flags. Every bad setting is reported at once and nothing starts.
    Node(NodeArgs),
    /// Start a local cluster of N nodes on 127.0.0.1 with embedded defaults (no server to
    /// install). Ctrl-C stops every node gracefully.
    Dev(DevArgs),
    /// Make a development CA and node certificates for mutual TLS between nodes.
    ///
    /// Writes DIR/ca.pem, DIR/ca.key and DIR/<node>.pem, DIR/<node>.key for every node
    /// (keys mode 0600). With --ca and --ca-key, signs the node certificates with that
    /// existing CA instead. Never overwrites a file without --force.
    Certs(CertsArgs),
    /// Kill random actors of a running cluster at a given rate, through the admin API, and
    /// report what was killed.
    Chaos(ChaosArgs),
}

/// `troupe node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Config file (TOML), e.g. the sample `cluster.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Node name; picks the `[[nodes]]` entry of that name.
    #[arg(long)]
    pub name: Option<String>,
    /// Cluster address (TCP sessions and UDP gossip), e.g. 127.0.0.1:7101.
    #[arg(long)]
    pub cluster_addr: Option<String>,
    /// HTTP address.
    #[arg(long)]
    pub http_addr: Option<String>,
    /// gRPC address.
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// Where peers reach this node's cluster address, IP:port or host:port (NAT, containers);
    /// default: the cluster address. Required when that is 0.0.0.0 or [::].
    #[arg(long)]
    pub advertise_cluster_addr: Option<String>,
    /// A seed's cluster address, IP:port or host:port; repeat for more. Replaces the
    /// configured seeds.
    #[arg(long = "seed")]
    pub seeds: Vec<String>,
    /// Directory for node-local state.
    #[arg(long)]
    pub data_dir: Option<String>,
}

/// `troupe dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of nodes (1 to 9). Node k listens on 127.0.0.1 ports 7100+k (cluster),
    /// 7180+k (HTTP) and 7190+k (gRPC).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Data directory of the local cluster.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

/// `troupe certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write the files to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Node names, comma-separated or repeated; each becomes its certificate's DNS name.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// Validity of the node certificates, in days (the CA made here is valid 10 years).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    /// An existing CA certificate (made by `troupe certs`) to sign with, instead of a new
    /// CA.
    #[arg(long, requires = "ca_key")]
    pub ca: Option<PathBuf>,
    /// The private key of --ca.
    #[arg(long, requires = "ca")]
    pub ca_key: Option<PathBuf>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Make certificates that expired yesterday (for tests of refusal).
    #[arg(long, hide = true)]
    pub expired: bool,
}

/// `troupe chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// HTTP address of any node, e.g. http://127.0.0.1:7181.
    #[arg(long, default_value = "http://127.0.0.1:7181")]
    pub url: String,
    /// Admin token.
    #[arg(long, env = "TROUPE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Kills per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// How long to run, e.g. 30s, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Only this service group.
    #[arg(long)]
    pub service: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
}

/// Parses `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration must be positive: {s}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
