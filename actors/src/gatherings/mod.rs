//! The `events` service (WeAce's calendar events, landscape C): events with a capacity,
//! registration with a waitlist, and each user's calendar as RFC 5545 iCalendar.
//!
//! The module is `gatherings` because `crate::events` is the event *bus* (domain events,
//! outbox, sinks); the service itself is named `events`, as the API calls it, and its
//! tables are `gatherings` and `gathering_registrations`.
//!
//! # Ops
//! | op | kind | routed | request | reply |
//! |---|---|---|---|---|
//! | `create` | effectful | any | [`EventInput`] | [`Event`] |
//! | `get` | idempotent | any | [`EventRef`] | [`Event`] |
//! | `list` | idempotent | any | [`ListEvents`] | [`EventPage`] |
//! | `update` | effectful | entity | [`EventInput`] | [`Event`] |
//! | `delete` | effectful | entity | [`EventRef`] | [`Event`] (as it was) |
//! | `register` | effectful | entity | [`EventRef`] | [`Registration`] |
//! | `cancel` | effectful | entity | [`EventRef`] | [`Registration`] (status `cancelled`) |
//! | `registrations` | idempotent | any | [`EventRef`] | [`Registrations`] |
//! | `calendar` | idempotent | any | `()` | [`Calendar`] |
//!
//! Every op needs a signed-in caller. Anyone signed in sees every event; only its organiser
//! or an admin changes or deletes it and sees its registrations (`permission_denied`
//! otherwise). **Capacity holds cluster-wide**: the entity-routed ops of one event run on
//! its home node through one actor ([`entity::EventEntity`]) that applies them one at a
//! time, and each is one store transaction that locks the event's row first
//! ([`store`]), so even two activations of one event cannot register more than its
//! capacity. A cancelled seat goes to the first of the waitlist; a larger capacity seats
//! the waitlist in order. Every change publishes `event.created`, `event.updated`,
//! `event.deleted`, `event.registered`, `event.waitlisted`, `event.cancelled` or
//! `event.promoted` (about the organiser, or the user registered).
//!
//! # Layout
//! - this file: the [`Service`] impl, one method per op;
//! - [`entity`]: the per-event actor;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL, and the capacity guard;
//! - [`validate`]: field checks (RFC 3339 times, IANA time zones);
//! - [`ics`]: the iCalendar writer.

pub mod entity;
pub mod ics;
pub mod messages;
pub mod store;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use messages::*;

use self::entity::{Answer, EventEntity, EventReq};
use self::store::{EventRow, RegRow};
use crate::common::{self, validate::Fields, Who};
use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::mesh::placement::{EntityError, Hosted};
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo, Request, Service};
use crate::reminders::Plan;
use crate::store::time::now_ms;
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "events";

/// The ops of `events`, declared once.
pub mod ops {
    use super::messages::{
        Calendar, Event, EventInput, EventPage, EventRef, ListEvents, Registration, Registrations,
    };

    crate::ops! {
        /// An op of `events`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create an event organised by the caller.
            Create = CREATE("create", effectful): EventInput => Event,
            /// One event.
            Get = GET("get", idempotent): EventRef => Event,
            /// A page of events, soonest first.
            List = LIST("list", idempotent): ListEvents => EventPage,
            /// Change an event (entity-routed).
            Update = UPDATE("update", effectful): EventInput => Event,
            /// Delete an event (entity-routed); answers it as it was.
            Delete = DELETE("delete", effectful): EventRef => Event,
            /// Register the caller (entity-routed).
            Register = REGISTER("register", effectful): EventRef => Registration,
            /// Cancel the caller's registration (entity-routed).
            Cancel = CANCEL("cancel", effectful): EventRef => Registration,
            /// An event's registrations (organiser or admin).
            Registrations = REGISTRATIONS("registrations", idempotent): EventRef => Registrations,
            /// The caller's registered events as iCalendar.
            Calendar = CALENDAR("calendar", idempotent): () => Calendar,
        }
    }
}

