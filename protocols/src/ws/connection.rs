//! The per-connection actor: owns the write half of one WebSocket, registered in the node's
//! [`ConnectionHub`]; a reader task feeds it the client's frames.
//!
//! Local-only (its message type is not serializable, so ractor never announces it to
//! peers). Frames for the client arrive from the hub through the connection's [`Outlet`].
//! When nothing is waiting and the socket takes the frame at once, the hub writes it right
//! there, under the lock the actor writes under, without waking the actor: a broadcast to an
//! idle node is one non-blocking `write` per connection. Otherwise the frame goes through the
//! actor's mailbox, counted: past `send_queue` waiting frames the client is too slow and the
//! connection closes with 1013 instead of queueing more. A write that blocks for
//! [`WRITE_TIMEOUT`] drops the connection.
//!
//! The access token that opened the connection bounds its life: at start the actor schedules
//! its own close (1008, "token expired") for the moment this node stops accepting the token
//! ([`token::refused_from`] its `exp`, so the same leeway as every other request). One timer,
//! no polling; it is cancelled when the connection ends first. A client that refreshes its
//! token reconnects with the new one.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt as _, StreamExt as _};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Deserialize;
use troupe_actors::auth::token;
use troupe_actors::chat::{self, messages as cm};
use troupe_actors::hub::{self, frames, Connection, Outlet};
use troupe_actors::mesh::{trace, MeshError};

use super::close;
use crate::http::auth::Caller;
use crate::http::{ask, AppState};
use crate::ingress::write_key;

/// A write to the client that takes longer than this drops the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After sending a close frame, how long the client has to answer it.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Close reason when the token that opened the connection expires.
pub const TOKEN_EXPIRED: &str = "token expired";

/// How long until this node refuses a token whose `exp` claim is `expires_at` (zero when it
/// already does).
fn until_refused(expires_at: u64) -> Duration {
    let refused_ms = i128::from(token::refused_from(expires_at)) * 1000;
    let left = refused_ms - i128::from(troupe_actors::store::time::now_ms());
    Duration::from_millis(u64::try_from(left.max(0)).unwrap_or(u64::MAX))
}

/// Messages of a [`ConnectionActor`].
pub enum ConnMsg {
    /// A frame for the client, queued by the hub through the [`Handle`] (when it could
    /// not write the frame itself).
    Push(Bytes),
    /// The hub wrote a frame that the socket did not take whole: finish writing it.
    Flush,
    /// A frame the reader task read from the client; answered once handled, so a client
    /// that floods frames is slowed by TCP rather than queued here.
    Inbound(Message, RpcReplyPort<()>),
    /// Sent by the reader task after a ping interval without frames: send a ping.
    Tick,
    /// Close with a code and reason. From the hub (revoked session, slow client), the
    /// reader (frame too big, idle) or the actor's own expiry timer (token expired).
    Close(u16, Cow<'static, str>),
    /// The reader task ended (the client closed or the transport failed).
    Gone,
}

impl ractor::Message for ConnMsg {}

/// The actor.
pub struct ConnectionActor;

/// What a connection actor starts from.
pub struct Args {
    /// The node's HTTP state (mesh, hub, settings).
    pub app: AppState,
    /// The upgraded socket.
    pub socket: WebSocket,
    /// Who authenticated.
    pub caller: Caller,
    /// Whose connection it is (`:user_id`).
    pub user_id: String,
    /// The connection's slot of the user's cluster-wide quota, freed with the state.
    pub slot: troupe_actors::hub::Slot,
}

/// The actor's state.
pub struct ConnState {
    app: AppState,
    handle: Arc<Handle>,
    conn: Arc<Connection>,
    caller: Caller,
    reader: Option<tokio::task::JoinHandle<()>>,
    /// The timer that closes the connection when its token expires.
    expiry: tokio::task::JoinHandle<Result<(), ractor::MessagingErr<ConnMsg>>>,
    closed: bool,
    /// The connection's quota slot, freed (dropped) when the actor stops.
    slot: Option<troupe_actors::hub::Slot>,
}

/// The socket's write half, shared by the actor and the hub's direct writes.
type WriteHalf = tokio::sync::Mutex<SplitSink<WebSocket, Message>>;

/// The hub's way into a connection: the write half, for frames written at once, and a
/// bounded count of frames waiting in the actor's mailbox.
pub struct Handle {
    actor: ActorRef<ConnMsg>,
    sink: WriteHalf,
    /// Frames taken but not yet written by the actor (`Push` and `Flush` in its mailbox or
    /// being written). The actor lowers it only once a frame is written, still holding the
    /// write lock, so a direct write that sees 0 under the lock never overtakes one.
    pending: AtomicUsize,
    limit: usize,
    closing: AtomicBool,
}

/// What a direct write came to.
#[derive(Debug, PartialEq, Eq)]
enum Now {
    /// The frame is on the socket.
    Written,
    /// The frame was taken but the socket did not take all of it: the actor must flush.
    Unflushed,
    /// Nothing was taken (an earlier frame is still in the way): use the mailbox.
    Busy,
    /// The connection is broken.
    Failed,
}

/// Writes `message` now if the sink can take it without waiting. Never blocks: it polls
/// once with a waker that does nothing, and leaves the rest to the actor.
fn write_now<S: Sink<Message> + Unpin>(sink: &mut S, message: Message) -> Now {
    let mut cx = Context::from_waker(Waker::noop());
    let mut sink = std::pin::Pin::new(sink);
    match sink.as_mut().poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(_)) => return Now::Failed,
        Poll::Pending => return Now::Busy,
    }
    if sink.as_mut().start_send(message).is_err() {
        return Now::Failed;
    }
    match sink.poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Now::Written,
        Poll::Ready(Err(_)) => Now::Failed,
        Poll::Pending => Now::Unflushed,
    }
}

