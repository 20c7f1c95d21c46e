//! Two runs on one host (issue 18 item 7): each `hil run` with TLS cases serves the
//! zoo's OCSP responder and CRL server on a port of its own, its certificates re-signed
//! to point there (cached); `--responder IP:PORT` fixes the address, and a taken one
//! is an error that names it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hil-parallel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `hil run` over the revocation cases (each needs the responder), its re-signed zoos
/// cached under `cache`.
fn run(cache: &Path, report: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hil"));
    c.current_dir(root())
        .env("XDG_CACHE_HOME", cache)
        .args([
            "run",
            "--section",
            "tls",
            "--filter",
            "smtp.verify.revocation=on",
        ])
        .arg("--report")
        .arg(report)
        .args(extra);
    c
}

/// The last line, `N passed, 0 failed`, with N > 0.
fn all_passed(out: &Output) {
    let t = text(out);
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        last.ends_with(" passed, 0 failed") && !last.starts_with("0 "),
        "{t}"
    );
}

/// The responder URLs named by the re-signed zoos in the cache.
fn cached_responders(cache: &Path) -> Vec<String> {
    let mut urls = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache.join("hil/zoo")) else {
        return urls;
    };
    for e in entries.flatten() {
        let m = std::fs::read_to_string(e.path().join("manifest.toml")).unwrap_or_default();
        if let Some(line) = m.lines().find(|l| l.starts_with("responder = ")) {
            urls.push(
                line.trim_start_matches("responder = ")
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    urls.sort();
    urls
}

#[test]
fn two_runs_with_tls_cases_at_once_each_have_their_own_responder() {
    let cache = temp("cache-two");
    let (r1, r2) = (temp("one"), temp("two"));
    let start = |report: &Path| {
        run(&cache, report, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hil run")
    };
    let (a, b) = (start(&r1), start(&r2));
    let a = a.wait_with_output().expect("first");
    let b = b.wait_with_output().expect("second");
    all_passed(&a);
    all_passed(&b);
    // Two free ports, two re-signed zoos, neither on the shipped zoo's port.
    let urls = cached_responders(&cache);
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert_ne!(urls[0], urls[1]);
    for u in &urls {
        assert!(u.starts_with("http://127.0.0.1:"), "{u}");
        assert_ne!(u, "http://127.0.0.1:8099");
    }
    for d in [cache, r1, r2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_fixed_responder_address_is_used_and_a_taken_one_is_named() {
    let cache = temp("cache-fixed");
    let report = temp("fixed");
    // Taken: the run stops before any case, naming the option and the address.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = run(&cache, &report, &["--responder", &addr.to_string()])
        .output()
        .expect("hil run");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("--responder {addr}")), "{t}");
    drop(taken);
    // Free: used, and the zoo the device saw points there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let fixed = format!("http://127.0.0.1:{port}");
    let out = run(&cache, &report, &["--responder", &fixed])
        .output()
        .expect("hil run");
    all_passed(&out);
    assert_eq!(cached_responders(&cache), vec![fixed.clone()]);
    // The reproduce line keeps it.
    let meta = std::fs::read_to_string(report.join("run.json")).expect("run.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("run.json is JSON");
    let rerun: Vec<&str> = meta["rerun"]
        .as_array()
        .expect("rerun")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    let want = format!("127.0.0.1:{port}");
    assert!(
        rerun.windows(2).any(|w| w == ["--responder", &want]),
        "{rerun:?}"
    );
    // Not an address: refused before anything starts.
    let out = run(&cache, &report, &["--responder", "localhost"])
        .output()
        .expect("hil run");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("--responder") && t.contains("IP:PORT"), "{t}");
    for d in [cache, report] {
        let _ = std::fs::remove_dir_all(d);
    }
}
