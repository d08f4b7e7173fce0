//! gRPC ingress on tonic: `grpc.health.v1.Health` for the node and each service group.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use troupe_actors::mesh::Mesh;

/// Serves gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    mesh: Mesh,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    for pool in mesh.info().pools() {
        reporter
            .set_service_status(pool.name(), ServingStatus::Serving)
            .await;
    }
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}
