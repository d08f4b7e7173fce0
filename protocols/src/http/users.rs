//! Profiles, the user directory, admin user management, public keys and contacts.
//! A user reads and changes only their own profile unless admin.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use troupe_actors::auth;
use troupe_actors::mesh::MeshError;
use troupe_actors::users::validate::PER_PAGE_MAX;
use troupe_actors::users::{self, messages as um};
use utoipa::ToSchema;

use super::account::{delete_user, DeletedUserView};
use super::auth::{Admin, Caller};
use super::identity::{check_paging, DirectoryUser, List, Page, Paging, RoleName, UserView};
use super::json::Json as Body;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

async fn get_user(state: &AppState, rid: String, id: String) -> Result<um::User, ApiError> {
    ask(
        state,
        users::GET.call(um::GetRequest { id }).request_id(rid),
    )
    .await
}

/// `GET /profile`, `GET /users/profile`: the caller's profile.
#[utoipa::path(
    get,
    path = "/users/profile",
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile", body = UserView))
)]
pub async fn my_profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(get_user(&state, rid, caller.user_id).await?.into()))
}

/// `GET /users/profile/:id`: a profile, for its owner or an admin.
#[utoipa::path(
    get,
    path = "/users/profile/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The user's profile", body = UserView),
        (status = 403, description = "Neither the user nor an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    caller.may_act_for(&id)?;
    Ok(Json(get_user(&state, rid, id).await?.into()))
}

/// Body of profile updates (`PUT /users/{id}`, an admin's; and within [`ProfileBody`]);
/// absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateBody {
    /// New display name: at most 100 characters without control characters; may be empty.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub full_name: Option<String>,
    /// New email address: at most 254 characters (one `@`, a non-empty local part, a
    /// domain with a dot between non-empty labels, no spaces); unique ignoring case. Another
    /// address (not the same one in other case) makes the account unconfirmed until the code
    /// sent to it is confirmed, and the old address is told.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@.\s\x00-\x1f\x7f-\x9f]+(\.[^@.\s\x00-\x1f\x7f-\x9f]+)+$"
    )]
    pub email: Option<String>,
    /// New password: 8 to 128 characters with at least one letter and one digit. Ends
    /// every other session of the user (`PUT /users/profile`; the caller's own session stays
    /// open) or every session (`PUT /users/{id}`, an admin's).
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = r"([^\W\d_][\s\S]*[0-9]|[0-9][\s\S]*[^\W\d_])"
    )]
    pub password: Option<String>,
    /// New roles, admin only (`PUT /users/{id}`; 403 elsewhere): at most 16 names of 1 to 32
    /// lowercase letters, digits, `_` or `-` (duplicates dropped); empty means `["user"]`.
    #[schema(max_items = 16, value_type = Option<Vec<RoleName>>)]
    pub roles: Option<Vec<String>>,
}

/// Body of `PUT /users/profile`: the fields of [`UpdateBody`], and the caller's current
/// password when they change their password or email.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProfileBody {
    /// The fields to change.
    #[serde(flatten)]
    pub change: UpdateBody,
    /// The caller's current password: required with `password`, and with an `email` other
    /// than the current one (ignoring case); 400 naming `current_password` without it, 403
    /// when wrong (wrong guesses count against the per-account login limit, then 429). Not
    /// needed to change other fields.
    #[schema(max_length = 128)]
    pub current_password: Option<String>,
}

impl super::openapi::Rule for ProfileBody {
    fn rules() -> Vec<serde_json::Value> {
        // A new password needs the current one (so does another email, which a schema
        // cannot tell from the current one).
        vec![json!({
            "if": {"required": ["password"], "properties": {"password": {"type": "string"}}},
            "then": {
                "required": ["current_password"],
                "properties": {"current_password": {"type": "string", "minLength": 1}}
            }
        })]
    }
}

/// Changes user `id` through the auth service: as an admin (`caller` none), or as the
/// caller changing their own profile (whose session stays open after a password change).
async fn update(
    state: &AppState,
    rid: String,
    id: String,
    b: UpdateBody,
    current_password: Option<String>,
    caller: Option<&Caller>,
) -> Result<Json<UserView>, ApiError> {
    let mut call = auth::ops::UPDATE_USER
        .call(um::UpdateRequest {
            id,
            full_name: b.full_name,
            email: b.email,
            password: b.password,
            roles: b.roles.map(|roles| um::RoleList { roles }),
            as_admin: caller.is_none(),
            version: 0,
            current_password,
            reauthenticated: false,
        })
        .request_id(rid);
    if let Some(caller) = caller {
        call = call.caller(caller.to_proto());
    }
    let user: um::User = ask(state, call).await?;
    Ok(Json(user.into()))
}

