//! `hil report --diff OLD NEW`: what changed between two runs (two firmware builds,
//! two nights): the new failures grouped by cause, the fixed cases, and the cases
//! whose outcome changed (another failure signature, or another observed ending), in
//! text and in `diff.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::record::{Record, Verdict};
use crate::report::{self, ReportError, RunMeta};

/// One case whose outcome changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub old: String,
    pub new: String,
}

/// What changed from one run to another.
#[derive(Debug, Clone)]
pub struct Diff {
    pub old: String,
    pub new: String,
    /// NEW's records.
    pub records: Vec<Record>,
    pub meta: RunMeta,
    /// Cases that fail (or crash) in NEW and passed in OLD, or failed there another
    /// way, or were not in OLD: indexes into `records`.
    pub new_failures: Vec<usize>,
    /// Cases that did not pass in OLD and pass in NEW.
    pub fixed: Vec<String>,
    /// Cases failing in both with another signature, or passing in both with
    /// another observed ending.
    pub changed: Vec<Change>,
    /// Cases that could not be run in NEW and could in OLD.
    pub new_harness_errors: Vec<String>,
    /// Cases of only one of the runs.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

fn failing(v: Verdict) -> bool {
    matches!(v, Verdict::Fail | Verdict::Crash)
}

/// Compares two runs, each a report directory or a `results.jsonl`.
pub fn diff(old: &Path, new: &Path) -> Result<Diff, ReportError> {
    let (old_records, _) = report::load_run(old)?;
    let (records, meta) = report::load_run(new)?;
    let before: BTreeMap<&str, &Record> = old_records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut d = Diff {
        old: old.display().to_string(),
        new: new.display().to_string(),
        records: Vec::new(),
        meta: meta.unwrap_or_default(),
        new_failures: Vec::new(),
        fixed: Vec::new(),
        changed: Vec::new(),
        new_harness_errors: Vec::new(),
        only_old: Vec::new(),
        only_new: Vec::new(),
    };
    let now: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    for o in &old_records {
        if !now.contains_key(o.id.as_str()) {
            d.only_old.push(o.id.clone());
        }
    }
    for (i, r) in records.iter().enumerate() {
        let sig = crate::baseline::signature_of(r);
        let Some(o) = before.get(r.id.as_str()) else {
            d.only_new.push(r.id.clone());
            if failing(r.verdict) {
                d.new_failures.push(i);
            }
            continue;
        };
        let old_sig = crate::baseline::signature_of(o);
        match (failing(o.verdict), failing(r.verdict)) {
            (false, true) => d.new_failures.push(i),
            (true, true) if old_sig != sig => d.new_failures.push(i),
            (true, false) if r.verdict == Verdict::Pass => d.fixed.push(r.id.clone()),
            _ => {}
        }
        if failing(o.verdict) && failing(r.verdict) && old_sig != sig {
            d.changed.push(Change {
                id: r.id.clone(),
                old: old_sig,
                new: sig,
            });
        } else if o.verdict == Verdict::Pass
            && r.verdict == Verdict::Pass
            && o.observed.short() != r.observed.short()
        {
            d.changed.push(Change {
                id: r.id.clone(),
                old: o.observed.short(),
                new: r.observed.short(),
            });
        }
        if r.verdict == Verdict::HarnessError && o.verdict != Verdict::HarnessError {
            d.new_harness_errors.push(r.id.clone());
        }
    }
    d.records = records;
    Ok(d)
}

impl Diff {
    /// NEW's new failures with NEW's passes, for grouping and explaining.
    fn triage(&self) -> (Vec<Record>, crate::triage::Triage) {
        let mut subset: Vec<Record> = self
            .new_failures
            .iter()
            .map(|&i| self.records[i].clone())
            .collect();
        subset.extend(
            self.records
                .iter()
                .filter(|r| r.verdict == Verdict::Pass)
                .cloned(),
        );
        let t = crate::triage::triage(&subset);
        (subset, t)
    }

