//! The certificate zoo: `certs/` is exactly what `hil certs` generates with the default
//! options, the same seed gives byte-identical files and another seed other files
//! (unit test in `certs/zoo.rs`), and every key type loads into a TLS server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hil_zoo::keys::KeyKind;
use hil_zoo::zoo::{generate, ZooOptions};

fn repo_certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

fn tmp(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hil-certs-{tag}-{}", std::process::id()))
}

#[test]
fn the_committed_zoo_is_what_the_generator_writes() {
    let dir = tmp("default");
    let manifest = generate(&dir, &ZooOptions::default()).expect("generate");
    let fresh = files(&dir);
    let committed = files(&repo_certs());
    let names: Vec<&String> = fresh.keys().collect();
    assert_eq!(
        names,
        committed.keys().collect::<Vec<_>>(),
        "regenerate certs/: see certs/README.md"
    );
    for (name, bytes) in &fresh {
        assert!(
            committed.get(name) == Some(bytes),
            "certs/{name} differs: regenerate certs/"
        );
    }
    assert_eq!(manifest.cert.len(), 19);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_key_type_serves_tls() {
    for kind in [KeyKind::Rsa2048, KeyKind::EcdsaP256, KeyKind::Ed25519] {
        let dir = tmp(kind.name());
        generate(
            &dir,
            &ZooOptions {
                key: kind,
                seed: 3,
                ..ZooOptions::default()
            },
        )
        .expect("generate");
        for name in ["valid", "expired", "wildcard", "self_signed"] {
            hil_mail::tls::load(
                name,
                &dir.join(format!("{name}.crt")),
                &dir.join(format!("{name}.key")),
            )
            .unwrap_or_else(|e| panic!("{kind:?} {name}: {e}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
