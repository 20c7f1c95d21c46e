//! Device profiles: the console dialect of one kind of device, read from a TOML file
//! (`fixtures/devices/*.toml`, documented in docs/profiles.md). The driver sends
//! nothing that is not a template here and reads nothing that is not matched by a
//! pattern here; the device's own words for values, error classes, job states and
//! its clock are mapped to SPEC's here, so nothing past the driver sees them.
//!
//! - `raw`: the file's TOML shape; `check`: turning it into a [`Profile`], every
//!   problem named with the file and the field; `lint`: patterns that would read
//!   every line, or the wrong ones.
//! - `template`: command templates and their steps, quoting; `words`: value, class
//!   and state words, the clock format.

mod check;
mod lint;
mod raw;
pub mod template;
pub mod words;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use hil_oracle::model::{self, DeviceFacts, Key};

pub use template::{Quoting, Step, Template};
pub use words::{ClockFormat, ValueWords, WordMap};

use crate::device::term::Ansi;

/// The login step of a console that asks for one: the prompts (matched against what
/// the device prints, also without a newline after it) and what to answer.
#[derive(Clone)]
pub struct Login {
    /// `None`: the console asks for a password only.
    pub user_prompt: Option<Regex>,
    pub password_prompt: Regex,
    pub user: String,
    /// Masked in every log, like the other secrets (and in `{:?}`).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user_prompt", &self.user_prompt.as_ref().map(Regex::as_str))
            .field("password_prompt", &self.password_prompt.as_str())
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Timeouts of the dialect, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub command_ms: u64,
    pub job_ms: u64,
    pub startup_ms: u64,
    /// A pause after each character typed (0: type at once).
    pub char_delay_ms: u64,
}

/// A question the device may ask during any operation (a conditional confirmation,
/// `Save changes? [y/n]`), answered whenever it shows.
#[derive(Debug, Clone)]
pub struct Question {
    pub expect: Regex,
    pub send: String,
    /// Sent without a line ending.
    pub raw: bool,
}

/// Whether the device echoes what is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Learn it: a line coming back exactly as it was typed is its echo.
    Auto,
    On,
    Off,
}

/// A pager: the device stops a long answer at `more` until it gets `send`.
#[derive(Debug, Clone)]
pub struct Paging {
    pub more: Regex,
    pub send: String,
}

/// How the device shows that it crashed and rebooted, and how to power-cycle it.
#[derive(Debug, Clone)]
pub struct Crash {
    /// A line it prints when it crashes (a panic banner, a watchdog reset).
    pub pattern: Option<Regex>,
    /// A line it prints when it has booted.
    pub boot: Option<Regex>,
    pub boot_ms: u64,
    /// Run with `sh -c` on the harness host; `{pid}` is the process id of a
    /// device the harness started itself, `{endpoint}` the `--device` text.
    pub power_cycle: Option<String>,
}

/// A checked profile, its patterns compiled.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub line_ending: String,
    /// A CR alone ends a line the device prints (`device_line_ending = "cr"`).
    pub cr_ends_line: bool,
    /// The command prompt(s) as printed (no newline after them), anchored at the start
    /// of a line: stripped from the lines read; a line not ended yet that is nothing
    /// but prompts means the device waits for a command. `None`: no prompt.
    pub prompt: Option<Regex>,
    pub echo: Echo,
    pub ansi: Ansi,
    /// The console's character encoding.
    pub encoding: &'static encoding_rs::Encoding,
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
    /// `None`: no success word; an answer ending at the prompt without an error line
    /// is a success.
    pub ok: Option<Regex>,
    pub error: Regex,
    /// The class of an error line whose pattern has no `class` group.
    pub error_class: String,
    pub event: Regex,
    /// Lines right after an error line (or a job state) that belong to it.
    pub continuation: Option<Regex>,
    pub value: Regex,
    pub job_started: Regex,
    /// A trigger's `job_started` line is also its status line.
    pub job_started_is_status: bool,
    pub job_state: Regex,
    pub recipient: Regex,
    /// The `verdict` of a `recipient` line for a recipient the server accepted (any
    /// other word: rejected).
    pub recipient_accepted: String,
    pub clock_answer: Option<Regex>,
    pub job_done: Regex,
    pub job_failed: Regex,
    /// Poll `job` this often for a job's end (`[events] poll_ms`, or a console
    /// without job events).
    pub poll_ms: Option<u64>,
    pub paging: Option<Paging>,
    pub crash: Option<Crash>,
    pub clock: ClockFormat,
    /// How the device shows its clock, when not as it takes it (`formats.clock_read`).
    pub clock_shown: Option<ClockFormat>,
    /// What the harness must know of the firmware: its variants, its ranges where
    /// SPEC marks †, the AUTH mechanisms it implements and its default methods.
    pub facts: DeviceFacts,
    /// The login step, for consoles that ask for one.
    pub login: Option<Login>,
    /// Questions answered whenever they show.
    pub questions: Vec<Question>,
    /// Only for profiles of the simulated device: the arguments the embedded
    /// simulated device is started with (after the harness's own).
    pub sim_args: Vec<String>,
    pub values: ValueWords,
    pub classes: WordMap,
    pub states: WordMap,
    commands: BTreeMap<String, Template>,
    quote_of: BTreeMap<String, Quoting>,
    alert_kinds: BTreeMap<String, String>,
    keys: BTreeMap<Key, String>,
}

