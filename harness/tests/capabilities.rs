//! A firmware that lacks features (issue 16 item 1): the simulated device started
//! `--without` POP before SMTP, load reduction and revocation checking, and a profile
//! that says so (`unsupported`). The pairwise run has no case that fails only because
//! of a missing feature, each unsupported value is tested once, as a refusal, and the
//! run reports every testable pair covered (issue 16 item 2) and how many cases
//! reached the fake SMTP server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use hil::record::{self, Verdict};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One `hil run` at a time: each starts many simulated devices, and the
/// machine may have two cores only.
static ONE: Mutex<()> = Mutex::new(());

fn hil(args: &[&str]) -> Output {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run hil")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The reference profile of a firmware lacking `features` (the embedded sim is
/// started `--without` each of them).
fn lacking(name: &str, features: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(root().join("fixtures/devices/sim.toml")).expect("sim.toml");
    let list: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    let text = text.replacen(
        "variants = []",
        &format!("variants = []\nunsupported = [{}]", list.join(", ")),
        1,
    );
    let p = std::env::temp_dir().join(format!(
        "hil-capabilities-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&p, text).expect("write the profile");
    p
}

const LACKS: &[&str] = &["pop-before-smtp", "load-reduction", "check-revocation"];

/// The values a firmware lacking [`LACKS`] must refuse, as case id parts.
const REFUSED: &[&str] = &[
    "pop_before_smtp.enabled=on",
    "load.mode=split",
    "load.mode=abort_over_limit",
    "load.mode=url_over_limit",
    "load.mode=url_always",
    "smtp.verify.revocation=on",
];

#[test]
fn a_pairwise_run_on_a_firmware_lacking_features_tests_them_only_as_refusals() {
    let p = lacking("pairwise", LACKS);
    let ps = p.to_string_lossy().to_string();
    let dir = std::env::temp_dir().join(format!("hil-capabilities-{}-run", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = hil(&[
        "run",
        "--matrix",
        "pairwise",
        "--profile",
        &ps,
        "--report",
        &dir.to_string_lossy(),
    ]);
    let printed = text(&out);
    let records = record::read(&dir.join("results.jsonl")).expect("results");
    // The report states what the array covers and how many cases reached the server.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&p);
    assert!(
        html.contains("testable pairs") && html.contains("cases reached the fake SMTP server"),
        "report.html says nothing of the coverage"
    );
    assert!(
        printed.contains("the firmware lacks pop-before-smtp, load-reduction, check-revocation"),
        "{printed}"
    );
    // Masking-aware: every testable pair covered (the oracle's tests check it pair by
    // pair), and the run says so, and how many cases reached the server.
    let figures = printed
        .lines()
        .find_map(|l| l.strip_prefix("hil: testable pairs: "))
        .unwrap_or_else(|| panic!("no coverage figures: {printed}"));
    let testable = figures.split(' ').next().expect("a count");
    assert!(
        figures.contains(&format!("; covered: {testable} ")),
        "{figures}"
    );
    assert!(!printed.contains("undecided"), "{printed}");
    let reached = printed
        .lines()
        .find(|l| l.contains("cases reached the fake SMTP server"))
        .unwrap_or_else(|| panic!("no reach line: {printed}"));
    assert!(reached.starts_with("hil: "), "{reached}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{printed}");
    // No case fails: none sets a value the firmware lacks except the refusal cases.
    let bad: Vec<(&str, Verdict)> = records
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| (r.id.as_str(), r.verdict))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{printed}");
    // Each unsupported value: one case, which expects and sees the refusal.
    for v in REFUSED {
        let with: Vec<&str> = records
            .iter()
            .filter(|r| r.id.split(['/', ',']).any(|part| part == *v))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(with.len(), 1, "{v}: {with:?}");
        let r = records.iter().find(|r| r.id == with[0]).expect("record");
        assert!(
            r.expected.ending == hil::outcome::Ending::SettingsRefused,
            "{v}: {}",
            r.expected.text
        );
    }
}

#[test]
fn a_profile_that_does_not_declare_a_missing_feature_fails_its_cases() {
    // The same firmware, but the profile says nothing of POP before SMTP: its POP
    // cases fail at the refused apply (the device is right, the profile is not).
    let p = lacking("undeclared", &["load-reduction"]);
    let profile = std::fs::read_to_string(&p).expect("profile").replacen(
        "variants = []",
        "variants = []\nsim_args = [\"--without\", \"pop-before-smtp\"]",
        1,
    );
    std::fs::write(&p, profile).expect("write");
    let ps = p.to_string_lossy().to_string();
    let dir = std::env::temp_dir().join(format!(
        "hil-capabilities-{}-undeclared",
        std::process::id()
    ));
    let out = hil(&[
        "run",
        "--profile",
        &ps,
        "--filter",
        "pop/",
        "--jobs",
        "4",
        "--report",
        &dir.to_string_lossy(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&p);
    let printed = text(&out);
    assert!(
        printed.contains("the device refused the case's settings")
            && printed.contains("not supported by this firmware"),
        "{printed}"
    );
}

/// Runs the `tls` section through `profile`; answers the ids that did not pass.
fn tls_failures(profile: &Path, name: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("hil-capabilities-{}-{name}", std::process::id()));
    let _ = hil(&[
        "run",
        "--profile",
        &profile.to_string_lossy(),
        "--section",
        "tls",
        "--report",
        &dir.to_string_lossy(),
    ]);
    let records = record::read(&dir.join("results.jsonl")).expect("results");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(records.len() > 50, "{} records", records.len());
    records
        .into_iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| r.id)
        .collect()
}

#[test]
fn a_firmware_that_checks_revocation_by_ocsp_only_is_judged_so() {
    // Declared: the oracle expects no CRL fallback, and the sim has none.
    let p = lacking("ocsp-only", &["crl"]);
    assert!(tls_failures(&p, "ocsp-only").is_empty());
    let _ = std::fs::remove_file(&p);
    // Undeclared: a certificate revoked only in the CRL is not found revoked, and
    // the cases that show it fail.
    let p = lacking("undeclared-crl", &[]);
    let text = std::fs::read_to_string(&p).expect("profile").replacen(
        "variants = []",
        "variants = []\nsim_args = [\"--without\", \"crl\"]",
        1,
    );
    std::fs::write(&p, text).expect("write");
    let bad = tls_failures(&p, "undeclared-crl");
    let _ = std::fs::remove_file(&p);
    assert!(
        !bad.is_empty() && bad.iter().all(|id| id.contains("server.cert=revoked_crl")),
        "{bad:#?}"
    );
}

#[test]
fn a_firmware_without_ipv6_is_not_told_an_ipv6_server() {
    let p = lacking("no-ipv6", &["ipv6"]);
    let ps = p.to_string_lossy().to_string();
    let out = hil(&[
        "run",
        "--profile",
        &ps,
        "--bind",
        "::1",
        "--case",
        "delivery/base",
    ]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("lacks ipv6") && printed.contains("--bind"),
        "{printed}"
    );
    // On IPv4 the same firmware runs its cases.
    let out = hil(&["run", "--profile", &ps, "--case", "delivery/base"]);
    let _ = std::fs::remove_file(&p);
    assert!(text(&out).contains("1 passed, 0 failed"), "{}", text(&out));
}

#[test]
fn a_firmware_with_one_switch_for_every_certificate_check_is_judged_so() {
    // Declared: the matrix sets the five checks alike, following smtp.verify.expiry.
    let p = lacking("one-switch", &["separate-cert-checks"]);
    assert!(tls_failures(&p, "one-switch").is_empty());
    let ps = p.to_string_lossy().to_string();
    let ids = text(&hil(&[
        "run",
        "--list",
        "--section",
        "tls",
        "--profile",
        &ps,
    ]));
    let _ = std::fs::remove_file(&p);
    assert!(
        !ids.contains("smtp.verify.cn=on") && !ids.contains("smtp.verify.chain=on"),
        "the checks other than expiry vary: {ids}"
    );
    // Undeclared on such a firmware: setting one check sets them all, and the cases
    // that set one check alone fail.
    let p = lacking("undeclared-one-switch", &[]);
    let profile = std::fs::read_to_string(&p).expect("profile").replacen(
        "variants = []",
        "variants = []\nsim_args = [\"--without\", \"separate-cert-checks\"]",
        1,
    );
    std::fs::write(&p, profile).expect("write");
    let bad = tls_failures(&p, "undeclared-one-switch");
    let _ = std::fs::remove_file(&p);
    assert!(!bad.is_empty(), "no case showed the single switch");
}
