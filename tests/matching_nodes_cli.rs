//! The three matching nodes as separate processes, as the Kubernetes StatefulSet runs
//! them: `veilgrid match keygen`, `veilgrid serve router --matcher-nodes`, three
//! `veilgrid serve matcher-node` and a round through the CLI; a node restarted with
//! the same data directory still knows the registered currencies. (Which nodes the
//! router takes rates from, `--matcher-nodes`, is tested at the library level:
//! services/matcher/tests/nodes.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veilgrid"));
    c.env_remove("VEILGRID_ROUTER")
        .env_remove("VEILGRID_STORE")
        .env_remove("VEILGRID_DATA_DIR")
        .env("VEILGRID_LOG", "error");
    c
}

fn run(args: &[&str]) -> Result<serde_json::Value, String> {
    let out = bin().args(args).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped (a failing test leaves no servers behind).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(args: &[String]) -> Server {
    Server(
        bin()
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn node(party: usize, ports: &[u16; 3], router: &str, keys: &Path, data: &Path) -> Server {
    node_with(party, ports, router, keys, data, None)
}

/// A node, under mutual TLS with `tls` (the CA and `matcher-<party>`'s certificate).
fn node_with(
    party: usize,
    ports: &[u16; 3],
    router: &str,
    keys: &Path,
    data: &Path,
    tls: Option<&Path>,
) -> Server {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let peers: Vec<String> = ports
        .iter()
        .map(|p| format!("{scheme}://127.0.0.1:{p}"))
        .collect();
    let tls_args: Vec<String> = tls
        .map(|d| vec!["--tls-dir".into(), d.display().to_string()])
        .unwrap_or_default();
    serve(
        &[
            vec![
                "matcher-node".into(),
                "--party".into(),
                format!("veilgrid-matcher-{party}"),
                "--listen".into(),
                format!("127.0.0.1:{}", ports[party]),
                "--peers".into(),
                peers.join(","),
                "--matcher-keys".into(),
                keys.display().to_string(),
                "--router".into(),
                router.into(),
                "--data-dir".into(),
                data.join(format!("node-{party}")).display().to_string(),
                "--lease-ttl-secs".into(),
                "5".into(),
            ],
            tls_args,
        ]
        .concat(),
    )
}

/// Retry `f` until it succeeds (servers starting, leases arriving), at most `secs`.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > until => panic!("gave up: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn three_node_processes_clear_a_round_and_keep_currencies_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let k = run(&["match", "keygen", "--out", keys.to_str().unwrap(), "--json"]).unwrap();
    assert_eq!(k["nodes"].as_array().unwrap().len(), 3);
    assert!(
        run(&["match", "keygen", "--out", keys.to_str().unwrap(), "--json"]).is_err(),
        "keygen never overwrites"
    );
    let rport = free_port();
    let router = format!("http://127.0.0.1:{rport}");
    let _router = serve(&[
        "router".into(),
        "--listen".into(),
        format!("127.0.0.1:{rport}"),
        "--data-dir".into(),
        dir.path().join("router").display().to_string(),
        "--matcher-nodes".into(),
        keys.join("nodes.json").display().to_string(),
    ]);
    let ports = [free_port(), free_port(), free_port()];
    let mut nodes: Vec<Server> = (0..3)
        .map(|p| node(p, &ports, &router, &keys, dir.path()))
        .collect();
    let trader = dir.path().join("trader").display().to_string();
    let with = |a: &[&str]| -> Vec<String> {
        a.iter()
            .chain(
                [
                    "--router",
                    router.as_str(),
                    "--data-dir",
                    trader.as_str(),
                    "--json",
                ]
                .iter(),
            )
            .map(|s| s.to_string())
            .collect()
    };
    let call = |a: Vec<String>| run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let reg = eventually(60, || {
        call(with(&["match", "currency", "register", "--id", "ALC"]))
    });
    assert_eq!(reg["created"], true);
    let round_of = |levels: &str| -> String {
        let open = call(with(&[
            "match", "round", "open", "--pair", "ALC/VG", "--levels", levels, "--pmin", "1",
            "--ratio", "1.1",
        ]))
        .unwrap();
        open["round"].as_str().unwrap().to_owned()
    };
    let round = round_of("8");
    for (side, limit, qty) in [("buy", "6", "30"), ("sell", "2", "20")] {
        call(with(&[
            "match", "submit", "--round", &round, "--side", side, "--limit", limit, "--qty", qty,
        ]))
        .unwrap();
    }
    let res = call(with(&["match", "result", "--round", &round])).unwrap();
    assert_eq!(res["cross"], true);
    assert_eq!(res["level"], 2);
    assert_eq!(res["volume"], 20);

    // node 1 stops and comes back with the same data directory: ALC is still
    // registered there (a round of ALC/VG opens at all three nodes), unchanged
    drop(nodes.remove(1));
    nodes.insert(1, node(1, &ports, &router, &keys, dir.path()));
    let round = eventually(60, || {
        call(with(&[
            "match", "round", "open", "--pair", "ALC/VG", "--levels", "4", "--pmin", "1",
            "--ratio", "1.1",
        ]))
    });
    assert_eq!(round["round"].as_str().unwrap().len(), 32);
    let again = call(with(&["match", "currency", "register", "--id", "ALC"])).unwrap();
    assert_eq!(
        again["created"], false,
        "still registered after the restart"
    );
}

#[test]
fn three_node_processes_clear_a_round_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    run(&["match", "keygen", "--out", keys.to_str().unwrap(), "--json"]).unwrap();
    // the operator's CA: the router, the three nodes (one certificate per party) and
    // the trader's client certificate
    let tls = dir.path().join("tls");
    let t = tls.to_str().unwrap();
    let ca = |a: &[&str]| {
        let out = bin()
            .args(["ca"])
            .args(a)
            .args(["--dir", t])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ca(&["init"]);
    for name in ["router", "matcher-0", "matcher-1", "matcher-2"] {
        ca(&["issue", "--service", name]);
    }
    ca(&["issue", "--client", "trader"]);
    let rport = free_port();
    let router = format!("https://127.0.0.1:{rport}");
    let _router = serve(&[
        "router".into(),
        "--listen".into(),
        format!("127.0.0.1:{rport}"),
        "--data-dir".into(),
        dir.path().join("router").display().to_string(),
        "--matcher-nodes".into(),
        keys.join("nodes.json").display().to_string(),
        "--tls-dir".into(),
        t.into(),
    ]);
    let ports = [free_port(), free_port(), free_port()];
    let _nodes: Vec<Server> = (0..3)
        .map(|p| node_with(p, &ports, &router, &keys, dir.path(), Some(&tls)))
        .collect();
    let trader = dir.path().join("trader").display().to_string();
    let call = |a: &[&str]| {
        let mut v: Vec<&str> = a.to_vec();
        v.extend([
            "--router",
            router.as_str(),
            "--tls-dir",
            t,
            "--identity",
            "trader",
            "--data-dir",
            trader.as_str(),
            "--json",
        ]);
        run(&v)
    };
    let reg = eventually(60, || {
        call(&["match", "currency", "register", "--id", "ALC"])
    });
    assert_eq!(reg["created"], true);
    let open = call(&[
        "match", "round", "open", "--pair", "ALC/VG", "--levels", "8", "--pmin", "1", "--ratio",
        "1.1",
    ])
    .unwrap();
    let round = open["round"].as_str().unwrap().to_owned();
    for (side, limit, qty) in [("buy", "6", "30"), ("sell", "2", "20")] {
        call(&[
            "match", "submit", "--round", &round, "--side", side, "--limit", limit, "--qty", qty,
        ])
        .unwrap();
    }
    // the MPC runs over the nodes' mutual-TLS links
    let res = call(&["match", "result", "--round", &round]).unwrap();
    assert_eq!(res["cross"], true);
    assert_eq!(res["volume"], 20);
    // the round is the trader's: another client certificate cannot read its fills
    ca(&["issue", "--client", "mallory"]);
    let mallory = run(&[
        "match",
        "fills",
        "--round",
        &round,
        "--router",
        &router,
        "--tls-dir",
        t,
        "--identity",
        "mallory",
        "--data-dir",
        &trader,
        "--json",
    ])
    .unwrap_err();
    assert!(
        mallory.contains("PermissionDenied") || mallory.contains("another caller"),
        "{mallory}"
    );
    let fills = call(&["match", "fills", "--round", &round]).unwrap();
    assert_eq!(fills["fills"].as_array().unwrap().len(), 2, "{fills}");
}
