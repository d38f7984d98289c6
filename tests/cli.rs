//! The `veilgrid` program as a user runs it: public commands, flags and `--json` shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::Command;

fn veilgrid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veilgrid"));
    c.env_remove("VEILGRID_ROUTER").env("VEILGRID_LOG", "error");
    c
}

#[test]
fn demo_runs_end_to_end_in_process_and_reports_json() {
    let out = veilgrid().args(["demo", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.len() >= 5);
    assert!(
        steps
            .iter()
            .all(|s| s["ok"] == true && s["name"].is_string() && s["ms"].is_number())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_and_complete_against_a_running_grid() {
    let g = common::start(common::fast_router()).await;
    let url = g.router_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.bin");
    std::fs::write(&payload, b"bytes from a file").unwrap();
    let out_file = dir.path().join("out.bin");
    let (providers, complete) = tokio::task::spawn_blocking(move || {
        let providers = veilgrid()
            .args(["providers", "--json", "--router", &url])
            .output()
            .unwrap();
        let complete = veilgrid()
            .args([
                "complete",
                "--protocol",
                "veilgrid/echo/v1",
                "--json",
                "--router",
                &url,
            ])
            .arg("--payload-file")
            .arg(&payload)
            .arg("--out")
            .arg(&out_file)
            .output()
            .unwrap();
        (providers, complete)
    })
    .await
    .unwrap();
    assert!(providers.status.success());
    let v: serde_json::Value = serde_json::from_slice(&providers.stdout).unwrap();
    let p = &v[0];
    assert_eq!(p["name"], "echo");
    assert_eq!(p["provider_id"].as_str().unwrap().len(), 64);
    let names: Vec<&str> = p["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"veilgrid/echo/v1") && names.contains(&"veilgrid/echo/sealed/v1"));

    assert!(
        complete.status.success(),
        "{}",
        String::from_utf8_lossy(&complete.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&complete.stdout).unwrap();
    assert_eq!(v["completion_len"], 17);
    assert_eq!(v["receipt"]["verified"], true);
    assert_eq!(v["receipt"]["provider_id"], p["provider_id"]);
    assert_eq!(
        std::fs::read(dir.path().join("out.bin")).unwrap(),
        b"bytes from a file"
    );
    g.stop().await;
}

#[test]
fn client_commands_fail_clearly_without_a_router() {
    let out = veilgrid()
        .args(["providers", "--router", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the router"), "{err}");
}

#[test]
fn complete_with_a_missing_payload_file_names_the_file() {
    let out = veilgrid()
        .args([
            "complete",
            "--protocol",
            "veilgrid/echo/v1",
            "--payload-file",
            "/nonexistent/p.bin",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/p.bin"));
}
