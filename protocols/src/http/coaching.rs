//! Coaching (`/coaching/*`, landscape C; service `troupe_actors::coaching`): coaches with a
//! weekly schedule in their own time zone, their open slots, bookings and session notes.
//! Admins create coaches; an admin or the coach's linked user changes one. Anyone signed
//! in books an open slot. A booking is seen by its client and the coach's user (and
//! cancelled by them or an admin); its notes by those two only: to anyone else it does not
//! exist (404). A change to a coach and a booking go to the coach's actor on its home node
//! (`Target::Entity(coach id)`), which with the store's unique index keeps one booking per
//! slot cluster-wide; a taken slot is 409.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::coaching::{messages as dm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{List, Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask_as as call, ApiError, AppState};

/// A weekly availability window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    /// ISO weekday: 1 (Monday) to 7 (Sunday).
    #[schema(minimum = 1, maximum = 7, example = 1)]
    pub weekday: i64,
    /// Local start, `HH:MM`.
    #[schema(example = "09:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// Local end, `HH:MM` (or `24:00`), after `start`.
    #[schema(
        example = "12:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )]
    pub end: String,
}

impl From<dm::Window> for WindowView {
    fn from(w: dm::Window) -> Self {
        Self {
            weekday: w.weekday,
            start: w.start,
            end: w.end,
        }
    }
}

/// A local date (or a window of it) when the coach is not available.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionView {
    /// Local date, `YYYY-MM-DD`.
    #[schema(example = "2030-12-24", format = Date, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub date: String,
    /// Local start, `HH:MM`, with `end`; neither: the whole day.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "13:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: Option<String>,
    /// Local end, `HH:MM` (or `24:00`), with `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "17:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )]
    pub end: Option<String>,
}

impl From<dm::Exception> for ExceptionView {
    fn from(x: dm::Exception) -> Self {
        Self {
            date: x.date,
            start: x.start,
            end: x.end,
        }
    }
}

/// A coach as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoachView {
    /// Opaque id.
    #[schema(example = "5f0c6c1e-3b1e-4c36-9d7e-2f1a0e6b9a11")]
    pub id: String,
    /// The user who is this coach (edits it, sees its bookings); absent: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// Biography; may be empty.
    #[schema(example = "Leadership and engineering management")]
    pub bio: String,
    /// IANA time zone of the schedule.
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Slot length in minutes.
    #[schema(example = 60)]
    pub slot_minutes: u32,
    /// Weekly windows, by weekday then start.
    pub availability: Vec<WindowView>,
    /// Exceptions, by date.
    pub exceptions: Vec<ExceptionView>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl From<dm::Coach> for CoachView {
    fn from(c: dm::Coach) -> Self {
        Self {
            id: c.id,
            user_id: (!c.user_id.is_empty()).then_some(c.user_id),
            name: c.name,
            bio: c.bio,
            timezone: c.timezone,
            slot_minutes: c.slot_minutes,
            availability: c.availability.into_iter().map(Into::into).collect(),
            exceptions: c.exceptions.into_iter().map(Into::into).collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    /// Start, RFC 3339 UTC.
    #[schema(example = "2030-06-03T07:00:00.000Z")]
    pub start: String,
    /// End, RFC 3339 UTC.
    #[schema(example = "2030-06-03T08:00:00.000Z")]
    pub end: String,
}

/// `GET /coaching/coaches/:id/availability`: the open slots, soonest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsView {
    /// The open slots.
    pub slots: Vec<SlotView>,
}

/// A booking as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    /// Opaque id.
    pub id: String,
    /// The coach.
    pub coach_id: String,
    /// The user who booked.
    pub client_id: String,
    /// Start, RFC 3339 UTC.
    #[schema(example = "2030-06-03T07:00:00.000Z")]
    pub start: String,
    /// End, RFC 3339 UTC.
    #[schema(example = "2030-06-03T08:00:00.000Z")]
    pub end: String,
    /// `booked` or `cancelled`.
    #[schema(example = "booked")]
    pub status: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<dm::Booking> for BookingView {
    fn from(b: dm::Booking) -> Self {
        Self {
            id: b.id,
            coach_id: b.coach_id,
            client_id: b.client_id,
            start: b.start,
            end: b.end,
            status: b.status,
            created_at: b.created_at,
        }
    }
}

/// A session note.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    /// Opaque id.
    pub id: String,
    /// The booking.
    pub booking_id: String,
    /// Who wrote it.
    pub author_id: String,
    /// The text.
    #[schema(example = "Goals for next time: delegate the release")]
    pub text: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<dm::Note> for NoteView {
    fn from(n: dm::Note) -> Self {
        Self {
            id: n.id,
            booking_id: n.booking_id,
            author_id: n.author_id,
            text: n.text,
            created_at: n.created_at,
        }
    }
}

/// An availability window in a request body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct WindowBody {
    /// ISO weekday: 1 (Monday) to 7 (Sunday).
    #[schema(minimum = 1, maximum = 7, example = 1)]
    weekday: i64,
    /// Local start, `HH:MM`, before `end`.
    #[schema(example = "09:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    start: String,
    /// Local end, `HH:MM` (or `24:00`); windows of one weekday must not overlap.
    #[schema(
        example = "12:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )]
    end: String,
}

