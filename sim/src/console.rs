//! The console line protocol of SPEC §6, without any I/O: bytes go in, answer lines
//! come out. The transports (`transport.rs`) only move bytes.
//!
//! Every command answers zero or more data lines and then exactly one status line.
//! Bad input of any kind (binary bytes, over-long lines, unknown commands, bad
//! quoting) is answered with `ERR config …` and the console keeps serving.

use crate::device::{Device, JobEvent, JobState, JobStatus, Trigger};
use crate::settings;

/// Longest line the console accepts, in bytes (the end of line not counted).
pub const MAX_LINE: usize = 4096;
/// Longest PEM block `cert import` accepts, in bytes.
pub const MAX_PEM: usize = 65536;

/// One line cut from the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// A line longer than [`MAX_LINE`]: its length, the bytes themselves dropped.
    TooLong(usize),
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Cuts a byte stream into lines ending in LF (a CR before it is dropped), capping
/// their length so that a peer sending no newline cannot grow memory without bound.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    dropped: usize,
}

impl LineBuffer {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let had_cr = self.buf.last() == Some(&b'\r');
                if had_cr {
                    self.buf.pop();
                }
                let len = self.dropped + self.buf.len();
                if len > MAX_LINE {
                    out.push(Line::TooLong(len));
                } else {
                    match String::from_utf8(std::mem::take(&mut self.buf)) {
                        Ok(s) => out.push(Line::Text(s)),
                        Err(_) => out.push(Line::NotUtf8),
                    }
                }
                self.buf.clear();
                self.dropped = 0;
            } else if self.buf.len() > MAX_LINE {
                // Keep MAX_LINE bytes and one for a CR; count the rest, keep none.
                self.dropped += self.buf.len();
                self.buf.clear();
                self.buf.push(b);
            } else {
                self.buf.push(b);
            }
        }
        out
    }
}

/// Quotes a value for an answer line: bare when it needs no quoting, else in double
/// quotes with `"` and `\` escaped (SPEC §6).
pub fn quote(value: &str) -> String {
    let needs = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '\\' || c == '\t');
    if !needs {
        return value.to_string();
    }
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Splits a command line into words at spaces. Inside a word, double-quoted parts
/// may hold spaces, with `\"` and `\\` escaped (`set k "a b"`, `apply k="a b"`, `""`).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '"' => {
                    chars.next();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => match chars.next() {
                                Some(e @ ('"' | '\\')) => word.push(e),
                                Some(e) => {
                                    return Err(format!("unknown escape \\{e} inside quotes"))
                                }
                                None => return Err("a backslash ends the line".into()),
                            },
                            c => word.push(c),
                        }
                    }
                    if !closed {
                        return Err("unterminated double quote".into());
                    }
                }
                c => {
                    word.push(c);
                    chars.next();
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// The answer to one line: data lines, then the status line.
pub type Answer = Vec<String>;

fn err(class: &str, detail: impl AsRef<str>) -> Answer {
    vec![format!("ERR {class} {}", detail.as_ref())]
}

fn ok(mut data: Vec<String>) -> Answer {
    data.push("OK".into());
    data
}

/// One console session's state: whether it is collecting a PEM block.
#[derive(Debug, Default)]
pub struct Session {
    pem: Option<PemCollector>,
    started: Vec<u64>,
}

const HELP: &[&str] = &[
    "get KEY",
    "set KEY VALUE",
    "apply KEY=VALUE [KEY=VALUE ...]",
    "show",
    "reset",
    "clock set RFC3339 | clock get",
    "user add NAME PASSWORD ADDRESS",
    "cert import (then PEM lines)",
    "notify add ADDRESS",
    "scan send TO[,TO...] SIZE_KB [USER]",
    "alert raise KIND",
    "counter send-now",
    "job N",
];

/// The text of a line, or why the console ignores it (not UTF-8, too long, a
/// control character): the detail of the dialect's error line.
pub fn line_text(line: Line) -> Result<String, String> {
    let text = match line {
        Line::Text(t) => t,
        Line::TooLong(n) => {
            return Err(format!(
                "line of {n} bytes is longer than {MAX_LINE} bytes; ignored"
            ))
        }
        Line::NotUtf8 => return Err("line is not UTF-8 text; ignored".into()),
    };
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "line contains the control character {c:?}; ignored"
        ));
    }
    Ok(text)
}

