//! Calendar events (`/events*`, landscape C; the service is `events`, its module
//! `troupe_actors::gatherings`). Anyone signed in sees events and registers; the organiser
//! or an admin changes them and sees their registrations. Ops that change one event go to
//! that event's actor on its home node (`Target::Entity(event id)`), which keeps capacity
//! exact cluster-wide. `GET /events/calendar.ics` is a static path, so the router prefers
//! it to `/events/{id}`.

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use troupe_actors::gatherings::{messages as dm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{List, Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask_as as call, ApiError, AppState};

/// An event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Opaque id.
    pub id: String,
    /// The user who created it.
    pub organiser_id: String,
    /// Title.
    pub title: String,
    /// Description; may be empty.
    pub description: String,
    /// Location; may be empty.
    pub location: String,
    /// Start, RFC 3339 UTC.
    pub start: String,
    /// End, RFC 3339 UTC.
    pub end: String,
    /// The organiser's IANA time zone.
    pub timezone: String,
    /// Seats.
    pub capacity: u64,
    /// Seats taken.
    pub registered: u64,
    /// Registrations waiting for a seat.
    pub waitlisted: u64,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl From<dm::Event> for EventView {
    fn from(e: dm::Event) -> Self {
        Self {
            id: e.id,
            organiser_id: e.organiser_id,
            title: e.title,
            description: e.description,
            location: e.location,
            start: e.start,
            end: e.end,
            timezone: e.timezone,
            capacity: e.capacity,
            registered: e.registered,
            waitlisted: e.waitlisted,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A registration as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationView {
    /// The event.
    pub event_id: String,
    /// The registered user.
    pub user_id: String,
    /// `registered`, `waitlisted` or (answering a cancellation) `cancelled`.
    pub status: String,
    /// Place on the waitlist, from 1 (waitlisted only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// When it was accepted, RFC 3339 UTC.
    pub created_at: String,
}

impl From<dm::Registration> for RegistrationView {
    fn from(r: dm::Registration) -> Self {
        Self {
            event_id: r.event_id,
            user_id: r.user_id,
            status: r.status,
            position: (r.position > 0).then_some(r.position),
            created_at: r.created_at,
        }
    }
}

/// Body of `POST /events` and `PUT /events/:id` (read field by field, see [`Object`]).
/// `PUT` changes the fields given.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct EventBody {
    /// 1 to 200 characters, not only spaces, no control characters (required on `POST`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: String,
    /// At most 4000 characters; line breaks and tabs are the only control characters
    /// allowed.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    description: Option<String>,
    /// At most 200 characters; line breaks and tabs are the only control characters
    /// allowed.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    location: Option<String>,
    /// RFC 3339 date-time (required on `POST`).
    #[schema(format = DateTime)]
    start: String,
    /// RFC 3339 date-time after `start` (required on `POST`).
    #[schema(format = DateTime)]
    end: String,
    /// IANA time zone name, e.g. `Europe/Paris` (default `UTC`): one of the tz database's
    /// names (tzdata 2025b), which have this form.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"
    )]
    timezone: Option<String>,
    /// Seats, at least 1; on `PUT` not below the seats taken (required on `POST`).
    #[schema(minimum = 1, maximum = 1_000_000)]
    capacity: i64,
}

fn read_body(body: &Value, id: String) -> Result<dm::EventInput, ApiError> {
    let mut o = Object::new(body)?;
    let input = dm::EventInput {
        id,
        title: o.string("title"),
        description: o.string("description"),
        location: o.string("location"),
        start: o.string("start"),
        end: o.string("end"),
        timezone: o.string("timezone"),
        capacity: o.int("capacity"),
    };
    o.finish()?;
    Ok(input)
}

/// `GET /events?page=&per_page=`: every event, soonest first.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    security(("bearer" = [])),
    params(Paging),
    responses((status = 200, description = "A page of events, soonest first", body = Page<EventView>))
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let msg = dm::ListEvents { page, per_page };
    let p = call(&state, rid, &caller, &ops::LIST, msg, None).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(EventView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `POST /events`: `{"title", "description"?, "location"?, "start", "end", "timezone"?,
/// "capacity"}`; 201 with the event, organised by the caller.
#[utoipa::path(
    post,
    path = "/events",
    tag = "events",
    security(("bearer" = [])),
    request_body = EventBody,
    responses(
        (status = 201, description = "The new event", body = EventView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let input = read_body(&body, String::new())?;
    let e = call(&state, rid, &caller, &ops::CREATE, input, None).await?;
    Ok((StatusCode::CREATED, Json(e.into())))
}

/// `GET /events/calendar.ics`: the events the caller holds a seat at, as RFC 5545
/// iCalendar (times in UTC; `UID` is `<event id>@troupe`).
#[utoipa::path(
    get,
    path = "/events/calendar.ics",
    tag = "events",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's registered events", content_type = "text/calendar; charset=utf-8", body = String))
)]
pub async fn calendar(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let c = call(&state, rid, &caller, &ops::CALENDAR, (), None).await?;
    Ok(([(CONTENT_TYPE, "text/calendar; charset=utf-8")], c.ics))
}

/// `GET /events/:id`.
#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let e = call(&state, rid, &caller, &ops::GET, dm::EventRef { id }, None).await?;
    Ok(Json(e.into()))
}

