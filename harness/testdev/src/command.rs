//! The console's command language: one line read into a [`Command`], each parameter
//! in the form `quoting.rs` gives it. Only the grammar lives here; whether a command
//! is allowed where it is typed, and what it does, is the session's business.

use crate::quoting::{Lexer, Quoting};

/// One command line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An empty line.
    Empty,
    /// `?` or `help`.
    Help,
    /// `show running-config [PARAMETER]`.
    ShowRunning(Option<String>),
    /// `show clock`.
    ShowClock,
    /// `show version`: the firmware and the serial number.
    ShowVersion,
    /// `show job N` (the number as typed).
    ShowJob(String),
    /// `show configuration`: the staged changes (configuration mode).
    ShowCandidate,
    /// `configure` or `configure terminal`.
    Configure,
    /// `set PARAMETER VALUE [PARAMETER VALUE …]` (names and values as typed).
    Set(Vec<(String, String)>),
    Commit,
    Abort,
    End,
    Exit,
    Logout,
    /// `factory-reset`.
    FactoryReset,
    /// `reload`: restart the device (as a power cycle does).
    Reload,
    /// `clock set …`: the words after `set`.
    ClockSet(Vec<String>),
    /// `username NAME password PASSWORD [email ADDRESS]`.
    Username {
        name: String,
        password: String,
        email: Option<String>,
    },
    /// `notification add ADDRESS`.
    NotifyAdd(String),
    /// `certificate import`.
    CertImport,
    /// `send scan to LIST size KB [user NAME] [subject TEXT] [filename TEXT]`.
    SendScan(Scan),
    /// `send alert KIND`.
    SendAlert(String),
    /// `send counter`.
    SendCounter,
}

/// The parameters of `send scan`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub to: String,
    pub size: String,
    pub user: Option<String>,
    pub subject: Option<String>,
    pub filename: Option<String>,
}

/// The usage lines, one per command (`help` lists them).
pub const SCAN_USAGE: &str =
    "send scan to ADDRESS[,ADDRESS...] size KB [user NAME] [subject TEXT] [filename TEXT]";
pub const USERNAME_USAGE: &str = "username NAME password PASSWORD [email ADDRESS]";

fn usage(u: &str) -> String {
    format!("usage: {u}")
}

fn nothing_more(l: &mut Lexer, u: &str) -> Result<(), String> {
    if l.at_end() {
        Ok(())
    } else {
        Err(usage(u))
    }
}

/// Reads one line. An error is the detail of the console's error line.
pub fn parse(line: &str, q: Quoting) -> Result<Command, String> {
    let mut l = Lexer::new(line);
    let Some(first) = l.keyword() else {
        return Ok(Command::Empty);
    };
    let simple = |l: &mut Lexer, c: Command, u: &str| nothing_more(l, u).map(|_| c);
    match first {
        "?" | "help" => simple(&mut l, Command::Help, "help"),
        "show" => match l.keyword() {
            Some("running-config") => {
                let key = l.keyword().map(str::to_string);
                nothing_more(&mut l, "show running-config [PARAMETER]")?;
                Ok(Command::ShowRunning(key))
            }
            Some("clock") => simple(&mut l, Command::ShowClock, "show clock"),
            Some("version") => simple(&mut l, Command::ShowVersion, "show version"),
            Some("job") => match l.keyword() {
                Some(n) => {
                    let n = n.to_string();
                    simple(&mut l, Command::ShowJob(n), "show job NUMBER")
                }
                None => Err(usage("show job NUMBER")),
            },
            Some("configuration") => {
                simple(&mut l, Command::ShowCandidate, "show configuration")
            }
            _ => Err(usage(
                "show running-config [PARAMETER] | show clock | show version | show job NUMBER | show configuration",
            )),
        },
        "configure" => match l.keyword() {
            None | Some("terminal") => simple(&mut l, Command::Configure, "configure [terminal]"),
            Some(_) => Err(usage("configure [terminal]")),
        },
        "set" => {
            let mut pairs = Vec::new();
            while let Some(key) = l.keyword() {
                let key = key.to_string();
                let value = l
                    .param(q.setting())?
                    .ok_or_else(|| format!("set: no value for {key}"))?;
                pairs.push((key, value));
            }
            if pairs.is_empty() {
                return Err(usage("set PARAMETER VALUE [PARAMETER VALUE ...]"));
            }
            Ok(Command::Set(pairs))
        }
        "commit" => simple(&mut l, Command::Commit, "commit"),
        "abort" => simple(&mut l, Command::Abort, "abort"),
        "end" => simple(&mut l, Command::End, "end"),
        "exit" => simple(&mut l, Command::Exit, "exit"),
        "logout" => simple(&mut l, Command::Logout, "logout"),
        "factory-reset" => simple(&mut l, Command::FactoryReset, "factory-reset"),
        "reload" => simple(&mut l, Command::Reload, "reload"),
        "clock" => match l.keyword() {
            Some("set") => {
                let mut words = Vec::new();
                while let Some(w) = l.keyword() {
                    words.push(w.to_string());
                }
                Ok(Command::ClockSet(words))
            }
            _ => Err(usage("clock set TIME")),
        },
        "username" => {
            let name = l.param(q.address())?.ok_or_else(|| usage(USERNAME_USAGE))?;
            if l.keyword() != Some("password") {
                return Err(usage(USERNAME_USAGE));
            }
            let password = l.param(q.setting())?.ok_or_else(|| usage(USERNAME_USAGE))?;
            let email = match l.keyword() {
                None => None,
                Some("email") => Some(l.param(q.address())?.ok_or_else(|| usage(USERNAME_USAGE))?),
                Some(_) => return Err(usage(USERNAME_USAGE)),
            };
            nothing_more(&mut l, USERNAME_USAGE)?;
            Ok(Command::Username {
                name,
                password,
                email,
            })
        }
        "notification" => match l.keyword() {
            Some("add") => {
                let a = l
                    .param(q.address())?
                    .ok_or_else(|| usage("notification add ADDRESS"))?;
                simple(&mut l, Command::NotifyAdd(a), "notification add ADDRESS")
            }
            _ => Err(usage("notification add ADDRESS")),
        },
        "certificate" => match l.keyword() {
            Some("import") => simple(&mut l, Command::CertImport, "certificate import"),
            _ => Err(usage("certificate import")),
        },
        "send" => match l.keyword() {
            Some("scan") => scan(&mut l, q).map(Command::SendScan),
            Some("alert") => match l.keyword() {
                Some(k) => {
                    let k = k.to_string();
                    simple(&mut l, Command::SendAlert(k), "send alert KIND")
                }
                None => Err(usage("send alert KIND")),
            },
            Some("counter") => simple(&mut l, Command::SendCounter, "send counter"),
            _ => Err(usage("send scan ... | send alert KIND | send counter")),
        },
        other => Err(format!(
            "unknown command {:?}; '?' lists the commands",
            shorten(other)
        )),
    }
}

