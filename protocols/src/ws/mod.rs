//! WebSocket ingress: `WS /ws/:user_id`, one local-only actor per connection.
//!
//! The token comes as `?token=` or in `Sec-WebSocket-Protocol` (either the bare token, or
//! `bearer` plus the token as a second protocol; the server echoes `bearer`, or the token
//! when offered alone, as browsers require). It is checked like every bearer token on this
//! node (signature, expiry, revoked sessions) and must belong to `:user_id` unless the
//! caller is an admin. A refused connection is upgraded and closed at once with 1008
//! (policy violation), so clients see a WebSocket close code rather than a bare HTTP error.
//!
//! Before the upgrade, the client's address must be within `[limits]
//! ws_upgrades_per_ip_per_minute`, and the user must get one of their `[quotas]
//! ws_connections_per_user` connection slots, reserved for the whole cluster in the store
//! (`troupe_actors::hub::slots`) and held until the connection closes; otherwise the upgrade
//! is refused with 429 and the API's JSON error (`Retry-After` for the rate,
//! `details.quota` for the quota).
//!
//! Frames are JSON text `{"type": ...}`:
//! - in: `ping` (answered by `pong`), `send` (`recipient_id`, `ciphertext`, `nonce`?,
//!   `ref`?: a chat message, answered by a `stored` receipt or an `error`);
//! - out: `message`, `receipt`, `presence`, `broadcast`, `error`, `pong`
//!   (see `troupe_actors::hub::frames`).
//!
//! Close codes ([`close`]): 1003 for a binary frame, 1007 for invalid UTF-8, 1008 for bad
//! credentials, a revoked session or a token that expired while the connection was open
//! (reason "token expired", see [`connection`]), 1009 for a frame over `max_frame_bytes`,
//! 1001 after `idle_timeout` without any frame from the client (pongs count; checked at
//! each ping tick, so it comes at most `ping_interval` late), 1013 when the client reads
//! so slowly that `send_queue` frames wait for it.
//!
//! # Layout
//! - this file: settings, the upgrade handler, credentials;
//! - [`connection`]: the per-connection actor and its reader task;
//! - [`close`]: close codes.

pub mod close;
pub mod connection;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use troupe_actors::auth::limits::Class;
use troupe_actors::mesh::{Code, MeshError};

use crate::http::auth::Caller;
use crate::http::openapi::ErrorBody;
use crate::http::request_id::Rid;
use crate::http::{ApiError, AppState};

/// WebSocket settings (`[ws]`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted frame and message from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Frames waiting for one client before it is closed as too slow (1013).
    pub send_queue: usize,
    /// A connection without any frame from the client for this long is closed (1001).
    pub idle_timeout: Duration,
    /// A WebSocket ping goes out after this long without a frame from the client.
    pub ping_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            send_queue: 256,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
        }
    }
}

/// Bytes tungstenite reads from the socket at a time; small, so an idle connection holds
/// little memory (frames larger than this are read in several steps).
const READ_BUFFER_BYTES: usize = 1024;

/// Query of the upgrade request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The access token of `user_id` (or of an admin); when absent or empty, the token is
    /// taken from `Sec-WebSocket-Protocol`.
    pub token: Option<String>,
}

/// The token offered in `Sec-WebSocket-Protocol`, and the protocol to echo.
fn protocol_token(headers: &HeaderMap) -> Option<(String, String)> {
    let offered: Vec<String> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let bearer = offered.iter().any(|p| p.eq_ignore_ascii_case("bearer"));
    let token = offered
        .iter()
        .find(|p| !p.eq_ignore_ascii_case("bearer"))?
        .clone();
    let echo = if bearer {
        "bearer".to_string()
    } else {
        token.clone()
    };
    Some((token, echo))
}

