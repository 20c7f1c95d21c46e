//! The setting matrix end to end on the simulated device: a bug planted in the device
//! (a firmware variant it follows but its profile does not declare) makes the run fail
//! exactly the cases the bug affects — those where the oracle's prediction for a device
//! with that variant differs from SPEC's — and no other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hil::record::Verdict;
use hil::runner::{case_settings, Ports};
use hil_oracle::matrix::Matrix;
use hil_oracle::model::DeviceFacts;
use hil_oracle::oracle::predict_pairs;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The case ids of the exhaustive matrix containing `filter` whose prediction
/// changes when the device follows `planted`.
fn affected(filter: &str, planted: &[String]) -> (usize, BTreeSet<String>) {
    let m = Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &DeviceFacts::default(),
    )
    .expect("model");
    let planted = DeviceFacts::with_variants(planted);
    let mut n = 0;
    let mut ids = BTreeSet::new();
    for row in m.exhaustive() {
        let case = m.case(&row);
        if !case.id.contains(filter) {
            continue;
        }
        n += 1;
        let pairs = case_settings(&case, "127.0.0.1", Ports::NOMINAL);
        let spec = predict_pairs(&case, &pairs, &DeviceFacts::default()).expect("predictable");
        let bug = predict_pairs(&case, &pairs, &planted).expect("predictable");
        if spec.outcome != bug.outcome {
            ids.insert(case.id.clone());
        }
    }
    (n, ids)
}

/// Runs the exhaustive matrix's cases containing `filter` on a sim with `planted`
/// variants; answers the ids that failed.
fn run_planted(filter: &str, planted: &[&str]) -> (usize, BTreeSet<String>) {
    // One run at a time: each starts many simulated devices (two cores may be all).
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!(
        "hil-planted-{}-{}",
        std::process::id(),
        filter.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.current_dir(root())
        .args(["run", "--filter", filter, "--jobs", "2", "--report"])
        .arg(&dir);
    for p in planted {
        cmd.args(["--plant", p]);
    }
    let out = cmd.output().expect("hil run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = hil::record::read(&dir.join("results.jsonl")).expect("results");
    assert!(
        records.iter().all(|r| r.verdict != Verdict::HarnessError),
        "harness errors:\n{stdout}"
    );
    let failed = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.id.clone())
        .collect();
    assert!(dir.join("report.html").exists() && dir.join("junit.xml").exists());
    let _ = std::fs::remove_dir_all(&dir);
    (records.len(), failed)
}

fn check(filter: &str, planted: &[&str]) {
    let variants: Vec<String> = planted.iter().map(|s| s.to_string()).collect();
    let (n, want) = affected(filter, &variants);
    assert!(
        !want.is_empty(),
        "{planted:?} changes no case of {filter}: the test would prove nothing"
    );
    assert!(want.len() < n, "{planted:?} changes every case of {filter}");
    let (ran, failed) = run_planted(filter, planted);
    assert_eq!(ran, n, "every selected case ran");
    let missed: Vec<_> = want.difference(&failed).collect();
    let extra: Vec<_> = failed.difference(&want).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "planted {planted:?} over {filter}: {} affected, {} failed\nnot caught: {missed:#?}\nfailed but unaffected: {extra:#?}",
        want.len(),
        failed.len()
    );
}

#[test]
fn planted_tls_bugs_fail_exactly_the_cases_they_affect() {
    // Name checks on the CN alone, and going on in plaintext when STARTTLS fails.
    check("tls/", &["cn-only", "plaintext-after-starttls-failure"]);
}

#[test]
fn a_planted_auth_bug_fails_exactly_the_cases_it_affects() {
    // Sending without AUTH when no mechanism is in common.
    check("auth/", &["send-without-auth"]);
}

#[test]
fn a_planted_revocation_bug_fails_exactly_the_cases_it_affects() {
    // Soft-fail: no revocation answer lets the certificate through.
    check("tls/", &["soft-fail-revocation"]);
}

/// `hil run --list | head -1`: the closed pipe ends the listing quietly, no panic.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    for args in [&["run", "--list"][..], &["matrix", "--list"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
            .args(args)
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("hil runs");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a line");
        // The reader is gone: the pipe is closed.
        let out = child.wait_with_output().expect("exit");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{args:?}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--section`, `--exclude` (repeatable) beside `--filter`, and a section no matrix
/// has named with the ones it has.
#[test]
fn sections_and_exclusions_select_cases() {
    let list = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["run", "--list"];
        all.extend(args);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hil"))
            .current_dir(root())
            .args(&all)
            .output()
            .expect("run hil");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let all = list(&[]);
    let tls = list(&["--section", "tls"]);
    assert!(!tls.is_empty() && tls.iter().all(|id| id.starts_with("tls/")));
    // `--filter tls/` also picks `auth_tls/…`-like ids elsewhere; a section does not.
    let two = list(&["--section", "tls", "--section", "pop"]);
    assert_eq!(
        two.len(),
        tls.len() + all.iter().filter(|id| id.starts_with("pop/")).count()
    );
    let no_starttls = list(&[
        "--section",
        "tls",
        "--exclude",
        "starttls",
        "--exclude",
        "smtps",
    ]);
    assert!(no_starttls
        .iter()
        .all(|id| !id.contains("starttls") && !id.contains("smtps")));
    assert!(!no_starttls.is_empty() && no_starttls.len() < tls.len());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(["run", "--list", "--section", "tsl"])
        .output()
        .expect("run hil");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("--section tsl: no such section")
            && err.contains("tls"),
        "{err}"
    );
}

/// Issue 19: no server.fault value of the exhaustive matrix is vacuous — for each,
/// some case gets to the fault's step or applies its policy, as the oracle walks the
/// session (the run-time check, from the servers' records, is in `vacuity.rs`).
#[test]
fn every_fault_fires_in_some_exhaustive_case() {
    let m = Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &DeviceFacts::default(),
    )
    .expect("model");
    let rows = m.exhaustive();
    assert_eq!(m.never_met(&rows), Vec::<(String, &str)>::new());
    // The check can say no: the delivery section alone sends to a well-behaved
    // server, and the faults section without mixed recipients misses the
    // recipient rules.
    let faults: Vec<_> = rows
        .iter()
        .filter(|r| r.section == "faults" || r.section == "timeouts")
        .cloned()
        .collect();
    assert!(m.never_met(&faults).is_empty());
    let one_recipient: Vec<_> = faults
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.values[hil_oracle::matrix::Dim::Recipients.index()] = 0;
            r
        })
        .collect();
    let missed: Vec<String> = m
        .never_met(&one_recipient)
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    for v in [
        "rcpt2-450",
        "recipient-refused",
        "scenario:recipients-refused",
    ] {
        assert!(
            missed.iter().any(|m| m == v),
            "{v} not reported: {missed:?}"
        );
    }
}