/// Collects the PEM lines after a certificate import command.
#[derive(Debug)]
pub struct PemCollector {
    /// The command that started it, for messages (`cert import`).
    command: &'static str,
    pem: String,
}

/// What one line did to a [`PemCollector`].
#[derive(Debug, PartialEq, Eq)]
pub enum PemStep {
    /// Keep collecting.
    More,
    /// The block is complete: the certificate was imported, or why not.
    Imported(Result<(), String>),
    /// The line cannot be part of a PEM block: the import is abandoned, and why.
    Abandoned(String),
}

impl PemCollector {
    pub fn new(command: &'static str) -> PemCollector {
        PemCollector {
            command,
            pem: String::new(),
        }
    }

    /// Takes one line (already checked by [`line_text`]); imports the certificate
    /// into `dev` at its END line.
    pub fn feed(&mut self, text: &str, dev: &Device) -> PemStep {
        let starting = self.pem.is_empty();
        let line = text.trim();
        let expected = if starting {
            line == "-----BEGIN CERTIFICATE-----"
        } else {
            line == "-----END CERTIFICATE-----"
                || line.is_empty()
                || line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        };
        let cmd = self.command;
        if !expected {
            let what = if starting {
                format!("the line after `{cmd}` must be -----BEGIN CERTIFICATE-----")
            } else {
                "a PEM line must be base64 or -----END CERTIFICATE-----".to_string()
            };
            return PemStep::Abandoned(format!("{cmd}: {what}; import abandoned"));
        }
        self.pem.push_str(text);
        self.pem.push('\n');
        if self.pem.len() > MAX_PEM {
            return PemStep::Abandoned(format!("{cmd}: PEM longer than {MAX_PEM} bytes"));
        }
        if line == "-----END CERTIFICATE-----" {
            return PemStep::Imported(
                dev.import_cert(&self.pem)
                    .map_err(|e| format!("{cmd}: {e}")),
            );
        }
        PemStep::More
    }
}

/// Reads the arguments of a scan command (`cmd` names it in messages): the
/// recipients joined by commas, the size in KB and an optional device user.
pub fn scan_trigger(
    cmd: &str,
    to: &str,
    size: &str,
    user: Option<&str>,
) -> Result<Trigger, String> {
    let recipients: Vec<String> = to.split(',').map(str::to_string).collect();
    for r in &recipients {
        if let Err(why) = settings::check_email(r, 320) {
            return Err(format!("{cmd}: recipient {r:?}: must be {why}"));
        }
    }
    let size_kb = match size.parse::<u32>() {
        Ok(n) if n <= MAX_SCAN_KB => n,
        _ => {
            return Err(format!(
                "{cmd}: SIZE_KB {size:?} must be an integer from 0 to {MAX_SCAN_KB}"
            ))
        }
    };
    Ok(Trigger::Scan {
        to: recipients,
        size_kb,
        user: user.map(str::to_string),
    })
}

/// The reference dialect's `job n` data lines.
pub fn job_lines(job: &JobStatus) -> Vec<String> {
    let state = match job.state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
    };
    let mut first = format!("JOB {} {state}", job.id);
    if let Some((class, detail)) = &job.error {
        first.push_str(&format!(" {class} {detail}"));
    }
    let mut lines = vec![first];
    for rc in &job.recipients {
        if rc.accepted {
            lines.push(format!("RCPT {} accepted", rc.address));
        } else {
            lines.push(format!("RCPT {} rejected {}", rc.address, rc.reply));
        }
    }
    lines
}

/// The reference dialect's line for a job's end (`EVENT JOB n done|failed …`).
pub fn event_line(e: &JobEvent) -> String {
    match &e.error {
        None => format!("EVENT JOB {} done", e.id),
        Some((class, detail)) => format!("EVENT JOB {} failed {class} {detail}", e.id),
    }
}

