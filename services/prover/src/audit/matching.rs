//! Matching rounds in an audit directory: `audit fetch` lists the rounds the matching
//! nodes cleared with a trade (`Rates` history) through the router and keeps, per
//! round, its `Result` with the whole public record (every accepted order's Pedersen
//! commitments and Bulletproofs range proofs, fetched in pages and merged);
//! `audit verify` checks the three node signatures over the outcome, that the record
//! hashes to the signed order-set hash, and batch-verifies every range proof
//! (`crypto/mpc/docs/binding.md`).
//!
//! ```text
//! matching/<round id hex>.result   ResultResponse (veilgrid.matching.v1) with `accepted`
//! ```

use std::path::Path;

use prost::Message;
use veilgrid_core::{protocol::ProtocolId, sign::VerifierKey};
use veilgrid_mpc::{OrderId, OrderStatement, RoundOutcome, verify_round_record};
use veilgrid_proto::matching::v1 as pb;

use super::verify::Acc;
use crate::{ProverError, client::ProverClient};

/// Directory of matching rounds.
pub const MATCHING: &str = "matching";
const RATES: &str = "veilgrid/match/rates/v1";
const RESULT: &str = "veilgrid/match/result/v1";
/// What the nodes sign: this tag, then the outcome bytes (`veilgrid-matcher`).
const OUTCOME_TAG: &[u8] = b"veilgrid/match/outcome/v1\0";
/// Largest merged result read (100,000 orders of about 1.3 KB).
const MAX_RESULT: u64 = 160 << 20;

/// What fetching the matching rounds gave.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Rounds written.
    pub(crate) rounds: usize,
    /// Why rounds could not be listed or read, if so (e.g. no matching nodes).
    pub(crate) note: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| ProverError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Fetch every traded matching round through the router into `out/matching`.
pub(crate) async fn fetch(client: &mut ProverClient, out: &Path) -> Result<Fetched, ProverError> {
    let mut fetched = Fetched::default();
    let req = pb::RatesRequest::default();
    let rates = match client.router_completion(RATES, req.encode_to_vec()).await {
        Ok(Some(bytes)) => pb::RatesResponse::decode(bytes)
            .map_err(|e| ProverError::bad(format!("Rates completion: {e}")))?,
        Ok(None) => {
            fetched.note = Some("not fetched through a router".into());
            return Ok(fetched);
        }
        Err(status) => {
            fetched.note = Some(format!(
                "matching rounds not listed ({}: {})",
                ProtocolId::from_name(RATES),
                status.message()
            ));
            return Ok(fetched);
        }
    };
    let dir = out.join(MATCHING);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut seen = std::collections::HashSet::new();
    for h in &rates.history {
        if !seen.insert(h.round_id.clone()) {
            continue;
        }
        let mut merged: Option<pb::ResultResponse> = None;
        loop {
            let from = merged.as_ref().map_or(0, |m| m.accepted.len() as u32);
            let req = pb::ResultRequest {
                round_id: h.round_id.clone(),
                include_record: true,
                record_from: from,
            };
            let page = match client.router_completion(RESULT, req.encode_to_vec()).await {
                Ok(Some(bytes)) => pb::ResultResponse::decode(bytes)
                    .map_err(|e| ProverError::bad(format!("matching Result completion: {e}")))?,
                Ok(None) => break,
                Err(status) => {
                    fetched.note = Some(format!(
                        "matching round {} not read: {}",
                        hex::encode(&h.round_id),
                        status.message()
                    ));
                    break;
                }
            };
            let got = page.accepted.len();
            let total = page.record_total as usize;
            match &mut merged {
                None => merged = Some(page),
                Some(m) => m.accepted.extend(page.accepted),
            }
            let have = merged.as_ref().map_or(0, |m| m.accepted.len());
            if got == 0 || have >= total {
                break;
            }
        }
        if let Some(m) = merged {
            let p = dir.join(format!("{}.result", hex::encode(&h.round_id)));
            std::fs::write(&p, m.encode_to_vec()).map_err(io(&p))?;
            fetched.rounds += 1;
        }
    }
    Ok(fetched)
}

