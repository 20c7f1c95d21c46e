//! The stage a job is in, so that a failure nobody planned for — a panic in the
//! job's code — still ends the job with the error class SPEC §5 gives a failure of
//! that stage (a broken OCSP answer is `cert_revocation_unknown`, a broken SMTP reply
//! `rejected`, …), and the job worker goes on with the next job.
//!
//! A job runs on the job worker's thread only (its runtime is single-threaded), so
//! the stage is a thread-local: [`enter`] sets it for as long as its guard lives, and
//! a guard dropped while the thread unwinds records the innermost stage for
//! [`take_panicked`] to answer once the panic is caught.

use std::cell::Cell;

/// A stage: the error class of SPEC §5 for a failure there, and what it is (for the
/// error's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub class: &'static str,
    pub what: &'static str,
}

/// Before the job reaches any server: deciding what to send is the settings' business.
pub const PLANNING: Stage = Stage {
    class: "config",
    what: "preparing the mail",
};

thread_local! {
    static CURRENT: Cell<Stage> = const { Cell::new(PLANNING) };
    static PANICKED_IN: Cell<Option<Stage>> = const { Cell::new(None) };
}

/// Restores the stage before [`enter`] when dropped.
#[must_use = "the stage lasts as long as its guard"]
pub struct Guard {
    before: Stage,
}

/// The job is in `stage` until the guard is dropped.
pub fn enter(class: &'static str, what: &'static str) -> Guard {
    let before = CURRENT.with(|c| c.replace(Stage { class, what }));
    Guard { before }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let here = CURRENT.with(Cell::get);
            PANICKED_IN.with(|p| {
                if p.get().is_none() {
                    p.set(Some(here));
                }
            });
        }
        CURRENT.with(|c| c.set(self.before));
    }
}

/// Where the last panic on this thread happened (the innermost stage entered), and
/// forgets it; the planning stage when no stage was entered. Also resets the current
/// stage for the next job.
pub fn take_panicked() -> Stage {
    let current = CURRENT.with(|c| c.replace(PLANNING));
    PANICKED_IN.with(|p| p.take()).unwrap_or(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_stage_of_a_panic_is_kept() {
        let r = std::panic::catch_unwind(|| {
            let _a = enter("connect", "connecting");
            let _b = enter("cert_revocation_unknown", "the revocation check");
            panic!("boom");
        });
        assert!(r.is_err());
        assert_eq!(take_panicked().class, "cert_revocation_unknown");
        // Forgotten once taken; stages left normally leave nothing behind.
        {
            let _a = enter("rejected", "the SMTP session");
        }
        assert_eq!(take_panicked(), PLANNING);
    }
}
