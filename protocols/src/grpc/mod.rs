//! gRPC ingress on tonic: the node's gRPC API, standard health checking and server
//! reflection, so `grpcurl` and generated clients work against any node.
//!
//! Handlers read the request id, the `grpc-timeout` deadline and the bearer token from the
//! metadata ([`context`]), make one mesh call, and map a failure once onto a gRPC status
//! ([`error`]).
//!
//! # Layout
//! - [`images`]: the `troupe.images.v1.ImageService`.
//! - [`users`]: the `troupe.auth.v1.UserValidation`.
//! - [`tokens`]: the `troupe.auth.v1.TokenService`.
//! - [`health`]: `grpc.health.v1.Health` per node, service group and gRPC service.
//! - [`context`]: request id, deadline and caller from the metadata.
//! - [`error`]: mesh code -> gRPC status.
//! - [`limits`]: calls per client address (cluster-wide) and connections at once.
//! - [`trace`]: the call's W3C trace context (`traceparent` metadata, answered back).
//! - [`idempotency`]: the client's `idempotency-key` metadata for the call's writes.

pub mod context;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod limits;
pub mod tokens;
pub mod trace;
pub mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::Status;
use troupe_actors::mesh::Call;

use crate::ingress::Ingress;
use troupe_proto::auth::token_service_server::TokenServiceServer;
use troupe_proto::auth::user_validation_server::UserValidationServer;
use troupe_proto::images::image_service_server::ImageServiceServer;

/// gRPC ingress settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted image.
    pub max_image_bytes: usize,
    /// Base of the public image URLs, e.g. `http://127.0.0.1:7181`.
    pub public_url: String,
    /// Longest one call may run (a shorter client deadline wins).
    pub timeout: Duration,
    /// Calls served at once on one connection; more wait their turn.
    pub concurrency_per_connection: usize,
    /// HTTP/2 streams a client may open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Connections served at once; more are closed when accepted.
    pub max_connections: usize,
}

/// What every gRPC handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct State(Arc<Shared>);

impl State {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for State {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`State`]: the ingress core every protocol shares, and gRPC's settings.
pub struct Shared {
    /// The ingress core (runtime, `ask`, `authenticate`).
    pub ingress: Arc<Ingress>,
    /// Settings.
    pub config: Config,
}

impl std::ops::Deref for Shared {
    type Target = Ingress;

    fn deref(&self) -> &Ingress {
        &self.ingress
    }
}

/// Runs a mesh call with the request's deadline; failures become statuses.
pub async fn ask<R: prost::Message + Default>(state: &State, call: Call<R>) -> Result<R, Status> {
    state.ingress.ask(call).await.map_err(error::status)
}

/// Room for the protobuf framing around an image's bytes in one message.
const FRAMING: usize = 64 * 1024;

/// Serves gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: State,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let health = health::service(state.mesh.clone()).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(troupe_proto::API_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(troupe_proto::API_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let max_message = state.config.max_image_bytes + FRAMING;
    let images = ImageServiceServer::new(images::Images::new(state.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    tonic::transport::Server::builder()
        .timeout(state.config.timeout)
        .concurrency_limit_per_connection(state.config.concurrency_per_connection)
        .max_concurrent_streams(state.config.max_concurrent_streams)
        .layer(limits::RateLimitLayer::new(state.clone()))
        .layer(trace::TraceLayer)
        .layer(idempotency::WRITE_KEY)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(images)
        .add_service(UserValidationServer::new(users::Validation::new(
            state.clone(),
        )))
        .add_service(TokenServiceServer::new(tokens::Tokens::new(state.clone())))
        .serve_with_incoming_shutdown(
            Box::pin(limits::capped(listener, state.config.max_connections)),
            shutdown,
        )
        .await?;
    Ok(())
}
