//! `veilgrid agg ...` as a user runs it against a grid with the aggregation service and a
//! committee of 5 (`veilgrid up`'s default): round create / submit / result (--json shapes), a
//! verifiable round and its offline audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::{path::Path, process::Command, time::Duration};

use veilgrid::grid::{self, GridOptions};

fn veilgrid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veilgrid"));
    c.env_remove("VEILGRID_ROUTER").env("VEILGRID_LOG", "error");
    c
}

fn json(c: &mut Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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

async fn committee_registered(url: &str) {
    for _ in 0..100 {
        if veilgrid_aggregator::client::committee_keys(url, 5)
            .await
            .is_ok_and(|k| k.len() == 5)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the committee did not register");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agg_round_create_submit_result_and_audit() {
    let g = grid::start(GridOptions {
        committee: 5,
        ..GridOptions::default()
    })
    .await
    .unwrap();
    let url = g.router_url.clone();
    committee_registered(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let u = url.clone();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        for verifiable in [false, true] {
            let mut create = veilgrid();
            create.args([
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
                "--json",
            ]);
            if verifiable {
                create.arg("--verifiable");
            }
            let v = json(&mut create);
            let round = v["round"].as_str().unwrap().to_owned();
            assert_eq!(round.len(), 64);
            assert_eq!(v["verifiable"], verifiable);
            let inputs = [[1u64, 2, 3], [10, 20, 30], [100, 200, 255]];
            for (i, x) in inputs.iter().enumerate() {
                submit(&u, &round, &d, i as u64 + 1, x);
            }
            // All N arrived: the round closes, the in-process members check and answer.
            let r = json(veilgrid().args([
                "agg", "result", "--router", &u, "--round", &round, "--json", "--wait", "60",
            ]));
            assert_eq!(
                r,
                serde_json::json!({"sum": [111, 222, 288], "counted": [1, 2, 3]})
            );
            let audit = veilgrid()
                .args(["agg", "audit", "--router", &u, "--round", &round, "--json"])
                .output()
                .unwrap();
            if verifiable {
                assert!(
                    audit.status.success(),
                    "{}",
                    String::from_utf8_lossy(&audit.stderr)
                );
                let a: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
                assert_eq!(a["verified"], true);
                assert_eq!(a["sum"], serde_json::json!([111, 222, 288]));
            } else {
                assert!(!audit.status.success(), "a plain round has no transcript");
            }
        }
        // A vector over the bound is refused before anything is sent.
        let v = json(veilgrid().args([
            "agg",
            "round",
            "create",
            "--router",
            &u,
            "--length",
            "2",
            "--bits",
            "4",
            "--clients",
            "2",
            "--json",
        ]));
        let file = d.join("big.txt");
        std::fs::write(&file, "3\n16\n").unwrap();
        let out = veilgrid()
            .args([
                "agg",
                "submit",
                "--router",
                &u,
                "--round",
                v["round"].as_str().unwrap(),
            ])
            .arg("--vector")
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("over the bound"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await
    .unwrap();
    g.stop().await;
}
