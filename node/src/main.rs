//! `troupe`: parse the command line and hand over to the library.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use troupe::cli::{Cli, Command};
use troupe::{config, telemetry, Listeners};

/// jemalloc instead of the system allocator: under load glibc's malloc showed up in
/// profiles as about 10 % of a node's time, partly waiting on its arena locks
/// (docs/benchmarks.md has the before/after runs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Node(args) => node(args).await,
            Command::Dev(args) => troupe::dev::run(args).await,
            Command::Certs(args) => troupe::certs::run(args),
            Command::Chaos(args) => troupe::chaos::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("troupe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn node(args: troupe::cli::NodeArgs) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = config::Overrides {
        name: args.name,
        cluster_addr: args.cluster_addr,
        http_addr: args.http_addr,
        grpc_addr: args.grpc_addr,
        advertise_cluster_addr: args.advertise_cluster_addr,
        seeds: args.seeds,
        data_dir: args.data_dir,
    };
    let config = config::load(args.config.as_deref(), &overrides, &env)
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))?;
    telemetry::init_logs(&config.log);
    let prometheus = telemetry::init_metrics()?;
    let listeners = Listeners::bind(&config).await?;
    troupe::serve(config, listeners, prometheus, troupe::shutdown_signal()).await
}
