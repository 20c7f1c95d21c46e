//! Device profiles that describe a firmware: `hil profile check`, and a profile whose
//! ranges and AUTH mechanisms differ from the simulated device's making exactly the
//! cases that depend on them fail on the sim, and no other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hil::device::Profile;
use hil::record::Verdict;
use hil::runner::{case_settings, Ports};
use hil_oracle::matrix::Matrix;
use hil_oracle::model::{DeviceFacts, Key};
use hil_oracle::oracle::{predict_pairs, Expected};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sim_toml() -> String {
    std::fs::read_to_string(root().join("fixtures/devices/sim.toml")).expect("sim.toml")
}

/// A profile of a firmware whose timeout range is 10–600 s and which does not
/// implement XOAUTH2 (the simulated device: 30–300 s, XOAUTH2 implemented).
fn other_firmware() -> String {
    sim_toml()
        .replace("smtp.timeout = [30, 300]", "smtp.timeout = [10, 600]")
        // A job may now wait 600 s (+ 60 s POP before SMTP).
        .replace("job_ms = 400000", "job_ms = 700000")
        .replace(
            "auth_mechanisms = [\"xoauth2\", \"digest-md5\"",
            "auth_mechanisms = [\"digest-md5\"",
        )
}

/// A scratch folder of one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hil-profile-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["profile", "check"])
        .arg(path)
        .output()
        .expect("hil profile check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn profile_check_passes_a_valid_profile_and_summarises_it() {
    let (code, out, err) = check(&root().join("fixtures/devices/sim.toml"));
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "a valid profile",
        "name: mfp-sim",
        "scan_as_user",
        "variants: none",
        "smtp.timeout",
        "30 to 300 (SPEC's)",
        "auth mechanisms: xoauth2, digest-md5, cram-md5, login, plain",
        "default smtp.auth.methods: digest-md5,cram-md5,login,plain",
        "login: none",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let scratch = Scratch::new("valid");
    let p = scratch.path("other.toml");
    std::fs::write(&p, other_firmware()).expect("write");
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("10 to 600 (the firmware's)"), "{out}");
    assert!(
        out.contains("auth mechanisms: digest-md5, cram-md5, login, plain"),
        "{out}"
    );
}

#[test]
fn the_menu_dialects_profile_is_valid() {
    let (code, out, err) = check(&root().join("fixtures/devices/sim-menu.toml"));
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "a valid profile",
        "name: mfp-sim-menu",
        "get           \"1.1 {key}\"",
        "embedded simulated device started with: --dialect menu",
        "login: as \"service\" (password ***)",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    assert!(!out.contains("mfp-4000"), "the password in\n{out}");
}

