//! Logs (`tracing`, text or JSON) and the Prometheus recorder behind `/metrics`.
//!
//! Every log line written while a request is served carries its trace: `trace_id` and
//! `span_id` (see `troupe_actors::mesh::trace`) as top-level fields of a JSON line, or
//! leading `trace_id=.. span_id=..` on a text line, on whichever node the line is written.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;
use troupe_actors::mesh::trace;

use crate::config::{Log, LogFormat};

/// Installs the log subscriber; `RUST_LOG` wins over `[log] level`.
pub fn init_logs(log: &Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder
            .json()
            .map_event_format(|f| WithTrace {
                inner: f,
                json: true,
            })
            .try_init(),
        LogFormat::Text => builder
            .map_event_format(|f| WithTrace {
                inner: f,
                json: false,
            })
            .try_init(),
    };
}

/// An event format that adds the current request's trace to what `inner` writes.
struct WithTrace<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTrace<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(t) = trace::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let (trace_id, span_id) = (t.trace_id_hex(), t.span_id_hex());
        if !self.json {
            write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        // The JSON formatter writes one object per line: the trace goes first inside it.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
}

/// Latency buckets (seconds) shared by every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process-wide metrics recorder and returns the handle that renders it.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("seconds".into()), BUCKETS)?
        .install_recorder()?)
}
