//! The console dialects the simulated device speaks (`--dialect`): the reference
//! dialect of SPEC §6 (`console.rs`) and a second one, `menu` (`menu.rs`), with
//! numbered menus, a login and other words. A transport (`transport.rs`) serves any
//! of them: it writes the greeting when a console opens, each line's answer, and
//! each job event in the dialect's words.

use crate::console::{self, Line, Session};
use crate::device::{Device, JobEvent};
use crate::menu::{Menu, MenuLogin};

/// One console session in some dialect. Its texts are written as they are (line
/// ends and any prompt included); an empty text writes nothing.
pub trait Dialect: Send {
    /// What the console prints when it opens (a banner, a login prompt).
    fn greeting(&mut self) -> String;
    /// The answer to one line.
    fn answer(&mut self, line: Line, dev: &Device) -> String;
    /// How the end of a job is told (nothing: not told, e.g. before a login).
    fn event(&mut self, event: &JobEvent) -> String;
    /// Jobs created by the lines answered since the last call; the transport starts
    /// them with [`Device::run_submitted`] once their answer is on its way.
    fn take_started(&mut self) -> Vec<u64>;
}

/// Which dialect a console speaks, and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectKind {
    /// SPEC §6.
    Reference,
    /// Numbered menus behind a login.
    Menu(MenuLogin),
}

/// The `--dialect` words.
pub const DIALECTS: &[&str] = &["reference", "menu"];

impl DialectKind {
    /// A new session of this dialect.
    pub fn session(&self) -> Box<dyn Dialect> {
        match self {
            DialectKind::Reference => Box::new(Reference::default()),
            DialectKind::Menu(login) => Box::new(Menu::new(login.clone())),
        }
    }
}

/// The reference dialect of SPEC §6: no greeting, no prompt, `EVENT` lines.
#[derive(Debug, Default)]
pub struct Reference {
    session: Session,
}

impl Dialect for Reference {
    fn greeting(&mut self) -> String {
        String::new()
    }

    fn answer(&mut self, line: Line, dev: &Device) -> String {
        lines(&self.session.handle(line, dev))
    }

    fn event(&mut self, event: &JobEvent) -> String {
        lines(&[console::event_line(event)])
    }

    fn take_started(&mut self) -> Vec<u64> {
        self.session.take_started()
    }
}

/// Lines each ended in CR LF; nothing for no lines.
pub fn lines<S: AsRef<str>>(lines: &[S]) -> String {
    let mut text = String::new();
    for l in lines {
        text.push_str(l.as_ref());
        text.push_str("\r\n");
    }
    text
}
