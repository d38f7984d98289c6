//! `veilgrid match …` and `veilgrid rates` against a running grid with the three
//! matching nodes: the `--json` shapes and one round end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::Command;

fn veilgrid(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_veilgrid"))
        .env_remove("VEILGRID_ROUTER")
        .env("VEILGRID_LOG", "error")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_through_the_cli() {
    let g = common::start(common::fast_router()).await;
    veilgrid_matcher::local::start(&g.router_url, None, "VG", g.shutdown.clone())
        .await
        .unwrap();
    // wait for the three nodes to register
    let mut c = common::client(&g).await;
    for _ in 0..100 {
        let ps = c.providers(None).await.unwrap();
        let nodes = ps
            .iter()
            .filter_map(|p| p.info.as_ref())
            .filter(|i| i.name.starts_with("matcher-"))
            .count();
        if nodes == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let url = g.router_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("trader").display().to_string();
    let orders = dir.path().join("orders.json");
    std::fs::write(
        &orders,
        r#"{"levels": 8, "orders": [
            {"id": "b1", "side": "buy", "limit": 6, "qty": 30},
            {"id": "s1", "side": "sell", "limit": 2, "qty": 20},
            {"id": "s2", "side": "sell", "limit": 7, "qty": 5}]}"#,
    )
    .unwrap();
    let orders = orders.display().to_string();
    tokio::task::spawn_blocking(move || {
        let common = [
            "--router",
            url.as_str(),
            "--data-dir",
            data.as_str(),
            "--json",
        ];
        let with = |a: &[&str]| -> Vec<String> {
            a.iter()
                .chain(common.iter())
                .map(|s| s.to_string())
                .collect()
        };
        let run = |a: Vec<String>| veilgrid(&a.iter().map(String::as_str).collect::<Vec<_>>());
        // rounds only for registered currencies: each agent registers the one it issues
        for (id, symbol) in [("ALC", "Ⓐ"), ("BOB", "Ⓑ")] {
            let reg = run(with(&[
                "match", "currency", "register", "--id", id, "--symbol", symbol,
            ]));
            assert_eq!(reg["id"], id);
            assert_eq!(reg["symbol"], symbol);
            assert_eq!(reg["created"], true);
            assert_eq!(reg["issuer"].as_str().unwrap().len(), 64);
        }
        let again = run(with(&[
            "match", "currency", "register", "--id", "ALC", "--symbol", "Ⓐ",
        ]));
        assert_eq!(again["created"], false);
        let list = run(with(&["match", "currency", "list"]));
        let ids: Vec<&str> = list["currencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ALC", "BOB", "VG"]);
        let open = run(with(&[
            "match", "round", "open", "--pair", "ALC/BOB", "--levels", "8", "--pmin", "1",
            "--ratio", "1.1",
        ]));
        let round = open["round"].as_str().unwrap().to_owned();
        assert_eq!(round.len(), 32);
        let sub = run(with(&[
            "match", "submit", "--round", &round, "--orders", &orders,
        ]));
        assert_eq!(sub["submitted"].as_array().unwrap().len(), 3);
        let one = run(with(&[
            "match", "submit", "--round", &round, "--side", "buy", "--limit", "3", "--qty", "4",
            "--id", "b2",
        ]));
        assert_eq!(one["submitted"][0], "b2");
        // the opener's `result` closes the round, then waits for the signed outcome
        let res = run(with(&["match", "result", "--round", &round]));
        assert_eq!(res["cross"], true);
        assert_eq!(res["level"], 4);
        assert_eq!(res["volume"], 20);
        assert!((res["rate"].as_f64().unwrap() - 1.1f64.powi(4)).abs() < 1e-9);
        // every accepted order's range proofs, checked against the signed order-set hash
        assert_eq!(res["range_proofs_verified"], 4);
        assert_eq!(res["dropped"], 0);
        let fills = run(with(&["match", "fills", "--round", &round]));
        let got: Vec<(String, u64)> = fills["fills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().into(),
                    f["fill"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("b1".into(), 20),
                ("s1".into(), 20),
                ("s2".into(), 0),
                ("b2".into(), 0)
            ]
        );
        let svg = std::path::Path::new(&data).with_file_name("rates.svg");
        let svg_s = svg.display().to_string();
        let rates = veilgrid(&[
            "rates",
            "--router",
            &url,
            "--numeraire",
            "BOB",
            "--json",
            "--plot",
            &svg_s,
        ]);
        assert_eq!(rates["numeraire"], "BOB");
        assert_eq!(rates["plot"], svg_s.as_str());
        let chart = std::fs::read_to_string(&svg).unwrap();
        assert!(chart.starts_with("<svg") && chart.contains("ALC"));
        assert!((rates["rates"]["ALC"].as_f64().unwrap() - 1.1f64.powi(4)).abs() < 1e-9);
        assert_eq!(rates["history"].as_array().unwrap().len(), 1);
        // the auditor fetches the round's public record and verifies it offline
        let audit_dir = std::path::Path::new(&data).with_file_name("audit");
        let audit_s = audit_dir.display().to_string();
        let fetched = veilgrid(&[
            "audit",
            "fetch",
            "--router",
            &url,
            "--out",
            &audit_s,
            "--wait-secs",
            "1",
            "--json",
        ]);
        assert_eq!(fetched["matching_rounds"], 1, "{fetched}");
        let report = veilgrid(&["audit", "verify", &audit_s, "--json"]);
        let item = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "matching round")
            .unwrap_or_else(|| panic!("{report}"))
            .clone();
        assert_eq!(item["status"], "verified", "{item}");
        assert!(
            item["detail"]
                .as_str()
                .unwrap()
                .contains("4 accepted orders"),
            "{item}"
        );
        // one flipped byte near the end of the file (the last order's limit proof)
        let file = audit_dir.join("matching").join(format!("{round}.result"));
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() - 40;
        bytes[at] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_veilgrid"))
            .env("VEILGRID_LOG", "error")
            .args(["audit", "verify", &audit_s, "--json"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "a flipped byte must fail the audit");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let item = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "matching round")
            .unwrap()
            .clone();
        assert_eq!(item["status"], "failed", "{item}");
        assert_eq!(item["part"], "range proof", "{item}");
    })
    .await
    .unwrap();
    g.stop().await;
}