/// An exception in a request body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct ExceptionBody {
    /// Local date, `YYYY-MM-DD`.
    #[schema(example = "2030-12-24", format = Date, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date: String,
    /// Local start, `HH:MM`: give both `start` and `end` to close a window of the date,
    /// neither to close all of it.
    #[schema(example = "13:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    start: Option<String>,
    /// Local end, `HH:MM` (or `24:00`), after `start`.
    #[schema(
        example = "17:00",
        pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )]
    end: Option<String>,
}

/// Body of `POST /coaching/coaches` and `PUT /coaching/coaches/:id` (read field by field,
/// see [`Object`]). `PUT` changes the fields given.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct CoachBody {
    /// 1 to 200 characters, not only spaces, no control characters (required on `POST`).
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Ada Lovelace",
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// At most 4000 characters; line breaks and tabs are the only control characters
    /// allowed.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    bio: Option<String>,
    /// A registered user's id: that user may edit the coach and sees its bookings; `""`
    /// unlinks. Only an admin sets it.
    #[schema(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    user_id: Option<String>,
    /// IANA time zone name the schedule is in, e.g. `Europe/Berlin` (required on `POST`).
    #[schema(
        min_length = 1,
        max_length = 64,
        example = "Europe/Berlin",
        pattern = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
    )]
    timezone: String,
    /// Slot length in minutes, 15 to 480 (default 60).
    #[schema(minimum = 15, maximum = 480, example = 60)]
    slot_minutes: Option<i64>,
    /// Weekly windows, at most 100 (required on `POST`).
    #[schema(max_items = 100)]
    availability: Vec<WindowBody>,
    /// Dates (or windows of them) when the coach is not available, at most 1000.
    #[schema(max_items = 1000)]
    exceptions: Option<Vec<ExceptionBody>>,
}

/// Body of `POST /coaching/bookings`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct BookBody {
    /// The coach.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    coach_id: String,
    /// The start of one of the coach's open slots (RFC 3339).
    #[schema(format = DateTime, example = "2030-06-03T09:00:00+02:00")]
    start: String,
}

/// Body of `POST /coaching/bookings/:id/notes`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct NoteBody {
    /// 1 to 4000 characters, not only spaces; line breaks and tabs are the only control
    /// characters allowed.
    #[schema(
        min_length = 1,
        max_length = 4000,
        example = "Goals for next time: delegate the release",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*\S[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    text: String,
}

/// Query of `GET /coaching/coaches/:id/availability`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotRange {
    /// RFC 3339 (a `+` offset percent-encoded as `%2B`); absent: now.
    #[param(format = DateTime, example = "2030-06-03T00:00:00Z")]
    pub from: Option<String>,
    /// RFC 3339, after `from` and at most 62 days later; absent: 7 days after `from`.
    #[param(format = DateTime, example = "2030-06-10T00:00:00Z")]
    pub to: Option<String>,
}

/// An item of array `field` as a JSON object, or the reason it is not one.
fn item_object<'a>(
    item: &'a Value,
    what: &str,
    i: usize,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    item.as_object()
        .ok_or_else(|| format!("{what} {i}: must be an object"))
}

/// A string member of an item (absent or `null`: `None`).
fn item_string(item: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn windows(o: &mut Object<'_>) -> Option<dm::Windows> {
    let items = o.array("availability")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let read = item_object(item, "window", i).and_then(|m| {
            let weekday = match m.get("weekday") {
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or_else(|| format!("window {i}: weekday must be a whole number"))?,
                None => return Err(format!("window {i}: weekday is required")),
            };
            let time = |key: &str| {
                item_string(m, key)
                    .map_err(|e| format!("window {i}: {e}"))?
                    .ok_or_else(|| format!("window {i}: {key} is required"))
            };
            Ok(dm::Window {
                weekday,
                start: time("start")?,
                end: time("end")?,
            })
        });
        match read {
            Ok(w) => out.push(w),
            Err(e) => {
                o.invalid("availability", e);
                return None;
            }
        }
    }
    Some(dm::Windows { items: out })
}

