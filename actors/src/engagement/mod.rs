//! The `engagement` service: points for activities (tracked by users, or earned through
//! other services' events on the bus), badges at point thresholds, a leaderboard, feedback
//! and admin analytics.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `track` | effectful | [`Track`] | [`Tracked`] |
//! | `feedback` | effectful | [`NewFeedback`] | [`Feedback`] |
//! | `list_feedback` | idempotent | [`ListFeedback`] | [`FeedbackPage`] (admin) |
//! | `points` | idempotent | [`UserRef`] | [`Points`] |
//! | `badges` | idempotent | [`UserRef`] | [`Badges`] |
//! | `leaderboard` | idempotent | [`LeaderboardQuery`] | [`Leaderboard`] |
//! | `analytics` | idempotent | [`AnalyticsQuery`] | [`Analytics`] (admin) |
//! | `consume` | idempotent | [`EventJson`](crate::events::EventJson) | [`Consumed`] (the bus's subscriber sink) |
//!
//! Every op but `consume` needs a caller. A user tracks their own activities and sees their
//! own points and badges (an admin sees anyone's); feedback lists and analytics are
//! admin-only (`permission_denied`).
//!
//! Points come from one table, [`KINDS`]: an activity kind, its points, and either that
//! users may track it or the bus event that earns it. Bus-earned kinds cannot be tracked by
//! hand. `consume` awards an event's points exactly once: the activity row carries the
//! event id under a unique constraint, so a redelivered event changes nothing. It also
//! carries a unique key of the kind, user and thing (lesson, certificate, event, coaching
//! slot), so the same thing done again earns nothing more.
//!
//! Badges are derived from points ([`BADGES`]); crossing a threshold publishes
//! `engagement.badge_earned` once (the award that crosses it happens once). Every award
//! publishes `engagement.activity`.
//!
//! # Layout
//! - this file: the activity and badge tables, the [`Service`] impl, one method per op;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL.

pub mod messages;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

pub use messages::*;

use crate::common::{self, validate::Fields, Who};
use crate::events::{kinds, Event, NewEvent, Publisher, Staged};
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service};
use crate::store::batch::Batcher;
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::{idempotency, Store};
use ops::Cmd;

/// Service name.
pub const NAME: &str = "engagement";

/// The ops of `engagement`, declared once.
pub mod ops {
    use super::messages::*;
    use crate::events::EventJson;

    crate::ops! {
        /// An op of `engagement`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Award the caller the points of one activity.
            Track = TRACK("track", effectful): Track => Tracked,
            /// Store the caller's feedback.
            Feedback = FEEDBACK("feedback", effectful): NewFeedback => Feedback,
            /// A page of feedback, newest first (admin).
            ListFeedback = LIST_FEEDBACK("list_feedback", idempotent): ListFeedback => FeedbackPage,
            /// A user's points and badge names.
            Points = POINTS("points", idempotent): UserRef => Points,
            /// Every badge and whether a user has it.
            Badges = BADGES("badges", idempotent): UserRef => Badges,
            /// The top users by points.
            Leaderboard = LEADERBOARD("leaderboard", idempotent): LeaderboardQuery => Leaderboard,
            /// Active users per day and top activities (admin).
            Analytics = ANALYTICS("analytics", idempotent): AnalyticsQuery => Analytics,
            /// Consume one bus event (the subscriber sink); awards its points once.
            Consume = CONSUME("consume", idempotent): EventJson => Consumed,
        }
    }
}

/// The activity kind a bus event of `event_kind` earns, if any.
fn kind_for(event_kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| matches!(k.source, Source::Event(kind) if kind == event_kind))
}

/// Whether a bus event of `event_kind` earns anything: the node's engagement subscriber
/// is handed only those events.
pub fn awarded_for(event_kind: &str) -> bool {
    kind_for(event_kind).is_some()
}

/// How an activity kind is earned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Users report it with `track`.
    Tracked,
    /// A bus event of this kind earns it, for the user the event is about.
    Event(&'static str),
}

