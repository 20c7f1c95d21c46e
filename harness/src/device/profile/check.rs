//! Checking a profile file: every field against its rule, every problem named with
//! the file and the field (all of them, one a line), and the lints of `lint` — so a
//! profile that `hil profile check` passes can at least be read the way it says.

use std::collections::BTreeMap;

use regex::Regex;

use hil_oracle::model::{self, DeviceFacts, Key, Range};

use super::lint;
use super::raw::{RawProfile, RawStep, RawTemplate};
use super::template::{placeholders, Quoting, Step, Template};
use super::words::{ClockFormat, ValueWords, WordMap};
use super::{
    Crash, Echo, Login, Paging, Profile, Timeouts, OPERATIONS, OPTIONAL_OPERATIONS, SPEC_CLASSES,
    SPEC_STATES, VARIANTS,
};
use crate::device::term::Ansi;

/// Problems found so far, each a line naming the file and the field.
struct Problems<'a> {
    file: &'a str,
    list: Vec<String>,
}

impl Problems<'_> {
    fn push(&mut self, what: impl std::fmt::Display) {
        self.list.push(format!("{}: {what}", self.file));
    }

    /// Compiles `src`, which must have the named `groups`.
    fn pattern(&mut self, field: &str, src: &str, groups: &[&str]) -> Option<Regex> {
        let re = match Regex::new(src) {
            Ok(re) => re,
            Err(e) => {
                self.push(format!("{field}: not a valid pattern: {e}"));
                return None;
            }
        };
        for g in groups {
            if !re.capture_names().any(|n| n == Some(*g)) {
                self.push(format!(
                    "{field}: the pattern must have a named group (?<{g}>...)"
                ));
                return None;
            }
        }
        Some(re)
    }

    fn optional_pattern(&mut self, field: &str, src: Option<&str>) -> Option<Regex> {
        src.filter(|s| !s.is_empty())
            .and_then(|s| self.pattern(field, s, &[]))
    }
}

pub(super) fn check(file: &str, text: &str) -> Result<Profile, Vec<String>> {
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        vec![format!(
            "{file}: {}",
            e.to_string().trim_start_matches("TOML parse error ")
        )]
    })?;
    let mut p = Problems {
        file,
        list: Vec::new(),
    };
    let commands = commands(&raw, &mut p);
    console_fields(&raw, &mut p);
    timeouts(&raw, &mut p);
    let facts = facts(&raw, &mut p);
    let words = words(&raw, &mut p);
    let login = login(&raw, &mut p);
    let questions = questions(&raw, &mut p);
    sim_args(&raw, &mut p);
    let built = patterns(&raw, &mut p);
    let (Some(built), Some(commands), Some(words)) = (built, commands, words) else {
        return Err(p.list);
    };
    let login = match login {
        Ok(l) => l,
        Err(()) => return Err(p.list),
    };
    if !p.list.is_empty() {
        return Err(p.list);
    }
    let mut profile = assemble(raw, built, commands, words, facts, login);
    profile.questions = questions;
    let lints = lint::lint(&profile);
    if !lints.is_empty() {
        return Err(lints.into_iter().map(|l| format!("{file}: {l}")).collect());
    }
    Ok(profile)
}

/// The compiled patterns of `[status]`, `[answers]`, `[events]`, the prompt, the
/// pager and the crash.
struct Built {
    prompt: Option<Regex>,
    ok: Option<Regex>,
    error: Regex,
    event: Regex,
    continuation: Option<Regex>,
    value: Regex,
    job_started: Regex,
    job_state: Regex,
    recipient: Regex,
    clock_answer: Option<Regex>,
    job_done: Regex,
    job_failed: Regex,
    paging: Option<Paging>,
    crash: Option<Crash>,
}