fn exceptions(o: &mut Object<'_>) -> Option<dm::Exceptions> {
    let items = o.array("exceptions")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let read = item_object(item, "exception", i).and_then(|m| {
            let field = |key: &str| item_string(m, key).map_err(|e| format!("exception {i}: {e}"));
            Ok(dm::Exception {
                date: field("date")?.ok_or_else(|| format!("exception {i}: date is required"))?,
                start: field("start")?,
                end: field("end")?,
            })
        });
        match read {
            Ok(x) => out.push(x),
            Err(e) => {
                o.invalid("exceptions", e);
                return None;
            }
        }
    }
    Some(dm::Exceptions { items: out })
}

fn coach_input(body: &Value, id: String) -> Result<dm::CoachInput, ApiError> {
    let mut o = Object::new(body)?;
    let input = dm::CoachInput {
        id,
        name: o.string("name"),
        bio: o.string("bio"),
        user_id: o.string("user_id"),
        timezone: o.string("timezone"),
        slot_minutes: o.int("slot_minutes"),
        availability: windows(&mut o),
        exceptions: exceptions(&mut o),
    };
    o.finish()?;
    Ok(input)
}

/// `GET /coaching/coaches?page=&per_page=`: every coach, by name.
#[utoipa::path(
    get,
    path = "/coaching/coaches",
    tag = "coaching",
    security(("bearer" = [])),
    params(Paging),
    responses((status = 200, description = "A page of coaches, by name", body = Page<CoachView>))
)]
pub async fn list_coaches(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<CoachView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let msg = dm::ListPage { page, per_page };
    let p = call(&state, rid, &caller, &ops::LIST_COACHES, msg, None).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(CoachView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `POST /coaching/coaches` (admin): `{"name", "bio"?, "user_id"?, "timezone",
/// "slot_minutes"?, "availability": [{"weekday", "start", "end"}], "exceptions"?}`; 201 with
/// the coach.
#[utoipa::path(
    post,
    path = "/coaching/coaches",
    tag = "coaching",
    security(("bearer" = [])),
    request_body = CoachBody,
    responses(
        (status = 201, description = "The new coach", body = CoachView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn create_coach(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<CoachView>), ApiError> {
    let input = coach_input(&body, String::new())?;
    let c = call(&state, rid, &caller, &ops::CREATE_COACH, input, None).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// `GET /coaching/coaches/:id`.
#[utoipa::path(
    get,
    path = "/coaching/coaches/{id}",
    tag = "coaching",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The coach's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The coach", body = CoachView),
        (status = 404, description = "No such coach", body = ErrorBody),
    )
)]
pub async fn get_coach(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CoachView>, ApiError> {
    let c = call(&state, rid, &caller, &ops::GET_COACH, dm::Ref { id }, None).await?;
    Ok(Json(c.into()))
}

/// `PUT /coaching/coaches/:id`: the fields given change (an admin, or the coach's own user,
/// who may not change `user_id`). Bookings already made stay.
#[utoipa::path(
    put,
    path = "/coaching/coaches/{id}",
    tag = "coaching",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The coach's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = CoachBody,
    responses(
        (status = 200, description = "The coach as changed", body = CoachView),
        (status = 400, description = "A field is invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin or the coach's user", body = ErrorBody),
        (status = 404, description = "No such coach", body = ErrorBody),
    )
)]
pub async fn update_coach(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<CoachView>, ApiError> {
    let input = coach_input(&body, id.clone())?;
    let c = call(&state, rid, &caller, &ops::UPDATE_COACH, input, Some(id)).await?;
    Ok(Json(c.into()))
}

/// `GET /coaching/coaches/:id/availability?from=&to=`: the coach's open slots that start
/// in `[from, to)`: on the schedule, still to come, and not booked.
#[utoipa::path(
    get,
    path = "/coaching/coaches/{id}/availability",
    tag = "coaching",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The coach's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"),
        SlotRange,
    ),
    responses(
        (status = 200, description = "The open slots, soonest first", body = SlotsView),
        (status = 400, description = "`from` or `to` is not RFC 3339, `to` is not after `from` or more than 62 days after it", body = ErrorBody),
        (status = 404, description = "No such coach", body = ErrorBody),
    )
)]
pub async fn availability(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Query(range): Query<SlotRange>,
) -> Result<Json<SlotsView>, ApiError> {
    let msg = dm::SlotQuery {
        coach_id: id,
        from: range.from,
        to: range.to,
    };
    let s = call(&state, rid, &caller, &ops::AVAILABILITY, msg, None).await?;
    Ok(Json(SlotsView {
        slots: s
            .slots
            .into_iter()
            .map(|s| SlotView {
                start: s.start,
                end: s.end,
            })
            .collect(),
    }))
}

