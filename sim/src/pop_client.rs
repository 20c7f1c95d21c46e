//! The device's POP3 client for POP before SMTP (SPEC §3.6), as a state machine
//! without sockets: each status line from the server goes in, what to do next comes
//! out. It follows RFC 1939 (USER/PASS, APOP, QUIT) and RFC 2595 §4 (STLS).
//!
//! The flow is: greeting, then (with `stls`) `STLS` and the TLS handshake, then
//! `USER`/`PASS` or `APOP`, then `QUIT`. The device reads no mail: a successful
//! login is all POP before SMTP needs. With `pop.tls = pop3s` the IO layer runs TLS
//! before the greeting and this client sees no difference.
//!
//! Every reply the client waits for is one status line (`+OK …` or `-ERR …`); the
//! client never sends a command whose answer is multi-line. The IO layer enforces
//! `smtp.timeout` on every wait and, after [`PopAction::StartTls`], must throw away
//! anything the server sent in plaintext after the `+OK` to `STLS` (RFC 2595 §4:
//! the session restarts inside TLS, so buffered plaintext would be an injection).
//! On [`PopAction::Fail`] the IO layer closes the connection without more commands.
//!
//! Error details never carry the password or the APOP digest, even if the server
//! echoes them back.

use md5::{Digest, Md5};

/// How the device logs in (`pop.apop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopAuth {
    /// `USER name`, then `PASS password` (RFC 1939 §7).
    UserPass,
    /// `APOP name digest` with the greeting's timestamp (RFC 1939 §7).
    Apop,
}

/// What one POP session is to do.
#[derive(Clone, PartialEq, Eq)]
pub struct PopPlan {
    pub user: String,
    pub password: String,
    pub auth: PopAuth,
    /// `pop.tls = stls`: upgrade with `STLS` after the greeting (RFC 2595).
    pub stls: bool,
}

impl std::fmt::Debug for PopPlan {
    // The password stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopPlan")
            .field("user", &self.user)
            .field("password", &"***")
            .field("auth", &self.auth)
            .field("stls", &self.stls)
            .finish()
    }
}

/// What the IO layer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PopAction {
    /// Send these bytes (one command with its CRLF), then wait for one status line.
    Send(Vec<u8>),
    /// Run the TLS handshake now, then call [`PopClient::tls_established`].
    StartTls,
    /// Logged in and `QUIT` answered: POP before SMTP succeeded. Close.
    Done,
    /// The session failed with an error class of SPEC §5 and its detail. Close.
    Fail { class: &'static str, detail: String },
}

/// The step whose answer is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Stls,
    /// Between the `+OK` to `STLS` and the end of the handshake.
    Handshake,
    User,
    Pass,
    Apop,
    Quit,
    /// Done or failed; the final action is kept.
    Closed,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Stls => "STLS",
            Step::Handshake => "TLS handshake",
            Step::User => "USER",
            Step::Pass => "PASS",
            Step::Apop => "APOP",
            Step::Quit => "QUIT",
            Step::Closed => "end",
        }
    }
}

/// A status line, read as RFC 1939 §3 says: `+OK` or `-ERR`, then a space and text
/// or nothing. The indicators are matched case-insensitively (servers must send
/// them in upper case; the device is lenient there and strict everywhere else).
enum Status<'a> {
    Ok(&'a str),
    Err,
    Malformed,
}

fn status(line: &str) -> Status<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let starts = |ind: &str| {
        line.get(..ind.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(ind))
            && matches!(line.as_bytes().get(ind.len()), None | Some(b' ' | b'\t'))
    };
    if starts("+OK") {
        Status::Ok(&line[3..])
    } else if starts("-ERR") {
        Status::Err
    } else {
        Status::Malformed
    }
}

/// Longest detail kept from a server line, in characters.
const DETAIL_CHARS: usize = 200;

