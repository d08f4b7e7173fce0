//! `system.health`: this node's status and its service groups.

use troupe_proto::mesh::{NodeHealth, ServiceHealth};

use crate::mesh::NodeInfo;

/// This node's health: `ok` when every service has all its workers, `degraded` when some
/// are restarting, `down` when a service has none.
pub fn report(info: &NodeInfo) -> NodeHealth {
    let services: Vec<ServiceHealth> = info
        .pools()
        .iter()
        .map(|p| {
            let alive = p.alive();
            let total = p.size();
            ServiceHealth {
                name: p.name().to_string(),
                workers_alive: alive as u32,
                workers_total: total as u32,
                in_flight: p.in_flight() as u32,
                restarts: p.restarts(),
                status: status(alive, total).to_string(),
            }
        })
        .collect();
    let overall = if services.iter().any(|s| s.status == "down") {
        "down"
    } else if services.iter().any(|s| s.status == "degraded") {
        "degraded"
    } else {
        "ok"
    };
    NodeHealth {
        node: info.node.to_string(),
        incarnation: info.incarnation,
        status: overall.to_string(),
        uptime_ms: info.started.elapsed().as_millis() as u64,
        version: env!("CARGO_PKG_VERSION").to_string(),
        services,
        http_requests: crate::metrics::HTTP_REQUESTS.get(),
        ws_connections: info
            .ws_connections
            .load(std::sync::atomic::Ordering::Relaxed) as u32,
    }
}

fn status(alive: usize, total: usize) -> &'static str {
    if alive == 0 {
        "down"
    } else if alive < total {
        "degraded"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_live_workers() {
        assert_eq!(status(4, 4), "ok");
        assert_eq!(status(3, 4), "degraded");
        assert_eq!(status(0, 4), "down");
    }

    #[test]
    fn a_node_without_pools_reports_ok_and_its_name() {
        let info = NodeInfo::new("n1".into(), 1);
        let h = report(&info);
        assert_eq!(h.node, "n1");
        assert_eq!(h.status, "ok");
        assert!(h.services.is_empty());
    }
}
