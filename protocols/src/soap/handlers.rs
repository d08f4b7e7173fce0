//! The SOAP routes: `POST /register` (RegisterUser), `POST /soap` (every operation),
//! `GET /soap?wsdl` (the contract) and `GET /user/soap?username=` (LookupUser as a GET).
//! They reach the same `users` actors as REST.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use troupe_actors::users::{self, messages as um, validate};

use super::envelope::{self, Limits, Operation};
use super::fault::Fault;
use super::response::{self, CONTENT_TYPE_XML};
use crate::http::request_id::Rid;
use crate::http::{ask, AppState};

/// The `SOAPAction` header.
const SOAP_ACTION: &str = "soapaction";

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, CONTENT_TYPE_XML)], body).into_response()
}

/// Checks the content type, parses the envelope and checks `SOAPAction` against it.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Operation, Fault> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !matches!(
            media,
            "text/xml" | "application/xml" | "application/soap+xml"
        ) {
            return Err(Fault::client(format!(
                "expected content-type text/xml for a SOAP 1.1 request, got {media:?}"
            )));
        }
    }
    let op = envelope::parse(body, &Limits::default())?.operation;
    if let Some(action) = headers.get(SOAP_ACTION) {
        let action = action.to_str().unwrap_or_default().trim().trim_matches('"');
        // An empty SOAPAction ("") says "the body names the operation".
        if !action.is_empty() {
            let named = action.rsplit(['#', '/', ':']).next().unwrap_or_default();
            if named != op.name() {
                return Err(Fault::client(format!(
                    "SOAPAction {action:?} does not match the body's operation {}",
                    op.name()
                )));
            }
        }
    }
    Ok(op)
}

/// Runs one operation for a client at `ip`; the response envelope.
async fn run(state: &AppState, rid: &str, ip: &str, op: Operation) -> Result<String, Fault> {
    match op {
        Operation::RegisterUser {
            username,
            email,
            password,
            full_name,
        } => {
            // The same cluster-wide count as every REST register path.
            state
                .limit(troupe_actors::auth::limits::Class::Register, ip, rid)
                .await?;
            let user: um::User = ask(
                state,
                users::REGISTER
                    .call(um::RegisterRequest {
                        username,
                        email,
                        password,
                        full_name,
                    })
                    .request_id(rid),
            )
            .await?;
            Ok(response::user(
                "RegisterUserResponse",
                &user,
                response::Audience::Owner,
            ))
        }
        Operation::LookupUser { username } => {
            let user = lookup_user(state, rid, &username).await?;
            // Anonymous: the public fields only.
            Ok(response::user(
                "LookupUserResponse",
                &user,
                response::Audience::Public,
            ))
        }
    }
}

/// A user by username, ignoring case.
async fn lookup_user(state: &AppState, rid: &str, username: &str) -> Result<um::User, Fault> {
    if username.is_empty() {
        return Err(Fault::client("username is required"));
    }
    validate::username(username).map_err(|m| Fault::client(format!("username {m}")))?;
    Ok(ask(
        state,
        users::GET_BY_USERNAME
            .call(um::GetByLoginRequest {
                login: username.to_string(),
            })
            .request_id(rid),
    )
    .await?)
}

/// Answers a decoded request from a client at `addr`, or its fault.
async fn answer(
    state: &AppState,
    rid: &str,
    addr: ConnectInfo<SocketAddr>,
    op: Result<Operation, Fault>,
) -> Response {
    let result = match op {
        Ok(op) => run(state, rid, &addr.0.ip().to_string(), op).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(body) => xml(StatusCode::OK, body),
        Err(f) => f.request_id(rid).into_response(),
    }
}

