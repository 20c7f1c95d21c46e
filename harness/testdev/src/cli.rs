//! The command line: where the console is served, the style and each trait flag,
//! and the simulated device's options passed on to the engine unchanged, so that
//! the harness starts `mfp-testdev --console pty …` exactly as it starts
//! `mfp-sim --console pty …`. Also the hidden `engine` subcommand the front end
//! runs itself as.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::traits::{Flood, FloodKind, Login, Traits, ROUTER_PAGE};

/// A test device: the simulated device's mail engine behind a router-style console
/// the harness has never seen (README.md).
#[derive(Debug, Parser)]
#[command(name = "mfp-testdev", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub front: FrontArgs,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The mail engine (internal): mfp-sim's reference console on stdin and stdout.
    #[command(hide = true)]
    Engine(EngineCmd),
}

#[derive(Debug, Args)]
pub struct EngineCmd {
    #[command(flatten)]
    pub sim: mfp_sim::SimArgs,
}

/// The base set of traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// No trait (a plain line console with its own command names).
    Plain,
    /// Traits 1 to 12 (login admin:admin123, pages of 24 lines).
    Router,
}

/// The front end's options.
#[derive(Debug, Args)]
pub struct FrontArgs {
    /// Where the console is served: `pty` (prints `console: /dev/pts/N` first) or
    /// `stdio`.
    #[arg(long, default_value = "pty", value_parser = ["pty", "stdio"])]
    pub console: String,
    /// The traits to start from; each trait flag below then turns one on or off.
    #[arg(long, value_enum, default_value = "plain")]
    pub style: Style,
    /// Write the process id to this file at start (it is also printed on stderr).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// 1. Ask for this login first (router style: admin:admin123).
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "no_login")]
    pub login: Option<String>,
    #[arg(long)]
    pub no_login: bool,
    /// 2. Echo every character typed.
    #[arg(long, conflicts_with = "no_echo")]
    pub echo: bool,
    #[arg(long)]
    pub no_echo: bool,
    /// 3. ANSI colours and erase-line redraws.
    #[arg(long, conflicts_with = "no_ansi")]
    pub ansi: bool,
    #[arg(long)]
    pub no_ansi: bool,
    /// 4. Exec and configuration prompts; settings staged and applied at `commit`.
    #[arg(long, conflicts_with = "no_config_mode")]
    pub config_mode: bool,
    #[arg(long)]
    pub no_config_mode: bool,
    /// 5. The device's own names and words for keys, values, classes, kinds, states.
    #[arg(long, conflicts_with = "no_words")]
    pub words: bool,
    #[arg(long)]
    pub no_words: bool,
    /// 6. Refusals and job details over several lines.
    #[arg(long, conflicts_with = "no_multiline")]
    pub multiline: bool,
    #[arg(long)]
    pub no_multiline: bool,
    /// 7. Quoting per parameter (settings "…", addresses bare, subjects '…').
    #[arg(long, conflicts_with = "no_quoting")]
    pub quoting: bool,
    #[arg(long)]
    pub no_quoting: bool,
    /// 8. A trigger answers only `Job N queued`.
    #[arg(long, conflicts_with = "no_job_status")]
    pub job_status: bool,
    #[arg(long)]
    pub no_job_status: bool,
    /// 9. No OK word: a command with nothing to say answers only the prompt.
    #[arg(long, conflicts_with = "no_prompt_only")]
    pub prompt_only: bool,
    #[arg(long)]
    pub no_prompt_only: bool,
    /// 10. Factory reset and certificate import ask for confirmation.
    #[arg(long, conflicts_with = "no_confirm")]
    pub confirm: bool,
    #[arg(long)]
    pub no_confirm: bool,
    /// 11. The clock as `clock set HH:MM:SS DAY MONTH YEAR` and `*HH:MM:SS UTC …`.
    #[arg(long, conflicts_with = "no_clock")]
    pub clock: bool,
    #[arg(long)]
    pub no_clock: bool,
    /// 12. Stop listings longer than N lines at ` --More-- ` (router style: 24).
    #[arg(long, value_name = "N", conflicts_with = "no_paging")]
    pub paging: Option<usize>,
    #[arg(long)]
    pub no_paging: bool,
    /// 13. Crash and reboot when job N starts (once).
    #[arg(long, value_name = "N")]
    pub crash_at_job: Option<u64>,
    /// 14. Hang when job N starts until SIGUSR1 (once).
    #[arg(long, value_name = "N")]
    pub hang_at_job: Option<u64>,
    /// 15. Flood the console after the answer when job N starts (once).
    #[arg(long, value_name = "N")]
    pub flood_at_job: Option<u64>,
    /// How much the flood prints (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = 200 << 20)]
    pub flood_bytes: u64,
    /// `events` (log lines the router profile reads as events), `lines` (other log
    /// lines) or `binary` (random bytes).
    #[arg(long, value_enum, default_value = "events")]
    pub flood_kind: FloodKind,

    /// Passed to the engine: device time runs this many times faster.
    #[arg(long, value_name = "F")]
    pub time_scale: Option<f64>,
    /// Passed to the engine: the host name sent in EHLO.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Passed to the engine: resolve NAME to ADDR (repeat).
    #[arg(long, value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
    /// Passed to the engine: follow a firmware variant of SPEC (repeat).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Vec<String>,
    /// Passed to the engine: a feature this firmware lacks (repeat).
    #[arg(long, value_name = "FEATURE")]
    pub without: Vec<String>,
    /// Passed to the engine: where scans mailed as URLs are served.
    #[arg(long, value_name = "ADDR:PORT")]
    pub downloads: Option<String>,
    /// Passed to the engine: how long a scan stays downloadable (device seconds).
    #[arg(long, value_name = "SECONDS")]
    pub url_ttl: Option<u64>,
}

