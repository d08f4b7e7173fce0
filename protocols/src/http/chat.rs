//! Chat and live connections over REST: chat requests, messages, `POST /broadcast` (admin)
//! and `GET /connections`. The WebSocket itself is [`crate::ws`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use troupe_actors::chat::{self, messages as cm};
use troupe_actors::hub::{self, frames};
use troupe_actors::mesh::{Call, Code, MeshError, Op};
use troupe_actors::store::time::rfc3339_millis;
use utoipa::ToSchema;

use super::auth::{Admin, Caller};
use super::identity::{List, Page, Paging};
use super::json::Json as Body;
use super::openapi::{self, ErrorBody, Rule};
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A call of `op` with `req` for `caller`.
fn call<Req, Rep>(op: &Op<Req, Rep>, req: Req, caller: &Caller, rid: String) -> Call<Rep>
where
    Req: prost::Message + Default,
    Rep: prost::Message,
{
    op.call(req).caller(caller.to_proto()).request_id(rid)
}

/// A chat request as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatRequestView {
    /// Opaque id.
    pub id: String,
    /// Who asked.
    pub from_user_id: String,
    /// The asker's username.
    pub from_username: String,
    /// Who is asked.
    pub to_user_id: String,
    /// The addressee's username.
    pub to_username: String,
    /// `pending` or `accepted`.
    pub status: String,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

