//! From many failures to their few causes. Each case that did not pass gets a
//! [`Signature`]: where the device and the oracle part ways, read from the typed
//! outcomes and mismatch kinds of its record, never from free text. Failures with one
//! signature form a [`Group`]; for each group, fault localisation over the matrix
//! ranks the dimension values that explain it: common among its cases, rare among the
//! passing ones (the Ochiai coefficient, as spectrum-based fault localisation uses).
//!
//! Where the two part ways: a job runs SPEC §3's steps in order, and each error
//! class stops it at one of them ([`Step::of_class`]). When the device stops earlier
//! than the oracle expects, the device's class is the cause and the oracle's is not
//! (the job never got there): `cn-only` firmware fails `cert_name` where a delivery,
//! a `cert_chain` or a `cert_revoked` failure was expected, one cause. When the
//! device goes on past the step where the oracle expects it to stop, the oracle's
//! class is the cause and whatever the device did afterwards is its consequence
//! (plaintext after a failed STARTTLS ends in a delivery or in `auth_no_mechanism`,
//! one cause). When both end alike, the kinds of the other mismatches are the cause.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::outcome::{Ending, MismatchKind, Outcome, Step};
use crate::record::{Record, Verdict};
use crate::report::RunMeta;

/// How the device and the oracle part ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// The device stopped (with its class) at a step before the one the oracle expects.
    DeviceStopped,
    /// The device went on past the step where the oracle expects it to stop.
    DeviceWentOn,
    /// Both end at one step with different classes, or a class SPEC does not list.
    OtherEnd,
    /// The job ended as expected; other things differ.
    Details,
    /// The device crashed, rebooted or hung.
    Crash,
    /// The harness could not run the case.
    HarnessError,
}

/// Why a case did not pass, as failures are grouped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Signature {
    pub divergence: Divergence,
    /// The step where the two part ways.
    pub step: Step,
    /// The class at that step: the device's when it stopped early, the oracle's when
    /// it went on, `expected->observed` for another end, the common ending for details.
    pub class: String,
    /// For details: the kinds of the differences.
    pub kinds: Vec<MismatchKind>,
}

impl Signature {
    /// The signature of a record that did not pass; `None` for a pass.
    pub fn of(r: &Record) -> Option<Signature> {
        match r.verdict {
            Verdict::Pass => None,
            Verdict::Crash => Some(Signature {
                divergence: Divergence::Crash,
                step: Step::Unknown,
                class: "crash".into(),
                kinds: Vec::new(),
            }),
            Verdict::HarnessError => Some(Signature {
                divergence: Divergence::HarnessError,
                step: Step::Unknown,
                class: harness_error_kind(r.harness_error.as_deref().unwrap_or("")),
                kinds: Vec::new(),
            }),
            Verdict::Fail => Some(of_failure(&r.expected, &r.observed, r)),
        }
    }

    /// A stable key: `device_stopped:tls:cert_name`, `details:mail:delivered:size_param`.
    pub fn key(&self) -> String {
        let d = match self.divergence {
            Divergence::DeviceStopped => "device_stopped",
            Divergence::DeviceWentOn => "device_went_on",
            Divergence::OtherEnd => "other_end",
            Divergence::Details => "details",
            Divergence::Crash => return "crash".into(),
            Divergence::HarnessError => return format!("harness_error:{}", self.class),
        };
        let mut k = format!("{d}:{}:{}", self.step, self.class);
        if !self.kinds.is_empty() {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            k.push(':');
            k.push_str(&kinds.join("+"));
        }
        k
    }

    /// The signature in words, for the recap and the report.
    pub fn words(&self) -> String {
        match self.divergence {
            Divergence::DeviceStopped => format!(
                "the device failed with {} at {} where the oracle expected it to get further",
                self.class, self.step
            ),
            Divergence::DeviceWentOn => format!(
                "the device went on past {} where the oracle expected {}",
                self.step, self.class
            ),
            Divergence::OtherEnd => {
                let (e, o) = self.class.split_once("->").unwrap_or((&self.class, "?"));
                format!("expected {e}, the device ended {o}")
            }
            Divergence::Details => {
                let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
                format!(
                    "{} as expected, but {} differ{}",
                    self.class,
                    kinds.join(", "),
                    if kinds.len() == 1 { "s" } else { "" }
                )
            }
            Divergence::Crash => "the device crashed, rebooted or hung".into(),
            Divergence::HarnessError => format!("the harness could not run it: {}", self.class),
        }
    }
}

