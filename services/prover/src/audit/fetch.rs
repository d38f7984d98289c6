//! `veilgrid audit fetch`: collect checkpoints, receipts with their inclusion
//! proofs, consistency proofs, verifying keys and proofs into a directory.

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use prost::Message;
use serde::Serialize;
use veilgrid_proto::prover::v1 as pb;
use veilgrid_zk::{
    log::{ProofBundle, decode_receipt_entry},
    note::{LogVerifier, SignedNote},
};

use super::*;
use crate::{ProverError, client::ProverClient};

/// What a fetch collected.
#[derive(Debug, Clone, Serialize)]
pub struct FetchSummary {
    /// The latest checkpoint's size.
    pub tree_size: u64,
    /// Bundles written in this fetch.
    pub new_entries: u64,
    /// Consistency bundles written.
    pub consistency_bundles: usize,
    /// Verifying keys written.
    pub keys: usize,
    /// Proof records written.
    pub proofs: usize,
    /// Whether every proof's completion receipt was found in the fetched log.
    pub proofs_bound: bool,
    /// Verifiable aggregation rounds written (their results' receipts are waited for like proofs').
    pub aggregation_rounds: usize,
    /// Why aggregation rounds were not (all) fetched, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation_note: Option<String>,
    /// Matching rounds written (signed outcome and public record of range proofs).
    pub matching_rounds: usize,
    /// Why matching rounds were not (all) fetched, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching_note: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| ProverError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ProverError> {
    std::fs::write(path, bytes).map_err(io(path))
}

fn size_of(note: &str) -> Result<u64, ProverError> {
    let n = SignedNote::parse(note.as_bytes())?;
    Ok(veilgrid_zk::note::Checkpoint::from_note_text(n.text())?.size)
}