/// The APOP digest of RFC 1939 §7: MD5 over the greeting's timestamp (angle
/// brackets included) followed by the password, as 32 lowercase hex digits.
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The timestamp of an APOP-capable greeting (RFC 1939 §7): the first `<…>` after
/// `+OK`, brackets included, with something inside and no space, control character
/// or second `<` in it.
fn apop_timestamp(text: &str) -> Option<&str> {
    let start = text.find('<')?;
    let len = text[start..].find('>')?;
    let ts = &text[start..=start + len];
    let inner = &ts[1..ts.len() - 1];
    let ok = !inner.is_empty()
        && !inner
            .chars()
            .any(|c| c == '<' || c.is_whitespace() || c.is_control());
    ok.then_some(ts)
}

/// The POP client: create with [`PopClient::new`], feed every status line to
/// [`PopClient::on_line`] (the first one is the greeting).
#[derive(Debug)]
pub struct PopClient {
    plan: PopPlan,
    step: Step,
    /// The APOP timestamp from the greeting.
    timestamp: Option<String>,
    /// The APOP digest once computed, so that details can be cleaned of it.
    digest: Option<String>,
    last: Option<PopAction>,
}

impl PopClient {
    pub fn new(plan: PopPlan) -> PopClient {
        PopClient {
            plan,
            step: Step::Greeting,
            timestamp: None,
            digest: None,
            last: None,
        }
    }

    /// Server text made safe for a job's result: the password and the APOP digest
    /// replaced by `***`, control characters by `?`, cut to 200 characters.
    fn clean(&self, text: &str) -> String {
        let mut s = text.to_string();
        for secret in [Some(self.plan.password.as_str()), self.digest.as_deref()]
            .into_iter()
            .flatten()
        {
            if !secret.is_empty() {
                s = s.replace(secret, "***");
            }
        }
        let s: String = s
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let s = s.trim();
        if s.chars().count() > DETAIL_CHARS {
            let mut cut: String = s.chars().take(DETAIL_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            s.to_string()
        }
    }

    fn finish(&mut self, action: PopAction) -> PopAction {
        self.step = Step::Closed;
        self.last = Some(action.clone());
        action
    }

    fn fail(&mut self, class: &'static str, detail: String) -> PopAction {
        self.finish(PopAction::Fail { class, detail })
    }

    fn malformed(&mut self, line: &str) -> PopAction {
        let detail = format!(
            "malformed reply to {}: {:?}",
            self.step.name(),
            self.clean(line)
        );
        self.fail("pop_auth", detail)
    }

    /// A command argument must not break the line protocol.
    fn check_arg(&mut self, what: &str, value: &str) -> Result<(), PopAction> {
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(self.fail(
                "config",
                format!("the POP {what} contains a line break or NUL"),
            ));
        }
        Ok(())
    }

    /// After the greeting (and STLS): the login command.
    fn login(&mut self) -> PopAction {
        let user = self.plan.user.clone();
        if let Err(a) = self.check_arg("user", &user) {
            return a;
        }
        match self.plan.auth {
            PopAuth::UserPass => {
                self.step = Step::User;
                PopAction::Send(format!("USER {user}\r\n").into_bytes())
            }
            PopAuth::Apop => {
                let Some(ts) = self.timestamp.clone() else {
                    return self.fail("pop_auth", "the server offers no APOP timestamp".into());
                };
                let digest = apop_digest(&ts, &self.plan.password);
                self.digest = Some(digest.clone());
                self.step = Step::Apop;
                PopAction::Send(format!("APOP {user} {digest}\r\n").into_bytes())
            }
        }
    }

