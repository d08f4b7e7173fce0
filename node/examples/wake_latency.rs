//! How late a sleeping thread wakes on this machine: the floor under every latency that
//! crosses a thread hand-off (a paced load generator, a parked tokio worker, a mesh call).
//!
//! `cargo run --release --example wake_latency -- [interval_us] [count]` sleeps until each
//! of `count` deadlines `interval_us` apart (default 100 us, 100,000 times, as the paced mesh
//! benchmark at 10,000 calls/s does) and prints how late it woke, as percentiles.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let interval_us: u64 = args.next().map_or(100, |a| a.parse().expect("interval_us"));
    let count: usize = args.next().map_or(100_000, |a| a.parse().expect("count"));
    assert!(
        interval_us > 0 && count > 0,
        "interval_us and count must be positive"
    );
    let interval = Duration::from_micros(interval_us);
    let started = Instant::now();
    let mut late_us: Vec<u64> = Vec::with_capacity(count);
    for i in 0..count {
        let at = started + interval * i as u32;
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        late_us.push(at.elapsed().as_micros() as u64);
    }
    late_us.sort_unstable();
    let pct = |p: f64| late_us[((late_us.len() - 1) as f64 * p).round() as usize];
    println!(
        "wake lateness over {count} sleeps {interval_us} us apart: p50={} us p99={} us p99.9={} us max={} us",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        late_us[late_us.len() - 1]
    );
}
