//! Chat and live connections over REST: chat requests, messages, `POST /broadcast` (admin)
//! and `GET /connections`. The WebSocket itself is [`crate::ws`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::chat::{self, messages as cm};
use troupe_actors::hub::{self, frames};
use troupe_actors::mesh::{Call, Code, MeshError};
use troupe_actors::store::time::rfc3339_millis;

use super::auth::{Admin, Caller};
use super::identity::Paging;
use super::json::Json as Body;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

fn call(op: &'static str, caller: &Caller, rid: String) -> Call {
    Call::new(chat::NAME, op)
        .caller(caller.to_proto())
        .request_id(rid)
}

fn request_json(r: &cm::ChatRequest) -> Value {
    json!({
        "id": r.id,
        "from_user_id": r.from_user_id,
        "from_username": r.from_username,
        "to_user_id": r.to_user_id,
        "to_username": r.to_username,
        "status": r.status,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

fn message_json(m: &cm::ChatMessage) -> Value {
    json!({
        "id": m.id,
        "sender_id": m.sender_id,
        "recipient_id": m.recipient_id,
        "ciphertext": m.ciphertext,
        "nonce": m.nonce,
        "created_at": m.created_at,
    })
}

fn page_json(p: &cm::MessagePage) -> Value {
    json!({
        "items": p.items.iter().map(message_json).collect::<Vec<_>>(),
        "total": p.total,
        "page": p.page,
        "per_page": p.per_page,
    })
}

/// `GET /chat-requests/incoming`: requests addressed to the caller, still pending.
pub async fn incoming(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let list: cm::ChatRequestList = ask(&state, call(chat::INCOMING, &caller, rid)).await?;
    let items: Vec<Value> = list.items.iter().map(request_json).collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// Body of `POST /chat-requests/send`.
#[derive(Debug, Default, Deserialize)]
pub struct SendRequestBody {
    /// The addressee's id.
    #[serde(default)]
    pub to_user_id: String,
    /// Or their username.
    #[serde(default)]
    pub username: String,
}

/// `POST /chat-requests/send`: asks a user (by id or username) to become a contact.
pub async fn send_request(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<SendRequestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r: cm::ChatRequest = ask(
        &state,
        call(chat::SEND_REQUEST, &caller, rid).payload(&cm::SendRequest {
            to_user_id: b.to_user_id,
            username: b.username,
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(request_json(&r))))
}

/// `POST /chat-requests/:id/accept`: the addressee accepts; both become contacts.
pub async fn accept(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r: cm::ChatRequest = ask(
        &state,
        call(chat::ACCEPT, &caller, rid).payload(&cm::AcceptRequest { id }),
    )
    .await?;
    Ok(Json(request_json(&r)))
}

/// Body of `POST /messages/send`.
#[derive(Debug, Default, Deserialize)]
pub struct SendMessageBody {
    /// A contact of the caller.
    #[serde(default)]
    pub recipient_id: String,
    /// Opaque ciphertext.
    #[serde(default)]
    pub ciphertext: String,
    /// Optional opaque nonce.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// `POST /messages/send`: stores a message to a contact (201 once committed), then
/// delivers it live. A ciphertext over the cap is 413.
pub async fn send_message(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<SendMessageBody>,
) -> Result<(StatusCode, Json<Value>), Response> {
    let sent: Result<cm::ChatMessage, ApiError> = ask(
        &state,
        call(chat::SEND_MESSAGE, &caller, rid).payload(&cm::SendMessage {
            recipient_id: b.recipient_id,
            ciphertext: b.ciphertext,
            nonce: b.nonce.unwrap_or_default(),
        }),
    )
    .await;
    match sent {
        Ok(m) => Ok((StatusCode::CREATED, Json(message_json(&m)))),
        Err(e) if e.0.code == Code::ResourceExhausted && e.0.message == chat::TOO_LARGE => {
            let mut resp = e.into_response();
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            Err(resp)
        }
        Err(e) => Err(e.into_response()),
    }
}

/// `GET /messages/`: every message the caller sent or received, newest first, paged.
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: cm::MessagePage = ask(
        &state,
        call(chat::LIST_MESSAGES, &caller, rid).payload(&cm::ListMessages {
            with: String::new(),
            page,
            per_page,
        }),
    )
    .await?;
    Ok(Json(page_json(&p)))
}

/// `GET /messages/conversation/:contact_id`: the conversation, oldest first, paged.
pub async fn conversation(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(contact_id): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: cm::MessagePage = ask(
        &state,
        call(chat::CONVERSATION, &caller, rid).payload(&cm::ListMessages {
            with: contact_id,
            page,
            per_page,
        }),
    )
    .await?;
    Ok(Json(page_json(&p)))
}

/// Body of `POST /broadcast`.
#[derive(Debug, Default, Deserialize)]
pub struct BroadcastBody {
    /// The text every connection receives.
    #[serde(default)]
    pub message: String,
}

/// Longest broadcast text, in bytes.
const BROADCAST_MAX: usize = 16 * 1024;

/// `POST /broadcast` (admin): a frame to every open connection on every node.
pub async fn broadcast(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<BroadcastBody>,
) -> Result<Json<Value>, ApiError> {
    if b.message.trim().is_empty() {
        return Err(MeshError::invalid("message is required")
            .with_details(json!({"fields": {"message": "required"}}))
            .into());
    }
    if b.message.len() > BROADCAST_MAX {
        return Err(
            MeshError::invalid(format!("message must be at most {BROADCAST_MAX} bytes")).into(),
        );
    }
    let id = if rid.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        rid
    };
    let (delivered, nodes) =
        hub::broadcast_all(state.mesh.router(), frames::broadcast(&b.message, &id)).await;
    Ok(Json(
        json!({ "id": id, "delivered": delivered, "nodes": nodes }),
    ))
}

/// `GET /connections` (any user, or the admin token): open connections cluster-wide (user,
/// node, since), gathered from every live member.
pub async fn connections(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    admin: Result<Admin, ApiError>,
) -> Result<Json<Value>, ApiError> {
    if admin.is_err() {
        caller?;
    }
    let items: Vec<Value> = hub::list_all(state.mesh.router(), "")
        .await
        .iter()
        .map(|c| {
            json!({
                "id": format!("{}:{}", c.node, c.id),
                "user_id": c.user_id,
                "username": c.username,
                "node": c.node,
                "since": rfc3339_millis(c.since_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}