impl Handle {
    /// Writes `frame` from the caller's thread when nothing is waiting and nobody is
    /// writing; `None` when it must go through the mailbox instead.
    fn push_now(&self, frame: &Bytes) -> Option<bool> {
        if self.pending.load(Ordering::Acquire) != 0 {
            return None;
        }
        let mut sink = self.sink.try_lock().ok()?;
        if self.pending.load(Ordering::Acquire) != 0 || self.closing.load(Ordering::Acquire) {
            return None;
        }
        let Some(message) = text_message(frame.clone()) else {
            return Some(true);
        };
        match write_now(&mut *sink, message) {
            Now::Written => Some(true),
            Now::Unflushed => {
                self.pending.fetch_add(1, Ordering::AcqRel);
                if self.actor.cast(ConnMsg::Flush).is_err() {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                }
                Some(true)
            }
            Now::Busy => None,
            Now::Failed => {
                self.closing.store(true, Ordering::Release);
                self.actor.stop(Some("write failed".into()));
                Some(false)
            }
        }
    }

    /// Has the actor close the connection with `code` and `reason`, once.
    fn shut(&self, code: u16, reason: &'static str) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            let _ = self.actor.cast(ConnMsg::Close(code, Cow::Borrowed(reason)));
        }
    }
}

impl Outlet for Handle {
    fn push(&self, frame: &Bytes) -> bool {
        if self.closing.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(taken) = self.push_now(frame) {
            return taken;
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.shut(
                close::TRY_AGAIN_LATER,
                "send queue full: the client reads too slowly",
            );
            return false;
        }
        if self.actor.cast(ConnMsg::Push(frame.clone())).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn close(&self, why: hub::CloseReason) {
        let (code, reason) = close::for_hub(why);
        self.shut(code, reason);
    }
}

/// Starts the connection's actor; it runs on its own until the connection ends (the
/// upgrade task that called this does not wait for it, so it holds no memory meanwhile).
pub async fn start(
    app: AppState,
    socket: WebSocket,
    caller: Caller,
    user_id: String,
    slot: troupe_actors::hub::Slot,
) {
    let args = Args {
        app,
        socket,
        caller,
        user_id,
        slot,
    };
    if let Err(e) = Actor::spawn(None, ConnectionActor, args).await {
        tracing::warn!(error = %e, "websocket connection actor failed to start");
    }
}

/// A client frame.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    /// Keep-alive at the application level.
    Ping {
        #[serde(default, rename = "ref")]
        reference: String,
    },
    /// A chat message.
    Send {
        #[serde(default)]
        recipient_id: String,
        #[serde(default)]
        ciphertext: String,
        #[serde(default)]
        nonce: Option<String>,
        #[serde(default, rename = "ref")]
        reference: String,
        /// The client's W3C trace context for this frame; a fresh trace when absent or
        /// malformed.
        #[serde(default)]
        traceparent: Option<String>,
        /// The client's idempotency key for this send (as REST's `Idempotency-Key`): the
        /// same frame sent again with it, on any connection or node, is stored once and
        /// answered with the first receipt. Made here when absent.
        #[serde(default)]
        idempotency_key: Option<String>,
    },
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        args: Args,
    ) -> Result<ConnState, ActorProcessingErr> {
        let config = args.app.ws.clone();
        let (sink, stream) = args.socket.split();
        let handle = Arc::new(Handle {
            actor: myself.clone(),
            sink: tokio::sync::Mutex::new(sink),
            pending: AtomicUsize::new(0),
            limit: config.send_queue,
            closing: AtomicBool::new(false),
        });
        let hub = &args.app.hub;
        let conn = Arc::new(Connection {
            id: hub.next_id(),
            user_id: args.user_id,
            username: args.caller.username.clone(),
            session_id: args.caller.session_id.clone(),
            since_ms: hub::since_now(),
            outlet: handle.clone(),
        });
        hub.register(conn.clone());
        let expiry = myself.send_after(until_refused(args.caller.expires_at), || {
            ConnMsg::Close(close::POLICY, Cow::Borrowed(TOKEN_EXPIRED))
        });
        let reader = tokio::spawn(read(stream, myself, config));
        Ok(ConnState {
            app: args.app,
            handle,
            conn,
            caller: args.caller,
            reader: Some(reader),
            expiry,
            closed: false,
            slot: Some(args.slot),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConnMsg>,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle.closing.store(true, Ordering::Release);
        state.app.hub.unregister(&state.conn.user_id, state.conn.id);
        drop(state.slot.take());
        if let Some(reader) = state.reader.take() {
            reader.abort();
        }
        state.expiry.abort();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // The futures that write are boxed (as is the handling of a client frame, which
            // holds a mesh call): an idle connection's actor task should not carry their
            // space, and on the hot path the hub writes frames itself.
            ConnMsg::Push(frame) => {
                if !Box::pin(write_queued(state, Some(frame))).await {
                    myself.stop(Some("write failed".into()));
                }
            }
            ConnMsg::Flush => {
                if !Box::pin(write_queued(state, None)).await {
                    myself.stop(Some("write failed".into()));
                }
            }
            ConnMsg::Inbound(message, done) => {
                let keep = Box::pin(inbound(state, message)).await;
                let _ = done.send(());
                if let Some((code, why)) = keep {
                    Box::pin(close_with(&myself, state, code, why)).await;
                }
            }
            ConnMsg::Tick => {
                if !state.closed && !Box::pin(write(state, Message::Ping(Bytes::new()))).await {
                    myself.stop(Some("ping failed".into()));
                }
            }
            ConnMsg::Close(code, why) => Box::pin(close_with(&myself, state, code, why)).await,
            ConnMsg::Gone => myself.stop(None),
        }
        Ok(())
    }
}

