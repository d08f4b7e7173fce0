//! A gRPC load driver on tonic (no ghz needed): keeps `concurrency` calls in flight over
//! `connections` HTTP/2 connections for `seconds`, then prints one JSON line with the
//! completed calls per second (and MB/s for uploads), errors and latency percentiles.
//!
//! ```text
//! grpc_load validate <grpc addr> <access token> [seconds] [concurrency] [connections]
//! grpc_load upload   <grpc addr> <access token> [seconds] [concurrency] [connections] [image bytes]
//! ```
//!
//! `validate` calls `TokenService/ValidateToken` with the token; `upload` streams PNG
//! images of the given size (default 1 MiB) in 64 KiB chunks to `ImageService/UploadImage`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;
use troupe_proto::auth::token_service_client::TokenServiceClient;
use troupe_proto::auth::ValidateTokenRequest;
use troupe_proto::images::image_service_client::ImageServiceClient;
use troupe_proto::images::{ImageMetadata, UploadImageRequest};

const CHUNK: usize = 64 * 1024;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// A PNG-signed image of `len` bytes (the rest is noise, which is all the server checks).
fn png(len: usize) -> bytes::Bytes {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    let mut x: u32 = 1;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        v.push((x >> 16) as u8);
    }
    v.into()
}

fn upload_stream(data: bytes::Bytes) -> impl tokio_stream::Stream<Item = UploadImageRequest> {
    let mut parts = Vec::with_capacity(data.len() / CHUNK + 1);
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + CHUNK).min(data.len());
        parts.push(UploadImageRequest {
            metadata: (offset == 0).then(|| ImageMetadata {
                filename: "bench.png".into(),
                content_type: "image/png".into(),
                size: data.len() as u64,
            }),
            chunk: data.slice(offset..end),
        });
        offset = end;
    }
    tokio_stream::iter(parts)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_default();
    let addr = args.get(2).cloned().expect("grpc address");
    let token = args.get(3).cloned().unwrap_or_default();
    let seconds: u64 = arg(&args, 4, 10);
    let concurrency: usize = arg(&args, 5, 64);
    let connections: usize = arg(&args, 6, 4);
    let image_bytes: usize = arg(&args, 7, 1024 * 1024);
    if !matches!(mode.as_str(), "validate" | "upload") {
        eprintln!("usage: grpc_load validate|upload <addr> <token> [seconds] [concurrency] [connections] [image bytes]");
        std::process::exit(2);
    }

    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let ch = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        channels.push(ch);
    }
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().expect("token");
    let image = png(image_bytes);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency.max(1) {
        let ch = channels[i % channels.len()].clone();
        let (stop, errors, bearer, token, image, mode) = (
            stop.clone(),
            errors.clone(),
            bearer.clone(),
            token.clone(),
            image.clone(),
            mode.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tokens = TokenServiceClient::new(ch.clone());
            let mut images = ImageServiceClient::new(ch)
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(usize::MAX);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = if mode == "validate" {
                    let req = ValidateTokenRequest {
                        token: token.clone(),
                    };
                    tokens
                        .validate_token(req)
                        .await
                        .is_ok_and(|r| r.into_inner().valid)
                } else {
                    let mut req = Request::new(upload_stream(image.clone()));
                    req.metadata_mut().insert("authorization", bearer.clone());
                    images.upload_image(req).await.is_ok()
                };
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rps = all.len() as f64 / elapsed;
    let mbps = rps * image_bytes as f64 / 1e6;
    println!(
        "{{\"mode\":\"{mode}\",\"ok\":{},\"errors\":{},\"seconds\":{elapsed:.2},\"rps\":{rps:.1},\"mb_per_s\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        all.len(),
        errors.load(Ordering::Relaxed),
        if mode == "upload" { format!("{mbps:.1}") } else { "null".into() },
        pct(0.50),
        pct(0.99),
    );
}
