//! The prover's calls, shared by the gRPC API and the byte-completion handler.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use prost::Message;
use veilgrid_proto::prover::v1 as pb;

use crate::{ProverError, audit_log::AuditLog, keys::KeyRing};

/// The prover's state: the audit log and the Groth16 keys.
#[derive(Debug, Clone)]
pub struct Prover {
    /// The log.
    pub log: Arc<AuditLog>,
    keys: Arc<Mutex<Option<Arc<KeyRing>>>>,
    dev_keys: Option<DevKeys>,
}

/// Where development keys go when they are set up on first use.
#[derive(Debug, Clone)]
struct DevKeys {
    dir: Option<PathBuf>,
}

/// Run a blocking call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProverError> + Send + 'static,
) -> Result<T, ProverError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProverError::Internal(format!("blocking task: {e}")))?
}

impl Prover {
    /// A prover over `log` with `keys` (`None`: none set up). With `dev_keys`, a
    /// prover without keys sets up [`crate::keys::dev_specs`] on first use (in
    /// `dev_dir` if given, else in memory).
    pub fn new(
        log: Arc<AuditLog>,
        keys: Option<KeyRing>,
        dev_keys: bool,
        dev_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            log,
            keys: Arc::new(Mutex::new(keys.map(Arc::new))),
            dev_keys: dev_keys.then_some(DevKeys { dir: dev_dir }),
        }
    }

    /// The key ring (setting up development keys on first use if so configured).
    pub fn keys(&self) -> Result<Arc<KeyRing>, ProverError> {
        let mut guard = self
            .keys
            .lock()
            .map_err(|_| ProverError::Internal("key ring lock poisoned".into()))?;
        if let Some(k) = guard.as_ref() {
            return Ok(k.clone());
        }
        let ring = match &self.dev_keys {
            None => return Ok(Arc::new(KeyRing::default())),
            Some(DevKeys { dir: Some(dir) }) => {
                tracing::warn!(
                    "no Groth16 keys: setting up development keys (single-party setup, not for production)"
                );
                KeyRing::setup(dir, &crate::keys::dev_specs())?;
                KeyRing::load(dir)?.unwrap_or_default()
            }
            Some(DevKeys { dir: None }) => KeyRing::generate(&crate::keys::dev_specs())?,
        };
        let ring = Arc::new(ring);
        *guard = Some(ring.clone());
        Ok(ring)
    }

    /// `AppendReceipts`.
    pub fn append_receipts(
        &self,
        req: &pb::AppendReceiptsRequest,
    ) -> Result<pb::AppendReceiptsResponse, ProverError> {
        let receipts: Vec<(u64, Vec<u8>)> = req
            .receipts
            .iter()
            .map(|r| (r.seq, r.entry.to_vec()))
            .collect();
        let a = self
            .log
            .append_receipts(&req.source, req.after_seq, &receipts)?;
        Ok(pb::AppendReceiptsResponse {
            last_seq: a.last_seq,
            tree_size: a.tree_size,
        })
    }

    /// `GetCheckpoint`.
    pub fn checkpoint(
        &self,
        req: &pb::GetCheckpointRequest,
    ) -> Result<pb::GetCheckpointResponse, ProverError> {
        let cp = self.log.checkpoint(req.tree_size, req.oldest)?;
        Ok(pb::GetCheckpointResponse {
            checkpoint: cp.note().to_owned(),
            verifier_key: self.log.verifier().to_vkey(),
            tree_size: cp.size(),
        })
    }

    /// `GetInclusionProof`.
    pub fn inclusion(
        &self,
        req: &pb::GetInclusionProofRequest,
    ) -> Result<pb::GetInclusionProofResponse, ProverError> {
        let (hashes, cp) = self.log.inclusion(req.index, req.tree_size)?;
        Ok(pb::GetInclusionProofResponse {
            hashes: hashes.iter().map(|h| Bytes::copy_from_slice(h)).collect(),
            checkpoint: cp.note().to_owned(),
        })
    }

    /// `GetConsistencyProof`.
    pub fn consistency(
        &self,
        req: &pb::GetConsistencyProofRequest,
    ) -> Result<pb::GetConsistencyProofResponse, ProverError> {
        let b = self.log.consistency(req.older_size, req.newer_size)?;
        Ok(pb::GetConsistencyProofResponse {
            bundle: b.to_text(),
        })
    }

    /// `GetBundles`.
    pub fn bundles(
        &self,
        req: &pb::GetBundlesRequest,
    ) -> Result<pb::GetBundlesResponse, ProverError> {
        let b = self
            .log
            .bundles(req.from_index, req.count as usize, req.tree_size)?;
        Ok(pb::GetBundlesResponse {
            bundles: b.iter().map(|b| b.to_text()).collect(),
        })
    }

    /// `GetVerifyingKeys`.
    pub fn verifying_keys(&self) -> Result<pb::GetVerifyingKeysResponse, ProverError> {
        Ok(pb::GetVerifyingKeysResponse {
            keys: self.keys()?.verifying_keys()?,
        })
    }

    /// `Prove`: prove, keep the encoded response as the proof record, return it.
    /// Returns the encoded response (what the completion carries) too, so the
    /// stored bytes are exactly the bytes a receipt's response hash covers.
    pub fn prove(
        &self,
        req: &pb::ProveRequest,
    ) -> Result<(pb::ProveResponse, Vec<u8>), ProverError> {
        let keys = self.keys()?;
        if keys.is_empty() {
            return Err(ProverError::NoKeys("this prover holds no keys".into()));
        }
        let record = keys.prove(&req.key_name, &req.witness_json)?;
        let resp = pb::ProveResponse {
            record: Some(record),
        };
        let bytes = resp.encode_to_vec();
        self.log.with_store(|s| s.add_proof(&bytes))?;
        Ok((resp, bytes))
    }

    /// `GetProvingKey`.
    pub fn proving_key(
        &self,
        req: &pb::GetProvingKeyRequest,
    ) -> Result<pb::GetProvingKeyResponse, ProverError> {
        self.keys()?.proving_key(&req.key_name)
    }

    /// `SubmitProof`: verify a proof made elsewhere under the key it names, keep
    /// it like a proof of this prover's, return the stored response and its bytes.
    pub fn submit(
        &self,
        req: &pb::SubmitProofRequest,
    ) -> Result<(pb::ProveResponse, Vec<u8>), ProverError> {
        let record = req
            .record
            .as_ref()
            .ok_or_else(|| ProverError::bad("SubmitProof without a record"))?;
        let record = self.keys()?.accept(record)?;
        let resp = pb::ProveResponse {
            record: Some(record),
        };
        let bytes = resp.encode_to_vec();
        self.log.with_store(|s| s.add_proof(&bytes))?;
        Ok((resp, bytes))
    }

    /// `ListProofs`.
    pub fn proofs(
        &self,
        req: &pb::ListProofsRequest,
    ) -> Result<pb::ListProofsResponse, ProverError> {
        let limit = match req.limit {
            0 => 100,
            n => (n as usize).min(crate::audit_log::MAX_BATCH),
        };
        let rows = self.log.with_store(|s| s.proofs(req.after, limit))?;
        Ok(pb::ListProofsResponse {
            proofs: rows
                .into_iter()
                .map(|(id, response)| pb::StoredProof {
                    id,
                    response: response.into(),
                })
                .collect(),
        })
    }
}
