//! The record of one case as reports keep it: one JSON object per line in
//! `results.jsonl`, written as each case ends, read back by `--resume` and by
//! `hil report --merge`. Everything in it is already redacted: no credential
//! appears in a record.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::outcome::{Mismatch, Outcome};

/// The version of the record's layout, written in every record
/// (docs/results.schema.json describes it). 2: typed `expected`, `observed`,
/// `mismatches`, `scenario`, transcript and console lines, and the failure `signature`.
pub const SCHEMA_VERSION: u32 = 2;

/// How a case ended.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The device did what the oracle expects.
    #[default]
    Pass,
    /// The device did something else: a device failure.
    Fail,
    /// The harness could not run the case (a port in use, a sim that died, a lost
    /// console, a profile that does not fit the device) even after its retries: not
    /// a verdict on the device.
    HarnessError,
    /// The device crashed, rebooted or hung during the case (recovered or not): its
    /// console log is kept; reports list crashes first.
    Crash,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::HarnessError => "harness_error",
            Verdict::Crash => "crash",
        }
    }
}

/// One line of a transcript or of the console log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Line {
    /// Milliseconds on the case's clock (the servers and the console share it).
    pub ms: u64,
    /// Who spoke: `client` (the device) or `server` in a transcript, `harness` or
    /// `device` on the console, `note` for the harness's own notes.
    pub dir: String,
    pub text: String,
}

impl std::fmt::Display for Line {
    /// `    12ms C: EHLO mfp`, the form the reports print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.dir.as_str() {
            "client" => "C",
            "server" => "S",
            "harness" => "H",
            "device" => "D",
            "note" => "N",
            other => other,
        };
        write!(f, "{:>6}ms {who}: {}", self.ms, self.text)
    }
}

/// One connection's transcript, as the fake server recorded it (credentials
/// already redacted by the server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transcript {
    /// `smtp` or `pop3`.
    pub server: String,
    /// The listener's name (`plain`, `starttls`, `tls`, …).
    pub listener: String,
    pub lines: Vec<Line>,
    /// The scripted faults that fired on the connection and the server's policies it
    /// met, in words: `rcpt #2: reply 450 4.2.0 Mailbox busy`,
    /// `rcpt #1: policy: recipient rule gone@hil.test (550)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<String>,
}

/// The server side of a case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scenario {
    /// `fake_server`, `closed_port` (nothing listening) or `silent_port` (connects
    /// never answered).
    pub target: String,
    /// The SMTP listener the device is sent to (`plain`, `starttls`, `tls`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    /// The zoo certificate the TLS listeners present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The case's `server.fault` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The AUTH mechanisms the server offers.
    #[serde(default)]
    pub auth: Vec<String>,
    #[serde(default)]
    pub require_auth: bool,
    /// The server relays only within this many seconds of a POP login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop_before_smtp_window_s: Option<u64>,
    /// The largest message the server takes, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// The scripted faults: `{step, nth?, probability?, action, …}` as in a scenario file.
    #[serde(default)]
    pub faults: Vec<serde_json::Value>,
    /// The same in words.
    pub text: String,
}

/// The record of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Record {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The case id (`section/dim=value,…`); `hil run --case ID` re-runs it.
    pub id: String,
    pub verdict: Verdict,
    /// The matrix section the case belongs to (`delivery`, `tls`, `auth`, …).
    pub section: String,
    /// The case's value of every matrix dimension (secrets masked), for the heat map.
    pub dims: BTreeMap<String, String>,
    /// The settings applied after `reset`, in order (secrets masked).
    pub settings: Vec<(String, String)>,
    /// The server side of the case (listener, certificate, faults, …).
    pub scenario: Scenario,
    /// What the oracle expects.
    pub expected: Outcome,
    /// What was observed.
    pub observed: Outcome,
    /// Every difference between the two; empty on a pass.
    pub mismatches: Vec<Mismatch>,
    /// For a case that did not pass: the key of its failure group (`triage.rs`), the
    /// same for every case that fails for the same reason; what baselines match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why the harness could not run the case, for `HarnessError`.
    pub harness_error: Option<String>,
    /// What happened, for `Crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    /// Security findings the device's behaviour shows (plaintext after a failed
    /// STARTTLS, sending without AUTH, credentials over plaintext).
    pub findings: Vec<String>,
    /// Where SPEC lets the firmware choose (docs/oracle.md, "Latitude"), what this
    /// device chose: `expired intermediate: refused under expiry`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latitude: Vec<String>,
    /// Every server connection the case made.
    pub transcripts: Vec<Transcript>,
    /// The console conversation (secrets masked).
    pub console: Vec<Line>,
    /// How many times the case ran (harness errors are retried).
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub millis: u64,
    /// The same in microseconds (0 in records written before it was kept).
    #[serde(default)]
    pub micros: u64,
    /// With `hil run --capture`, for a failed or crashed case: its packet capture
    /// (pcapng, TLS secrets embedded; raw and unredacted), relative to the report
    /// folder (`evidence/….pcapng`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// The folder of the report directory holding `--capture`'s pcapng files.
