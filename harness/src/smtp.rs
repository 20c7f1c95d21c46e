//! The fake SMTP server's session, without sockets: bytes from the client go in,
//! bytes to send, "close" and "hang" come out. Commands are parsed with smtp-proto;
//! replies, the EHLO extension list and per-step faults come from [`ServerConfig`].
//! The tokio layer is `smtp_server.rs`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::{Error as ProtoError, Request};

/// A point in the SMTP conversation where a fault can be scripted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Greeting,
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    Quit,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Ehlo => "ehlo",
            Step::Helo => "helo",
            Step::Mail => "mail",
            Step::Rcpt => "rcpt",
            Step::Data => "data",
            Step::EndOfData => "end_of_data",
            Step::Quit => "quit",
        }
    }
}

/// What the server does instead of its normal answer at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Fault {
    /// Answer with this code and text (a multi-line text gives a multi-line reply).
    Reply { code: u16, text: String },
    /// Never answer; keep the connection open until the client closes it.
    Hang,
    /// Close the connection without answering.
    Drop,
}

/// A fault at a step, on every occurrence or only on the `nth` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFault {
    pub step: Step,
    #[serde(default)]
    pub nth: Option<u32>,
    #[serde(flatten)]
    pub fault: Fault,
}

/// A recipient the server refuses, with the reply it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRule {
    pub address: String,
    pub code: u16,
    pub text: String,
}

/// How the fake server behaves: a scenario's SMTP part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// EHLO extension lines, e.g. `SIZE 10485760`, `8BITMIME`, `PIPELINING`.
    pub extensions: Vec<String>,
    pub faults: Vec<StepFault>,
    pub refuse_recipients: Vec<RecipientRule>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "mx.hil.test".into(),
            extensions: vec![
                "SIZE 10485760".into(),
                "8BITMIME".into(),
                "PIPELINING".into(),
            ],
            faults: Vec::new(),
            refuse_recipients: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The fault for the `n`th (1-based) occurrence of `step`, if one is scripted.
    pub fn fault_at(&self, step: Step, n: u32) -> Option<&Fault> {
        self.faults
            .iter()
            .find(|f| f.step == step && f.nth.is_none_or(|k| k == n))
            .map(|f| &f.fault)
    }

    /// The rule refusing `address`, if any.
    pub fn refusal_for(&self, address: &str) -> Option<&RecipientRule> {
        self.refuse_recipients
            .iter()
            .find(|r| r.address.eq_ignore_ascii_case(address))
    }
}

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dir {
    /// From the client (the device).
    C,
    /// From the server (the harness).
    S,
    /// A note of the harness's own (connection opened, closed, hang).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub t_ms: u64,
    pub dir: Dir,
    pub text: String,
}

/// A message the server accepted, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    pub connection: u64,
    pub helo: String,
    /// The verb the client greeted with: EHLO or HELO.
    pub greeted_with: String,
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

/// What the IO layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Vec<u8>),
    Close,
    /// Stop answering; keep reading and discarding until the client leaves.
    Hang,
    Message(Box<Received>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
    Hung,
    Closed,
}

/// Longest command line accepted (RFC 5321 says 512; we are lenient).
pub const MAX_COMMAND_LINE: usize = 4096;

/// One SMTP connection's session.
pub struct Session {
    cfg: Arc<ServerConfig>,
    connection: u64,
    mode: Mode,
    line: Vec<u8>,
    line_overflow: bool,
    data: DataReceiver,
    data_buf: Vec<u8>,
    counts: HashMap<Step, u32>,
    greeted_with: Option<String>,
    helo: String,
    mail_from: Option<(String, Option<usize>)>,
    rcpts: Vec<String>,
    transcript: Vec<Entry>,
    now_ms: u64,
    queued: u64,
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

/// Shows a client line in a transcript with credentials removed.
pub fn redact_command(line: &str) -> String {
    let mut words = line.split_whitespace();
    match words.next() {
        Some(v) if v.eq_ignore_ascii_case("AUTH") => match words.next() {
            Some(mech) => format!("AUTH {mech} [redacted]"),
            None => "AUTH".into(),
        },
        _ => line.to_string(),
    }
}

impl Session {
    pub fn new(cfg: Arc<ServerConfig>, connection: u64) -> Self {
        Session {
            cfg,
            connection,
            mode: Mode::Command,
            line: Vec::new(),
            line_overflow: false,
            data: DataReceiver::new(),
            data_buf: Vec::new(),
            counts: HashMap::new(),
            greeted_with: None,
            helo: String::new(),
            mail_from: None,
            rcpts: Vec::new(),
            transcript: Vec::new(),
            now_ms: 0,
            queued: 0,
        }
    }

    /// Transcript lines recorded since the last call.
    pub fn take_transcript(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.transcript)
    }

    fn log(&mut self, dir: Dir, text: impl Into<String>) {
        self.transcript.push(Entry {
            t_ms: self.now_ms,
            dir,
            text: text.into(),
        });
    }

