//! State-machine tests of the fake SMTP and POP3 sessions (`smtp::Session`,
//! `pop3::Pop3Session`) against small reference models written from the RFCs
//! (5321, 4954, 3207; 1939, 2449, 2595) and scenarios/README.md.
//!
//! Each transition is one write of the client (one or more lines, sometimes split in
//! two feeds) or a new connection after the last one closed. The model interprets the
//! written bytes the way the RFCs say a server must (commands, SASL responses, DATA
//! lines with dot-stuffing) and predicts every reply, the close and what the server
//! keeps; the test feeds the same bytes to the real session and compares.
//!
//! `PROPTEST_CASES` raises the number of cases (default 96 per model).

use std::sync::Arc;

use base64::Engine;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use hil_mail::pop3::{apop_digest, Pop3Config, Pop3Output, Pop3Session, PopAccount, StoredMessage};
use hil_mail::sasl::{Account, Mechanism};
use hil_mail::smtp::{
    ListenerKind, ListenerSpec, Output, Policy, Received, RecipientRule, Session, SessionEnv,
    SmtpConfig,
};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------

const USER: &str = "printer";
const PASSWORD: &str = "s3cret";

/// The fixed server configurations the strategy picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SCfg {
    /// Plain listener, AUTH PLAIN LOGIN offered, no policy.
    Plain,
    /// Plain listener without AUTH.
    NoAuth,
    /// STARTTLS listener, AUTH only after TLS, AUTH required for MAIL.
    StarttlsAuthAfterTls,
    /// Plain listener, AUTH required for MAIL.
    RequireAuth,
    /// Plain listener, max_size 300 (SIZE 300 advertised) and bare LF refused.
    MaxSize,
    /// Plain listener with recipient rules.
    Rules,
}

const MAX_SIZE: u64 = 300;

impl SCfg {
    fn starttls(self) -> bool {
        self == SCfg::StarttlsAuthAfterTls
    }
    fn auth(self) -> bool {
        self != SCfg::NoAuth
    }
    fn auth_before_tls(self) -> bool {
        self != SCfg::StarttlsAuthAfterTls
    }
    fn require_auth(self) -> bool {
        matches!(self, SCfg::StarttlsAuthAfterTls | SCfg::RequireAuth)
    }
    fn max_size(self) -> Option<u64> {
        (self == SCfg::MaxSize).then_some(MAX_SIZE)
    }
    fn refuse_bare_lf(self) -> bool {
        self == SCfg::MaxSize
    }
    fn size_ext(self) -> String {
        format!("SIZE {}", self.max_size().unwrap_or(10485760))
    }
    /// The reply a recipient rule gives (the first match), if any.
    fn rule(self, addr: &str) -> Option<u16> {
        if self != SCfg::Rules {
            return None;
        }
        if addr.to_ascii_lowercase().ends_with("@blocked.test") {
            Some(550)
        } else if addr == "busy@ok.test" {
            Some(450)
        } else if addr == "vip@ok.test" {
            Some(250)
        } else {
            None
        }
    }

    fn config(self) -> SmtpConfig {
        let mut recipients = Vec::new();
        if self == SCfg::Rules {
            let rule = |a: &str, code, t: &str| RecipientRule {
                address: a.into(),
                code,
                text: t.into(),
            };
            recipients = vec![
                rule("*@blocked.test", 550, "5.7.1 Relay access denied"),
                rule("busy@ok.test", 450, "4.2.1 Mailbox busy"),
                rule("vip@ok.test", 250, "2.1.5 Welcome"),
            ];
        }
        SmtpConfig {
            listeners: vec![ListenerSpec {
                kind: if self.starttls() {
                    ListenerKind::Starttls
                } else {
                    ListenerKind::Plain
                },
                ..ListenerSpec::plain()
            }],
            extensions: vec![self.size_ext(), "8BITMIME".into(), "PIPELINING".into()],
            auth: if self.auth() {
                vec![Mechanism::Plain, Mechanism::Login]
            } else {
                Vec::new()
            },
            auth_before_tls: self.auth_before_tls(),
            accounts: vec![Account {
                user: USER.into(),
                password: PASSWORD.into(),
                realm: None,
                token: None,
            }],
            policy: Policy {
                require_auth: self.require_auth(),
                max_size: self.max_size(),
                refuse_bare_lf: self.refuse_bare_lf(),
                recipients,
                pop_before_smtp_window_s: None,
            },
            ..SmtpConfig::default()
        }
    }
}

/// A credential a client may send, in PLAIN form (authzid NUL authcid NUL password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    Good,
    WrongPassword,
    UnknownUser,
    /// authzid equal to authcid: allowed.
    SameAuthzid,
    /// authzid of someone else: proxy authorization, refused.
    OtherAuthzid,
}

impl Cred {
    fn plain(self) -> Vec<u8> {
        match self {
            Cred::Good => format!("\0{USER}\0{PASSWORD}"),
            Cred::WrongPassword => format!("\0{USER}\0wrong"),
            Cred::UnknownUser => format!("\0nobody\0{PASSWORD}"),
            Cred::SameAuthzid => format!("{USER}\0{USER}\0{PASSWORD}"),
            Cred::OtherAuthzid => format!("boss\0{USER}\0{PASSWORD}"),
        }
        .into_bytes()
    }
}

/// The initial response of an AUTH command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ir {
    /// PLAIN: the credential; LOGIN: the user name of `Cred` (good or not).
    Cred(Cred),
    /// "=": an empty initial response (RFC 4954 §4).
    Empty,
    /// Not base64.
    Garbage,
}

