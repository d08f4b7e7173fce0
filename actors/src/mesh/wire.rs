//! The cluster wire format, in one leaf module: how a call and its answer cross between
//! nodes. Nothing here imports the router, pool, worker or endpoint; they all import this.
//!
//! - A call travels as an encoded [`Envelope`] (service, op name, prost payload, deadline as
//!   wall-clock milliseconds, caller, entity, origin node, and the chain of services waiting
//!   on it); [`envelope`] builds it, [`request`] turns it back into a [`Request`].
//! - Its answer travels as an encoded [`Reply`]: the service's prost reply or a
//!   [`MeshError`] ([`encode_reply`], [`decode_reply`]).
//! - Each service's endpoint is found through pg groups named by [`group`] and
//!   [`node_group`].
//!
//! Bytes rather than typed ractor messages cross the wire, so a malformed envelope is
//! answered with `invalid_argument` instead of being dropped by ractor_cluster's decoder.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use troupe_proto::mesh::{reply, Caller, Envelope, Reply};

use super::trace::{self, Trace};
use super::{MeshError, Request};

/// The pg group of a service, any node.
pub fn group(service: &str) -> String {
    format!("svc.{service}")
}

/// The pg group of a service on one named node.
pub fn node_group(service: &str, node: &str) -> String {
    format!("svc.{service}@{node}")
}

/// Milliseconds since the Unix epoch, `timeout` from now.
pub fn deadline_unix_ms(timeout: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + timeout).as_millis() as u64
}

/// Turns an envelope's wall-clock deadline into a local instant (`default` when none).
pub fn local_deadline(deadline_unix_ms: u64, default: Duration) -> Instant {
    if deadline_unix_ms == 0 {
        return Instant::now() + default;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Instant::now() + Duration::from_millis(deadline_unix_ms.saturating_sub(now_ms))
}

/// The parts of one call that cross the wire.
pub struct Outgoing<'a> {
    /// Service group.
    pub service: &'a str,
    /// Op name.
    pub op: &'a str,
    /// The service's prost-encoded request.
    pub payload: &'a Bytes,
    /// Correlation id.
    pub request_id: &'a str,
    /// The authenticated caller.
    pub caller: Option<&'a Caller>,
    /// Entity id, or empty.
    pub entity: &'a str,
    /// The node sending it.
    pub origin: &'a str,
    /// Services whose workers wait on it.
    pub chain: &'a [String],
    /// The write's idempotency key, or empty.
    pub idempotency_key: &'a str,
    /// The trace it belongs to, this hop's span as the parent.
    pub trace: Option<Trace>,
}

/// Encodes a call for a peer, with `remaining` time to answer.
pub fn envelope(call: Outgoing<'_>, remaining: Duration) -> Vec<u8> {
    Envelope {
        service: call.service.to_string(),
        op: call.op.to_string(),
        request_id: call.request_id.to_string(),
        deadline_unix_ms: deadline_unix_ms(remaining),
        caller: call.caller.cloned(),
        payload: call.payload.to_vec(),
        entity: call.entity.to_string(),
        origin_node: call.origin.to_string(),
        chain: call.chain.to_vec(),
        idempotency_key: call.idempotency_key.to_string(),
        traceparent: call.trace.map(|t| t.encode()).unwrap_or_default(),
    }
    .encode_to_vec()
}

/// Decodes a call from a peer into the request a worker runs; `default` is the deadline
/// when the envelope names none.
pub fn request(bytes: &[u8], default: Duration) -> Result<Request, MeshError> {
    let env = Envelope::decode(bytes)?;
    if crate::system::history::recording() {
        crate::metrics::count_peer_call(&env.origin_node);
    }
    Ok(Request {
        op: env.op,
        payload: Bytes::from(env.payload),
        caller: env.caller,
        request_id: env.request_id,
        // A peer's malformed trace context starts a fresh trace, as at ingress.
        trace: (!env.traceparent.is_empty()).then(|| trace::accept(Some(&env.traceparent))),
        deadline: local_deadline(env.deadline_unix_ms, default),
        entity: env.entity,
        chain: env.chain,
        idempotency_key: env.idempotency_key,
    })
}

/// Encodes the answer to a call.
pub fn encode_reply(answer: Result<Bytes, MeshError>, served_by: &str) -> Vec<u8> {
    Reply {
        result: Some(match answer {
            Ok(bytes) => reply::Result::Ok(bytes.to_vec()),
            Err(e) => reply::Result::Error(e.into()),
        }),
        served_by: served_by.to_string(),
    }
    .encode_to_vec()
}

/// Decodes the answer to a call.
pub fn decode_reply(bytes: &[u8]) -> Result<Bytes, MeshError> {
    let reply = Reply::decode(bytes)
        .map_err(|e| MeshError::internal(format!("malformed reply from peer: {e}")))?;
    match reply.result {
        Some(reply::Result::Ok(b)) => Ok(Bytes::from(b)),
        Some(reply::Result::Error(e)) => Err(e.into()),
        None => Err(MeshError::internal("empty reply from peer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Code;

    #[test]
    fn a_call_round_trips_with_its_chain_and_deadline() {
        let payload = Bytes::from_static(b"\x0a\x02hi");
        let caller = Caller {
            user_id: "u1".into(),
            roles: vec!["admin".into()],
            session_id: "s1".into(),
        };
        let chain = vec!["auth".to_string(), "users".to_string()];
        let sent = Trace::fresh();
        let bytes = envelope(
            Outgoing {
                service: "users",
                op: "get",
                payload: &payload,
                request_id: "r1",
                caller: Some(&caller),
                entity: "e1",
                origin: "n1",
                chain: &chain,
                idempotency_key: "k1",
                trace: Some(sent),
            },
            Duration::from_secs(2),
        );
        let req = request(&bytes, Duration::from_secs(60)).unwrap();
        assert_eq!(req.op, "get");
        assert_eq!(req.payload, payload);
        assert_eq!(req.caller, Some(caller));
        assert_eq!((req.request_id.as_str(), req.entity.as_str()), ("r1", "e1"));
        assert_eq!(req.chain, chain);
        assert_eq!(req.idempotency_key, "k1");
        let served = req.trace.expect("the trace crossed");
        assert_eq!(served.trace_id, sent.trace_id);
        assert_ne!(
            served.span_id, sent.span_id,
            "the serving hop is a span of its own"
        );
        let left = req.deadline.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(2) && left > Duration::from_secs(1),
            "{left:?}"
        );
    }

    #[test]
    fn garbage_is_refused_not_dropped() {
        let err = request(&[0xff, 0xff, 0xff], Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        let err = decode_reply(&[0xff, 0xff]).unwrap_err();
        assert_eq!(err.code, Code::Internal);
    }

    #[test]
    fn replies_round_trip() {
        let ok = encode_reply(Ok(Bytes::from_static(b"x")), "n2");
        assert_eq!(decode_reply(&ok).unwrap(), Bytes::from_static(b"x"));
        let err = encode_reply(Err(MeshError::not_found("no such user")), "n2");
        let err = decode_reply(&err).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (Code::NotFound, "no such user")
        );
    }
}
