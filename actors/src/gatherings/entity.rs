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
use std::sync::Arc;

use crate::events::{kinds, Publisher, Staged};
use crate::mesh::placement::{Entity, EntityError};
use crate::mesh::{Code, MeshError};
use crate::reminders::Plan;
use crate::store::batch::{self, Batcher, Written};
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
    /// Registrations, written many to a transaction in the order they came.
    pub registrations: Batcher<Signup, Option<Registered>>,
}

/// A registration waiting for its transaction.
#[derive(Clone, Debug)]
pub struct Signup {
    /// The event.
    pub event_id: String,
    /// Who registers.
    pub user_id: String,
}

/// Registrations written in one transaction at most.
const SIGNUP_BATCH: usize = 256;
/// Registrations waiting for their transaction at most; past it registering answers
/// `unavailable`.
const SIGNUP_QUEUE: usize = 8192;

/// The node's registration writer: batches of registrations (of any events), each event's
/// in the order they came ([`store::register_all`]), with their events, in one
/// transaction.
pub fn registrations(
    store: Store,
    plan: Plan,
    publisher: Publisher,
) -> Batcher<Signup, Option<Registered>> {
    Batcher::start(
        "registrations",
        SIGNUP_BATCH,
        SIGNUP_QUEUE,
        Arc::new(move |signups: Vec<Signup>| {
            let (store, publisher) = (store.clone(), publisher.clone());
            Box::pin(async move { write_signups(&store, &plan, &publisher, signups).await })
        }),
    )
}

async fn write_signups(
    store: &Store,
    plan: &Plan,
    publisher: &Publisher,
    signups: Vec<Signup>,
) -> Result<Vec<Option<Registered>>, MeshError> {
    // Each event's signups, in the order they came.
    let events = batch::grouped(&signups, |s| &s.event_id);
    let now = now_ms();
    let mut answers: Vec<Option<Registered>> = vec![None; signups.len()];
    let mut out = Staged::new(Some(publisher));
    let mut tx = store.begin().await?;
    for (event_id, at) in &events {
        let users: Vec<&str> = at.iter().map(|i| signups[*i].user_id.as_str()).collect();
        let Some(done) = store::register_all(&mut tx, plan, event_id, &users, now).await? else {
            continue;
        };
        for (i, registered) in at.iter().zip(done) {
            if let Registered::New(reg) = &registered {
                let kind = if reg.status == store::REGISTERED {
                    kinds::EVENT_REGISTERED
                } else {
                    kinds::EVENT_WAITLISTED
                };
                let payload = serde_json::json!({
                    "event_id": reg.event_id,
                    "status": reg.status,
                    "position": reg.position,
                });
                publish_payload(&mut out, kind, &reg.user_id, payload)?;
            }
            answers[*i] = Some(registered);
        }
    }
    out.commit(tx).await?;
    Ok(answers)
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
    /// The caller's registration (as it was, after `Cancel`).
    Registration(RegRow),
    /// The caller's registration, once written (after `Register`): the actor hands it to
    /// the node's writer in arrival order and takes its next request while it commits.
    Queued(Written<RegRow>),
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

    fn register(&self, id: &str, who: &Who) -> Result<Written<RegRow>, MeshError> {
        let written = self.registrations.enqueue(Signup {
            event_id: id.to_string(),
            user_id: who.user_id.clone(),
        })?;
        Ok(Written(Box::pin(async move {
            match written.await? {
                None => Err(not_found()),
                Some(Registered::New(reg) | Registered::Already(reg)) => Ok(reg),
            }
        })))
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
            EventReq::Register(who) => self.register(id, &who).map(Answer::Queued),
            EventReq::Cancel(who) => self.cancel(id, &who).await.map(Answer::Registration),
        }
    }

    async fn passivate(&self, _id: &str, _state: ()) {
        // Every change was committed when it was made.
    }
}
