//! The `coaching` service (WeAce's coaching, landscape C): coaches with a weekly schedule in
//! their own time zone, their open slots, bookings of those slots, and session notes.
//!
//! # Ops
//! | op | kind | routed | request | reply |
//! |---|---|---|---|---|
//! | `create_coach` | effectful | any | [`CoachInput`] | [`Coach`] |
//! | `get_coach` | idempotent | any | [`Ref`] | [`Coach`] |
//! | `list_coaches` | idempotent | any | [`ListPage`] | [`CoachPage`] |
//! | `update_coach` | effectful | entity (coach) | [`CoachInput`] | [`Coach`] |
//! | `availability` | idempotent | any | [`SlotQuery`] | [`Slots`] |
//! | `book` | effectful | entity (coach) | [`BookInput`] | [`Booking`] |
//! | `list_bookings` | idempotent | any | [`ListPage`] | [`BookingPage`] |
//! | `cancel` | effectful | any | [`Ref`] | [`Booking`] (status `cancelled`) |
//! | `notes` | idempotent | any | [`Ref`] | [`Notes`] |
//! | `add_note` | effectful | any | [`NoteInput`] | [`Note`] |
//!
//! Every op needs a signed-in caller. Anyone signed in sees coaches and their open slots,
//! and books. Only an admin creates a coach; an admin or the coach's linked user changes it
//! (only an admin changes the link); anyone else is `permission_denied`. A booking is seen
//! (listed, cancelled) by its client, the coach's linked user and admins; its notes by the
//! client and the coach's user only. To anyone else a booking does not exist (`not_found`,
//! as tasks, todos and certificates answer), so booking ids do not leak.
//!
//! **One slot, one booking, cluster-wide**: `book` and `update_coach` run on the coach's
//! home node through one actor per coach ([`entity::CoachEntity`]) that takes them in
//! arrival order. An edit is one store transaction; bookings go to the node's booking
//! writer, which decides every booking waiting for it, in order, in one transaction
//! ([`store::book_all`]). Each transaction locks the coach's row first, and a partial unique
//! index (one live booking per coach and start) is the last guard ([`store`]). A taken slot
//! is `already_exists` (HTTP 409); a booking's write run again under its idempotency key
//! gets its first answer. Cancelling is one transaction that locks the
//! coach's row too, so it takes turns with bookings on whichever node it runs. Every change
//! publishes `coaching.coach_created`, `coaching.coach_updated`, `coaching.booking_made`,
//! `coaching.booking_cancelled` (about the client) or `coaching.note_added` (about its
//! writer).
//!
//! # Layout
//! - this file: the [`Service`] impl, one method per op, and field checks;
//! - [`entity`]: the per-coach actor;
//! - [`schedule`]: weekly windows, exceptions and slots in the coach's time zone (DST);
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL, and the one-booking-per-slot guard.

pub mod entity;
pub mod messages;
pub mod schedule;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use messages::*;

use self::entity::{Answer, CoachEntity, CoachReq};
use self::store::{BookingRow, CoachRow, NoteRow};
use crate::common::{self, validate::Fields, Who};
use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::gatherings::validate as text;
use crate::mesh::placement::{EntityError, Hosted};
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo, Request, Service};
use crate::reminders::Plan;
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "coaching";

/// The ops of `coaching`, declared once.
pub mod ops {
    use super::messages::{
        BookInput, Booking, BookingPage, Coach, CoachInput, CoachPage, ListPage, Note, NoteInput,
        Notes, Ref, SlotQuery, Slots,
    };

