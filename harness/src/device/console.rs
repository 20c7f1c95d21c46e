//! The console driver: sends a profile's templates to a device's console and reads
//! its answers the way the profile says they look. Before each command it syncs on
//! the prompt (or drains what is unread, logging it), so one leftover line never
//! shifts later answers; it recognises the echo of what it typed, answers a pager,
//! keeps event lines aside for whoever waits on them, and reads an answer up to its
//! status line or the prompt. When an answer does not fit the profile it says which
//! console trait the profile misses ([`super::diagnose`]); when the device crashes or
//! hangs it power-cycles it if the profile says how, waits for it, logs in again and
//! reports the crash. Everything said both ways goes into a log stamped on the
//! caller's clock, with credentials replaced by `***`.
//!
//! The operations (`get`, `apply`, triggers, jobs) are in `ops.rs`.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;

use super::capped::{self, CappedLog, FirstLines};
use super::diagnose::{self, Mismatch, Seen};
use super::link::{self, Link, ReadMsg};
use super::profile::{Echo, Login, Profile};
use super::term::printable;
use super::Endpoint;

/// A console problem that is the harness's, the link's, the profile's or a crash —
/// not the device's verdict on a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The port or connection could not be opened or was lost: worth reopening.
    #[error("console link: {0}")]
    Link(String),
    /// The device said nothing within the profile's timeout.
    #[error("console timeout: {0}")]
    Timeout(String),
    /// The device answered, but not the way the profile says: the profile needs
    /// fixing, so trying again cannot help.
    #[error("the profile does not fit the device: {0}")]
    Profile(Mismatch),
    /// The device refused something the harness needs to set a case up.
    #[error("{0}")]
    Refused(String),
    /// The device crashed or hung and was brought back (or not).
    #[error("device crash: {0}")]
    Crash(String),
}

impl DriverError {
    /// Whether running the case again (on a reopened link) can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DriverError::Link(_) | DriverError::Timeout(_))
    }
}

/// The status line of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Status {
    Ok,
    /// `class` in SPEC's words (the profile's `[classes]` applied).
    Err {
        class: String,
        detail: String,
    },
}

/// One command's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub data: Vec<String>,
    pub status: Status,
}

/// What the device said to a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TriggerAnswer {
    Job(u64),
    Refused { class: String, detail: String },
}

/// How a job ended, from its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum JobEnd {
    Done,
    Failed { class: String, detail: String },
}

/// A recipient line of a job report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientVerdict {
    pub address: String,
    pub accepted: bool,
    pub detail: String,
}

/// The answer to `job n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReport {
    pub state: String,
    pub class: Option<String>,
    pub detail: Option<String>,
    pub recipients: Vec<RecipientVerdict>,
}

/// Who spoke a console log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConsoleDir {
    /// Sent by the harness.
    H,
    /// Sent by the device.
    D,
    /// A note of the driver's (what it drained, a power cycle, a crash).
    N,
}

/// One line of the console log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleLine {
    /// Milliseconds since the clock the console was opened with.
    pub t_ms: u64,
    pub dir: ConsoleDir,
    pub text: String,
}

/// How the driver read one line, for `hil profile probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    pub t_ms: u64,
    pub dir: ConsoleDir,
    pub text: String,
    /// echo, prompt, event, status ok, status error, continuation, data, unmatched,
    /// pager, expected, crash, boot, drained, sent.
    pub class: &'static str,
    /// The profile field that matched it.
    pub field: &'static str,
}

/// Most unclaimed event lines kept (each to [`EVENT_BYTES`]); the oldest go first.
const MAX_EVENTS: usize = 1_000;
const EVENT_BYTES: usize = 4 * 1024;

/// Most lines kept, for a diagnosis, of those heard since a command, and of those
/// drained before one (the console log has them all, within its bounds).
const MAX_HEARD: usize = 50;
const HEARD_BYTES: usize = 512;
const MAX_DRAINED: usize = 20;

/// Most bytes of data lines kept of one answer; the rest is counted.
const MAX_DATA_BYTES: usize = 4 * 1024 * 1024;

/// Most bytes of the lines continuing a refusal kept in its detail.
const MAX_DETAIL_BYTES: usize = 4 * 1024;

/// Most lines traced for `hil profile probe` between two takes.
const MAX_TRACE: usize = 50_000;

/// How long a prompt seen before the echo of the command must stand alone to end the
/// answer (a device that does not echo this one command).
const ECHO_GRACE: Duration = Duration::from_millis(300);

/// How long a console without a prompt is given, after a refusal, for the lines that
/// continue it.
const CONTINUATION_QUIET: Duration = Duration::from_millis(300);

/// What ends a read.
pub(super) struct Until<'a> {
    pub op: &'a str,
    /// The line(s) sent, masked, for messages.
    pub sent: Vec<String>,
    /// A step's own pattern to wait for instead of the end of an answer.
    pub expect: Option<&'a Regex>,
    pub trigger: bool,
    pub deadline: Instant,
}

/// How a read ended.
pub(super) enum Ended {
    Answer(Answer),
    /// The step's `expect` matched; the lines before it.
    Expected(Vec<String>),
}

/// An answer being read.
#[derive(Default)]
struct Reading {
    data: Vec<String>,
    /// Bytes in `data`, and the data lines not kept past [`MAX_DATA_BYTES`].
    data_bytes: usize,
    data_cut: usize,
    /// Every line heard since the command (echo included), for a diagnosis.
    heard: Vec<String>,
    status: Option<Status>,
    /// The lines after a refusal may continue it.
    collecting: bool,
    /// On a console without a prompt: the answer ends when nothing more comes by
    /// then (the lines continuing a refusal).
    quiet_until: Option<Instant>,
    lines_since: usize,
    /// Lines that were neither blank nor the echo of what was typed.
    replies: usize,
    /// A prompt seen before the echo of the command came, when.
    prompt_at: Option<Instant>,
}

impl Reading {
    fn hear(&mut self, line: String) {
        if self.heard.len() < MAX_HEARD {
            self.heard.push(capped::cut_line(&line, HEARD_BYTES));
        }
    }

    fn keep_data(&mut self, line: String) {
        if self.data_bytes + line.len() > MAX_DATA_BYTES {
            self.data_cut += 1;
            return;
        }
        self.data_bytes += line.len();
        self.data.push(line);
    }

    fn answer(&mut self) -> Answer {
        Answer {
            data: std::mem::take(&mut self.data),
            status: self.status.take().unwrap_or(Status::Ok),
        }
    }
}

/// What a read does after a message.
enum Next {
    More,
    Answered,
    Expected,
}