pub const EVIDENCE_DIR: &str = "evidence";

impl Record {
    /// Whether the case got as far as the fake SMTP server (one SMTP connection
    /// at least): a case that fails earlier tests nothing of the SMTP session.
    pub fn reached_smtp_server(&self) -> bool {
        self.transcripts.iter().any(|t| t.server == "smtp")
    }
}

/// The JSON Schema of one `results.jsonl` line (docs/results.schema.json is this).
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(Record);
    schema.insert(
        "$id".into(),
        "https://smtp-hil.invalid/results.schema.json".into(),
    );
    schema.insert(
        "description".into(),
        format!(
            "One line of hil's results.jsonl: the record of one case (schema_version {SCHEMA_VERSION})."
        )
        .into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Appends one record as a JSON line and flushes it, so a record is either whole on
/// disk or absent.
pub fn append(out: &mut impl Write, r: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Why a `results.jsonl` cannot be read; each names the file (and the line).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: a record of schema {found}, this hil reads schema {SCHEMA_VERSION}: re-run the cases (or use the hil that wrote it)", path.display())]
    OldSchema {
        path: PathBuf,
        line: usize,
        found: u64,
    },
    #[error("{}:{line}: not text (UTF-8): not a case record", path.display())]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{0} (read it with hil report, which skips it)")]
    CutShort(Skipped),
    #[error("{}:{line}: not a case record: {source}", path.display())]
    NotARecord {
        path: PathBuf,
        /// From 1.
        line: usize,
        source: serde_json::Error,
    },
}

/// A last line that was not read: the run stopped while writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// From 1.
    pub line: usize,
    pub bytes: usize,
    /// Only NUL bytes (what a file system may leave of a write a crash cut).
    pub nul: bool,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.nul {
            "NUL bytes (a crash while writing)"
        } else {
            "a record cut short (the run stopped while writing it)"
        };
        write!(
            f,
            "{}:{}: skipped: {} bytes of {what}",
            self.path.display(),
            self.line,
            self.bytes
        )
    }
}

/// Reads a `results.jsonl`: every line must be a record; any that is not (a line
/// cut short included) is an error naming the file and the line.
pub fn read(path: &Path) -> Result<Vec<Record>, ReadError> {
    let (records, skipped) = read_checked(path)?;
    match skipped.into_iter().next() {
        None => Ok(records),
        Some(s) => Err(ReadError::CutShort(s)),
    }
}

/// Reads a `results.jsonl` that a run may have been stopped in the middle of: NUL
/// bytes at the end, and a last line without its line end that is not a record, are
/// skipped and said ([`Skipped`]); any other bad line is an error naming the file and
/// the line (a line that is not UTF-8 too).
pub fn read_checked(path: &Path) -> Result<(Vec<Record>, Vec<Skipped>), ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let nuls = bytes.iter().rev().take_while(|b| **b == 0).count();
    let body = &bytes[..bytes.len() - nuls];
    let ends_whole = body.last().is_none_or(|b| *b == b'\n');
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    if ends_whole {
        // The empty piece after the last line end.
        lines.pop();
    }
    let last = lines.len();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let cut_short = n == last && !ends_whole;
        let Ok(l) = std::str::from_utf8(raw) else {
            if cut_short {
                skipped.push(Skipped {
                    path: path.to_path_buf(),
                    line: n,
                    bytes: raw.len(),
                    nul: false,
                });
                break;
            }
            return Err(ReadError::NotUtf8 {
                path: path.to_path_buf(),
                line: n,
            });
        };
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.push(r),
            Err(_) if cut_short => skipped.push(Skipped {
                path: path.to_path_buf(),
                line: n,
                bytes: raw.len(),
                nul: false,
            }),
            Err(source) => return Err(not_a_record(path, n, l, source)),
        }
    }
    if nuls > 0 {
        skipped.push(Skipped {
            path: path.to_path_buf(),
            line: if ends_whole { last + 1 } else { last.max(1) },
            bytes: nuls,
            nul: true,
        });
    }
    Ok((out, skipped))
}

