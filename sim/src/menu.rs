//! The second console dialect, `menu` (`mfp-sim --dialect menu`): numbered menus
//! behind a login, as some real service consoles are. It drives the same device
//! operations as the reference dialect of SPEC §6 (`console.rs`) with other words
//! everywhere, so that a device profile (`fixtures/devices/sim-menu.toml`) proves the
//! harness tied to neither:
//!
//! - a banner and `login: `, then `Password: ` (prompts without a newline, nothing
//!   echoed); `Login incorrect` asks again; nothing else is taken before the login;
//! - numbered selections with arguments (`1.2 SMTP_PORT 2525`), each answered by its
//!   lines, then `Done.` or `Error [CLASS]: detail`, then the prompt `MFP> ` (no
//!   newline);
//! - setting keys upper case with `_` (`smtp.auth.methods` is `SMTP_AUTH_METHODS`),
//!   value lines `SMTP_PORT : 25`, values written and quoted as SPEC §6 says;
//! - `Job #7 accepted`, `Job #7 completed`, `Job #7 aborted [auth_failed] detail`,
//!   recipients `  to x@y: sent` or `  to x@y: refused (550 …)`, and job events
//!   `*** Job #7 completed` on a line of their own, the prompt printed again after.
//!
//! Bad input of any kind is answered with an `Error [config]: …` line (before the
//! login: a message and the login prompt again) and the console keeps serving.

use crate::console::{scan_trigger, PemCollector, PemStep, ALERT_KINDS};
use crate::device::{Device, JobEvent, JobState, JobStatus};
use crate::dialect::{lines, Dialect};
use crate::jobs::Trigger;
use crate::line::{line_text, Line};
use crate::settings::{self, Key, Refusal, Refused};
use crate::text::{quote, split_words};

/// The prompt printed after every answer once logged in (no newline after it).
pub const PROMPT: &str = "MFP> ";
/// The first line of the login screen.
pub const BANNER: &str = "MFP-4000 service console";
/// The login prompt (no newline after it).
pub const LOGIN_PROMPT: &str = "login: ";
/// The password prompt (no newline after it; the password is not echoed).
pub const PASSWORD_PROMPT: &str = "Password: ";
/// The status line of a selection that succeeded.
pub const DONE: &str = "Done.";

/// The credentials the menu console takes (`--menu-login USER:PASSWORD`).
#[derive(Clone, PartialEq, Eq)]
pub struct MenuLogin {
    pub user: String,
    pub password: String,
}

impl Default for MenuLogin {
    /// `service` / `mfp-4000`.
    fn default() -> Self {
        MenuLogin {
            user: "service".into(),
            password: "mfp-4000".into(),
        }
    }
}

impl std::fmt::Debug for MenuLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MenuLogin")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Why `--menu-login` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("--menu-login: expected USER:PASSWORD")]
    NoColon,
    #[error("--menu-login: the user {0:?} must be 1 to 32 letters, digits, '.', '_' or '-', starting with a letter")]
    BadUser(String),
    #[error("--menu-login: the password must be 1 to 64 printable ASCII characters")]
    BadPassword,
}

impl MenuLogin {
    /// Reads `USER:PASSWORD`: a user name as [`valid_user`] says, a password of
    /// 1 to 64 printable ASCII characters (spaces allowed).
    pub fn parse(spec: &str) -> Result<MenuLogin, LoginError> {
        let Some((user, password)) = spec.split_once(':') else {
            return Err(LoginError::NoColon);
        };
        if !valid_user(user) {
            return Err(LoginError::BadUser(user.into()));
        }
        if password.is_empty()
            || password.chars().count() > 64
            || !password.chars().all(|c| (' '..='~').contains(&c))
        {
            return Err(LoginError::BadPassword);
        }
        Ok(MenuLogin {
            user: user.into(),
            password: password.into(),
        })
    }
}

