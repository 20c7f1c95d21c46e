//! The fake SMTP server's session, without sockets: bytes from the client go in;
//! bytes to send and instructions for the IO layer (close, hang, delay, throttle,
//! start TLS) come out. Commands are parsed with smtp-proto; replies, the EHLO
//! extensions, AUTH, policies and per-step faults come from [`SmtpConfig`].
//! The tokio layer is `smtp_server.rs`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::{Error as ProtoError, MailFrom, RcptTo, Request};

use crate::faults::{Action, Fault, FiredFault, Script, StepName};
use crate::redact::{Protocol, Redactor};
use crate::sasl::{self, Account, Mechanism};
use crate::transcript::thousands;

/// A point in the SMTP conversation where a fault can be scripted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The TCP connection was accepted (before TLS for implicit TLS, before the greeting).
    Connect,
    /// The TLS handshake (implicit TLS at connect, or after STARTTLS).
    TlsHandshake,
    Greeting,
    Ehlo,
    Helo,
    Starttls,
    /// The AUTH command (before any credentials are exchanged).
    Auth,
    /// The end of an AUTH exchange: the 235 or 535 after the credentials.
    AuthResult,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    Quit,
}

impl StepName for Step {
    fn step_name(&self) -> &'static str {
        self.name()
    }
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::TlsHandshake => "tls_handshake",
            Step::Greeting => "greeting",
            Step::Ehlo => "ehlo",
            Step::Helo => "helo",
            Step::Starttls => "starttls",
            Step::Auth => "auth",
            Step::AuthResult => "auth_result",
            Step::Mail => "mail",
            Step::Rcpt => "rcpt",
            Step::Data => "data",
            Step::EndOfData => "end_of_data",
            Step::Quit => "quit",
        }
    }
}

/// A recipient rule: addresses matching `address` (exact, or `*@domain`) get this reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientRule {
    pub address: String,
    pub code: u16,
    pub text: String,
}

impl RecipientRule {
    pub fn matches(&self, addr: &str) -> bool {
        match self.address.strip_prefix("*@") {
            Some(domain) => addr
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => self.address.eq_ignore_ascii_case(addr),
        }
    }
}

/// Server policies (SPEC-independent: what real servers enforce).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// MAIL before a successful AUTH gets `530 5.7.0 Authentication required`.
    pub require_auth: bool,
    /// Largest message accepted, in bytes: a bigger `SIZE=` or DATA gets 552.
    pub max_size: Option<u64>,
    /// A message with a bare LF gets `550 5.6.11`.
    pub refuse_bare_lf: bool,
    /// Recipients refused (first matching rule wins).
    pub recipients: Vec<RecipientRule>,
    /// POP before SMTP: RCPT is refused (554 5.7.1) unless the client's address logged
    /// in to the POP3 server within this many seconds (device time).
    pub pop_before_smtp_window_s: Option<u64>,
}

/// How a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ListenerKind {
    /// Plain, no STARTTLS/STLS offered.
    Plain,
    /// Plain, offering STARTTLS (SMTP) or STLS (POP3).
    Starttls,
    /// Implicit TLS (SMTPS, POP3S): TLS from the first byte.
    Tls,
}

impl ListenerKind {
    pub fn name(&self) -> &'static str {
        match self {
            ListenerKind::Plain => "plain",
            ListenerKind::Starttls => "starttls",
            ListenerKind::Tls => "tls",
        }
    }
}

/// A listener of a scenario's server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    pub kind: ListenerKind,
    /// The port (0: any free port).
    #[serde(default)]
    pub port: u16,
    /// The certificate shown by `starttls` and `tls` listeners: a zoo name
    /// (`"valid"`) or `{ cert = "a.crt", key = "a.key" }`.
    #[serde(default)]
    pub cert: Option<crate::tls::CertSpec>,
    /// Which device setting should point at it: `port` or `ssl_port` (SMTP), the
    /// default by kind (`tls` → `ssl_port`, others → `port`).
    #[serde(default)]
    pub role: Option<String>,
}

impl ListenerSpec {
    /// A plain listener on any free port.
    pub fn plain() -> ListenerSpec {
        ListenerSpec {
            kind: ListenerKind::Plain,
            port: 0,
            cert: None,
            role: None,
        }
    }

    /// The device setting this listener serves: `port` or `ssl_port`.
    pub fn role(&self) -> &str {
        match (&self.role, self.kind) {
            (Some(r), _) => r,
            (None, ListenerKind::Tls) => "ssl_port",
            (None, _) => "port",
        }
    }
}

/// How the fake SMTP server behaves: a scenario's SMTP part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Where it listens (scenario files; the runner's server has its own).
    pub listeners: Vec<ListenerSpec>,
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// The greeting text after `220 `; default `HOSTNAME ESMTP hil fake server`.
    pub greeting: Option<String>,
    /// EHLO extension lines other than STARTTLS and AUTH, e.g. `SIZE 10485760`.
    pub extensions: Vec<String>,
    /// AUTH mechanisms advertised in EHLO (empty: no AUTH line).
    pub auth: Vec<Mechanism>,
    /// Mechanisms accepted; default: the advertised ones.
    pub auth_accept: Option<Vec<Mechanism>>,
    /// Whether AUTH is offered before TLS on a STARTTLS listener (default true).
    pub auth_before_tls: bool,
    /// Realms offered in the DIGEST-MD5 challenge.
    pub realms: Vec<String>,
    pub accounts: Vec<Account>,
    pub policy: Policy,
    pub faults: Vec<Fault<Step>>,
    /// Seed for probabilistic faults and challenges.
    pub seed: u64,
    /// A connection idle this long (device seconds) is closed.
    pub idle_timeout_s: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listeners: vec![ListenerSpec::plain()],
            hostname: "mx.hil.test".into(),
            greeting: None,
            extensions: vec![
                "SIZE 10485760".into(),
                "8BITMIME".into(),
                "PIPELINING".into(),
            ],
            auth: Vec::new(),
            auth_accept: None,
            auth_before_tls: true,
            realms: Vec::new(),
            accounts: Vec::new(),
            policy: Policy::default(),
            faults: Vec::new(),
            seed: 0,
            idle_timeout_s: 600,
        }
    }
}

impl SmtpConfig {
    /// The deterministic fault for the `n`th (1-based) occurrence of `step`: the first
    /// scripted fault without a probability that fires there.
    pub fn fault_at(&self, step: Step, n: u32) -> Option<&Action> {
        self.faults
            .iter()
            .filter(|f| f.when.probability.is_none())
            .find(|f| f.step == step && f.when.nth.is_none_or(|k| k == n))
            .map(|f| &f.action)
    }

