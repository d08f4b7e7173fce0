//! `[tasks]`: the tasks service's scan interval and claim limit.

use std::time::Duration;

use super::reader::{between, Reader, Section};

/// `[tasks]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tasks {
    /// How often every node scans for unfinished tasks homed on it (`scan_interval_ms`).
    pub scan_interval: Duration,
    /// Claims a task may have before it is failed instead of claimed again.
    pub max_activations: u32,
}

impl Reader<'_> {
    /// Reads `[tasks]`.
    pub(super) fn tasks(&mut self, root: &mut Section<'_>) -> Tasks {
        let mut section = self.section(root, "tasks");
        let scan_env = Some("TROUPE_TASKS_SCAN_INTERVAL_MS");
        let scan_ms = self.get(
            &mut section,
            "scan_interval_ms",
            scan_env,
            &between(50, 600_000),
        );
        let activations_env = Some("TROUPE_TASKS_MAX_ACTIVATIONS");
        let activations = self.get(
            &mut section,
            "max_activations",
            activations_env,
            &between(1, 1000),
        );
        self.finish(section);
        Tasks {
            scan_interval: Duration::from_millis(scan_ms.unwrap_or(2000)),
            max_activations: activations.unwrap_or(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{env, keys};
    use crate::config::{parse, Overrides};

    #[test]
    fn tasks_section_defaults_env_and_bad_values() {
        let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.tasks.scan_interval, Duration::from_secs(2));
        assert_eq!(config.tasks.max_activations, 5);
        let text = format!("{base}[tasks]\nscan_interval_ms = 250\n");
        let vars = env(&[("TROUPE_TASKS_MAX_ACTIVATIONS", "9")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.tasks.scan_interval, Duration::from_millis(250));
        assert_eq!(config.tasks.max_activations, 9);
        let text = format!("{base}[tasks]\nscan_interval_ms = 1\nmax_activations = 0\nscan = 3\n");
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "tasks.scan_interval_ms",
                "tasks.max_activations",
                "tasks.scan"
            ]
        );
    }
}
