//! The per-coach actor: every booking of one coach, and every edit of the coach (its
//! schedule decides which slots exist), goes through it on the coach's home node
//! (rendezvous hashing of the coach id, `Target::Entity(coach id)`), so they are applied
//! one at a time, in arrival order, cluster-wide.
//!
//! It keeps no state of its own. It hands each booking, in arrival order, to the node's
//! booking writer ([`bookings`]) and takes its next request while the writer commits: a
//! race for a coach's slots (most of them answered "taken") is then a few transactions,
//! each deciding every booking waiting for it ([`super::store::book_all`]), instead of a
//! read and a transaction per request. Each transaction locks the coach's row and reads its
//! live bookings under the lock, so two activations during membership churn still take
//! turns in the store, and the unique index on live bookings stays the last guard.

use std::sync::Arc;

use crate::common::Who;
use crate::events::{kinds, Publisher, Staged};
use crate::mesh::placement::{Entity, EntityError};
use crate::mesh::MeshError;
use crate::reminders::Plan;
use crate::store::batch::{self, Batcher, Written};
use crate::store::idempotency::{self, Key};
use crate::store::time::now_ms;
use crate::store::Store;

use super::schedule::Schedule;
use super::store::{self, Booked, BookingRow, CoachRow};
use super::{not_found, publish_booking, publish_coach, Change};

/// The entity kind.
pub struct CoachEntity {
    /// Where coaches and bookings are kept.
    pub store: Store,
    /// Where domain events go.
    pub publisher: Publisher,
    /// When a booking's reminder is due.
    pub plan: Plan,
    /// Bookings, decided and written many to a transaction in the order they came.
    pub bookings: Batcher<Ask, Result<BookingRow, MeshError>>,
}

/// A booking waiting for its transaction.
#[derive(Clone, Debug)]
pub struct Ask {
    /// The coach.
    pub coach_id: String,
    /// Who books.
    pub client_id: String,
    /// The slot's start asked for (unix ms).
    pub start: i64,
    /// The key of the write that asked (recorded with the booking it makes).
    pub key: Option<Key>,
}

/// Bookings decided in one transaction at most.
const BOOKING_BATCH: usize = 512;
/// Bookings waiting for their transaction at most; past it booking answers `unavailable`.
const BOOKING_QUEUE: usize = 8192;

/// The node's booking writer: batches of bookings (of any coaches), each coach's decided
/// in the order they came ([`store::book_all`]), written with their events, their
/// reminders and their writes' keys in one transaction.
pub fn bookings(
    store: Store,
    plan: Plan,
    publisher: Publisher,
) -> Batcher<Ask, Result<BookingRow, MeshError>> {
    Batcher::start(
        "bookings",
        BOOKING_BATCH,
        BOOKING_QUEUE,
        Arc::new(move |asks: Vec<Ask>| {
            let (store, publisher) = (store.clone(), publisher.clone());
            Box::pin(async move { write_bookings(&store, &plan, &publisher, asks).await })
        }),
    )
}

/// The keys of the asks answered `Ok` (`ok`) or `Err`, in order.
fn keys_of<'a>(
    answers: &[Result<BookingRow, MeshError>],
    asks: &'a [Ask],
    ok: bool,
) -> Vec<&'a Key> {
    answers
        .iter()
        .zip(asks)
        .filter(|(a, _)| a.is_ok() == ok)
        .filter_map(|(_, ask)| ask.key.as_ref())
        .collect()
}

