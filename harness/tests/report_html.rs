//! The HTML report as a browser shows it: a failed case's id and transcript, and the
//! heat map drawn by the page's script. The browser test needs headless Chromium and
//! is ignored by default; `.ci/run` installs Chromium and runs it with `--ignored`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hil::outcome::{Ending, Mismatch, MismatchKind, Outcome};
use hil::record::{Line, Record, Scenario, Transcript, Verdict};
use hil::report::{write_all, RunMeta};

const FAILED_ID: &str = "tls/mode=starttls,auth=login";
const PLANTED: &str = "550 5.7.1 planted-transcript-line <&>";
const PLANTED_IN_DOM: &str = "550 5.7.1 planted-transcript-line &lt;&amp;&gt;";

fn record(mode: &str, auth: &str, verdict: Verdict) -> Record {
    let id = format!("tls/mode={mode},auth={auth}");
    let line = |ms: u64, dir: &str, text: &str| Line {
        ms,
        dir: dir.into(),
        text: text.into(),
    };
    let mut lines = vec![
        line(0, "server", "220 fake ESMTP"),
        line(2, "client", "EHLO mfp"),
    ];
    if id == FAILED_ID {
        lines.push(line(5, "server", PLANTED));
        lines.push(line(6, "client", "bad bytes \u{1}\u{7f}"));
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
        scenario: Scenario {
            text: "STARTTLS listener, certificate ok".into(),
            ..Scenario::default()
        },
        expected: Outcome::new(Ending::Delivered, None, "job done".into()),
        observed: if verdict == Verdict::Fail {
            Outcome::new(
                Ending::Failed,
                Some("auth_failed"),
                "job failed: auth_failed".into(),
            )
        } else {
            Outcome::new(Ending::Delivered, None, "job done".into())
        },
        mismatches: if verdict == Verdict::Fail {
            vec![Mismatch::new(
                MismatchKind::Outcome,
                "error class: expected none, got auth_failed".into(),
            )]
        } else {
            vec![]
        },
        harness_error: None,
        crash: None,
        findings: vec![],
        latitude: vec![],
        transcripts: vec![Transcript {
            server: "smtp".into(),
            listener: mode.into(),
            lines,
            fired: vec![],
        }],
        console: vec![line(1, "harness", "reset"), line(3, "device", "OK")],
        attempts: 1,
        millis: 420,
        micros: 420_000,
        ..Record::default()
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
        ..RunMeta::default()
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
    chromium(page, profile, &["--dump-dom"])
}

/// Runs headless Chromium with `args` on the page; its standard output.
fn chromium(page: &Path, profile: &Path, args: &[&str]) -> String {
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
            .args(args)
            .arg(&url)
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

/// A run whose ids are long (300 characters, no space), in several groups and
/// findings, with many cases per list.
fn long_id_report(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hil-report-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut records = Vec::new();
    for i in 0..60 {
        let long = format!("{i}-{}", "x".repeat(300));
        let mode = if i % 3 == 0 { "starttls" } else { "smtps" };
        let mut r = record(
            mode,
            &long,
            if i % 2 == 0 {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
        );
        r.id = format!("tls/mode={mode},auth={long}");
        if i % 4 == 0 {
            r.verdict = Verdict::Fail;
            r.observed = Outcome::new(Ending::Failed, Some("cert_name"), "job failed".into());
        }
        if i % 5 == 0 {
            r.findings = vec![format!("credentials over plaintext {}", "y".repeat(200))];
        }
        r.signature = hil::triage::Signature::of(&r).map(|s| s.key());
        records.push(r);
    }
    let meta = RunMeta {
        command: format!("hil run --report {}", "z".repeat(400)),
        device: "sim".into(),
        rerun: vec![
            "hil".into(),
            "run".into(),
            "--profile".into(),
            "/p".repeat(100),
        ],
        ..RunMeta::default()
    };
    write_all(&dir, &records, &meta).unwrap();
    dir
}

/// Opens every `<details>`, then counts list items and table cells that overflow
/// their box or overlap a sibling; the counts go to `<body data-overlaps>`.
const OVERLAP_CHECK: &str = r#"<script>
(function(){
  document.querySelectorAll('details').forEach(function(d){ d.open = true; });
  var bad = [];
  var boxes = document.querySelectorAll('li, td, th, h3, dd, p');
  boxes.forEach(function(e){
    if (e.closest('table.heat') || e.closest('pre')) return;
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline') {
      bad.push('overflow:' + e.tagName + ':' + e.textContent.slice(0, 40));
    }
  });
  document.querySelectorAll('ul, ol').forEach(function(list){
    var items = [].filter.call(list.children, function(c){ return c.tagName === 'LI'; });
    var rects = items.map(function(c){ return c.getBoundingClientRect(); });
    for (var i = 0; i < rects.length; i++) for (var j = i + 1; j < rects.length; j++) {
      var a = rects[i], b = rects[j];
      if (a.width && b.width && a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
        bad.push('overlap:' + items[i].textContent.slice(0, 30) + ' / ' + items[j].textContent.slice(0, 30));
      }
    }
  });
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    bad.push('page wider than the window: ' + document.documentElement.scrollWidth);
  }
  document.body.setAttribute('data-overlaps', String(bad.length));
  document.body.setAttribute('data-overlap-what', bad.slice(0, 5).join(' | '));
})();
</script>"#;

#[test]
#[ignore = "needs headless Chromium; .ci/run installs it and runs it"]
fn chromium_lays_out_long_ids_without_overlap_and_takes_a_screenshot() {
    let dir = long_id_report("long");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let checked = dir.join("checked.html");
    std::fs::write(
        &checked,
        html.replace("</body>", &format!("{OVERLAP_CHECK}</body>")),
    )
    .unwrap();
    let dom = dump_dom(&checked, &dir.join("chromium-profile"));
    let at = dom.find("data-overlaps=\"").expect("the check did not run");
    let n: String = dom[at + 15..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let what = dom
        .find("data-overlap-what=\"")
        .map(|i| dom[i..].chars().take(400).collect::<String>())
        .unwrap_or_default();
    assert_eq!(n, "0", "boxes overflow or overlap: {what}");
    // A screenshot for a person to look at (kept beside the report).
    let shot = dir.join("report.png");
    chromium(
        &dir.join("report.html"),
        &dir.join("chromium-profile"),
        &[
            "--hide-scrollbars",
            "--window-size=1280,3000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