/// Writes one frame within [`WRITE_TIMEOUT`]; `false` when the connection is unusable.
async fn write(state: &mut ConnState, message: Message) -> bool {
    let mut sink = state.handle.sink.lock().await;
    write_locked(&mut sink, message).await
}

/// Writes a frame the hub queued (`Some`), or finishes writing the one it started (`None`),
/// then takes it off the pending count while still holding the write lock; `false` when the
/// connection is unusable. A queued frame for a closing connection is dropped.
async fn write_queued(state: &mut ConnState, frame: Option<Bytes>) -> bool {
    let handle = &state.handle;
    let mut sink = handle.sink.lock().await;
    let ok = match frame {
        None => matches!(
            tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await,
            Ok(Ok(()))
        ),
        Some(_) if state.closed || handle.closing.load(Ordering::Acquire) => true,
        Some(frame) => match text_message(frame) {
            Some(message) => write_locked(&mut sink, message).await,
            None => true,
        },
    };
    handle.pending.fetch_sub(1, Ordering::AcqRel);
    ok
}

/// [`write`] for a caller that holds the write lock.
async fn write_locked(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

async fn send_text(state: &mut ConnState, frame: Bytes) -> bool {
    match text_message(frame) {
        Some(message) => write(state, message).await,
        None => true,
    }
}

/// A frame for the client as a text message; `None` (logged: a bug) if it is not UTF-8.
fn text_message(frame: Bytes) -> Option<Message> {
    match Utf8Bytes::try_from(frame) {
        Ok(text) => Some(Message::Text(text)),
        Err(_) => {
            tracing::error!("a frame for a client was not UTF-8; dropped");
            None
        }
    }
}

/// Sends a close frame, then gives the client [`CLOSE_LINGER`] to answer before stopping.
async fn close_with(
    myself: &ActorRef<ConnMsg>,
    state: &mut ConnState,
    code: u16,
    why: Cow<'static, str>,
) {
    if state.closed {
        return;
    }
    state.closed = true;
    state.handle.closing.store(true, Ordering::Release);
    tracing::debug!(user = %state.conn.user_id, code, reason = %why, "closing websocket");
    let frame = CloseFrame {
        code,
        reason: close::reason(&why).into(),
    };
    if !write(state, Message::Close(Some(frame))).await {
        myself.stop(Some("close failed".into()));
        return;
    }
    myself.send_after(CLOSE_LINGER, || ConnMsg::Gone);
}

/// Handles one client frame; `Some((code, reason))` when the connection must close.
async fn inbound(state: &mut ConnState, message: Message) -> Option<(u16, Cow<'static, str>)> {
    if state.closed {
        return None;
    }
    match message {
        Message::Text(text) => {
            if troupe_actors::system::history::recording() {
                troupe_actors::metrics::WS_FRAMES.increment();
            }
            let reply = match serde_json::from_str::<ClientFrame>(text.as_str()) {
                Ok(ClientFrame::Ping { reference }) => frames::pong(&reference),
                Ok(ClientFrame::Send {
                    recipient_id,
                    ciphertext,
                    nonce,
                    reference,
                    traceparent,
                    idempotency_key,
                }) => 'send: {
                    let key = match write_key::accept(idempotency_key.as_deref()) {
                        Ok(key) => key,
                        Err(e) => break 'send frames::error(&e, &reference),
                    };
                    let req = cm::SendMessage {
                        recipient_id,
                        ciphertext,
                        nonce: nonce.unwrap_or_default(),
                    };
                    // The frame is served inside its trace (its log lines carry it), its
                    // span is exported when spans are, and the answer echoes it.
                    let t = trace::accept(traceparent.as_deref());
                    let start = trace::exporting().then(std::time::SystemTime::now);
                    let call = chat::SEND_MESSAGE
                        .call(req)
                        .caller(state.caller.to_proto())
                        .request_id(format!("ws-{}", state.conn.id))
                        .trace(t);
                    let answer = trace::scope(
                        t,
                        write_key::scope(key, ask::<cm::ChatMessage>(&state.app, call)),
                    )
                    .await;
                    if let Some(start) = start {
                        trace::finished(trace::Span {
                            trace: t,
                            name: "ws send".to_string(),
                            kind: trace::Kind::Server,
                            start,
                            end: std::time::SystemTime::now(),
                            error: answer.as_ref().err().map(|e| e.0.code.as_str().to_string()),
                            attributes: Vec::new(),
                        });
                    }
                    let reply = match answer {
                        Ok(m) => frames::receipt(&m, "stored", 0, &reference),
                        Err(e) => frames::error(&e.0, &reference),
                    };
                    frames::traced(&reply, &t)
                }
                Err(e) => frames::error(&MeshError::invalid(format!("bad frame: {e}")), ""),
            };
            if !send_text(state, reply).await {
                return Some((close::INTERNAL, "write failed".into()));
            }
            None
        }
        Message::Binary(_) => Some((
            close::UNSUPPORTED_DATA,
            "binary frames are not supported: send JSON text".into(),
        )),
        Message::Close(_) => {
            // The client closes: tungstenite answers the close frame itself.
            state.closed = true;
            None
        }
        Message::Ping(_) | Message::Pong(_) => None,
    }
}

