//! The console driver: opens a device's console (serial port or TCP), sends the
//! profile's command templates, reads answers up to the status line, and keeps
//! `EVENT` lines aside for whoever waits on them. Everything said both ways goes into
//! a log with credentials replaced by `***`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::profile::{Login, Profile};
use super::{Endpoint, Flow, Parity};

/// A console problem that is the harness's or the link's, not the device's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    /// The port or connection could not be opened or was lost.
    Link(String),
    /// No status line within the profile's timeout.
    Timeout(String),
    /// An answer did not match what the profile says it looks like.
    Unexpected(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Link(s) => write!(f, "console link: {s}"),
            DriverError::Timeout(s) => write!(f, "console timeout: {s}"),
            DriverError::Unexpected(s) => write!(f, "unexpected console answer: {s}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// The status line of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Status {
    Ok,
    Err { class: String, detail: String },
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
}

/// One line of the console log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleLine {
    pub t_ms: u64,
    pub dir: ConsoleDir,
    pub text: String,
}

/// What a wait during the login saw.
enum Seen {
    /// The prompt waited for.
    Prompt,
    /// The command prompt: the console is logged in already.
    Ready,
    Nothing,
}

enum ReadMsg {
    Line(String),
    /// What the device printed so far of a line it has not ended (a login prompt).
    Partial(String),
    Closed(String),
}

/// Most unclaimed `EVENT` lines kept; the oldest go first.
const MAX_EVENTS: usize = 10_000;

/// Longest line read from a device; longer ones are cut.
const MAX_DEVICE_LINE: usize = 64 * 1024;

/// A driver for one device console.
pub struct Console {
    profile: Arc<Profile>,
    writer: Box<dyn Write + Send>,
    rx: mpsc::Receiver<ReadMsg>,
    events: VecDeque<String>,
    log: Vec<ConsoleLine>,
    secrets: Vec<String>,
    epoch: Instant,
    name: String,
    closed: Option<String>,
    /// How much of the line the device has not ended yet was a prompt answered
    /// already (a console that does not echo goes on on the same line).
    partial_used: usize,
    /// Tells the reader thread to end (it checks between reads).
    stop: Arc<AtomicBool>,
    /// A handle on a TCP link, shut down on drop so that a blocked read ends.
    hangup: Option<TcpStream>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Console {
    /// Ends the reader thread and with it the port or connection it holds: a serial
    /// port must be free again (it is opened exclusively) when the link is reopened.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.hangup.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(h) = self.reader.take() {
            // A serial read returns within its 200 ms timeout; a TCP one at the
            // shutdown above.
            let _ = h.join();
        }
    }
}

fn reader_thread(mut r: Box<dyn Read + Send>, tx: mpsc::Sender<ReadMsg>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match r.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(ReadMsg::Closed("end of stream".into()));
                return;
            }
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' {
                        let text = String::from_utf8_lossy(&line)
                            .trim_end_matches('\r')
                            .to_string();
                        line.clear();
                        if tx.send(ReadMsg::Line(text)).is_err() {
                            return;
                        }
                    } else if line.len() < MAX_DEVICE_LINE {
                        line.push(b);
                    }
                }
                if !line.is_empty() {
                    let text = String::from_utf8_lossy(&line).to_string();
                    if tx.send(ReadMsg::Partial(text)).is_err() {
                        return;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => {
                let _ = tx.send(ReadMsg::Closed(e.to_string()));
                return;
            }
        }
    }
}

/// Why a serial port did not open, in words naming the port: no such device, busy
/// (another process holds it: serialport opens with TIOCEXCL and an exclusive
/// flock), no permission, or the system's own words.
fn serial_open_error(path: &str, name: &str, e: &serialport::Error) -> String {
    match e.kind() {
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => {
            format!("cannot open {name}: no such device {path} (unplugged, or a wrong path?)")
        }
        serialport::ErrorKind::NoDevice => {
            format!("cannot open {name}: {path} is busy: another process has it open ({e})")
        }
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
            format!("cannot open {name}: no permission to open {path} (the dialout group?)")
        }
        _ => format!("cannot open {name}: {e}"),
    }
}