/// A driver for one device console.
pub struct Console {
    pub(super) profile: Arc<Profile>,
    link: Link,
    pub(super) events: VecDeque<String>,
    /// Event lines pushed since the console opened (the queue's length stops
    /// growing at its bound).
    pub(super) events_pushed: u64,
    log: CappedLog,
    trace: Option<Vec<Traced>>,
    secrets: Vec<String>,
    epoch: Instant,
    pub(super) name: String,
    closed: Option<String>,
    /// The line the device has not ended yet, as last seen.
    partial: String,
    /// How much of `partial` the driver has acted on already (a prompt answered, a
    /// question answered): the line's rest, when it ends, is new.
    partial_used: usize,
    /// The device shows its command prompt and nothing after it.
    at_prompt: bool,
    /// Lines typed whose echo may still come.
    pending_echo: VecDeque<String>,
    /// The device echoed a typed line at least once.
    pub(super) echo_seen: bool,
    /// Escape sequences were seen (and removed) in what the device printed.
    pub(super) escapes_seen: bool,
    /// Lines drained before the last command (not events): for `hil profile probe`.
    pub(super) drained: FirstLines,
    /// A device process the harness started (its pid fills `{pid}` in `power_cycle`).
    pid: Option<u32>,
}

impl Console {
    /// Opens the console at `endpoint`, logs in if the profile says so, and drains
    /// what the device had queued. Log times count from now.
    pub fn open(endpoint: &Endpoint, profile: Arc<Profile>) -> Result<Console, DriverError> {
        Console::open_at(endpoint, profile, Instant::now())
    }

    /// [`Console::open`], with log times counted from `epoch` (the fake servers'
    /// clock, so the console log and the transcripts read on one time line).
    pub fn open_at(
        endpoint: &Endpoint,
        profile: Arc<Profile>,
        epoch: Instant,
    ) -> Result<Console, DriverError> {
        Console::open_with(endpoint, profile, epoch, false)
    }

    /// [`Console::open_at`]; with `trace`, how each line was read is kept from the
    /// first byte on (`hil profile probe`), the login included.
    pub fn open_with(
        endpoint: &Endpoint,
        profile: Arc<Profile>,
        epoch: Instant,
        trace: bool,
    ) -> Result<Console, DriverError> {
        let link = link::open(
            endpoint,
            profile.ansi,
            profile.encoding,
            profile.cr_ends_line,
        )
        .map_err(DriverError::Link)?;
        let name = link.name.clone();
        let mut c = Console {
            profile,
            link,
            events: VecDeque::new(),
            events_pushed: 0,
            log: CappedLog::default(),
            trace: trace.then(Vec::new),
            secrets: Vec::new(),
            epoch,
            name,
            closed: None,
            partial: String::new(),
            partial_used: 0,
            at_prompt: false,
            pending_echo: VecDeque::new(),
            echo_seen: false,
            escapes_seen: false,
            drained: FirstLines::default(),
            pid: None,
        };
        c.greet()?;
        Ok(c)
    }

    /// The process id of a device the harness started itself, for `{pid}` in the
    /// profile's `power_cycle`.
    pub fn set_pid(&mut self, pid: Option<u32>) {
        self.pid = pid;
    }

    /// Keeps, from now on, how each line was read (for `hil profile probe`).
    pub fn start_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Takes the lines traced since the last call.
    pub fn take_trace(&mut self) -> Vec<Traced> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether the device echoed a typed line back at least once.
    pub fn echo_seen(&self) -> bool {
        self.echo_seen
    }

    /// The profile this console speaks.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Takes the console log recorded so far (its first and last lines, past
    /// [`capped::LOG_HEAD_BYTES`] and [`capped::LOG_TAIL_BYTES`]).
    pub fn take_log(&mut self) -> Vec<ConsoleLine> {
        self.log.take()
    }