/// A line that is JSON but not a record: one of another schema, or not one at all.
fn not_a_record(path: &Path, line: usize, l: &str, source: serde_json::Error) -> ReadError {
    let found = serde_json::from_str::<serde_json::Value>(l)
        .ok()
        .filter(|v| v.get("id").is_some())
        .map(|v| {
            v.get("schema_version")
                .and_then(|n| n.as_u64())
                .unwrap_or(1)
        });
    if let Some(found) = found.filter(|f| *f != u64::from(SCHEMA_VERSION)) {
        return ReadError::OldSchema {
            path: path.to_path_buf(),
            line,
            found,
        };
    }
    ReadError::NotARecord {
        path: path.to_path_buf(),
        line,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
            schema_version: SCHEMA_VERSION,
            id: id.into(),
            section: "s".into(),
            dims: BTreeMap::new(),
            settings: vec![("smtp.tls".into(), "none".into())],
            attempts: 1,
            millis: 3,
            micros: 3000,
            ..Record::default()
        }
    }

    #[test]
    fn a_case_reached_the_server_when_it_has_an_smtp_transcript() {
        let mut r = rec("a");
        assert!(!r.reached_smtp_server());
        let t = |server: &str| Transcript {
            server: server.into(),
            listener: "plain".into(),
            lines: vec![],
            fired: vec![],
        };
        r.transcripts.push(t("pop3"));
        assert!(!r.reached_smtp_server(), "a POP login only");
        r.transcripts.push(t("smtp"));
        assert!(r.reached_smtp_server());
    }

    /// docs/results.schema.json is the schema of the records this hil writes (run
    /// with HIL_BLESS=1 to write it after changing a record type).
    #[test]
    fn the_schema_in_docs_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results.schema.json");
        let now = json_schema();
        if std::env::var_os("HIL_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let docs = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            docs == now,
            "docs/results.schema.json is not the schema of Record: HIL_BLESS=1 cargo test -p hil --lib schema"
        );
    }

    #[test]
    fn round_trip_and_a_cut_last_line() {
        let dir = std::env::temp_dir().join(format!("hil-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("results.jsonl");
        let mut f = std::fs::File::create(&p).unwrap();
        append(&mut f, &rec("a")).unwrap();
        append(&mut f, &rec("b")).unwrap();
        f.write_all(b"{\"id\":\"c\",\"verd").unwrap();
        drop(f);
        // Strict: a line cut short is an error naming it; checked: skipped and said.
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("results.jsonl:3: skipped: 15 bytes of a record cut short"),
            "{e}"
        );
        let (got, skipped) = read_checked(&p).unwrap();
        assert_eq!(got, vec![rec("a"), rec("b")]);
        assert_eq!(skipped.len(), 1);
        assert_eq!((skipped[0].line, skipped[0].nul), (3, false));
        // NUL bytes after the last line, and after a line cut short.
        let whole = std::fs::read(&p).unwrap();
        let two = &whole[..whole.len() - 15];
        std::fs::write(&p, [two, &[0u8; 4096][..]].concat()).unwrap();
        let (got, skipped) = read_checked(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(skipped.len(), 1);
        let said = skipped[0].to_string();
        assert!(
            said.ends_with(
                "results.jsonl:3: skipped: 4096 bytes of NUL bytes (a crash while writing)"
            ),
            "{said}"
        );
        std::fs::write(&p, [&whole[..], &[0u8; 100][..]].concat()).unwrap();
        let (got, skipped) = read_checked(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            skipped.iter().map(|s| (s.line, s.nul)).collect::<Vec<_>>(),
            [(3, false), (3, true)]
        );
        // A line that is not UTF-8, anywhere but a cut-short end: an error naming it.
        std::fs::write(&p, [two, b"\xff\xfe{}\n", two].concat()).unwrap();
        let e = read_checked(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:3: not text (UTF-8)"), "{e}");
        // A complete last line that is not a record is not "cut short".
        std::fs::write(&p, [two, b"{\"id\":\"c\"\n"].concat()).unwrap();
        let e = read_checked(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:3: not a case record"), "{e}");
        std::fs::write(&p, "garbage\n{}\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:1"), "{e}");
        std::fs::write(&p, "{\"id\":\"x\",\"expected\":\"Delivered\"}\n{}\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:1: a record of schema 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
