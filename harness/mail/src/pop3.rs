//! The fake POP3 server's session, without sockets: bytes from the client go in,
//! bytes to send, "close", "hang", "start TLS" and logins come out. RFC 1939 (USER,
//! PASS, APOP, STAT, LIST, UIDL, RETR, DELE, NOOP, RSET, QUIT), RFC 2449 (CAPA) and
//! RFC 2595 (STLS; the IO layer does the handshake). Accounts, the mailbox every
//! account sees and per-step faults (the shared model of `faults.rs`) come from
//! [`Pop3Config`].
//!
//! A command counts as an occurrence of its [`Pop3Step`] (and may meet a fault) when
//! it is allowed in the current state; commands in the wrong state get `-ERR` without
//! touching the fault script. A scripted reply replaces the answer's text; a reply
//! that does not start with `+OK` (and garbage) makes the step fail (no login at
//! USER/PASS/APOP, no TLS at STLS, no deletion at DELE), a `+OK` one lets the step do
//! what it would have done.

use std::sync::Arc;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::faults::{Action, Fault, FiredFault, Rng, Script, StepName};
use crate::redact::{Protocol, Redactor};
use crate::smtp::{AuthRecord, Dir, Entry, ListenerSpec};
use crate::transcript::thousands;

/// A point in the POP3 conversation where a fault can be scripted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pop3Step {
    /// The TCP connection was accepted (before TLS and the greeting).
    Connect,
    /// The TLS handshake (POP3S at connect, or after STLS).
    TlsHandshake,
    Greeting,
    Capa,
    User,
    Pass,
    Apop,
    Stls,
    Stat,
    List,
    Uidl,
    Retr,
    Dele,
    Quit,
}

impl StepName for Pop3Step {
    fn step_name(&self) -> &'static str {
        self.name()
    }
}

impl Pop3Step {
    pub fn name(&self) -> &'static str {
        match self {
            Pop3Step::Connect => "connect",
            Pop3Step::TlsHandshake => "tls_handshake",
            Pop3Step::Greeting => "greeting",
            Pop3Step::Capa => "capa",
            Pop3Step::User => "user",
            Pop3Step::Pass => "pass",
            Pop3Step::Apop => "apop",
            Pop3Step::Stls => "stls",
            Pop3Step::Stat => "stat",
            Pop3Step::List => "list",
            Pop3Step::Uidl => "uidl",
            Pop3Step::Retr => "retr",
            Pop3Step::Dele => "dele",
            Pop3Step::Quit => "quit",
        }
    }
}

/// An account the server accepts (USER/PASS or APOP). Its password is never
/// serialized nor shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopAccount {
    pub user: String,
    #[serde(skip_serializing)]
    pub password: String,
}

impl std::fmt::Debug for PopAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopAccount")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// A message in the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredMessage {
    /// The unique-id UIDL shows (RFC 1939: 1 to 70 characters 0x21 to 0x7E).
    pub uid: String,
    /// The full RFC 5322 text, CRLF or LF line ends; sent with CRLF and dot-stuffing.
    pub data: String,
}

impl StoredMessage {
    /// The message's lines as sent, without line ends and before dot-stuffing.
    pub fn lines(&self) -> Vec<&str> {
        if self.data.is_empty() {
            return Vec::new();
        }
        let body = self.data.strip_suffix('\n').unwrap_or(&self.data);
        body.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect()
    }

    /// The size LIST and STAT show: octets with CRLF line ends, before dot-stuffing.
    pub fn octets(&self) -> usize {
        self.lines().iter().map(|l| l.len() + 2).sum()
    }
}

/// How the fake POP3 server behaves: a scenario's POP3 part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Where it listens (scenario files; the IO layer's business, the session does not
    /// look at it). A `starttls` listener should run its sessions with `stls` set.
    pub listeners: Vec<ListenerSpec>,
    /// The name in the greeting and the APOP timestamp.
    pub hostname: String,
    /// Offer APOP: a timestamp in the greeting.
    pub apop: bool,
    /// Answer every APOP with `-ERR` (a server that offers but refuses APOP).
    pub refuse_apop: bool,
    /// Advertise and accept STLS (the IO layer does the TLS). Not read from files:
    /// the IO layer sets it for `starttls` listeners.
    #[serde(skip)]
    pub stls: bool,
    pub accounts: Vec<PopAccount>,
    /// The mailbox every account sees.
    pub messages: Vec<StoredMessage>,
    pub faults: Vec<Fault<Pop3Step>>,
    /// Seeds the APOP timestamp and probabilistic faults (mixed with the connection).
    pub seed: u64,
    /// A connection idle this long (device seconds) is closed.
    pub idle_timeout_s: u64,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listeners: vec![ListenerSpec::plain()],
            hostname: "pop.hil.test".into(),
            apop: true,
            refuse_apop: false,
            stls: false,
            accounts: Vec::new(),
            messages: vec![StoredMessage {
                uid: "hil-1".into(),
                data: "From: hil@hil.test\r\nTo: device@hil.test\r\nSubject: hil test\r\n\
                       Message-ID: <hil-1@hil.test>\r\n\r\nHello from the harness.\r\n"
                    .into(),
            }],
            faults: Vec::new(),
            seed: 0,
            idle_timeout_s: 600,
        }
    }
}

/// What the IO layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Output {
    Send(Vec<u8>),
    Close,
    /// Stop answering; keep reading and discarding until the client leaves.
    Hang,
    /// Wait this many ms (device time) before the next Send.
    Delay(u64),
    /// From now on send at this many bytes per second.
    Throttle(u32),
    /// Do the TLS handshake now ("+OK Begin TLS" was sent), then call
    /// [`Pop3Session::tls_started`].
    StartTls,
    /// A successful login, for the POP-before-SMTP window. `method` is "USER/PASS" or
    /// "APOP".
    Login {
        user: String,
        method: &'static str,
    },
    /// A login attempt, whatever came of it (the record keeps failed ones too).
    Attempt(AuthRecord),
}

/// Longest line accepted, line end excluded (RFC 2449 allows 255 octets for a
/// command; we are lenient).
pub const MAX_LINE: usize = 4096;

/// What the `Garbage` fault sends (then CRLF).
const GARBAGE: &[u8] = b"\x00\xff\xfe\x1b[2J\x80\x81garbage\xc3\x28\x07";

/// The APOP digest: lowercase hex MD5 of the greeting's timestamp (`<...>` included)
/// followed by the password (RFC 1939 section 7).
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Shows a client line in a transcript with credentials removed: `PASS ***`,
/// `APOP user ***`, as the first line of a connection (no state; the session uses a
/// [`Redactor`]).
pub fn redact_command(line: &str) -> String {
    Redactor::new(Protocol::Pop3, Vec::new(), Vec::new()).command(line)
}

/// The command word and the rest of the line after the one space (or tab) that
/// follows it; leading blanks are skipped.
fn split_verb(line: &str) -> (&str, &str) {
    let line = line.trim_start_matches([' ', '\t']);
    match line.split_once([' ', '\t']) {
        Some((v, r)) => (v, r),
        None => (line, ""),
    }
}

