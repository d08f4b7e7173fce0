//! All SQL of the `events` service: tables `gatherings` and `gathering_registrations` (see
//! `actors/migrations/0008_events.sql`).
//!
//! Capacity is guarded here, whatever runs above: every change to an event's registrations
//! is one transaction that first *locks the event row* (a no-op `UPDATE` of it, which
//! holds PostgreSQL's row lock, or SQLite's write lock, until commit), then reads the seats
//! taken and writes. Two activations of one event on two nodes therefore still take turns,
//! and a failure rolls everything back: nothing is half-written.
//!
//! A seat's durable timers (`crate::reminders`) are written in the same transactions: the
//! reminder before the event starts and the attendance at its end are scheduled when a
//! user takes a seat (registering, or promoted from the waitlist), moved when the event's
//! times or text change, and dropped with the registration or the event.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row as _, Transaction};

use super::messages::{Event, Registration};
use crate::events::kinds;
use crate::mesh::MeshError;
use crate::reminders::store::{self as timers, Due};
use crate::reminders::Plan;
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, values, Store};

/// Status of a registration holding a seat.
pub const REGISTERED: &str = "registered";
/// Status of a registration waiting for a seat.
pub const WAITLISTED: &str = "waitlisted";

/// One row of `gatherings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Id (a UUID).
    pub id: String,
    /// The organiser.
    pub organiser_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Location.
    pub location: String,
    /// Unix ms.
    pub start_at: i64,
    /// Unix ms.
    pub end_at: i64,
    /// IANA time zone name.
    pub timezone: String,
    /// Seats.
    pub capacity: i64,
    /// Seats taken.
    pub registered: i64,
    /// Registrations waiting.
    pub waitlisted: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, organiser_id, title, description, location, start_at, end_at, \
     timezone, capacity, registered, waitlisted, created_at, updated_at";

/// The start of a select of events. `waitlisted` is a column kept with the rows (as
/// `registered` is), not counted here: counting made every registration scan the waitlist.
fn select() -> String {
    format!("SELECT {COLUMNS} FROM gatherings")
}

impl EventRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            organiser_id: r.try_get("organiser_id")?,
            title: r.try_get("title")?,
            description: r.try_get("description")?,
            location: r.try_get("location")?,
            start_at: r.try_get("start_at")?,
            end_at: r.try_get("end_at")?,
            timezone: r.try_get("timezone")?,
            capacity: r.try_get("capacity")?,
            registered: r.try_get("registered")?,
            waitlisted: r.try_get("waitlisted")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// The client view.
    pub fn to_event(&self) -> Event {
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Event {
            id: self.id.clone(),
            organiser_id: self.organiser_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            location: self.location.clone(),
            start: rfc3339_millis(self.start_at),
            end: rfc3339_millis(self.end_at),
            timezone: self.timezone.clone(),
            capacity: count(self.capacity),
            registered: count(self.registered),
            waitlisted: count(self.waitlisted),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
        }
    }
}

/// One row of `gathering_registrations`, with its waitlist position (0: holds a seat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegRow {
    /// Event id.
    pub event_id: String,
    /// User id.
    pub user_id: String,
    /// [`REGISTERED`] or [`WAITLISTED`].
    pub status: String,
    /// Acceptance order within the event.
    pub seq: i64,
    /// Place on the waitlist from 1 (0: registered).
    pub position: i64,
    /// Unix ms.
    pub created_at: i64,
}

impl RegRow {
    /// The client view.
    pub fn to_registration(&self) -> Registration {
        Registration {
            event_id: self.event_id.clone(),
            user_id: self.user_id.clone(),
            status: self.status.clone(),
            position: u64::try_from(self.position).unwrap_or_default(),
            created_at: rfc3339_millis(self.created_at),
        }
    }
}

