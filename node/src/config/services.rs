//! `[services]`: worker pools, admission and call deadlines of the service actors, and
//! `[services.<name>]`: the pool size of one service.
//!
//! A service's pool size on a node is, first match wins: its `[services.<name>] workers`,
//! what the service asks for given `[services] workers` (`Service::workers`: `auth`, for
//! one, wants four times the default, at least 16), or `[services] workers`.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Value;

use super::reader::{at_least, between, Reader, Section};

/// Largest pool one service may be given with `[services.<name>] workers`.
const MAX_POOL: usize = 1024;

/// `[services]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Worker actors per service per node.
    pub workers: usize,
    /// `[services.<name>] workers`: worker actors of the named services on this node, which
    /// win over `workers` and over what the service asks for.
    pub pool_sizes: BTreeMap<String, usize>,
    /// In-flight requests per service per node before `resource_exhausted`.
    pub queue_capacity: usize,
    /// Default deadline of a mesh call (`call_timeout_ms`).
    pub call_timeout: Duration,
}

impl Reader<'_> {
    /// Reads `[services]` and its `[services.<name>]` sub-tables.
    pub(super) fn services(&mut self, root: &mut Section<'_>) -> Services {
        let mut section = self.section(root, "services");
        let workers_env = Some("TROUPE_SERVICES_WORKERS");
        let workers = self.get(&mut section, "workers", workers_env, &at_least(1));
        let capacity_env = Some("TROUPE_SERVICES_QUEUE_CAPACITY");
        let capacity = self.get(&mut section, "queue_capacity", capacity_env, &at_least(1));
        let timeout_env = Some("TROUPE_SERVICES_CALL_TIMEOUT_MS");
        let timeout_ms = self.get(&mut section, "call_timeout_ms", timeout_env, &at_least(1));
        let pool_sizes = self.pool_sizes(&mut section);
        self.finish(section);
        Services {
            workers: workers.unwrap_or(4),
            pool_sizes,
            queue_capacity: capacity.unwrap_or(1024),
            call_timeout: Duration::from_millis(timeout_ms.unwrap_or(5000)),
        }
    }

    /// Reads every `[services.<name>]` left in `section`: `<name>` must be a service a node
    /// hosts ([`crate::SERVICES`]) and its only key is `workers`, 1 to [`MAX_POOL`]. Keys
    /// that are neither a service nor a table are left for [`Reader::finish`] to report.
    fn pool_sizes(&mut self, section: &mut Section<'_>) -> BTreeMap<String, usize> {
        let mut sizes = BTreeMap::new();
        for (name, value) in section.unread() {
            let is_table = matches!(value, Value::Table(_));
            if !crate::SERVICES.contains(&name) {
                if is_table {
                    section.take(name);
                    let known = crate::SERVICES.join(", ");
                    self.error(
                        section.key(name),
                        format!("no service named {name:?} (known: {known})"),
                    );
                }
                continue;
            }
            // Not a table: `section` reports the mismatch.
            let mut pool = self.section(section, name);
            if is_table {
                let workers = self.required(&mut pool, "workers", &between(1, MAX_POOL));
                if let Some(workers) = workers {
                    sizes.insert(name.to_owned(), workers);
                }
            }
            self.finish(pool);
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::tests::{env, errors, keys, named, SAMPLE};

    #[test]
    fn pool_sizes_are_read_per_service_and_reach_the_mesh_settings() {
        let config = parse(SAMPLE, "t", &named("n1"), &env(&[])).unwrap();
        assert!(config.services.pool_sizes.is_empty());

        let text = format!(
            "{SAMPLE}\n[services.auth]\nworkers = 16\n[services.users]\nworkers = 7\n\
             [services.task_runs]\nworkers = 1024\n"
        );
        let config = parse(&text, "t", &named("n1"), &env(&[])).unwrap();
        let sizes: Vec<(&str, usize)> = (config.services.pool_sizes.iter())
            .map(|(name, size)| (name.as_str(), *size))
            .collect();
        assert_eq!(sizes, [("auth", 16), ("task_runs", 1024), ("users", 7)]);
        assert_eq!(config.services.workers, 4);
        let settings = crate::settings(&config, 1);
        assert_eq!(settings.pool_sizes.len(), 3);
        assert_eq!(settings.pool_sizes["users"], 7);
        assert_eq!(settings.workers, 4);
    }

    #[test]
    fn every_bad_pool_size_is_reported_at_once() {
        let text = SAMPLE.replace("[services]\n", "[services]\ntodos = 3\nbogus = 1\n")
            + "[services.nope]\nworkers = 2\n\
               [services.auth]\nworkers = 0\nsize = 3\n\
               [services.users]\n\
               [services.chat]\nworkers = 2000\n\
               [services.images]\nworkers = \"many\"\n";
        let errors = errors(&text, &named("n1"), &env(&[]));
        let mut found = keys(&errors);
        found.sort_unstable();
        assert_eq!(
            found,
            [
                "services.auth.size",
                "services.auth.workers",
                "services.bogus",
                "services.chat.workers",
                "services.images.workers",
                "services.nope",
                "services.todos",
                "services.users.workers",
            ],
            "{errors}"
        );
        let message = |key: &str| &errors.0.iter().find(|e| e.key == key).unwrap().message;
        assert_eq!(
            message("services.auth.workers"),
            "must be between 1 and 1024, got 0"
        );
        assert_eq!(
            message("services.chat.workers"),
            "must be between 1 and 1024, got 2000"
        );
        assert_eq!(message("services.users.workers"), "missing");
        assert_eq!(
            message("services.todos"),
            "expected a table, got an integer"
        );
        assert_eq!(message("services.bogus"), "unknown key");
        assert!(message("services.nope").starts_with("no service named \"nope\" (known: ping, "));
    }
}