impl From<cm::ChatRequest> for ChatRequestView {
    fn from(r: cm::ChatRequest) -> Self {
        Self {
            id: r.id,
            from_user_id: r.from_user_id,
            from_username: r.from_username,
            to_user_id: r.to_user_id,
            to_username: r.to_username,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A stored chat message as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatMessageView {
    /// Opaque id; ids sort by creation time.
    pub id: String,
    /// The sender.
    pub sender_id: String,
    /// The recipient.
    pub recipient_id: String,
    /// The opaque ciphertext, as sent.
    pub ciphertext: String,
    /// The opaque nonce, as sent; empty when none was given.
    pub nonce: String,
    /// When it was stored, RFC 3339 UTC with milliseconds.
    pub created_at: String,
}

impl From<cm::ChatMessage> for ChatMessageView {
    fn from(m: cm::ChatMessage) -> Self {
        Self {
            id: m.id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            ciphertext: m.ciphertext,
            nonce: m.nonce,
            created_at: m.created_at,
        }
    }
}

impl From<cm::MessagePage> for Page<ChatMessageView> {
    fn from(p: cm::MessagePage) -> Self {
        Self {
            items: p.items.into_iter().map(ChatMessageView::from).collect(),
            total: p.total,
            page: p.page,
            per_page: p.per_page,
        }
    }
}

/// `GET /chat-requests/incoming`: requests addressed to the caller, still pending.
#[utoipa::path(
    get,
    path = "/chat-requests/incoming",
    tag = "chat",
    security(("bearer" = [])),
    responses((status = 200, description = "The pending requests addressed to the caller, oldest first", body = List<ChatRequestView>))
)]
pub async fn incoming(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<List<ChatRequestView>>, ApiError> {
    let list: cm::ChatRequestList = ask(&state, call(&chat::INCOMING, (), &caller, rid)).await?;
    let items: Vec<ChatRequestView> = list.items.into_iter().map(ChatRequestView::from).collect();
    Ok(Json(items.into()))
}

/// Body of `POST /chat-requests/send`: the addressee, by id or by username (one is
/// required; `to_user_id` wins when both are given and it is not empty; the schema's
/// `allOf` states it).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SendRequestBody {
    /// The addressee's id (1 to 64 characters, no control characters).
    #[serde(default)]
    pub to_user_id: String,
    /// Or their username, in any case (1 to 254 characters, no control characters).
    #[serde(default)]
    pub username: String,
}

impl Rule for SendRequestBody {
    fn rules() -> Vec<serde_json::Value> {
        let valid = |max: usize| {
            serde_json::json!({
                "type": "string", "minLength": 1, "maxLength": max, "pattern": openapi::NO_CONTROL
            })
        };
        let empty = serde_json::json!({"type": "string", "maxLength": 0});
        vec![openapi::first_given(&[
            ("to_user_id", valid(64), empty.clone()),
            ("username", valid(254), empty),
        ])]
    }
}

/// `POST /chat-requests/send`: asks a user (by id or username) to become a contact.
#[utoipa::path(
    post,
    path = "/chat-requests/send",
    tag = "chat",
    security(("bearer" = [])),
    request_body = SendRequestBody,
    responses(
        (status = 201, description = "The new request, `pending`", body = ChatRequestView),
        (status = 400, description = "Neither `to_user_id` nor `username` given, a malformed one, or the caller themself", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already contacts, or a request between them is pending", body = ErrorBody),
        (status = 429, description = "The caller's chat request rate is reached (`[quotas] chat_requests_per_user_per_minute`, cluster-wide; `Retry-After` says when to retry), or the caller has `[quotas] pending_chat_requests_per_user` requests waiting to be accepted (no `Retry-After`: one frees when accepted); `details.quota` names the quota, with its `limit`", body = ErrorBody),
    )
)]
pub async fn send_request(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<SendRequestBody>,
) -> Result<(StatusCode, Json<ChatRequestView>), ApiError> {
    state
        .limit(
            troupe_actors::auth::limits::Class::Chat,
            &caller.user_id,
            &rid,
        )
        .await?;
    let r: cm::ChatRequest = ask(
        &state,
        call(
            &chat::SEND_REQUEST,
            cm::SendRequest {
                to_user_id: b.to_user_id,
                username: b.username,
            },
            &caller,
            rid,
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

/// `POST /chat-requests/:id/accept`: the addressee accepts; both become contacts.
#[utoipa::path(
    post,
    path = "/chat-requests/{id}/accept",
    tag = "chat",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The chat request's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The request, now `accepted`", body = ChatRequestView),
        (status = 404, description = "No such request addressed to the caller", body = ErrorBody),
        (status = 409, description = "The request was already accepted", body = ErrorBody),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChatRequestView>, ApiError> {
    let r: cm::ChatRequest = ask(
        &state,
        call(&chat::ACCEPT, cm::AcceptRequest { id }, &caller, rid),
    )
    .await?;
    Ok(Json(r.into()))
}

/// Body of `POST /messages/send`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SendMessageBody {
    /// A contact of the caller (required; at most 64 bytes, no control characters).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub recipient_id: String,
    /// Opaque ciphertext, e.g. base64 (required; at most `[chat] max_message_bytes` bytes:
    /// by default 64 KiB, or half the HTTP body limit when that is smaller; over it: 413).
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub ciphertext: String,
    /// Optional opaque nonce (at most 1024 bytes).
    #[serde(default)]
    pub nonce: Option<String>,
}

/// `POST /messages/send`: stores a message to a contact (201 once committed), then
/// delivers it live. A ciphertext over the cap is 413.
#[utoipa::path(
    post,
    path = "/messages/send",
    tag = "chat",
    security(("bearer" = [])),
    request_body = SendMessageBody,
    responses(
        (status = 201, description = "The stored message; live delivery follows", body = ChatMessageView),
        (status = 400, description = "`recipient_id` or `ciphertext` missing or malformed, or the nonce too long", body = ErrorBody),
        (status = 403, description = "The recipient is not one of the caller's contacts", body = ErrorBody),
        (status = 404, description = "No such recipient", body = ErrorBody),
        (status = 413, description = "The ciphertext is over the cap (`details.limit_bytes`)", body = ErrorBody),
    )
)]
pub async fn send_message(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(b): Body<SendMessageBody>,
) -> Result<(StatusCode, Json<ChatMessageView>), Response> {
    let sent: Result<cm::ChatMessage, ApiError> = ask(
        &state,
        call(
            &chat::SEND_MESSAGE,
            cm::SendMessage {
                recipient_id: b.recipient_id,
                ciphertext: b.ciphertext,
                nonce: b.nonce.unwrap_or_default(),
            },
            &caller,
            rid,
        ),
    )
    .await;
    match sent {
        Ok(m) => Ok((StatusCode::CREATED, Json(m.into()))),
        Err(e) if e.0.code == Code::ResourceExhausted && e.0.message == chat::TOO_LARGE => {
            let mut resp = e.into_response();
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            Err(resp)
        }
        Err(e) => Err(e.into_response()),
    }
}

