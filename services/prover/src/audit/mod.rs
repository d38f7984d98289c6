//! The auditor's tools: fetch everything needed to audit the grid into a
//! directory, verify it offline with no secret and no network, export Groth16
//! proofs for snarkjs.
//!
//! Directory layout (all text except the proof records):
//!
//! ```text
//! log.vkey                      the log's verifier key (pin it: --log-key)
//! checkpoint.txt                the latest signed checkpoint fetched
//! entries/<index>.tlog-proof    one c2sp.org/tlog-proof@v1 bundle per receipt
//! consistency/<old>-<new>.txt   veilgrid/tlog-consistency@v1 bundles
//! keys/<name>.vk, keys/keys.json  Groth16 verifying keys and their pinned ids
//! proofs/<id>.bin               encoded ProveResponse (what a receipt's response hash covers)
//! aggregation/<round>.round     a verifiable aggregation round's public description
//! aggregation/<round>.result    its Result completion: sum, blindings, audit transcript
//! ```

mod aggregation;
mod export;
mod fetch;
mod matching;
mod verify;

pub use aggregation::AGGREGATION;
pub use export::export_snarkjs;
pub use fetch::{FetchSummary, fetch};
pub use matching::MATCHING;
pub use verify::{Item, Report, Status, verify_path};

/// File of the log's verifier key.
pub const LOG_VKEY: &str = "log.vkey";
/// File of the latest checkpoint.
pub const CHECKPOINT: &str = "checkpoint.txt";
/// Directory of entry bundles.
pub const ENTRIES: &str = "entries";
/// Directory of consistency bundles.
pub const CONSISTENCY: &str = "consistency";
/// Directory of verifying keys.
pub const KEYS: &str = "keys";
/// Manifest of the verifying keys.
pub const KEYS_MANIFEST: &str = "keys.json";
/// Directory of proof records.
pub const PROOFS: &str = "proofs";

/// File name of entry `i`'s bundle.
pub fn entry_file(i: u64) -> String {
    format!("{i:08}.tlog-proof")
}
