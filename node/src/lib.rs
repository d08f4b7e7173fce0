//! The `troupe` binary's library: configuration, CLI, and the wiring of one node.
//!
//! # Layout
//! - [`config`]: `cluster.toml` + `TROUPE_*` env + flags, validated completely before start.
//! - [`cli`]: the command line (`troupe node`, `troupe dev`, `troupe chaos`).
//! - [`serve`]: starts one node on given listeners and runs it until a shutdown future
//!   resolves, then leaves the cluster gracefully.
//! - [`dev`]: `troupe dev --nodes N`, a local cluster of N node processes.
//! - [`chaos`]: `troupe chaos`, kills random actors of a running cluster at a given rate.
//! - [`telemetry`]: logs and the Prometheus recorder.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chaos;
pub mod cli;
pub mod config;
pub mod dev;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use troupe_actors::mesh::{backoff, membership, Mesh, NodeInfo, Settings};

pub use config::Config;

/// The bound sockets a node serves on (bound before [`serve`] so a test or the CLI reports
/// a taken port before anything starts).
pub struct Listeners {
    /// HTTP ingress.
    pub http: TcpListener,
    /// gRPC ingress.
    pub grpc: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config.node`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let http = TcpListener::bind(config.node.http_addr)
            .await
            .with_context(|| format!("cannot bind http_addr {}", config.node.http_addr))?;
        let grpc = TcpListener::bind(config.node.grpc_addr)
            .await
            .with_context(|| format!("cannot bind grpc_addr {}", config.node.grpc_addr))?;
        Ok(Self { http, grpc })
    }
}

/// The mesh settings of a config.
pub fn settings(config: &Config, incarnation: u64) -> Settings {
    Settings {
        membership: membership::Config {
            node: config.node.name.as_str().into(),
            incarnation,
            cluster_id: config.cluster.name.clone(),
            cookie: config.cluster.cookie.clone(),
            cluster_addr: config.node.cluster_addr,
            http_addr: config.node.http_addr,
            grpc_addr: config.node.grpc_addr,
            seeds: config.cluster.seeds.clone(),
            gossip_interval: config.cluster.gossip_interval,
            phi_threshold: config.cluster.phi_threshold,
            dial_backoff_max: config.cluster.dial_backoff_max,
            services: Vec::new(),
        },
        workers: config.services.workers,
        queue_capacity: config.services.queue_capacity,
        call_timeout: config.services.call_timeout,
        policy: backoff::Policy {
            backoff: backoff::Backoff {
                base: config.supervision.restart_base,
                max: config.supervision.restart_max,
            },
            max_restarts: config.supervision.max_restarts,
            window: config.supervision.restart_window,
        },
    }
}

/// Runs one node until `shutdown` resolves, then leaves gracefully: announce the leave
/// through gossip, keep serving while peers stop routing here, stop accepting, drain
/// in-flight requests, stop the actors.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let info = NodeInfo::new(config.node.name.as_str().into(), incarnation);
    let services = troupe_actors::system::services(&info);
    let mesh = Mesh::start(settings(&config, incarnation), info, services)
        .await
        .context("cannot start the mesh")?;
    troupe_protocols::http::metrics::describe();
    // Histograms buffer their samples until drained: drain them even when nobody scrapes.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });

    let http_state = troupe_protocols::http::AppState {
        mesh: mesh.clone(),
        prometheus,
        config: Arc::new(troupe_protocols::http::Config {
            max_body_bytes: config.http.max_body_bytes,
            request_timeout: config.http.request_timeout,
            cors_origins: config.http.cors_origins.clone(),
            admin_token: config.admin.token.clone(),
        }),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let app = troupe_protocols::http::router(http_state);
    let http_stop = stopped(stop_rx.clone());
    let http = tokio::spawn(async move {
        axum::serve(listeners.http, app)
            .with_graceful_shutdown(http_stop)
            .await
    });
    let grpc = tokio::spawn(troupe_protocols::grpc::serve(
        listeners.grpc,
        mesh.clone(),
        stopped(stop_rx),
    ));
    println!(
        "troupe node {} ready: http={} grpc={} cluster={} incarnation={}",
        config.node.name,
        config.node.http_addr,
        config.node.grpc_addr,
        config.node.cluster_addr,
        incarnation
    );

    shutdown.await;
    tracing::info!("leaving the cluster");
    mesh.leave(config.cluster.gossip_interval * 4).await;
    let _ = stop_tx.send(true);
    let drain = async {
        let _ = http.await;
        let _ = grpc.await;
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not drain within 10s");
    }
    mesh.stop().await;
    tracing::info!("node stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