/// Idle event actors are passivated after this long (they hold nothing).
const IDLE: Duration = Duration::from_secs(60);

/// A checked change to an event: the fields given, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    title: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start_at: Option<i64>,
    end_at: Option<i64>,
    timezone: Option<String>,
    capacity: Option<i64>,
}

impl Change {
    /// Checks every field given (each bad one named at once); `create` also requires
    /// title, start, end and capacity.
    fn parse(input: &EventInput, create: bool) -> Result<Change, MeshError> {
        let mut f = Fields::new();
        let required = |f: &mut Fields, name: &'static str, given: bool| {
            if create && !given {
                f.check(name, Err("is required".into()));
            }
        };
        required(&mut f, "title", input.title.is_some());
        required(&mut f, "start", input.start.is_some());
        required(&mut f, "end", input.end.is_some());
        required(&mut f, "capacity", input.capacity.is_some());
        if let Some(t) = &input.title {
            f.check("title", validate::title(t));
        }
        if let Some(d) = &input.description {
            f.check("description", validate::text(d, validate::DESCRIPTION_MAX));
        }
        if let Some(l) = &input.location {
            f.check("location", validate::text(l, validate::LOCATION_MAX));
        }
        if let Some(z) = &input.timezone {
            f.check("timezone", validate::timezone(z));
        }
        if let Some(c) = input.capacity {
            f.check("capacity", validate::capacity(c));
        }
        let start_at = input
            .start
            .as_deref()
            .and_then(|s| f.take("start", validate::rfc3339(s)));
        let end_at = input
            .end
            .as_deref()
            .and_then(|s| f.take("end", validate::rfc3339(s)));
        if let (Some(s), Some(e)) = (start_at, end_at) {
            if e <= s {
                f.check("end", Err("must be after start".into()));
            }
        }
        f.finish()?;
        Ok(Change {
            title: input.title.clone(),
            description: input.description.clone(),
            location: input.location.clone(),
            start_at,
            end_at,
            timezone: input.timezone.clone(),
            capacity: input.capacity,
        })
    }

    /// `row` with this change applied at `now`; `end` must still be after `start`.
    fn apply(&self, row: &EventRow, now: i64) -> Result<EventRow, MeshError> {
        let mut next = row.clone();
        if let Some(t) = &self.title {
            next.title.clone_from(t);
        }
        if let Some(d) = &self.description {
            next.description.clone_from(d);
        }
        if let Some(l) = &self.location {
            next.location.clone_from(l);
        }
        if let Some(z) = &self.timezone {
            next.timezone.clone_from(z);
        }
        next.start_at = self.start_at.unwrap_or(row.start_at);
        next.end_at = self.end_at.unwrap_or(row.end_at);
        next.capacity = self.capacity.unwrap_or(row.capacity);
        if next.end_at <= next.start_at {
            let mut f = Fields::new();
            f.check("end", Err("must be after start".into()));
            f.finish()?;
        }
        next.updated_at = now.max(row.updated_at);
        Ok(next)
    }
}

/// The service.
pub struct Gatherings {
    store: Store,
    publisher: Publisher,
    hosted: Arc<Hosted<EventEntity>>,
}

impl Gatherings {
    /// Starts the node's event host and its hand-off watcher.
    pub async fn start(
        info: Arc<NodeInfo>,
        store: Store,
        publisher: Publisher,
        plan: Plan,
    ) -> anyhow::Result<Arc<Self>> {
        let entity = EventEntity {
            registrations: entity::registrations(store.clone(), plan, publisher.clone()),
            store: store.clone(),
            publisher: publisher.clone(),
            plan,
        };
        let hosted = Hosted::start(info, entity, IDLE).await?;
        Ok(Arc::new(Self {
            store,
            publisher,
            hosted,
        }))
    }

