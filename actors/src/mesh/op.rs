//! Typed operations: what a service offers, declared once, called with checked types.
//!
//! A service declares each op once with [`ops!`](crate::ops): its name, whether it is
//! idempotent, its request and its reply type. That gives
//!
//! - one `pub const` [`Op<Req, Rep>`] per op, which callers hand to the router:
//!   `router.ask(&users::GET, GetRequest { id })` answers a `User`, and
//!   `users::GET.call(req).to(Target::Node(n)).request_id(rid)` builds a [`Call<Rep>`]
//!   with options. A request or reply of the wrong type does not compile.
//! - a command enum (mini-redis's `Command::from_frame` shape): the service turns the op
//!   name and bytes that arrive into one typed variant at its edge with `Cmd::parse`, then
//!   handles each variant in a typed method and answers through [`Op::reply`], which takes
//!   only that op's reply type.
//!
//! On the wire nothing changed: the envelope carries the op's name and the prost-encoded
//! request, so nodes of one build understand each other.

use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use troupe_proto::mesh::Caller;

use super::trace::Trace;
use super::MeshError;

/// The name and retry class of one op, as a declaration's `Cmd::OPS` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// Op name as carried in the envelope.
    pub name: &'static str,
    /// Whether running it twice has the same effect as once: only these are retried by the
    /// router after an `unavailable` failure.
    pub idempotent: bool,
}

/// One operation of one service, with its request and reply types.
pub struct Op<Req, Rep> {
    /// The service that answers it.
    pub service: &'static str,
    /// Op name as carried in the envelope.
    pub name: &'static str,
    /// See [`OpInfo::idempotent`].
    pub idempotent: bool,
    types: PhantomData<fn(Req) -> Rep>,
}

impl<Req, Rep> Clone for Op<Req, Rep> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Rep> Copy for Op<Req, Rep> {}

impl<Req, Rep> std::fmt::Debug for Op<Req, Rep> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.service, self.name)
    }
}

impl<Req, Rep> Op<Req, Rep> {
    /// A read-only or otherwise repeatable op.
    pub const fn idempotent(service: &'static str, name: &'static str) -> Self {
        Self {
            service,
            name,
            idempotent: true,
            types: PhantomData,
        }
    }

    /// An op with effects that must not be repeated blindly.
    pub const fn effectful(service: &'static str, name: &'static str) -> Self {
        Self {
            service,
            name,
            idempotent: false,
            types: PhantomData,
        }
    }

    /// Its name and retry class.
    pub const fn info(&self) -> OpInfo {
        OpInfo {
            name: self.name,
            idempotent: self.idempotent,
        }
    }
}

impl<Req: prost::Message + Default, Rep: prost::Message> Op<Req, Rep> {
    /// A call of this op with `req`, to any member, with the router's default deadline.
    pub fn call(&self, req: Req) -> Call<Rep> {
        Call {
            raw: RawCall {
                service: self.service,
                op: self.name,
                idempotent: self.idempotent,
                payload: Bytes::from(req.encode_to_vec()),
                target: Target::Any,
                request_id: String::new(),
                trace: None,
                caller: None,
                timeout: None,
                idempotency_key: String::new(),
            },
            rep: PhantomData,
        }
    }

    /// Decodes this op's request from the bytes that arrived (the service's edge).
    pub fn decode(&self, payload: &Bytes) -> Result<Req, MeshError> {
        Req::decode(payload.clone()).map_err(|e| {
            MeshError::invalid(format!(
                "{}.{}: malformed request: {e}",
                self.service, self.name
            ))
        })
    }

    /// Encodes this op's answer: the only reply type a handler of this op can give.
    pub fn reply(&self, answer: Result<Rep, MeshError>) -> Result<Bytes, MeshError> {
        answer.map(|rep| Bytes::from(rep.encode_to_vec()))
    }
}

