//! The device's SMTP client as a state machine without sockets (SPEC §3 steps 3 and
//! 8–10): replies go in, the next bytes to send (or the end) come out. `net.rs` moves
//! the bytes and enforces the timeout.

use crate::mime::dot_stuff;
use crate::sasl_client::{self, Credentials, SaslClient, SaslStep};
use crate::text::printable;

/// A complete server reply: its code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as one line for a job result: `code text text…`.
    pub fn summary(&self) -> String {
        let text = printable(&self.lines.join(" "));
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, text)
        }
    }
    fn class(&self) -> u16 {
        self.code / 100
    }
}

/// Longest reply line the device accepts (RFC 5321 allows 512; servers send more).
pub const MAX_REPLY_LINE: usize = 4096;
/// Most lines one reply may have.
pub const MAX_REPLY_LINES: usize = 256;

/// A reply that cannot be read: why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReply(pub String);

/// Assembles replies from bytes: `250-a`, `250-b`, `250 c` is one reply.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    /// Adds bytes; answers the replies that are complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Reply>, BadReply> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(r) = self.line(line)? {
                out.push(r);
            }
        }
        if self.buf.len() > MAX_REPLY_LINE {
            return Err(BadReply(format!(
                "reply line longer than {MAX_REPLY_LINE} bytes"
            )));
        }
        Ok(out)
    }

    fn line(&mut self, line: &str) -> Result<Option<Reply>, BadReply> {
        let b = line.as_bytes();
        let ok_code =
            b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&b[0]);
        if !ok_code || (b.len() > 3 && b[3] != b' ' && b[3] != b'-') {
            return Err(BadReply(format!(
                "malformed reply line {:?}",
                printable(line)
            )));
        }
        let code: u16 = line[..3].parse().map_err(|_| BadReply("bad code".into()))?;
        if let Some(c) = self.code {
            if c != code {
                return Err(BadReply(format!(
                    "reply code changed from {c} to {code} within one reply"
                )));
            }
        }
        self.code = Some(code);
        self.lines.push(line.get(4..).unwrap_or("").to_string());
        if self.lines.len() > MAX_REPLY_LINES {
            return Err(BadReply(format!(
                "reply of more than {MAX_REPLY_LINES} lines"
            )));
        }
        let last = b.len() == 3 || b[3] == b' ';
        if last {
            self.code = None;
            return Ok(Some(Reply {
                code,
                lines: std::mem::take(&mut self.lines),
            }));
        }
        Ok(None)
    }

    /// Whether bytes of an unfinished reply are waiting.
    pub fn is_mid_reply(&self) -> bool {
        !self.buf.is_empty() || self.code.is_some()
    }
}

/// How the session is protected (`smtp.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    /// TLS from the first byte; the IO layer does it before the greeting.
    Smtps,
    /// STARTTLS after the first EHLO (SPEC §3.4).
    Starttls,
}

/// How the device authenticates (SPEC §3.7), when `smtp.auth.enabled` is on.
#[derive(Debug, Clone)]
pub struct AuthPlan {
    /// `smtp.auth.methods`, as setting words.
    pub enabled: Vec<String>,
    pub creds: Credentials,
    /// The server name for DIGEST-MD5's digest-uri.
    pub service_host: String,
    pub cnonce_seed: u64,
    /// Firmware variant: with no mechanism in common, send without AUTH (a finding).
    pub send_without_auth: bool,
}

/// Planted behaviours of the SMTP client (`--quirk`, see `options::Quirks`); all
/// off is SPEC's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientQuirks {
    /// With AUTH off, every recipient refused with 530 fails `rejected`, not
    /// `auth_required`.
    pub rcpt_530_rejected: bool,
    /// A refused QUIT after the accepted message fails the job `rejected`.
    pub quit_refusal_fails: bool,
    /// An undecodable 334 to LOGIN or PLAIN is answered as the normal prompt.
    pub malformed_challenge_ignored: bool,
    /// A refused recipient fails the whole job (nothing is sent).
    pub refused_recipient_fails: bool,
}