/// `POST /register`: a SOAP `RegisterUser` envelope.
#[utoipa::path(
    post,
    path = "/register",
    tag = "soap",
    request_body(
        content = String,
        content_type = "text/xml",
        description = "A SOAP 1.1 envelope whose body is a `RegisterUser` request (content type \
            `text/xml`, `application/xml` or `application/soap+xml`; a `SOAPAction` header, if \
            not empty, must name `RegisterUser`)"
    ),
    responses(
        (status = 200, description = "A `RegisterUserResponse` envelope with the new user", content_type = "text/xml; charset=utf-8", body = String),
        (status = 500, description = "A SOAP 1.1 Fault: `soap:Client` for a bad request (malformed \
            envelope, another operation, invalid fields, username taken, too many \
            registrations from the address; an email in use under a free username is answered \
            with a user id like a new account, nothing is created and the owner is mailed), `soap:Server` otherwise; its `detail` carries the error code, message and request id", content_type = "text/xml; charset=utf-8", body = String),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = decode(&headers, &body).and_then(|op| match op {
        Operation::RegisterUser { .. } => Ok(op),
        other => Err(Fault::client(format!(
            "POST /register takes RegisterUser, not {} (use POST /soap)",
            other.name()
        ))),
    });
    answer(&state, &rid, addr, op).await
}

/// `POST /soap`: any operation of the WSDL.
#[utoipa::path(
    post,
    path = "/soap",
    tag = "soap",
    request_body(
        content = String,
        content_type = "text/xml",
        description = "A SOAP 1.1 envelope whose body is one operation of the WSDL: \
            `RegisterUser` or `LookupUser` (content type `text/xml`, `application/xml` or \
            `application/soap+xml`; a `SOAPAction` header, if not empty, must name the body's \
            operation)"
    ),
    responses(
        (status = 200, description = "The operation's response envelope (`RegisterUserResponse` or `LookupUserResponse`)", content_type = "text/xml; charset=utf-8", body = String),
        (status = 500, description = "A SOAP 1.1 Fault: `soap:Client` for a bad request (malformed \
            envelope, unknown operation, invalid fields, no such user, ...), `soap:Server` \
            otherwise; its `detail` carries the error code, message and request id", content_type = "text/xml; charset=utf-8", body = String),
    )
)]
pub async fn endpoint(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = decode(&headers, &body);
    answer(&state, &rid, addr, op).await
}

/// `GET /soap?wsdl`: the WSDL, pointing at this node's `/soap` as the client reached it.
#[utoipa::path(
    get,
    path = "/soap",
    tag = "soap",
    params(("wsdl" = String, Query, description = "Asks for the WSDL; any value, or none (`?wsdl`)")),
    responses(
        (status = 200, description = "The WSDL 1.1 document of the service", content_type = "text/xml; charset=utf-8", body = String),
        (status = 500, description = "A SOAP 1.1 Fault (`soap:Client`) when `wsdl` is not in the query", content_type = "text/xml; charset=utf-8", body = String),
    )
)]
pub async fn wsdl(Rid(rid): Rid, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let asks_wsdl = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p.eq_ignore_ascii_case("wsdl") || p.to_ascii_lowercase().starts_with("wsdl="))
    });
    if !asks_wsdl {
        return Fault::client("GET /soap serves the contract at /soap?wsdl; calls are POSTed")
            .request_id(rid)
            .into_response();
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    xml(
        StatusCode::OK,
        super::wsdl::document(&format!("http://{host}/soap")),
    )
}

/// Query of `GET /user/soap`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The username to look up (required; case is ignored): 3 to 32 characters of letters,
    /// digits, `_`, `.` or `-`.
    pub username: Option<String>,
}

/// `GET /user/soap?username=`: a `LookupUserResponse` envelope, or a fault.
#[utoipa::path(
    get,
    path = "/user/soap",
    tag = "soap",
    params(LookupQuery),
    responses(
        (status = 200, description = "A `LookupUserResponse` envelope with the user's public fields \
            (id, username, created_at; never the email)", content_type = "text/xml; charset=utf-8", body = String),
        (status = 500, description = "A SOAP 1.1 Fault: `soap:Client` when `username` is missing or \
            invalid or no user has it, `soap:Server` otherwise", content_type = "text/xml; charset=utf-8", body = String),
    )
)]
pub async fn lookup(
    State(state): State<AppState>,
    Rid(rid): Rid,
    addr: ConnectInfo<SocketAddr>,
    Query(q): Query<LookupQuery>,
) -> Response {
    let op = Ok(Operation::LookupUser {
        username: q.username.unwrap_or_default(),
    });
    answer(&state, &rid, addr, op).await
}