/// The reader task: forwards client frames to the actor, sends `Tick` after a quiet ping
/// interval, closes an idle connection and one that sent a frame over the limit.
async fn read(
    mut stream: SplitStream<WebSocket>,
    actor: ActorRef<ConnMsg>,
    config: Arc<super::Config>,
) {
    let mut last = Instant::now();
    loop {
        match tokio::time::timeout(config.ping_interval, stream.next()).await {
            Ok(Some(Ok(message))) => {
                last = Instant::now();
                let closing = matches!(message, Message::Close(_));
                if actor
                    .call(|port| ConnMsg::Inbound(message, port), None)
                    .await
                    .is_err()
                {
                    return;
                }
                if closing {
                    // Wait for the end of the stream after the close handshake.
                    continue;
                }
            }
            Ok(Some(Err(e))) => {
                let (code, why) = classify(e);
                if let Some(code) = code {
                    let _ = actor.cast(ConnMsg::Close(code, why.into()));
                    // Drain what the client still sends so the close frame is not lost
                    // to a reset.
                    let _ = tokio::time::timeout(CLOSE_LINGER, async {
                        while stream.next().await.is_some() {}
                    })
                    .await;
                }
                break;
            }
            Ok(None) => break,
            Err(_) => {
                if last.elapsed() >= config.idle_timeout {
                    let _ = actor.cast(ConnMsg::Close(close::GOING_AWAY, "idle timeout".into()));
                    return;
                }
                if actor.cast(ConnMsg::Tick).is_err() {
                    return;
                }
            }
        }
    }
    let _ = actor.cast(ConnMsg::Gone);
}