/// The operations a profile must give a template for, with the parameters each uses.
pub const OPERATIONS: &[(&str, &[&str])] = &[
    ("reset", &[]),
    ("get", &["key"]),
    ("apply", &["pairs"]),
    ("cert_import", &["pem"]),
    ("user_add", &["name", "password", "address"]),
    ("notify_add", &["address"]),
    ("scan", &["to", "size_kb"]),
    ("scan_as_user", &["to", "size_kb", "user"]),
    ("alert", &["kind"]),
    ("counter", &[]),
    ("job", &["id"]),
];

/// Operations a profile may give, with the parameters they may use: `set` (one
/// setting; the harness applies settings with `apply`), `clock_set` sets the clock,
/// `clock_get` reads it (its answer matched by `answers.clock`); `on_error` is typed after
/// a step of a several-step operation was refused, to leave the device as it was
/// (discard a candidate configuration, leave a configure mode); `session_setup` is
/// typed once a console is open and logged in, and again after a reboot (turn paging
/// off, enter a privileged mode); `identify` asks the device who it is (firmware
/// version, serial number): its data lines go to the report's header and run.json.
pub const OPTIONAL_OPERATIONS: &[(&str, &[&str])] = &[
    ("set", &["key", "value"]),
    ("clock_set", &["time"]),
    ("clock_get", &[]),
    ("on_error", &[]),
    ("session_setup", &[]),
    ("identify", &[]),
];

/// The operations that start a job.
pub const TRIGGERS: &[&str] = &["scan", "scan_as_user", "alert", "counter"];

/// The firmware variants of SPEC a profile can name.
pub const VARIANTS: &[&str] = &[
    "plaintext-after-starttls-failure",
    "send-without-auth",
    "cn-only",
    "soft-fail-revocation",
];

/// The error classes of SPEC §5.
pub const SPEC_CLASSES: &[&str] = &[
    "disabled",
    "config",
    "connect",
    "timeout",
    "tls_handshake",
    "starttls_unavailable",
    "cert_expired",
    "cert_name",
    "cert_key_usage",
    "cert_chain",
    "cert_revoked",
    "cert_revocation_unknown",
    "pop_auth",
    "auth_no_mechanism",
    "auth_failed",
    "auth_required",
    "rejected",
    "size_over_limit",
];

/// A pattern that matches no line: a console without event lines.
pub const NO_LINE: &str = r"[^\s\S]";

/// How often a console without job events is polled for a job's end.
pub const DEFAULT_POLL_MS: u64 = 500;

/// The job states of SPEC §6.
pub const SPEC_STATES: &[&str] = &["queued", "running", "done", "failed"];

/// A profile that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

