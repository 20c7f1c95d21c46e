//! What a client line shows in a transcript, with every credential out of it, for
//! both servers. Clients get AUTH, USER and PASS wrong in many ways (`AUTHPLAIN`
//! without the space, lower case, tabs, the SASL response on the next line of a
//! server that offers no AUTH, `USER name password` on one line, the password sent
//! again bare after an error), so redaction does not trust the command's spelling
//! nor the server's answer:
//!
//! - a command whose verb *starts with* `AUTH`, `PASS`, `APOP` (and POP3's `USER`
//!   with more than a known account name) keeps its verb (and the mechanism or user
//!   name) and loses the rest;
//! - after such a command, the client's lines are taken for credentials (a SASL
//!   response, a password) until one starts with a command verb of the protocol;
//! - a lone base64 word that is no command is a credential wherever it comes;
//! - finally any configured secret (a password, a token), plain or inside a base64
//!   word, is masked wherever it still stands.

use base64::Engine;

/// SASL mechanism names shown after `AUTH` (anything else is hidden: it may be a
/// credential sent in the mechanism's place).
const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "XOAUTH2",
    "XOAUTH",
    "OAUTHBEARER",
    "NTLM",
    "GSSAPI",
    "GSS-SPNEGO",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "EXTERNAL",
    "ANONYMOUS",
];

const SMTP_VERBS: &[&str] = &[
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "AUTH",
    "BDAT", "STARTTLS", "ETRN", "TURN",
];

const POP3_VERBS: &[&str] = &[
    "USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "QUIT", "STAT", "LIST", "UIDL", "RETR", "DELE",
    "NOOP", "RSET", "TOP",
];

/// Shown for a line taken for a credential.
pub const SECRET_LINE: &str = "[redacted]";
/// Shown for a line that is no command and looks like base64.
pub const NO_COMMAND: &str = "[redacted: a line that is no command]";

/// A SASL mechanism's name as the client wrote it, upper-cased, if it is one.
pub fn mechanism_name(word: &str) -> Option<&'static str> {
    MECHANISMS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(word))
        .copied()
}

/// Which protocol's lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Pop3,
}

/// The redaction state of one connection.
#[derive(Debug, Clone)]
pub struct Redactor {
    protocol: Protocol,
    /// Account names (POP3 `USER` shows one in full even with spaces).
    users: Vec<String>,
    /// Passwords and tokens of the configuration, masked wherever they stand.
    secrets: Vec<String>,
    /// The last command asked for credentials: the next lines may be some.
    expect_secret: bool,
}

fn verbs(p: Protocol) -> &'static [&'static str] {
    match p {
        Protocol::Smtp => SMTP_VERBS,
        Protocol::Pop3 => POP3_VERBS,
    }
}

