use clap::Parser;
use std::process::ExitCode;

/// A simulated multifunction printer: its e-mail (SMTP) sending and serial console.
#[derive(Parser)]
#[command(name = "mfp-sim", version)]
struct Cli {
    #[command(flatten)]
    args: mfp_sim::SimArgs,
}

fn main() -> ExitCode {
    match mfp_sim::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfp-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
