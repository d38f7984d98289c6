//! The Kubernetes manifests (deploy/k8s) and the container image (deploy/Dockerfile)
//! run commands the `veilgrid` binary actually accepts: every container's service,
//! flags and flag values parse (the binary is run with them and `--help`, which clap
//! honours only after everything before it parsed), every env var it sets is one the
//! binary reads or one its args refer to, and its port, probes and `--listen` agree.
//!
//! Manifests of components no overlay includes yet may name services the binary does
//! not offer yet: they are listed as pending (and must stay out of the overlays).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

fn veilgrid(args: &[String]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veilgrid"))
        .args(args)
        .env_remove("VEILGRID_STORE")
        .output()
        .expect("run veilgrid");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The services `veilgrid serve` offers, from its help.
fn services(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Every YAML document of every file under `dir`, with the file it came from.
fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        if f.is_dir() {
            out.extend(documents(&f));
        } else if f.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&f).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                if !v.is_null() {
                    out.push((f.clone(), v));
                }
            }
        }
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// Replace `$(NAME)` references by plausible values of the downward API.
fn substitute(arg: &str) -> String {
    arg.replace("$(POD_IP)", "10.1.2.3")
        .replace("$(POD_NAME)", "veilgrid-x-0")
        .replace("$(POD_NAMESPACE)", "veilgrid")
}

/// Where every container finds its TLS material.
const TLS_DIR: &str = "/etc/veilgrid/tls";

struct Checked {
    service: String,
    file: PathBuf,
    /// The Secret mounted at [`TLS_DIR`].
    tls_secret: String,
    /// The certificates `veilgrid serve <service> --tls-dir` loads (`<name>.pem`, `<name>.key`).
    tls_names: Vec<String>,
}

/// The certificate names `veilgrid serve <service>` loads from --tls-dir (see its
/// `--help`): a matching party presents `matcher-<party>`, and every ordinal of the
/// StatefulSet runs in the same pod template.
fn tls_names(service: &str) -> Vec<String> {
    match service {
        "committee-member" => vec!["agg-member".into()],
        "matcher-node" => (0..3).map(|i| format!("matcher-{i}")).collect(),
        other => vec![other.to_owned()],
    }
}

/// The Secret volume a container mounts at [`TLS_DIR`].
fn tls_secret(spec: &Value, c: &Value) -> Option<String> {
    let volume = c["volumeMounts"]
        .as_sequence()?
        .iter()
        .find(|m| m["mountPath"] == TLS_DIR)?["name"]
        .as_str()?
        .to_owned();
    spec["volumes"]
        .as_sequence()?
        .iter()
        .find(|v| v["name"] == volume.as_str())?["secret"]["secretName"]
        .as_str()
        .map(str::to_owned)
}

