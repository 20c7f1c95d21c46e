//! The record of one case as reports keep it: one JSON object per line in
//! `results.jsonl`, written as each case ends, read back by `--resume` and by
//! `hil report --merge`. Everything in it is already redacted: no credential
//! appears in a record.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The device did what the oracle expects.
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

/// One connection's transcript, as the fake server recorded it (credentials
/// already redacted by the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// `smtp` or `pop3`.
    pub server: String,
    /// The listener's name (`plain`, `starttls`, `tls`, …).
    pub listener: String,
    /// `"   12ms C: EHLO mfp"` lines.
    pub lines: Vec<String>,
}

/// The record of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The case id (`section/dim=value,…`); `hil run --case ID` re-runs it.
    pub id: String,
    pub verdict: Verdict,
    /// The matrix section the case belongs to (`delivery`, `tls`, `auth`, …).
    pub section: String,
    /// The case's value of every matrix dimension (secrets masked), for the heat map.
    pub dims: BTreeMap<String, String>,
    /// The settings applied after `reset`, in order (secrets masked).
    pub settings: Vec<(String, String)>,
    /// The server side of the case in words (listener, certificate, faults, …).
    pub scenario: String,
    /// What the oracle expects, in words.
    pub expected: String,
    /// What was observed, in words.
    pub observed: String,
    /// Every difference between the two; empty on a pass.
    pub mismatches: Vec<String>,
    /// Why the harness could not run the case, for `HarnessError`.
    pub harness_error: Option<String>,
    /// What happened, for `Crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    /// Security findings the device's behaviour shows (plaintext after a failed
    /// STARTTLS, sending without AUTH, credentials over plaintext).
    pub findings: Vec<String>,
    /// Every server connection the case made.
    pub transcripts: Vec<Transcript>,
    /// The console conversation, `"   12ms > reset"` lines (secrets masked).
    pub console: Vec<String>,
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
    #[error("{}:{line}: not a case record: {source}", path.display())]
    NotARecord {
        path: PathBuf,
        /// From 1.
        line: usize,
        source: serde_json::Error,
    },
}

/// Reads a `results.jsonl`. A last line cut short (the run was killed while
/// writing) is skipped; any other bad line is an error naming the file and line.
pub fn read(path: &Path) -> Result<Vec<Record>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let mut out = Vec::new();
    let last = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == last => break,
            Err(source) => {
                return Err(ReadError::NotARecord {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
            id: id.into(),
            verdict: Verdict::Pass,
            section: "s".into(),
            dims: BTreeMap::new(),
            settings: vec![("smtp.tls".into(), "none".into())],
            scenario: String::new(),
            expected: String::new(),
            observed: String::new(),
            mismatches: vec![],
            harness_error: None,
            crash: None,
            findings: vec![],
            transcripts: vec![],
            console: vec![],
            attempts: 1,
            millis: 3,
            micros: 3000,
            evidence: None,
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
        };
        r.transcripts.push(t("pop3"));
        assert!(!r.reached_smtp_server(), "a POP login only");
        r.transcripts.push(t("smtp"));
        assert!(r.reached_smtp_server());
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
        let got = read(&p).unwrap();
        assert_eq!(got, vec![rec("a"), rec("b")]);
        std::fs::write(&p, "garbage\n{}\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
