//! Scenario files (`scenarios/*.toml`, documented in `scenarios/README.md`): what the
//! fake SMTP and POP3 servers do, and the scripted checks that prove it. Loading
//! checks everything and names the file and the field on any error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::faults;
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
    #[serde(default)]
    pub check: Vec<Check>,
    /// Where it was read from (relative cert paths resolve against its folder).
    #[serde(skip)]
    pub path: PathBuf,
}

fn check_listeners(listeners: &[ListenerSpec], what: &str, smtp: bool) -> Result<(), String> {
    if listeners.is_empty() {
        return Err(format!("[{what}] has no listeners"));
    }
    let mut ports = BTreeSet::new();
    for (i, l) in listeners.iter().enumerate() {
        let at = format!("[{what}] listeners[{i}] ({})", l.kind.name());
        if l.kind != ListenerKind::Plain && l.cert.is_none() {
            return Err(format!("{at}: a {} listener needs a cert", l.kind.name()));
        }
        if l.port != 0 && !ports.insert(l.port) {
            return Err(format!("{at}: port {} is used twice", l.port));
        }
        if let Some(r) = &l.role {
            if !smtp || !matches!(r.as_str(), "port" | "ssl_port") {
                return Err(format!(
                    "{at}: role {r:?} must be \"port\" or \"ssl_port\" (SMTP only)"
                ));
            }
        }
    }
    Ok(())
}

/// A TOML error without the source line it quotes (which may hold a password):
/// the message and where.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {col}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Refuses a fault whose action means nothing at its step.
fn check_fault_steps<S: Serialize + std::fmt::Debug>(
    faults: &[crate::faults::Fault<S>],
    what: &str,
) -> Result<(), String> {
    use crate::faults::Action;
    for (i, f) in faults.iter().enumerate() {
        let step = serde_json::to_value(&f.step)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let action = match &f.action {
            Action::Reply { .. } => "reply",
            Action::Line { .. } => "line",
            Action::Delay { .. } => "delay",
            Action::Throttle { .. } => "throttle",
            Action::Drop => "drop",
            Action::Hang => "hang",
            Action::Garbage => "garbage",
            Action::HalfLine => "half_line",
            Action::AbortTls => "abort_tls",
        };
        let allowed: &[&str] = match step.as_str() {
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
        };
        if !allowed.contains(&action) {
            return Err(format!(
                "[{what}] fault {} at step {step}: action {action} cannot happen there; allowed: {}",
                i + 1,
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks scenario text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, String> {
        let file = path.display();
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| format!("{file}: {}", toml_error(text, &e)))?;
        s.path = path.to_path_buf();
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
        }
        if s.smtp.is_none() && s.pop3.is_none() {
            return Err(format!("{file}: a scenario needs [smtp], [pop3] or both"));
        }
        if let Some(smtp) = s.smtp.as_mut() {
            check_listeners(&smtp.listeners, "smtp", true).map_err(|e| format!("{file}: {e}"))?;
            faults::validate(&smtp.faults).map_err(|e| format!("{file}: [smtp] {e}"))?;
            if smtp.seed == 0 {
                smtp.seed = s.seed;
            }
            for (i, r) in smtp.policy.recipients.iter().enumerate() {
                if !(200..=599).contains(&r.code) {
                    return Err(format!(
                        "{file}: [smtp.policy] recipients[{i}]: code {} is not between 200 and 599",
                        r.code
                    ));
                }
            }
            if smtp.idle_timeout_s == 0 {
                return Err(format!("{file}: [smtp] idle_timeout_s must be at least 1"));
            }
            if smtp.policy.max_size == Some(0) {
                return Err(format!(
                    "{file}: [smtp.policy] max_size must be at least 1 (leave it out for no limit)"
                ));
            }
            for e in &smtp.extensions {
                let word = e
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(word.as_str(), "CHUNKING" | "BINARYMIME") {
                    return Err(format!(
                        "{file}: [smtp] extensions: {word} needs BDAT, which this server does not implement"
                    ));
                }
                if matches!(word.as_str(), "STARTTLS" | "AUTH") {
                    return Err(format!(
                        "{file}: [smtp] extensions: {word} comes from the listener kind and `auth`, not from extensions"
                    ));
                }
            }
            check_fault_steps(&smtp.faults, "smtp").map_err(|e| format!("{file}: {e}"))?;
        }
        if let Some(pop) = s.pop3.as_mut() {
            check_listeners(&pop.listeners, "pop3", false).map_err(|e| format!("{file}: {e}"))?;
            faults::validate(&pop.faults).map_err(|e| format!("{file}: [pop3] {e}"))?;
            if pop.seed == 0 {
                pop.seed = s.seed;
            }
            if pop.idle_timeout_s == 0 {
                return Err(format!("{file}: [pop3] idle_timeout_s must be at least 1"));
            }
            check_fault_steps(&pop.faults, "pop3").map_err(|e| format!("{file}: {e}"))?;
        }
        for (i, c) in s.check.iter().enumerate() {
            let at = format!("{file}: check[{i}] {:?}", c.name);
            let listeners = match c.server {
                Proto::Smtp => s.smtp.as_ref().map(|x| &x.listeners),
                Proto::Pop3 => s.pop3.as_ref().map(|x| &x.listeners),
            };
            let Some(listeners) = listeners else {
                return Err(format!("{at}: the scenario has no {:?} server", c.server));
            };
            if let Some(k) = c.listener {
                if !listeners.iter().any(|l| l.kind == k) {
                    return Err(format!("{at}: no {} listener", k.name()));
                }
            }
            if c.steps.is_empty() {
                return Err(format!("{at}: no steps"));
            }
            for (j, st) in c.steps.iter().enumerate() {
                let sends = [
                    st.send.is_some(),
                    st.send_body.is_some(),
                    st.send_raw.is_some(),
                ];
                if sends.iter().filter(|x| **x).count() > 1 {
                    return Err(format!("{at}: step {j}: one of send, send_body, send_raw"));
                }
                if st.pop_login.is_some() && s.pop3.is_none() {
                    return Err(format!("{at}: step {j}: pop_login needs a [pop3] server"));
                }
                if let Some(e) = &st.expect {
                    let special = ["closed", "silence", "garbage", "partial", "tls_fails"];
                    let proto_reply = e.starts_with("+OK")
                        || e.starts_with("-ERR")
                        || e.chars().next().is_some_and(|c| c.is_ascii_digit());
                    if !special.contains(&e.as_str()) && !proto_reply {
                        return Err(format!(
                            "{at}: step {j}: expect {e:?} is not a reply prefix (250, +OK, -ERR) nor one of {}",
                            special.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(s)
    }

    /// Every `*.toml` in `dir`, sorted by name; the first error stops the load.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: cannot list: {e}", dir.display()))?
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
        Scenario::parse(Path::new("t.toml"), text)
    }

    #[test]
    fn a_minimal_scenario_and_its_defaults() {
        let s = parse("[smtp]\n").expect("valid");
        assert_eq!(s.name, "t");
        let smtp = s.smtp.expect("smtp");
        assert_eq!(smtp.listeners.len(), 1);
        assert_eq!(smtp.listeners[0].kind, ListenerKind::Plain);
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
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("t.toml"), "{text}: {e}");
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
