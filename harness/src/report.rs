//! The reports of a matrix run, rendered from its records (`record.rs`): `junit.xml`
//! for CI, `report.html` for a person (one self-contained file: summary, failures with
//! everything they saw, passing cases, a heat map of failures over pairs of matrix
//! dimensions) and `run.json` (the run's [`RunMeta`]). `results.jsonl` is the runner's;
//! [`merge`] joins the `results.jsonl` of several shards into one report.
//!
//! Everything taken from a record is escaped for where it goes; characters that XML 1.0
//! forbids (and CR, DEL and C1 controls, so that a broken device's bytes stay visible)
//! are written as `\xNN` text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::{Record, Verdict};
use crate::triage::{Signature, Triage};

/// What a report says about the run itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    /// The command line of the run.
    pub command: String,
    /// The device (`sim`, `serial:/dev/ttyUSB0,115200`, `tcp:HOST:PORT`).
    pub device: String,
    /// When the run started, RFC 3339 in UTC (see [`now_utc`]).
    pub started: String,
    /// When the run ended, RFC 3339 in UTC.
    pub finished: String,
    /// Wall time of the run in seconds; for a merge, the sum over its inputs.
    pub duration_s: f64,
    /// `K/N` for a `--shard K/N` run.
    pub shard: Option<String>,
    /// For a merge: the inputs it joined.
    pub inputs: Vec<String>,
    /// What a covering array covers (testable and covered tuples), for a run of one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<String>,
    /// The words of `hil run` with every option that decides a case's verdict
    /// (device, profile, plants, matrix, zoo, scenarios, addresses, time scale):
    /// `--case ID` after them reproduces one case ([`reproduce`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rerun: Vec<String>,
    /// The hil that ran: its version and the commit it was built from.
    #[serde(default)]
    pub hil_version: String,
    #[serde(default)]
    pub hil_commit: String,
    /// The device profile (its file, or `built-in`) and the SHA-256 of its text.
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub profile_sha256: String,
    /// SHA-256 over the certificate zoo's and the scenario library's files (names and
    /// bytes): two runs with equal digests had the same servers.
    #[serde(default)]
    pub certs_sha256: String,
    #[serde(default)]
    pub scenarios_sha256: String,
    /// What the device said of itself (the profile's `identify`: firmware, serial).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_identity: Vec<String>,
    /// What `--baseline` says of the run: its known failures and the fixed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::baseline::BaselineReport>,
}

impl RunMeta {
    /// Why a case's failure is known, when the run's baseline knows it.
    pub fn known(&self, id: &str) -> Option<&str> {
        self.baseline.as_ref().and_then(|b| b.knows(id))
    }
}

/// The SHA-256 of some bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 over a folder's files (relative names and bytes, in name order, sub-
/// folders included); `unreadable: …` when it cannot be read.
pub fn dir_sha256(dir: &Path) -> String {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                out.push((rel, p));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    if let Err(e) = walk(dir, dir, &mut files) {
        return format!("unreadable: {e}");
    }
    files.sort();
    let mut all = Vec::new();
    for (rel, p) in files {
        all.extend_from_slice(rel.as_bytes());
        all.push(0);
        match std::fs::read(&p) {
            Ok(b) => {
                all.extend_from_slice(&(b.len() as u64).to_le_bytes());
                all.extend_from_slice(&b);
            }
            Err(e) => return format!("unreadable: {}: {e}", p.display()),
        }
    }
    sha256_hex(&all)
}

/// This hil's version and the commit it was built from (`unknown` outside a git checkout).
pub fn hil_build() -> (String, String) {
    (
        env!("CARGO_PKG_VERSION").to_string(),
        option_env!("HIL_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
    )
}

/// The command line that re-runs the case `id` of a run: the run's [`RunMeta::rerun`]
/// and `--case ID`, each word quoted for a POSIX shell. Every reproduce line a
/// report, the recap or `hil fuzz` prints comes from here.
pub fn reproduce(meta: &RunMeta, id: &str) -> String {
    let mut words: Vec<String> = if meta.rerun.is_empty() {
        vec!["hil".into(), "run".into()]
    } else {
        meta.rerun.clone()
    };
    words.push("--case".into());
    words.push(id.to_string());
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The time now as RFC 3339 in UTC, whole seconds (`2025-01-31T12:00:00Z`): the form
/// [`RunMeta::started`] and [`RunMeta::finished`] take, so that [`merge`] can order them.
pub fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How many cases ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub cases: usize,
    pub passed: usize,
    pub failed: usize,
    pub harness_errors: usize,
    /// Cases during which the device crashed, rebooted or hung.
    pub crashes: usize,
}

impl Counts {
    pub fn of(records: &[Record]) -> Counts {
        let mut c = Counts {
            cases: records.len(),
            ..Counts::default()
        };
        for r in records {
            match r.verdict {
                Verdict::Pass => c.passed += 1,
                Verdict::Fail => c.failed += 1,
                Verdict::HarnessError => c.harness_errors += 1,
                Verdict::Crash => c.crashes += 1,
            }
        }
        c
    }

    /// `N cases: P passed, F failed, E harness errors`, and `, C device crashes`
    /// when there were any.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} cases: {} passed, {} failed, {} harness errors",
            self.cases, self.passed, self.failed, self.harness_errors
        );
        if self.crashes > 0 {
            s.push_str(&format!(", {} device crashes", self.crashes));
        }
        s
    }
}

/// What [`merge`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// The merged report's cases.
    pub counts: Counts,
    /// How many inputs were read.
    pub inputs: usize,
    /// How many records they held.
    pub records_read: usize,
    /// How many of those were another record of a case already read (joined).
    pub duplicates: usize,
    /// What was not read: a last line cut short, NUL bytes (each said as a warning).
    pub skipped: Vec<crate::record::Skipped>,
}

impl MergeSummary {
    /// `N cases: P passed, F failed, E harness errors`.
    pub fn line(&self) -> String {
        self.counts.line()
    }
}

/// The file name of the run's records, written by the runner and by [`merge`].
pub const RESULTS: &str = "results.jsonl";
/// The file name of the run's [`RunMeta`], written by [`write_all`].
pub const META: &str = "run.json";

/// Why a report cannot be written, or runs cannot be merged into one; each names the
/// file, the input or the case.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("run meta: {0}")]
    Meta(#[source] serde_json::Error),
    #[error("nothing to merge: no input given")]
    NothingToMerge,
    /// An input's `results.jsonl` cannot be read.
    #[error(transparent)]
    Records(#[from] crate::record::ReadError),
    #[error("{}: not a report directory (no {RESULTS} in it)", .0.display())]
    NotAReportDir(PathBuf),
    #[error("{}: not a run's meta: {source}", path.display())]
    NotAMeta {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Two inputs hold different cases under one id.
    #[error(
        "case {id}: {first} and {second} hold different cases under this id ({first_case} vs {second_case}); \
         were they run from different case sets?"
    )]
    Conflict {
        id: String,
        first: String,
        second: String,
        first_case: String,
        second_case: String,
    },
    /// A record cannot be written as a JSON line.
    #[error("case {id}: {source}")]
    Record { id: String, source: std::io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `junit.xml`, `report.html` and `run.json` into `dir` (created if missing).
/// Any other file there (the runner's `results.jsonl`) is left alone.
pub fn write_all(dir: &Path, records: &[Record], meta: &RunMeta) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    write_file(&dir.join("junit.xml"), junit(records, meta).as_bytes())?;
    write_file(&dir.join("report.html"), html(records, meta).as_bytes())?;
    let m = serde_json::to_vec_pretty(meta).map_err(ReportError::Meta)?;
    write_file(&dir.join(META), &m)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

// ---------------------------------------------------------------------------------
// merge

/// Joins report directories (each holding a `results.jsonl`) or `results.jsonl` files,
/// as `--shard K/N` runs on different machines leave them, into `out`: its
/// `results.jsonl` (sorted by id) and [`write_all`]'s reports.
///
/// The same case id may come more than once (two shards, a resumed run) only as the same
/// case (same section, dims and settings): the later record that is not a harness error
/// is kept, else the later one. The same id with other settings is an error naming both
/// inputs. Inputs are read before anything is written, so `out` may be one of them.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeSummary, ReportError> {
    if inputs.is_empty() {
        return Err(ReportError::NothingToMerge);
    }
    // Per id: the record kept and the input it came from.
    let mut kept: HashMap<String, (Record, usize)> = HashMap::new();
    let mut shown = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut metas = Vec::new();
    let (mut read, mut duplicates) = (0usize, 0usize);
    let mut skipped = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        let (file, meta) = locate(input)?;
        shown.push(file.display().to_string());
        files.push(file.clone());
        metas.extend(meta);
        let (records, cut) = crate::record::read_checked(&file)?;
        for s in &cut {
            tracing::warn!("{s}");
        }
        skipped.extend(cut);
        read += records.len();
        for r in records {
            let Some((old, from)) = kept.get(&r.id) else {
                kept.insert(r.id.clone(), (r, n));
                continue;
            };
            if old.section != r.section || old.dims != r.dims || old.settings != r.settings {
                return Err(ReportError::Conflict {
                    id: r.id.clone(),
                    first: shown[*from].clone(),
                    second: shown[n].clone(),
                    first_case: describe_case(old),
                    second_case: describe_case(&r),
                });
            }
            duplicates += 1;
            if r.verdict != Verdict::HarnessError || old.verdict == Verdict::HarnessError {
                kept.insert(r.id.clone(), (r, n));
            }
        }
    }
    // A kept record's packet capture goes with it into `out` (its path is relative
    // to the report directory it came from).
    for (r, n) in kept.values() {
        let Some(ev) = r.evidence.as_deref() else {
            continue;
        };
        let Some(from_dir) = files[*n].parent() else {
            continue;
        };
        let (from, to) = (from_dir.join(ev), out.join(ev));
        if from == to || ev.contains("..") || ev.starts_with('/') || !from.is_file() {
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io_error(&to))?;
    }
    let mut records: Vec<Record> = kept.into_values().map(|(r, _)| r).collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));

    let mut lines = Vec::new();
    for r in &records {
        crate::record::append(&mut lines, r).map_err(|source| ReportError::Record {
            id: r.id.clone(),
            source,
        })?;
    }
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    write_file(&out.join(RESULTS), &lines)?;
    write_all(out, &records, &merged_meta(inputs, out, &metas))?;
    Ok(MergeSummary {
        counts: Counts::of(&records),
        inputs: inputs.len(),
        records_read: read,
        duplicates,
        skipped,
    })
}

