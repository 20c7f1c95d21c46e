//! Issue 19: no server-side value is vacuous at run time — for every scripted
//! `server.fault` and `server.pop_fault` value, some case's server record shows the
//! fault fired or the policy applied (`hil::vacuity`), and `hil run` says so when one
//! never does. The oracle's own check (before anything runs, `hil matrix`) is in
//! `matrix.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use hil::record::Verdict;
use hil_oracle::matrix::Matrix;
use hil_oracle::model::DeviceFacts;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_scripted_server_value_fires_in_a_run() {
    let dir = std::env::temp_dir().join(format!("hil-vacuity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args([
            "run",
            "--jobs",
            "2",
            "--section",
            "faults",
            "--section",
            "pop_faults",
            "--report",
        ])
        .arg(&dir)
        .output()
        .expect("hil run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("never fired"), "{stdout}");
    let mut records = hil::record::read(&dir.join("results.jsonl")).expect("results");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(records.iter().all(|r| r.verdict == Verdict::Pass));
    let m = Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &DeviceFacts::default(),
    )
    .expect("model");
    assert_eq!(
        hil::vacuity::never_fired(&m, &records),
        Vec::<String>::new()
    );
    // The records name what fired: a refused recipient among the mixed ones.
    let rcpt = records
        .iter()
        .find(|r| {
            r.dims
                .get("server.fault")
                .is_some_and(|v| v == "recipient-refused")
        })
        .expect("a recipient-refused case");
    assert!(
        rcpt.transcripts
            .iter()
            .flat_map(|t| &t.fired)
            .any(|f| f.contains("policy: recipient rule b@hil.test (550)")),
        "{:?}",
        rcpt.transcripts
            .iter()
            .map(|t| &t.fired)
            .collect::<Vec<_>>()
    );
    // And the check says no: with the record of every rcpt2-450 case wiped, that
    // value never fired.
    for r in records
        .iter_mut()
        .filter(|r| r.dims.get("server.fault").is_some_and(|v| v == "rcpt2-450"))
    {
        for t in &mut r.transcripts {
            t.fired.clear();
        }
    }
    assert_eq!(
        hil::vacuity::never_fired(&m, &records),
        vec!["server.fault=rcpt2-450".to_string()]
    );
}
