//! `veilgrid fhe keygen → register → models → query → eval` against an in-process grid (the
//! FHE service registered with its router): the `--json` shapes, the client key's permissions,
//! predictions equal to the plaintext model, and clear errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, Output};

use veilgrid_fhe::{FheModel, builtin_model, dataset::BreastCancer};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veilgrid"))
        .env_remove("VEILGRID_ROUTER")
        .env("VEILGRID_LOG", "error")
        .args(args)
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_register_query_through_the_cli() {
    let g = common::start(common::fast_router()).await;
    let url = g.router_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("hospital-keys");
    let keys_s = keys.display().to_string();
    let data = BreastCancer::load().unwrap();
    let rows: Vec<(Vec<f64>, usize)> = data
        .test_set()
        .take(3)
        .map(|(_, x, l)| (x.to_vec(), l))
        .collect();
    let csv = dir.path().join("rows.csv");
    let mut text = String::from("header,that,is,skipped\n");
    for (x, label) in &rows {
        let cells: Vec<String> = x.iter().map(f64::to_string).collect();
        text.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    std::fs::write(&csv, text).unwrap();
    let csv_s = csv.display().to_string();
    tokio::task::spawn_blocking(move || {
        let r = ["--router", url.as_str()];
        let with = |a: &[&str]| -> Vec<String> {
            a.iter().chain(r.iter()).map(|s| s.to_string()).collect()
        };
        let j = |a: Vec<String>| json(&a.iter().map(String::as_str).collect::<Vec<_>>());

        // The service registers with the router asynchronously: wait for it.
        let mut models = serde_json::Value::Null;
        for _ in 0..200 {
            let out = run(&with(&["fhe", "models", "--json"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>());
            if out.status.success() {
                models = serde_json::from_slice(&out.stdout).unwrap();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let models = models.as_array().unwrap().clone();
        let lr = models
            .iter()
            .find(|m| m["name"] == "breast-cancer-logreg")
            .unwrap();
        assert_eq!(lr["n_inputs"], 30);
        assert_eq!(lr["classes"], serde_json::json!(["malignant", "benign"]));
        assert_eq!(lr["inputs"].as_array().unwrap().len(), 30);
        assert!(models.iter().any(|m| m["name"] == "breast-cancer-gbt"));

        // keygen: the client key is owner-only and stays in DIR.
        let k = json(&["fhe", "keygen", "--out", &keys_s, "--json"]);
        let key_id = k["key_id"].as_str().unwrap().to_owned();
        assert_eq!(key_id.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(keys.join("client.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "client key mode {mode:o}");
        }
        // keygen refuses to overwrite without --force
        assert!(!run(&["fhe", "keygen", "--out", &keys_s]).status.success());

        // register, twice (idempotent)
        let reg = j(with(&["fhe", "register", "--keys", &keys_s, "--json"]));
        assert_eq!(reg["key_id"], key_id.as_str());
        assert_eq!(reg["already_registered"], false);
        let reg = j(with(&["fhe", "register", "--keys", &keys_s, "--json"]));
        assert_eq!(reg["already_registered"], true);

        // query: one --input row, then the CSV; predictions equal the plaintext model's.
        let model = FheModel::compile(builtin_model("breast-cancer-logreg").unwrap()).unwrap();
        let input: Vec<String> = rows[0].0.iter().map(f64::to_string).collect();
        let input = input.join(",");
        let one = j(with(&[
            "fhe",
            "query",
            "--keys",
            &keys_s,
            "--model",
            "breast-cancer-logreg",
            "--input",
            &input,
            "--json",
        ]));
        let one = one.as_array().unwrap();
        assert_eq!(one.len(), 1);
        let plain = model.model().predict(&rows[0].0).unwrap();
        assert_eq!(one[0]["prediction"], plain.class);
        assert!(one[0]["latency_ms"].as_f64().unwrap() > 0.0);
        let many = j(with(&[
            "fhe",
            "query",
            "--keys",
            &keys_s,
            "--model",
            "breast-cancer-logreg",
            "--csv",
            &csv_s,
            "--json",
        ]));
        let many = many.as_array().unwrap();
        assert_eq!(many.len(), rows.len());
        for (got, (x, _)) in many.iter().zip(&rows) {
            let plain = model.model().predict(x).unwrap();
            assert_eq!(got["prediction"], plain.class);
            assert_eq!(got["score"], plain.score);
        }
        // eval through the router on a sample of the test split: all agree.
        let ev = j(with(&[
            "fhe",
            "eval",
            "--model",
            "breast-cancer-logreg",
            "--keys",
            &keys_s,
            "--limit",
            "20",
            "--json",
        ]));
        assert_eq!(ev["rows"], 20);
        assert_eq!(ev["all_agree"], true);

        // Bad input: wrong model, wrong length, unknown key.
        let bad = run(&with(&[
            "fhe",
            "query",
            "--keys",
            &keys_s,
            "--model",
            "no-such-model",
            "--input",
            &input,
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-model"));
        let bad = run(&with(&[
            "fhe",
            "query",
            "--keys",
            &keys_s,
            "--model",
            "breast-cancer-logreg",
            "--input",
            "1,2,3",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("expects 30"));
        let other = dir.path().join("unregistered").display().to_string();
        json(&["fhe", "keygen", "--out", &other, "--json"]);
        let bad = run(&with(&[
            "fhe",
            "query",
            "--keys",
            &other,
            "--model",
            "breast-cancer-logreg",
            "--input",
            &input,
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            err.contains("NotFound") && err.contains("register"),
            "{err}"
        );
    })
    .await
    .unwrap();
    g.stop().await;
}