/// The close code a read error calls for (`None`: the transport is gone).
fn classify(e: axum::Error) -> (Option<u16>, String) {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(c)) => {
            (Some(close::TOO_BIG), format!("{c}").to_lowercase())
        }
        Some(tungstenite::Error::Utf8(_)) => (
            Some(close::INVALID_PAYLOAD),
            "text frame is not utf-8".into(),
        ),
        Some(tungstenite::Error::Protocol(p)) => (
            Some(close::PROTOCOL_ERROR),
            format!("protocol error: {p}").to_lowercase(),
        ),
        _ => (None, inner.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    /// A sink whose readiness and flush are set by the test.
    #[derive(Default)]
    struct Scripted {
        busy: bool,
        unflushed: bool,
        broken: bool,
        taken: Vec<Message>,
    }

    impl Sink<Message> for Scripted {
        type Error = ();

        fn poll_ready(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if self.busy {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }

        fn start_send(mut self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), ()> {
            if self.broken {
                return Err(());
            }
            self.taken.push(item);
            Ok(())
        }

        fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if self.unflushed {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }

        fn poll_close(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn text(s: &'static str) -> Message {
        Message::Text(Utf8Bytes::from_static(s))
    }

    #[test]
    fn a_direct_write_takes_the_frame_only_when_the_sink_is_ready() {
        let mut sink = Scripted::default();
        assert_eq!(write_now(&mut sink, text("a")), Now::Written);
        sink.unflushed = true;
        assert_eq!(write_now(&mut sink, text("b")), Now::Unflushed);
        assert_eq!(sink.taken.len(), 2, "an unflushed frame is still taken");
        sink.busy = true;
        assert_eq!(write_now(&mut sink, text("c")), Now::Busy);
        assert_eq!(sink.taken.len(), 2, "a busy sink takes nothing");
        let mut broken = Scripted {
            broken: true,
            ..Scripted::default()
        };
        assert_eq!(write_now(&mut broken, text("d")), Now::Failed);
        let taken: Vec<_> = sink
            .taken
            .iter()
            .map(|m| m.to_text().unwrap().to_string())
            .collect();
        assert_eq!(taken, ["a", "b"]);
    }

    #[test]
    fn a_connection_lives_until_its_node_refuses_the_token() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // Refused from exp + leeway + 1 s: between 15 and 16 s from now for exp = now + 10.
        let left = until_refused(now.as_secs() + 10);
        let (low, high) = (10 + token::LEEWAY_SECS, 11 + token::LEEWAY_SECS);
        assert!(
            left > Duration::from_secs(low) && left <= Duration::from_secs(high),
            "{left:?}"
        );
        assert_eq!(until_refused(0), Duration::ZERO);
        assert_eq!(until_refused(now.as_secs() - 10), Duration::ZERO);
    }
}