/// What one SMTP transaction is to carry.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub tls: TlsMode,
    /// Firmware variant: go on in plaintext when STARTTLS fails (a finding).
    pub plaintext_fallback: bool,
    /// `None`: the device never authenticates.
    pub auth: Option<AuthPlan>,
    pub ehlo_host: String,
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The message bytes (CRLF, not yet dot-stuffed).
    pub message: Vec<u8>,
    /// Messages sent after `message` on the same connection, one transaction each
    /// (RSET between), e.g. `message/partial` fragments.
    pub then: Vec<Vec<u8>>,
    /// Planted behaviours.
    pub quirks: ClientQuirks,
}

/// The server's verdict on one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptResult {
    pub address: String,
    pub accepted: bool,
    pub reply: String,
}

/// How the transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed with an error class of SPEC §5 and its detail.
    Failed {
        class: &'static str,
        detail: String,
    },
}

/// The step the client is waiting on; names appear in error details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Greeting,
    Ehlo,
    Helo,
    Starttls,
    /// Waiting for the TLS handshake after STARTTLS.
    Handshake,
    /// The EHLO sent inside TLS.
    Ehlo2,
    Auth,
    Mail,
    Rcpt(usize),
    Data,
    EndOfData,
    /// RSET between two transactions on one connection.
    Rset,
    Quit,
    Closed,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Ehlo | Step::Ehlo2 => "EHLO",
            Step::Helo => "HELO",
            Step::Starttls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::Handshake => "TLS handshake",
            Step::Mail => "MAIL FROM",
            Step::Rcpt(_) => "RCPT TO",
            Step::Data => "DATA",
            Step::EndOfData => "end of data",
            Step::Rset => "RSET",
            Step::Quit => "QUIT",
            Step::Closed => "end",
        }
    }
}

/// What the IO layer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes, then wait for a reply.
    Send(Vec<u8>),
    /// Run the TLS handshake now, then call [`Client::tls_established`].
    StartTls,
    /// Send these bytes (possibly none), close, and finish with the outcome.
    Finish(Vec<u8>, Outcome),
}

/// The client: create with [`Client::new`], then feed each reply to [`Client::on_reply`].
#[derive(Debug)]
pub struct Client {
    env: Envelope,
    sasl: Option<SaslClient>,
    /// The mechanism used, once AUTH succeeded.
    authenticated: Option<&'static str>,
    step: Step,
    extensions: Vec<String>,
    rcpts: Vec<RcptResult>,
    /// The first transaction's recipients, once a later one has begun.
    first_rcpts: Option<Vec<RcptResult>>,
    /// Which transaction of the connection (0: `message`, 1..: `then`).
    transaction: usize,
    failure: Option<Outcome>,
}

impl Client {
    pub fn new(env: Envelope) -> Self {
        Client {
            env,
            sasl: None,
            authenticated: None,
            step: Step::Greeting,
            extensions: Vec::new(),
            rcpts: Vec::new(),
            first_rcpts: None,
            transaction: 0,
            failure: None,
        }
    }

    /// The step whose reply is awaited.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Per-recipient results of the first transaction (so far).
    pub fn recipients(&self) -> &[RcptResult] {
        self.first_rcpts.as_deref().unwrap_or(&self.rcpts)
    }

    /// The transaction under way: 0 for `message`, n for the n-th of `then`.
    pub fn transaction(&self) -> usize {
        self.transaction
    }

    /// The extensions of the last EHLO reply (empty after HELO).
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    fn has_size(&self) -> bool {
        self.offers("SIZE")
    }

    fn fail(&mut self, class: &'static str, detail: String, send_quit: bool) -> Action {
        self.step = Step::Closed;
        let bytes = if send_quit {
            b"QUIT\r\n".to_vec()
        } else {
            Vec::new()
        };
        Action::Finish(bytes, Outcome::Failed { class, detail })
    }