fn of_failure(expected: &Outcome, observed: &Outcome, r: &Record) -> Signature {
    let outcome_differs = expected.short() != observed.short()
        || r.mismatches.iter().any(|m| m.kind == MismatchKind::Outcome);
    if !outcome_differs {
        let kinds: BTreeSet<MismatchKind> = r.mismatches.iter().map(|m| m.kind).collect();
        let step = r
            .mismatches
            .iter()
            .map(|m| m.step)
            .min()
            .unwrap_or(Step::End);
        return Signature {
            divergence: Divergence::Details,
            step,
            class: observed.short(),
            kinds: kinds.into_iter().collect(),
        };
    }
    let (es, er, ek) = expected.position();
    let (os, or, ok) = observed.position();
    let other = || Signature {
        divergence: Divergence::OtherEnd,
        step: if ok && ek { os } else { Step::Unknown },
        class: format!("{}->{}", expected.short(), observed.short()),
        kinds: Vec::new(),
    };
    if !ek || !ok || observed.ending == Ending::NoEnd {
        return other();
    }
    let class_of = |o: &Outcome| match (o.ending, &o.class) {
        (Ending::Delivered, _) => "delivered".to_string(),
        (_, Some(c)) => c.clone(),
        (e, None) => e.as_str().to_string(),
    };
    match (os, or).cmp(&(es, er)) {
        std::cmp::Ordering::Less => Signature {
            divergence: Divergence::DeviceStopped,
            step: os,
            class: class_of(observed),
            kinds: Vec::new(),
        },
        std::cmp::Ordering::Greater => Signature {
            divergence: Divergence::DeviceWentOn,
            step: es,
            class: class_of(expected),
            kinds: Vec::new(),
        },
        std::cmp::Ordering::Equal => other(),
    }
}

/// A harness error's kind: its text up to the first colon, numbers as `N`, at most
/// six words (`the device link was lost`, `profile mismatch`).
fn harness_error_kind(text: &str) -> String {
    let head = text.split(':').next().unwrap_or("");
    let words: Vec<String> = head
        .split_whitespace()
        .take(6)
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "N".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    if words.is_empty() {
        "unknown".into()
    } else {
        words.join(" ")
    }
}

/// The `dim=value` pairs a case id names (`section/dim=value,…`): the values the case
/// is about.
pub fn defining(id: &str) -> Vec<(&str, &str)> {
    let Some((_, rest)) = id.split_once('/') else {
        return Vec::new();
    };
    rest.split(',').filter_map(|p| p.split_once('=')).collect()
}

/// A dimension value with how well it explains a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub dim: String,
    pub value: String,
    /// Cases of the group with this value.
    pub in_group: usize,
    /// Passing cases with this value.
    pub in_passes: usize,
    /// Ochiai: `in_group / sqrt(group size × (in_group + in_passes))`, 1 when the value
    /// is in every case of the group and in no passing case.
    pub score: f64,
}

impl Explanation {
    /// `smtp.verify.cn=on (48/48 failing, 3% of passing)`.
    pub fn words(&self, group: usize, passes: usize) -> String {
        if passes == 0 {
            return format!(
                "{}={} ({}/{} failing; no case passed)",
                self.dim, self.value, self.in_group, group
            );
        }
        format!(
            "{}={} ({}/{} failing, {} of passing)",
            self.dim,
            self.value,
            self.in_group,
            group,
            percent(self.in_passes, passes)
        )
    }
}

fn percent(n: usize, of: usize) -> String {
    if of == 0 {
        return "none".into();
    }
    let p = n as f64 * 100.0 / of as f64;
    if p > 0.0 && p < 1.0 {
        "<1%".into()
    } else {
        format!("{p:.0}%")
    }
}

/// The failures that share one signature.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub signature: Signature,
    pub key: String,
    /// Indexes into the records, in record order; the first is the representative.
    pub cases: Vec<usize>,
    /// Values every case of the group has and fewer than half the passing cases
    /// have: the setting the cause needs (`smtp.tls=starttls` for a STARTTLS fault).
    pub shared: Vec<Explanation>,
    /// The best explaining values besides those, best first.
    pub explained_by: Vec<Explanation>,
}

/// The failure groups of a run, largest first, and how many cases passed.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    pub groups: Vec<Group>,
    pub passes: usize,
}

/// How many explaining values a group keeps.
pub const EXPLAIN_TOP: usize = 3;

/// Groups the records that did not pass by signature and explains each group.
pub fn triage(records: &[Record]) -> Triage {
    let mut by_key: BTreeMap<String, (Signature, Vec<usize>)> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(s) = Signature::of(r) {
            by_key
                .entry(s.key())
                .or_insert_with(|| (s, Vec::new()))
                .1
                .push(i);
        }
    }
    let passing: Vec<&Record> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .collect();
    let mut in_passes: HashMap<(&str, &str), usize> = HashMap::new();
    for r in &passing {
        for (d, v) in &r.dims {
            *in_passes.entry((d.as_str(), v.as_str())).or_default() += 1;
        }
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, (signature, cases))| {
            let (shared, explained_by) = explain(records, &cases, &in_passes, passing.len());
            Group {
                signature,
                key,
                cases,
                shared,
                explained_by,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.cases
            .len()
            .cmp(&a.cases.len())
            .then_with(|| a.key.cmp(&b.key))
    });
    Triage {
        groups,
        passes: passing.len(),
    }
}

