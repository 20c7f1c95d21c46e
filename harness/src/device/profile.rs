//! Device profiles: the console dialect of one kind of device, read from a TOML file
//! (`fixtures/devices/*.toml`). The driver sends nothing that is not a template here
//! and reads nothing that is not matched by a pattern here.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use hil_oracle::model::{self, DeviceFacts, Key, Range};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    line_ending: String,
    #[serde(default)]
    prompt: String,
    quoting: Quoting,
    timeouts: Timeouts,
    status: RawStatus,
    commands: BTreeMap<String, String>,
    answers: RawAnswers,
    events: RawEvents,
    #[serde(default)]
    synthetic_scan: bool,
    #[serde(default)]
    variants: Vec<String>,
    #[serde(default)]
    apply: RawApply,
    #[serde(default)]
    alert_kinds: BTreeMap<String, String>,
    #[serde(default)]
    keys: BTreeMap<String, String>,
    /// SPEC §1 † ranges: `key = [min, max]` (dotted keys nest, so read as a table).
    #[serde(default)]
    ranges: toml::Table,
    #[serde(default)]
    auth_mechanisms: Option<Vec<String>>,
    #[serde(default)]
    default_auth_methods: Option<Vec<String>>,
    #[serde(default)]
    login: Option<RawLogin>,
    #[serde(default)]
    sim_args: Vec<String>,
}

/// A console that asks for a login before it takes commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    user_prompt: String,
    password_prompt: String,
    user: String,
    password: String,
}

/// The login step of a console that asks for one: the prompts (matched against what
/// the device prints, also without a newline after it) and what to answer.
#[derive(Clone)]
pub struct Login {
    pub user_prompt: Regex,
    pub password_prompt: Regex,
    pub user: String,
    /// Masked in every log, like the other secrets (and in `{:?}`).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user_prompt", &self.user_prompt.as_str())
            .field("password_prompt", &self.password_prompt.as_str())
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// How `apply` writes one setting and joins them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApply {
    pair: String,
    separator: String,
}

impl Default for RawApply {
    fn default() -> Self {
        RawApply {
            pair: "{key}={value}".into(),
            separator: " ".into(),
        }
    }
}

/// How values are quoted on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quoting {
    Double,
    None,
}

/// Timeouts of the dialect, in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub command_ms: u64,
    pub job_ms: u64,
    pub startup_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    ok: String,
    error: String,
    event: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswers {
    value: String,
    job_started: String,
    job_state: String,
    recipient: String,
    #[serde(default = "default_recipient_accepted")]
    recipient_accepted: String,
}

fn default_recipient_accepted() -> String {
    "accepted".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    job_done: String,
    job_failed: String,
}

/// A checked profile, its patterns compiled.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub line_ending: String,
    /// A prompt the device prints before reading a command (no newline after it);
    /// stripped from the start of the lines read. Empty: no prompt.
    pub prompt: String,
    pub quoting: Quoting,
    pub timeouts: Timeouts,
    /// The scan attachment follows the simulator's rule (byte i = i mod 251) and is
    /// checked byte for byte; a real device's scan is only checked to be there.
    pub synthetic_scan: bool,
    /// The firmware variants of SPEC this device follows (the embedded simulated device
    /// is started with them).
    pub variants: Vec<String>,
    /// `apply`: the template of one pair (`{key}`, `{value}`) and what joins pairs.
    pub apply_pair: String,
    pub apply_separator: String,
    pub ok: Regex,
    pub error: Regex,
    pub event: Regex,
    pub value: Regex,
    pub job_started: Regex,
    pub job_state: Regex,
    pub recipient: Regex,
    /// The `verdict` of a `recipient` line for a recipient the server accepted (any
    /// other word: rejected).
    pub recipient_accepted: String,
    pub job_done: Regex,
    pub job_failed: Regex,
    /// What the harness must know of the firmware: its variants, its ranges where
    /// SPEC marks †, the AUTH mechanisms it implements and its default methods.
    pub facts: DeviceFacts,
    /// The login step, for consoles that ask for one.
    pub login: Option<Login>,
    /// Only for profiles of the simulated device: the arguments the embedded
    /// simulated device is started with (after the harness's own).
    pub sim_args: Vec<String>,
    commands: BTreeMap<String, String>,
    alert_kinds: BTreeMap<String, String>,
    keys: BTreeMap<String, String>,
}