    /// Feeds one status line from the server (without its CRLF) and answers what to
    /// do. After `Done` or `Fail` every further line answers the same again.
    pub fn on_line(&mut self, line: &str) -> PopAction {
        if self.step == Step::Closed {
            return self.last.clone().unwrap_or(PopAction::Done);
        }
        if self.step == Step::Handshake {
            // Nothing may come between the +OK to STLS and the handshake.
            return self.fail(
                "tls_handshake",
                "the server sent data after its +OK to STLS".into(),
            );
        }
        let text = match status(line) {
            Status::Malformed => return self.malformed(line),
            Status::Err => {
                return match self.step {
                    Step::Stls => {
                        let d = format!("STLS refused: {}", self.clean(line));
                        self.fail("tls_handshake", d)
                    }
                    Step::Quit => {
                        // RFC 1939 §6: -ERR to QUIT only means deleted messages were
                        // not removed; the device deleted none and the login
                        // (all POP before SMTP needs) has succeeded.
                        self.finish(PopAction::Done)
                    }
                    _ => {
                        let d = self.clean(line);
                        self.fail("pop_auth", d)
                    }
                };
            }
            Status::Ok(text) => text,
        };
        match self.step {
            Step::Greeting => {
                self.timestamp = apop_timestamp(text).map(str::to_string);
                if self.plan.auth == PopAuth::Apop && self.timestamp.is_none() {
                    return self.fail("pop_auth", "the server offers no APOP timestamp".into());
                }
                if self.plan.stls {
                    self.step = Step::Stls;
                    return PopAction::Send(b"STLS\r\n".to_vec());
                }
                self.login()
            }
            Step::Stls => {
                self.step = Step::Handshake;
                PopAction::StartTls
            }
            Step::User => {
                let password = self.plan.password.clone();
                if let Err(a) = self.check_arg("password", &password) {
                    return a;
                }
                self.step = Step::Pass;
                PopAction::Send(format!("PASS {password}\r\n").into_bytes())
            }
            Step::Pass | Step::Apop => {
                self.step = Step::Quit;
                PopAction::Send(b"QUIT\r\n".to_vec())
            }
            Step::Quit => self.finish(PopAction::Done),
            // Both answered before the status was read; kept total without a panic.
            Step::Handshake | Step::Closed => self.last.clone().unwrap_or(PopAction::Done),
        }
    }