/// Where a call should go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any member of the service group, local first.
    Any,
    /// The named node.
    Node(String),
    /// The home node of an entity id.
    Entity(String),
}

/// The untyped parts of a call, as the router carries them.
#[derive(Clone, Debug)]
pub(crate) struct RawCall {
    pub(crate) service: &'static str,
    pub(crate) op: &'static str,
    pub(crate) idempotent: bool,
    pub(crate) payload: Bytes,
    pub(crate) target: Target,
    pub(crate) request_id: String,
    pub(crate) trace: Option<Trace>,
    pub(crate) caller: Option<Caller>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotency_key: String,
}

/// One call through the mesh whose answer is a `Rep`; made by [`Op::call`], run by
/// [`super::Router::call`] (answer awaited) or [`super::Router::tell`] (sent, not awaited).
pub struct Call<Rep> {
    pub(crate) raw: RawCall,
    rep: PhantomData<fn() -> Rep>,
}

impl<Rep> Clone for Call<Rep> {
    fn clone(&self) -> Self {
        Self {
            raw: self.raw.clone(),
            rep: PhantomData,
        }
    }
}

impl<Rep> std::fmt::Debug for Call<Rep> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("op", &format_args!("{}.{}", self.raw.service, self.raw.op))
            .field("target", &self.raw.target)
            .field("request_id", &self.raw.request_id)
            .finish()
    }
}

impl<Rep> Call<Rep> {
    /// Sends it to `target` instead of any member.
    pub fn to(mut self, target: Target) -> Self {
        self.raw.target = target;
        self
    }

    /// Sets the request id (for logs on every node it crosses).
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.raw.request_id = id.into();
        self
    }

    /// Whether the op is idempotent (may run twice with no harm).
    pub fn is_idempotent(&self) -> bool {
        self.raw.idempotent
    }

    /// Makes an effectful call a keyed write (see [`crate::store::idempotency`]): it runs
    /// once however often it is sent, the router may retry it like an idempotent op, and
    /// a repeat gets the first answer. Ignored on idempotent ops, which need no key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        if !self.raw.idempotent {
            self.raw.idempotency_key = key.into();
        }
        self
    }

    /// Sets the trace it belongs to; without one it carries the trace of the request
    /// being served by the calling task ([`super::trace::current`]), if any.
    pub fn trace(mut self, trace: Trace) -> Self {
        self.raw.trace = Some(trace);
        self
    }

    /// Sets the authenticated caller.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.raw.caller = Some(caller);
        self
    }

    /// Overrides the router's default deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.raw.timeout = Some(timeout);
        self
    }

    /// Whether a deadline was set with [`Call::timeout`].
    pub fn has_timeout(&self) -> bool {
        self.raw.timeout.is_some()
    }

    /// The service it goes to.
    pub fn service(&self) -> &'static str {
        self.raw.service
    }

    /// The op's name.
    pub fn op(&self) -> &'static str {
        self.raw.op
    }
}

