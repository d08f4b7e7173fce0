//! `troupe dev --nodes N`: a local cluster of N node processes on 127.0.0.1, with embedded
//! defaults. One process per node, because ractor's process groups are global to a process.
//!
//! Node k gets cluster/HTTP/gRPC ports 7100+k, 7180+k and 7190+k (the sample
//! `cluster.toml` uses the same ones), every other node as a seed, a cookie made for this
//! run, and the admin token from `TROUPE_ADMIN_TOKEN` (or one made for this run and
//! printed). Sessions between the nodes use mutual TLS: a development CA and node
//! certificates are made in `<data dir>/certs` the first time (`troupe certs`) and reused
//! while they pass the nodes' start-up check. Each node's output is prefixed with its name. Ctrl-C (or SIGTERM) stops every
//! node gracefully.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use rand::distr::{Alphanumeric, SampleString};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::DevArgs;

/// The addresses of dev node `k` (1-based).
pub fn ports(k: u8) -> (String, String, String) {
    let k = u16::from(k);
    (
        format!("127.0.0.1:{}", 7100 + k),
        format!("127.0.0.1:{}", 7180 + k),
        format!("127.0.0.1:{}", 7190 + k),
    )
}

/// Runs the local cluster until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the troupe executable")?;
    let token = std::env::var("TROUPE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rng(), 32));
    let cookie = std::env::var("TROUPE_CLUSTER_COOKIE")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rng(), 32));
    let auth_keys = std::env::var("TROUPE_AUTH_KEYS")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("dev:{}", Alphanumeric.sample_string(&mut rand::rng(), 48)));
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let certs = args.data_dir.join("certs");
    let names: Vec<String> = (1..=args.nodes).map(|k| format!("n{k}")).collect();
    if crate::certs::ensure(&certs, &names)? {
        println!("troupe dev: made TLS certificates in {}", certs.display());
    }
    let ca = certs.join("ca.pem").display().to_string();

    let mut children: Vec<(String, Child)> = Vec::new();
    println!("troupe dev: starting {} nodes", args.nodes);
    for k in 1..=args.nodes {
        let name = format!("n{k}");
        let (cluster, http, grpc) = ports(k);
        let mut cmd = Command::new(&exe);
        cmd.arg("node")
            .args(["--name", &name])
            .args(["--cluster-addr", &cluster])
            .args(["--http-addr", &http])
            .args(["--grpc-addr", &grpc])
            .args(["--data-dir", &args.data_dir.display().to_string()])
            .env("TROUPE_CLUSTER_COOKIE", &cookie)
            .env("TROUPE_ADMIN_TOKEN", &token)
            .env("TROUPE_CLUSTER_NAME", "troupe-dev")
            .env("TROUPE_AUTH_KEYS", &auth_keys)
            .env("TROUPE_CLUSTER_TLS_CA", &ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for j in (1..=args.nodes).filter(|j| *j != k) {
            cmd.args(["--seed", &ports(j).0]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        prefix(&name, child.stdout.take());
        prefix(&name, child.stderr.take());
        println!("  {name}: http=http://{http} grpc={grpc} cluster={cluster}");
        children.push((name, child));
    }
    println!("  admin token: {token}");
    println!("  try: curl -s http://{}/cluster", ports(1).1);

    tokio::select! {
        _ = crate::shutdown_signal() => {}
        exited = first_exit(&mut children) => {
            eprintln!("troupe dev: {exited}; stopping the others");
        }
    }
    for (name, child) in &mut children {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = name;
    }
    for (name, child) in &mut children {
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(Ok(status)) => println!("troupe dev: {name} exited ({status})"),
            _ => {
                let _ = child.kill().await;
                println!("troupe dev: {name} killed after 15s");
            }
        }
    }
    Ok(())
}

async fn first_exit(children: &mut [(String, Child)]) -> String {
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return format!("{name} exited ({status})");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn prefix(name: &str, stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) {
    let Some(stream) = stream else { return };
    let name = name.to_string();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[{name}] {line}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_ports_match_the_sample_config() {
        assert_eq!(
            ports(1),
            (
                "127.0.0.1:7101".to_string(),
                "127.0.0.1:7181".to_string(),
                "127.0.0.1:7191".to_string()
            )
        );
        assert_eq!(ports(3).1, "127.0.0.1:7183");
    }
}
