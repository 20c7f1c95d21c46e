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

/// `openssl verify -crl_check` of the committed zoo's `valid` certificate at `at`
/// (seconds since the epoch): openssl's last line.
fn openssl_verify_at(at: i64) -> Option<String> {
    let certs = repo_certs();
    let dir = tmp(&format!("attime-{at}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // valid.crt is the leaf then its intermediate; the CRLs in PEM for -CRLfile.
    let chain = std::fs::read_to_string(certs.join("valid.crt")).expect("valid.crt");
    let split = chain
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .map_or(chain.len(), |(i, _)| i);
    std::fs::write(dir.join("leaf.pem"), &chain[..split]).expect("leaf");
    std::fs::write(dir.join("chain.pem"), &chain[split..]).expect("chain");
    let mut args: Vec<String> = [
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-crl_check_all",
        "-attime",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(at.to_string());
    for ca in ["root", "intermediate"] {
        let pem = dir.join(format!("{ca}.crl.pem"));
        let ok = std::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(certs.join(format!("{ca}.crl")))
            .arg("-out")
            .arg(&pem)
            .status()
            .ok()?
            .success();
        assert!(ok, "openssl crl reads certs/{ca}.crl");
        args.push("-CRLfile".into());
        args.push(pem.display().to_string());
    }
    let out = std::process::Command::new("openssl")
        .args(&args)
        .arg("-CAfile")
        .arg(certs.join("root.crt"))
        .arg("-untrusted")
        .arg(dir.join("chain.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some(text.trim().to_string())
}

/// certs/README.md tells users a device clock from 2025-01-01 00:00 UTC to before
/// 2045-01-01 00:00 UTC works: openssl, checking every CRL, agrees at both ends, and
/// fails just outside them.
#[test]
fn openssl_accepts_the_valid_certificate_at_both_ends_of_the_readme_range() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: openssl is not installed (.ci/run installs it)");
        return;
    }
    let readme = std::fs::read_to_string(repo_certs().join("README.md")).expect("README");
    assert!(
        readme.contains("from 2025-01-01 00:00 UTC up to (not including) 2045-01-01 00:00 UTC"),
        "certs/README.md states the range this test checks"
    );
    const START: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
    const END: i64 = 2_366_841_600; // 2045-01-01T00:00:00Z
    for (at, want) in [
        (START, "OK"),
        (START + 3600, "OK"),
        (END - 1, "OK"),
        (START - 1, "certificate is not yet valid"),
        (END, "certificate has expired"),
    ] {
        let Some(got) = openssl_verify_at(at) else {
            eprintln!("SKIPPED: openssl could not be run");
            return;
        };
        assert!(
            got.contains(want) && (want != "OK" || got.ends_with(": OK")),
            "openssl verify -crl_check_all -attime {at}: expected {want:?}, got:\n{got}"
        );
    }
}