    /// The first rule matching `address`, if any.
    pub fn rule_for(&self, address: &str) -> Option<&RecipientRule> {
        self.policy.recipients.iter().find(|r| r.matches(address))
    }

    fn accepts(&self, m: Mechanism) -> bool {
        match &self.auth_accept {
            Some(list) => list.contains(&m),
            None => self.auth.contains(&m),
        }
    }
}

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dir {
    /// From the client (the device).
    C,
    /// From the server (the harness).
    S,
    /// A note of the harness's own (connection opened, closed, TLS, faults).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub t_ms: u64,
    pub dir: Dir,
    pub text: String,
}

/// The parsed view of a received message kept with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MimeSummary {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub date: Option<String>,
    /// Every leaf part: content type, file name, decoded size.
    pub parts: Vec<PartSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartSummary {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: usize,
}

impl MimeSummary {
    /// Parses message bytes with mail-parser.
    pub fn parse(data: &[u8]) -> Option<MimeSummary> {
        use mail_parser::{MessageParser, MimeHeaders, PartType};
        let msg = MessageParser::default().parse(data)?;
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        };
        let parts = msg
            .parts
            .iter()
            .filter(|p| !matches!(p.body, PartType::Multipart(_)))
            .map(|p| PartSummary {
                content_type: p
                    .content_type()
                    .map(|c| match c.subtype() {
                        Some(sub) => format!("{}/{}", c.ctype(), sub),
                        None => c.ctype().to_string(),
                    })
                    .unwrap_or_else(|| "text/plain".into()),
                filename: p.attachment_name().map(str::to_string),
                size: p.contents().len(),
            })
            .collect();
        Some(MimeSummary {
            from: addrs(msg.from()),
            to: addrs(msg.to()),
            subject: msg.subject().map(str::to_string),
            message_id: msg.message_id().map(str::to_string),
            date: msg.date().map(|d| d.to_rfc3339()),
            parts,
        })
    }
}

/// A message the server accepted, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    pub connection: u64,
    pub helo: String,
    /// The verb the client greeted with: EHLO or HELO.
    pub greeted_with: String,
    /// Whether the transaction ran inside TLS.
    pub tls: bool,
    /// The user authenticated on the connection, if any.
    pub auth_user: Option<String>,
    pub mail_from: String,
    /// The `SIZE=` parameter of MAIL FROM, if given.
    pub size_param: Option<usize>,
    pub recipients: Vec<String>,
    /// The message bytes after un-dot-stuffing, final CRLF included.
    #[serde(skip)]
    pub data: Vec<u8>,
    /// LF bytes not preceded by CR in the DATA stream.
    pub bare_lf: usize,
    /// Lines longer than 998 octets (CRLF excluded).
    pub long_lines: usize,
    /// The message as MIME, parsed when it arrived (`None`: it does not parse).
    pub mime: Option<MimeSummary>,
}

/// The outcome of an AUTH exchange, for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthRecord {
    pub mechanism: String,
    pub user: Option<String>,
    pub ok: bool,
    pub detail: String,
}

/// What the IO layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Vec<u8>),
    Close,
    /// Stop answering; keep reading and discarding until the client leaves.
    Hang,
    /// Wait this many milliseconds (device time) before what follows.
    Delay(u64),
    /// From now on, send at most this many bytes per second.
    Throttle(u32),
    /// Run the TLS handshake now (the 220 for STARTTLS is already sent); then call
    /// [`Session::tls_started`].
    StartTls,
    Message(Box<Received>),
    Auth(AuthRecord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
    Auth,
    Hung,
    Closed,
}

/// Most recipients of one transaction (RFC 5321 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 1000;
/// Longest command line accepted (RFC 5321 says 512; we are lenient).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Most message bytes kept without a `max_size` policy; beyond it DATA is discarded
/// and answered 552, so a client cannot grow the server's memory without bound.
pub const MAX_KEPT_MESSAGE: usize = 64 * 1024 * 1024;

/// What the IO layer tells the session about the connection.
#[derive(Clone)]
pub struct SessionEnv {
    pub connection: u64,
    pub peer: IpAddr,
    /// The listener offers STARTTLS (and the connection is not yet in TLS).
    pub starttls: bool,
    /// The connection is already in TLS (implicit TLS).
    pub tls: bool,
    /// Answers whether `peer` logged in to the POP3 server within `window_s` seconds.
    pub pop_login_within: Arc<dyn Fn(IpAddr, u64) -> bool + Send + Sync>,
}

/// One SMTP connection's session.
pub struct Session {
    cfg: Arc<SmtpConfig>,
    env: SessionEnv,
    script: Script<Step>,
    mode: Mode,
    line: Vec<u8>,
    line_overflow: bool,
    /// Bytes of the line being read, counted past the longest kept.
    line_bytes: usize,
    data: DataReceiver,
    data_buf: Vec<u8>,
    data_dropped: usize,
    greeted_with: Option<String>,
    helo: String,
    mail_from: Option<(String, Option<usize>)>,
    rcpts: Vec<String>,
    auth: Option<sasl::Exchange>,
    auth_user: Option<String>,
    redactor: Redactor,
    transcript: Vec<Entry>,
    now_ms: u64,
    queued: u64,
    half_line: bool,
    /// A scripted success reply that replaces the text of the step's normal answer.
    reply_override: Option<(u16, String)>,
}

fn reply(code: u16, text: &str) -> Vec<u8> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    out.into_bytes()
}

/// Counts, in message bytes, the bare LFs (an LF not preceded by CR) and the lines
/// longer than 998 octets (RFC 5321 §4.5.3.1.6; the CRLF, or a lone LF or CR at the
/// end, not counted; the text after the last LF is a line too). One pass that jumps
/// from LF to LF (memchr), so a 1 MB message costs little more than its line count.
pub fn line_faults(data: &[u8]) -> (usize, usize) {
    const MAX_LINE: usize = 998;
    let (mut bare_lf, mut long_lines, mut start) = (0, 0, 0);
    for lf in memchr::memchr_iter(b'\n', data) {
        // A CR just before this LF belongs to this line (an LF right at `start` has
        // the previous line's LF, or nothing, before it).
        let cr = lf > start && data[lf - 1] == b'\r';
        bare_lf += usize::from(!cr);
        long_lines += usize::from(lf - start - usize::from(cr) > MAX_LINE);
        start = lf + 1;
    }
    let last = &data[start..];
    long_lines += usize::from(last.strip_suffix(b"\r").unwrap_or(last).len() > MAX_LINE);
    (bare_lf, long_lines)
}

