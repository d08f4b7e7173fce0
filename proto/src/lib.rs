//! Troupe's protobuf contracts.
//!
//! # Layout
//! - `troupe/mesh.proto` -> [`mesh`]: the cluster wire [`mesh::Envelope`] and [`mesh::Reply`]
//!   every service call travels in, plus the runtime's own small messages (ping, health, chaos).
#![forbid(unsafe_code)]

/// The cluster wire envelope and the runtime's own messages (`troupe.mesh`).
#[allow(missing_docs)]
pub mod mesh {
    include!(concat!(env!("OUT_DIR"), "/troupe.mesh.rs"));
}

pub use prost::Message;
