//! `troupe.auth.v1.TokenService`: token checks (the `auth` service's `verify` op) and token
//! issue for a username and password (its `login` op, as `POST
//! /api/v1/airliner/generateToken` does).

use tonic::{Request, Response, Status};
use troupe_actors::auth::{self, messages as am};
use troupe_proto::auth as pb;
use troupe_proto::auth::token_service_server::TokenService;

use super::context::Context;
use super::error::invalid;
use super::{ask, State};

/// The `TokenService` of one node.
#[derive(Clone)]
pub struct Tokens {
    state: State,
}

impl Tokens {
    /// The service over the node's gRPC state.
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl TokenService for Tokens {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let token = Some(request.into_inner().token)
            .filter(|t| !t.is_empty())
            .or_else(|| ctx.token.clone())
            .ok_or_else(|| invalid("token is required (in the request or as the bearer token)"))?;
        let call = ctx.call(&auth::ops::VERIFY, am::VerifyRequest { token });
        match ask::<am::VerifyReply>(&self.state, call).await {
            Ok(v) => Ok(Response::new(pb::ValidateTokenResponse {
                valid: true,
                reason: String::new(),
                user_id: v.user_id,
                username: v.username,
                roles: v.roles,
                session_id: v.session_id,
                expires_at: v.expires_at,
            })),
            Err(s) if s.code() == tonic::Code::Unauthenticated => {
                Ok(Response::new(pb::ValidateTokenResponse {
                    valid: false,
                    reason: s.message().to_string(),
                    ..Default::default()
                }))
            }
            Err(s) => Err(s),
        }
    }

    async fn generate_token(
        &self,
        request: Request<pb::GenerateTokenRequest>,
    ) -> Result<Response<pb::GenerateTokenResponse>, Status> {
        let ctx = Context::of(request.metadata(), self.state.request_timeout);
        let ip = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let user_agent = request
            .metadata()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(512)
            .collect();
        let r = request.into_inner();
        let pair: am::TokenPair = ask(
            &self.state,
            ctx.call(
                &auth::ops::LOGIN,
                am::LoginRequest {
                    login: r.username,
                    password: r.password,
                    ip,
                    user_agent,
                    device: "grpc".into(),
                },
            ),
        )
        .await?;
        Ok(Response::new(pb::GenerateTokenResponse {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer".into(),
            expires_in: pair.expires_in,
            user_id: pair.user.map(|u| u.id).unwrap_or_default(),
            session_id: pair.session_id,
        }))
    }
}
