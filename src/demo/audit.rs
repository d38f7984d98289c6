//! Demo chapter (issue 6): an auditor fetches the audit log of the demo's own
//! completions with a Groth16 proof of a clearing, and verifies it all offline.

use std::time::Duration;

use veilgrid_prover::{audit, client::ProverClient};

use super::{Story, Target};
use crate::Error;

fn svc(e: impl std::fmt::Display) -> Error {
    Error::Service(e.to_string())
}

/// Prove a clearing through the router, fetch the audit directory, verify it.
pub(super) async fn chapter(story: &mut Story, t: &Target) {
    story.chapter("the auditor: transparency log, proofs of completion");
    let client = t
        .client()
        .and_then(|sec| ProverClient::via_router_secure(&t.addr, &sec).map_err(svc));
    let mut client = match client {
        Ok(c) => c,
        Err(e) => {
            story
                .step("connect to the prover", || async { Err(svc(e)) })
                .await;
            return;
        }
    };
    story
        .step("prove a 4-order clearing (Groth16) through the router", || async {
            let witness = r#"{"orders":[{"side":"sell","limit":1,"qty":5},{"side":"sell","limit":3,"qty":2},{"side":"buy","limit":2,"qty":4},{"side":"buy","limit":0,"qty":1}]}"#;
            let r = client
                .prove("clearing-4x4", witness)
                .await
                .map_err(svc)?
                .record
                .ok_or_else(|| Error::Verify("no proof record".into()))?;
            Ok(format!(
                "statement {} under verifying key {}…",
                r.statement_json,
                &r.vk_id[..16.min(r.vk_id.len())]
            ))
        })
        .await;
    let dir = std::env::temp_dir().join(format!(
        "veilgrid-demo-audit-{}-{}",
        std::process::id(),
        veilgrid_kit::clock::now_ms()
    ));
    let fetched = story
        .step("fetch the audit log and proofs (veilgrid audit fetch)", || async {
            let s = audit::fetch(&mut client, &dir, Duration::from_secs(5), |_, _| {})
                .await
                .map_err(svc)?;
            Ok(format!(
                "{} receipts of this demo's completions with inclusion proofs, {} consistency proofs, {} verifying keys, {} Groth16 proofs",
                s.tree_size, s.consistency_bundles, s.keys, s.proofs
            ))
        })
        .await;
    if fetched {
        story
            .step("verify everything offline (veilgrid audit verify)", || async {
                let d = dir.clone();
                let r = tokio::task::spawn_blocking(move || audit::verify_path(&d, None))
                    .await
                    .map_err(svc)?
                    .map_err(svc)?;
                if !r.ok {
                    let first = r
                        .items
                        .iter()
                        .find(|i| i.status == audit::Status::Failed)
                        .map(|i| format!("{}: {}", i.item, i.detail))
                        .unwrap_or_default();
                    return Err(Error::Verify(format!("{} items failed, first {first}", r.failed)));
                }
                Ok(format!(
                    "{} items verified (checkpoint signature, every receipt's provider signature and inclusion proof, consistency, pinned verifying keys, Groth16 proofs bound to logged receipts)",
                    r.verified
                ))
            })
            .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
