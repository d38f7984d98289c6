//! The dependency rules of DESIGN.md, checked on the real dependency graph:
//! the router cannot read what it moves, and the math crates do no I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

/// Normal (non-dev, non-build) dependency edges of every package, from `cargo metadata`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        ))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<String, String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut g = BTreeMap::new();
    for node in v["resolve"]["nodes"].as_array().unwrap() {
        let name = names[node["id"].as_str().unwrap()].clone();
        let deps: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| names[d["pkg"].as_str().unwrap()].clone())
            .collect();
        g.entry(name).or_insert_with(BTreeSet::new).extend(deps);
    }
    g
}

fn closure(g: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(n) = todo.pop() {
        for d in g.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn the_router_cannot_depend_on_crates_that_read_payloads() {
    let g = graph();
    let deps = closure(&g, "veilgrid-router");
    for forbidden in [
        "veilgrid-fhe",
        "veilgrid-aggregation",
        "veilgrid-mpc",
        "tfhe",
    ] {
        assert!(
            !deps.contains(forbidden),
            "veilgrid-router depends on {forbidden}"
        );
    }
    assert!(deps.contains("veilgrid-core"), "sanity: the graph was read");
}

#[test]
fn math_crates_do_no_network_io() {
    let g = graph();
    for krate in [
        "veilgrid-core",
        "veilgrid-fhe",
        "veilgrid-aggregation",
        "veilgrid-mpc",
        "veilgrid-zk",
        "veilgrid-circuits",
    ] {
        let deps = closure(&g, krate);
        for forbidden in ["tonic", "tokio", "hyper", "veilgrid-kit", "veilgrid-router"] {
            assert!(!deps.contains(forbidden), "{krate} depends on {forbidden}");
        }
    }
}
