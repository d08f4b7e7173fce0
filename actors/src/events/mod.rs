//! Domain events: what services publish and what subscribers consume.
//!
//! A service that changes rows writes the [`NewEvent`]s reporting the change in the same
//! SQL transaction ([`Staged`]: the transactional outbox); a publisher without a
//! transaction hands them to [`Publish::publish`], acknowledged once they are committed.
//! Either way an acknowledged event is in the store, and a relay on some node (any node,
//! a survivor when the publisher died) delivers it at least once to every subscriber and
//! to the MQTT bridge and email when configured. Every [`Event`] carries an id, so
//! consumers drop redeliveries.
//!
//! # Layout
//! - this file: the event types (and [`EventJson`], an event as a subscriber's op receives
//!   it), well-known kinds, the [`Publish`] trait services see, and [`Staged`].
//! - [`outbox`]: the `outbox` and `dead_letters` tables: staging, claims with a lease,
//!   settling, the depth bound.
//! - [`legacy`]: moves an outbox of an earlier version (sled, per node) into the store.
//! - [`relay`]: claims committed rows, hands them to the lanes, deletes them once
//!   delivered.
//! - [`sink`]: the [`Sink`](sink::Sink) trait destinations implement (the MQTT bridge lives
//!   in `troupe-protocols`), and [`Subscriber`](sink::Subscriber), delivery to a service.
//! - [`delivery`]: one lane per sink: concurrent attempts, backoff with full jitter, dead
//!   letters after the last attempt.
//! - [`bus`]: [`Bus`](bus::Bus), the [`Publish`] implementation nodes use.
//! - [`admin`]: the `event_bus` service: dead letters and the benchmark publisher.
//! - [`metrics`]: names of the metrics recorded here.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::mesh::{BoxFuture, MeshError};

pub mod admin;
pub mod bus;
pub mod delivery;
pub mod legacy;
pub mod metrics;
pub mod outbox;
pub mod relay;
pub mod sink;

/// Payload fields that carry secrets (emailed codes): they reach the user's own
/// notification and nothing else (not the notification log, not the MQTT broker).
pub const SECRET_FIELDS: &[&str] = &["code"];

/// Well-known event kinds.
pub mod kinds {
    /// A user registered (any register path, SOAP included) or was created by an admin.
    pub const USER_REGISTERED: &str = "user.registered";
    /// A user logged in.
    pub const USER_LOGGED_IN: &str = "user.logged_in";
    /// A registration is waiting for its emailed confirmation code.
    pub const REGISTRATION_CODE: &str = "user.registration_code";
    /// A user confirmed their registration (or a changed email address).
    pub const USER_CONFIRMED: &str = "user.confirmed";
    /// A user's email address changed; the payload's `to` is the old address, which the
    /// email channel writes to (the new one gets a `user.registration_code`).
    pub const USER_EMAIL_CHANGED: &str = "user.email_changed";
    /// Someone registered with the address of an existing account, which was not told to
    /// them (`users.register`); the payload's `to` is the owner's address, which the email
    /// channel writes to whatever the owner's preferences.
    pub const USER_REGISTER_ATTEMPTED: &str = "user.register_attempted";
    /// A password reset was requested; the payload carries the code for the notification.
    pub const PASSWORD_RESET_REQUESTED: &str = "password.reset_requested";
    /// A password was reset with a code.
    pub const PASSWORD_RESET: &str = "password.reset";
    /// A task was created.
    pub const TASK_CREATED: &str = "task.created";
    /// A task made progress.
    pub const TASK_PROGRESS: &str = "task.progress";
    /// A task completed.
    pub const TASK_COMPLETED: &str = "task.completed";
    /// A task failed.
    pub const TASK_FAILED: &str = "task.failed";
    /// A task was cancelled.
    pub const TASK_CANCELLED: &str = "task.cancelled";
    /// A todo was created.
    pub const TODO_CREATED: &str = "todo.created";
    /// A todo was changed.
    pub const TODO_UPDATED: &str = "todo.updated";
    /// A todo was deleted.
    pub const TODO_DELETED: &str = "todo.deleted";
    /// A chat message was stored.
    pub const MESSAGE_SENT: &str = "message.sent";
    /// A calendar event was created (service `events`, `actors/src/gatherings/`).
    pub const EVENT_CREATED: &str = "event.created";
    /// A calendar event was changed.
    pub const EVENT_UPDATED: &str = "event.updated";
    /// A calendar event was deleted.
    pub const EVENT_DELETED: &str = "event.deleted";
    /// A user took a seat at an event.
    pub const EVENT_REGISTERED: &str = "event.registered";
    /// A user joined an event's waitlist.
    pub const EVENT_WAITLISTED: &str = "event.waitlisted";
    /// A user cancelled their registration.
    pub const EVENT_CANCELLED: &str = "event.cancelled";
    /// A calendar event a user held a seat at has ended (a durable timer at its end,
    /// `actors/src/reminders/`; Troupe has no check-in, a seat at the end is attendance).
    pub const EVENT_ATTENDED: &str = "event.attended";
    /// A durable reminder came due: something the user booked or registered for starts
    /// soon (`actors/src/reminders/`).
    pub const REMINDER_DUE: &str = "reminder.due";
    /// A waitlisted user was given a seat.
    pub const EVENT_PROMOTED: &str = "event.promoted";
    /// A user enrolled in a training course.
    pub const TRAINING_ENROLLED: &str = "training.enrolled";
    /// A user completed a lesson of a training course.
    pub const TRAINING_LESSON_COMPLETED: &str = "training.lesson_completed";
    /// A user earned a course's certificate (issued once per user and course).
    pub const TRAINING_CERTIFICATE_ISSUED: &str = "training.certificate_issued";
    /// A coach was created (service `coaching`; about the admin who created it).
    pub const COACHING_COACH_CREATED: &str = "coaching.coach_created";
    /// A coach's profile or schedule was changed (about who changed it).
    pub const COACHING_COACH_UPDATED: &str = "coaching.coach_updated";
    /// A client booked a coach's slot (about the client).
    pub const COACHING_BOOKING_MADE: &str = "coaching.booking_made";
    /// A booking was cancelled (about the client; `cancelled_by` says who cancelled).
    pub const COACHING_BOOKING_CANCELLED: &str = "coaching.booking_cancelled";
    /// A session note was added to a booking (about its writer).
    pub const COACHING_NOTE_ADDED: &str = "coaching.note_added";
    /// A user was awarded points for an activity (tracked, or from another event).
    pub const ENGAGEMENT_ACTIVITY: &str = "engagement.activity";
    /// A user's points crossed a badge threshold.
    pub const ENGAGEMENT_BADGE_EARNED: &str = "engagement.badge_earned";
}