    fn send(&mut self, out: &mut Vec<Output>, code: u16, text: &str) {
        let bytes = reply(code, text);
        for l in String::from_utf8_lossy(&bytes).lines() {
            self.log(Dir::S, l.to_string());
        }
        out.push(Output::Send(bytes));
    }

    /// Applies a scripted fault for this step if there is one; answers whether it did.
    fn fault(&mut self, step: Step, out: &mut Vec<Output>) -> bool {
        let n = {
            let c = self.counts.entry(step).or_insert(0);
            *c += 1;
            *c
        };
        let Some(fault) = self.cfg.fault_at(step, n).cloned() else {
            return false;
        };
        match fault {
            Fault::Reply { code, text } => {
                self.send(out, code, &text);
                if code == 421 {
                    self.mode = Mode::Closed;
                    self.log(Dir::Note, "closing after 421");
                    out.push(Output::Close);
                }
            }
            Fault::Hang => {
                self.mode = Mode::Hung;
                self.log(Dir::Note, format!("hang at {} (scripted)", step.name()));
                out.push(Output::Hang);
            }
            Fault::Drop => {
                self.mode = Mode::Closed;
                self.log(Dir::Note, format!("drop at {} (scripted)", step.name()));
                out.push(Output::Close);
            }
        }
        true
    }

