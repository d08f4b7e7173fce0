//! The per-coach actor: every booking of one coach, and every edit of the coach (its
//! schedule decides which slots exist), goes through it on the coach's home node
//! (rendezvous hashing of the coach id, `Target::Entity(coach id)`), so they are applied
//! one at a time, in arrival order, cluster-wide.
//!
//! It keeps no state of its own: a booking is checked against the store (a slot already
//! taken is answered from a read, without taking the write lock), then made in one
//! transaction that locks the coach's row and checks again ([`super::store::book`]). Two
//! activations during membership churn therefore still take turns in the store, and the
//! unique index on live bookings stays the last guard.

use crate::common::Who;
use crate::events::{kinds, Publisher, Staged};
use crate::mesh::placement::{Entity, EntityError};
use crate::mesh::MeshError;
use crate::reminders::Plan;
use crate::store::time::now_ms;
use crate::store::Store;

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
}

/// What a coach's actor is asked to do.
#[derive(Debug)]
pub enum CoachReq {
    /// Change the coach (an admin, or the coach's linked user).
    Update(Who, Change),
    /// Book the slot starting at this instant (unix ms) for the caller.
    Book(Who, i64),
}

/// What a coach's actor answers.
#[derive(Debug)]
pub enum Answer {
    /// The coach, as changed.
    Coach(Box<CoachRow>),
    /// The new booking.
    Booking(BookingRow),
}

/// The slot of `coach` that starts at `start`, if it is one and still to come.
pub(crate) fn slot_of(coach: &CoachRow, start: i64, now: i64) -> Result<(i64, i64), MeshError> {
    let bad = |why: &str| {
        let mut f = crate::common::validate::Fields::new();
        f.check("start", Err(why.to_string()));
        f.finish().expect_err("a field is bad")
    };
    if start <= now {
        return Err(bad("must be in the future"));
    }
    coach.schedule()?.slot_at(start).ok_or_else(|| {
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

    async fn book(&self, id: &str, who: &Who, start: i64) -> Result<BookingRow, MeshError> {
        let now = now_ms();
        // Checked first on a read: a taken slot (most requests of a race) costs no write.
        let coach = store::coach(&self.store, id).await?.ok_or_else(not_found)?;
        let (s, e) = slot_of(&coach, start, now)?;
        if !store::booked_between(&self.store, id, s, e)
            .await?
            .is_empty()
        {
            return Err(store::taken());
        }
        let mut tx = self.store.begin().await?;
        let outcome = store::book(&mut tx, &self.plan, id, &who.user_id, now, |locked| {
            slot_of(locked, start, now)
        })
        .await?;
        match outcome {
            Booked::Missing => Err(not_found()),
            Booked::Taken => Err(store::taken()),
            Booked::Done(row) => {
                let mut out = Staged::new(Some(&self.publisher));
                publish_booking(&mut out, kinds::COACHING_BOOKING_MADE, &row, None)?;
                out.commit(tx).await?;
                Ok(row)
            }
        }
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
            CoachReq::Book(who, start) => self.book(id, &who, start).await.map(Answer::Booking),
        }
    }

    async fn passivate(&self, _id: &str, _state: ()) {
        // Every change was committed when it was made.
    }
}
