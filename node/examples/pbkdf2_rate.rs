//! The login benchmark's baseline: raw PBKDF2-HMAC-SHA256 verifications per second with the
//! same hasher and cost as the nodes, one thread per core, nothing else.
//!
//! `cargo run --release --example pbkdf2_rate -- <iterations> <seconds>`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe_actors::auth::password::Hasher;

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let hasher = Hasher::new(iterations);
    let phc = hasher.hash_blocking("bench-passw0rd").expect("hash");
    let done = Arc::new(AtomicU64::new(0));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, phc) = (done.clone(), phc.clone());
            std::thread::spawn(move || {
                while started.elapsed() < Duration::from_secs(seconds) {
                    assert!(Hasher::verify_blocking(&phc, "bench-passw0rd"));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.1}");
}
