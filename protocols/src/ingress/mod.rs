//! The ingress core every protocol shares: the node's runtime, `ask` (a mesh call with the
//! request's deadline), `authenticate` (an access token checked on this node), request ids
//! and the request metrics' names. REST, SOAP, gRPC and WebSocket each hold one [`Ingress`]
//! and differ only in how they decode requests and how they write answers and errors: each
//! maps [`MeshError`] to its own form in exactly one place (`http::error`, `grpc::error`,
//! `soap::fault`, `ws::close`).
//!
//! # Layout
//! - this file: [`Ingress`];
//! - [`caller`]: [`Caller`], who is calling;
//! - [`request_id`]: ids of requests that came without one;
//! - [`metrics`]: names of the per-protocol request metrics;
//! - [`write_key`]: the idempotency key of a write, put on its effectful calls.

pub mod caller;
pub mod metrics;
pub mod request_id;
pub mod write_key;

use std::sync::Arc;
use std::time::Duration;

use troupe_actors::auth::token::{TokenKind, Tokens};
use troupe_actors::mesh::{Call, Code, Mesh, MeshError};
use troupe_actors::sessions::Revocations;

pub use caller::Caller;

/// What every protocol's handlers reach: one per node, shared by all listeners.
pub struct Ingress {
    /// The node's runtime.
    pub mesh: Mesh,
    /// Verifies access tokens locally.
    pub tokens: Arc<Tokens>,
    /// Sessions revoked anywhere in the cluster, as this node knows them.
    pub revocations: Revocations,
    /// Deadline of a request's mesh calls unless the call or the client sets one.
    pub request_timeout: Duration,
}

impl Ingress {
    /// Runs a mesh call with the request deadline (unless the call names its own) and
    /// answers its typed reply.
    pub async fn ask<Rep: prost::Message + Default>(
        &self,
        call: Call<Rep>,
    ) -> Result<Rep, MeshError> {
        let call = if call.has_timeout() {
            call
        } else {
            call.timeout(self.request_timeout)
        };
        // Every write is keyed: the request's key (REST), or one made for this call (SOAP,
        // gRPC, WebSocket frames), so the router may retry it safely.
        let call = if call.is_idempotent() {
            call
        } else {
            match write_key::current() {
                Some(key) => call.idempotency_key(key),
                None => call.idempotency_key(write_key::made()),
            }
        };
        self.mesh.router().call(call).await
    }

    /// Verifies an access token on this node (no mesh hop): signature, expiry, and the
    /// node's revocation set.
    pub fn authenticate(&self, token: &str) -> Result<Caller, MeshError> {
        let claims = self
            .tokens
            .verify(token, TokenKind::Access)
            .map_err(MeshError::from)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(MeshError::new(Code::Unauthenticated, "session has ended"));
        }
        Ok(Caller {
            user_id: claims.sub,
            username: claims.username,
            roles: claims.roles,
            session_id: claims.sid,
            expires_at: claims.exp,
        })
    }
}
