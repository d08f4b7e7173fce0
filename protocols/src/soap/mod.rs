//! SOAP 1.1 ingress for legacy clients: the users operations `RegisterUser` and `LookupUser`
//! (namespace [`NS`]), described by a WSDL 1.1 document/literal contract.
//!
//! XML is parsed with xml-rs configured and driven so that DTDs and entity declarations are
//! refused and size, depth and element counts are capped; errors are SOAP Faults, mapped
//! from the mesh error once ([`fault`]).
//!
//! # Layout
//! - [`envelope`]: request parsing and its limits.
//! - [`fault`]: mesh error -> SOAP Fault (and Faults for errors raised outside handlers).
//! - [`response`]: writing response envelopes (xml-rs's writer).
//! - [`wsdl`]: the WSDL 1.1 contract.
//! - [`handlers`]: the routes.

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

/// The HTTP routes that speak SOAP: every error on them is a Fault.
pub const ROUTES: [&str; 3] = ["/register", "/soap", "/user/soap"];
