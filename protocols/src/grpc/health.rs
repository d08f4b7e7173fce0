//! `grpc.health.v1.Health` for the node (`""`), each service group (`users`, `auth`, ...)
//! and each gRPC service (`troupe.images.v1.ImageService`, ...): `SERVING` while the group
//! behind it has a live worker on this node, `NOT_SERVING` otherwise. Refreshed every
//! [`REFRESH`].

use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use troupe_actors::mesh::Mesh;
use troupe_proto::auth::token_service_server::TokenServiceServer;
use troupe_proto::auth::user_validation_server::UserValidationServer;
use troupe_proto::images::image_service_server::ImageServiceServer;

use super::images::Images;
use super::tokens::Tokens;
use super::users::Validation;

/// How often the statuses follow the worker pools.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The gRPC services of a node and the service group each depends on.
const SERVICES: [(&str, &str); 3] = [
    (
        <ImageServiceServer<Images> as NamedService>::NAME,
        troupe_actors::images::NAME,
    ),
    (
        <UserValidationServer<Validation> as NamedService>::NAME,
        troupe_actors::auth::NAME,
    ),
    (
        <TokenServiceServer<Tokens> as NamedService>::NAME,
        troupe_actors::auth::NAME,
    ),
];

fn serving(up: bool) -> ServingStatus {
    if up {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Sets every status once from the pools' current state.
pub async fn refresh(reporter: &HealthReporter, mesh: &Mesh) {
    let pools = mesh.info().pools();
    let alive = |name: &str| pools.iter().any(|p| p.name() == name && p.alive() > 0);
    for pool in &pools {
        reporter
            .set_service_status(pool.name(), serving(pool.alive() > 0))
            .await;
    }
    for (service, group) in SERVICES {
        reporter
            .set_service_status(service, serving(alive(group)))
            .await;
    }
    let all = pools.iter().all(|p| p.alive() > 0);
    reporter.set_service_status("", serving(all)).await;
}

/// The health service, kept current by a background task until the reporter is dropped
/// by everyone else.
pub async fn service(
    mesh: Mesh,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, server) = tonic_health::server::health_reporter();
    refresh(&reporter, &mesh).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            refresh(&reporter, &mesh).await;
        }
    });
    server
}