/// What a service hands to [`Publish::publish`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The event kind, e.g. [`kinds::USER_REGISTERED`].
    pub kind: String,
    /// The user the event is about (the notification's recipient), if any.
    pub user_id: Option<String>,
    /// Kind-specific data.
    pub payload: serde_json::Value,
    /// The event's id when the publisher fixes it (a durable reminder publishes under its
    /// own id, so publishing it twice is one event to consumers); a fresh UUID otherwise.
    pub id: Option<String>,
}

impl NewEvent {
    /// An event of `kind` about `user_id`.
    pub fn new(kind: &str, user_id: Option<&str>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.to_string(),
            user_id: user_id.map(str::to_string),
            payload,
            id: None,
        }
    }

    /// This event, published under `id`.
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }
}

/// A published event as subscribers and the MQTT bridge see it (JSON on the wire).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id; consumers drop an id they have already handled.
    pub id: String,
    /// The event kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was published, RFC 3339 UTC.
    pub time: String,
    /// The node that published it.
    pub source: String,
    /// The user it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Kind-specific data.
    pub payload: serde_json::Value,
}

impl Event {
    /// The event without its secret payload fields ([`SECRET_FIELDS`]), for anything
    /// other than the notification of the user it is about.
    pub fn redacted(&self) -> Event {
        let mut e = self.clone();
        if let serde_json::Value::Object(map) = &mut e.payload {
            for field in SECRET_FIELDS {
                if map.contains_key(*field) {
                    map.insert(
                        (*field).to_string(),
                        serde_json::Value::String("***".into()),
                    );
                }
            }
        }
        e
    }
}

/// An [`Event`] as the op of a subscribing service receives it
/// ([`Subscriber`](sink::Subscriber)): its JSON, the one form events have on every wire
/// (the MQTT bridge, the dead-letter queue).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventJson {
    /// The event, as JSON.
    #[prost(string, tag = "1")]
    pub json: String,
}

impl EventJson {
    /// `event` as JSON.
    pub fn of(event: &Event) -> Self {
        Self {
            json: serde_json::to_string(event).unwrap_or_default(),
        }
    }

    /// The event it carries; `invalid_argument` when it is not one.
    pub fn event(&self) -> Result<Event, MeshError> {
        serde_json::from_str(&self.json)
            .map_err(|e| MeshError::invalid(format!("malformed event: {e}")))
    }
}

