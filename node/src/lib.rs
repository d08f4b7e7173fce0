//! The `troupe` binary's library: configuration, CLI, and the wiring of one node.
//!
//! # Layout
//! - [`config`]: `cluster.toml` + `TROUPE_*` env + flags, validated completely before start.
//! - [`cli`]: the command line (`troupe node`, `troupe dev`, `troupe certs`, `troupe chaos`).
//! - [`serve`]: starts one node on given listeners and runs it until a shutdown future
//!   resolves, then leaves the cluster gracefully.
//! - [`dev`]: `troupe dev --nodes N`, a local cluster of N node processes.
//! - [`certs`]: `troupe certs`, a development CA and node certificates for cluster TLS.
//! - [`chaos`]: `troupe chaos`, kills random actors of a running cluster at a given rate.
//! - [`telemetry`]: logs and the Prometheus recorder.
//! - [`otlp`]: export of request spans to an OpenTelemetry collector (`[telemetry]`).
//! - [`listener`]: the HTTP accept loop: header-read timeout, connection cap, graceful
//!   shutdown.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod certs;
pub mod chaos;
pub mod cli;
pub mod config;
pub mod dev;
pub mod listener;
pub mod otlp;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use troupe_actors::auth::limits::{Limiter, Rates};
use troupe_actors::auth::password::Hasher;
use troupe_actors::auth::token::{SigningKey, Tokens};
use troupe_actors::auth::Auth;
use troupe_actors::events::Publisher;
use troupe_actors::mesh::{backoff, membership, Mesh, NodeInfo, Settings};
use troupe_actors::sessions::{Revocations, Sessions};
use troupe_actors::store::Store;
use troupe_actors::users::{self, messages as um, Users};

pub use config::Config;

/// Every service a node hosts, by name: the runtime's own, then the application's.
/// `[services.<name>]` accepts exactly these names, and [`serve`] refuses to start if the
/// services it builds are not exactly these.
pub const SERVICES: &[&str] = &[
    troupe_actors::mesh::heartbeat::NAME,
    troupe_actors::system::NAME,
    troupe_actors::notifications::NAME,
    troupe_actors::events::admin::NAME,
    users::NAME,
    troupe_actors::sessions::NAME,
    troupe_actors::auth::NAME,
    troupe_actors::sso::NAME,
    troupe_actors::tasks::RUNS,
    troupe_actors::tasks::NAME,
    troupe_actors::todos::NAME,
    troupe_actors::gatherings::NAME,
    troupe_actors::training::NAME,
    troupe_actors::coaching::NAME,
    troupe_actors::engagement::NAME,
    troupe_actors::reminders::NAME,
    troupe_actors::hub::NAME,
    troupe_actors::chat::NAME,
    troupe_actors::images::NAME,
];

/// How many gossip intervals a leaving node keeps serving after announcing its leave, so
/// peers stop routing to it before it stops accepting.
pub const LEAVE_GOSSIP_ROUNDS: u32 = 4;

/// How long a leaving node waits for in-flight requests to finish once it stops accepting
/// (a deployment's grace period must exceed this plus the leave announcement).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
            advertise_addr: config.node.advertise_cluster_addr.to_string(),
            http_addr: config.node.http_addr,
            grpc_addr: config.node.grpc_addr,
            seeds: config.cluster.seeds.iter().map(|s| s.to_string()).collect(),
            gossip_interval: config.cluster.gossip_interval,
            phi_threshold: config.cluster.phi_threshold,
            dial_backoff_max: config.cluster.dial_backoff_max,
            services: Vec::new(),
            partition: config.cluster.partition.clone(),
            // Loaded from the files when the node starts: see [`cluster_tls`].
            tls: None,
        },
        workers: config.services.workers,
        pool_sizes: config
            .services
            .pool_sizes
            .iter()
            .map(|(name, size)| (name.clone(), *size))
            .collect(),
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
        leases: None,
    }
}