/// `PUT /users/profile`: the caller changes their own profile (not their roles); the
/// password and the email only with `current_password`.
#[utoipa::path(
    put,
    path = "/users/profile",
    tag = "users",
    security(("bearer" = [])),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The caller's profile as changed. A new email is unconfirmed \
            (`confirmed: false`) until the code sent to it is confirmed (`POST /users/confirm-registration`), \
            and the old address is told. A new password ends every other session of the caller", body = UserView),
        (status = 400, description = "A field is invalid, or `current_password` is missing for a \
            password or email change (`details.fields`)", body = ErrorBody),
        (status = 403, description = "`current_password` is wrong, or `roles` given: only an admin changes roles", body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords (the login limit)", body = ErrorBody),
        (status = 409, description = "Email already registered, or the profile is being changed concurrently", body = ErrorBody),
    )
)]
pub async fn update_my_profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<ProfileBody>,
) -> Result<Json<UserView>, ApiError> {
    let id = caller.user_id.clone();
    update(&state, rid, id, b.change, b.current_password, Some(&caller)).await
}

/// `PUT /users/:id` (admin).
#[utoipa::path(
    put,
    path = "/users/{id}",
    tag = "users",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The user's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The user as changed (no current password needed). A new email is unconfirmed until the code sent to it is confirmed, and the old address is told; a new password ends every session of the user", body = UserView),
        (status = 400, description = "A field is invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin credential", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Email already registered, or the user is being changed concurrently", body = ErrorBody),
    )
)]
pub async fn admin_update(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<UserView>, ApiError> {
    update(&state, rid, id, b, None, None).await
}

/// `DELETE /users/:id` (admin).
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The user's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The user is deleted, after their sessions ended; as it was", body = DeletedUserView),
        (status = 403, description = "Not an admin credential", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn admin_delete(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<DeletedUserView>, ApiError> {
    delete_user(&state, rid, id).await
}

/// A page of the directory as `caller` may see it (emails only their own, or all for an
/// admin).
fn directory_page(p: um::UserPage, caller: &Caller) -> Page<DirectoryUser> {
    Page {
        items: p
            .items
            .into_iter()
            .map(|u| DirectoryUser::seen_by(u, caller))
            .collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }
}

/// `GET /users`: the directory, paged.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of all users, oldest first (20 per page unless asked); \
            `email` only on the caller's own entry, or on every entry for an admin", body = Page<DirectoryUser>),
        (status = 400, description = "`per_page` above 100", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<DirectoryUser>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: um::UserPage = ask(
        &state,
        users::LIST
            .call(um::ListRequest { page, per_page })
            .request_id(rid),
    )
    .await?;
    Ok(Json(directory_page(p, &caller)))
}

/// `GET /users/:id`.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The user; `email` only when the caller is this user or an admin", body = DirectoryUser),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DirectoryUser>, ApiError> {
    let user = get_user(&state, rid, id).await?;
    Ok(Json(DirectoryUser::seen_by(user, &caller)))
}

/// Body of `POST /users/search`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SearchBody {
    /// Required: the text to find in usernames and display names (and emails, for an
    /// admin), ignoring case;
    /// 1 to 100 characters without control characters, not only spaces. `%` and `_` match
    /// themselves.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub query: String,
    /// Page number from 1, at most 1000000; 0 or absent means 1.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub page: u32,
    /// Users per page, at most 100; 0 or absent means 20.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub per_page: u32,
}

/// Searches as `caller`: only an admin's search matches emails (anyone else could learn
/// an address by searching for it), and answers show emails as [`DirectoryUser`] says.
async fn search(
    state: &AppState,
    rid: String,
    mut req: um::SearchRequest,
    caller: &Caller,
) -> Result<Json<Page<DirectoryUser>>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(MeshError::invalid("query must not be empty")
            .with_details(json!({"fields": {"query": "required"}}))
            .into());
    }
    // Per user, cluster-wide: a token cannot page through the directory at will.
    state
        .limit(
            troupe_actors::auth::limits::Class::Search,
            &caller.user_id,
            &rid,
        )
        .await?;
    req.match_email = caller.is_admin();
    let p: um::UserPage = ask(state, users::SEARCH.call(req).request_id(rid)).await?;
    Ok(Json(directory_page(p, caller)))
}

/// `POST /users/search`.
#[utoipa::path(
    post,
    path = "/users/search",
    tag = "users",
    security(("bearer" = [])),
    request_body = SearchBody,
    responses(
        (status = 200, description = "A page of the users whose username or display name (or, for \
            an admin, email) contains the query, by username; `email` only on the caller's own entry, \
            or on every entry for an admin", body = Page<DirectoryUser>),
        (status = 400, description = "No query, or a query or page size out of bounds", body = ErrorBody),
        (status = 429, description = "Too many searches by the caller (`[limits] search_per_user_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn search_post(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<SearchBody>,
) -> Result<Json<Page<DirectoryUser>>, ApiError> {
    check_paging(Some(b.page), Some(b.per_page), None, None, PER_PAGE_MAX)
        .map_err(MeshError::invalid)?;
    let req = um::SearchRequest {
        query: b.query,
        prefix_only: false,
        page: b.page,
        per_page: b.per_page,
        match_email: false,
    };
    search(&state, rid, req, &caller).await
}

/// Query of `GET /users/search`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Required: the username prefix to look for, ignoring case; 1 to 100 characters
    /// without control characters, not only spaces. `%` and `_` match themselves.
    #[serde(default)]
    #[param(
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub q: String,
}