/// One run's records and its meta (when a `run.json` sits beside them), from a report
/// directory or a `results.jsonl`.
pub fn load_run(input: &Path) -> Result<(Vec<Record>, Option<RunMeta>), ReportError> {
    let (file, meta) = locate(input)?;
    let (records, skipped) = crate::record::read_checked(&file)?;
    for s in &skipped {
        tracing::warn!("{s}");
    }
    Ok((records, meta))
}

/// An input's `results.jsonl`, and the `run.json` beside it if there is one (only for
/// a report directory or a file named `results.jsonl`: a renamed shard file may sit
/// beside another run's `run.json`).
fn locate(input: &Path) -> Result<(PathBuf, Option<RunMeta>), ReportError> {
    let md = std::fs::metadata(input).map_err(io_error(input))?;
    if !md.is_dir() && input.file_name().is_none_or(|n| n != RESULTS) {
        return Ok((input.to_path_buf(), None));
    }
    let file = if md.is_dir() {
        let f = input.join(RESULTS);
        if !f.is_file() {
            return Err(ReportError::NotAReportDir(input.to_path_buf()));
        }
        f
    } else {
        input.to_path_buf()
    };
    let meta_path = file.with_file_name(META);
    let meta =
        match std::fs::read(&meta_path) {
            Ok(b) => Some(serde_json::from_slice::<RunMeta>(&b).map_err(|source| {
                ReportError::NotAMeta {
                    path: meta_path.clone(),
                    source,
                }
            })?),
            Err(_) => None,
        };
    Ok((file, meta))
}

fn describe_case(r: &Record) -> String {
    let settings: Vec<String> = r.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let dims: Vec<String> = r.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "section {}, dims [{}], settings [{}]",
        r.section,
        dims.join(","),
        settings.join(",")
    )
}

/// One input with its `run.json` keeps that run's meta (re-rendering one run);
/// otherwise the inputs' metas are joined.
fn merged_meta(inputs: &[PathBuf], out: &Path, metas: &[RunMeta]) -> RunMeta {
    if let ([_], [one]) = (inputs, metas) {
        return one.clone();
    }
    let shown: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let mut devices: Vec<&str> = Vec::new();
    for m in metas {
        if !m.device.is_empty() && !devices.contains(&m.device.as_str()) {
            devices.push(&m.device);
        }
    }
    // RFC 3339 in UTC with whole seconds (now_utc) orders as text.
    let started = metas
        .iter()
        .map(|m| &m.started)
        .filter(|s| !s.is_empty())
        .min();
    let finished = metas
        .iter()
        .map(|m| &m.finished)
        .filter(|s| !s.is_empty())
        .max();
    RunMeta {
        command: format!(
            "hil report --merge {} --out {}",
            shown.join(" "),
            out.display()
        ),
        device: devices.join(", "),
        started: started.cloned().unwrap_or_default(),
        finished: finished.cloned().unwrap_or_default(),
        duration_s: metas.iter().fold(0.0, |t, m| t + m.duration_s),
        shard: None,
        inputs: shown,
        coverage: Vec::new(),
        rerun: metas
            .iter()
            .map(|m| m.rerun.clone())
            .find(|r| !r.is_empty())
            .unwrap_or_default(),
        hil_version: metas
            .first()
            .map(|m| m.hil_version.clone())
            .unwrap_or_default(),
        hil_commit: metas
            .first()
            .map(|m| m.hil_commit.clone())
            .unwrap_or_default(),
        baseline: None,
        ..RunMeta::default()
    }
}

// ---------------------------------------------------------------------------------
// escaping

/// Text for XML 1.0 and HTML: characters XML forbids, and CR, DEL and C1 controls,
/// become visible `\xNN` (`\u{FFFE}`, `\u{FFFF}`); tab and LF stay.
fn clean_char(c: char, out: &mut String) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
            let _ = write!(out, "\\x{:02X}", c as u32);
            true
        }
        '\u{fffe}' | '\u{ffff}' => {
            let _ = write!(out, "\\u{{{:X}}}", c as u32);
            true
        }
        _ => false,
    }
}

/// Escapes text for XML and HTML element content and quoted attribute values.
/// Text escaped for HTML (see [`clean_char`]).
pub(crate) fn escape_html(s: &str) -> String {
    esc(s)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    esc_into(s, &mut out, false);
    out
}

/// Escapes an XML attribute value: as [`esc`], with tab and LF as character
/// references so attribute normalisation keeps them.
/// A record's packet capture, if its path is relative (a record read back may hold
/// anything).
fn relative_evidence(r: &Record) -> Option<&str> {
    r.evidence
        .as_deref()
        .filter(|p| !p.contains(':') && !p.starts_with('/'))
}

fn esc_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    esc_into(s, &mut out, true);
    out
}

fn esc_into(s: &str, out: &mut String, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => {
                if !clean_char(c, out) {
                    out.push(c);
                }
            }
        }
    }
}

/// Cuts a string to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// A shell word for a case id (ids are `section/dim=value,…`).
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/=,._:@+-%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------
// junit.xml

/// The texts of a record's mismatches.
fn mismatch_texts(r: &Record) -> Vec<&str> {
    r.mismatches.iter().map(|m| m.text.as_str()).collect()
}

fn secs(millis: u64) -> String {
    format!("{:.3}", millis as f64 / 1000.0)
}

