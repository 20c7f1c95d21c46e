//! The console line protocol of SPEC §6, without any I/O: bytes go in, answer lines
//! come out. The transports (`transport.rs`) only move bytes.
//!
//! Every command answers zero or more data lines and then exactly one status line.
//! Bad input of any kind (binary bytes, over-long lines, unknown commands, bad
//! quoting) is answered with `ERR config …` and the console keeps serving.

use crate::device::{CertError, Device, JobEvent, JobState, JobStatus};
use crate::dialect::{lines, Dialect};
use crate::jobs::Trigger;
pub use crate::line::{line_text, Line, LineBuffer, MAX_LINE};
use crate::settings::{self, AddressError, Key};
pub use crate::text::{quote, split_words};

/// Longest PEM block `cert import` accepts, in bytes.
pub const MAX_PEM: usize = 65536;

/// The answer to one line: data lines, then the status line.
pub type Answer = Vec<String>;

fn err(class: &str, detail: impl std::fmt::Display) -> Answer {
    vec![format!("ERR {class} {detail}")]
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
    Imported(Result<(), PemError>),
    /// The line cannot be part of a PEM block: the import is abandoned, and why.
    Abandoned(PemError),
}

/// Why a certificate import failed; `command` is the command that started it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("{command}: the line after `{command}` must be -----BEGIN CERTIFICATE-----; import abandoned")]
    NoBegin { command: &'static str },
    #[error("{command}: a PEM line must be base64 or -----END CERTIFICATE-----; import abandoned")]
    NotPem { command: &'static str },
    #[error("{command}: PEM longer than {max} bytes", max = MAX_PEM)]
    TooLong { command: &'static str },
    #[error("{command}: {source}")]
    Import {
        command: &'static str,
        source: CertError,
    },
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
        let command = self.command;
        if !expected {
            return PemStep::Abandoned(if starting {
                PemError::NoBegin { command }
            } else {
                PemError::NotPem { command }
            });
        }
        self.pem.push_str(text);
        self.pem.push('\n');
        if self.pem.len() > MAX_PEM {
            return PemStep::Abandoned(PemError::TooLong { command });
        }
        if line == "-----END CERTIFICATE-----" {
            return PemStep::Imported(
                dev.import_cert(&self.pem)
                    .map_err(|source| PemError::Import { command, source }),
            );
        }
        PemStep::More
    }
}

/// Why a scan command's arguments are refused; `command` names the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("{command}: recipient {recipient:?}: must be {why}")]
    Recipient {
        command: String,
        recipient: String,
        why: AddressError,
    },
    #[error("{command}: SIZE_KB {size:?} must be an integer from 0 to {max}", max = MAX_SCAN_KB)]
    Size { command: String, size: String },
}

/// Reads the arguments of a scan command (`cmd` names it in messages): the
/// recipients joined by commas, the size in KB and an optional device user.
pub fn scan_trigger(
    cmd: &str,
    to: &str,
    size: &str,
    user: Option<&str>,
) -> Result<Trigger, ScanError> {
    let recipients: Vec<String> = to.split(',').map(str::to_string).collect();
    for r in &recipients {
        if let Err(why) = settings::check_email(r, 320) {
            return Err(ScanError::Recipient {
                command: cmd.into(),
                recipient: r.clone(),
                why,
            });
        }
    }
    let size_kb = match size.parse::<u32>() {
        Ok(n) if n <= MAX_SCAN_KB => n,
        _ => {
            return Err(ScanError::Size {
                command: cmd.into(),
                size: size.into(),
            })
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
    if let Some(e) = &job.error {
        first.push_str(&format!(" {} {}", e.class, e.detail));
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
        Some(f) => format!("EVENT JOB {} failed {} {}", e.id, f.class, f.detail),
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
            ["get", key] => match Key::parse(key) {
                Ok(k) => ok(vec![format!(
                    "{}={}",
                    k.as_str(),
                    quote(&dev.settings().shown(k))
                )]),
                Err(e) => err("config", e),
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
                .map(|(k, v)| format!("{}={}", k.as_str(), quote(&v)))
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
            Err(e) => err(e.class, e.detail),
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

/// The reference dialect of SPEC §6 as a [`Dialect`]: no greeting, no prompt, `EVENT`
/// lines.
#[derive(Debug, Default)]
pub struct Reference {
    session: Session,
}

impl Dialect for Reference {
    fn greeting(&mut self) -> String {
        String::new()
    }

    fn answer(&mut self, line: Line, dev: &Device) -> String {
        lines(&self.session.handle(line, dev))
    }

    fn event(&mut self, event: &JobEvent) -> String {
        lines(&[event_line(event)])
    }

    fn take_started(&mut self) -> Vec<u64> {
        self.session.take_started()
    }
}