async fn write_bookings(
    store: &Store,
    plan: &Plan,
    publisher: &Publisher,
    asks: Vec<Ask>,
) -> Result<Vec<Result<BookingRow, MeshError>>, MeshError> {
    // Each coach's asks, in the order they came.
    let coaches = batch::grouped(&asks, |a| &a.coach_id);
    let now = now_ms();
    let mut answers: Vec<Result<BookingRow, MeshError>> =
        (0..asks.len()).map(|_| Err(not_found())).collect();
    let mut out = Staged::new(Some(publisher));
    let mut tx = store.begin().await?;
    for (coach_id, at) in &coaches {
        let wanted: Vec<(&str, i64)> = at
            .iter()
            .map(|i| (asks[*i].client_id.as_str(), asks[*i].start))
            .collect();
        // The coach's schedule, read once for all its asks.
        let mut schedule = None;
        let Some(done) = store::book_all(
            &mut tx,
            plan,
            coach_id,
            &wanted,
            now,
            move |coach, start| {
                let schedule = schedule.get_or_insert_with(|| coach.schedule());
                slot_in(schedule.as_ref().map_err(Clone::clone)?, start, now)
            },
        )
        .await?
        else {
            continue;
        };
        for (i, booked) in at.iter().zip(done) {
            answers[*i] = match booked {
                Ok(Booked::Done(row)) => {
                    publish_booking(&mut out, kinds::COACHING_BOOKING_MADE, &row, None)?;
                    Ok(row)
                }
                Ok(Booked::Taken | Booked::Missing) => Err(store::taken()),
                Err(e) => Err(e),
            };
        }
    }
    // A write whose slot is taken may be a repeat of one that took it: it gets that
    // write's answer. The keys of the new bookings are recorded with them.
    let losers = keys_of(&answers, &asks, false);
    if !losers.is_empty() {
        let mut repeats = idempotency::recorded(&mut tx, &losers).await?.into_iter();
        for (answer, ask) in answers.iter_mut().zip(&asks) {
            if answer.is_err() && ask.key.is_some() && repeats.next() == Some(true) {
                *answer = Err(idempotency::duplicate());
            }
        }
    }
    let winners = keys_of(&answers, &asks, true);
    if answers.iter().all(Result::is_err) {
        return Ok(answers);
    }
    idempotency::write_all(&mut tx, &winners).await?;
    out.commit(tx).await?;
    for key in winners {
        key.wrote();
    }
    Ok(answers)
}

/// What a coach's actor is asked to do.
#[derive(Debug)]
pub enum CoachReq {
    /// Change the coach (an admin, or the coach's linked user).
    Update(Who, Change),
    /// Book the slot starting at this instant (unix ms) for the caller, under the key of
    /// the write that asks.
    Book(Who, i64, Option<Key>),
}

/// What a coach's actor answers.
#[derive(Debug)]
pub enum Answer {
    /// The coach, as changed.
    Coach(Box<CoachRow>),
    /// The new booking, once written (after `Book`): the actor hands it to the node's
    /// writer in arrival order and takes its next request while it commits.
    Booking(Written<BookingRow>),
}

/// The slot of `schedule` that starts at `start`, if it is one and still to come.
fn slot_in(schedule: &Schedule, start: i64, now: i64) -> Result<(i64, i64), MeshError> {
    let bad = |why: &str| {
        let mut f = crate::common::validate::Fields::new();
        f.check("start", Err(why.to_string()));
        f.finish().expect_err("a field is bad")
    };
    if start <= now {
        return Err(bad("must be in the future"));
    }
    schedule.slot_at(start).ok_or_else(|| {
        bad("is not one of the coach's slots (its grid, weekly availability and exceptions)")
    })
}

impl CoachEntity {
    async fn update(&self, id: &str, who: &Who, change: Change) -> Result<CoachRow, MeshError> {
        let mut tx = self.store.begin().await?;
        let row = store::update_coach(&mut tx, id, |row| change.apply(who, row, now_ms()))
            .await?
            .ok_or_else(not_found)?;
        let mut out = Staged::new(Some(&self.publisher));
        publish_coach(&mut out, kinds::COACHING_COACH_UPDATED, &who.user_id, &row)?;
        out.commit(tx).await?;
        Ok(row)
    }

    fn book(&self, id: &str, who: &Who, start: i64, key: Option<Key>) -> Written<BookingRow> {
        let ask = Ask {
            coach_id: id.to_string(),
            client_id: who.user_id.clone(),
            start,
            key,
        };
        let written = self.bookings.enqueue(ask);
        Written(Box::pin(async move { written?.await? }))
    }
}

impl Entity for CoachEntity {
    type State = ();
    type Request = CoachReq;
    /// The answer; the change and its events were committed together.
    type Reply = Result<Answer, MeshError>;
    const KIND: &'static str = "coach";

    async fn activate(&self, id: &str) -> Result<(), EntityError> {
        match store::coach(&self.store, id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(EntityError::NotFound),
            Err(e) => Err(EntityError::Unavailable(e.message)),
        }
    }

    async fn handle(&self, id: &str, _: &mut (), req: CoachReq) -> Result<Answer, MeshError> {
        match req {
            CoachReq::Update(who, change) => self
                .update(id, &who, change)
                .await
                .map(|row| Answer::Coach(Box::new(row))),
            CoachReq::Book(who, start, key) => Ok(Answer::Booking(self.book(id, &who, start, key))),
        }
    }

    async fn passivate(&self, _id: &str, _state: ()) {
        // Every change was committed when it was made.
    }
}