    /// Registers a value to be shown as `***` wherever it appears in the log.
    pub fn add_secret(&mut self, s: &str) {
        // The value as sent (quoted, escaped, in each quoting) and as it is.
        let forms = [
            self.profile.quote(s),
            super::profile::Quoting::Single.quote(s),
            s.to_string(),
        ];
        for form in forms {
            if !form.is_empty() && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub(super) fn redact(&self, line: &str) -> String {
        let mut out = printable(line);
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn record_at(&mut self, at: Instant, dir: ConsoleDir, text: &str) {
        let text = self.redact(text);
        self.log.push(ConsoleLine {
            t_ms: self.ms(at),
            dir,
            text,
        });
    }

    pub(super) fn note(&mut self, text: &str) {
        self.record_at(Instant::now(), ConsoleDir::N, text);
        self.traced(Instant::now(), ConsoleDir::N, text, "note", "");
    }

    fn traced(
        &mut self,
        at: Instant,
        dir: ConsoleDir,
        text: &str,
        class: &'static str,
        field: &'static str,
    ) {
        if self.trace.as_ref().is_none_or(|t| t.len() >= MAX_TRACE) {
            return;
        }
        let t = Traced {
            t_ms: self.ms(at),
            dir,
            text: self.redact(text),
            class,
            field,
        };
        if let Some(tr) = self.trace.as_mut() {
            tr.push(t);
        }
    }

    pub(super) fn push_event(&mut self, l: String) {
        self.events_pushed += 1;
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(capped::cut_line(&l, EVENT_BYTES));
    }

    /// Sends bytes as typed; `shown` is what the log records.
    pub(super) fn send(
        &mut self,
        text: &str,
        line_end: bool,
        shown: &str,
    ) -> Result<(), DriverError> {
        let mut bytes = text.as_bytes().to_vec();
        if line_end {
            bytes.extend_from_slice(self.profile.line_ending.as_bytes());
        }
        let now = Instant::now();
        self.record_at(now, ConsoleDir::H, shown);
        self.traced(now, ConsoleDir::H, shown, "sent", "");
        // A key sent without a line ending (a pager, a confirmation) is not waited
        // for as an echo: it may come back in the middle of a line, or not at all.
        if self.profile.echo != Echo::Off && !text.is_empty() && line_end {
            self.pending_echo.push_back(text.to_string());
        }
        self.at_prompt = false;
        let name = self.name.clone();
        let delay = Duration::from_millis(self.profile.timeouts.char_delay_ms);
        let w = &mut self.link.writer;
        let written = if delay.is_zero() {
            w.write_all(&bytes).and_then(|_| w.flush())
        } else {
            // A console that drops what is typed faster than it reads it.
            bytes.iter().try_for_each(|b| {
                w.write_all(&[*b])?;
                w.flush()?;
                std::thread::sleep(delay);
                Ok(())
            })
        };
        written.map_err(|e| DriverError::Link(format!("writing to {name}: {e}")))
    }

    /// The next message, or `None` at `deadline`.
    fn recv(&mut self, deadline: Instant) -> Result<Option<ReadMsg>, DriverError> {
        if let Some(why) = &self.closed {
            return Err(DriverError::Link(format!(
                "{} is closed ({why})",
                self.name
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.link.rx.recv_timeout(left) {
            Ok(ReadMsg::Closed(why)) => {
                self.closed = Some(why.clone());
                Err(DriverError::Link(format!("{} closed: {why}", self.name)))
            }
            Ok(m) => Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(DriverError::Link(format!("{} reader stopped", self.name)))
            }
        }
    }

    /// A line the device ended: the part not acted on yet, with the prompts in front
    /// of it removed. Logs the whole line.
    fn take_line(&mut self, text: &str, at: Instant, escapes: bool) -> String {
        self.escapes_seen |= escapes;
        let used = std::mem::take(&mut self.partial_used);
        let prefix = self.partial.get(..used).unwrap_or("");
        let new = if used > 0 && text.starts_with(prefix) {
            &text[used..]
        } else {
            text
        };
        // What was acted on of the line is in the log already.
        if used == 0 || !new.is_empty() {
            self.record_at(at, ConsoleDir::D, new);
        }
        let new = self.profile.strip_prompt(new).to_string();
        self.partial.clear();
        self.at_prompt = false;
        new
    }

    /// A line the device has not ended: the part not acted on yet.
    fn take_partial(&mut self, text: String) -> String {
        if !text.starts_with(self.partial.get(..self.partial_used).unwrap_or("")) {
            self.partial_used = 0;
        }
        self.partial = text;
        let new = self
            .partial
            .get(self.partial_used..)
            .unwrap_or("")
            .to_string();
        self.at_prompt = self.profile.is_prompt(&new);
        new
    }

    /// Marks the line not ended yet as acted on (logged, and not read again).
    fn use_partial(&mut self, at: Instant, class: &'static str, field: &'static str) {
        let new = self
            .partial
            .get(self.partial_used..)
            .unwrap_or("")
            .to_string();
        if !new.trim().is_empty() {
            self.record_at(at, ConsoleDir::D, &new);
            self.traced(at, ConsoleDir::D, &new, class, field);
        }
        self.partial_used = self.partial.len();
    }

    /// Whether a line is the echo of something typed; consumes it.
    fn is_echo(&mut self, line: &str) -> bool {
        if self.profile.echo == Echo::Off {
            return false;
        }
        let pos = self
            .pending_echo
            .iter()
            .position(|s| s == line || s.trim_end() == line.trim_end());
        match pos {
            Some(i) => {
                self.pending_echo.drain(..=i);
                self.echo_seen = true;
                true
            }
            None => false,
        }
    }

    /// A line that means the device crashed (its banner) or booted.
    fn crash_line(&self, line: &str) -> bool {
        self.profile
            .crash
            .as_ref()
            .is_some_and(|c| c.pattern.as_ref().is_some_and(|r| r.is_match(line)))
    }

    /// Before a command: everything the device printed since the last answer is read
    /// (events kept, anything else logged as drained), then, on a console with a
    /// prompt, the prompt is waited for (an empty line sent once if it does not show).
    pub(super) fn sync(&mut self, op: &str) -> Result<(), DriverError> {
        self.pending_echo.clear();
        self.drained.clear();
        loop {
            match self.link.rx.try_recv() {
                Ok(m) => self.unsolicited(m, op)?,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(DriverError::Link(format!("{} reader stopped", self.name)))
                }
            }
        }
        if !self.drained.is_empty() {
            let d = &self.drained;
            let more = if d.more > 0 {
                format!(" and {} more line(s)", d.more)
            } else {
                String::new()
            };
            let text = format!("unread before {op}: {:?}{more}", d.lines);
            self.note(&text);
        }
        if self.profile.prompt.is_none() || self.at_prompt {
            return Ok(());
        }
        let wait = Duration::from_millis(self.profile.timeouts.command_ms);
        if self.await_prompt(Instant::now() + wait.min(Duration::from_millis(500)), op)? {
            return Ok(());
        }
        self.send("", true, "")?;
        if self.await_prompt(Instant::now() + wait, op)? {
            return Ok(());
        }
        let partial = self.partial.clone();
        let sent: Vec<String> = vec![String::new()];
        let seen = Seen {
            op,
            sent: &sent,
            lines: &[],
            raw_escapes: false,
            partial: &partial,
            prompt_seen: false,
            trigger: false,
        };
        if partial.trim().is_empty() {
            return Err(self.silent(op, "shows no prompt"));
        }
        Err(DriverError::Profile(diagnose::diagnose(
            &self.profile,
            &seen,
        )))
    }

    /// Reads until the prompt shows (other lines handled as unsolicited).
    fn await_prompt(&mut self, deadline: Instant, op: &str) -> Result<bool, DriverError> {
        while !self.at_prompt {
            match self.recv(deadline)? {
                Some(m) => self.unsolicited(m, op)?,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// A message no command asked for: an event, a crash, a prompt, a line drained.
    fn unsolicited(&mut self, m: ReadMsg, op: &str) -> Result<(), DriverError> {
        match m {
            ReadMsg::Line { text, at, escapes } => {
                let line = self.take_line(&text, at, escapes);
                if self.crash_line(&line) {
                    self.traced(at, ConsoleDir::D, &line, "crash", "crash.pattern");
                    return Err(self.crashed(op, &line));
                }
                if line.trim().is_empty() {
                    return Ok(());
                }
                if self.profile.event.is_match(&line) {
                    self.traced(at, ConsoleDir::D, &line, "event", "status.event");
                    self.push_event(line);
                } else {
                    self.traced(at, ConsoleDir::D, &line, "drained", "");
                    self.drained.push(line, MAX_DRAINED);
                }
            }
            ReadMsg::Partial { text, at } => {
                let new = self.take_partial(text);
                if self.at_prompt {
                    self.use_partial(at, "prompt", "prompt");
                    self.at_prompt = true;
                } else if self.is_login_prompt(&new) {
                    self.use_partial(at, "login", "login.user_prompt");
                    return Err(self.relogin(op, "asked for a login again"));
                }
            }
            ReadMsg::Closed(why) => {
                self.closed = Some(why.clone());
                return Err(DriverError::Link(format!("{} closed: {why}", self.name)));
            }
        }
        Ok(())
    }

    /// Reads one message until `deadline` as unsolicited (events kept, other lines
    /// drained); `false` when nothing came.
    pub(super) fn pump(&mut self, deadline: Instant, what: &str) -> Result<bool, DriverError> {
        match self.recv(deadline)? {
            Some(m) => {
                self.unsolicited(m, what)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn is_login_prompt(&self, text: &str) -> bool {
        self.profile.login.as_ref().is_some_and(|l| {
            l.user_prompt
                .as_ref()
                .unwrap_or(&l.password_prompt)
                .is_match(self.profile.strip_prompt(text))
        })
    }

    /// Sends `lines` (at once) and reads until the answer ends or `until.expect`
    /// matches.
    pub(super) fn exchange(
        &mut self,
        lines: &[String],
        shown: &[String],
        raw: bool,
        until: &Until,
    ) -> Result<Ended, DriverError> {
        let partial_at_send = self.partial.clone();
        for (l, s) in lines.iter().zip(shown) {
            self.send(l, !raw, s)?;
        }
        self.read_answer(until, &partial_at_send)
    }

    /// Reads one answer: up to its status line (on a console without a prompt), or
    /// up to the prompt after it; or up to what `until.expect` waits for.
    fn read_answer(&mut self, until: &Until, partial_at_send: &str) -> Result<Ended, DriverError> {
        let mut a = Reading::default();
        let ended = self.read_answer_into(until, partial_at_send, &mut a);
        if a.data_cut > 0 {
            self.note(&format!(
                "the answer to {} had {} more data line(s) past {} MiB: not kept",
                until.op,
                a.data_cut,
                MAX_DATA_BYTES >> 20
            ));
        }
        ended
    }

    fn read_answer_into(
        &mut self,
        until: &Until,
        partial_at_send: &str,
        a: &mut Reading,
    ) -> Result<Ended, DriverError> {
        loop {
            let deadline = a
                .quiet_until
                .map_or(until.deadline, |q| q.min(until.deadline));
            let msg = match self.recv(deadline)? {
                Some(m) => m,
                // A prompt before the echo, and nothing after it: the answer's end.
                None if a.prompt_at.is_some() => {
                    let at = a.prompt_at.take().unwrap_or_else(Instant::now);
                    a.quiet_until = None;
                    let new = self
                        .partial
                        .get(self.partial_used..)
                        .unwrap_or("")
                        .to_string();
                    match self.answer_at_prompt(at, until, new, a)? {
                        Next::Answered => return Ok(Ended::Answer(a.answer())),
                        _ => continue,
                    }
                }
                None if a.quiet_until.is_some() && a.status.is_some() => {
                    return Ok(Ended::Answer(a.answer()));
                }
                None => return Err(self.no_answer(until, &a.heard, false, a.replies > 0)),
            };
            // Something came after a prompt seen before the echo: it was a redraw.
            if a.prompt_at.take().is_some() {
                a.quiet_until = None;
            }
            let step = match msg {
                ReadMsg::Line { text, at, escapes } => {
                    let line = self.take_line(&text, at, escapes);
                    // An event line is not the device answering (it may redraw its
                    // prompt after it before it has read the command).
                    if !self.profile.event.is_match(&line) {
                        a.lines_since += 1;
                    }
                    self.answer_line(line, at, until, a)?
                }
                ReadMsg::Partial { text, at } => {
                    self.answer_partial(text, at, until, partial_at_send, a)?
                }
                ReadMsg::Closed(why) => {
                    self.closed = Some(why.clone());
                    return Err(DriverError::Link(format!("{} closed: {why}", self.name)));
                }
            };
            match step {
                Next::More => {}
                Next::Answered => return Ok(Ended::Answer(a.answer())),
                Next::Expected => return Ok(Ended::Expected(std::mem::take(&mut a.data))),
            }
        }
    }

    /// One line of an answer: echo, event, continuation of a refusal, what a step
    /// waits for, a status line, or data.
    fn answer_line(
        &mut self,
        line: String,
        at: Instant,
        until: &Until,
        a: &mut Reading,
    ) -> Result<Next, DriverError> {
        let p = Arc::clone(&self.profile);
        if self.crash_line(&line) {
            self.traced(at, ConsoleDir::D, &line, "crash", "crash.pattern");
            return Err(self.crashed(until.op, &line));
        }
        if line.trim().is_empty() {
            self.traced(at, ConsoleDir::D, &line, "blank", "");
            return Ok(Next::More);
        }
        if self.is_echo(&line) {
            self.traced(at, ConsoleDir::D, &line, "echo", "echo");
            a.hear(line);
            return Ok(Next::More);
        }
        a.hear(line.clone());
        a.replies += 1;
        if p.event.is_match(&line) {
            self.traced(at, ConsoleDir::D, &line, "event", "status.event");
            self.push_event(line);
            return Ok(Next::More);
        }
        if a.collecting && p.continuation.as_ref().is_some_and(|c| c.is_match(&line)) {
            self.traced(
                at,
                ConsoleDir::D,
                &line,
                "continuation",
                "status.continuation",
            );
            if let Some(Status::Err { detail, .. }) = a.status.as_mut() {
                if detail.len() < MAX_DETAIL_BYTES {
                    if !detail.is_empty() {
                        detail.push('\n');
                    }
                    detail.push_str(&capped::cut_line(line.trim(), MAX_DETAIL_BYTES));
                }
            }
            if p.prompt.is_none() {
                a.quiet_until = Some(Instant::now() + CONTINUATION_QUIET);
            }
            return Ok(Next::More);
        }
        a.collecting = false;
        if until.expect.is_some_and(|e| e.is_match(&line)) {
            self.traced(at, ConsoleDir::D, &line, "expected", "commands (expect)");
            return Ok(Next::Expected);
        }
        if a.status.is_none() {
            if let Some(next) = self.status_line(&line, at, until, a) {
                return Ok(next);
            }
        }
        let field = self.answer_field(&line);
        let class = if field.is_empty() {
            "unmatched"
        } else {
            "data"
        };
        self.traced(at, ConsoleDir::D, &line, class, field);
        a.keep_data(line);
        Ok(Next::More)
    }

    /// A status line (error, success, or a job start that is the status), if `line`
    /// is one: what the read does next.
    fn status_line(
        &mut self,
        line: &str,
        at: Instant,
        until: &Until,
        a: &mut Reading,
    ) -> Option<Next> {
        let p = Arc::clone(&self.profile);
        let end = if p.prompt.is_none() {
            Next::Answered
        } else {
            Next::More
        };
        if let Some(c) = p.error.captures(line) {
            self.traced(at, ConsoleDir::D, line, "status error", "status.error");
            let class = c
                .name("class")
                .map_or(p.error_class.clone(), |m| p.spec_class(m.as_str()));
            let detail = c
                .name("detail")
                .map_or_else(|| line.trim().to_string(), |m| m.as_str().to_string());
            a.status = Some(Status::Err { class, detail });
            if p.continuation.is_some() {
                a.collecting = true;
                if p.prompt.is_none() {
                    a.quiet_until = Some(Instant::now() + CONTINUATION_QUIET);
                }
                return Some(Next::More);
            }
            return Some(end);
        }
        let ok = p.ok.as_ref().is_some_and(|r| r.is_match(line));
        let started = until.trigger && p.job_started_is_status && p.job_started.is_match(line);
        if !ok && !started {
            return None;
        }
        if started {
            a.keep_data(line.to_string());
        }
        let field = if ok {
            "status.ok"
        } else {
            "answers.job_started"
        };
        self.traced(at, ConsoleDir::D, line, "status ok", field);
        a.status = Some(Status::Ok);
        Some(end)
    }

    /// A line the device has not ended, during an answer: a pager to turn, what a
    /// step waits for, the prompt that ends the answer, or a login prompt (the
    /// device restarted).
    fn answer_partial(
        &mut self,
        text: String,
        at: Instant,
        until: &Until,
        partial_at_send: &str,
        a: &mut Reading,
    ) -> Result<Next, DriverError> {
        let p = Arc::clone(&self.profile);
        let new = self.take_partial(text);
        if let Some(pg) = p.paging.as_ref().filter(|pg| pg.more.is_match(&new)) {
            self.use_partial(at, "pager", "paging.more");
            self.send(&pg.send, false, &format!("<pager: {:?}>", pg.send))?;
            return Ok(Next::More);
        }
        if until
            .expect
            .is_some_and(|e| e.is_match(p.strip_prompt(&new)))
        {
            self.use_partial(at, "expected", "commands (expect)");
            return Ok(Next::Expected);
        }
        if let Some((answer, raw)) = self.question(&new) {
            self.use_partial(at, "question", "[[questions]]");
            self.send(&answer, !raw, &answer)?;
            return Ok(Next::More);
        }
        // A prompt after the command was sent (a new line, or a longer line).
        let fresh = a.lines_since > 0 || self.partial != partial_at_send;
        if self.at_prompt && fresh {
            // On a console that echoes, the prompt that ends the answer comes after
            // the echo of the command; one before it may be a prompt redrawn after an
            // event. It ends the answer only if nothing follows it for a moment.
            let echoing = self.profile.echo == Echo::On
                || (self.profile.echo == Echo::Auto && self.echo_seen);
            if echoing && !self.pending_echo.is_empty() {
                a.prompt_at = Some(at);
                a.quiet_until = Some(Instant::now() + ECHO_GRACE);
                return Ok(Next::More);
            }
            return self.answer_at_prompt(at, until, new, a);
        }
        if p.login.is_some() && self.is_login_prompt(&new) {
            self.use_partial(at, "login", "login.user_prompt");
            return Err(self.relogin(until.op, "asked for a login in the middle of an answer"));
        }
        Ok(Next::More)
    }

    /// The prompt has shown after the command: the answer ends (a success if no
    /// status line came and the profile has no success word).
    fn answer_at_prompt(
        &mut self,
        at: Instant,
        until: &Until,
        new: String,
        a: &mut Reading,
    ) -> Result<Next, DriverError> {
        self.use_partial(at, "prompt", "prompt");
        self.at_prompt = true;
        if until.expect.is_some() {
            if matches!(a.status, Some(Status::Err { .. })) {
                // Refused before it could ask what the step waits for.
                return Ok(Next::Answered);
            }
            a.hear(new);
            return Err(self.no_answer(until, &a.heard, true, true));
        }
        if a.status.is_none() {
            if self.profile.ok.is_some() {
                return Err(self.no_answer(until, &a.heard, true, true));
            }
            a.status = Some(Status::Ok);
        }
        Ok(Next::Answered)
    }

    /// Which answer pattern a data line matches, for the trace.
    fn answer_field(&self, line: &str) -> &'static str {
        let p = &self.profile;
        if p.value.is_match(line) {
            "answers.value"
        } else if p.job_started.is_match(line) {
            "answers.job_started"
        } else if p.job_state.is_match(line) {
            "answers.job_state"
        } else if p.recipient.is_match(line) {
            "answers.recipient"
        } else if p.clock_answer.as_ref().is_some_and(|r| r.is_match(line)) {
            "answers.clock"
        } else {
            ""
        }
    }

    /// The read ended without an answer the profile can read: a silent device, or a
    /// profile that does not fit what it said.
    fn no_answer(
        &mut self,
        until: &Until,
        heard: &[String],
        prompt_seen: bool,
        replied: bool,
    ) -> DriverError {
        let partial = self
            .partial
            .get(self.partial_used..)
            .unwrap_or("")
            .to_string();
        // Only its own echo, or nothing at all: a silent device.
        if !replied && partial.trim().is_empty() && !prompt_seen {
            return self.silent(
                until.op,
                &format!("gave no answer to {:?}", until.sent.join(" / ")),
            );
        }
        if !partial.trim().is_empty() {
            // Show what it waits at.
            self.record_at(Instant::now(), ConsoleDir::D, &partial);
        }
        let heard: Vec<String> = heard.iter().map(|l| self.redact(l)).collect();
        let seen = Seen {
            op: until.op,
            sent: &until.sent,
            lines: &heard,
            raw_escapes: self.profile.ansi == super::term::Ansi::Keep && self.escapes_seen,
            partial: &self.redact(&partial),
            prompt_seen,
            trigger: until.trigger,
        };
        let mut m = diagnose::diagnose(&self.profile, &seen);
        if let Some(e) = until.expect {
            if prompt_seen {
                m.what = format!(
                    "{}; it showed its prompt instead of what the step waits for (/{}/)",
                    m.what,
                    e.as_str()
                );
            }
        }
        DriverError::Profile(m)
    }

    /// The device said nothing: a hang. With a `power_cycle` the device is
    /// power-cycled and waited for, and the case is a crash; without, a timeout.
    fn silent(&mut self, op: &str, what: &str) -> DriverError {
        let has_cycle = self
            .profile
            .crash
            .as_ref()
            .is_some_and(|c| c.power_cycle.is_some());
        let msg = format!(
            "{}: {op}: {what} within {} ms",
            self.name, self.profile.timeouts.command_ms
        );
        if !has_cycle {
            return DriverError::Timeout(msg);
        }
        self.note(&format!("no answer ({what}): power-cycling the device"));
        match self.power_cycle().and_then(|_| self.await_boot(op)) {
            Ok(()) => DriverError::Crash(format!("{msg}; the device hung and was power-cycled")),
            Err(e) => DriverError::Crash(format!("{msg}; power-cycled, but: {e}")),
        }
    }

    /// The device printed its crash banner: wait for it to boot (power-cycling it if
    /// it does not), log in again, and report the crash.
    pub(super) fn crashed(&mut self, op: &str, banner: &str) -> DriverError {
        self.note(&format!("the device crashed during {op}: {banner:?}"));
        let came_back = self.await_boot(op).or_else(|e| {
            let has_cycle = self
                .profile
                .crash
                .as_ref()
                .is_some_and(|c| c.power_cycle.is_some());
            if has_cycle {
                self.note(&format!("{e}: power-cycling the device"));
                self.power_cycle().and_then(|_| self.await_boot(op))
            } else {
                Err(e)
            }
        });
        match came_back {
            Ok(()) => {
                DriverError::Crash(format!("{op}: the device crashed ({banner}) and rebooted"))
            }
            Err(e) => DriverError::Crash(format!("{op}: the device crashed ({banner}) and {e}")),
        }
    }

    /// The device asked for a login where it should not: it rebooted (or its session
    /// ended). Logs in again and reports it as a crash.
    fn relogin(&mut self, op: &str, what: &str) -> DriverError {
        self.note(&format!("the device {what} during {op}: it restarted"));
        let r = match self.profile.login.clone() {
            Some(l) => self.login(&l, true),
            None => Ok(()),
        }
        .and_then(|_| self.session_setup());
        match r {
            Ok(()) => DriverError::Crash(format!("{op}: the device {what} (it restarted)")),
            Err(e) => DriverError::Crash(format!(
                "{op}: the device {what}, and logging in again failed: {e}"
            )),
        }
    }

    /// Runs the profile's `power_cycle` command on this host.
    fn power_cycle(&mut self) -> Result<(), String> {
        let Some(cmd) = self
            .profile
            .crash
            .as_ref()
            .and_then(|c| c.power_cycle.clone())
        else {
            return Err("no power_cycle in the profile".into());
        };
        let pid = self.pid.map(|p| p.to_string()).unwrap_or_default();
        let endpoint = self.name.clone();
        let line = super::profile::template::fill(&cmd, |n| match n {
            "pid" => Some(pid.clone()),
            "endpoint" => Some(endpoint.clone()),
            _ => None,
        });
        self.note(&format!("power cycle: {line}"));
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .map_err(|e| format!("cannot run the power_cycle command {line:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the power_cycle command {line:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// A step restarted the device on purpose (a factory reset that reboots it):
    /// waits for it to come back, logs in again and types the session set-up.
    pub(super) fn after_reboot(&mut self, op: &str) -> Result<(), DriverError> {
        self.note(&format!("{op}: the device restarts"));
        self.await_boot(op).map_err(|e| {
            DriverError::Timeout(format!(
                "{}: {op}: after its restart the device {e}",
                self.name
            ))
        })
    }

    /// Waits for the device to come back after a crash or a power cycle (see
    /// [`Console::await_up`]), then types the profile's `session_setup`.
    fn await_boot(&mut self, op: &str) -> Result<(), String> {
        self.await_up(op)?;
        self.session_setup()
            .map_err(|e| format!("came back, but {e}"))
    }

    /// Waits for the device's boot line, its login prompt (answered) or its command
    /// prompt.
    fn await_up(&mut self, op: &str) -> Result<(), String> {
        let (boot, boot_ms) = match &self.profile.crash {
            Some(c) => (c.boot.clone(), c.boot_ms),
            None => (None, 60_000),
        };
        let deadline = Instant::now() + Duration::from_millis(boot_ms);
        self.pending_echo.clear();
        loop {
            let m = match self.recv(deadline) {
                Ok(Some(m)) => m,
                Ok(None) => return Err(format!("did not come back within {boot_ms} ms")),
                Err(e) => return Err(e.to_string()),
            };
            match m {
                ReadMsg::Line { text, at, escapes } => {
                    let line = self.take_line(&text, at, escapes);
                    if boot.as_ref().is_some_and(|b| b.is_match(&line)) {
                        self.traced(at, ConsoleDir::D, &line, "boot", "crash.boot");
                        if self.profile.login.is_none() {
                            return Ok(());
                        }
                    }
                }
                ReadMsg::Partial { text, at } => {
                    let new = self.take_partial(text);
                    if self.is_login_prompt(&new) {
                        self.use_partial(at, "login", "login.user_prompt");
                        let Some(l) = self.profile.login.clone() else {
                            return Ok(());
                        };
                        return self.login(&l, true).map_err(|e| e.to_string());
                    }
                    if self.at_prompt {
                        self.use_partial(at, "prompt", "prompt");
                        self.at_prompt = true;
                        return Ok(());
                    }
                }
                ReadMsg::Closed(why) => {
                    self.closed = Some(why.clone());
                    return Err(format!(
                        "the link closed while waiting for {op}'s reboot: {why}"
                    ));
                }
            }
        }
    }

    /// On opening: whatever the device said before we came (old events, a prompt) is
    /// not ours, but a login prompt among it is answered; a console showing its
    /// command prompt is logged in already (a serial console keeps its session when
    /// the harness reconnects).
    fn greet(&mut self) -> Result<(), DriverError> {
        let login = self.profile.login.clone();
        let mut asked = false;
        let give_up = Instant::now() + Duration::from_millis(self.profile.timeouts.startup_ms);
        // Until the device has been quiet for 50 ms (or the startup time is over).
        while Instant::now() < give_up {
            let Some(m) = self.recv(Instant::now() + Duration::from_millis(50))? else {
                break;
            };
            match m {
                ReadMsg::Line { text, at, escapes } => {
                    let line = self.take_line(&text, at, escapes);
                    asked = false;
                    if self.profile.event.is_match(&line) {
                        self.traced(at, ConsoleDir::D, &line, "event", "status.event");
                        self.push_event(line);
                    } else {
                        self.traced(at, ConsoleDir::D, &line, "greeting", "");
                    }
                }
                ReadMsg::Partial { text, at } => {
                    let new = self.take_partial(text);
                    asked = self.is_login_prompt(&new);
                    if asked {
                        self.use_partial(at, "login", "login.user_prompt");
                    } else if self.at_prompt {
                        self.use_partial(at, "prompt", "prompt");
                        self.at_prompt = true;
                    }
                }
                // `recv` turns a closed link into an error.
                ReadMsg::Closed(_) => {}
            }
        }
        if let Some(login) = login {
            if !self.at_prompt {
                self.login(&login, asked)?;
            }
        }
        self.session_setup()
    }

    /// The profile's login step: answers the user prompt (if the console asks for a
    /// user), then the password prompt (the password masked in the log). `seen`: the
    /// device showed its first login prompt last already.
    pub(super) fn login(&mut self, login: &Login, seen: bool) -> Result<(), DriverError> {
        self.add_secret(&login.password);
        let wait = Duration::from_millis(self.profile.timeouts.command_ms);
        let (first, field) = match &login.user_prompt {
            Some(u) => (u.clone(), "login.user_prompt"),
            None => (login.password_prompt.clone(), "login.password_prompt"),
        };
        if !seen {
            match self.await_login_prompt(&first, wait, true)? {
                Waited::Prompt => {}
                Waited::Ready => return Ok(()),
                Waited::Nothing => {
                    // Some consoles show their login prompt only after a key press;
                    // one that answers it with its command prompt is logged in.
                    self.send("", true, "")?;
                    match self.await_login_prompt(&first, wait, true)? {
                        Waited::Prompt => {}
                        Waited::Ready => return Ok(()),
                        Waited::Nothing => {
                            return Err(DriverError::Timeout(format!(
                                "{} showed no login prompt matching {field} {:?}",
                                self.name,
                                first.as_str()
                            )))
                        }
                    }
                }
            }
        }
        if login.user_prompt.is_some() {
            self.send(&login.user, true, &login.user)?;
            if !matches!(
                self.await_login_prompt(&login.password_prompt, wait, false)?,
                Waited::Prompt
            ) {
                return Err(DriverError::Timeout(format!(
                    "{} showed no password prompt matching login.password_prompt {:?}",
                    self.name,
                    login.password_prompt.as_str()
                )));
            }
        }
        self.send(&login.password, true, "***")?;
        self.pending_echo.clear();
        // A console that asks again refused the login.
        let settle = Duration::from_millis(self.profile.timeouts.command_ms.min(500));
        let again = match self.await_login_prompt(&first, settle, true)? {
            Waited::Prompt => true,
            Waited::Ready | Waited::Nothing => {
                self.await_login_prompt(&login.password_prompt, Duration::ZERO, false)?
                    == Waited::Prompt
            }
        };
        if again {
            return Err(DriverError::Refused(format!(
                "{} refused the login{} (it asked again)",
                self.name,
                if login.user.is_empty() {
                    String::new()
                } else {
                    format!(" as {:?}", login.user)
                }
            )));
        }
        Ok(())
    }

    /// Types the profile's `session_setup` (turn paging off, enter a privileged
    /// mode), if it has one: once the console is open, and after a reboot.
    fn session_setup(&mut self) -> Result<(), DriverError> {
        if self.profile.template("session_setup").is_none() {
            return Ok(());
        }
        self.op_ok("session_setup", &[], &[]).map(|_| ())
    }

    /// A question of `[[questions]]` that `text` (a line not ended yet) asks: what to
    /// send, and whether without a line ending.
    fn question(&self, text: &str) -> Option<(String, bool)> {
        self.profile
            .questions
            .iter()
            .find(|q| q.expect.is_match(text))
            .map(|q| (q.send.clone(), q.raw))
    }

    /// Waits up to `wait` for a line, or a line not yet ended, matching `prompt`;
    /// with `ready_too` also stops at the command prompt.
    fn await_login_prompt(
        &mut self,
        prompt: &Regex,
        wait: Duration,
        ready_too: bool,
    ) -> Result<Waited, DriverError> {
        let deadline = Instant::now() + wait;
        loop {
            let m = match self.recv(deadline) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(Waited::Nothing),
                Err(e) => {
                    return Err(DriverError::Link(format!(
                        "{} during the login: {e}",
                        self.name
                    )))
                }
            };
            match m {
                ReadMsg::Line { text, at, escapes } => {
                    let line = self.take_line(&text, at, escapes);
                    if prompt.is_match(&line) {
                        self.traced(at, ConsoleDir::D, &line, "login", "login");
                        return Ok(Waited::Prompt);
                    }
                    if self.is_echo(&line) {
                        self.traced(at, ConsoleDir::D, &line, "echo", "echo");
                        continue;
                    }
                    if self.profile.event.is_match(&line) {
                        self.traced(at, ConsoleDir::D, &line, "event", "status.event");
                        self.push_event(line);
                    } else {
                        self.traced(at, ConsoleDir::D, &line, "login", "");
                    }
                }
                ReadMsg::Partial { text, at } => {
                    let new = self.take_partial(text);
                    if prompt.is_match(self.profile.strip_prompt(&new)) && !new.trim().is_empty() {
                        self.use_partial(at, "login", "login");
                        return Ok(Waited::Prompt);
                    }
                    if ready_too && self.at_prompt {
                        self.use_partial(at, "prompt", "prompt");
                        self.at_prompt = true;
                        return Ok(Waited::Ready);
                    }
                }
                ReadMsg::Closed(why) => {
                    self.closed = Some(why.clone());
                    return Err(DriverError::Link(format!(
                        "{} closed during the login: {why}",
                        self.name
                    )));
                }
            }
        }
    }
}

/// What a wait during the login saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// The prompt waited for.
    Prompt,
    /// The command prompt: the console is logged in already.
    Ready,
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hil_oracle::model::Key;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn sim_text() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/sim.toml"
        ))
        .expect("sim.toml")
    }

    /// The reference profile with a `[login]`.
    fn profile() -> Arc<Profile> {
        let text = sim_text()
            + "\n[login]\nuser_prompt = '^login: ?$'\npassword_prompt = '^Password: ?$'\nuser = \"admin\"\npassword = \"Adm1n-secret\"\n";
        Arc::new(Profile::parse("login.toml", &text).expect("valid profile"))
    }

    /// A console that prints `login: ` and `Password: ` without a newline, takes
    /// admin / Adm1n-secret (asking again otherwise), then answers `get KEY`.
    fn fake_console() -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::new(s);
            let mut line = String::new();
            loop {
                let _ = w.write_all(b"Welcome\r\nlogin: ");
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let user = line.trim().to_string();
                let _ = w.write_all(b"Password: ");
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if user == "admin" && line.trim() == "Adm1n-secret" {
                    break;
                }
                let _ = w.write_all(b"Login incorrect\r\n");
            }
            let _ = w.write_all(b"ready\r\n");
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(k) = line.trim().strip_prefix("get ") {
                    let _ = w.write_all(format!("{k}=60\r\nOK\r\n").as_bytes());
                }
            }
        });
        addr
    }

    #[test]
    fn the_login_step_is_performed_and_the_password_masked() {
        let addr = fake_console();
        let mut c = Console::open(&Endpoint::Tcp { addr }, profile()).expect("logged in");
        assert_eq!(c.get(Key::SmtpTimeout).expect("get"), "60");
        let log = c.take_log();
        let text: Vec<String> = log
            .iter()
            .map(|l| format!("{:?} {}", l.dir, l.text))
            .collect();
        assert!(text.contains(&"H admin".to_string()), "{text:#?}");
        assert!(text.contains(&"H ***".to_string()), "{text:#?}");
        assert!(
            !text.iter().any(|l| l.contains("Adm1n-secret")),
            "{text:#?}"
        );
    }

    #[test]
    fn a_console_asking_for_a_password_only_is_logged_in() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::new(s);
            let mut line = String::new();
            loop {
                let _ = w.write_all(b"Password: ");
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line.trim() == "s3cret" {
                    break;
                }
            }
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(k) = line.trim().strip_prefix("get ") {
                    let _ = w.write_all(format!("{k}=30\r\nOK\r\n").as_bytes());
                }
            }
        });
        let text =
            sim_text() + "\n[login]\npassword_prompt = '^Password: ?$'\npassword = \"s3cret\"\n";
        let p = Arc::new(Profile::parse("pw.toml", &text).expect("valid profile"));
        let mut c = Console::open(&Endpoint::Tcp { addr }, p).expect("logged in");
        assert_eq!(c.get(Key::SmtpTimeout).expect("get"), "30");
        assert!(c.take_log().iter().all(|l| !l.text.contains("s3cret")));
    }