fn patterns(raw: &RawProfile, p: &mut Problems) -> Option<Built> {
    let prompt = if raw.prompt.is_empty() {
        None
    } else {
        p.pattern("prompt", &format!("^(?:{})", raw.prompt), &[])
    };
    let ok = p.optional_pattern("status.ok", Some(&raw.status.ok));
    if raw.status.ok.is_empty() && raw.prompt.is_empty() {
        p.push("status.ok: empty (answers end at the prompt), but there is no prompt: an answer would never end; give status.ok or prompt");
    }
    let error = p.pattern("status.error", &raw.status.error, &[]);
    let event = p.pattern(
        "status.event",
        raw.status.event.as_deref().unwrap_or(super::NO_LINE),
        &[],
    );
    let continuation =
        p.optional_pattern("status.continuation", raw.status.continuation.as_deref());
    let value = p.pattern("answers.value", &raw.answers.value, &["key", "value"]);
    let job_started = p.pattern("answers.job_started", &raw.answers.job_started, &["id"]);
    let job_state = p.pattern(
        "answers.job_state",
        &raw.answers.job_state,
        &["id", "state"],
    );
    let recipient = p.pattern(
        "answers.recipient",
        &raw.answers.recipient,
        &["address", "verdict"],
    );
    let clock_answer = match &raw.answers.clock {
        Some(src) => Some(p.pattern("answers.clock", src, &["time"])?),
        None => None,
    };
    let (job_done, job_failed) = job_events(raw, p);
    let paging = raw.paging.as_ref().and_then(|r| {
        if r.send.is_empty() || r.send.len() > 8 {
            p.push(format!(
                "paging.send = {:?}: the key(s) that turn a page, 1 to 8 bytes",
                r.send
            ));
        }
        p.pattern("paging.more", &r.more, &[]).map(|more| Paging {
            more,
            send: r.send.clone(),
        })
    });
    let crash = crash(raw, p);
    Some(Built {
        prompt,
        ok,
        error: error?,
        event: event?,
        continuation,
        value: value?,
        job_started: job_started?,
        job_state: job_state?,
        recipient: recipient?,
        clock_answer,
        job_done: job_done?,
        job_failed: job_failed?,
        paging,
        crash,
    })
}

/// `[events]`: a job's end as an event line, or (neither given) no events: the
/// harness polls `job`.
fn job_events(raw: &RawProfile, p: &mut Problems) -> (Option<Regex>, Option<Regex>) {
    let ev = raw.events.as_ref();
    let done = ev.and_then(|e| e.job_done.as_deref());
    let failed = ev.and_then(|e| e.job_failed.as_deref());
    let job_done = p.pattern(
        "events.job_done",
        done.unwrap_or(super::NO_LINE),
        if done.is_some() { &["id"] } else { &[] },
    );
    let job_failed = p.pattern(
        "events.job_failed",
        failed.unwrap_or(super::NO_LINE),
        if failed.is_some() {
            &["id", "class"]
        } else {
            &[]
        },
    );
    if done.is_some() != failed.is_some() {
        p.push(
            "[events]: give both job_done and job_failed, or neither (then the harness polls job)",
        );
    } else if done.is_some() && raw.status.event.is_none() {
        p.push("status.event: missing; it must match the lines of events.job_done and events.job_failed");
    }
    if let Some(ms) = ev.and_then(|e| e.poll_ms) {
        if !(50..=600_000).contains(&ms) {
            p.push(format!("[events] poll_ms = {ms}: from 50 to 600000 ms"));
        }
    }
    (job_done, job_failed)
}

