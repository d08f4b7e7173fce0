//! Troupe's protobuf contracts.
//!
//! # Layout
//! - `troupe/mesh.proto` -> [`mesh`]: the cluster wire [`mesh::Envelope`] and [`mesh::Reply`]
//!   every service call travels in, plus the runtime's own small messages (ping, health, chaos).
//! - `troupe/images.proto` -> [`images`]: the gRPC `ImageService` (server and client).
//! - `troupe/auth.proto` -> [`auth`]: the gRPC `UserValidation` and `TokenService` (server
//!   and client).
//! - [`API_DESCRIPTOR_SET`]: the encoded descriptors of the gRPC API, for server reflection.
#![forbid(unsafe_code)]

/// The cluster wire envelope and the runtime's own messages (`troupe.mesh`).
#[allow(missing_docs)]
pub mod mesh {
    include!(concat!(env!("OUT_DIR"), "/troupe.mesh.rs"));
}

/// The gRPC images API (`troupe.images.v1`).
#[allow(missing_docs)]
pub mod images {
    include!(concat!(env!("OUT_DIR"), "/troupe.images.v1.rs"));
}

/// The gRPC credential and token API (`troupe.auth.v1`).
#[allow(missing_docs)]
pub mod auth {
    include!(concat!(env!("OUT_DIR"), "/troupe.auth.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `images.proto` and `auth.proto` (server reflection).
pub const API_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/troupe_api_descriptor.bin"));

pub use prost::Message;
