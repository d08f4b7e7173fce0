//! `system.actors`: every service actor on this node (workers with their restart
//! generation, and each group's endpoint), for `/admin/actors`.

use troupe_proto::mesh::{ActorInfo, ActorList};

use crate::mesh::NodeInfo;

/// Lists this node's workers.
pub fn run(info: &NodeInfo) -> ActorList {
    let node = info.node.to_string();
    let actors = info
        .pools()
        .iter()
        .flat_map(|p| {
            let node = node.clone();
            p.list().into_iter().map(move |w| ActorInfo {
                node: node.clone(),
                service: p.name().to_string(),
                name: w.name,
                id: w.id,
                role: "worker".into(),
                status: w.status,
            })
        })
        .collect();
    ActorList { actors }
}