impl Session {
    /// Handles one line; answers nothing while a PEM block is being collected.
    pub fn handle(&mut self, line: Line, dev: &Device) -> Answer {
        let text = match line_text(line) {
            Ok(t) => t,
            Err(e) => {
                self.pem = None;
                return err("config", e);
            }
        };
        if let Some(pem) = self.pem.as_mut() {
            return match pem.feed(&text, dev) {
                PemStep::More => Vec::new(),
                PemStep::Imported(r) => {
                    self.pem = None;
                    match r {
                        Ok(()) => ok(vec![]),
                        Err(e) => err("config", e),
                    }
                }
                PemStep::Abandoned(e) => {
                    self.pem = None;
                    err("config", e)
                }
            };
        }
        let words = match split_words(&text) {
            Ok(w) => w,
            Err(e) => return err("config", format!("cannot read the line: {e}")),
        };
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            [] => Vec::new(),
            ["help"] => ok(HELP.iter().map(|s| s.to_string()).collect()),
            ["get", key] => match dev.settings().get(key) {
                Some(v) => ok(vec![format!("{key}={}", quote(v))]),
                None => err(
                    "config",
                    format!("{key}: unknown key (see `show` for the keys)"),
                ),
            },
            ["get", ..] => err("config", "usage: get KEY"),
            ["set", key, value] => match dev.apply(&[(key, value)]) {
                Ok(()) => ok(vec![]),
                Err(e) => err("config", e),
            },
            ["set", ..] => err("config", "usage: set KEY VALUE (quote a value with spaces)"),
            ["apply", pairs @ ..] if !pairs.is_empty() => {
                let mut parsed = Vec::new();
                for p in pairs {
                    match p.split_once('=') {
                        Some((k, v)) => parsed.push((k, v)),
                        None => {
                            return err(
                                "config",
                                format!("apply: {p:?} is not KEY=VALUE; nothing changed"),
                            )
                        }
                    }
                }
                match dev.apply(&parsed) {
                    Ok(()) => ok(vec![]),
                    Err(e) => err("config", e),
                }
            }
            ["apply"] => err("config", "usage: apply KEY=VALUE [KEY=VALUE ...]"),
            ["show"] => ok(dev
                .settings()
                .show()
                .into_iter()
                .map(|(k, v)| format!("{k}={}", quote(&v)))
                .collect()),
            ["reset"] => {
                dev.reset();
                ok(vec![])
            }
            ["clock", "get"] => ok(vec![format!("clock={}", dev.clock_rfc3339())]),
            ["clock", "set", t] => match dev.set_clock(t) {
                Ok(()) => ok(vec![]),
                Err(e) => err("config", format!("clock: {e}")),
            },
            ["clock", ..] => err("config", "usage: clock set RFC3339 | clock get"),
            ["user", "add", name, password, address] => {
                match dev.add_user(name, password, address) {
                    Ok(()) => ok(vec![]),
                    Err(e) => err("config", format!("user add: {e}")),
                }
            }
            ["user", ..] => err("config", "usage: user add NAME PASSWORD ADDRESS"),
            ["cert", "import"] => {
                self.pem = Some(PemCollector::new("cert import"));
                Vec::new()
            }
            ["cert", ..] => err("config", "usage: cert import, then the PEM lines"),
            ["notify", "add", address] => match dev.add_notify(address) {
                Ok(()) => ok(vec![]),
                Err(e) => err("config", format!("notify add: {e}")),
            },
            ["notify", ..] => err("config", "usage: notify add ADDRESS"),
            ["scan", "send", to, size, rest @ ..] if rest.len() <= 1 => {
                match scan_trigger("scan send", to, size, rest.first().copied()) {
                    Ok(t) => self.trigger(dev, t),
                    Err(e) => err("config", e),
                }
            }
            ["scan", ..] => err("config", "usage: scan send TO[,TO...] SIZE_KB [USER]"),
            ["alert", "raise", kind] => match ALERT_KINDS.iter().find(|k| *k == kind) {
                Some(k) => self.trigger(dev, Trigger::Alert(k)),
                None => err(
                    "config",
                    format!(
                        "alert raise: unknown kind {kind:?}; one of {}",
                        ALERT_KINDS.join(", ")
                    ),
                ),
            },
            ["alert", ..] => err("config", "usage: alert raise KIND"),
            ["counter", "send-now"] => self.trigger(dev, Trigger::Counter),
            ["counter", ..] => err("config", "usage: counter send-now"),
            ["job", n] => match n.parse::<u64>().ok().and_then(|n| dev.job_status(n)) {
                Some(job) => ok(job_lines(&job)),
                None => err("config", format!("job: no job {n:?}")),
            },
            ["job", ..] => err("config", "usage: job N"),
            [cmd, ..] => err(
                "config",
                format!(
                    "unknown command {:?}; `help` lists the commands",
                    truncate(cmd, 40)
                ),
            ),
        }
    }

    /// Jobs created by the last lines handled; the transport starts them with
    /// [`Device::run_submitted`] after writing the answer.
    pub fn take_started(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.started)
    }

    fn trigger(&mut self, dev: &Device, t: Trigger) -> Answer {
        match dev.submit(t) {
            Ok(id) => {
                self.started.push(id);
                ok(vec![format!("JOB {id}")])
            }
            Err((class, detail)) => err(class, detail),
        }
    }
}

