//! The gRPC benchmark baseline: a bare tonic server whose `TokenService/ValidateToken`
//! answers `valid` at once (no auth check, no mesh), nothing else. `scripts/bench_grpc.sh`
//! runs it side by side with a Troupe node and drives both with `grpc_load`.
//!
//! `cargo run --release --example bare_tonic -- 127.0.0.1:7998`

use tonic::{Request, Response, Status};
use troupe_proto::auth::token_service_server::{TokenService, TokenServiceServer};
use troupe_proto::auth::{
    GenerateTokenRequest, GenerateTokenResponse, ValidateTokenRequest, ValidateTokenResponse,
};

struct Trivial;

#[tonic::async_trait]
impl TokenService for Trivial {
    async fn validate_token(
        &self,
        _: Request<ValidateTokenRequest>,
    ) -> Result<Response<ValidateTokenResponse>, Status> {
        Ok(Response::new(ValidateTokenResponse {
            valid: true,
            ..Default::default()
        }))
    }

    async fn generate_token(
        &self,
        _: Request<GenerateTokenRequest>,
    ) -> Result<Response<GenerateTokenResponse>, Status> {
        Err(Status::unimplemented("baseline answers ValidateToken only"))
    }
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7998".into());
    let addr = addr.parse().expect("an IP:port address");
    println!("bare tonic listening on {addr}");
    tonic::transport::Server::builder()
        .add_service(TokenServiceServer::new(Trivial))
        .serve(addr)
        .await
        .expect("serve");
}
