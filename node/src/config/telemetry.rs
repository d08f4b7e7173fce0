//! `[telemetry]`: export of request spans to an OpenTelemetry collector over OTLP (gRPC),
//! off unless `otlp_endpoint` is set (see `crate::otlp` and docs/operations.md, "Tracing");
//! and whether the node keeps the dashboard's history (`history`).

use std::time::Duration;

use super::reader::{any, between, Reader, Section};

/// `[telemetry]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// The collector's OTLP/gRPC endpoint (`otlp_endpoint`, `http://host:port`); `None`
    /// exports nothing.
    pub otlp_endpoint: Option<String>,
    /// Spans waiting for export at most (`otlp_queue`); past it new spans are dropped and
    /// counted, never waited for.
    pub otlp_queue: usize,
    /// Spans per export request at most (`otlp_batch`).
    pub otlp_batch: usize,
    /// Time between two exports when the batch is not full (`otlp_interval_ms`).
    pub otlp_interval: Duration,
    /// Bound on each export attempt, and on the time spent retrying one batch
    /// (`otlp_timeout_ms`).
    pub otlp_timeout: Duration,
    /// Keep the dashboard's five-minute history (`history`, default true; see
    /// `troupe_actors::system::history::turn_off`).
    pub history: bool,
}

/// Requires `http://host:port` (this build speaks plaintext OTLP/gRPC only: a collector
/// beside the node or reached through the node's network).
fn otlp_endpoint(value: &String) -> Result<(), String> {
    let Some(rest) = value.strip_prefix("http://") else {
        return Err(format!(
            "expected an http://host:port URL of an OTLP/gRPC receiver, got {value:?} (https is not supported)"
        ));
    };
    let authority = rest.trim_end_matches('/');
    match authority.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !authority.contains('/')
                && port.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected http://host:port with a port, got {value:?}"
        )),
    }
}

impl Reader<'_> {
    /// Reads `[telemetry]`.
    pub(super) fn telemetry(&mut self, root: &mut Section<'_>) -> Telemetry {
        let mut section = self.section(root, "telemetry");
        let endpoint = self.get(
            &mut section,
            "otlp_endpoint",
            Some("TROUPE_TELEMETRY_OTLP_ENDPOINT"),
            &otlp_endpoint,
        );
        let queue = self.get(
            &mut section,
            "otlp_queue",
            Some("TROUPE_TELEMETRY_OTLP_QUEUE"),
            &between(16u64, 1_000_000),
        );
        let batch = self.get(
            &mut section,
            "otlp_batch",
            Some("TROUPE_TELEMETRY_OTLP_BATCH"),
            &between(1u64, 100_000),
        );
        let interval = self.get(
            &mut section,
            "otlp_interval_ms",
            Some("TROUPE_TELEMETRY_OTLP_INTERVAL_MS"),
            &between(10u64, 600_000),
        );
        let timeout = self.get(
            &mut section,
            "otlp_timeout_ms",
            Some("TROUPE_TELEMETRY_OTLP_TIMEOUT_MS"),
            &between(10u64, 600_000),
        );
        let history = self.get(
            &mut section,
            "history",
            Some("TROUPE_TELEMETRY_HISTORY"),
            &any,
        );
        let otlp_queue = queue.unwrap_or(2048) as usize;
        let otlp_batch = batch.unwrap_or(512) as usize;
        if otlp_batch > otlp_queue {
            let key = section.key("otlp_batch");
            self.error(
                key,
                format!("must not exceed otlp_queue ({otlp_queue}), got {otlp_batch}"),
            );
        }
        self.finish(section);
        Telemetry {
            otlp_endpoint: endpoint,
            otlp_queue,
            otlp_batch,
            otlp_interval: Duration::from_millis(interval.unwrap_or(1000)),
            otlp_timeout: Duration::from_millis(timeout.unwrap_or(5000)),
            history: history.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{env, keys, MINIMAL as BASE};
    use crate::config::{parse, Overrides};

    #[test]
    fn telemetry_is_off_by_default_and_read_from_file_and_env() {
        let config = parse(BASE, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.telemetry.otlp_endpoint, None);
        assert_eq!(config.telemetry.otlp_queue, 2048);
        assert_eq!(config.telemetry.otlp_batch, 512);
        assert_eq!(config.telemetry.otlp_interval, Duration::from_secs(1));
        assert!(config.telemetry.history);
        let text = format!(
            "{BASE}[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\notlp_queue = 100\n"
        );
        let vars = env(&[
            ("TROUPE_TELEMETRY_HISTORY", "false"),
            ("TROUPE_TELEMETRY_OTLP_BATCH", "50"),
            ("TROUPE_TELEMETRY_OTLP_INTERVAL_MS", "200"),
        ]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        let t = config.telemetry;
        assert_eq!(t.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!((t.otlp_queue, t.otlp_batch), (100, 50));
        assert_eq!(t.otlp_interval, Duration::from_millis(200));
        assert_eq!(t.otlp_timeout, Duration::from_secs(5));
        assert!(!t.history);
    }

    #[test]
    fn every_bad_telemetry_setting_is_reported_at_once() {
        let text = format!(
            "{BASE}[telemetry]\notlp_endpoint = \"https://collector:4317\"\notlp_queue = 8\n\
             otlp_interval_ms = 0\nendpoint = \"x\"\n"
        );
        let vars = env(&[("TROUPE_TELEMETRY_OTLP_TIMEOUT_MS", "soon")]);
        let errors = parse(&text, "t", &Overrides::default(), &vars).unwrap_err();
        assert_eq!(
            keys(&errors),
            [
                "telemetry.otlp_endpoint",
                "telemetry.otlp_queue",
                "telemetry.otlp_interval_ms",
                "TROUPE_TELEMETRY_OTLP_TIMEOUT_MS",
                "telemetry.endpoint"
            ]
        );
        for bad in [
            "http://:4317",
            "http://collector",
            "collector:4317",
            "http://c:0",
            "http://c:4317/v1",
        ] {
            let text = format!("{BASE}[telemetry]\notlp_endpoint = \"{bad}\"\n");
            let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
            assert_eq!(keys(&errors), ["telemetry.otlp_endpoint"], "{bad}");
        }
        let text = format!("{BASE}[telemetry]\notlp_queue = 100\notlp_batch = 200\n");
        let errors = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap_err();
        assert_eq!(keys(&errors), ["telemetry.otlp_batch"]);
    }
}
