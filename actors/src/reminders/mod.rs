//! Durable reminders (what Orleans and Dapr call reminders): timers kept in the store that
//! publish a bus event when due, fire once, and outlive the node that owns them.
//!
//! A service schedules a reminder inside the store transaction that makes the thing it
//! belongs to (a booking, an event registration: [`store::schedule`]) and drops it inside
//! the one that cancels it ([`store::drop_for`]), so a reminder exists exactly while its
//! subject does. Two kinds are scheduled today:
//! - `reminder.due`, [`Plan`]'s lead time before an event or a booking starts, for the
//!   registered user or the client; the notifications service turns it into a notification.
//!   It expires at the start: one that comes due later (its owner was down that long) is
//!   recorded as `expired`, not sent.
//! - `event.attended`, when an event ends, for each user holding a seat; engagement awards
//!   its points.
//!
//! **Who fires a reminder.** Reminders are spread over 64 shards by id; the node that fires
//! a shard's reminders is the home of `reminders/<shard>` among the placement members
//! (rendezvous hashing, as for entities). A node fenced after losing a split owns none.
//! When a node dies, its shards move to survivors once its lease is gone, and they fire
//! what came due meanwhile. See [`keeper`] for how a batch is fired once.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `list` | idempotent | [`ListReminders`] | [`ReminderPage`] (admin: a caller that is
//! not one is refused; the HTTP edge checks the admin token) |
//!
//! # Layout
//! - this file: [`Plan`] (lead times), the [`Service`] impl;
//! - [`keeper`]: the per-node loop that fires the due reminders of the owned shards;
//! - [`store`]: all SQL;
//! - [`messages`]: the prost messages;
//! - [`metrics`]: metric names.

pub mod keeper;
pub mod messages;
pub mod metrics;
pub mod store;

use std::sync::Arc;

use bytes::Bytes;

pub use messages::*;

use self::keeper::{Keeper, Settings};
use self::store::Due;
use crate::common::{validate, Who};
use crate::events::Publisher;
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo, Request, Service};
use crate::store::time::rfc3339_millis;
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "reminders";

/// Event kind of a reminder before something starts.
pub const REMINDER_DUE: &str = crate::events::kinds::REMINDER_DUE;

/// The ops of `reminders`, declared once.
pub mod ops {
    use super::messages::*;

    crate::ops! {
        /// An op of `reminders`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Reminders by user, subject and state (admin).
            List = LIST("list", idempotent): ListReminders => ReminderPage,
        }
    }
}

/// How long before what they remind of reminders are due (`[reminders]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Before an event starts, ms.
    pub event_before_ms: i64,
    /// Before a coaching booking starts, ms.
    pub booking_before_ms: i64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            event_before_ms: 3_600_000,
            booking_before_ms: 3_600_000,
        }
    }
}

impl Plan {
    /// The `reminder.due` of `subject` for `user`, `before_ms` ahead of `start` (unix ms):
    /// due then, or at `now` when that has passed; `None` once `start` has passed.
    pub fn before(
        before_ms: i64,
        subject: &str,
        user: &str,
        start: i64,
        payload: serde_json::Value,
        now: i64,
    ) -> Option<Due> {
        (start > now).then(|| Due {
            subject: subject.to_string(),
            user_id: user.to_string(),
            kind: REMINDER_DUE,
            due_at: start.saturating_sub(before_ms).max(now),
            expires_at: Some(start),
            payload,
        })
    }
}

/// The service: the admin view of reminders; its keeper fires them.
pub struct Reminders {
    info: Arc<NodeInfo>,
    store: Store,
    _keeper: Arc<Keeper>,
}

impl Reminders {
    /// Starts this node's keeper.
    pub fn start(
        info: Arc<NodeInfo>,
        store: Store,
        publisher: Publisher,
        settings: Settings,
    ) -> Arc<Self> {
        metrics::describe();
        let keeper = Arc::new(Keeper {
            info: info.clone(),
            store: store.clone(),
            publisher,
            settings,
        });
        tokio::spawn(keeper::run(Arc::downgrade(&keeper)));
        Arc::new(Self {
            info,
            store,
            _keeper: keeper,
        })
    }

    /// `list`: reminders by user, subject and state, soonest due first.
    pub async fn list(&self, q: &ListReminders) -> Result<ReminderPage, MeshError> {
        let pending = match q.state.as_deref() {
            None | Some("") => None,
            Some("pending") => Some(true),
            Some("done") => Some(false),
            Some(_) => {
                let mut f = validate::Fields::new();
                f.check("state", Err("must be pending or done".into()));
                f.finish()?;
                None
            }
        };
        let (page, per_page) = validate::page(q.page, q.per_page)?;
        let (limit, offset) = validate::limit_offset(page, per_page);
        let (rows, total) = store::list(
            &self.store,
            q.user_id.as_deref().filter(|s| !s.is_empty()),
            q.subject.as_deref().filter(|s| !s.is_empty()),
            pending,
            limit,
            offset,
        )
        .await?;
        let router = self.info.router().ok();
        let items = rows
            .into_iter()
            .map(|l| Reminder {
                owner: router
                    .as_ref()
                    .and_then(|r| r.home_of(&keeper::shard_entity(l.shard)))
                    .unwrap_or_default(),
                state: l.outcome.clone().unwrap_or_else(|| "pending".into()),
                fired_at: l.fired_at.map(rfc3339_millis).unwrap_or_default(),
                fired_by: l.fired_by.unwrap_or_default(),
                shard: l.shard,
                id: l.reminder.id,
                subject: l.reminder.subject,
                user_id: l.reminder.user_id,
                kind: l.reminder.kind,
                due_at: rfc3339_millis(l.reminder.due_at),
                expires_at: l
                    .reminder
                    .expires_at
                    .map(rfc3339_millis)
                    .unwrap_or_default(),
            })
            .collect();
        Ok(ReminderPage {
            items,
            total,
            page,
            per_page,
        })
    }
}

impl Service for Reminders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let cmd = Cmd::parse(&req)?;
            // The HTTP edge proves admin rights (the admin token sends no caller); a caller
            // that is sent must be an admin.
            if let Some(caller) = req.caller.as_ref() {
                if !Who::of(Some(caller))?.admin {
                    return Err(MeshError::new(
                        Code::PermissionDenied,
                        "listing reminders is for admins",
                    ));
                }
            }
            match cmd {
                Cmd::List(q) => ops::LIST.reply(self.list(&q).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