/// `GET /ws/:user_id`: upgrades and hands the socket to a new connection actor.
#[utoipa::path(
    get,
    path = "/ws/{user_id}",
    tag = "chat",
    description = "A WebSocket upgrade (RFC 6455): the live chat channel of `user_id`.\n\n\
        The access token comes as `?token=` or in `Sec-WebSocket-Protocol`: the bare token, or \
        `bearer` plus the token as a second protocol (the server echoes `bearer`, or the token \
        when it was offered alone). It must belong to `user_id` unless the caller is an admin. \
        A refused credential (missing, invalid, expired, revoked, another user's) still \
        upgrades, then the server closes at once with 1008.\n\n\
        Frames are JSON text objects with a `type`. From the client:\n\
        - `ping` (`ref`?): answered by `pong` (`at`, `ref`?);\n\
        - `send` (`recipient_id`, `ciphertext`, `nonce`?, `ref`?): stores a chat message to a \
        contact, as `POST /messages/send` does; answered by a `receipt` with `status` `stored` \
        (`message_id`, `recipient_id`, `delivered`, `created_at`, `ref`?) or by an `error`.\n\n\
        From the server:\n\
        - `message` (`id`, `sender_id`, `recipient_id`, `ciphertext`, `nonce`, `created_at`): \
        a chat message to this user;\n\
        - `receipt` with `status` `delivered` (`message_id`, `recipient_id`, `delivered`: the \
        recipient's connections that got it live, `created_at`): for a message this user sent;\n\
        - `presence` (`user_id`, `username`, `status`: `online` or `offline`, `node`, `at`): a \
        contact came or went;\n\
        - `broadcast` (`id`, `message`, `sent_at`): an admin's `POST /broadcast`;\n\
        - `error` (`code`, `message`, `ref`?): a client frame failed (also a frame that is not \
        valid JSON of a known type); the connection stays open;\n\
        - `pong`.\n\n\
        Close codes: 1003 for a binary frame, 1007 for invalid UTF-8, 1008 for bad credentials, \
        a revoked session or a token that expired while open, 1009 for a frame over \
        `max_frame_bytes`, 1001 after `idle_timeout` without any frame from the client, 1013 \
        when the client reads too slowly.",
    params(
        ("user_id" = String, Path, description = "The user whose channel to open"),
        TokenQuery,
        ("Sec-WebSocket-Protocol" = Option<String>, Header, description = "The access token instead of `?token=`: `<token>`, or `bearer, <token>`"),
        ("Connection" = String, Header, description = "Contains `upgrade` (any case)",
            pattern = "[Uu][Pp][Gg][Rr][Aa][Dd][Ee]"),
        ("Upgrade" = String, Header, description = "`websocket` (any case)",
            pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "The client's nonce (RFC 6455: 16 random bytes in base64)"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open (a refused credential is closed at once with 1008)"),
        (status = 400, description = "Not a WebSocket upgrade request (a header above missing or wrong)", body = ErrorBody),
        (status = 429, description = "Not upgraded: too many upgrades from the address (`[limits] ws_upgrades_per_ip_per_minute`, cluster-wide; `Retry-After` says when to retry), or the user holds `[quotas] ws_connections_per_user` connections already (`details.quota`)", body = ErrorBody),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Path(user_id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(e) = state
        .limit(Class::WsUpgrade, &addr.0.ip().to_string(), &rid)
        .await
    {
        return ApiError(e).into_response();
    }
    let config = state.ws.clone();
    let from_protocol = protocol_token(&headers);
    let ws = match &from_protocol {
        Some((_, echo)) => ws.protocols([Cow::Owned(echo.clone())]),
        None => ws,
    };
    let ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(config.max_frame_bytes.max(1024 * 1024) * 2)
        .max_frame_size(config.max_frame_bytes)
        .max_message_size(config.max_frame_bytes);
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .or(from_protocol.map(|(t, _)| t));
    let admitted = match admit(&state, token.as_deref(), &user_id) {
        // A slot of the user's cluster-wide quota, held by the connection until it closes
        // (freed when dropped, also when the upgrade never completes).
        Ok(caller) => match state.ws_slots.reserve(&user_id).await {
            Ok(slot) => Ok((caller, slot)),
            Err(e) => return ApiError(e).into_response(),
        },
        Err(e) => Err(e),
    };
    ws.on_upgrade(move |socket| async move {
        match admitted {
            Ok((caller, slot)) => connection::start(state, socket, caller, user_id, slot).await,
            Err(e) => refuse(socket, close::code_of(&e), &e.message).await,
        }
    })
}

/// The caller the token proves, allowed to hold `user_id`'s connection.
fn admit(state: &AppState, token: Option<&str>, user_id: &str) -> Result<Caller, MeshError> {
    let token = token.ok_or_else(|| MeshError::new(Code::Unauthenticated, "missing token"))?;
    let caller = state.authenticate(token)?;
    if caller.user_id != user_id && !caller.is_admin() {
        return Err(MeshError::new(
            Code::PermissionDenied,
            "the token does not belong to this user",
        ));
    }
    Ok(caller)
}

/// Closes a refused connection with `code`, waiting briefly for the client's close reply.
async fn refuse(mut socket: WebSocket, code: u16, why: &str) {
    tracing::debug!(code, reason = why, "websocket refused");
    let frame = CloseFrame {
        code,
        reason: close::reason(why).into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}
