//! The `chat` service: chat requests that make contacts, and end-to-end encrypted messages
//! between contacts, stored first and then delivered live through the [`crate::hub`]s.
//!
//! # Ops
//! Every op acts for the envelope's caller (`unauthenticated` without one).
//!
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `send_request` | effectful | [`SendRequest`] | [`ChatRequest`] |
//! | `incoming` | idempotent | (none) | [`ChatRequestList`] |
//! | `accept` | effectful | [`AcceptRequest`] | [`ChatRequest`] |
//! | `send_message` | effectful | [`SendMessage`] | [`ChatMessage`] |
//! | `list_messages` | idempotent | [`ListMessages`] | [`MessagePage`] |
//! | `conversation` | idempotent | [`ListMessages`] | [`MessagePage`] |
//!
//! A message is acknowledged only once its row is committed, so an acknowledged message
//! survives the loss of any node; live delivery to every connection of the recipient (on
//! any node) follows, then a `receipt` frame to the sender's connections. A recipient who
//! is offline reads it from `list_messages` / `conversation`.
//!
//! Errors: a request to oneself or a malformed field is `invalid_argument`; an unknown
//! user or request is `not_found`; a request between users who are contacts already or
//! have one pending is `already_exists`; a request past the sender's quota of pending
//! requests ([`QUOTA`]) is `resource_exhausted` naming it (`details.quota`, `limit`);
//! accepting twice is `failed_precondition`; a
//! message to a non-contact is `permission_denied`; a ciphertext over the cap is
//! `resource_exhausted` with message [`TOO_LARGE`].
//!
//! # Layout
//! - this file: the [`Service`] impl;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL.

pub mod messages;
pub mod store;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;

pub use messages::*;

use crate::common::validate;
use crate::hub::{self, frames, DeliverRequest, Delivery};
use crate::mesh::{BoxFuture, Code, MeshError, NodeInfo, Request, Service};
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;

/// Service name.
pub const NAME: &str = "chat";

crate::ops! {
    /// An op of `chat`, decoded at the service's edge; each acts for the envelope's caller.
    pub enum Cmd for NAME {
        /// Ask another user to become a contact.
        SendRequest = SEND_REQUEST("send_request", effectful): SendRequest => ChatRequest,
        /// The pending requests addressed to the caller.
        Incoming = INCOMING("incoming", idempotent): () => ChatRequestList,
        /// Accept a pending request: both become contacts.
        Accept = ACCEPT("accept", effectful): AcceptRequest => ChatRequest,
        /// Store a message to a contact, then deliver it live.
        SendMessage = SEND_MESSAGE("send_message", effectful): SendMessage => ChatMessage,
        /// The caller's messages with everyone (`with` is ignored).
        ListMessages = LIST_MESSAGES("list_messages", idempotent): ListMessages => MessagePage,
        /// The caller's messages with one contact (`with` is required).
        Conversation = CONVERSATION("conversation", idempotent): ListMessages => MessagePage,
    }
}

/// The message of the error for a ciphertext over the cap.
pub const TOO_LARGE: &str = "ciphertext too large";
/// Longest accepted nonce, in bytes.
pub const NONCE_MAX: usize = 1024;

/// The per-user quota on chat requests sent and not answered yet (`[quotas]
/// pending_chat_requests_per_user`).
pub const QUOTA: &str = "pending_chat_requests_per_user";

/// Pending requests one user may have sent when no quota is configured.
pub const DEFAULT_MAX_PENDING: u32 = 50;

/// The service.
pub struct Chat {
    info: Arc<NodeInfo>,
    store: Store,
    max_message_bytes: usize,
    max_pending_per_user: u32,
}

/// A per-process counter that keeps ids made in the same millisecond in order.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A new id that sorts by creation time (on one node; across nodes, to the millisecond).
fn new_id(now: i64) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{now:012x}{seq:08x}{}", &rand[..12])
}

impl Chat {
    /// The service on this node; ciphertexts longer than `max_message_bytes` are refused.
    pub fn new(info: Arc<NodeInfo>, store: Store, max_message_bytes: usize) -> Self {
        Self {
            info,
            store,
            max_message_bytes,
            max_pending_per_user: DEFAULT_MAX_PENDING,
        }
    }