    /// Runs `req` on event `id`'s actor on this node.
    async fn entity(
        &self,
        deadline: Instant,
        id: &str,
        req: EventReq,
    ) -> Result<Answer, MeshError> {
        common::validate::id("id", id)?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.hosted.request(id, req, Some(timeout)).await {
            Ok(Ok(Answer::Queued(written))) => {
                written.until(deadline).await.map(Answer::Registration)
            }
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e),
            Err(EntityError::NotFound) => Err(not_found()),
            Err(EntityError::Timeout) => Err(MeshError::deadline()),
            Err(EntityError::Unavailable(why)) => Err(MeshError::unavailable(why)),
        }
    }

    /// `create`.
    pub async fn create(&self, who: &Who, input: &EventInput) -> Result<Event, MeshError> {
        let c = Change::parse(input, true)?;
        let now = now_ms();
        let row = EventRow {
            id: uuid::Uuid::new_v4().to_string(),
            organiser_id: who.user_id.clone(),
            title: c.title.unwrap_or_default(),
            description: c.description.unwrap_or_default(),
            location: c.location.unwrap_or_default(),
            start_at: c.start_at.unwrap_or_default(),
            end_at: c.end_at.unwrap_or_default(),
            timezone: c.timezone.unwrap_or_else(|| "UTC".into()),
            capacity: c.capacity.unwrap_or(1),
            registered: 0,
            waitlisted: 0,
            created_at: now,
            updated_at: now,
        };
        let mut out = Staged::new(Some(&self.publisher));
        publish(
            &mut out,
            kinds::EVENT_CREATED,
            &row.organiser_id,
            &row,
            serde_json::json!({}),
        )?;
        let mut tx = self.store.begin().await?;
        store::insert(&mut tx, &row).await?;
        out.commit(tx).await?;
        Ok(row.to_event())
    }

    async fn row(&self, id: &str) -> Result<EventRow, MeshError> {
        common::validate::id("id", id)?;
        store::get(&self.store, id).await?.ok_or_else(not_found)
    }

    /// `get`.
    pub async fn get(&self, r: &EventRef) -> Result<Event, MeshError> {
        Ok(self.row(&r.id).await?.to_event())
    }

    /// `list`: every event, soonest first.
    pub async fn list(&self, l: &ListEvents) -> Result<EventPage, MeshError> {
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) = store::list(&self.store, limit, offset).await?;
        Ok(EventPage {
            items: rows.iter().map(EventRow::to_event).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `update`: the fields given change (on the event's actor).
    pub async fn update(
        &self,
        deadline: Instant,
        who: &Who,
        input: &EventInput,
    ) -> Result<Event, MeshError> {
        let change = Change::parse(input, false)?;
        match self
            .entity(deadline, &input.id, EventReq::Update(who.clone(), change))
            .await?
        {
            Answer::Event(row) => Ok(row.to_event()),
            Answer::Registration(_) | Answer::Queued(_) => {
                Err(MeshError::internal("event actor answered a registration"))
            }
        }
    }

    /// `delete` (on the event's actor).
    pub async fn delete(
        &self,
        deadline: Instant,
        who: &Who,
        r: &EventRef,
    ) -> Result<Event, MeshError> {
        match self
            .entity(deadline, &r.id, EventReq::Delete(who.clone()))
            .await?
        {
            Answer::Event(row) => Ok(row.to_event()),
            Answer::Registration(_) | Answer::Queued(_) => {
                Err(MeshError::internal("event actor answered a registration"))
            }
        }
    }

    /// `register` (on the event's actor): registering again answers the registration held.
    pub async fn register(
        &self,
        deadline: Instant,
        who: &Who,
        r: &EventRef,
    ) -> Result<Registration, MeshError> {
        match self
            .entity(deadline, &r.id, EventReq::Register(who.clone()))
            .await?
        {
            Answer::Registration(reg) => Ok(reg.to_registration()),
            Answer::Event(_) | Answer::Queued(_) => {
                Err(MeshError::internal("event actor answered an event"))
            }
        }
    }

    /// `cancel` (on the event's actor).
    pub async fn cancel(
        &self,
        deadline: Instant,
        who: &Who,
        r: &EventRef,
    ) -> Result<Registration, MeshError> {
        match self
            .entity(deadline, &r.id, EventReq::Cancel(who.clone()))
            .await?
        {
            Answer::Registration(reg) => {
                let mut reg = reg.to_registration();
                reg.status = "cancelled".into();
                reg.position = 0;
                Ok(reg)
            }
            Answer::Event(_) | Answer::Queued(_) => {
                Err(MeshError::internal("event actor answered an event"))
            }
        }
    }

    /// `registrations`: seats in acceptance order, then the waitlist (organiser or admin).
    pub async fn registrations(&self, who: &Who, r: &EventRef) -> Result<Registrations, MeshError> {
        let row = self.row(&r.id).await?;
        if !who.admin && who.user_id != row.organiser_id {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only the organiser or an admin may see the registrations",
            ));
        }
        let items = store::registrations(&self.store, &row.id).await?;
        Ok(Registrations {
            items: items.iter().map(RegRow::to_registration).collect(),
        })
    }

    /// `calendar`: the events the caller holds a seat at.
    pub async fn calendar(&self, who: &Who) -> Result<Calendar, MeshError> {
        let rows = store::registered_events(&self.store, &who.user_id).await?;
        Ok(Calendar {
            ics: ics::calendar(&rows, now_ms()),
        })
    }
}