/// Reads and checks this node's TLS files (`[cluster.tls]`); `None` with
/// `insecure_plaintext`. The error names the setting at fault.
pub fn cluster_tls(config: &Config) -> anyhow::Result<Option<troupe_actors::mesh::tls::Tls>> {
    let Some(files) = &config.cluster.tls else {
        tracing::warn!("cluster sessions are plaintext (insecure_plaintext = true)");
        return Ok(None);
    };
    let tls = files
        .load(&config.node.name)
        .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    tracing::info!(ca = %files.ca.display(), cert = %files.cert.display(), "cluster sessions use mutual TLS");
    Ok(Some(tls))
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
    let tls = cluster_tls(&config)?;
    let spans = otlp::start(&config.telemetry, &config.node.name)?;
    if !config.telemetry.history {
        troupe_actors::system::history::turn_off();
    }
    let info = NodeInfo::new(config.node.name.as_str().into(), incarnation);
    let store = Store::connect(config.storage.url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the store")?;
    let hasher = Hasher::with(config.auth.password_scheme)
        .map_err(|e| anyhow::anyhow!("[auth] password hash: {}", e.message))?;
    let keys = config
        .auth
        .keys
        .iter()
        .map(|(kid, secret)| SigningKey {
            kid: kid.clone(),
            secret: secret.as_bytes().to_vec(),
        })
        .collect();
    let tokens = Arc::new(
        Tokens::new(
            keys,
            config.auth.access_ttl,
            config.auth.refresh_ttl,
            config.cluster.name.clone(),
        )
        .map_err(|e| anyhow::anyhow!("auth keys: {e}"))?
        .with_session_max_lifetime(config.auth.session_max_lifetime),
    );
    let revocations = Revocations::new(config.auth.access_ttl);
    let mut services = troupe_actors::system::services(&info);
    // Events: the node's outbox, its sinks and the bus services publish through.
    let (bus, codes) = events(&config, &info, &store, incarnation).await?;
    info.set_dependencies(dependencies(&config, &store, incarnation)?);
    let publisher: Publisher = bus.clone();
    services.push(Arc::new(troupe_actors::notifications::Notifications::new(
        store.clone(),
        config.smtp.is_some(),
    )));
    services.push(Arc::new(troupe_actors::events::admin::Events::new(
        bus.clone(),
    )));
    services.push(Arc::new(
        Users::new(store.clone(), hasher.clone())
            .on_node(info.clone())
            .with_events(publisher.clone(), codes)
            .reveal_taken_email(config.auth.reveal_taken_email),
    ));
    services.push(Sessions::start(info.clone(), store.clone(), revocations.clone()).await?);
    // One limiter per node, shared by `auth` (the keys this node owns) and ingress (the
    // fallback when an owner is out of reach).
    let limiter = Arc::new(Limiter::new(Rates {
        login_per_account: config.auth.login_per_account_per_minute,
        login_per_ip: config.auth.login_per_ip_per_minute,
        register_per_ip: config.limits.register_per_ip_per_minute,
        refresh_per_ip: config.limits.refresh_per_ip_per_minute,
        codes_per_ip: config.limits.codes_per_ip_per_minute,
        search_per_user: config.limits.search_per_user_per_minute,
        ws_upgrades_per_ip: config.limits.ws_upgrades_per_ip_per_minute,
        grpc_calls_per_ip: config.limits.grpc_calls_per_ip_per_minute,
        chat_requests_per_user: config.quotas.chat_requests_per_user_per_minute,
    }));
    services.push(Auth::new(
        info.clone(),
        store.clone(),
        hasher,
        tokens.clone(),
        revocations.clone(),
        limiter.clone(),
        troupe_actors::auth::Events {
            publisher: publisher.clone(),
            codes,
        },
    ));
    services.push(troupe_actors::sso::Sso::new(
        info.clone(),
        store.clone(),
        tokens.clone(),
        config.sso.providers.iter().map(sso_provider).collect(),
        troupe_actors::sso::Settings {
            state_ttl: config.sso.state_ttl,
            timeout: config.sso.timeout,
        },
    ));
    let task_settings = troupe_actors::tasks::Settings {
        scan_interval: config.tasks.scan_interval,
        max_activations: config.tasks.max_activations,
        max_active_per_user: config.quotas.tasks_active_per_user,
    };
    let tasks = troupe_actors::tasks::Tasks::start(
        info.clone(),
        store.clone(),
        publisher.clone(),
        task_settings,
    )
    .await?;
    services.push(troupe_actors::tasks::Runs::new(tasks.clone()));
    services.push(tasks);
    services.push(Arc::new(troupe_actors::todos::Todos::new(
        store.clone(),
        publisher.clone(),
    )));
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let plan = troupe_actors::reminders::Plan {
        event_before_ms: ms(config.reminders.event_before),
        booking_before_ms: ms(config.reminders.booking_before),
    };
    services.push(troupe_actors::reminders::Reminders::start(
        info.clone(),
        store.clone(),
        publisher.clone(),
        troupe_actors::reminders::keeper::Settings::every(config.reminders.poll),
    ));
    services.push(
        troupe_actors::gatherings::Gatherings::start(
            info.clone(),
            store.clone(),
            publisher.clone(),
            plan,
        )
        .await?,
    );
    services.push(Arc::new(troupe_actors::training::Training::new(
        store.clone(),
        publisher.clone(),
    )));
    services.push(
        troupe_actors::coaching::Coaching::start(
            info.clone(),
            store.clone(),
            publisher.clone(),
            plan,
        )
        .await?,
    );
    services.push(Arc::new(troupe_actors::engagement::Engagement::new(
        store.clone(),
        publisher.clone(),
    )));
    // Live connections and chat (landscape E): the node's connection index and its services.
    let hub = troupe_actors::hub::ConnectionHub::start(info.clone(), revocations.clone());
    services.push(Arc::new(troupe_actors::hub::Hub::new(hub.clone())));
    let ws_slots = troupe_actors::hub::Slots::start(
        &info,
        store.clone(),
        config.quotas.ws_connections_per_user,
        troupe_actors::hub::slots::LEASE,
    )
    .await
    .context("cannot start the websocket connection slots")?;
    services.push(Arc::new(
        troupe_actors::chat::Chat::new(info.clone(), store.clone(), config.ws.max_message_bytes)
            .with_pending_quota(config.quotas.pending_chat_requests_per_user),
    ));
    services.push(Arc::new(
        troupe_actors::images::Images::new(store.clone(), config.images.max_bytes)
            .with_quota(config.quotas.image_bytes_per_user),
    ));
    // `ping` is the runtime's own: Mesh::start adds it.
    let mut names: Vec<&str> = services.iter().map(|s| s.name()).collect();
    names.push(troupe_actors::mesh::heartbeat::NAME);
    let mut expected = SERVICES.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    anyhow::ensure!(
        names == expected,
        "the node builds services {names:?} but SERVICES lists {expected:?}"
    );
    // Every service answers a keyed write once (troupe_actors::store::idempotency); calls
    // without a key pass straight through.
    let services: Vec<Arc<dyn troupe_actors::mesh::Service>> = services
        .into_iter()
        .map(|s| {
            Arc::new(troupe_actors::store::idempotency::Idempotent::new(
                s,
                store.clone(),
            )) as Arc<dyn troupe_actors::mesh::Service>
        })
        .collect();
    tokio::spawn(sweep_idempotency(store.clone()));
    let mut mesh_settings = settings(&config, incarnation);
    mesh_settings.leases = Some(Arc::new(store.clone()));
    mesh_settings.membership.tls = tls;
    let mesh = Mesh::start(mesh_settings, info, services)
        .await
        .context("cannot start the mesh")?;
    bus.start_relay();
    bootstrap_admin(&config, &mesh).await?;
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

    let ingress = Arc::new(troupe_protocols::ingress::Ingress {
        mesh: mesh.clone(),
        tokens,
        revocations,
        request_timeout: config.http.request_timeout,
        limiter,
        trusted_proxies: config.http.trusted_proxies.clone(),
    });
    let grpc_state = troupe_protocols::grpc::State::new(troupe_protocols::grpc::Shared {
        ingress: ingress.clone(),
        config: troupe_protocols::grpc::Config {
            max_image_bytes: config.images.max_bytes,
            public_url: config
                .images
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.node.http_addr)),
            timeout: config.grpc.timeout,
            concurrency_per_connection: config.grpc.concurrency_per_connection,
            max_concurrent_streams: config.grpc.max_concurrent_streams,
            max_connections: config.grpc.max_connections,
        },
    });
    let http_state = troupe_protocols::http::AppState::new(troupe_protocols::http::Shared {
        ingress,
        prometheus,
        config: Arc::new(troupe_protocols::http::Config {
            max_body_bytes: config.http.max_body_bytes,
            request_timeout: config.http.request_timeout,
            cors_origins: config.http.cors_origins.clone(),
            admin_token: config.admin.token.clone(),
        }),
        hub: hub.clone(),
        ws_slots: ws_slots.clone(),
        ws: Arc::new(troupe_protocols::ws::Config {
            max_frame_bytes: config.ws.max_frame_bytes,
            send_queue: config.ws.send_queue,
            idle_timeout: config.ws.idle_timeout,
            ping_interval: config.ws.ping_interval,
        }),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let app = troupe_protocols::http::router(http_state).layer(
        tower_http::timeout::RequestBodyTimeoutLayer::new(config.http.body_timeout),
    );
    let http_stop = stopped(stop_rx.clone());
    let limits = listener::Limits {
        header_read_timeout: config.http.header_read_timeout,
        max_connections: config.http.max_connections,
    };
    let http = tokio::spawn(listener::serve(listeners.http, app, limits, http_stop));
    let grpc = tokio::spawn(troupe_protocols::grpc::serve(
        listeners.grpc,
        grpc_state,
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
    mesh.leave(config.cluster.gossip_interval * LEAVE_GOSSIP_ROUNDS)
        .await;
    hub.close_all(troupe_actors::hub::CloseReason::ShuttingDown);
    let _ = stop_tx.send(true);
    let drain = async {
        let _ = http.await;
        let _ = grpc.await;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "in-flight requests did not drain in time");
    }
    // Its connections are closed and no upgrade is served: their users may reconnect
    // elsewhere at once rather than wait for the slots' lease.
    if let Err(e) = ws_slots.release_all().await {
        tracing::warn!(error = %e, "websocket slots not freed at shutdown, they run out with their lease");
    }
    mesh.stop().await;
    if let Some(spans) = spans {
        // The last spans go out before the process exits (bounded by the export timeout).
        let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
    }
    tracing::info!("node stopped");
    Ok(())
}

/// Deletes the answers of keyed writes once they are a day old, every ten minutes (every
/// node: the statement is cheap and idempotent).
async fn sweep_idempotency(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match troupe_actors::store::idempotency::sweep(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "swept old idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep old idempotency keys"),
        }
    }
}