/// Declares the ops of a service once: one `pub const` [`Op`] per op, and a command enum
/// with one variant per op that `parse`s an incoming [`Request`](super::Request).
///
/// ```ignore
/// troupe_actors::ops! {
///     /// An op of `sessions`, decoded at the service's edge.
///     pub enum Cmd for NAME {
///         /// Create a session (entity-routed).
///         Start = START("start", effectful): Start => SessionInfo,
///         /// Read a session (entity-routed).
///         Get = GET("get", idempotent): () => SessionInfo,
///     }
/// }
/// // in the service:
/// match Cmd::parse(&req)? {
///     Cmd::Start(s) => START.reply(self.start(s, &req).await),
///     Cmd::Get(()) => GET.reply(self.get(&req).await),
/// }
/// ```
#[macro_export]
macro_rules! ops {
    (
        $(#[$emeta:meta])*
        $vis:vis enum $cmd:ident for $service:path {
            $(
                $(#[$meta:meta])*
                $variant:ident = $op:ident($name:literal, $kind:ident): $req:ty => $rep:ty
            ),* $(,)?
        }
    ) => {
        $(
            $(#[$meta])*
            pub const $op: $crate::mesh::Op<$req, $rep> = $crate::mesh::Op::$kind($service, $name);
        )*

        $(#[$emeta])*
        $vis enum $cmd {
            $(
                $(#[$meta])*
                $variant($req),
            )*
        }

        impl $cmd {
            /// Every op of the declaration, with its retry class.
            pub const OPS: &'static [$crate::mesh::OpInfo] = &[$($op.info(),)*];

            /// Turns the op name and bytes that arrived into a typed command: an unknown op
            /// is `not_found`, a payload that does not decode `invalid_argument`.
            pub fn parse(req: &$crate::mesh::Request) -> Result<Self, $crate::mesh::MeshError> {
                match req.op.as_str() {
                    $($name => Ok(Self::$variant($op.decode(&req.payload)?)),)*
                    op => Err($crate::mesh::MeshError::not_found(format!(
                        "{} has no op {op}",
                        $service
                    ))),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use troupe_proto::mesh::{KillRequest, PingReply};

    use super::*;
    use crate::mesh::{Code, Request};

    const NAME: &str = "t-svc";

    crate::ops! {
        /// Test ops.
        enum Cmd for NAME {
            /// Reads.
            Read = READ("read", idempotent): KillRequest => PingReply,
            /// Writes.
            Write = WRITE("write", effectful): () => (),
        }
    }

    fn request(op: &str, payload: Vec<u8>) -> Request {
        Request {
            op: op.into(),
            payload: payload.into(),
            caller: None,
            request_id: String::new(),
            trace: None,
            deadline: std::time::Instant::now(),
            entity: String::new(),
            chain: Vec::new(),
            idempotency_key: String::new(),
        }
    }

    #[test]
    fn ops_are_declared_once_with_their_retry_class() {
        assert_eq!(
            Cmd::OPS,
            &[
                OpInfo {
                    name: "read",
                    idempotent: true
                },
                OpInfo {
                    name: "write",
                    idempotent: false
                }
            ]
        );
        assert_eq!(READ.service, "t-svc");
        assert_eq!(format!("{WRITE:?}"), "t-svc.write");
    }

    #[test]
    fn parse_gives_the_typed_request() {
        let req = KillRequest {
            service: "users".into(),
            count: 3,
        };
        let call = READ.call(req.clone()).request_id("r1");
        assert_eq!((call.service(), call.op()), ("t-svc", "read"));
        assert!(call.raw.idempotent);
        match Cmd::parse(&request("read", call.raw.payload.to_vec())).unwrap() {
            Cmd::Read(got) => assert_eq!(got, req),
            Cmd::Write(()) => panic!("parsed as write"),
        }
        assert!(matches!(
            Cmd::parse(&request("write", vec![])).unwrap(),
            Cmd::Write(())
        ));
    }

    #[test]
    fn unknown_ops_and_bad_payloads_are_refused() {
        let err = Cmd::parse(&request("nope", vec![])).err().unwrap();
        assert_eq!(err.code, Code::NotFound);
        assert_eq!(err.message, "t-svc has no op nope");
        // Field 1 as a varint where a string is expected.
        let err = Cmd::parse(&request("read", vec![0x08, 0x01]))
            .err()
            .unwrap();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(
            err.message.starts_with("t-svc.read: malformed request"),
            "{err}"
        );
    }

    #[test]
    fn reply_encodes_the_ops_own_reply_type() {
        let bytes = READ
            .reply(Ok(PingReply {
                node: "n1".into(),
                incarnation: 7,
            }))
            .unwrap();
        assert_eq!(
            <PingReply as prost::Message>::decode(bytes)
                .unwrap()
                .incarnation,
            7
        );
    }
}
