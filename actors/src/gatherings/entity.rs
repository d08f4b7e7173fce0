//! The per-event actor: every change to one event's registrations, and the event's own
//! edits and deletion, go through it on the event's home node (rendezvous hashing of the
//! event id, `Target::Entity(event id)`), so they are applied one at a time, in the order
//! they arrive, cluster-wide.
//!
//! It keeps no state of its own: every request is one store transaction that locks the
//! event's row first ([`super::store`]). So two activations during membership churn (the
//! old home has not passivated yet) still take turns in the store and cannot over-register,
//! and a new home needs nothing from the old one.

use crate::common::Who;
use crate::events::{kinds, Publisher, Staged};
use crate::mesh::placement::{Entity, EntityError};
use crate::mesh::{Code, MeshError};
use crate::reminders::Plan;
use crate::store::time::now_ms;
use crate::store::Store;

use super::store::{self, Cancelled, EventRow, RegRow, Registered, Updated};
use super::{not_found, publish, publish_payload, Change};

/// The entity kind.
pub struct EventEntity {
    /// Where events are kept.
    pub store: Store,
    /// Where domain events go.
    pub publisher: Publisher,
    /// When a seat's reminder is due.
    pub plan: Plan,
}

/// What an event's actor is asked to do.
#[derive(Debug)]
pub enum EventReq {
    /// Change the event (organiser or admin).
    Update(Who, Change),
    /// Delete the event and its registrations (organiser or admin).
    Delete(Who),
    /// Register the caller: a seat, or the end of the waitlist.
    Register(Who),
    /// Cancel the caller's registration; a freed seat goes to the first waitlisted.
    Cancel(Who),
}

/// What an event's actor answers.
#[derive(Debug)]
pub enum Answer {
    /// The event (after `Update`; as it was, after `Delete`).
    Event(EventRow),
    /// The caller's registration (after `Register`; as it was, after `Cancel`).
    Registration(RegRow),
}

/// Refuses a change by anyone but the organiser or an admin.
fn may_change(who: &Who, row: &EventRow) -> Result<(), MeshError> {
    if who.admin || who.user_id == row.organiser_id {
        Ok(())
    } else {
        Err(MeshError::new(
            Code::PermissionDenied,
            "only the organiser or an admin may change an event",
        ))
    }
}

impl EventEntity {
    async fn update(&self, id: &str, who: &Who, change: Change) -> Result<EventRow, MeshError> {
        let mut tx = self.store.begin().await?;
        let outcome = store::update(&mut tx, &self.plan, id, now_ms(), |row| {
            may_change(who, row)?;
            change.apply(row, now_ms())
        })
        .await?;
        match outcome {
            Updated::Missing => Err(not_found()),
            Updated::BelowRegistered(n) => {
                let mut fields = crate::common::validate::Fields::new();
                fields.check(
                    "capacity",
                    Err(format!("must not be below the {n} seats already taken")),
                );
                Err(fields.finish().expect_err("a field is bad"))
            }
            Updated::Done(row, seated) => {
                let mut out = Staged::new(Some(&self.publisher));
                publish(
                    &mut out,
                    kinds::EVENT_UPDATED,
                    &row.organiser_id,
                    &row,
                    serde_json::json!({}),
                )?;
                for user in seated {
                    publish(
                        &mut out,
                        kinds::EVENT_PROMOTED,
                        &user,
                        &row,
                        serde_json::json!({ "status": store::REGISTERED }),
                    )?;
                }
                out.commit(tx).await?;
                Ok(*row)
            }
        }
    }

    async fn delete(&self, id: &str, who: &Who) -> Result<EventRow, MeshError> {
        let mut tx = self.store.begin().await?;
        let row = store::delete(&mut tx, id, |row| may_change(who, row))
            .await?
            .ok_or_else(not_found)?;
        let mut out = Staged::new(Some(&self.publisher));
        publish(
            &mut out,
            kinds::EVENT_DELETED,
            &row.organiser_id,
            &row,
            serde_json::json!({}),
        )?;
        out.commit(tx).await?;
        Ok(row)
    }

    async fn register(&self, id: &str, who: &Who) -> Result<RegRow, MeshError> {
        let mut tx = self.store.begin().await?;
        let outcome = store::register(&mut tx, &self.plan, id, &who.user_id, now_ms())
            .await?
            .ok_or_else(not_found)?;
        match outcome {
            Registered::Already(reg) => Ok(reg),
            Registered::New(reg) => {
                let kind = if reg.status == store::REGISTERED {
                    kinds::EVENT_REGISTERED
                } else {
                    kinds::EVENT_WAITLISTED
                };
                let payload = serde_json::json!({
                    "event_id": id,
                    "status": reg.status,
                    "position": reg.position,
                });
                let mut out = Staged::new(Some(&self.publisher));
                publish_payload(&mut out, kind, &who.user_id, payload)?;
                out.commit(tx).await?;
                Ok(reg)
            }
        }
    }

    async fn cancel(&self, id: &str, who: &Who) -> Result<RegRow, MeshError> {
        let mut tx = self.store.begin().await?;
        let Cancelled { was, promoted } =
            store::cancel(&mut tx, &self.plan, id, &who.user_id, now_ms())
                .await?
                .ok_or_else(not_found)?
                .ok_or_else(|| MeshError::not_found("not registered for this event"))?;
        let mut out = Staged::new(Some(&self.publisher));
        let payload = serde_json::json!({ "event_id": id, "was": was.status });
        publish_payload(&mut out, kinds::EVENT_CANCELLED, &who.user_id, payload)?;
        if let Some(user) = promoted {
            let payload = serde_json::json!({ "event_id": id, "status": store::REGISTERED });
            publish_payload(&mut out, kinds::EVENT_PROMOTED, &user, payload)?;
        }
        out.commit(tx).await?;
        Ok(was)
    }
}

impl Entity for EventEntity {
    type State = ();
    type Request = EventReq;
    /// The answer; the change and its events were committed together.
    type Reply = Result<Answer, MeshError>;
    const KIND: &'static str = "event";

    async fn activate(&self, id: &str) -> Result<(), EntityError> {
        match store::get(&self.store, id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(EntityError::NotFound),
            Err(e) => Err(EntityError::Unavailable(e.message)),
        }
    }

    async fn handle(&self, id: &str, _: &mut (), req: EventReq) -> Result<Answer, MeshError> {
        match req {
            EventReq::Update(who, change) => self.update(id, &who, change).await.map(Answer::Event),
            EventReq::Delete(who) => self.delete(id, &who).await.map(Answer::Event),
            EventReq::Register(who) => self.register(id, &who).await.map(Answer::Registration),
            EventReq::Cancel(who) => self.cancel(id, &who).await.map(Answer::Registration),
        }
    }

    async fn passivate(&self, _id: &str, _state: ()) {
        // Every change was committed when it was made.
    }
}
