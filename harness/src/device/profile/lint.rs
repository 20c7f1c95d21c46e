//! Lints: patterns that compile but cannot work. A pattern that matches the empty
//! line, or every line, reads blank lines and prompts as answers; an event pattern
//! that also matches a status line swallows answers; a job's end that the event
//! pattern does not match is taken for part of a command's answer. To see what a
//! pattern matches, each pattern is made to produce one line it matches (a sample,
//! read off its syntax tree), and the samples are tried against the other patterns.

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

use super::Profile;

/// A line that `pattern` matches, built from its syntax: the first branch of each
/// alternation, the fewest repetitions (one where at least one is needed), and a
/// plain letter or digit for each class. `None` if it cannot build one.
pub fn sample(pattern: &str) -> Option<String> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut out = String::new();
    build(&hir, &mut out, 0)?;
    // The sample must really match (look-arounds and anchors are left out above).
    Regex::new(pattern)
        .ok()
        .filter(|re| re.is_match(&out))
        .map(|_| out)
}

fn build(h: &Hir, out: &mut String, depth: usize) -> Option<()> {
    if depth > 64 || out.len() > 4096 {
        return None;
    }
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(()),
        HirKind::Literal(l) => {
            out.push_str(std::str::from_utf8(&l.0).ok()?);
            Some(())
        }
        HirKind::Class(Class::Unicode(c)) => {
            let pick = ['a', 'x', '0', 'A', '_', '-', ' ', '!', '#']
                .into_iter()
                .find(|ch| {
                    c.ranges()
                        .iter()
                        .any(|r| r.start() <= *ch && *ch <= r.end())
                })
                .or_else(|| {
                    c.ranges().iter().map(|r| r.start().max(' ')).find(|ch| {
                        c.ranges()
                            .iter()
                            .any(|r| r.start() <= *ch && *ch <= r.end())
                    })
                })?;
            out.push(pick);
            Some(())
        }
        HirKind::Class(Class::Bytes(c)) => {
            let b = c.ranges().first()?.start().max(b' ');
            out.push(char::from(b));
            Some(())
        }
        HirKind::Repetition(r) => {
            let n = r.min.clamp(0, 8);
            for _ in 0..n {
                build(&r.sub, out, depth + 1)?;
            }
            Some(())
        }
        HirKind::Capture(c) => build(&c.sub, out, depth + 1),
        HirKind::Concat(v) => {
            for s in v {
                build(s, out, depth + 1)?;
            }
            Some(())
        }
        HirKind::Alternation(v) => build(v.first()?, out, depth + 1),
    }
}

/// Lines no pattern of a console should read as an answer, besides the samples.
const PLAIN_LINES: &[&str] = &[
    "hello world",
    "0",
    "% x",
    "zz top",
    "---",
    "Total: 3 items",
    "[ ]",
];