/// The JUnit XML of a run: one `<testsuite>` per section (in order of first
/// appearance), one `<testcase>` per record. `<system-out>` (transcripts, console)
/// is written for every case that did not pass or has findings; `results.jsonl` has
/// everything of the passing ones.
pub fn junit(records: &[Record], meta: &RunMeta) -> String {
    let mut sections: Vec<(&str, Vec<&Record>)> = Vec::new();
    for r in records {
        match sections.iter_mut().find(|(s, _)| *s == r.section) {
            Some((_, v)) => v.push(r),
            None => sections.push((&r.section, vec![r])),
        }
    }
    // Known failures (--baseline) are written as skipped, as pytest writes xfail.
    let tally = |rs: &[&Record]| {
        let (mut failed, mut errors, mut skipped) = (0usize, 0usize, 0usize);
        for r in rs {
            match r.verdict {
                _ if r.verdict != Verdict::Pass
                    && r.verdict != Verdict::HarnessError
                    && meta.known(&r.id).is_some() =>
                {
                    skipped += 1
                }
                Verdict::Fail => failed += 1,
                Verdict::HarnessError | Verdict::Crash => errors += 1,
                Verdict::Pass => {}
            }
        }
        (failed, errors, skipped)
    };
    let every: Vec<&Record> = records.iter().collect();
    let (failed, errors, skipped) = tally(&every);
    let total_ms: u64 = records.iter().map(|r| r.millis).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"hil\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{}\">",
        records.len(),
        secs(total_ms)
    );
    for (section, rs) in &sections {
        let (failed, errors, skipped) = tally(rs);
        let ms: u64 = rs.iter().map(|r| r.millis).sum();
        let _ = write!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" \
             skipped=\"{skipped}\" time=\"{}\"",
            esc_attr(section),
            rs.len(),
            secs(ms)
        );
        if !meta.started.is_empty() {
            let _ = write!(x, " timestamp=\"{}\"", esc_attr(&meta.started));
        }
        x.push_str(">\n");
        let props = [
            ("command", meta.command.as_str()),
            ("device", meta.device.as_str()),
            ("shard", meta.shard.as_deref().unwrap_or("")),
        ];
        if props.iter().any(|(_, v)| !v.is_empty()) {
            x.push_str("    <properties>\n");
            for (k, v) in props.iter().filter(|(_, v)| !v.is_empty()) {
                let _ = writeln!(
                    x,
                    "      <property name=\"{k}\" value=\"{}\"/>",
                    esc_attr(v)
                );
            }
            x.push_str("    </properties>\n");
        }
        for r in rs {
            junit_case(&mut x, r, meta);
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

fn junit_case(x: &mut String, r: &Record, meta: &RunMeta) {
    let _ = write!(
        x,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        esc_attr(&r.id),
        esc_attr(&r.section),
        secs(r.millis)
    );
    let out = r.verdict != Verdict::Pass || !r.findings.is_empty();
    if r.verdict == Verdict::Pass && !out {
        x.push_str("/>\n");
        return;
    }
    x.push_str(">\n");
    let mut props: Vec<(&str, &str)> = Vec::new();
    if let Some(sig) = &r.signature {
        props.push(("signature", sig));
    }
    for f in &r.findings {
        props.push(("finding", f));
    }
    if !props.is_empty() {
        x.push_str("      <properties>\n");
        for (k, v) in props {
            let _ = writeln!(
                x,
                "        <property name=\"{k}\" value=\"{}\"/>",
                esc_attr(v)
            );
        }
        x.push_str("      </properties>\n");
    }
    let known = meta
        .known(&r.id)
        .filter(|_| r.verdict != Verdict::HarnessError);
    match r.verdict {
        Verdict::Pass => {}
        _ if known.is_some() => {
            let _ = writeln!(
                x,
                "      <skipped message=\"known deviation: {}\"/>",
                esc_attr(known.unwrap_or_default())
            );
        }
        Verdict::Fail => {
            let message = if r.mismatches.is_empty() {
                "failed".to_string()
            } else {
                mismatch_texts(r).join("; ")
            };
            let (message, more) = cut(&message, 2000);
            let mut body = String::new();
            for m in &r.mismatches {
                let _ = writeln!(body, "mismatch: {m}");
            }
            if let Some(sig) = r.signature.as_deref().and_then(|_| Signature::of(r)) {
                let _ = writeln!(body, "cause: {}", sig.words());
            }
            let _ = writeln!(body, "expected: {}", r.expected.text);
            let _ = writeln!(body, "observed: {}", r.observed.text);
            let _ = writeln!(
                x,
                "      <failure message=\"{}{}\" type=\"mismatch\">{}</failure>",
                esc_attr(message),
                if more { " …" } else { "" },
                esc(&body)
            );
        }
        Verdict::Crash => {
            let why = r.crash.as_deref().unwrap_or("the device crashed");
            let (message, more) = cut(why, 2000);
            let _ = writeln!(
                x,
                "      <error message=\"{}{}\" type=\"device_crash\">{}</error>",
                esc_attr(message),
                if more { " …" } else { "" },
                esc(why)
            );
        }
        Verdict::HarnessError => {
            let why = r.harness_error.as_deref().unwrap_or("harness error");
            let (message, more) = cut(why, 2000);
            let _ = writeln!(
                x,
                "      <error message=\"{}{}\" type=\"harness_error\">{} \
                 (after {} attempt(s))</error>",
                esc_attr(message),
                if more { " …" } else { "" },
                esc(why),
                r.attempts
            );
        }
    }
    let _ = writeln!(
        x,
        "      <system-out>{}</system-out>",
        esc(&case_text(r, meta))
    );
    x.push_str("    </testcase>\n");
}

/// Everything a case saw, as plain text: settings, scenario, findings, transcripts,
/// console.
fn case_text(r: &Record, meta: &RunMeta) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "case: {}", r.id);
    let _ = writeln!(t, "reproduce: {}", reproduce(meta, &r.id));
    for (k, v) in &r.settings {
        let _ = writeln!(t, "setting: {k} = {v}");
    }
    let _ = writeln!(t, "scenario: {}", r.scenario.text);
    let _ = writeln!(t, "expected: {}", r.expected.text);
    let _ = writeln!(t, "observed: {}", r.observed.text);
    for f in &r.findings {
        let _ = writeln!(t, "finding: {f}");
    }
    for c in &r.latitude {
        let _ = writeln!(t, "latitude: {c}");
    }
    if let Some(p) = &r.evidence {
        // Jenkins and GitLab attach the file named so.
        let _ = writeln!(t, "packet capture (pcapng, TLS keys embedded): {p}");
        let _ = writeln!(t, "[[ATTACHMENT|{p}]]");
    }
    for (i, tr) in r.transcripts.iter().enumerate() {
        let _ = writeln!(
            t,
            "--- transcript {} ({} {}) ---",
            i + 1,
            tr.server,
            tr.listener
        );
        for l in &tr.lines {
            let _ = writeln!(t, "{l}");
        }
    }
    if !r.console.is_empty() {
        let _ = writeln!(t, "--- console ---");
        for l in &r.console {
            let _ = writeln!(t, "{l}");
        }
    }
    t
}

// ---------------------------------------------------------------------------------
// report.html

/// Failing cases shown in full; the rest are listed by id.
const MAX_DETAILED: usize = 300;
/// Lines of one transcript or console log shown in full.
const MAX_LINES: usize = 1000;
/// Bytes of one line shown.
const MAX_LINE: usize = 2000;
/// Cases listed by id only (passing, and failing beyond [`MAX_DETAILED`]).
const MAX_LISTED: usize = 5000;
/// Values of one dimension drawn in the heat map; the rest share one row or column.
const MAX_VALUES: usize = 40;
/// Heat map cells embedded over all pairs.
const MAX_CELLS: usize = 100_000;