/// The node's view of the transactional outbox in `store`, a delivery lane per sink (the
/// notifications and engagement services; MQTT and email when configured), and the bus
/// over them; answers it with the code settings. An event outbox of an earlier version
/// (a sled database in `<data_dir>/<node>/outbox`) is moved into the store first.
async fn events(
    config: &Config,
    info: &Arc<NodeInfo>,
    store: &Store,
    incarnation: u64,
) -> anyhow::Result<(
    Arc<troupe_actors::events::bus::Bus>,
    troupe_actors::auth::codes::Settings,
)> {
    use troupe_actors::events::{bus::Bus, delivery::Retry, outbox::Outbox, relay, sink};
    use troupe_actors::notifications::{self as notifications, email};
    troupe_actors::events::metrics::describe();
    let outbox = Outbox::new(
        store.clone(),
        info.node.clone(),
        incarnation,
        config.events.max_outbox_depth,
    );
    let mut sinks: Vec<Arc<dyn sink::Sink>> = vec![
        Arc::new(sink::Subscriber::new(
            info.clone(),
            notifications::ops::CONSUME,
        )),
        Arc::new(
            sink::Subscriber::new(info.clone(), troupe_actors::engagement::ops::CONSUME)
                .only(troupe_actors::engagement::awarded_for),
        ),
    ];
    if let Some(m) = &config.mqtt {
        sinks.push(Arc::new(troupe_protocols::mqtt::Mqtt::start(
            mqtt_settings(m),
            &config.node.name,
            incarnation,
        )));
    }
    if let Some(s) = &config.smtp {
        sinks.push(Arc::new(
            email::Email::new(info.clone(), &smtp_settings(s)).context("smtp settings")?,
        ));
    }
    let retry = Retry {
        max_attempts: config.events.max_attempts,
        backoff: backoff::Backoff::new(config.events.backoff_base, config.events.backoff_max),
        attempt_timeout: config.events.attempt_timeout,
    };
    let relay = relay::Settings {
        max_in_flight: config.events.max_in_flight as usize,
        claim_ttl: config.events.claim_ttl,
    };
    let bus = Bus::start(info.node.clone(), outbox, sinks, retry, relay);
    let old = config.data_dir.join(&config.node.name).join("outbox");
    let imported = troupe_actors::events::legacy::import(&old, bus.outbox()).await;
    if let Err(e) = imported {
        anyhow::bail!(
            "cannot move the old event outbox {} into the store: {e}",
            old.display()
        );
    }
    let codes = troupe_actors::auth::codes::Settings {
        registration_ttl: config.notifications.registration_code_ttl,
        reset_ttl: config.notifications.reset_code_ttl,
        max_failures: config.notifications.code_max_failures,
        max_issued: config.notifications.code_max_issued,
        window: config.notifications.code_window,
    };
    Ok((bus, codes))
}

