//! The `notifications` service: consumes every domain event (delivered by the bus, at
//! least once), keeps a log row per event and a notification per user, and holds each
//! user's channel preferences.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `consume` | idempotent | [`EventJson`] (the [`Event`] as JSON) | [`Consumed`] |
//! | `list` | idempotent | [`ListRequest`] | [`NotificationPage`] |
//! | `read` | idempotent | [`ReadRequest`] | [`Notification`] |
//! | `prefs_get` | idempotent | [`PrefsRequest`] | [`Preferences`] |
//! | `prefs_put` | effectful | [`PrefsUpdate`] | [`Preferences`] |
//! | `logs` | idempotent | [`LogsRequest`] | [`LogPage`] |
//! | `bench_stats` | idempotent | [`BenchStatsRequest`] | [`BenchStats`] |
//!
//! `consume` is idempotent by event id: the log row (keyed by the event id) is written
//! last and only when absent, and the notification carries the event id as its own id, so
//! a redelivered event changes nothing.
//!
//! # Channels
//! - in-app: always, for events about a user whose kind has a template ([`templates`]);
//! - log: a `tracing` line per notification, unless the user turned it off;
//! - email: through SMTP when `[smtp]` is configured, unless the user turned it off. Sent
//!   by [`email::Email`], a sink of the bus, so failed sends are retried with backoff and
//!   end in the dead-letter queue like every other delivery.
//!
//! # Layout
//! - this file: the [`Service`] impl;
//! - [`messages`]: prost messages; [`store`]: all SQL; [`templates`]: titles and bodies;
//! - [`email`]: the SMTP channel.

pub mod email;
pub mod messages;
pub mod store;
pub mod templates;

use std::sync::Arc;

use bytes::Bytes;

pub use messages::*;

use crate::events::{Event, EventJson};
use crate::mesh::{BoxFuture, MeshError, Request, Service};
use crate::store::batch::Batcher;
use crate::store::time::now_ms;
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "notifications";

/// The ops of `notifications`, declared once.
pub mod ops {
    use super::messages::{
        BenchStats, BenchStatsRequest, Consumed, ListRequest, LogPage, LogsRequest, Notification,
        NotificationPage, Preferences, PrefsRequest, PrefsUpdate, ReadRequest,
    };
    use crate::events::EventJson;

    crate::ops! {
        /// An op of `notifications`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Consume one event (the bus's subscriber sink).
            Consume = CONSUME("consume", idempotent): EventJson => Consumed,
            /// A user's notifications.
            List = LIST("list", idempotent): ListRequest => NotificationPage,
            /// Mark one read.
            Read = READ("read", idempotent): ReadRequest => Notification,
            /// A user's preferences.
            PrefsGet = PREFS_GET("prefs_get", idempotent): PrefsRequest => Preferences,
            /// Change a user's preferences.
            PrefsPut = PREFS_PUT("prefs_put", effectful): PrefsUpdate => Preferences,
            /// The notification log (admin).
            Logs = LOGS("logs", idempotent): LogsRequest => LogPage,
            /// Latency of a benchmark run.
            BenchStats = BENCH_STATS("bench_stats", idempotent): BenchStatsRequest => BenchStats,
        }
    }
}

/// Consumed events written in one transaction at most.
const WRITE_BATCH: usize = 256;
/// Consumed events waiting for their transaction at most (callers wait for room beyond).
const WRITE_QUEUE: usize = 4096;

/// Most rows one page of the log answers.
pub const MAX_LOG_PAGE: u32 = 500;
/// Most notifications one page answers.
pub const MAX_PAGE: u32 = 100;

/// The service.
#[derive(Clone)]
pub struct Notifications {
    store: Store,
    email: bool,
    /// Consumed events' rows, written many events to a transaction.
    writes: Batcher<store::Record, bool>,
}

impl Notifications {
    /// The service over `store`; `email` says whether an SMTP channel is configured.
    pub fn new(store: Store, email: bool) -> Self {
        let writer = store.clone();
        let writes = Batcher::start(
            "notifications",
            WRITE_BATCH,
            WRITE_QUEUE,
            Arc::new(move |records: Vec<store::Record>| {
                let store = writer.clone();
                Box::pin(async move { store::record(&store, &records).await })
            }),
        );
        Self {
            store,
            email,
            writes,
        }
    }

