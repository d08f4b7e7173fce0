//! Troupe's ingress adapters: each turns a protocol's requests into mesh calls and maps the
//! one [`troupe_actors::mesh::MeshError`] onto its own error form, once.
//!
//! # Layout
//! - [`ingress`]: the core every protocol shares: the runtime, `ask`, `authenticate`,
//!   request ids, request metrics.
//! - [`http`]: REST/JSON on axum: runtime endpoints (`/health`, `/cluster`, `/metrics`,
//!   `/ping`, `/health/cluster`, `/admin/*`), request ids, JSON errors, body limits, CORS.
//! - [`ws`]: WebSocket ingress, one local-only actor per connection.
//! - [`mqtt`]: the MQTT bridge, a sink of the event bus (rumqttc).
//! - [`grpc`]: tonic server: the gRPC API (images, user validation, tokens), health and
//!   reflection.
//! - [`soap`]: SOAP 1.1 users endpoint with its WSDL.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod grpc;
pub mod http;
pub mod ingress;
pub mod mqtt;
pub mod soap;
pub mod ws;