/// A line of a client's write. Every line renders to bytes ending in LF.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SLine {
    Ehlo(&'static str),
    Helo(&'static str),
    EhloNoArg,
    HeloNoArg,
    StartTls,
    AuthPlain(Option<Ir>),
    AuthLogin(Option<Ir>),
    AuthUnknown,
    /// base64 of a PLAIN message.
    RespPlain(Cred),
    /// base64 of a user name (good or not).
    RespUser(bool),
    /// base64 of a password (good or not).
    RespPass(bool),
    RespCancel,
    RespGarbage,
    Mail(&'static str, Option<u64>),
    Rcpt(&'static str),
    Data,
    Rset,
    Noop,
    Quit,
    Unknown,
    /// A command line longer than the server takes (5,000 bytes).
    LongLine,
    /// NOOP ended by a bare LF.
    BareLfNoop,
    /// A message line sent as is.
    Text(&'static str),
    /// A message line starting with a dot, as the client dot-stuffs it ("..x").
    Dotted(&'static str),
    /// A message line of 1,000 octets.
    LongBody,
    /// A message line with a bare LF inside.
    BareLfBody,
    /// The end of the message.
    Dot,
}

impl SLine {
    fn render(&self) -> Vec<u8> {
        let crlf = |s: String| format!("{s}\r\n").into_bytes();
        match self {
            SLine::Ehlo(h) => crlf(format!("EHLO {h}")),
            SLine::Helo(h) => crlf(format!("HELO {h}")),
            SLine::EhloNoArg => crlf("EHLO".into()),
            SLine::HeloNoArg => crlf("HELO".into()),
            SLine::StartTls => crlf("STARTTLS".into()),
            SLine::AuthPlain(ir) | SLine::AuthLogin(ir) => {
                let mech = if matches!(self, SLine::AuthPlain(_)) {
                    "PLAIN"
                } else {
                    "LOGIN"
                };
                match ir {
                    None => crlf(format!("AUTH {mech}")),
                    Some(Ir::Empty) => crlf(format!("AUTH {mech} =")),
                    Some(Ir::Garbage) => crlf(format!("AUTH {mech} !!notbase64")),
                    Some(Ir::Cred(c)) if mech == "PLAIN" => {
                        crlf(format!("AUTH {mech} {}", b64(&c.plain())))
                    }
                    Some(Ir::Cred(c)) => {
                        let user = if *c == Cred::UnknownUser {
                            "nobody"
                        } else {
                            USER
                        };
                        crlf(format!("AUTH {mech} {}", b64(user.as_bytes())))
                    }
                }
            }
            SLine::AuthUnknown => crlf("AUTH FOO-BAR".into()),
            SLine::RespPlain(c) => crlf(b64(&c.plain())),
            SLine::RespUser(good) => crlf(b64(if *good { USER } else { "nobody" }.as_bytes())),
            SLine::RespPass(good) => crlf(b64(if *good { PASSWORD } else { "wrong" }.as_bytes())),
            SLine::RespCancel => crlf("*".into()),
            SLine::RespGarbage => crlf("not base64!".into()),
            SLine::Mail(a, None) => crlf(format!("MAIL FROM:<{a}>")),
            SLine::Mail(a, Some(n)) => crlf(format!("MAIL FROM:<{a}> SIZE={n}")),
            SLine::Rcpt(a) => crlf(format!("RCPT TO:<{a}>")),
            SLine::Data => crlf("DATA".into()),
            SLine::Rset => crlf("RSET".into()),
            SLine::Noop => crlf("NOOP".into()),
            SLine::Quit => crlf("QUIT".into()),
            SLine::Unknown => crlf("XYZZY plugh".into()),
            SLine::LongLine => crlf(format!("NOOP {}", "x".repeat(5000))),
            SLine::BareLfNoop => b"NOOP\n".to_vec(),
            SLine::Text(t) => crlf(t.to_string()),
            SLine::Dotted(t) => crlf(format!(".{t}")),
            SLine::LongBody => crlf("y".repeat(1000)),
            SLine::BareLfBody => crlf("bare\nlf".into()),
            SLine::Dot => crlf(".".into()),
        }
    }
}

/// A reply the model expects: its code, and the text where it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SExp {
    Code(u16),
    /// 250 to EHLO with exactly these extension lines.
    Ehlo(Vec<String>),
    /// A 334 challenge with this (base64) text.
    Challenge(String),
}

/// A message as the model expects the server to keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SMsg {
    connection: u64,
    helo: String,
    greeted_with: String,
    tls: bool,
    auth_user: Option<String>,
    mail_from: String,
    size_param: Option<usize>,
    recipients: Vec<String>,
    data: Vec<u8>,
    bare_lf: usize,
    long_lines: usize,
}

impl SMsg {
    fn from_received(r: &Received) -> SMsg {
        SMsg {
            connection: r.connection,
            helo: r.helo.clone(),
            greeted_with: r.greeted_with.clone(),
            tls: r.tls,
            auth_user: r.auth_user.clone(),
            mail_from: r.mail_from.clone(),
            size_param: r.size_param,
            recipients: r.recipients.clone(),
            data: r.data.clone(),
            bare_lf: r.bare_lf,
            long_lines: r.long_lines,
        }
    }
}

/// A SASL exchange waiting for the client's next response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SaslWait {
    PlainMessage,
    LoginUser,
    LoginPassword(String),
}

#[derive(Debug, Clone)]
enum STrans {
    /// One write of the client; `split` cuts it in two feeds at that point.
    Write {
        lines: Vec<SLine>,
        split: Option<Index>,
    },
    /// A new connection after the last one closed.
    Reconnect,
}

#[derive(Debug, Clone)]
struct SModel {
    cfg: SCfg,
    connection: u64,
    closed: bool,
    tls: bool,
    /// EHLO or HELO, and the name given.
    greeted: Option<(&'static str, String)>,
    auth_user: Option<String>,
    sasl: Option<SaslWait>,
    mail: Option<(String, Option<usize>)>,
    rcpts: Vec<String>,
    /// In DATA: the partial line not yet ended by CRLF, and the message so far.
    data: Option<(Vec<u8>, Vec<u8>)>,
    accepted: Vec<SMsg>,
    /// What the last transition should have produced.
    expect: Vec<SExp>,
    expect_close: bool,
    expect_tls: bool,
}

impl SModel {
    fn new(cfg: SCfg) -> SModel {
        SModel {
            cfg,
            connection: 1,
            closed: false,
            tls: false,
            greeted: None,
            auth_user: None,
            sasl: None,
            mail: None,
            rcpts: Vec::new(),
            data: None,
            accepted: Vec::new(),
            expect: Vec::new(),
            expect_close: false,
            expect_tls: false,
        }
    }

    fn reply(&mut self, code: u16) {
        self.expect.push(SExp::Code(code));
    }

    fn reset_transaction(&mut self) {
        self.mail = None;
        self.rcpts.clear();
    }

    /// What a well-behaved client would send next towards a delivered message (to
    /// reach deep states with few cases).
    fn next_step(&self) -> SLine {
        let needs_auth = self.cfg.require_auth() && self.auth_user.is_none();
        if self.cfg.starttls() && !self.tls && needs_auth {
            SLine::StartTls
        } else if self.greeted.is_none() {
            SLine::Ehlo("printer.local")
        } else if needs_auth && self.mail.is_none() {
            SLine::AuthPlain(Some(Ir::Cred(Cred::Good)))
        } else if self.mail.is_none() {
            SLine::Mail("scan@printer.local", Some(120))
        } else if self.rcpts.is_empty() {
            SLine::Rcpt("ok@ok.test")
        } else {
            SLine::Data
        }
    }

    fn ehlo_lines(&self) -> Vec<String> {
        let mut v = vec![self.cfg.size_ext(), "8BITMIME".into(), "PIPELINING".into()];
        if self.cfg.starttls() && !self.tls {
            v.push("STARTTLS".into());
        }
        if self.cfg.auth() && (self.tls || self.cfg.auth_before_tls()) {
            v.push("AUTH PLAIN LOGIN".into());
        }
        v
    }

    /// One write. Returns nothing; fills `expect`.
    fn write(&mut self, lines: &[SLine]) {
        self.expect.clear();
        self.expect_close = false;
        self.expect_tls = false;
        for line in lines {
            if self.closed || self.expect_tls {
                // After QUIT nothing is read; after STARTTLS's 220 the rest of the
                // write belongs to the TLS layer (RFC 3207 §4.2: a server must not
                // act on plaintext sent before the handshake).
                break;
            }
            let bytes = line.render();
            if self.data.is_some() {
                self.data_bytes(&bytes);
            } else if bytes.len() > 4096 + 2 {
                // Too long for a command line (or a SASL response): refused, and
                // an exchange under way is abandoned.
                self.sasl = None;
                self.reply(500);
            } else if *line == SLine::BareLfBody {
                // Commands end at LF: this is two lines for the server.
                for piece in [&b"bare\n"[..], b"lf\r\n"] {
                    if self.sasl.is_some() {
                        self.sasl_line(piece);
                    } else {
                        self.reply(500);
                    }
                }
            } else if self.sasl.is_some() {
                self.sasl_line(&bytes);
            } else {
                self.command(line);
            }
        }
    }

    /// Message bytes in DATA (RFC 5321 §4.1.1.4, §4.5.2): lines end with CRLF only; a
    /// line that is a single dot ends the message, a leading dot of any other line
    /// is removed. This includes the very first line of the message.
    fn data_bytes(&mut self, bytes: &[u8]) {
        let (pending, body) = self.data.as_mut().expect("in DATA");
        pending.extend_from_slice(bytes);
        while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..pos + 2).take(pos).collect();
            if line == b"." {
                assert!(pending.is_empty(), "lines are whole after the dot");
                let body = std::mem::take(body);
                self.data = None;
                return self.end_of_data(body);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            body.extend_from_slice(line);
            body.extend_from_slice(b"\r\n");
        }
    }

    fn end_of_data(&mut self, data: Vec<u8>) {
        let bare_lf = data
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
            .count();
        let long_lines = data
            .split(|b| *b == b'\n')
            .filter(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > 998)
            .count();
        let (mail_from, size_param) = self.mail.take().expect("DATA needs MAIL");
        let recipients = std::mem::take(&mut self.rcpts);
        if self.cfg.max_size().is_some_and(|m| data.len() as u64 > m) {
            return self.reply(552);
        }
        if bare_lf > 0 && self.cfg.refuse_bare_lf() {
            return self.reply(550);
        }
        let (verb, helo) = self.greeted.clone().expect("MAIL needs a greeting");
        self.accepted.push(SMsg {
            connection: self.connection,
            helo,
            greeted_with: verb.into(),
            tls: self.tls,
            auth_user: self.auth_user.clone(),
            mail_from,
            size_param,
            recipients,
            data,
            bare_lf,
            long_lines,
        });
        self.reply(250);
    }

    /// A response line in a SASL exchange (RFC 4954 §4).
    fn sasl_line(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let wait = self.sasl.take().expect("in an exchange");
        if text == "*" {
            return self.reply(501);
        }
        let decoded = if text == "=" {
            Ok(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(text.trim())
        };
        let Ok(decoded) = decoded else {
            return self.reply(501);
        };
        match wait {
            SaslWait::PlainMessage => self.plain(&decoded),
            SaslWait::LoginUser => self.login_user(&decoded),
            SaslWait::LoginPassword(user) => {
                let ok = user == USER && decoded == PASSWORD.as_bytes();
                self.auth_result(ok.then_some(user));
            }
        }
    }

    /// RFC 4616: authzid NUL authcid NUL passwd; an authzid other than the user is
    /// proxy authorization, which this server refuses.
    fn plain(&mut self, msg: &[u8]) {
        let parts: Vec<&[u8]> = msg.split(|b| *b == 0).collect();
        let ok = match parts[..] {
            [authzid, authcid, passwd] => {
                authcid == USER.as_bytes()
                    && passwd == PASSWORD.as_bytes()
                    && (authzid.is_empty() || authzid == authcid)
            }
            _ => false,
        };
        self.auth_result(ok.then(|| USER.to_string()));
    }

    fn login_user(&mut self, user: &[u8]) {
        match String::from_utf8(user.to_vec()) {
            Ok(u) => {
                self.sasl = Some(SaslWait::LoginPassword(u));
                self.expect.push(SExp::Challenge(b64(b"Password:")));
            }
            Err(_) => self.auth_result(None),
        }
    }

    fn auth_result(&mut self, user: Option<String>) {
        match user {
            Some(u) => {
                self.auth_user = Some(u);
                self.reply(235);
            }
            None => self.reply(535),
        }
    }

    fn auth(&mut self, mech: Option<&str>, ir: Option<Ir>) {
        if self.greeted.is_none() {
            // AUTH is an extension: only after EHLO (HELO is tolerated, as by
            // common servers).
            return self.reply(503);
        }
        if self.auth_user.is_some() || self.mail.is_some() {
            // RFC 4954 §4: no second AUTH, and none inside a mail transaction.
            return self.reply(503);
        }
        let Some(mech) = mech else {
            return self.reply(504);
        };
        if !self.tls && !self.cfg.auth_before_tls() {
            return self.reply(538);
        }
        if !self.cfg.auth() {
            return self.reply(504);
        }
        let ir = match ir {
            None => None,
            Some(Ir::Garbage) => return self.reply(501),
            Some(Ir::Empty) => Some(Vec::new()),
            Some(Ir::Cred(c)) if mech == "PLAIN" => Some(c.plain()),
            Some(Ir::Cred(c)) => Some(
                if c == Cred::UnknownUser {
                    "nobody"
                } else {
                    USER
                }
                .as_bytes()
                .to_vec(),
            ),
        };
        match (mech, ir) {
            ("PLAIN", Some(msg)) => self.plain(&msg),
            ("PLAIN", None) => {
                self.sasl = Some(SaslWait::PlainMessage);
                self.expect.push(SExp::Challenge(String::new()));
            }
            (_, Some(user)) => self.login_user(&user),
            (_, None) => {
                self.sasl = Some(SaslWait::LoginUser);
                self.expect.push(SExp::Challenge(b64(b"Username:")));
            }
        }
    }

    fn command(&mut self, line: &SLine) {
        match line {
            SLine::Ehlo(h) | SLine::Helo(h) => {
                // RFC 5321 §4.1.4: EHLO/HELO in a session resets it like RSET.
                self.reset_transaction();
                if let SLine::Ehlo(_) = line {
                    self.greeted = Some(("EHLO", h.to_string()));
                    self.expect.push(SExp::Ehlo(self.ehlo_lines()));
                } else {
                    self.greeted = Some(("HELO", h.to_string()));
                    self.reply(250);
                }
            }
            SLine::EhloNoArg | SLine::HeloNoArg => self.reply(501),
            SLine::StartTls => {
                if self.cfg.starttls() && !self.tls {
                    // RFC 3207 §4.2: after the handshake the server forgets
                    // everything it learned from the client.
                    self.reply(220);
                    self.expect_tls = true;
                    self.tls = true;
                    self.greeted = None;
                    self.auth_user = None;
                    self.reset_transaction();
                } else {
                    self.reply(502);
                }
            }
            SLine::AuthPlain(ir) => self.auth(Some("PLAIN"), *ir),
            SLine::AuthLogin(ir) => self.auth(Some("LOGIN"), *ir),
            SLine::AuthUnknown => self.auth(None, None),
            SLine::Mail(addr, size) => {
                if self.greeted.is_none() || self.mail.is_some() {
                    return self.reply(503);
                }
                if self.cfg.require_auth() && self.auth_user.is_none() {
                    return self.reply(530);
                }
                if let (Some(max), Some(n)) = (self.cfg.max_size(), size) {
                    if *n > max {
                        // RFC 1870 §6.1.
                        return self.reply(552);
                    }
                }
                self.mail = Some((addr.to_string(), size.map(|n| n as usize)));
                self.reply(250);
            }
            SLine::Rcpt(addr) => {
                if self.mail.is_none() {
                    return self.reply(503);
                }
                match self.cfg.rule(addr) {
                    Some(code) if code / 100 != 2 => self.reply(code),
                    _ => {
                        self.rcpts.push(addr.to_string());
                        self.reply(250);
                    }
                }
            }
            SLine::Data => {
                if self.mail.is_none() {
                    self.reply(503)
                } else if self.rcpts.is_empty() {
                    // RFC 5321 §3.3: 503 or 554 "no valid recipients".
                    self.reply(554)
                } else {
                    self.data = Some((Vec::new(), Vec::new()));
                    self.reply(354)
                }
            }
            SLine::Rset => {
                self.reset_transaction();
                self.reply(250);
            }
            SLine::Noop | SLine::BareLfNoop => self.reply(250),
            SLine::Quit => {
                self.reply(221);
                self.closed = true;
                self.expect_close = true;
            }
            // A message line that happens to be a command, sent outside DATA.
            SLine::Text("QUIT") => self.command(&SLine::Quit),
            // Anything else is no command (message lines, SASL responses sent
            // outside an exchange, unknown verbs).
            _ => self.reply(500),
        }
    }
}

fn s_command_line() -> BoxedStrategy<SLine> {
    let host = prop_oneof![Just("printer.local"), Just("[192.0.2.7]")];
    let sender = prop_oneof![Just("scan@printer.local"), Just("")];
    let size = prop_oneof![Just(None), Just(Some(120u64)), Just(Some(5000u64))];
    let rcpt = prop_oneof![
        Just("ok@ok.test"),
        Just("other@ok.test"),
        Just("x@blocked.test"),
        Just("busy@ok.test"),
        Just("vip@ok.test"),
    ];
    let cred = prop_oneof![
        4 => Just(Cred::Good),
        2 => Just(Cred::WrongPassword),
        1 => Just(Cred::UnknownUser),
        1 => Just(Cred::SameAuthzid),
        1 => Just(Cred::OtherAuthzid),
    ];
    let ir = prop_oneof![
        2 => Just(None),
        4 => cred.clone().prop_map(|c| Some(Ir::Cred(c))),
        1 => Just(Some(Ir::Empty)),
        1 => Just(Some(Ir::Garbage)),
    ];
    prop_oneof![
        4 => host.clone().prop_map(SLine::Ehlo),
        1 => host.prop_map(SLine::Helo),
        1 => Just(SLine::EhloNoArg),
        1 => Just(SLine::HeloNoArg),
        2 => Just(SLine::StartTls),
        3 => ir.clone().prop_map(SLine::AuthPlain),
        2 => ir.prop_map(SLine::AuthLogin),
        1 => Just(SLine::AuthUnknown),
        5 => (sender, size).prop_map(|(a, n)| SLine::Mail(a, n)),
        5 => rcpt.prop_map(SLine::Rcpt),
        4 => Just(SLine::Data),
        1 => Just(SLine::Rset),
        1 => Just(SLine::Noop),
        1 => Just(SLine::Quit),
        1 => Just(SLine::Unknown),
        1 => Just(SLine::LongLine),
        1 => Just(SLine::BareLfNoop),
        1 => cred.prop_map(SLine::RespPlain),
        1 => Just(SLine::Text("Subject: stray")),
    ]
    .boxed()
}

fn s_sasl_line() -> BoxedStrategy<SLine> {
    let cred = prop_oneof![
        3 => Just(Cred::Good),
        1 => Just(Cred::WrongPassword),
        1 => Just(Cred::OtherAuthzid),
    ];
    prop_oneof![
        3 => cred.prop_map(SLine::RespPlain),
        3 => any::<bool>().prop_map(SLine::RespUser),
        3 => any::<bool>().prop_map(SLine::RespPass),
        1 => Just(SLine::RespCancel),
        1 => Just(SLine::RespGarbage),
        1 => Just(SLine::LongLine),
        1 => s_command_line(),
    ]
    .boxed()
}

fn s_body_line() -> BoxedStrategy<SLine> {
    prop_oneof![
        4 => prop_oneof![
            Just("Subject: scan"),
            Just(""),
            Just("hello from the printer"),
            Just("QUIT"),
        ]
        .prop_map(SLine::Text),
        2 => prop_oneof![Just("hidden"), Just(""), Just(".")].prop_map(SLine::Dotted),
        1 => Just(SLine::LongBody),
        1 => Just(SLine::BareLfBody),
        1 => Just(SLine::BareLfNoop),
        3 => Just(SLine::Dot),
    ]
    .boxed()
}

struct SmtpRef;

impl ReferenceStateMachine for SmtpRef {
    type State = SModel;
    type Transition = STrans;

    fn init_state() -> BoxedStrategy<SModel> {
        prop_oneof![
            Just(SCfg::Plain),
            Just(SCfg::NoAuth),
            Just(SCfg::StarttlsAuthAfterTls),
            Just(SCfg::RequireAuth),
            Just(SCfg::MaxSize),
            Just(SCfg::Rules),
        ]
        .prop_map(SModel::new)
        .boxed()
    }

    fn transitions(state: &SModel) -> BoxedStrategy<STrans> {
        if state.closed {
            return Just(STrans::Reconnect).boxed();
        }
        let line = if state.data.is_some() {
            prop_oneof![4 => s_body_line(), 1 => s_command_line()].boxed()
        } else if state.sasl.is_some() {
            s_sasl_line()
        } else {
            prop_oneof![2 => s_command_line(), 1 => Just(state.next_step())].boxed()
        };
        let lines = prop_oneof![
            3 => prop::collection::vec(line.clone(), 1..=1),
            2 => prop::collection::vec(line, 2..=5),
        ];
        (lines, prop::option::weighted(0.3, any::<Index>()))
            .prop_map(|(lines, split)| STrans::Write { lines, split })
            .boxed()
    }

    fn preconditions(state: &SModel, t: &STrans) -> bool {
        match t {
            STrans::Reconnect => state.closed,
            STrans::Write { lines, split } => {
                // A write is never split around STARTTLS: what follows it in the same
                // read is dropped, a later read would be TLS.
                !state.closed && (split.is_none() || !lines.contains(&SLine::StartTls))
            }
        }
    }

    fn apply(mut state: SModel, t: &STrans) -> SModel {
        match t {
            STrans::Reconnect => {
                let mut fresh = SModel::new(state.cfg);
                fresh.connection = state.connection + 1;
                fresh.accepted = std::mem::take(&mut state.accepted);
                fresh.expect = vec![SExp::Code(220)];
                fresh
            }
            STrans::Write { lines, .. } => {
                state.write(lines);
                state
            }
        }
    }
}

struct SmtpSut {
    session: Session,
    cfg: Arc<SmtpConfig>,
    closed: bool,
    received: Vec<SMsg>,
}

fn smtp_session(cfg: &Arc<SmtpConfig>, connection: u64, starttls: bool) -> Session {
    Session::new(
        Arc::clone(cfg),
        SessionEnv {
            connection,
            peer: [192, 0, 2, 9].into(),
            starttls,
            tls: false,
            pop_login_within: Arc::new(|_, _| false),
        },
    )
}

/// Splits the bytes a session sent into replies (a multi-line reply is one).
fn smtp_replies(bytes: &[u8]) -> Vec<(u16, Vec<String>)> {
    let text = String::from_utf8(bytes.to_vec()).expect("replies are UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "unended reply {text:?}"
    );
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in text.split_terminator("\r\n") {
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no reply code in {line:?}"));
        cur.push(line.get(4..).unwrap_or("").to_string());
        match line.as_bytes().get(3) {
            Some(b'-') => {}
            Some(b' ') | None => out.push((code, std::mem::take(&mut cur))),
            Some(_) => panic!("bad reply line {line:?}"),
        }
    }
    assert!(cur.is_empty(), "unfinished multi-line reply in {text:?}");
    out
}

fn smtp_got(replies: &[(u16, Vec<String>)], expect: &[SExp]) -> Vec<SExp> {
    // Shown in the model's terms: text only where the model looks at it.
    replies
        .iter()
        .zip(expect.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|((code, lines), e)| match e {
            Some(SExp::Ehlo(_)) if *code == 250 => SExp::Ehlo(lines[1..].to_vec()),
            Some(SExp::Challenge(_)) if *code == 334 => SExp::Challenge(lines[0].clone()),
            _ => SExp::Code(*code),
        })
        .collect()
}

impl SmtpSut {
    fn feed(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        let mut sent = Vec::new();
        let mut start_tls = false;
        for o in self.session.feed(0, bytes) {
            assert!(!self.closed, "output after Close: {o:?}");
            assert!(!start_tls, "output after StartTls: {o:?}");
            match o {
                Output::Send(b) => sent.extend_from_slice(&b),
                Output::Close => self.closed = true,
                Output::StartTls => start_tls = true,
                Output::Message(m) => self.received.push(SMsg::from_received(&m)),
                Output::Auth(_) => {}
                other => panic!("unexpected output {other:?}"),
            }
        }
        if start_tls {
            // What smtp_server.rs does: the handshake, then the session starts over.
            self.session.tls_started();
        }
        (sent, start_tls)
    }
}

struct SmtpTest;

impl StateMachineTest for SmtpTest {
    type SystemUnderTest = SmtpSut;
    type Reference = SmtpRef;

    fn init_test(ref_state: &SModel) -> SmtpSut {
        let cfg = Arc::new(ref_state.cfg.config());
        let mut session = smtp_session(&cfg, 1, ref_state.cfg.starttls());
        let greeting = session.start(0);
        assert!(
            matches!(&greeting[..], [Output::Send(b)] if b.starts_with(b"220 ")),
            "{greeting:?}"
        );
        SmtpSut {
            session,
            cfg,
            closed: false,
            received: Vec::new(),
        }
    }

    fn apply(mut sut: SmtpSut, model: &SModel, t: STrans) -> SmtpSut {
        match t {
            STrans::Reconnect => {
                assert!(sut.closed);
                sut.session = smtp_session(&sut.cfg, model.connection, model.cfg.starttls());
                sut.closed = false;
                let mut sent = Vec::new();
                for o in sut.session.start(0) {
                    match o {
                        Output::Send(b) => sent.extend_from_slice(&b),
                        other => panic!("unexpected output at the greeting {other:?}"),
                    }
                }
                let got = smtp_got(&smtp_replies(&sent), &model.expect);
                assert_eq!(got, model.expect, "greeting");
            }
            STrans::Write { lines, split } => {
                let bytes: Vec<u8> = lines.iter().flat_map(SLine::render).collect();
                let at = split.map_or(bytes.len(), |i| 1 + i.index(bytes.len()));
                let (mut sent, tls) = sut.feed(&bytes[..at]);
                if at < bytes.len() && !sut.closed {
                    assert!(!tls);
                    let (more, _) = sut.feed(&bytes[at..]);
                    sent.extend(more);
                }
                let got = smtp_got(&smtp_replies(&sent), &model.expect);
                assert_eq!(
                    got,
                    model.expect,
                    "replies to {:?}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(300)
                        .collect::<String>()
                );
                assert_eq!(sut.closed, model.expect_close, "closed");
                assert_eq!(tls, model.expect_tls, "TLS started");
                assert_eq!(sut.session.in_tls(), model.tls, "in TLS");
            }
        }
        assert_eq!(sut.received, model.accepted, "accepted messages");
        sut
    }

    fn teardown(sut: SmtpSut, model: SModel) {
        assert_eq!(sut.received, model.accepted, "accepted messages at the end");
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(),
        max_shrink_iters: 20_000,
        failure_persistence: None,
        .. Config::default()
    })]

    #[test]
    fn smtp_session_follows_the_model(sequential 1..30 => SmtpTest);
}

// ---------------------------------------------------------------------------------
// POP3
// ---------------------------------------------------------------------------------

const POP_USER: &str = "alice";
/// With a space: PASS takes the rest of the line (RFC 1939 §7).
const POP_PASSWORD: &str = "s3cret pass";

/// The mailbox: uid, data as configured, size with CRLF line ends (counted by hand),
/// and the lines RETR sends after "+OK", dot-stuffed and terminated.
const MAILBOX: [(&str, &str, usize, &str); 3] = [
    (
        "m1",
        "Subject: a\r\n\r\nhello\r\n",
        21,
        "Subject: a\r\n\r\nhello\r\n.\r\n",
    ),
    (
        "m2",
        "Subject: b\n\n.dot\n..two\n",
        27,
        "Subject: b\r\n\r\n..dot\r\n...two\r\n.\r\n",
    ),
    ("m3", "x", 3, "x\r\n.\r\n"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PCfg {
    /// Plain listener, APOP offered.
    Plain,
    /// STARTTLS listener (STLS offered), APOP offered.
    Stls,
    /// No APOP timestamp.
    NoApop,
    /// APOP offered but always refused.
    RefuseApop,
}

impl PCfg {
    fn stls(self) -> bool {
        self == PCfg::Stls
    }
    fn apop(self) -> bool {
        self != PCfg::NoApop
    }
    fn config(self) -> Pop3Config {
        Pop3Config {
            apop: self.apop(),
            refuse_apop: self == PCfg::RefuseApop,
            stls: self.stls(),
            accounts: vec![PopAccount {
                user: POP_USER.into(),
                password: POP_PASSWORD.into(),
            }],
            messages: MAILBOX
                .iter()
                .map(|(uid, data, _, _)| StoredMessage {
                    uid: uid.to_string(),
                    data: data.to_string(),
                })
                .collect(),
            ..Pop3Config::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    N(usize),
    Junk,
    Two,
}

impl Arg {
    fn render(self) -> String {
        match self {
            Arg::N(n) => n.to_string(),
            Arg::Junk => "x1".into(),
            Arg::Two => "1 2".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApopKind {
    Good,
    WrongPassword,
    UnknownUser,
    NoArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PCmd {
    User(Option<&'static str>),
    /// Right password, wrong one, or none.
    Pass(Option<bool>),
    Apop(ApopKind),
    Stls,
    Stat,
    List(Option<Arg>),
    Uidl(Option<Arg>),
    Retr(Option<Arg>),
    Dele(Option<Arg>),
    Rset,
    Noop,
    Quit,
    Capa,
    Unknown,
    LongLine,
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PLine {
    cmd: PCmd,
    /// The keyword in lower case (keywords are case-insensitive, RFC 1939 §3).
    lower: bool,
    /// Ended by a bare LF.
    bare_lf: bool,
}

impl PLine {
    /// The line as sent; APOP needs the greeting's timestamp.
    fn render(&self, timestamp: Option<&str>) -> Vec<u8> {
        let with = |verb: &str, arg: Option<Arg>| match arg {
            Some(a) => format!("{verb} {}", a.render()),
            None => verb.to_string(),
        };
        let text = match self.cmd {
            PCmd::User(Some(u)) => format!("USER {u}"),
            PCmd::User(None) => "USER".into(),
            PCmd::Pass(Some(true)) => format!("PASS {POP_PASSWORD}"),
            PCmd::Pass(Some(false)) => "PASS wrong".into(),
            PCmd::Pass(None) => "PASS".into(),
            PCmd::Apop(k) => {
                let ts = timestamp.unwrap_or("<no.timestamp@hil>");
                match k {
                    ApopKind::Good => {
                        format!("APOP {POP_USER} {}", apop_digest(ts, POP_PASSWORD))
                    }
                    ApopKind::WrongPassword => {
                        format!("APOP {POP_USER} {}", apop_digest(ts, "wrong"))
                    }
                    ApopKind::UnknownUser => {
                        format!("APOP bob {}", apop_digest(ts, POP_PASSWORD))
                    }
                    ApopKind::NoArgs => "APOP".into(),
                }
            }
            PCmd::Stls => "STLS".into(),
            PCmd::Stat => "STAT".into(),
            PCmd::List(a) => with("LIST", a),
            PCmd::Uidl(a) => with("UIDL", a),
            PCmd::Retr(a) => with("RETR", a),
            PCmd::Dele(a) => with("DELE", a),
            PCmd::Rset => "RSET".into(),
            PCmd::Noop => "NOOP".into(),
            PCmd::Quit => "QUIT".into(),
            PCmd::Capa => "CAPA".into(),
            PCmd::Unknown => "XTND XMIT".into(),
            PCmd::LongLine => format!("NOOP {}", "x".repeat(5000)),
            PCmd::Empty => String::new(),
        };
        let text = if self.lower {
            match text.split_once(' ') {
                Some((v, rest)) => format!("{} {rest}", v.to_ascii_lowercase()),
                None => text.to_ascii_lowercase(),
            }
        } else {
            text
        };
        let end = if self.bare_lf { "\n" } else { "\r\n" };
        format!("{text}{end}").into_bytes()
    }
}

/// A reply the model expects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PExp {
    Ok,
    Err,
    /// A one-line +OK with exactly this text.
    Line(String),
    /// A multi-line +OK (LIST, UIDL) with these lines before the ".".
    Multi(Vec<String>),
    /// RETR: what follows the +OK line, final "." included.
    Retr(String),
    /// CAPA: whether STLS is listed (USER always is).
    Capa {
        stls: bool,
    },
    /// Bytes the model did not expect (only ever in what the session sent).
    Extra(String),
}

#[derive(Debug, Clone)]
enum PTrans {
    Write {
        lines: Vec<PLine>,
        split: Option<Index>,
    },
    Reconnect,
}

#[derive(Debug, Clone)]
struct PModel {
    cfg: PCfg,
    connection: u64,
    closed: bool,
    tls: bool,
    transaction: bool,
    pending_user: Option<String>,
    deleted: [bool; 3],
    expect: Vec<PExp>,
    expect_close: bool,
    expect_tls: bool,
    expect_logins: Vec<(String, &'static str)>,
    /// Set by QUIT: the uids the UPDATE state removed.
    expect_deleted: Vec<String>,
}

impl PModel {
    fn new(cfg: PCfg) -> PModel {
        PModel {
            cfg,
            connection: 1,
            closed: false,
            tls: false,
            transaction: false,
            pending_user: None,
            deleted: [false; 3],
            expect: Vec::new(),
            expect_close: false,
            expect_tls: false,
            expect_logins: Vec::new(),
            expect_deleted: Vec::new(),
        }
    }

    fn next_step(&self) -> PCmd {
        if !self.transaction {
            if self.cfg.stls() && !self.tls {
                PCmd::Stls
            } else if self.pending_user.as_deref() == Some(POP_USER) {
                PCmd::Pass(Some(true))
            } else {
                PCmd::User(Some(POP_USER))
            }
        } else {
            PCmd::Stat
        }
    }

    /// A message number that names a message not marked as deleted.
    fn live(&self, arg: Option<Arg>) -> Option<usize> {
        match arg {
            Some(Arg::N(n)) if (1..=3).contains(&n) && !self.deleted[n - 1] => Some(n - 1),
            _ => None,
        }
    }

    fn login(&mut self, method: &'static str) {
        self.transaction = true;
        self.deleted = [false; 3];
        self.expect_logins.push((POP_USER.into(), method));
        self.expect.push(PExp::Ok);
    }

    fn write(&mut self, lines: &[PLine]) {
        self.expect.clear();
        self.expect_close = false;
        self.expect_tls = false;
        self.expect_logins.clear();
        for line in lines {
            if self.closed || self.expect_tls {
                // After QUIT nothing is read; after STLS's +OK the rest of the write
                // is dropped (RFC 2595 §4: nothing sent before the handshake counts).
                break;
            }
            self.command(line.cmd);
        }
    }

    fn command(&mut self, cmd: PCmd) {
        use PExp::{Err, Ok};
        let auth = !self.transaction;
        let e = match cmd {
            PCmd::Empty | PCmd::LongLine | PCmd::Unknown => Err,
            PCmd::Capa => PExp::Capa {
                stls: self.cfg.stls() && !self.tls && auth,
            },
            PCmd::Quit => {
                self.closed = true;
                self.expect_close = true;
                if self.transaction {
                    // RFC 1939 §6: the UPDATE state removes the marked messages.
                    self.expect_deleted = (0..3)
                        .filter(|i| self.deleted[*i])
                        .map(|i| MAILBOX[i].0.to_string())
                        .collect();
                }
                Ok
            }
            PCmd::User(_) | PCmd::Pass(_) | PCmd::Apop(_) | PCmd::Stls if !auth => Err,
            PCmd::User(None) => Err,
            PCmd::User(Some(u)) => {
                self.pending_user = Some(u.into());
                Ok
            }
            PCmd::Pass(_) if self.pending_user.is_none() => Err,
            PCmd::Pass(None) => Err,
            PCmd::Pass(Some(right)) => {
                let user = self.pending_user.take();
                if right && user.as_deref() == Some(POP_USER) {
                    return self.login("USER/PASS");
                }
                Err
            }
            PCmd::Apop(ApopKind::NoArgs) => Err,
            PCmd::Apop(kind) => {
                self.pending_user = None;
                let offered = self.cfg.apop() && self.cfg != PCfg::RefuseApop;
                if offered && kind == ApopKind::Good {
                    return self.login("APOP");
                }
                Err
            }
            PCmd::Stls => {
                if self.cfg.stls() && !self.tls {
                    // RFC 2595 §4: AUTHORIZATION state again, STLS no more.
                    self.tls = true;
                    self.expect_tls = true;
                    self.pending_user = None;
                    Ok
                } else {
                    Err
                }
            }
            _ if auth => Err,
            PCmd::Stat => {
                let live: Vec<usize> = (0..3).filter(|i| !self.deleted[*i]).collect();
                let size: usize = live.iter().map(|i| MAILBOX[*i].2).sum();
                PExp::Line(format!("+OK {} {size}", live.len()))
            }
            PCmd::List(arg) | PCmd::Uidl(arg) => {
                let show = |i: usize| match cmd {
                    PCmd::List(_) => format!("{} {}", i + 1, MAILBOX[i].2),
                    _ => format!("{} {}", i + 1, MAILBOX[i].0),
                };
                match arg {
                    None => PExp::Multi((0..3).filter(|i| !self.deleted[*i]).map(show).collect()),
                    Some(a) => match self.live(Some(a)) {
                        Some(i) => PExp::Line(format!("+OK {}", show(i))),
                        None => Err,
                    },
                }
            }
            PCmd::Retr(arg) => match self.live(arg) {
                Some(i) => PExp::Retr(MAILBOX[i].3.into()),
                None => Err,
            },
            PCmd::Dele(arg) => match self.live(arg) {
                Some(i) => {
                    self.deleted[i] = true;
                    Ok
                }
                None => Err,
            },
            PCmd::Rset => {
                self.deleted = [false; 3];
                Ok
            }
            PCmd::Noop => Ok,
        };
        self.expect.push(e);
    }
}

fn p_cmd() -> BoxedStrategy<PCmd> {
    let arg = prop_oneof![
        6 => (0usize..=4).prop_map(Arg::N),
        1 => Just(Arg::Junk),
        1 => Just(Arg::Two),
    ];
    let opt_arg = prop_oneof![1 => Just(None), 3 => arg.prop_map(Some)];
    prop_oneof![
        3 => prop_oneof![Just(Some(POP_USER)), Just(Some("bob")), Just(None)].prop_map(PCmd::User),
        3 => prop_oneof![Just(Some(true)), Just(Some(false)), Just(None)].prop_map(PCmd::Pass),
        2 => prop_oneof![
            Just(ApopKind::Good),
            Just(ApopKind::WrongPassword),
            Just(ApopKind::UnknownUser),
            Just(ApopKind::NoArgs),
        ]
        .prop_map(PCmd::Apop),
        1 => Just(PCmd::Stls),
        2 => Just(PCmd::Stat),
        2 => opt_arg.clone().prop_map(PCmd::List),
        2 => opt_arg.clone().prop_map(PCmd::Uidl),
        3 => opt_arg.clone().prop_map(PCmd::Retr),
        3 => opt_arg.prop_map(PCmd::Dele),
        1 => Just(PCmd::Rset),
        1 => Just(PCmd::Noop),
        1 => Just(PCmd::Quit),
        1 => Just(PCmd::Capa),
        1 => Just(PCmd::Unknown),
        1 => Just(PCmd::LongLine),
        1 => Just(PCmd::Empty),
    ]
    .boxed()
}

struct PopRef;

impl ReferenceStateMachine for PopRef {
    type State = PModel;
    type Transition = PTrans;

    fn init_state() -> BoxedStrategy<PModel> {
        prop_oneof![
            Just(PCfg::Plain),
            Just(PCfg::Stls),
            Just(PCfg::NoApop),
            Just(PCfg::RefuseApop),
        ]
        .prop_map(PModel::new)
        .boxed()
    }

    fn transitions(state: &PModel) -> BoxedStrategy<PTrans> {
        if state.closed {
            return Just(PTrans::Reconnect).boxed();
        }
        let cmd = prop_oneof![3 => p_cmd(), 1 => Just(state.next_step())];
        let line = (cmd, prop::bool::weighted(0.15), prop::bool::weighted(0.1)).prop_map(
            |(cmd, lower, bare_lf)| PLine {
                cmd,
                lower,
                bare_lf,
            },
        );
        let lines = prop_oneof![
            3 => prop::collection::vec(line.clone(), 1..=1),
            1 => prop::collection::vec(line, 2..=5),
        ];
        (lines, prop::option::weighted(0.3, any::<Index>()))
            .prop_map(|(lines, split)| PTrans::Write { lines, split })
            .boxed()
    }

    fn preconditions(state: &PModel, t: &PTrans) -> bool {
        match t {
            PTrans::Reconnect => state.closed,
            PTrans::Write { lines, split } => {
                !state.closed && (split.is_none() || !lines.iter().any(|l| l.cmd == PCmd::Stls))
            }
        }
    }

    fn apply(mut state: PModel, t: &PTrans) -> PModel {
        match t {
            PTrans::Reconnect => {
                // The configured mailbox is shared: a new connection sees it whole.
                let mut fresh = PModel::new(state.cfg);
                fresh.connection = state.connection + 1;
                fresh
            }
            PTrans::Write { lines, .. } => {
                state.write(lines);
                state
            }
        }
    }
}

struct PopSut {
    session: Pop3Session,
    cfg: Arc<Pop3Config>,
    timestamp: Option<String>,
    closed: bool,
}

fn pop_start(cfg: &Arc<Pop3Config>, connection: u64, apop: bool) -> (Pop3Session, Option<String>) {
    let mut session = Pop3Session::new(Arc::clone(cfg), connection);
    let out = session.start(0);
    let [Pop3Output::Send(b)] = &out[..] else {
        panic!("greeting {out:?}");
    };
    let text = String::from_utf8(b.clone()).expect("UTF-8 greeting");
    assert!(
        text.starts_with("+OK ") && text.ends_with("\r\n"),
        "{text:?}"
    );
    // RFC 1939 §7: the timestamp is the last thing in the greeting, <...@host>.
    let timestamp = text
        .trim_end()
        .rsplit_once(' ')
        .map(|(_, ts)| ts)
        .filter(|ts| ts.starts_with('<') && ts.ends_with('>') && ts.contains('@'))
        .map(str::to_string);
    assert_eq!(timestamp.is_some(), apop, "APOP timestamp in {text:?}");
    (session, timestamp)
}

/// Reads the session's bytes reply by reply, in the shape the model expects.
fn pop_replies(bytes: &[u8], expect: &[PExp]) -> Vec<PExp> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut rest = text.as_str();
    let next_line = |rest: &mut &str| -> Option<String> {
        let (line, tail) = rest.split_once("\r\n")?;
        *rest = tail;
        Some(line.to_string())
    };
    let mut got = Vec::new();
    for e in expect {
        let Some(first) = next_line(&mut rest) else {
            break;
        };
        if !first.starts_with("+OK") {
            got.push(if first.starts_with("-ERR") {
                PExp::Err
            } else {
                PExp::Extra(first)
            });
            continue;
        }
        let multi = matches!(e, PExp::Multi(_) | PExp::Retr(_) | PExp::Capa { .. });
        if !multi {
            got.push(match e {
                PExp::Line(_) => PExp::Line(first),
                _ => PExp::Ok,
            });
            continue;
        }
        let mut body = Vec::new();
        while let Some(l) = next_line(&mut rest) {
            let end = l == ".";
            body.push(l);
            if end {
                break;
            }
        }
        got.push(match e {
            PExp::Multi(_) => {
                body.pop();
                PExp::Multi(body)
            }
            PExp::Retr(_) => PExp::Retr(body.iter().map(|l| format!("{l}\r\n")).collect()),
            _ => {
                assert!(
                    body.iter().any(|l| l == "USER"),
                    "CAPA lists USER: {body:?}"
                );
                PExp::Capa {
                    stls: body.iter().any(|l| l == "STLS"),
                }
            }
        });
    }
    if !rest.is_empty() {
        got.push(PExp::Extra(rest.to_string()));
    }
    got
}

impl PopSut {
    fn feed(&mut self, bytes: &[u8], logins: &mut Vec<(String, &'static str)>) -> (Vec<u8>, bool) {
        let mut sent = Vec::new();
        let mut start_tls = false;
        // Every login is also an attempt that succeeded, with its user and method.
        let (mut ok_attempts, mut new_logins) = (Vec::new(), Vec::new());
        for o in self.session.feed(0, bytes) {
            assert!(!self.closed, "output after Close: {o:?}");
            match o {
                Pop3Output::Send(b) => sent.extend_from_slice(&b),
                Pop3Output::Close => self.closed = true,
                Pop3Output::StartTls => start_tls = true,
                Pop3Output::Login { user, method } => new_logins.push((user, method)),
                Pop3Output::Attempt(a) if a.ok => {
                    ok_attempts.push((a.user.unwrap_or_default(), a.mechanism))
                }
                Pop3Output::Attempt(_) => {}
                other => panic!("unexpected output {other:?}"),
            }
        }
        let as_attempts: Vec<(String, String)> = new_logins
            .iter()
            .map(|(u, m)| (u.clone(), m.to_string()))
            .collect();
        assert_eq!(
            ok_attempts, as_attempts,
            "successful attempts are the logins"
        );
        logins.extend(new_logins);
        if start_tls {
            // What pop3_server.rs does after the handshake.
            self.session.tls_started();
        }
        (sent, start_tls)
    }
}

struct PopTest;

impl StateMachineTest for PopTest {
    type SystemUnderTest = PopSut;
    type Reference = PopRef;

    fn init_test(model: &PModel) -> PopSut {
        let cfg = Arc::new(model.cfg.config());
        let (session, timestamp) = pop_start(&cfg, 1, model.cfg.apop());
        PopSut {
            session,
            cfg,
            timestamp,
            closed: false,
        }
    }

    fn apply(mut sut: PopSut, model: &PModel, t: PTrans) -> PopSut {
        match t {
            PTrans::Reconnect => {
                assert!(sut.closed);
                let (session, timestamp) = pop_start(&sut.cfg, model.connection, model.cfg.apop());
                sut.session = session;
                sut.timestamp = timestamp;
                sut.closed = false;
            }
            PTrans::Write { lines, split } => {
                let ts = sut.timestamp.clone();
                let bytes: Vec<u8> = lines.iter().flat_map(|l| l.render(ts.as_deref())).collect();
                let at = split.map_or(bytes.len(), |i| 1 + i.index(bytes.len()));
                let mut logins = Vec::new();
                let (mut sent, tls) = sut.feed(&bytes[..at], &mut logins);
                if at < bytes.len() && !sut.closed {
                    assert!(!tls);
                    let (more, _) = sut.feed(&bytes[at..], &mut logins);
                    sent.extend(more);
                }
                let shown: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                assert_eq!(
                    pop_replies(&sent, &model.expect),
                    model.expect,
                    "replies to {shown:?}"
                );
                assert_eq!(sut.closed, model.expect_close, "closed after {shown:?}");
                assert_eq!(tls, model.expect_tls, "TLS started by {shown:?}");
                assert_eq!(logins, model.expect_logins, "logins by {shown:?}");
                if sut.closed {
                    assert_eq!(
                        sut.session.deleted_uids(),
                        &model.expect_deleted[..],
                        "UPDATE"
                    );
                }
            }
        }
        sut
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(),
        max_shrink_iters: 20_000,
        failure_persistence: None,
        .. Config::default()
    })]

    #[test]
    fn pop3_session_follows_the_model(sequential 1..30 => PopTest);
}
