//! `troupe chaos`: kills random worker actors of a running cluster at a given rate through
//! `POST /admin/chaos/kill`, then reports what it killed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::cli::ChaosArgs;

/// Runs the chaos loop.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        anyhow::bail!("--rate must be between 0 and 1000 kills per second");
    }
    let url = format!("{}/admin/chaos/kill", args.url.trim_end_matches('/'));
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let mut by_target: BTreeMap<(String, String), u32> = BTreeMap::new();
    let (mut killed, mut failed) = (0u32, 0u32);
    let mut tick = tokio::time::interval(period);
    println!(
        "troupe chaos: {} kill(s)/s for {:?} against {}",
        args.rate, args.duration, args.url
    );
    while started.elapsed() < args.duration {
        tick.tick().await;
        let mut body = json!({ "count": 1 });
        if let Some(s) = &args.service {
            body["service"] = json!(s);
        }
        if let Some(n) = &args.node {
            body["node"] = json!(n);
        }
        let (url, token) = (url.clone(), args.token.clone());
        let answer = tokio::task::spawn_blocking(move || post(&url, &token, &body))
            .await
            .context("chaos request task")?;
        match answer {
            Ok(v) => {
                for k in v["killed"].as_array().into_iter().flatten() {
                    let node = k["node"].as_str().unwrap_or("?").to_string();
                    let service = k["service"].as_str().unwrap_or("?").to_string();
                    println!(
                        "{:>8.3}s killed {} on {node}",
                        started.elapsed().as_secs_f64(),
                        k["actor"].as_str().unwrap_or("?")
                    );
                    *by_target.entry((node, service)).or_default() += 1;
                    killed += 1;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{:>8.3}s kill failed: {e}", started.elapsed().as_secs_f64());
            }
        }
    }
    println!("troupe chaos: killed {killed} actor(s), {failed} request(s) failed");
    for ((node, service), n) in &by_target {
        println!("  {node:<12} {service:<16} {n}");
    }
    if killed == 0 && failed > 0 {
        anyhow::bail!("every kill request failed");
    }
    Ok(())
}

fn post(url: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("authorization", &format!("Bearer {token}"))
        .send_json(body)?;
    let status = resp.status();
    let v: Value = resp.body_mut().read_json()?;
    if !status.is_success() {
        anyhow::bail!(
            "{status}: {}",
            v["error"]["message"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(v)
}
