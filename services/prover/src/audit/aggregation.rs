//! Verifiable aggregation rounds in an audit directory: `audit fetch` lists the
//! aggregation service's finished verifiable rounds through the router and keeps,
//! per round, its public description and the exact bytes of its `Result`
//! completion (sum, counted clients, aggregated blindings and the audit
//! transcript: every counted client's Pedersen commitments and aggregated
//! Bulletproofs range proof); `audit verify` batch-verifies every range proof,
//! checks that the product of the counted clients' commitments opens to the sum
//! with the aggregated blinding, and that a logged receipt covers the result.
//!
//! ```text
//! aggregation/<round id hex>.round    canonical round description (`Round::to_bytes`)
//! aggregation/<round id hex>.result   the `veilgrid/agg/result/v1` completion (ResultResponse)
//! ```

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use prost::Message;
use veilgrid_aggregation::{AuditTranscript, Round, range_statement, verify_client};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_proto::aggregation::v1 as agg;
use veilgrid_zk::range::{BatchVerifier, BitSize};

use super::verify::Acc;
use crate::{ProverError, client::ProverClient};

/// Directory of aggregation rounds.
pub const AGGREGATION: &str = "aggregation";
/// `ListRounds` through the router.
const LIST_ROUNDS: &str = "veilgrid/agg/list_rounds/v1";
/// `Result` through the router.
const RESULT: &str = "veilgrid/agg/result/v1";
/// Largest round description read.
const MAX_ROUND: u64 = 1 << 20;
/// Largest result (with its transcript) read.
const MAX_RESULT: u64 = 64 << 20;

/// What fetching the aggregation rounds gave.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Rounds written.
    pub(crate) rounds: usize,
    /// Response hashes of their `Result` completions (each must reach the log).
    pub(crate) hashes: Vec<[u8; 32]>,
    /// Why rounds could not be listed or read, if so (e.g. no aggregation service).
    pub(crate) note: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| ProverError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Fetch every finished verifiable round through the router into `out/aggregation`.
