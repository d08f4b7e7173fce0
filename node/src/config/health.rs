//! `[health]`: how often the node checks its dependencies (the store, the MQTT broker, the
//! SMTP server) for `/health`, and the bound on one check.

use std::time::Duration;

use super::reader::{between, Reader, Section};

/// `[health]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Time between two checks of one dependency (`check_interval_ms`).
    pub check_interval: Duration,
    /// Bound on one check; past it the dependency counts as down (`check_timeout_ms`).
    pub check_timeout: Duration,
}

impl Reader<'_> {
    /// Reads `[health]`.
    pub(super) fn health(&mut self, root: &mut Section<'_>) -> Health {
        let mut section = self.section(root, "health");
        let interval = self.get(
            &mut section,
            "check_interval_ms",
            Some("TROUPE_HEALTH_CHECK_INTERVAL_MS"),
            &between(100, 600_000),
        );
        let timeout = self.get(
            &mut section,
            "check_timeout_ms",
            Some("TROUPE_HEALTH_CHECK_TIMEOUT_MS"),
            &between(50, 60_000),
        );
        self.finish(section);
        Health {
            check_interval: Duration::from_millis(interval.unwrap_or(5000)),
            check_timeout: Duration::from_millis(timeout.unwrap_or(2000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{env, keys};
    use crate::config::{parse, Overrides};

    #[test]
    fn health_section_defaults_env_and_bad_values() {
        let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.health.check_interval, Duration::from_secs(5));
        assert_eq!(config.health.check_timeout, Duration::from_secs(2));
        let text = format!("{base}[health]\ncheck_interval_ms = 250\n");
        let vars = env(&[("TROUPE_HEALTH_CHECK_TIMEOUT_MS", "400")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.health.check_interval, Duration::from_millis(250));
        assert_eq!(config.health.check_timeout, Duration::from_millis(400));
        let text =
            format!("{base}[health]\ncheck_interval_ms = 10\ncheck_timeout_ms = 0\ninterval = 3\n");
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "health.check_interval_ms",
                "health.check_timeout_ms",
                "health.interval"
            ]
        );
    }
}
