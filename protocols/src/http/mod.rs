//! REST/JSON ingress on axum.
//!
//! Every node serves every route. Handlers decode and authenticate, build a mesh
//! [`Call`](troupe_actors::mesh::Call), and encode the answer; errors take the contract's
//! JSON form in exactly one place ([`error`]).
//!
//! # Layout
//! - [`error`]: mesh code -> HTTP status + JSON body.
//! - [`request_id`], [`middleware`]: `x-request-id`, JSON errors for every failure, metrics.
//! - [`auth`]: the admin bearer token.
//! - [`json`]: a JSON body extractor whose rejections are API errors.
//! - [`object`]: reading a JSON object body field by field.
//! - [`tasks`], [`todos`]: tasks and todo lists.
//! - [`health`], [`cluster`], [`ping`], [`metrics`], [`dashboard`], [`admin`], [`bench`]: one
//!   file per route family.

pub mod account;
pub mod admin;
pub mod auth;
pub mod bench;
pub mod chat;
pub mod cluster;
pub mod codes;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod health;
pub mod identity;
pub mod images;
pub mod json;
pub mod metrics;
pub mod middleware;
pub mod notifications;
pub mod object;
pub mod ping;
pub mod request_id;
pub mod sessions;
pub mod tasks;
pub mod todos;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use axum::routing::{get, post, put};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use troupe_actors::mesh::Mesh;

pub use error::ApiError;

/// HTTP ingress settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Deadline of the mesh calls a request makes.
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty = no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Bearer token of the admin endpoints; `None` = admin endpoints refuse everyone.
    pub admin_token: Option<String>,
}

/// What every handler can reach; one `Arc`, so the per-request clone axum makes of the
/// state is a single reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The node's runtime.
    pub mesh: Mesh,
    /// Verifies access tokens locally.
    pub tokens: Arc<troupe_actors::auth::token::Tokens>,
    /// Sessions revoked anywhere in the cluster, as this node knows them.
    pub revocations: troupe_actors::sessions::Revocations,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Settings.
    pub config: Arc<Config>,
    /// This node's live connections.
    pub hub: Arc<troupe_actors::hub::ConnectionHub>,
    /// WebSocket settings.
    pub ws: Arc<crate::ws::Config>,
}