/// Every lint problem of `p`, each naming the field.
pub fn lint(p: &Profile) -> Vec<String> {
    let mut named: Vec<(&str, &Regex)> = vec![
        ("status.error", &p.error),
        ("status.event", &p.event),
        ("answers.value", &p.value),
        ("answers.job_started", &p.job_started),
        ("answers.job_state", &p.job_state),
        ("answers.recipient", &p.recipient),
        ("events.job_done", &p.job_done),
        ("events.job_failed", &p.job_failed),
    ];
    if let Some(ok) = &p.ok {
        named.push(("status.ok", ok));
    }
    if let Some(c) = &p.continuation {
        named.push(("status.continuation", c));
    }
    if let Some(c) = &p.clock_answer {
        named.push(("answers.clock", c));
    }
    if let Some(pg) = &p.paging {
        named.push(("paging.more", &pg.more));
    }
    if let Some(c) = &p.crash {
        if let Some(r) = &c.pattern {
            named.push(("crash.pattern", r));
        }
        if let Some(r) = &c.boot {
            named.push(("crash.boot", r));
        }
    }
    let mut out = Vec::new();
    if let Some(pr) = &p.prompt {
        if pr.is_match("") {
            out.push(format!(
                "prompt {:?} matches an empty line: every line would start with a prompt",
                pr.as_str().trim_start_matches("^(?:").trim_end_matches(')')
            ));
        }
    }
    let samples: Vec<(&str, String)> = named
        .iter()
        .filter_map(|(f, re)| sample(re.as_str()).map(|s| (*f, s)))
        .collect();
    for (field, re) in &named {
        if re.is_match("") {
            out.push(format!(
                "{field} {:?} matches an empty line: it would read blank lines and bare prompts as {}",
                re.as_str(),
                what(field)
            ));
            continue;
        }
        let bank: Vec<&str> = samples
            .iter()
            .map(|(_, s)| s.as_str())
            .chain(PLAIN_LINES.iter().copied())
            .collect();
        if bank.iter().all(|l| re.is_match(l)) {
            out.push(format!(
                "{field} {:?} matches every line: it would read any answer as {}",
                re.as_str(),
                what(field)
            ));
        }
    }
    out.extend(overlaps(p, &samples));
    out
}

fn what(field: &str) -> &'static str {
    match field {
        "status.ok" => "success",
        "status.error" => "a refusal",
        "status.event" | "events.job_done" | "events.job_failed" => "an event",
        "status.continuation" => "part of a refusal",
        "paging.more" => "a pager",
        "crash.pattern" => "a crash",
        "crash.boot" => "a reboot",
        _ => "that answer",
    }
}

/// Status lines taken for events and the reverse; a job's end the event pattern
/// does not match.
fn overlaps(p: &Profile, samples: &[(&str, String)]) -> Vec<String> {
    let sample_of = |f: &str| {
        samples
            .iter()
            .find(|(g, _)| *g == f)
            .map(|(_, s)| s.clone())
    };
    let mut out = Vec::new();
    for status in ["status.ok", "status.error"] {
        if let Some(s) = sample_of(status) {
            if p.event.is_match(&s) {
                out.push(format!(
                    "status.event {:?} also matches {s:?}, a line of {status}: status lines would be kept aside as events and no answer would end",
                    p.event.as_str()
                ));
            }
        }
    }
    if let Some(s) = sample_of("status.event") {
        let status = [
            ("status.ok", p.ok.as_ref()),
            ("status.error", Some(&p.error)),
        ];
        for (f, re) in status {
            if re.is_some_and(|re| re.is_match(&s)) {
                out.push(format!(
                    "{f} also matches {s:?}, a line of status.event: an event arriving during a command would end its answer"
                ));
            }
        }
    }
    for f in ["events.job_done", "events.job_failed"] {
        if let Some(s) = sample_of(f) {
            if !p.event.is_match(&s) {
                out.push(format!(
                    "status.event {:?} does not match {s:?}, a line of {f}: a job that ends during a command would be read as part of the command's answer and its end lost",
                    p.event.as_str()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_match_their_patterns() {
        for p in [
            r"^OK$",
            r"^ERR (?<class>\S+)(?: (?<detail>.*))?$",
            r"^EVENT JOB (?<id>\d+) failed (?<class>\S+)(?: (?<detail>.*))?$",
            r"^Error \[(?<class>[^\]]+)\]: (?<detail>.*)$",
            r"^\s*to (?<address>\S+): (?<verdict>sent|refused)",
            r"(?i)^% ?commit failed",
            r"^\*\*\* ",
        ] {
            let s = sample(p).expect(p);
            assert!(Regex::new(p).expect(p).is_match(&s), "{p} {s:?}");
        }
        assert_eq!(sample(r"^OK$").as_deref(), Some("OK"));
        assert_eq!(
            sample(r"^EVENT JOB (?<id>\d+) done$").as_deref(),
            Some("EVENT JOB 0 done")
        );
    }
}
