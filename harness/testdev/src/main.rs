//! mfp-testdev: a test device for the harness. It plays a prototype multifunction
//! printer whose console is not the reference dialect: the mail engine is
//! mfp-sim's own (run as a child process speaking SPEC §6), and the front end
//! translates between it and a router-style console of its own (README.md).
//!
//! One concept per module: `cli` (the command line), `traits` (what the console
//! shows), `device` (the driver: one input channel, reboots), `engine` (the child),
//! `reference` (reading SPEC §6), `session` (the console state machine, no I/O),
//! `command` (its grammar), `quoting` (per-parameter quoting), `words` (the
//! vocabulary), `render` (how answers look), `editor` (keys, echo, line editing),
//! `pager` (--More--), `pem` (pasting a certificate), `jobs` (the device's job
//! numbers), `clock` (the Cisco clock), `banner` (boot and panic texts),
//! `transport` (pty, stdio), `signals` (SIGUSR1, the power switch).

mod banner;
mod cli;
mod clock;
mod command;
mod device;
mod editor;
mod engine;
mod jobs;
mod pager;
mod pem;
mod quoting;
mod reference;
mod render;
mod session;
mod signals;
mod traits;
mod transport;
mod words;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Engine(e)) => {
            let mut sim = e.sim;
            sim.console = "stdio".into();
            sim.dialect = "reference".into();
            sim.menu_login = None;
            match mfp_sim::run(sim) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mfp-testdev engine: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => match device::run(cli.front) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mfp-testdev: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