fn scan(l: &mut Lexer, q: Quoting) -> Result<Scan, String> {
    let mut s = Scan::default();
    let (mut to, mut size) = (None, None);
    while let Some(kw) = l.keyword() {
        let (slot, form) = match kw {
            "to" => (&mut to, q.address()),
            "size" => (&mut size, q.address()),
            "user" => (&mut s.user, q.address()),
            "subject" => (&mut s.subject, q.text()),
            "filename" => (&mut s.filename, q.text()),
            other => {
                return Err(format!(
                    "send scan: unknown keyword {:?}; {}",
                    shorten(other),
                    usage(SCAN_USAGE)
                ))
            }
        };
        if slot.is_some() {
            return Err(format!("send scan: {kw} given twice"));
        }
        let kw = kw.to_string();
        *slot = Some(
            l.param(form)?
                .ok_or_else(|| format!("send scan: no value after {kw}"))?,
        );
    }
    match (to, size) {
        (Some(t), Some(z)) => {
            s.to = t;
            s.size = z;
            Ok(s)
        }
        _ => Err(usage(SCAN_USAGE)),
    }
}

/// A word cut to 40 characters for a message.
pub fn shorten(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, String> {
        parse(line, Quoting::new(true))
    }

    #[test]
    fn commands_are_read() {
        assert_eq!(p("  "), Ok(Command::Empty));
        assert_eq!(
            p("show running-config smtp-port"),
            Ok(Command::ShowRunning(Some("smtp-port".into())))
        );
        assert_eq!(
            p("set auth-user \"John \\\"J\\\" Smith\" smtp-port 2525"),
            Ok(Command::Set(vec![
                ("auth-user".into(), "John \"J\" Smith".into()),
                ("smtp-port".into(), "2525".into())
            ]))
        );
        assert_eq!(
            p("send scan size 10 to a@b.test,c@d.test user o'brien subject 'It''s here' filename 'a b.pdf'"),
            Ok(Command::SendScan(Scan {
                to: "a@b.test,c@d.test".into(),
                size: "10".into(),
                user: Some("o'brien".into()),
                subject: Some("It's here".into()),
                filename: Some("a b.pdf".into()),
            }))
        );
        assert_eq!(
            p("username bob password \"p w\" email bob@x.test"),
            Ok(Command::Username {
                name: "bob".into(),
                password: "p w".into(),
                email: Some("bob@x.test".into())
            })
        );
        assert_eq!(
            p("clock set 21:23:25 5 Dec 2026"),
            Ok(Command::ClockSet(vec![
                "21:23:25".into(),
                "5".into(),
                "Dec".into(),
                "2026".into()
            ]))
        );
    }

    #[test]
    fn bad_lines_are_errors() {
        for bad in [
            "frobnicate",
            "set smtp-port",
            "set",
            "show",
            "send scan to a@b.test",
            "send scan to a@b.test size 1 to c@d.test",
            "send scan to a@b.test size 1 colour red",
            "username bob secret x",
            "set auth-user \"open",
            "commit now",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        // Without --quoting every parameter takes double quotes.
        assert_eq!(
            parse("notification add \"a@b.test\"", Quoting::new(false)),
            Ok(Command::NotifyAdd("a@b.test".into()))
        );
        assert_eq!(
            p("notification add \"a@b.test\""),
            Ok(Command::NotifyAdd("\"a@b.test\"".into()))
        );
    }
}
