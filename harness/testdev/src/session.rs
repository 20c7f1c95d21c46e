//! The console session: the state machine between the client's keystrokes and the
//! engine's reference protocol, without any I/O.
//!
//! The driver (`device.rs`) feeds it the client's bytes ([`Session::input`]), asks
//! it what to do next ([`Session::step`]: nothing, send these lines to the engine,
//! crash, hang), hands it the engine's answers ([`Session::reply`]) and job ends
//! ([`Session::event`]), and writes out whatever it printed
//! ([`Session::take_output`]). Each console command needs at most one engine
//! request; while one is outstanding the session reads no more input, so typed-ahead
//! lines wait (and are echoed) until the prompt comes back.

use std::collections::VecDeque;

use mfp_sim::console::MAX_LINE;
use mfp_sim::settings;

use crate::banner;
use crate::clock;
use crate::command::{self, Command, Scan};
use crate::editor::{Echo, Editor, Entered, Key, KeyDecoder};
use crate::jobs::JobBook;
use crate::pager::{Pager, PagerKey, MORE};
use crate::pem::{PemCollector, PemStep};
use crate::quoting::{self, Form, Quoting};
use crate::reference::{self, quote, JobEnd, Reply, Status};
use crate::render::{Bad, Render, ERASE_LINE, OK};
use crate::traits::Traits;

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait for input or an engine line.
    Idle,
    /// Send these lines to the engine and hand its answer to [`Session::reply`].
    Engine(Vec<String>),
    /// The device crashed (the panic banner is in the output): kill the engine,
    /// start a fresh one, then [`Session::restart`].
    Crash,
    /// The device hangs: kill the engine and wait for a power cycle, then
    /// [`Session::restart`].
    Hang,
    /// Print this flood on the console (the answer is out already), then go on.
    Flood(crate::traits::Flood),
}

/// What the engine can do beyond SPEC §6's base commands (read from its `help`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `scan send … subject=TEXT name=FILE`.
    pub scan_text: bool,
}

/// The confirmation and paste prompts of `--confirm`.
pub const CONFIRM_RESET: &str = "Proceed with factory reset? [confirm]";
pub const PASTE_CERT: &str = "Paste the certificate, end with a blank line:";
pub const CONFIRM_CERT: &str = "Import this certificate? [yes/no]: ";
/// The line `end`/`exit` prints when it drops staged changes.
pub const DISCARDED: &str = "Uncommitted changes discarded.";

/// Where the session is.
#[derive(Debug)]
enum Mode {
    Username,
    Password {
        user: String,
    },
    /// At the exec or configuration prompt.
    Command,
    ConfirmReset,
    /// Collecting the PEM lines of `certificate import`.
    Pem(PemCollector),
    ConfirmCert {
        pem: Vec<String>,
    },
    /// A listing stopped at ` --More-- `; `tail` is its status, printed at its end.
    Paging {
        pager: Pager,
        tail: Tail,
    },
    /// Waiting for the engine's answer.
    Waiting(Pending),
    /// Crashed or hung: waiting for the driver's restart.
    Down,
}

/// How an answer ends.
#[derive(Debug)]
enum Tail {
    /// `[OK]`, or nothing with `--prompt-only`.
    Ok,
    /// A status line of its own (`Job N queued`).
    Line(String),
    /// Error lines (red with `--ansi`).
    Error(Vec<String>),
}

/// What an engine request was for.
#[derive(Debug)]
enum Pending {
    ShowAll,
    ShowOne(&'static str),
    Change {
        commit: bool,
    },
    /// A command whose answer is only its status.
    Simple,
    ClockShow,
    Trigger,
    Job(u64),
}

/// Engine error details start with the reference command's name; the console's
/// commands have other names, so it is dropped.
const ENGINE_PREFIXES: &[&str] = &[
    "scan send: ",
    "user add: ",
    "notify add: ",
    "clock: ",
    "cert import: ",
    "alert raise: ",
    "job: ",
];

fn strip_prefix(detail: &str) -> &str {
    ENGINE_PREFIXES
        .iter()
        .find_map(|p| detail.strip_prefix(p))
        .unwrap_or(detail)
}

/// One console session.
#[derive(Debug)]
pub struct Session {
    t: Traits,
    render: Render,
    quoting: Quoting,
    caps: Capabilities,
    keys: KeyDecoder,
    editor: Editor,
    mode: Mode,
    logged_in: bool,
    in_config: bool,
    /// Staged `set`s of configuration mode: parameter and value as typed.
    candidate: Vec<(String, String)>,
    jobs: JobBook,
    crashed: bool,
    hung: bool,
    flooded: bool,
    inbox: VecDeque<u8>,
    out: Vec<u8>,
    at_line_start: bool,
    /// The prompt on screen waiting for input (redrawn after an event line).
    shown_prompt: Option<String>,
    next: Option<Step>,
}

impl Session {
    pub fn new(t: Traits, caps: Capabilities) -> Session {
        Session {
            render: Render::new(&t),
            quoting: Quoting::new(t.quoting),
            t,
            caps,
            keys: KeyDecoder::default(),
            editor: Editor::default(),
            mode: Mode::Down,
            logged_in: false,
            in_config: false,
            candidate: Vec::new(),
            jobs: JobBook::default(),
            crashed: false,
            hung: false,
            flooded: false,
            inbox: VecDeque::new(),
            out: Vec::new(),
            at_line_start: true,
            shown_prompt: None,
            next: None,
        }
    }

