//! All SQL of the `coaching` service: tables `coaches`, `coaching_bookings` and
//! `coaching_notes` (see `actors/migrations/0010_coaching.sql`).
//!
//! One slot is never booked twice, whatever runs above: making a booking ([`book`]) and
//! cancelling one ([`cancel`]) are each one transaction that first *locks the coach's row*
//! (a no-op `UPDATE` of it, which holds PostgreSQL's row lock, or SQLite's write lock,
//! until commit), then checks and writes. And the partial unique index
//! `coaching_bookings_slot_idx` (one live booking per coach and start) refuses a second
//! booking even from a writer that skipped every check: its violation is answered as the
//! slot being taken. A failure rolls the whole transaction back: nothing is half-written.
//! Later work that must happen with a booking (e.g. a reminder row) goes inside [`book`]
//! and [`cancel`], in the same transaction.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row as _, Transaction};

use super::messages::{Booking, Coach, Exception, Note, Window};
use super::schedule;
use crate::mesh::{Code, MeshError};
use crate::reminders::store as timers;
use crate::reminders::Plan;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// Status of a live booking.
pub const BOOKED: &str = "booked";
/// Status of a cancelled booking.
pub const CANCELLED: &str = "cancelled";

/// One row of `coaches`, its schedule parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoachRow {
    /// Id (a UUID).
    pub id: String,
    /// The linked user; empty: none.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Biography.
    pub bio: String,
    /// IANA time zone name.
    pub timezone: String,
    /// Slot length in minutes.
    pub slot_minutes: i64,
    /// Weekly windows, canonical and sorted.
    pub availability: Vec<schedule::Window>,
    /// Exceptions, canonical and sorted.
    pub exceptions: Vec<schedule::Exception>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const COACH_COLUMNS: &str = "id, user_id, name, bio, timezone, slot_minutes, availability, \
     exceptions, created_at, updated_at";

fn json_column<T: serde::de::DeserializeOwned>(r: &AnyRow, column: &str) -> Result<T, MeshError> {
    let text: String = r.try_get(column).map_err(db_error)?;
    serde_json::from_str(&text).map_err(|e| {
        tracing::error!(column, error = %e, "stored coach schedule does not parse");
        MeshError::internal("stored coach schedule does not parse")
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a schedule always serializes")
}

impl CoachRow {
    fn from_row(r: &AnyRow) -> Result<Self, MeshError> {
        Ok(Self {
            id: r.try_get("id").map_err(db_error)?,
            user_id: r.try_get("user_id").map_err(db_error)?,
            name: r.try_get("name").map_err(db_error)?,
            bio: r.try_get("bio").map_err(db_error)?,
            timezone: r.try_get("timezone").map_err(db_error)?,
            slot_minutes: r.try_get("slot_minutes").map_err(db_error)?,
            availability: json_column(r, "availability")?,
            exceptions: json_column(r, "exceptions")?,
            created_at: r.try_get("created_at").map_err(db_error)?,
            updated_at: r.try_get("updated_at").map_err(db_error)?,
        })
    }

    /// The schedule, ready to compute slots.
    pub fn schedule(&self) -> Result<schedule::Schedule, MeshError> {
        schedule::Schedule::new(
            &self.timezone,
            self.slot_minutes,
            &self.availability,
            &self.exceptions,
        )
        .map_err(|e| {
            tracing::error!(coach = %self.id, error = %e, "stored coach schedule is invalid");
            MeshError::internal("stored coach schedule is invalid")
        })
    }

    /// Whether `user` is this coach's linked user.
    pub fn is_user(&self, user: &str) -> bool {
        !self.user_id.is_empty() && self.user_id == user
    }

    /// The client view.
    pub fn to_coach(&self) -> Coach {
        Coach {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            bio: self.bio.clone(),
            timezone: self.timezone.clone(),
            slot_minutes: u32::try_from(self.slot_minutes).unwrap_or_default(),
            availability: self
                .availability
                .iter()
                .map(|w| Window {
                    weekday: i64::from(w.weekday),
                    start: w.start.clone(),
                    end: w.end.clone(),
                })
                .collect(),
            exceptions: self
                .exceptions
                .iter()
                .map(|x| Exception {
                    date: x.date.clone(),
                    start: x.start.clone(),
                    end: x.end.clone(),
                })
                .collect(),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
        }
    }
}

/// One row of `coaching_bookings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingRow {
    /// Id (a UUID).
    pub id: String,
    /// The coach.
    pub coach_id: String,
    /// The user who booked.
    pub client_id: String,
    /// Unix ms.
    pub start_at: i64,
    /// Unix ms.
    pub end_at: i64,
    /// [`BOOKED`] or [`CANCELLED`].
    pub status: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; 0 while booked.
    pub cancelled_at: i64,
}

const BOOKING_COLUMNS: &str =
    "id, coach_id, client_id, start_at, end_at, status, created_at, cancelled_at";

impl BookingRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            coach_id: r.try_get("coach_id")?,
            client_id: r.try_get("client_id")?,
            start_at: r.try_get("start_at")?,
            end_at: r.try_get("end_at")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            cancelled_at: r.try_get("cancelled_at")?,
        })
    }

    /// The client view.
    pub fn to_booking(&self) -> Booking {
        Booking {
            id: self.id.clone(),
            coach_id: self.coach_id.clone(),
            client_id: self.client_id.clone(),
            start: rfc3339_millis(self.start_at),
            end: rfc3339_millis(self.end_at),
            status: self.status.clone(),
            created_at: rfc3339_millis(self.created_at),
        }
    }
}

