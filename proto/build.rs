//! Compile the .proto files with the pure-Rust `protox` (no system `protoc`)
//! and generate tonic code from the descriptors.
use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "veilgrid/grid/v1/grid.proto",
    "veilgrid/echo/v1/echo.proto",
    "veilgrid/aggregation/v1/aggregation.proto",
    "veilgrid/matching/v1/matching.proto",
    "veilgrid/prover/v1/prover.proto",
    "veilgrid/fhe/v1/fhe.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("veilgrid_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