/// One activity kind and its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The name (`track`'s `kind`, and what analytics count).
    pub name: &'static str,
    /// Points awarded per occurrence.
    pub points: i64,
    /// How it is earned.
    pub source: Source,
}

/// Every activity kind and its points: the one table (documented in `docs/engagement.md`).
pub const KINDS: &[Kind] = &[
    Kind {
        name: "login",
        points: 1,
        source: Source::Tracked,
    },
    Kind {
        name: "page_view",
        points: 1,
        source: Source::Tracked,
    },
    Kind {
        name: "resource_view",
        points: 2,
        source: Source::Tracked,
    },
    Kind {
        name: "comment",
        points: 3,
        source: Source::Tracked,
    },
    Kind {
        name: "share",
        points: 5,
        source: Source::Tracked,
    },
    Kind {
        name: "profile_completed",
        points: 10,
        source: Source::Tracked,
    },
    Kind {
        name: "lesson_completed",
        points: 10,
        source: Source::Event(kinds::TRAINING_LESSON_COMPLETED),
    },
    Kind {
        name: "certificate_earned",
        points: 50,
        source: Source::Event(kinds::TRAINING_CERTIFICATE_ISSUED),
    },
    Kind {
        name: "event_attended",
        points: 15,
        source: Source::Event(kinds::EVENT_ATTENDED),
    },
    Kind {
        name: "coaching_booked",
        points: 20,
        source: Source::Event(kinds::COACHING_BOOKING_MADE),
    },
];

/// Badges by the points they take, lowest first.
pub const BADGES: &[(&str, i64)] = &[
    ("bronze", 25),
    ("silver", 100),
    ("gold", 250),
    ("platinum", 500),
];

/// Leaderboard size when none is asked for, and the most it shows.
const LEADERBOARD_DEFAULT: u32 = 10;
const LEADERBOARD_MAX: u32 = 100;
/// Analytics window when none is asked for, and the longest.
const DAYS_DEFAULT: u32 = 30;
const DAYS_MAX: u32 = 366;
/// Longest feedback text and reference, in characters.
const TEXT_MAX: usize = 4000;
const REF_MAX: usize = 200;
const MS_PER_DAY: i64 = 86_400_000;

/// The names of the badges `points` earns.
pub fn badges_of(points: i64) -> Vec<String> {
    BADGES
        .iter()
        .filter(|(_, t)| points >= *t)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// `YYYY-MM-DD` (UTC) of a unix ms time.
fn day_of(ms: i64) -> String {
    rfc3339_millis(ms).chars().take(10).collect()
}

fn admin_only(who: &Who, what: &str) -> Result<(), MeshError> {
    if who.admin {
        Ok(())
    } else {
        Err(MeshError::new(
            Code::PermissionDenied,
            format!("only an admin may {what}"),
        ))
    }
}

fn text_field(value: &Option<String>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.chars().count() > max => Err(format!("must be at most {max} characters")),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err("must not contain control characters".into())
        }
        _ => Ok(()),
    }
}

/// Awards written in one transaction at most.
const AWARD_BATCH: usize = 256;
/// Awards waiting for their transaction at most (callers wait for room beyond).
const AWARD_QUEUE: usize = 4096;

/// The service.
pub struct Engagement {
    store: Store,
    /// Awards, written many to a transaction with their events.
    awards: Batcher<Award, Option<Tracked>>,
}

/// An award waiting for its transaction: the activity, and the idempotency key of the
/// write that asked for it.
#[derive(Clone)]
struct Award {
    activity: store::NewActivity,
    key: Option<idempotency::Key>,
}

impl Engagement {
    /// The service over `store`, publishing through `publisher`.
    pub fn new(store: Store, publisher: Publisher) -> Self {
        let writer = store.clone();
        let awards = Batcher::start(
            "engagement",
            AWARD_BATCH,
            AWARD_QUEUE,
            Arc::new(move |awards: Vec<Award>| {
                let store = writer.clone();
                let publisher = publisher.clone();
                Box::pin(async move { write_awards(&store, &publisher, awards).await })
            }),
        );
        Self { store, awards }
    }

