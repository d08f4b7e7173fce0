//! REST/JSON ingress on axum.
//!
//! Every node serves every route. Handlers decode and authenticate, build a mesh
//! [`Call`](troupe_actors::mesh::Call), and encode the answer; errors take the contract's
//! JSON form in exactly one place ([`error`]).
//!
//! # Layout
//! - [`error`]: mesh code -> HTTP status + JSON body.
//! - [`request_id`], [`middleware`]: `x-request-id`, JSON errors for every failure, metrics.
//! - [`idempotency`]: `Idempotency-Key`, the key of every write's mesh calls.
//! - [`auth`]: the admin bearer token.
//! - [`json`]: a JSON body extractor whose rejections are API errors.
//! - [`object`]: reading a JSON object body field by field.
//! - [`sso`]: sign-in through OpenID Connect providers (`/auth/sso/*`, `/auth/login-url`,
//!   `/auth/logout-url`).
//! - [`tasks`], [`todos`]: tasks and todo lists.
//! - [`gatherings`]: calendar events (`/events*`), registration and `calendar.ics`.
//! - [`training`]: courses, progress, assessments and certificates (landscape C).
//! - [`coaching`]: coaches, open slots in the coach's time zone, bookings (one per slot,
//!   cluster-wide) and session notes (landscape C).
//! - [`engagement`]: activity points, badges, leaderboard, feedback, analytics (landscape C).
//! - [`reminders`]: the admin view of durable reminders (`/admin/reminders`).
//! - [`health`], [`cluster`], [`ping`], [`metrics`], [`dashboard`], [`admin`], [`bench`]: one
//!   file per route family.
//! - [`openapi`]: `/openapi.json`, built from the handlers' `#[utoipa::path]` attributes as
//!   [`router`] registers them.

pub mod account;
pub mod admin;
pub mod auth;
pub mod bench;
pub mod chat;
pub mod cluster;
pub mod coaching;
pub mod codes;
pub mod dashboard;
pub mod engagement;
pub mod error;
pub mod events;
pub mod gatherings;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod images;
pub mod json;
pub mod metrics;
pub mod middleware;
pub mod notifications;
pub mod object;
pub mod openapi;
pub mod ping;
pub mod reminders;
pub mod request_id;
pub mod sessions;
pub mod sso;
pub mod tasks;
pub mod todos;
pub mod training;
pub mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use openapi::aliased;

pub use error::ApiError;

use crate::ingress::Ingress;

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

/// The parts of [`AppState`]: the ingress core every protocol shares (reached through
/// `Deref`: `state.mesh`, `state.ask(..)`, `state.authenticate(..)`), and HTTP's own.
pub struct Shared {
    /// The ingress core.
    pub ingress: Arc<Ingress>,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Settings.
    pub config: Arc<Config>,
    /// This node's live connections.
    pub hub: Arc<troupe_actors::hub::ConnectionHub>,
    /// The cluster-wide quota of WebSocket connections per user, reserved per connection.
    pub ws_slots: Arc<troupe_actors::hub::Slots>,
    /// WebSocket settings.
    pub ws: Arc<crate::ws::Config>,
}

impl std::ops::Deref for Shared {
    type Target = Ingress;

    fn deref(&self) -> &Ingress {
        &self.ingress
    }
}