/// Check one round file; `Ok(detail)` or `Err((part, reason))`.
fn check(bytes: &[u8]) -> Result<String, (&'static str, String)> {
    let r = pb::ResultResponse::decode(bytes).map_err(|e| ("result", e.to_string()))?;
    let outcome = RoundOutcome::from_bytes(&r.outcome).map_err(|e| ("outcome", e.to_string()))?;
    let mut msg = OUTCOME_TAG.to_vec();
    msg.extend_from_slice(&r.outcome);
    let mut signers = Vec::with_capacity(3);
    for party in 0..3u32 {
        let s = r
            .signatures
            .iter()
            .find(|s| s.party == party)
            .ok_or(("signature", format!("no signature of node {party}")))?;
        VerifierKey::from_bytes(&s.provider_id)
            .and_then(|k| k.verify(&msg, &s.signature))
            .map_err(|e| ("signature", format!("node {party}: {e}")))?;
        signers.push(hex::encode(&s.provider_id[..s.provider_id.len().min(6)]));
    }
    let record = r
        .accepted
        .iter()
        .enumerate()
        .map(|(k, a)| {
            Ok((
                OrderId::new(&a.order_id).map_err(|e| ("record", format!("order {k}: {e}")))?,
                OrderStatement::from_bytes(&a.statement)
                    .map_err(|e| ("record", format!("order {k}: {e}")))?,
            ))
        })
        .collect::<Result<Vec<_>, (&'static str, String)>>()?;
    verify_round_record(
        &outcome.round,
        outcome.levels,
        &record,
        &outcome.order_set_hash,
    )
    .map_err(|e| ("range proof", e.to_string()))?;
    Ok(format!(
        "{}/{}: outcome signed by the three nodes ({}…); {} accepted orders' range proofs verify and hash to the signed order-set hash",
        outcome.base,
        outcome.quote,
        signers.join("…, "),
        record.len()
    ))
}

/// Verify every round file under `root/matching`.
pub(crate) fn verify(root: &Path, acc: &mut Acc) {
    let dir = root.join(MATCHING);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "result"))
        .collect();
    files.sort();
    for p in files {
        let name = format!(
            "{MATCHING}/{}",
            p.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        );
        let bytes = match std::fs::metadata(&p) {
            Ok(m) if m.len() > MAX_RESULT => {
                acc.fail(
                    &name,
                    "matching round",
                    Some("result".into()),
                    format!("{} bytes, over the limit of {MAX_RESULT}", m.len()),
                );
                continue;
            }
            Ok(_) => match std::fs::read(&p) {
                Ok(b) => b,
                Err(e) => {
                    acc.fail(
                        &name,
                        "matching round",
                        Some("result".into()),
                        e.to_string(),
                    );
                    continue;
                }
            },
            Err(e) => {
                acc.fail(
                    &name,
                    "matching round",
                    Some("result".into()),
                    e.to_string(),
                );
                continue;
            }
        };
        match check(&bytes) {
            Ok(detail) => acc.ok(&name, "matching round", detail),
            Err((part, e)) => acc.fail(&name, "matching round", Some(part.into()), e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use veilgrid_core::sign::SigningIdentity;
    use veilgrid_mpc::sim::run_round;
    use veilgrid_mpc::{NodeKeys, Order, RoundConfig, SecurityMode, Side, share_order};

    /// A round run in process, signed by three test node keys, as `audit fetch`
    /// would write it.
    fn round_file() -> Vec<u8> {
        let round = [3u8; 16];
        let levels = 8;
        let book = [(Side::Buy, 5, 10), (Side::Sell, 2, 7), (Side::Sell, 4, 5)];
        let payloads: Vec<_> = book
            .iter()
            .enumerate()
            .map(|(k, &(side, limit, qty))| {
                let id = OrderId::new(format!("o{k}").as_bytes()).unwrap();
                share_order(round, &id, &Order { side, limit, qty }, levels).unwrap()
            })
            .collect();
        let cfg = RoundConfig {
            round,
            levels,
            mode: SecurityMode::SemiHonest,
        };
        let run = run_round(cfg, &NodeKeys::generate_all(), &payloads).unwrap();
        let outcome = RoundOutcome {
            round,
            base: "A".into(),
            quote: "B".into(),
            levels,
            result: run.result,
            order_set_hash: run.order_set_hash,
        }
        .to_bytes()
        .unwrap();
        let mut msg = OUTCOME_TAG.to_vec();
        msg.extend_from_slice(&outcome);
        let signatures = (0..3)
            .map(|party| {
                let k = SigningIdentity::generate();
                pb::NodeSignature {
                    party,
                    provider_id: Bytes::copy_from_slice(&k.verifier().to_bytes()),
                    signature: Bytes::copy_from_slice(&k.sign(&msg)),
                }
            })
            .collect();
        pb::ResultResponse {
            status: pb::RoundStatus::Cleared.into(),
            outcome: outcome.into(),
            signatures,
            accepted: run
                .record
                .iter()
                .map(|(id, st)| pb::OrderRecord {
                    order_id: Bytes::copy_from_slice(id.as_bytes()),
                    statement: st.to_bytes().into(),
                })
                .collect(),
            record_total: run.record.len() as u32,
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn a_signed_round_verifies_and_any_flipped_byte_fails() {
        let good = round_file();
        let detail = check(&good).unwrap();
        assert!(detail.contains("3 accepted orders"), "{detail}");
        // flip bytes all over the file: the outcome, a signature, a commitment, a proof
        let mut failed_parts = std::collections::BTreeSet::new();
        for at in (0..good.len()).step_by(good.len() / 97) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            match check(&bad) {
                Ok(_) => {
                    // only bytes the check does not read may change (status, totals)
                    let r = pb::ResultResponse::decode(bad.as_slice());
                    assert!(r.is_err() || r.unwrap().accepted.len() == 3, "byte {at}");
                }
                Err((part, _)) => {
                    failed_parts.insert(part);
                }
            }
        }
        for part in ["signature", "range proof"] {
            assert!(failed_parts.contains(part), "{failed_parts:?}");
        }
        // a record with an order left out does not hash to the signed hash
        let mut r = pb::ResultResponse::decode(good.as_slice()).unwrap();
        r.accepted.pop();
        assert_eq!(check(&r.encode_to_vec()).unwrap_err().0, "range proof");
    }
}
