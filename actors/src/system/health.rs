//! `system.health`: this node's status, its service groups and its dependencies.

use troupe_proto::mesh::{NodeHealth, ServiceHealth};

use crate::mesh::NodeInfo;

/// This node's health: `ok` when every service has all its workers and every dependency
/// answered its last check, `degraded` when some workers are restarting or a dependency is
/// down (the node still serves), `down` when a service has no worker.
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
    let dependencies = info.dependencies().map(|d| d.report()).unwrap_or_default();
    let overall = if services.iter().any(|s| s.status == "down") {
        "down"
    } else if services.iter().any(|s| s.status == "degraded")
        || dependencies.iter().any(|d| d.status == "down")
    {
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
        dependencies,
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
        assert!(h.dependencies.is_empty());
    }

    struct Refused;

    impl crate::system::dependencies::Probe for Refused {
        fn name(&self) -> &'static str {
            "mqtt"
        }
        fn target(&self) -> String {
            "127.0.0.1:1".into()
        }
        fn check(&self) -> crate::mesh::BoxFuture<'static, Result<(), String>> {
            Box::pin(async { Err("connection refused".to_string()) })
        }
    }

    #[tokio::test]
    async fn a_dependency_down_makes_the_node_degraded_not_down() {
        use crate::system::dependencies::{Dependencies, Settings};
        let info = NodeInfo::new("n1".into(), 1);
        info.set_dependencies(Dependencies::start(
            vec![std::sync::Arc::new(Refused)],
            Settings::default(),
            Vec::new(),
        ));
        for _ in 0..100 {
            if report(&info).status != "ok" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let h = report(&info);
        assert_eq!(h.status, "degraded");
        assert_eq!(h.dependencies.len(), 1);
        assert_eq!(h.dependencies[0].name, "mqtt");
        assert_eq!(h.dependencies[0].status, "down");
        assert_eq!(h.dependencies[0].last_error, "connection refused");
    }
}
