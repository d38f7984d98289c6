//! Generated code for Veilgrid's gRPC APIs. Nothing here is written by hand:
//! `build.rs` compiles `veilgrid/**/*.proto` with `protox` and `tonic-prost-build`.
#![allow(missing_docs, unreachable_pub, clippy::all)]

/// The encoded `FileDescriptorSet` of every Veilgrid proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/veilgrid_descriptor.bin"));

/// `veilgrid.grid.v1`: the byte-completion protocol.
pub mod grid {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.grid.v1");
    }
}

/// `veilgrid.echo.v1`: payloads of the echo protocols.
pub mod echo {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.echo.v1");
    }
}

/// `veilgrid.aggregation.v1`: one-shot secure aggregation rounds.
pub mod aggregation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.aggregation.v1");
    }
}

/// `veilgrid.matching.v1`: sealed-bid matching by three MPC nodes.
pub mod matching {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.matching.v1");
    }
}

/// `veilgrid.fhe.v1`: encrypted inference on TFHE (key registration, models, queries).
pub mod fhe {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.fhe.v1");
    }
}

/// `veilgrid.prover.v1`: the audit log of receipts, checkpoints, proofs and Groth16 keys.
pub mod prover {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("veilgrid.prover.v1");
    }
}
