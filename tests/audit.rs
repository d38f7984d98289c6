//! The auditor end to end: completions through the router end up in the prover's
//! log; `veilgrid audit fetch` collects them with a Groth16 proof; `veilgrid audit
//! verify` accepts the directory and, after one byte of any receipt, proof,
//! checkpoint or public input is flipped, fails naming the item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use bytes::Bytes;
use serde_json::Value;
use veilgrid::client::CallOptions;
use veilgrid_core::protocol::ProtocolId;

fn veilgrid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veilgrid"));
    c.env_remove("VEILGRID_ROUTER").env("VEILGRID_LOG", "error");
    c
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn verify(dir: &Path) -> (bool, Value) {
    let out = veilgrid()
        .args(["audit", "verify", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(
        out.status.success(),
        v["ok"] == true,
        "exit status follows ok"
    );
    (out.status.success(), v)
}

fn failed(v: &Value) -> Vec<(String, String, String)> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "failed")
        .map(|i| {
            (
                i["item"].as_str().unwrap().to_owned(),
                i["part"].as_str().unwrap_or("").to_owned(),
                i["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Copy `dir`, let `edit` change one file, verify the copy.
fn tampered(dir: &Path, edit: impl FnOnce(&Path)) -> Vec<(String, String, String)> {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("a");
    copy_dir(dir, &copy);
    edit(&copy);
    let (ok, v) = verify(&copy);
    assert!(!ok, "verification passed after tampering");
    failed(&v)
}

fn flip_receipt_byte(bundle: &Path, byte: usize) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::fs::read_to_string(bundle).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut entry = b64
        .decode(lines[1].strip_prefix("extra ").unwrap())
        .unwrap();
    entry[byte] ^= 0x01;
    lines[1] = format!("extra {}", b64.encode(entry));
    std::fs::write(bundle, lines.join("\n")).unwrap();
}

fn first(dir: &Path, sub: &str) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_logged_fetched_verified_and_tampering_is_named() {
    let g = common::start(common::fast_router()).await;
    let mut c = common::client(&g).await;
    for i in 0..5u8 {
        c.complete(
            &ProtocolId::from_name("veilgrid/echo/v1"),
            Bytes::from(vec![i; 16]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    }
    let url = g.router_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit");
    let (prove, fetch) = {
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            let prove = veilgrid()
                .args(["prover", "prove", "--json", "--router", &url, "--key", "clearing-4x4"])
                .args(["--witness", r#"{"orders":[{"side":"sell","limit":0,"qty":3},{"side":"buy","limit":2,"qty":2}]}"#])
                .output()
                .unwrap();
            let fetch = veilgrid()
                .args(["audit", "fetch", "--json", "--router", &url, "--out"])
                .arg(&out)
                .output()
                .unwrap();
            (prove, fetch)
        })
        .await
        .unwrap()
    };
    assert!(
        prove.status.success(),
        "{}",
        String::from_utf8_lossy(&prove.stderr)
    );
    let p = json(&prove);
    assert_eq!(p["statement"]["volume"], 2);
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let f = json(&fetch);
    assert_eq!(f["proofs"], 1);
    assert_eq!(
        f["proofs_bound"], true,
        "the proof's receipt reached the log"
    );
    // 5 echo completions and the proof, at least (fetch calls add their own receipts).
    assert!(f["tree_size"].as_u64().unwrap() >= 6, "{f}");
    assert!(f["keys"].as_u64().unwrap() >= 2);

    // Every router receipt is in the log.
    let logged = f["tree_size"].as_u64().unwrap();
    let recorded = g.state.store().receipts(0, 10_000).unwrap().len() as u64;
    assert!(
        recorded >= logged,
        "router recorded {recorded}, log holds {logged}"
    );

    let (ok, v) = verify(&out);
    assert!(ok, "{v:#}");
    let kinds: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for k in ["checkpoint", "receipt", "verifying key", "groth16 proof"] {
        assert!(kinds.contains(&k), "no {k} item in {kinds:?}");
    }

    // One byte of a receipt (inside the signed fields): the receipt is named.
    let f1 = tampered(&out, |d| flip_receipt_byte(&first(d, "entries"), 60));
    assert!(
        f1.iter()
            .any(|(item, part, _)| item.starts_with("entries/") && part == "receipt"),
        "{f1:?}"
    );
    // One byte of the checkpoint's root hash: the checkpoint is named.
    let f2 = tampered(&out, |d| {
        let p = d.join("checkpoint.txt");
        let mut t = std::fs::read(&p).unwrap();
        let line2 = t
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(1)
            .unwrap()
            .0;
        t[line2 + 3] = if t[line2 + 3] == b'A' { b'B' } else { b'A' };
        std::fs::write(&p, t).unwrap();
    });
    assert!(
        f2.iter().any(|(item, _, _)| item == "checkpoint.txt"),
        "{f2:?}"
    );
    // One byte of an inclusion proof hash in a bundle: the inclusion proof is named.
    let f3 = tampered(&out, |d| {
        // the bundle of entry 0 in a log of >= 6 has an inclusion proof
        let p = first(d, "entries");
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        let h = &mut lines[3];
        let c = if h.starts_with('A') { "B" } else { "A" };
        h.replace_range(0..1, c);
        std::fs::write(&p, lines.join("\n")).unwrap();
    });
    assert!(
        f3.iter()
            .any(|(item, part, _)| item.starts_with("entries/") && part == "inclusion proof"),
        "{f3:?}"
    );
    // One byte of the Groth16 proof, and one of its public inputs: the proof is named.
    for (offset_from_field, what) in [(5usize, "proof"), (4usize, "public inputs")] {
        let f4 = tampered(&out, |d| {
            use prost::Message;
            let p = first(d, "proofs");
            let mut resp = veilgrid_proto::prover::v1::ProveResponse::decode(
                std::fs::read(&p).unwrap().as_slice(),
            )
            .unwrap();
            let r = resp.record.as_mut().unwrap();
            let target = if what == "proof" {
                &mut r.proof
            } else {
                &mut r.public_inputs
            };
            let mut bytes = target.to_vec();
            bytes[offset_from_field + 64] ^= 0x01;
            *target = bytes.into();
            std::fs::write(&p, resp.encode_to_vec()).unwrap();
        });
        assert!(
            f4.iter().any(|(item, _, _)| item.starts_with("proofs/")),
            "{what}: {f4:?}"
        );
    }
    // A verifying key whose bytes changed no longer matches its pinned id.
    let f5 = tampered(&out, |d| {
        let p = first(d, "keys");
        let p = if p.extension().is_some_and(|e| e == "json") {
            std::fs::read_dir(d.join("keys"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "vk"))
                .unwrap()
        } else {
            p
        };
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0x01;
        std::fs::write(&p, b).unwrap();
    });
    assert!(
        f5.iter().any(|(item, _, _)| item.starts_with("keys/")),
        "{f5:?}"
    );

    // A second fetch into the same directory extends it and proves consistency.
    // The log grows by the receipts of the first fetch's own calls, which the
    // router pushes every 100 ms: a fetch that starts sooner finds the same tree
    // and has nothing to prove, so fetch again (each adds receipts) until one
    // finds the log grown.
    let mut bundles = 0;
    for _ in 0..10 {
        let url = g.router_url.clone();
        let out2 = out.clone();
        let again = tokio::task::spawn_blocking(move || {
            veilgrid()
                .args(["audit", "fetch", "--json", "--router", &url, "--out"])
                .arg(&out2)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(again.status.success());
        bundles = json(&again)["consistency_bundles"].as_u64().unwrap();
        if bundles >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(bundles >= 1, "no fetch found the log grown");
    let (ok, v) = verify(&out);
    assert!(ok, "{v:#}");

    // Export for snarkjs: the three files, in snarkjs' shape.
    let exp = dir.path().join("snarkjs");
    let e = veilgrid()
        .args([
            "audit", "export", "--format", "snarkjs", "--proof", "000001", "--dir",
        ])
        .arg(&out)
        .arg("--out")
        .arg(&exp)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let vk: Value =
        serde_json::from_slice(&std::fs::read(exp.join("verification_key.json")).unwrap()).unwrap();
    assert_eq!(vk["protocol"], "groth16");
    assert_eq!(vk["nPublic"], 4);
    let public: Vec<String> =
        serde_json::from_slice(&std::fs::read(exp.join("public.json")).unwrap()).unwrap();
    assert_eq!(public[2], "2", "the cleared volume is public input 2");
    assert!(exp.join("proof.json").exists());
    g.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn submit(url: &str, round: &str, dir: &Path, client: u64, x: &[u64]) {
    let file = dir.join(format!("x{client}.txt"));
    let text: String = x.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = veilgrid()
        .args([
            "agg", "submit", "--router", url, "--round", round, "--vector",
        ])
        .arg(&file)
        .args(["--client", &client.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rewrite the first aggregation result of `d` with `edit`.
fn edit_result(d: &Path, edit: impl FnOnce(&mut veilgrid_proto::aggregation::v1::ResultResponse)) {
    use prost::Message;
    let p = std::fs::read_dir(d.join("aggregation"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "result"))
        .unwrap();
    let mut r = veilgrid_proto::aggregation::v1::ResultResponse::decode(
        std::fs::read(&p).unwrap().as_slice(),
    )
    .unwrap();
    edit(&mut r);
    std::fs::write(&p, r.encode_to_vec()).unwrap();
}

/// Flip one bit of the audit transcript at `offset`.
fn flip_transcript(d: &Path, offset: usize) {
    edit_result(d, |r| {
        let mut t = r.transcript.to_vec();
        t[offset] ^= 0x01;
        r.transcript = t.into();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregation_rounds_and_inference_proofs_are_audited_and_tampering_is_named() {
    let g = veilgrid::grid::start(veilgrid::grid::GridOptions {
        committee: 5,
        router: common::fast_router(),
        ..veilgrid::grid::GridOptions::default()
    })
    .await
    .unwrap();
    let url = g.router_url.clone();
    for _ in 0..100 {
        if veilgrid_aggregator::client::committee_keys(&url, 5)
            .await
            .is_ok_and(|k| k.len() == 5)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit");
    let (u, d, o) = (url.clone(), dir.path().to_path_buf(), out.clone());
    let fetch = tokio::task::spawn_blocking(move || {
        // A verifiable round of 3 clients, L = 3, B = 8 (so x and 255 − x are proven in 8 bits).
        let create = veilgrid()
            .args([
                "agg",
                "round",
                "create",
                "--router",
                &u,
                "--length",
                "3",
                "--bits",
                "8",
                "--clients",
                "3",
                "--deadline",
                "30",
                "--check-window-ms",
                "500",
                "--verifiable",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            create.status.success(),
            "{}",
            String::from_utf8_lossy(&create.stderr)
        );
        let round = json(&create)["round"].as_str().unwrap().to_owned();
        for (i, x) in [[1u64, 2, 3], [10, 20, 30], [100, 200, 255]]
            .iter()
            .enumerate()
        {
            submit(&u, &round, &d, i as u64 + 1, x);
        }
        let r = veilgrid()
            .args([
                "agg", "result", "--router", &u, "--round", &round, "--json", "--wait", "60",
            ])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(json(&r)["sum"], serde_json::json!([111, 222, 288]));
        // An institution proves its decision on a test row under the demo inference key:
        // score = 3·10 − 7·20 + 12·200 − 20·5 − 20 = 2170 ≥ −1500, class 1.
        // It proves locally (the prover gets only the proof) and checks the class is the one
        // it decrypted.
        let prove = |class: &str| {
            veilgrid()
                .args([
                    "prover",
                    "prove",
                    "--json",
                    "--router",
                    &u,
                    "--key",
                    "inference-demo-linear",
                ])
                .args([
                    "--witness",
                    r#"{"features":[10,20,200,5]}"#,
                    "--local",
                    "--expect-class",
                    class,
                ])
                .output()
                .unwrap()
        };
        let wrong = prove("0");
        assert!(
            !wrong.status.success(),
            "a decision other than the model's is refused"
        );
        let p = prove("1");
        assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
        assert_eq!(json(&p)["statement"]["class"], 1);
        veilgrid()
            .args(["audit", "fetch", "--json", "--router", &u, "--out"])
            .arg(&o)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let f = json(&fetch);
    assert_eq!(f["aggregation_rounds"], 1, "{f}");
    assert_eq!(f["proofs"], 1, "{f}");
    assert_eq!(f["proofs_bound"], true, "{f}");

    let (ok, v) = verify(&out);
    assert!(ok, "{v:#}");
    let items = v["items"].as_array().unwrap();
    let range: Vec<&Value> = items
        .iter()
        .filter(|i| i["kind"] == "range proof")
        .collect();
    assert_eq!(range.len(), 3, "one range proof item per client: {v:#}");
    assert!(
        range
            .iter()
            .all(|i| i["detail"].as_str().unwrap().contains("batch-verified"))
    );
    assert_eq!(
        items
            .iter()
            .filter(|i| i["kind"] == "aggregation round")
            .count(),
        1
    );
    assert!(
        items.iter().any(|i| i["kind"] == "groth16 proof"
            && i["detail"].as_str().unwrap().starts_with("inference")),
        "{v:#}"
    );

    // Transcript layout: "VGAA" ‖ version ‖ round digest (32) ‖ client count (4) ‖ per client:
    // id (8) ‖ L = 3 commitments (96) ‖ proof length (4) ‖ proof ‖ ...
    let first_commitment = 4 + 1 + 32 + 4 + 8;
    let first_proof = first_commitment + 96 + 4;
    // A commitment of client 1: its range proof fails, by name.
    let t1 = tampered(&out, |d| flip_transcript(d, first_commitment + 7));
    assert!(
        t1.iter()
            .any(|(item, part, _)| item.ends_with("#client-1") && part == "client 1"),
        "{t1:?}"
    );
    // A byte of client 1's proof (inside t_x): its range proof fails, the others still verify.
    let t2 = tampered(&out, |d| flip_transcript(d, first_proof + 4 * 32 + 3));
    assert!(
        t2.iter()
            .any(|(item, part, _)| item.ends_with("#client-1") && part == "client 1"),
        "{t2:?}"
    );
    assert!(
        !t2.iter().any(|(item, _, _)| item.ends_with("#client-2")),
        "{t2:?}"
    );
    // The released sum: the round's sum check names it.
    let t3 = tampered(&out, |d| edit_result(d, |r| r.sum[1] += 1));
    assert!(
        t3.iter()
            .any(|(item, part, _)| item.starts_with("aggregation/") && part == "sum"),
        "{t3:?}"
    );
    // The sum inside the transcript too (consistently): the commitment check fails.
    let t4 = tampered(&out, |d| {
        edit_result(d, |r| {
            r.sum[0] += 1;
            let mut t = r.transcript.to_vec();
            let n = t.len();
            // sum entries (3 × u64) precede the 3 blinding scalars at the end.
            let s0 = n - 3 * 32 - 3 * 8;
            t[s0] = t[s0].wrapping_add(1);
            r.transcript = t.into();
        })
    });
    assert!(
        t4.iter()
            .any(|(item, part, _)| item.starts_with("aggregation/") && part == "commitment check"),
        "{t4:?}"
    );
    // The inference proof's class (public input 2): the proof is named.
    let t5 = tampered(&out, |d| {
        use prost::Message;
        let p = first(d, "proofs");
        let mut resp = veilgrid_proto::prover::v1::ProveResponse::decode(
            std::fs::read(&p).unwrap().as_slice(),
        )
        .unwrap();
        let r = resp.record.as_mut().unwrap();
        let mut b = r.public_inputs.to_vec();
        b[64] ^= 0x01;
        r.public_inputs = b.into();
        std::fs::write(&p, resp.encode_to_vec()).unwrap();
    });
    assert!(
        t5.iter().any(|(item, _, _)| item.starts_with("proofs/")),
        "{t5:?}"
    );
    g.stop().await;
}