/// `GET /messages/`: every message the caller sent or received, newest first, paged.
#[utoipa::path(
    get,
    path = "/messages",
    tag = "chat",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of the caller's messages, newest first", body = Page<ChatMessageView>),
        (status = 400, description = "`per_page` (or `limit`) over 100", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<ChatMessageView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: cm::MessagePage = ask(
        &state,
        call(
            &chat::LIST_MESSAGES,
            cm::ListMessages {
                with: String::new(),
                page,
                per_page,
            },
            &caller,
            rid,
        ),
    )
    .await?;
    Ok(Json(p.into()))
}

/// `GET /messages/conversation/:contact_id`: the conversation, oldest first, paged.
#[utoipa::path(
    get,
    path = "/messages/conversation/{contact_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(
        ("contact_id" = String, Path, description = "The other party's user id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"),
        Paging,
    ),
    responses(
        (status = 200, description = "A page of the conversation, oldest first", body = Page<ChatMessageView>),
        (status = 400, description = "A malformed `contact_id`, or `per_page` (or `limit`) over 100", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn conversation(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(contact_id): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<ChatMessageView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: cm::MessagePage = ask(
        &state,
        call(
            &chat::CONVERSATION,
            cm::ListMessages {
                with: contact_id,
                page,
                per_page,
            },
            &caller,
            rid,
        ),
    )
    .await?;
    Ok(Json(p.into()))
}

/// Body of `POST /broadcast`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BroadcastBody {
    /// The text every connection receives (required, not only whitespace; at most 16384
    /// bytes).
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 16384, pattern = r"\S")]
    pub message: String,
}

/// Longest broadcast text, in bytes.
const BROADCAST_MAX: usize = 16 * 1024;

/// What `POST /broadcast` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastReport {
    /// The broadcast's id, also the `id` of the `broadcast` frame: the request's
    /// `x-request-id`.
    pub id: String,
    /// Connections that took the frame, over all nodes.
    pub delivered: u32,
    /// The nodes that answered, sorted.
    pub nodes: Vec<String>,
}

/// `POST /broadcast` (admin): a frame to every open connection on every node.
#[utoipa::path(
    post,
    path = "/broadcast",
    tag = "chat",
    security(("admin" = [])),
    request_body = BroadcastBody,
    responses(
        (status = 200, description = "The `broadcast` frame was queued on every open connection of the nodes that answered", body = BroadcastReport),
        (status = 400, description = "`message` missing, blank or over 16384 bytes", body = ErrorBody),
    )
)]
pub async fn broadcast(
    _: Admin,
    State(state): State<AppState>,
    Rid(rid): Rid,
    Body(b): Body<BroadcastBody>,
) -> Result<Json<BroadcastReport>, ApiError> {
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
    Ok(Json(BroadcastReport {
        id,
        delivered,
        nodes,
    }))
}

/// One open WebSocket connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `node:n`: the node and the connection's number there.
    pub id: String,
    /// The connected user.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// The node holding the connection.
    pub node: String,
    /// When it opened, RFC 3339 UTC with milliseconds.
    pub since: String,
}

/// `GET /connections` (any user, or the admin token): open connections cluster-wide (user,
/// node, since), gathered from every live member.
#[utoipa::path(
    get,
    path = "/connections",
    tag = "chat",
    security(("bearer" = []), ("admin" = [])),
    responses((status = 200, description = "Every open connection of the live members, by node and opening time", body = List<ConnectionView>))
)]
pub async fn connections(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    admin: Result<Admin, ApiError>,
) -> Result<Json<List<ConnectionView>>, ApiError> {
    if admin.is_err() {
        caller?;
    }
    let items: Vec<ConnectionView> = hub::list_all(state.mesh.router(), "")
        .await
        .into_iter()
        .map(|c| ConnectionView {
            id: format!("{}:{}", c.node, c.id),
            user_id: c.user_id,
            username: c.username,
            since: rfc3339_millis(c.since_ms),
            node: c.node,
        })
        .collect();
    Ok(Json(items.into()))
}
