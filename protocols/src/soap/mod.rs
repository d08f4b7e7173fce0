//! SOAP 1.1 ingress for legacy clients: the users operations `RegisterUser` and `LookupUser`
//! (namespace [`NS`]), described by a WSDL 1.1 document/literal contract.
//!
//! XML is parsed with xml-rs configured and driven so that DTDs and entity declarations are
//! refused and size, depth and element counts are capped; errors are SOAP Faults, mapped
//! from the mesh error once ([`fault`]).
//!
//! # Layout
//! - [`envelope`]: request parsing and its limits.
//! - [`fault`]: mesh error -> SOAP Fault, and the middleware that makes every error answer
//!   on the SOAP routes a Fault.
//! - [`response`]: writing response envelopes (xml-rs's writer).
//! - [`wsdl`]: the WSDL 1.1 contract.
//! - [`handlers`]: the routes.
//! - this file: [`router`], the routes with their layers, which `crate::http::router` merges.

use tower_http::limit::RequestBodyLimitLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

pub mod envelope;
pub mod fault;
pub mod handlers;
pub mod response;
pub mod wsdl;

/// Namespace of the users operations.
pub const NS: &str = "urn:troupe:users:v1";
/// SOAP 1.1 envelope namespace.
pub const ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace (answered with a `VersionMismatch` fault).
pub const ENV_NS_12: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The SOAP routes, described for `/openapi.json` by their handlers' `#[utoipa::path]`, with
/// their own layers: every error answered on them is a Fault ([`fault::faults`]). That
/// middleware is outside the body limit (`max_body_bytes`, the node's), so an oversized body
/// is a Fault too; the method router's 405 and the extractors' rejections are inside it.
pub fn router(max_body_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::register))
        .routes(routes!(handlers::wsdl, handlers::endpoint))
        .routes(routes!(handlers::lookup))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(axum::middleware::from_fn(fault::faults))
}
