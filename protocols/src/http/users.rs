//! Profiles, the user directory, admin user management, public keys and contacts.
//! A user reads and changes only their own profile unless admin.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth;
use troupe_actors::mesh::{Call, MeshError};
use troupe_actors::users::{self, messages as um};

use super::account::delete_user;
use super::auth::{Admin, Caller};
use super::identity::{user_json, Paging};
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

async fn get_user(state: &AppState, rid: String, id: String) -> Result<um::User, ApiError> {
    ask(
        state,
        Call::new(users::NAME, users::GET)
            .request_id(rid)
            .payload(&um::GetRequest { id }),
    )
    .await
}

/// `GET /profile`, `GET /users/profile`: the caller's profile.
pub async fn my_profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(
        &get_user(&state, rid, caller.user_id).await?,
    )))
}

/// `GET /users/profile/:id`: a profile, for its owner or an admin.
pub async fn profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.may_act_for(&id)?;
    Ok(Json(user_json(&get_user(&state, rid, id).await?)))
}

/// Body of profile updates; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateBody {
    /// Display name.
    pub full_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// New password (ends every session of the user).
    pub password: Option<String>,
    /// Roles (admin only).
    pub roles: Option<Vec<String>>,
}

async fn update(
    state: &AppState,
    rid: String,
    id: String,
    b: UpdateBody,
    as_admin: bool,
) -> Result<Json<Value>, ApiError> {
    let user: um::User = ask(
        state,
        Call::new(auth::NAME, auth::ops::UPDATE_USER)
            .request_id(rid)
            .payload(&um::UpdateRequest {
                id,
                full_name: b.full_name,
                email: b.email,
                password: b.password,
                roles: b.roles.map(|roles| um::RoleList { roles }),
                as_admin,
                version: 0,
            }),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

/// `PUT /users/profile`: the caller changes their own profile (not their roles).
pub async fn update_my_profile(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    update(&state, rid, caller.user_id, b, false).await
}

/// `PUT /users/:id` (admin).
pub async fn admin_update(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    update(&state, rid, id, b, true).await
}

/// `DELETE /users/:id` (admin).
pub async fn admin_delete(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    delete_user(&state, rid, id).await
}

fn page_json(p: &um::UserPage) -> Value {
    json!({
        "items": p.items.iter().map(user_json).collect::<Vec<_>>(),
        "total": p.total,
        "page": p.page,
        "per_page": p.per_page,
    })
}

/// `GET /users`: the directory, paged.
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: um::UserPage = ask(
        &state,
        Call::new(users::NAME, users::LIST)
            .request_id(rid)
            .payload(&um::ListRequest { page, per_page }),
    )
    .await?;
    Ok(Json(page_json(&p)))
}

/// `GET /users/:id`.
pub async fn get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(&get_user(&state, rid, id).await?)))
}

/// Body of `POST /users/search`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchBody {
    /// Text to find in usernames, emails and names.
    #[serde(default)]
    pub query: String,
    /// Page.
    #[serde(default)]
    pub page: u32,
    /// Items per page.
    #[serde(default)]
    pub per_page: u32,
}

async fn search(
    state: &AppState,
    rid: String,
    req: um::SearchRequest,
) -> Result<Json<Value>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(MeshError::invalid("query must not be empty")
            .with_details(json!({"fields": {"query": "required"}}))
            .into());
    }
    let p: um::UserPage = ask(
        state,
        Call::new(users::NAME, users::SEARCH)
            .request_id(rid)
            .payload(&req),
    )
    .await?;
    Ok(Json(page_json(&p)))
}

/// `POST /users/search`.
pub async fn search_post(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Body(b): Body<SearchBody>,
) -> Result<Json<Value>, ApiError> {
    let req = um::SearchRequest {
        query: b.query,
        prefix_only: false,
        page: b.page,
        per_page: b.per_page,
    };
    search(&state, rid, req).await
}

/// Query of `GET /users/search`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    /// Username prefix.
    #[serde(default)]
    pub q: String,
    /// Paging.
    #[serde(flatten)]
    pub paging: Paging,
}

/// `GET /users/search?q=`: users by username prefix.
pub async fn search_get(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = q.paging.resolve();
    let req = um::SearchRequest {
        query: q.q,
        prefix_only: true,
        page,
        per_page,
    };
    search(&state, rid, req).await
}

/// Body of `POST /keys`.
#[derive(Debug, Default, Deserialize)]
pub struct KeyBody {
    /// The public key (opaque to the server).
    #[serde(default)]
    pub public_key: String,
    /// Its algorithm (default x25519).
    #[serde(default)]
    pub algorithm: String,
}

fn key_json(k: &um::PublicKey) -> Value {
    json!({
        "user_id": k.user_id,
        "public_key": k.public_key,
        "algorithm": k.algorithm,
        "updated_at": k.updated_at,
    })
}

/// `POST /keys`: store the caller's public key.
pub async fn put_key(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<KeyBody>,
) -> Result<Json<Value>, ApiError> {
    let k: um::PublicKey = ask(
        &state,
        Call::new(users::NAME, users::PUT_KEY)
            .request_id(rid)
            .payload(&um::PutKeyRequest {
                user_id: caller.user_id,
                public_key: b.public_key,
                algorithm: b.algorithm,
            }),
    )
    .await?;
    Ok(Json(key_json(&k)))
}

/// `GET /keys/:user_id`.
pub async fn get_key(
    State(state): State<AppState>,
    Rid(rid): Rid,
    _: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let k: um::PublicKey = ask(
        &state,
        Call::new(users::NAME, users::GET_KEY)
            .request_id(rid)
            .payload(&um::GetKeyRequest { user_id }),
    )
    .await?;
    Ok(Json(key_json(&k)))
}

/// `GET /contacts/`: the caller's contacts.
pub async fn contacts(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let list: um::ContactList = ask(
        &state,
        Call::new(users::NAME, users::LIST_CONTACTS)
            .request_id(rid)
            .payload(&um::ListContactsRequest {
                user_id: caller.user_id,
            }),
    )
    .await?;
    let items: Vec<Value> = list
        .items
        .iter()
        .map(|c| json!({"user_id": c.user_id, "username": c.username, "full_name": c.full_name, "added_at": c.added_at}))
        .collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// `GET /test-db`: one store round trip through the users service.
pub async fn test_db(
    State(state): State<AppState>,
    Rid(rid): Rid,
) -> Result<Json<Value>, ApiError> {
    let p: um::DbPing = ask(
        &state,
        Call::new(users::NAME, users::DB_PING).request_id(rid),
    )
    .await?;
    Ok(Json(json!({
        "db": "ok",
        "backend": p.backend,
        "latency_ms": p.latency_us as f64 / 1000.0,
    })))
}