    /// The TLS handshake after `STLS` is done: continue with the login. RFC 2595 §4:
    /// the server sends no new greeting, so the APOP timestamp of the first one is
    /// used.
    pub fn tls_established(&mut self) -> PopAction {
        match self.step {
            Step::Handshake => self.login(),
            Step::Closed => self.last.clone().unwrap_or(PopAction::Done),
            other => {
                let d = format!("TLS established while waiting for {}", other.name());
                self.fail("tls_handshake", d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "<1896.697170952@dbc.mtview.ca.us>";

    fn plan(auth: PopAuth, stls: bool) -> PopPlan {
        PopPlan {
            user: "mrose".into(),
            password: "tanstaaf".into(),
            auth,
            stls,
        }
    }

    fn send(s: &str) -> PopAction {
        PopAction::Send(s.as_bytes().to_vec())
    }

    fn failure(a: PopAction) -> (&'static str, String) {
        match a {
            PopAction::Fail { class, detail } => (class, detail),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn rfc1939_apop_example() {
        assert_eq!(
            apop_digest(TS, "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        assert_eq!(
            apop_timestamp(&format!(" POP3 server ready {TS}")),
            Some(TS)
        );
        assert_eq!(apop_timestamp(" ready <>"), None);
        assert_eq!(apop_timestamp(" ready <a b>"), None);
        assert_eq!(apop_timestamp(" ready <abc"), None);
        assert_eq!(apop_timestamp(" ready"), None);
    }

    #[test]
    fn user_pass_flow() {
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        assert_eq!(c.on_line("+OK POP3 server ready"), send("USER mrose\r\n"));
        assert_eq!(c.on_line("+OK mrose"), send("PASS tanstaaf\r\n"));
        assert_eq!(c.on_line("+OK maildrop has 2 messages"), send("QUIT\r\n"));
        assert_eq!(
            c.on_line("+OK dewey POP3 server signing off"),
            PopAction::Done
        );
        // Later lines change nothing.
        assert_eq!(c.on_line("+OK"), PopAction::Done);
        assert_eq!(c.tls_established(), PopAction::Done);
    }

    #[test]
    fn apop_flow_with_the_rfc_example() {
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        assert_eq!(
            c.on_line(&format!("+OK POP3 server ready {TS}")),
            send("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n")
        );
        assert_eq!(
            c.on_line("+OK maildrop has 1 message (369 octets)"),
            send("QUIT\r\n")
        );
        assert_eq!(c.on_line("+OK"), PopAction::Done);
    }

    #[test]
    fn stls_flow_then_login_without_a_new_greeting() {
        let mut c = PopClient::new(plan(PopAuth::UserPass, true));
        assert_eq!(c.on_line("+OK ready"), send("STLS\r\n"));
        assert_eq!(c.on_line("+OK Begin TLS negotiation"), PopAction::StartTls);
        assert_eq!(c.tls_established(), send("USER mrose\r\n"));
        assert_eq!(c.on_line("+OK"), send("PASS tanstaaf\r\n"));
        assert_eq!(c.on_line("+OK"), send("QUIT\r\n"));
        assert_eq!(c.on_line("+OK bye"), PopAction::Done);

        // APOP over STLS uses the timestamp of the plaintext greeting.
        let mut c = PopClient::new(plan(PopAuth::Apop, true));
        assert_eq!(c.on_line(&format!("+OK hi {TS}")), send("STLS\r\n"));
        assert_eq!(c.on_line("+OK"), PopAction::StartTls);
        assert_eq!(
            c.tls_established(),
            send("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n")
        );
    }

    #[test]
    fn stls_refused_or_data_before_the_handshake() {
        let mut c = PopClient::new(plan(PopAuth::UserPass, true));
        c.on_line("+OK ready");
        let (class, detail) = failure(c.on_line("-ERR not now"));
        assert_eq!(class, "tls_handshake");
        assert_eq!(detail, "STLS refused: -ERR not now");

        let mut c = PopClient::new(plan(PopAuth::UserPass, true));
        c.on_line("+OK ready");
        c.on_line("+OK go");
        let (class, _) = failure(c.on_line("+OK injected"));
        assert_eq!(class, "tls_handshake");

        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        let (class, _) = failure(c.tls_established());
        assert_eq!(class, "tls_handshake");
    }

    #[test]
    fn each_failure() {
        // -ERR greeting.
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        assert_eq!(
            failure(c.on_line("-ERR go away")),
            ("pop_auth", "-ERR go away".into())
        );
        // APOP without a timestamp: nothing is sent.
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        assert_eq!(
            failure(c.on_line("+OK POP3 ready")),
            ("pop_auth", "the server offers no APOP timestamp".into())
        );
        // USER, PASS and APOP refused.
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        c.on_line("+OK");
        assert_eq!(
            failure(c.on_line("-ERR no such user")),
            ("pop_auth", "-ERR no such user".into())
        );
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        c.on_line("+OK");
        c.on_line("+OK");
        assert_eq!(
            failure(c.on_line("-ERR [AUTH] invalid password")),
            ("pop_auth", "-ERR [AUTH] invalid password".into())
        );
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        c.on_line(&format!("+OK {TS}"));
        assert_eq!(
            failure(c.on_line("-ERR permission denied")),
            ("pop_auth", "-ERR permission denied".into())
        );
        // Malformed replies at each step.
        for steps in 0..4 {
            let mut c = PopClient::new(plan(PopAuth::UserPass, false));
            for _ in 0..steps {
                c.on_line("+OK");
            }
            let (class, detail) = failure(c.on_line("* hello"));
            assert_eq!(class, "pop_auth");
            assert!(detail.starts_with("malformed reply"), "{detail}");
        }
        // +OKAY and -ERROR are not status indicators.
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        assert_eq!(failure(c.on_line("+OKAY")).0, "pop_auth");
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        assert_eq!(failure(c.on_line("-ERROR")).0, "pop_auth");
        // A failure is final.
        assert_eq!(failure(c.on_line("+OK")).0, "pop_auth");
    }

    #[test]
    fn lenient_status_forms_and_quit_err() {
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        assert_eq!(c.on_line("+OK\r"), send("USER mrose\r\n"));
        assert_eq!(c.on_line("+ok"), send("PASS tanstaaf\r\n"));
        assert_eq!(c.on_line("+OK\tlogged in"), send("QUIT\r\n"));
        // -ERR to QUIT after a successful login still counts as logged in.
        assert_eq!(
            c.on_line("-ERR some deleted messages not removed"),
            PopAction::Done
        );
    }

    #[test]
    fn argument_with_a_line_break_is_never_sent() {
        let mut p = plan(PopAuth::UserPass, false);
        p.user = "a\r\nDELE 1".into();
        let mut c = PopClient::new(p);
        assert_eq!(failure(c.on_line("+OK")).0, "config");
        let mut p = plan(PopAuth::UserPass, false);
        p.password = "x\nQUIT".into();
        let mut c = PopClient::new(p);
        c.on_line("+OK");
        let (class, detail) = failure(c.on_line("+OK"));
        assert_eq!(class, "config");
        assert!(!detail.contains("QUIT"));
    }

    #[test]
    fn no_secrets_in_details() {
        let digest = apop_digest(TS, "tanstaaf");
        let echo = format!("-ERR bad login mrose tanstaaf {digest}");
        // USER/PASS: the server echoes the password.
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        c.on_line("+OK");
        c.on_line("+OK");
        let (_, d) = failure(c.on_line("-ERR bad login mrose/tanstaaf"));
        assert_eq!(d, "-ERR bad login mrose/***");
        // APOP: the server echoes the digest and the password.
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        c.on_line(&format!("+OK {TS}"));
        let (_, d) = failure(c.on_line(&echo));
        assert!(!d.contains("tanstaaf") && !d.contains(&digest), "{d}");
        // Malformed lines too.
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        c.on_line(&format!("+OK {TS}"));
        let (_, d) = failure(c.on_line(&format!("what {digest} tanstaaf")));
        assert!(!d.contains("tanstaaf") && !d.contains(&digest), "{d}");
        // The plan's Debug hides the password.
        assert!(!format!("{:?}", plan(PopAuth::UserPass, false)).contains("tanstaaf"));
    }

    #[test]
    fn details_are_printable_and_short() {
        let mut c = PopClient::new(plan(PopAuth::UserPass, false));
        let long = format!("-ERR {}\u{1b}[31m\u{0}", "x".repeat(1000));
        let (_, d) = failure(c.on_line(&long));
        assert!(d.chars().count() <= DETAIL_CHARS);
        assert!(!d.chars().any(char::is_control));
    }

    #[test]
    fn garbage_never_panics() {
        let lines = [
            "",
            "+",
            "-",
            "+O",
            "-ER",
            "+OK <",
            "+OK >",
            "+OK ><",
            "+OK <<>>",
            "+OK <é@ü>",
            "\u{0}\u{ffff}",
            "+OK \u{10ffff}<\u{0}>",
            "-ERR\u{0}",
            "+OKé",
            "é+OK",
        ];
        for auth in [PopAuth::UserPass, PopAuth::Apop] {
            for stls in [false, true] {
                for first in lines {
                    for second in lines {
                        let mut c = PopClient::new(plan(auth, stls));
                        c.on_line(first);
                        c.on_line(second);
                        c.tls_established();
                        c.on_line("+OK");
                        c.on_line(second);
                    }
                }
            }
        }
        // A multibyte timestamp is still used as given.
        let mut c = PopClient::new(plan(PopAuth::Apop, false));
        let a = c.on_line("+OK <é@ü>");
        let expected = format!("APOP mrose {}\r\n", apop_digest("<é@ü>", "tanstaaf"));
        assert_eq!(a, PopAction::Send(expected.into_bytes()));
    }
}
