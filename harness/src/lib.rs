//! hil: the hardware-in-the-loop harness for the e-mail (SMTP) sending function of a
//! multifunction printer. See `docs/architecture.md` for the map.
//!
//! - `smtp`, `smtp_server`: the fake SMTP server (session without I/O, tokio layer).
//! - `device`: endpoints, profiles, the console driver, the embedded simulator.
//! - `model`, `oracle`: the harness's own reading of SPEC; what a correct device does.
//! - `cases`, `runner`, `verdict`: the cases, running them, judging them.
//! - `pool`, `record`: running cases on parallel workers, the per-case records.

/// `println!` that ends the process quietly when standard output is closed (`hil run
/// --list | head`), instead of panicking on the broken pipe.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        let mut o = std::io::stdout().lock();
        #[allow(unused_imports)]
        use std::io::Write as _;
        if let Err(e) = writeln!(o, $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                $crate::device::embedded::kill_all();
                std::process::exit(0);
            }
        }
    }};
}

/// A line of a command's own report on standard error (the problems `hil profile
/// check` lists, a probe's verdict): what the user asked for, not a log event, so
/// neither `-q` nor `RUST_LOG` hides it.
#[macro_export]
macro_rules! tell {
    ($($t:tt)*) => {{
        #[allow(unused_imports)]
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

pub mod baseline;
pub mod bench_setup;
pub mod capture;
pub mod device;
pub mod diff;
pub mod fuzz;
pub mod outcome;
pub mod pcapng;
pub mod pool;
pub mod probe;
pub mod record;
pub mod report;
pub mod runner;
pub mod serve_cmd;
pub mod triage;
pub mod vacuity;
pub mod verdict;