/// The full HTTP application of a node, ready to serve: the routes with their layers (body
/// limit, CORS, and [`middleware::ObserveLayer`]: request id, metrics and JSON errors), the
/// SOAP routes ([`crate::soap::router`], whose errors are Faults), and `/openapi.json`, which
/// describes them all.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    let max_body = state.config.max_body_bytes;
    // Every route is registered through `routes!`, which takes its path from the handler's
    // `#[utoipa::path]`, so the router and /openapi.json are one list.
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::node))
        .routes(routes!(health::cluster))
        .routes(routes!(cluster::view))
        .routes(routes!(ping::ping))
        .routes(routes!(metrics::render))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::state))
        .routes(routes!(admin::actors))
        .routes(routes!(admin::kill))
        .routes(routes!(reminders::list))
        .routes(routes!(bench::run))
        // identity: registration and login under every landscape's paths
        .routes(aliased(
            routes!(account::register),
            &[
                "/api/auth/register",
                "/users/register",
                "/api/v1/airliner/registerUser",
            ],
        ))
        .routes(aliased(
            routes!(account::login),
            &[
                "/login",
                "/api/auth/login",
                "/api/v1/airliner/login",
                "/api/v1/airliner/generateToken",
            ],
        ))
        .routes(routes!(account::refresh))
        .routes(routes!(account::logout))
        .routes(routes!(account::verify_token))
        .routes(routes!(account::verify_path))
        .routes(aliased(routes!(account::admin_create), &["/users"]))
        .routes(routes!(account::admin_set_password))
        .routes(routes!(account::admin_delete))
        // single sign-on (landscape C)
        .routes(aliased(routes!(sso::login), &["/auth/login-url"]))
        .routes(routes!(sso::callback))
        .routes(routes!(sso::refresh))
        .routes(routes!(sso::user_info))
        .routes(aliased(routes!(sso::logout), &["/auth/logout-url"]))
        // profiles and directory
        .routes(aliased(routes!(users::my_profile), &["/profile"]))
        .routes(routes!(users::update_my_profile))
        .routes(routes!(users::profile))
        .routes(routes!(users::list))
        .routes(routes!(users::search_get, users::search_post))
        .routes(routes!(
            users::get,
            users::admin_update,
            users::admin_delete
        ))
        .routes(routes!(users::put_key))
        .routes(routes!(users::get_key))
        .routes(aliased(routes!(users::contacts), &["/contacts/"]))
        .routes(routes!(users::test_db))
        // sessions
        .routes(routes!(sessions::start))
        .routes(routes!(sessions::verify))
        .routes(routes!(sessions::list, sessions::update, sessions::end_all))
        .routes(routes!(sessions::last_connection))
        .routes(routes!(sessions::tracker_health))
        // tasks and todos
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::cancel))
        .routes(routes!(todos::list, todos::create))
        .routes(routes!(todos::get, todos::update, todos::delete))
        // calendar events (landscape C); the static `/events/calendar.ics` wins over
        // `/events/{id}` in the router
        .routes(routes!(gatherings::list, gatherings::create))
        .routes(routes!(gatherings::calendar))
        .routes(routes!(
            gatherings::get,
            gatherings::update,
            gatherings::delete
        ))
        .routes(routes!(gatherings::register, gatherings::cancel))
        .routes(routes!(gatherings::registrations))
        // training (landscape C)
        .routes(routes!(training::list_courses, training::create_course))
        .routes(routes!(
            training::get_course,
            training::update_course,
            training::delete_course
        ))
        .routes(routes!(training::enroll))
        .routes(routes!(training::progress))
        .routes(routes!(training::mark_lesson))
        .routes(routes!(
            training::list_assessments,
            training::create_assessment
        ))
        .routes(routes!(training::submit))
        .routes(routes!(training::list_certificates))
        .routes(routes!(training::get_certificate))
        // coaching (landscape C)
        .routes(routes!(coaching::list_coaches, coaching::create_coach))
        .routes(routes!(coaching::get_coach, coaching::update_coach))
        .routes(routes!(coaching::availability))
        .routes(routes!(coaching::list_bookings, coaching::book))
        .routes(routes!(coaching::cancel))
        .routes(routes!(coaching::notes, coaching::add_note))
        // engagement (landscape C)
        .routes(routes!(engagement::track))
        .routes(routes!(
            engagement::give_feedback,
            engagement::list_feedback
        ))
        .routes(routes!(engagement::points))
        .routes(routes!(engagement::badges))
        .routes(routes!(engagement::leaderboard))
        .routes(routes!(engagement::analytics))
        // chat and live connections (landscape E)
        .routes(routes!(crate::ws::upgrade))
        .routes(routes!(chat::incoming))
        .routes(routes!(chat::send_request))
        .routes(routes!(chat::accept))
        .routes(routes!(chat::send_message))
        .routes(aliased(routes!(chat::list), &["/messages/"]))
        .routes(routes!(chat::conversation))
        .routes(routes!(chat::broadcast))
        .routes(routes!(chat::connections))
        // events, notifications and the emailed-code flows
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::read))
        .routes(routes!(
            notifications::preferences,
            notifications::set_preferences
        ))
        .routes(routes!(notifications::logs))
        .routes(routes!(codes::confirm_registration))
        .routes(routes!(codes::forgot_password))
        .routes(routes!(codes::confirm_forgot_password))
        .routes(routes!(events::list))
        .routes(routes!(events::get, events::drop))
        .routes(routes!(events::replay))
        .routes(routes!(events::bench))
        .routes(routes!(events::bench_stats))
        // images
        .routes(routes!(images::get))
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        // A layer wraps each route added so far, and the fallback. The SOAP routes, merged
        // after, carry their own body limit, inside the layer that makes their errors Faults.
        .layer(RequestBodyLimitLayer::new(max_body))
        .merge(crate::soap::router(max_body))
        .split_for_parts();
    let trusted = Arc::new(state.trusted_proxies.clone());
    let router = openapi::serve(routes, doc).with_state(state);
    // No allow-listed origin means no cross-origin access at all: no CORS layer to run.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // The write key wraps matched routes only: a method a route does not serve is 405
    // whatever key it sent.
    let router = router
        .route_layer(idempotency::WRITE_KEY)
        .layer(middleware::ObserveLayer);
    // No trusted proxy means the peer is the client: no layer to run.
    if trusted.is_empty() {
        router
    } else {
        router.layer(axum::middleware::from_fn_with_state(trusted, client_addr))
    }
}