    /// The opening of the connection: the greeting, unless a fault replaces it.
    pub fn start(&mut self, now_ms: u64) -> Vec<Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if !self.fault(Step::Greeting, &mut out) {
            let text = format!("{} ESMTP hil fake server", self.cfg.hostname);
            self.send(&mut out, 220, &text);
        }
        out
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
                    if done {
                        self.end_of_data(&mut out);
                    }
                }
                Mode::Command => {
                    let Some(pos) = rest.iter().position(|b| *b == b'\n') else {
                        self.push_partial(rest);
                        break;
                    };
                    let (head, tail) = rest.split_at(pos + 1);
                    rest = tail;
                    self.push_partial(head);
                    if self.line_overflow {
                        self.line_overflow = false;
                        self.line.clear();
                        self.log(
                            Dir::C,
                            format!("<line longer than {MAX_COMMAND_LINE} bytes>"),
                        );
                        self.send(&mut out, 500, "5.5.2 Line too long");
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    self.command(&line, &mut out);
                }
            }
        }
        out
    }

    fn push_partial(&mut self, bytes: &[u8]) {
        if self.line_overflow {
            return;
        }
        if self.line.len() + bytes.len() > MAX_COMMAND_LINE + 2 {
            self.line_overflow = true;
            self.line.clear();
            // Keep a newline at the end so the overflow is noticed by the caller.
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn command(&mut self, raw: &[u8], out: &mut Vec<Output>) {
        let shown = String::from_utf8_lossy(raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        self.log(Dir::C, redact_command(&shown));
        let parsed = Request::parse(&mut raw.iter()).map(Request::into_owned);
        match parsed {
            Ok(Request::Ehlo { host }) => {
                if self.fault(Step::Ehlo, out) {
                    return;
                }
                self.reset_transaction();
                self.greeted_with = Some("EHLO".into());
                self.helo = host.clone();
                let mut text = format!("{} Hello {}", self.cfg.hostname, host);
                for e in &self.cfg.extensions {
                    text.push('\n');
                    text.push_str(e);
                }
                self.send(out, 250, &text);
            }
            Ok(Request::Helo { host }) => {
                if self.fault(Step::Helo, out) {
                    return;
                }
                self.reset_transaction();
                self.greeted_with = Some("HELO".into());
                self.helo = host;
                let text = self.cfg.hostname.clone();
                self.send(out, 250, &text);
            }
            Ok(Request::Mail { from }) => {
                if self.greeted_with.is_none() {
                    return self.send(out, 503, "5.5.1 Error: send HELO/EHLO first");
                }
                if self.mail_from.is_some() {
                    return self.send(out, 503, "5.5.1 Error: nested MAIL command");
                }
                if self.fault(Step::Mail, out) {
                    return;
                }
                let size = (from.size > 0).then_some(from.size);
                self.mail_from = Some((from.address, size));
                self.send(out, 250, "2.1.0 Ok");
            }
            Ok(Request::Rcpt { to }) => {
                if self.mail_from.is_none() {
                    return self.send(out, 503, "5.5.1 Error: need MAIL command");
                }
                if self.fault(Step::Rcpt, out) {
                    return;
                }
                if let Some(rule) = self.cfg.refusal_for(&to.address).cloned() {
                    return self.send(out, rule.code, &rule.text);
                }
                self.rcpts.push(to.address);
                self.send(out, 250, "2.1.5 Ok");
            }
            Ok(Request::Data) => {
                if self.rcpts.is_empty() {
                    return self.send(out, 554, "5.5.1 Error: no valid recipients");
                }
                if self.fault(Step::Data, out) {
                    return;
                }
                self.mode = Mode::Data;
                self.data = DataReceiver::new();
                self.data_buf.clear();
                self.send(out, 354, "End data with <CR><LF>.<CR><LF>");
            }
            Ok(Request::Quit) => {
                if self.fault(Step::Quit, out) {
                    return;
                }
                self.send(out, 221, "2.0.0 Bye");
                self.mode = Mode::Closed;
                out.push(Output::Close);
            }
            Ok(Request::Rset) => {
                self.reset_transaction();
                self.send(out, 250, "2.0.0 Ok");
            }
            Ok(Request::Noop { .. }) => self.send(out, 250, "2.0.0 Ok"),
            Ok(Request::StartTls) => self.send(out, 454, "4.7.0 TLS not available"),
            Ok(Request::Auth { .. }) => self.send(out, 502, "5.5.1 AUTH not available"),
            Ok(other) => {
                let msg = format!("5.5.1 {} not implemented", other.name());
                self.send(out, 502, &msg)
            }
            Err(e) => {
                let text = match e {
                    ProtoError::UnknownCommand => {
                        "5.5.2 Syntax error, command unrecognized".to_string()
                    }
                    ProtoError::InvalidSenderAddress => "5.1.7 Bad sender address syntax".into(),
                    ProtoError::InvalidRecipientAddress => {
                        "5.1.3 Bad recipient address syntax".into()
                    }
                    ProtoError::SyntaxError { syntax } => format!("5.5.4 Syntax: {syntax}"),
                    ProtoError::InvalidParameter { param } => {
                        format!("5.5.4 Invalid parameter {param}")
                    }
                    ProtoError::UnsupportedParameter { param } => {
                        format!("5.5.4 Unsupported parameter {}", Cow::from(param))
                    }
                    _ => "5.5.2 Syntax error".into(),
                };
                let code = if text.starts_with("5.5.4") { 501 } else { 500 };
                self.send(out, code, &text);
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
        self.log(Dir::C, format!("<message: {} bytes>", data.len()));
        self.log(Dir::C, ".");
        if self.fault(Step::EndOfData, out) {
            self.reset_transaction();
            return;
        }
        let (mail_from, size_param) = self.mail_from.take().unwrap_or_default();
        let bare_lf = data
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == b'\n' && (*i == 0 || data[i - 1] != b'\r'))
            .count();
        let long_lines = data
            .split(|b| *b == b'\n')
            .filter(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > 998)
            .count();
        self.queued += 1;
        let mime = MimeSummary::parse(&data);
        let msg = Received {
            connection: self.connection,
            helo: self.helo.clone(),
            greeted_with: self.greeted_with.clone().unwrap_or_default(),
            mail_from,
            size_param,
            recipients: std::mem::take(&mut self.rcpts),
            data,
            bare_lf,
            long_lines,
            mime,
        };
        out.push(Output::Message(Box::new(msg)));
        let text = format!("2.0.0 Ok: queued as {}.{}", self.connection, self.queued);
        self.send(out, 250, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(out: &[Output]) -> String {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(b) => Some(String::from_utf8_lossy(b).to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_whole_transaction_in_one_pipelined_chunk() {
        let mut s = Session::new(Arc::new(ServerConfig::default()), 1);
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
    fn faults_on_nth_occurrence_and_refused_recipients() {
        let cfg = ServerConfig {
            faults: vec![StepFault {
                step: Step::Rcpt,
                nth: Some(2),
                fault: Fault::Reply {
                    code: 450,
                    text: "4.2.0 busy\nsecond line".into(),
                },
            }],
            refuse_recipients: vec![RecipientRule {
                address: "x@d".into(),
                code: 550,
                text: "5.1.1 no such user".into(),
            }],
            ..ServerConfig::default()
        };
        let mut s = Session::new(Arc::new(cfg), 1);
        s.start(0);
        s.feed(0, b"HELO dev\r\nMAIL FROM:<a@b>\r\n");
        assert!(sent(&s.feed(0, b"RCPT TO:<x@d>\r\n")).starts_with("550 5.1.1"));
        assert_eq!(
            sent(&s.feed(0, b"RCPT TO:<y@d>\r\n")),
            "450-4.2.0 busy\r\n450 second line\r\n"
        );
        assert!(sent(&s.feed(0, b"RCPT TO:<z@d>\r\n")).starts_with("250"));
    }

    #[test]
    fn garbage_and_long_lines_get_errors_and_the_session_goes_on() {
        let mut s = Session::new(Arc::new(ServerConfig::default()), 1);
        s.start(0);
        assert!(sent(&s.feed(0, b"\x00\xff\xfe garbage\r\n")).starts_with("500"));
        let long = vec![b'A'; 10_000];
        assert!(sent(&s.feed(0, &long)).is_empty());
        assert!(sent(&s.feed(0, b"\r\n")).starts_with("500 5.5.2 Line too long"));
        assert!(sent(&s.feed(0, b"NOOP\r\n")).starts_with("250"));
        assert!(s.take_transcript().iter().all(|e| e.text.len() < 200));
    }

    #[test]
    fn auth_lines_are_redacted() {
        assert_eq!(
            redact_command("AUTH PLAIN AGFAYg=="),
            "AUTH PLAIN [redacted]"
        );
        assert_eq!(redact_command("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }
}