#[test]
fn profile_check_names_what_is_wrong_where() {
    let scratch = Scratch::new("broken");
    let temp = |name: &str| scratch.path(name);
    let base = sim_toml();
    let broken: &[(&str, String, &[&str])] = &[
        (
            "missing-operation",
            base.replace("job = \"job {id}\"\n", ""),
            &["[commands] has no template for the operation \"job\""],
        ),
        (
            "pattern-without-group",
            base.replace("'^EVENT JOB (?<id>\\d+) done$'", "'^EVENT JOB \\d+ done$'"),
            &["events.job_done", "(?<id>...)"],
        ),
        (
            "range-outside-type",
            base.replace(
                "load.server_capacity = [1, 102400]",
                "load.server_capacity = [0, 102400]",
            ),
            &["[ranges] load.server_capacity", "outside the type"],
        ),
        (
            "unknown-mechanism",
            base.replace(
                "\"login\", \"plain\"]\n# The factory",
                "\"login\", \"scram-sha-1\"]\n# The factory",
            ),
            &["auth_mechanisms", "\"scram-sha-1\""],
        ),
        (
            "unknown-variant",
            base.replace("variants = []", "variants = [\"cn_only\"]"),
            &["variants", "\"cn_only\"", "cn-only"],
        ),
        (
            "empty-recipient-word",
            base.replace(
                "recipient = '^RCPT",
                "recipient_accepted = \"\"\nrecipient = '^RCPT",
            ),
            &["answers.recipient_accepted", "not empty"],
        ),
        (
            "sim-args-the-harness-sets",
            base.replace(
                "variants = []",
                "variants = []\nsim_args = [\"--dialect\", \"menu\", \"--console\", \"stdio\"]",
            ),
            &[
                "sim_args[2] = \"--console\"",
                "the harness sets --console itself",
            ],
        ),
        (
            "template-missing-parameter",
            base.replace(
                "scan send {to} {size_kb} {user}",
                "scan send {to} {size_kb}",
            ),
            &["[commands] scan_as_user", "{user}"],
        ),
    ];
    for (name, text, want) in broken {
        assert_ne!(text, &base, "{name}: the test's replacement did not apply");
        let p = temp(&format!("{name}.toml"));
        std::fs::write(&p, text).expect("write");
        let (code, out, err) = check(&p);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let file = p.display().to_string();
        assert!(err.contains(&file), "{name}: the file is not named:\n{err}");
        for w in *want {
            assert!(err.contains(w), "{name}: {w:?} not in\n{err}");
        }
        assert!(err.contains("not a valid profile"), "{name}: {err}");
    }
    // Several problems in one file: each is named.
    let text = base
        .replace("job = \"job {id}\"\n", "")
        .replace("variants = []", "variants = [\"cn_only\"]")
        .replace("smtp.timeout = [30, 300]", "smtp.timeout = [30, 100000]");
    let p = temp("several.toml");
    std::fs::write(&p, text).expect("write");
    let (code, _, err) = check(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("(3 problems)"), "{err}");
    // Not TOML: named, 1; unreadable: 2.
    let p = temp("not-toml.toml");
    std::fs::write(&p, "name = \n").expect("write");
    let (code, _, err) = check(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not-toml.toml"), "{err}");
    let (code, _, err) = check(&temp("does-not-exist.toml"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

fn model(facts: &DeviceFacts) -> Matrix {
    Matrix::build(&root().join("certs"), &root().join("scenarios"), facts).expect("model")
}

#[test]
fn a_firmwares_facts_change_the_matrix_and_the_oracle() {
    let facts = Profile::parse("other.toml", &other_firmware())
        .expect("valid")
        .facts;
    let spec = model(&DeviceFacts::default());
    let other = model(&facts);
    let ids = |m: &Matrix| -> BTreeSet<String> { m.exhaustive().iter().map(|r| m.id(r)).collect() };
    let (a, b) = (ids(&spec), ids(&other));
    let gone: Vec<_> = a.difference(&b).collect();
    let new: Vec<_> = b.difference(&a).collect();
    assert!(
        gone.iter()
            .all(|i| i.contains("smtp.timeout=") || i.contains("xoauth2")),
        "only the timeout's values and xoauth2 differ: {gone:#?}"
    );
    assert!(
        new.iter().any(|i| i.ends_with("smtp.timeout=10")),
        "{new:#?}"
    );
    assert!(
        new.iter().any(|i| i.ends_with("smtp.timeout=600")),
        "{new:#?}"
    );
    assert!(b.contains("invalid/smtp.timeout=9") && b.contains("invalid/smtp.timeout=601"));
    assert!(b.contains("invalid/smtp.auth.methods=xoauth2"));
    assert!(!b
        .iter()
        .any(|i| i.starts_with("auth/") && i.contains("methods=xoauth2")));
    // The oracle follows the facts: 10 s is accepted by this firmware, refused by SPEC's.
    let row = other
        .parse_id("invalid/smtp.timeout=9")
        .expect("an id of the model");
    let mut case = other.case(&row);
    case.settings = vec![(Key::SmtpTimeout, "10".into())];
    let pairs = case_settings(&case, "127.0.0.1", Ports::NOMINAL);
    let on_spec = predict_pairs(&case, &pairs, &DeviceFacts::default()).expect("predictable");
    let on_other = predict_pairs(&case, &pairs, &facts).expect("predictable");
    assert!(
        matches!(&on_spec.outcome, Expected::SettingsRefused { key } if *key == Key::SmtpTimeout),
        "{:?}",
        on_spec.outcome
    );
    assert!(
        !matches!(on_other.outcome, Expected::SettingsRefused { .. }),
        "{:?}",
        on_other.outcome
    );
    case.settings = vec![(Key::SmtpAuthMethods, "xoauth2".into())];
    let pairs = case_settings(&case, "127.0.0.1", Ports::NOMINAL);
    let on_other = predict_pairs(&case, &pairs, &facts).expect("predictable");
    assert!(
        matches!(&on_other.outcome, Expected::SettingsRefused { key } if *key == Key::SmtpAuthMethods),
        "{:?}",
        on_other.outcome
    );
}

/// The cases of the profile's exhaustive matrix containing `filter`, and those whose
/// prediction for the profile's firmware differs from the simulated device's (SPEC's
/// facts): what must fail on the sim.
fn affected(facts: &DeviceFacts, filter: &str) -> (usize, BTreeSet<String>) {
    let m = model(facts);
    let mut n = 0;
    let mut ids = BTreeSet::new();
    for row in m.exhaustive() {
        let case = m.case(&row);
        if !case.id.contains(filter) {
            continue;
        }
        assert!(
            case.cert.is_none(),
            "{}: a TLS case (the test avoids them)",
            case.id
        );
        n += 1;
        let pairs = case_settings(&case, "127.0.0.1", Ports::NOMINAL);
        let sim = predict_pairs(&case, &pairs, &DeviceFacts::default()).expect("predictable");
        let prof = predict_pairs(&case, &pairs, facts).expect("predictable");
        if sim.outcome != prof.outcome {
            ids.insert(case.id.clone());
        }
    }
    (n, ids)
}

fn run_on_sim(scratch: &Scratch, profile: &Path, filter: &str) -> (usize, BTreeSet<String>) {
    let dir = scratch.path(&format!("run-{}", filter.replace('/', "_")));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(["run", "--filter", filter, "--jobs", "2", "--profile"])
        .arg(profile)
        .arg("--report")
        .arg(&dir)
        .output()
        .expect("hil run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let records = hil::record::read(&dir.join("results.jsonl"))
        .unwrap_or_else(|e| panic!("results: {e}\n{stdout}\n{stderr}"));
    assert!(
        records.iter().all(|r| r.verdict != Verdict::HarnessError),
        "harness errors:\n{stdout}"
    );
    let failed = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.id.clone())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (records.len(), failed)
}

/// The simulated device's ranges and mechanisms are SPEC's. A profile saying
/// `smtp.timeout = [10, 600]` and no XOAUTH2 makes the oracle expect 10 and 600
/// accepted and `xoauth2` refused: the sim disagrees, and exactly those cases fail;
/// the rest pass. (No TLS case: no OCSP responder is started. The `timeouts/` section
/// also has TLS scenarios, so only its plaintext `hang-*` faults run: every one sets 10
/// or 600 and fails; `invalid/` and `delivery/` show the rest passing.)
#[test]
fn a_profile_unlike_the_sim_fails_exactly_the_cases_its_facts_change() {
    let scratch = Scratch::new("on-sim");
    let p = scratch.path("other-firmware.toml");
    std::fs::write(&p, other_firmware()).expect("write");
    let facts = Profile::load(&p).expect("valid").facts;
    let runs: &[(&str, &[&str])] = &[
        (
            "timeouts/server.fault=hang-",
            &["smtp.timeout=10", "smtp.timeout=600"],
        ),
        ("invalid/", &["invalid/smtp.auth.methods=xoauth2"]),
        ("delivery/", &[]),
    ];
    let mut total = (0, 0);
    for (filter, must) in runs {
        let (n, want) = affected(&facts, filter);
        assert!(n > 0, "no case of {filter}");
        for m in *must {
            assert!(
                want.iter().any(|i| i.contains(m)),
                "{m} not affected: {want:#?}"
            );
        }
        let (ran, failed) = run_on_sim(&scratch, &p, filter);
        assert_eq!(ran, n, "every selected case ran");
        let missed: Vec<_> = want.difference(&failed).collect();
        let extra: Vec<_> = failed.difference(&want).collect();
        assert!(
            missed.is_empty() && extra.is_empty(),
            "{filter}: {} affected, {} failed\nnot caught: {missed:#?}\nfailed but unaffected: {extra:#?}",
            want.len(),
            failed.len()
        );
        total = (total.0 + n, total.1 + want.len());
    }
    // The affected cases are few among those run.
    assert!(total.1 > 0 && total.1 * 10 < total.0, "{total:?}");
}