    /// The engine's capabilities (again after a reboot).
    pub fn set_capabilities(&mut self, caps: Capabilities) {
        self.caps = caps;
    }

    // ---- output -------------------------------------------------------------

    fn write(&mut self, s: &str) {
        if !s.is_empty() {
            self.out.extend_from_slice(s.as_bytes());
            self.at_line_start = s.ends_with('\n');
        }
    }

    fn line(&mut self, s: &str) {
        self.write(s);
        self.write("\r\n");
    }

    /// What the session printed since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn show_prompt(&mut self, p: &str) {
        self.write(p);
        self.shown_prompt = Some(p.to_string());
    }

    /// Back at the exec or configuration prompt.
    fn finish(&mut self) {
        self.mode = Mode::Command;
        let p = if self.t.prompts() {
            self.render.prompt(self.in_config)
        } else {
            String::new()
        };
        self.show_prompt(&p);
    }

    fn tail(&mut self, tail: Tail) {
        match tail {
            Tail::Ok => {
                if !self.t.prompt_only {
                    self.line(OK);
                }
            }
            Tail::Line(s) => self.line(&s),
            Tail::Error(lines) => {
                for l in lines {
                    let l = self.render.red(&l);
                    self.line(&l);
                }
            }
        }
    }

    /// Prints an answer: its data lines (paged), its status, the prompt.
    fn answer(&mut self, data: Vec<String>, tail: Tail) {
        let (now, pager) = match self.t.paging {
            Some(n) => Pager::start(n, data),
            None => (data, None),
        };
        for l in &now {
            self.line(l);
        }
        match pager {
            Some(pager) => {
                self.show_prompt(MORE);
                self.mode = Mode::Paging { pager, tail };
            }
            None => {
                self.tail(tail);
                self.finish();
            }
        }
    }

    fn fail(&mut self, class: &str, detail: &str) {
        let e = self.render.error(class, detail);
        self.answer(Vec::new(), Tail::Error(vec![e]));
    }

    fn ok(&mut self) {
        self.answer(Vec::new(), Tail::Ok);
    }

    fn engine(&mut self, lines: Vec<String>, pending: Pending) {
        if let Some(l) = lines.iter().find(|l| l.len() > MAX_LINE) {
            let n = l.len();
            return self.fail(
                "config",
                &format!("the command is too long ({n} bytes once translated; at most {MAX_LINE})"),
            );
        }
        self.mode = Mode::Waiting(pending);
        self.next = Some(Step::Engine(lines));
    }

    // ---- life ---------------------------------------------------------------

    /// Prints the boot greeting and the login or the prompt.
    pub fn boot(&mut self) {
        for l in banner::BOOT {
            self.line(l);
        }
        self.in_config = false;
        if self.t.login.is_some() {
            self.logged_in = false;
            self.ask_login();
        } else {
            self.logged_in = true;
            self.finish();
        }
    }

    fn ask_login(&mut self) {
        for l in banner::LOGIN_BANNER {
            self.line(l);
        }
        self.show_prompt(banner::USER_PROMPT);
        self.mode = Mode::Username;
    }

    /// After a crash, a hang or a power cycle, once a fresh engine runs: everything
    /// but the job counter is forgotten, the device boots again.
    pub fn restart(&mut self) {
        self.inbox.clear();
        self.editor.clear();
        self.keys = KeyDecoder::default();
        self.candidate.clear();
        self.jobs.forget();
        self.next = None;
        self.shown_prompt = None;
        if !self.at_line_start {
            self.write("\r\n");
        }
        self.boot();
    }

    /// The client's bytes (dropped while the device is down).
    pub fn input(&mut self, bytes: &[u8]) {
        if !matches!(self.mode, Mode::Down) {
            self.inbox.extend(bytes);
        }
    }

    /// Runs the typed input until it needs the engine, or there is no more.
    pub fn step(&mut self) -> Step {
        loop {
            if let Some(s) = self.next.take() {
                return s;
            }
            if matches!(self.mode, Mode::Waiting(_) | Mode::Down) {
                return Step::Idle;
            }
            let Some(b) = self.inbox.pop_front() else {
                return Step::Idle;
            };
            if let Some(key) = self.keys.key(b) {
                self.key(key);
            }
        }
    }

    fn echo(&self) -> Echo {
        match (&self.mode, self.t.echo) {
            (_, false) => Echo::Off,
            (Mode::Password { .. }, true) => Echo::Hidden,
            (_, true) => Echo::Shown,
        }
    }