    #[test]
    fn a_console_whose_lines_end_in_cr_alone() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::new(s);
            let mut line = Vec::new();
            loop {
                line.clear();
                if r.read_until(b'\r', &mut line).unwrap_or(0) == 0 {
                    return;
                }
                let text = String::from_utf8_lossy(&line).trim().to_string();
                if let Some(k) = text.strip_prefix("get ") {
                    let _ = w.write_all(format!("{k}=25\rOK\r").as_bytes());
                }
            }
        });
        let text = sim_text().replace(
            "line_ending = \"\\r\\n\"",
            "line_ending = \"\\r\"\ndevice_line_ending = \"cr\"",
        );
        let p = Arc::new(Profile::parse("cr.toml", &text).expect("valid profile"));
        assert!(p.cr_ends_line);
        let mut c = Console::open(&Endpoint::Tcp { addr }, p).expect("open");
        assert_eq!(c.get(Key::SmtpPort).expect("get"), "25");
    }

    #[test]
    fn a_telnet_console_negotiates_and_its_commands_stay_out_of_the_text() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::new(s);
            // IAC WILL ECHO, IAC DO TERMINAL-TYPE, then a greeting line.
            let _ = w.write_all(&[255, 251, 1, 255, 253, 24]);
            let _ = w.write_all(b"Welcome\r\n");
            let mut line = Vec::new();
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    return;
                }
                let text: String = String::from_utf8_lossy(&line)
                    .chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .collect();
                if let Some(k) = text.find("get ").map(|i| &text[i + 4..]) {
                    // A telnet command in the middle of the answer.
                    let _ = w.write_all(format!("{k}=25\r\n").as_bytes());
                    let _ = w.write_all(&[255, 241]);
                    let _ = w.write_all(b"OK\r\n");
                }
            }
        });
        let ep = Endpoint::parse(&format!("telnet:{addr}")).expect("endpoint");
        let mut c = Console::open(
            &ep,
            Arc::new(Profile::parse("sim.toml", &sim_text()).expect("profile")),
        )
        .expect("open");
        assert_eq!(c.get(Key::SmtpPort).expect("get"), "25");
        let log: Vec<String> = c.take_log().iter().map(|l| l.text.clone()).collect();
        assert!(
            log.iter()
                .all(|l| !l.contains('\u{fffd}') && !l.contains("\\x")),
            "{log:#?}"
        );
    }

    #[test]
    fn a_refused_login_is_an_error() {
        let addr = fake_console();
        let text = sim_text()
            + "\n[login]\nuser_prompt = '^login: ?$'\npassword_prompt = '^Password: ?$'\nuser = \"admin\"\npassword = \"wrong\"\n";
        let p = Arc::new(Profile::parse("login.toml", &text).expect("valid profile"));
        let e = Console::open(&Endpoint::Tcp { addr }, p)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("refused the login"), "{e}");
    }

    /// A reference console that answers each command after `pause`, and first sends
    /// `stale` (a line no command asked for) after `reset`'s answer.
    fn slow_console(stale: &'static str, pause: Duration) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::new(s);
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                std::thread::sleep(pause);
                let cmd = line.trim();
                let answer = if cmd == "reset" {
                    format!("OK\r\n{stale}\r\n")
                } else if let Some(k) = cmd.strip_prefix("get ") {
                    format!("{k}=25\r\nOK\r\n")
                } else if cmd.starts_with("user add") {
                    "ERR config user add: no such thing\r\n".to_string()
                } else {
                    "OK\r\n".to_string()
                };
                // A line in two writes, some time apart.
                let (a, b) = answer.split_at(answer.len() / 2);
                let _ = w.write_all(a.as_bytes());
                std::thread::sleep(Duration::from_millis(30));
                let _ = w.write_all(b.as_bytes());
            }
        });
        addr
    }

    fn reference() -> Arc<Profile> {
        Arc::new(Profile::parse("sim.toml", &sim_text()).expect("valid profile"))
    }

    #[test]
    fn a_line_left_unread_is_drained_and_logged_before_the_next_command() {
        let addr = slow_console("ERR config left over from before", Duration::ZERO);
        let mut c = Console::open(&Endpoint::Tcp { addr }, reference()).expect("open");
        c.op_ok("reset", &[], &[]).expect("reset");
        std::thread::sleep(Duration::from_millis(100));
        // The leftover is not taken for the answer to `get`.
        assert_eq!(c.get(Key::SmtpPort).expect("get"), "25");
        // An error names the command that caused it, not the leftover.
        let e = c
            .op_ok(
                "user_add",
                &[("name", "a"), ("password", "b"), ("address", "c@d")],
                &["password"],
            )
            .map(|a| a.data)
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "user_add was refused: config user add: no such thing"
        );
        let log: Vec<String> = c.take_log().iter().map(|l| l.text.clone()).collect();
        assert!(
            log.iter()
                .any(|l| l.contains("unread before get") && l.contains("left over from before")),
            "{log:#?}"
        );
    }

    #[test]
    fn each_line_is_stamped_when_it_arrives_on_the_callers_clock() {
        let epoch = Instant::now();
        let addr = slow_console("", Duration::from_millis(200));
        let c = Console::open_at(&Endpoint::Tcp { addr }, reference(), epoch);
        let mut c = c.expect("open");
        std::thread::sleep(Duration::from_millis(100));
        c.op_ok("reset", &[], &[]).expect("reset");
        c.get(Key::SmtpPort).expect("get");
        let log = c.take_log();
        let t = |dir: ConsoleDir, text: &str| {
            log.iter()
                .find(|l| l.dir == dir && l.text == text)
                .map(|l| l.t_ms)
                .unwrap_or_else(|| panic!("{text:?} not in {log:#?}"))
        };
        let sent = t(ConsoleDir::H, "reset");
        let ok = t(ConsoleDir::D, "OK");
        let value = t(ConsoleDir::D, "smtp.port=25");
        // Counted from the caller's epoch, not from the open.
        assert!(sent >= 100, "{log:#?}");
        // Each device line at its arrival (the device answers 200 ms after a command).
        assert!(ok >= sent + 200, "{log:#?}");
        assert!(value >= ok + 200, "{log:#?}");
    }
}