pub(crate) async fn fetch(client: &mut ProverClient, out: &Path) -> Result<Fetched, ProverError> {
    let dir = out.join(AGGREGATION);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut fetched = Fetched::default();
    let mut after = Vec::new();
    loop {
        let req = agg::ListRoundsRequest {
            after_round_id: after.clone().into(),
            limit: 200,
            verifiable_only: true,
        };
        let page = match client
            .router_completion(LIST_ROUNDS, req.encode_to_vec())
            .await
        {
            Ok(Some(bytes)) => agg::ListRoundsResponse::decode(bytes)
                .map_err(|e| ProverError::bad(format!("ListRounds completion: {e}")))?,
            Ok(None) => {
                fetched.note = Some("not fetched through a router".into());
                break;
            }
            Err(status) => {
                fetched.note = Some(format!(
                    "aggregation rounds not listed ({}: {})",
                    ProtocolId::from_name(LIST_ROUNDS),
                    status.message()
                ));
                break;
            }
        };
        let Some(last) = page.rounds.last() else {
            break;
        };
        after = last.round_id.to_vec();
        for info in &page.rounds {
            let Ok(id) = <[u8; 32]>::try_from(info.round_id.as_ref()) else {
                return Err(ProverError::bad("ListRounds: a round id is not 32 bytes"));
            };
            let req = agg::ResultRequest {
                round_id: info.round_id.clone(),
            };
            let result = match client.router_completion(RESULT, req.encode_to_vec()).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => break,
                Err(status) => {
                    // E.g. a round owned by another caller under mutual TLS.
                    fetched.note = Some(format!(
                        "round {} not read: {}",
                        hex::encode(&id[..8]),
                        status.message()
                    ));
                    continue;
                }
            };
            let stem = hex::encode(id);
            let p = dir.join(format!("{stem}.round"));
            std::fs::write(&p, &info.round).map_err(io(&p))?;
            let p = dir.join(format!("{stem}.result"));
            std::fs::write(&p, &result).map_err(io(&p))?;
            fetched
                .hashes
                .push(veilgrid_core::receipt::response_hash(&result));
            fetched.rounds += 1;
        }
    }
    Ok(fetched)
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > max {
        return Err(format!("{len} bytes, over the limit of {max}"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// A round whose files decoded, waiting for its proofs to be checked.
struct Loaded {
    name: String,
    round: Round,
    result: agg::ResultResponse,
    transcript: AuditTranscript,
    bound: bool,
}

/// Decode one round's files and check what does not need a proof.
fn load(
    root: &Path,
    round_file: &Path,
    response_hashes: &HashSet<[u8; 32]>,
) -> Result<Loaded, (String, &'static str, String)> {
    let stem = round_file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let name = format!("{AGGREGATION}/{stem}.result");
    let fail = |part: &'static str, e: String| (name.clone(), part, e);
    let round = read(round_file, MAX_ROUND)
        .and_then(|b| Round::from_bytes(&b).map_err(|e| e.to_string()))
        .map_err(|e| fail("round description", e))?;
    if hex::encode(round.id()) != stem {
        return Err(fail(
            "round description",
            format!(
                "the description is of round {}, filed as {stem}",
                hex::encode(round.id())
            ),
        ));
    }
    let bytes = read(&root.join(&name), MAX_RESULT).map_err(|e| fail("result", e))?;
    let bound = response_hashes.contains(&veilgrid_core::receipt::response_hash(&bytes));
    let result = agg::ResultResponse::decode(bytes.as_slice())
        .map_err(|e| fail("result", format!("undecodable: {e}")))?;
    if !round.params().is_verifiable() {
        return Err(fail("round description", "not a verifiable round".into()));
    }
    let transcript = AuditTranscript::from_bytes(&round, &result.transcript)
        .map_err(|e| fail("transcript", e.to_string()))?;
    // The transcript must be about the released result.
    let counted: Vec<u64> = transcript.clients.iter().map(|(id, _)| *id).collect();
    if counted != result.counted {
        return Err(fail(
            "counted clients",
            format!(
                "the result counts {:?}, the transcript holds {counted:?}",
                result.counted
            ),
        ));
    }
    if transcript.sum != result.sum {
        return Err(fail(
            "sum",
            format!(
                "the released sum {:?} is not the transcript's {:?}",
                result.sum, transcript.sum
            ),
        ));
    }
    let blindings: Vec<&[u8]> = transcript
        .blindings
        .iter()
        .map(|b| &b.as_bytes()[..])
        .collect();
    if result.blindings.len() != blindings.len()
        || result
            .blindings
            .iter()
            .zip(&blindings)
            .any(|(a, b)| a.as_ref() != *b)
    {
        return Err(fail(
            "blindings",
            "the released blinding sums are not the transcript's".into(),
        ));
    }
    Ok(Loaded {
        name,
        round,
        result,
        transcript,
        bound,
    })
}

fn bit_size(bits: usize) -> Option<BitSize> {
    BitSize::from_bits(bits as u64).ok()
}

/// Verify every aggregation round under `root/aggregation`.
pub(crate) fn verify(root: &Path, response_hashes: &HashSet<[u8; 32]>, acc: &mut Acc) {
    let dir = root.join(AGGREGATION);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "round"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    // A result without its description is an item too.
    if let Ok(r) = std::fs::read_dir(&dir) {
        let mut orphans: Vec<PathBuf> = r
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "result") && !p.with_extension("round").exists()
            })
            .collect();
        orphans.sort();
        for p in orphans {
            acc.fail(
                &format!(
                    "{AGGREGATION}/{}",
                    p.file_name().unwrap_or_default().display()
                ),
                "aggregation round",
                Some("round description".into()),
                "no .round description next to it".into(),
            );
        }
    }

    let mut rounds = Vec::new();
    for f in &files {
        match load(root, f, response_hashes) {
            Ok(l) => rounds.push(l),
            Err((name, part, e)) => acc.fail(&name, "aggregation round", Some(part.into()), e),
        }
    }

    // Every client's range proof of every round: one batch where the statements
    // fit one (≤ 64 aggregated values), then each on its own to name failures.
    let mut batch = BatchVerifier::new();
    let mut in_batch = 0usize;
    let mut alone: Vec<(usize, usize)> = Vec::new();
    let mut statement_errors: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (r, l) in rounds.iter().enumerate() {
        for (c, (id, att)) in l.transcript.clients.iter().enumerate() {
            match range_statement(&l.round, *id, att) {
                Ok(st) => {
                    let added = bit_size(st.bits).is_some_and(|bits| {
                        batch
                            .add_transcript(st.transcript, bits, st.padded, att.proof_bytes())
                            .is_ok()
                    });
                    if added {
                        in_batch += 1;
                    } else {
                        alone.push((r, c));
                    }
                }
                Err(e) => {
                    statement_errors.insert((r, c), e.to_string());
                }
            }
        }
    }
    let batch_ok = in_batch > 0 && batch.verify().is_ok();
    for (r, l) in rounds.iter().enumerate() {
        let mut failed_clients = Vec::new();
        for (c, (id, att)) in l.transcript.clients.iter().enumerate() {
            let item = format!("{}#client-{id}", l.name);
            let outcome = if let Some(e) = statement_errors.get(&(r, c)) {
                Err(e.clone())
            } else if batch_ok && !alone.contains(&(r, c)) {
                Ok("batch-verified")
            } else {
                verify_client(&l.round, *id, att)
                    .map(|()| "verified on its own")
                    .map_err(|e| e.to_string())
            };
            match outcome {
                Ok(how) => acc.ok(
                    &item,
                    "range proof",
                    format!(
                        "client {id}: {} commitments of values < 2^{} ({how})",
                        att.commitments().len(),
                        l.round.params().bits()
                    ),
                ),
                Err(e) => {
                    failed_clients.push(*id);
                    acc.fail(&item, "range proof", Some(format!("client {id}")), e);
                }
            }
        }
        if !failed_clients.is_empty() {
            acc.fail(
                &l.name,
                "aggregation round",
                Some("range proof".into()),
                format!("the range proofs of clients {failed_clients:?} fail"),
            );
            continue;
        }
        if let Err(e) = l.transcript.check_opening(&l.round) {
            acc.fail(
                &l.name,
                "aggregation round",
                Some("commitment check".into()),
                format!("the product of the counted clients' commitments does not open to the sum with the aggregated blinding: {e}"),
            );
            continue;
        }
        if !l.bound {
            acc.fail(
                &l.name,
                "aggregation round",
                Some("receipt binding".into()),
                "the round verifies but no logged receipt covers this result (altered file, or fetched before its receipt was logged)".into(),
            );
            continue;
        }
        acc.ok(
            &l.name,
            "aggregation round",
            format!(
                "{} clients, sum of {} entries opens the product of their commitments; result bound to a logged receipt",
                l.result.counted.len(),
                l.result.sum.len()
            ),
        );
    }
}
