//! `veilgrid audit verify`: check everything in an audit directory (or one file)
//! offline, item by item, each verified or failed with the reason.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use serde::Serialize;
use veilgrid_circuits::groth16;
use veilgrid_zk::{
    log::{CONSISTENCY_HEADER, ConsistencyBundle, ProofBundle, TLOG_PROOF_HEADER},
    merkle::Hash,
    note::{LogVerifier, SignedCheckpoint},
};

use super::*;
use crate::ProverError;

/// Verified or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The check passed.
    Verified,
    /// The check failed (see the reason).
    Failed,
}

/// One checked item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The file (relative to the audited directory).
    pub item: String,
    /// What kind of thing it is: `log key`, `checkpoint`, `receipt`, `consistency`, `verifying key`, `groth16 proof`,
    /// `range proof`, `aggregation round`, `matching round`.
    pub kind: &'static str,
    /// The outcome.
    pub status: Status,
    /// On failure, which part failed (`checkpoint`, `receipt`, `inclusion proof`,
    /// `consistency proof`, `public inputs`, `receipt binding`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// On failure, why; on success, what was established.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every item verified.
    pub ok: bool,
    /// Items verified.
    pub verified: usize,
    /// Items failed.
    pub failed: usize,
    /// Where the log key came from (`pinned` or the directory's `log.vkey`, trusted on first use).
    pub log_key: String,
    /// Every item.
    pub items: Vec<Item>,
}

#[derive(Default)]
pub(crate) struct Acc {
    items: Vec<Item>,
}

impl Acc {
    pub(crate) fn ok(&mut self, item: &str, kind: &'static str, detail: String) {
        self.items.push(Item {
            item: item.into(),
            kind,
            status: Status::Verified,
            part: None,
            detail,
        });
    }

    pub(crate) fn fail(
        &mut self,
        item: &str,
        kind: &'static str,
        part: Option<String>,
        detail: String,
    ) {
        self.items.push(Item {
            item: item.into(),
            kind,
            status: Status::Failed,
            part,
            detail,
        });
    }

    fn zk(&mut self, item: &str, kind: &'static str, e: &veilgrid_zk::Error) {
        self.fail(
            item,
            kind,
            e.bundle_item().map(|i| i.to_string()),
            e.to_string(),
        );
    }

    fn report(self, log_key: String) -> Report {
        let failed = self
            .items
            .iter()
            .filter(|i| i.status == Status::Failed)
            .count();
        Report {
            ok: failed == 0 && !self.items.is_empty(),
            verified: self.items.len() - failed,
            failed,
            log_key,
            items: self.items,
        }
    }
}

