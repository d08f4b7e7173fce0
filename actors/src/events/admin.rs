//! The `event_bus` service: every node's window on its own outbox, for the admin endpoints.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `dead_list` | idempotent | (none) | [`DeadLetterList`] |
//! | `dead_get` | idempotent | [`DeadLetterId`] | [`DeadLetter`] |
//! | `dead_replay` | effectful | [`DeadLetterId`] | [`DeadLetter`] (as it was) |
//! | `dead_drop` | effectful | [`DeadLetterId`] | [`DeadLetter`] (as it was) |
//! | `bench` | effectful | [`BenchRequest`] | [`BenchReply`] |
//!
//! Dead letters are in the store every node shares, so any node answers for all of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;

use super::bus::Bus;
use super::outbox::DeadLetter as Row;
use super::{NewEvent, Publish};
use crate::mesh::{BoxFuture, MeshError, Request, Service};
use crate::store::time::rfc3339_millis;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "event_bus";

/// The ops of `event_bus`, declared once.
pub mod ops {
    use super::{BenchReply, BenchRequest, DeadLetter, DeadLetterId, DeadLetterList};

    crate::ops! {
        /// An op of `event_bus`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// List this node's dead letters.
            DeadList = DEAD_LIST("dead_list", idempotent): () => DeadLetterList,
            /// One dead letter.
            DeadGet = DEAD_GET("dead_get", idempotent): DeadLetterId => DeadLetter,
            /// Put a dead letter back in the outbox; answers it as it was.
            DeadReplay = DEAD_REPLAY("dead_replay", effectful): DeadLetterId => DeadLetter,
            /// Remove a dead letter; answers it as it was.
            DeadDrop = DEAD_DROP("dead_drop", effectful): DeadLetterId => DeadLetter,
            /// Publish a burst of benchmark events from this node.
            Bench = BENCH("bench", effectful): BenchRequest => BenchReply,
        }
    }
}

/// Dead letters one list shows at most (oldest first).
pub const DEAD_LIST_MAX: u32 = 1000;

/// Kind of the events `bench` publishes.
pub const BENCH_KIND: &str = "bench.event";
/// Most events one `bench` call may publish.
pub const BENCH_MAX_COUNT: u32 = 1_000_000;

/// A dead letter's id.
#[derive(Clone, PartialEq, Message)]
pub struct DeadLetterId {
    /// `<event id>.<sink>`.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// An event whose delivery to one sink gave up.
#[derive(Clone, PartialEq, Message)]
pub struct DeadLetter {
    /// `<event id>.<sink>`.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The node whose outbox holds it.
    #[prost(string, tag = "2")]
    pub node: String,
    /// The sink it was for.
    #[prost(string, tag = "3")]
    pub sink: String,
    /// The event, as JSON.
    #[prost(string, tag = "4")]
    pub event_json: String,
    /// Attempts made.
    #[prost(uint32, tag = "5")]
    pub attempts: u32,
    /// The last failure.
    #[prost(string, tag = "6")]
    pub last_error: String,
    /// When the last attempt failed, RFC 3339.
    #[prost(string, tag = "7")]
    pub failed_at: String,
}

/// The dead letters of one node.
#[derive(Clone, PartialEq, Message)]
pub struct DeadLetterList {
    /// Oldest failure first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<DeadLetter>,
}

/// A benchmark burst.
#[derive(Clone, PartialEq, Message)]
pub struct BenchRequest {
    /// Events to publish.
    #[prost(uint32, tag = "1")]
    pub count: u32,
    /// Events per second (0 = as fast as possible).
    #[prost(uint32, tag = "2")]
    pub rate: u32,
    /// Run id written into each payload (`run`), so results can be found afterwards.
    #[prost(string, tag = "3")]
    pub run: String,
    /// Publishes in flight at once (default 64).
    #[prost(uint32, tag = "4")]
    pub concurrency: u32,
}

/// What a burst did.
#[derive(Clone, PartialEq, Message)]
pub struct BenchReply {
    /// Events published (acknowledged durable).
    #[prost(uint32, tag = "1")]
    pub published: u32,
    /// Failed publishes.
    #[prost(uint32, tag = "2")]
    pub failed: u32,
    /// Wall time of the burst, microseconds.
    #[prost(uint64, tag = "3")]
    pub elapsed_us: u64,
    /// Publish latency percentiles, microseconds.
    #[prost(uint64, tag = "4")]
    pub p50_us: u64,
    /// 99th percentile.
    #[prost(uint64, tag = "5")]
    pub p99_us: u64,
    /// Maximum.
    #[prost(uint64, tag = "6")]
    pub max_us: u64,
    /// Outbox depth when the burst ended.
    #[prost(int64, tag = "7")]
    pub outbox_depth: i64,
}

/// The service.
pub struct Events {
    bus: Arc<Bus>,
}

impl Events {
    /// The service over this node's bus.
    pub fn new(bus: Arc<Bus>) -> Self {
        Self { bus }
    }

