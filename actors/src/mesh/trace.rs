//! One trace per request: the W3C Trace Context (`traceparent`) of the request being served.
//!
//! Ingress (REST, SOAP, gRPC metadata, WebSocket frames) takes the client's `traceparent`
//! when it is valid and otherwise starts a fresh trace ([`accept`]); it runs the request
//! inside [`scope`]. Every mesh call made in that scope carries the trace in its envelope
//! (`Envelope.traceparent`, with this hop's span as the parent), the worker that serves it,
//! on whatever node, runs inside the same trace, and the node's log formatter
//! (`node::telemetry`) writes [`current`]'s `trace_id` and `span_id` into every log line.
//! So one request leaves one `trace_id` in the logs of every node it touches, and the reply
//! echoes `traceparent`.
//!
//! It rides next to the request id, through the same builder ([`super::Call::trace`]) and
//! the same task-local as the lane chain ([`super::lane`]): nothing but the envelope crosses
//! nodes.
//!
//! When the node exports spans (`[telemetry] otlp_endpoint`, see `node::otlp`), the work
//! done in a trace's span is also handed to the installed [`Export`] as a finished [`Span`]:
//! ingress answers a request in one ([`Span`] of kind [`Kind::Server`]), a worker serves a
//! call in a child span ([`serve`]). The ids are this module's own, so the exported spans
//! are the ones the logs and the `traceparent` headers name. Without an exporter nothing is
//! timed or allocated: [`exporting`] is one atomic load.

use std::future::Future;
use std::sync::OnceLock;
use std::time::SystemTime;

tokio::task_local! {
    static CURRENT: Trace;
}

/// Length of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
pub const LEN: usize = 55;

/// The header (HTTP, SOAP), metadata key (gRPC) and frame field (WebSocket) that carries it.
pub const HEADER: &str = "traceparent";

/// A trace context: the trace, the span that is the parent of work done now, and the
/// flags (bit 0: sampled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The trace, never all zero.
    pub trace_id: [u8; 16],
    /// The current span (this hop), never all zero.
    pub span_id: [u8; 8],
    /// Trace flags, as received (fresh traces: `01`, sampled).
    pub flags: u8,
    /// The span this one is a child of (the client's, or the hop before on this or another
    /// node); `None` for the root of a fresh trace and for a parsed `traceparent`, which
    /// names its span but not that span's parent.
    pub parent_id: Option<[u8; 8]>,
}

