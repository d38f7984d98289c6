//! Protocol names of the byte completions, one per RPC: the payload is the prost encoding of the
//! RPC's request message, the completion the encoding of its response. `register_key` travels
//! as a streaming completion (1 MiB frames); its payload is a `RegisterKeyRequest`.

/// `RegisterKey` (streaming completion; payload `RegisterKeyRequest`).
pub const REGISTER_KEY: &str = "veilgrid/fhe/register_key/v1";
/// `ListModels`.
pub const LIST_MODELS: &str = "veilgrid/fhe/list_models/v1";
/// `Infer`.
pub const INFER: &str = "veilgrid/fhe/infer/v1";
/// `InferBatch`.
pub const INFER_BATCH: &str = "veilgrid/fhe/infer_batch/v1";

/// Every protocol the FHE service completes.
pub const PROTOCOLS: [&str; 4] = [REGISTER_KEY, LIST_MODELS, INFER, INFER_BATCH];