    /// Awards `kind` to `user_id`; `None` when `source_event` or `once_key` was recorded
    /// before.
    async fn award(
        &self,
        user_id: &str,
        kind: &Kind,
        reference: &str,
        source_event: Option<&str>,
        once_key: Option<&str>,
    ) -> Result<Option<Tracked>, MeshError> {
        let now = now_ms();
        let activity = store::NewActivity {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            kind: kind.name,
            reference: reference.to_string(),
            points: kind.points,
            source_event: source_event.map(str::to_string),
            once_key: once_key.map(str::to_string),
            day: day_of(now),
            created_at: now,
        };
        self.awards
            .submit(Award {
                activity,
                key: idempotency::current(),
            })
            .await
    }

    /// `track`: one activity of the caller, of a kind users may track.
    pub async fn track(&self, who: &Who, t: Track) -> Result<Tracked, MeshError> {
        let mut fields = Fields::new();
        let kind = fields.take(
            "kind",
            match t.kind.as_deref() {
                None | Some("") => Err("is required".to_string()),
                Some(k) => KINDS
                    .iter()
                    .find(|x| x.name == k && x.source == Source::Tracked)
                    .ok_or_else(|| {
                        let names: Vec<&str> = KINDS
                            .iter()
                            .filter(|x| x.source == Source::Tracked)
                            .map(|x| x.name)
                            .collect();
                        format!("must be one of {}", names.join(", "))
                    }),
            },
        );
        fields.check("ref", text_field(&t.reference, REF_MAX));
        fields.finish()?;
        let kind = kind.ok_or_else(|| MeshError::invalid("kind"))?;
        let reference = t.reference.unwrap_or_default();
        self.award(&who.user_id, kind, &reference, None, None)
            .await?
            .ok_or_else(|| MeshError::internal("a tracked activity was recorded twice"))
    }

    /// `feedback`: the caller's rating (1-5) with optional text.
    pub async fn feedback(&self, who: &Who, f: NewFeedback) -> Result<Feedback, MeshError> {
        let mut fields = Fields::new();
        fields.check(
            "rating",
            match f.rating {
                None => Err("is required".into()),
                Some(r) if !(1..=5).contains(&r) => Err("must be between 1 and 5".into()),
                Some(_) => Ok(()),
            },
        );
        fields.check("text", text_field(&f.text, TEXT_MAX));
        fields.check("ref", text_field(&f.reference, REF_MAX));
        fields.finish()?;
        let now = now_ms();
        let row = Feedback {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: who.user_id.clone(),
            rating: f.rating.unwrap_or_default(),
            text: f.text.unwrap_or_default(),
            reference: f.reference.unwrap_or_default(),
            created_at: rfc3339_millis(now),
        };
        store::insert_feedback(&self.store, &row, now).await?;
        Ok(row)
    }

    /// `list_feedback` (admin).
    pub async fn list_feedback(
        &self,
        who: &Who,
        l: &ListFeedback,
    ) -> Result<FeedbackPage, MeshError> {
        admin_only(who, "read feedback")?;
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (items, total) = store::feedback(
            &self.store,
            i64::from(per_page),
            i64::from(page - 1) * i64::from(per_page),
        )
        .await?;
        Ok(FeedbackPage {
            items,
            total,
            page,
            per_page,
        })
    }

    /// Whose points a request means: the caller's, or (admins) an existing user's.
    async fn subject(&self, who: &Who, r: &UserRef) -> Result<String, MeshError> {
        if r.user_id.is_empty() || r.user_id == who.user_id {
            return Ok(who.user_id.clone());
        }
        common::validate::id("user_id", &r.user_id)?;
        admin_only(who, "see another user's points")?;
        if !store::user_exists(&self.store, &r.user_id).await? {
            return Err(MeshError::not_found("user not found"));
        }
        Ok(r.user_id.clone())
    }