    fn letter(&self, d: &Row) -> DeadLetter {
        DeadLetter {
            id: d.id.clone(),
            node: d.node.clone(),
            sink: d.sink.clone(),
            event_json: shown(d),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            failed_at: rfc3339_millis(d.failed_at),
        }
    }

    fn id(r: &DeadLetterId) -> Result<&str, MeshError> {
        if r.id.is_empty() || r.id.len() > 200 {
            return Err(MeshError::invalid("a dead-letter id is required"));
        }
        Ok(&r.id)
    }

    async fn dead_list(&self) -> Result<DeadLetterList, MeshError> {
        Ok(DeadLetterList {
            items: self
                .bus
                .outbox()
                .dead_letters(DEAD_LIST_MAX)
                .await?
                .iter()
                .map(|d| self.letter(d))
                .collect(),
        })
    }

    async fn dead_get(&self, r: &DeadLetterId) -> Result<DeadLetter, MeshError> {
        let d = self
            .bus
            .outbox()
            .dead_letter(Self::id(r)?)
            .await?
            .ok_or_else(|| MeshError::not_found("no such dead letter"))?;
        Ok(self.letter(&d))
    }

    async fn dead_replay(&self, r: &DeadLetterId) -> Result<DeadLetter, MeshError> {
        let d = self.bus.outbox().replay(Self::id(r)?).await?;
        Ok(self.letter(&d))
    }

    async fn dead_drop(&self, r: &DeadLetterId) -> Result<DeadLetter, MeshError> {
        let d = self
            .bus
            .outbox()
            .drop_dead(Self::id(r)?)
            .await?
            .ok_or_else(|| MeshError::not_found("no such dead letter"))?;
        Ok(self.letter(&d))
    }

    async fn bench(&self, req: BenchRequest) -> Result<BenchReply, MeshError> {
        if req.count == 0 || req.count > BENCH_MAX_COUNT {
            return Err(MeshError::invalid(format!(
                "count must be between 1 and {BENCH_MAX_COUNT}"
            )));
        }
        let concurrency = match req.concurrency {
            0 => 64,
            c => c.min(4096) as usize,
        };
        let interval = (req.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(req.rate)));
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(req.count as usize);
        let mut failed = 0u32;
        let mut in_flight = tokio::task::JoinSet::new();
        let bus: Arc<dyn Publish> = self.bus.clone();
        for i in 0..req.count {
            if let Some(interval) = interval {
                let due = started + interval * i;
                tokio::time::sleep_until(due.into()).await;
            }
            while in_flight.len() >= concurrency {
                if let Some(Ok((ok, us))) = in_flight.join_next().await {
                    if ok {
                        latencies.push(us);
                    } else {
                        failed += 1;
                    }
                }
            }
            let bus = bus.clone();
            let event = NewEvent::new(
                BENCH_KIND,
                None,
                serde_json::json!({ "run": req.run, "seq": i }),
            );
            in_flight.spawn(async move {
                let t = Instant::now();
                let ok = bus.publish(event).await.is_ok();
                (ok, t.elapsed().as_micros() as u64)
            });
        }
        while let Some(done) = in_flight.join_next().await {
            if let Ok((ok, us)) = done {
                if ok {
                    latencies.push(us);
                } else {
                    failed += 1;
                }
            }
        }
        latencies.sort_unstable();
        let pct = |p: f64| -> u64 {
            if latencies.is_empty() {
                return 0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
            latencies[i - 1]
        };
        Ok(BenchReply {
            published: latencies.len() as u32,
            failed,
            elapsed_us: started.elapsed().as_micros() as u64,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_us: latencies.last().copied().unwrap_or_default(),
            outbox_depth: self.bus.outbox().depth(),
        })
    }
}

/// A dead letter's event as admins see it: secret payload fields (emailed codes) masked.
/// The outbox keeps them, so a replay still delivers the code to its user.
/// A quarantined body, which is not an event, is shown as it was.
pub fn shown(d: &Row) -> String {
    match d.event() {
        Ok(e) => serde_json::to_string(&e.redacted()).unwrap_or_default(),
        Err(_) => d.body.clone(),
    }
}

impl Service for Events {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::DeadList(()) => ops::DEAD_LIST.reply(self.dead_list().await),
                Cmd::DeadGet(r) => ops::DEAD_GET.reply(self.dead_get(&r).await),
                Cmd::DeadReplay(r) => ops::DEAD_REPLAY.reply(self.dead_replay(&r).await),
                Cmd::DeadDrop(r) => ops::DEAD_DROP.reply(self.dead_drop(&r).await),
                Cmd::Bench(b) => ops::BENCH.reply(self.bench(b).await),
            }
        })
    }
}