    crate::ops! {
        /// An op of `coaching`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create a coach (admin).
            CreateCoach = CREATE_COACH("create_coach", effectful): CoachInput => Coach,
            /// One coach.
            GetCoach = GET_COACH("get_coach", idempotent): Ref => Coach,
            /// A page of coaches, by name.
            ListCoaches = LIST_COACHES("list_coaches", idempotent): ListPage => CoachPage,
            /// Change a coach (entity-routed; an admin or the coach's user).
            UpdateCoach = UPDATE_COACH("update_coach", effectful): CoachInput => Coach,
            /// A coach's open slots between two instants.
            Availability = AVAILABILITY("availability", idempotent): SlotQuery => Slots,
            /// Book a slot for the caller (entity-routed by coach).
            Book = BOOK("book", effectful): BookInput => Booking,
            /// The caller's bookings, as client and as a coach's user.
            ListBookings = LIST_BOOKINGS("list_bookings", idempotent): ListPage => BookingPage,
            /// Cancel a booking (its client, the coach's user, or an admin).
            Cancel = CANCEL("cancel", effectful): Ref => Booking,
            /// A booking's notes (its client and the coach's user).
            Notes = NOTES("notes", idempotent): Ref => Notes,
            /// Add a note to a booking (its client and the coach's user).
            AddNote = ADD_NOTE("add_note", effectful): NoteInput => Note,
        }
    }
}

/// Idle coach actors are passivated after this long (they hold nothing).
const IDLE: Duration = Duration::from_secs(60);
/// Longest `from`-`to` window of `availability`.
pub const WINDOW_MAX_DAYS: i64 = 62;
/// `availability`'s window when no `to` is given.
const WINDOW_DEFAULT_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// Longest name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest biography and note, in characters.
pub const TEXT_MAX: usize = 4000;

/// Records `field`'s error unless `value` is an id (1 to 64 characters, no control
/// characters).
fn id_field(f: &mut Fields, field: &'static str, value: &str) {
    if let Err(e) = common::validate::id(field, value) {
        let why = e.message.trim_start_matches(field).trim_start().to_string();
        f.check(field, Err(why));
    }
}

/// A checked change to a coach: the fields given, parsed and made canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    name: Option<String>,
    bio: Option<String>,
    /// `Some("")`: unlink the user.
    user_id: Option<String>,
    timezone: Option<String>,
    slot_minutes: Option<i64>,
    availability: Option<Vec<schedule::Window>>,
    exceptions: Option<Vec<schedule::Exception>>,
}

impl Change {
    /// Checks every field given (each bad one named at once); `create` also requires name,
    /// timezone and availability.
    fn parse(input: &CoachInput, create: bool) -> Result<Change, MeshError> {
        let mut f = Fields::new();
        if create {
            for (name, given) in [
                ("name", input.name.is_some()),
                ("timezone", input.timezone.is_some()),
                ("availability", input.availability.is_some()),
            ] {
                if !given {
                    f.check(name, Err("is required".into()));
                }
            }
        }
        if let Some(n) = &input.name {
            f.check("name", text::title(n));
        }
        if let Some(b) = &input.bio {
            f.check("bio", text::text(b, TEXT_MAX));
        }
        if let Some(u) = input.user_id.as_deref().filter(|u| !u.is_empty()) {
            id_field(&mut f, "user_id", u);
        }
        let timezone = input
            .timezone
            .as_deref()
            .and_then(|z| f.take("timezone", schedule::timezone(z)))
            .map(|(_, name)| name);
        if let Some(n) = input.slot_minutes {
            f.check("slot_minutes", schedule::slot_minutes(n));
        }
        let availability = input.availability.as_ref().and_then(|w| {
            let windows: Vec<schedule::Window> = w
                .items
                .iter()
                .map(|w| schedule::Window {
                    weekday: u8::try_from(w.weekday).unwrap_or(0),
                    start: w.start.clone(),
                    end: w.end.clone(),
                })
                .collect();
            f.take("availability", schedule::check_windows(&windows))
        });
        let exceptions = input.exceptions.as_ref().and_then(|x| {
            let items: Vec<schedule::Exception> = x
                .items
                .iter()
                .map(|x| schedule::Exception {
                    date: x.date.clone(),
                    start: x.start.clone(),
                    end: x.end.clone(),
                })
                .collect();
            f.take("exceptions", schedule::check_exceptions(&items))
        });
        f.finish()?;
        Ok(Change {
            name: input.name.clone(),
            bio: input.bio.clone(),
            user_id: input.user_id.clone(),
            timezone,
            slot_minutes: input.slot_minutes,
            availability,
            exceptions,
        })
    }

