//! Known deviations: `hil run --baseline FILE` marks the failures a baseline already
//! knows, so that the exit status and the summary count only new ones, and reports
//! the known ones that now pass as fixed. A baseline is either a previous run
//! (its report directory or `results.jsonl`: a case is known when it failed there
//! with the same signature) or a reviewed `known-deviations.toml`:
//!
//! ```toml
//! [[deviation]]
//! signature = "details:mail:delivered:size_param"   # or: case = "delivery/…"
//! reason = "the mail engine never sends SIZE="
//! ticket = "FW-123"
//! ```
//!
//! Harness errors are never known: they say nothing of the device.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::{self, Record, Verdict};

/// Why a baseline cannot be used; each names the file (and the entry).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("--baseline {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--baseline: {0}")]
    Records(#[from] record::ReadError),
    #[error("--baseline {}: not a known-deviations file: {source}", path.display())]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("--baseline {}: deviation {index}: {why}", path.display())]
    Entry {
        path: PathBuf,
        /// From 1.
        index: usize,
        why: String,
    },
    #[error("--baseline {}: neither a report directory, a results.jsonl nor a .toml file of known deviations", path.display())]
    Kind { path: PathBuf },
}

/// One reviewed deviation of `known-deviations.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// A failure group's signature (`hil run` prints them; results.jsonl has them).
    #[serde(default)]
    pub signature: Option<String>,
    /// Or one case id.
    #[serde(default)]
    pub case: Option<String>,
    /// Why the deviation is accepted for now.
    pub reason: String,
    /// Where it is tracked.
    pub ticket: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviationsFile {
    #[serde(default)]
    deviation: Vec<Deviation>,
}

/// A loaded baseline.
#[derive(Debug, Clone)]
pub enum Baseline {
    /// A previous run's records that did not pass: case id → signature.
    Run {
        source: String,
        failed: BTreeMap<String, String>,
    },
    /// Reviewed deviations.
    Deviations {
        source: String,
        list: Vec<Deviation>,
    },
}

/// What a baseline says of a run (kept in run.json, shown by the reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineReport {
    /// The baseline file.
    pub source: String,
    /// The known failures of this run: case id → why it is known.
    pub known: BTreeMap<String, String>,
    /// Known failures (of a previous run, or deviations naming a case) that pass now.
    pub fixed: Vec<String>,
    /// Deviations naming a signature that no failure of this run has.
    pub unseen: Vec<String>,
}

impl BaselineReport {
    /// Whether the case is a known failure.
    pub fn knows(&self, id: &str) -> Option<&str> {
        self.known.get(id).map(String::as_str)
    }
}

impl Baseline {
    /// Reads a report directory, a `results.jsonl` or a `.toml` file of deviations.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let source = path.display().to_string();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(path).map_err(|e| BaselineError::Read {
                path: path.to_path_buf(),
                source: e,
            })?;
            let file: DeviationsFile = toml::from_str(&text).map_err(|e| BaselineError::Toml {
                path: path.to_path_buf(),
                source: e,
            })?;
            for (i, d) in file.deviation.iter().enumerate() {
                let why = match (&d.signature, &d.case) {
                    (Some(_), Some(_)) => Some("give signature or case, not both"),
                    (None, None) => Some("give a signature or a case"),
                    _ if d.reason.trim().is_empty() => Some("reason is empty"),
                    _ if d.ticket.trim().is_empty() => Some("ticket is empty"),
                    _ => None,
                };
                if let Some(why) = why {
                    return Err(BaselineError::Entry {
                        path: path.to_path_buf(),
                        index: i + 1,
                        why: why.into(),
                    });
                }
            }
            return Ok(Baseline::Deviations {
                source,
                list: file.deviation,
            });
        }
        let results = if path.is_dir() {
            path.join(crate::report::RESULTS)
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            path.to_path_buf()
        } else {
            return Err(BaselineError::Kind {
                path: path.to_path_buf(),
            });
        };
        if !results.is_file() {
            return Err(BaselineError::Read {
                path: results,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let (records, skipped) = record::read_checked(&results)?;
        for s in &skipped {
            tracing::warn!("--baseline {s}");
        }
        let failed = records
            .into_iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Crash))
            .map(|r| {
                let sig = signature_of(&r);
                (r.id, sig)
            })
            .collect();
        Ok(Baseline::Run { source, failed })
    }

    /// Which failures of `records` the baseline knows, which known ones now pass.
    pub fn apply(&self, records: &[Record]) -> BaselineReport {
        let mut out = BaselineReport::default();
        let failing = |r: &&Record| matches!(r.verdict, Verdict::Fail | Verdict::Crash);
        match self {
            Baseline::Run { source, failed } => {
                out.source = source.clone();
                for r in records.iter().filter(failing) {
                    if failed.get(&r.id) == Some(&signature_of(r)) {
                        out.known
                            .insert(r.id.clone(), format!("failed the same way in {source}"));
                    }
                }
                for r in records.iter().filter(|r| r.verdict == Verdict::Pass) {
                    if failed.contains_key(&r.id) {
                        out.fixed.push(r.id.clone());
                    }
                }
            }
            Baseline::Deviations { source, list } => {
                out.source = source.clone();
                let mut seen: BTreeSet<usize> = BTreeSet::new();
                for r in records.iter().filter(failing) {
                    let sig = signature_of(r);
                    let hit = list.iter().position(|d| {
                        d.case.as_deref() == Some(r.id.as_str())
                            || d.signature.as_deref() == Some(sig.as_str())
                    });
                    if let Some(i) = hit {
                        seen.insert(i);
                        let d = &list[i];
                        out.known
                            .insert(r.id.clone(), format!("{} ({})", d.reason, d.ticket));
                    }
                }
                for r in records.iter().filter(|r| r.verdict == Verdict::Pass) {
                    if list
                        .iter()
                        .any(|d| d.case.as_deref() == Some(r.id.as_str()))
                    {
                        out.fixed.push(r.id.clone());
                    }
                }
                for (i, d) in list.iter().enumerate() {
                    if let (Some(sig), false) = (&d.signature, seen.contains(&i)) {
                        out.unseen
                            .push(format!("{sig}: {} ({})", d.reason, d.ticket));
                    }
                }
            }
        }
        out
    }
}