/// A word made only of base64's characters, at least 4 long.
fn base64ish(w: &str) -> bool {
    w.len() >= 4
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

impl Redactor {
    pub fn new(protocol: Protocol, users: Vec<String>, secrets: Vec<String>) -> Redactor {
        Redactor {
            protocol,
            users,
            // Very short secrets would mask ordinary words; they are redacted by
            // the rules above, not by search.
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
            expect_secret: false,
        }
    }

    /// The next client lines are SASL responses or passwords (an exchange started,
    /// or the client may think one did).
    pub fn expect_secret(&mut self) {
        self.expect_secret = true;
    }

    /// What a line inside a SASL exchange shows: `*` (the cancel) or nothing of it.
    pub fn sasl_line(&mut self, line: &str) -> String {
        self.expect_secret = true;
        if line.trim() == "*" {
            "*".into()
        } else {
            SECRET_LINE.into()
        }
    }

    /// What a command line shows.
    pub fn command(&mut self, line: &str) -> String {
        let shown = self.shown(line);
        self.mask(shown)
    }

    fn shown(&mut self, line: &str) -> String {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return line.to_string();
        };
        let upper = verb.to_ascii_uppercase();
        let more = words.next().is_some();
        let known = verbs(self.protocol).contains(&upper.as_str());
        if let Some(shown) = self.credential_command(line, &upper, more) {
            self.expect_secret = true;
            return shown;
        }
        if known {
            self.expect_secret = false;
            return line.to_string();
        }
        if line.trim() == "*" {
            return "*".into();
        }
        if self.expect_secret {
            return SECRET_LINE.into();
        }
        if !more && base64ish(verb) {
            return NO_COMMAND.into();
        }
        line.to_string()
    }

    /// The shown form of an AUTH-, PASS-, APOP- or USER-like command, or `None` for
    /// any other line. The verb and a mechanism keep the client's spelling.
    fn credential_command(&self, line: &str, upper: &str, more: bool) -> Option<String> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("");
        if let Some(glued) = upper.strip_prefix("AUTH") {
            let glued = glued.trim_start_matches(['=', ':']);
            if !glued.is_empty() {
                // AUTHPLAIN, AUTH=PLAIN: the mechanism glued to the verb.
                let known = MECHANISMS.contains(&glued);
                let head = if known {
                    verb.to_string()
                } else {
                    "AUTH".into()
                };
                return Some(if more || !known {
                    format!("{head} [redacted]")
                } else {
                    head
                });
            }
            return Some(match words.next() {
                None => verb.to_string(),
                Some(m) if MECHANISMS.contains(&m.to_ascii_uppercase().as_str()) => {
                    match words.next() {
                        Some(_) => format!("{verb} {m} [redacted]"),
                        None => format!("{verb} {m}"),
                    }
                }
                Some(_) => format!("{verb} [redacted]"),
            });
        }
        if self.protocol != Protocol::Pop3 {
            return None;
        }
        let exact = upper.len() == 4;
        if upper.starts_with("PASS") {
            return Some(match (exact, more) {
                (true, false) => verb.to_string(),
                (true, true) => format!("{verb} ***"),
                (false, _) => "PASS ***".into(),
            });
        }
        if upper.starts_with("APOP") {
            return Some(match (exact, words.next()) {
                (true, Some(user)) => format!("{verb} {user} ***"),
                (true, None) => verb.to_string(),
                (false, _) => "APOP ***".into(),
            });
        }
        if upper.starts_with("USER") {
            if !exact {
                return Some("USER ***".into());
            }
            let rest = line.trim_start().get(4..).unwrap_or("").trim();
            let mut names = rest.split_whitespace();
            return Some(match names.next() {
                None => verb.to_string(),
                Some(_) if self.users.iter().any(|u| u == rest) => format!("{verb} {rest}"),
                Some(name) if names.next().is_none() => format!("{verb} {name}"),
                Some(name) => format!("{verb} {name} ***"),
            });
        }
        None
    }

    /// Masks any configured secret still in `text`, plain or inside a base64 word.
    pub fn mask(&self, mut text: String) -> String {
        if self.secrets.is_empty() {
            return text;
        }
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "***");
            }
        }
        let hides_secret = |w: &str| {
            base64ish(w)
                && base64::engine::general_purpose::STANDARD
                    .decode(w)
                    .is_ok_and(|d| {
                        let d = String::from_utf8_lossy(&d);
                        self.secrets.iter().any(|s| d.contains(s.as_str()))
                    })
        };
        if text.split_whitespace().any(hides_secret) {
            text = text
                .split(' ')
                .map(|w| if hides_secret(w) { "***" } else { w })
                .collect::<Vec<_>>()
                .join(" ");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop() -> Redactor {
        Redactor::new(
            Protocol::Pop3,
            vec!["bob".into(), "two words".into()],
            vec!["hunter22".into()],
        )
    }

    #[test]
    fn credential_commands_keep_their_verb_only() {
        let mut r = pop();
        for (line, shown) in [
            ("PASS\tx y", "PASS ***"),
            (" APOP bob 0123", "APOP bob ***"),
            ("APOP", "APOP"),
            ("USER bob", "USER bob"),
            ("user two words", "user two words"),
            ("USER bob secret", "USER bob ***"),
            ("USERbob", "USER ***"),
            ("PASSsecret", "PASS ***"),
            ("auth plain AGJvYgBw", "auth plain [redacted]"),
            ("AUTHPLAIN AGJvYgBw", "AUTHPLAIN [redacted]"),
            ("AUTH=PLAIN", "AUTH=PLAIN"),
            ("AUTHPLAINAGJvYgBw", "AUTH [redacted]"),
            ("AUTHxyzzy", "AUTH [redacted]"),
            ("AUTH hunter22", "AUTH [redacted]"),
            ("AUTH\tLOGIN", "AUTH LOGIN"),
        ] {
            assert_eq!(r.command(line), shown, "{line:?}");
        }
    }

    #[test]
    fn after_a_credential_command_lines_are_secret_until_a_command() {
        let mut r = pop();
        assert_eq!(r.command("AUTH PLAIN"), "AUTH PLAIN");
        assert_eq!(r.command("AGJvYgBodW50ZXIy"), SECRET_LINE);
        assert_eq!(r.command("two words here"), SECRET_LINE);
        assert_eq!(r.command("*"), "*");
        assert_eq!(r.command("STAT"), "STAT");
        assert_eq!(r.command("hello there"), "hello there");
        assert_eq!(r.command("c2VjcmV0"), NO_COMMAND);
    }

    #[test]
    fn configured_secrets_are_masked_plain_and_in_base64() {
        let r = pop();
        assert_eq!(r.mask("x hunter22 y".into()), "x *** y");
        let b = base64::engine::general_purpose::STANDARD.encode("\0bob\0hunter22");
        assert_eq!(r.mask(format!("XYZ {b}")), "XYZ ***");
        assert_eq!(r.mask("nothing here".into()), "nothing here");
    }
}