    fn mech_name(&self) -> &'static str {
        self.sasl.as_ref().map(|x| x.mech().name()).unwrap_or("?")
    }

    /// The mechanism AUTH succeeded with, if any.
    pub fn authenticated(&self) -> Option<&'static str> {
        self.authenticated
    }

    /// After the last EHLO/HELO: AUTH when it is on (SPEC §3.7), then MAIL FROM.
    fn after_greeting(&mut self) -> Action {
        use base64::Engine;
        let Some(plan) = self.env.auth.clone() else {
            self.step = Step::Mail;
            return Action::Send(self.mail_from());
        };
        let offered = sasl_client::offered_mechanisms(&self.extensions);
        let enabled: Vec<&str> = plan.enabled.iter().map(String::as_str).collect();
        let Some(mech) = sasl_client::choose(&enabled, &offered) else {
            if plan.send_without_auth {
                self.step = Step::Mail;
                return Action::Send(self.mail_from());
            }
            let detail = format!(
                "no mechanism in common: the device has {}, the server offers {}",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(",")
                },
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(",")
                }
            );
            return self.fail("auth_no_mechanism", detail, true);
        };
        let mut sasl = SaslClient::new(mech, plan.creds, &plan.service_host, plan.cnonce_seed);
        let mut line = format!("AUTH {}", mech.name());
        if let Some(initial) = sasl.initial_response() {
            line.push(' ');
            if initial.is_empty() {
                line.push('=');
            } else {
                line.push_str(&base64::engine::general_purpose::STANDARD.encode(initial));
            }
        }
        line.push_str("\r\n");
        self.sasl = Some(sasl);
        self.step = Step::Auth;
        Action::Send(line.into_bytes())
    }

    fn rejected(&mut self, reply: &Reply) -> Action {
        // With AUTH off, a server that demands it says 530 (SPEC §3.7).
        if reply.code == 530 && self.env.auth.is_none() {
            let detail = format!("{} {}", self.step.name(), reply.summary());
            return self.fail("auth_required", detail, true);
        }
        let detail = format!("{} {}", self.step.name(), reply.summary());
        // 421 means the server is closing: no QUIT.
        let quit = reply.code != 421;
        self.fail("rejected", detail, quit)
    }

    fn mail_from(&self) -> Vec<u8> {
        let mut cmd = format!("MAIL FROM:<{}>", self.env.mail_from);
        if self.has_size() {
            cmd.push_str(&format!(" SIZE={}", self.env.message.len()));
        }
        cmd.push_str("\r\n");
        cmd.into_bytes()
    }

    fn rcpt(&self, i: usize) -> Vec<u8> {
        let to = self.env.recipients.get(i).map_or("", String::as_str);
        format!("RCPT TO:<{to}>\r\n").into_bytes()
    }

    fn offers(&self, ext: &str) -> bool {
        self.extensions.iter().any(|e| {
            e.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(ext))
        })
    }

    fn starttls(&mut self) -> Action {
        if !self.offers("STARTTLS") && self.env.plaintext_fallback {
            return self.after_greeting();
        }
        if !self.offers("STARTTLS") {
            self.step = Step::Closed;
            return Action::Finish(
                Vec::new(),
                Outcome::Failed {
                    class: "starttls_unavailable",
                    detail: "the server does not offer STARTTLS".into(),
                },
            );
        }
        self.step = Step::Starttls;
        Action::Send(b"STARTTLS\r\n".to_vec())
    }

    /// The TLS handshake after STARTTLS is done: EHLO again (SPEC §3.4).
    pub fn tls_established(&mut self) -> Action {
        self.extensions.clear();
        self.step = Step::Ehlo2;
        Action::Send(format!("EHLO {}\r\n", self.env.ehlo_host).into_bytes())
    }

    /// Advances on one reply: each step has its own handler.
    pub fn on_reply(&mut self, reply: Reply) -> Action {
        match self.step {
            Step::Greeting => self.on_greeting(&reply),
            Step::Ehlo | Step::Ehlo2 => self.on_ehlo(&reply),
            Step::Helo => self.on_helo(&reply),
            Step::Auth => self.on_auth(&reply),
            Step::Starttls => self.on_starttls(&reply),
            Step::Handshake => Action::StartTls,
            Step::Mail => self.on_mail(&reply),
            Step::Rcpt(i) => self.on_rcpt(i, &reply),
            Step::Data => self.on_data(&reply),
            Step::EndOfData => self.on_end_of_data(&reply),
            Step::Rset => self.on_rset(&reply),
            Step::Quit => self.on_quit(&reply),
            Step::Closed => Action::Finish(
                Vec::new(),
                self.failure.clone().unwrap_or(Outcome::Delivered),
            ),
        }
    }

    /// The greeting: EHLO (SPEC §3.3).
    fn on_greeting(&mut self, reply: &Reply) -> Action {
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        self.step = Step::Ehlo;
        Action::Send(format!("EHLO {}\r\n", self.env.ehlo_host).into_bytes())
    }

    /// EHLO's reply: HELO once on 500–504 to the first EHLO (SPEC §3.3); else the
    /// extensions, then STARTTLS or what follows the greeting.
    fn on_ehlo(&mut self, reply: &Reply) -> Action {
        if self.step == Step::Ehlo && (500..=504).contains(&reply.code) {
            self.step = Step::Helo;
            return Action::Send(format!("HELO {}\r\n", self.env.ehlo_host).into_bytes());
        }
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        // Only the extensions of the last EHLO count (SPEC §3.4).
        self.extensions = reply.lines.iter().skip(1).cloned().collect();
        if self.step == Step::Ehlo && self.env.tls == TlsMode::Starttls {
            return self.starttls();
        }
        self.after_greeting()
    }

    /// HELO's reply: no extensions.
    fn on_helo(&mut self, reply: &Reply) -> Action {
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        self.extensions.clear();
        if self.env.tls == TlsMode::Starttls {
            return self.starttls();
        }
        self.after_greeting()
    }

    /// A reply during AUTH (SPEC §3.7): a 334 challenge goes to the SASL client;
    /// 2xx is success; anything else fails the job.
    fn on_auth(&mut self, reply: &Reply) -> Action {
        if reply.code == 334 {
            return self.on_challenge(reply);
        }
        if reply.class() == 2 {
            self.authenticated = Some(self.mech_name());
            self.step = Step::Mail;
            return Action::Send(self.mail_from());
        }
        let detail = format!("AUTH {} {}", self.mech_name(), reply.summary());
        self.fail("auth_failed", detail, reply.code != 421)
    }

    /// A 334 challenge: decoded, answered by the SASL client, the answer encoded; a
    /// failed exchange is cancelled (RFC 4954 §4).
    fn on_challenge(&mut self, reply: &Reply) -> Action {
        use base64::Engine;
        let text = reply.lines.first().map(String::as_str).unwrap_or("").trim();
        let decoded = base64::engine::general_purpose::STANDARD.decode(text);
        let lenient = self.env.quirks.malformed_challenge_ignored
            && self.sasl.as_ref().is_some_and(|x| {
                matches!(
                    x.mech(),
                    sasl_client::Mech::Login | sasl_client::Mech::Plain
                )
            });
        let step = match (self.sasl.as_mut(), decoded) {
            (None, _) => SaslStep::Fail("no exchange under way".into()),
            (Some(x), Ok(challenge)) => x.step(&challenge),
            // A planted bug: the undecodable text taken as the normal prompt.
            (Some(x), Err(_)) if lenient => x.answer_prompt(),
            // A challenge that cannot be decoded cancels the exchange (RFC 4954 §4).
            (Some(_), Err(_)) => SaslStep::Fail(format!(
                "the server's challenge {:?} is not base64",
                printable(text)
            )),
        };
        match step {
            SaslStep::Send(bytes) => {
                let mut line = base64::engine::general_purpose::STANDARD.encode(bytes);
                line.push_str("\r\n");
                Action::Send(line.into_bytes())
            }
            SaslStep::Done => Action::Send(b"\r\n".to_vec()),
            SaslStep::Fail(why) => {
                // Cancel the exchange (RFC 4954 §4), then give up.
                self.step = Step::Closed;
                Action::Finish(
                    b"*\r\nQUIT\r\n".to_vec(),
                    Outcome::Failed {
                        class: "auth_failed",
                        detail: format!("AUTH {}: {why}", self.mech_name()),
                    },
                )
            }
        }
    }

    /// STARTTLS's reply: 220 starts the handshake; anything else ends the session
    /// with nothing more sent (SPEC §3.4), unless the firmware falls back.
    fn on_starttls(&mut self, reply: &Reply) -> Action {
        if reply.code != 220 && self.env.plaintext_fallback {
            return self.after_greeting();
        }
        if reply.code != 220 {
            // Nothing else is sent (SPEC §3.4).
            self.step = Step::Closed;
            return Action::Finish(
                Vec::new(),
                Outcome::Failed {
                    class: "starttls_unavailable",
                    detail: format!("STARTTLS answered {}", reply.summary()),
                },
            );
        }
        self.step = Step::Handshake;
        Action::StartTls
    }

    /// MAIL FROM's reply: the first RCPT TO.
    fn on_mail(&mut self, reply: &Reply) -> Action {
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        if self.env.recipients.is_empty() {
            return self.fail("config", "no recipients".into(), true);
        }
        self.step = Step::Rcpt(0);
        Action::Send(self.rcpt(0))
    }

    /// RCPT TO's reply for recipient `i`, kept per recipient (SPEC §3.9): the next
    /// RCPT TO, or DATA once one was accepted.
    fn on_rcpt(&mut self, i: usize, reply: &Reply) -> Action {
        let accepted = reply.class() == 2;
        if reply.code == 421 {
            return self.rejected(reply);
        }
        self.rcpts.push(RcptResult {
            address: self.env.recipients.get(i).cloned().unwrap_or_default(),
            accepted,
            reply: reply.summary(),
        });
        if !accepted && self.env.quirks.refused_recipient_fails {
            return self.rejected(reply);
        }
        if i + 1 < self.env.recipients.len() {
            self.step = Step::Rcpt(i + 1);
            return Action::Send(self.rcpt(i + 1));
        }
        if !self.rcpts.iter().any(|r| r.accepted) {
            // With AUTH off, a server that demands it says 530 (SPEC §3.7).
            let demands_auth = self.rcpts.iter().find(|r| r.reply.starts_with("530"));
            if let (Some(r), None, false) = (
                demands_auth,
                &self.env.auth,
                self.env.quirks.rcpt_530_rejected,
            ) {
                let detail = format!("RCPT TO {}", r.reply);
                return self.fail("auth_required", detail, true);
            }
            let first = self
                .rcpts
                .first()
                .map(|r| r.reply.clone())
                .unwrap_or_default();
            return self.fail(
                "rejected",
                format!("RCPT TO: every recipient refused ({first})"),
                true,
            );
        }
        self.step = Step::Data;
        Action::Send(b"DATA\r\n".to_vec())
    }

    /// DATA's reply: the message, dot-stuffed (SPEC §3.10).
    fn on_data(&mut self, reply: &Reply) -> Action {
        if reply.class() != 3 {
            return self.rejected(reply);
        }
        self.step = Step::EndOfData;
        Action::Send(dot_stuff(&self.env.message))
    }

    /// The reply at the end of DATA: accepted means delivered; RSET before the next
    /// transaction, else QUIT.
    fn on_end_of_data(&mut self, reply: &Reply) -> Action {
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        if self.transaction < self.env.then.len() {
            self.step = Step::Rset;
            return Action::Send(b"RSET\r\n".to_vec());
        }
        self.step = Step::Quit;
        Action::Send(b"QUIT\r\n".to_vec())
    }

    /// RSET's reply: the next transaction, from MAIL FROM.
    fn on_rset(&mut self, reply: &Reply) -> Action {
        if reply.class() != 2 {
            return self.rejected(reply);
        }
        let next = self.env.then.get(self.transaction).cloned();
        let Some(message) = next else {
            self.step = Step::Quit;
            return Action::Send(b"QUIT\r\n".to_vec());
        };
        self.transaction += 1;
        self.env.message = message;
        if self.first_rcpts.is_none() {
            self.first_rcpts = Some(std::mem::take(&mut self.rcpts));
        }
        self.rcpts.clear();
        self.step = Step::Mail;
        Action::Send(self.mail_from())
    }

    /// QUIT's reply: the message was accepted, so the mail is delivered whatever QUIT
    /// gets (SPEC §3.10); a planted old bug keeps a refusal as the outcome.
    fn on_quit(&mut self, reply: &Reply) -> Action {
        self.step = Step::Closed;
        if reply.class() != 2 && self.env.quirks.quit_refusal_fails {
            let detail = format!("QUIT {}", reply.summary());
            self.failure = Some(Outcome::Failed {
                class: "rejected",
                detail: detail.clone(),
            });
            return Action::Finish(
                Vec::new(),
                Outcome::Failed {
                    class: "rejected",
                    detail,
                },
            );
        }
        Action::Finish(Vec::new(), Outcome::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    fn env(rcpts: &[&str]) -> Envelope {
        Envelope {
            tls: TlsMode::None,
            plaintext_fallback: false,
            auth: None,
            ehlo_host: "mfp".into(),
            mail_from: "admin@example.com".into(),
            recipients: rcpts.iter().map(|s| s.to_string()).collect(),
            message: b"Subject: x\r\n\r\n.dot\r\n".to_vec(),
            then: Vec::new(),
            quirks: ClientQuirks::default(),
        }
    }

    #[test]
    fn reader_joins_multiline_and_splits_pipelined() {
        let mut r = ReplyReader::default();
        assert!(r
            .push(b"250-mx hello\r\n250-SIZE 1000\r")
            .unwrap()
            .is_empty());
        let got = r.push(b"\n250 8BITMIME\r\n220 x\r\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].lines, vec!["mx hello", "SIZE 1000", "8BITMIME"]);
        assert_eq!(got[1].code, 220);
        assert!(ReplyReader::default().push(b"hello\r\n").is_err());
        assert!(ReplyReader::default().push(b"250-a\r\n251 b\r\n").is_err());
    }

    #[test]
    fn happy_path_with_size_and_one_refused_recipient() {
        let mut c = Client::new(env(&["a@x", "b@x"]));
        assert_eq!(
            c.on_reply(reply(220, "hi")),
            Action::Send(b"EHLO mfp\r\n".to_vec())
        );
        let ehlo = Reply {
            code: 250,
            lines: vec!["mx".into(), "SIZE 0".into()],
        };
        assert_eq!(
            c.on_reply(ehlo),
            Action::Send(b"MAIL FROM:<admin@example.com> SIZE=20\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(250, "ok")),
            Action::Send(b"RCPT TO:<a@x>\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(550, "no")),
            Action::Send(b"RCPT TO:<b@x>\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(250, "ok")),
            Action::Send(b"DATA\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(354, "go")),
            Action::Send(b"Subject: x\r\n\r\n..dot\r\n.\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(250, "queued")),
            Action::Send(b"QUIT\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(221, "bye")),
            Action::Finish(vec![], Outcome::Delivered)
        );
        assert!(!c.recipients()[0].accepted);
        assert!(c.recipients()[1].accepted);
    }

    /// Two transactions on one connection (RSET between), then a refused QUIT: the
    /// mail was accepted, so delivered (SPEC §3.10) unless the old bug is planted.
    #[test]
    fn two_transactions_then_a_refused_quit() {
        for quit_refusal_fails in [false, true] {
            let mut e = env(&["a@x"]);
            e.then = vec![b"Subject: y\r\n\r\nz\r\n".to_vec()];
            e.quirks.quit_refusal_fails = quit_refusal_fails;
            let mut c = Client::new(e);
            c.on_reply(reply(220, "hi"));
            c.on_reply(reply(250, "mx"));
            for n in 0..2 {
                assert_eq!(c.transaction(), n);
                c.on_reply(reply(250, "ok"));
                c.on_reply(reply(250, "ok"));
                c.on_reply(reply(354, "go"));
                let after = c.on_reply(reply(250, "queued"));
                let want: &[u8] = if n == 0 { b"RSET\r\n" } else { b"QUIT\r\n" };
                assert_eq!(after, Action::Send(want.to_vec()));
                if n == 0 {
                    assert_eq!(
                        c.on_reply(reply(250, "reset")),
                        Action::Send(b"MAIL FROM:<admin@example.com>\r\n".to_vec())
                    );
                }
            }
            match c.on_reply(reply(554, "no")) {
                Action::Finish(_, Outcome::Delivered) => assert!(!quit_refusal_fails),
                Action::Finish(_, Outcome::Failed { class, detail }) => {
                    assert!(quit_refusal_fails);
                    assert_eq!((class, detail.as_str()), ("rejected", "QUIT 554 no"));
                }
                a => panic!("{a:?}"),
            }
            assert_eq!(c.recipients().len(), 1);
        }
    }

    #[test]
    fn helo_fallback_once_then_no_size() {
        let mut c = Client::new(env(&["a@x"]));
        c.on_reply(reply(220, "hi"));
        assert_eq!(
            c.on_reply(reply(502, "no")),
            Action::Send(b"HELO mfp\r\n".to_vec())
        );
        assert_eq!(
            c.on_reply(reply(250, "ok")),
            Action::Send(b"MAIL FROM:<admin@example.com>\r\n".to_vec())
        );
        let mut c = Client::new(env(&["a@x"]));
        c.on_reply(reply(220, "hi"));
        c.on_reply(reply(500, "no"));
        match c.on_reply(reply(501, "no")) {
            Action::Finish(q, Outcome::Failed { class, detail }) => {
                assert_eq!(q, b"QUIT\r\n");
                assert_eq!(class, "rejected");
                assert!(detail.starts_with("HELO 501"));
            }
            a => panic!("{a:?}"),
        }
    }
}
