use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// A simulated multifunction printer: its e-mail (SMTP) sending and serial console.
#[derive(Parser)]
#[command(name = "mfp-sim", version)]
struct Cli {
    #[command(flatten)]
    args: mfp_sim::SimArgs,
}

/// Log events go to standard error (standard output carries the console's
/// announcement and, with `--console stdio`, the console itself); `RUST_LOG` chooses
/// what is shown, `warn` when it is unset or unreadable.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    init_logging();
    match mfp_sim::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfp-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
