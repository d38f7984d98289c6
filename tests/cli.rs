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

fn interrupt(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < until,
            "process did not exit in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_registers_and_ctrl_c_releases_the_lease() {
    let g = common::start(common::fast_router()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = veilgrid()
        .args([
            "serve",
            "echo",
            "--router",
            &g.router_url,
            "--lease-ttl-secs",
            "60",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut c = common::client(&g).await;
    // The grid runs other services too; count the echo providers.
    let echo_id = veilgrid_core::protocol::ProtocolId::from_name("veilgrid/echo/v1");
    let mut n = 0;
    for _ in 0..100 {
        n = c.providers(Some(&echo_id)).await.unwrap().len();
        if n == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        n, 2,
        "the served echo provider registered next to the built-in one"
    );
    interrupt(child.id());
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut child, 10))
        .await
        .unwrap();
    assert!(status.success());
    // Released at once, not left to expire after 60 s.
    assert_eq!(c.providers(Some(&echo_id)).await.unwrap().len(), 1);
    g.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn up_separate_starts_children_and_stops_them_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // mutual TLS by default: the CA and certificates are made under the data directory,
    // where client commands (same VEILGRID_DATA_DIR) find them for the https:// router
    let url = format!("https://127.0.0.1:{port}");
    let mut up = veilgrid()
        .env("VEILGRID_DATA_DIR", dir.path())
        .args(["up", "--separate", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = || {
        let mut c = veilgrid();
        c.env("VEILGRID_DATA_DIR", dir.path());
        c
    };
    let mut registered = false;
    for _ in 0..150 {
        let out = client()
            .args(["providers", "--json", "--router", &url])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            // Echo, the prover, FHE, the aggregation server and its 5 committee members,
            // each a child process.
            let names: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            let count = |n: &str| names.iter().filter(|x| **x == n).count();
            if count("echo") == 1
                && count("prover") == 1
                && count("fhe") == 1
                && count("aggregator") == 1
                && count("agg-member") == 5
            {
                registered = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        registered,
        "router, echo, prover, fhe, aggregator and 5 committee members came up as child processes"
    );
    assert!(dir.path().join("tls/ca.pem").exists());
    assert!(dir.path().join("tls/cli.pem").exists());
    // a plaintext client is refused with a hint
    let plain = veilgrid()
        .args(["providers", "--router", &url.replace("https://", "http://")])
        .output()
        .unwrap();
    assert!(!plain.status.success());
    // The same grid runs the demo (over mutual TLS, certificates from the data directory).
    let demo = client()
        .args(["demo", "--json", "--router", &url])
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stdout)
    );
    interrupt(up.id());
    assert!(wait_exit(&mut up, 15).success());
    // The children are gone: the router no longer answers.
    let out = client()
        .args(["providers", "--router", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // State and identities were kept in the data directory.
    assert!(dir.path().join("router/router.sqlite3").exists());
    assert!(dir.path().join("echo/identity.key").exists());
    assert!(dir.path().join("aggregator/aggregator.sqlite3").exists());
}

/// `veilgrid up` (mutual TLS by default, matching nodes included) and the matching
/// commands against it, finding the CA and the `cli` certificate under the data
/// directory.
#[test]
fn up_runs_mutual_tls_by_default_and_matching_commands_work_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let data = dir.path().to_path_buf();
    let mut up = veilgrid()
        .env("VEILGRID_DATA_DIR", &data)
        .args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = |args: &[&str]| -> serde_json::Value {
        let out = veilgrid()
            .env("VEILGRID_DATA_DIR", &data)
            .args(args)
            .args(["--router", &url, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut nodes = 0;
    let mut node_urls: Vec<String> = Vec::new();
    for _ in 0..150 {
        let out = veilgrid()
            .env("VEILGRID_DATA_DIR", &data)
            .args(["providers", "--json", "--router", &url])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            node_urls = v
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| {
                    p["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("matcher-"))
                })
                .filter_map(|p| p["endpoint"].as_str().map(str::to_owned))
                .collect();
            nodes = node_urls.len();
            if nodes == 3 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        nodes, 3,
        "the three matching nodes register over mutual TLS"
    );
    for i in 0..3 {
        assert!(data.join(format!("tls/matcher-{i}.pem")).exists());
    }
    // The exec probe of the Kubernetes manifests: grpc.health.v1 over mutual TLS,
    // presenting the service's own certificate.
    let health = |target: &str, args: &[&str]| {
        veilgrid()
            .env("VEILGRID_DATA_DIR", &data)
            .args(["health", "--target", target, "--json"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = health(&url, &["--identity", "router"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["serving"].as_bool()),
        (Some("SERVING"), Some(true))
    );
    // A matching party's probe cannot name its own certificate (its party follows from
    // the pod ordinal): `--identity any` presents the first one in the directory.
    for node in &node_urls {
        let out = health(node, &["--identity", "any"]);
        assert!(
            out.status.success(),
            "{node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let out = health(
        &url,
        &[
            "--identity",
            "any",
            "--tls-dir",
            empty.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no certificate with its key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plaintext against the TLS port is not a pass.
    let out = health(&url.replace("https://", "http://"), &[]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "UNREACHABLE", "{v}");
    let reg = run(&["match", "currency", "register", "--id", "ALC"]);
    assert_eq!(reg["id"], "ALC");
    let open = run(&[
        "match", "round", "open", "--pair", "ALC/VG", "--levels", "8", "--pmin", "1", "--ratio",
        "2",
    ]);
    let round = open["round"].as_str().unwrap().to_owned();
    run(&[
        "match", "submit", "--round", &round, "--side", "buy", "--limit", "3", "--qty", "5",
        "--id", "b",
    ]);
    run(&[
        "match", "submit", "--round", &round, "--side", "sell", "--limit", "3", "--qty", "5",
        "--id", "s",
    ]);
    // the MPC runs over the nodes' mutual-TLS links
    let res = run(&["match", "result", "--round", &round]);
    assert_eq!(res["cross"], true, "{res}");
    assert_eq!(res["volume"], 5, "{res}");
    let fills = run(&["match", "fills", "--round", &round]);
    assert_eq!(fills["fills"].as_array().unwrap().len(), 2, "{fills}");
    interrupt(up.id());
    assert!(wait_exit(&mut up, 15).success());
}

#[test]
fn up_insecure_runs_plaintext_and_tls_is_a_no_op_alias() {
    // --tls is the default now: accepted, but not together with --insecure
    let out = veilgrid()
        .args(["up", "--tls", "--insecure", "--listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = veilgrid()
        .env("VEILGRID_DATA_DIR", dir.path())
        .args(["up", "--insecure", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut listed = false;
    for _ in 0..150 {
        let out = veilgrid()
            .args(["providers", "--json", "--router", &url])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v.as_array().is_some_and(|a| {
                a.iter()
                    .filter(|p| {
                        p["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("matcher-"))
                    })
                    .count()
                    == 3
            }) {
                listed = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listed, "a plaintext grid with its matching nodes at {url}");
    assert!(!dir.path().join("tls").exists(), "no CA in plaintext");
    interrupt(up.id());
    assert!(wait_exit(&mut up, 15).success());
}

#[test]
fn demo_against_a_tls_router_without_its_ca_says_so_and_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let out = veilgrid()
        .args([
            "demo",
            "--json",
            "--router",
            "https://127.0.0.1:1",
            "--tls-dir",
        ])
        .arg(&tls)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mutual-TLS router"), "{err}");
    assert!(!tls.join("ca.pem").exists(), "no stray CA is made");
}
