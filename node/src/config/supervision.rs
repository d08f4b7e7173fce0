//! `[supervision]`: the restart policy of supervised actors.

use std::time::Duration;

use super::reader::{any, at_least, Reader, Section};

/// `[supervision]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// First restart delay; it doubles on each restart (`restart_base_ms`).
    pub restart_base: Duration,
    /// Upper bound of the restart delay (`restart_max_ms`).
    pub restart_max: Duration,
    /// Restarts allowed within `restart_window` before escalating.
    pub max_restarts: u32,
    /// Window over which restarts are counted (`restart_window_s`).
    pub restart_window: Duration,
}

impl Reader<'_> {
    /// Reads `[supervision]`: the restart delay bound must not be below its base.
    pub(super) fn supervision(&mut self, root: &mut Section<'_>) -> Supervision {
        let mut section = self.section(root, "supervision");
        let base_ms = self.get(&mut section, "restart_base_ms", None, &at_least(1));
        let max_ms = self.get(&mut section, "restart_max_ms", None, &at_least(1));
        let max_restarts = self.get(&mut section, "max_restarts", None, &any);
        let window_s = self.get(&mut section, "restart_window_s", None, &at_least(1));
        let (base_ms, max_ms) = (base_ms.unwrap_or(5), max_ms.unwrap_or(5000));
        if max_ms < base_ms {
            let message = format!("must be at least restart_base_ms ({base_ms}), got {max_ms}");
            self.error(section.key("restart_max_ms"), message);
        }
        self.finish(section);
        Supervision {
            restart_base: Duration::from_millis(base_ms),
            restart_max: Duration::from_millis(max_ms),
            max_restarts: max_restarts.unwrap_or(10),
            restart_window: Duration::from_secs(window_s.unwrap_or(10)),
        }
    }
}