/// Files are read with a size limit.
const MAX_FILE: u64 = 1 << 20;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE {
        return Err(format!("{len} bytes, over the limit of {MAX_FILE}"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The log key: pinned (`--log-key`), else `log.vkey` in `dir` or its parent.
fn log_key(pinned: Option<&str>, dir: &Path) -> Result<(LogVerifier, String), String> {
    if let Some(k) = pinned {
        return LogVerifier::from_vkey(k.trim())
            .map(|v| (v, "pinned".into()))
            .map_err(|e| format!("--log-key: {e}"));
    }
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join(LOG_VKEY);
        if p.exists() {
            let text = read(&p)?;
            let text = String::from_utf8(text).map_err(|_| "log.vkey is not UTF-8".to_string())?;
            return LogVerifier::from_vkey(text.trim())
                .map(|v| {
                    (
                        v,
                        format!(
                            "{} (trusted on first use; pin it with --log-key)",
                            p.display()
                        ),
                    )
                })
                .map_err(|e| format!("{}: {e}", p.display()));
        }
    }
    Err("no log key: pass --log-key or keep log.vkey next to the files".into())
}

/// Verify a directory written by [`fetch`](super::fetch) or one bundle file.
pub fn verify_path(path: &Path, pinned_log_key: Option<&str>) -> Result<Report, ProverError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let mut acc = Acc::default();
    let (log, source) = match log_key(pinned_log_key, &dir) {
        Ok(v) => v,
        Err(e) => {
            acc.fail(LOG_VKEY, "log key", None, e);
            return Ok(acc.report("none".into()));
        }
    };
    if pinned_log_key.is_some()
        && let Ok(text) = std::fs::read_to_string(dir.join(LOG_VKEY))
        && text.trim() != log.to_vkey()
    {
        acc.fail(
            LOG_VKEY,
            "log key",
            None,
            "the directory's log key is not the pinned one".into(),
        );
    }
    if path.is_dir() {
        verify_dir(path, &log, &mut acc);
    } else {
        verify_file(path, &log, &mut acc);
    }
    Ok(acc.report(source))
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn verify_file(path: &Path, log: &LogVerifier, acc: &mut Acc) {
    let name = path.display().to_string();
    let bytes = match read(path) {
        Ok(b) => b,
        Err(e) => return acc.fail(&name, "file", None, e),
    };
    if bytes.starts_with(TLOG_PROOF_HEADER.as_bytes()) {
        match ProofBundle::parse(&bytes).and_then(|b| b.verify_receipt(log)) {
            Ok((_, v)) => acc.ok(
                &name,
                "receipt",
                format!(
                    "receipt #{} is in the log of size {}",
                    v.index,
                    v.checkpoint.size()
                ),
            ),
            Err(e) => acc.zk(&name, "receipt", &e),
        }
    } else if bytes.starts_with(CONSISTENCY_HEADER.as_bytes()) {
        match ConsistencyBundle::parse(&bytes).and_then(|b| b.verify(log)) {
            Ok(v) => acc.ok(
                &name,
                "consistency",
                format!("size {} extends size {}", v.newer.size(), v.older.size()),
            ),
            Err(e) => acc.zk(&name, "consistency", &e),
        }
    } else {
        match log.verify_checkpoint(&bytes) {
            Ok(c) => acc.ok(&name, "checkpoint", format!("size {}", c.size())),
            Err(e) => acc.zk(&name, "checkpoint", &e),
        }
    }
}

fn verify_dir(root: &Path, log: &LogVerifier, acc: &mut Acc) {
    // The latest checkpoint.
    let latest: Option<SignedCheckpoint> = match read(&root.join(CHECKPOINT)) {
        Ok(b) => match log.verify_checkpoint(&b) {
            Ok(c) => {
                acc.ok(
                    CHECKPOINT,
                    "checkpoint",
                    format!("size {}, signed by {}", c.size(), log.origin()),
                );
                Some(c)
            }
            Err(e) => {
                acc.zk(CHECKPOINT, "checkpoint", &e);
                None
            }
        },
        Err(e) => {
            acc.fail(CHECKPOINT, "checkpoint", None, e);
            None
        }
    };

    // Receipts: each bundle verified on its own; checkpoints they use collected.
    let mut used: BTreeMap<u64, (Hash, String)> = BTreeMap::new();
    let mut response_hashes: HashSet<[u8; 32]> = HashSet::new();
    for (i, p) in sorted_files(&root.join(ENTRIES), ".tlog-proof")
        .iter()
        .enumerate()
    {
        let name = rel(root, p);
        let bytes = match read(p) {
            Ok(b) => b,
            Err(e) => {
                acc.fail(&name, "receipt", None, e);
                continue;
            }
        };
        match ProofBundle::parse(&bytes).and_then(|b| b.verify_receipt(log)) {
            Ok((receipt, v)) => {
                if v.index != i as u64
                    || p.file_name().and_then(|f| f.to_str()) != Some(&entry_file(v.index))
                {
                    acc.fail(
                        &name,
                        "receipt",
                        Some("inclusion proof".into()),
                        format!(
                            "the bundle proves index {} but is filed as entry {i}",
                            v.index
                        ),
                    );
                    continue;
                }
                let size = v.checkpoint.size();
                let root_hash = *v.checkpoint.root();
                match used.get(&size) {
                    Some((r, first)) if *r != root_hash => {
                        acc.fail(
                            &name,
                            "receipt",
                            Some("checkpoint".into()),
                            format!("the log signed two different trees of size {size} (also in {first}): the log forked"),
                        );
                        continue;
                    }
                    _ => {
                        used.entry(size).or_insert((root_hash, name.clone()));
                    }
                }
                response_hashes.insert(receipt.receipt.response_hash);
                acc.ok(
                    &name,
                    "receipt",
                    format!(
                        "provider {}… signed it; entry #{} of the log of size {size}",
                        hex::encode(&receipt.receipt.provider_id[..6]),
                        v.index
                    ),
                );
            }
            Err(e) => acc.zk(&name, "receipt", &e),
        }
    }

    // Consistency bundles: each verified; those ending at the latest connect older checkpoints to it.
    let mut connected: HashSet<(u64, Hash)> = HashSet::new();
    for p in sorted_files(&root.join(CONSISTENCY), ".txt") {
        let name = rel(root, &p);
        let bytes = match read(&p) {
            Ok(b) => b,
            Err(e) => {
                acc.fail(&name, "consistency", None, e);
                continue;
            }
        };
        match ConsistencyBundle::parse(&bytes).and_then(|b| b.verify(log)) {
            Ok(v) => {
                if let Some(l) = &latest
                    && v.newer.size() == l.size()
                {
                    if v.newer.root() != l.root() {
                        acc.fail(
                            &name,
                            "consistency",
                            Some("checkpoint".into()),
                            format!("its newer checkpoint and checkpoint.txt are different trees of size {}: the log forked", l.size()),
                        );
                        continue;
                    }
                    connected.insert((v.older.size(), *v.older.root()));
                }
                acc.ok(
                    &name,
                    "consistency",
                    format!(
                        "the log of size {} extends the log of size {}",
                        v.newer.size(),
                        v.older.size()
                    ),
                );
            }
            Err(e) => acc.zk(&name, "consistency", &e),
        }
    }
    if let Some(l) = &latest {
        for (size, (root_hash, first)) in &used {
            if *size == l.size() {
                if root_hash != l.root() {
                    acc.fail(first, "consistency", Some("checkpoint".into()),
                        format!("its checkpoint and checkpoint.txt are different trees of size {size}: the log forked"));
                }
            } else if !connected.contains(&(*size, *root_hash)) {
                acc.fail(
                    first,
                    "consistency",
                    Some("consistency proof".into()),
                    format!("no consistency proof shows that its checkpoint (size {size}) is a prefix of checkpoint.txt (size {})", l.size()),
                );
            }
        }
    }

    // Verifying keys, pinned by id in keys.json.
    let mut vks: BTreeMap<String, groth16::VerifyingKey> = BTreeMap::new();
    let manifest_path = root.join(KEYS).join(KEYS_MANIFEST);
    if manifest_path.exists() {
        let manifest: Vec<serde_json::Value> = match read(&manifest_path)
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => {
                acc.fail(&rel(root, &manifest_path), "verifying key", None, e);
                Vec::new()
            }
        };
        for k in manifest {
            let name = k["name"].as_str().unwrap_or_default().to_owned();
            let pinned = k["vk_id"].as_str().unwrap_or_default().to_owned();
            let file = format!("{KEYS}/{name}.vk");
            let checked = (|| -> Result<groth16::VerifyingKey, String> {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!("bad key name {name:?}"));
                }
                let vk = groth16::verifying_key_from_bytes(&read(&root.join(&file))?)
                    .map_err(|e| e.to_string())?;
                let id = groth16::verifying_key_id(&vk).to_hex();
                if id != pinned {
                    return Err(format!("its id is {id}, the pinned id is {pinned}"));
                }
                Ok(vk)
            })();
            match checked {
                Ok(vk) => {
                    acc.ok(
                        &file,
                        "verifying key",
                        format!(
                            "id {pinned} ({}, {} constraints)",
                            k["circuit"].as_str().unwrap_or("?"),
                            k["constraints"]
                        ),
                    );
                    vks.insert(pinned, vk);
                }
                Err(e) => acc.fail(&file, "verifying key", None, e),
            }
        }
    }

    // Groth16 proofs: verified under the key they name, and bound to a logged receipt.
    for p in sorted_files(&root.join(PROOFS), ".bin") {
        let name = rel(root, &p);
        let bytes = match read(&p) {
            Ok(b) => b,
            Err(e) => {
                acc.fail(&name, "groth16 proof", None, e);
                continue;
            }
        };
        let record = match super::fetch::decode_record(&bytes) {
            Ok(r) => r,
            Err(e) => {
                acc.fail(
                    &name,
                    "groth16 proof",
                    Some("proof record".into()),
                    e.to_string(),
                );
                continue;
            }
        };
        let Some(vk) = vks.get(&record.vk_id) else {
            acc.fail(
                &name,
                "groth16 proof",
                Some("verifying key".into()),
                format!("no verified verifying key with id {:?}", record.vk_id),
            );
            continue;
        };
        let public = match groth16::public_inputs_from_bytes(&record.public_inputs, 64) {
            Ok(p) => p,
            Err(e) => {
                acc.fail(
                    &name,
                    "groth16 proof",
                    Some("public inputs".into()),
                    e.to_string(),
                );
                continue;
            }
        };
        let checked = groth16::proof_from_bytes(&record.proof)
            .map_err(|e| ("proof", e.to_string()))
            .and_then(|proof| {
                groth16::verify(vk, &public, &proof)
                    .map_err(|e| ("proof or public inputs", e.to_string()))
            });
        if let Err((part, e)) = checked {
            acc.fail(&name, "groth16 proof", Some(part.into()), e);
            continue;
        }
        if !response_hashes.contains(&veilgrid_core::receipt::response_hash(&bytes)) {
            acc.fail(&name, "groth16 proof", Some("receipt binding".into()),
                "the proof verifies but no logged receipt covers it (altered record, or fetched before its receipt was logged)".into());
            continue;
        }
        acc.ok(
            &name,
            "groth16 proof",
            format!(
                "{} proof verifies under key {}…, bound to a logged receipt; statement {}",
                record.circuit,
                &record.vk_id[..record.vk_id.len().min(12)],
                record.statement_json
            ),
        );
    }

    // Verifiable aggregation rounds: range proofs, commitment check, receipt binding.
    super::aggregation::verify(root, &response_hashes, acc);
    // Matching rounds: node signatures, record hash, range proofs.
    super::matching::verify(root, acc);
}