    /// `row` with this change applied by `who` at `now`: an admin, or the coach's own user
    /// (who may not change the link).
    fn apply(&self, who: &Who, row: &CoachRow, now: i64) -> Result<CoachRow, MeshError> {
        if !who.admin && !row.is_user(&who.user_id) {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only an admin or the coach's own user may change a coach",
            ));
        }
        let mut next = row.clone();
        if let Some(u) = &self.user_id {
            if *u != row.user_id && !who.admin {
                return Err(MeshError::new(
                    Code::PermissionDenied,
                    "only an admin may change which user a coach is",
                ));
            }
            next.user_id.clone_from(u);
        }
        if let Some(n) = &self.name {
            next.name.clone_from(n);
        }
        if let Some(b) = &self.bio {
            next.bio.clone_from(b);
        }
        if let Some(z) = &self.timezone {
            next.timezone.clone_from(z);
        }
        if let Some(s) = self.slot_minutes {
            next.slot_minutes = s;
        }
        if let Some(a) = &self.availability {
            next.availability.clone_from(a);
        }
        if let Some(x) = &self.exceptions {
            next.exceptions.clone_from(x);
        }
        next.updated_at = now.max(row.updated_at);
        next.schedule()?;
        Ok(next)
    }
}

/// The service.
pub struct Coaching {
    store: Store,
    publisher: Publisher,
    hosted: Arc<Hosted<CoachEntity>>,
}

impl Coaching {
    /// Starts the node's coach host and its hand-off watcher.
    pub async fn start(
        info: Arc<NodeInfo>,
        store: Store,
        publisher: Publisher,
        plan: Plan,
    ) -> anyhow::Result<Arc<Self>> {
        let entity = CoachEntity {
            store: store.clone(),
            publisher: publisher.clone(),
            bookings: entity::bookings(store.clone(), plan, publisher.clone()),
            plan,
        };
        let hosted = Hosted::start(info, entity, IDLE).await?;
        Ok(Arc::new(Self {
            store,
            publisher,
            hosted,
        }))
    }

