//! `troupe.auth.v1.UserValidation`: is this username (or email) and password valid, asked
//! of the `auth` service's `check` op (rate-limited like a login, no session started).

use tonic::{Request, Response, Status};
use troupe_actors::auth::{self, messages as am};
use troupe_actors::mesh::Code;
use troupe_proto::auth as pb;
use troupe_proto::auth::user_validation_server::UserValidation;

use super::context::Context;
use super::error::status;
use super::State;

/// The `UserValidation` service of one node.
#[derive(Clone)]
pub struct Validation {
    state: State,
}

impl Validation {
    /// The service over the node's gRPC state.
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl UserValidation for Validation {
    async fn validate_user(
        &self,
        request: Request<pb::ValidateUserRequest>,
    ) -> Result<Response<pb::ValidateUserResponse>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let ip = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let r = request.into_inner();
        let call = ctx.call(
            &auth::ops::CHECK,
            am::LoginRequest {
                login: r.username,
                password: r.password,
                ip,
                user_agent: String::new(),
                device: "grpc".into(),
            },
        );
        let user = match self.state.mesh.router().call(call).await {
            Ok(u) => u,
            Err(e) if e.code == Code::Unauthenticated => {
                return Ok(Response::new(pb::ValidateUserResponse::default()))
            }
            Err(e) => return Err(status(e)),
        };
        Ok(Response::new(pb::ValidateUserResponse {
            valid: true,
            user_id: user.id,
            username: user.username,
            email: user.email,
            roles: user.roles,
        }))
    }
}
