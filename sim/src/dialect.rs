//! What a transport needs of a console dialect: the [`Dialect`] trait, one session
//! of one dialect (`--dialect`). The reference dialect of SPEC §6 (`console.rs`) and
//! the numbered menus (`menu.rs`) implement it; a transport (`transport.rs`) serves
//! any of them: it writes the greeting when a console opens, each line's answer, and
//! each job event in the dialect's words.
//!
//! The trait knows none of its implementations: the dialects depend on it, and the
//! one place that knows them all is the factory in `dialects.rs`.

use crate::device::{Device, JobEvent};
use crate::line::Line;

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

/// Lines each ended in CR LF; nothing for no lines.
pub fn lines<S: AsRef<str>>(lines: &[S]) -> String {
    let mut text = String::new();
    for l in lines {
        text.push_str(l.as_ref());
        text.push_str("\r\n");
    }
    text
}