/// `POST /coaching/bookings`: `{"coach_id", "start"}` books that open slot for the caller;
/// 201 with the booking. Never two bookings for one slot, even when nodes race: the loser
/// gets 409.
#[utoipa::path(
    post,
    path = "/coaching/bookings",
    tag = "coaching",
    security(("bearer" = [])),
    request_body = BookBody,
    responses(
        (status = 201, description = "The booking", body = BookingView),
        (status = 400, description = "`coach_id` or `start` missing or invalid; `start` is past, off the coach's grid, outside their availability or inside an exception", body = ErrorBody),
        (status = 404, description = "No such coach", body = ErrorBody),
        (status = 409, description = "The slot is taken", body = ErrorBody),
    )
)]
pub async fn book(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<BookingView>), ApiError> {
    let mut o = Object::new(&body)?;
    let msg = dm::BookInput {
        coach_id: o.string("coach_id").unwrap_or_default(),
        start: o.string("start").unwrap_or_default(),
    };
    o.finish()?;
    // An id that is no id is refused by the service (400 on `coach_id`) wherever it runs.
    let entity = Some(msg.coach_id.clone()).filter(|id| !id.is_empty());
    let b = call(&state, rid, &caller, &ops::BOOK, msg, entity).await?;
    Ok((StatusCode::CREATED, Json(b.into())))
}

/// `GET /coaching/bookings?page=&per_page=`: the caller's bookings, as client and as a
/// coach's user, soonest first (cancelled ones too).
#[utoipa::path(
    get,
    path = "/coaching/bookings",
    tag = "coaching",
    security(("bearer" = [])),
    params(Paging),
    responses((status = 200, description = "A page of the caller's bookings, soonest first", body = Page<BookingView>))
)]
pub async fn list_bookings(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<BookingView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let msg = dm::ListPage { page, per_page };
    let p = call(&state, rid, &caller, &ops::LIST_BOOKINGS, msg, None).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(BookingView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `DELETE /coaching/bookings/:id`: cancels the booking (its client, the coach's user or an
/// admin); the slot is open again. 200 with the booking, now `cancelled`.
#[utoipa::path(
    delete,
    path = "/coaching/bookings/{id}",
    tag = "coaching",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The booking's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The booking, now `cancelled`", body = BookingView),
        (status = 404, description = "No such booking, or not the caller's", body = ErrorBody),
        (status = 409, description = "The booking is cancelled already", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BookingView>, ApiError> {
    let b = call(&state, rid, &caller, &ops::CANCEL, dm::Ref { id }, None).await?;
    Ok(Json(b.into()))
}

/// `GET /coaching/bookings/:id/notes`: the booking's notes, oldest first (its client and
/// the coach's user only).
#[utoipa::path(
    get,
    path = "/coaching/bookings/{id}/notes",
    tag = "coaching",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The booking's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The notes, oldest first", body = List<NoteView>),
        (status = 404, description = "No such booking, or the caller is not its client or coach", body = ErrorBody),
    )
)]
pub async fn notes(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<NoteView>>, ApiError> {
    let n = call(&state, rid, &caller, &ops::NOTES, dm::Ref { id }, None).await?;
    let items: Vec<NoteView> = n.items.into_iter().map(Into::into).collect();
    Ok(Json(List {
        total: items.len(),
        items,
    }))
}

/// `POST /coaching/bookings/:id/notes`: `{"text"}`; 201 with the note (its client and the
/// coach's user only).
#[utoipa::path(
    post,
    path = "/coaching/bookings/{id}/notes",
    tag = "coaching",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The booking's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = NoteBody,
    responses(
        (status = 201, description = "The note", body = NoteView),
        (status = 400, description = "`text` missing, blank or too long", body = ErrorBody),
        (status = 404, description = "No such booking, or the caller is not its client or coach", body = ErrorBody),
    )
)]
pub async fn add_note(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<NoteView>), ApiError> {
    let mut o = Object::new(&body)?;
    let msg = dm::NoteInput {
        booking_id: id,
        text: o.string("text"),
    };
    o.finish()?;
    let n = call(&state, rid, &caller, &ops::ADD_NOTE, msg, None).await?;
    Ok((StatusCode::CREATED, Json(n.into())))
}