/// The per-connection seed (the scenario seed mixed with the connection number, as
/// the SMTP session does).
fn connection_seed(seed: u64, connection: u64) -> u64 {
    seed ^ connection.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// An answer: its bytes, and the lines the transcript shows for it.
struct Answer {
    bytes: Vec<u8>,
    log: Vec<String>,
}

impl Answer {
    fn line(text: impl Into<String>) -> Answer {
        let text = text.into();
        Answer {
            bytes: format!("{text}\r\n").into_bytes(),
            log: vec![text],
        }
    }

    /// A multi-line answer: the first line, dot-stuffed body lines, ".".
    fn multi(first: String, body: Vec<String>) -> Answer {
        let mut bytes = Vec::new();
        let mut log = Vec::with_capacity(body.len() + 2);
        push_line(&mut bytes, &first);
        log.push(first);
        for l in body {
            push_stuffed(&mut bytes, &l);
            log.push(l);
        }
        bytes.extend_from_slice(b".\r\n");
        log.push(".".into());
        Answer { bytes, log }
    }
}

fn push_line(bytes: &mut Vec<u8>, line: &str) {
    bytes.extend_from_slice(line.as_bytes());
    bytes.extend_from_slice(b"\r\n");
}

fn push_stuffed(bytes: &mut Vec<u8>, line: &str) {
    if line.starts_with('.') {
        bytes.push(b'.');
    }
    push_line(bytes, line);
}

/// How a step's answer went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The normal answer (perhaps after a delay or with a throttle).
    Normal,
    /// A scripted reply starting with `+OK`.
    ScriptedOk,
    /// A scripted reply not starting with `+OK`, or garbage.
    ScriptedErr,
    /// The connection was closed or hung.
    Stopped,
}

impl Sent {
    /// Whether the step may do what it would normally do.
    fn proceeds(self) -> bool {
        matches!(self, Sent::Normal | Sent::ScriptedOk)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Authorization,
    Transaction,
    /// "+OK Begin TLS" sent; waiting for `tls_started`.
    TlsPending,
    Hung,
    Closed,
}

/// One POP3 connection's session.
pub struct Pop3Session {
    cfg: Arc<Pop3Config>,
    connection: u64,
    script: Script<Pop3Step>,
    /// The `<...>` of the greeting, when APOP is offered.
    timestamp: Option<String>,
    mode: Mode,
    tls: bool,
    /// The name of an accepted USER, waiting for PASS.
    pending_user: Option<String>,
    user: Option<String>,
    deleted: Vec<bool>,
    deleted_uids: Vec<String>,
    line: Vec<u8>,
    line_overflow: bool,
    /// Bytes of the line being read, counted past the longest kept.
    line_bytes: usize,
    redactor: Redactor,
    transcript: Vec<Entry>,
    now_ms: u64,
}

impl Pop3Session {
    pub fn new(cfg: Arc<Pop3Config>, connection: u64) -> Self {
        let seed = connection_seed(cfg.seed, connection);
        let script = Script::new(cfg.faults.clone(), seed);
        let timestamp = cfg.apop.then(|| {
            // A generator of its own, so the timestamp does not shift the fault draws.
            let mut r = Rng::new(seed ^ 0x5a5a_a5a5_0f0f_f0f0);
            let host: String = cfg
                .hostname
                .chars()
                .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@'))
                .collect();
            let host = if host.is_empty() { "hil".into() } else { host };
            format!(
                "<{}.{}@{}>",
                10_000 + r.next_u64() % 90_000,
                r.next_u64() % 10_000_000_000,
                host
            )
        });
        let redactor = Redactor::new(
            Protocol::Pop3,
            cfg.accounts.iter().map(|a| a.user.clone()).collect(),
            cfg.accounts.iter().map(|a| a.password.clone()).collect(),
        );
        Pop3Session {
            redactor,
            cfg,
            connection,
            script,
            timestamp,
            mode: Mode::Authorization,
            tls: false,
            pending_user: None,
            user: None,
            deleted: Vec::new(),
            deleted_uids: Vec::new(),
            line: Vec::new(),
            line_overflow: false,
            line_bytes: 0,
            transcript: Vec::new(),
            now_ms: 0,
        }
    }

    /// The connection number this session was made with.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// Transcript lines recorded since the last call.
    /// Notes something of the IO layer's in the transcript.
    pub fn note(&mut self, now_ms: u64, text: impl Into<String>) {
        self.now_ms = now_ms;
        self.log(Dir::Note, text);
    }

    /// The scripted fault, if any, at a step the IO layer handles (connect, TLS
    /// handshake); counts one occurrence and notes it.
    pub fn fault_for(&mut self, step: Pop3Step) -> Option<Action> {
        let a = self.script.at(step);
        if let Some(a) = &a {
            self.log(
                Dir::Note,
                format!("fault at {}: {a:?} (scripted)", step.name()),
            );
        }
        a
    }

    pub fn take_transcript(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.transcript)
    }

    /// The scripted faults that fired since the last call.
    pub fn take_fired(&mut self) -> Vec<FiredFault> {
        self.script.take_fired()
    }

    /// The connection has ended: notes a line the client left with no end.
    pub fn finish(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let pending = std::mem::take(&mut self.line_bytes);
        if pending > 0 && matches!(self.mode, Mode::Authorization | Mode::Transaction) {
            self.log(
                Dir::C,
                format!(
                    "<{} bytes with no end of line, not kept>",
                    thousands(pending as u64)
                ),
            );
        }
    }

    /// The user who logged in on this connection, if one did (kept after QUIT).
    pub fn logged_in_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The uids of the messages deleted when the client quit (UPDATE state).
    pub fn deleted_uids(&self) -> &[String] {
        &self.deleted_uids
    }

