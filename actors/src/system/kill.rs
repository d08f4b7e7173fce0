//! `system.kill`: chaos. Kills worker actors of one service (or of any service) on this
//! node; their supervisors restart them.

use rand::seq::IndexedRandom;
use troupe_proto::mesh::{KillReply, KillRequest, KilledActor};

use crate::mesh::{MeshError, NodeInfo};

/// Most actors one request may kill.
pub const MAX_COUNT: u32 = 1000;

/// Kills `count` random running workers of `service` (any service when empty).
pub fn run(info: &NodeInfo, req: KillRequest) -> Result<KillReply, MeshError> {
    if req.count == 0 || req.count > MAX_COUNT {
        return Err(MeshError::invalid(format!(
            "count must be between 1 and {MAX_COUNT}"
        )));
    }
    let pools = if req.service.is_empty() {
        info.pools()
    } else {
        vec![info
            .pool(&req.service)
            .ok_or_else(|| MeshError::not_found(format!("no service named {}", req.service)))?]
    };
    let mut killed = Vec::new();
    for _ in 0..req.count {
        let me = crate::mesh::worker::CURRENT.try_with(|id| *id).ok();
        let killable = |p: &&std::sync::Arc<crate::mesh::Pool>| {
            p.workers().iter().any(|w| Some(w.get_id()) != me)
        };
        let Some(pool) = pools
            .iter()
            .filter(killable)
            .collect::<Vec<_>>()
            .choose(&mut rand::rng())
            .copied()
        else {
            break;
        };
        for name in pool.kill_random(1) {
            killed.push(KilledActor {
                node: info.node.to_string(),
                service: pool.name().to_string(),
                actor: name,
            });
        }
    }
    Ok(KillReply { killed })
}
