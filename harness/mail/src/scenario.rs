//! Scenario files (`scenarios/*.toml`, documented in `scenarios/README.md`): what the
//! fake SMTP and POP3 servers do, and the scripted checks that prove it. Loading
//! checks everything and names the file and the field on any error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dns::{DnsConfig, DnsConfigError};
use crate::faults::{self, FaultError};
use crate::pop3::Pop3Config;
use crate::smtp::{ListenerKind, ListenerSpec, SmtpConfig};

/// Which server a check talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    #[default]
    Smtp,
    Pop3,
}

/// One step of a check: send something, then expect something.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckStep {
    /// A line to send (CRLF is added).
    pub send: Option<String>,
    /// Send a message body of this many bytes of text lines, then `.` (after DATA).
    pub send_body: Option<usize>,
    /// Send these raw bytes (escapes `\r`, `\n` as in TOML strings), no CRLF added.
    pub send_raw: Option<String>,
    /// What comes back: a prefix of the reply's last line (`250`, `+OK`, `-ERR`), or
    /// `closed` (the server hangs up), `silence` (nothing for `wait_ms`),
    /// `garbage` (bytes that are not the protocol), `partial` (bytes without an end
    /// of line, then silence), `tls_fails` (a TLS handshake does not complete).
    pub expect: Option<String>,
    /// The reply contains this text.
    pub contains: Option<String>,
    /// The reply does not contain this text.
    pub lacks: Option<String>,
    /// The reply takes at least this long (device ms).
    pub min_ms: Option<u64>,
    /// How long `silence` and `partial` listen (device ms; default 1000).
    pub wait_ms: Option<u64>,
    /// After this step, start TLS on the connection (after STARTTLS / STLS).
    pub starttls: bool,
    /// Log in to the scenario's POP3 server first as this user with USER/PASS (for
    /// POP-before-SMTP checks); the password is the account's.
    pub pop_login: Option<String>,
}

/// A scripted conversation that shows the scenario does what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub server: Proto,
    /// Which listener (default: the first of the server).
    #[serde(default)]
    pub listener: Option<ListenerKind>,
    /// Start TLS at connect (default: only on `tls` listeners). `false` on a `tls`
    /// listener plays a plaintext client, `true` elsewhere a TLS client.
    #[serde(default)]
    pub tls: Option<bool>,
    pub steps: Vec<CheckStep>,
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file name without `.toml`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds probabilistic faults and challenges (unless a server sets its own).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub pop3: Option<Pop3Config>,
    /// The fake DNS server's script (`crate::dns`): the names a device resolves through
    /// its `net.dns` servers. Optional; it makes no scenario without SMTP or POP3.
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    #[serde(default)]
    pub check: Vec<Check>,
    /// Where it was read from (relative cert paths resolve against its folder).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Why a scenario file cannot be used. Every error names the file; a broken rule
/// names the field and the rule (a TOML error says where, without quoting the line,
/// which may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot list: {source}", dir.display())]
    List {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or not the shape of a scenario: an unknown field, a wrong type, a
    /// fault table that is no fault.
    #[error("{}: {}", path.display(), syntax_text(.position.as_ref(), message))]
    Syntax {
        path: PathBuf,
        position: Option<TextPosition>,
        message: String,
    },
    #[error("{}: {rule}", path.display())]
    Invalid { path: PathBuf, rule: Rule },
}

/// Where in a scenario's text an error is (both counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    pub line: usize,
    pub column: usize,
}

fn syntax_text(position: Option<&TextPosition>, message: &str) -> String {
    match position {
        Some(p) => format!("line {}, column {}: {message}", p.line, p.column),
        None => message.to_string(),
    }
}

