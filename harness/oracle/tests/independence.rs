//! The oracle is the second, independent reading of SPEC: if it could reach the
//! simulated device's code, a bug there could agree with itself. This test reads the
//! workspace's manifests through `cargo metadata` and fails if `mfp-sim` is among the
//! oracle's normal or build dependencies, directly or through another crate.
//!
//! Only workspace packages are walked (`--no-deps`, which needs no download): mfp-sim
//! is not published, so nothing from a registry can lead to it; the way there is
//! always through a package of this workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    /// The package's name (as published, whatever it is renamed to in the manifest).
    name: String,
    /// `null` for a normal dependency, `"dev"` or `"build"`.
    kind: Option<String>,
}

fn metadata() -> Metadata {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every workspace package `root` reaches through normal and build dependencies (dev
/// dependencies do not reach the library), each with the chain that reaches it.
fn reachable(meta: &Metadata, root: &str) -> BTreeMap<String, Vec<String>> {
    let by_name: BTreeMap<&str, &Package> =
        meta.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    assert!(by_name.contains_key(root), "{root} is not in the workspace");
    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut stack = vec![vec![root.to_string()]];
    while let Some(chain) = stack.pop() {
        let Some(name) = chain.last() else { continue };
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(pkg) = by_name.get(name.as_str()) else {
            continue; // a registry crate: it cannot lead back into the workspace
        };
        for d in &pkg.dependencies {
            if d.kind.as_deref() == Some("dev") {
                continue;
            }
            let mut c = chain.clone();
            c.push(d.name.clone());
            out.entry(d.name.clone()).or_insert_with(|| c.clone());
            stack.push(c);
        }
    }
    out
}

#[test]
fn the_oracle_never_depends_on_the_simulated_device() {
    let meta = metadata();
    let deps = reachable(&meta, "hil-oracle");
    // The walk must see the graph: the oracle reaches the fake servers' crate.
    assert!(
        deps.contains_key("hil-mail"),
        "the graph is not read: {deps:?}"
    );
    if let Some(chain) = deps.get("mfp-sim") {
        panic!(
            "hil-oracle reaches mfp-sim through {}: the oracle must stay independent of \
             the simulated device",
            chain.join(" -> ")
        );
    }
}

#[test]
fn the_walk_finds_the_simulator_where_it_is_linked() {
    // `hil` links mfp-sim (for `hil sim`): the same walk must find it there, or the
    // test above could pass for the wrong reason.
    let meta = metadata();
    let deps = reachable(&meta, "hil");
    assert_eq!(
        deps.get("mfp-sim").map(|c| c.join(" -> ")),
        Some("hil -> mfp-sim".to_string())
    );
}