/// An unknown event.
pub(crate) fn not_found() -> MeshError {
    MeshError::not_found("event not found")
}

/// Stages a change to event `row`, about `user`, with `extra` fields, in `out`.
pub(crate) fn publish(
    out: &mut Staged,
    kind: &str,
    user: &str,
    row: &EventRow,
    extra: serde_json::Value,
) -> Result<(), MeshError> {
    let mut payload = serde_json::json!({
        "event_id": row.id,
        "title": row.title,
        "start": crate::store::time::rfc3339_millis(row.start_at),
        "capacity": row.capacity,
    });
    if let (Some(p), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        p.extend(extra);
    }
    publish_payload(out, kind, user, payload)
}

/// Stages `payload` as a `kind` event about `user` in `out`.
pub(crate) fn publish_payload(
    out: &mut Staged,
    kind: &str,
    user: &str,
    payload: serde_json::Value,
) -> Result<(), MeshError> {
    out.add(NewEvent::new(kind, Some(user), payload))?;
    Ok(())
}

impl Service for Gatherings {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A worker waits on the event's actor, then on the registration writer: a batch holds
    /// as many registrations as workers wait.
    fn workers(&self, default: usize) -> usize {
        crate::mesh::service::batching_pool(default)
    }

    /// A registration waits for the node's registration writer.
    fn waits_on_batch(&self, op: &str) -> bool {
        op == ops::REGISTER.name
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let who = Who::of(req.caller.as_ref())?;
            let deadline = req.deadline;
            match Cmd::parse(&req)? {
                Cmd::Create(c) => ops::CREATE.reply(self.create(&who, &c).await),
                Cmd::Get(r) => ops::GET.reply(self.get(&r).await),
                Cmd::List(l) => ops::LIST.reply(self.list(&l).await),
                Cmd::Update(u) => ops::UPDATE.reply(self.update(deadline, &who, &u).await),
                Cmd::Delete(r) => ops::DELETE.reply(self.delete(deadline, &who, &r).await),
                Cmd::Register(r) => ops::REGISTER.reply(self.register(deadline, &who, &r).await),
                Cmd::Cancel(r) => ops::CANCEL.reply(self.cancel(deadline, &who, &r).await),
                Cmd::Registrations(r) => {
                    ops::REGISTRATIONS.reply(self.registrations(&who, &r).await)
                }
                Cmd::Calendar(()) => ops::CALENDAR.reply(self.calendar(&who).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