/// The full HTTP application of a node, ready to serve: the routes with their layers (body
/// limit, CORS, and [`middleware::ObserveLayer`]: request id, metrics and JSON errors).
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    let max_body = state.config.max_body_bytes;
    let router = Router::new()
        .route("/health", get(health::node))
        .route("/health/cluster", get(health::cluster))
        .route("/cluster", get(cluster::view))
        .route("/ping", get(ping::ping))
        .route("/metrics", get(metrics::render))
        .route("/dashboard", get(dashboard::page))
        .route("/admin/actors", get(admin::actors))
        .route("/admin/chaos/kill", post(admin::kill))
        .route("/admin/mesh/bench", post(bench::run))
        // identity: registration and login under every landscape's paths
        .route("/auth/register", post(account::register))
        .route("/api/auth/register", post(account::register))
        .route("/users/register", post(account::register))
        .route("/api/v1/airliner/registerUser", post(account::register))
        .route("/login", post(account::login))
        .route("/auth/login", post(account::login))
        .route("/api/auth/login", post(account::login))
        .route("/api/v1/airliner/login", post(account::login))
        .route("/api/v1/airliner/generateToken", post(account::login))
        .route("/auth/refresh", post(account::refresh))
        .route("/auth/logout", post(account::logout))
        .route("/auth/verify-token", get(account::verify_token))
        .route("/auth/verify/{token}", get(account::verify_path))
        .route("/auth/admin/create-user", post(account::admin_create))
        .route(
            "/auth/admin/set-password",
            post(account::admin_set_password),
        )
        .route("/auth/admin/delete-user", post(account::admin_delete))
        // profiles and directory
        .route("/profile", get(users::my_profile))
        .route(
            "/users/profile",
            get(users::my_profile).put(users::update_my_profile),
        )
        .route("/users/profile/{id}", get(users::profile))
        .route("/users", get(users::list).post(account::admin_create))
        .route(
            "/users/search",
            get(users::search_get).post(users::search_post),
        )
        .route(
            "/users/{id}",
            get(users::get)
                .put(users::admin_update)
                .delete(users::admin_delete),
        )
        .route("/keys", post(users::put_key))
        .route("/keys/{user_id}", get(users::get_key))
        .route("/contacts", get(users::contacts))
        .route("/contacts/", get(users::contacts))
        .route("/test-db", get(users::test_db))
        // sessions
        .route("/api/sessions", post(sessions::start))
        .route("/api/sessions/verify", get(sessions::verify))
        .route(
            "/api/sessions/{user_id}",
            get(sessions::list)
                .put(sessions::update)
                .delete(sessions::end_all),
        )
        .route("/last-connection", get(sessions::last_connection))
        .route("/connected/health", get(sessions::tracker_health))
        // tasks and todos
        .route(
            "/api/v1/eventstreammonitor/tasks",
            get(tasks::list).post(tasks::create),
        )
        .route("/api/v1/eventstreammonitor/tasks/{id}", get(tasks::get))
        .route(
            "/api/v1/eventstreammonitor/tasks/{id}/cancel",
            axum::routing::put(tasks::cancel),
        )
        .route("/todos", get(todos::list).post(todos::create))
        .route(
            "/todos/{id}",
            get(todos::get).put(todos::update).delete(todos::delete),
        )
        // chat and live connections (landscape E)
        .route("/ws/{user_id}", get(crate::ws::upgrade))
        .route("/chat-requests/incoming", get(chat::incoming))
        .route("/chat-requests/send", post(chat::send_request))
        .route("/chat-requests/{id}/accept", post(chat::accept))
        .route("/messages/send", post(chat::send_message))
        .route("/messages", get(chat::list))
        .route("/messages/", get(chat::list))
        .route(
            "/messages/conversation/{contact_id}",
            get(chat::conversation),
        )
        .route("/broadcast", post(chat::broadcast))
        .route("/connections", get(chat::connections))
        // events, notifications and the emailed-code flows
        .route("/notifications", get(notifications::list))
        .route("/notifications/{id}/read", put(notifications::read))
        .route(
            "/notifications/preferences",
            get(notifications::preferences).put(notifications::set_preferences),
        )
        .route("/notifications/logs", get(notifications::logs))
        .route(
            "/users/confirm-registration",
            post(codes::confirm_registration),
        )
        .route("/auth/forgot-password", post(codes::forgot_password))
        .route(
            "/auth/confirm-forgot-password",
            post(codes::confirm_forgot_password),
        )
        .route("/admin/dead-letters", get(events::list))
        .route(
            "/admin/dead-letters/{id}",
            get(events::get).delete(events::drop),
        )
        .route("/admin/dead-letters/{id}/replay", post(events::replay))
        .route("/admin/events/bench", post(events::bench))
        .route("/admin/events/bench/{run}", get(events::bench_stats))
        // SOAP (crate::soap) and images
        .route("/register", post(crate::soap::handlers::register))
        .route(
            "/soap",
            get(crate::soap::handlers::wsdl).post(crate::soap::handlers::endpoint),
        )
        .route("/user/soap", get(crate::soap::handlers::lookup))
        .route("/images/{id}", get(images::get))
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body));
    // No allow-listed origin means no cross-origin access at all: no CORS layer to run.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(middleware::ObserveLayer)
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                request_id::REQUEST_ID,
            ]),
    )
}

/// Runs a mesh call and decodes the service's prost reply.
pub async fn ask<R: prost::Message + Default>(
    state: &AppState,
    call: troupe_actors::mesh::Call,
) -> Result<R, ApiError> {
    let call = if call.timeout.is_none() {
        call.timeout(state.config.request_timeout)
    } else {
        call
    };
    let bytes = state.mesh.router().call(call).await?;
    R::decode(bytes).map_err(|e| {
        ApiError(troupe_actors::mesh::MeshError::internal(format!(
            "undecodable reply: {e}"
        )))
    })
}