/// Inserts a new event on `conn`.
pub async fn insert(conn: &mut AnyConnection, e: &EventRow) -> Result<(), MeshError> {
    sqlx::query(&format!(
        "INSERT INTO gatherings ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&e.id)
    .bind(&e.organiser_id)
    .bind(&e.title)
    .bind(&e.description)
    .bind(&e.location)
    .bind(e.start_at)
    .bind(e.end_at)
    .bind(&e.timezone)
    .bind(e.capacity)
    .bind(e.registered)
    .bind(e.waitlisted)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// One event.
pub async fn get(store: &Store, id: &str) -> Result<Option<EventRow>, MeshError> {
    let row = sqlx::query(&format!("{} WHERE id = $1", select()))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    event_of(row.as_ref())
}

/// The event a query's optional row holds.
fn event_of(row: Option<&AnyRow>) -> Result<Option<EventRow>, MeshError> {
    row.map(EventRow::from_row).transpose().map_err(db_error)
}

/// A page of every event, soonest first, and how many there are.
pub async fn list(
    store: &Store,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EventRow>, i64), MeshError> {
    let rows = sqlx::query(&format!(
        "{} ORDER BY start_at, id LIMIT $1 OFFSET $2",
        select()
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM gatherings")
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(EventRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    Ok((rows, total))
}

/// The events `user` holds a seat at, soonest first.
pub async fn registered_events(store: &Store, user: &str) -> Result<Vec<EventRow>, MeshError> {
    let rows = sqlx::query(&format!(
        "{} WHERE id IN (SELECT event_id FROM gathering_registrations \
         WHERE user_id = $1 AND status = '{REGISTERED}') ORDER BY start_at, id",
        select()
    ))
    .bind(user)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(EventRow::from_row)
        .collect::<Result<_, _>>()
        .map_err(db_error)
}

/// Every registration of an event: seats in acceptance order, then the waitlist in order.
pub async fn registrations(store: &Store, event_id: &str) -> Result<Vec<RegRow>, MeshError> {
    let rows = sqlx::query(
        "SELECT event_id, user_id, status, seq, created_at FROM gathering_registrations \
         WHERE event_id = $1 ORDER BY CASE WHEN status = 'registered' THEN 0 ELSE 1 END, seq",
    )
    .bind(event_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let mut out = Vec::with_capacity(rows.len());
    let mut waiting = 0;
    for r in &rows {
        let mut reg = reg_from_row(r).map_err(db_error)?;
        if reg.status == WAITLISTED {
            waiting += 1;
            reg.position = waiting;
        }
        out.push(reg);
    }
    Ok(out)
}

fn reg_from_row(r: &AnyRow) -> Result<RegRow, sqlx::Error> {
    Ok(RegRow {
        event_id: r.try_get("event_id")?,
        user_id: r.try_get("user_id")?,
        status: r.try_get("status")?,
        seq: r.try_get("seq")?,
        position: 0,
        created_at: r.try_get("created_at")?,
    })
}

/// Locks event `id` for the rest of `tx` and reads it, in one statement; `None` when there
/// is no such event.
async fn lock(tx: &mut Transaction<'_, Any>, id: &str) -> Result<Option<EventRow>, MeshError> {
    let row = sqlx::query(&format!(
        "UPDATE gatherings SET registered = registered WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    event_of(row.as_ref())
}

/// `user`'s registration for `event_id` as `tx` sees it, with its waitlist position.
async fn registration_of(
    tx: &mut Transaction<'_, Any>,
    event_id: &str,
    user: &str,
) -> Result<Option<RegRow>, MeshError> {
    let row = sqlx::query(
        "SELECT event_id, user_id, status, seq, created_at FROM gathering_registrations \
         WHERE event_id = $1 AND user_id = $2",
    )
    .bind(event_id)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    let mut reg = reg_from_row(&row).map_err(db_error)?;
    if reg.status == WAITLISTED {
        let ahead: i64 = sqlx::query(
            "SELECT COUNT(*) FROM gathering_registrations \
             WHERE event_id = $1 AND status = 'waitlisted' AND seq < $2",
        )
        .bind(event_id)
        .bind(reg.seq)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
        reg.position = ahead + 1;
    }
    Ok(Some(reg))
}

/// The reminders subject of an event.
pub fn subject(event_id: &str) -> String {
    format!("event:{event_id}")
}

/// The durable timers of `user`'s seat at `e`, as of `now`: the reminder `plan` asks for
/// before it starts (none once it has started) and the attendance at its end (none once
/// it has ended).
pub fn seat_timers(plan: &Plan, e: &EventRow, user: &str, now: i64) -> Vec<Due> {
    let subject = subject(&e.id);
    let about = serde_json::json!({
        "about": "event",
        "event_id": e.id,
        "title": e.title,
        "location": e.location,
        "start": rfc3339_millis(e.start_at),
        "end": rfc3339_millis(e.end_at),
    });
    let mut timers: Vec<Due> = Plan::before(
        plan.event_before_ms,
        &subject,
        user,
        e.start_at,
        about.clone(),
        now,
    )
    .into_iter()
    .collect();
    if e.end_at > now {
        timers.push(Due {
            subject,
            user_id: user.to_string(),
            kind: kinds::EVENT_ATTENDED,
            due_at: e.end_at,
            expires_at: None,
            payload: about,
        });
    }
    timers
}

/// Schedules the timers of `user`'s seat at `e` inside `tx`.
async fn schedule_seat(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    e: &EventRow,
    user: &str,
    now: i64,
) -> Result<(), MeshError> {
    for due in seat_timers(plan, e, user, now) {
        timers::schedule(tx, &due, now).await?;
    }
    Ok(())
}

/// What [`register`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A new registration (seat or waitlist).
    New(RegRow),
    /// The user was registered or waitlisted already: nothing changed.
    Already(RegRow),
}

/// Registers `user` for `event_id`: a seat while seats are free, else the end of the
/// waitlist. `None` when there is no such event. Like every change here, it runs in the
/// caller's transaction `tx`, which the caller commits with the events that report it.
pub async fn register(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    event_id: &str,
    user: &str,
    now: i64,
) -> Result<Option<Registered>, MeshError> {
    Ok(register_all(tx, plan, event_id, &[user], now)
        .await?
        .and_then(|mut r| r.pop()))
}

/// [`register`] for several users of one event, in the order given, with a few statements
/// in all: the event is locked once, the new registrations are one insert, the counters
/// one update, the seats' timers one upsert. A user given twice is registered once (the
/// second answer is [`Registered::Already`]). `None` when there is no such event.
pub async fn register_all(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    event_id: &str,
    users: &[&str],
    now: i64,
) -> Result<Option<Vec<Registered>>, MeshError> {
    let Some(event) = lock(tx, event_id).await? else {
        return Ok(None);
    };
    let mut held: HashSet<String> = HashSet::new();
    for chunk in users.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "SELECT user_id FROM gathering_registrations WHERE event_id = $1 AND user_id IN ({})",
            crate::store::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(event_id);
        for u in chunk {
            q = q.bind(*u);
        }
        held.extend(q.fetch_all(&mut **tx).await.map_err(db_error)?);
    }
    let mut seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM gathering_registrations WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    let (mut registered, mut waitlisted) = (event.registered, event.waitlisted);
    // Per user, the new registration (`None`: held already).
    let mut made: Vec<Option<RegRow>> = Vec::with_capacity(users.len());
    for user in users {
        if !held.insert(user.to_string()) {
            made.push(None);
            continue;
        }
        seq += 1;
        let (status, position) = if registered < event.capacity {
            registered += 1;
            (REGISTERED, 0)
        } else {
            waitlisted += 1;
            (WAITLISTED, waitlisted)
        };
        made.push(Some(RegRow {
            event_id: event_id.to_string(),
            user_id: user.to_string(),
            status: status.to_string(),
            seq,
            position,
            created_at: now,
        }));
    }
    let new: Vec<&RegRow> = made.iter().flatten().collect();
    if !new.is_empty() {
        for chunk in new.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO gathering_registrations (event_id, user_id, status, seq, created_at) \
                 VALUES {}",
                values(chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.event_id)
                    .bind(&r.user_id)
                    .bind(&r.status)
                    .bind(r.seq)
                    .bind(r.created_at);
            }
            q.execute(&mut **tx).await.map_err(db_error)?;
        }
        sqlx::query("UPDATE gatherings SET registered = $2, waitlisted = $3 WHERE id = $1")
            .bind(event_id)
            .bind(registered)
            .bind(waitlisted)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        let seats: Vec<Due> = new
            .iter()
            .filter(|r| r.status == REGISTERED)
            .flat_map(|r| seat_timers(plan, &event, &r.user_id, now))
            .collect();
        timers::schedule_all(tx, &seats, now).await?;
    }
    let mut answers = Vec::with_capacity(users.len());
    for (user, row) in users.iter().zip(made) {
        answers.push(match row {
            Some(row) => Registered::New(row),
            None => Registered::Already(registration_of(tx, event_id, user).await?.ok_or_else(
                || MeshError::internal("a registration conflicted but is not there"),
            )?),
        });
    }
    Ok(Some(answers))
}

/// Rows in one multi-row statement.
const ROWS_PER_INSERT: usize = 256;

/// Moves the first `n` of the waitlist of `event` onto seats, in order, with their
/// timers; answers who moved.
async fn promote(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    event: &EventRow,
    n: i64,
    now: i64,
) -> Result<Vec<String>, MeshError> {
    let event_id = event.id.as_str();
    if n <= 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT user_id FROM gathering_registrations \
         WHERE event_id = $1 AND status = 'waitlisted' ORDER BY seq LIMIT $2",
    )
    .bind(event_id)
    .bind(n)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    let mut moved = Vec::with_capacity(rows.len());
    for r in &rows {
        let user: String = r.try_get(0).map_err(db_error)?;
        sqlx::query(
            "UPDATE gathering_registrations SET status = 'registered' \
             WHERE event_id = $1 AND user_id = $2",
        )
        .bind(event_id)
        .bind(&user)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        schedule_seat(tx, plan, event, &user, now).await?;
        moved.push(user);
    }
    sqlx::query(
        "UPDATE gatherings SET registered = registered + $2, waitlisted = waitlisted - $3 \
         WHERE id = $1",
    )
    .bind(event_id)
    .bind(moved.len() as i64)
    .bind(moved.len() as i64)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(moved)
}

/// What [`cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    /// The registration as it was.
    pub was: RegRow,
    /// Who took the freed seat, if anyone.
    pub promoted: Option<String>,
}

/// Cancels `user`'s registration; a freed seat goes to the first of the waitlist. The outer
/// `None`: no such event; the inner: the user was not registered.
pub async fn cancel(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    event_id: &str,
    user: &str,
    now: i64,
) -> Result<Option<Option<Cancelled>>, MeshError> {
    let Some(event) = lock(tx, event_id).await? else {
        return Ok(None);
    };
    let Some(was) = registration_of(tx, event_id, user).await? else {
        return Ok(Some(None));
    };
    sqlx::query("DELETE FROM gathering_registrations WHERE event_id = $1 AND user_id = $2")
        .bind(event_id)
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    timers::drop_for(tx, &subject(event_id), Some(user)).await?;
    let mut promoted = None;
    if was.status == REGISTERED {
        sqlx::query("UPDATE gatherings SET registered = registered - 1 WHERE id = $1")
            .bind(event_id)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        promoted = promote(tx, plan, &event, 1, now).await?.into_iter().next();
    } else {
        sqlx::query("UPDATE gatherings SET waitlisted = waitlisted - 1 WHERE id = $1")
            .bind(event_id)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(Some(Some(Cancelled { was, promoted })))
}

/// What [`update`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Updated {
    /// No such event.
    Missing,
    /// The new capacity is below the seats taken: nothing changed.
    BelowRegistered(i64),
    /// Changed; the waitlisted users a larger capacity seated, in order.
    Done(Box<EventRow>, Vec<String>),
}

/// Applies `change` to the event as locked (the organiser check and field checks happen in
/// `change`, against the current row); a larger capacity seats the waitlist in order.
pub async fn update(
    tx: &mut Transaction<'_, Any>,
    plan: &Plan,
    id: &str,
    now: i64,
    change: impl FnOnce(&EventRow) -> Result<EventRow, MeshError>,
) -> Result<Updated, MeshError> {
    let Some(row) = lock(tx, id).await? else {
        return Ok(Updated::Missing);
    };
    let mut next = change(&row)?;
    if next.capacity < row.registered {
        return Ok(Updated::BelowRegistered(row.registered));
    }
    sqlx::query(
        "UPDATE gatherings SET title = $2, description = $3, location = $4, start_at = $5, \
         end_at = $6, timezone = $7, capacity = $8, updated_at = $9, version = version + 1 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&next.title)
    .bind(&next.description)
    .bind(&next.location)
    .bind(next.start_at)
    .bind(next.end_at)
    .bind(&next.timezone)
    .bind(next.capacity)
    .bind(next.updated_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    // What the seats' timers say (times, title, place) changed: schedule them afresh.
    let timed = |e: &EventRow| (e.start_at, e.end_at, e.title.clone(), e.location.clone());
    if timed(&next) != timed(&row) {
        timers::drop_for(tx, &subject(id), None).await?;
        let seated: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM gathering_registrations \
             WHERE event_id = $1 AND status = 'registered'",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
        for user in &seated {
            schedule_seat(tx, plan, &next, user, now).await?;
        }
    }
    let free = next.capacity - row.registered;
    let seated = promote(tx, plan, &next, free.min(row.waitlisted), now).await?;
    next.registered = row.registered + seated.len() as i64;
    next.waitlisted = row.waitlisted - seated.len() as i64;
    Ok(Updated::Done(Box::new(next), seated))
}

/// Deletes the event and its registrations, if `allowed` by the current row; answers the
/// row as it was (`None`: no such event).
pub async fn delete(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    allowed: impl FnOnce(&EventRow) -> Result<(), MeshError>,
) -> Result<Option<EventRow>, MeshError> {
    let Some(row) = lock(tx, id).await? else {
        return Ok(None);
    };
    allowed(&row)?;
    timers::drop_for(tx, &subject(id), None).await?;
    sqlx::query("DELETE FROM gathering_registrations WHERE event_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM gatherings WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(Some(row))
}
