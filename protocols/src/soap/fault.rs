//! The SOAP form of a [`MeshError`]: a SOAP 1.1 Fault (HTTP 500, as SOAP 1.1 over HTTP
//! requires) whose `faultcode` is `soap:Client` for bad input and `soap:Server` otherwise,
//! and whose `detail` carries the mesh error code, message, request id and JSON details.
//! This is the only place a mesh code becomes a SOAP fault code.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use troupe_actors::mesh::{Code, MeshError};

use super::response::{envelope, escape, CONTENT_TYPE_XML};
use super::NS;
use crate::http::ApiError;

/// A SOAP 1.1 fault code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong; sending it again unchanged will fail again.
    Client,
    /// The server could not answer; the request may succeed later.
    Server,
    /// The envelope is not SOAP 1.1.
    VersionMismatch,
    /// A header entry marked `mustUnderstand` is not understood.
    MustUnderstand,
}

impl FaultCode {
    /// The qualified name, e.g. `soap:Client`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::Client => "soap:Client",
            FaultCode::Server => "soap:Server",
            FaultCode::VersionMismatch => "soap:VersionMismatch",
            FaultCode::MustUnderstand => "soap:MustUnderstand",
        }
    }

    /// `soap:Client` for the codes that blame the request, `soap:Server` for the others.
    pub fn of(code: Code) -> FaultCode {
        match code {
            Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::ResourceExhausted => FaultCode::Client,
            Code::Unavailable | Code::DeadlineExceeded | Code::Internal => FaultCode::Server,
        }
    }
}

/// A fault to answer.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The SOAP fault code.
    pub code: FaultCode,
    /// The mesh error it stands for.
    pub error: MeshError,
    /// The request id, echoed in the detail.
    pub request_id: String,
}

impl Fault {
    /// A fault with an explicit code.
    pub fn new(code: FaultCode, error: MeshError) -> Self {
        Self {
            code,
            error,
            request_id: String::new(),
        }
    }

    /// A `soap:Client` fault for invalid input.
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(FaultCode::Client, MeshError::invalid(message))
    }

    /// Sets the request id.
    pub fn request_id(mut self, rid: impl Into<String>) -> Self {
        self.request_id = rid.into();
        self
    }

    /// The fault envelope.
    pub fn to_xml(&self) -> String {
        let mut detail = format!(
            "<tns:Error xmlns:tns=\"{NS}\"><tns:code>{}</tns:code><tns:message>{}</tns:message>\
             <tns:requestId>{}</tns:requestId>",
            self.error.code.as_str(),
            escape(&self.error.message),
            escape(&self.request_id),
        );
        if !self.error.details.is_empty() {
            detail.push_str(&format!(
                "<tns:details>{}</tns:details>",
                escape(&self.error.details)
            ));
        }
        detail.push_str("</tns:Error>");
        envelope(&format!(
            "<soap:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring>\
             <detail>{detail}</detail></soap:Fault>",
            self.code.as_str(),
            escape(&self.error.message),
        ))
    }
}

impl From<MeshError> for Fault {
    fn from(error: MeshError) -> Self {
        Self::new(FaultCode::of(error.code), error)
    }
}

impl From<ApiError> for Fault {
    fn from(e: ApiError) -> Self {
        e.0.into()
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, CONTENT_TYPE_XML)],
            self.to_xml(),
        )
            .into_response()
    }
}

/// Makes sure an error answered on a SOAP route is a Fault: errors produced outside the
/// SOAP handlers (body limit, unknown method, ...) are turned into one, with the request id.
pub fn ensure(resp: Response, request_id: &str) -> Response {
    let is_xml = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/xml"));
    if is_xml {
        return resp;
    }
    let error = match resp.extensions().get::<MeshError>() {
        Some(e) => e.clone(),
        None => crate::http::error::from_status(resp.status()),
    };
    let xml = Fault::from(error).request_id(request_id).to_xml();
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::INTERNAL_SERVER_ERROR;
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_XML));
    Response::from_parts(parts, Body::from(xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_a_client_fault_and_the_rest_server_faults() {
        for c in Code::ALL {
            let want = match c {
                Code::Unavailable | Code::DeadlineExceeded | Code::Internal => "soap:Server",
                _ => "soap:Client",
            };
            assert_eq!(FaultCode::of(c).as_str(), want, "{c}");
        }
    }

    #[test]
    fn fault_detail_carries_code_message_request_id_and_escapes_text() {
        let f = Fault::from(MeshError::invalid("bad <name> & \"more\"")).request_id("rid-1");
        let xml = f.to_xml();
        assert!(xml.contains("<faultcode>soap:Client</faultcode>"), "{xml}");
        assert!(
            xml.contains("<tns:code>invalid_argument</tns:code>"),
            "{xml}"
        );
        assert!(
            xml.contains("<tns:requestId>rid-1</tns:requestId>"),
            "{xml}"
        );
        assert!(
            xml.contains("bad &lt;name&gt; &amp; &quot;more&quot;"),
            "{xml}"
        );
        assert!(!xml.contains("<name>"));
    }
}