/// Largest scan `scan send` accepts, in KB.
pub const MAX_SCAN_KB: u32 = 102_400;

/// The alert kinds `alert raise` knows.
pub const ALERT_KINDS: &[&str] = &[
    "paper_empty",
    "paper_jam",
    "toner_out",
    "maintenance",
    "output_tray_full",
    "service_call",
    "job_error",
];

fn truncate(s: &str, n: usize) -> String {
    let mut t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        t.push('…');
    }
    t
}

/// A refused value as a console shows it: quoted, or `*** (N characters)` for a secret.
pub(crate) fn shown_value(r: &settings::Refusal) -> String {
    if settings::lookup(&r.key).is_some_and(|d| d.secret) {
        format!("*** ({} characters)", r.value.chars().count())
    } else {
        quote(&r.value)
    }
}

/// Formats the refusals of a `set` or `apply` for an `ERR config` line.
pub fn describe_refusals(refusals: &[settings::Refusal]) -> String {
    let parts: Vec<String> = refusals
        .iter()
        .map(|r| format!("{}: {} refused: {}", r.key, shown_value(r), r.rule))
        .collect();
    format!("{}; nothing changed", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_capped() {
        let mut lb = LineBuffer::default();
        assert_eq!(lb.push(b"get a\r\nget"), vec![Line::Text("get a".into())]);
        assert_eq!(lb.push(b" b\n"), vec![Line::Text("get b".into())]);
        let long = vec![b'x'; MAX_LINE * 3];
        assert!(lb.push(&long).is_empty());
        assert_eq!(lb.push(b"\n"), vec![Line::TooLong(MAX_LINE * 3)]);
        assert_eq!(lb.push(b"\xff\xfe\n"), vec![Line::NotUtf8]);
        let exact = vec![b'y'; MAX_LINE];
        let mut l = exact.clone();
        l.extend_from_slice(b"\r\n");
        assert_eq!(
            lb.push(&l),
            vec![Line::Text(String::from_utf8(exact).unwrap())]
        );
    }

    #[test]
    fn words_and_quotes_round_trip() {
        for v in ["", "a b", "say \"hi\"", "back\\slash", "plain"] {
            let line = format!("set k {}", quote(v));
            let w = split_words(&line).unwrap();
            assert_eq!(w, vec!["set".to_string(), "k".into(), v.into()], "{line}");
        }
        assert!(split_words("set k \"open").is_err());
        assert_eq!(
            split_words("apply a=\"x y\" b=\"\"").unwrap(),
            vec!["apply", "a=x y", "b="]
        );
    }
}
