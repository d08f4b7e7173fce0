//! The SOAP form of a [`MeshError`]: a SOAP 1.1 Fault (HTTP 500, as SOAP 1.1 over HTTP
//! requires) whose `faultcode` is `soap:Client` for bad input and `soap:Server` otherwise,
//! and whose `detail` carries the mesh error code, message, request id and JSON details.
//! This is the only place a mesh code becomes a SOAP fault code, and [`faults`], the
//! middleware of the SOAP routes, the only place an error answer on them becomes a Fault.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use troupe_actors::mesh::{Code, MeshError};
use xml::writer::XmlEvent;

use super::response::{envelope, CONTENT_TYPE_XML};
use super::NS;
use crate::http::error::{from_status, Final};
use crate::http::request_id::REQUEST_ID;
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

    /// The fault envelope: `faultcode`, `faultstring` and a `detail` holding `tns:Error`
    /// (`code`, `message`, `requestId`, and `details` when there are some) in [`NS`].
    pub fn to_xml(&self) -> String {
        envelope(|xml| {
            xml.start(XmlEvent::start_element("soap:Fault"));
            xml.text_element("faultcode", self.code.as_str());
            xml.text_element("faultstring", &self.error.message);
            xml.start(XmlEvent::start_element("detail"));
            xml.start(XmlEvent::start_element("tns:Error").ns("tns", NS));
            xml.text_element("tns:code", self.error.code.as_str());
            xml.text_element("tns:message", &self.error.message);
            xml.text_element("tns:requestId", &self.request_id);
            if !self.error.details.is_empty() {
                xml.text_element("tns:details", &self.error.details);
            }
            xml.end();
            xml.end();
            xml.end();
        })
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
        let mut resp = (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, CONTENT_TYPE_XML)],
            self.to_xml(),
        )
            .into_response();
        resp.extensions_mut().insert(Final);
        resp
    }
}

/// The middleware of the SOAP routes ([`super::router`]): an error answered on them that is
/// not a Fault yet becomes one, with the request id and the headers it had (`allow` of a
/// 405, ...). That covers what the layers around a handler answer (the body limit's 413, the
/// method router's 405, an extractor's rejection) as well as an [`ApiError`].
pub async fn faults(req: Request, next: Next) -> Response {
    let rid = req.headers().get(REQUEST_ID).cloned();
    if troupe_actors::system::history::recording() {
        troupe_actors::metrics::SOAP_REQUESTS.increment();
    }
    let resp = next.run(req).await;
    let status = resp.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || resp.extensions().get::<Final>().is_some() {
        return resp;
    }
    let error = match resp.extensions().get::<MeshError>() {
        Some(e) => e.clone(),
        None => from_status(status),
    };
    let rid = rid
        .as_ref()
        .and_then(|r| r.to_str().ok())
        .unwrap_or_default();
    let (fault, body) = Fault::from(error)
        .request_id(rid)
        .into_response()
        .into_parts();
    let (mut parts, _) = resp.into_parts();
    parts.status = fault.status;
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.extend(fault.headers);
    parts.extensions.extend(fault.extensions);
    Response::from_parts(parts, body)
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
        assert!(xml.contains("bad &lt;name&gt; &amp; \"more\""), "{xml}");
        assert!(!xml.contains("<name>"));
    }

    #[test]
    fn a_fault_keeps_its_shape() {
        assert_eq!(
            Fault::from(MeshError::invalid("bad")).request_id("rid-1").to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
             <soap:Fault><faultcode>soap:Client</faultcode><faultstring>bad</faultstring>\
             <detail><tns:Error xmlns:tns=\"urn:troupe:users:v1\"><tns:code>invalid_argument</tns:code>\
             <tns:message>bad</tns:message><tns:requestId>rid-1</tns:requestId></tns:Error>\
             </detail></soap:Fault></soap:Body></soap:Envelope>"
        );
    }

    #[test]
    fn a_fault_round_trips_markup_quotes_and_non_ascii_text() {
        let message = "user <\"Zoë\"> & 'Ågot' ]]> 既に存在します";
        let error = MeshError::new(Code::AlreadyExists, message)
            .with_details(serde_json::json!({ "field": "<username>", "value": "é&" }));
        let details = error.details.clone();
        let xml = Fault::from(error).request_id("r&<1>").to_xml();
        let env = |f: &str| format!("{{{}}}{f}", crate::soap::ENV_NS);
        let tns = |f: &str| format!("{{{NS}}}{f}");
        let plain = |f: &str| format!("{{}}{f}");
        assert_eq!(
            crate::soap::response::tests::texts(&xml),
            [
                (plain("faultcode"), "soap:Client".to_string()),
                (plain("faultstring"), message.to_string()),
                (tns("code"), "already_exists".to_string()),
                (tns("message"), message.to_string()),
                (tns("requestId"), "r&<1>".to_string()),
                (tns("details"), details),
                (tns("Error"), String::new()),
                (plain("detail"), String::new()),
                (env("Fault"), String::new()),
            ]
        );
    }

    mod layer {
        use axum::body::Body;
        use axum::http::header::ALLOW;
        use axum::routing::post;
        use axum::Router;
        use tower::Service as _;
        use tower_http::limit::RequestBodyLimitLayer;

        use super::*;

        /// A route behind the SOAP middleware, with a body limit of 16 bytes inside it.
        fn app() -> Router {
            Router::new()
                .route("/echo", post(|body: String| async move { body }))
                .route(
                    "/taken",
                    post(|| async { ApiError(MeshError::new(Code::AlreadyExists, "taken")) }),
                )
                .route(
                    "/fault",
                    post(|| async { Fault::client("no").request_id("own") }),
                )
                .layer(RequestBodyLimitLayer::new(16))
                .layer(axum::middleware::from_fn(faults))
        }

        async fn send(method: &str, path: &str, body: &'static str) -> (Response, String) {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(REQUEST_ID, "rid-7")
                .header(CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap();
            let resp = app().call(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            (Response::from_parts(parts, Body::empty()), text)
        }

        fn detail(xml: &str, field: &str) -> String {
            let tns = format!("{{{NS}}}{field}");
            crate::soap::response::tests::texts(xml)
                .into_iter()
                .find(|(name, _)| *name == tns)
                .map(|(_, text)| text)
                .unwrap_or_default()
        }

        #[tokio::test]
        async fn errors_made_around_the_handler_become_faults_with_the_request_id() {
            let (resp, xml) = send("POST", "/echo", "far more than sixteen bytes").await;
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
            assert_eq!(resp.headers()[CONTENT_TYPE], CONTENT_TYPE_XML);
            assert_eq!(detail(&xml, "code"), "resource_exhausted");
            assert_eq!(detail(&xml, "requestId"), "rid-7");

            let (resp, xml) = send("DELETE", "/echo", "").await;
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
            assert_eq!(resp.headers()[ALLOW], "POST");
            assert_eq!(detail(&xml, "code"), "invalid_argument");

            let (resp, xml) = send("POST", "/taken", "").await;
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
            assert!(resp.extensions().get::<Final>().is_some());
            assert_eq!(detail(&xml, "code"), "already_exists");
            assert_eq!(detail(&xml, "message"), "taken");
        }

        #[tokio::test]
        async fn answers_and_faults_pass_as_they_are() {
            let (resp, text) = send("POST", "/echo", "<ok/>").await;
            assert_eq!((resp.status(), text.as_str()), (StatusCode::OK, "<ok/>"));
            let (resp, xml) = send("POST", "/fault", "").await;
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
            assert_eq!(xml, Fault::client("no").request_id("own").to_xml());
        }
    }
}