/// The MQTT bridge's settings of `[mqtt]`.
fn mqtt_settings(m: &config::Mqtt) -> troupe_protocols::mqtt::Settings {
    troupe_protocols::mqtt::Settings {
        host: m.host.clone(),
        port: m.port,
        client_id_prefix: m.client_id_prefix.clone(),
        topics: m.topics.clone(),
        topic_prefix: m.topic_prefix.clone(),
        inflight: m.inflight,
        keep_alive: m.keep_alive,
    }
}

/// The email channel's settings of `[smtp]`.
fn smtp_settings(s: &config::Smtp) -> troupe_actors::notifications::email::Settings {
    troupe_actors::notifications::email::Settings {
        host: s.host.clone(),
        port: s.port,
        user: s.user.clone(),
        password: s.password.clone(),
        from: s.from.clone(),
        starttls: s.starttls,
    }
}

/// Starts the background checks of what this node depends on, which `/health` reports:
/// the store, and the MQTT broker and the SMTP server when configured (`[health]`).
fn dependencies(
    config: &Config,
    store: &Store,
    incarnation: u64,
) -> anyhow::Result<troupe_actors::system::dependencies::Dependencies> {
    use troupe_actors::notifications::email;
    use troupe_actors::system::dependencies::{Dependencies, Probe, Settings, StoreProbe};
    let mut probes: Vec<Arc<dyn Probe>> = vec![Arc::new(StoreProbe::new(
        store.clone(),
        config.storage.url.as_deref(),
    ))];
    if let Some(m) = &config.mqtt {
        probes.push(Arc::new(troupe_protocols::mqtt::Probe::new(
            mqtt_settings(m),
            &config.node.name,
            incarnation,
        )));
    }
    if let Some(s) = &config.smtp {
        probes.push(Arc::new(
            email::Probe::new(&smtp_settings(s)).context("smtp settings")?,
        ));
    }
    // Errors are shown on /health: never with the SMTP password (URL passwords are
    // masked whatever they are).
    let secrets = config
        .smtp
        .iter()
        .filter_map(|s| s.password.clone())
        .collect();
    let settings = Settings {
        interval: config.health.check_interval,
        timeout: config.health.check_timeout,
    };
    Ok(Dependencies::start(probes, settings, secrets))
}

