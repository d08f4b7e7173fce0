//! The runtime's own services, hosted on every node like any other.
//!
//! - `ping` ([`ping`]): answers which node and incarnation served it; the mesh heartbeat
//!   and `GET /ping` use it.
//! - `system`: [`health`] (this node's services and workers), [`actors`] (the actor
//!   listing behind `/admin/actors`) and [`kill`] (chaos: kill worker actors).

pub mod actors;
pub mod health;
pub mod kill;
pub mod ping;

use std::sync::Arc;

use bytes::Bytes;

use crate::mesh::{BoxFuture, MeshError, NodeInfo, Op, Request, Service};

/// Name of the ping service.
pub const PING: &str = "ping";
/// Name of the system service.
pub const SYSTEM: &str = "system";

/// The `ping` service.
pub struct Ping(pub Arc<NodeInfo>);

impl Service for Ping {
    fn name(&self) -> &'static str {
        PING
    }

    fn ops(&self) -> &'static [Op] {
        const OPS: &[Op] = &[Op::idempotent(ping::OP)];
        OPS
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match req.op.as_str() {
                ping::OP => Ok(ping::run(&self.0)),
                op => Err(unknown_op(PING, op)),
            }
        })
    }
}

/// The `system` service.
pub struct System(pub Arc<NodeInfo>);

impl Service for System {
    fn name(&self) -> &'static str {
        SYSTEM
    }

    fn ops(&self) -> &'static [Op] {
        const OPS: &[Op] = &[
            Op::idempotent(health::OP),
            Op::idempotent(actors::OP),
            Op::effectful(kill::OP),
        ];
        OPS
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match req.op.as_str() {
                health::OP => Ok(health::run(&self.0)),
                actors::OP => Ok(actors::run(&self.0)),
                kill::OP => kill::run(&self.0, &req.payload),
                op => Err(unknown_op(SYSTEM, op)),
            }
        })
    }
}

/// The runtime services for a node.
pub fn services(info: &Arc<NodeInfo>) -> Vec<Arc<dyn Service>> {
    vec![Arc::new(Ping(info.clone())), Arc::new(System(info.clone()))]
}

fn unknown_op(service: &str, op: &str) -> MeshError {
    MeshError::not_found(format!("{service} has no op {op}"))
}