/// The connection's own peer, kept in a request's extensions when [`client_addr`] has
/// replaced its `ConnectInfo` with the client behind a trusted proxy.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// With `[http] trusted_proxies` set: a request whose peer is a trusted proxy gets the
/// client named by `X-Forwarded-For` (the right-most hop not itself trusted, see
/// [`crate::ingress::client_ip`]) as its `ConnectInfo`, so every handler, limit and
/// session record sees the client; from any other peer the header is ignored.
async fn client_addr(
    axum::extract::State(trusted): axum::extract::State<Arc<Vec<ipnet::IpNet>>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = crate::ingress::client_ip(&trusted, peer.ip(), forwarded);
        if client != peer.ip() {
            req.extensions_mut().insert(Peer(peer));
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
    }
    next.run(req).await
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
                idempotency::IDEMPOTENCY_KEY,
            ]),
    )
}

/// Runs a mesh call with the request deadline and answers its typed reply; a failure
/// becomes the API's error.
pub async fn ask<R: prost::Message + Default>(
    state: &AppState,
    call: troupe_actors::mesh::Call<R>,
) -> Result<R, ApiError> {
    Ok(state.ingress.ask(call).await?)
}

/// [`ask`]s `op` with `msg` as `caller` under request id `rid`, routed to `entity`'s home
/// when one is given (an entity-routed op of a per-thing actor).
pub async fn ask_as<Req: prost::Message + Default, Rep: prost::Message + Default>(
    state: &AppState,
    rid: String,
    caller: &auth::Caller,
    op: &troupe_actors::mesh::Op<Req, Rep>,
    msg: Req,
    entity: Option<String>,
) -> Result<Rep, ApiError> {
    let mut call = op.call(msg).request_id(rid).caller(caller.to_proto());
    if let Some(id) = entity {
        call = call.to(troupe_actors::mesh::Target::Entity(id));
    }
    ask(state, call).await
}