/// The reply to a command smtp-proto could not parse: 501 for a bad argument, 500
/// for the rest.
fn syntax_reply(e: ProtoError) -> (u16, String) {
    let text = match e {
        ProtoError::UnknownCommand => "5.5.2 Syntax error, command unrecognized".to_string(),
        ProtoError::InvalidSenderAddress => "5.1.7 Bad sender address syntax".into(),
        ProtoError::InvalidRecipientAddress => "5.1.3 Bad recipient address syntax".into(),
        ProtoError::SyntaxError { syntax } => format!("5.5.4 Syntax: {syntax}"),
        ProtoError::InvalidParameter { param } => format!("5.5.4 Invalid parameter {param}"),
        ProtoError::UnsupportedParameter { param } => {
            format!("5.5.4 Unsupported parameter {param}")
        }
        _ => "5.5.2 Syntax error".into(),
    };
    let code = if text.starts_with("5.5.4") { 501 } else { 500 };
    (code, text)
}

/// Shows a client command line in a transcript with credentials removed, as the
/// first line of a connection (no state; the session uses a [`Redactor`]).
pub fn redact_command(line: &str) -> String {
    Redactor::new(Protocol::Smtp, Vec::new(), Vec::new()).command(line)
}

/// Bytes that are no protocol at all, for the `garbage` action.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe\x1b[2J\x89PNG\r\x1a garbage \x7f\x80\xc3\x28\r\n";

impl Session {
    pub fn new(cfg: Arc<SmtpConfig>, env: SessionEnv) -> Self {
        let seed = cfg.seed ^ env.connection.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let redactor = Redactor::new(
            Protocol::Smtp,
            cfg.accounts.iter().map(|a| a.user.clone()).collect(),
            cfg.accounts
                .iter()
                .flat_map(|a| [Some(a.password.clone()), a.token.clone()])
                .flatten()
                .collect(),
        );
        Session {
            redactor,
            script: Script::new(cfg.faults.clone(), seed),
            cfg,
            env,
            mode: Mode::Command,
            line: Vec::new(),
            line_overflow: false,
            line_bytes: 0,
            data: DataReceiver::new(),
            data_buf: Vec::new(),
            data_dropped: 0,
            greeted_with: None,
            helo: String::new(),
            mail_from: None,
            rcpts: Vec::new(),
            auth: None,
            auth_user: None,
            transcript: Vec::new(),
            now_ms: 0,
            queued: 0,
            half_line: false,
            reply_override: None,
        }
    }