/// A rule of the scenario format that a scenario breaks, with the field it is about.
#[derive(Debug, thiserror::Error)]
pub enum Rule {
    #[error("a scenario needs [smtp], [pop3] or both")]
    NoServer,
    #[error("[{}] has no listeners", .server.section())]
    NoListeners { server: Proto },
    #[error("[{}] listeners[{index}] ({}): a {} listener needs a cert", .server.section(), .kind.name(), .kind.name())]
    ListenerNeedsCert {
        server: Proto,
        index: usize,
        kind: ListenerKind,
    },
    #[error("[{}] listeners[{index}] ({}): port {port} is used twice", .server.section(), .kind.name())]
    PortUsedTwice {
        server: Proto,
        index: usize,
        kind: ListenerKind,
        port: u16,
    },
    #[error("[{}] listeners[{index}] ({}): role {role:?} must be \"port\" or \"ssl_port\" (SMTP only)", .server.section(), .kind.name())]
    ListenerRole {
        server: Proto,
        index: usize,
        kind: ListenerKind,
        role: String,
    },
    #[error("[{}] {source}", .server.section())]
    Fault { server: Proto, source: FaultError },
    #[error("[{}] fault {number} at step {step}: action {action} cannot happen there; allowed: {}", .server.section(), .allowed.join(", "))]
    FaultAtStep {
        server: Proto,
        /// The fault's place in its list, counted from 1.
        number: usize,
        step: String,
        action: &'static str,
        allowed: &'static [&'static str],
    },
    #[error("[smtp.policy] recipients[{index}]: code {code} is not between 200 and 599")]
    RecipientCode { index: usize, code: u16 },
    #[error("[{}] idle_timeout_s must be at least 1", .server.section())]
    IdleTimeoutZero { server: Proto },
    #[error("[smtp.policy] max_size must be at least 1 (leave it out for no limit)")]
    MaxSizeZero,
    #[error("[smtp] extensions: {word} needs BDAT, which this server does not implement")]
    ExtensionNeedsBdat { word: String },
    #[error(
        "[smtp] extensions: {word} comes from the listener kind and `auth`, not from extensions"
    )]
    ExtensionFromListener { word: String },
    #[error(transparent)]
    Dns(#[from] DnsConfigError),
    #[error("check[{index}] {name:?}: {problem}")]
    Check {
        index: usize,
        name: String,
        problem: CheckProblem,
    },
}

/// What is wrong with one scripted check.
#[derive(Debug, thiserror::Error)]
pub enum CheckProblem {
    #[error("the scenario has no {0:?} server")]
    NoServer(Proto),
    #[error("no {} listener", .0.name())]
    NoListener(ListenerKind),
    #[error("no steps")]
    NoSteps,
    #[error("step {step}: one of send, send_body, send_raw")]
    SeveralSends { step: usize },
    #[error("step {step}: pop_login needs a [pop3] server")]
    PopLoginWithoutPop3 { step: usize },
    #[error("step {step}: expect {expect:?} is not a reply prefix (250, +OK, -ERR) nor one of {}", SPECIAL_EXPECTS.join(", "))]
    Expect { step: usize, expect: String },
}

/// What a check step may expect besides a reply prefix.
const SPECIAL_EXPECTS: [&str; 5] = ["closed", "silence", "garbage", "partial", "tls_fails"];

impl Proto {
    /// The scenario file's section of this server: `smtp`, `pop3`.
    pub fn section(&self) -> &'static str {
        match self {
            Proto::Smtp => "smtp",
            Proto::Pop3 => "pop3",
        }
    }
}