    fn key(&mut self, key: Key) {
        if matches!(self.mode, Mode::Paging { .. }) {
            return self.pager_key(key);
        }
        let echo = self.echo();
        let before = self.out.len();
        let entered = self.editor.feed(key, echo, &mut self.out);
        if let Some(&last) = self.out.get(before..).and_then(|s| s.last()) {
            self.at_line_start = last == b'\n';
        }
        match entered {
            None => {}
            Some(Entered::Line(line)) => {
                self.shown_prompt = None;
                self.entered(line);
            }
            Some(Entered::Interrupted) => {
                self.shown_prompt = None;
                self.interrupted();
            }
        }
    }

    fn pager_key(&mut self, key: Key) {
        let Mode::Paging { mut pager, tail } = std::mem::replace(&mut self.mode, Mode::Command)
        else {
            return;
        };
        let pk = match key {
            Key::Byte(b' ') => PagerKey::Page,
            Key::Enter => PagerKey::Line,
            _ => PagerKey::Quit,
        };
        if self.t.ansi {
            self.write(ERASE_LINE);
        } else {
            let blank = format!("\r{}\r", " ".repeat(MORE.len()));
            self.write(&blank);
        }
        self.at_line_start = true;
        self.shown_prompt = None;
        for l in pager.key(pk) {
            self.line(&l);
        }
        if pager.done() {
            self.tail(tail);
            self.finish();
        } else {
            self.show_prompt(MORE);
            self.mode = Mode::Paging { pager, tail };
        }
    }