    /// At most `max` chat requests of one sender pending at once ([`QUOTA`]).
    pub fn with_pending_quota(mut self, max: u32) -> Self {
        self.max_pending_per_user = max;
        self
    }

    /// `send_request`: asks `to_user_id` (or the user named `username`) to become a contact.
    /// The request is counted against the sender's quota of pending requests and stored in
    /// one statement, under the sender's lock for the quota (`common::quota`), so racing
    /// sends on any node admit exactly the quota; an accepted request frees its place.
    pub async fn send_request(&self, me: &str, req: SendRequest) -> Result<ChatRequest, MeshError> {
        let to = if !req.to_user_id.is_empty() {
            validate::id("to_user_id", &req.to_user_id)?;
            if !store::user_exists(&self.store, &req.to_user_id).await? {
                return Err(MeshError::not_found("user not found"));
            }
            req.to_user_id
        } else if !req.username.is_empty() {
            crate::users::validate::login(&req.username)?;
            store::user_by_username(&self.store, &req.username)
                .await?
                .ok_or_else(|| MeshError::not_found("user not found"))?
        } else {
            return Err(MeshError::invalid("to_user_id or username is required")
                .with_details(serde_json::json!({"fields": {"to_user_id": "required"}})));
        };
        if to == me {
            return Err(MeshError::invalid("cannot send a chat request to yourself"));
        }
        if store::is_contact(&self.store, me, &to).await? {
            return Err(MeshError::new(Code::AlreadyExists, "already a contact"));
        }
        if store::pending_between(&self.store, me, &to)
            .await?
            .is_some()
        {
            return Err(MeshError::new(
                Code::AlreadyExists,
                "a chat request between you is pending",
            ));
        }
        let now = now_ms();
        let id = new_id(now);
        let limit = self.max_pending_per_user;
        let mut tx = self.store.begin().await?;
        crate::common::quota::hold(&mut tx, self.store.backend(), QUOTA, me).await?;
        if !store::insert_request(&mut *tx, &id, me, &to, now, limit).await? {
            return Err(crate::auth::limits::over_quota(
                QUOTA,
                u64::from(limit),
                false,
            ));
        }
        tx.commit().await.map_err(crate::store::db_error)?;
        store::get_request(&self.store, &id)
            .await?
            .ok_or_else(|| MeshError::internal("stored request vanished"))
    }

    /// `incoming`: the pending requests addressed to `me`.
    pub async fn incoming(&self, me: &str) -> Result<ChatRequestList, MeshError> {
        Ok(ChatRequestList {
            items: store::incoming(&self.store, me).await?,
        })
    }

    /// `accept`: accepts a pending request addressed to `me`; both become contacts.
    pub async fn accept(&self, me: &str, req: AcceptRequest) -> Result<ChatRequest, MeshError> {
        validate::id("id", &req.id)?;
        // Somebody else's request is "not found" to the caller: ids are not probed.
        let found = store::get_request(&self.store, &req.id)
            .await?
            .filter(|r| r.to_user_id == me)
            .ok_or_else(|| MeshError::not_found("chat request not found"))?;
        if found.status != store::PENDING {
            return Err(MeshError::new(
                Code::FailedPrecondition,
                "chat request already accepted",
            ));
        }
        if !store::accept(&self.store, &req.id, &found.from_user_id, me, now_ms()).await? {
            return Err(MeshError::new(
                Code::FailedPrecondition,
                "chat request already accepted",
            ));
        }
        store::get_request(&self.store, &req.id)
            .await?
            .ok_or_else(|| MeshError::internal("accepted request vanished"))
    }