/// Turns a trait on or off: the style's value unless a flag says otherwise.
fn pick(style: bool, on: bool, off: bool) -> bool {
    (style || on) && !off
}

impl FrontArgs {
    /// The traits the flags ask for.
    pub fn traits(&self) -> Result<Traits, String> {
        let base = match self.style {
            Style::Plain => Traits::default(),
            Style::Router => Traits::router(),
        };
        let login = match (&self.login, self.no_login) {
            (Some(spec), _) => Some(Login::parse(spec)?),
            (None, true) => None,
            (None, false) => base.login.clone(),
        };
        let paging = match (self.paging, self.no_paging) {
            (Some(0), _) => return Err("--paging: N must be at least 1".into()),
            (Some(n), _) => Some(n),
            (None, true) => None,
            (None, false) => base.paging.map(|_| ROUTER_PAGE),
        };
        for (flag, n) in [
            ("--crash-at-job", self.crash_at_job),
            ("--hang-at-job", self.hang_at_job),
            ("--flood-at-job", self.flood_at_job),
        ] {
            if n == Some(0) {
                return Err(format!("{flag}: jobs are numbered from 1"));
            }
        }
        if self.crash_at_job.is_some() && self.crash_at_job == self.hang_at_job {
            return Err("--crash-at-job and --hang-at-job name the same job".into());
        }
        Ok(Traits {
            login,
            echo: pick(base.echo, self.echo, self.no_echo),
            ansi: pick(base.ansi, self.ansi, self.no_ansi),
            config_mode: pick(base.config_mode, self.config_mode, self.no_config_mode),
            words: pick(base.words, self.words, self.no_words),
            multiline: pick(base.multiline, self.multiline, self.no_multiline),
            quoting: pick(base.quoting, self.quoting, self.no_quoting),
            job_status: pick(base.job_status, self.job_status, self.no_job_status),
            prompt_only: pick(base.prompt_only, self.prompt_only, self.no_prompt_only),
            confirm: pick(base.confirm, self.confirm, self.no_confirm),
            clock: pick(base.clock, self.clock, self.no_clock),
            paging,
            crash_at: self.crash_at_job,
            hang_at: self.hang_at_job,
            flood: self.flood_at_job.map(|at| Flood {
                at,
                bytes: self.flood_bytes,
                kind: self.flood_kind,
            }),
        })
    }

    /// The engine's command line after the executable: `engine --console stdio`
    /// and the simulated device's options given to the front end.
    pub fn engine_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["engine".into(), "--console".into(), "stdio".into()];
        let mut opt = |name: &str, v: String| {
            a.push(name.into());
            a.push(v);
        };
        if let Some(t) = self.time_scale {
            opt("--time-scale", t.to_string());
        }
        if let Some(h) = &self.hostname {
            opt("--hostname", h.clone());
        }
        for r in &self.resolve {
            opt("--resolve", r.clone());
        }
        for v in &self.variant {
            opt("--variant", v.clone());
        }
        for f in &self.without {
            opt("--without", f.clone());
        }
        if let Some(d) = &self.downloads {
            opt("--downloads", d.clone());
        }
        if let Some(t) = self.url_ttl {
            opt("--url-ttl", t.to_string());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front(args: &[&str]) -> FrontArgs {
        let mut v = vec!["mfp-testdev"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap().front
    }

    #[test]
    fn router_style_and_one_trait_off() {
        let t = front(&["--style", "router"]).traits().unwrap();
        assert_eq!(t, Traits::router());
        let t = front(&["--style", "router", "--no-echo", "--paging", "10"])
            .traits()
            .unwrap();
        assert!(!t.echo && t.ansi && t.paging == Some(10));
        let t = front(&["--echo", "--login", "u:p"]).traits().unwrap();
        assert!(t.echo && !t.ansi && t.login.is_some());
        assert!(Cli::try_parse_from(["mfp-testdev", "--echo", "--no-echo"]).is_err());
        assert!(front(&["--paging", "0"]).traits().is_err());
        assert!(front(&["--crash-at-job", "2", "--hang-at-job", "2"])
            .traits()
            .is_err());
    }

    #[test]
    fn the_harness_command_line_reaches_the_engine() {
        let f = front(&[
            "--console",
            "pty",
            "--time-scale",
            "100",
            "--downloads",
            "127.0.0.1:0",
            "--variant",
            "cn-only",
            "--style",
            "router",
        ]);
        assert_eq!(
            f.engine_args(),
            [
                "engine",
                "--console",
                "stdio",
                "--time-scale",
                "100",
                "--variant",
                "cn-only",
                "--downloads",
                "127.0.0.1:0"
            ]
        );
        let cli = Cli::try_parse_from(["mfp-testdev", "engine", "--console", "stdio"]).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Engine(_))));
    }
}