    fn interrupted(&mut self) {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Username | Mode::Password { .. } => {
                self.show_prompt(banner::USER_PROMPT);
                self.mode = Mode::Username;
            }
            _ => self.finish(),
        }
    }

    fn entered(&mut self, line: Result<String, String>) {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Username => match line {
                Ok(u) if u.trim().is_empty() => {
                    self.show_prompt(banner::USER_PROMPT);
                    self.mode = Mode::Username;
                }
                Ok(u) => {
                    self.show_prompt(banner::PASSWORD_PROMPT);
                    self.mode = Mode::Password {
                        user: u.trim().to_string(),
                    };
                }
                Err(_) => self.login_invalid(),
            },
            Mode::Password { user } => {
                let good = match (&self.t.login, &line) {
                    (Some(l), Ok(p)) => l.user == user && &l.password == p,
                    _ => false,
                };
                if good {
                    self.logged_in = true;
                    self.in_config = false;
                    self.finish();
                } else {
                    self.login_invalid();
                }
            }
            Mode::Command => match line {
                Ok(l) => match command::parse(&l, self.quoting) {
                    Ok(cmd) => self.command(cmd),
                    Err(e) => self.fail("config", &e),
                },
                Err(e) => self.fail("config", &e),
            },
            Mode::ConfirmReset => {
                let yes = line.as_deref().map(|l| l.trim().to_ascii_lowercase());
                match yes.as_deref() {
                    Ok("" | "y" | "yes") => self.engine(vec!["reset".into()], Pending::Simple),
                    _ => self.fail("config", "factory reset aborted"),
                }
            }
            Mode::Pem(pem) => self.pem_line(line, pem),
            Mode::ConfirmCert { pem } => {
                match line.as_deref().map(|l| l.trim().to_ascii_lowercase()) {
                    Ok(y) if y == "yes" => self.import(pem),
                    _ => self.fail("config", "certificate import cancelled"),
                }
            }
            other => self.mode = other,
        }
    }

    fn login_invalid(&mut self) {
        let l = self.render.red(banner::LOGIN_INVALID);
        self.line(&l);
        self.line("");
        self.show_prompt(banner::USER_PROMPT);
        self.mode = Mode::Username;
    }

    fn logout(&mut self) {
        self.logged_in = false;
        self.in_config = false;
        self.candidate.clear();
        self.ask_login();
    }

    // ---- commands -----------------------------------------------------------

    fn command(&mut self, cmd: Command) {
        if self.in_config {
            return self.config_command(cmd);
        }
        match cmd {
            Command::Empty => self.finish(),
            Command::Help => {
                let lines = self.help();
                self.answer(lines, Tail::Ok)
            }
            Command::ShowRunning(None) => self.engine(vec!["show".into()], Pending::ShowAll),
            Command::ShowRunning(Some(name)) => match self.render.words.key_in(&name) {
                Some(spec) => self.engine(vec![format!("get {spec}")], Pending::ShowOne(spec)),
                None => self.fail(
                    "config",
                    &format!(
                        "unknown parameter {}; 'show running-config' lists them",
                        quoting::write(Form::Double, &command::shorten(&name))
                    ),
                ),
            },
            Command::ShowClock => self.engine(vec!["clock get".into()], Pending::ClockShow),
            Command::ShowVersion => {
                let lines = vec![
                    format!("Firmware: mfp-testdev {}", env!("CARGO_PKG_VERSION")),
                    format!("Serial: TD-{:08}", std::process::id()),
                ];
                self.answer(lines, Tail::Ok)
            }
            Command::ShowJob(n) => {
                let found = n
                    .parse::<u64>()
                    .ok()
                    .and_then(|d| self.jobs.engine_of(d).map(|e| (d, e)));
                match found {
                    Some((dev, engine)) => {
                        self.engine(vec![format!("job {engine}")], Pending::Job(dev))
                    }
                    None => self.fail(
                        "config",
                        &format!(
                            "no job {}",
                            quoting::write(Form::Double, &command::shorten(&n))
                        ),
                    ),
                }
            }
            Command::ShowCandidate | Command::Commit | Command::Abort => {
                self.fail("config", "only in configuration mode ('configure' first)")
            }
            Command::Configure => {
                if self.t.config_mode {
                    self.in_config = true;
                    self.finish();
                } else {
                    self.fail(
                        "config",
                        "unknown command \"configure\"; '?' lists the commands",
                    )
                }
            }
            Command::Set(pairs) => {
                if self.t.config_mode {
                    self.fail(
                        "config",
                        "settings are changed in configuration mode: 'configure', then 'set', then 'commit'",
                    )
                } else {
                    self.change(&pairs, false)
                }
            }
            Command::End => self.ok(),
            Command::Exit | Command::Logout => {
                if self.t.login.is_some() {
                    self.logout()
                } else {
                    self.ok()
                }
            }
            Command::Reload => {
                // The device restarts at once: the answer is its boot.
                self.line("Reloading ...");
                self.mode = Mode::Down;
                self.next = Some(Step::Crash);
            }
            Command::FactoryReset => {
                if self.t.confirm {
                    self.show_prompt(CONFIRM_RESET);
                    self.mode = Mode::ConfirmReset;
                } else {
                    self.engine(vec!["reset".into()], Pending::Simple)
                }
            }
            Command::ClockSet(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let t = if self.t.clock {
                    clock::parse(&words)
                } else {
                    match words.as_slice() {
                        [t] => Ok(t.to_string()),
                        _ => Err(
                            "usage: clock set RFC3339 (e.g. clock set 2026-12-05T21:23:25Z)"
                                .to_string(),
                        ),
                    }
                };
                match t {
                    Ok(t) => self.engine(vec![format!("clock set {}", quote(&t))], Pending::Simple),
                    Err(e) => self.fail("config", &e),
                }
            }
            Command::Username {
                name,
                password,
                email,
            } => self.engine(
                vec![format!(
                    "user add {} {} {}",
                    quote(&name),
                    quote(&password),
                    quote(email.as_deref().unwrap_or(""))
                )],
                Pending::Simple,
            ),
            Command::NotifyAdd(a) => {
                self.engine(vec![format!("notify add {}", quote(&a))], Pending::Simple)
            }
            Command::CertImport => {
                if self.t.confirm {
                    self.line(PASTE_CERT);
                }
                self.mode = Mode::Pem(PemCollector::new(self.t.confirm));
            }
            Command::SendScan(s) => self.scan(s),
            Command::SendAlert(word) => match self.render.words.alert_in(&word) {
                Some(kind) => self.engine(vec![format!("alert raise {kind}")], Pending::Trigger),
                None => {
                    let words = self.render.words.alert_words().join(", ");
                    self.fail(
                        "config",
                        &format!(
                            "unknown alert kind {}; one of {words}",
                            quoting::write(Form::Double, &command::shorten(&word))
                        ),
                    )
                }
            },
            Command::SendCounter => self.engine(vec!["counter send-now".into()], Pending::Trigger),
        }
    }

    fn config_command(&mut self, cmd: Command) {
        match cmd {
            Command::Empty => self.finish(),
            Command::Help => {
                let lines = self.help();
                self.answer(lines, Tail::Ok)
            }
            Command::Set(pairs) => {
                for (k, v) in pairs {
                    match self.candidate.iter_mut().find(|(ck, _)| *ck == k) {
                        Some(slot) => slot.1 = v,
                        None => self.candidate.push((k, v)),
                    }
                }
                self.ok()
            }
            Command::ShowCandidate => {
                let lines = self
                    .candidate
                    .iter()
                    .map(|(k, v)| {
                        let secret = self
                            .render
                            .words
                            .key_in(k)
                            .and_then(settings::lookup)
                            .is_some_and(|d| d.secret);
                        let v = if secret {
                            crate::render::MASK.to_string()
                        } else {
                            quoting::write(Form::Double, v)
                        };
                        format!("set {k} {v}")
                    })
                    .collect();
                self.answer(lines, Tail::Ok)
            }
            Command::Commit => {
                if self.candidate.is_empty() {
                    return self.ok();
                }
                let pairs = self.candidate.clone();
                self.change(&pairs, true)
            }
            Command::Abort => {
                self.candidate.clear();
                self.in_config = false;
                self.ok()
            }
            Command::End | Command::Exit => {
                let data = if self.candidate.is_empty() {
                    Vec::new()
                } else {
                    vec![DISCARDED.to_string()]
                };
                self.candidate.clear();
                self.in_config = false;
                self.answer(data, Tail::Ok)
            }
            _ => self.fail(
                "config",
                "not available in configuration mode ('end' first)",
            ),
        }
    }

    /// The `?` listing: each command's syntax and, indented below it, what it does.
    fn help(&self) -> Vec<String> {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |cmd: &str, what: &str| rows.push((cmd.to_string(), what.to_string()));
        if self.in_config {
            row("set PARAMETER VALUE [PARAMETER VALUE ...]", "stage changes");
            row("show configuration", "list the staged changes");
            row("commit", "apply the staged changes, all or nothing");
            row("abort", "drop the staged changes and leave");
            row("end | exit", "leave configuration mode");
        } else {
            row(
                "show running-config [PARAMETER]",
                "show all settings, or one",
            );
            row("show job NUMBER", "show a job");
            row("show clock", "show the device clock");
            row("show version", "show the firmware and the serial number");
            if self.t.config_mode {
                row("configure", "enter configuration mode to change settings");
            } else {
                row(
                    "set PARAMETER VALUE [PARAMETER VALUE ...]",
                    "change settings, all or nothing",
                );
            }
            if self.t.clock {
                row(
                    "clock set HH:MM:SS DAY MONTH YEAR",
                    "set the device clock (UTC)",
                );
            } else {
                row("clock set RFC3339", "set the device clock");
            }
            row(
                "factory-reset",
                "restore factory settings, empty the stores",
            );
            row(command::USERNAME_USAGE, "add a device user");
            row("notification add ADDRESS", "add a notification address");
            row("certificate import", "import a CA certificate (PEM)");
            row(command::SCAN_USAGE, "scan to e-mail");
            let kinds = format!(
                "raise an alert; KIND: {}",
                self.render.words.alert_words().join(", ")
            );
            row("send alert KIND", &kinds);
            row("send counter", "send the total counter now");
            if self.t.login.is_some() {
                row("logout | exit", "end the session");
            }
        }
        rows.into_iter()
            .flat_map(|(cmd, what)| [cmd, format!("    {what}")])
            .collect()
    }

    /// Checks every parameter of a change; answers the SPEC pairs, or each bad one.
    fn check(&self, pairs: &[(String, String)]) -> Result<Vec<(&'static str, String)>, Vec<Bad>> {
        let words = &self.render.words;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, value) in pairs {
            let Some(spec) = words.key_in(name) else {
                bad.push(Bad {
                    name: name.clone(),
                    value: value.clone(),
                    secret: false,
                    rule: "unknown parameter (see 'show running-config')".into(),
                });
                continue;
            };
            let secret = settings::lookup(spec).is_some_and(|d| d.secret);
            let checked =
                words
                    .value_in(spec, value)
                    .and_then(|v| match settings::Key::parse(spec) {
                        Ok(k) => settings::validate(k, &v).map_err(|r| r.rule),
                        Err(e) => Err(e.to_string()),
                    });
            match checked {
                Ok(v) => good.push((spec, v)),
                Err(rule) => bad.push(Bad {
                    name: name.clone(),
                    value: value.clone(),
                    secret,
                    rule,
                }),
            }
        }
        if bad.is_empty() {
            Ok(good)
        } else {
            Err(bad)
        }
    }

    /// An immediate `set` or a `commit`: all or nothing.
    fn change(&mut self, pairs: &[(String, String)], commit: bool) {
        match self.check(pairs) {
            Ok(good) => {
                let parts: Vec<String> = good
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote(v)))
                    .collect();
                self.engine(
                    vec![format!("apply {}", parts.join(" "))],
                    Pending::Change { commit },
                )
            }
            Err(bad) => {
                if commit {
                    // A refused commit drops the candidate (README "Configuration mode").
                    self.candidate.clear();
                }
                let lines = self.render.refusal(&bad, commit);
                self.answer(Vec::new(), Tail::Error(lines))
            }
        }
    }

    fn scan(&mut self, s: Scan) {
        if (s.subject.is_some() || s.filename.is_some()) && !self.caps.scan_text {
            return self.fail(
                "config",
                "subject and filename are not supported by this firmware's mail engine",
            );
        }
        let mut line = format!("scan send {} {}", quote(&s.to), quote(&s.size));
        if let Some(u) = &s.user {
            line.push(' ');
            line.push_str(&quote(u));
        }
        if let Some(t) = &s.subject {
            line.push_str(&format!(" subject={}", quote(t)));
        }
        if let Some(f) = &s.filename {
            line.push_str(&format!(" name={}", quote(f)));
        }
        self.engine(vec![line], Pending::Trigger)
    }

    fn pem_line(&mut self, line: Result<String, String>, mut pem: PemCollector) {
        let step = match line {
            Ok(t) => pem.line(&t),
            Err(e) => PemStep::Refused(e),
        };
        match step {
            PemStep::More => self.mode = Mode::Pem(pem),
            PemStep::Complete(lines) if self.t.confirm => {
                self.show_prompt(CONFIRM_CERT);
                self.mode = Mode::ConfirmCert { pem: lines };
            }
            PemStep::Complete(lines) => self.import(lines),
            PemStep::Refused(e) => self.fail("config", &format!("{e}; import abandoned")),
        }
    }

    fn import(&mut self, pem: Vec<String>) {
        let mut lines = vec!["cert import".to_string()];
        lines.extend(pem);
        self.engine(lines, Pending::Simple)
    }

    // ---- the engine's answers and events --------------------------------------

    /// The engine's answer to the request of the last [`Step::Engine`].
    pub fn reply(&mut self, r: Reply) {
        let Mode::Waiting(pending) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return;
        };
        let (class, detail) = match r.status {
            Status::Ok => return self.replied(pending, r.data),
            Status::Err { class, detail } => (class, detail),
        };
        if let Pending::Change { commit: true } = pending {
            self.candidate.clear();
        }
        let detail = self.render.words.detail_out(&class, strip_prefix(&detail));
        let e = self.render.error(&class, &detail);
        self.answer(Vec::new(), Tail::Error(vec![e]));
    }

    fn replied(&mut self, pending: Pending, data: Vec<String>) {
        match pending {
            Pending::ShowAll => {
                let mut lines = Vec::new();
                for l in &data {
                    match reference::parse_value(l) {
                        Ok((k, v)) => lines.push(self.render.value_line(&k, &v)),
                        Err(e) => eprintln!("mfp-testdev: {e}"),
                    }
                }
                self.answer(lines, Tail::Ok)
            }
            Pending::ShowOne(spec) => match data.first().map(|l| reference::parse_value(l)) {
                Some(Ok((_, v))) => {
                    let line = self.render.value_line(spec, &v);
                    self.answer(vec![line], Tail::Ok)
                }
                Some(Err(e)) => self.fail("config", &e),
                None => self.fail("config", "the mail engine gave no value"),
            },
            Pending::Change { commit } => {
                if commit {
                    self.candidate.clear();
                }
                self.ok()
            }
            Pending::Simple => self.ok(),
            Pending::ClockShow => match reference::parse_clock(&data) {
                Some(t) => {
                    let shown = if self.t.clock {
                        clock::format(t)
                    } else {
                        Ok(t.to_string())
                    };
                    match shown {
                        Ok(s) => self.answer(vec![s], Tail::Ok),
                        Err(e) => self.fail("config", &e),
                    }
                }
                None => self.fail("config", "the mail engine gave no clock"),
            },
            Pending::Trigger => match reference::job_started(&data) {
                Some(n) => self.started(n),
                None => self.fail("config", "the mail engine did not number the job"),
            },
            Pending::Job(dev) => match reference::parse_job(&data) {
                Ok(j) => {
                    let lines = self.render.job(dev, &j);
                    self.answer(lines, Tail::Ok)
                }
                Err(e) => self.fail("config", &e),
            },
        }
    }

    fn started(&mut self, engine: u64) {
        let dev = self.jobs.add(engine);
        if self.t.crash_at == Some(dev) && !self.crashed {
            self.crashed = true;
            if !self.at_line_start {
                self.write("\r\n");
            }
            for (i, l) in banner::panic(dev).iter().enumerate() {
                let l = if i == 1 {
                    self.render.red(l)
                } else {
                    l.clone()
                };
                self.line(&l);
            }
            self.mode = Mode::Down;
            self.next = Some(Step::Crash);
            return;
        }
        if self.t.hang_at == Some(dev) && !self.hung {
            self.hung = true;
            self.mode = Mode::Down;
            self.next = Some(Step::Hang);
            return;
        }
        let line = self.render.job_started(dev);
        if self.t.job_status {
            self.answer(Vec::new(), Tail::Line(line))
        } else {
            self.answer(vec![line], Tail::Ok)
        }
        if let Some(f) = self.t.flood.filter(|f| f.at == dev && !self.flooded) {
            self.flooded = true;
            self.next = Some(Step::Flood(f));
        }
    }

    /// A job's end: printed at once (at the prompt the prompt and the typed part
    /// of the line are drawn again after it). Nothing before the login, nothing
    /// while the device is down, nothing for a job of an engine since restarted.
    pub fn event(&mut self, end: &JobEnd) {
        if !self.logged_in || matches!(self.mode, Mode::Down) {
            return;
        }
        let Some(dev) = self.jobs.dev_of(end.id) else {
            return;
        };
        let text = self.render.yellow(&self.render.event(dev, end));
        match self.shown_prompt.clone() {
            Some(p) => {
                if self.t.ansi {
                    self.write(ERASE_LINE);
                    self.at_line_start = true;
                } else if !self.at_line_start {
                    self.write("\r\n");
                }
                self.line(&text);
                self.write(&p);
                let typed = matches!(
                    self.mode,
                    Mode::Command | Mode::ConfirmReset | Mode::ConfirmCert { .. }
                );
                if self.t.echo && typed {
                    let partial = self.editor.partial().to_vec();
                    self.out.extend_from_slice(&partial);
                    if !partial.is_empty() {
                        self.at_line_start = false;
                    }
                }
            }
            None => {
                if !self.at_line_start {
                    self.write("\r\n");
                }
                self.line(&text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Login;

    fn out(s: &mut Session) -> String {
        String::from_utf8_lossy(&s.take_output()).into_owned()
    }

    fn ok_reply(data: &[&str]) -> Reply {
        Reply {
            data: data.iter().map(|s| s.to_string()).collect(),
            status: Status::Ok,
        }
    }

    fn router() -> Session {
        let mut t = Traits::router();
        t.ansi = false;
        let mut s = Session::new(t, Capabilities::default());
        s.boot();
        s.input(b"admin\r\nadmin123\r\n");
        assert_eq!(s.step(), Step::Idle);
        let o = out(&mut s);
        assert!(o.ends_with("Password: \r\nmfp-4000# "), "{o:?}");
        s
    }

    #[test]
    fn login_is_asked_again_after_a_wrong_password() {
        let t = Traits {
            login: Some(Login::parse("u:p w").unwrap()),
            echo: true,
            ..Traits::default()
        };
        let mut s = Session::new(t, Capabilities::default());
        s.boot();
        s.input(b"u\r\nbad\r\nu\rp w\r");
        assert_eq!(s.step(), Step::Idle);
        let o = out(&mut s);
        assert!(
            o.ends_with(
                "Username: u\r\nPassword: \r\n% Login invalid\r\n\r\nUsername: u\r\nPassword: \r\n"
            ),
            "{o:?}"
        );
        assert!(!o.contains("bad") && !o.contains("p w"));
    }

    #[test]
    fn configure_stage_commit_and_a_refused_commit() {
        let mut s = router();
        s.input(b"set smtp-port 2525\r\nconfigure\r\nset smtp-port 2525 scan-to-email disable\r\ncommit\r\n");
        assert_eq!(
            s.step(),
            Step::Engine(vec!["apply smtp.port=2525 email.scan=off".into()])
        );
        let o = out(&mut s);
        assert!(
            o.contains("% CONFIG-ERROR: settings are changed in configuration mode"),
            "{o}"
        );
        assert!(o.ends_with("mfp-4000(config)# commit\r\n"), "{o:?}");
        s.reply(ok_reply(&[]));
        assert_eq!(s.step(), Step::Idle);
        assert_eq!(out(&mut s), "mfp-4000(config)# ");
        s.input(b"set smtp-timeout 29 auth-password \"a\\\"b\" smtp-port 26\r\ncommit\r\nshow configuration\r\n");
        assert_eq!(s.step(), Step::Idle);
        let o = out(&mut s);
        assert!(o.contains("% Commit failed: 2 errors\r\n    smtp-timeout 29: must be a decimal integer from 30 to 300\r\n    auth-password ********: "), "{o}");
        assert!(!o.contains("a\\\"b\r\n    "), "{o}");
        // The refused candidate is gone: show configuration lists nothing.
        assert!(
            o.ends_with("show configuration\r\nmfp-4000(config)# "),
            "{o:?}"
        );
    }

    #[test]
    fn jobs_are_numbered_by_the_device_and_events_redraw_the_prompt() {
        let mut s = router();
        s.input(b"send scan to a@b.test size 10\r\n");
        assert_eq!(s.step(), Step::Engine(vec!["scan send a@b.test 10".into()]));
        s.reply(ok_reply(&["JOB 41"]));
        assert_eq!(s.step(), Step::Idle);
        assert!(out(&mut s).ends_with("Job 1 queued\r\nmfp-4000# "));
        s.input(b"sho");
        s.step();
        out(&mut s);
        s.event(&JobEnd {
            id: 41,
            error: Some(("connect".into(), "refused".into())),
        });
        assert_eq!(
            out(&mut s),
            "\r\n%MAIL-3-JOBEND: Job 1 aborted (CONNECT-FAIL): refused\r\nmfp-4000# sho"
        );
        s.input(b"w job 1\r\n");
        assert_eq!(s.step(), Step::Engine(vec!["job 41".into()]));
    }

    #[test]
    fn crash_at_job_prints_the_panic_and_restarts_once() {
        let t = Traits {
            crash_at: Some(2),
            ..Traits::default()
        };
        let mut s = Session::new(t, Capabilities::default());
        s.boot();
        for (n, want_crash) in [(5, false), (6, true)] {
            s.input(b"send counter\n");
            assert_eq!(s.step(), Step::Engine(vec!["counter send-now".into()]));
            s.reply(ok_reply(&[&format!("JOB {n}")]));
            let step = s.step();
            assert_eq!(step == Step::Crash, want_crash);
        }
        let o = out(&mut s);
        assert!(
            o.contains("*** PANIC: watchdog timeout in mail task ***"),
            "{o}"
        );
        s.input(b"ignored\n");
        assert_eq!(s.step(), Step::Idle);
        s.restart();
        assert!(out(&mut s).contains("System ready.\r\n"));
        s.input(b"send counter\n");
        s.step();
        s.reply(ok_reply(&["JOB 1"]));
        assert_eq!(s.step(), Step::Idle);
        assert!(out(&mut s).contains("Job 3 created\r\n[OK]\r\n"));
    }

    #[test]
    fn paging_stops_and_resumes() {
        let t = Traits {
            paging: Some(2),
            ..Traits::default()
        };
        let mut s = Session::new(t, Capabilities::default());
        s.boot();
        out(&mut s);
        s.input(b"show running-config\n");
        assert_eq!(s.step(), Step::Engine(vec!["show".into()]));
        s.reply(ok_reply(&[
            "email.enabled=on",
            "smtp.port=25",
            "smtp.server=\"\"",
            "pop.apop=off",
        ]));
        s.input(b"\r\n ");
        assert_eq!(s.step(), Step::Idle);
        let blank = format!("\r{}\r", " ".repeat(MORE.len()));
        assert_eq!(
            out(&mut s),
            format!("email.enabled on\r\nsmtp.port 25\r\n --More-- {blank}smtp.server \"\"\r\n --More-- {blank}pop.apop off\r\n[OK]\r\n")
        );
    }

    #[test]
    fn bad_input_is_answered_in_the_device_words() {
        let mut s = router();
        s.input(b"frobnicate\r\nsend alert paper_empty\r\nshow job 99\r\n\xff\r\n");
        assert_eq!(s.step(), Step::Idle);
        let o = out(&mut s);
        assert!(
            o.contains("% CONFIG-ERROR: unknown command \"frobnicate\""),
            "{o}"
        );
        assert!(
            o.contains("unknown alert kind paper_empty; one of no-paper,"),
            "{o}"
        );
        assert!(o.contains("% CONFIG-ERROR: no job 99"), "{o}");
        assert!(o.contains("% CONFIG-ERROR: line is not UTF-8"), "{o}");
    }

    /// Random keystrokes, engine answers and events never panic the session, and
    /// every engine request is one the engine can read.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words: &[&[u8]] = &[
            b"configure\r",
            b"commit\r",
            b"end\r",
            b"set smtp-port ",
            b"\"a b\" ",
            b"'x''y' ",
            b"show running-config\r",
            b"show job 1\r",
            b"send scan to a@b.test size 1\r",
            b"send counter\r",
            b"factory-reset\r",
            b"certificate import\r",
            b"-----BEGIN CERTIFICATE-----\r",
            b"QUJD\r",
            b"-----END CERTIFICATE-----\r",
            b"yes\r",
            b"\r\n",
            b" ",
            b"q",
            b"\x03",
            b"\x7f",
            b"\x1b[A",
            b"\xff",
            b"admin\r",
            b"admin123\r",
            b"clock set 1:2:3 4 May 2020\r",
            b"?\r",
            b"\"",
            b"\t",
            b"exit\r",
        ];
        let replies: &[&str] = &[
            "JOB 1",
            "JOB x",
            "clock=garbage",
            "clock=2026-01-01T00:00:00Z",
            "smtp.port=25",
            "smtp.port=\"open",
            "JOB 1 failed rejected 550 x",
            "RCPT a@b accepted",
            "",
        ];
        for traits in [Traits::router(), Traits::default()] {
            let t = Traits {
                crash_at: Some(3),
                hang_at: Some(5),
                paging: Some(3),
                ..traits
            };
            let mut s = Session::new(t, Capabilities { scan_text: true });
            s.boot();
            for _ in 0..20_000 {
                let w = words[(rnd() % words.len() as u64) as usize];
                s.input(w);
                if rnd() % 7 == 0 {
                    s.event(&JobEnd {
                        id: rnd() % 4,
                        error: None,
                    });
                }
                loop {
                    match s.step() {
                        Step::Idle => break,
                        Step::Engine(lines) => {
                            for l in &lines {
                                assert!(l.len() <= MAX_LINE && !l.contains(['\r', '\n']), "{l:?}");
                            }
                            let data = (0..rnd() % 3)
                                .map(|_| {
                                    replies[(rnd() % replies.len() as u64) as usize].to_string()
                                })
                                .collect();
                            let status = if rnd() % 4 == 0 {
                                Status::Err {
                                    class: "config".into(),
                                    detail: "smtp.port: no".into(),
                                }
                            } else {
                                Status::Ok
                            };
                            s.reply(Reply { data, status });
                        }
                        Step::Crash | Step::Hang => s.restart(),
                        Step::Flood(_) => {}
                    }
                }
                s.take_output();
            }
        }
    }

    #[test]
    fn pem_is_checked_before_the_engine_sees_it() {
        let mut s = router();
        s.input(b"certificate import\r\n-----BEGIN CERTIFICATE-----\r\nnot base64!\r\n-----END CERTIFICATE-----\r\n\r\n");
        assert_eq!(s.step(), Step::Idle);
        let o = out(&mut s);
        assert!(
            o.contains("Paste the certificate, end with a blank line:\r\n"),
            "{o}"
        );
        assert!(o.contains("is not base64; import abandoned"), "{o}");
        s.input(b"certificate import\r\n-----BEGIN CERTIFICATE-----\r\nQUJD\r\n-----END CERTIFICATE-----\r\n\r\nyes\r\n");
        assert_eq!(
            s.step(),
            Step::Engine(vec![
                "cert import".into(),
                "-----BEGIN CERTIFICATE-----".into(),
                "QUJD".into(),
                "-----END CERTIFICATE-----".into()
            ])
        );
        assert!(out(&mut s).contains("Import this certificate? [yes/no]: yes\r\n"));
    }
}