/// One row of `coaching_notes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteRow {
    /// Id (a UUID).
    pub id: String,
    /// The booking.
    pub booking_id: String,
    /// The writer.
    pub author_id: String,
    /// The text.
    pub text: String,
    /// Unix ms.
    pub created_at: i64,
}

impl NoteRow {
    /// The client view.
    pub fn to_note(&self) -> Note {
        Note {
            id: self.id.clone(),
            booking_id: self.booking_id.clone(),
            author_id: self.author_id.clone(),
            text: self.text.clone(),
            created_at: rfc3339_millis(self.created_at),
        }
    }
}

/// Inserts a new coach on `conn`.
pub async fn insert_coach(conn: &mut AnyConnection, c: &CoachRow) -> Result<(), MeshError> {
    sqlx::query(&format!(
        "INSERT INTO coaches ({COACH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&c.id)
    .bind(&c.user_id)
    .bind(&c.name)
    .bind(&c.bio)
    .bind(&c.timezone)
    .bind(c.slot_minutes)
    .bind(to_json(&c.availability))
    .bind(to_json(&c.exceptions))
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// One coach.
pub async fn coach(store: &Store, id: &str) -> Result<Option<CoachRow>, MeshError> {
    let row = sqlx::query(&format!(
        "SELECT {COACH_COLUMNS} FROM coaches WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.as_ref().map(CoachRow::from_row).transpose()
}

/// A page of every coach, by name, and how many there are.
pub async fn coaches(
    store: &Store,
    limit: i64,
    offset: i64,
) -> Result<(Vec<CoachRow>, i64), MeshError> {
    let rows = sqlx::query(&format!(
        "SELECT {COACH_COLUMNS} FROM coaches ORDER BY name, id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM coaches")
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(CoachRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((rows, total))
}

/// Whether a user with id `id` is registered (the `users` table of the identity services).
pub async fn user_exists(store: &Store, id: &str) -> Result<bool, MeshError> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?
        .is_some())
}

/// Locks coach `id` for the rest of `tx` and reads it; `None` when there is no such coach.
async fn lock(tx: &mut Transaction<'_, Any>, id: &str) -> Result<Option<CoachRow>, MeshError> {
    let done = sqlx::query("UPDATE coaches SET version = version WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {COACH_COLUMNS} FROM coaches WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    CoachRow::from_row(&row).map(Some)
}

/// Applies `change` to the coach as locked (rights and field checks happen in `change`,
/// against the current row); `None` when there is no such coach.
pub async fn update_coach(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    change: impl FnOnce(&CoachRow) -> Result<CoachRow, MeshError>,
) -> Result<Option<CoachRow>, MeshError> {
    let Some(row) = lock(tx, id).await? else {
        return Ok(None);
    };
    let next = change(&row)?;
    sqlx::query(
        "UPDATE coaches SET user_id = $2, name = $3, bio = $4, timezone = $5, \
         slot_minutes = $6, availability = $7, exceptions = $8, updated_at = $9, \
         version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(&next.user_id)
    .bind(&next.name)
    .bind(&next.bio)
    .bind(&next.timezone)
    .bind(next.slot_minutes)
    .bind(to_json(&next.availability))
    .bind(to_json(&next.exceptions))
    .bind(next.updated_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(Some(next))
}

/// The live bookings of `coach_id` that overlap `[from, to)`, soonest first, as `(start,
/// end)`. Live bookings of one coach never overlap each other.
pub async fn booked_between(
    store: &Store,
    coach_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, MeshError> {
    let rows = sqlx::query(
        "SELECT start_at, end_at FROM coaching_bookings \
         WHERE coach_id = $1 AND status = 'booked' AND start_at < $3 AND end_at > $2 \
         ORDER BY start_at",
    )
    .bind(coach_id)
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// The error of a slot that is taken.
pub fn taken() -> MeshError {
    MeshError::new(Code::AlreadyExists, "slot already booked")
}

/// What [`book`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Booked {
    /// No such coach.
    Missing,
    /// A live booking overlaps the slot: nothing changed.
    Taken,
    /// The new booking.
    Done(BookingRow),
}

/// Books for `client_id` the slot of `coach_id` that `slot` finds in the coach as locked
/// (it answers the slot's `(start, end)` or refuses), unless a live booking overlaps it.
/// In the caller's transaction `tx`; the unique index answers [`Booked::Taken`] too.
pub async fn book(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    coach_id: &str,
    client_id: &str,
    now: i64,
    slot: impl FnOnce(&CoachRow) -> Result<(i64, i64), MeshError>,
) -> Result<Booked, MeshError> {
    let mut slot = Some(slot);
    let found = book_all(tx, plan, coach_id, &[(client_id, 0)], now, |coach, _| {
        slot.take().map_or_else(
            || Err(MeshError::internal("one slot asked for twice")),
            |f| f(coach),
        )
    })
    .await?;
    match found.and_then(|mut answers| answers.pop()) {
        None => Ok(Booked::Missing),
        Some(answer) => answer,
    }
}

/// Rows in one multi-row booking insert (8 parameters each).
const BOOKINGS_PER_INSERT: usize = 256;

/// [`book`] for several asks of one coach, `(client, start)`, in their order and in the
/// caller's transaction: the coach's row is locked and read once, the live bookings
/// around the asks are read in one query, each ask gets the slot `slot` finds for its
/// start (or its refusal) unless a live booking or an earlier ask overlaps it, and the new
/// bookings are inserted, with their reminders, a few statements in all. Answers per ask,
/// in order, [`Booked::Done`], [`Booked::Taken`] or the slot's refusal; `None` when there
/// is no such coach.
pub async fn book_all(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    coach_id: &str,
    asks: &[(&str, i64)],
    now: i64,
    mut slot: impl FnMut(&CoachRow, i64) -> Result<(i64, i64), MeshError>,
) -> Result<Option<Vec<Result<Booked, MeshError>>>, MeshError> {
    let Some(coach) = lock(tx, coach_id).await? else {
        return Ok(None);
    };
    let slots: Vec<Result<(i64, i64), MeshError>> =
        asks.iter().map(|(_, start)| slot(&coach, *start)).collect();
    let wanted = slots.iter().flatten();
    let (from, to) = (
        wanted.clone().map(|s| s.0).min().unwrap_or_default(),
        wanted.map(|s| s.1).max().unwrap_or_default(),
    );
    // The live bookings the asks could overlap, then each new one as it is granted.
    let mut taken = if from < to {
        sqlx::query(
            "SELECT start_at, end_at FROM coaching_bookings \
             WHERE coach_id = $1 AND status = 'booked' AND start_at < $3 AND end_at > $2",
        )
        .bind(coach_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(i64, i64)>, sqlx::Error>>()
        .map_err(db_error)?
    } else {
        Vec::new()
    };
    let mut answers = Vec::with_capacity(asks.len());
    let mut new = Vec::new();
    for ((client_id, _), slot) in asks.iter().zip(slots) {
        let (start, end) = match slot {
            Ok(s) => s,
            Err(e) => {
                answers.push(Err(e));
                continue;
            }
        };
        if taken.iter().any(|(s, e)| *s < end && *e > start) {
            answers.push(Ok(Booked::Taken));
            continue;
        }
        taken.push((start, end));
        let row = BookingRow {
            id: uuid::Uuid::new_v4().to_string(),
            coach_id: coach_id.to_string(),
            client_id: client_id.to_string(),
            start_at: start,
            end_at: end,
            status: BOOKED.to_string(),
            created_at: now,
            cancelled_at: 0,
        };
        new.push(row.clone());
        answers.push(Ok(Booked::Done(row)));
    }
    if let Err(e) = insert_bookings(tx, &new).await {
        // Another activation's booking of the one slot asked for (the lock makes it
        // rare): taken. With several, the caller's batch is written again ask by ask.
        return match e.code {
            Code::AlreadyExists if asks.len() == 1 => Ok(Some(vec![Ok(Booked::Taken)])),
            _ => Err(e),
        };
    }
    let due: Vec<timers::Due> = new
        .iter()
        .filter_map(|b| reminder(plan, &coach, b, now))
        .collect();
    if !due.is_empty() {
        timers::schedule_all(tx, &due, now).await?;
    }
    Ok(Some(answers))
}

/// The reminders subject of a booking.
pub fn subject(booking_id: &str) -> String {
    format!("booking:{booking_id}")
}

/// The client's reminder of booking `b` with `coach`, `plan`'s lead before it starts.
pub fn reminder(plan: &Plan, coach: &CoachRow, b: &BookingRow, now: i64) -> Option<timers::Due> {
    let payload = serde_json::json!({
        "about": "booking",
        "booking_id": b.id,
        "coach_id": b.coach_id,
        "title": format!("Coaching session with {}", coach.name),
        "start": rfc3339_millis(b.start_at),
        "end": rfc3339_millis(b.end_at),
    });
    Plan::before(
        plan.booking_before_ms,
        &subject(&b.id),
        &b.client_id,
        b.start_at,
        payload,
        now,
    )
}

/// Inserts `rows`; a second live booking of a coach and start is a unique violation
/// (`already_exists`).
pub(crate) async fn insert_bookings(
    tx: &mut Transaction<'_, Any>,
    rows: &[BookingRow],
) -> Result<(), MeshError> {
    for chunk in rows.chunks(BOOKINGS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO coaching_bookings ({BOOKING_COLUMNS}) VALUES {}",
            crate::store::values(chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for b in chunk {
            q = q
                .bind(&b.id)
                .bind(&b.coach_id)
                .bind(&b.client_id)
                .bind(b.start_at)
                .bind(b.end_at)
                .bind(&b.status)
                .bind(b.created_at)
                .bind(b.cancelled_at);
        }
        q.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// One booking.
pub async fn booking(store: &Store, id: &str) -> Result<Option<BookingRow>, MeshError> {
    let row = sqlx::query(&format!(
        "SELECT {BOOKING_COLUMNS} FROM coaching_bookings WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.as_ref()
        .map(BookingRow::from_row)
        .transpose()
        .map_err(db_error)
}

/// Every booking of coach `coach_id` (tests and checks).
pub async fn bookings_of_coach(
    store: &Store,
    coach_id: &str,
) -> Result<Vec<BookingRow>, MeshError> {
    let rows = sqlx::query(&format!(
        "SELECT {BOOKING_COLUMNS} FROM coaching_bookings WHERE coach_id = $1 \
         ORDER BY start_at, created_at"
    ))
    .bind(coach_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(BookingRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// A page of `user`'s bookings, as client or as the linked user of their coach, soonest
/// first, and how many there are.
pub async fn bookings_of_user(
    store: &Store,
    user: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<BookingRow>, i64), MeshError> {
    let filter = "client_id = $1 OR coach_id IN \
                  (SELECT id FROM coaches WHERE user_id = $1 AND user_id <> '')";
    let rows = sqlx::query(&format!(
        "SELECT {BOOKING_COLUMNS} FROM coaching_bookings WHERE {filter} \
         ORDER BY start_at, id LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) FROM coaching_bookings WHERE {filter}"
    ))
    .bind(user)
    .fetch_one(store.pool())
    .await
    .map_err(db_error)?
    .try_get(0)
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(BookingRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((rows, total))
}

/// What [`cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// No such booking (or its coach is gone).
    Missing,
    /// The booking, now cancelled.
    Done(BookingRow),
}

/// Cancels booking `found` (as read before `tx` began) at `now`, if `allowed` by the
/// booking and its coach as locked (it refuses with the caller's error); a booking
/// cancelled already is `failed_precondition`. Like every change here, it runs in the
/// caller's transaction `tx`, which the caller commits with the events that report it.
pub async fn cancel(
    tx: &mut Transaction<'_, Any>,
    found: &BookingRow,
    now: i64,
    allowed: impl FnOnce(&BookingRow, &CoachRow) -> Result<(), MeshError>,
) -> Result<Cancelled, MeshError> {
    let id = found.id.as_str();
    let Some(coach) = lock(tx, &found.coach_id).await? else {
        return Ok(Cancelled::Missing);
    };
    let row = sqlx::query(&format!(
        "SELECT {BOOKING_COLUMNS} FROM coaching_bookings WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    let mut row = BookingRow::from_row(&row).map_err(db_error)?;
    allowed(&row, &coach)?;
    if row.status != BOOKED {
        return Err(MeshError::new(
            Code::FailedPrecondition,
            "booking is already cancelled",
        ));
    }
    sqlx::query(
        "UPDATE coaching_bookings SET status = 'cancelled', cancelled_at = $2 \
         WHERE id = $1 AND status = 'booked'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    timers::drop_for(tx, &subject(id), None).await?;
    row.status = CANCELLED.to_string();
    row.cancelled_at = now;
    Ok(Cancelled::Done(row))
}

/// Inserts a note on `conn`, numbered after the booking's notes so far (one statement).
pub async fn insert_note(conn: &mut AnyConnection, n: &NoteRow) -> Result<(), MeshError> {
    sqlx::query(
        "INSERT INTO coaching_notes (id, booking_id, author_id, text, created_at, seq) \
         SELECT $1, $2, $3, $4, $5, COALESCE(MAX(seq), 0) + 1 FROM coaching_notes \
         WHERE booking_id = $2",
    )
    .bind(&n.id)
    .bind(&n.booking_id)
    .bind(&n.author_id)
    .bind(&n.text)
    .bind(n.created_at)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A booking's notes in the order they were written.
pub async fn notes(store: &Store, booking_id: &str) -> Result<Vec<NoteRow>, MeshError> {
    let rows = sqlx::query(
        "SELECT id, booking_id, author_id, text, created_at FROM coaching_notes \
         WHERE booking_id = $1 ORDER BY seq, created_at, id",
    )
    .bind(booking_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(NoteRow {
                id: r.try_get("id")?,
                booking_id: r.try_get("booking_id")?,
                author_id: r.try_get("author_id")?,
                text: r.try_get("text")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}