fn crash(raw: &RawProfile, p: &mut Problems) -> Option<Crash> {
    let r = raw.crash.as_ref()?;
    let pattern = p.optional_pattern("crash.pattern", r.pattern.as_deref());
    let boot = p.optional_pattern("crash.boot", r.boot.as_deref());
    if r.boot_ms == 0 || r.boot_ms > 3_600_000 {
        p.push(format!(
            "crash.boot_ms = {}: must be from 1 to 3600000 ms",
            r.boot_ms
        ));
    }
    if let Some(cmd) = &r.power_cycle {
        if cmd.trim().is_empty() || cmd.contains('\n') {
            p.push("crash.power_cycle: a command on one line, not empty");
        }
        for name in placeholders(cmd) {
            if name != "pid" && name != "endpoint" {
                p.push(format!(
                    "crash.power_cycle: {{{name}}} is not a placeholder it may use ({{pid}}, {{endpoint}})"
                ));
            }
        }
    }
    if r.pattern.is_none() && r.boot.is_none() && r.power_cycle.is_none() {
        p.push("[crash]: give at least one of pattern, boot and power_cycle");
    }
    Some(Crash {
        pattern,
        boot,
        boot_ms: r.boot_ms,
        power_cycle: r.power_cycle.clone(),
    })
}

