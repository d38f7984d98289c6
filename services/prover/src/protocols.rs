//! The byte-completion protocols of the prover (payload = the proto request,
//! completion = the proto response of the same gRPC call).

/// `GetCheckpoint`. A router pushes its receipts to every provider serving this protocol.
pub const CHECKPOINT: &str = "veilgrid/audit/checkpoint/v1";
/// `GetInclusionProof`.
pub const INCLUSION: &str = "veilgrid/audit/inclusion/v1";
/// `GetConsistencyProof`.
pub const CONSISTENCY: &str = "veilgrid/audit/consistency/v1";
/// `GetBundles`.
pub const BUNDLES: &str = "veilgrid/audit/bundles/v1";
/// `GetVerifyingKeys`.
pub const KEYS: &str = "veilgrid/audit/keys/v1";
/// `ListProofs`.
pub const PROOFS: &str = "veilgrid/audit/proofs/v1";
/// `Prove`.
pub const PROVE: &str = "veilgrid/prove/v1";

/// `GetProvingKey`.
pub const PROVING_KEY: &str = "veilgrid/prove/key/v1";
/// `SubmitProof`.
pub const SUBMIT: &str = "veilgrid/prove/submit/v1";

/// Every protocol the prover serves through the router (appends are not among
/// them: routers push receipts over the `Prover` gRPC API).
pub const ALL: &[&str] = &[
    CHECKPOINT,
    INCLUSION,
    CONSISTENCY,
    BUNDLES,
    KEYS,
    PROOFS,
    PROVE,
    PROVING_KEY,
    SUBMIT,
];