/// The dimension values that explain the failing `cases` against the passes: those
/// every case shares (and most passes lack), and the best of the rest.
fn explain(
    records: &[Record],
    cases: &[usize],
    in_passes: &HashMap<(&str, &str), usize>,
    passes: usize,
) -> (Vec<Explanation>, Vec<Explanation>) {
    // Only the values a case is about (those its id names; the rest are the base
    // values every case shares) can explain it.
    let mut in_group: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for &i in cases {
        for (d, v) in defining(&records[i].id) {
            *in_group.entry((d, v)).or_default() += 1;
        }
    }
    let n = cases.len() as f64;
    let mut out: Vec<Explanation> = in_group
        .into_iter()
        .map(|((d, v), ef)| {
            let ep = in_passes.get(&(d, v)).copied().unwrap_or(0);
            Explanation {
                dim: d.to_string(),
                value: v.to_string(),
                in_group: ef,
                in_passes: ep,
                score: ef as f64 / (n * (ef + ep) as f64).sqrt(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.in_group.cmp(&a.in_group))
            .then_with(|| (&a.dim, &a.value).cmp(&(&b.dim, &b.value)))
    });
    let (mut shared, mut rest): (Vec<Explanation>, Vec<Explanation>) = out
        .into_iter()
        .partition(|e| e.in_group == cases.len() && e.in_passes * 2 < passes);
    shared.sort_by(|a, b| {
        a.in_passes
            .cmp(&b.in_passes)
            .then_with(|| (&a.dim, &a.value).cmp(&(&b.dim, &b.value)))
    });
    shared.truncate(EXPLAIN_TOP);
    rest.retain(|e| e.score > 0.0 && e.in_passes * 2 < passes.max(1));
    rest.truncate(EXPLAIN_TOP);
    (shared, rest)
}

/// How many of a group's cases the run's baseline knows, and why (the first reason).
fn known_in<'m>(records: &[Record], g: &Group, meta: &'m RunMeta) -> (usize, Option<&'m str>) {
    let mut n = 0;
    let mut why = None;
    for &i in &g.cases {
        if let Some(w) = meta.known(&records[i].id) {
            n += 1;
            why.get_or_insert(w);
        }
    }
    (n, why)
}

/// Groups in the order reports show them: new ones first (largest first), then those
/// the baseline knows wholly.
pub fn ordered<'t>(records: &[Record], t: &'t Triage, meta: &RunMeta) -> Vec<(usize, &'t Group)> {
    let mut v: Vec<(usize, &Group)> = t.groups.iter().enumerate().collect();
    v.sort_by_key(|(i, g)| (known_in(records, g, meta).0 == g.cases.len(), *i));
    v
}

/// A group's words with what the baseline knows of it: `… (known: reason)`,
/// `… (3 of 5 known)`.
pub fn group_words(records: &[Record], g: &Group, meta: &RunMeta) -> String {
    let (n, why) = known_in(records, g, meta);
    let w = g.signature.words();
    match why {
        Some(why) if n == g.cases.len() => format!("{w} (known: {why})"),
        Some(_) => format!("{w} ({n} of {} known)", g.cases.len()),
        None => w,
    }
}

