//! Triage over real runs of the embedded simulated device with planted firmware
//! variants (issue 17): each variant's failures form one group whose explaining values
//! name the dimensions that trigger it, two variants at once give two groups that do
//! not mix; `--baseline` counts only new failures; `hil report --diff` lists exactly
//! the planted failures; every printed reproduce line reproduces its verdict.
//!
//! The runs take the `tls` and `auth_tls` sections (150 cases), where all four
//! variants show.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use hil::record::{self, Record, Verdict};
use hil::triage::triage;

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

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hil-triage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A run of the two sections with `extra` options; its records and what it printed.
fn run(name: &str, extra: &[&str]) -> (PathBuf, Vec<Record>, Output) {
    let d = dir(name);
    let ds = d.display().to_string();
    let mut args = vec![
        "run",
        "--section",
        "tls",
        "--section",
        "auth_tls",
        "--report",
        &ds,
    ];
    args.extend_from_slice(extra);
    let out = hil(&args);
    let records = record::read(&d.join("results.jsonl")).expect("results.jsonl");
    (d, records, out)
}

fn failing(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| r.id.clone())
        .collect()
}

/// Each variant: the signature of its one group and the dimensions whose values
/// explain it (each must be among the group's shared or top explaining values).
const VARIANTS: &[(&str, &str, &[&str])] = &[
    (
        "cn-only",
        "device_stopped:tls:cert_name",
        &["smtp.verify.cn"],
    ),
    (
        "soft-fail-revocation",
        "device_went_on:tls:cert_revocation_unknown",
        &["smtp.verify.revocation"],
    ),
    (
        "plaintext-after-starttls-failure",
        "device_went_on:starttls:starttls_unavailable",
        &["smtp.tls", "server.listener"],
    ),
    (
        "send-without-auth",
        "device_went_on:auth:auth_no_mechanism",
        &["smtp.auth.enabled"],
    ),
];

#[test]
fn each_planted_variant_is_one_group_explained_by_its_trigger_and_two_do_not_mix() {
    let mut alone: Vec<(&str, BTreeSet<String>)> = Vec::new();
    for (variant, key, dims) in VARIANTS {
        let (_, records, out) = run(variant, &["--plant", variant]);
        let printed = text(&out);
        let t = triage(&records);
        assert_eq!(t.groups.len(), 1, "{variant}: {printed}");
        let g = &t.groups[0];
        assert_eq!(&g.key, key, "{variant}");
        assert!(!g.cases.is_empty(), "{variant}: no failure");
        let named: Vec<&str> = g
            .shared
            .iter()
            .chain(&g.explained_by)
            .map(|e| e.dim.as_str())
            .collect();
        for d in *dims {
            assert!(named.contains(d), "{variant}: {d} not among {named:?}");
        }
        // The recap says it, with a reproduce line naming the plant.
        assert!(
            printed.contains(&format!(
                "1 cause:\n{:>5}  {}",
                g.cases.len(),
                g.signature.words()
            )),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("hil run --plant {variant} --case ")),
            "{printed}"
        );
        alone.push((variant, failing(&records)));
    }
    // Two variants at once: two groups, each exactly one variant's failures.
    let (a, b) = (&alone[0], &alone[2]);
    let (_, records, out) = run("two", &["--plant", a.0, "--plant", b.0]);
    let t = triage(&records);
    assert_eq!(t.groups.len(), 2, "{}", text(&out));
    for g in &t.groups {
        let ids: BTreeSet<String> = g.cases.iter().map(|&i| records[i].id.clone()).collect();
        assert!(
            ids == a.1 || ids == b.1,
            "group {} mixes causes: {ids:?}",
            g.key
        );
    }
}

#[test]
fn a_baseline_knows_its_own_failures_and_a_diff_lists_exactly_the_planted_ones() {
    let (clean, clean_records, out) = run("clean", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let cs = clean.display().to_string();
    // The same run against its own results: 0 new.
    let (_, _, out) = run("again", &["--baseline", &cs]);
    assert!(out.status.success(), "{}", text(&out));
    // A planted variant against the clean baseline: exactly its failures are new.
    let (planted, records, out) = run("planted", &["--plant", "cn-only", "--baseline", &cs]);
    let printed = text(&out);
    let planted_ids = failing(&records);
    assert!(!planted_ids.is_empty());
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!("{} failed\n", planted_ids.len())),
        "{printed}"
    );
    // The planted run as the baseline of another planted run: all known, exit 0.
    let ps = planted.display().to_string();
    let (again, _, out) = run("planted-again", &["--plant", "cn-only", "--baseline", &ps]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains(&format!(", 0 failed, {} known", planted_ids.len())),
        "{printed}"
    );
    let junit = std::fs::read_to_string(again.join("junit.xml")).expect("junit.xml");
    assert_eq!(
        junit
            .matches("<skipped message=\"known deviation: failed the same way in")
            .count(),
        planted_ids.len()
    );
    // Diffs: clean → planted lists the planted failures, clean → clean nothing.
    let diff_dir = dir("diff");
    let out = hil(&[
        "report",
        "--diff",
        &cs,
        &ps,
        "--out",
        &diff_dir.display().to_string(),
    ]);
    let printed = text(&out);
    let page = std::fs::read_to_string(diff_dir.join("diff.html")).expect("diff.html");
    assert!(
        page.contains(&format!("New failures ({})", planted_ids.len())),
        "{page}"
    );
    for id in &planted_ids {
        assert!(page.contains(id.as_str()), "{id} not in diff.html");
    }
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!("{} new failures in 1 group:", planted_ids.len())),
        "{printed}"
    );
    let listed: BTreeSet<String> = printed
        .lines()
        .filter_map(|l| {
            l.split_once(" --case ")
                .map(|(_, id)| id.trim().to_string())
        })
        .collect();
    assert_eq!(listed, planted_ids);
    let again_clean = run("clean-2", &[]).0;
    let out = hil(&["report", "--diff", &cs, &again_clean.display().to_string()]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("0 new failures in 0 groups\n0 fixed\n0 changed outcomes"),
        "{printed}"
    );
    assert!(!clean_records.is_empty());
}