/// `PUT /events/:id`: the fields given change (organiser or admin).
#[utoipa::path(
    put,
    path = "/events/{id}",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = EventBody,
    responses(
        (status = 200, description = "The event as changed", body = EventView),
        (status = 400, description = "A field is invalid, or `capacity` is below the seats taken (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not the organiser or an admin", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<EventView>, ApiError> {
    let input = read_body(&body, id.clone())?;
    let e = call(&state, rid, &caller, &ops::UPDATE, input, Some(id)).await?;
    Ok(Json(e.into()))
}

/// `DELETE /events/:id`: the event and its registrations (organiser or admin); 200 with
/// the event as it was.
#[utoipa::path(
    delete,
    path = "/events/{id}",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The event as it was", body = EventView),
        (status = 403, description = "Not the organiser or an admin", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let msg = dm::EventRef { id: id.clone() };
    let e = call(&state, rid, &caller, &ops::DELETE, msg, Some(id)).await?;
    Ok(Json(e.into()))
}

/// `POST /events/:id/register`: a seat while seats are free, else the end of the waitlist
/// (`position` from 1). Registering again answers the registration held.
#[utoipa::path(
    post,
    path = "/events/{id}/register",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "`registered`, or `waitlisted` with its `position`", body = RegistrationView),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RegistrationView>, ApiError> {
    let msg = dm::EventRef { id: id.clone() };
    let r = call(&state, rid, &caller, &ops::REGISTER, msg, Some(id)).await?;
    Ok(Json(r.into()))
}

/// `DELETE /events/:id/register`: cancels the caller's registration; a freed seat goes to
/// the first of the waitlist.
#[utoipa::path(
    delete,
    path = "/events/{id}/register",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The registration, now `cancelled`", body = RegistrationView),
        (status = 404, description = "No such event, or the caller is not registered", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RegistrationView>, ApiError> {
    let msg = dm::EventRef { id: id.clone() };
    let r = call(&state, rid, &caller, &ops::CANCEL, msg, Some(id)).await?;
    Ok(Json(r.into()))
}

/// `GET /events/:id/registrations`: seats in acceptance order, then the waitlist in order
/// (organiser or admin).
#[utoipa::path(
    get,
    path = "/events/{id}/registrations",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "Every registration", body = List<RegistrationView>),
        (status = 403, description = "Not the organiser or an admin", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    )
)]
pub async fn registrations(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<RegistrationView>>, ApiError> {
    let msg = dm::EventRef { id };
    let r = call(&state, rid, &caller, &ops::REGISTRATIONS, msg, None).await?;
    let items: Vec<RegistrationView> = r.items.into_iter().map(Into::into).collect();
    Ok(Json(List {
        total: items.len(),
        items,
    }))
}