    /// `send_message`: stores the message, then delivers it live in the background: to the
    /// recipient's connections, then a receipt with their count to the sender's (sent
    /// without waiting for an answer).
    pub async fn send_message(&self, me: &str, req: SendMessage) -> Result<ChatMessage, MeshError> {
        validate::id("recipient_id", &req.recipient_id)?;
        if req.ciphertext.is_empty() {
            return Err(MeshError::invalid("ciphertext is required")
                .with_details(serde_json::json!({"fields": {"ciphertext": "required"}})));
        }
        if req.ciphertext.len() > self.max_message_bytes {
            return Err(MeshError::new(Code::ResourceExhausted, TOO_LARGE)
                .with_details(serde_json::json!({"limit_bytes": self.max_message_bytes})));
        }
        if req.nonce.len() > NONCE_MAX {
            return Err(MeshError::invalid(format!(
                "nonce must be at most {NONCE_MAX} bytes"
            )));
        }
        if !store::is_contact(&self.store, me, &req.recipient_id).await? {
            if !store::user_exists(&self.store, &req.recipient_id).await? {
                return Err(MeshError::not_found("user not found"));
            }
            return Err(MeshError::new(
                Code::PermissionDenied,
                "the recipient is not one of your contacts",
            ));
        }
        let now = now_ms();
        let message = ChatMessage {
            id: new_id(now),
            sender_id: me.to_string(),
            recipient_id: req.recipient_id,
            ciphertext: req.ciphertext,
            nonce: req.nonce,
            created_at: rfc3339_millis(now),
        };
        store::insert_message(&self.store, &message, now).await?;
        if let Ok(router) = self.info.router() {
            let router = router.clone();
            let m = message.clone();
            tokio::spawn(async move {
                let to_recipient = DeliverRequest {
                    items: vec![Delivery {
                        user_id: m.recipient_id.clone(),
                        frame: frames::message(&m),
                    }],
                };
                let delivered = hub::deliver(&router, to_recipient)
                    .await
                    .first()
                    .copied()
                    .unwrap_or(0);
                let to_sender = DeliverRequest {
                    items: vec![Delivery {
                        user_id: m.sender_id.clone(),
                        frame: frames::receipt(&m, "delivered", delivered, ""),
                    }],
                };
                hub::send(&router, to_sender);
            });
        }
        Ok(message)
    }

    /// `list_messages`: the caller's messages with everyone.
    async fn list_messages(
        &self,
        me: &str,
        mut req: ListMessages,
    ) -> Result<MessagePage, MeshError> {
        req.with.clear();
        self.list(me, req).await
    }

    /// `conversation`: the caller's messages with one contact.
    async fn conversation(&self, me: &str, req: ListMessages) -> Result<MessagePage, MeshError> {
        if req.with.is_empty() {
            return Err(MeshError::invalid("contact_id is required"));
        }
        self.list(me, req).await
    }

    /// The caller's messages, with everyone or only with `req.with`.
    pub async fn list(&self, me: &str, req: ListMessages) -> Result<MessagePage, MeshError> {
        let (page, per_page) = validate::page(req.page, req.per_page)?;
        let (limit, offset) = validate::limit_offset(page, per_page);
        let (items, total) = if req.with.is_empty() {
            store::messages_of(&self.store, me, limit, offset).await?
        } else {
            validate::id("contact_id", &req.with)?;
            if !store::is_contact(&self.store, me, &req.with).await?
                && !store::user_exists(&self.store, &req.with).await?
            {
                return Err(MeshError::not_found("user not found"));
            }
            store::conversation(&self.store, me, &req.with, limit, offset).await?
        };
        Ok(MessagePage {
            items,
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }
}

impl Service for Chat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let me = match &req.caller {
                Some(c) if !c.user_id.is_empty() => c.user_id.clone(),
                _ => return Err(MeshError::new(Code::Unauthenticated, "caller required")),
            };
            match Cmd::parse(&req)? {
                Cmd::SendRequest(r) => SEND_REQUEST.reply(self.send_request(&me, r).await),
                Cmd::Incoming(()) => INCOMING.reply(self.incoming(&me).await),
                Cmd::Accept(r) => ACCEPT.reply(self.accept(&me, r).await),
                Cmd::SendMessage(m) => SEND_MESSAGE.reply(self.send_message(&me, m).await),
                Cmd::ListMessages(l) => LIST_MESSAGES.reply(self.list_messages(&me, l).await),
                Cmd::Conversation(l) => CONVERSATION.reply(self.conversation(&me, l).await),
            }
        })
    }
}

#[cfg(test)]
mod tests;