/// A user name the login takes: 1 to 32 of letters, digits, `.`, `_`, `-`,
/// starting with a letter (so that a menu selection typed at `login:` is none).
pub fn valid_user(s: &str) -> bool {
    s.len() <= 32
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The menu's name for a SPEC setting key: upper case, `.` written `_`
/// (`pop_before_smtp.wait` is `POP_BEFORE_SMTP_WAIT`).
pub fn menu_key(spec_key: &str) -> String {
    spec_key.replace('.', "_").to_ascii_uppercase()
}

/// The SPEC key behind a menu key, if there is one: the one place where the menu's
/// text becomes a [`Key`].
pub fn spec_key(menu: &str) -> Option<Key> {
    Key::ALL
        .iter()
        .copied()
        .find(|k| menu_key(k.as_str()) == menu)
}

/// The menu's alert words, each with the SPEC kind it raises.
pub const ALERT_WORDS: &[(&str, &str)] = &[
    ("paper-out", "paper_empty"),
    ("jam", "paper_jam"),
    ("toner-empty", "toner_out"),
    ("maintenance-due", "maintenance"),
    ("tray-full", "output_tray_full"),
    ("service-call", "service_call"),
    ("job-error", "job_error"),
];

const MAIN_MENU: &[&str] = &[
    " 1 Settings",
    " 2 Certificates",
    " 3 Users & notifications",
    " 4 Jobs",
    " 5 Clock",
    " 0 Show this menu",
];

const SUBMENUS: &[(&str, &[&str])] = &[
    (
        "1",
        &[
            " 1.1 KEY              Show one setting",
            " 1.2 KEY VALUE        Change one setting",
            " 1.3 KEY=VALUE ...    Change several (all or nothing)",
            " 1.4                  Show all settings",
            " 1.9                  Factory reset",
        ],
    ),
    (
        "2",
        &[" 2.1                  Import a CA certificate (then its PEM lines)"],
    ),
    (
        "3",
        &[
            " 3.1 NAME PASSWORD ADDRESS   Add a device user",
            " 3.2 ADDRESS                 Add a notification address",
        ],
    ),
    (
        "4",
        &[
            " 4.1 TO[,TO...] SIZE_KB [USER]   Scan to e-mail",
            " 4.2 KIND                        Raise an alert: paper-out, jam, toner-empty,",
            "                                 maintenance-due, tray-full, service-call, job-error",
            " 4.3                             Send the total counter now",
            " 4.4 N                           Show a job",
        ],
    ),
    (
        "5",
        &[
            " 5.1 RFC3339          Set the clock",
            " 5.2                  Show the clock",
        ],
    ),
];

/// Where the session is.
#[derive(Debug)]
enum Stage {
    /// At `login:`.
    User,
    /// At `Password:`, for this user.
    Password { user: String },
    /// Logged in.
    Ready,
}

/// One menu console session.
#[derive(Debug)]
pub struct Menu {
    login: MenuLogin,
    stage: Stage,
    pem: Option<PemCollector>,
    started: Vec<u64>,
}

/// The answer after the login: data lines, `Done.`, the prompt.
fn done<S: AsRef<str>>(data: &[S]) -> String {
    let mut t = lines(data);
    t.push_str(DONE);
    t.push_str("\r\n");
    t.push_str(PROMPT);
    t
}

/// The answer to a refused selection: `Error [CLASS]: detail`, the prompt.
fn error(class: &str, detail: impl std::fmt::Display) -> String {
    format!("Error [{class}]: {detail}\r\n{PROMPT}")
}

fn usage(u: &str) -> String {
    error("config", format!("usage: {u}"))
}

/// A value line: the key padded to the longest key, ` : `, the value quoted.
fn value_line(key: &str, value: &str) -> String {
    let width = Key::ALL
        .iter()
        .map(|k| menu_key(k.as_str()).len())
        .max()
        .unwrap_or(0);
    format!("{key:<width$} : {}", quote(value))
}

/// A refused change in the menu's words (its key names; secrets never shown).
fn describe(refusals: &[Refusal]) -> String {
    let parts: Vec<String> = refusals
        .iter()
        .map(|r| {
            format!(
                "{}: {} refused ({})",
                menu_key(&r.key),
                r.shown_value(),
                r.rule
            )
        })
        .collect();
    format!("{}; nothing changed", parts.join("; "))
}

fn truncate(s: &str, n: usize) -> String {
    let mut t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        t.push('…');
    }
    t
}

/// A job's state in the menu's words.
fn job_line(job: &JobStatus) -> String {
    let state = match job.state {
        JobState::Queued => "waiting",
        JobState::Running => "in progress",
        JobState::Done => "completed",
        JobState::Failed => "aborted",
    };
    match &job.error {
        Some(e) => format!("Job #{} {state} [{}] {}", job.id, e.class, e.detail),
        None => format!("Job #{} {state}", job.id),
    }
}

