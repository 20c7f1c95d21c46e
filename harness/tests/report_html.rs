//! The HTML report as a browser shows it: a failed case's id and transcript, and the
//! heat map drawn by the page's script. The browser test needs headless Chromium and
//! is ignored by default; `.ci/run` installs Chromium and runs it with `--ignored`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hil::record::{Record, Transcript, Verdict};
use hil::report::{write_all, RunMeta};

const FAILED_ID: &str = "tls/mode=starttls,auth=login";
const PLANTED: &str = "550 5.7.1 planted-transcript-line <&>";
const PLANTED_IN_DOM: &str = "550 5.7.1 planted-transcript-line &lt;&amp;&gt;";

fn record(mode: &str, auth: &str, verdict: Verdict) -> Record {
    let id = format!("tls/mode={mode},auth={auth}");
    let mut lines = vec![
        "     0ms S: 220 fake ESMTP".to_string(),
        "     2ms C: EHLO mfp".to_string(),
    ];
    if id == FAILED_ID {
        lines.push(format!("     5ms S: {PLANTED}"));
        lines.push("     6ms C: bad bytes \u{1}\u{7f}".to_string());
    }
    Record {
        id,
        verdict,
        section: "tls".into(),
        dims: BTreeMap::from([
            ("mode".to_string(), mode.to_string()),
            ("auth".to_string(), auth.to_string()),
        ]),
        settings: vec![
            ("smtp.tls".into(), mode.into()),
            ("smtp.auth".into(), auth.into()),
            ("smtp.password".into(), "***".into()),
        ],
        scenario: "STARTTLS listener, certificate ok".into(),
        expected: "job done".into(),
        observed: if verdict == Verdict::Fail {
            "job failed: auth_failed".into()
        } else {
            "job done".into()
        },
        mismatches: if verdict == Verdict::Fail {
            vec!["error class: expected none, got auth_failed".into()]
        } else {
            vec![]
        },
        harness_error: None,
        crash: None,
        findings: vec![],
        transcripts: vec![Transcript {
            server: "smtp".into(),
            listener: mode.into(),
            lines,
        }],
        console: vec!["     1ms > reset".into(), "     3ms < OK".into()],
        attempts: 1,
        millis: 420,
        micros: 420_000,
        evidence: None,
    }
}

/// A report with one failing case among passing ones, in a fresh directory.
fn write_report(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hil-report-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut records = Vec::new();
    for mode in ["none", "starttls", "smtps"] {
        for auth in ["plain", "login"] {
            let id = format!("tls/mode={mode},auth={auth}");
            let v = if id == FAILED_ID {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            records.push(record(mode, auth, v));
        }
    }
    let meta = RunMeta {
        command: "hil run --report out".into(),
        device: "sim".into(),
        started: "2025-01-01T10:00:00Z".into(),
        finished: "2025-01-01T10:01:00Z".into(),
        duration_s: 60.0,
        shard: None,
        inputs: vec![],
        coverage: vec![],
    };
    write_all(&dir, &records, &meta).unwrap();
    dir
}

#[test]
fn the_html_holds_the_transcript_and_fetches_nothing() {
    let dir = write_report("text");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(FAILED_ID));
    assert!(html.contains(PLANTED_IN_DOM), "transcript line missing");
    assert!(!html.contains(PLANTED), "transcript line not escaped");
    assert!(html.contains("bad bytes \\x01\\x7F"));
    assert!(html.contains("hil run --case tls/mode=starttls,auth=login"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(
            !html.contains(external),
            "report.html is not self-contained: {external}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs headless Chromium on the page and returns the DOM it ends with.
fn dump_dom(page: &Path, profile: &Path) -> String {
    let url = format!("file://{}", page.display());
    let mut tried = Vec::new();
    for bin in ["chromium", "chromium-browser", "google-chrome"] {
        let child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--dump-dom", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tried.push(format!("{bin}: {e}"));
                continue;
            }
        };
        // Read stdout on a thread so a full pipe cannot stall the browser.
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{bin} --dump-dom did not finish in 120 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let dom = reader.join().unwrap().unwrap();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert!(status.success(), "{bin} failed ({status}): {err}");
        return dom;
    }
    panic!(
        "no headless Chromium to run (tried {}); install it (apt-get install chromium)",
        tried.join("; ")
    );
}

#[test]
#[ignore = "needs headless Chromium; .ci/run installs it and runs it"]
fn chromium_shows_the_failed_case_and_the_heat_map() {
    let dir = write_report("dom");
    let dom = dump_dom(&dir.join("report.html"), &dir.join("chromium-profile"));
    assert!(dom.contains(FAILED_ID), "failed case id not in the DOM");
    assert!(
        dom.contains(PLANTED_IN_DOM),
        "transcript line not in the DOM"
    );
    // The heat map as the page's script drew it: mode x auth, the failing cell 1/1.
    assert!(
        dom.contains("data-by=\"script\""),
        "the page's script did not run"
    );
    let grid = &dom[dom.find("id=\"heat-grid\"").expect("no heat map")..];
    let grid = &grid[..grid.find("</div>").expect("heat map not closed")];
    assert!(grid.contains("<table class=\"heat\">"), "{grid}");
    assert!(grid.contains(">1/1</td>"), "{grid}");
    assert!(grid.contains(">0/1</td>"), "{grid}");
    assert!(
        grid.contains(">starttls</th>") && grid.contains(">login</th>"),
        "{grid}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