/// `GET /users/search?q=`: users by username prefix.
#[utoipa::path(
    get,
    path = "/users/search",
    tag = "users",
    security(("bearer" = [])),
    params(SearchQuery, Paging),
    responses(
        (status = 200, description = "A page of the users whose username starts with `q`, by username; \
            `email` only on the caller's own entry, or on every entry for an admin", body = Page<DirectoryUser>),
        (status = 400, description = "No `q`, or `q` or the page size out of bounds", body = ErrorBody),
        (status = 429, description = "Too many searches by the caller (`[limits] search_per_user_per_minute`, cluster-wide); `Retry-After` says when to retry", body = ErrorBody),
    )
)]
pub async fn search_get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(q): Query<SearchQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<DirectoryUser>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let req = um::SearchRequest {
        query: q.q,
        prefix_only: true,
        page,
        per_page,
        match_email: false,
    };
    search(&state, rid, req, &caller).await
}

/// Body of `POST /keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct KeyBody {
    /// Required: the public key as text (e.g. base64), 1 byte to 8 KiB without control
    /// characters; opaque to the server.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 8192,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub public_key: String,
    /// Its algorithm: 1 to 32 characters of letters, digits, `_`, `.` or `-`; empty or
    /// absent means `x25519`.
    #[serde(default)]
    #[schema(max_length = 32, pattern = r"^[A-Za-z0-9_.-]*$")]
    pub algorithm: String,
}

/// A user's public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// The owner's user id.
    pub user_id: String,
    /// The key as stored.
    pub public_key: String,
    /// Its algorithm.
    pub algorithm: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

impl From<um::PublicKey> for KeyView {
    fn from(k: um::PublicKey) -> Self {
        Self {
            user_id: k.user_id,
            public_key: k.public_key,
            algorithm: k.algorithm,
            updated_at: k.updated_at,
        }
    }
}

/// `POST /keys`: store the caller's public key.
#[utoipa::path(
    post,
    path = "/keys",
    tag = "users",
    security(("bearer" = [])),
    request_body = KeyBody,
    responses(
        (status = 200, description = "The caller's key as stored (any earlier one is replaced)", body = KeyView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
    )
)]
pub async fn put_key(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<KeyBody>,
) -> Result<Json<KeyView>, ApiError> {
    let k: um::PublicKey = ask(
        &state,
        users::PUT_KEY
            .call(um::PutKeyRequest {
                user_id: caller.user_id,
                public_key: b.public_key,
                algorithm: b.algorithm,
            })
            .request_id(rid),
    )
    .await?;
    Ok(Json(k.into()))
}

/// `GET /keys/:user_id`.
#[utoipa::path(
    get,
    path = "/keys/{user_id}",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The user's public key", body = KeyView),
        (status = 404, description = "No public key for this user", body = ErrorBody),
    )
)]
pub async fn get_key(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let k: um::PublicKey = ask(
        &state,
        users::GET_KEY
            .call(um::GetKeyRequest { user_id })
            .request_id(rid),
    )
    .await?;
    Ok(Json(k.into()))
}

/// One of a user's contacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    /// The contact's user id.
    pub user_id: String,
    /// The contact's username.
    pub username: String,
    /// The contact's display name; may be empty.
    pub full_name: String,
    /// When the contact was added, RFC 3339 UTC with milliseconds.
    pub added_at: String,
}

/// `GET /contacts/`: the caller's contacts.
#[utoipa::path(
    get,
    path = "/contacts",
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's contacts (made by accepted chat requests), by username", body = List<ContactView>))
)]
pub async fn contacts(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<List<ContactView>>, ApiError> {
    let list: um::ContactList = ask(
        &state,
        users::LIST_CONTACTS
            .call(um::ListContactsRequest {
                user_id: caller.user_id,
            })
            .request_id(rid),
    )
    .await?;
    let items: Vec<ContactView> = list
        .items
        .into_iter()
        .map(|c| ContactView {
            user_id: c.user_id,
            username: c.username,
            full_name: c.full_name,
            added_at: c.added_at,
        })
        .collect();
    Ok(Json(items.into()))
}

/// The answer of `GET /test-db`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbPingView {
    /// Always `ok` (a failed round trip is an error).
    #[schema(example = "ok")]
    pub db: &'static str,
    /// The store: `sqlite` or `postgres`.
    pub backend: String,
    /// The round trip, milliseconds (with microsecond precision).
    pub latency_ms: f64,
}

/// `GET /test-db`: one store round trip through the users service.
#[utoipa::path(
    get,
    path = "/test-db",
    tag = "users",
    responses((status = 200, description = "The store answered", body = DbPingView))
)]
pub async fn test_db(
    State(state): State<AppState>,
    Rid(rid): Rid,
) -> Result<Json<DbPingView>, ApiError> {
    let p: um::DbPing = ask(&state, users::DB_PING.call(()).request_id(rid)).await?;
    Ok(Json(DbPingView {
        db: "ok",
        backend: p.backend,
        latency_ms: p.latency_us as f64 / 1000.0,
    }))
}
