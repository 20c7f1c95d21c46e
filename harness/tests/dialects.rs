//! The second console dialect (`mfp-sim --dialect menu`, `fixtures/devices/sim-menu.toml`)
//! end to end: the same matrix as the reference dialect's, sections of it passing
//! through the menu dialect (login, numbered selections, other keys and words); a
//! profile that gets a word wrong failing clearly within its timeout; the login's
//! password never in a log; a console already logged in used as it is.
//!
//! The whole exhaustive matrix through the menu dialect is
//! `hil run --profile fixtures/devices/sim-menu.toml` (CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hil::device::embedded::EmbeddedSim;
use hil::device::{Console, Endpoint, Profile};
use hil::record::{self, Record, Verdict};

const MENU: &str = "fixtures/devices/sim-menu.toml";
/// The menu console's default login (`mfp-sim --menu-login`).
const PASSWORD: &str = "mfp-4000";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One `hil run` at a time: each starts many simulated devices, and the
/// machine may have two cores only.
static ONE: Mutex<()> = Mutex::new(());

/// Runs `hil ARGS` in the repository root; answers its output and how long it took.
fn hil(args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run hil");
    (out, t0.elapsed())
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn report_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hil-dialects-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `hil run ARGS --report DIR`: its records and everything it printed.
fn run(name: &str, args: &[&str]) -> (Vec<Record>, String, Duration) {
    let dir = report_dir(name);
    let mut all: Vec<&str> = vec!["run"];
    all.extend(args);
    let d = dir.to_string_lossy().to_string();
    all.extend(["--report", &d]);
    let (out, took) = hil(&all);
    let printed = text(&out);
    let records = record::read(&dir.join("results.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (records, printed, took)
}

/// The case ids `hil run --list` selects.
fn list(args: &[&str]) -> Vec<String> {
    let mut all = vec!["run", "--list"];
    all.extend(args);
    let (out, _) = hil(&all);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_menu_dialect_runs_the_same_matrix_and_its_sections_pass() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    // The same exhaustive matrix as the reference dialect's, case for case.
    let reference = list(&[]);
    assert!(reference.len() > 1000, "{} cases", reference.len());
    assert_eq!(list(&["--profile", MENU]), reference);
    // Sections of it through the menu dialect: settings and recipients, refused
    // settings (named with the menu's keys), AUTH, TLS with the zoo's root imported
    // by `2.1`, AUTH over TLS (also in tls/), POP before SMTP (plain POP with APOP:
    // a run of pop/ alone has no POP TLS listeners, whatever the dialect), load
    // reduction.
    for (i, filter) in ["delivery/", "invalid/", "auth/", "tls/", "pop/", "load/"]
        .into_iter()
        .enumerate()
    {
        let (records, printed, took) = run(
            &format!("section-{i}"),
            &["--profile", MENU, "--filter", filter, "--jobs", "2"],
        );
        let want = reference.iter().filter(|id| id.contains(filter)).count();
        assert!(want > 0, "{filter}: no cases");
        assert_eq!(records.len(), want, "{filter}: every case ran\n{printed}");
        let bad: Vec<&str> = records
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .map(|r| r.id.as_str())
            .collect();
        assert!(bad.is_empty(), "{filter}: not passed: {bad:#?}\n{printed}");
        assert!(
            printed.contains(&format!("{want} passed, 0 failed")),
            "{printed}"
        );
        assert!(
            !printed.contains(PASSWORD),
            "the login password in the output"
        );
        eprintln!("{filter}: {want} cases passed in {took:?}");
    }
}

/// The menu profile with `from` replaced by `to` (and a short command timeout), in a
/// temporary file.
fn altered(name: &str, changes: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join(MENU)).expect("the menu profile");
    for (from, to) in changes {
        assert!(text.contains(from), "{from:?} not in the profile");
        text = text.replace(from, to);
    }
    let path =
        std::env::temp_dir().join(format!("hil-dialects-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the profile");
    path
}

#[test]
fn a_profile_with_a_wrong_word_fails_clearly_within_its_timeout() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    // The reference's status word on the menu dialect: no answer ends.
    let wrong_ok = altered(
        "wrong-ok",
        &[
            ("ok = '^Done\\.$'", "ok = '^OK$'"),
            ("command_ms = 5000", "command_ms = 500"),
        ],
    );
    let p = wrong_ok.to_string_lossy().to_string();
    let (records, printed, took) = run(
        "wrong-ok",
        &["--profile", &p, "--case", "delivery/recipients=three"],
    );
    let _ = std::fs::remove_file(&wrong_ok);
    assert_eq!(records.len(), 1, "{printed}");
    assert_eq!(records[0].verdict, Verdict::HarnessError, "{printed}");
    let e = records[0].harness_error.clone().unwrap_or_default();
    for want in [
        "the profile does not fit the device: reset:",
        "answered [\"Factory settings restored.\", \"Done.\"] and showed its prompt",
        "status.ok /^OK$/",
        "profile field status.ok / status.error",
    ] {
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    // A profile that does not fit is not retried: it would fail the same way.
    assert_eq!(records[0].attempts, 1, "{printed}");
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // The reference's recipient word: every recipient the server took reads as
    // refused, and the case fails saying so.
    let wrong_verdict = altered("wrong-verdict", &[("recipient_accepted = \"sent\"\n", "")]);
    let p = wrong_verdict.to_string_lossy().to_string();
    let (records, printed, _) = run(
        "wrong-verdict",
        &["--profile", &p, "--case", "delivery/recipients=three"],
    );
    let _ = std::fs::remove_file(&wrong_verdict);
    assert_eq!(records.len(), 1, "{printed}");
    assert_eq!(records[0].verdict, Verdict::Fail, "{printed}");
    assert!(
        records[0].mismatches.iter().any(|m| m
            .text
            .contains("the device reported a@hil.test rejected, the server accepted it")),
        "{:#?}",
        records[0].mismatches
    );
}

fn menu_profile() -> Arc<Profile> {
    Arc::new(Profile::load(&root().join(MENU)).expect("the menu profile"))
}

fn serial(path: &str) -> Endpoint {
    Endpoint::Serial {
        path: path.to_string(),
        line: hil::device::LineSettings::default(),
    }
}

#[test]
fn the_login_password_is_masked_in_the_console_log() {
    let sim = EmbeddedSim::spawn(
        Path::new(env!("CARGO_BIN_EXE_hil")),
        Some("sim"),
        &["--dialect".into(), "menu".into()],
        Duration::from_secs(10),
    )
    .expect("the simulated device");
    let mut con = Console::open(&serial(&sim.console_path), menu_profile()).expect("logged in");
    assert_eq!(
        con.get(hil_oracle::model::Key::SmtpTimeout).expect("get"),
        "60"
    );
    let log: Vec<String> = con
        .take_log()
        .iter()
        .map(|l| format!("{:?} {}", l.dir, l.text))
        .collect();
    for want in [
        "D login: ",
        "H service",
        "D Password: ",
        "H ***",
        "H 1.1 SMTP_TIMEOUT",
    ] {
        assert!(log.iter().any(|l| l == want), "{want:?} not in {log:#?}");
    }
    assert!(!log.iter().any(|l| l.contains(PASSWORD)), "{log:#?}");
    // A refused login is an error naming it, not a hang.
    let sim = EmbeddedSim::spawn(
        Path::new(env!("CARGO_BIN_EXE_hil")),
        Some("sim"),
        &[
            "--dialect".into(),
            "menu".into(),
            "--menu-login".into(),
            "tech:other".into(),
        ],
        Duration::from_secs(10),
    )
    .expect("the simulated device");
    let e = Console::open(&serial(&sim.console_path), menu_profile())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("refused the login as \"service\""), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
}

#[test]
fn a_serial_console_logged_in_already_is_used_as_it_is() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let sim = EmbeddedSim::spawn(
        Path::new(env!("CARGO_BIN_EXE_hil")),
        Some("sim"),
        &[
            "--dialect".into(),
            "menu".into(),
            "--time-scale".into(),
            "50".into(),
        ],
        Duration::from_secs(10),
    )
    .expect("the simulated device");
    let device = format!("serial:{}", sim.console_path);
    // The first run logs in; the second finds the session open (a serial console
    // keeps it) and goes on without a login.
    for n in 1..=2 {
        let (records, printed, _) = run(
            &format!("serial-{n}"),
            &[
                "--profile",
                MENU,
                "--device",
                &device,
                "--time-scale",
                "50",
                "--case",
                "delivery/recipients=three",
            ],
        );
        assert_eq!(records.len(), 1, "run {n}: {printed}");
        assert_eq!(records[0].verdict, Verdict::Pass, "run {n}: {printed}");
        assert!(!printed.contains(PASSWORD), "run {n}: {printed}");
    }
}