/// The recap printed at the end of a run: one paragraph per group (count, words,
/// explaining values, one reproduce line), new groups first; empty when all passed.
pub fn recap(records: &[Record], t: &Triage, meta: &RunMeta) -> Vec<String> {
    let failing: usize = t.groups.iter().map(|g| g.cases.len()).sum();
    if failing == 0 {
        return Vec::new();
    }
    let known = meta.baseline.as_ref().map_or(0, |b| b.known.len());
    let mut out = vec![format!(
        "{failing} case{} did not pass{}, {} cause{}:",
        if failing == 1 { "" } else { "s" },
        if known > 0 {
            format!(" ({} new, {known} known)", failing - known.min(failing))
        } else {
            String::new()
        },
        t.groups.len(),
        if t.groups.len() == 1 { "" } else { "s" }
    )];
    for (_, g) in ordered(records, t, meta) {
        out.push(format!(
            "{:>5}  {}",
            g.cases.len(),
            group_words(records, g, meta)
        ));
        if !g.shared.is_empty() {
            let e: Vec<String> = g
                .shared
                .iter()
                .map(|e| {
                    format!(
                        "{}={} ({} of passing)",
                        e.dim,
                        e.value,
                        percent(e.in_passes, t.passes)
                    )
                })
                .collect();
            out.push(format!("       all have {}", e.join(", ")));
        }
        if !g.explained_by.is_empty() {
            let e: Vec<String> = g
                .explained_by
                .iter()
                .map(|e| e.words(g.cases.len(), t.passes))
                .collect();
            out.push(format!("       explained by {}", e.join(", ")));
        }
        if let Some(&first) = g.cases.first() {
            out.push(format!(
                "       {}",
                crate::report::reproduce(meta, &records[first].id)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Mismatch, Outcome};

    fn failed(class: &str) -> Outcome {
        Outcome::new(Ending::Failed, Some(class), String::new())
    }

    fn delivered() -> Outcome {
        Outcome::new(Ending::Delivered, None, String::new())
    }

    fn rec(id: &str, expected: Outcome, observed: Outcome, dims: &[(&str, &str)]) -> Record {
        let pass = expected == observed;
        Record {
            id: id.into(),
            verdict: if pass { Verdict::Pass } else { Verdict::Fail },
            dims: dims
                .iter()
                .map(|(d, v)| (d.to_string(), v.to_string()))
                .collect(),
            mismatches: if pass {
                vec![]
            } else {
                vec![Mismatch::new(MismatchKind::Outcome, "differs".into())]
            },
            expected,
            observed,
            ..Record::default()
        }
    }

    #[test]
    fn an_early_stop_is_the_devices_class_whatever_was_expected() {
        let a = rec("a", delivered(), failed("cert_name"), &[]);
        let b = rec("b", failed("cert_chain"), failed("cert_name"), &[]);
        let (sa, sb) = (Signature::of(&a).unwrap(), Signature::of(&b).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(sa.key(), "device_stopped:tls:cert_name");
    }

    #[test]
    fn going_on_is_the_oracles_class_whatever_followed() {
        let a = rec("a", failed("starttls_unavailable"), delivered(), &[]);
        let b = rec(
            "b",
            failed("starttls_unavailable"),
            failed("auth_no_mechanism"),
            &[],
        );
        let (sa, sb) = (Signature::of(&a).unwrap(), Signature::of(&b).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(sa.key(), "device_went_on:starttls:starttls_unavailable");
    }

    #[test]
    fn same_end_groups_by_mismatch_kinds_and_unknown_classes_by_pair() {
        let mut a = rec("a", delivered(), delivered(), &[]);
        a.verdict = Verdict::Fail;
        a.mismatches = vec![Mismatch::new(MismatchKind::SizeParam, "x 1".into())];
        let mut b = a.clone();
        b.mismatches = vec![Mismatch::new(MismatchKind::SizeParam, "y 2".into())];
        assert_eq!(Signature::of(&a), Signature::of(&b));
        assert_eq!(
            Signature::of(&a).unwrap().key(),
            "details:mail:delivered:size_param"
        );
        let c = rec("c", delivered(), failed("smtp_error"), &[]);
        assert_eq!(
            Signature::of(&c).unwrap().key(),
            "other_end:unknown:delivered->failed smtp_error"
        );
    }

    #[test]
    fn the_explaining_value_is_common_in_the_group_and_rare_in_passes() {
        let mut rs = Vec::new();
        for i in 0..10 {
            let cn = if i < 4 { "on" } else { "off" };
            let tls = if i % 2 == 0 { "smtps" } else { "starttls" };
            let dims = [("smtp.verify.cn", cn), ("smtp.tls", tls)];
            let observed = if cn == "on" {
                failed("cert_name")
            } else {
                delivered()
            };
            let id = format!("s/smtp.verify.cn={cn},smtp.tls={tls}");
            rs.push(rec(&id, delivered(), observed, &dims));
        }
        let t = triage(&rs);
        assert_eq!(t.groups.len(), 1);
        assert_eq!(t.passes, 6);
        let g = &t.groups[0];
        assert_eq!(g.cases, vec![0, 1, 2, 3]);
        let top = &g.shared[0];
        assert_eq!(
            (top.dim.as_str(), top.value.as_str()),
            ("smtp.verify.cn", "on")
        );
        assert!((top.score - 1.0).abs() < 1e-9);
        // smtp.tls is in half the passes either way: it explains nothing.
        assert!(g.explained_by.is_empty(), "{:?}", g.explained_by);
        let lines = recap(&rs, &t, &RunMeta::default());
        assert_eq!(lines[0], "4 cases did not pass, 1 cause:");
        assert_eq!(
            lines[2].trim(),
            "all have smtp.verify.cn=on (0% of passing)"
        );
        assert_eq!(
            lines[3].trim(),
            "hil run --case s/smtp.verify.cn=on,smtp.tls=smtps"
        );
    }
}