/// Whether a SPEC setting is an on/off one (its default is `on` or `off`).
pub fn is_bool_key(key: Key) -> bool {
    matches!(key.default_value(), "on" | "off")
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
        check::check(file, text)
    }

    /// The template of `op`, if the profile has one.
    pub fn template(&self, op: &str) -> Option<&Template> {
        self.commands.get(op)
    }

    /// A device line without the prompts in front of it.
    pub fn strip_prompt<'a>(&self, mut line: &'a str) -> &'a str {
        let Some(p) = &self.prompt else { return line };
        while let Some(m) = p.find(line) {
            if m.end() == 0 {
                break;
            }
            line = &line[m.end()..];
        }
        line
    }

    /// Whether `text`, a line the device has not ended, is its command prompt (one
    /// or more times) and nothing else.
    pub fn is_prompt(&self, text: &str) -> bool {
        self.prompt.is_some() && !text.is_empty() && self.strip_prompt(text).trim().is_empty()
    }

    /// How the parameter `param` is quoted.
    pub fn quoting_of(&self, param: &str) -> Quoting {
        self.quote_of.get(param).copied().unwrap_or(self.quoting)
    }

    /// How `param` is quoted in operation `op`: `[quote] "OP.PARAM"`, else
    /// `[quote] PARAM`, else `quoting`.
    pub fn quoting_in(&self, op: &str, param: &str) -> Quoting {
        self.quote_of
            .get(&format!("{op}.{param}"))
            .copied()
            .unwrap_or_else(|| self.quoting_of(param))
    }

    /// Quotes one value the way the dialect writes values of settings.
    pub fn quote(&self, value: &str) -> String {
        self.quoting_of("value").quote(value)
    }

    /// Reads back a value quoted the way the dialect quotes values.
    pub fn unquote(&self, value: &str) -> String {
        self.quoting_of("value").unquote(value)
    }

    /// Whether a recipient line's `verdict` says the server accepted the recipient.
    pub fn recipient_is_accepted(&self, verdict: &str) -> bool {
        verdict == self.recipient_accepted
    }

    /// The device's name for a SPEC setting key.
    pub fn device_key(&self, key: Key) -> &str {
        self.keys
            .get(&key)
            .map(String::as_str)
            .unwrap_or(key.as_str())
    }

    /// Whether the profile names `key` itself (in `[keys]`).
    pub fn maps_key(&self, key: Key) -> bool {
        self.keys.contains_key(&key)
    }

    /// The device's word for a SPEC alert kind.
    pub fn alert_kind<'a>(&'a self, kind: &'a str) -> &'a str {
        self.alert_kinds
            .get(kind)
            .map(String::as_str)
            .unwrap_or(kind)
    }

    /// A SPEC value of `key` in the device's words.
    pub fn device_value(&self, key: Key, value: &str) -> String {
        self.values.to_device(key, value, is_bool_key(key))
    }

    /// A value the device showed for `key`, in SPEC's words.
    pub fn spec_value(&self, key: Key, shown: &str) -> String {
        self.values.to_spec(key, shown, is_bool_key(key))
    }

    /// An error class as the device wrote it, in SPEC's words.
    pub fn spec_class(&self, word: &str) -> String {
        self.classes.to_spec(word)
    }

    /// How the device shows its clock.
    pub fn clock_read(&self) -> &ClockFormat {
        self.clock_shown.as_ref().unwrap_or(&self.clock)
    }

    /// A job state as the device wrote it, in SPEC's words.
    pub fn spec_state(&self, word: &str) -> String {
        self.states.to_spec(word)
    }

    /// Renders the command line(s) of a one-line template `op`; parameters are
    /// quoted unless named in `raw`. Several-step templates: the first step's text.
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
        let send = t
            .steps
            .iter()
            .find_map(|s| s.send.as_deref())
            .unwrap_or_default();
        Ok(self.render_text(op, send, params, raw))
    }

    /// Fills one step's text with the parameters, each quoted as the profile says
    /// for it unless named in `raw`.
    pub fn render_text(
        &self,
        op: &str,
        text: &str,
        params: &[(&str, &str)],
        raw: &[&str],
    ) -> String {
        let text = template::optional_parts(text, |name| {
            params.iter().any(|(k, v)| *k == name && v.is_empty())
        });
        template::fill(&text, |name| {
            params.iter().find(|(k, _)| *k == name).map(|(k, v)| {
                if raw.contains(k) {
                    v.to_string()
                } else {
                    self.quoting_in(op, k).quote(v)
                }
            })
        })
    }

    /// One `apply` pair for a device key and a value in the device's words (quoted).
    pub fn render_pair(&self, key: &str, value: &str) -> String {
        let quoted = self.quote(value);
        template::fill(&self.apply_pair, |name| match name {
            "key" => Some(key.to_string()),
            "value" => Some(quoted.clone()),
            _ => None,
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
        for (op, _) in OPERATIONS.iter().chain(OPTIONAL_OPERATIONS) {
            if let Some(t) = self.commands.get(*op) {
                s.push_str(&format!("  {op:<13} {}\n", t.describe()));
            }
        }
        s.push_str(&self.console_summary());
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
        if !self.facts.unsupported.is_empty() {
            s.push_str(&format!(
                "features the firmware lacks: {}\n",
                self.facts.unsupported.join(", ")
            ));
        }
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

    /// The console's traits, one line each, for the summary.
    fn console_summary(&self) -> String {
        let mut s = String::new();
        let on_off = |b: bool| if b { "yes" } else { "no" };
        s.push_str(&format!(
            "prompt: {}\n",
            self.prompt
                .as_ref()
                .map_or("none".to_string(), |p| format!("/{}/", p.as_str()))
        ));
        s.push_str(&format!(
            "echo: {}; ansi: {}; encoding: {}\n",
            match self.echo {
                Echo::Auto => "auto",
                Echo::On => "on",
                Echo::Off => "off",
            },
            match self.ansi {
                Ansi::Strip => "strip",
                Ansi::Keep => "keep",
            },
            self.encoding.name()
        ));
        s.push_str(&format!(
            "success word: {}; job start is the status: {}; continuation lines: {}\n",
            self.ok.as_ref().map_or(
                "none (an answer ends at the prompt)".to_string(),
                |r| format!("/{}/", r.as_str())
            ),
            on_off(self.job_started_is_status),
            self.continuation
                .as_ref()
                .map_or("none".to_string(), |r| format!("/{}/", r.as_str()))
        ));
        if !self.values.per_key.is_empty() || self.values.bool_words.is_some() {
            s.push_str(&format!(
                "value words: {}{} key(s)\n",
                self.values
                    .bool_words
                    .as_ref()
                    .map_or(String::new(), |(on, off)| format!("on/off as {on}/{off}, ")),
                self.values.per_key.len()
            ));
        }
        if !self.classes.0.is_empty() || !self.states.0.is_empty() {
            s.push_str(&format!(
                "error class words: {}; job state words: {}\n",
                self.classes.0.len(),
                self.states.0.len()
            ));
        }
        s.push_str(&format!("clock: {}\n", self.clock.describe()));
        if let Some(p) = &self.paging {
            s.push_str(&format!(
                "pager: /{}/ answered {:?}\n",
                p.more.as_str(),
                p.send
            ));
        }
        if let Some(c) = &self.crash {
            s.push_str(&format!(
                "crash: banner {}, boot {}, power cycle {}\n",
                c.pattern
                    .as_ref()
                    .map_or("none".into(), |r| format!("/{}/", r.as_str())),
                c.boot
                    .as_ref()
                    .map_or("none".into(), |r| format!("/{}/", r.as_str())),
                c.power_cycle
                    .as_ref()
                    .map_or("none".into(), |p| format!("{p:?}"))
            ));
        }
        s
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use hil_oracle::model::Range;

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
            "(?<klass>\\S+'\n# Lines",
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
        assert!(
            l.user_prompt
                .as_ref()
                .is_some_and(|u| u.is_match("login: "))
                && l.user == "admin"
        );
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
        assert_eq!(p.device_key(Key::PopBeforeSmtpWait), "POP_BEFORE_SMTP_WAIT");
        assert_eq!(p.alert_kind("paper_empty"), "paper-out");
        assert_eq!(p.strip_prompt("MFP> MFP> Done."), "Done.");
        let ok = p.ok.as_ref().expect("an ok word");
        assert!(ok.is_match("Done.") && !ok.is_match("OK"));
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
            assert_ne!(p.device_key(*k), k.as_str(), "{k}");
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

    /// What `hil profile check` lints and the new fields it checks, each named.
    #[test]
    fn lints_and_console_fields_name_the_field() {
        let base = sim_profile();
        let cases: &[(&str, String, &[&str])] = &[
            (
                "event matching the empty line",
                base.replace("event = '^EVENT '", "event = '^'"),
                &["status.event", "matches an empty line"],
            ),
            (
                "event matching every line",
                base.replace("event = '^EVENT '", "event = '.'"),
                &["status.event", "matches every line"],
            ),
            (
                "event overlapping a status line",
                base.replace("event = '^EVENT '", "event = '^(EVENT |OK)'"),
                &["status.event", "\"OK\", a line of status.ok"],
            ),
            (
                "a job end the event pattern misses",
                base.replace(
                    "job_done = '^EVENT JOB (?<id>\\d+) done$'",
                    "job_done = '^JOB (?<id>\\d+) done$'",
                ),
                &["status.event", "events.job_done"],
            ),
            (
                "no ok word and no prompt",
                base.replace("ok = '^OK$'", "ok = ''"),
                &["status.ok", "no prompt"],
            ),
            (
                "an undefined placeholder",
                base.replace("reset = \"reset\"", "reset = \"reset {force}\""),
                &["[commands] reset", "{force} is not a parameter of reset"],
            ),
            (
                "a class word for no SPEC class",
                base.clone() + "\n[classes]\n\"AUTH-FAIL\" = \"authentication\"\n",
                &["[classes] \"AUTH-FAIL\"", "not an error class of SPEC"],
            ),
            (
                "two values with one word",
                base.clone()
                    + "\n[values]\n\"smtp.tls\" = { none = \"plain\", smtps = \"plain\" }\n",
                &["[values] \"smtp.tls\"", "stands for two values"],
            ),
            (
                "a bool shorthand without off",
                base.clone() + "\n[values]\nbool = { on = \"enable\" }\n",
                &["[values] \"bool\"", "on = "],
            ),
            (
                "a clock format that loses the date",
                base.clone() + "\n[formats]\nclock = \"[hour]:[minute]:[second]\"\n",
                &["formats.clock", "back"],
            ),
            (
                "an unknown echo",
                base.replace(
                    "quoting = \"double\"",
                    "quoting = \"double\"\necho = \"sometimes\"",
                ),
                &["echo = \"sometimes\""],
            ),
            (
                "a power cycle with an unknown placeholder",
                base.clone() + "\n[crash]\npower_cycle = \"pdu {outlet}\"\n",
                &["crash.power_cycle", "{outlet}"],
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
        }
    }

    #[test]
    fn the_router_profile_reads_its_words() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/router.toml"
        ))
        .expect("router.toml");
        let p = Profile::parse("router.toml", &text).expect("valid profile");
        assert!(p.is_prompt("mfp-4000(config)# ") && p.is_prompt("mfp-4000# "));
        assert_eq!(p.strip_prompt("mfp-4000# show clock"), "show clock");
        assert_eq!(p.device_value(Key::EmailScan, "off"), "disable");
        assert_eq!(p.spec_value(Key::SmtpTls, "tls"), "smtps");
        assert_eq!(p.spec_class("AUTH-FAIL"), "auth_failed");
        assert_eq!(p.spec_state("aborted"), "failed");
        assert_eq!(p.quoting_of("address"), Quoting::None);
        assert_eq!(p.quoting_of("value"), Quoting::Double);
        assert_eq!(
            p.render_text(
                "user_add",
                "username {name} password {password}{[ email {address}]}",
                &[("name", "bob"), ("password", "a b"), ("address", "")],
                &[]
            ),
            "username bob password \"a b\""
        );
        assert!(p.ok.is_none() && p.job_started_is_status && p.continuation.is_some());
        // Quoting for one operation's template only.
        let one = text.replace(
            "[quote]\n",
            "[quote]\n\"notify_add.address\" = \"double\"\n",
        );
        let q = Profile::parse("router.toml", &one).expect("valid profile");
        assert_eq!(q.quoting_in("notify_add", "address"), Quoting::Double);
        assert_eq!(q.quoting_in("user_add", "address"), Quoting::None);
        let bad = text.replace("[quote]\n", "[quote]\n\"notify_add.name\" = \"double\"\n");
        let e = Profile::parse("router.toml", &bad).expect_err("not a parameter");
        assert!(
            e.0.contains("\"name\" is not a parameter of notify_add"),
            "{e}"
        );
    }
}