/// Runs a printed reproduce line with a shell, `hil` being this build's binary.
fn shell(line: &str) -> Output {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let bin = Path::new(env!("CARGO_BIN_EXE_hil"))
        .parent()
        .expect("the binary's folder")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .current_dir(std::env::temp_dir())
        .env("PATH", path)
        .args(["-c", line])
        .output()
        .expect("run sh")
}

#[test]
fn every_printed_reproduce_line_reproduces_its_verdict() {
    // A copy of the scenario library elsewhere, a profile, a time scale and a plant:
    // each must be in the line for the verdict to come back.
    let scenarios = dir("scenarios");
    std::fs::create_dir_all(&scenarios).expect("mkdir");
    for e in std::fs::read_dir(root().join("scenarios")).expect("scenarios/") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), scenarios.join(e.file_name())).expect("copy");
    }
    let profile = root().join("fixtures/devices/sim.toml");
    let (s, p) = (
        scenarios.display().to_string(),
        profile.display().to_string(),
    );
    let d = dir("repro");
    let ds = d.display().to_string();
    let out = hil(&[
        "run",
        "--plant",
        "cn-only",
        "--profile",
        &p,
        "--time-scale",
        "40",
        "--scenarios",
        &s,
        "--section",
        "tls",
        "--filter",
        "smtp.verify.cn=on",
        "--report",
        &ds,
    ]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    let line = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("hil run ") && l.contains(" --case "))
        .expect("a reproduce line in the recap")
        .to_string();
    for want in [
        "--plant cn-only",
        "--time-scale 40",
        "--profile ",
        "--scenarios ",
    ] {
        assert!(line.contains(want), "{want} missing: {line}");
    }
    // The same line in report.html (escaped) and junit.xml.
    let html = std::fs::read_to_string(d.join("report.html")).expect("report.html");
    let esc = line
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(html.contains(&esc), "not in report.html: {line}");
    let junit = std::fs::read_to_string(d.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains(&format!("reproduce: {}", esc.replace('\'', "&apos;")))
            || junit.contains(&format!("reproduce: {esc}")),
        "not in junit.xml: {line}"
    );
    let again = shell(&line);
    let said = text(&again);
    assert_eq!(again.status.code(), Some(1), "{line}\n{said}");
    assert!(said.contains("0 passed, 1 failed"), "{line}\n{said}");
    // Without the plant the same case passes: the line carries what decides it.
    let without = line.replace("--plant cn-only ", "");
    let again = shell(&without);
    assert!(again.status.success(), "{without}\n{}", text(&again));
}

#[test]
fn no_rust_debug_text_reaches_any_output() {
    let (d, records, _) = run(
        "debug",
        &["--plant", "cn-only", "--plant", "send-without-auth"],
    );
    assert!(records.iter().any(|r| r.verdict == Verdict::Fail));
    for f in ["results.jsonl", "junit.xml", "report.html", "run.json"] {
        let t = std::fs::read_to_string(d.join(f)).expect(f);
        for bad in ["{ class:", "Some(", "None }", "Job("] {
            assert!(!t.contains(bad), "{f} holds {bad:?}");
        }
    }
}

/// Issue 18 item 6: `hil report --from` never drops data silently. A last line cut
/// short and NUL bytes at the end are skipped with a warning naming the file and the
/// line; a line that is not text is an error naming them.
#[test]
fn report_readers_say_what_they_skip_and_name_a_bad_line() {
    let dir = std::env::temp_dir().join(format!("hil-triage-readers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("results.jsonl");
    let mut whole = Vec::new();
    for id in ["delivery/a", "delivery/b"] {
        let r = record::Record {
            schema_version: record::SCHEMA_VERSION,
            id: id.into(),
            section: "delivery".into(),
            verdict: Verdict::Pass,
            ..record::Record::default()
        };
        record::append(&mut whole, &r).expect("a record");
    }
    let cut = [&whole[..], b"{\"id\":\"delivery/c\",\"verd", &[0u8; 64][..]].concat();
    std::fs::write(&file, cut).expect("write");
    let out_dir = dir.join("out");
    let o = hil(&[
        "report",
        "--from",
        &file.to_string_lossy(),
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("results.jsonl:3: skipped: 24 bytes of a record cut short"),
        "{t}"
    );
    assert!(
        t.contains("results.jsonl:3: skipped: 64 bytes of NUL bytes"),
        "{t}"
    );
    assert!(t.contains("2 cases: 2 passed"), "{t}");
    // A binary line between records: an error naming the file and the line.
    let bad = [&whole[..], b"\x00\xff\xfe binary\n", &whole[..]].concat();
    std::fs::write(&file, bad).expect("write");
    let o = hil(&[
        "report",
        "--from",
        &file.to_string_lossy(),
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("results.jsonl:3: not text (UTF-8)"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}
