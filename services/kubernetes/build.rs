//! Generates the gRPC service from `proto/kms_v2.proto` with a protobuf compiler written in
//! Rust (no `protoc` on the build machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kms_v2.proto");
    let descriptors = protox::compile(["proto/kms_v2.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