impl Menu {
    pub fn new(login: MenuLogin) -> Menu {
        Menu {
            login,
            stage: Stage::User,
            pem: None,
            started: Vec::new(),
        }
    }

    /// Whether the session has logged in.
    pub fn logged_in(&self) -> bool {
        matches!(self.stage, Stage::Ready)
    }

    fn login_screen() -> String {
        format!("{BANNER}\r\n{LOGIN_PROMPT}")
    }

    fn at_login(&mut self, line: Line) -> String {
        let text = match line_text(line) {
            Ok(t) => t,
            Err(e) => return format!("Please log in first: {e}\r\n{LOGIN_PROMPT}"),
        };
        let name = text.trim();
        if name.is_empty() {
            return Menu::login_screen();
        }
        if !valid_user(name) {
            return format!(
                "Please log in first: type the user name at `login:`, then the password\r\n{LOGIN_PROMPT}"
            );
        }
        self.stage = Stage::Password {
            user: name.to_string(),
        };
        PASSWORD_PROMPT.to_string()
    }

    fn at_password(&mut self, user: String, line: Line) -> String {
        // The password was not echoed: end its line first.
        let ok = match line_text(line) {
            Ok(p) => user == self.login.user && p == self.login.password,
            Err(_) => false,
        };
        if !ok {
            self.stage = Stage::User;
            return format!("\r\nLogin incorrect\r\n{}", Menu::login_screen());
        }
        self.stage = Stage::Ready;
        let mut t = format!("\r\nWelcome, {user}.\r\n");
        t.push_str(&lines(MAIN_MENU));
        t.push_str(PROMPT);
        t
    }

    fn collecting(&mut self, text: &str, dev: &Device) -> String {
        let Some(pem) = self.pem.as_mut() else {
            return String::new();
        };
        match pem.feed(text, dev) {
            PemStep::More => String::new(),
            PemStep::Imported(r) => {
                self.pem = None;
                match r {
                    Ok(()) => done(&["Certificate imported."]),
                    Err(e) => error("config", e),
                }
            }
            PemStep::Abandoned(e) => {
                self.pem = None;
                error("config", e)
            }
        }
    }

    fn trigger(&mut self, dev: &Device, t: Trigger) -> String {
        match dev.submit(t) {
            Ok(id) => {
                self.started.push(id);
                done(&[format!("Job #{id} accepted")])
            }
            Err(e) => error(e.class, e.detail),
        }
    }

    /// Changes settings given by menu keys, all or nothing; every problem named.
    fn change(&self, dev: &Device, pairs: &[(&str, &str)]) -> String {
        let mut problems = Vec::new();
        let mut spec_pairs = Vec::new();
        for (k, v) in pairs {
            match spec_key(k) {
                Some(sk) => {
                    if let Err(r) = settings::validate_with(sk, v, dev.options().quirks.input()) {
                        problems.push(describe(&[r]).replace("; nothing changed", ""));
                    }
                    spec_pairs.push((sk, *v));
                }
                None => problems.push(format!(
                    "{}: no such setting (1.4 lists them)",
                    truncate(k, 60)
                )),
            }
        }
        if !problems.is_empty() {
            return error(
                "config",
                format!("{}; nothing changed", problems.join("; ")),
            );
        }
        match dev.apply_checked(&spec_pairs) {
            Ok(()) => done::<&str>(&[]),
            Err(Refused(r)) => error("config", describe(&r)),
        }
    }