    /// Transcript lines recorded since the last call.
    pub fn take_transcript(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.transcript)
    }

    /// The scripted faults that fired since the last call.
    pub fn take_fired(&mut self) -> Vec<FiredFault> {
        self.script.take_fired()
    }

    /// Notes something of the IO layer's in the transcript.
    pub fn note(&mut self, now_ms: u64, text: impl Into<String>) {
        self.now_ms = now_ms;
        self.log(Dir::Note, text);
    }

    /// The connection has ended: notes what the client left unfinished (a line with
    /// no end, a message with no end of data) and answers the record of an AUTH
    /// exchange it abandoned.
    pub fn finish(&mut self, now_ms: u64) -> Vec<Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        let pending = std::mem::take(&mut self.line_bytes);
        if pending > 0 && matches!(self.mode, Mode::Command | Mode::Auth) {
            self.log(
                Dir::C,
                format!(
                    "<{} bytes with no end of line, not kept>",
                    thousands(pending as u64)
                ),
            );
        }
        if self.mode == Mode::Data {
            let total = self.data_buf.len() + self.data_dropped;
            self.log(
                Dir::C,
                format!(
                    "<message cut short: {} bytes with no end of data>",
                    thousands(total as u64)
                ),
            );
        }
        if self.auth.is_some() {
            self.finish_auth(
                false,
                "abandoned: the connection ended in the exchange".into(),
                &mut out,
            );
        }
        self.mode = Mode::Closed;
        out
    }

    fn log(&mut self, dir: Dir, text: impl Into<String>) {
        let text = self.redactor.mask(text.into());
        self.transcript.push(Entry {
            t_ms: self.now_ms,
            dir,
            text,
        });
    }

    fn send_bytes(&mut self, out: &mut Vec<Output>, bytes: Vec<u8>) {
        if self.half_line {
            self.half_line = false;
            let half = bytes[..bytes.len() / 2].to_vec();
            self.log(
                Dir::S,
                format!("{} [half line]", String::from_utf8_lossy(&half)),
            );
            self.log(Dir::Note, "hang after half a line (scripted)");
            out.push(Output::Send(half));
            out.push(Output::Hang);
            self.mode = Mode::Hung;
            return;
        }
        for l in String::from_utf8_lossy(&bytes).lines() {
            self.log(Dir::S, l.to_string());
        }
        out.push(Output::Send(bytes));
    }

    fn send(&mut self, out: &mut Vec<Output>, code: u16, text: &str) {
        match self.reply_override.take() {
            Some((c, t)) => self.send_bytes(out, reply(c, &t)),
            None => self.send_bytes(out, reply(code, text)),
        }
    }

    /// The fault, if any, at `step` (counts one occurrence). Exposed for the IO layer's
    /// steps (connect, TLS handshake).
    pub fn fault_for(&mut self, step: Step) -> Option<Action> {
        let a = self.script.at(step);
        if let Some(a) = &a {
            let what = match a {
                Action::Reply { code, .. } => format!("reply {code}"),
                Action::Line { .. } => "raw line".into(),
                Action::Delay { ms } => format!("delay {ms} ms"),
                Action::Throttle { bytes_per_sec } => format!("throttle {bytes_per_sec} B/s"),
                Action::Drop => "drop".into(),
                Action::Hang => "hang".into(),
                Action::Garbage => "garbage".into(),
                Action::HalfLine => "half line".into(),
                Action::AbortTls => "abort TLS".into(),
            };
            self.log(
                Dir::Note,
                format!("fault at {}: {what} (scripted)", step.name()),
            );
        }
        a
    }

    /// A scripted answer at `connect` (before TLS and the greeting): the bytes to
    /// send, a proper multi-line reply for `reply` (`554-…` then `554 …`), one line
    /// per `\n` for `line`; each line is in the transcript.
    pub fn connect_answer(&mut self, now_ms: u64, code: Option<u16>, text: &str) -> Vec<u8> {
        self.now_ms = now_ms;
        let bytes = match code {
            Some(code) => reply(code, text),
            None => {
                let mut bytes = Vec::new();
                for l in text.split('\n') {
                    bytes.extend_from_slice(l.trim_end_matches('\r').as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes
            }
        };
        for l in String::from_utf8_lossy(&bytes).lines() {
            self.log(Dir::S, l.to_string());
        }
        bytes
    }

    /// Applies a scripted fault at `step`; answers whether it replaced the normal answer.
    fn fault(&mut self, step: Step, out: &mut Vec<Output>) -> bool {
        let Some(action) = self.fault_for(step) else {
            return false;
        };
        match action {
            // A scripted success (2xx/3xx) replaces the reply's text and the step
            // goes on as normal; anything else replaces the step.
            Action::Reply { code, text } if matches!(code / 100, 2 | 3) && code != 421 => {
                self.reply_override = Some((code, text));
                false
            }
            Action::Reply { code, text } => {
                self.send(out, code, &text);
                if code == 421 {
                    self.mode = Mode::Closed;
                    out.push(Output::Close);
                }
                true
            }
            Action::Line { text } => {
                let mut bytes = Vec::new();
                for l in text.split('\n') {
                    bytes.extend_from_slice(l.trim_end_matches('\r').as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
                self.send_bytes(out, bytes);
                true
            }
            Action::Delay { ms } => {
                out.push(Output::Delay(ms));
                false
            }
            Action::Throttle { bytes_per_sec } => {
                out.push(Output::Throttle(bytes_per_sec));
                false
            }
            Action::Drop | Action::AbortTls => {
                self.mode = Mode::Closed;
                out.push(Output::Close);
                true
            }
            Action::Hang => {
                self.mode = Mode::Hung;
                out.push(Output::Hang);
                true
            }
            Action::Garbage => {
                self.log(Dir::S, "<garbage bytes>");
                out.push(Output::Send(GARBAGE.to_vec()));
                true
            }
            Action::HalfLine => {
                self.half_line = true;
                false
            }
        }
    }

    /// The opening of the connection: the greeting, unless a fault replaces it.
    pub fn start(&mut self, now_ms: u64) -> Vec<Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if !self.fault(Step::Greeting, &mut out) {
            let text = self
                .cfg
                .greeting
                .clone()
                .unwrap_or_else(|| format!("{} ESMTP hil fake server", self.cfg.hostname));
            self.send(&mut out, 220, &text);
        }
        out
    }

    /// The TLS handshake after STARTTLS finished: the session starts over (RFC 3207).
    pub fn tls_started(&mut self) {
        self.env.tls = true;
        self.env.starttls = false;
        self.greeted_with = None;
        self.helo.clear();
        self.reset_transaction();
        self.auth_user = None;
        self.mode = Mode::Command;
    }

    /// Whether the session is in TLS.
    pub fn in_tls(&self) -> bool {
        self.env.tls
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, now_ms: u64, bytes: &[u8]) -> Vec<Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.mode {
                Mode::Hung | Mode::Closed => break,
                Mode::Data => {
                    let mut it = rest.iter();
                    let done = self.data.ingest(&mut it, &mut self.data_buf);
                    rest = it.as_slice();
                    let cap = self
                        .cfg
                        .policy
                        .max_size
                        .map_or(MAX_KEPT_MESSAGE, |m| (m as usize).saturating_add(1))
                        .min(MAX_KEPT_MESSAGE);
                    if self.data_buf.len() > cap {
                        self.data_dropped += self.data_buf.len();
                        self.data_buf.clear();
                    }
                    if done {
                        self.end_of_data(&mut out);
                    }
                }
                Mode::Command | Mode::Auth => {
                    let Some(pos) = rest.iter().position(|b| *b == b'\n') else {
                        self.push_partial(rest);
                        break;
                    };
                    let (head, tail) = rest.split_at(pos + 1);
                    rest = tail;
                    self.push_partial(head);
                    let len = std::mem::take(&mut self.line_bytes);
                    if self.line_overflow {
                        self.line_overflow = false;
                        self.line.clear();
                        self.log(
                            Dir::C,
                            format!(
                                "<line longer than {MAX_COMMAND_LINE} bytes: {} bytes, not kept>",
                                thousands(len as u64)
                            ),
                        );
                        if self.mode == Mode::Auth {
                            self.auth = None;
                            self.mode = Mode::Command;
                        }
                        self.send(&mut out, 500, "5.5.2 Line too long");
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    if self.mode == Mode::Auth {
                        self.auth_line(&line, &mut out);
                    } else {
                        self.command(&line, &mut out);
                    }
                    // STARTTLS: what follows the command belongs to the TLS layer.
                    if out.last() == Some(&Output::StartTls) {
                        break;
                    }
                }
            }
        }
        out
    }

    fn push_partial(&mut self, bytes: &[u8]) {
        self.line_bytes = self.line_bytes.saturating_add(bytes.len());
        if self.line_overflow {
            return;
        }
        if self.line.len() + bytes.len() > MAX_COMMAND_LINE + 2 {
            self.line_overflow = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn ehlo_text(&self, host: &str) -> String {
        let mut text = format!("{} Hello {}", self.cfg.hostname, host);
        for e in &self.cfg.extensions {
            text.push('\n');
            text.push_str(e);
        }
        if self.env.starttls && !self.env.tls {
            text.push_str("\nSTARTTLS");
        }
        let auth_now = self.env.tls || self.cfg.auth_before_tls;
        if !self.cfg.auth.is_empty() && auth_now {
            let names: Vec<&str> = self.cfg.auth.iter().map(|m| m.name()).collect();
            text.push_str(&format!("\nAUTH {}", names.join(" ")));
        }
        text
    }

    /// One command line from the client: logged, then answered by its verb's step.
    fn command(&mut self, raw: &[u8], out: &mut Vec<Output>) {
        let shown = String::from_utf8_lossy(raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let redacted = self.redactor.command(&shown);
        self.log(Dir::C, redacted);
        // AUTH is read here: smtp-proto knows only the mechanism names it hashes.
        let verb = shown.split_whitespace().next().unwrap_or("");
        if verb.eq_ignore_ascii_case("AUTH") {
            return self.auth_start(&shown, out);
        }
        let parsed = Request::parse(&mut raw.iter()).map(Request::into_owned);
        match parsed {
            Ok(Request::Ehlo { host }) => self.on_ehlo(host, out),
            Ok(Request::Helo { host }) => self.on_helo(host, out),
            Ok(Request::StartTls) => self.on_starttls(out),
            Ok(Request::Mail { from }) => self.on_mail(from, out),
            Ok(Request::Rcpt { to }) => self.on_rcpt(to, out),
            Ok(Request::Data) => self.on_data(out),
            Ok(Request::Quit) => self.on_quit(out),
            Ok(Request::Rset) => {
                self.reset_transaction();
                self.send(out, 250, "2.0.0 Ok");
            }
            Ok(Request::Noop { .. }) => self.send(out, 250, "2.0.0 Ok"),
            Ok(other) => {
                let msg = format!("5.5.1 {} not implemented", other.name());
                self.send(out, 502, &msg)
            }
            Err(e) => {
                let (code, text) = syntax_reply(e);
                self.send(out, code, &text);
            }
        }
    }

    fn on_ehlo(&mut self, host: String, out: &mut Vec<Output>) {
        if self.fault(Step::Ehlo, out) {
            return;
        }
        self.reset_transaction();
        self.greeted_with = Some("EHLO".into());
        let text = self.ehlo_text(&host);
        self.helo = host;
        self.send(out, 250, &text);
    }

    fn on_helo(&mut self, host: String, out: &mut Vec<Output>) {
        if self.fault(Step::Helo, out) {
            return;
        }
        self.reset_transaction();
        self.greeted_with = Some("HELO".into());
        self.helo = host;
        let text = self.cfg.hostname.clone();
        self.send(out, 250, &text);
    }

    fn on_starttls(&mut self, out: &mut Vec<Output>) {
        if !self.env.starttls || self.env.tls {
            return self.send(out, 502, "5.5.1 STARTTLS not available");
        }
        if self.fault(Step::Starttls, out) {
            return;
        }
        self.send(out, 220, "2.0.0 Ready to start TLS");
        out.push(Output::StartTls);
    }

    /// MAIL FROM: after a greeting, outside a transaction, within the policy (AUTH
    /// required, the SIZE the client announces).
    fn on_mail(&mut self, from: MailFrom<String>, out: &mut Vec<Output>) {
        if self.greeted_with.is_none() {
            return self.send(out, 503, "5.5.1 Error: send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return self.send(out, 503, "5.5.1 Error: nested MAIL command");
        }
        if self.fault(Step::Mail, out) {
            return;
        }
        if self.cfg.policy.require_auth {
            let refused = self.auth_user.is_none();
            self.script.policy(
                Step::Mail,
                format!(
                    "AUTH required ({})",
                    if refused { "530" } else { "authenticated" }
                ),
            );
            if refused {
                return self.send(out, 530, "5.7.0 Authentication required");
            }
        }
        if let Some(max) = self.cfg.policy.max_size {
            if from.size > 0 {
                self.script.policy(
                    Step::Mail,
                    format!("size limit {max} against SIZE={}", from.size),
                );
            }
            if from.size as u64 > max {
                let text = format!("5.3.4 Message size exceeds fixed maximum message size ({max})");
                return self.send(out, 552, &text);
            }
        }
        let size = (from.size > 0).then_some(from.size);
        self.mail_from = Some((from.address, size));
        self.send(out, 250, "2.1.0 Ok");
    }

    /// RCPT TO: after MAIL, within the policy (POP before SMTP, the recipient rules,
    /// the most recipients kept).
    fn on_rcpt(&mut self, to: RcptTo<String>, out: &mut Vec<Output>) {
        if self.mail_from.is_none() {
            return self.send(out, 503, "5.5.1 Error: need MAIL command");
        }
        if self.fault(Step::Rcpt, out) {
            return;
        }
        if let Some(window) = self.cfg.policy.pop_before_smtp_window_s {
            if self.auth_user.is_none() {
                let open = (self.env.pop_login_within)(self.env.peer, window);
                self.script.policy(
                    Step::Rcpt,
                    format!(
                        "POP before SMTP window {window} s ({})",
                        if open { "a POP login within it" } else { "554" }
                    ),
                );
                if !open {
                    let text = format!("5.7.1 <{}>: Relay access denied", to.address);
                    return self.send(out, 554, &text);
                }
            }
        }
        if let Some(rule) = self.cfg.rule_for(&to.address).cloned() {
            self.script.policy(
                Step::Rcpt,
                format!("recipient rule {} ({})", rule.address, rule.code),
            );
            if rule.code / 100 != 2 {
                return self.send(out, rule.code, &rule.text);
            }
        }
        if self.rcpts.len() >= MAX_RECIPIENTS {
            return self.send(out, 452, "4.5.3 Error: too many recipients");
        }
        self.rcpts.push(to.address);
        self.send(out, 250, "2.1.5 Ok");
    }

    /// DATA: after MAIL and at least one accepted RCPT; the message follows.
    fn on_data(&mut self, out: &mut Vec<Output>) {
        if self.mail_from.is_none() {
            return self.send(out, 503, "5.5.1 Error: need MAIL command");
        }
        if self.rcpts.is_empty() {
            return self.send(out, 554, "5.5.1 Error: no valid recipients");
        }
        if self.fault(Step::Data, out) {
            return;
        }
        self.mode = Mode::Data;
        self.data = DataReceiver::new();
        // The message starts after the CRLF of DATA: its first line is a line
        // like any other ("." ends it, a leading dot is removed; RFC 5321
        // §4.5.2). smtp-proto's receiver starts without that CRLF behind it,
        // so it is fed one and the byte buffer emptied again.
        self.data_buf.clear();
        self.data.ingest(&mut b"\r\n".iter(), &mut self.data_buf);
        self.data_buf.clear();
        self.data_dropped = 0;
        self.send(out, 354, "End data with <CR><LF>.<CR><LF>");
    }

    fn on_quit(&mut self, out: &mut Vec<Output>) {
        if self.fault(Step::Quit, out) {
            return;
        }
        self.send(out, 221, "2.0.0 Bye");
        if self.mode == Mode::Hung {
            return;
        }
        self.mode = Mode::Closed;
        out.push(Output::Close);
    }

    fn decode(arg: &str) -> Option<Vec<u8>> {
        if arg == "=" {
            return Some(Vec::new());
        }
        base64::engine::general_purpose::STANDARD
            .decode(arg.trim())
            .ok()
    }

    /// Why an AUTH command is refused before any exchange, if it is.
    fn auth_refusal(&self, words: usize) -> Option<(u16, &'static str)> {
        if words > 3 {
            return Some((501, "5.5.4 Syntax: AUTH mechanism [initial-response]"));
        }
        if self.greeted_with.is_none() {
            return Some((503, "5.5.1 Error: send EHLO first"));
        }
        if self.auth_user.is_some() {
            return Some((503, "5.5.1 Already authenticated"));
        }
        if self.mail_from.is_some() {
            return Some((503, "5.5.1 AUTH not permitted during a mail transaction"));
        }
        None
    }

    /// An AUTH command answered before any exchange: sent, and kept in the record
    /// (the mechanism named only if it is one: the word may be a credential).
    fn refuse_auth(&mut self, name: &str, code: Option<u16>, text: &str, out: &mut Vec<Output>) {
        if let Some(code) = code {
            self.send(out, code, text);
        }
        let mechanism = crate::redact::mechanism_name(name)
            .unwrap_or("?")
            .to_string();
        let detail = match code {
            Some(code) => format!("refused with {code} before any exchange: {text}"),
            None => format!("refused before any exchange: {text}"),
        };
        self.log(
            Dir::Note,
            format!("AUTH {mechanism} user=? failed ({detail})"),
        );
        out.push(Output::Auth(AuthRecord {
            mechanism,
            user: None,
            ok: false,
            detail,
        }));
    }

    fn auth_start(&mut self, line: &str, out: &mut Vec<Output>) {
        let mut words = line.split_whitespace().skip(1);
        let name = words.next().unwrap_or("");
        let initial_word = words.next();
        let mech = Mechanism::from_name(name);
        if let Some((code, text)) = self.auth_refusal(line.split_whitespace().count()) {
            return self.refuse_auth(name, Some(code), text, out);
        }
        if self.fault(Step::Auth, out) {
            return self.refuse_auth(name, None, "a scripted answer at auth", out);
        }
        let Some(mech) = mech.filter(|m| self.cfg.accepts(*m)) else {
            let text = "5.5.4 Unrecognized authentication type";
            return self.refuse_auth(name, Some(504), text, out);
        };
        if !self.env.tls && !self.cfg.auth_before_tls {
            let text = "5.7.11 Encryption required for requested authentication mechanism";
            return self.refuse_auth(name, Some(538), text, out);
        }
        let initial_bytes = match initial_word {
            None => None,
            Some(w) => match Self::decode(w) {
                Some(b) => Some(b),
                None => {
                    let text = "5.5.2 Cannot decode the initial response";
                    return self.refuse_auth(name, Some(501), text, out);
                }
            },
        };
        let ctx = sasl::Context {
            accounts: &self.cfg.accounts,
            hostname: &self.cfg.hostname,
            realms: &self.cfg.realms,
            seed: self.cfg.seed ^ self.env.connection,
        };
        let (exchange, step) = sasl::Exchange::start(mech, initial_bytes.as_deref(), &ctx);
        self.auth = Some(exchange);
        self.auth_step(step, out);
    }

    fn auth_line(&mut self, raw: &[u8], out: &mut Vec<Output>) {
        let text = String::from_utf8_lossy(raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let redacted = self.redactor.sasl_line(&text);
        self.log(Dir::C, redacted);
        if text == "*" {
            self.mode = Mode::Command;
            self.finish_auth(false, "cancelled by the client".into(), out);
            return self.send(out, 501, "5.0.0 Authentication cancelled");
        }
        let Some(bytes) = Self::decode(&text) else {
            self.mode = Mode::Command;
            self.finish_auth(false, "the response is not base64".into(), out);
            return self.send(out, 501, "5.5.2 Cannot decode the response");
        };
        let ctx = sasl::Context {
            accounts: &self.cfg.accounts,
            hostname: &self.cfg.hostname,
            realms: &self.cfg.realms,
            seed: self.cfg.seed ^ self.env.connection,
        };
        let step = match self.auth.as_mut() {
            Some(x) => x.step(&bytes, &ctx),
            None => sasl::Step::Failure {
                reason: "no exchange under way".into(),
            },
        };
        self.auth_step(step, out);
    }

    fn finish_auth(&mut self, ok: bool, detail: String, out: &mut Vec<Output>) {
        let Some(x) = self.auth.take() else { return };
        let rec = AuthRecord {
            mechanism: x.mechanism().name().to_string(),
            user: x.claimed_user().map(str::to_string),
            ok,
            detail,
        };
        self.log(
            Dir::Note,
            format!(
                "AUTH {} user={} {}",
                rec.mechanism,
                rec.user.as_deref().unwrap_or("?"),
                if ok { "succeeded" } else { "failed" }
            ),
        );
        out.push(Output::Auth(rec));
    }

    fn auth_step(&mut self, step: sasl::Step, out: &mut Vec<Output>) {
        match step {
            sasl::Step::Challenge(bytes) => {
                self.mode = Mode::Auth;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                self.send(out, 334, &b64);
            }
            sasl::Step::Success { user } => {
                self.mode = Mode::Command;
                if self.fault(Step::AuthResult, out) {
                    // The server refuses whatever the credentials were.
                    self.finish_auth(false, "refused by a scripted reply".into(), out);
                    return;
                }
                self.finish_auth(true, "authenticated".into(), out);
                self.auth_user = Some(user);
                self.send(out, 235, "2.7.0 Authentication successful");
            }
            sasl::Step::Failure { reason } => {
                self.mode = Mode::Command;
                let scripted = self.fault(Step::AuthResult, out);
                self.finish_auth(false, reason, out);
                if !scripted {
                    self.send(out, 535, "5.7.8 Authentication credentials invalid");
                }
            }
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
    }

    fn end_of_data(&mut self, out: &mut Vec<Output>) {
        self.mode = Mode::Command;
        let data = std::mem::take(&mut self.data_buf);
        let total = data.len() + self.data_dropped;
        self.log(Dir::C, format!("<message: {total} bytes>"));
        self.log(Dir::C, ".");
        if self.fault(Step::EndOfData, out) {
            self.reset_transaction();
            return;
        }
        if let Some(max) = self.cfg.policy.max_size {
            self.script.policy(
                Step::EndOfData,
                format!("size limit {max} against {total} bytes"),
            );
        }
        if self.cfg.policy.refuse_bare_lf {
            self.script
                .policy(Step::EndOfData, "bare LF refused".to_string());
        }
        if self.data_dropped > 0 || self.cfg.policy.max_size.is_some_and(|m| total as u64 > m) {
            self.reset_transaction();
            let max = self.cfg.policy.max_size.unwrap_or(MAX_KEPT_MESSAGE as u64);
            let text = format!("5.3.4 Message size exceeds fixed maximum message size ({max})");
            return self.send(out, 552, &text);
        }
        let (bare_lf, long_lines) = line_faults(&data);
        if bare_lf > 0 && self.cfg.policy.refuse_bare_lf {
            self.reset_transaction();
            return self.send(
                out,
                550,
                "5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds",
            );
        }
        let (mail_from, size_param) = self.mail_from.take().unwrap_or_default();
        self.queued += 1;
        let mime = MimeSummary::parse(&data);
        let msg = Received {
            connection: self.env.connection,
            helo: self.helo.clone(),
            greeted_with: self.greeted_with.clone().unwrap_or_default(),
            tls: self.env.tls,
            auth_user: self.auth_user.clone(),
            mail_from,
            size_param,
            recipients: std::mem::take(&mut self.rcpts),
            data,
            bare_lf,
            long_lines,
            mime,
        };
        out.push(Output::Message(Box::new(msg)));
        let text = format!(
            "2.0.0 Ok: queued as {}.{}",
            self.env.connection, self.queued
        );
        self.send(out, 250, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::When;

    fn env() -> SessionEnv {
        SessionEnv {
            connection: 1,
            peer: IpAddr::from([127, 0, 0, 1]),
            starttls: false,
            tls: false,
            pop_login_within: Arc::new(|_, _| false),
        }
    }

    fn session(cfg: SmtpConfig) -> Session {
        Session::new(Arc::new(cfg), env())
    }

    fn sent(out: &[Output]) -> String {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(b) => Some(String::from_utf8_lossy(b).to_string()),
                _ => None,
            })
            .collect()
    }

    fn fault(step: Step, nth: Option<u32>, action: Action) -> Fault<Step> {
        Fault {
            step,
            when: When {
                nth,
                probability: None,
            },
            action,
        }
    }

    /// The definition `line_faults` implements, byte by byte.
    fn line_faults_naive(data: &[u8]) -> (usize, usize) {
        let bare_lf = data
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == b'\n' && (*i == 0 || data[i - 1] != b'\r'))
            .count();
        let long_lines = data
            .split(|b| *b == b'\n')
            .filter(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > 998)
            .count();
        (bare_lf, long_lines)
    }

    #[test]
    fn line_faults_counts_bare_lf_and_long_lines() {
        let long = "x".repeat(999);
        let ok = "x".repeat(998);
        for (data, want) in [
            (String::new(), (0, 0)),
            ("\n".into(), (1, 0)),
            ("\r\n\r\n".into(), (0, 0)),
            ("a\nb\r\n\n".into(), (2, 0)),
            ("\r\r\n".into(), (0, 0)),
            (format!("{ok}\r\n{ok}\n{ok}\r"), (1, 0)),
            (format!("{long}\r\n"), (0, 1)),
            (format!("{ok}\r\r\n"), (0, 1)),
            (format!("a\r\n{long}"), (0, 1)),
            (format!("{long}\r"), (0, 1)),
        ] {
            assert_eq!(line_faults(data.as_bytes()), want, "{data:?}");
            assert_eq!(line_faults_naive(data.as_bytes()), want, "{data:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn line_faults_agrees_with_the_byte_by_byte_count(
            parts in proptest::collection::vec(
                (0usize..1100, proptest::sample::select(vec!["\r\n", "\n", "\r", ""])),
                0..12,
            )
        ) {
            let mut data = Vec::new();
            for (n, end) in parts {
                data.extend(std::iter::repeat_n(b'x', n));
                data.extend_from_slice(end.as_bytes());
            }
            proptest::prop_assert_eq!(line_faults(&data), line_faults_naive(&data));
        }
    }

    #[test]
    fn a_whole_transaction_in_one_pipelined_chunk() {
        let mut s = session(SmtpConfig::default());
        assert!(sent(&s.start(0)).starts_with("220 mx.hil.test"));
        let out = s.feed(
            1,
            b"EHLO dev\r\nMAIL FROM:<a@b> SIZE=20\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\n..hi\r\n.\r\nQUIT\r\n",
        );
        let text = sent(&out);
        assert!(text.contains("250-mx.hil.test Hello dev\r\n250-SIZE 10485760\r\n"));
        assert!(text.contains("354 "));
        assert!(text.ends_with("221 2.0.0 Bye\r\n"));
        let msg = out
            .iter()
            .find_map(|o| match o {
                Output::Message(m) => Some(m.clone()),
                _ => None,
            })
            .expect("a message");
        assert_eq!(msg.data, b"Subject: x\r\n\r\n.hi\r\n");
        assert_eq!(msg.size_param, Some(20));
        assert_eq!(msg.recipients, vec!["c@d"]);
        let mime = msg.mime.expect("parsed");
        assert_eq!(mime.subject.as_deref(), Some("x"));
        assert_eq!(mime.parts.len(), 1);
        assert_eq!(out.last(), Some(&Output::Close));
    }

    #[test]
    fn the_first_line_of_a_message_is_unstuffed_and_a_lone_dot_ends_it() {
        let mut s = session(SmtpConfig::default());
        s.start(0);
        s.feed(0, b"EHLO d\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        let message = |out: &[Output]| {
            out.iter().find_map(|o| match o {
                Output::Message(m) => Some(m.data.clone()),
                _ => None,
            })
        };
        assert!(sent(&s.feed(0, b"DATA\r\n")).starts_with("354"));
        let out = s.feed(0, b".\r\n");
        assert_eq!(message(&out), Some(Vec::new()), "an empty message");
        assert!(sent(&out).starts_with("250"));
        s.feed(0, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        let out = s.feed(0, b"DATA\r\n..x\r\n.\r\n");
        assert_eq!(message(&out), Some(b".x\r\n".to_vec()));
    }

    #[test]
    fn faults_on_nth_occurrence_and_refused_recipients() {
        let cfg = SmtpConfig {
            faults: vec![fault(
                Step::Rcpt,
                Some(2),
                Action::Reply {
                    code: 450,
                    text: "4.2.0 busy\nsecond line".into(),
                },
            )],
            policy: Policy {
                recipients: vec![RecipientRule {
                    address: "*@d".into(),
                    code: 550,
                    text: "5.1.1 no such user".into(),
                }],
                ..Policy::default()
            },
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        s.feed(0, b"HELO dev\r\nMAIL FROM:<a@b>\r\n");
        assert!(sent(&s.feed(0, b"RCPT TO:<x@d>\r\n")).starts_with("550 5.1.1"));
        assert_eq!(
            sent(&s.feed(0, b"RCPT TO:<y@e>\r\n")),
            "450-4.2.0 busy\r\n450 second line\r\n"
        );
        assert!(sent(&s.feed(0, b"RCPT TO:<z@e>\r\n")).starts_with("250"));
    }

    #[test]
    fn garbage_and_long_lines_get_errors_and_the_session_goes_on() {
        let mut s = session(SmtpConfig::default());
        s.start(0);
        assert!(sent(&s.feed(0, b"\x00\xff\xfe garbage\r\n")).starts_with("500"));
        let long = vec![b'A'; 10_000];
        assert!(sent(&s.feed(0, &long)).is_empty());
        assert!(sent(&s.feed(0, b"\r\n")).starts_with("500 5.5.2 Line too long"));
        assert!(sent(&s.feed(0, b"NOOP\r\n")).starts_with("250"));
        assert!(sent(&s.feed(0, b"RCPT TO:<a@b>\r\n")).starts_with("503"));
        assert!(s.take_transcript().iter().all(|e| e.text.len() < 200));
    }

    #[test]
    fn auth_lines_are_redacted() {
        assert_eq!(
            redact_command("AUTH PLAIN AGFAYg=="),
            "AUTH PLAIN [redacted]"
        );
        assert_eq!(redact_command("AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(redact_command("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }

    #[test]
    fn auth_plain_then_required_auth_passes() {
        let cfg = SmtpConfig {
            auth: vec![Mechanism::Plain, Mechanism::Login],
            accounts: vec![Account {
                user: "u".into(),
                password: "p4ss".into(),
                realm: None,
                token: None,
            }],
            policy: Policy {
                require_auth: true,
                ..Policy::default()
            },
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        let ehlo = sent(&s.feed(0, b"EHLO d\r\n"));
        assert!(ehlo.contains("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
        assert!(sent(&s.feed(0, b"MAIL FROM:<a@b>\r\n")).starts_with("530"));
        // "\0u\0wrong"
        let bad = base64::engine::general_purpose::STANDARD.encode(b"\0u\0wrong");
        assert!(sent(&s.feed(0, format!("AUTH PLAIN {bad}\r\n").as_bytes())).starts_with("535"));
        let good = base64::engine::general_purpose::STANDARD.encode(b"\0u\0p4ss");
        let out = s.feed(0, format!("AUTH PLAIN {good}\r\n").as_bytes());
        assert!(sent(&out).starts_with("235"));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Auth(r) if r.ok && r.mechanism == "PLAIN")));
        assert!(sent(&s.feed(0, b"MAIL FROM:<a@b>\r\n")).starts_with("250"));
        let t = s.take_transcript();
        assert!(t
            .iter()
            .all(|e| !e.text.contains(&good) && !e.text.contains("p4ss")));
    }

    #[test]
    fn starttls_is_offered_only_before_tls() {
        let mut e = env();
        e.starttls = true;
        let mut s = Session::new(Arc::new(SmtpConfig::default()), e);
        s.start(0);
        assert!(sent(&s.feed(0, b"EHLO d\r\n")).contains("250 STARTTLS\r\n"));
        let out = s.feed(0, b"STARTTLS\r\nEHLO smuggled\r\n");
        assert_eq!(
            out.last(),
            Some(&Output::StartTls),
            "nothing after STARTTLS is read in plaintext"
        );
        s.tls_started();
        let ehlo = sent(&s.feed(0, b"EHLO d\r\n"));
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(sent(&s.feed(0, b"STARTTLS\r\n")).starts_with("502"));
    }

    #[test]
    fn policies_size_and_bare_lf() {
        let cfg = SmtpConfig {
            policy: Policy {
                max_size: Some(50),
                refuse_bare_lf: true,
                ..Policy::default()
            },
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        s.feed(0, b"EHLO d\r\n");
        assert!(sent(&s.feed(0, b"MAIL FROM:<a@b> SIZE=51\r\n")).starts_with("552"));
        s.feed(0, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        let big = format!("{}\r\n.\r\n", "x".repeat(100));
        assert!(sent(&s.feed(0, big.as_bytes())).starts_with("552"));
        s.feed(0, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        assert!(sent(&s.feed(0, b"a\nb\r\n.\r\n")).starts_with("550 5.6.11"));
    }

    #[test]
    fn half_line_then_hang() {
        let cfg = SmtpConfig {
            faults: vec![fault(Step::Ehlo, None, Action::HalfLine)],
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        let out = s.feed(0, b"EHLO d\r\nNOOP\r\n");
        let text = sent(&out);
        assert!(
            !text.ends_with("\r\n") && text.starts_with("250-"),
            "{text:?}"
        );
        assert_eq!(out.last(), Some(&Output::Hang));
    }

    #[test]
    fn auth_result_faults_come_after_the_credentials_and_leftovers_are_redacted() {
        let cfg = SmtpConfig {
            auth: vec![Mechanism::Login],
            accounts: vec![Account {
                user: "u".into(),
                password: "p4ss".into(),
                realm: None,
                token: None,
            }],
            faults: vec![fault(
                Step::AuthResult,
                None,
                Action::Reply {
                    code: 535,
                    text: "5.7.139 disabled".into(),
                },
            )],
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        assert!(
            sent(&s.feed(0, b"AUTH LOGIN\r\n")).starts_with("503"),
            "AUTH before EHLO"
        );
        s.feed(0, b"EHLO d\r\n");
        assert!(sent(&s.feed(0, b"AUTH LOGIN\r\n")).starts_with("334"));
        assert!(sent(&s.feed(0, b"dQ==\r\n")).starts_with("334"));
        let out = s.feed(0, b"cDRzcw==\r\n");
        assert!(sent(&out).starts_with("535 5.7.139"));
        assert!(out.iter().any(|o| matches!(o, Output::Auth(r) if !r.ok)));
        // A client that goes on sending base64 after the refusal.
        assert!(sent(&s.feed(0, b"cDRzcw==\r\n")).starts_with("500"));
        let t = s.take_transcript();
        assert!(t.iter().all(|e| !e.text.contains("cDRzcw")), "{t:?}");
    }

    #[test]
    fn a_scripted_success_reply_changes_the_text_and_the_step_goes_on() {
        let cfg = SmtpConfig {
            faults: vec![fault(
                Step::Ehlo,
                None,
                Action::Reply {
                    code: 250,
                    text: "custom.hil.test at your service".into(),
                },
            )],
            ..SmtpConfig::default()
        };
        let mut s = session(cfg);
        s.start(0);
        assert_eq!(
            sent(&s.feed(0, b"EHLO d\r\n")),
            "250 custom.hil.test at your service\r\n"
        );
        assert!(
            sent(&s.feed(0, b"MAIL FROM:<a@b>\r\n")).starts_with("250"),
            "EHLO counted"
        );
        assert!(sent(&s.feed(0, b"DATA\r\n")).starts_with("554"));
    }
}