/// Fetch into `out` (created; an earlier fetch there is extended: its checkpoint
/// is proven consistent with the new one and only new entries are fetched).
/// `progress` is called with (entries fetched, tree size).
/// Waits up to `bind_wait` for the receipts of the proofs to reach the log.
pub async fn fetch(
    client: &mut ProverClient,
    out: &Path,
    bind_wait: Duration,
    mut progress: impl FnMut(u64, u64),
) -> Result<FetchSummary, ProverError> {
    for d in [ENTRIES, CONSISTENCY, KEYS, PROOFS] {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    // Verifying keys.
    let keys = client.verifying_keys().await?.keys;
    let mut manifest = Vec::new();
    for k in &keys {
        if k.name.is_empty()
            || !k
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ProverError::bad(format!(
                "key name {:?} from the prover",
                k.name
            )));
        }
        write(&out.join(KEYS).join(format!("{}.vk", k.name)), &k.key)?;
        manifest.push(serde_json::json!({
            "name": k.name, "circuit": k.circuit, "shape": k.shape_json,
            "vk_id": k.id, "constraints": k.constraints,
        }));
    }
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| ProverError::Keys(e.to_string()))?;
    write(&out.join(KEYS).join(KEYS_MANIFEST), text.as_bytes())?;

    // Proof records (all of them; ids increase).
    let mut proofs: Vec<Vec<u8>> = Vec::new();
    let mut after = 0;
    loop {
        let page = client.proofs(after, 500).await?.proofs;
        let Some(last) = page.last() else { break };
        after = last.id;
        for p in page {
            write(
                &out.join(PROOFS).join(format!("{:06}.bin", p.id)),
                &p.response,
            )?;
            proofs.push(p.response.to_vec());
        }
    }
    let mut wanted: BTreeSet<[u8; 32]> = proofs
        .iter()
        .map(|p| veilgrid_core::receipt::response_hash(p))
        .collect();
    // Verifiable aggregation rounds (their Result completions carry the transcripts).
    let agg = super::aggregation::fetch(client, out).await?;
    // Matching rounds (signed outcomes with their public records of range proofs).
    let matching = super::matching::fetch(client, out).await?;
    wanted.extend(agg.hashes.iter().copied());

    // Entries against successive checkpoints until every proof's receipt is in.
    let previous = std::fs::read_to_string(out.join(CHECKPOINT)).ok();
    let mut have = count_entries(&out.join(ENTRIES));
    let first_have = have;
    let mut used_sizes = BTreeSet::new();
    let mut found: BTreeSet<[u8; 32]> = BTreeSet::new();
    scan_existing(&out.join(ENTRIES), &mut found, &mut used_sizes);
    let started = Instant::now();
    let mut latest;
    loop {
        latest = client.checkpoint(0, false).await?;
        if latest.verifier_key.len() > 1024 {
            return Err(ProverError::bad("verifier key too long"));
        }
        let verifier = LogVerifier::from_vkey(&latest.verifier_key)?;
        verifier.verify_checkpoint(latest.checkpoint.as_bytes())?;
        write(&out.join(LOG_VKEY), latest.verifier_key.as_bytes())?;
        let size = latest.tree_size;
        used_sizes.insert(size);
        while have < size {
            let n = (size - have).min(200) as u32;
            let got = client.bundles(have, n, size).await?.bundles;
            if got.is_empty() {
                return Err(ProverError::bad("the prover returned no bundles"));
            }
            for text in got {
                if let Ok(b) = ProofBundle::parse(text.as_bytes())
                    && let Ok(r) = decode_receipt_entry(&b.entry)
                {
                    found.insert(r.receipt.response_hash);
                }
                write(&out.join(ENTRIES).join(entry_file(have)), text.as_bytes())?;
                have += 1;
            }
            progress(have, size);
        }
        write(&out.join(CHECKPOINT), latest.checkpoint.as_bytes())?;
        if wanted.is_subset(&found) || started.elapsed() >= bind_wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every earlier checkpoint we hold (the previous fetch's, those bundles were
    // fetched against, and the log's first) is proven consistent with the latest.
    let mut olders: BTreeSet<u64> = used_sizes;
    if let Some(prev) = previous {
        olders.insert(size_of(&prev)?);
    }
    if let Ok(oldest) = client.checkpoint(0, true).await {
        olders.insert(oldest.tree_size);
    }
    let newest = latest.tree_size;
    let mut consistency = 0;
    for older in olders.into_iter().filter(|s| *s > 0 && *s < newest) {
        let b = client.consistency(older, newest).await?.bundle;
        write(
            &out.join(CONSISTENCY)
                .join(format!("{older:08}-{newest:08}.txt")),
            b.as_bytes(),
        )?;
        consistency += 1;
    }
    Ok(FetchSummary {
        tree_size: newest,
        new_entries: have - first_have,
        consistency_bundles: consistency,
        keys: keys.len(),
        proofs: proofs.len(),
        proofs_bound: wanted.is_subset(&found),
        aggregation_rounds: agg.rounds,
        aggregation_note: agg.note,
        matching_rounds: matching.rounds,
        matching_note: matching.note,
    })
}

fn count_entries(dir: &Path) -> u64 {
    let mut n = 0;
    while dir.join(entry_file(n)).exists() {
        n += 1;
    }
    n
}

/// Receipts already fetched, and the checkpoint sizes their bundles were made
/// against (each must be proven consistent with the newest checkpoint again, or a
/// directory fetched twice would hold bundles no consistency proof reaches).
fn scan_existing(dir: &Path, found: &mut BTreeSet<[u8; 32]>, sizes: &mut BTreeSet<u64>) {
    let mut i = 0;
    while let Ok(text) = std::fs::read(dir.join(entry_file(i))) {
        if let Ok(b) = ProofBundle::parse(&text) {
            if let Ok(size) = size_of(&b.checkpoint) {
                sizes.insert(size);
            }
            if let Ok(r) = decode_receipt_entry(&b.entry) {
                found.insert(r.receipt.response_hash);
            }
        }
        i += 1;
    }
}

/// Decode a proof record file (size-limited).
pub(crate) fn decode_record(bytes: &[u8]) -> Result<pb::ProofRecord, ProverError> {
    if bytes.len() > 64 << 10 {
        return Err(ProverError::bad("proof record over 64 KiB"));
    }
    pb::ProveResponse::decode(bytes)
        .map_err(|e| ProverError::bad(format!("proof record: {e}")))?
        .record
        .ok_or_else(|| ProverError::bad("proof record: empty"))
}