    /// `consume`: writes the notification and the log row of `event`, once.
    pub async fn consume(&self, event: &Event) -> Result<Consumed, MeshError> {
        if event.id.is_empty() || event.id.len() > 64 {
            return Err(MeshError::invalid("event id must be 1-64 characters"));
        }
        crate::events::bus::check_kind(&event.kind)?;
        // A redelivered event is found out by `record`, inside its transaction; checking
        // first as well would cost every fresh event one more query.
        let now = now_ms();
        let user_id = event.user_id.clone().unwrap_or_default();
        // What the user gets, when the event is about a user and its kind has a template:
        // the rendered text and the user's channel preferences.
        let rendered = if user_id.is_empty() {
            None
        } else {
            templates::render(event)
        };
        let shown = match rendered {
            Some(r) => Some((r, store::prefs(&self.store, &user_id).await?)),
            None => None,
        };
        let mut channels: Vec<&str> = Vec::new();
        if let Some((_, prefs)) = &shown {
            channels.push("in_app");
            if self.email && prefs.email {
                channels.push("email");
            }
            if prefs.log {
                channels.push("log");
            }
        }
        let redacted = event.redacted();
        let record = store::Record {
            notification: shown.as_ref().map(|(r, _)| store::NewNotification {
                id: event.id.clone(),
                user_id: user_id.clone(),
                kind: event.kind.clone(),
                title: r.title.clone(),
                body: r.text.clone(),
                data: event.payload.to_string(),
                created_at: now,
            }),
            log: store::NewLogRow {
                event_id: event.id.clone(),
                kind: event.kind.clone(),
                user_id: user_id.clone(),
                source: event.source.clone(),
                event_time: parse_time(&event.time).unwrap_or(now),
                payload: redacted.payload.to_string(),
                channels: channels.join(","),
                created_at: now,
            },
        };
        let fresh = self.writes.submit(record).await?;
        if let Some((r, _)) = shown.as_ref().filter(|(_, prefs)| fresh && prefs.log) {
            tracing::info!(
                target: "troupe::notifications",
                user = %user_id,
                kind = %event.kind,
                event = %event.id,
                title = %r.title,
                "notification"
            );
        }
        Ok(Consumed { fresh })
    }

    /// `consume` as the bus's subscriber sink calls it: the event arrives as JSON.
    async fn consume_json(&self, e: &EventJson) -> Result<Consumed, MeshError> {
        self.consume(&e.event()?).await
    }

    async fn list(&self, req: ListRequest) -> Result<NotificationPage, MeshError> {
        need_user(&req.user_id)?;
        let (page, per_page) = page(req.page, req.per_page, MAX_PAGE)?;
        let (items, total) = store::list(
            &self.store,
            &req.user_id,
            req.unread_only,
            i64::from(per_page),
            i64::from(page - 1) * i64::from(per_page),
        )
        .await?;
        let unread = store::unread(&self.store, &req.user_id).await?;
        Ok(NotificationPage {
            items,
            total: total.max(0) as u64,
            unread: unread.max(0) as u64,
            page,
            per_page,
        })
    }

    async fn read(&self, req: ReadRequest) -> Result<Notification, MeshError> {
        need_user(&req.user_id)?;
        if req.id.is_empty() || req.id.len() > 64 {
            return Err(MeshError::not_found("notification not found"));
        }
        store::mark_read(&self.store, &req.user_id, &req.id, now_ms())
            .await?
            .ok_or_else(|| MeshError::not_found("notification not found"))
    }

    async fn prefs_get(&self, req: PrefsRequest) -> Result<Preferences, MeshError> {
        need_user(&req.user_id)?;
        store::prefs(&self.store, &req.user_id).await
    }

    async fn prefs_put(&self, req: PrefsUpdate) -> Result<Preferences, MeshError> {
        need_user(&req.user_id)?;
        let mut prefs = store::prefs(&self.store, &req.user_id).await?;
        if let Some(email) = req.email {
            prefs.email = email;
        }
        if let Some(log) = req.log {
            prefs.log = log;
        }
        store::put_prefs(&self.store, &prefs, now_ms()).await?;
        store::prefs(&self.store, &req.user_id).await
    }

