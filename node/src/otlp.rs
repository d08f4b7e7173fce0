//! OTLP export of request spans to an OpenTelemetry collector (`[telemetry] otlp_endpoint`).
//!
//! Troupe's spans are its own W3C trace context (`troupe_actors::mesh::trace`): ingress
//! answers a request in one span, each worker that serves a call for it (on this node or
//! another) in a child span. This module installs the [`trace::Export`] that turns each
//! finished span into the OpenTelemetry SDK's `SpanData` with the very same trace id, span
//! id and parent span id, and hands it to the SDK's `BatchSpanProcessor`, which exports
//! batches over OTLP/gRPC (opentelemetry-otlp on the tonic already in the tree) from a
//! thread of its own. The SDK's tracer is not used: it would give every span a new id, so
//! the exported spans would not be the ones the logs and the `traceparent` headers name.
//!
//! The request path never waits and never grows: [`Spans::export`] builds the span and
//! either queues it (at most `otlp_queue` spans wait, counted by [`Pending`]) or drops it.
//! A collector that is down costs the node nothing but the dropped spans: the first failed
//! export is logged once (and its recovery once), and every span not delivered is counted in
//! `troupe_otlp_spans_dropped_total{reason}` (`queue_full`, `export_failed`).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks,
    SpanProcessor,
};
use opentelemetry_sdk::Resource;
use troupe_actors::mesh::trace;

use crate::config::Telemetry;

/// Spans delivered to the collector.
pub const EXPORTED: &str = "troupe_otlp_spans_exported_total";
/// Spans dropped, by reason: `queue_full` (the queue held `otlp_queue` spans) or
/// `export_failed` (the collector refused them or could not be reached in time).
pub const DROPPED: &str = "troupe_otlp_spans_dropped_total";

/// Describes the metrics of this module, so `/metrics` carries their HELP lines.
pub fn describe() {
    metrics::describe_counter!(EXPORTED, "spans delivered to the OTLP collector");
    metrics::describe_counter!(
        DROPPED,
        "spans not delivered to the OTLP collector, by reason (queue_full, export_failed)"
    );
}

/// The running export: shut it down to flush the spans still queued.
pub struct Handle {
    processor: Arc<BatchSpanProcessor>,
}

impl Handle {
    /// Exports what is queued and stops the export thread; blocks up to the export
    /// timeout (call it off the runtime's workers).
    pub fn shutdown(&self) {
        let _ = self.processor.shutdown();
    }
}

/// Starts exporting the spans of this node, named `node` (the `service.name` of every
/// span), when `config` names a collector; `None` otherwise. Must run inside the tokio
/// runtime: the gRPC channel's connection lives there.
pub fn start(config: &Telemetry, node: &str) -> anyhow::Result<Option<Handle>> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    describe();
    let (spans, handle) = pipeline(config, endpoint, node)?;
    if !trace::export_to(Box::new(spans)) {
        anyhow::bail!("spans are exported already in this process");
    }
    tracing::info!(%endpoint, "exporting request spans over OTLP");
    Ok(Some(handle))
}

/// The exporter to `endpoint` behind its batch processor, and the [`trace::Export`] in
/// front of them.
fn pipeline(config: &Telemetry, endpoint: &str, node: &str) -> anyhow::Result<(Spans, Handle)> {
    let otlp = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(config.otlp_timeout)
        .build()
        .with_context(|| format!("cannot set up OTLP export to {endpoint}"))?;
    let pending = Arc::new(AtomicUsize::new(0));
    let exporter = Exporter {
        inner: otlp,
        pending: pending.clone(),
        down: AtomicBool::new(false),
        endpoint: endpoint.to_string(),
    };
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.otlp_queue)
        .with_max_export_batch_size(config.otlp_batch)
        .with_scheduled_delay(config.otlp_interval)
        .build();
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    processor.set_resource(
        &Resource::builder_empty()
            .with_service_name(node.to_string())
            .build(),
    );
    let processor = Arc::new(processor);
    let spans = Spans {
        processor: processor.clone(),
        pending,
        limit: config.otlp_queue,
        full: AtomicBool::new(false),
        scope: InstrumentationScope::builder("troupe")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    };
    Ok((spans, Handle { processor }))
}

/// The [`trace::Export`] of this node: finished spans into the batch processor's queue.
struct Spans {
    processor: Arc<BatchSpanProcessor>,
    /// Spans handed to the processor and not yet exported or dropped by [`Exporter`].
    pending: Arc<AtomicUsize>,
    /// `otlp_queue`: past it a span is dropped here, so the processor's own queue (of the
    /// same size) never refuses one uncounted.
    limit: usize,
    /// Set while spans are being dropped for a full queue (logged once per episode).
    full: AtomicBool,
    scope: InstrumentationScope,
}