/// `[commands]`: every operation has a template using its parameters and no other;
/// no unknown operation; the steps' patterns compile.
fn commands(raw: &RawProfile, p: &mut Problems) -> Option<BTreeMap<String, Template>> {
    let known = || {
        OPERATIONS
            .iter()
            .chain(OPTIONAL_OPERATIONS)
            .map(|(o, _)| *o)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (op, t) in &raw.commands {
        let Some((_, params)) = OPERATIONS
            .iter()
            .chain(OPTIONAL_OPERATIONS)
            .find(|(o, _)| o == op)
        else {
            p.push(format!(
                "[commands] {op:?} is not an operation; known: {}",
                known()
            ));
            continue;
        };
        match template(op, t, p) {
            Some(t) => {
                let used = t.placeholders();
                for q in *params {
                    // `get` may list every setting (`show config`): the value is then
                    // the line of the key asked for.
                    let optional = op == "get" && *q == "key";
                    if !optional && !used.iter().any(|u| u == q) {
                        p.push(format!(
                            "[commands] {op} = {} does not use the parameter {{{q}}}",
                            t.describe()
                        ));
                    }
                }
                for u in &used {
                    if !params.contains(&u.as_str()) {
                        p.push(format!(
                            "[commands] {op} = {}: {{{u}}} is not a parameter of {op}{}",
                            t.describe(),
                            if params.is_empty() {
                                " (it has none)".to_string()
                            } else {
                                format!(" ({})", params.join(", "))
                            }
                        ));
                    }
                }
                out.insert(op.clone(), t);
            }
            None => ok = false,
        }
    }
    for (op, _) in OPERATIONS {
        if !raw.commands.contains_key(*op) {
            p.push(format!(
                "[commands] has no template for the operation {op:?}"
            ));
        }
    }
    ok.then_some(out)
}

fn template(op: &str, t: &RawTemplate, p: &mut Problems) -> Option<Template> {
    let raw_steps: Vec<RawStep> = match t {
        RawTemplate::Line(s) => vec![RawStep::Line(s.clone())],
        RawTemplate::Steps(v) => v.clone(),
    };
    if raw_steps.is_empty() {
        p.push(format!("[commands] {op}: an empty list of steps"));
        return None;
    }
    let mut steps = Vec::new();
    for (i, s) in raw_steps.into_iter().enumerate() {
        let step = match s {
            RawStep::Line(line) => Step {
                send: Some(line),
                expect: None,
                raw: false,
                paste: None,
                timeout_ms: None,
                reboot: false,
            },
            RawStep::Table(t) => {
                let expect = match &t.expect {
                    Some(src) => {
                        Some(p.pattern(&format!("[commands] {op}[{i}].expect"), src, &[])?)
                    }
                    None => None,
                };
                if t.send.is_none() && expect.is_none() {
                    p.push(format!(
                        "[commands] {op}[{i}]: a step sends something, waits for something, or both"
                    ));
                    return None;
                }
                if t.timeout_ms == Some(0) || t.timeout_ms.is_some_and(|ms| ms > 3_600_000) {
                    p.push(format!(
                        "[commands] {op}[{i}].timeout_ms: from 1 to 3600000 ms"
                    ));
                }
                if t.reboot && t.expect.is_some() {
                    p.push(format!(
                        "[commands] {op}[{i}]: a step that reboots the device waits for its boot, not for `expect`"
                    ));
                }
                Step {
                    send: t.send,
                    expect,
                    raw: t.raw,
                    paste: t.paste,
                    timeout_ms: t.timeout_ms,
                    reboot: t.reboot,
                }
            }
        };
        steps.push(step);
    }
    Some(Template { steps })
}

/// `line_ending`, `echo`, `ansi`, `quoting` and `[quote]`, `[apply]`, `variants`.
fn console_fields(raw: &RawProfile, p: &mut Problems) {
    if !matches!(raw.line_ending.as_str(), "\r\n" | "\n" | "\r") {
        p.push("line_ending must be \"\\r\\n\", \"\\n\" or \"\\r\"");
    }
    if let Some(e) = &raw.device_line_ending {
        if !matches!(e.as_str(), "lf" | "cr") {
            p.push(format!(
                "device_line_ending = {e:?}: must be \"lf\" (a LF ends a line; the default) or \"cr\" (a CR alone ends one too)"
            ));
        }
    }
    if let Some(e) = &raw.echo {
        if !matches!(e.as_str(), "auto" | "on" | "off") {
            p.push(format!("echo = {e:?}: must be \"auto\", \"on\" or \"off\""));
        }
    }
    if let Some(e) = &raw.encoding {
        match encoding_rs::Encoding::for_label(e.as_bytes()) {
            None => p.push(format!(
                "encoding = {e:?}: not a character encoding (utf-8, shift_jis, euc-jp, iso-2022-jp, windows-1252, …)"
            )),
            Some(enc) if !enc.is_ascii_compatible() => p.push(format!(
                "encoding = {e:?}: a console's line endings and escapes need an ASCII-compatible encoding"
            )),
            Some(_) => {}
        }
    }
    if let Some(a) = &raw.ansi {
        if !matches!(a.as_str(), "strip" | "keep") {
            p.push(format!("ansi = {a:?}: must be \"strip\" or \"keep\""));
        }
    }
    if Quoting::parse(&raw.quoting).is_none() {
        p.push(format!(
            "quoting = {:?}: must be \"double\", \"single\" or \"none\"",
            raw.quoting
        ));
    }
    let params: Vec<&str> = OPERATIONS
        .iter()
        .flat_map(|(_, ps)| ps.iter().copied())
        .chain(["value"])
        .collect();
    for (key, style) in &raw.quote {
        if Quoting::parse(style).is_none() {
            p.push(format!(
                "[quote] {key} = {style:?}: must be \"double\", \"single\" or \"none\""
            ));
        }
        // `PARAM`, or `OP.PARAM` for one operation's template only.
        let (op, param) = match key.split_once('.') {
            Some((op, param)) => (Some(op), param),
            None => (None, key.as_str()),
        };
        match op {
            Some(op) => match OPERATIONS.iter().chain(OPTIONAL_OPERATIONS).find(|(o, _)| *o == op) {
                None => p.push(format!("[quote] {key}: {op:?} is not an operation")),
                Some((_, ps)) if !ps.contains(&param) && param != "value" => p.push(format!(
                    "[quote] {key}: {param:?} is not a parameter of {op} ({})",
                    ps.join(", ")
                )),
                Some(_) => {}
            },
            None if !params.contains(&param) => p.push(format!(
                "[quote] {key}: not a parameter of any operation (value, key, name, password, address, to, user, kind, time…)"
            )),
            None => {}
        }
    }
    for ph in ["{key}", "{value}"] {
        if !raw.apply.pair.contains(ph) {
            p.push(format!("[apply] pair must use {ph}"));
        }
    }
    for v in &raw.variants {
        if !VARIANTS.contains(&v.as_str()) {
            p.push(format!(
                "variants: {v:?} is not a variant; known: {}",
                VARIANTS.join(", ")
            ));
        }
    }
}

fn timeouts(raw: &RawProfile, p: &mut Problems) {
    const DAY_MS: u64 = 86_400_000;
    for (name, v) in [
        ("command_ms", raw.timeouts.command_ms),
        ("job_ms", raw.timeouts.job_ms),
        ("startup_ms", raw.timeouts.startup_ms),
    ] {
        if v == 0 || v > DAY_MS {
            p.push(format!(
                "[timeouts] {name} = {v} must be from 1 to {DAY_MS} ms"
            ));
        }
    }
}

/// The firmware's facts: ranges, AUTH mechanisms, default methods; and `job_ms`
/// against the longest a job may wait.
fn facts(raw: &RawProfile, p: &mut Problems) -> DeviceFacts {
    let ranges = ranges(&raw.ranges, p);
    // A job may wait POP before SMTP's wait and then one whole smtp.timeout.
    let longest_s = [Key::SmtpTimeout, Key::PopBeforeSmtpWait]
        .iter()
        .map(|k| ranges.get(k).map_or(0, |r| r.max))
        .sum::<u64>();
    if raw.timeouts.job_ms <= longest_s.saturating_mul(1000) {
        p.push(format!(
            "[timeouts] job_ms = {} is not longer than the longest a job may wait ({longest_s} s: smtp.timeout's and pop_before_smtp.wait's maximums in [ranges]); the harness would give up on jobs the device is still running",
            raw.timeouts.job_ms
        ));
    }
    let reference = DeviceFacts::default();
    let mechs = match &raw.auth_mechanisms {
        Some(l) => mechanisms("auth_mechanisms", l, p),
        None => reference.mechanisms.clone(),
    };
    let default_methods = match &raw.default_auth_methods {
        Some(l) => mechanisms("default_auth_methods", l, p),
        // The reference default, less what the firmware does not implement.
        None => reference
            .default_methods
            .iter()
            .filter(|m| mechs.contains(m))
            .cloned()
            .collect(),
    };
    for m in &default_methods {
        if !mechs.contains(m) {
            p.push(format!(
                "default_auth_methods: {m:?} is not in auth_mechanisms (the firmware cannot enable what it does not implement)"
            ));
        }
    }
    let mut unsupported = Vec::new();
    for f in &raw.unsupported {
        if !model::FEATURES.iter().any(|(w, _)| w == f) {
            p.push(format!(
                "unsupported: {f:?} is not a feature; known: {}",
                model::FEATURES
                    .iter()
                    .map(|(w, _)| *w)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if unsupported.contains(f) {
            p.push(format!("unsupported: {f:?} is named twice"));
        } else {
            unsupported.push(f.clone());
        }
    }
    DeviceFacts {
        variants: raw.variants.clone(),
        ranges,
        mechanisms: mechs,
        default_methods,
        unsupported,
    }
}

/// Flattens `[ranges]` (bare dotted keys nest in TOML) into `key → value`.
fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            other => out.push((key, other.clone())),
        }
    }
}

/// `[ranges]`: each key one SPEC marks †, each value `[min, max]` inside the type's
/// own range; the others stay SPEC's.
fn ranges(t: &toml::Table, p: &mut Problems) -> BTreeMap<Key, Range> {
    let mut out: BTreeMap<Key, Range> = model::RANGED.iter().map(|(k, r, _)| (*k, *r)).collect();
    let mut flat = Vec::new();
    flatten("", t, &mut flat);
    for (key, v) in flat {
        let Some((ranged, _, ty)) = model::RANGED.iter().find(|(k, _, _)| k.as_str() == key) else {
            p.push(format!(
                "[ranges] {key}: not a setting whose range a profile may give; known: {}",
                model::RANGED
                    .iter()
                    .map(|(k, _, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        let pair = match &v {
            toml::Value::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
                (toml::Value::Integer(lo), toml::Value::Integer(hi)) => Some((*lo, *hi)),
                _ => None,
            },
            _ => None,
        };
        let Some((lo, hi)) = pair else {
            p.push(format!(
                "[ranges] {key} = {v}: must be [MIN, MAX], two whole numbers"
            ));
            continue;
        };
        let inside = |n: i64| u64::try_from(n).is_ok_and(|n| (ty.min..=ty.max).contains(&n));
        if !inside(lo) || !inside(hi) {
            p.push(format!(
                "[ranges] {key} = [{lo}, {hi}]: outside the type of {key} ({} to {}, SPEC §1)",
                ty.min, ty.max
            ));
            continue;
        }
        if lo > hi {
            p.push(format!(
                "[ranges] {key} = [{lo}, {hi}]: the minimum is above the maximum"
            ));
            continue;
        }
        out.insert(
            *ranged,
            Range {
                min: lo as u64,
                max: hi as u64,
            },
        );
    }
    out
}

/// A list of AUTH mechanisms: each one SPEC names, none twice; answered in SPEC
/// §3.7's order.
fn mechanisms(field: &str, list: &[String], p: &mut Problems) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    for m in list {
        if !model::SPEC_MECHANISMS.contains(&m.as_str()) {
            p.push(format!(
                "{field}: {m:?} is not an AUTH mechanism of SPEC; known: {}",
                model::SPEC_MECHANISMS.join(", ")
            ));
        } else if seen.contains(&m.as_str()) {
            p.push(format!("{field}: {m:?} is named twice"));
        } else {
            seen.push(m);
        }
    }
    model::SPEC_MECHANISMS
        .iter()
        .filter(|m| seen.contains(m))
        .map(|m| m.to_string())
        .collect()
}

/// What the device calls things: `[keys]`, `[values]`, `[classes]`, `[states]`,
/// `[alert_kinds]`, `[formats]`, `answers.recipient_accepted`.
struct Words {
    keys: BTreeMap<Key, String>,
    values: ValueWords,
    classes: WordMap,
    states: WordMap,
    clock: ClockFormat,
    clock_shown: Option<ClockFormat>,
}

fn spec_key(k: &str) -> Option<Key> {
    k.parse::<Key>().ok()
}

fn one_word(field: &str, w: &str, p: &mut Problems) {
    if w.is_empty() || w.contains(['\r', '\n']) {
        p.push(format!("{field} = {w:?}: a word on one line, not empty"));
    }
}

fn words(raw: &RawProfile, p: &mut Problems) -> Option<Words> {
    let mut keys = BTreeMap::new();
    for (k, dk) in &raw.keys {
        match spec_key(k) {
            Some(key) => {
                keys.insert(key, dk.clone());
            }
            None => p.push(format!("[keys] {k:?}: not a setting of SPEC §1")),
        }
        one_word(&format!("[keys] {k}"), dk, p);
    }
    for (kind, w) in &raw.alert_kinds {
        one_word(&format!("[alert_kinds] {kind}"), w, p);
    }
    let values = value_words(raw, p);
    let mut classes = BTreeMap::new();
    for (word, class) in &raw.classes {
        one_word(&format!("[classes] {word:?}"), word, p);
        if !SPEC_CLASSES.contains(&class.as_str()) {
            p.push(format!(
                "[classes] {word:?} = {class:?}: not an error class of SPEC §5; known: {}",
                SPEC_CLASSES.join(", ")
            ));
        }
        classes.insert(word.clone(), class.clone());
    }
    let mut states = BTreeMap::new();
    for (word, state) in &raw.states {
        one_word(&format!("[states] {word:?}"), word, p);
        if !SPEC_STATES.contains(&state.as_str()) {
            p.push(format!(
                "[states] {word:?} = {state:?}: not a job state of SPEC §6 ({})",
                SPEC_STATES.join(", ")
            ));
        }
        states.insert(word.clone(), state.clone());
    }
    if let Some(c) = &raw.status.error_class {
        if !SPEC_CLASSES.contains(&c.as_str()) {
            p.push(format!(
                "status.error_class = {c:?}: not an error class of SPEC §5"
            ));
        }
    }
    if raw.answers.recipient_accepted.trim().is_empty()
        || raw.answers.recipient_accepted.contains(['\r', '\n'])
    {
        p.push("answers.recipient_accepted: must be the word of an accepted recipient (one line, not empty)");
    }
    let clock = match raw.formats.clock.as_deref() {
        None => ClockFormat::Rfc3339,
        Some(src) => match ClockFormat::parse(src) {
            Ok(c) => c,
            Err(e) => {
                p.push(format!("formats.clock = {src:?}: {e}"));
                return None;
            }
        },
    };
    let clock_shown = match raw.formats.clock_read.as_deref() {
        None => None,
        Some(src) => match ClockFormat::parse(src) {
            Ok(c) => Some(c),
            Err(e) => {
                p.push(format!("formats.clock_read = {src:?}: {e}"));
                return None;
            }
        },
    };
    Some(Words {
        keys,
        values: values?,
        classes: WordMap(classes),
        states: WordMap(states),
        clock,
        clock_shown,
    })
}

/// `[values]`: `bool = { on, off }` and per-key maps; the device words of one key
/// all different (a word read back must name one value).
fn value_words(raw: &RawProfile, p: &mut Problems) -> Option<ValueWords> {
    let mut out = ValueWords::default();
    let mut ok = true;
    for (key, map) in &raw.values {
        let field = format!("[values] {key:?}");
        if key == "bool" {
            match (map.get("on"), map.get("off"), map.len()) {
                (Some(on), Some(off), 2) => {
                    one_word(&format!("{field}.on"), on, p);
                    one_word(&format!("{field}.off"), off, p);
                    if on == off {
                        p.push(format!("{field}: on and off are both {on:?}"));
                    }
                    out.bool_words = Some((on.clone(), off.clone()));
                }
                _ => {
                    p.push(format!(
                        "{field}: must be {{ on = \"…\", off = \"…\" }}, the device's words for every on/off setting"
                    ));
                    ok = false;
                }
            }
            continue;
        }
        let Some(spec) = spec_key(key) else {
            p.push(format!("{field}: not a setting of SPEC §1 (or \"bool\")"));
            ok = false;
            continue;
        };
        let mut seen: Vec<&str> = Vec::new();
        for (v, w) in map {
            one_word(&format!("{field}.{v}"), w, p);
            if seen.contains(&w.as_str()) {
                p.push(format!(
                    "{field}: the word {w:?} stands for two values; read back it could not be told apart"
                ));
            }
            seen.push(w);
        }
        if super::is_bool_key(spec) && map.keys().any(|v| v != "on" && v != "off") {
            p.push(format!(
                "{field}: an on/off setting has only the values on and off"
            ));
        }
        out.per_key.insert(spec, map.clone());
    }
    ok.then_some(out)
}

fn login(raw: &RawProfile, p: &mut Problems) -> Result<Option<Login>, ()> {
    let Some(l) = &raw.login else { return Ok(None) };
    let user_prompt = match &l.user_prompt {
        Some(src) => Some(p.pattern("login.user_prompt", src, &[]).ok_or(())?),
        None => None,
    };
    let password_prompt = p.pattern("login.password_prompt", &l.password_prompt, &[]);
    let user = l.user.clone().unwrap_or_default();
    match (&user_prompt, user.is_empty()) {
        (Some(_), true) => p.push("login.user: must not be empty (there is a user_prompt)"),
        (None, false) => p.push(
            "login.user: a console without user_prompt asks for a password only; leave user out",
        ),
        _ => {}
    }
    if user.contains(['\r', '\n']) || l.password.contains(['\r', '\n']) {
        p.push("login: user and password must be one line each");
    }
    let password_prompt = password_prompt.ok_or(())?;
    Ok(Some(Login {
        user_prompt,
        password_prompt,
        user,
        password: l.password.clone(),
    }))
}

/// `[[questions]]`: each a pattern and what to answer.
fn questions(raw: &RawProfile, p: &mut Problems) -> Vec<super::Question> {
    let mut out = Vec::new();
    for (i, q) in raw.questions.iter().enumerate() {
        if q.send.contains(['\r', '\n']) {
            p.push(format!("[[questions]] {i}: send is one line"));
        }
        if let Some(expect) = p.pattern(&format!("[[questions]] {i}: expect"), &q.expect, &[]) {
            if expect.is_match("") {
                p.push(format!(
                    "[[questions]] {i}: expect {:?} matches an empty line: every line would be answered",
                    q.expect
                ));
            }
            out.push(super::Question {
                expect,
                send: q.send.clone(),
                raw: q.raw,
            });
        }
    }
    out
}

fn sim_args(raw: &RawProfile, p: &mut Problems) {
    for (i, a) in raw.sim_args.iter().enumerate() {
        if a.is_empty() || a.contains(['\r', '\n', '\0']) {
            p.push(format!(
                "sim_args[{i}] = {a:?}: an argument must be one line, not empty"
            ));
        }
        // The harness chooses these itself.
        for own in ["--console", "--time-scale", "--downloads"] {
            if a == own || a.starts_with(&format!("{own}=")) {
                p.push(format!(
                    "sim_args[{i}] = {a:?}: the harness sets {own} itself"
                ));
            }
        }
    }
}

fn assemble(
    raw: RawProfile,
    b: Built,
    commands: BTreeMap<String, Template>,
    w: Words,
    facts: DeviceFacts,
    login: Option<Login>,
) -> Profile {
    let quoting = Quoting::parse(&raw.quoting).unwrap_or(Quoting::Double);
    Profile {
        name: raw.name,
        description: raw.description,
        line_ending: raw.line_ending,
        cr_ends_line: raw.device_line_ending.as_deref() == Some("cr"),
        prompt: b.prompt,
        echo: match raw.echo.as_deref() {
            Some("on") => Echo::On,
            Some("off") => Echo::Off,
            _ => Echo::Auto,
        },
        ansi: match raw.ansi.as_deref() {
            Some("keep") => Ansi::Keep,
            _ => Ansi::Strip,
        },
        encoding: raw
            .encoding
            .as_deref()
            .and_then(|e| encoding_rs::Encoding::for_label(e.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8),
        quoting,
        timeouts: Timeouts {
            command_ms: raw.timeouts.command_ms,
            job_ms: raw.timeouts.job_ms,
            startup_ms: raw.timeouts.startup_ms,
            char_delay_ms: raw.timeouts.char_delay_ms,
        },
        synthetic_scan: raw.synthetic_scan,
        variants: raw.variants,
        apply_pair: raw.apply.pair,
        apply_separator: raw.apply.separator,
        ok: b.ok,
        error: b.error,
        error_class: raw.status.error_class.unwrap_or_else(|| "config".into()),
        event: b.event,
        continuation: b.continuation,
        value: b.value,
        job_started: b.job_started,
        job_started_is_status: raw.answers.job_started_is_status,
        job_state: b.job_state,
        recipient: b.recipient,
        recipient_accepted: raw.answers.recipient_accepted,
        clock_answer: b.clock_answer,
        job_done: b.job_done,
        job_failed: b.job_failed,
        poll_ms: match &raw.events {
            Some(e) if e.job_done.is_some() => e.poll_ms,
            Some(e) => Some(e.poll_ms.unwrap_or(super::DEFAULT_POLL_MS)),
            None => Some(super::DEFAULT_POLL_MS),
        },
        paging: b.paging,
        crash: b.crash,
        clock: w.clock,
        clock_shown: w.clock_shown,
        facts,
        login,
        questions: Vec::new(),
        sim_args: raw.sim_args,
        values: w.values,
        classes: w.classes,
        states: w.states,
        commands,
        quote_of: raw
            .quote
            .iter()
            .filter_map(|(k, v)| Quoting::parse(v).map(|q| (k.clone(), q)))
            .collect(),
        alert_kinds: raw.alert_kinds,
        keys: w.keys,
    }
}
