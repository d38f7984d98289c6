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

struct Checked {
    service: String,
    file: PathBuf,
}

/// Check one container against the binary; `Err(service)` when the binary does not
/// offer the service at all.
fn check_container(
    file: &Path,
    name: &str,
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
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            c[probe]["grpc"]["port"].as_u64(),
            Some(port),
            "{ctx}: {probe} must be a grpc.health.v1 probe on {port}"
        );
    }
    if let Some(adv) = args.iter().position(|a| a == "--advertise") {
        let url = &args[adv + 1];
        assert!(
            url.starts_with("http://") && url.ends_with(&format!(":{port}")),
            "{ctx}: --advertise {url} does not reach port {port}"
        );
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
        mounts.iter().any(|m| m["mountPath"] == "/etc/veilgrid/tls"),
        "{ctx}: no TLS mount at /etc/veilgrid/tls"
    );
    Ok(Checked {
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
            match check_container(&file, &name, c, &offered, &help) {
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
