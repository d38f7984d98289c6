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

/// One base container run as a local process the way its pod would run it.
struct Pod {
    name: String,
    child: std::process::Child,
    /// The readiness probe's command, rewritten like the args.
    probe: Vec<String>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run the readiness probe until it passes (or `tries` × 200 ms went by).
fn ready(pod: &mut Pod, tries: u32) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..tries {
        if let Ok(Some(status)) = pod.child.try_wait() {
            return Err(format!("{} exited: {status}", pod.name));
        }
        let out = Command::new(&pod.probe[0])
            .args(&pod.probe[1..])
            .output()
            .unwrap();
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(format!(
        "{}: readiness probe never passed: {last}",
        pod.name
    ))
}

/// The base manifests, run as processes on loopback: every container of the base (one
/// replica each) starts from its own args and env, with its TLS Secret as made by
/// tls-secrets.sh materialized where `--tls-dir` points, and its own readiness probe
/// (`veilgrid health` over mutual TLS) passes; then the providers are registered
/// with the router. What a cluster adds is rewritten, and only that: container ports
/// become free loopback ports, pod IPs and cluster DNS names become 127.0.0.1 (the
/// router's certificate is checked against its Service name in
/// `the_router_certificate_names_its_kubernetes_service`), `/etc/veilgrid/tls` and
/// `/var/lib/veilgrid` become scratch directories, and the PostgreSQL Secret becomes a
/// scratch database when `VEILGRID_TEST_POSTGRES` is set (else the embedded store).
#[test]
fn the_base_manifests_run_and_pass_their_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("ca");
    let secrets = make_tls_secrets(&tls);
    let pg = std::env::var("VEILGRID_TEST_POSTGRES").ok().map(|admin| {
        veilgrid_kit::pg::ScratchDb::create(
            &admin,
            &format!("vg_deploy_smoke_{}", std::process::id()),
        )
        .unwrap()
    });
    let bin = env!("CARGO_BIN_EXE_veilgrid");

    // Every container of the base, router first; ports mapped before any starts.
    let mut containers = Vec::new();
    for (file, doc) in documents(&root().join("deploy/k8s/base")) {
        if !matches!(doc["kind"].as_str(), Some("Deployment" | "StatefulSet")) {
            continue;
        }
        let spec = doc["spec"]["template"]["spec"].clone();
        for c in spec["containers"].as_sequence().unwrap() {
            if s(&c["image"]) == "veilgrid" {
                containers.push((file.clone(), spec.clone(), c.clone()));
            }
        }
    }
    containers.sort_by_key(|(_, _, c)| s(&c["args"][1]) != "router");
    let mut ports = std::collections::BTreeMap::new();
    for (_, _, c) in &containers {
        for p in c["ports"].as_sequence().unwrap() {
            ports.insert(p["containerPort"].as_u64().unwrap(), free_port());
        }
    }
    let router_port = ports[&7700];

    let mut pods = Vec::new();
    for (i, (file, spec, c)) in containers.iter().enumerate() {
        let name = s(&c["name"]);
        let pod_name = format!("veilgrid-{name}-0");
        // The Secret mounted at /etc/veilgrid/tls, as files.
        let secret = tls_secret(spec, c).unwrap();
        let keys = &secrets[&secret];
        let secret_dir = tmp.path().join(format!("secrets/{i}-{secret}"));
        std::fs::create_dir_all(&secret_dir).unwrap();
        for k in keys {
            std::fs::copy(tls.join(k), secret_dir.join(k)).unwrap();
        }
        let data_dir = tmp.path().join(format!("data/{i}-{name}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let rewrite = |arg: &str, env: &[(String, String)]| -> String {
            let mut a = arg.to_owned();
            for (k, v) in env {
                a = a.replace(&format!("$({k})"), v);
            }
            // cluster DNS names (a StatefulSet pod's, a Service's) -> loopback
            if let Some(at) = a.find(".svc.cluster.local") {
                let host_start = a[..at].rfind("//").map_or(0, |p| p + 2);
                a.replace_range(host_start..at + ".svc.cluster.local".len(), "127.0.0.1");
            }
            a = a.replace("//veilgrid-router:", "//127.0.0.1:");
            a = a.replace("0.0.0.0:", "127.0.0.1:");
            for (from, to) in &ports {
                if a.ends_with(&format!(":{from}")) {
                    a = format!("{}:{to}", &a[..a.len() - from.to_string().len() - 1]);
                }
            }
            a.replace(TLS_DIR, secret_dir.to_str().unwrap())
                .replace("/var/lib/veilgrid", data_dir.to_str().unwrap())
        };
        let mut env: Vec<(String, String)> = Vec::new();
        for e in c["env"].as_sequence().into_iter().flatten() {
            let var = s(&e["name"]);
            let from = &e["valueFrom"];
            let value = if let Some(v) = e["value"].as_str() {
                rewrite(v, &env)
            } else if from["fieldRef"]["fieldPath"] == "status.podIP" {
                "127.0.0.1".into()
            } else if from["fieldRef"]["fieldPath"] == "metadata.name" {
                pod_name.clone()
            } else if from["fieldRef"]["fieldPath"] == "metadata.namespace" {
                "veilgrid".into()
            } else if from["secretKeyRef"]["name"] == "veilgrid-postgres" {
                match &pg {
                    Some(db) => db.url().to_owned(),
                    None => continue,
                }
            } else {
                panic!(
                    "{}: env {var}: no local stand-in for {from:?}",
                    file.display()
                );
            };
            env.push((var, value));
        }
        let args: Vec<String> = c["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| rewrite(&s(a), &env))
            .collect();
        let probe: Vec<String> = c["readinessProbe"]["exec"]["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| rewrite(&s(a), &env))
            .map(|a| a.replace("/usr/local/bin/veilgrid", bin))
            .collect();
        let child = Command::new(bin)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(data_dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut pod = Pod {
            name: format!("{} ({})", name, file.display()),
            child,
            probe,
        };
        if i == 0 {
            // providers register at start: the router must be up first
            if let Err(e) = ready(&mut pod, 300) {
                let log = std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
                panic!("{e}\n{log}");
            }
        }
        pods.push((pod, data_dir));
    }
    for (pod, data_dir) in &mut pods {
        if let Err(e) = ready(pod, 600) {
            let log = std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
            panic!("{e}\n{log}");
        }
    }

    // The router lists every provider the base runs, reached over mutual TLS.
    let want: BTreeSet<&str> = ["fhe", "prover", "aggregator", "agg-member"].into();
    let mut names = BTreeSet::new();
    for _ in 0..150 {
        let out = Command::new(bin)
            .args(["providers", "--json", "--router"])
            .arg(format!("https://127.0.0.1:{router_port}"))
            .arg("--tls-dir")
            .arg(&tls)
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            names = v
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            if want.iter().all(|w| names.contains(*w)) {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for w in &want {
        assert!(names.contains(*w), "{w} did not register: {names:?}");
    }
    for (pod, _) in &pods {
        eprintln!("ready: {} (probe: {})", pod.name, pod.probe.join(" "));
    }
    eprintln!("registered: {names:?}");
    drop(pods);
    drop(pg);
}