    /// `points`: a user's points and badge names.
    pub async fn points(&self, who: &Who, r: &UserRef) -> Result<Points, MeshError> {
        let user_id = self.subject(who, r).await?;
        let points = store::points(&self.store, &user_id).await?;
        Ok(Points {
            user_id,
            points,
            badges: badges_of(points),
        })
    }

    /// `badges`: every badge and whether the user has it.
    pub async fn badges(&self, who: &Who, r: &UserRef) -> Result<Badges, MeshError> {
        let user_id = self.subject(who, r).await?;
        let points = store::points(&self.store, &user_id).await?;
        Ok(Badges {
            user_id,
            items: BADGES
                .iter()
                .map(|(name, threshold)| Badge {
                    name: name.to_string(),
                    threshold: *threshold,
                    earned: points >= *threshold,
                })
                .collect(),
        })
    }

    /// `leaderboard`: the top `limit` users.
    pub async fn leaderboard(&self, q: &LeaderboardQuery) -> Result<Leaderboard, MeshError> {
        let limit = match q.limit {
            0 => LEADERBOARD_DEFAULT,
            n if n > LEADERBOARD_MAX => {
                return Err(MeshError::invalid(format!(
                    "limit must be between 1 and {LEADERBOARD_MAX}"
                )))
            }
            n => n,
        };
        Ok(Leaderboard {
            items: store::leaderboard(&self.store, i64::from(limit)).await?,
        })
    }

    /// `analytics` (admin): active users per day over the last `days`, top activities and
    /// feedback totals.
    pub async fn analytics(&self, who: &Who, q: &AnalyticsQuery) -> Result<Analytics, MeshError> {
        admin_only(who, "see engagement analytics")?;
        let days = match q.days {
            0 => DAYS_DEFAULT,
            n if n > DAYS_MAX => {
                return Err(MeshError::invalid(format!(
                    "days must be between 1 and {DAYS_MAX}"
                )))
            }
            n => n,
        };
        let since = day_of(now_ms() - i64::from(days - 1) * MS_PER_DAY);
        let (feedback_count, rating_sum) = store::feedback_stats(&self.store).await?;
        Ok(Analytics {
            active_users: store::active_users(&self.store, &since).await?,
            top_activities: store::top_activities(&self.store, 10).await?,
            feedback_count,
            average_rating: if feedback_count > 0 {
                rating_sum as f64 / feedback_count as f64
            } else {
                0.0
            },
        })
    }

    /// `consume`: awards the points of a bus event of a kind in [`KINDS`], once per event
    /// id; other events are acknowledged and ignored.
    pub async fn consume(&self, event: &Event) -> Result<Consumed, MeshError> {
        if event.id.is_empty() || event.id.len() > 64 {
            return Err(MeshError::invalid("event id must be 1-64 characters"));
        }
        let Some(kind) = kind_for(&event.kind) else {
            return Ok(Consumed { awarded: 0 });
        };
        let Some(user_id) = event.user_id.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(Consumed { awarded: 0 });
        };
        let reference = ["lesson_id", "certificate_id", "event_id", "slot"]
            .iter()
            .find_map(|f| event.payload.get(*f).and_then(|v| v.as_str()))
            .unwrap_or_default();
        // The same thing done again (a lesson unmarked and marked, a registration cancelled
        // and made again, a coaching slot cancelled and booked again) is a new event but
        // earns nothing more.
        let once_key =
            (!reference.is_empty()).then(|| format!("{}:{user_id}:{reference}", kind.name));
        let awarded = self
            .award(
                user_id,
                kind,
                reference,
                Some(&event.id),
                once_key.as_deref(),
            )
            .await?
            .map_or(0, |t| t.awarded);
        Ok(Consumed { awarded })
    }
}

