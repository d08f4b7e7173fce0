//! The login benchmark's baseline: raw password verifications per second with the same
//! hasher and parameters as the nodes, one thread per core, nothing else.
//!
//! ```text
//! cargo run --release --example password_rate -- argon2id <memory KiB> <passes> <lanes> <seconds>
//! cargo run --release --example password_rate -- pbkdf2 <iterations> <seconds>
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe_actors::auth::password::{Hasher, Scheme};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u32 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .expect("usage: password_rate argon2id <m> <t> <p> <s> | pbkdf2 <iterations> <s>")
    };
    let (scheme, seconds) = match args.first().map(String::as_str) {
        Some("argon2id") => (
            Scheme::Argon2id {
                memory_kib: num(1),
                iterations: num(2),
                parallelism: num(3),
            },
            num(4),
        ),
        Some("pbkdf2") => (Scheme::Pbkdf2 { iterations: num(1) }, num(2)),
        _ => panic!("usage: password_rate argon2id <m> <t> <p> <s> | pbkdf2 <iterations> <s>"),
    };
    let hasher = Hasher::with(scheme).expect("valid parameters");
    let phc = hasher.hash_blocking("bench-passw0rd").expect("hash");
    let done = Arc::new(AtomicU64::new(0));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, phc) = (done.clone(), phc.clone());
            std::thread::spawn(move || {
                while started.elapsed() < Duration::from_secs(u64::from(seconds)) {
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