pub(crate) const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{margin:.2em 0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
code,pre{font:12px/1.35 ui-monospace,"DejaVu Sans Mono",Menlo,monospace}
li,p,dd,h3,code{overflow-wrap:anywhere}td,th{overflow-wrap:break-word}
table.meta th,table.causes th,table.causes td:first-child,table.settings td:first-child code{white-space:nowrap;overflow-wrap:normal}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all;margin:.3em 0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
.counts span{display:inline-block;padding:.3em .8em;margin-right:.5em;border-radius:4px;font-weight:600}
.pass{background:#d7f0d7}.find{background:#f0e0c8}.fail{background:#f7d0d0}.herr{background:#f7e6c0}.total{background:#e4e4e4}
.case{border:1px solid #ccc;border-left:6px solid #c62828;padding:.4em .8em;margin:1em 0;border-radius:3px}
.case.herr-case{border-left-color:#ef8f00}
.case h3{margin:.2em 0;font-size:15px;word-break:break-all}
.badge{font-size:11px;padding:1px 6px;border-radius:3px;margin-right:.4em;vertical-align:middle}
.badge.fail{background:#c62828;color:#fff}.badge.herr{background:#ef8f00;color:#fff}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 1em;margin:.4em 0}dl.kv dt{font-weight:600}dl.kv dd{margin:0;white-space:pre-wrap;word-break:break-word}
ul.mism li{color:#8b0000}ul.find li{color:#6a3d00}
ul.compact,ol.compact{columns:22em auto;font-size:12px;padding-left:1.6em}
ul.compact li,ol.compact li,ul.ids li{break-inside:avoid;overflow-wrap:anywhere;word-break:break-all}
ul.ids{font-size:12px;padding-left:1.6em}ul.ids li{margin:.2em 0}
code.repro{color:#555}.kind{font:11px ui-monospace,monospace;color:#555;margin-right:.4em}
table.sections{margin-top:.6em}table.sections td{text-align:right}table.sections td:first-child{text-align:left}
table.causes{table-layout:fixed;width:100%}table.causes td,table.causes th{overflow-wrap:anywhere}
table.causes th:first-child{width:4em}table.causes th:nth-child(2){width:35%}
table.causes td:first-child{text-align:right;font-weight:600}.group{margin:1.2em 0}.group h3{margin:.3em 0}
tr.defining td{background:#fff6c8;font-weight:600}
.badge.find{background:#6a3d00;color:#fff}
.note{color:#666;font-size:12px}
table.heat td{min-width:3.2em;text-align:center;font-size:12px}table.heat th{font-size:12px;max-width:14em;word-break:break-word}
table.heat td.empty{background:#fff}
"#;

const JS: &str = r#"
(function(){
  var el=document.getElementById('heat-data'); if(!el) return;
  var d=JSON.parse(el.textContent), sel=document.getElementById('heat-pair'), box=document.getElementById('heat-grid');
  function colour(p,f){ if(p+f===0) return '#e0e0e0'; var x=f/(p+f); return x===0?'#c8ebc8':'hsl('+Math.round(50-50*x)+',85%,'+Math.round(78-22*x)+'%)'; }
  function cell(tr,text,tag){ var c=document.createElement(tag||'td'); c.textContent=text; tr.appendChild(c); return c; }
  function render(i){
    var p=d.pairs[i], A=d.keys[p.a], B=d.keys[p.b];
    var t=document.createElement('table'); t.className='heat';
    var h=document.createElement('tr'); cell(h,A.name+' \u2193 / '+B.name+' \u2192','th');
    B.values.forEach(function(v){ cell(h,v,'th'); }); t.appendChild(h);
    A.values.forEach(function(va,ia){
      var tr=document.createElement('tr'); cell(tr,va,'th');
      B.values.forEach(function(vb,ib){
        var c=p.cells[ia*B.values.length+ib];
        if(c===0){ cell(tr,'').className='empty'; return; }
        var pass=c[0], fail=c[1], err=c[2];
        var td=cell(tr,fail+'/'+(pass+fail)+(err?' +'+err+'e':''));
        td.style.background=colour(pass,fail);
        td.title=A.name+'='+va+', '+B.name+'='+vb+': '+fail+' failed, '+pass+' passed'+(err?', '+err+' harness errors':'');
      });
      t.appendChild(tr);
    });
    box.replaceChildren(t);
  }
  sel.addEventListener('change',function(){ render(+sel.value); });
  render(+sel.value); box.setAttribute('data-by','script');
})();
"#;

/// The HTML report: one self-contained page (inline CSS and JS, nothing fetched).
pub fn html(records: &[Record], meta: &RunMeta) -> String {
    let counts = Counts::of(records);
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>hil report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&counts.line())
    );
    summary(&mut h, &counts, meta, records);

    let triage = crate::triage::triage(records);
    causes_section(&mut h, records, meta, &triage, &counts);
    findings_section(&mut h, records, meta);
    latitude_section(&mut h, records);

    let mut good: Vec<&Record> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .collect();
    good.sort_by(|a, b| a.id.cmp(&b.id));
    let _ = writeln!(
        h,
        "<section id=\"passed\">\n<h2>Passed ({})</h2>\n\
         <details><summary>{} passing cases</summary>\n<ul class=\"compact\">",
        good.len(),
        good.len()
    );
    for r in good.iter().take(MAX_LISTED) {
        let _ = write!(h, "<li><code>{}</code> {} ms", esc(&r.id), r.millis);
        if !r.findings.is_empty() {
            let _ = write!(
                h,
                " <a href=\"#findings\"><span class=\"badge find\">FINDING</span></a>"
            );
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ul>\n");
    if good.len() > MAX_LISTED {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} left out of this list (see results.jsonl).</p>",
            good.len() - MAX_LISTED
        );
    }
    h.push_str("</details>\n</section>\n");

    heat_section(&mut h, records);
    let _ = write!(h, "<script>{JS}</script>\n</body>\n</html>\n");
    h
}

fn summary(h: &mut String, c: &Counts, meta: &RunMeta, records: &[Record]) {
    let reached = records.iter().filter(|r| r.reached_smtp_server()).count();
    let reach = if records.is_empty() {
        String::new()
    } else {
        format!(
            "{reached} of {} cases reached the fake SMTP server ({}%)",
            records.len(),
            reached * 100 / records.len()
        )
    };
    let _ = writeln!(
        h,
        "<section id=\"summary\">\n<h1>hil report</h1>\n<p class=\"counts\">\
         <span class=\"total\">{} cases</span><span class=\"pass\">{} passed</span>\
         <span class=\"fail\">{} failed</span><span class=\"herr\">{} harness errors</span>{}</p>",
        c.cases,
        c.passed,
        c.failed,
        c.harness_errors,
        if c.crashes > 0 {
            format!("<span class=\"fail\">{} device crashes</span>", c.crashes)
        } else {
            String::new()
        }
    );
    let findings = records.iter().filter(|r| !r.findings.is_empty()).count();
    if findings > 0 {
        let _ = writeln!(
            h,
            "<p class=\"counts\"><a href=\"#findings\"><span class=\"find\">{findings} with findings</span></a></p>"
        );
    }
    let baseline = meta.baseline.as_ref().map(|b| {
        let mut t = format!(
            "{}: {} known failures, {} fixed",
            b.source,
            b.known.len(),
            b.fixed.len()
        );
        for id in &b.fixed {
            t.push_str(&format!("\nfixed: {id}"));
        }
        for u in &b.unseen {
            t.push_str(&format!("\nnot seen: {u}"));
        }
        t
    });
    h.push_str("<table class=\"meta\">\n");
    let duration = if meta.duration_s > 0.0 {
        duration_text(meta.duration_s)
    } else {
        String::new()
    };
    let rows = [
        ("command", meta.command.clone()),
        ("device", meta.device.clone()),
        ("started", meta.started.clone()),
        ("finished", meta.finished.clone()),
        ("duration", duration),
        ("shard", meta.shard.clone().unwrap_or_default()),
        ("inputs", meta.inputs.join("\n")),
        ("coverage", meta.coverage.join("\n")),
        ("reached the server", reach),
        ("device identity", meta.device_identity.join("\n")),
        (
            "profile",
            if meta.profile.is_empty() {
                String::new()
            } else {
                format!(
                    "{} (sha256 {})",
                    meta.profile,
                    short_hash(&meta.profile_sha256)
                )
            },
        ),
        (
            "servers",
            if meta.certs_sha256.is_empty() {
                String::new()
            } else {
                format!(
                    "certificate zoo sha256 {}, scenarios sha256 {}",
                    short_hash(&meta.certs_sha256),
                    short_hash(&meta.scenarios_sha256)
                )
            },
        ),
        ("baseline", baseline.unwrap_or_default()),
        (
            "hil",
            if meta.hil_version.is_empty() {
                String::new()
            } else {
                format!("{} ({})", meta.hil_version, meta.hil_commit)
            },
        ),
    ];
    for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(
            h,
            "<tr><th>{k}</th><td><code style=\"white-space:pre-wrap\">{}</code></td></tr>",
            esc(v)
        );
    }
    h.push_str("</table>\n");
    sections_table(h, records, meta);
    h.push_str(
        "<p><a href=\"#failures\">causes</a> \u{b7} \
                <a href=\"#findings\">findings</a> \u{b7} <a href=\"#passed\">passed</a> \u{b7} <a href=\"#heatmap\">heat map</a></p>\n\
                </section>\n",
    );
}

/// One row per matrix section (in order of first appearance): its cases and how
/// they ended, known failures apart.
fn sections_table(h: &mut String, records: &[Record], meta: &RunMeta) {
    let mut rows: Vec<(&str, [usize; 6])> = Vec::new();
    for r in records {
        let i = match rows.iter().position(|(s, _)| *s == r.section) {
            Some(i) => i,
            None => {
                rows.push((&r.section, [0; 6]));
                rows.len() - 1
            }
        };
        let c = &mut rows[i].1;
        c[0] += 1;
        let known = r.verdict != Verdict::HarnessError && meta.known(&r.id).is_some();
        match r.verdict {
            Verdict::Pass => c[1] += 1,
            _ if known => c[5] += 1,
            Verdict::Fail => c[2] += 1,
            Verdict::Crash => c[3] += 1,
            Verdict::HarnessError => c[4] += 1,
        }
    }
    if rows.len() < 2 {
        return;
    }
    h.push_str(
        "<table class=\"sections\">\n<tr><th>section</th><th>cases</th><th>passed</th>\
         <th>failed</th><th>crashes</th><th>harness errors</th><th>known</th></tr>\n",
    );
    for (s, c) in &rows {
        let _ = write!(h, "<tr><td><code>{}</code></td>", esc(s));
        for (i, n) in c.iter().enumerate() {
            let class = match i {
                2 | 3 if *n > 0 => " class=\"fail\"",
                4 if *n > 0 => " class=\"herr\"",
                _ => "",
            };
            let _ = write!(h, "<td{class}>{n}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The first 12 hex digits of a digest.
fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn duration_text(s: f64) -> String {
    let whole = s.round() as u64;
    let (hh, mm, ss) = (whole / 3600, whole / 60 % 60, whole % 60);
    if hh > 0 {
        format!("{hh}h {mm:02}m {ss:02}s ({s:.1} s)")
    } else if mm > 0 {
        format!("{mm}m {ss:02}s ({s:.1} s)")
    } else {
        format!("{s:.1} s")
    }
}

/// The failure groups, largest first: each with its cause in words, the values that
/// explain it, one representative case in full and the others collapsed.
fn causes_section(h: &mut String, records: &[Record], meta: &RunMeta, t: &Triage, c: &Counts) {
    let crashes = if c.crashes > 0 {
        format!("{} device crashes, ", c.crashes)
    } else {
        String::new()
    };
    let _ = writeln!(
        h,
        "<section id=\"failures\">\n<h2>Causes: {crashes}{} failures and {} harness errors \
         in {} group{}</h2>",
        c.failed,
        c.harness_errors,
        t.groups.len(),
        if t.groups.len() == 1 { "" } else { "s" }
    );
    if t.groups.is_empty() {
        h.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table class=\"causes\">\n<tr><th>cases</th><th>cause</th><th>explained by</th></tr>\n",
    );
    let groups = crate::triage::ordered(records, t, meta);
    for &(g_i, g) in &groups {
        let e: Vec<String> = g
            .shared
            .iter()
            .chain(&g.explained_by)
            .map(|e| e.words(g.cases.len(), t.passes))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><a href=\"#group-{g_i}\">{}</a></td><td>{}</td></tr>",
            g.cases.len(),
            esc(&crate::triage::group_words(records, g, meta)),
            esc(&e.join("; "))
        );
    }
    h.push_str("</table>\n");
    for &(g_i, g) in &groups {
        let _ = writeln!(
            h,
            "<div class=\"group\" id=\"group-{g_i}\">\n<h3>{} case{}: {}</h3>\n\
             <p class=\"note\">signature <code>{}</code></p>",
            g.cases.len(),
            if g.cases.len() == 1 { "" } else { "s" },
            esc(&crate::triage::group_words(records, g, meta)),
            esc(&g.key)
        );
        if !g.shared.is_empty() || !g.explained_by.is_empty() {
            h.push_str("<p>Explained by:</p>\n<ul class=\"explain\">\n");
            for e in g.shared.iter().chain(&g.explained_by) {
                let _ = writeln!(
                    h,
                    "<li><code>{}={}</code> in {} of {} failing cases, {} of {} passing \
                     (score {:.2})</li>",
                    esc(&e.dim),
                    esc(&e.value),
                    e.in_group,
                    g.cases.len(),
                    e.in_passes,
                    t.passes,
                    e.score
                );
            }
            h.push_str("</ul>\n");
        }
        let Some((&first, rest)) = g.cases.split_first() else {
            continue;
        };
        if g_i < MAX_DETAILED {
            failed_case(h, &format!("case-{g_i}"), &records[first], meta);
        }
        if !rest.is_empty() {
            let _ = writeln!(
                h,
                "<details><summary>{} more case{} of this cause</summary>\n<ul class=\"ids\">",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            );
            for &i in rest.iter().take(MAX_LISTED) {
                let r = &records[i];
                let first = r
                    .mismatches
                    .first()
                    .map(|m| m.text.as_str())
                    .or(r.harness_error.as_deref())
                    .or(r.crash.as_deref())
                    .map(|s| cut(s, 200).0)
                    .unwrap_or("");
                let capture = relative_evidence(r)
                    .map(|p| format!(" <a href=\"{}\">packet capture</a>", esc_attr(p)))
                    .unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<li><code class=\"case-id\">{}</code> {}{capture}<br><code class=\"repro\">{}</code></li>",
                    esc(&r.id),
                    esc(first),
                    esc(&reproduce(meta, &r.id))
                );
            }
            if rest.len() > MAX_LISTED {
                let _ = writeln!(
                    h,
                    "<li class=\"note\">{} more (see results.jsonl)</li>",
                    rest.len() - MAX_LISTED
                );
            }
            h.push_str("</ul></details>\n");
        }
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n");
}

/// Security and variant findings, apart from failures (a passing case may have
/// them): one entry per finding, with the cases that show it.
fn findings_section(h: &mut String, records: &[Record], meta: &RunMeta) {
    let mut by: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        for f in &r.findings {
            by.entry(f.as_str()).or_default().push(r);
        }
    }
    let cases = records.iter().filter(|r| !r.findings.is_empty()).count();
    let _ = writeln!(
        h,
        "<section id=\"findings\">\n<h2>Findings ({cases} case{})</h2>",
        if cases == 1 { "" } else { "s" }
    );
    if by.is_empty() {
        h.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    for (f, rs) in &by {
        let _ = writeln!(
            h,
            "<div class=\"finding\"><h3><span class=\"badge find\">FINDING</span>{} \
             <span class=\"note\">({} case{})</span></h3>\n<details><summary>cases</summary>\
             <ul class=\"ids\">",
            esc(f),
            rs.len(),
            if rs.len() == 1 { "" } else { "s" }
        );
        for r in rs.iter().take(MAX_LISTED) {
            let _ = writeln!(
                h,
                "<li><code class=\"case-id\">{}</code> ({})<br><code class=\"repro\">{}</code></li>",
                esc(&r.id),
                r.verdict.as_str(),
                esc(&reproduce(meta, &r.id))
            );
        }
        h.push_str("</ul></details></div>\n");
    }
    h.push_str("</section>\n");
}

/// Where SPEC lets the firmware choose (docs/oracle.md, "Latitude"): what this
/// device chose, and in how many cases. Absent when no case met a latitude.
fn latitude_section(h: &mut String, records: &[Record]) {
    let mut by: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        for c in &r.latitude {
            by.entry(c.as_str()).or_default().push(r);
        }
    }
    if by.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"latitude\">\n<h2>Where SPEC allows a choice</h2>\n\
         <p class=\"note\">Each is conforming; this is what the device chose.</p>\n<ul>\n",
    );
    for (c, rs) in &by {
        let ids: Vec<String> = rs
            .iter()
            .take(3)
            .map(|r| format!("<code class=\"case-id\">{}</code>", esc(&r.id)))
            .collect();
        let _ = writeln!(
            h,
            "<li>{} <span class=\"note\">({} case{}: {}{})</span></li>",
            esc(c),
            rs.len(),
            if rs.len() == 1 { "" } else { "s" },
            ids.join(", "),
            if rs.len() > 3 { ", …" } else { "" }
        );
    }
    h.push_str("</ul>\n</section>\n");
}

fn failed_case(h: &mut String, anchor: &str, r: &Record, meta: &RunMeta) {
    let (class, badge, word) = match r.verdict {
        Verdict::HarnessError => ("case herr-case", "badge herr", "HARNESS ERROR"),
        Verdict::Crash => ("case", "badge fail", "DEVICE CRASH"),
        _ => ("case", "badge fail", "FAIL"),
    };
    let again = reproduce(meta, &r.id);
    let _ = writeln!(
        h,
        "<article class=\"{class}\" id=\"{anchor}\">\n<h3><span class=\"{badge}\">{word}</span>\
         <code class=\"case-id\">{}</code></h3>\n<p>Reproduce: <code>{}</code> \
         <span class=\"note\">({} attempt(s), {} ms)</span></p>",
        esc(&r.id),
        esc(&again),
        r.attempts,
        r.millis
    );
    if let Some(e) = &r.harness_error {
        let _ = writeln!(h, "<p><b>Harness error:</b> {}</p>", esc(e));
    }
    if let Some(e) = &r.crash {
        let _ = writeln!(h, "<p><b>Device crash:</b> {}</p>", esc(e));
    }
    if !r.mismatches.is_empty() {
        h.push_str("<p><b>Mismatches</b></p>\n<ul class=\"mism\">\n");
        for m in &r.mismatches {
            let _ = writeln!(
                h,
                "<li><span class=\"kind\">{} at {}</span> {}</li>",
                m.kind,
                m.step,
                esc(&m.text)
            );
        }
        h.push_str("</ul>\n");
    }
    if let Some(p) = relative_evidence(r) {
        let _ = writeln!(
            h,
            "<p><b>Packet capture:</b> <a href=\"{}\">{}</a> \
             <span class=\"note\">(pcapng with the TLS keys embedded: Wireshark shows \
             the conversation decrypted; raw and unredacted)</span></p>",
            esc_attr(p),
            esc(p)
        );
    }
    if !r.findings.is_empty() {
        h.push_str("<p><span class=\"badge find\">FINDING</span></p>\n<ul class=\"find\">\n");
        for f in &r.findings {
            let _ = writeln!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(
        h,
        "<dl class=\"kv\"><dt>scenario</dt><dd>{}</dd><dt>expected</dt><dd>{}</dd>\
         <dt>observed</dt><dd>{}</dd></dl>",
        esc(&r.scenario.text),
        esc(&r.expected.text),
        esc(&r.observed.text)
    );
    let _ = writeln!(
        h,
        "<details open><summary>Settings ({})</summary>\n<table class=\"settings\">",
        r.settings.len()
    );
    let defining: Vec<&str> = crate::triage::defining(&r.id)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (k, v) in &r.settings {
        let _ = writeln!(
            h,
            "<tr{}><td><code>{}</code></td><td><code>{}</code></td></tr>",
            if defining.contains(&k.as_str()) {
                " class=\"defining\" title=\"a value this case is about\""
            } else {
                ""
            },
            esc(k),
            esc(v)
        );
    }
    h.push_str("</table></details>\n");
    if r.transcripts.is_empty() {
        h.push_str("<p class=\"note\">No server connection.</p>\n");
    }
    for (n, t) in r.transcripts.iter().enumerate() {
        let title = format!(
            "Transcript {} of {}: {} {}",
            n + 1,
            r.transcripts.len(),
            t.server,
            t.listener
        );
        lines_block(h, &title, &t.lines, "transcript");
    }
    lines_block(h, "Console", &r.console, "console");
    h.push_str("</article>\n");
}

/// An open `<details>` with the lines in a `<pre>`, capped.
fn lines_block<T: std::fmt::Display>(h: &mut String, title: &str, lines: &[T], class: &str) {
    let _ = writeln!(
        h,
        "<details open><summary>{} ({} lines)</summary><pre class=\"{class}\">",
        esc(title),
        lines.len()
    );
    for l in lines.iter().take(MAX_LINES) {
        let l = l.to_string();
        let (l, more) = cut(&l, MAX_LINE);
        h.push_str(&esc(l));
        if more {
            h.push_str(" …");
        }
        h.push('\n');
    }
    if lines.len() > MAX_LINES {
        let _ = writeln!(
            h,
            "… {} more lines (see results.jsonl)",
            lines.len() - MAX_LINES
        );
    }
    h.push_str("</pre></details>\n");
}

// ---------------------------------------------------------------------------------
// heat map

#[derive(Serialize)]
struct HeatKey {
    name: String,
    values: Vec<String>,
}

#[derive(Serialize)]
struct HeatPair {
    a: usize,
    b: usize,
    failed: usize,
    /// Row-major over a's values × b's values: 0 for an empty cell, else
    /// [passed, failed, harness errors].
    cells: Vec<serde_json::Value>,
    #[serde(skip)]
    counts: Vec<[usize; 3]>,
    #[serde(skip)]
    rank: (std::cmp::Reverse<u64>, usize, usize),
}

#[derive(Serialize)]
struct Heat {
    keys: Vec<HeatKey>,
    pairs: Vec<HeatPair>,
}

/// Values in order: numerically when all are numbers, else as text.
fn sort_values(v: &mut [String]) {
    if v.iter().all(|s| s.parse::<f64>().is_ok()) {
        v.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y)
        });
    } else {
        v.sort();
    }
}

/// The heat map's data: every pair of dimensions that take ≥2 values and that some
/// record has both of, pairs with failures first (the clearest pattern first), capped
/// at [`MAX_CELLS`] cells; and how many pairs were left out.
fn heat(records: &[Record]) -> (Heat, usize) {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in records {
        for (k, v) in &r.dims {
            values.entry(k).or_default().insert(v);
        }
    }
    let mut keys = Vec::new();
    // Per key: value -> index into its values (the last one lumps the rest).
    let mut index: Vec<HashMap<String, usize>> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (k, vs) in values.iter().filter(|(_, vs)| vs.len() >= 2) {
        let mut vs: Vec<String> = vs.iter().map(|s| s.to_string()).collect();
        sort_values(&mut vs);
        let mut map = HashMap::new();
        let shown = if vs.len() > MAX_VALUES {
            let rest = vs.len() - (MAX_VALUES - 1);
            for (i, v) in vs.iter().enumerate() {
                map.insert(v.clone(), i.min(MAX_VALUES - 1));
            }
            let mut s: Vec<String> = vs[..MAX_VALUES - 1].to_vec();
            s.push(format!("({rest} other values)"));
            s
        } else {
            for (i, v) in vs.iter().enumerate() {
                map.insert(v.clone(), i);
            }
            vs
        };
        keys.push(HeatKey {
            name: k.to_string(),
            values: shown,
        });
        index.push(map);
        names.push(k);
    }
    // Each record's value index per key, if it has the key.
    let at: Vec<(Vec<Option<usize>>, usize)> = records
        .iter()
        .map(|r| {
            let v = names
                .iter()
                .zip(&index)
                .map(|(k, m)| r.dims.get(*k).and_then(|v| m.get(v.as_str()).copied()))
                .collect();
            let slot = match r.verdict {
                Verdict::Pass => 0,
                Verdict::Fail => 1,
                Verdict::HarnessError | Verdict::Crash => 2,
            };
            (v, slot)
        })
        .collect();
    let mut pairs = Vec::new();
    for a in 0..keys.len() {
        for b in a + 1..keys.len() {
            let nb = keys[b].values.len();
            let mut counts = vec![[0usize; 3]; keys[a].values.len() * nb];
            let mut any = false;
            for (v, slot) in &at {
                if let (Some(i), Some(j)) = (v[a], v[b]) {
                    counts[i * nb + j][*slot] += 1;
                    any = true;
                }
            }
            if !any {
                continue;
            }
            let failed: usize = counts.iter().map(|c| c[1]).sum();
            // The pair that best separates failures from passes first: the cell whose
            // cases are most nearly all the failures and only failures (its Ochiai
            // coefficient, as triage ranks values, in millionths), then failures in
            // the fewest cells, then the smallest grid.
            let worst = counts
                .iter()
                .filter(|c| c[1] > 0)
                .map(|c| {
                    let (ef, ep) = (c[1] as f64, c[0] as f64);
                    (ef / (failed as f64 * (ef + ep)).sqrt() * 1_000_000.0) as u64
                })
                .max()
                .unwrap_or(0);
            let failing_cells = counts.iter().filter(|c| c[1] > 0).count();
            pairs.push(HeatPair {
                a,
                b,
                failed,
                cells: Vec::new(),
                rank: (std::cmp::Reverse(worst), failing_cells, counts.len()),
                counts,
            });
        }
    }
    pairs.sort_by_key(|p| (p.failed == 0, p.rank, p.a, p.b));
    let (mut total, mut kept, mut left_out) = (0usize, Vec::new(), 0usize);
    for mut p in pairs {
        if total + p.counts.len() > MAX_CELLS {
            left_out += 1;
            continue;
        }
        total += p.counts.len();
        p.cells = p
            .counts
            .iter()
            .map(|c| {
                if c.iter().all(|n| *n == 0) {
                    serde_json::Value::from(0)
                } else {
                    serde_json::Value::from(c.to_vec())
                }
            })
            .collect();
        kept.push(p);
    }
    (Heat { keys, pairs: kept }, left_out)
}

/// A cell's colour: light green with no failure, yellow to red as more fail (the
/// same as the page's script).
fn colour(pass: usize, fail: usize) -> String {
    if pass + fail == 0 {
        return "#e0e0e0".into();
    }
    let x = fail as f64 / (pass + fail) as f64;
    if fail == 0 {
        "#c8ebc8".into()
    } else {
        format!(
            "hsl({},85%,{}%)",
            (50.0 - 50.0 * x).round(),
            (78.0 - 22.0 * x).round()
        )
    }
}

/// The grid of one pair as HTML, as the page's script draws it.
fn grid_html(h: &mut String, heat: &Heat, p: &HeatPair) {
    let (ka, kb) = (&heat.keys[p.a], &heat.keys[p.b]);
    let _ = write!(
        h,
        "<table class=\"heat\"><tr><th>{} \u{2193} / {} \u{2192}</th>",
        esc(&ka.name),
        esc(&kb.name)
    );
    for v in &kb.values {
        let _ = write!(h, "<th>{}</th>", esc(v));
    }
    h.push_str("</tr>\n");
    for (i, va) in ka.values.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", esc(va));
        for (j, vb) in kb.values.iter().enumerate() {
            let [pass, fail, err] = p.counts[i * kb.values.len() + j];
            if pass + fail + err == 0 {
                h.push_str("<td class=\"empty\"></td>");
                continue;
            }
            let e = if err > 0 {
                format!(" +{err}e")
            } else {
                String::new()
            };
            let title = format!(
                "{}={va}, {}={vb}: {fail} failed, {pass} passed{}",
                ka.name,
                kb.name,
                if err > 0 {
                    format!(", {err} harness errors")
                } else {
                    String::new()
                }
            );
            let _ = write!(
                h,
                "<td style=\"background:{}\" title=\"{}\">{fail}/{}{e}</td>",
                colour(pass, fail),
                esc(&title),
                pass + fail
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn heat_section(h: &mut String, records: &[Record]) {
    let (heat, left_out) = heat(records);
    h.push_str("<section id=\"heatmap\">\n<h2>Heat map</h2>\n");
    if heat.pairs.is_empty() {
        h.push_str(
            "<p class=\"note\">No two matrix dimensions with two or more values each \
             occur together: nothing to draw.</p>\n</section>\n",
        );
        return;
    }
    let failing = heat.pairs.iter().filter(|p| p.failed > 0).count();
    let _ = writeln!(
        h,
        "<p class=\"note\">Failed/total per pair of values of two dimensions (harness \
         errors counted apart as +Ne); empty cells: no case. {} pairs, {failing} with failures \
         (listed first).{}</p>",
        heat.pairs.len(),
        if left_out > 0 {
            format!(" {left_out} more pairs left out to keep this file small.")
        } else {
            String::new()
        }
    );
    h.push_str("<label>Pair: <select id=\"heat-pair\">\n");
    let groups = [("with failures", true), ("all passing", false)];
    for (label, with) in groups {
        let members: Vec<(usize, &HeatPair)> = heat
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| (p.failed > 0) == with)
            .collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<optgroup label=\"{label}\">");
        for (i, p) in members {
            let _ = writeln!(
                h,
                "<option value=\"{i}\"{}>{} \u{00d7} {} ({} failed)</option>",
                if i == 0 { " selected" } else { "" },
                esc(&heat.keys[p.a].name),
                esc(&heat.keys[p.b].name),
                p.failed
            );
        }
        h.push_str("</optgroup>\n");
    }
    h.push_str("</select></label>\n<div id=\"heat-grid\">\n");
    grid_html(h, &heat, &heat.pairs[0]);
    h.push_str("</div>\n");
    // JSON in a script element: `<` only occurs in strings, where \u003c means the same.
    let json = serde_json::to_string(&heat)
        .unwrap_or_else(|_| "{\"keys\":[],\"pairs\":[]}".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"heat-data\">{json}</script>\n</section>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Ending, Mismatch, MismatchKind, Outcome};
    use crate::record::{Line, Transcript};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn line(ms: u64, dir: &str, text: &str) -> Line {
        Line {
            ms,
            dir: dir.into(),
            text: text.into(),
        }
    }

    fn rec(id: &str, verdict: Verdict, dims: &[(&str, &str)]) -> Record {
        Record {
            id: id.into(),
            verdict,
            section: id.split('/').next().unwrap_or("").into(),
            dims: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            settings: dims
                .iter()
                .map(|(k, v)| (format!("smtp.{k}"), v.to_string()))
                .collect(),
            schema_version: crate::record::SCHEMA_VERSION,
            scenario: crate::record::Scenario {
                text: "plain listener".into(),
                ..Default::default()
            },
            expected: Outcome::new(Ending::Delivered, None, "job done".into()),
            observed: if verdict == Verdict::Fail {
                Outcome::new(Ending::Failed, Some("auth_failed"), "job failed".into())
            } else {
                Outcome::new(Ending::Delivered, None, "job done".into())
            },
            mismatches: if verdict == Verdict::Fail {
                vec![Mismatch::new(
                    MismatchKind::Outcome,
                    "error class: expected none, got \"auth_failed\" <&>".into(),
                )]
            } else {
                vec![]
            },
            signature: None,
            harness_error: (verdict == Verdict::HarnessError).then(|| "port in use".into()),
            crash: (verdict == Verdict::Crash).then(|| "the device rebooted".into()),
            findings: vec![],
            latitude: vec![],
            transcripts: vec![Transcript {
                server: "smtp".into(),
                listener: "plain".into(),
                lines: vec![line(0, "server", "220 fake ESMTP")],
                fired: vec![],
            }],
            console: vec![line(1, "harness", "reset")],
            attempts: 1,
            millis: 1234,
            micros: 1_234_000,
            evidence: None,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "hil-report-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Parses XML with quick-xml, checking it is well formed, and returns per element
    /// name its attribute sets and all text (unescaped).
    type Elements = Vec<(String, BTreeMap<String, String>)>;

    fn parse_xml(x: &str) -> (Elements, String) {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(x);
        reader.config_mut().check_end_names = true;
        let mut elements = Vec::new();
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) | Event::Empty(e) => {
                    let name = AsRef::<str>::as_ref(&e.name()).to_string();
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                AsRef::<str>::as_ref(&a.key).to_string(),
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            )
                        })
                        .collect();
                    elements.push((name, attrs));
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let n = r.xml10_content();
                    let s = match &*n {
                        "amp" => "&".to_string(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => {
                            let ch = r
                                .resolve_char_ref()
                                .unwrap()
                                .unwrap_or_else(|| panic!("unknown entity {other}"));
                            ch.to_string()
                        }
                    };
                    text.push_str(&s);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        (elements, text)
    }

    #[test]
    fn junit_parses_with_counts_and_escaping() {
        let mut bad = rec("auth/mech=plain", Verdict::Fail, &[("mech", "plain")]);
        bad.transcripts[0].lines.push(line(
            3,
            "client",
            "\"quoted\" <tag> & \u{1}\u{1b}[0m\r\u{ffff} end",
        ));
        let records = vec![
            rec("auth/mech=login", Verdict::Pass, &[("mech", "login")]),
            bad,
            rec(
                "tls/mode=smtps",
                Verdict::HarnessError,
                &[("mode", "smtps")],
            ),
            rec("tls/mode=none", Verdict::Pass, &[("mode", "none")]),
        ];
        let meta = RunMeta {
            command: "hil run --report \"out dir\" <x>".into(),
            device: "sim".into(),
            started: "2025-01-01T00:00:00Z".into(),
            ..RunMeta::default()
        };
        let x = junit(&records, &meta);
        for c in x.chars() {
            let ok = matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{d7ff}').contains(&c)
                || ('\u{e000}'..='\u{fffd}').contains(&c)
                || c >= '\u{10000}';
            assert!(ok, "character {:?} not allowed in XML 1.0", c);
        }
        let (els, text) = parse_xml(&x);
        let find = |name: &str| -> Vec<&BTreeMap<String, String>> {
            els.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, a)| a)
                .collect()
        };
        let root = find("testsuites");
        assert_eq!(root.len(), 1);
        assert_eq!(root[0]["tests"], "4");
        assert_eq!(root[0]["failures"], "1");
        assert_eq!(root[0]["errors"], "1");
        let suites = find("testsuite");
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0]["name"], "auth");
        assert_eq!(suites[0]["tests"], "2");
        assert_eq!(suites[0]["failures"], "1");
        assert_eq!(suites[0]["errors"], "0");
        assert_eq!(suites[1]["name"], "tls");
        assert_eq!(suites[1]["errors"], "1");
        let cases = find("testcase");
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[1]["name"], "auth/mech=plain");
        assert_eq!(cases[1]["classname"], "auth");
        assert_eq!(cases[1]["time"], "1.234");
        let failure = find("failure");
        assert_eq!(failure.len(), 1);
        assert_eq!(
            failure[0]["message"],
            "error class: expected none, got \"auth_failed\" <&>"
        );
        assert!(x.contains(
            "message=\"error class: expected none, got &quot;auth_failed&quot; &lt;&amp;&gt;\""
        ));
        assert_eq!(find("error")[0]["message"], "port in use");
        let command = find("property")
            .into_iter()
            .find(|p| p["name"] == "command")
            .unwrap();
        assert_eq!(command["value"], "hil run --report \"out dir\" <x>");
        assert!(
            text.contains("3ms C: \"quoted\" <tag> & \\x01\\x1B[0m\\x0D\\u{FFFF} end"),
            "{text}"
        );
        assert!(text.contains("220 fake ESMTP"));
        // Passing cases without findings have no system-out.
        assert_eq!(find("system-out").len(), 2);
    }

    #[test]
    fn escaping_of_html_and_shell() {
        assert_eq!(esc("a<b>&\"'\u{0}"), "a&lt;b&gt;&amp;&quot;&#39;\\x00");
        assert_eq!(esc_attr("a\nb\tc"), "a&#10;b&#9;c");
        assert_eq!(
            shell_word("tls/mode=smtps,cert=ok"),
            "tls/mode=smtps,cert=ok"
        );
        assert_eq!(shell_word("a b'c"), "'a b'\\''c'");
    }

    #[test]
    fn html_has_failures_first_and_a_heat_map() {
        let mut records = Vec::new();
        for tls in ["none", "starttls", "smtps"] {
            for auth in ["plain", "login"] {
                let v = if tls == "smtps" && auth == "login" {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                };
                records.push(rec(
                    &format!("d/tls={tls},auth={auth}"),
                    v,
                    &[("tls", tls), ("auth", auth), ("one", "x")],
                ));
            }
        }
        records.push(rec(
            "d/tls=none,auth=cram",
            Verdict::HarnessError,
            &[("tls", "none"), ("auth", "cram")],
        ));
        let h = html(&records, &RunMeta::default());
        let fail = h.find("d/tls=smtps,auth=login").unwrap();
        let herr = h.find("d/tls=none,auth=cram").unwrap();
        let pass = h.find("<code>d/tls=none,auth=plain").unwrap();
        assert!(fail < herr && herr < pass);
        assert!(h.contains("--case d/tls=smtps,auth=login"));
        // One pair only (`one` has a single value): auth x tls; cell (login, smtps) 1/1.
        assert!(h.contains("auth \u{00d7} tls (1 failed)"), "{h}");
        assert!(h.contains(">1/1</td>"));
        assert!(h.contains(">0/0 +1e</td>"));
        let escaped = "error class: expected none, got &quot;auth_failed&quot; &lt;&amp;&gt;";
        assert!(h.contains(escaped));
    }

    #[test]
    fn html_opens_on_causes_then_findings_with_a_table_per_section() {
        let mut records = Vec::new();
        for (i, sec) in ["tls", "auth"].iter().enumerate() {
            for n in 0..3 {
                let v = if n == 0 { Verdict::Fail } else { Verdict::Pass };
                let mut r = rec(&format!("{sec}/n={n}"), v, &[("n", &n.to_string())]);
                if n == 1 && i == 0 {
                    r.findings = vec!["credentials over plaintext".into()];
                }
                r.signature = Signature::of(&r).map(|s| s.key());
                records.push(r);
            }
        }
        let meta = RunMeta {
            baseline: Some(crate::baseline::BaselineReport {
                source: "old/".into(),
                known: [("auth/n=0".to_string(), "FW-1".to_string())].into(),
                ..Default::default()
            }),
            ..RunMeta::default()
        };
        let h = html(&records, &meta);
        let causes = h.find("<section id=\"failures\">").unwrap();
        let findings = h.find("<section id=\"findings\">").unwrap();
        let passed = h.find("<section id=\"passed\">").unwrap();
        assert!(causes < findings && findings < passed);
        // One group of two failures, one of them known.
        assert!(h.contains("in 1 group</h2>"), "{h}");
        assert!(h.contains("(1 of 2 known)"), "{h}");
        // The finding of a passing case has its own section and badge.
        let f = &h[findings..passed];
        assert!(
            f.contains("credentials over plaintext") && f.contains("tls/n=1"),
            "{f}"
        );
        // The sections table: tls 3 cases, 2 passed, 1 failed; auth's failure known.
        assert!(
            h.contains(
                "<tr><td><code>tls</code></td><td>3</td><td>2</td><td class=\"fail\">1</td>"
            ),
            "{h}"
        );
        assert!(h.contains("<tr><td><code>auth</code></td><td>3</td><td>2</td><td>0</td><td>0</td><td>0</td><td>1</td></tr>"), "{h}");
        // JUnit: the known failure is skipped, the other fails, the finding a property.
        let x = junit(&records, &meta);
        assert!(
            x.contains("<skipped message=\"known deviation: FW-1\"/>"),
            "{x}"
        );
        assert!(x.contains("<property name=\"finding\" value=\"credentials over plaintext\"/>"));
        assert!(
            x.contains("failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
    }

    #[test]
    fn heat_map_puts_the_clearest_failing_pair_first_and_is_capped() {
        let mut records = Vec::new();
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..2 {
                    let v = if a == 2 { Verdict::Fail } else { Verdict::Pass };
                    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
                    records.push(rec(
                        &format!("s/a={a},b={b},c={c}"),
                        v,
                        &[("a", &a), ("b", &b), ("c", &c)],
                    ));
                }
            }
        }
        let (h, left) = heat(&records);
        assert_eq!(left, 0);
        assert_eq!(h.pairs.len(), 3);
        // a x c (3x2) before a x b (3x3): the same pattern in a smaller grid.
        assert_eq!(
            (
                h.keys[h.pairs[0].a].name.as_str(),
                h.keys[h.pairs[0].b].name.as_str()
            ),
            ("a", "c")
        );
        // b x c last: a third fails in every cell, no clear pattern.
        assert_eq!((h.pairs[2].a, h.pairs[2].b), (1, 2));
        assert_eq!(h.pairs[2].failed, 6);

        // Many values: capped at MAX_VALUES per key.
        let many: Vec<Record> = (0..100)
            .map(|i| {
                let v = i.to_string();
                rec(
                    &format!("s/n={i}"),
                    Verdict::Pass,
                    &[("n", &v), ("m", if i % 2 == 0 { "x" } else { "y" })],
                )
            })
            .collect();
        let (h, _) = heat(&many);
        let n = h.keys.iter().find(|k| k.name == "n").unwrap();
        assert_eq!(n.values.len(), MAX_VALUES);
        assert_eq!(n.values[0], "0");
        assert_eq!(n.values[10], "10");
        assert_eq!(n.values[MAX_VALUES - 1], "(61 other values)");
        assert_eq!(h.pairs[0].counts.iter().map(|c| c[0]).sum::<usize>(), 100);
    }

    fn write_jsonl(path: &Path, records: &[Record]) {
        let mut f = std::fs::File::create(path).unwrap();
        for r in records {
            crate::record::append(&mut f, r).unwrap();
        }
    }

    #[test]
    fn merge_takes_a_records_packet_capture_along() {
        let d = temp_dir("merge-evidence");
        let s1 = d.join("s1");
        std::fs::create_dir_all(s1.join("evidence")).unwrap();
        std::fs::write(s1.join("evidence/t_x_3.pcapng"), b"pcap bytes").unwrap();
        let mut r = rec("t/x=3", Verdict::Fail, &[("x", "3")]);
        r.evidence = Some("evidence/t_x_3.pcapng".into());
        write_jsonl(&s1.join(RESULTS), &[r]);
        let out = d.join("out");
        merge(std::slice::from_ref(&s1), &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("evidence/t_x_3.pcapng")).unwrap(),
            b"pcap bytes"
        );
        // Re-rendering in place leaves the file as it is.
        merge(std::slice::from_ref(&s1), &s1).unwrap();
        assert!(s1.join("evidence/t_x_3.pcapng").is_file());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn merge_joins_shards() {
        let d = temp_dir("merge");
        let (s1, s2) = (d.join("s1"), d.join("s2"));
        std::fs::create_dir_all(&s1).unwrap();
        std::fs::create_dir_all(&s2).unwrap();
        write_jsonl(
            &s1.join(RESULTS),
            &[
                rec("t/x=2", Verdict::Pass, &[("x", "2")]),
                rec("t/x=1", Verdict::HarnessError, &[("x", "1")]),
                rec("t/x=3", Verdict::Fail, &[("x", "3")]),
            ],
        );
        let meta1 = RunMeta {
            device: "sim".into(),
            started: "2025-01-01T10:00:00Z".into(),
            finished: "2025-01-01T10:05:00Z".into(),
            duration_s: 300.0,
            shard: Some("1/2".into()),
            ..RunMeta::default()
        };
        write_all(&s1, &[], &meta1).unwrap();
        // The second shard as a bare file, with a last line cut short.
        let f2 = d.join("shard2.jsonl");
        write_jsonl(
            &f2,
            &[
                rec("t/x=1", Verdict::Pass, &[("x", "1")]),
                rec("t/x=4", Verdict::Pass, &[("x", "4")]),
                rec("t/x=3", Verdict::HarnessError, &[("x", "3")]),
            ],
        );
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&f2).unwrap();
            f.write_all(b"{\"id\":\"t/x=5\",\"verd").unwrap();
        }
        let out = d.join("out");
        let s = merge(&[s1.clone(), f2.clone()], &out).unwrap();
        assert_eq!(s.inputs, 2);
        assert_eq!(s.records_read, 6);
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.skipped.len(), 1, "the cut last line is said");
        assert_eq!(s.skipped[0].line, 4);
        assert_eq!(
            s.counts,
            Counts {
                cases: 4,
                passed: 3,
                failed: 1,
                harness_errors: 0,
                crashes: 0
            }
        );
        assert_eq!(s.line(), "4 cases: 3 passed, 1 failed, 0 harness errors");
        let merged = crate::record::read(&out.join(RESULTS)).unwrap();
        let ids: Vec<&str> = merged.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["t/x=1", "t/x=2", "t/x=3", "t/x=4"]);
        // The later non-harness-error record wins: x=1 passed in shard 2, x=3 failed in shard 1.
        assert_eq!(merged[0].verdict, Verdict::Pass);
        assert_eq!(merged[2].verdict, Verdict::Fail);
        for f in ["junit.xml", "report.html", META] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let m: RunMeta = serde_json::from_slice(&std::fs::read(out.join(META)).unwrap()).unwrap();
        assert_eq!(m.device, "sim");
        assert_eq!(m.started, "2025-01-01T10:00:00Z");
        assert_eq!(m.duration_s, 300.0);
        assert_eq!(m.inputs.len(), 2);

        // Re-rendering in place keeps results.jsonl, and one input keeps its meta.
        let s = merge(std::slice::from_ref(&out), &out).unwrap();
        assert_eq!(s.counts.cases, 4);
        assert_eq!(crate::record::read(&out.join(RESULTS)).unwrap(), merged);
        let again: RunMeta =
            serde_json::from_slice(&std::fs::read(out.join(META)).unwrap()).unwrap();
        assert_eq!(again, m);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn merge_refuses_conflicts_and_names_bad_inputs() {
        let d = temp_dir("conflict");
        let (a, b) = (d.join("a.jsonl"), d.join("b.jsonl"));
        write_jsonl(&a, &[rec("t/x=1", Verdict::Pass, &[("x", "1")])]);
        let mut other = rec("t/x=1", Verdict::Pass, &[("x", "1")]);
        other.settings[0].1 = "2".into();
        write_jsonl(&b, &[other]);
        let e = merge(&[a.clone(), b.clone()], &d.join("out"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t/x=1"), "{e}");
        assert!(e.contains("a.jsonl") && e.contains("b.jsonl"), "{e}");
        assert!(!d.join("out").exists());

        let missing = d.join("nope");
        let e = merge(&[a.clone(), missing], &d.join("out"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        let e = merge(std::slice::from_ref(&d), &d.join("out"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no results.jsonl"), "{e}");
        std::fs::write(&b, "not json\n{}\n").unwrap();
        let e = merge(std::slice::from_ref(&b), &d.join("out"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.jsonl:1"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_all_keeps_results_jsonl() {
        let d = temp_dir("keep");
        std::fs::write(d.join(RESULTS), "kept\n").unwrap();
        write_all(
            &d,
            &[rec("a/x=1", Verdict::Fail, &[("x", "1")])],
            &RunMeta::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(d.join(RESULTS)).unwrap(), "kept\n");
        assert!(d.join("report.html").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
