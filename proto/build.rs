//! Compiles `troupe/*.proto` with protox (pure Rust), so the build needs no system `protoc`.
//!
//! - `mesh.proto`: prost messages only (the cluster wire envelope);
//! - `images.proto`, `auth.proto`: prost messages plus tonic servers and clients, and the
//!   encoded descriptor set the gRPC reflection service answers from.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mesh = ["troupe/mesh.proto"];
    let api = ["troupe/images.proto", "troupe/auth.proto"];
    for f in mesh.iter().chain(&api) {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(mesh, ["."])?;
    prost_build::Config::new().compile_fds(fds)?;

    let fds = protox::compile(api, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("troupe_api_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Image bytes as `Bytes`: chunks and replies are passed on without copies.
        .bytes(".troupe.images.v1")
        .compile_fds(fds)?;
    Ok(())
}