impl Trace {
    /// A new trace with a new span.
    pub fn fresh() -> Self {
        let trace_id = loop {
            let id: u128 = rand::random();
            if id != 0 {
                break id.to_be_bytes();
            }
        };
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: 1,
            parent_id: None,
        }
    }

    /// The same trace with a new span, a child of this one: the work of the next hop.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            parent_id: Some(self.span_id),
            ..*self
        }
    }

    /// Whether the trace is sampled (flags bit 0): only sampled spans are exported.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Parses a `traceparent` by the W3C rules: version two lower-case hex digits other than
    /// `ff`; version `00` is exactly 55 characters, a later version at least 55 with a `-`
    /// after them; trace id 32 and parent id 16 lower-case hex digits, neither all zero;
    /// flags two hex digits. `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex::<1>(&b[0..2])?[0];
        if version == 0xff || (version == 0 && b.len() != LEN) || (b.len() > LEN && b[LEN] != b'-')
        {
            return None;
        }
        let trace_id = hex::<16>(&b[3..35])?;
        let span_id = hex::<8>(&b[36..52])?;
        let flags = hex::<1>(&b[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
            parent_id: None,
        })
    }

    /// The `traceparent` of this context (version 00), with no allocation.
    pub fn encode_in<'a>(&self, buf: &'a mut [u8; LEN]) -> &'a str {
        buf[0] = b'0';
        buf[1] = b'0';
        buf[2] = b'-';
        write_hex(&self.trace_id, &mut buf[3..35]);
        buf[35] = b'-';
        write_hex(&self.span_id, &mut buf[36..52]);
        buf[52] = b'-';
        write_hex(&[self.flags], &mut buf[53..55]);
        std::str::from_utf8(buf).expect("hex digits and dashes are ASCII")
    }

    /// The `traceparent` as a `String`.
    pub fn encode(&self) -> String {
        self.encode_in(&mut [0; LEN]).to_string()
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut buf = [0u8; 32];
        write_hex(&self.trace_id, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> String {
        let mut buf = [0u8; 16];
        write_hex(&self.span_id, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// The client's trace continued in a new span when `given` is a valid `traceparent`,
/// otherwise a fresh trace: a malformed one is replaced, never refused (W3C Trace Context,
/// "a vendor receiving an invalid traceparent ... MUST create a new trace").
pub fn accept(given: Option<&str>) -> Trace {
    given
        .and_then(Trace::parse)
        .map_or_else(Trace::fresh, |t| t.child())
}

/// Runs `fut` inside `trace`: its log lines and the mesh calls it makes carry it.
pub fn scope<F: Future>(trace: Trace, fut: F) -> tokio::task::futures::TaskLocalFuture<Trace, F> {
    CURRENT.scope(trace, fut)
}

/// Runs `f` inside `trace` (synchronous code: a log line about a request outside its task).
pub fn in_scope<R>(trace: Trace, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(trace, f)
}

/// The trace of the request being served by this task, if any.
pub fn current() -> Option<Trace> {
    CURRENT.try_with(|t| *t).ok()
}

/// What a span was: the request answered at ingress, or a call served by a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Ingress answering a client (REST, SOAP, gRPC, a WebSocket frame).
    Server,
    /// A worker serving a call, from this node's ingress or from a peer.
    Internal,
}

/// A finished span: the unit of work of one hop of a trace, as [`Export`] receives it.
#[derive(Clone, Debug)]
pub struct Span {
    /// The trace, this span's id and its parent's ([`Trace::parent_id`]).
    pub trace: Trace,
    /// What was done: `GET /users/{id}`, `troupe.v1.Users/Get`, `users.get`.
    pub name: String,
    /// Ingress or worker.
    pub kind: Kind,
    /// When the work started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Why it failed (the mesh error code, an HTTP status of 500 and up), if it did.
    pub error: Option<String>,
    /// More facts, OpenTelemetry attribute names: `http.response.status_code`, `rpc.method`.
    pub attributes: Vec<(&'static str, String)>,
}

/// Where finished spans go: the node's OTLP exporter. `export` is called on the request
/// path, so it must neither block nor grow without bound.
pub trait Export: Send + Sync + 'static {
    /// Takes one finished, sampled span.
    fn export(&self, span: Span);
}

static EXPORT: OnceLock<Box<dyn Export>> = OnceLock::new();

/// Installs the process's span exporter; `false` when one is installed already (one per
/// process, like the log subscriber).
pub fn export_to(export: Box<dyn Export>) -> bool {
    EXPORT.set(export).is_ok()
}

/// Whether finished spans are exported: callers time a span and build its name only then.
pub fn exporting() -> bool {
    EXPORT.get().is_some()
}

/// Hands a finished span to the exporter, if there is one and its trace is sampled.
pub fn finished(span: Span) {
    if let Some(export) = EXPORT.get() {
        if span.trace.sampled() {
            export.export(span);
        }
    }
}

/// Runs `fut` inside `trace` and, when spans are exported, exports its span as `name`
/// ([`Kind::Internal`], failed when `fut` answers an error). What a worker does with a call.
pub async fn serve<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    trace: Trace,
    name: impl FnOnce() -> String,
    fut: F,
) -> Result<T, E> {
    if !exporting() {
        return scope(trace, fut).await;
    }
    let start = SystemTime::now();
    let out = scope(trace, fut).await;
    finished(Span {
        trace,
        name: name(),
        kind: Kind::Internal,
        start,
        end: SystemTime::now(),
        error: out.as_ref().err().map(ToString::to_string),
        attributes: Vec::new(),
    });
    out
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// Decodes `2 * N` lower-case hex digits.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 0xf) as usize];
    }
}

/// A log subscriber for tests that notes, for every log line, its message and the trace it
/// was written in: what the node's formatter would write as `trace_id`.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// The lines seen: (message, trace id).
    pub(crate) type Lines = Arc<Mutex<Vec<(String, Option<[u8; 16]>)>>>;

    struct Capture(Lines);

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut m = Message(String::new());
            event.record(&mut m);
            let trace = super::current().map(|t| t.trace_id);
            self.0.lock().unwrap().push((m.0, trace));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Captures the log lines of this thread (a current-thread runtime: every task) until
    /// the guard drops.
    pub(crate) fn start() -> (Lines, tracing::subscriber::DefaultGuard) {
        let lines = Lines::default();
        let guard = tracing::subscriber::set_default(Capture(lines.clone()));
        (lines, guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_in_a_new_span() {
        let t = Trace::parse(GIVEN).unwrap();
        assert_eq!(t.encode(), GIVEN);
        let next = accept(Some(GIVEN));
        assert_eq!(next.trace_id, t.trace_id);
        assert_ne!(next.span_id, t.span_id);
        assert_eq!(next.parent_id, Some(t.span_id));
        assert_eq!(next.child().parent_id, Some(next.span_id));
        assert_eq!(Trace::fresh().parent_id, None);
        assert_eq!(next.flags, 1);
        assert_eq!(next.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // A later version may append fields after a dash.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert_eq!(Trace::parse(v1).unwrap().trace_id, t.trace_id);
    }

    #[test]
    fn malformed_traceparents_are_replaced_by_fresh_traces() {
        for bad in [
            "",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(Trace::parse(bad), None, "{bad}");
            let fresh = accept(Some(bad));
            assert_ne!(fresh.trace_id, [0; 16]);
            assert_eq!(Trace::parse(&fresh.encode()), Some(fresh));
        }
        assert_ne!(accept(None).trace_id, accept(None).trace_id);
    }

    #[tokio::test]
    async fn the_scope_is_the_current_trace() {
        assert_eq!(current(), None);
        let t = Trace::fresh();
        assert_eq!(scope(t, async { current() }).await, Some(t));
    }
}