/// Publishes events. Resolves once the event is durable; delivery happens afterwards.
pub trait Publish: Send + Sync + 'static {
    /// Builds `event` for a service's own transaction, or refuses it (a bad kind, the
    /// outbox full): see [`Staged`].
    fn prepare(&self, event: NewEvent) -> Result<Event, MeshError>;

    /// Writes prepared `events` on `conn`, inside the caller's transaction.
    fn stage<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), MeshError>>;

    /// The transaction that staged `events` committed: deliver them now.
    fn committed(&self, events: &[Event]);

    /// Queues `event` for the outbox's batched insert at once, so events enqueued one after
    /// another keep that order, and answers it with a future that resolves once it is
    /// durable (and then schedules its delivery). For publishers with no transaction of
    /// their own (the cluster's membership events, the benchmark); a service that changes
    /// rows stages its events in its transaction instead ([`Staged`]).
    fn enqueue(&self, event: NewEvent) -> Result<Enqueued, MeshError>;

    /// Makes `event` durable and schedules its delivery; answers the event as published.
    fn publish(&self, event: NewEvent) -> BoxFuture<'_, Result<Event, MeshError>> {
        Box::pin(async move {
            let Enqueued { event, durable } = self.enqueue(event)?;
            durable.await?;
            Ok(event)
        })
    }
}

/// An event in the outbox, not yet known to be durable.
pub struct Enqueued {
    /// The event as published.
    pub event: Event,
    /// Resolves once the event is on disk and handed to delivery.
    pub durable: BoxFuture<'static, Result<(), MeshError>>,
}

/// A shared publisher, as services hold it.
pub type Publisher = Arc<dyn Publish>;

/// The events of one transaction (the transactional outbox): [`Staged::add`] before or
/// during the transaction, [`Staged::write`] inside it, [`Staged::committed`] after its
/// commit. A service without a publisher stages nothing.
#[must_use = "staged events must be written inside the transaction"]
pub struct Staged {
    publisher: Option<Publisher>,
    events: Vec<Event>,
}

impl Staged {
    /// Nothing staged yet, for `publisher`.
    pub fn new(publisher: Option<&Publisher>) -> Self {
        Self {
            publisher: publisher.cloned(),
            events: Vec::new(),
        }
    }

    /// Adds `event`; refused (and nothing staged) when the outbox cannot take it, so the
    /// caller fails its write instead of acknowledging a change whose event is lost.
    pub fn add(&mut self, event: NewEvent) -> Result<&Event, MeshError> {
        let Some(p) = &self.publisher else {
            return Err(MeshError::internal("no publisher"));
        };
        self.events.push(p.prepare(event)?);
        Ok(self.events.last().expect("just pushed"))
    }

    /// Adds `event` when there is a publisher (a service built without events stages
    /// nothing).
    pub fn add_if_publishing(&mut self, event: NewEvent) -> Result<(), MeshError> {
        if self.publisher.is_some() {
            self.add(event)?;
        }
        Ok(())
    }

    /// The events staged so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Writes the staged events on `conn`, inside the caller's transaction.
    pub async fn write(&self, conn: &mut sqlx::AnyConnection) -> Result<(), MeshError> {
        match &self.publisher {
            Some(p) if !self.events.is_empty() => p.stage(conn, &self.events).await,
            _ => Ok(()),
        }
    }

    /// Writes the staged events in `tx` and commits it: the change and its events are
    /// durable together, and the events are then published. A keyed write
    /// ([`crate::store::idempotency`]) records its key in the same transaction, so it
    /// commits once however often it runs.
    pub async fn commit(
        self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), MeshError> {
        if let Some(key) = crate::store::idempotency::current() {
            key.record(&mut tx).await?;
        }
        self.write(&mut tx).await?;
        tx.commit().await.map_err(crate::store::db_error)?;
        self.committed();
        Ok(())
    }

    /// The transaction committed: the events are published.
    pub fn committed(self) {
        if let Some(p) = &self.publisher {
            p.committed(&self.events);
        }
    }
}

/// An in-memory publisher that only records what was published: for unit tests of
/// services, which assert on the events they emit. Nodes never use it.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// Everything published so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Recorder {
    fn event(&self, event: NewEvent) -> Event {
        Event {
            id: event.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind: event.kind,
            time: crate::store::time::rfc3339_millis(crate::store::time::now_ms()),
            source: "recorder".into(),
            user_id: event.user_id,
            payload: event.payload,
        }
    }
}

impl Publish for Recorder {
    fn prepare(&self, event: NewEvent) -> Result<Event, MeshError> {
        Ok(self.event(event))
    }

    /// Records nothing yet: the events count once their transaction commits.
    fn stage<'a>(
        &'a self,
        _conn: &'a mut sqlx::AnyConnection,
        _events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), MeshError>> {
        Box::pin(async { Ok(()) })
    }

    fn committed(&self, events: &[Event]) {
        if let Ok(mut all) = self.events.lock() {
            all.extend(events.iter().cloned());
        }
    }

    fn enqueue(&self, event: NewEvent) -> Result<Enqueued, MeshError> {
        let event = self.event(event);
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
        Ok(Enqueued {
            event,
            durable: Box::pin(async { Ok(()) }),
        })
    }
}

#[cfg(test)]
mod tests;