    /// The diff as text: new failures by cause (with every case id), fixed cases,
    /// changed outcomes.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let (subset, t) = self.triage();
        let _ = writeln!(s, "from {} to {}", self.old, self.new);
        let _ = writeln!(
            s,
            "{} new failure{} in {} group{}{}",
            self.new_failures.len(),
            plural(self.new_failures.len()),
            t.groups.len(),
            plural(t.groups.len()),
            if t.groups.is_empty() { "" } else { ":" }
        );
        for g in &t.groups {
            let _ = writeln!(s, "{:>5}  {}", g.cases.len(), g.signature.words());
            for e in g.shared.iter().chain(&g.explained_by) {
                let _ = writeln!(s, "       {}", e.words(g.cases.len(), t.passes));
            }
            for &i in &g.cases {
                let _ = writeln!(s, "       {}", report::reproduce(&self.meta, &subset[i].id));
            }
        }
        let _ = writeln!(s, "{} fixed", self.fixed.len());
        for id in &self.fixed {
            let _ = writeln!(s, "       {id}");
        }
        let _ = writeln!(
            s,
            "{} changed outcome{}",
            self.changed.len(),
            plural(self.changed.len())
        );
        for c in &self.changed {
            let _ = writeln!(s, "       {}: {} -> {}", c.id, c.old, c.new);
        }
        if !self.new_harness_errors.is_empty() {
            let _ = writeln!(
                s,
                "{} case{} the harness could not run (not a verdict on the device)",
                self.new_harness_errors.len(),
                plural(self.new_harness_errors.len())
            );
            for id in &self.new_harness_errors {
                let _ = writeln!(s, "       {id}");
            }
        }
        if !self.only_old.is_empty() || !self.only_new.is_empty() {
            let _ = writeln!(
                s,
                "{} case{} only in the old run, {} only in the new one",
                self.only_old.len(),
                plural(self.only_old.len()),
                self.only_new.len()
            );
        }
        s
    }

    /// The diff as one self-contained HTML page.
    pub fn html(&self) -> String {
        let esc = report::escape_html;
        let (subset, t) = self.triage();
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>hil diff: {} new failures</title>\n<style>{}</style>\n</head>\n<body>\n\
             <h1>hil diff</h1>\n<p>from <code>{}</code> to <code>{}</code></p>\n",
            self.new_failures.len(),
            report::CSS,
            esc(&self.old),
            esc(&self.new)
        );
        let _ = writeln!(
            h,
            "<section id=\"new\"><h2>New failures ({}) in {} group{}</h2>",
            self.new_failures.len(),
            t.groups.len(),
            plural(t.groups.len())
        );
        for g in &t.groups {
            let _ = writeln!(
                h,
                "<div class=\"group\"><h3>{} case{}: {}</h3>\n<ul class=\"explain\">",
                g.cases.len(),
                plural(g.cases.len()),
                esc(&g.signature.words())
            );
            for e in g.shared.iter().chain(&g.explained_by) {
                let _ = writeln!(h, "<li>{}</li>", esc(&e.words(g.cases.len(), t.passes)));
            }
            h.push_str("</ul>\n<ul class=\"ids\">\n");
            for &i in &g.cases {
                let _ = writeln!(
                    h,
                    "<li><code class=\"case-id\">{}</code><br><code class=\"repro\">{}</code></li>",
                    esc(&subset[i].id),
                    esc(&report::reproduce(&self.meta, &subset[i].id))
                );
            }
            h.push_str("</ul></div>\n");
        }
        h.push_str("</section>\n");
        let _ = writeln!(
            h,
            "<section id=\"fixed\"><h2>Fixed ({})</h2><ul class=\"ids\">",
            self.fixed.len()
        );
        for id in &self.fixed {
            let _ = writeln!(h, "<li><code class=\"case-id\">{}</code></li>", esc(id));
        }
        h.push_str("</ul></section>\n");
        let _ = writeln!(
            h,
            "<section id=\"changed\"><h2>Changed outcomes ({})</h2><ul class=\"ids\">",
            self.changed.len()
        );
        for c in &self.changed {
            let _ = writeln!(
                h,
                "<li><code class=\"case-id\">{}</code>: <code>{}</code> → <code>{}</code></li>",
                esc(&c.id),
                esc(&c.old),
                esc(&c.new)
            );
        }
        h.push_str("</ul></section>\n</body>\n</html>\n");
        h
    }

    /// Writes `diff.html` into `dir` (created if missing).
    pub fn write_html(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("diff.html");
        report::write_file(&path, self.html().as_bytes())?;
        Ok(path)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
