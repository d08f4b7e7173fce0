//! The gRPC form of a [`MeshError`]: a [`Status`] with the matching code, the message, and
//! the mesh code (plus JSON details, when any) in the `troupe-error-code` /
//! `troupe-error-details` trailers. This is the only place a mesh code becomes a gRPC code.

use tonic::metadata::MetadataValue;
use tonic::{Code as GrpcCode, Status};
use troupe_actors::mesh::{Code, MeshError};

/// Trailer carrying the mesh error code (`invalid_argument`, ...).
pub const ERROR_CODE: &str = "troupe-error-code";
/// Trailer carrying the error's JSON details, when it has any.
pub const ERROR_DETAILS: &str = "troupe-error-details";

/// The gRPC code of a mesh code.
pub fn code(code: Code) -> GrpcCode {
    match code {
        Code::InvalidArgument => GrpcCode::InvalidArgument,
        Code::Unauthenticated => GrpcCode::Unauthenticated,
        Code::PermissionDenied => GrpcCode::PermissionDenied,
        Code::NotFound => GrpcCode::NotFound,
        Code::AlreadyExists => GrpcCode::AlreadyExists,
        Code::FailedPrecondition => GrpcCode::FailedPrecondition,
        Code::ResourceExhausted => GrpcCode::ResourceExhausted,
        Code::Unavailable => GrpcCode::Unavailable,
        Code::DeadlineExceeded => GrpcCode::DeadlineExceeded,
        Code::Internal => GrpcCode::Internal,
    }
}

/// The status a client sees for a mesh error.
pub fn status(e: MeshError) -> Status {
    let mut s = Status::new(code(e.code), e.message);
    s.metadata_mut()
        .insert(ERROR_CODE, MetadataValue::from_static(e.code.as_str()));
    if !e.details.is_empty() {
        if let Ok(v) = MetadataValue::try_from(e.details.as_str()) {
            s.metadata_mut().insert(ERROR_DETAILS, v);
        }
    }
    s
}

/// Shorthand: an `invalid_argument` status.
pub fn invalid(message: impl Into<String>) -> Status {
    status(MeshError::invalid(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mesh_code_has_its_grpc_code_and_trailer() {
        for c in Code::ALL {
            let s = status(MeshError::new(c, "boom"));
            assert_eq!(s.message(), "boom");
            assert_eq!(
                s.metadata().get(ERROR_CODE).and_then(|v| v.to_str().ok()),
                Some(c.as_str())
            );
            assert_ne!(s.code(), GrpcCode::Ok);
            assert_ne!(s.code(), GrpcCode::Unknown);
        }
        assert_eq!(code(Code::ResourceExhausted), GrpcCode::ResourceExhausted);
        let s = status(
            MeshError::invalid("bad").with_details(serde_json::json!({"fields": {"a": "b"}})),
        );
        assert_eq!(
            s.metadata()
                .get(ERROR_DETAILS)
                .and_then(|v| v.to_str().ok()),
            Some(r#"{"fields":{"a":"b"}}"#)
        );
    }
}