    async fn logs(&self, req: LogsRequest) -> Result<LogPage, MeshError> {
        if req.kind.chars().count() > 65 || req.user_id.chars().count() > 64 {
            return Err(MeshError::invalid("filter too long"));
        }
        if req.since_ms < 0 || req.until_ms < 0 {
            return Err(MeshError::invalid("times must not be negative"));
        }
        let limit = match req.limit {
            0 => 20,
            l if l > MAX_LOG_PAGE => {
                return Err(MeshError::invalid(format!(
                    "limit must be between 1 and {MAX_LOG_PAGE}"
                )))
            }
            l => l,
        };
        let (items, total) = store::logs(
            &self.store,
            &store::LogFilter {
                kind: &req.kind,
                user_id: &req.user_id,
                since_ms: req.since_ms,
                until_ms: req.until_ms,
            },
            i64::from(limit),
            i64::from(req.offset),
        )
        .await?;
        Ok(LogPage {
            items,
            total: total.max(0) as u64,
        })
    }

    async fn bench_stats(&self, req: BenchStatsRequest) -> Result<BenchStats, MeshError> {
        let ok = !req.run.is_empty()
            && req.run.len() <= 64
            && req
                .run
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(MeshError::invalid(
                "run must be 1-64 characters of A-Z, a-z, 0-9, '-', '_'",
            ));
        }
        let mut l =
            store::bench_latencies(&self.store, crate::events::admin::BENCH_KIND, &req.run).await?;
        l.sort_unstable();
        let pct = |p: f64| -> i64 {
            if l.is_empty() {
                return 0;
            }
            let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len());
            l[i - 1]
        };
        Ok(BenchStats {
            count: l.len() as u64,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            max_ms: l.last().copied().unwrap_or_default(),
        })
    }
}

fn need_user(user_id: &str) -> Result<(), MeshError> {
    if user_id.is_empty() || user_id.len() > 64 {
        return Err(MeshError::invalid("a user id is required"));
    }
    Ok(())
}

/// Validates a page request: `page` from 1 (0 = 1), `per_page` 1..=`max` (0 = 20).
fn page(page: u32, per_page: u32, max: u32) -> Result<(u32, u32), MeshError> {
    let per_page = if per_page == 0 { 20 } else { per_page };
    if per_page > max {
        return Err(MeshError::invalid(format!(
            "per_page must be between 1 and {max}"
        )));
    }
    if page > 1_000_000 {
        return Err(MeshError::invalid("page is too large"));
    }
    Ok((page.max(1), per_page))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to unix milliseconds (the fraction's digits
/// past milliseconds are ignored).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    // Digits where digits go (no signs), and a fraction of digits only.
    let digits_at = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !digits_at.iter().all(|&i| b[i].is_ascii_digit())
        || b[13] != b':'
        || b[16] != b':'
        || (b.len() > 20
            && (b.len() == 21
                || b[19] != b'.'
                || !b[20..b.len() - 1].iter().all(u8::is_ascii_digit)))
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match s.get(19..s.len() - 1)? {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            let padded: String = digits.chars().chain("000".chars()).take(3).collect();
            padded.parse::<i64>().ok()?
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

impl Service for Notifications {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Consuming waits on the log writer: a batch holds as many events as workers wait.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::batching_pool(default)
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            match Cmd::parse(&req)? {
                Cmd::Consume(e) => ops::CONSUME.reply(self.consume_json(&e).await),
                Cmd::List(r) => ops::LIST.reply(self.list(r).await),
                Cmd::Read(r) => ops::READ.reply(self.read(r).await),
                Cmd::PrefsGet(r) => ops::PREFS_GET.reply(self.prefs_get(r).await),
                Cmd::PrefsPut(r) => ops::PREFS_PUT.reply(self.prefs_put(r).await),
                Cmd::Logs(r) => ops::LOGS.reply(self.logs(r).await),
                Cmd::BenchStats(r) => ops::BENCH_STATS.reply(self.bench_stats(r).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
