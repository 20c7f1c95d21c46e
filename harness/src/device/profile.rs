//! Device profiles: the console dialect of one kind of device, read from a TOML file
//! (`fixtures/devices/*.toml`). The driver sends nothing that is not a template here
//! and reads nothing that is not matched by a pattern here.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

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
    pub job_done: Regex,
    pub job_failed: Regex,
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

impl Profile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProfileError(format!("{}: cannot read: {e}", path.display())))?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks profile text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let raw: RawProfile =
            toml::from_str(text).map_err(|e| ProfileError(format!("{file}: {e}")))?;
        for (op, params) in OPERATIONS {
            let Some(t) = raw.commands.get(*op) else {
                return Err(ProfileError(format!(
                    "{file}: [commands] has no template for the operation {op:?}"
                )));
            };
            for p in *params {
                if !t.contains(&format!("{{{p}}}")) {
                    return Err(ProfileError(format!(
                        "{file}: [commands] {op} = {t:?} does not use the parameter {{{p}}}"
                    )));
                }
            }
        }
        for op in raw.commands.keys() {
            if !OPERATIONS.iter().any(|(o, _)| o == op) {
                return Err(ProfileError(format!(
                    "{file}: [commands] {op:?} is not an operation; known: {}",
                    OPERATIONS
                        .iter()
                        .map(|(o, _)| *o)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if !matches!(raw.line_ending.as_str(), "\r\n" | "\n" | "\r") {
            return Err(ProfileError(format!(
                "{file}: line_ending must be \"\\r\\n\", \"\\n\" or \"\\r\""
            )));
        }
        const DAY_MS: u64 = 86_400_000;
        for (name, v) in [
            ("command_ms", raw.timeouts.command_ms),
            ("job_ms", raw.timeouts.job_ms),
            ("startup_ms", raw.timeouts.startup_ms),
        ] {
            if v == 0 || v > DAY_MS {
                return Err(ProfileError(format!(
                    "{file}: [timeouts] {name} = {v} must be from 1 to {DAY_MS} ms"
                )));
            }
        }
        for p in ["{key}", "{value}"] {
            if !raw.apply.pair.contains(p) {
                return Err(ProfileError(format!("{file}: [apply] pair must use {p}")));
            }
        }
        for v in &raw.variants {
            if !VARIANTS.contains(&v.as_str()) {
                return Err(ProfileError(format!(
                    "{file}: variants: {v:?} is not a variant; known: {}",
                    VARIANTS.join(", ")
                )));
            }
        }
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            line_ending: raw.line_ending,
            prompt: raw.prompt,
            quoting: raw.quoting,
            timeouts: raw.timeouts,
            synthetic_scan: raw.synthetic_scan,
            variants: raw.variants,
            apply_pair: raw.apply.pair,
            apply_separator: raw.apply.separator,
            ok: pattern(file, "status.ok", &raw.status.ok, &[])?,
            error: pattern(file, "status.error", &raw.status.error, &["class"])?,
            event: pattern(file, "status.event", &raw.status.event, &[])?,
            value: pattern(file, "answers.value", &raw.answers.value, &["key", "value"])?,
            job_started: pattern(
                file,
                "answers.job_started",
                &raw.answers.job_started,
                &["id"],
            )?,
            job_state: pattern(
                file,
                "answers.job_state",
                &raw.answers.job_state,
                &["id", "state"],
            )?,
            recipient: pattern(
                file,
                "answers.recipient",
                &raw.answers.recipient,
                &["address", "verdict"],
            )?,
            job_done: pattern(file, "events.job_done", &raw.events.job_done, &["id"])?,
            job_failed: pattern(
                file,
                "events.job_failed",
                &raw.events.job_failed,
                &["id", "class"],
            )?,
            commands: raw.commands,
            alert_kinds: raw.alert_kinds,
            keys: raw.keys,
        })
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
}