impl Console {
    /// Opens the console at `endpoint` and drains what the device had queued.
    pub fn open(endpoint: &Endpoint, profile: Arc<Profile>) -> Result<Console, DriverError> {
        let name = endpoint.describe();
        let mut hangup = None;
        let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match endpoint {
            Endpoint::Serial { path, line } => {
                let port = serialport::new(path, line.baud)
                    .data_bits(match line.data_bits {
                        5 => serialport::DataBits::Five,
                        6 => serialport::DataBits::Six,
                        7 => serialport::DataBits::Seven,
                        _ => serialport::DataBits::Eight,
                    })
                    .parity(match line.parity {
                        Parity::None => serialport::Parity::None,
                        Parity::Odd => serialport::Parity::Odd,
                        Parity::Even => serialport::Parity::Even,
                    })
                    .stop_bits(if line.stop_bits == 2 {
                        serialport::StopBits::Two
                    } else {
                        serialport::StopBits::One
                    })
                    .flow_control(match line.flow {
                        Flow::None => serialport::FlowControl::None,
                        Flow::RtsCts => serialport::FlowControl::Hardware,
                        Flow::XonXoff => serialport::FlowControl::Software,
                    })
                    .timeout(Duration::from_millis(200))
                    // Exclusive (TIOCEXCL and flock) is the default; said here because
                    // "busy" below depends on it.
                    .open_native()
                    .map_err(|e| DriverError::Link(serial_open_error(path, &name, &e)))?;
                let w = port
                    .try_clone_native()
                    .map_err(|e| DriverError::Link(format!("cannot use {name}: {e}")))?;
                (Box::new(port), Box::new(w))
            }
            Endpoint::Rfc2217 { addr, line } => {
                let (r, w) = super::rfc2217::connect(addr, line).map_err(DriverError::Link)?;
                hangup = w.hangup_handle().ok();
                (Box::new(r), Box::new(w))
            }
            Endpoint::Tcp { addr } => {
                let s = TcpStream::connect(addr)
                    .map_err(|e| DriverError::Link(format!("cannot connect to {name}: {e}")))?;
                let _ = s.set_nodelay(true);
                let w = s
                    .try_clone()
                    .map_err(|e| DriverError::Link(format!("cannot use {name}: {e}")))?;
                hangup = s.try_clone().ok();
                (Box::new(s), Box::new(w))
            }
        };
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("console-in".into())
            .spawn(move || reader_thread(reader, tx, stop_reader))
            .map_err(|e| DriverError::Link(format!("cannot start a reader for {name}: {e}")))?;
        let mut c = Console {
            profile,
            writer,
            rx,
            events: VecDeque::new(),
            log: Vec::new(),
            secrets: Vec::new(),
            epoch: Instant::now(),
            name,
            closed: None,
            partial_used: 0,
            stop,
            hangup,
            reader: Some(handle),
        };
        // Whatever the device said before we came (old events, a prompt) is not ours,
        // but a login prompt among it is answered.
        let login = c.profile.login.clone();
        let asks = |text: &str, c: &Console| {
            login
                .as_ref()
                .is_some_and(|l| l.user_prompt.is_match(c.profile.strip_prompt(text)))
        };
        let mut seen = false;
        // A console showing its command prompt is logged in already (a serial
        // console keeps its session when the harness reconnects).
        let mut ready = false;
        loop {
            match c.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ReadMsg::Line(l)) => {
                    c.record(ConsoleDir::D, &l);
                    seen = asks(&l, &c);
                    ready = false;
                    c.partial_used = 0;
                }
                Ok(ReadMsg::Partial(p)) => {
                    seen = asks(&p, &c);
                    ready = c.shows_prompt(&p);
                    if seen {
                        c.record(ConsoleDir::D, &p);
                        c.partial_used = p.len();
                    }
                }
                Ok(ReadMsg::Closed(why)) => {
                    c.closed = Some(why);
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(login) = login {
            if !ready {
                c.login(&login, seen)?;
            }
        }
        Ok(c)
    }

    /// Whether `text`, a line the device has not ended, is its command prompt (one
    /// or more times) and nothing else.
    fn shows_prompt(&self, text: &str) -> bool {
        !self.profile.prompt.is_empty()
            && !text.is_empty()
            && self.profile.strip_prompt(text).is_empty()
    }

    /// The profile's login step: answers the user prompt, then the password prompt
    /// (the password masked in the log). `seen`: the device showed the user prompt
    /// last already.
    fn login(&mut self, login: &Login, seen: bool) -> Result<(), DriverError> {
        self.add_secret(&login.password);
        let wait = Duration::from_millis(self.profile.timeouts.command_ms);
        if !seen && !self.await_prompt(&login.user_prompt, wait)? {
            // Some consoles show their login prompt only after a key press; one
            // that answers it with its command prompt is logged in already.
            self.send_line("", "")?;
            match self.await_seen(&login.user_prompt, wait, true)? {
                Seen::Prompt => {}
                Seen::Ready => return Ok(()),
                Seen::Nothing => {
                    return Err(DriverError::Timeout(format!(
                        "{} showed no login prompt matching login.user_prompt {:?}",
                        self.name,
                        login.user_prompt.as_str()
                    )))
                }
            }
        }
        self.send_line(&login.user, &login.user)?;
        if !self.await_prompt(&login.password_prompt, wait)? {
            return Err(DriverError::Timeout(format!(
                "{} showed no password prompt matching login.password_prompt {:?}",
                self.name,
                login.password_prompt.as_str()
            )));
        }
        self.send_line(&login.password, "***")?;
        // A console that asks again refused the login.
        let settle = Duration::from_millis(self.profile.timeouts.command_ms.min(500));
        if self.await_prompt(&login.user_prompt, settle)?
            || self.await_prompt(&login.password_prompt, Duration::ZERO)?
        {
            return Err(DriverError::Unexpected(format!(
                "{} refused the login as {:?} (it asked again)",
                self.name, login.user
            )));
        }
        Ok(())
    }

    /// Waits up to `wait` for a line, or a line not yet ended, matching `prompt`;
    /// other lines are logged (and events kept).
    fn await_prompt(&mut self, prompt: &regex::Regex, wait: Duration) -> Result<bool, DriverError> {
        Ok(matches!(
            self.await_seen(prompt, wait, false)?,
            Seen::Prompt
        ))
    }

    /// [`Console::await_prompt`]; with `ready_too` also stops at the profile's
    /// command prompt shown alone on a line not yet ended.
    fn await_seen(
        &mut self,
        prompt: &regex::Regex,
        wait: Duration,
        ready_too: bool,
    ) -> Result<Seen, DriverError> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ReadMsg::Line(l)) => {
                    self.record(ConsoleDir::D, &l);
                    let new = l.get(self.partial_used..).unwrap_or(&l);
                    let new = self.profile.strip_prompt(new).to_string();
                    self.partial_used = 0;
                    if prompt.is_match(&new) {
                        return Ok(Seen::Prompt);
                    }
                    if self.profile.event.is_match(&new) {
                        self.push_event(new);
                    }
                }
                Ok(ReadMsg::Partial(p)) => {
                    let new = p.get(self.partial_used..).unwrap_or(&p);
                    if prompt.is_match(self.profile.strip_prompt(new)) {
                        let new = new.to_string();
                        self.record(ConsoleDir::D, &new);
                        self.partial_used = p.len();
                        return Ok(Seen::Prompt);
                    }
                    if ready_too && self.shows_prompt(new) {
                        let new = new.to_string();
                        self.record(ConsoleDir::D, &new);
                        return Ok(Seen::Ready);
                    }
                }
                Ok(ReadMsg::Closed(why)) => {
                    self.closed = Some(why.clone());
                    return Err(DriverError::Link(format!(
                        "{} closed during the login: {why}",
                        self.name
                    )));
                }
                Err(_) => return Ok(Seen::Nothing),
            }
        }
    }

    /// Sends one line (no answer read); `shown` is what the log records.
    fn send_line(&mut self, line: &str, shown: &str) -> Result<(), DriverError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(self.profile.line_ending.as_bytes());
        self.record(ConsoleDir::H, shown);
        self.writer
            .write_all(&bytes)
            .and_then(|_| self.writer.flush())
            .map_err(|e| DriverError::Link(format!("writing to {}: {e}", self.name)))
    }

    /// The profile this console speaks.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Takes the console log recorded so far.
    pub fn take_log(&mut self) -> Vec<ConsoleLine> {
        std::mem::take(&mut self.log)
    }

    fn push_event(&mut self, l: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(l);
    }

    /// Registers a value to be shown as `***` wherever it appears in the log.
    pub fn add_secret(&mut self, s: &str) {
        // The value as sent (quoted, escaped) and as it is.
        for form in [self.profile.quote(s), s.to_string()] {
            if !form.is_empty() && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    fn redact(&self, line: &str) -> String {
        let mut out = line.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    fn record(&mut self, dir: ConsoleDir, text: &str) {
        let text = self.redact(text);
        self.log.push(ConsoleLine {
            t_ms: self.epoch.elapsed().as_millis() as u64,
            dir,
            text,
        });
    }

    fn next_line(&mut self, deadline: Instant, waiting_for: &str) -> Result<String, DriverError> {
        if let Some(why) = &self.closed {
            return Err(DriverError::Link(format!(
                "{} is closed ({why})",
                self.name
            )));
        }
        let msg = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                // A line not yet ended is read when it ends.
                Ok(ReadMsg::Partial(_)) => continue,
                other => break other,
            }
        };
        match msg {
            Ok(ReadMsg::Partial(_)) => Err(DriverError::Unexpected(format!(
                "{} sent an unended line",
                self.name
            ))),
            Ok(ReadMsg::Line(l)) => {
                self.record(ConsoleDir::D, &l);
                // Less a prompt answered already on the same line (a login).
                let new = l.get(self.partial_used..).unwrap_or(&l);
                let new = self.profile.strip_prompt(new).to_string();
                self.partial_used = 0;
                Ok(new)
            }
            Ok(ReadMsg::Closed(why)) => {
                self.closed = Some(why.clone());
                Err(DriverError::Link(format!(
                    "{} closed while waiting for {waiting_for}: {why}",
                    self.name
                )))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(DriverError::Timeout(format!(
                "{} gave no answer to {waiting_for}",
                self.name
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(DriverError::Link(format!("{} reader stopped", self.name)))
            }
        }
    }

    /// Sends one line and reads the answer up to its status line. `shown` is what
    /// the log records instead of `line` (credentials masked).
    pub fn command(&mut self, line: &str, shown: &str) -> Result<Answer, DriverError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(self.profile.line_ending.as_bytes());
        self.record(ConsoleDir::H, shown);
        self.writer
            .write_all(&bytes)
            .and_then(|_| self.writer.flush())
            .map_err(|e| DriverError::Link(format!("writing to {}: {e}", self.name)))?;
        let deadline = Instant::now() + Duration::from_millis(self.profile.timeouts.command_ms);
        let what = format!("{shown:?}");
        let mut data: Vec<String> = Vec::new();
        loop {
            let l = match self.next_line(deadline, &what) {
                // The device answered, but in words the profile does not know.
                Err(DriverError::Timeout(_)) if !data.is_empty() => {
                    let said: Vec<String> = data.iter().map(|l| self.redact(l)).collect();
                    return Err(DriverError::Timeout(format!(
                        "{} answered {what} with {said:?} but no line matched the profile's status.ok {:?} or status.error {:?} within {} ms ([timeouts] command_ms)",
                        self.name,
                        self.profile.ok.as_str(),
                        self.profile.error.as_str(),
                        self.profile.timeouts.command_ms
                    )));
                }
                other => other?,
            };
            if l.is_empty() {
                // A bare prompt or an empty line says nothing.
                continue;
            }
            if self.profile.event.is_match(&l) {
                self.push_event(l);
                continue;
            }
            if self.profile.ok.is_match(&l) {
                return Ok(Answer {
                    data,
                    status: Status::Ok,
                });
            }
            if let Some(c) = self.profile.error.captures(&l) {
                return Ok(Answer {
                    data,
                    status: Status::Err {
                        class: c
                            .name("class")
                            .map(|m| m.as_str().to_string())
                            .unwrap_or_default(),
                        detail: c
                            .name("detail")
                            .map(|m| m.as_str().to_string())
                            .unwrap_or_default(),
                    },
                });
            }
            data.push(l);
        }
    }

    /// Sends the profile's template for `op`. Parameters named in `secret` are
    /// masked in the log; those named in `raw` are sent without quoting.
    pub fn op(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        secret: &[&str],
        raw: &[&str],
    ) -> Result<Answer, DriverError> {
        let line = self
            .profile
            .render(op, params, raw)
            .map_err(|e| DriverError::Unexpected(e.0))?;
        let masked: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| {
                if secret.contains(k) && !v.is_empty() {
                    (*k, "***")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        for (k, v) in params {
            if secret.contains(k) {
                self.add_secret(v);
            }
        }
        let shown = self
            .profile
            .render(op, &masked, raw)
            .map_err(|e| DriverError::Unexpected(e.0))?;
        self.command(&line, &shown)
    }

    /// `op`, requiring `OK`; a refusal becomes an error naming the command.
    pub fn op_ok(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        secret: &[&str],
    ) -> Result<Answer, DriverError> {
        let a = self.op(op, params, secret, &[])?;
        match &a.status {
            Status::Ok => Ok(a),
            Status::Err { class, detail } => Err(DriverError::Unexpected(format!(
                "{op} was refused: {class} {detail}"
            ))),
        }
    }

    /// Imports a CA certificate (PEM) into the device's external store.
    pub fn import_cert(&mut self, pem: &str) -> Result<Answer, DriverError> {
        let pem = pem.trim_end().replace("\r\n", "\n");
        let line = self
            .profile
            .render("cert_import", &[("pem", &pem)], &["pem"])
            .map_err(|e| DriverError::Unexpected(e.0))?
            .replace('\n', &self.profile.line_ending);
        self.command(&line, "cert import <PEM>")
    }

    /// Reads one setting.
    pub fn get(&mut self, key: &str) -> Result<String, DriverError> {
        let dk = self.profile.device_key(key).to_string();
        let a = self.op_ok("get", &[("key", &dk)], &[])?;
        for l in &a.data {
            if let Some(c) = self.profile.value.captures(l) {
                if c.name("key").map(|m| m.as_str()) == Some(dk.as_str()) {
                    let v = c.name("value").map(|m| m.as_str()).unwrap_or("");
                    return Ok(self.profile.unquote(v));
                }
            }
        }
        Err(DriverError::Unexpected(format!(
            "get {dk}: no value line in {:?}",
            a.data
        )))
    }

    /// Applies settings all at once (SPEC keys; the profile maps them).
    pub fn apply(
        &mut self,
        pairs: &[(String, String)],
        secret_keys: &[&str],
    ) -> Result<Answer, DriverError> {
        let mut parts = Vec::new();
        let mut shown = Vec::new();
        for (k, v) in pairs {
            let dk = self.profile.device_key(k).to_string();
            let pair = self.profile.render_pair(&dk, v);
            if secret_keys.contains(&k.as_str()) && !v.is_empty() {
                self.add_secret(v);
                shown.push(self.profile.render_pair(&dk, "***"));
            } else {
                shown.push(pair.clone());
            }
            parts.push(pair);
        }
        let sep = self.profile.apply_separator.clone();
        let line = self
            .profile
            .render("apply", &[("pairs", &parts.join(&sep))], &["pairs"])
            .map_err(|e| DriverError::Unexpected(e.0))?;
        let shown = self
            .profile
            .render("apply", &[("pairs", &shown.join(&sep))], &["pairs"])
            .map_err(|e| DriverError::Unexpected(e.0))?;
        self.command(&line, &shown)
    }

    /// Starts a job with the operation `op` and its parameters.
    pub fn trigger(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
    ) -> Result<TriggerAnswer, DriverError> {
        let a = self.op(op, params, &[], &[])?;
        match a.status {
            Status::Err { class, detail } => Ok(TriggerAnswer::Refused { class, detail }),
            Status::Ok => {
                for l in &a.data {
                    if let Some(id) = self
                        .profile
                        .job_started
                        .captures(l)
                        .and_then(|c| c.name("id"))
                        .and_then(|m| m.as_str().parse().ok())
                    {
                        return Ok(TriggerAnswer::Job(id));
                    }
                }
                Err(DriverError::Unexpected(format!(
                    "{op}: no job number in {:?}",
                    a.data
                )))
            }
        }
    }

    fn match_end(&self, line: &str, id: u64) -> Option<JobEnd> {
        let p = &self.profile;
        if let Some(c) = p.job_done.captures(line) {
            if c.name("id").map(|m| m.as_str()) == Some(id.to_string().as_str()) {
                return Some(JobEnd::Done);
            }
        }
        if let Some(c) = p.job_failed.captures(line) {
            if c.name("id").map(|m| m.as_str()) == Some(id.to_string().as_str()) {
                return Some(JobEnd::Failed {
                    class: c
                        .name("class")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    detail: c
                        .name("detail")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        None
    }

    /// Waits for the event that ends job `id`, for at most `limit`.
    pub fn wait_job(&mut self, id: u64, limit: Duration) -> Result<JobEnd, DriverError> {
        if let Some(pos) = self
            .events
            .iter()
            .position(|e| self.match_end(e, id).is_some())
        {
            let e = self.events.remove(pos).unwrap_or_default();
            if let Some(end) = self.match_end(&e, id) {
                return Ok(end);
            }
        }
        let deadline = Instant::now() + limit;
        // Lines seen meanwhile (the last few), for the message if none ends the job.
        let mut seen: VecDeque<String> = VecDeque::new();
        loop {
            let l = match self.next_line(deadline, &format!("the end of job {id}")) {
                Err(DriverError::Timeout(_)) if !seen.is_empty() => {
                    let said: Vec<String> = seen.iter().map(|l| self.redact(l)).collect();
                    return Err(DriverError::Timeout(format!(
                        "{} said {said:?} while job {id} ran, but no line matched the profile's events.job_done {:?} or events.job_failed {:?} within {} ms",
                        self.name,
                        self.profile.job_done.as_str(),
                        self.profile.job_failed.as_str(),
                        limit.as_millis()
                    )));
                }
                other => other?,
            };
            if let Some(end) = self.match_end(&l, id) {
                return Ok(end);
            }
            if !l.is_empty() {
                if seen.len() >= 5 {
                    seen.pop_front();
                }
                seen.push_back(l.clone());
            }
            if self.profile.event.is_match(&l) {
                self.push_event(l);
            }
        }
    }

    /// Reads the device's report of job `id`.
    pub fn job_report(&mut self, id: u64) -> Result<JobReport, DriverError> {
        let ids = id.to_string();
        let a = self.op_ok("job", &[("id", &ids)], &[])?;
        let p = Arc::clone(&self.profile);
        let mut report: Option<JobReport> = None;
        let mut recipients = Vec::new();
        for l in &a.data {
            if let Some(c) = p.job_state.captures(l) {
                report = Some(JobReport {
                    state: c
                        .name("state")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    class: c.name("class").map(|m| m.as_str().to_string()),
                    detail: c.name("detail").map(|m| m.as_str().to_string()),
                    recipients: Vec::new(),
                });
            } else if let Some(c) = p.recipient.captures(l) {
                recipients.push(RecipientVerdict {
                    address: c
                        .name("address")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                    accepted: c
                        .name("verdict")
                        .is_some_and(|m| p.recipient_is_accepted(m.as_str())),
                    detail: c
                        .name("detail")
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        let mut r = report.ok_or_else(|| {
            DriverError::Unexpected(format!("job {id}: no job state line in {:?}", a.data))
        })?;
        r.recipients = recipients;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// The reference profile with a `[login]`.
    fn profile() -> Arc<Profile> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/sim.toml"
        ))
        .expect("sim.toml")
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
        assert_eq!(c.get("smtp.timeout").expect("get"), "60");
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
    fn a_refused_login_is_an_error() {
        let addr = fake_console();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/devices/sim.toml"
        ))
        .expect("sim.toml")
            + "\n[login]\nuser_prompt = '^login: ?$'\npassword_prompt = '^Password: ?$'\nuser = \"admin\"\npassword = \"wrong\"\n";
        let p = Arc::new(Profile::parse("login.toml", &text).expect("valid profile"));
        let e = Console::open(&Endpoint::Tcp { addr }, p)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("refused the login"), "{e}");
    }
}
