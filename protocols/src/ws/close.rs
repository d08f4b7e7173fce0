//! WebSocket close codes (RFC 6455 section 7.4.1), and the one mapping onto a close code of
//! a mesh error ([`code_of`]) and of a reason the hub closes a connection for ([`for_hub`]).

use troupe_actors::hub::CloseReason;
use troupe_actors::mesh::{Code, MeshError};

/// The client closed, or the server closes normally.
pub const NORMAL: u16 = 1000;
/// The connection was idle too long, or the node is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The client broke the WebSocket protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The client sent a binary frame: only JSON text frames are spoken here.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// The client sent a text frame that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A missing, forged, expired or revoked token (also when it expires or is revoked while
/// the connection is open), or another user's connection path.
pub const POLICY: u16 = 1008;
/// A frame or message over the configured maximum.
pub const TOO_BIG: u16 = 1009;
/// An unexpected failure on the server.
pub const INTERNAL: u16 = 1011;
/// The client reads too slowly (its send queue filled up), or the cluster is overloaded.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// The close code for a mesh error that ends a connection.
pub fn code_of(e: &MeshError) -> u16 {
    match e.code {
        Code::Unauthenticated | Code::PermissionDenied | Code::NotFound => POLICY,
        Code::InvalidArgument => INVALID_PAYLOAD,
        Code::ResourceExhausted | Code::Unavailable | Code::DeadlineExceeded => TRY_AGAIN_LATER,
        Code::AlreadyExists | Code::FailedPrecondition => POLICY,
        Code::Internal => INTERNAL,
    }
}

/// The close code and reason for a connection the hub closes.
pub fn for_hub(why: CloseReason) -> (u16, &'static str) {
    let code = match why {
        CloseReason::SessionRevoked => POLICY,
        CloseReason::ShuttingDown => GOING_AWAY,
    };
    (code, why.as_str())
}

/// A close reason as sent: at most 123 bytes (the control frame limit), cut on a character
/// boundary.
pub fn reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failures_are_policy_violations() {
        assert_eq!(code_of(&MeshError::new(Code::Unauthenticated, "x")), 1008);
        assert_eq!(code_of(&MeshError::new(Code::PermissionDenied, "x")), 1008);
        assert_eq!(code_of(&MeshError::internal("x")), 1011);
        assert_eq!(code_of(&MeshError::new(Code::ResourceExhausted, "x")), 1013);
    }

    #[test]
    fn a_revoked_session_is_a_policy_violation_and_a_node_leaving_goes_away() {
        assert_eq!(
            for_hub(CloseReason::SessionRevoked),
            (1008, "session revoked")
        );
        assert_eq!(
            for_hub(CloseReason::ShuttingDown),
            (1001, "node shutting down")
        );
    }

    #[test]
    fn reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let r = reason(&long);
        assert!(r.len() <= 123 && long.starts_with(&r));
        assert_eq!(reason("short"), "short");
    }
}