    fn selection(&mut self, text: &str, dev: &Device) -> String {
        let words = match split_words(text) {
            Ok(w) => w,
            Err(e) => return error("config", format!("cannot read the line: {e}")),
        };
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            [] => PROMPT.to_string(),
            ["0" | "?" | "help"] => done(MAIN_MENU),
            [n] if SUBMENUS.iter().any(|(k, _)| k == n) => {
                let items = SUBMENUS
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, items)| *items)
                    .unwrap_or_default();
                done(items)
            }
            ["1.1", key] => match spec_key(key) {
                Some(k) => done(&[value_line(key, &dev.settings().shown(k))]),
                None => error(
                    "config",
                    format!("{}: no such setting (1.4 lists them)", truncate(key, 60)),
                ),
            },
            ["1.1", ..] => usage("1.1 KEY"),
            ["1.2", key, value] => self.change(dev, &[(key, value)]),
            ["1.2", ..] => usage("1.2 KEY VALUE (quote a value with spaces)"),
            ["1.3", pairs @ ..] if !pairs.is_empty() => {
                let mut parsed = Vec::new();
                for p in pairs {
                    match p.split_once('=') {
                        Some(kv) => parsed.push(kv),
                        None => {
                            return error(
                                "config",
                                format!(
                                    "1.3: {:?} is not KEY=VALUE; nothing changed",
                                    truncate(p, 60)
                                ),
                            )
                        }
                    }
                }
                self.change(dev, &parsed)
            }
            ["1.3"] => usage("1.3 KEY=VALUE [KEY=VALUE ...]"),
            ["1.4"] => {
                let shown: Vec<String> = dev
                    .settings()
                    .show()
                    .into_iter()
                    .map(|(k, v)| value_line(&menu_key(k.as_str()), &v))
                    .collect();
                done(&shown)
            }
            ["1.9"] => {
                dev.reset();
                done(&["Factory settings restored."])
            }
            ["2.1"] => {
                self.pem = Some(PemCollector::new("2.1"));
                lines(&["Paste the certificate (PEM), up to -----END CERTIFICATE-----"])
            }
            ["3.1", name, password, address] => match dev.add_user(name, password, address) {
                Ok(()) => done::<&str>(&[]),
                Err(e) => error("config", format!("3.1: {e}")),
            },
            ["3.1", ..] => usage("3.1 NAME PASSWORD ADDRESS"),
            ["3.2", address] => match dev.add_notify(address) {
                Ok(()) => done::<&str>(&[]),
                Err(e) => error("config", format!("3.2: {e}")),
            },
            ["3.2", ..] => usage("3.2 ADDRESS"),
            ["4.1", to, size, rest @ ..] if rest.len() <= 1 => {
                match scan_trigger("4.1", to, size, rest.first().copied()) {
                    Ok(t) => self.trigger(dev, t),
                    Err(e) => error("config", e),
                }
            }
            ["4.1", ..] => usage("4.1 TO[,TO...] SIZE_KB [USER]"),
            ["4.2", word] => {
                let kind = ALERT_WORDS
                    .iter()
                    .find(|(w, _)| w == word)
                    .and_then(|(_, k)| ALERT_KINDS.iter().find(|a| *a == k));
                match kind {
                    Some(k) => self.trigger(dev, Trigger::Alert(k)),
                    None => error(
                        "config",
                        format!(
                            "4.2: unknown alert {:?}; one of {}",
                            truncate(word, 40),
                            ALERT_WORDS
                                .iter()
                                .map(|(w, _)| *w)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
            ["4.2", ..] => usage("4.2 KIND"),
            ["4.3"] => self.trigger(dev, Trigger::Counter),
            ["4.4", n] => match n.parse::<u64>().ok().and_then(|n| dev.job_status(n)) {
                Some(job) => {
                    let mut out = vec![job_line(&job)];
                    for rc in &job.recipients {
                        out.push(match (rc.accepted, rc.reply.is_empty()) {
                            (true, _) => format!("  to {}: sent", rc.address),
                            (false, true) => format!("  to {}: refused", rc.address),
                            (false, false) => {
                                format!("  to {}: refused ({})", rc.address, rc.reply)
                            }
                        });
                    }
                    done(&out)
                }
                None => error("config", format!("4.4: no job {:?}", truncate(n, 40))),
            },
            ["4.4", ..] => usage("4.4 N"),
            ["5.1", t] => match dev.set_clock(t) {
                Ok(()) => done::<&str>(&[]),
                Err(e) => error("config", format!("5.1: {e}")),
            },
            ["5.1", ..] => usage("5.1 RFC3339"),
            ["5.2"] => done(&[format!("Clock : {}", dev.clock_rfc3339())]),
            ["5.2", ..] => usage("5.2"),
            [sel, ..] => error(
                "config",
                format!(
                    "unknown selection {:?}; 0 shows the menu",
                    truncate(sel, 40)
                ),
            ),
        }
    }
}

impl Dialect for Menu {
    fn greeting(&mut self) -> String {
        Menu::login_screen()
    }

    fn answer(&mut self, line: Line, dev: &Device) -> String {
        match std::mem::replace(&mut self.stage, Stage::Ready) {
            Stage::User => {
                self.stage = Stage::User;
                return self.at_login(line);
            }
            Stage::Password { user } => return self.at_password(user, line),
            Stage::Ready => {}
        }
        let text = match line_text(line) {
            Ok(t) => t,
            Err(e) => {
                self.pem = None;
                return error("config", e);
            }
        };
        if self.pem.is_some() {
            return self.collecting(&text, dev);
        }
        self.selection(&text, dev)
    }

    fn event(&mut self, e: &JobEvent) -> String {
        if !self.logged_in() {
            return String::new();
        }
        let line = match &e.error {
            None => format!("*** Job #{} completed", e.id),
            Some(f) => format!("*** Job #{} aborted [{}] {}", e.id, f.class, f.detail),
        };
        if self.pem.is_some() {
            // No prompt is showing while PEM lines are pasted.
            return format!("{line}\r\n");
        }
        // The prompt is showing: the event takes a line of its own, then the prompt
        // comes again.
        format!("\r\n{line}\r\n{PROMPT}")
    }

    fn take_started(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Options;
    use std::sync::Arc;

    fn device() -> Arc<Device> {
        Device::start(Options::default()).expect("device")
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    /// A menu session logged in with the default credentials.
    fn logged_in(dev: &Device) -> Menu {
        let mut m = Menu::new(MenuLogin::default());
        assert_eq!(m.greeting(), "MFP-4000 service console\r\nlogin: ");
        assert_eq!(m.answer(text("service"), dev), "Password: ");
        let welcome = m.answer(text("mfp-4000"), dev);
        assert!(
            welcome.starts_with("\r\nWelcome, service.\r\n 1 Settings\r\n"),
            "{welcome:?}"
        );
        assert!(
            welcome.ends_with(" 0 Show this menu\r\nMFP> "),
            "{welcome:?}"
        );
        m
    }

    #[test]
    fn the_jobs_menu_names_every_alert_word() {
        let jobs = SUBMENUS
            .iter()
            .find(|(k, _)| *k == "4")
            .map(|(_, items)| items.join(" "))
            .unwrap_or_default();
        for (word, _) in ALERT_WORDS {
            assert!(jobs.contains(word), "{word}");
        }
    }

    #[test]
    fn keys_are_all_distinct_and_map_back() {
        let mut seen = std::collections::BTreeSet::new();
        for key in Key::ALL {
            let k = menu_key(key.as_str());
            assert!(seen.insert(k.clone()), "{k} twice");
            assert_eq!(spec_key(&k), Some(*key));
            assert!(
                k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{k}"
            );
        }
        assert_eq!(menu_key("pop_before_smtp.wait"), "POP_BEFORE_SMTP_WAIT");
        assert_eq!(spec_key("smtp.port"), None);
        for (_, kind) in ALERT_WORDS {
            assert!(ALERT_KINDS.contains(kind), "{kind}");
        }
        assert_eq!(ALERT_WORDS.len(), ALERT_KINDS.len());
    }

    #[test]
    fn the_login_is_required_and_checked() {
        let dev = device();
        let mut m = Menu::new(MenuLogin::default());
        // Nothing is taken before the login.
        let a = m.answer(text("1.4"), &dev);
        assert!(
            a.starts_with("Please log in first") && a.ends_with("\r\nlogin: "),
            "{a:?}"
        );
        assert_eq!(
            m.answer(text(""), &dev),
            "MFP-4000 service console\r\nlogin: "
        );
        let a = m.answer(Line::NotUtf8, &dev);
        assert!(a.contains("not UTF-8") && a.ends_with("login: "), "{a:?}");
        // Wrong user, wrong password: asked again, never told which.
        assert_eq!(m.answer(text("admin"), &dev), "Password: ");
        assert_eq!(
            m.answer(text("mfp-4000"), &dev),
            "\r\nLogin incorrect\r\nMFP-4000 service console\r\nlogin: "
        );
        assert_eq!(m.answer(text("service"), &dev), "Password: ");
        let a = m.answer(text("wrong"), &dev);
        assert!(a.contains("Login incorrect") && !m.logged_in(), "{a:?}");
        assert_eq!(m.answer(text("service"), &dev), "Password: ");
        assert!(m.answer(text("mfp-4000"), &dev).ends_with(PROMPT));
        assert!(m.logged_in());
        // Other credentials.
        let login = MenuLogin::parse("tech:a b:\"c").expect("valid");
        assert_eq!(login.password, "a b:\"c");
        assert!(!format!("{login:?}").contains("a b"));
        let mut m = Menu::new(login);
        m.answer(text("tech"), &dev);
        assert!(m.answer(text("a b:\"c"), &dev).contains("Welcome, tech."));
        for bad in ["", "nocolon", ":pw", "1x:pw", "u:", "u:\u{e9}"] {
            let e = MenuLogin::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("--menu-login"), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_round_trip_in_menu_words() {
        let dev = device();
        let mut m = logged_in(&dev);
        assert_eq!(
            m.answer(text("1.1 SMTP_PORT"), &dev),
            format!(
                "{} : 25\r\nDone.\r\nMFP> ",
                format_args!("{:<23}", "SMTP_PORT")
            )
        );
        let long = format!("{}@{}.example", "l".repeat(64), "d".repeat(60));
        for (key, v) in [
            ("SMTP_AUTH_USER", ""),
            ("SMTP_AUTH_USER", "a b"),
            ("SMTP_AUTH_USER", "say \"hi\" \\ there"),
            ("SMTP_AUTH_USER", "ユーザー 名"),
            ("DEVICE_ADDRESS", long.as_str()),
            ("SMTP_AUTH_REALM", "\"quoted\""),
        ] {
            let set = m.answer(text(&format!("1.2 {key} {}", quote(v))), &dev);
            assert_eq!(set, "Done.\r\nMFP> ", "{v:?}");
            let got = m.answer(text(&format!("1.1 {key}")), &dev);
            let line = got.split("\r\n").next().unwrap_or_default();
            let (k, value) = line.split_once(" : ").expect("a value line");
            assert_eq!(k.trim_end(), key);
            assert_eq!(
                split_words(value).expect("quoted"),
                vec![v.to_string()],
                "{v:?}"
            );
        }
        assert_eq!(
            m.answer(text("1.2 SMTP_AUTH_PASSWORD \"p w 'x'\""), &dev),
            "Done.\r\nMFP> "
        );
        assert_eq!(dev.settings().get(Key::SmtpAuthPassword), "p w 'x'");
        // 1.4 lists every key in menu words, secrets masked.
        let all = m.answer(text("1.4"), &dev);
        assert!(all.contains("SMTP_AUTH_PASSWORD      : ***\r\n"), "{all}");
        assert!(all.contains("POP_BEFORE_SMTP_WAIT    : 5\r\n"), "{all}");
        assert_eq!(all.matches(" : ").count(), Key::ALL.len(), "{all}");
        assert!(!all.contains("smtp."), "{all}");
        // 1.3 is all or nothing, every problem named in menu words.
        let a = m.answer(
            text("1.3 SMTP_PORT=2525 SMTP_TIMEOUT=29 EMAIL_SCAN=maybe smtp.tls=none"),
            &dev,
        );
        assert!(
            a.starts_with("Error [config]: SMTP_TIMEOUT: 29 refused (must be"),
            "{a}"
        );
        assert!(
            a.contains("EMAIL_SCAN: maybe refused") && a.contains("smtp.tls: no such setting"),
            "{a}"
        );
        assert!(a.ends_with("; nothing changed\r\nMFP> "), "{a}");
        assert_eq!(dev.settings().get(Key::SmtpPort), "25");
        assert_eq!(
            m.answer(
                text("1.3 SMTP_PORT=2525 SMTP_SERVER=\"mx.hil.test\" DEVICE_ADDRESS=\"\""),
                &dev
            ),
            "Done.\r\nMFP> "
        );
        assert_eq!(dev.settings().get(Key::SmtpPort), "2525");
        assert_eq!(dev.settings().get(Key::SmtpServer), "mx.hil.test");
        // A secret is never shown in a refusal.
        let a = m.answer(text("1.2 SMTP_AUTH_PASSWORD \"sec\\\"ret\""), &dev);
        assert!(
            a.contains("*** (7 characters)") && !a.contains("sec"),
            "{a}"
        );
        // 1.9: factory settings.
        assert_eq!(
            m.answer(text("1.9"), &dev),
            "Factory settings restored.\r\nDone.\r\nMFP> "
        );
        assert_eq!(dev.settings().get(Key::SmtpPort), "25");
    }

    #[test]
    fn bad_input_is_an_error_and_the_console_goes_on() {
        let dev = device();
        let mut m = logged_in(&dev);
        for (line, want) in [
            (text("9.9"), "Error [config]: unknown selection \"9.9\""),
            (
                text("get smtp.port"),
                "Error [config]: unknown selection \"get\"",
            ),
            (
                text("1.2 SMTP_PORT \"25"),
                "Error [config]: cannot read the line: unterminated",
            ),
            (
                text("1.2 SMTP_PORT 25 26"),
                "Error [config]: usage: 1.2 KEY VALUE",
            ),
            (
                text("1.1 SMTP_PORTX"),
                "Error [config]: SMTP_PORTX: no such setting",
            ),
            (
                text("1.3 SMTP_PORT"),
                "Error [config]: 1.3: \"SMTP_PORT\" is not KEY=VALUE",
            ),
            (
                text("4.2 paper_empty"),
                "Error [config]: 4.2: unknown alert \"paper_empty\"",
            ),
            (text("4.4 99"), "Error [config]: 4.4: no job \"99\""),
            (
                text("4.1 nobody 1"),
                "Error [config]: 4.1: recipient \"nobody\"",
            ),
            (
                text("5.1 yesterday"),
                "Error [config]: 5.1: \"yesterday\" is not an RFC 3339",
            ),
            (
                text("a\u{1}b"),
                "Error [config]: line contains the control character",
            ),
            (Line::NotUtf8, "Error [config]: line is not UTF-8"),
            (Line::TooLong(99_999), "Error [config]: line of 99999 bytes"),
            (text("2.1"), "Paste the certificate"),
            (
                text("not pem"),
                "Error [config]: 2.1: the line after `2.1` must be -----BEGIN",
            ),
        ] {
            let a = m.answer(line, &dev);
            assert!(a.starts_with(want), "{want:?}: {a:?}");
        }
        // Still serving.
        assert_eq!(m.answer(text(""), &dev), PROMPT);
        assert_eq!(m.answer(text("5"), &dev).lines().count(), 4);
        assert!(m.answer(text("5.2"), &dev).starts_with("Clock : "));
    }

    #[test]
    fn jobs_and_events_in_menu_words() {
        let dev = device();
        let mut m = logged_in(&dev);
        // No notification address: the alert fails with config, without a connection.
        let a = m.answer(text("4.2 paper-out"), &dev);
        let id: u64 = a
            .strip_prefix("Job #")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{a:?}"));
        assert_eq!(a, format!("Job #{id} accepted\r\nDone.\r\nMFP> "));
        assert_eq!(m.take_started(), vec![id]);
        let (tx, rx) = std::sync::mpsc::channel();
        let sub = dev.subscribe(Box::new(move |e: &JobEvent| tx.send(e.clone()).is_ok()));
        dev.run_submitted(id);
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the job's event");
        dev.unsubscribe(sub);
        let ev = m.event(&e);
        assert!(
            ev.starts_with(&format!("\r\n*** Job #{id} aborted [config] "))
                && ev.ends_with("\r\nMFP> "),
            "{ev:?}"
        );
        let a = m.answer(text(&format!("4.4 {id}")), &dev);
        assert!(
            a.starts_with(&format!("Job #{id} aborted [config] ")),
            "{a:?}"
        );
        // A scan switched off is refused at once with its class.
        m.answer(text("1.2 EMAIL_SCAN off"), &dev);
        let a = m.answer(text("4.1 a@hil.test 1"), &dev);
        assert!(a.starts_with("Error [disabled]: "), "{a:?}");
        assert!(m.take_started().is_empty());
        // Events are not shown before a login.
        let mut fresh = Menu::new(MenuLogin::default());
        assert_eq!(fresh.event(&e), "");
        // The words of a finished job with recipients.
        let job = JobStatus {
            id: 7,
            state: JobState::Done,
            error: None,
            recipients: vec![],
        };
        assert_eq!(job_line(&job), "Job #7 completed");
        let ok = JobEvent { id: 7, error: None };
        assert_eq!(m.event(&ok), "\r\n*** Job #7 completed\r\nMFP> ");
        // While PEM lines are pasted no prompt is showing.
        m.answer(text("2.1"), &dev);
        assert_eq!(m.event(&ok), "*** Job #7 completed\r\n");
    }
}
