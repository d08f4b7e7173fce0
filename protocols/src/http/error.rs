//! The HTTP form of a [`MeshError`]: status code + `{"error": {code, message, request_id}}`.
//! This is the only place a mesh code becomes an HTTP status.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use troupe_actors::mesh::{Code, MeshError};

use super::openapi::{ErrorBody, ErrorDetail};

/// An error answered over HTTP.
#[derive(Debug)]
pub struct ApiError(pub MeshError);

impl From<MeshError> for ApiError {
    fn from(e: MeshError) -> Self {
        Self(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self(body_too_large());
        }
        Self(MeshError::invalid(r.body_text().to_lowercase()))
    }
}

/// The `reason` detail that marks a body over the size limit: `resource_exhausted` in the
/// mesh's terms, but 413 (not 429) over HTTP, whether the limit was seen from the
/// `content-length` header or only while reading a chunked body.
const BODY_TOO_LARGE: &str = "body_too_large";

/// The error for a request body over the configured limit.
pub fn body_too_large() -> MeshError {
    MeshError::new(Code::ResourceExhausted, "request body too large")
        .with_details(serde_json::json!({ "reason": BODY_TOO_LARGE }))
}

/// The HTTP status of an error: its code's status, except for an oversized body.
pub fn status_of(e: &MeshError) -> StatusCode {
    if e.code == Code::ResourceExhausted
        && (e.details.contains(BODY_TOO_LARGE)
            || e.details
                .contains(troupe_actors::auth::limits::OVER_SIZE_QUOTA))
    {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    // An identity provider that failed: the fault is upstream of this node (502), not a
    // missing actor (503).
    if e.code == Code::Unavailable
        && e.details
            .contains(troupe_actors::sso::provider::BAD_GATEWAY)
    {
        return StatusCode::BAD_GATEWAY;
    }
    status(e.code)
}

/// The HTTP status of a mesh code.
pub fn status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The mesh code for a bare HTTP status produced outside a handler (router, limits).
pub fn code_of(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::InvalidArgument,
        StatusCode::CONFLICT => Code::FailedPrecondition,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => Code::Unavailable,
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// The `retry_after_s` detail of a limit's refusal, or of a full outbox's
/// (`Retry-After` over HTTP).
pub fn retry_after_s(e: &MeshError) -> Option<u64> {
    let refusal = matches!(e.code, Code::ResourceExhausted | Code::Unavailable);
    if !refusal || !e.details.contains("retry_after_s") {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&e.details)
        .ok()?
        .get("retry_after_s")?
        .as_u64()
}

/// The body of an error: `{"error": {"code", "message", "request_id", "details"?}}`.
pub fn body(e: &MeshError, request_id: &str) -> ErrorBody {
    let details = (!e.details.is_empty())
        .then(|| serde_json::from_str::<serde_json::Value>(&e.details).ok())
        .flatten();
    ErrorBody {
        error: ErrorDetail {
            code: e.code.as_str(),
            message: e.message.clone(),
            request_id: request_id.to_string(),
            details,
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The request id is filled in by the `json_errors` middleware, which sees the
        // request; handlers need not carry it.
        let mut resp = (status_of(&self.0), Json(body(&self.0, ""))).into_response();
        if let Some(secs) = retry_after_s(&self.0) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp.extensions_mut().insert(self.0);
        resp
    }
}

/// Marks an error response already in its protocol's own error form (a SOAP Fault, see
/// `crate::soap::fault`): [`super::middleware::ObserveLayer`] leaves its body as it is.
#[derive(Clone, Copy, Debug)]
pub struct Final;

/// The error for a status produced outside a handler (no route, body limit, ...).
pub fn from_status(status: StatusCode) -> MeshError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return body_too_large();
    }
    let message = match status {
        StatusCode::NOT_FOUND => "no such route".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected content-type application/json".to_string(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    MeshError::new(code_of(status), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_meaningful_status() {
        assert_eq!(status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Code::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(
            status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Code::DeadlineExceeded), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status(Code::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_oversized_body_is_413_whichever_way_it_was_detected() {
        assert_eq!(status_of(&body_too_large()), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            status_of(&from_status(StatusCode::PAYLOAD_TOO_LARGE)),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status_of(&MeshError::new(Code::ResourceExhausted, "queue full")),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn error_body_carries_code_message_request_id_and_details() {
        let e = MeshError::invalid("bad").with_details(serde_json::json!({"field": "count"}));
        let b = serde_json::to_value(body(&e, "rid-1")).unwrap();
        assert_eq!(b["error"]["code"], "invalid_argument");
        assert_eq!(b["error"]["message"], "bad");
        assert_eq!(b["error"]["request_id"], "rid-1");
        assert_eq!(b["error"]["details"]["field"], "count");
    }
}
