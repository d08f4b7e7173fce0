//! The one error type that crosses the mesh.
//!
//! Every service answers failures with a [`MeshError`]; each protocol maps its [`Code`] once
//! (HTTP status + JSON, gRPC status, SOAP Fault, WebSocket close code).

use std::fmt;

use troupe_proto::mesh as pb;

/// What went wrong, in terms every protocol can map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The request is malformed or a field is invalid.
    InvalidArgument,
    /// No valid credentials.
    Unauthenticated,
    /// Credentials are valid but do not allow this.
    PermissionDenied,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// The request conflicts with the current state (e.g. cancelling a finished task).
    FailedPrecondition,
    /// A queue, quota or size limit was hit.
    ResourceExhausted,
    /// No live actor could serve the request right now; retrying may help.
    Unavailable,
    /// The deadline passed before an answer arrived.
    DeadlineExceeded,
    /// A bug or an unexpected failure.
    Internal,
}

impl Code {
    /// Every code, for tests and docs.
    pub const ALL: [Code; 10] = [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::NotFound,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::ResourceExhausted,
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::Internal,
    ];

    /// The snake_case name used on the wire and in JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::FailedPrecondition => "failed_precondition",
            Code::ResourceExhausted => "resource_exhausted",
            Code::Unavailable => "unavailable",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::Internal => "internal",
        }
    }

    /// Parses a wire name; unknown names become [`Code::Internal`].
    pub fn parse(s: &str) -> Code {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Code::Internal)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed error with a human message and optional JSON details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshError {
    /// What kind of failure.
    pub code: Code,
    /// Lowercase, no trailing period.
    pub message: String,
    /// Optional structured details as JSON text (e.g. field errors); empty when none.
    pub details: String,
}

impl MeshError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: String::new(),
        }
    }

    /// Adds JSON details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details.to_string();
        self
    }

    /// Shorthand for [`Code::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// Shorthand for [`Code::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// Shorthand for [`Code::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// Shorthand for [`Code::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// Shorthand for [`Code::DeadlineExceeded`].
    pub fn deadline() -> Self {
        Self::new(Code::DeadlineExceeded, "deadline exceeded")
    }

    /// Whether a retry on another actor may succeed (the request surely did not run to
    /// completion, or running it again is harmless for an idempotent op).
    pub fn is_retryable(&self) -> bool {
        self.code == Code::Unavailable
    }
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for MeshError {}

impl From<pb::MeshError> for MeshError {
    fn from(e: pb::MeshError) -> Self {
        Self {
            code: Code::parse(&e.code),
            message: e.message,
            details: e.details,
        }
    }
}

impl From<MeshError> for pb::MeshError {
    fn from(e: MeshError) -> Self {
        Self {
            code: e.code.as_str().to_string(),
            message: e.message,
            details: e.details,
        }
    }
}

impl From<prost::DecodeError> for MeshError {
    fn from(e: prost::DecodeError) -> Self {
        MeshError::invalid(format!("malformed payload: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_wire_names() {
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), c);
        }
        assert_eq!(Code::parse("no_such_code"), Code::Internal);
    }

    #[test]
    fn errors_round_trip_through_protobuf() {
        let e = MeshError::invalid("bad field").with_details(serde_json::json!({"field": "x"}));
        let wire: pb::MeshError = e.clone().into();
        assert_eq!(wire.code, "invalid_argument");
        assert_eq!(MeshError::from(wire), e);
    }

    #[test]
    fn only_unavailable_is_retryable() {
        for c in Code::ALL {
            assert_eq!(
                MeshError::new(c, "x").is_retryable(),
                c == Code::Unavailable
            );
        }
    }
}
