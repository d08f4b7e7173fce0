//! `[services]`: worker pools, admission and call deadlines of the service actors.

use std::time::Duration;

use super::reader::{at_least, Reader, Section};

/// `[services]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Worker actors per service per node.
    pub workers: usize,
    /// In-flight requests per service per node before `resource_exhausted`.
    pub queue_capacity: usize,
    /// Default deadline of a mesh call (`call_timeout_ms`).
    pub call_timeout: Duration,
}

impl Reader<'_> {
    pub(super) fn services(&mut self, root: &mut Section<'_>) -> Services {
        let mut section = self.section(root, "services");
        let workers_env = Some("TROUPE_SERVICES_WORKERS");
        let workers = self.get(&mut section, "workers", workers_env, &at_least(1));
        let capacity_env = Some("TROUPE_SERVICES_QUEUE_CAPACITY");
        let capacity = self.get(&mut section, "queue_capacity", capacity_env, &at_least(1));
        let timeout_env = Some("TROUPE_SERVICES_CALL_TIMEOUT_MS");
        let timeout_ms = self.get(&mut section, "call_timeout_ms", timeout_env, &at_least(1));
        self.finish(section);
        Services {
            workers: workers.unwrap_or(4),
            queue_capacity: capacity.unwrap_or(1024),
            call_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
        }
    }
}
