//! OTLP export against a real OpenTelemetry collector: Rotel (`pip install rotel`, a
//! collector written in Rust, shipped in the wheel as `rotel/rotel-agent`), receiving
//! OTLP/gRPC and printing every span it gets (`--debug-log traces`). Issue 25: one request
//! to n1 served on n3 gives spans from both nodes under the client's trace id, n3's span a
//! child of n1's; a collector that goes away costs the nodes nothing but counted drops.
//! Skipped, with a printed line, when Rotel is not installed.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A client's trace context, as in the W3C specification's examples.
const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const GIVEN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const GIVEN_SPAN: &str = "00f067aa0ba902b7";

/// The collector binary: `$ROTEL_AGENT`, or `rotel-agent` in the installed `rotel`
/// Python package.
fn rotel_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROTEL_AGENT") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// A running collector, printing the spans it receives to `out`.
struct Collector {
    child: Child,
    out: PathBuf,
    grpc: u16,
}

impl Collector {
    fn start(bin: &Path, dir: &Path) -> Collector {
        let (grpc, http) = (free_port(), free_port());
        let out = dir.join("rotel.out");
        let file = fs::File::create(&out).expect("create collector output");
        let child = Command::new(bin)
            .arg("start")
            .args(["--exporter", "blackhole"])
            .args(["--debug-log", "traces", "--debug-log-verbosity", "detailed"])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .spawn()
            .expect("start rotel");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok()
        });
        assert!(
            up,
            "rotel did not listen on {grpc}: {}",
            fs::read_to_string(&out).unwrap_or_default()
        );
        Collector { child, out, grpc }
    }

    fn spans(&self) -> Vec<Span> {
        parse(&fs::read_to_string(&self.out).unwrap_or_default())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One span as the collector printed it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Span {
    service: String,
    trace_id: String,
    parent_id: String,
    id: String,
    name: String,
    kind: String,
}

/// The spans of Rotel's detailed debug log: each `ResourceSpans` block names its
/// `service.name`, then lists spans as `Trace ID : ..`, `Parent ID : ..`, `ID : ..`,
/// `Name : ..`, `Kind : ..` lines.
fn parse(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut service = String::new();
    let mut current: Option<Span> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("-> service.name: Str(")
            .and_then(|s| s.strip_suffix(')'))
        {
            service = name.to_string();
            continue;
        }
        if line.starts_with("ResourceSpans #") || line.starts_with("Span #") {
            spans.extend(current.take());
            if line.starts_with("Span #") {
                current = Some(Span {
                    service: service.clone(),
                    ..Span::default()
                });
            }
            continue;
        }
        let (Some(span), Some((key, value))) = (current.as_mut(), line.split_once(':')) else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "Trace ID" => span.trace_id = value,
            "Parent ID" => span.parent_id = value,
            "ID" => span.id = value,
            "Name" => span.name = value,
            "Kind" => span.kind = value,
            _ => {}
        }
    }
    spans.extend(current);
    spans
}