/// Writes `awards` in one transaction: their activity rows, the users' new totals, the
/// keys of the writes that asked for them, and an `engagement.activity` event per award
/// (with an `engagement.badge_earned` per threshold crossed). Answers, per award, what it
/// earned, or `None` when it was recorded before.
async fn write_awards(
    store: &Store,
    publisher: &Publisher,
    awards: Vec<Award>,
) -> Result<Vec<Option<Tracked>>, MeshError> {
    let (activities, keys): (Vec<store::NewActivity>, Vec<Option<idempotency::Key>>) =
        awards.into_iter().map(|a| (a.activity, a.key)).unzip();
    let mut tx = store.begin().await?;
    idempotency::write_all(&mut tx, &keys.iter().flatten().collect::<Vec<_>>()).await?;
    let fresh = store::insert_activities(&mut tx, &activities).await?;
    // Each user's points added by this batch, then their total before it.
    let mut added: Vec<(&str, i64)> = Vec::new();
    for a in activities.iter().filter(|a| fresh.contains(&a.id)) {
        match added.iter_mut().find(|(u, _)| *u == a.user_id) {
            Some((_, p)) => *p += a.points,
            None => added.push((&a.user_id, a.points)),
        }
    }
    let totals = if added.is_empty() {
        HashMap::new()
    } else {
        store::add_points(&mut tx, &added, now_ms()).await?
    };
    let mut running: HashMap<&str, i64> = added
        .iter()
        .map(|(u, p)| (*u, totals.get(*u).copied().unwrap_or(*p) - p))
        .collect();
    let mut staged = Staged::new(Some(publisher));
    let mut answers = Vec::with_capacity(activities.len());
    for a in &activities {
        let Some(before) = running
            .get_mut(a.user_id.as_str())
            .filter(|_| fresh.contains(&a.id))
        else {
            answers.push(None);
            continue;
        };
        let points = *before + a.points;
        let new_badges: Vec<String> = BADGES
            .iter()
            .filter(|(_, t)| *before < *t && points >= *t)
            .map(|(n, _)| n.to_string())
            .collect();
        *before = points;
        staged.add(NewEvent::new(
            kinds::ENGAGEMENT_ACTIVITY,
            Some(&a.user_id),
            serde_json::json!({
                "activity_id": a.id,
                "kind": a.kind,
                "points": a.points,
                "total": points,
                "ref": a.reference,
            }),
        ))?;
        for badge in &new_badges {
            staged.add(NewEvent::new(
                kinds::ENGAGEMENT_BADGE_EARNED,
                Some(&a.user_id),
                serde_json::json!({ "badge": badge, "points": points }),
            ))?;
        }
        answers.push(Some(Tracked {
            kind: a.kind.to_string(),
            awarded: a.points,
            points,
            new_badges,
        }));
    }
    staged.write(&mut tx).await?;
    tx.commit().await.map_err(crate::store::db_error)?;
    for key in keys.iter().flatten() {
        key.wrote();
    }
    staged.committed();
    Ok(answers)
}

impl Service for Engagement {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Tracking waits on the award writer: a batch holds as many awards as workers wait.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::batching_pool(default)
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            // Every op but `consume` (the bus calls without one) needs a caller.
            let who = Who::of(req.caller.as_ref());
            match Cmd::parse(&req)? {
                Cmd::Consume(e) => ops::CONSUME.reply(self.consume(&e.event()?).await),
                Cmd::Track(t) => ops::TRACK.reply(self.track(&who?, t).await),
                Cmd::Feedback(f) => ops::FEEDBACK.reply(self.feedback(&who?, f).await),
                Cmd::ListFeedback(l) => {
                    ops::LIST_FEEDBACK.reply(self.list_feedback(&who?, &l).await)
                }
                Cmd::Points(r) => ops::POINTS.reply(self.points(&who?, &r).await),
                Cmd::Badges(r) => ops::BADGES.reply(self.badges(&who?, &r).await),
                Cmd::Leaderboard(q) => {
                    who?;
                    ops::LEADERBOARD.reply(self.leaderboard(&q).await)
                }
                Cmd::Analytics(q) => ops::ANALYTICS.reply(self.analytics(&who?, &q).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