fn check_listeners(listeners: &[ListenerSpec], server: Proto) -> Result<(), Rule> {
    if listeners.is_empty() {
        return Err(Rule::NoListeners { server });
    }
    let mut ports = BTreeSet::new();
    for (index, l) in listeners.iter().enumerate() {
        let kind = l.kind;
        if kind != ListenerKind::Plain && l.cert.is_none() {
            return Err(Rule::ListenerNeedsCert {
                server,
                index,
                kind,
            });
        }
        if l.port != 0 && !ports.insert(l.port) {
            return Err(Rule::PortUsedTwice {
                server,
                index,
                kind,
                port: l.port,
            });
        }
        if let Some(r) = &l.role {
            if server != Proto::Smtp || !matches!(r.as_str(), "port" | "ssl_port") {
                return Err(Rule::ListenerRole {
                    server,
                    index,
                    kind,
                    role: r.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A TOML error without the source line it quotes (which may hold a password):
/// the message and where.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ScenarioError {
    let position = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        TextPosition {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        }
    });
    ScenarioError::Syntax {
        path: path.to_path_buf(),
        position,
        message: e.message().to_string(),
    }
}

/// The actions a fault may take at `step`.
fn actions_allowed_at(step: &str) -> &'static [&'static str] {
    match step {
        "connect" => &[
            "reply", "line", "delay", "throttle", "drop", "hang", "garbage",
        ],
        "tls_handshake" => &["delay", "drop", "hang", "garbage", "abort_tls"],
        "stls" => &[
            "reply",
            "line",
            "delay",
            "throttle",
            "drop",
            "hang",
            "garbage",
            "half_line",
            "abort_tls",
        ],
        _ => &[
            "reply",
            "line",
            "delay",
            "throttle",
            "drop",
            "hang",
            "garbage",
            "half_line",
        ],
    }
}

/// The name of an action as a scenario file writes it.
fn action_name(action: &crate::faults::Action) -> &'static str {
    use crate::faults::Action;
    match action {
        Action::Reply { .. } => "reply",
        Action::Line { .. } => "line",
        Action::Delay { .. } => "delay",
        Action::Throttle { .. } => "throttle",
        Action::Drop => "drop",
        Action::Hang => "hang",
        Action::Garbage => "garbage",
        Action::HalfLine => "half_line",
        Action::AbortTls => "abort_tls",
    }
}

/// Refuses a fault whose action means nothing at its step.
fn check_fault_steps<S: Serialize + std::fmt::Debug>(
    faults: &[crate::faults::Fault<S>],
    server: Proto,
) -> Result<(), Rule> {
    for (i, f) in faults.iter().enumerate() {
        let step = serde_json::to_value(&f.step)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let action = action_name(&f.action);
        let allowed = actions_allowed_at(&step);
        if !allowed.contains(&action) {
            return Err(Rule::FaultAtStep {
                server,
                number: i + 1,
                step,
                action,
                allowed,
            });
        }
    }
    Ok(())
}

/// Checks the `[smtp]` part; fills in its seed from the scenario's.
fn check_smtp(smtp: &mut SmtpConfig, seed: u64) -> Result<(), Rule> {
    check_listeners(&smtp.listeners, Proto::Smtp)?;
    faults::validate(&smtp.faults).map_err(|source| Rule::Fault {
        server: Proto::Smtp,
        source,
    })?;
    if smtp.seed == 0 {
        smtp.seed = seed;
    }
    for (index, r) in smtp.policy.recipients.iter().enumerate() {
        if !(200..=599).contains(&r.code) {
            return Err(Rule::RecipientCode {
                index,
                code: r.code,
            });
        }
    }
    if smtp.idle_timeout_s == 0 {
        return Err(Rule::IdleTimeoutZero {
            server: Proto::Smtp,
        });
    }
    if smtp.policy.max_size == Some(0) {
        return Err(Rule::MaxSizeZero);
    }
    check_extensions(&smtp.extensions)?;
    check_fault_steps(&smtp.faults, Proto::Smtp)
}

/// Refuses extensions the server cannot back (BDAT) or that come from elsewhere.
fn check_extensions(extensions: &[String]) -> Result<(), Rule> {
    for e in extensions {
        let word = e
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(word.as_str(), "CHUNKING" | "BINARYMIME") {
            return Err(Rule::ExtensionNeedsBdat { word });
        }
        if matches!(word.as_str(), "STARTTLS" | "AUTH") {
            return Err(Rule::ExtensionFromListener { word });
        }
    }
    Ok(())
}

/// Checks the `[pop3]` part; fills in its seed from the scenario's.
fn check_pop3(pop: &mut Pop3Config, seed: u64) -> Result<(), Rule> {
    check_listeners(&pop.listeners, Proto::Pop3)?;
    faults::validate(&pop.faults).map_err(|source| Rule::Fault {
        server: Proto::Pop3,
        source,
    })?;
    if pop.seed == 0 {
        pop.seed = seed;
    }
    if pop.idle_timeout_s == 0 {
        return Err(Rule::IdleTimeoutZero {
            server: Proto::Pop3,
        });
    }
    check_fault_steps(&pop.faults, Proto::Pop3)
}

/// Checks one scripted check against the scenario's servers.
fn check_check(s: &Scenario, c: &Check) -> Result<(), CheckProblem> {
    let listeners = match c.server {
        Proto::Smtp => s.smtp.as_ref().map(|x| &x.listeners),
        Proto::Pop3 => s.pop3.as_ref().map(|x| &x.listeners),
    };
    let Some(listeners) = listeners else {
        return Err(CheckProblem::NoServer(c.server));
    };
    if let Some(k) = c.listener {
        if !listeners.iter().any(|l| l.kind == k) {
            return Err(CheckProblem::NoListener(k));
        }
    }
    if c.steps.is_empty() {
        return Err(CheckProblem::NoSteps);
    }
    for (step, st) in c.steps.iter().enumerate() {
        let sends = [
            st.send.is_some(),
            st.send_body.is_some(),
            st.send_raw.is_some(),
        ];
        if sends.iter().filter(|x| **x).count() > 1 {
            return Err(CheckProblem::SeveralSends { step });
        }
        if st.pop_login.is_some() && s.pop3.is_none() {
            return Err(CheckProblem::PopLoginWithoutPop3 { step });
        }
        if let Some(e) = &st.expect {
            let proto_reply = e.starts_with("+OK")
                || e.starts_with("-ERR")
                || e.chars().next().is_some_and(|c| c.is_ascii_digit());
            if !SPECIAL_EXPECTS.contains(&e.as_str()) && !proto_reply {
                return Err(CheckProblem::Expect {
                    step,
                    expect: e.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Checks a parsed scenario against every rule of the format.
fn check_rules(s: &mut Scenario) -> Result<(), Rule> {
    if s.smtp.is_none() && s.pop3.is_none() {
        return Err(Rule::NoServer);
    }
    if let Some(smtp) = s.smtp.as_mut() {
        check_smtp(smtp, s.seed)?;
    }
    if let Some(pop) = s.pop3.as_mut() {
        check_pop3(pop, s.seed)?;
    }
    if let Some(dns) = &s.dns {
        dns.check()?;
    }
    for (index, c) in s.check.iter().enumerate() {
        check_check(s, c).map_err(|problem| Rule::Check {
            index,
            name: c.name.clone(),
            problem,
        })?;
    }
    Ok(())
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks scenario text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        s.path = path.to_path_buf();
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
        }
        check_rules(&mut s).map_err(|rule| ScenarioError::Invalid {
            path: path.to_path_buf(),
            rule,
        })?;
        Ok(s)
    }

    /// Every `*.toml` in `dir`, sorted by name; the first error stops the load.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| ScenarioError::List {
                dir: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Scenario::load(p)).collect()
    }

    /// The folder relative certificate paths are read from.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_scenario_and_its_defaults() {
        let s = parse("[smtp]\n").expect("valid");
        assert_eq!(s.name, "t");
        let smtp = s.smtp.expect("smtp");
        assert_eq!(smtp.listeners.len(), 1);
        assert_eq!(smtp.listeners[0].kind, ListenerKind::Plain);
        assert!(s.dns.is_none());
    }

    #[test]
    fn a_dns_part() {
        let s = parse(
            "[smtp]\n[dns]\nttl = 5\n[[dns.names]]\nname = \"mx.hil.test\"\n\
             addresses = [\"::1\", \"127.0.0.1\"]\n[[dns.names]]\nname = \"bad.hil.test\"\n\
             fault = \"servfail\"\ndelay_ms = 100\n",
        )
        .expect("valid");
        let dns = s.dns.expect("dns");
        assert_eq!(dns.ttl, 5);
        assert_eq!(dns.names.len(), 2);
        assert_eq!(dns.names[1].fault, Some(crate::dns::DnsFault::Servfail));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let e =
            parse("[smtp]\naccounts = [{ user = \"u\", password = \"hunter2\", colour = 1 }]\n")
                .unwrap_err();
        assert!(!e.contains("hunter2"), "the error shows the password: {e}");
        for (text, says) in [
            ("", "needs [smtp], [pop3]"),
            ("[smtp]\nhostnme = \"x\"\n", "hostnme"),
            ("[smtp]\n[[smtp.listeners]]\nkind = \"tls\"\n", "needs a cert"),
            ("[smtp]\n[[smtp.faults]]\nstep = \"rcpt\"\naction = \"reply\"\ncode = 999\ntext = \"x\"\n", "999"),
            ("[smtp]\n[[smtp.faults]]\nstep = \"rcpt\"\nprobability = 2.0\naction = \"drop\"\n", "probability"),
            ("[smtp]\n[[smtp.faults]]\nstep = \"nowhere\"\naction = \"drop\"\n", "nowhere"),
            ("[smtp]\n[[check]]\nsteps = [{ expect = \"maybe\" }]\n", "not a reply prefix"),
            ("[smtp]\n[[check]]\nserver = \"pop3\"\nsteps = [{ expect = \"+OK\" }]\n", "no Pop3 server"),
            ("[smtp]\n[[smtp.faults]]\nstep = \"connect\"\naction = \"half_line\"\n", "cannot happen there"),
            ("[smtp]\nextensions = [\"CHUNKING\"]\n", "BDAT"),
            ("[smtp]\npolicy = { max_size = 0 }\n", "max_size"),
            ("[pop3]\nidle_timeout_s = 0\n", "idle_timeout_s"),
            ("[smtp]\naccounts = [{ user = \"u\", password = 12345 }]\n", "line 2"),
            ("[smtp]\n[[dns.names]]\nname = \"a..b\"\n", "[dns] names[0]"),
            ("[smtp]\n[[dns.names]]\nname = \"a\"\n[[dns.names]]\nname = \"A.\"\n", "twice"),
            ("[smtp]\n[[dns.names]]\nname = \"a\"\nfault = \"lost\"\n", "lost"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("t.toml"), "{text}: {e}");
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
