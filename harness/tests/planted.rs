//! Issue 19: every behaviour the simulated device can be planted with (`hil run
//! --plant WORD`, the sim's quirks: old bugs and the other side of SPEC's latitudes)
//! meets the cases meant for it. A planted bug fails some of them, and only cases of
//! the kind it affects; a latitude's other choice passes, and the records say which
//! choice the device made. (That the same cases pass on the sim as it ships is what
//! the exhaustive runs show: `e2e.rs`, `.ci/run`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use hil::record::{Record, Verdict};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `hil run ARGS --plant PLANT` on the embedded sim; answers its records.
fn run(plant: &str, args: &[&str]) -> Vec<Record> {
    // One run at a time: each starts simulated devices (two cores may be all).
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("hil-planted-{}-{plant}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(["run", "--jobs", "2", "--plant", plant, "--report"])
        .arg(&dir)
        .args(args)
        .output()
        .expect("hil run");
    let records = hil::record::read(&dir.join("results.jsonl")).unwrap_or_else(|e| {
        panic!(
            "{plant}: no results ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        records.iter().all(|r| r.verdict != Verdict::HarnessError),
        "{plant}: harness errors: {:?}",
        records
            .iter()
            .filter(|r| r.verdict == Verdict::HarnessError)
            .map(|r| (&r.id, &r.harness_error))
            .collect::<Vec<_>>()
    );
    records
}

/// The planted bug fails at least one case, and every case it fails is one `meant`
/// says it may affect.
fn caught(plant: &str, args: &[&str], meant: impl Fn(&Record) -> bool) {
    let records = run(plant, args);
    let failed: Vec<&Record> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect();
    assert!(
        !failed.is_empty(),
        "{plant}: no case of {args:?} failed ({} ran)",
        records.len()
    );
    let stray: Vec<(&String, &Vec<hil::outcome::Mismatch>)> = failed
        .iter()
        .filter(|r| !meant(r))
        .map(|r| (&r.id, &r.mismatches))
        .collect();
    assert!(
        stray.is_empty(),
        "{plant}: failed cases it should not affect: {stray:#?}"
    );
}

/// A latitude's other choice passes every case, and some records name it.
fn allowed(plant: &str, args: &[&str], choice: &str) {
    let records = run(plant, args);
    let failed: Vec<(&String, &Vec<hil::outcome::Mismatch>)> = records
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| (&r.id, &r.mismatches))
        .collect();
    assert!(
        failed.is_empty(),
        "{plant}: SPEC allows it, yet: {failed:#?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.latitude.iter().any(|c| c.contains(choice))),
        "{plant}: no record says {choice:?}"
    );
}

fn has_kind(r: &Record, kind: &str) -> bool {
    r.mismatches.iter().any(|m| m.kind.as_str() == kind)
}

#[test]
fn a_530_to_every_rcpt_without_auth_is_auth_required() {
    caught(
        "rcpt-530-rejected",
        &["--filter", "server.fault=rcpt-530"],
        |r| !r.id.contains("smtp.auth.enabled=on"),
    );
}

#[test]
fn addresses_of_320_characters_are_taken() {
    caught("address-max-253", &["--section", "delivery"], |r| {
        r.id.contains("=longest")
    });
}

#[test]
fn the_pop_servers_certificate_is_checked() {
    caught("pop-tls-unchecked", &["--section", "pop_tls"], |r| {
        r.id.contains("server.cert=")
    });
}

#[test]
fn a_refused_quit_after_acceptance_is_delivered() {
    caught("quit-refusal-fails", &["--section", "faults"], |r| {
        r.id.contains("server.fault=quit-")
    });
}

#[test]
fn a_malformed_challenge_fails_auth() {
    caught(
        "malformed-challenge-ignored",
        &["--section", "faults"],
        |r| r.id.contains("server.fault=auth-334-malformed"),
    );
}

#[test]
fn fragment_subjects_carry_n_of_n() {
    caught(
        "no-fragment-subject-prefix",
        &["--section", "load", "--filter", "load.mode=split"],
        |r| has_kind(r, "fragments"),
    );
}

#[test]
fn the_pop_before_smtp_wait_is_measured() {
    caught("pop-wait-ignored", &["--section", "pop"], |r| {
        has_kind(r, "pop_wait") && r.dims.get("pop_before_smtp.wait").is_none_or(|w| w != "0")
    });
}

#[test]
fn the_input_rules_refuse_what_spec_refuses() {
    caught("lenient-input", &["--section", "invalid"], |r| {
        ["999.1.1.1", "=1.2.3", "=12345", "a@::1", "plain,plain"]
            .iter()
            .any(|v| r.id.contains(v))
    });
}

#[test]
fn a_console_showing_a_password_fails_and_is_a_finding() {
    caught("password-shown", &["--section", "auth_tls"], |r| {
        has_kind(r, "secret_shown") && r.findings.iter().any(|f| f.contains("reveals a secret"))
    });
}

#[test]
fn an_expired_intermediate_may_fail_the_expiry_check() {
    allowed(
        "expired-intermediate-fails",
        &[
            "--section",
            "tls",
            "--filter",
            "server.cert=expired_intermediate",
        ],
        "expired intermediate: refused under expiry",
    );
}

#[test]
fn fragments_may_share_one_connection() {
    allowed(
        "fragments-one-connection",
        &["--section", "load", "--filter", "load.mode=split"],
        "over one connection",
    );
}

#[test]
fn a_refused_recipient_does_not_stop_the_others() {
    caught("refused-recipient-fails", &["--section", "faults"], |r| {
        r.dims.get("recipients").is_some_and(|v| v == "mixed")
    });
}

#[test]
fn every_alert_kind_is_sent() {
    caught("alerts-paper-jam-only", &["--section", "alerts"], |r| {
        r.dims.get("alert.kind").is_some_and(|k| k != "paper_jam")
    });
}

#[test]
fn the_timeout_bounds_the_connect_the_handshake_and_pop() {
    let records = run(
        "timeout-ignored",
        &[
            "--section",
            "timeouts",
            "--section",
            "timeouts_tls",
            "--section",
            "pop_timeouts",
        ],
    );
    let failed: Vec<&Record> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect();
    for kind in ["connect-silent", "hang-tls_handshake", "pop-hang"] {
        assert!(
            failed.iter().any(|r| r.id.contains(kind)),
            "no {kind} case failed: {:?}",
            failed.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
    }
    // Only the cases with another timeout than the default fail.
    for r in &failed {
        assert!(
            r.dims.get("smtp.timeout").is_some_and(|t| t != "60"),
            "{}: {:?}",
            r.id,
            r.mismatches
        );
    }
}