/// The `sso` service's settings of one `[[sso.providers]]` entry.
fn sso_provider(p: &config::SsoProvider) -> troupe_actors::sso::provider::Settings {
    troupe_actors::sso::provider::Settings {
        name: p.name.clone(),
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        redirect_url: p.redirect_url.clone(),
        scopes: p.scopes.clone(),
        link_verified_email: p.link_verified_email,
        post_logout_redirect_url: p.post_logout_redirect_url.clone(),
    }
}

/// Creates the bootstrap admin user (`[admin] password` / `TROUPE_ADMIN_PASSWORD`) unless a
/// user of that name exists, so admin endpoints work on a fresh cluster.
async fn bootstrap_admin(config: &Config, mesh: &Mesh) -> anyhow::Result<()> {
    let Some(password) = config.admin.password.clone() else {
        return Ok(());
    };
    let call = users::ENSURE_ADMIN
        .call(um::EnsureAdminRequest {
            username: config.admin.username.clone(),
            email: config.admin.email.clone(),
            password,
            full_name: "Administrator".into(),
        })
        .timeout(Duration::from_secs(30));
    let reply = mesh
        .router()
        .call(call)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the bootstrap admin user: {e}"))?;
    if reply.created {
        tracing::info!(username = %config.admin.username, "created the bootstrap admin user");
    }
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