/// The operations a profile must give a template for, with the parameters each uses.
pub const OPERATIONS: &[(&str, &[&str])] = &[
    ("reset", &[]),
    ("get", &["key"]),
    ("set", &["key", "value"]),
    ("apply", &["pairs"]),
    ("clock_set", &["time"]),
    ("cert_import", &["pem"]),
    ("user_add", &["name", "password", "address"]),
    ("notify_add", &["address"]),
    ("scan", &["to", "size_kb"]),
    ("scan_as_user", &["to", "size_kb", "user"]),
    ("alert", &["kind"]),
    ("counter", &[]),
    ("job", &["id"]),
];

/// The firmware variants of SPEC a profile can name.
pub const VARIANTS: &[&str] = &[
    "plaintext-after-starttls-failure",
    "send-without-auth",
    "cn-only",
    "soft-fail-revocation",
];

/// A profile that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError(pub String);

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProfileError {}

fn pattern(file: &str, field: &str, src: &str, groups: &[&str]) -> Result<Regex, ProfileError> {
    let re = Regex::new(src)
        .map_err(|e| ProfileError(format!("{file}: {field}: not a valid pattern: {e}")))?;
    for g in groups {
        if !re.capture_names().any(|n| n == Some(*g)) {
            return Err(ProfileError(format!(
                "{file}: {field}: the pattern must have a named group (?<{g}>...)"
            )));
        }
    }
    Ok(re)
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
fn ranges(file: &str, t: &toml::Table, problems: &mut Vec<String>) -> BTreeMap<Key, Range> {
    let mut out: BTreeMap<Key, Range> = model::RANGED.iter().map(|(k, r, _)| (*k, *r)).collect();
    let mut flat = Vec::new();
    flatten("", t, &mut flat);
    for (key, v) in flat {
        let Some((ranged, _, ty)) = model::RANGED.iter().find(|(k, _, _)| k.as_str() == key) else {
            problems.push(format!(
                "{file}: [ranges] {key}: not a setting whose range a profile may give; known: {}",
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
            problems.push(format!(
                "{file}: [ranges] {key} = {v}: must be [MIN, MAX], two whole numbers"
            ));
            continue;
        };
        let inside = |n: i64| u64::try_from(n).is_ok_and(|n| (ty.min..=ty.max).contains(&n));
        if !inside(lo) || !inside(hi) {
            problems.push(format!(
                "{file}: [ranges] {key} = [{lo}, {hi}]: outside the type of {key} ({} to {}, SPEC §1)",
                ty.min, ty.max
            ));
            continue;
        }
        if lo > hi {
            problems.push(format!(
                "{file}: [ranges] {key} = [{lo}, {hi}]: the minimum is above the maximum"
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
fn mechanisms(file: &str, field: &str, list: &[String], problems: &mut Vec<String>) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    for m in list {
        if !model::SPEC_MECHANISMS.contains(&m.as_str()) {
            problems.push(format!(
                "{file}: {field}: {m:?} is not an AUTH mechanism of SPEC; known: {}",
                model::SPEC_MECHANISMS.join(", ")
            ));
        } else if seen.contains(&m.as_str()) {
            problems.push(format!("{file}: {field}: {m:?} is named twice"));
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

impl Profile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProfileError(format!("{}: cannot read: {e}", path.display())))?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks profile text; `file` names it in errors. Every problem found
    /// is named, one a line.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        Profile::check(file, text).map_err(|p| ProfileError(p.join("\n")))
    }

    /// Parses and checks profile text; `Err` holds every problem found (each naming
    /// `file` and the field). A file that is not TOML of the profile's shape stops at
    /// its first problem.
    pub fn check(file: &str, text: &str) -> Result<Profile, Vec<String>> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            vec![format!(
                "{file}: {}",
                e.to_string().trim_start_matches("TOML parse error ")
            )]
        })?;
        let mut problems: Vec<String> = Vec::new();
        for (op, params) in OPERATIONS {
            let Some(t) = raw.commands.get(*op) else {
                problems.push(format!(
                    "{file}: [commands] has no template for the operation {op:?}"
                ));
                continue;
            };
            for p in *params {
                if !t.contains(&format!("{{{p}}}")) {
                    problems.push(format!(
                        "{file}: [commands] {op} = {t:?} does not use the parameter {{{p}}}"
                    ));
                }
            }
        }
        for op in raw.commands.keys() {
            if !OPERATIONS.iter().any(|(o, _)| o == op) {
                problems.push(format!(
                    "{file}: [commands] {op:?} is not an operation; known: {}",
                    OPERATIONS
                        .iter()
                        .map(|(o, _)| *o)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !matches!(raw.line_ending.as_str(), "\r\n" | "\n" | "\r") {
            problems.push(format!(
                "{file}: line_ending must be \"\\r\\n\", \"\\n\" or \"\\r\""
            ));
        }
        const DAY_MS: u64 = 86_400_000;
        for (name, v) in [
            ("command_ms", raw.timeouts.command_ms),
            ("job_ms", raw.timeouts.job_ms),
            ("startup_ms", raw.timeouts.startup_ms),
        ] {
            if v == 0 || v > DAY_MS {
                problems.push(format!(
                    "{file}: [timeouts] {name} = {v} must be from 1 to {DAY_MS} ms"
                ));
            }
        }
        for p in ["{key}", "{value}"] {
            if !raw.apply.pair.contains(p) {
                problems.push(format!("{file}: [apply] pair must use {p}"));
            }
        }
        for v in &raw.variants {
            if !VARIANTS.contains(&v.as_str()) {
                problems.push(format!(
                    "{file}: variants: {v:?} is not a variant; known: {}",
                    VARIANTS.join(", ")
                ));
            }
        }
        let ranges = ranges(file, &raw.ranges, &mut problems);
        // A job may wait POP before SMTP's wait and then one whole smtp.timeout.
        let longest_s = [Key::SmtpTimeout, Key::PopBeforeSmtpWait]
            .iter()
            .map(|k| ranges.get(k).map_or(0, |r| r.max))
            .sum::<u64>();
        if raw.timeouts.job_ms <= longest_s.saturating_mul(1000) {
            problems.push(format!(
                "{file}: [timeouts] job_ms = {} is not longer than the longest a job may wait ({longest_s} s: smtp.timeout's and pop_before_smtp.wait's maximums in [ranges]); the harness would give up on jobs the device is still running",
                raw.timeouts.job_ms
            ));
        }
        let reference = DeviceFacts::default();
        let mechs = match &raw.auth_mechanisms {
            Some(l) => mechanisms(file, "auth_mechanisms", l, &mut problems),
            None => reference.mechanisms.clone(),
        };
        let default_methods = match &raw.default_auth_methods {
            Some(l) => mechanisms(file, "default_auth_methods", l, &mut problems),
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
                problems.push(format!(
                    "{file}: default_auth_methods: {m:?} is not in auth_mechanisms (the firmware cannot enable what it does not implement)"
                ));
            }
        }
        let mut pat =
            |field: &str, src: &str, groups: &[&str]| match pattern(file, field, src, groups) {
                Ok(re) => Some(re),
                Err(e) => {
                    problems.push(e.0);
                    None
                }
            };
        let ok = pat("status.ok", &raw.status.ok, &[]);
        let error = pat("status.error", &raw.status.error, &["class"]);
        let event = pat("status.event", &raw.status.event, &[]);
        let value = pat("answers.value", &raw.answers.value, &["key", "value"]);
        let job_started = pat("answers.job_started", &raw.answers.job_started, &["id"]);
        let job_state = pat(
            "answers.job_state",
            &raw.answers.job_state,
            &["id", "state"],
        );
        let recipient = pat(
            "answers.recipient",
            &raw.answers.recipient,
            &["address", "verdict"],
        );
        let job_done = pat("events.job_done", &raw.events.job_done, &["id"]);
        let job_failed = pat(
            "events.job_failed",
            &raw.events.job_failed,
            &["id", "class"],
        );
        let login = raw.login.as_ref().map(|l| {
            (
                pat("login.user_prompt", &l.user_prompt, &[]),
                pat("login.password_prompt", &l.password_prompt, &[]),
            )
        });
        if let Some(l) = &raw.login {
            if l.user.is_empty() {
                problems.push(format!("{file}: login.user: must not be empty"));
            }
            if l.user.contains(['\r', '\n']) || l.password.contains(['\r', '\n']) {
                problems.push(format!(
                    "{file}: login: user and password must be one line each"
                ));
            }
        }
        if raw.answers.recipient_accepted.trim().is_empty()
            || raw.answers.recipient_accepted.contains(['\r', '\n'])
        {
            problems.push(format!(
                "{file}: answers.recipient_accepted: must be the word of an accepted recipient (one line, not empty)"
            ));
        }
        for (i, a) in raw.sim_args.iter().enumerate() {
            if a.is_empty() || a.contains(['\r', '\n', '\0']) {
                problems.push(format!(
                    "{file}: sim_args[{i}] = {a:?}: an argument must be one line, not empty"
                ));
            }
            // The harness chooses these itself.
            for own in ["--console", "--time-scale", "--downloads"] {
                if a == own || a.starts_with(&format!("{own}=")) {
                    problems.push(format!(
                        "{file}: sim_args[{i}] = {a:?}: the harness sets {own} itself"
                    ));
                }
            }
        }
        let (
            Some(ok),
            Some(error),
            Some(event),
            Some(value),
            Some(job_started),
            Some(job_state),
            Some(recipient),
            Some(job_done),
            Some(job_failed),
        ) = (
            ok,
            error,
            event,
            value,
            job_started,
            job_state,
            recipient,
            job_done,
            job_failed,
        )
        else {
            return Err(problems);
        };
        let login = match (raw.login, login) {
            (Some(l), Some((Some(user_prompt), Some(password_prompt)))) => Some(Login {
                user_prompt,
                password_prompt,
                user: l.user,
                password: l.password,
            }),
            (Some(_), _) => return Err(problems),
            _ => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            line_ending: raw.line_ending,
            prompt: raw.prompt,
            quoting: raw.quoting,
            timeouts: raw.timeouts,
            synthetic_scan: raw.synthetic_scan,
            facts: DeviceFacts {
                variants: raw.variants.clone(),
                ranges,
                mechanisms: mechs,
                default_methods,
            },
            variants: raw.variants,
            apply_pair: raw.apply.pair,
            apply_separator: raw.apply.separator,
            ok,
            error,
            event,
            value,
            job_started,
            job_state,
            recipient,
            recipient_accepted: raw.answers.recipient_accepted,
            job_done,
            job_failed,
            login,
            sim_args: raw.sim_args,
            commands: raw.commands,
            alert_kinds: raw.alert_kinds,
            keys: raw.keys,
        })
    }

    /// What `hil profile check` prints of a valid profile.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("name: {}\n", self.name));
        if !self.description.is_empty() {
            s.push_str(&format!("description: {}\n", self.description));
        }
        s.push_str("operations:\n");
        for (op, _) in OPERATIONS {
            if let Some(t) = self.commands.get(*op) {
                s.push_str(&format!("  {op:<13} {t:?}\n"));
            }
        }
        s.push_str(&format!(
            "variants: {}\n",
            if self.variants.is_empty() {
                "none (SPEC's behaviour)".to_string()
            } else {
                self.variants.join(", ")
            }
        ));
        s.push_str("ranges:\n");
        for (key, spec, _) in model::RANGED {
            let r = self.facts.range(*key);
            let note = if r == *spec {
                "SPEC's"
            } else {
                "the firmware's"
            };
            s.push_str(&format!("  {key:<21} {} to {} ({note})\n", r.min, r.max));
        }
        s.push_str(&format!(
            "auth mechanisms: {}\n",
            if self.facts.mechanisms.is_empty() {
                "none".to_string()
            } else {
                self.facts.mechanisms.join(", ")
            }
        ));
        s.push_str(&format!(
            "default smtp.auth.methods: {}\n",
            self.facts.default_methods_value()
        ));
        if !self.sim_args.is_empty() {
            s.push_str(&format!(
                "embedded simulated device started with: {}\n",
                self.sim_args.join(" ")
            ));
        }
        s.push_str(&format!(
            "login: {}\n",
            match &self.login {
                Some(l) => format!("as {:?} (password ***)", l.user),
                None => "none".into(),
            }
        ));
        s
    }

    /// A device line without the prompts in front of it.
    pub fn strip_prompt<'a>(&self, mut line: &'a str) -> &'a str {
        if self.prompt.is_empty() {
            return line;
        }
        while let Some(rest) = line.strip_prefix(self.prompt.as_str()) {
            line = rest;
        }
        line
    }

    /// Quotes one value the way the dialect wants.
    pub fn quote(&self, value: &str) -> String {
        match self.quoting {
            Quoting::None => value.to_string(),
            Quoting::Double => {
                let needs = value.is_empty()
                    || value
                        .chars()
                        .any(|c| c == ' ' || c == '"' || c == '\\' || c == '\t');
                if !needs {
                    return value.to_string();
                }
                let mut s = String::from("\"");
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
                s.push('"');
                s
            }
        }
    }

    /// Reads back a value quoted the way the dialect quotes.
    pub fn unquote(&self, value: &str) -> String {
        if self.quoting == Quoting::None {
            return value.to_string();
        }
        let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return value.to_string();
        };
        let mut s = String::new();
        let mut esc = false;
        for c in inner.chars() {
            if esc {
                s.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                s.push(c);
            }
        }
        s
    }

    /// Whether a recipient line's `verdict` says the server accepted the recipient.
    pub fn recipient_is_accepted(&self, verdict: &str) -> bool {
        verdict == self.recipient_accepted
    }

    /// The device's name for a SPEC setting key.
    pub fn device_key<'a>(&'a self, key: &'a str) -> &'a str {
        self.keys.get(key).map(String::as_str).unwrap_or(key)
    }

    /// The device's word for a SPEC alert kind.
    pub fn alert_kind<'a>(&'a self, kind: &'a str) -> &'a str {
        self.alert_kinds
            .get(kind)
            .map(String::as_str)
            .unwrap_or(kind)
    }

    /// Renders the command line of `op`; parameters are quoted unless `raw`.
    pub fn render(
        &self,
        op: &str,
        params: &[(&str, &str)],
        raw: &[&str],
    ) -> Result<String, ProfileError> {
        let Some(t) = self.commands.get(op) else {
            return Err(ProfileError(format!(
                "profile {:?} has no template for {op:?}",
                self.name
            )));
        };
        Ok(fill(t, |name| {
            params.iter().find(|(k, _)| *k == name).map(|(k, v)| {
                if raw.contains(k) {
                    v.to_string()
                } else {
                    self.quote(v)
                }
            })
        }))
    }

    /// One `apply` pair for a device key and a value (quoted).
    pub fn render_pair(&self, key: &str, value: &str) -> String {
        let quoted = self.quote(value);
        fill(&self.apply_pair, |name| match name {
            "key" => Some(key.to_string()),
            "value" => Some(quoted.clone()),
            _ => None,
        })
    }
}

/// Replaces each `{name}` in `template` once, left to right, with what `value` gives;
/// unknown names stay as they are. Values are never scanned again.
fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_profile() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/sim.toml"
        ))
        .expect("fixtures/devices/sim.toml")
    }

    #[test]
    fn the_sim_profile_loads_and_renders() {
        let p = Profile::parse("sim.toml", &sim_profile()).expect("valid profile");
        assert_eq!(
            p.render(
                "set",
                &[("key", "smtp.auth.user"), ("value", "a \"b\"")],
                &[]
            )
            .unwrap(),
            "set smtp.auth.user \"a \\\"b\\\"\""
        );
        assert_eq!(p.unquote("\"a \\\"b\\\"\""), "a \"b\"");
        // A value holding a placeholder is not substituted again.
        assert_eq!(
            p.render(
                "scan_as_user",
                &[("to", "{user}"), ("size_kb", "1"), ("user", "u")],
                &[]
            )
            .unwrap(),
            "scan send {user} 1 u"
        );
        assert_eq!(
            p.render_pair("smtp.auth.user", "a b"),
            "smtp.auth.user=\"a b\""
        );
        assert!(p.error.is_match("ERR config x: y"));
        assert!(p.job_failed.is_match("EVENT JOB 3 failed timeout no reply"));
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let broken = sim_profile().replace("job = \"job {id}\"", "job = \"job\"");
        let e = Profile::parse("x.toml", &broken).unwrap_err();
        assert!(e.0.contains("x.toml") && e.0.contains("{id}"), "{e}");
        let broken = sim_profile().replace(
            "(?<class>\\S+)(?: (?<detail>.*))?$'\n# Lines",
            "(?<klass>\\S+)'\n# Lines",
        );
        let e = Profile::parse("x.toml", &broken).unwrap_err();
        assert!(e.0.contains("status.error"), "{e}");
        let with_prompt = sim_profile().replace("prompt = \"\"", "prompt = \"mfp> \"");
        let p = Profile::parse("x.toml", &with_prompt).expect("a prompt is allowed");
        assert_eq!(p.strip_prompt("mfp> mfp> OK"), "OK");
        assert_eq!(p.strip_prompt("OK"), "OK");
        let bad_variant = sim_profile().replace("variants = []", "variants = [\"lenient\"]");
        let e = Profile::parse("x.toml", &bad_variant).unwrap_err();
        assert!(e.0.contains("lenient") && e.0.contains("cn-only"), "{e}");
        let e = Profile::parse("x.toml", "name = 3").unwrap_err();
        assert!(e.0.starts_with("x.toml:"), "{e}");
    }

    #[test]
    fn the_reference_profile_has_the_reference_facts() {
        let p = Profile::parse("sim.toml", &sim_profile()).expect("valid profile");
        assert_eq!(p.facts, DeviceFacts::default());
        assert!(p.login.is_none());
        // Without the new fields: the same facts.
        let bare: String = sim_profile()
            .lines()
            .filter(|l| {
                !l.starts_with("auth_mechanisms")
                    && !l.starts_with("default_auth_methods")
                    && !l.starts_with("smtp.timeout")
                    && !l.starts_with("pop_before_smtp.wait")
                    && !l.starts_with("load.")
                    && !l.starts_with("[ranges]")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let p = Profile::parse("bare.toml", &bare).expect("valid profile");
        assert_eq!(p.facts, DeviceFacts::default());
        let s = p.summary();
        assert!(
            s.contains("smtp.timeout") && s.contains("30 to 300 (SPEC's)"),
            "{s}"
        );
    }

    #[test]
    fn ranges_mechanisms_and_login_are_read() {
        let text = sim_profile()
            .replace("smtp.timeout = [30, 300]", "\"smtp.timeout\" = [10, 600]")
            .replace("job_ms = 400000", "job_ms = 700000")
            .replace("load.split_size = [100, 15000]", "load.split_size = [50, 20000]")
            .replace(
                "auth_mechanisms = [\"xoauth2\", \"digest-md5\", \"cram-md5\", \"login\", \"plain\"]",
                "auth_mechanisms = [\"plain\", \"ntlm\", \"login\"]",
            )
            .replace(
                "default_auth_methods = [\"digest-md5\", \"cram-md5\", \"login\", \"plain\"]",
                "default_auth_methods = [\"plain\", \"login\"]",
            )
            + "\n[login]\nuser_prompt = '^login: $'\npassword_prompt = '^Password: $'\nuser = \"admin\"\npassword = \"pw\"\n";
        let p = Profile::parse("x.toml", &text).expect("valid profile");
        assert_eq!(p.facts.range(Key::SmtpTimeout), Range { min: 10, max: 600 });
        assert_eq!(
            p.facts.range(Key::LoadSplitSize),
            Range {
                min: 50,
                max: 20000
            }
        );
        assert_eq!(
            p.facts.range(Key::PopBeforeSmtpWait),
            Range { min: 0, max: 60 }
        );
        // In SPEC §3.7's order, whatever the file's.
        assert_eq!(p.facts.mechanisms, ["ntlm", "login", "plain"]);
        assert_eq!(p.facts.default_methods_value(), "login,plain");
        let l = p.login.as_ref().expect("a login");
        assert!(l.user_prompt.is_match("login: ") && l.user == "admin");
        let s = p.summary();
        assert!(
            s.contains("10 to 600 (the firmware's)") && !s.contains("\"pw\""),
            "{s}"
        );
        assert!(
            !format!("{p:?}").contains("\"pw\""),
            "the password in {{:?}}"
        );
    }

    #[test]
    fn the_menu_profile_has_its_own_words_and_sim_args() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/sim-menu.toml"
        ))
        .expect("fixtures/devices/sim-menu.toml");
        let p = Profile::parse("sim-menu.toml", &text).expect("valid profile");
        assert_eq!(p.sim_args, ["--dialect", "menu"]);
        assert!(p.recipient_is_accepted("sent") && !p.recipient_is_accepted("accepted"));
        assert_eq!(p.device_key("pop_before_smtp.wait"), "POP_BEFORE_SMTP_WAIT");
        assert_eq!(p.alert_kind("paper_empty"), "paper-out");
        assert_eq!(p.strip_prompt("MFP> MFP> Done."), "Done.");
        assert!(p.ok.is_match("Done.") && !p.ok.is_match("OK"));
        let c = p
            .error
            .captures("Error [auth_failed]: 535 5.7.8 no")
            .expect("an error line");
        assert_eq!(&c["class"], "auth_failed");
        assert_eq!(&c["detail"], "535 5.7.8 no");
        let c = p
            .recipient
            .captures("  to a@[IPv6:::1]: refused (550 5.1.1 (no) such)")
            .expect("a recipient line");
        assert_eq!(&c["address"], "a@[IPv6:::1]");
        assert_eq!(&c["verdict"], "refused");
        assert_eq!(&c["detail"], "550 5.1.1 (no) such");
        assert!(p
            .job_failed
            .is_match("*** Job #3 aborted [timeout] no reply"));
        assert!(p.job_state.is_match("Job #3 in progress"));
        assert!(!p.event.is_match("Job #3 completed"));
        // Every SPEC key is named differently.
        for (k, _) in hil_oracle::model::DEFAULTS {
            assert_ne!(p.device_key(k.as_str()), k.as_str(), "{k}");
        }
        // The reference: its word, no arguments.
        let r = Profile::parse("sim.toml", &sim_profile()).expect("valid profile");
        assert!(r.recipient_is_accepted("accepted") && r.sim_args.is_empty());
    }

    /// Every broken profile names the file and the field; several problems are all
    /// named.
    #[test]
    fn broken_profiles_name_the_field() {
        let base = sim_profile();
        let cases: &[(&str, String, &[&str])] = &[
            (
                "missing operation",
                base.replace("counter = \"counter send-now\"\n", ""),
                &["[commands]", "\"counter\""],
            ),
            (
                "pattern without its group",
                base.replace("job_started = '^JOB (?<id>\\d+)$'", "job_started = '^JOB (\\d+)$'"),
                &["answers.job_started", "(?<id>"],
            ),
            (
                "range outside the type",
                base.replace("smtp.timeout = [30, 300]", "smtp.timeout = [0, 300]"),
                &["[ranges] smtp.timeout", "outside the type"],
            ),
            (
                "range upside down",
                base.replace("load.split_size = [100, 15000]", "load.split_size = [200, 100]"),
                &["[ranges] load.split_size", "above the maximum"],
            ),
            (
                "range of an unknown key",
                base.replace("smtp.timeout = [30, 300]", "smtp.port = [1, 2]"),
                &["[ranges] smtp.port", "known: smtp.timeout"],
            ),
            (
                "range not a pair",
                base.replace("smtp.timeout = [30, 300]", "smtp.timeout = 30"),
                &["[ranges] smtp.timeout", "[MIN, MAX]"],
            ),
            (
                "unknown mechanism",
                base.replace("\"xoauth2\", \"digest-md5\"", "\"kerberos\", \"digest-md5\""),
                &["auth_mechanisms", "\"kerberos\"", "gss-spnego"],
            ),
            (
                "default not implemented",
                base.replace("\"xoauth2\", \"digest-md5\", \"cram", "\"digest-md5\", \"cram")
                    .replace("default_auth_methods = [\"digest-md5\"", "default_auth_methods = [\"xoauth2\""),
                &["default_auth_methods", "\"xoauth2\"", "auth_mechanisms"],
            ),
            (
                "unknown variant",
                base.replace("variants = []", "variants = [\"lenient\"]"),
                &["variants", "\"lenient\""],
            ),
            (
                "template missing a parameter",
                base.replace("notify_add = \"notify add {address}\"", "notify_add = \"notify add\""),
                &["[commands] notify_add", "{address}"],
            ),
            (
                "job_ms shorter than the longest timeout",
                base.replace("smtp.timeout = [30, 300]", "smtp.timeout = [30, 400]"),
                &["[timeouts] job_ms = 400000", "460 s"],
            ),
            (
                "login pattern invalid",
                base.clone() + "\n[login]\nuser_prompt = '('\npassword_prompt = 'x'\nuser = \"a\"\npassword = \"b\"\n",
                &["login.user_prompt", "not a valid pattern"],
            ),
        ];
        for (what, text, want) in cases {
            let problems = match Profile::check("bad.toml", text) {
                Ok(_) => panic!("{what}: accepted"),
                Err(p) => p,
            };
            let all = problems.join("\n");
            for w in *want {
                assert!(all.contains(w), "{what}: {w:?} not in\n{all}");
            }
            assert!(
                problems.iter().all(|p| p.starts_with("bad.toml: ")),
                "{all}"
            );
        }
        // Several problems at once are all named.
        let text = base
            .replace("counter = \"counter send-now\"\n", "")
            .replace("smtp.timeout = [30, 300]", "smtp.timeout = [0, 300]")
            .replace("variants = []", "variants = [\"lenient\"]")
            .replace(
                "job_started = '^JOB (?<id>\\d+)$'",
                "job_started = '^JOB (\\d+)$'",
            );
        let problems = Profile::check("bad.toml", &text).map(|_| ()).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        let e = Profile::parse("bad.toml", &text).unwrap_err();
        assert_eq!(e.0.lines().count(), 4, "{e}");
    }
}