    /// The greeting: "+OK <hostname> POP3 ready <timestamp>" (the timestamp only when
    /// APOP is offered), unless a fault replaces it.
    pub fn start(&mut self, now_ms: u64) -> Vec<Pop3Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if self.timestamp.is_none() {
            self.script
                .policy(Pop3Step::Greeting, "no APOP timestamp offered".to_string());
        }
        let text = match &self.timestamp {
            Some(ts) => format!("+OK {} POP3 ready {}", self.cfg.hostname, ts),
            None => format!("+OK {} POP3 ready", self.cfg.hostname),
        };
        self.respond(Pop3Step::Greeting, &mut out, Answer::line(text));
        out
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, now_ms: u64, bytes: &[u8]) -> Vec<Pop3Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.mode {
                Mode::Hung | Mode::Closed => break,
                Mode::TlsPending => {
                    let n = rest.len();
                    self.log(
                        Dir::Note,
                        format!("discarded {n} bytes sent before the TLS handshake"),
                    );
                    break;
                }
                Mode::Authorization | Mode::Transaction => {
                    let Some(pos) = rest.iter().position(|b| *b == b'\n') else {
                        self.push_partial(rest);
                        break;
                    };
                    let (head, tail) = rest.split_at(pos + 1);
                    rest = tail;
                    self.push_partial(head);
                    let line = std::mem::take(&mut self.line);
                    let len = std::mem::take(&mut self.line_bytes);
                    if std::mem::take(&mut self.line_overflow) {
                        self.log(
                            Dir::C,
                            format!(
                                "<line longer than {MAX_LINE} bytes: {} bytes, not kept>",
                                thousands(len as u64)
                            ),
                        );
                        self.emit(&mut out, Answer::line("-ERR line too long"));
                        continue;
                    }
                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    self.command(line, &mut out);
                }
            }
        }
        out
    }

    /// After the STLS handshake: back to the AUTHORIZATION state, STLS no longer
    /// offered. No new greeting (RFC 2595).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.pending_user = None;
        self.line.clear();
        self.line_overflow = false;
        self.line_bytes = 0;
        if matches!(self.mode, Mode::TlsPending | Mode::Authorization) {
            self.mode = Mode::Authorization;
        }
        self.log(Dir::Note, "tls started");
    }

    fn push_partial(&mut self, bytes: &[u8]) {
        self.line_bytes = self.line_bytes.saturating_add(bytes.len());
        if self.line_overflow {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE + 2 {
            self.line_overflow = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn log(&mut self, dir: Dir, text: impl Into<String>) {
        let text = self.redactor.mask(text.into());
        self.transcript.push(Entry {
            t_ms: self.now_ms,
            dir,
            text,
        });
    }

    fn emit(&mut self, out: &mut Vec<Pop3Output>, answer: Answer) {
        for l in answer.log {
            self.log(Dir::S, l);
        }
        out.push(Pop3Output::Send(answer.bytes));
    }

    /// A scripted answer at `connect` (before TLS and the greeting): one line per
    /// `\n`, each in the transcript.
    pub fn connect_answer(&mut self, now_ms: u64, text: &str) -> Vec<u8> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        self.send_text(&mut out, text);
        out.into_iter()
            .flat_map(|o| match o {
                Pop3Output::Send(b) => b,
                _ => Vec::new(),
            })
            .collect()
    }

    /// A login attempt, for the record.
    fn attempt(
        &mut self,
        out: &mut Vec<Pop3Output>,
        mechanism: &str,
        user: Option<String>,
        ok: bool,
        detail: &str,
    ) {
        out.push(Pop3Output::Attempt(AuthRecord {
            mechanism: mechanism.to_string(),
            user,
            ok,
            detail: detail.to_string(),
        }));
    }

    /// Sends text given by a fault, one CRLF-terminated line per `\n`.
    fn send_text(&mut self, out: &mut Vec<Pop3Output>, text: &str) {
        let mut bytes = Vec::new();
        for l in text.split('\n') {
            let l = l.strip_suffix('\r').unwrap_or(l);
            push_line(&mut bytes, l);
            self.log(Dir::S, l);
        }
        out.push(Pop3Output::Send(bytes));
    }

    /// Counts one occurrence of `step`, applies the fault that fires on it if any, and
    /// sends the normal answer unless the fault replaces it.
    fn respond(&mut self, step: Pop3Step, out: &mut Vec<Pop3Output>, normal: Answer) -> Sent {
        let Some(action) = self.script.at(step) else {
            self.emit(out, normal);
            return Sent::Normal;
        };
        let at = step.name();
        match action {
            Action::Reply { text, .. } | Action::Line { text } => {
                self.log(Dir::Note, format!("reply at {at} (scripted)"));
                self.send_text(out, &text);
                if text.starts_with("+OK") {
                    Sent::ScriptedOk
                } else {
                    Sent::ScriptedErr
                }
            }
            Action::Delay { ms } => {
                self.log(Dir::Note, format!("delay {ms} ms at {at} (scripted)"));
                out.push(Pop3Output::Delay(ms));
                self.emit(out, normal);
                Sent::Normal
            }
            Action::Throttle { bytes_per_sec } => {
                self.log(
                    Dir::Note,
                    format!("throttle {bytes_per_sec} bytes/s at {at} (scripted)"),
                );
                out.push(Pop3Output::Throttle(bytes_per_sec));
                self.emit(out, normal);
                Sent::Normal
            }
            Action::Drop => {
                self.log(Dir::Note, format!("drop at {at} (scripted)"));
                self.mode = Mode::Closed;
                out.push(Pop3Output::Close);
                Sent::Stopped
            }
            Action::Hang => {
                self.log(Dir::Note, format!("hang at {at} (scripted)"));
                self.mode = Mode::Hung;
                out.push(Pop3Output::Hang);
                Sent::Stopped
            }
            Action::Garbage => {
                self.log(Dir::Note, format!("garbage at {at} (scripted)"));
                let mut bytes = GARBAGE.to_vec();
                bytes.extend_from_slice(b"\r\n");
                self.log(Dir::S, format!("<garbage: {} bytes>", bytes.len()));
                out.push(Pop3Output::Send(bytes));
                Sent::ScriptedErr
            }
            Action::HalfLine => {
                let first = match normal.bytes.windows(2).position(|w| w == b"\r\n") {
                    Some(end) => normal.bytes.get(..end).unwrap_or_default(),
                    None => &normal.bytes[..],
                };
                let half = first.get(..(first.len() / 2).max(1)).unwrap_or(first);
                let half = half.to_vec();
                self.log(Dir::Note, format!("half line at {at} (scripted)"));
                self.log(Dir::S, String::from_utf8_lossy(&half).into_owned());
                out.push(Pop3Output::Send(half));
                self.log(Dir::Note, format!("hang at {at} (scripted)"));
                self.mode = Mode::Hung;
                out.push(Pop3Output::Hang);
                Sent::Stopped
            }
            Action::AbortTls if step == Pop3Step::Stls => {
                self.emit(out, Answer::line("+OK Begin TLS negotiation"));
                self.log(Dir::Note, format!("abort tls at {at} (scripted)"));
                self.mode = Mode::Closed;
                out.push(Pop3Output::Close);
                Sent::Stopped
            }
            Action::AbortTls => {
                self.log(
                    Dir::Note,
                    format!("abort_tls at {at} ignored (only meaningful at stls)"),
                );
                self.emit(out, normal);
                Sent::Normal
            }
        }
    }

    fn err(&mut self, out: &mut Vec<Pop3Output>, text: &str) {
        self.emit(out, Answer::line(format!("-ERR {text}")));
    }

    fn command(&mut self, raw: &[u8], out: &mut Vec<Pop3Output>) {
        let shown = String::from_utf8_lossy(raw).into_owned();
        let redacted = self.redactor.command(&shown);
        self.log(Dir::C, redacted);
        let Ok(line) = std::str::from_utf8(raw) else {
            return self.err(out, "invalid characters in command");
        };
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return self.err(out, "invalid characters in command");
        }
        if line.trim().is_empty() {
            return self.err(out, "empty command");
        }
        let (verb, rest) = split_verb(line);
        let verb = verb.to_ascii_uppercase();
        let args: Vec<&str> = rest.split_whitespace().collect();
        let authorization = self.mode == Mode::Authorization;
        match verb.as_str() {
            "CAPA" | "QUIT" if !args.is_empty() => {
                self.err(out, &format!("{verb} takes no arguments"))
            }
            "CAPA" => self.capa(out),
            "QUIT" => self.quit(out),
            "USER" | "PASS" | "APOP" | "STLS" if !authorization => {
                self.err(out, "command not valid in the TRANSACTION state")
            }
            "STLS" if !args.is_empty() => self.err(out, "STLS takes no arguments"),
            "USER" => self.user_cmd(rest.trim(), out),
            "PASS" => self.pass(rest, out),
            "APOP" => self.apop(&args, out),
            "STLS" => self.stls(out),
            "AUTH" => {
                // Not offered (no SASL in CAPA); a client that tries it anyway is
                // recorded, the mechanism named only if it is one.
                let mech = args.first().and_then(|m| crate::redact::mechanism_name(m));
                let name = mech.map_or("AUTH".to_string(), |m| format!("AUTH {m}"));
                self.attempt(out, &name, None, false, "AUTH is not offered");
                self.err(out, "unknown command")
            }
            "STAT" | "LIST" | "UIDL" | "RETR" | "DELE" | "NOOP" | "RSET" if authorization => {
                self.err(out, "command not valid in the AUTHORIZATION state")
            }
            "STAT" | "NOOP" | "RSET" if !args.is_empty() => {
                self.err(out, &format!("{verb} takes no arguments"))
            }
            "STAT" => self.stat(out),
            "NOOP" => self.emit(out, Answer::line("+OK")),
            "RSET" => self.rset(out),
            "LIST" => self.list(&args, out, Pop3Step::List),
            "UIDL" => self.list(&args, out, Pop3Step::Uidl),
            "RETR" => self.retr(&args, out),
            "DELE" => self.dele(&args, out),
            _ => self.err(out, "unknown command"),
        }
    }

    fn capa(&mut self, out: &mut Vec<Pop3Output>) {
        let mut caps: Vec<String> = vec![
            "USER".into(),
            "UIDL".into(),
            "RESP-CODES".into(),
            "AUTH-RESP-CODE".into(),
        ];
        if self.cfg.stls && !self.tls && self.mode == Mode::Authorization {
            caps.push("STLS".into());
        }
        caps.push("IMPLEMENTATION hil".into());
        let answer = Answer::multi("+OK Capability list follows".into(), caps);
        self.respond(Pop3Step::Capa, out, answer);
    }

    fn quit(&mut self, out: &mut Vec<Pop3Output>) {
        let host = self.cfg.hostname.clone();
        let answer = if self.mode == Mode::Transaction {
            let n = self.deleted.iter().filter(|d| **d).count();
            Answer::line(format!(
                "+OK {host} POP3 server signing off ({n} messages deleted)"
            ))
        } else {
            Answer::line(format!("+OK {host} POP3 server signing off"))
        };
        if self.respond(Pop3Step::Quit, out, answer) == Sent::Stopped {
            return;
        }
        if self.mode == Mode::Transaction {
            // UPDATE state: the marked messages go (for this connection's record only;
            // the configured mailbox is shared and stays as it is).
            let uids: Vec<String> = self
                .cfg
                .messages
                .iter()
                .zip(&self.deleted)
                .filter(|(_, d)| **d)
                .map(|(m, _)| m.uid.clone())
                .collect();
            if !uids.is_empty() {
                self.log(
                    Dir::Note,
                    format!("update: deleted {} (uids {})", uids.len(), uids.join(", ")),
                );
            }
            self.deleted_uids = uids;
        }
        self.mode = Mode::Closed;
        out.push(Pop3Output::Close);
    }

    fn user_cmd(&mut self, name: &str, out: &mut Vec<Pop3Output>) {
        if name.is_empty() {
            return self.err(out, "USER needs a name");
        }
        // Any name is accepted here so that USER does not tell which accounts exist;
        // PASS checks. A name of several words that is no account's is not echoed:
        // it is most likely a name and a password on one line.
        let known = self.cfg.accounts.iter().any(|a| a.user == name);
        let answer = if known || !name.contains([' ', '\t']) {
            Answer::line(format!("+OK send PASS for {name}"))
        } else {
            Answer::line("+OK send PASS")
        };
        let sent = self.respond(Pop3Step::User, out, answer);
        self.pending_user = sent.proceeds().then(|| name.to_string());
    }

    fn pass(&mut self, password: &str, out: &mut Vec<Pop3Output>) {
        let Some(user) = self.pending_user.clone() else {
            return self.err(out, "send USER first");
        };
        if password.is_empty() {
            return self.err(out, "PASS needs a password");
        }
        let good = self
            .cfg
            .accounts
            .iter()
            .any(|a| a.user == user && a.password == password);
        self.pending_user = None;
        let answer = if good {
            self.maildrop_line(&user)
        } else {
            Answer::line("-ERR [AUTH] authentication failed")
        };
        let sent = self.respond(Pop3Step::Pass, out, answer);
        let ok = good && sent.proceeds();
        let detail = match (good, ok) {
            (_, true) => "logged in",
            (true, false) => "refused by a scripted answer at pass",
            (false, _) => "wrong user or password",
        };
        self.attempt(out, "USER/PASS", Some(user.clone()), ok, detail);
        if ok {
            self.login(user, "USER/PASS", out);
        }
    }

    fn apop(&mut self, args: &[&str], out: &mut Vec<Pop3Output>) {
        let [user, digest] = args else {
            return self.err(out, "usage: APOP name digest");
        };
        let (user, digest) = (user.to_string(), digest.to_string());
        self.pending_user = None;
        let good = match &self.timestamp {
            Some(ts) if !self.cfg.refuse_apop => self
                .cfg
                .accounts
                .iter()
                .find(|a| a.user == user)
                .is_some_and(|a| apop_digest(ts, &a.password).eq_ignore_ascii_case(&digest)),
            _ => false,
        };
        if self.cfg.refuse_apop {
            self.script
                .policy(Pop3Step::Apop, "APOP refused".to_string());
        }
        let answer = if good {
            self.maildrop_line(&user)
        } else if self.timestamp.is_none() {
            Answer::line("-ERR APOP not available")
        } else if self.cfg.refuse_apop {
            Answer::line("-ERR [AUTH] APOP not accepted")
        } else {
            Answer::line("-ERR [AUTH] authentication failed")
        };
        let sent = self.respond(Pop3Step::Apop, out, answer);
        let ok = good && sent.proceeds();
        let detail = if ok { "logged in" } else { "refused" };
        self.attempt(out, "APOP", Some(user.clone()), ok, detail);
        if ok {
            self.login(user, "APOP", out);
        }
    }

    fn stls(&mut self, out: &mut Vec<Pop3Output>) {
        let available = self.cfg.stls && !self.tls;
        let answer = if available {
            Answer::line("+OK Begin TLS negotiation")
        } else if self.tls {
            Answer::line("-ERR already in TLS")
        } else {
            Answer::line("-ERR STLS not available")
        };
        let sent = self.respond(Pop3Step::Stls, out, answer);
        if available && sent.proceeds() {
            self.pending_user = None;
            self.mode = Mode::TlsPending;
            out.push(Pop3Output::StartTls);
        }
    }

    fn maildrop_line(&self, user: &str) -> Answer {
        let n = self.cfg.messages.len();
        let octets: usize = self.cfg.messages.iter().map(StoredMessage::octets).sum();
        Answer::line(format!(
            "+OK {user}'s maildrop has {n} messages ({octets} octets)"
        ))
    }

    fn login(&mut self, user: String, method: &'static str, out: &mut Vec<Pop3Output>) {
        self.mode = Mode::Transaction;
        self.deleted = vec![false; self.cfg.messages.len()];
        self.log(Dir::Note, format!("login user={user} method={method}"));
        self.user = Some(user.clone());
        out.push(Pop3Output::Login { user, method });
    }

    /// The messages not marked as deleted: (1-based number, message).
    fn live(&self) -> Vec<(usize, &StoredMessage)> {
        self.cfg
            .messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.get(*i).copied().unwrap_or(false))
            .map(|(i, m)| (i + 1, m))
            .collect()
    }

    /// A message number from the client: its index, or the `-ERR` text.
    fn message_index(&self, arg: &str) -> Result<usize, String> {
        if arg.is_empty() || arg.len() > 9 || !arg.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid message number".into());
        }
        let n: usize = arg.parse().map_err(|_| "invalid message number")?;
        if n == 0 || n > self.cfg.messages.len() {
            return Err("no such message".into());
        }
        if self.deleted.get(n - 1).copied().unwrap_or(false) {
            return Err(format!("message {n} already deleted"));
        }
        Ok(n - 1)
    }

    fn stat(&mut self, out: &mut Vec<Pop3Output>) {
        let live = self.live();
        let octets: usize = live.iter().map(|(_, m)| m.octets()).sum();
        let answer = Answer::line(format!("+OK {} {}", live.len(), octets));
        self.respond(Pop3Step::Stat, out, answer);
    }

    fn rset(&mut self, out: &mut Vec<Pop3Output>) {
        self.deleted.fill(false);
        let user = self.user.clone().unwrap_or_default();
        let answer = self.maildrop_line(&user);
        self.emit(out, answer);
    }

    /// LIST or UIDL, with or without a message number.
    fn list(&mut self, args: &[&str], out: &mut Vec<Pop3Output>, step: Pop3Step) {
        let show = |m: &StoredMessage| match step {
            Pop3Step::Uidl => m.uid.clone(),
            _ => m.octets().to_string(),
        };
        let answer = match args {
            [] => {
                let live = self.live();
                let octets: usize = live.iter().map(|(_, m)| m.octets()).sum();
                let first = match step {
                    Pop3Step::Uidl => "+OK unique-id listing follows".to_string(),
                    _ => format!("+OK {} messages ({} octets)", live.len(), octets),
                };
                let body = live.iter().map(|(n, m)| format!("{n} {}", show(m)));
                Answer::multi(first, body.collect())
            }
            [arg] => match self.message_index(arg) {
                Ok(i) => match self.cfg.messages.get(i) {
                    Some(m) => Answer::line(format!("+OK {} {}", i + 1, show(m))),
                    None => Answer::line("-ERR no such message"),
                },
                Err(e) => Answer::line(format!("-ERR {e}")),
            },
            _ => Answer::line(format!("-ERR usage: {} [msg]", step.name().to_uppercase())),
        };
        self.respond(step, out, answer);
    }

    fn retr(&mut self, args: &[&str], out: &mut Vec<Pop3Output>) {
        let answer = match args {
            [arg] => match self.message_index(arg) {
                Ok(i) => match self.cfg.messages.get(i) {
                    Some(m) => {
                        let octets = m.octets();
                        let first = format!("+OK {octets} octets");
                        let mut bytes = Vec::with_capacity(octets + first.len() + 16);
                        push_line(&mut bytes, &first);
                        for l in m.lines() {
                            push_stuffed(&mut bytes, l);
                        }
                        bytes.extend_from_slice(b".\r\n");
                        Answer {
                            bytes,
                            log: vec![
                                first,
                                format!("<message {}: {} bytes>", i + 1, octets),
                                ".".into(),
                            ],
                        }
                    }
                    None => Answer::line("-ERR no such message"),
                },
                Err(e) => Answer::line(format!("-ERR {e}")),
            },
            _ => Answer::line("-ERR usage: RETR msg"),
        };
        self.respond(Pop3Step::Retr, out, answer);
    }

    fn dele(&mut self, args: &[&str], out: &mut Vec<Pop3Output>) {
        let (index, answer) = match args {
            [arg] => match self.message_index(arg) {
                Ok(i) => (
                    Some(i),
                    Answer::line(format!("+OK message {} deleted", i + 1)),
                ),
                Err(e) => (None, Answer::line(format!("-ERR {e}"))),
            },
            _ => (None, Answer::line("-ERR usage: DELE msg")),
        };
        let sent = self.respond(Pop3Step::Dele, out, answer);
        if let Some(i) = index {
            if sent.proceeds() {
                if let Some(d) = self.deleted.get_mut(i) {
                    *d = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::When;

    const PASSWORD: &str = "s3cret pass";

    fn cfg() -> Pop3Config {
        Pop3Config {
            accounts: vec![PopAccount {
                user: "alice".into(),
                password: PASSWORD.into(),
            }],
            ..Pop3Config::default()
        }
    }

    fn session(cfg: Pop3Config) -> Pop3Session {
        Pop3Session::new(Arc::new(cfg), 1)
    }

    fn fault(step: Pop3Step, action: Action) -> Fault<Pop3Step> {
        Fault {
            step,
            when: When {
                nth: None,
                probability: None,
            },
            action,
        }
    }

    fn sent(out: &[Pop3Output]) -> String {
        out.iter()
            .filter_map(|o| match o {
                Pop3Output::Send(b) => Some(String::from_utf8_lossy(b).to_string()),
                _ => None,
            })
            .collect()
    }

    fn timestamp_of(greeting: &str) -> &str {
        let start = greeting.find('<').expect("a timestamp");
        let end = greeting.find('>').expect("a timestamp");
        &greeting[start..=end]
    }

    fn login(s: &mut Pop3Session) {
        s.start(0);
        let out = s.feed(1, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        assert!(sent(&out).ends_with("+OK alice's maildrop has 1 messages (117 octets)\r\n"));
    }

    #[test]
    fn user_pass_login() {
        let mut s = session(cfg());
        let greeting = sent(&s.start(0));
        assert!(
            greeting.starts_with("+OK pop.hil.test POP3 ready <"),
            "{greeting}"
        );
        assert!(greeting.ends_with("@pop.hil.test>\r\n"), "{greeting}");
        assert!(sent(&s.feed(1, b"USER alice\r\n")).starts_with("+OK"));
        let out = s.feed(2, format!("PASS {PASSWORD}\r\n").as_bytes());
        assert!(sent(&out).starts_with("+OK alice's maildrop has 1 messages"));
        assert_eq!(
            out.last(),
            Some(&Pop3Output::Login {
                user: "alice".into(),
                method: "USER/PASS"
            })
        );
        assert_eq!(s.logged_in_user(), Some("alice"));
        let t = s.take_transcript();
        assert!(t
            .iter()
            .any(|e| e.dir == Dir::Note && e.text == "login user=alice method=USER/PASS"));
        assert!(t.iter().any(|e| e.dir == Dir::C && e.text == "PASS ***"));
        assert_eq!(
            sent(&s.feed(3, b"QUIT\r\n")),
            "+OK pop.hil.test POP3 server signing off (0 messages deleted)\r\n"
        );
    }

    #[test]
    fn wrong_password_needs_a_new_user() {
        let mut s = session(cfg());
        s.start(0);
        let out = s.feed(1, b"USER alice\r\nPASS wrong\r\n");
        assert!(sent(&out).ends_with("-ERR [AUTH] authentication failed\r\n"));
        assert!(!out.iter().any(|o| matches!(o, Pop3Output::Login { .. })));
        assert!(sent(&s.feed(2, format!("PASS {PASSWORD}\r\n").as_bytes())).starts_with("-ERR"));
        assert!(sent(&s.feed(3, b"STAT\r\n")).starts_with("-ERR"));
        assert_eq!(s.logged_in_user(), None);
        // Unknown user: USER says +OK, PASS fails.
        assert!(sent(&s.feed(4, b"USER bob\r\nPASS x\r\n"))
            .ends_with("-ERR [AUTH] authentication failed\r\n"));
        // A new USER, then the right password.
        let out = s.feed(5, format!("user alice\npass {PASSWORD}\n").as_bytes());
        assert!(sent(&out).ends_with("(117 octets)\r\n"));
        assert_eq!(s.logged_in_user(), Some("alice"));
    }

    #[test]
    fn apop_digest_rfc1939_example() {
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn apop_with_the_sessions_own_timestamp() {
        let mut s = session(cfg());
        let greeting = sent(&s.start(0));
        let ts = timestamp_of(&greeting).to_string();
        // Another connection gets another timestamp, the same connection the same.
        let other = sent(&Pop3Session::new(Arc::new(cfg()), 2).start(0));
        assert_ne!(timestamp_of(&other), ts);
        let again = sent(&Pop3Session::new(Arc::new(cfg()), 1).start(0));
        assert_eq!(timestamp_of(&again), ts);

        let bad = apop_digest(&ts, "nope");
        assert!(sent(&s.feed(1, format!("APOP alice {bad}\r\n").as_bytes()))
            .starts_with("-ERR [AUTH] authentication failed"));
        let digest = apop_digest(&ts, PASSWORD);
        let out = s.feed(2, format!("APOP alice {digest}\r\n").as_bytes());
        assert!(sent(&out).starts_with("+OK alice's maildrop"));
        assert_eq!(
            out.last(),
            Some(&Pop3Output::Login {
                user: "alice".into(),
                method: "APOP"
            })
        );
        let t = s.take_transcript();
        assert!(t
            .iter()
            .any(|e| e.dir == Dir::C && e.text == "APOP alice ***"));
        assert!(t.iter().any(|e| e.text == "login user=alice method=APOP"));
        assert!(t
            .iter()
            .all(|e| !e.text.contains(&digest) && !e.text.contains(&bad)));
    }

    #[test]
    fn refused_and_unoffered_apop() {
        let mut s = session(Pop3Config {
            refuse_apop: true,
            ..cfg()
        });
        let greeting = sent(&s.start(0));
        let digest = apop_digest(timestamp_of(&greeting), PASSWORD);
        assert!(
            sent(&s.feed(1, format!("APOP alice {digest}\r\n").as_bytes())).starts_with("-ERR")
        );
        assert_eq!(s.logged_in_user(), None);
        // USER/PASS still works.
        s.feed(2, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        assert_eq!(s.logged_in_user(), Some("alice"));

        let mut s = session(Pop3Config {
            apop: false,
            ..cfg()
        });
        assert_eq!(sent(&s.start(0)), "+OK pop.hil.test POP3 ready\r\n");
        assert_eq!(
            sent(&s.feed(1, b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n")),
            "-ERR APOP not available\r\n"
        );
        assert!(sent(&s.feed(1, b"APOP alice\r\n")).starts_with("-ERR usage"));
    }

    #[test]
    fn stat_list_uidl_retr_dele_with_dot_stuffing() {
        let dotted = "Subject: a\n\n.hidden line\nend\n";
        let plain = "Subject: b\r\n\r\nbody\r\n";
        let mut s = session(Pop3Config {
            messages: vec![
                StoredMessage {
                    uid: "uid-a".into(),
                    data: dotted.into(),
                },
                StoredMessage {
                    uid: "uid-b".into(),
                    data: plain.into(),
                },
            ],
            ..cfg()
        });
        s.start(0);
        s.feed(0, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        // 12 + 2 + 14 + 5 = 33 (CRLF), 12 + 2 + 6 = 20
        assert_eq!(sent(&s.feed(1, b"STAT\r\n")), "+OK 2 53\r\n");
        assert_eq!(
            sent(&s.feed(1, b"LIST\r\n")),
            "+OK 2 messages (53 octets)\r\n1 33\r\n2 20\r\n.\r\n"
        );
        assert_eq!(sent(&s.feed(1, b"LIST 2\r\n")), "+OK 2 20\r\n");
        assert_eq!(
            sent(&s.feed(1, b"UIDL\r\n")),
            "+OK unique-id listing follows\r\n1 uid-a\r\n2 uid-b\r\n.\r\n"
        );
        assert_eq!(sent(&s.feed(1, b"UIDL 1\r\n")), "+OK 1 uid-a\r\n");
        s.take_transcript();
        assert_eq!(
            sent(&s.feed(2, b"RETR 1\r\n")),
            "+OK 33 octets\r\nSubject: a\r\n\r\n..hidden line\r\nend\r\n.\r\n"
        );
        assert_eq!(
            sent(&s.feed(2, b"RETR 2\r\n")),
            "+OK 20 octets\r\nSubject: b\r\n\r\nbody\r\n.\r\n"
        );
        let t: Vec<String> = s.take_transcript().into_iter().map(|e| e.text).collect();
        assert_eq!(
            t,
            [
                "RETR 1",
                "+OK 33 octets",
                "<message 1: 33 bytes>",
                ".",
                "RETR 2",
                "+OK 20 octets",
                "<message 2: 20 bytes>",
                "."
            ]
        );

        assert_eq!(sent(&s.feed(3, b"DELE 1\r\n")), "+OK message 1 deleted\r\n");
        assert_eq!(sent(&s.feed(3, b"STAT\r\n")), "+OK 1 20\r\n");
        assert_eq!(
            sent(&s.feed(3, b"LIST\r\n")),
            "+OK 1 messages (20 octets)\r\n2 20\r\n.\r\n"
        );
        assert!(sent(&s.feed(3, b"RETR 1\r\n")).starts_with("-ERR message 1 already deleted"));
        assert!(sent(&s.feed(3, b"DELE 1\r\n")).starts_with("-ERR"));
        assert!(sent(&s.feed(3, b"RSET\r\n")).starts_with("+OK alice's maildrop has 2"));
        assert_eq!(sent(&s.feed(3, b"STAT\r\n")), "+OK 2 53\r\n");
        assert_eq!(sent(&s.feed(3, b"NOOP\r\n")), "+OK\r\n");
        s.feed(4, b"DELE 2\r\n");
        let out = s.feed(4, b"QUIT\r\n");
        assert_eq!(
            sent(&out),
            "+OK pop.hil.test POP3 server signing off (1 messages deleted)\r\n"
        );
        assert_eq!(out.last(), Some(&Pop3Output::Close));
        assert_eq!(s.deleted_uids(), ["uid-b".to_string()]);
        assert!(s.feed(5, b"NOOP\r\n").is_empty());
    }

    #[test]
    fn message_shapes() {
        let m = |d: &str| StoredMessage {
            uid: "u".into(),
            data: d.into(),
        };
        assert_eq!(m("").lines(), Vec::<&str>::new());
        assert_eq!(m("a").lines(), ["a"]);
        assert_eq!(m("a\r\n\r\n").lines(), ["a", ""]);
        assert_eq!(m("a\r\nb").octets(), 6);
        let mut s = session(Pop3Config {
            messages: vec![m(""), m(".\n..")],
            ..cfg()
        });
        s.start(0);
        s.feed(0, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        assert_eq!(sent(&s.feed(1, b"RETR 1\r\n")), "+OK 0 octets\r\n.\r\n");
        assert_eq!(
            sent(&s.feed(1, b"RETR 2\r\n")),
            "+OK 7 octets\r\n..\r\n...\r\n.\r\n"
        );
    }

    #[test]
    fn commands_in_the_wrong_state_and_bad_arguments() {
        let mut s = session(cfg());
        s.start(0);
        for cmd in ["STAT", "LIST", "UIDL 1", "RETR 1", "DELE 1", "NOOP", "RSET"] {
            let reply = sent(&s.feed(1, format!("{cmd}\r\n").as_bytes()));
            assert_eq!(
                reply, "-ERR command not valid in the AUTHORIZATION state\r\n",
                "{cmd}"
            );
        }
        assert_eq!(sent(&s.feed(1, b"PASS x\r\n")), "-ERR send USER first\r\n");
        assert_eq!(sent(&s.feed(1, b"USER\r\n")), "-ERR USER needs a name\r\n");
        assert_eq!(
            sent(&s.feed(1, b"TOP 1 10\r\n")),
            "-ERR unknown command\r\n"
        );
        assert_eq!(sent(&s.feed(1, b"XYZZY\r\n")), "-ERR unknown command\r\n");
        assert_eq!(sent(&s.feed(1, b"\r\n")), "-ERR empty command\r\n");
        assert_eq!(sent(&s.feed(1, b"STLS\r\n")), "-ERR STLS not available\r\n");
        assert!(sent(&s.feed(1, b"CAPA x\r\n")).starts_with("-ERR"));
        s.feed(2, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        for cmd in ["USER alice", "PASS x", "APOP alice 00", "STLS"] {
            let reply = sent(&s.feed(3, format!("{cmd}\r\n").as_bytes()));
            assert_eq!(
                reply, "-ERR command not valid in the TRANSACTION state\r\n",
                "{cmd}"
            );
        }
        for cmd in [
            "RETR",
            "RETR x",
            "RETR 0",
            "RETR 2",
            "RETR +1",
            "RETR -1",
            "RETR 1 2",
            "RETR 99999999999999999999",
            "DELE",
            "LIST 0",
            "LIST 1 2",
            "UIDL 7",
            "STAT 1",
        ] {
            let reply = sent(&s.feed(3, format!("{cmd}\r\n").as_bytes()));
            assert!(reply.starts_with("-ERR "), "{cmd}: {reply}");
        }
        assert_eq!(sent(&s.feed(4, b"stat\r\n")), "+OK 1 117\r\n");
        let capa = sent(&s.feed(4, b"CAPA\r\n"));
        assert!(capa.starts_with("+OK") && capa.ends_with("\r\n.\r\n"));
    }

    #[test]
    fn stls_then_capa_without_stls() {
        let mut s = session(Pop3Config {
            stls: true,
            ..cfg()
        });
        s.start(0);
        let capa = sent(&s.feed(1, b"CAPA\r\n"));
        assert_eq!(
            capa,
            "+OK Capability list follows\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nSTLS\r\nIMPLEMENTATION hil\r\n.\r\n"
        );
        // A USER before STLS is forgotten; a command pipelined after STLS is discarded.
        s.feed(2, b"USER alice\r\n");
        let out = s.feed(2, b"STLS\r\nPASS injected\r\n");
        assert_eq!(
            out,
            vec![
                Pop3Output::Send(b"+OK Begin TLS negotiation\r\n".to_vec()),
                Pop3Output::StartTls
            ]
        );
        assert!(s.feed(3, b"\x16\x03\x01").is_empty());
        s.tls_started();
        let capa = sent(&s.feed(4, b"CAPA\r\n"));
        assert!(!capa.contains("STLS"), "{capa}");
        assert!(capa.contains("IMPLEMENTATION hil"));
        assert_eq!(sent(&s.feed(4, b"STLS\r\n")), "-ERR already in TLS\r\n");
        assert_eq!(sent(&s.feed(4, b"PASS x\r\n")), "-ERR send USER first\r\n");
        s.feed(5, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        assert_eq!(s.logged_in_user(), Some("alice"));
        let t = s.take_transcript();
        assert!(t.iter().any(|e| e.text.starts_with("discarded ")));
        assert!(t.iter().any(|e| e.text == "tls started"));
        assert!(!t.iter().any(|e| e.text.contains("injected")));
    }

    #[test]
    fn abort_tls_at_stls() {
        let mut s = session(Pop3Config {
            stls: true,
            faults: vec![fault(Pop3Step::Stls, Action::AbortTls)],
            ..cfg()
        });
        s.start(0);
        let out = s.feed(1, b"STLS\r\n");
        assert_eq!(
            out,
            vec![
                Pop3Output::Send(b"+OK Begin TLS negotiation\r\n".to_vec()),
                Pop3Output::Close
            ]
        );
    }

    #[test]
    fn hang_at_pass() {
        let mut s = session(Pop3Config {
            faults: vec![fault(Pop3Step::Pass, Action::Hang)],
            ..cfg()
        });
        s.start(0);
        s.feed(1, b"USER alice\r\n");
        let out = s.feed(2, format!("PASS {PASSWORD}\r\n").as_bytes());
        assert_eq!(out[0], Pop3Output::Hang);
        // The attempt is kept in the record, failed.
        assert!(
            matches!(&out[1..], [Pop3Output::Attempt(a)] if !a.ok && a.mechanism == "USER/PASS"),
            "{out:?}"
        );
        assert!(s.feed(3, b"NOOP\r\nQUIT\r\n").is_empty());
        assert_eq!(s.logged_in_user(), None);
        assert!(s
            .take_transcript()
            .iter()
            .any(|e| e.dir == Dir::Note && e.text == "hang at pass (scripted)"));
    }

    #[test]
    fn drop_at_greeting() {
        let mut s = session(Pop3Config {
            faults: vec![fault(Pop3Step::Greeting, Action::Drop)],
            ..cfg()
        });
        assert_eq!(s.start(0), vec![Pop3Output::Close]);
        assert!(s.feed(1, b"USER alice\r\n").is_empty());
        assert!(s
            .take_transcript()
            .iter()
            .any(|e| e.text == "drop at greeting (scripted)"));
    }

    #[test]
    fn other_faults() {
        let retr_delay = Fault {
            step: Pop3Step::Retr,
            when: When {
                nth: Some(2),
                probability: None,
            },
            action: Action::Delay { ms: 500 },
        };
        let mut s = session(Pop3Config {
            faults: vec![
                fault(
                    Pop3Step::User,
                    Action::Line {
                        text: "-ERR [IN-USE] locked".into(),
                    },
                ),
                retr_delay,
                fault(Pop3Step::Stat, Action::Throttle { bytes_per_sec: 10 }),
                fault(Pop3Step::List, Action::Garbage),
                fault(Pop3Step::Uidl, Action::HalfLine),
                fault(
                    Pop3Step::Dele,
                    Action::Reply {
                        code: 550,
                        text: "-ERR no\nsecond".into(),
                    },
                ),
                fault(Pop3Step::Capa, Action::AbortTls),
            ],
            ..cfg()
        });
        s.start(0);
        // A scripted -ERR at USER: no login.
        let out = s.feed(1, format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes());
        assert_eq!(
            sent(&out),
            "-ERR [IN-USE] locked\r\n-ERR send USER first\r\n"
        );
        assert_eq!(s.logged_in_user(), None);

        let mut s = session(Pop3Config {
            faults: s.cfg.faults[1..].to_vec(),
            ..cfg()
        });
        login(&mut s);
        // AbortTls away from STLS changes nothing.
        assert!(sent(&s.feed(2, b"CAPA\r\n")).ends_with("IMPLEMENTATION hil\r\n.\r\n"));
        let first = s.feed(2, b"RETR 1\r\n");
        assert!(matches!(first.first(), Some(Pop3Output::Send(_))));
        let second = s.feed(2, b"RETR 1\r\n");
        assert_eq!(second.first(), Some(&Pop3Output::Delay(500)));
        assert_eq!(sent(&first), sent(&second));
        let out = s.feed(3, b"STAT\r\n");
        assert_eq!(out.first(), Some(&Pop3Output::Throttle(10)));
        assert_eq!(sent(&out), "+OK 1 117\r\n");
        let out = s.feed(4, b"LIST\r\n");
        assert!(sent(&out).ends_with("\r\n") && !sent(&out).starts_with("+OK"));
        // A scripted -ERR at DELE: nothing deleted.
        assert_eq!(sent(&s.feed(5, b"DELE 1\r\n")), "-ERR no\r\nsecond\r\n");
        assert_eq!(sent(&s.feed(5, b"STAT\r\n")), "+OK 1 117\r\n");
        let out = s.feed(6, b"UIDL 1\r\n");
        assert_eq!(
            out,
            vec![Pop3Output::Send(b"+OK 1".to_vec()), Pop3Output::Hang]
        );
        assert!(s.feed(7, b"NOOP\r\n").is_empty());
    }

    #[test]
    fn long_lines_and_junk_get_err_and_the_session_goes_on() {
        let mut s = session(cfg());
        s.start(0);
        let long = vec![b'A'; 10_000];
        assert!(s.feed(1, &long).is_empty());
        assert_eq!(sent(&s.feed(1, b"\r\n")), "-ERR line too long\r\n");
        let mut long = vec![b'B'; 10_000];
        long.extend_from_slice(b"\nNOOP\n");
        assert_eq!(
            sent(&s.feed(1, &long)),
            "-ERR line too long\r\n-ERR command not valid in the AUTHORIZATION state\r\n"
        );
        assert!(sent(&s.feed(2, b"\x00\xff\xfe junk\r\n")).starts_with("-ERR"));
        assert!(sent(&s.feed(2, b"US\x01ER a\r\n")).starts_with("-ERR"));
        assert!(sent(&s.feed(2, b"PASS \xff\xfe\r\n")).starts_with("-ERR"));
        assert!(sent(&s.feed(2, "ÜSER ä\r\n".as_bytes())).starts_with("-ERR"));
        // Split across reads.
        assert!(s.feed(3, b"USER al").is_empty());
        assert!(sent(&s.feed(3, b"ice\r")).is_empty());
        assert!(sent(&s.feed(3, b"\n")).starts_with("+OK"));
        let out = s.feed(3, format!("PASS {PASSWORD}\r\nSTAT\r\n").as_bytes());
        assert!(sent(&out).ends_with("+OK 1 117\r\n"));
        assert!(s.take_transcript().iter().all(|e| e.text.len() < 200));
    }

    #[test]
    fn the_transcript_never_holds_the_password() {
        let mut s = session(Pop3Config {
            accounts: vec![
                PopAccount {
                    user: "alice".into(),
                    password: PASSWORD.into(),
                },
                PopAccount {
                    user: "bob".into(),
                    password: "hunter2".into(),
                },
            ],
            ..cfg()
        });
        let greeting = sent(&s.start(0));
        let digest = apop_digest(timestamp_of(&greeting), "hunter2");
        s.feed(1, b"USER alice\r\npass s3cret wrong\r\n");
        s.feed(1, b"PASS s3cret pass\r\n");
        s.feed(2, format!("USER alice\npAsS {PASSWORD}\n").as_bytes());
        s.feed(3, b"USER bob\r\nPASS\thunter2x\r\n  pass hunter2y\r\n");
        s.feed(3, b"PASS hunter2\r\nQUIT\r\n");
        let mut s2 = session(s.cfg.as_ref().clone());
        let greeting2 = sent(&s2.start(0));
        let digest2 = apop_digest(timestamp_of(&greeting2), "hunter2");
        s2.feed(
            1,
            format!("APOP bob {digest}\r\nAPOP bob {digest2}\r\n").as_bytes(),
        );
        assert_eq!(s2.logged_in_user(), Some("bob"));
        let all: Vec<Entry> = s
            .take_transcript()
            .into_iter()
            .chain(s2.take_transcript())
            .collect();
        assert!(all.iter().any(|e| e.text == "pAsS ***"));
        assert_eq!(redact_command("PASS\tx y"), "PASS ***");
        assert_eq!(redact_command(" APOP bob 0123"), "APOP bob ***");
        assert_eq!(redact_command("APOP"), "APOP");
        assert_eq!(redact_command("USER bob"), "USER bob");
        for e in &all {
            for secret in ["s3cret", "hunter2", &digest, &digest2] {
                assert!(!e.text.contains(secret), "{:?}", e);
            }
        }
    }

    #[test]
    fn random_input_never_panics() {
        let words: [&[u8]; 14] = [
            b"USER alice\r\n",
            b"PASS s3cret pass\r\n",
            b"STAT\r\n",
            b"LIST 1\r\n",
            b"RETR 1\n",
            b"DELE 1\r\n",
            b"UIDL\r\n",
            b"CAPA\r\n",
            b"STLS\r\n",
            b"RSET\r\n",
            b"APOP alice 0\r\n",
            b"\r\n",
            b"\xff\x00\n",
            b"QUIT\r\n",
        ];
        for seed in 0..200u64 {
            let mut rng = Rng::new(seed);
            let mut s = session(Pop3Config {
                stls: true,
                ..cfg()
            });
            s.start(0);
            for _ in 0..40 {
                let r = rng.next_u64();
                let mut chunk = Vec::new();
                // One chunk in three is random bytes, the rest commands.
                match r % 3 {
                    0 => {
                        let n = (r >> 8) % 64;
                        chunk.extend((0..n).map(|_| (rng.next_u64() & 0xff) as u8));
                    }
                    _ => {
                        let w = words.get((r >> 8) as usize % words.len()).copied();
                        chunk.extend_from_slice(w.unwrap_or_default());
                    }
                }
                s.feed(1, &chunk);
                // Now and then the IO layer reports a handshake, wanted or not.
                if (r >> 16) & 15 == 0 {
                    s.tls_started();
                }
            }
            s.take_transcript();
        }
    }

    #[test]
    fn config_from_toml() {
        let cfg: Pop3Config = toml::from_str(
            r#"
            accounts = [{ user = "dev", password = "pw" }]
            [[faults]]
            step = "pass"
            nth = 2
            action = "hang"
            [[faults]]
            step = "retr"
            action = "delay"
            ms = 100
            "#,
        )
        .expect("parses");
        assert_eq!(cfg.hostname, "pop.hil.test");
        assert_eq!(cfg.listeners, vec![ListenerSpec::plain()]);
        assert!(cfg.apop && !cfg.stls && !cfg.refuse_apop);
        // STLS comes from the listener kind, not from the file.
        assert!(toml::from_str::<Pop3Config>("stls = true").is_err());
        assert_eq!(cfg.messages.len(), 1);
        assert_eq!(cfg.faults.len(), 2);
        assert_eq!(cfg.faults[0].when.nth, Some(2));
        assert_eq!(cfg.faults[1].action, Action::Delay { ms: 100 });
        assert!(crate::faults::validate(&cfg.faults).is_ok());
        assert!(toml::from_str::<Pop3Config>("typo = 1").is_err());
    }
}