impl trace::Export for Spans {
    fn export(&self, span: trace::Span) {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(DROPPED, "reason" => "queue_full").increment(1);
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(queue = self.limit, "otlp export queue full, dropping spans");
            }
            return;
        }
        if self.full.load(Ordering::Relaxed) {
            self.full.store(false, Ordering::Relaxed);
        }
        self.processor.on_end(span_data(span, &self.scope));
    }
}

/// The SDK's form of a finished span, with Troupe's ids.
fn span_data(span: trace::Span, scope: &InstrumentationScope) -> SpanData {
    let t = span.trace;
    let mut attributes: Vec<KeyValue> = span
        .attributes
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .collect();
    let status = match span.error {
        Some(e) => {
            attributes.push(KeyValue::new("error.type", e.clone()));
            Status::error(e)
        }
        None => Status::Unset,
    };
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(t.trace_id),
            SpanId::from_bytes(t.span_id),
            TraceFlags::new(t.flags),
            false,
            TraceState::NONE,
        ),
        parent_span_id: t.parent_id.map_or(SpanId::INVALID, SpanId::from_bytes),
        // The parent may be on another node (or the client); the SDK's flag means "the
        // parent came from elsewhere", which a span cannot tell here: leave it unset.
        parent_span_is_remote: false,
        span_kind: match span.kind {
            trace::Kind::Server => SpanKind::Server,
            trace::Kind::Internal => SpanKind::Internal,
        },
        name: Cow::Owned(span.name),
        start_time: span.start,
        end_time: span.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

/// The OTLP exporter, counting what it delivers and drops and logging an unreachable
/// collector once.
#[derive(Debug)]
struct Exporter {
    inner: opentelemetry_otlp::SpanExporter,
    pending: Arc<AtomicUsize>,
    /// Set after a failed export until one succeeds.
    down: AtomicBool,
    endpoint: String,
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.pending.fetch_sub(n, Ordering::AcqRel);
        match &result {
            Ok(()) => {
                metrics::counter!(EXPORTED).increment(n as u64);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "otlp collector reachable again");
                }
            }
            Err(e) => {
                metrics::counter!(DROPPED, "reason" => "export_failed").increment(n as u64);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(endpoint = %self.endpoint, error = %e, spans = n, "otlp export failed, dropping spans until the collector answers");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn span(trace: trace::Trace) -> trace::Span {
        let now = SystemTime::now();
        trace::Span {
            trace,
            name: "GET /ping".to_string(),
            kind: trace::Kind::Server,
            start: now,
            end: now,
            error: None,
            attributes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn past_the_queue_bound_spans_are_dropped_not_queued() {
        use trace::Export as _;
        let config = Telemetry {
            otlp_endpoint: None,
            otlp_queue: 16,
            otlp_batch: 16,
            // No export runs during the test: everything queued stays queued.
            otlp_interval: Duration::from_secs(3600),
            otlp_timeout: Duration::from_millis(100),
            history: true,
        };
        let (spans, handle) = pipeline(&config, "http://127.0.0.1:9", "n1").unwrap();
        for _ in 0..15 {
            spans.export(span(trace::Trace::fresh()));
        }
        assert_eq!(spans.pending.load(Ordering::Acquire), 15);
        assert!(!spans.full.load(Ordering::Relaxed));
        for _ in 0..10 {
            spans.export(span(trace::Trace::fresh()));
        }
        assert_eq!(spans.pending.load(Ordering::Acquire), 16, "the bound holds");
        assert!(spans.full.load(Ordering::Relaxed), "dropping is noted");
        // Shutting down exports what waits (to nobody: port 9 is closed) and forgets it.
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .unwrap();
        assert_eq!(spans.pending.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_span_keeps_troupes_ids_and_its_parent() {
        let root = trace::Trace::fresh();
        let hop = root.child();
        let start = SystemTime::now();
        let scope = InstrumentationScope::builder("troupe").build();
        let data = span_data(
            trace::Span {
                trace: hop,
                name: "users.get".to_string(),
                kind: trace::Kind::Internal,
                start,
                end: start + Duration::from_millis(3),
                error: Some("not_found".to_string()),
                attributes: vec![("rpc.method", "get".to_string())],
            },
            &scope,
        );
        assert_eq!(data.span_context.trace_id().to_bytes(), root.trace_id);
        assert_eq!(data.span_context.span_id().to_bytes(), hop.span_id);
        assert_eq!(data.parent_span_id.to_bytes(), root.span_id);
        assert!(data.span_context.is_sampled());
        assert_eq!(data.span_kind, SpanKind::Internal);
        assert_eq!(data.status, Status::error("not_found"));
        assert_eq!(data.name, "users.get");
        let root_data = span_data(
            trace::Span {
                trace: root,
                name: "GET /ping".to_string(),
                kind: trace::Kind::Server,
                start,
                end: start,
                error: None,
                attributes: Vec::new(),
            },
            &scope,
        );
        assert_eq!(root_data.parent_span_id, SpanId::INVALID);
        assert_eq!(root_data.status, Status::Unset);
    }
}
