//! What every gRPC handler reads from the request metadata: the request id, the deadline
//! (`grpc-timeout`, which becomes the mesh call's deadline), and the caller (the bearer
//! token of the `authorization` metadata, verified on this node like REST does).

use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::Status;
use troupe_actors::mesh::{Call, Code, MeshError, Op};
use troupe_proto::mesh as pb;

use super::error::status;
use super::State;

/// Longest deadline a client may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The request's id, deadline and (when it presented a valid token) caller.
#[derive(Clone, Debug)]
pub struct Context {
    /// From `x-request-id`, or new.
    pub request_id: String,
    /// From `grpc-timeout` (at most [`MAX_TIMEOUT`]), or the node's request timeout.
    pub timeout: Duration,
    /// Bearer token of the `authorization` metadata, if any.
    pub token: Option<String>,
}

impl Context {
    /// Reads the context of a request.
    pub fn of(meta: &MetadataMap, default_timeout: Duration) -> Context {
        let request_id = meta.get("x-request-id").and_then(|v| v.to_str().ok());
        let request_id = crate::ingress::request_id::accept(request_id);
        let timeout = meta
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout)
            .map_or(default_timeout, |t| t.min(MAX_TIMEOUT));
        let token = meta
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Context {
            request_id,
            timeout,
            token,
        }
    }

    /// A mesh call of `op` carrying this request's id and deadline.
    pub fn call<Req, Rep>(&self, op: &Op<Req, Rep>, req: Req) -> Call<Rep>
    where
        Req: prost::Message + Default,
        Rep: prost::Message,
    {
        op.call(req)
            .request_id(self.request_id.clone())
            .timeout(self.timeout)
    }

    /// The authenticated caller: a valid access token of a live session.
    pub fn caller(&self, state: &State) -> Result<pb::Caller, Status> {
        let token = self.token.as_deref().ok_or_else(|| {
            status(MeshError::new(
                Code::Unauthenticated,
                "missing bearer token in the authorization metadata",
            ))
        })?;
        Ok(state.authenticate(token).map_err(status)?.to_proto())
    }
}

/// Whether a caller has role `admin`.
pub fn is_admin(caller: &pb::Caller) -> bool {
    caller.roles.iter().any(|r| r == "admin")
}

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_timeout(v: &str) -> Option<Duration> {
    let unit = *v.as_bytes().last()?;
    if !unit.is_ascii() {
        return None;
    }
    // The last byte is ASCII, so it is a char boundary.
    let digits = &v[..v.len() - 1];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_timeout("5000u"), Some(Duration::from_millis(5)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S", "ß"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn context_reads_request_id_deadline_and_bearer() {
        let mut meta = MetadataMap::new();
        meta.insert("x-request-id", "rid-7".parse().unwrap());
        meta.insert("grpc-timeout", "250m".parse().unwrap());
        meta.insert("authorization", "Bearer abc.def".parse().unwrap());
        let c = Context::of(&meta, Duration::from_secs(5));
        assert_eq!(c.request_id, "rid-7");
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.token.as_deref(), Some("abc.def"));
        let c = Context::of(&MetadataMap::new(), Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.token.is_none() && !c.request_id.is_empty());
    }
}