/// Check one container against the binary; `Err(service)` when the binary does not
/// offer the service at all.
fn check_container(
    file: &Path,
    name: &str,
    spec: &Value,
    c: &Value,
    offered: &BTreeSet<String>,
    env_known: &str,
) -> Result<Checked, String> {
    let ctx = format!("{} container {name}", file.display());
    let args: Vec<String> = c["args"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{ctx}: no args"))
        .iter()
        .map(s)
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{ctx}");
    let service = args[1].clone();
    if !offered.contains(&service) {
        return Err(service);
    }
    // The binary parses every arg (with the downward-API values a pod would have).
    let mut probe: Vec<String> = args.iter().map(|a| substitute(a)).collect();
    probe.push("--help".into());
    let (ok, out) = veilgrid(&probe);
    assert!(
        ok,
        "{ctx}: `veilgrid {}` is refused:\n{out}",
        probe.join(" ")
    );

    // --listen, the container port and both probes name the same port.
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .map(|i| args[i + 1].clone())
        .unwrap_or_else(|| panic!("{ctx}: no --listen (the default is loopback only)"));
    assert!(
        listen.starts_with("0.0.0.0:"),
        "{ctx}: --listen {listen} is unreachable from other pods"
    );
    let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let ports = c["ports"].as_sequence().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "grpc" && p["containerPort"].as_u64() == Some(port)),
        "{ctx}: no containerPort {port} named grpc"
    );
    // Every service runs under mutual TLS, with the Secret mounted where --tls-dir says.
    let tls_dir = args
        .iter()
        .position(|a| a == "--tls-dir")
        .map(|i| args[i + 1].clone())
        .unwrap_or_else(|| panic!("{ctx}: no --tls-dir: the hop would be plaintext"));
    assert_eq!(tls_dir, TLS_DIR, "{ctx}");
    // The kubelet's grpc probe speaks plaintext, so both probes are exec probes running
    // `veilgrid health` over mutual TLS against this container's port, with a command
    // the binary accepts and a certificate the Secret holds.
    let expected_identity = tls_names(&service);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert!(
            c[probe]["grpc"].is_null(),
            "{ctx}: {probe} is a plaintext grpc probe"
        );
        let cmd: Vec<String> = c[probe]["exec"]["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{ctx}: {probe} is not an exec probe"))
            .iter()
            .map(s)
            .collect();
        assert_eq!(cmd[0], "/usr/local/bin/veilgrid", "{ctx}: {probe}");
        assert_eq!(cmd[1], "health", "{ctx}: {probe}");
        let flag = |name: &str| {
            cmd.iter()
                .position(|a| a == name)
                .map(|i| cmd[i + 1].clone())
                .unwrap_or_else(|| panic!("{ctx}: {probe} lacks {name}"))
        };
        assert_eq!(
            flag("--target"),
            format!("https://127.0.0.1:{port}"),
            "{ctx}: {probe} must ask this container's port over TLS"
        );
        assert_eq!(flag("--tls-dir"), TLS_DIR, "{ctx}: {probe}");
        let identity = flag("--identity");
        assert!(
            identity == "any" || expected_identity.contains(&identity),
            "{ctx}: {probe} presents {identity}, not one of {expected_identity:?}"
        );
        let timeout_ms: u64 = flag("--timeout-ms").parse().unwrap();
        let timeout_s = c[probe]["timeoutSeconds"].as_u64().unwrap_or(1);
        assert!(
            timeout_ms < timeout_s * 1000,
            "{ctx}: {probe} gives up after the kubelet does ({timeout_ms} ms vs {timeout_s} s)"
        );
        let mut parse: Vec<String> = cmd[1..].to_vec();
        parse.push("--help".into());
        let (ok, out) = veilgrid(&parse);
        assert!(
            ok,
            "{ctx}: {probe} `veilgrid {}` is refused:\n{out}",
            parse.join(" ")
        );
    }
    if let Some(adv) = args.iter().position(|a| a == "--advertise") {
        let url = &args[adv + 1];
        assert!(
            url.starts_with("https://") && url.ends_with(&format!(":{port}")),
            "{ctx}: --advertise {url} does not reach port {port} over TLS"
        );
    }
    for e in c["env"].as_sequence().into_iter().flatten() {
        if e["name"] == "VEILGRID_ROUTER" {
            let url = s(&e["value"]);
            assert_eq!(
                url, "https://veilgrid-router:7700",
                "{ctx}: the router is reached over TLS by its Service name (its certificate's SAN)"
            );
        }
    }

    // Every env var is read by the binary or referenced by the args.
    let joined = args.join(" ");
    for e in c["env"].as_sequence().into_iter().flatten() {
        let var = s(&e["name"]);
        let referenced = joined.contains(&format!("$({var})"));
        let read = env_known.contains(&format!("[env: {var}"));
        assert!(
            referenced || read,
            "{ctx}: env {var} is neither read by `veilgrid serve` nor used in its args"
        );
    }
    // The TLS Secret mount sits where the services will look for it.
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts.iter().any(|m| m["mountPath"] == TLS_DIR),
        "{ctx}: no TLS mount at {TLS_DIR}"
    );
    Ok(Checked {
        tls_secret: tls_secret(spec, c)
            .unwrap_or_else(|| panic!("{ctx}: {TLS_DIR} is not a Secret")),
        tls_names: expected_identity,
        service,
        file: file.to_owned(),
    })
}

#[test]
fn every_container_runs_a_command_the_binary_accepts() {
    let (ok, help) = veilgrid(&["serve".into(), "--help".into()]);
    assert!(ok, "{help}");
    let offered = services(&help);
    assert!(
        offered.contains("router"),
        "services parsed from help: {offered:?}"
    );
    let k8s = root().join("deploy/k8s");
    let mut checked = Vec::new();
    let mut pending = Vec::new();
    for (file, doc) in documents(&k8s) {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        if !matches!(kind.as_str(), "Deployment" | "StatefulSet") {
            continue;
        }
        let spec = &doc["spec"]["template"]["spec"];
        for c in spec["containers"].as_sequence().unwrap() {
            let name = s(&c["name"]);
            if s(&c["image"]) != "veilgrid" {
                continue; // e.g. the local overlay's throw-away PostgreSQL
            }
            match check_container(&file, &name, spec, c, &offered, &help) {
                Ok(ch) => checked.push(ch),
                Err(service) => {
                    assert!(
                        file.starts_with(k8s.join("components")),
                        "{}: `veilgrid serve {service}` does not exist (services: {offered:?})",
                        file.display()
                    );
                    pending.push((service, file.clone()));
                }
            }
        }
    }
    let services: BTreeSet<&str> = checked.iter().map(|c| c.service.as_str()).collect();
    for must in [
        "router",
        "prover",
        "aggregator",
        "committee-member",
        "matcher-node",
    ] {
        assert!(
            services.contains(must),
            "no manifest runs {must}: {services:?}"
        );
    }
    for c in &checked {
        eprintln!("ok: veilgrid serve {} ({})", c.service, c.file.display());
    }
    check_tls_secrets(&checked);
    // A pending component must not be deployed by an overlay yet.
    for (service, file) in &pending {
        eprintln!(
            "pending: {} runs `veilgrid serve {service}`, which this binary does not offer yet",
            file.display()
        );
        let component = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        for env in ["local", "production"] {
            let k = std::fs::read_to_string(k8s.join(format!("overlays/{env}/kustomization.yaml")))
                .unwrap();
            assert!(
                !k.contains(&format!("components/{component}")),
                "overlay {env} deploys {component}, whose `veilgrid serve {service}` does not exist"
            );
        }
    }
}

