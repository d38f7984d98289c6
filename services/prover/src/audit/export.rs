//! `veilgrid audit export --format snarkjs`: a proof from an audit directory as
//! snarkjs' `verification_key.json`, `proof.json` and `public.json`.

use std::path::{Path, PathBuf};

use veilgrid_circuits::{groth16, snarkjs};

use super::*;
use crate::ProverError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| ProverError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Export proof `proof` (its file stem, e.g. `000001`; `None` = every proof)
/// from the audit directory `dir` into `out` (one proof: the three files in
/// `out`; every proof: `out/<stem>/`). The verifying key is taken from `keys/`
/// and must match the id the record pins. Returns the directories written.
pub fn export_snarkjs(
    dir: &Path,
    proof: Option<&str>,
    out: &Path,
) -> Result<Vec<PathBuf>, ProverError> {
    let proofs_dir = dir.join(PROOFS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&proofs_dir)
        .map_err(io(&proofs_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    if let Some(stem) = proof {
        files.retain(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem));
        if files.is_empty() {
            return Err(ProverError::NotFound(format!(
                "no proof {stem} in {}",
                proofs_dir.display()
            )));
        }
    }
    let mut written = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(io(f))?;
        let record = super::fetch::decode_record(&bytes)?;
        let manifest = std::fs::read(dir.join(KEYS).join(KEYS_MANIFEST)).map_err(io(dir))?;
        let manifest: Vec<serde_json::Value> =
            serde_json::from_slice(&manifest).map_err(|e| ProverError::Keys(e.to_string()))?;
        let name = manifest
            .iter()
            .find(|k| k["vk_id"].as_str() == Some(record.vk_id.as_str()))
            .and_then(|k| k["name"].as_str())
            .ok_or_else(|| ProverError::NotFound(format!("no key with id {}", record.vk_id)))?;
        let vk_path = dir.join(KEYS).join(format!("{name}.vk"));
        let vk =
            groth16::verifying_key_from_bytes(&std::fs::read(&vk_path).map_err(io(&vk_path))?)?;
        let pinned = groth16::VerifyingKeyId::from_hex(&record.vk_id)?;
        if groth16::verifying_key_id(&vk) != pinned {
            return Err(ProverError::Keys(format!(
                "{}: not the pinned key",
                vk_path.display()
            )));
        }
        let public = groth16::public_inputs_from_bytes(&record.public_inputs, 64)?;
        let p = groth16::proof_from_bytes(&record.proof)?;
        let target = if proof.is_some() {
            out.to_path_buf()
        } else {
            out.join(f.file_stem().map(|s| s.to_owned()).unwrap_or_default())
        };
        std::fs::create_dir_all(&target).map_err(io(&target))?;
        snarkjs::export(&vk, &p, &public)?.write_to_dir(&target)?;
        written.push(target);
    }
    Ok(written)
}