fn counter(node: &Node, name: &str, labels: &str) -> f64 {
    let mut resp = get_raw(&node.url("/metrics"), &[]);
    let text = resp.body_mut().read_to_string().unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_request_served_on_another_node_is_one_trace_in_the_collector() {
    let Some(bin) = rotel_agent() else {
        println!("skipping: rotel is not installed (pip install rotel)");
        return;
    };
    let dir = scratch_dir("otlp-collector");
    let mut collector = Collector::start(&bin, &dir);
    let c = Cluster::start(
        "otlp",
        Options {
            extra_toml: format!(
                "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{}\"\notlp_interval_ms = 100\n\
                 otlp_timeout_ms = 1000\n",
                collector.grpc
            ),
            ..Options::default()
        },
    );
    let n1 = c.node("n1");

    let mut resp = get_raw(&n1.url("/ping?node=n3"), &[("traceparent", GIVEN)]);
    assert_eq!(resp.status().as_u16(), 200);
    let echoed = resp
        .headers()
        .get("traceparent")
        .expect("traceparent")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["node"], "n3", "answered on n3");
    let ingress_span = echoed.split('-').nth(2).unwrap().to_string();

    let of_trace = |spans: &[Span], service: &str| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.trace_id == GIVEN_TRACE && s.service == service)
            .cloned()
            .collect()
    };
    let both = wait_until(Duration::from_secs(10), || {
        let spans = collector.spans();
        !of_trace(&spans, "n1").is_empty() && !of_trace(&spans, "n3").is_empty()
    });
    let spans = collector.spans();
    assert!(
        both,
        "no spans of trace {GIVEN_TRACE} from both n1 and n3: {spans:#?}\n{}",
        c.logs()
    );
    // n1: the request, a server span continuing the client's, with the id the reply named.
    let on_n1 = of_trace(&spans, "n1");
    let request = on_n1
        .iter()
        .find(|s| s.id == ingress_span)
        .unwrap_or_else(|| panic!("no n1 span {ingress_span}: {on_n1:#?}"));
    assert_eq!(request.parent_id, GIVEN_SPAN, "{request:?}");
    assert_eq!(request.kind, "SPAN_KIND_SERVER", "{request:?}");
    assert!(request.name.starts_with("GET /ping"), "{request:?}");
    // n3: the call served there, a child of n1's span.
    let on_n3 = of_trace(&spans, "n3");
    assert!(
        on_n3.iter().any(|s| s.parent_id == ingress_span),
        "no n3 span whose parent is n1's {ingress_span}: {on_n3:#?}"
    );
    // Nothing else of this trace came from n2.
    assert!(of_trace(&spans, "n2").is_empty());

    // The collector goes away: serving goes on, the lost spans are counted, and the
    // failure is logged once, not once per span.
    collector.stop();
    for _ in 0..20 {
        let resp = get_raw(&n1.url("/ping?node=n3"), &[]);
        assert_eq!(resp.status().as_u16(), 200);
    }
    let counted = wait_until(Duration::from_secs(15), || {
        counter(n1, "troupe_otlp_spans_dropped_total", "export_failed") > 0.0
    });
    assert!(
        counted,
        "no dropped spans counted on n1:\n{}",
        n1.log_text()
    );
    for _ in 0..20 {
        let resp = get_raw(&n1.url("/ping"), &[]);
        assert_eq!(resp.status().as_u16(), 200);
    }
    std::thread::sleep(Duration::from_secs(2));
    let failures = n1
        .log_text()
        .lines()
        .filter(|l| l.contains("otlp export failed"))
        .count();
    assert_eq!(failures, 1, "{}", n1.log_text());
    assert!(counter(n1, "troupe_otlp_spans_exported_total", "") >= 1.0);
}

#[test]
fn rotels_span_lines_are_parsed() {
    let text = "ResourceSpans #0\nResource attributes:\n     -> service.name: Str(n1)\n\
        ScopeSpans #0\nSpan #0\n    Trace ID       : 4bf92f3577b34da6a3ce929d0e0e4736\n\
        \x20   Parent ID      : 00f067aa0ba902b8\n    ID             : 00f067aa0ba902b7\n\
        \x20   Name           : GET /x\n    Kind           : SPAN_KIND_SERVER\n\
        Start time: 1700000000000000000\nResourceSpans #0\n     -> service.name: Str(n3)\n\
        Span #0\n    Trace ID       : 4bf92f3577b34da6a3ce929d0e0e4736\n    ID : aa\n";
    let spans = parse(text);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(
        spans[0],
        Span {
            service: "n1".into(),
            trace_id: GIVEN_TRACE.into(),
            parent_id: "00f067aa0ba902b8".into(),
            id: GIVEN_SPAN.into(),
            name: "GET /x".into(),
            kind: "SPAN_KIND_SERVER".into(),
        }
    );
    assert_eq!(
        (spans[1].service.as_str(), spans[1].id.as_str()),
        ("n3", "aa")
    );
}
