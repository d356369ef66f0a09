//! Compiles `proto/touchstone/v1/*.proto` with protox (pure Rust: no system `protoc`), and
//! the descriptors of `proto/google/rpc/*.proto` (the error details every error carries,
//! whose code `tonic-types` has) for reflection alone.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["records", "config", "badges", "reports", "api", "services"]
        .map(|name| root.join(format!("touchstone/v1/{name}.proto")));
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Kept for tonic-reflection, so grpcurl and friends can list the services.
    std::fs::write(
        out_dir.join("touchstone_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    let details = ["error_details", "status"].map(|name| root.join(format!("google/rpc/{name}.proto")));
    std::fs::write(
        out_dir.join("google_rpc_descriptor.bin"),
        prost::Message::encode_to_vec(&protox::compile(&details, [&root])?),
    )?;
    for file in files.iter().chain(&details) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}