    /// Runs `req` on coach `id`'s actor on this node.
    async fn entity(
        &self,
        deadline: Instant,
        id: &str,
        req: CoachReq,
    ) -> Result<Answer, MeshError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.hosted.request(id, req, Some(timeout)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e),
            Err(EntityError::NotFound) => Err(not_found()),
            Err(EntityError::Timeout) => Err(MeshError::deadline()),
            Err(EntityError::Unavailable(why)) => Err(MeshError::unavailable(why)),
        }
    }

    /// Refuses a `user_id` that names no registered user (400 on the field).
    async fn check_user(&self, change: &Change) -> Result<(), MeshError> {
        let Some(u) = change.user_id.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(());
        };
        if store::user_exists(&self.store, u).await? {
            return Ok(());
        }
        let mut f = Fields::new();
        f.check("user_id", Err("is not a registered user".into()));
        f.finish()
    }

    /// `create_coach` (admin).
    pub async fn create_coach(&self, who: &Who, input: &CoachInput) -> Result<Coach, MeshError> {
        if !who.admin {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only an admin may create a coach",
            ));
        }
        let c = Change::parse(input, true)?;
        self.check_user(&c).await?;
        let now = now_ms();
        let row = CoachRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: c.user_id.unwrap_or_default(),
            name: c.name.unwrap_or_default(),
            bio: c.bio.unwrap_or_default(),
            timezone: c.timezone.unwrap_or_else(|| "UTC".into()),
            slot_minutes: c.slot_minutes.unwrap_or(schedule::SLOT_DEFAULT),
            availability: c.availability.unwrap_or_default(),
            exceptions: c.exceptions.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        row.schedule()?;
        let mut out = Staged::new(Some(&self.publisher));
        publish_coach(&mut out, kinds::COACHING_COACH_CREATED, &who.user_id, &row)?;
        let mut tx = self.store.begin().await?;
        store::insert_coach(&mut tx, &row).await?;
        out.commit(tx).await?;
        Ok(row.to_coach())
    }

    async fn coach_row(&self, id: &str) -> Result<CoachRow, MeshError> {
        common::validate::id("id", id)?;
        store::coach(&self.store, id).await?.ok_or_else(not_found)
    }

    /// `get_coach`.
    pub async fn get_coach(&self, r: &Ref) -> Result<Coach, MeshError> {
        Ok(self.coach_row(&r.id).await?.to_coach())
    }

    /// `list_coaches`: every coach, by name.
    pub async fn list_coaches(&self, l: &ListPage) -> Result<CoachPage, MeshError> {
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) = store::coaches(&self.store, limit, offset).await?;
        Ok(CoachPage {
            items: rows.iter().map(CoachRow::to_coach).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `update_coach`: the fields given change (on the coach's actor).
    pub async fn update_coach(
        &self,
        deadline: Instant,
        who: &Who,
        input: &CoachInput,
    ) -> Result<Coach, MeshError> {
        common::validate::id("id", &input.id)?;
        let change = Change::parse(input, false)?;
        self.check_user(&change).await?;
        match self
            .entity(deadline, &input.id, CoachReq::Update(who.clone(), change))
            .await?
        {
            Answer::Coach(row) => Ok(row.to_coach()),
            Answer::Booking(_) => Err(MeshError::internal("coach actor answered a booking")),
        }
    }

    /// `availability`: the coach's slots that start in `[from, to)`, are still to come and
    /// overlap no live booking, soonest first.
    pub async fn availability(&self, q: &SlotQuery) -> Result<Slots, MeshError> {
        let now = now_ms();
        let mut f = Fields::new();
        id_field(&mut f, "coach_id", &q.coach_id);
        let from = match q.from.as_deref() {
            Some(s) => f.take("from", text::rfc3339(s)),
            None => Some(now),
        };
        let to = match (q.to.as_deref(), from) {
            (Some(s), _) => f.take("to", text::rfc3339(s)),
            (None, Some(from)) => Some(from.saturating_add(WINDOW_DEFAULT_DAYS * DAY_MS)),
            (None, None) => None,
        };
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                f.check("to", Err("must be after from".into()));
            } else if to - from > WINDOW_MAX_DAYS * DAY_MS {
                f.check(
                    "to",
                    Err(format!("must be at most {WINDOW_MAX_DAYS} days after from")),
                );
            }
        }
        f.finish()?;
        let (from, to) = (from.unwrap_or(now), to.unwrap_or(now));
        let coach = self.coach_row(&q.coach_id).await?;
        let schedule = coach.schedule()?;
        let booked =
            store::booked_between(&self.store, &coach.id, from, to + schedule.slot_ms()).await?;
        let slots = schedule
            .slots(from, to)
            .into_iter()
            .filter(|(start, _)| *start > now)
            .filter(|slot| !overlaps_any(*slot, &booked))
            .map(|(start, end)| Slot {
                start: rfc3339_millis(start),
                end: rfc3339_millis(end),
            })
            .collect();
        Ok(Slots { slots })
    }

    /// `book` (on the coach's actor): the caller books the slot that starts at `start`.
    pub async fn book(
        &self,
        deadline: Instant,
        who: &Who,
        input: &BookInput,
    ) -> Result<Booking, MeshError> {
        let mut f = Fields::new();
        id_field(&mut f, "coach_id", &input.coach_id);
        let start = if input.start.is_empty() {
            f.check("start", Err("is required".into()));
            None
        } else {
            f.take("start", text::rfc3339(&input.start))
        };
        f.finish()?;
        let start = start.unwrap_or_default();
        let key = crate::store::idempotency::current();
        match self
            .entity(
                deadline,
                &input.coach_id,
                CoachReq::Book(who.clone(), start, key),
            )
            .await?
        {
            Answer::Booking(written) => Ok(written.until(deadline).await?.to_booking()),
            Answer::Coach(_) => Err(MeshError::internal("coach actor answered a coach")),
        }
    }

    /// `list_bookings`: the caller's bookings as client and as a coach's user, soonest first.
    pub async fn list_bookings(&self, who: &Who, l: &ListPage) -> Result<BookingPage, MeshError> {
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) =
            store::bookings_of_user(&self.store, &who.user_id, limit, offset).await?;
        Ok(BookingPage {
            items: rows.iter().map(BookingRow::to_booking).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `cancel`: its client, the coach's user or an admin cancels a live booking; the slot
    /// is open again.
    pub async fn cancel(&self, who: &Who, r: &Ref) -> Result<Booking, MeshError> {
        common::validate::id("id", &r.id)?;
        let found = store::booking(&self.store, &r.id)
            .await?
            .ok_or_else(booking_not_found)?;
        let mut tx = self.store.begin().await?;
        let outcome = store::cancel(&mut tx, &found, now_ms(), |booking, coach| {
            if who.admin || booking.client_id == who.user_id || coach.is_user(&who.user_id) {
                Ok(())
            } else {
                Err(booking_not_found())
            }
        })
        .await?;
        match outcome {
            store::Cancelled::Missing => Err(booking_not_found()),
            store::Cancelled::Done(row) => {
                let mut out = Staged::new(Some(&self.publisher));
                publish_booking(
                    &mut out,
                    kinds::COACHING_BOOKING_CANCELLED,
                    &row,
                    Some(&who.user_id),
                )?;
                out.commit(tx).await?;
                Ok(row.to_booking())
            }
        }
    }

    /// The booking `id` if `who` is its client or its coach's user; `not_found` otherwise.
    async fn party_to(&self, who: &Who, id: &str) -> Result<BookingRow, MeshError> {
        common::validate::id("id", id)?;
        let booking = store::booking(&self.store, id)
            .await?
            .ok_or_else(booking_not_found)?;
        if booking.client_id == who.user_id {
            return Ok(booking);
        }
        match store::coach(&self.store, &booking.coach_id).await? {
            Some(coach) if coach.is_user(&who.user_id) => Ok(booking),
            _ => Err(booking_not_found()),
        }
    }

    /// `notes`: a booking's notes, oldest first (its client and the coach's user).
    pub async fn notes(&self, who: &Who, r: &Ref) -> Result<Notes, MeshError> {
        let booking = self.party_to(who, &r.id).await?;
        let rows = store::notes(&self.store, &booking.id).await?;
        Ok(Notes {
            items: rows.iter().map(NoteRow::to_note).collect(),
        })
    }

    /// `add_note`: the caller (the client or the coach's user) writes a note.
    pub async fn add_note(&self, who: &Who, input: &NoteInput) -> Result<Note, MeshError> {
        let booking = self.party_to(who, &input.booking_id).await?;
        let mut f = Fields::new();
        match input.text.as_deref() {
            None => f.check("text", Err("is required".into())),
            Some(t) if t.trim().is_empty() => f.check("text", Err("is required".into())),
            Some(t) => f.check("text", text::text(t, TEXT_MAX)),
        }
        f.finish()?;
        let row = NoteRow {
            id: uuid::Uuid::new_v4().to_string(),
            booking_id: booking.id.clone(),
            author_id: who.user_id.clone(),
            text: input.text.clone().unwrap_or_default(),
            created_at: now_ms(),
        };
        let payload = serde_json::json!({
            "booking_id": booking.id,
            "coach_id": booking.coach_id,
            "client_id": booking.client_id,
            "note_id": row.id,
        });
        let mut out = Staged::new(Some(&self.publisher));
        out.add(NewEvent::new(
            kinds::COACHING_NOTE_ADDED,
            Some(&who.user_id),
            payload,
        ))?;
        let mut tx = self.store.begin().await?;
        store::insert_note(&mut tx, &row).await?;
        out.commit(tx).await?;
        Ok(row.to_note())
    }
}

/// Whether `slot` overlaps one of `booked` (sorted by start, not overlapping each other, so
/// sorted by end too: only the last that starts before the slot ends can overlap it).
fn overlaps_any(slot: schedule::Slot, booked: &[(i64, i64)]) -> bool {
    let (start, end) = slot;
    let before_end = booked.partition_point(|(s, _)| *s < end);
    before_end > 0 && booked[before_end - 1].1 > start
}

/// An unknown coach.
pub(crate) fn not_found() -> MeshError {
    MeshError::not_found("coach not found")
}

/// An unknown booking, or one the caller may not see.
pub(crate) fn booking_not_found() -> MeshError {
    MeshError::not_found("booking not found")
}

/// Stages a change to coach `row` by `user` in `out`.
pub(crate) fn publish_coach(
    out: &mut Staged,
    kind: &str,
    user: &str,
    row: &CoachRow,
) -> Result<(), MeshError> {
    let payload = serde_json::json!({
        "coach_id": row.id,
        "name": row.name,
        "user_id": row.user_id,
        "timezone": row.timezone,
    });
    out.add(NewEvent::new(kind, Some(user), payload))?;
    Ok(())
}

/// Stages a change to booking `row`, about its client, in `out`; `by` is who
/// cancelled it. The `slot` field (`<coach id>@<start>`) names what the booking is of, so a
/// consumer can tell a slot booked again from a new one.
pub(crate) fn publish_booking(
    out: &mut Staged,
    kind: &str,
    row: &BookingRow,
    by: Option<&str>,
) -> Result<(), MeshError> {
    let start = rfc3339_millis(row.start_at);
    let mut payload = serde_json::json!({
        "booking_id": row.id,
        "coach_id": row.coach_id,
        "client_id": row.client_id,
        "start": start,
        "end": rfc3339_millis(row.end_at),
        "slot": format!("{}@{start}", row.coach_id),
    });
    if let Some(by) = by {
        payload["cancelled_by"] = serde_json::Value::String(by.to_string());
    }
    out.add(NewEvent::new(kind, Some(&row.client_id), payload))?;
    Ok(())
}

impl Service for Coaching {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A booking's worker waits on the booking writer's transaction: a batch holds as many
    /// bookings as there are workers waiting on it.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::batching_pool(default)
    }

    /// A booking waits for the node's booking writer ([`entity::bookings`]).
    fn waits_on_batch(&self, op: &str) -> bool {
        op == ops::BOOK.name
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let who = Who::of(req.caller.as_ref())?;
            let deadline = req.deadline;
            match Cmd::parse(&req)? {
                Cmd::CreateCoach(c) => ops::CREATE_COACH.reply(self.create_coach(&who, &c).await),
                Cmd::GetCoach(r) => ops::GET_COACH.reply(self.get_coach(&r).await),
                Cmd::ListCoaches(l) => ops::LIST_COACHES.reply(self.list_coaches(&l).await),
                Cmd::UpdateCoach(u) => {
                    ops::UPDATE_COACH.reply(self.update_coach(deadline, &who, &u).await)
                }
                Cmd::Availability(q) => ops::AVAILABILITY.reply(self.availability(&q).await),
                Cmd::Book(b) => ops::BOOK.reply(self.book(deadline, &who, &b).await),
                Cmd::ListBookings(l) => {
                    ops::LIST_BOOKINGS.reply(self.list_bookings(&who, &l).await)
                }
                Cmd::Cancel(r) => ops::CANCEL.reply(self.cancel(&who, &r).await),
                Cmd::Notes(r) => ops::NOTES.reply(self.notes(&who, &r).await),
                Cmd::AddNote(n) => ops::ADD_NOTE.reply(self.add_note(&who, &n).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