/// A record's failure signature: the one it was written with, else computed.
pub fn signature_of(r: &Record) -> String {
    r.signature.clone().unwrap_or_else(|| {
        crate::triage::Signature::of(r)
            .map(|s| s.key())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Ending, Mismatch, MismatchKind, Outcome};

    fn rec(id: &str, class: Option<&str>) -> Record {
        let mut r = Record {
            id: id.into(),
            expected: Outcome::new(Ending::Delivered, None, String::new()),
            ..Record::default()
        };
        if let Some(c) = class {
            r.verdict = Verdict::Fail;
            r.observed = Outcome::new(Ending::Failed, Some(c), String::new());
            r.mismatches = vec![Mismatch::new(MismatchKind::Outcome, "x".into())];
        } else {
            r.observed = r.expected.clone();
        }
        r
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hil-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_previous_run_knows_the_same_failure_only() {
        let before = vec![rec("a", Some("cert_name")), rec("b", Some("auth_failed"))];
        let mut text = String::new();
        for r in &before {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        let b = Baseline::load(&temp("results.jsonl", &text)).unwrap();
        let now = vec![
            rec("a", Some("cert_name")),
            rec("b", None),
            rec("c", Some("auth_failed")),
        ];
        let rep = b.apply(&now);
        assert_eq!(rep.known.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(rep.fixed, vec!["b".to_string()]);
        // The same case failing another way is new.
        let rep = b.apply(&[rec("a", Some("cert_chain"))]);
        assert!(rep.known.is_empty());
    }

    #[test]
    fn reviewed_deviations_match_by_signature_or_case_and_are_checked() {
        let sig = signature_of(&rec("x", Some("cert_name")));
        let p = temp(
            "known.toml",
            &format!(
                "[[deviation]]\nsignature = \"{sig}\"\nreason = \"CN only\"\nticket = \"FW-1\"\n\
                 [[deviation]]\ncase = \"b\"\nreason = \"flaky\"\nticket = \"FW-2\"\n\
                 [[deviation]]\nsignature = \"nothing:like:this\"\nreason = \"old\"\nticket = \"FW-3\"\n"
            ),
        );
        let b = Baseline::load(&p).unwrap();
        let rep = b.apply(&[rec("a", Some("cert_name")), rec("b", None)]);
        assert_eq!(
            rep.known.get("a").map(String::as_str),
            Some("CN only (FW-1)")
        );
        assert_eq!(rep.fixed, vec!["b".to_string()]);
        assert_eq!(
            rep.unseen,
            vec!["nothing:like:this: old (FW-3)".to_string()]
        );
        let bad = temp(
            "bad.toml",
            "[[deviation]]\ncase = \"a\"\nreason = \"r\"\nticket = \"\"\n",
        );
        let e = Baseline::load(&bad).unwrap_err().to_string();
        assert!(e.contains("deviation 1: ticket is empty"), "{e}");
        let bad = temp(
            "bad2.toml",
            "[[deviation]]\ncase = \"a\"\nreason = \"r\"\nticket = \"t\"\nwho = 1\n",
        );
        let e = Baseline::load(&bad).unwrap_err().to_string();
        assert!(e.contains("not a known-deviations file"), "{e}");
    }
}