#[test]
fn the_image_default_command_is_accepted() {
    let docker = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let cmd = docker
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD line");
    let mut args: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert!(docker.contains("ENTRYPOINT [\"/usr/local/bin/veilgrid\"]"));
    assert!(docker.contains("USER 65532"), "the image runs as non-root");
    args.push("--help".into());
    let (ok, out) = veilgrid(&args);
    assert!(ok, "CMD {cmd} is refused:\n{out}");
}

#[test]
fn the_router_store_is_chosen_on_up_and_serve() {
    for cmd in ["up", "serve"] {
        let (ok, help) = veilgrid(&[cmd.into(), "--help".into()]);
        assert!(ok, "{help}");
        assert!(
            help.contains("--store <STORE>"),
            "`veilgrid {cmd}` lacks --store:\n{help}"
        );
        assert!(help.contains("[env: VEILGRID_STORE]"), "{help}");
    }
    // A spec of neither form is refused before anything starts, naming both forms.
    let (ok, out) = veilgrid(&[
        "serve".into(),
        "router".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--store".into(),
        "mysql://root:hunter2@db/x".into(),
    ]);
    assert!(!ok);
    assert!(out.contains("sqlite:DIR or postgres://"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

/// Run deploy/k8s/tls-secrets.sh with this binary into `dir`; its Secrets by name, each
/// as its keys.
fn make_tls_secrets(dir: &Path) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let out = Command::new("bash")
        .arg(root().join("deploy/k8s/tls-secrets.sh"))
        .args(["--dir", dir.to_str().unwrap(), "--namespace", "veilgrid"])
        .env("VEILGRID", env!("CARGO_BIN_EXE_veilgrid"))
        .env_remove("VEILGRID_TLS_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tls-secrets.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("secrets.yaml")).unwrap();
    let mut secrets = std::collections::BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).unwrap();
        if v.is_null() {
            continue;
        }
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["namespace"], "veilgrid");
        let keys: BTreeSet<String> = v["data"].as_mapping().unwrap().keys().map(s).collect();
        secrets.insert(s(&v["metadata"]["name"]), keys);
    }
    secrets
}

/// The Secret each container mounts, as tls-secrets.sh makes it, holds the CA and
/// every certificate the service loads, and no Secret holds the CA's key.
fn check_tls_secrets(checked: &[Checked]) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = make_tls_secrets(&dir.path().join("tls"));
    for c in checked {
        let keys = secrets.get(&c.tls_secret).unwrap_or_else(|| {
            panic!(
                "{}: mounts Secret {}, which tls-secrets.sh does not make ({:?})",
                c.file.display(),
                c.tls_secret,
                secrets.keys()
            )
        });
        assert!(keys.contains("ca.pem"), "{}: {keys:?}", c.tls_secret);
        for name in &c.tls_names {
            for ext in ["pem", "key"] {
                assert!(
                    keys.contains(&format!("{name}.{ext}")),
                    "{} (for `veilgrid serve {}`) lacks {name}.{ext}: {keys:?}",
                    c.tls_secret,
                    c.service
                );
            }
        }
    }
    for (name, keys) in &secrets {
        assert!(!keys.contains("ca.key"), "{name} carries the CA's key");
    }
}

/// A provider dials `https://veilgrid-router:7700` (the Service name): the router's
/// certificate from tls-secrets.sh must be valid for that name, and a provider's own
/// certificate must be accepted as its client certificate. Checked against a real
/// router on port 0 with `veilgrid health`, the manifests' probe command.
#[test]
fn the_router_certificate_names_its_kubernetes_service() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("tls");
    make_tls_secrets(&tls);
    let mut router = Command::new(env!("CARGO_BIN_EXE_veilgrid"))
        .args([
            "serve",
            "router",
            "--listen",
            "127.0.0.1:0",
            "--stop-on-stdin-eof",
        ])
        .arg("--tls-dir")
        .arg(&tls)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env_remove("VEILGRID_STORE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(router.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("router listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let health = |server_name: &str, identity: &str| {
        let mut out = None;
        for _ in 0..50 {
            let o = Command::new(env!("CARGO_BIN_EXE_veilgrid"))
                .args(["health", "--json", "--target", &url, "--tls-dir"])
                .arg(&tls)
                .args(["--server-name", server_name, "--identity", identity])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let done = o.status.success()
                || !v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("Connection refused"));
            out = Some((o.status.success(), v));
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        out.unwrap()
    };
    for name in [
        "veilgrid-router",
        "veilgrid-router.veilgrid.svc.cluster.local",
    ] {
        let (ok, v) = health(name, "fhe");
        assert!(ok, "{name}: {v}");
        assert_eq!(v["status"], "SERVING");
    }
    // Not issued to another service's name.
    let (ok, v) = health("veilgrid-fhe", "fhe");
    assert!(!ok, "{v}");
    drop(router.stdin.take());
    let _ = router.wait();
}
