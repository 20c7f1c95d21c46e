use hil_mail::netaddr::BindAddr;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hil::say;

use anyhow::{anyhow, bail};
use clap::{Parser, Subcommand};
use tracing::error;

use hil::device::Endpoint;
use hil::pool::{self, CaseRunner, MakeRunner, PoolOptions, PoolSummary, Shard, WriteReport};
use hil::record::{Record, Verdict};
use hil::runner::{DeviceChoice, RunOptions, Runner};
use hil_oracle::matrix::Coverage;
use hil_oracle::model::{Case, DeviceFacts};

/// Hardware-in-the-loop harness for the e-mail (SMTP) function of a multifunction printer.
#[derive(Parser)]
#[command(name = "hil", version)]
struct Cli {
    /// More log detail on standard error: -v debug, -vv trace (before the command:
    /// `hil -v run`; `hil run -v` prints every case's transcript). RUST_LOG, when set,
    /// chooses instead.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on standard error.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Log events (diagnostics, never the results) go to standard error: `info` and up
/// by default, `debug` with -v, `trace` with -vv, errors only with -q; `RUST_LOG`,
/// when set and readable, chooses instead. With -v (or `RUST_LOG`) each line also
/// shows its time and module.
fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let from_env = EnvFilter::try_from_default_env().ok();
    let detailed = verbose > 0 || from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if detailed {
        fmt.init();
    } else {
        fmt.without_time().with_target(false).init();
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the cases against a device and print a verdict for each.
    Run(Box<RunArgs>),
    /// Run a scenario's fake SMTP and POP3 servers standalone.
    Serve(ServeArgs),
    /// Generate the certificate zoo (CAs, server certificates, CRLs, manifest).
    Certs(CertsArgs),
    /// Serve a zoo's OCSP responder and CRL server (with an optional fault).
    Responder(ResponderArgs),
    /// Run the embedded simulated device (what `hil run --device sim` starts).
    Sim(mfp_sim::SimArgs),
    /// Show the setting matrix: dimensions, sections, full and reduced sizes, and why
    /// each dimension collapsed.
    Matrix(MatrixArgs),
    /// Fuzz configurations: random setting combinations on a device, each checked
    /// against the oracle; the first failure is shrunk to a minimal combination.
    Fuzz(FuzzArgs),
    /// Render a run's reports again, or merge the runs of shards into one report.
    Report(ReportArgs),
    /// Device profiles (docs/profiles.md).
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// What to enter on a device so it reaches the harness (its address, the server
    /// address), the zoo checked against that address, and a check that the device
    /// reaches the harness: driven over its console, or by its own test mail.
    BenchSetup(BenchSetupArgs),
}

#[derive(clap::Args)]
struct BenchSetupArgs {
    /// The address the fake servers will listen on: IPv4, IPv6, or link-local with
    /// its zone (fe80::1%eth0).
    #[arg(long)]
    bind: BindAddr,
    /// The server address the device is given (default: the --bind address).
    #[arg(long)]
    server_address: Option<String>,
    /// The device's console, as for `hil run`; left out, the harness listens and
    /// waits (--wait) for a test mail the device is made to send by hand.
    #[arg(long)]
    device: Option<String>,
    /// The device profile (default: the built-in reference dialect).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Without --device: the plain SMTP port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    smtp_port: u16,
    /// Without --device: the plain POP3 port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    pop_port: u16,
    /// Without --device: seconds to wait for the device's test mail (0: do not wait).
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// As for `hil run` (default 50 for the embedded sim, 1 for a device).
    #[arg(long)]
    time_scale: Option<f64>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// Check a device profile: every problem found, with the file, the field and why;
    /// then, if it is valid, a summary. Exit 0 valid, 1 not, 2 unreadable.
    Check {
        /// The profile file (TOML).
        file: PathBuf,
    },
    /// Run each operation of a profile once against the device's console and print
    /// every line received with how it was read and which profile field matched;
    /// stop at the first operation the profile cannot express, naming the console
    /// trait it misses and the fix. Exit 0 the profile fits, 1 it does not, 2 the
    /// probe could not start.
    Probe(ProbeArgs),
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// The device, as for `hil run`: `sim`, `sim:PROGRAM`, `serial:…`, `tcp:…`,
    /// `rfc2217:…`.
    #[arg(long, default_value = "sim")]
    device: String,
    /// The profile to probe.
    #[arg(long)]
    profile: PathBuf,
    /// Where the fake SMTP server listens (the device sends its probe jobs there).
    #[arg(long, default_value = "127.0.0.1")]
    bind: BindAddr,
    /// The address the device is told, when it differs from --bind.
    #[arg(long)]
    server_address: Option<String>,
    /// The certificate zoo whose root is imported (default: certs/).
    #[arg(long)]
    certs: Option<PathBuf>,
    /// Device time runs this many times faster (a simulated device; default 50).
    #[arg(long)]
    time_scale: Option<f64>,
}

/// `hil profile probe`: the exit status.
fn profile_probe(a: ProbeArgs) -> u8 {
    let device = match device_choice(&a.device, a.time_scale) {
        Ok(DeviceChoice::Sim {
            time_scale,
            program,
        }) => hil::probe::ProbeDevice::Sim {
            program,
            time_scale,
        },
        Ok(DeviceChoice::Endpoint(ep)) => hil::probe::ProbeDevice::Endpoint(ep),
        Err(e) => {
            error!("hil profile probe: {e}");
            return 2;
        }
    };
    let o = hil::probe::ProbeOptions {
        device,
        profile: a.profile,
        bind: a.bind,
        server_address: a.server_address,
        certs: data_dir(a.certs, "certs"),
        sim_exe: None,
    };
    let mut out = std::io::stdout();
    match hil::probe::probe(&o, &mut out) {
        Ok(r) if r.failure.is_none() => 0,
        Ok(_) => 1,
        Err(e) => {
            error!("hil profile probe: {e}");
            2
        }
    }
}

/// `hil profile check FILE`: the exit status.
fn profile_check(file: &std::path::Path) -> u8 {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            error!("hil profile check: {name}: cannot read: {e}");
            return 2;
        }
    };
    match hil::device::Profile::check(&name, &text) {
        Ok(p) => {
            say!("{name}: a valid profile");
            print!("{}", p.summary());
            0
        }
        Err(problems) => {
            for p in &problems {
                hil::tell!("{p}");
            }
            hil::tell!(
                "{name}: not a valid profile ({} problem{})",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            1
        }
    }
}

/// Where the matrix comes from.
#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// The certificate zoo (default: certs/, or the one this binary was built with).
    #[arg(long)]
    certs: Option<PathBuf>,
    /// The scenario library (default: scenarios/, or the one this binary was built with).
    #[arg(long)]
    scenarios: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// `sim`, `serial:PATH[,BAUD][,8N1][,FLOW]`, `tcp:HOST:PORT` or
    /// `rfc2217:HOST:PORT[,BAUD][,8N1][,FLOW]`, as for `hil run`.
    #[arg(long, default_value = "sim")]
    device: String,
    /// The device profile (default: the built-in reference dialect).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// How many random combinations.
    #[arg(long, default_value_t = 100)]
    cases: u32,
    /// The same seed gives the same combinations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The address the fake servers listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: BindAddr,
    /// The SMTP server address the device is given (default: the --bind address).
    #[arg(long)]
    server_address: Option<String>,
    /// As for `hil run` (default 50 for the embedded sim, 1 for a device).
    #[arg(long)]
    time_scale: Option<f64>,
    #[command(flatten)]
    model: ModelArgs,
    /// Start the embedded sim with a firmware variant its profile does not declare, or
    /// a quirk (an old or planted bug, or the other side of a SPEC latitude).
    #[arg(long)]
    plant: Vec<String>,
    /// Where the zoo's OCSP responder and CRL server listen, as for `hil run`.
    #[arg(long, value_name = "IP:PORT", value_parser = responder_arg)]
    responder: Option<std::net::SocketAddr>,
}

#[derive(clap::Args, Clone)]
struct MatrixArgs {
    /// exhaustive (every behaviourally distinct combination, per section), pairwise,
    /// 3-way or 4-way (covering arrays over every dimension), or classic (the
    /// hand-written first set).
    #[arg(long, default_value = "exhaustive")]
    matrix: String,
    /// Seed of the covering arrays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A t-way covering array of this strength (2 to 4): the same as --matrix t-way.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=4))]
    strength: Option<u8>,
    #[command(flatten)]
    model: ModelArgs,
    /// The device profile, for the variants, ranges and AUTH mechanisms it declares.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Print every case id too.
    #[arg(long)]
    list: bool,
}

#[derive(clap::Args)]
struct CertsArgs {
    /// Where to write the zoo.
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    /// Key algorithm: rsa2048, ecdsa-p256 or ed25519.
    #[arg(long, default_value = "rsa2048")]
    key: String,
    /// The same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Host names and addresses the server certificates are for (repeat; the first is
    /// the main one). Default: localhost, 127.0.0.1, ::1.
    #[arg(long)]
    host: Vec<String>,
    /// Base URL of the OCSP responder and CRL server the certificates point at.
    #[arg(long, default_value = "http://127.0.0.1:8099")]
    responder: String,
}

#[derive(clap::Args)]
struct ResponderArgs {
    /// The zoo folder (with manifest.toml).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// Where to listen (default: the host and port of the manifest's responder URL).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
    /// none, down, slow, http500, malformed, stale_crl or wrong_signer.
    #[arg(long, default_value = "none")]
    fault: String,
    /// Scripted delays (the `slow` fault) run this many times faster.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The scenario file (see scenarios/README.md).
    #[arg(long)]
    scenario: PathBuf,
    /// The address the servers listen on (loopback unless you name another).
    #[arg(long, default_value = "127.0.0.1")]
    bind: BindAddr,
    /// Where zoo certificates named by the scenario are (NAME.crt, NAME.key).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// Where finished connections are written, one JSON object per line.
    #[arg(long, default_value = "transcripts.jsonl")]
    transcripts: PathBuf,
    /// Scripted delays and timeouts run this many times faster.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

#[derive(clap::Args)]
struct RunArgs {
    /// `sim` (the embedded simulated device on a pty), `sim:PROGRAM` (a simulated
    /// device of one's own: started like `mfp-sim --console pty` with mfp-sim's
    /// options, one per worker, it prints `console: PATH` first),
    /// `serial:PATH[,BAUD][,8N1][,none|rtscts|xonxoff]`, `tcp:HOST:PORT` (a raw TCP
    /// console such as ser2net) or `rfc2217:HOST:PORT[,BAUD][,8N1][,FLOW]` (a serial
    /// port served by an RFC 2217 telnet server). A lost link is waited for up to 20 s.
    #[arg(long, default_value = "sim")]
    device: String,
    /// The device profile (console dialect); default: the built-in reference dialect.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// The address the fake servers listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: BindAddr,
    /// The fake SMTP server's port (0: any free port).
    #[arg(long, default_value_t = 0)]
    smtp_port: u16,
    /// Listen on SPEC's default ports (SMTP 25, SMTPS 465, POP3 110, POP3S 995, the TLS
    /// ones with the zoo's valid certificate) so that the device keeps its factory
    /// ports wherever a case allows; needs the right to bind them, and one worker.
    #[arg(long, conflicts_with = "smtp_port")]
    default_ports: bool,
    /// The SMTP server address the device is given (default: the --bind address).
    #[arg(long)]
    server_address: Option<String>,
    /// Run only the cases whose id contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Leave out the cases whose id contains this text (repeat for several).
    #[arg(long, value_name = "TEXT")]
    exclude: Vec<String>,
    /// Run only the cases of this matrix section (`delivery`, `invalid`, `tls`,
    /// `auth`, `pop`, `load`, `server`, …; repeat for several).
    #[arg(long, value_name = "NAME")]
    section: Vec<String>,
    /// How much faster than wall time the device's time runs: the embedded simulated
    /// device is started with it (default 50); for a running device give the scale
    /// it was started with (default 1, as for hardware).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Print every case's transcript, not only the failures'.
    #[arg(long, short)]
    verbose: bool,
    /// Seconds a lost device link (serial, tcp:, rfc2217:) is waited for: the
    /// endpoint is opened again with backoff before the next case.
    #[arg(long, default_value_t = 20.0, value_parser = reconnect_secs)]
    reconnect_wait: f64,
    /// List the cases (after --shard, --section, --filter and --exclude) and exit.
    #[arg(long)]
    list: bool,
    /// Which cases: exhaustive (every behaviourally distinct setting combination, per
    /// section; see `hil matrix`), pairwise, 3-way or 4-way (covering arrays over
    /// every dimension), or classic (the first hand-written set). Default: exhaustive
    /// on the simulated device, pairwise on a real one.
    #[arg(long)]
    matrix: Option<String>,
    /// Seed of the covering arrays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A t-way covering array of this strength (2 to 4): the same as --matrix t-way.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=4))]
    strength: Option<u8>,
    #[command(flatten)]
    model: ModelArgs,
    /// Start the embedded simulated device with this firmware variant although the
    /// profile does not declare it, or with this quirk (`mfp-sim --quirk`: an old or
    /// planted bug, or the other side of a SPEC latitude): a bug the run must catch
    /// (repeatable).
    #[arg(long)]
    plant: Vec<String>,
    /// Cases run at once, each worker with its own simulated device and fake servers
    /// (default: 12 per core, at most 48; a real device, or a fixed --smtp-port, runs one).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where results.jsonl and the report go (created if missing; default hil-report;
    /// with --case, nothing is written unless --report is given).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Skip the cases DIR/results.jsonl already records as pass or fail (harness
    /// errors run again) and append to it.
    #[arg(long, conflicts_with = "case")]
    resume: bool,
    /// Known failures: a previous run (its report directory or results.jsonl; a case
    /// failing the same way is known) or a reviewed known-deviations.toml. Only new
    /// failures count in the summary and the exit status; known ones that now pass
    /// are reported as fixed.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Run the K-th of N slices of the case list: case i (from 0) iff i % N == K-1.
    #[arg(long, value_name = "K/N", conflicts_with = "case")]
    shard: Option<String>,
    /// Run exactly the case with this id, verbosely, with one job.
    #[arg(long, value_name = "ID", conflicts_with = "filter")]
    case: Option<String>,
    /// Capture each case's packets (TCP from or to its fake servers' ports) on the
    /// interface the servers listen on, and write DIR/evidence/CASE.pcapng for each
    /// failed or crashed case, its TLS secrets embedded so Wireshark shows the SMTP
    /// and POP3 conversation decrypted. The files are raw and unredacted (passwords
    /// and AUTH exchanges included): use test credentials. Needs root or CAP_NET_RAW.
    #[arg(long)]
    capture: bool,
    /// Where the zoo's OCSP responder and CRL server listen, IP:PORT (default: a free
    /// port; the zoo's certificates are re-signed to point there, cached under
    /// $XDG_CACHE_HOME/hil/zoo). Fix it for a device that reaches it through a firewall.
    #[arg(long, value_name = "IP:PORT", value_parser = responder_arg)]
    responder: Option<std::net::SocketAddr>,
}

/// The rows `--matrix` (or `--strength`) asks for and, for a masking-aware covering
/// array (pairwise, 3-way), what it covers, the plain array's figures beside.
fn rows_of(
    m: &hil_oracle::matrix::Matrix,
    matrix: &str,
    strength: Option<u8>,
    seed: u64,
) -> anyhow::Result<(Vec<hil_oracle::matrix::Row>, Option<Coverage>)> {
    let covering = |t: usize| -> anyhow::Result<_> {
        let a = m.covering_array(t, seed)?;
        let coverage = match a.coverage {
            Some(c) => Some(Coverage {
                plain: Some(m.plain_coverage(t, seed)?),
                ..c
            }),
            None => None,
        };
        Ok((a.rows, coverage))
    };
    if let Some(t) = strength {
        return covering(t as usize);
    }
    match matrix {
        "exhaustive" => Ok((m.exhaustive(), None)),
        "pairwise" | "2-way" => covering(2),
        "3-way" => covering(3),
        "4-way" => covering(4),
        other => bail!("--matrix {other}: say exhaustive, pairwise, 3-way, 4-way or classic"),
    }
}

/// The cases of a run: the matrix, or the classic set; and what a masking-aware
/// covering array covers.
fn select_cases(
    a: &RunArgs,
    certs: &std::path::Path,
    facts: &DeviceFacts,
) -> anyhow::Result<(Vec<hil_oracle::model::Case>, Option<Coverage>)> {
    let matrix = a.matrix.clone().unwrap_or_else(|| {
        if a.device == "sim" || a.device.starts_with("sim:") {
            "exhaustive".into()
        } else {
            "pairwise".into()
        }
    });
    if matrix == "classic" && a.strength.is_none() {
        return Ok((hil_oracle::cases::first_set(), None));
    }
    let m = hil_oracle::matrix::Matrix::build(
        certs,
        &data_dir(a.model.scenarios.clone(), "scenarios"),
        facts,
    )?;
    let (rows, coverage) = rows_of(&m, &matrix, a.strength, a.seed)?;
    Ok((rows.iter().map(|r| m.case(r)).collect(), coverage))
}

/// The zoo's OCSP responder and CRL server, on a runtime of its own for the whole run:
/// on `fixed` (--responder), else on a free port of the manifest's responder host.
/// Answers the zoo folder whose certificates point at it: `certs` itself, or a copy
/// re-signed for that address (hil_zoo::served; the CAs, and so the trust anchor,
/// stay the same).
fn start_responder(
    certs: &std::path::Path,
    fixed: Option<std::net::SocketAddr>,
) -> anyhow::Result<(tokio::runtime::Runtime, PathBuf)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    let cache = hil_zoo::served::default_cache();
    let served = rt
        .block_on(hil_zoo::served::serve(
            certs,
            fixed,
            &cache,
            1.0,
            hil_zoo::responder::RevocationFault::None,
        ))
        .map_err(|e| match fixed {
            Some(a) => anyhow!("--responder {a}: {e}"),
            None => anyhow!("the certificate zoo {}: {e}", certs.display()),
        })?;
    tracing::info!(
        "OCSP responder and CRL server on {}; certificates in {}",
        served.url,
        served.dir.display()
    );
    let dir = served.dir.clone();
    // The responder serves as long as the runtime lives.
    std::mem::forget(served.responder);
    Ok((rt, dir))
}

/// `--responder IP:PORT` (or `http://IP:PORT`).
fn responder_arg(s: &str) -> Result<std::net::SocketAddr, String> {
    let bare = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    bare.parse().map_err(|_| {
        format!("{s:?}: give IP:PORT (or http://IP:PORT), e.g. 192.168.10.1:8099 or [::1]:8099")
    })
}

/// Default workers per core for the embedded simulated device, and their most.
const SIM_JOBS_PER_CORE: usize = 12;
const MAX_DEFAULT_SIM_JOBS: usize = 48;

/// How many workers: one for a real device (there is one) or a fixed fake server
/// port (the workers cannot share it); else --jobs, by default SIM_JOBS_PER_CORE per core.
fn choose_jobs(a: &RunArgs, real_device: bool) -> anyhow::Result<usize> {
    match a.jobs {
        Some(0) => bail!("--jobs 0: must be at least 1"),
        Some(n) if n > 1 && real_device => bail!(
            "--jobs {n}: --device {} is one real device and runs one case at a time; give --jobs 1 or leave it out",
            a.device
        ),
        Some(n) if n > 1 && a.default_ports => bail!(
            "--jobs {n} with --default-ports: the workers cannot share ports 25, 465, 110 and 995; give --jobs 1 or leave it out"
        ),
        Some(n) if n > 1 && a.smtp_port != 0 => bail!(
            "--jobs {n} with --smtp-port {}: each worker needs a fake SMTP server port of its own; give --smtp-port 0 (any free port) or --jobs 1",
            a.smtp_port
        ),
        Some(n) => Ok(n),
        None if real_device || a.smtp_port != 0 || a.default_ports => Ok(1),
        // Most of a simulated case is device time spent waiting (timeouts, POP before
        // SMTP, slow servers), not CPU: many more workers than cores overlap the waits
        // (docs in BENCHMARKS.md §1).
        None => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_mul(SIM_JOBS_PER_CORE)
            .min(MAX_DEFAULT_SIM_JOBS)),
    }
}

/// The cases to run: `--case ID` alone, else the shard of the full list, filtered;
/// and what the whole covering array covers, when it is masking-aware.
fn select(
    a: &RunArgs,
    certs: &std::path::Path,
    facts: &DeviceFacts,
) -> anyhow::Result<(Vec<Case>, Option<Coverage>)> {
    let mut why: Option<String> = None;
    if let Some(id) = &a.case {
        // A matrix case id names its values: the case is rebuilt from it, whatever
        // --matrix says.
        let m = hil_oracle::matrix::Matrix::build(
            certs,
            &data_dir(a.model.scenarios.clone(), "scenarios"),
            facts,
        )?;
        match m.parse_id(id) {
            Ok(row) => return Ok((vec![m.case(&row)], None)),
            // Only a matrix id's reason helps (a classic id has no matrix section).
            Err(e) if !matches!(e, hil_oracle::matrix::IdError::NoSection { .. }) => {
                let e = e.to_string();
                why = Some(
                    e.trim_start_matches(id.as_str())
                        .trim_start_matches(": ")
                        .to_string(),
                )
            }
            Err(_) => {}
        }
    }
    let (all, coverage) = select_cases(a, certs, facts)?;
    if let Some(id) = &a.case {
        if let Some(c) = all.iter().find(|c| &c.id == id) {
            return Ok((vec![c.clone()], None));
        }
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        let near = pool::closest_ids(id, &ids, 8);
        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
        if near.is_empty() {
            bail!("--case {id}: no case has this id{why} (hil run --list lists them)");
        }
        bail!(
            "--case {id}: no case has this id{why}; the closest: {} (hil run --list lists them)",
            near.join(", ")
        );
    }
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let section_of = |id: &str| id.split('/').next().unwrap_or("").to_string();
    let known: std::collections::BTreeSet<String> = all.iter().map(|c| section_of(&c.id)).collect();
    for s in &a.section {
        if !known.contains(s) {
            bail!(
                "--section {s}: no such section in this matrix; its sections: {}",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let cases = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.keeps(*i)))
        .map(|(_, c)| c)
        .filter(|c| a.section.is_empty() || a.section.contains(&section_of(&c.id)))
        .filter(|c| a.filter.as_deref().is_none_or(|f| c.id.contains(f)))
        .filter(|c| !a.exclude.iter().any(|x| c.id.contains(x.as_str())))
        .collect();
    Ok((cases, coverage))
}

/// `--reconnect-wait`: a number of seconds from 0 to one day.
fn reconnect_secs(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=86_400.0).contains(v))
        .ok_or_else(|| format!("{s:?} is not a number of seconds from 0 to 86400"))
}

/// The device `--device` names; the embedded sim (or `sim:PROGRAM`, a simulated
/// device of one's own) runs at `time_scale` (default 50).
fn device_choice(device: &str, time_scale: Option<f64>) -> anyhow::Result<DeviceChoice> {
    Ok(if device == "sim" {
        DeviceChoice::Sim {
            time_scale: time_scale.unwrap_or(50.0),
            program: None,
        }
    } else if let Some(program) = device.strip_prefix("sim:") {
        let path = std::path::PathBuf::from(program);
        if program.is_empty() || !path.is_file() {
            bail!(
                "--device {device}: sim:PROGRAM names a simulated device's executable, and {program:?} is not a file"
            );
        }
        DeviceChoice::Sim {
            time_scale: time_scale.unwrap_or(50.0),
            program: Some(path),
        }
    } else {
        DeviceChoice::Endpoint(Endpoint::parse(device)?)
    })
}

/// Before any device starts: the options a device is started with, checked as it
/// checks them (the embedded simulated device's: the time scale, --plant and the
/// profile's variants, unsupported features and sim_args), so that a wrong one is
/// said once, naming the option, and nothing is retried.
fn preflight(
    device: &DeviceChoice,
    time_scale: Option<f64>,
    profile: Option<&std::path::Path>,
    plant: &[String],
) -> anyhow::Result<()> {
    if let Some(t) = time_scale.filter(|t| !(t.is_finite() && *t > 0.0)) {
        bail!("--time-scale {t}: must be a number above 0");
    }
    let (scale, program) = match device {
        DeviceChoice::Sim {
            time_scale,
            program,
        } => (*time_scale, program),
        DeviceChoice::Endpoint(_) => {
            if let Some(p) = plant.first() {
                bail!("--plant {p}: only a simulated device (--device sim or sim:PROGRAM) can be planted with a variant or a quirk");
            }
            return Ok(());
        }
    };
    if program.is_some() {
        // A program of one's own checks its options itself; one that exits before
        // its console line is not started again (SpawnError::Exited).
        return Ok(());
    }
    let p = match profile {
        Some(path) => hil::device::Profile::load(path)?,
        None => hil::device::Profile::parse("built-in sim.toml", hil::runner::SIM_PROFILE)?,
    };
    let args = hil::device::embedded::args_for(&p, scale, "127.0.0.1:0", plant);
    #[derive(clap::Parser)]
    struct Sim {
        #[command(flatten)]
        args: mfp_sim::SimArgs,
    }
    let words = ["hil sim", "--console", "pty"].map(String::from);
    let sim = <Sim as clap::Parser>::try_parse_from(words.into_iter().chain(args))
        .map_err(|e| anyhow!("the profile's sim_args: {e}"))?;
    let from = || match profile {
        Some(path) => format!("the profile {}", path.display()),
        None => "the built-in profile".to_string(),
    };
    match mfp_sim::check(&sim.args) {
        Ok(()) => Ok(()),
        Err(mfp_sim::SimError::TimeScale(t)) => {
            bail!("--time-scale {t}: the simulated device runs from 1 to 10000 times faster than wall time")
        }
        Err(mfp_sim::SimError::Quirk(q)) if plant.contains(&q.0) => bail!(
            "--plant {:?}: neither a SPEC variant ({}) nor a quirk ({})",
            q.0,
            mfp_sim::options::Variants::NAMES.join(", "),
            mfp_sim::options::Quirks::NAMES.join(", ")
        ),
        Err(e) => bail!(
            "{} starts the simulated device with options it refuses: {e}",
            from()
        ),
    }
}

/// What a profile says of the firmware: variants, ranges, AUTH mechanisms (the
/// reference device's for the built-in profile).
fn profile_facts(profile: Option<&std::path::Path>) -> anyhow::Result<DeviceFacts> {
    match profile {
        Some(p) => Ok(hil::device::Profile::load(p)?.facts),
        None => Ok(DeviceFacts::default()),
    }
}

/// The options that select cases, as typed (for "no case matches …").
fn selection_words(a: &RunArgs) -> String {
    let mut what = Vec::new();
    if let Some(s) = &a.shard {
        what.push(format!("--shard {s}"));
    }
    if let Some(f) = &a.filter {
        what.push(format!("--filter {f:?}"));
    }
    for s in &a.section {
        what.push(format!("--section {s}"));
    }
    for x in &a.exclude {
        what.push(format!("--exclude {x:?}"));
    }
    what.join(" and ")
}

/// What a run says before its first case: how many cases on which device, the
/// features the firmware lacks, what a masking-aware covering array covers.
fn announce(
    a: &RunArgs,
    cases: usize,
    jobs: usize,
    facts: &DeviceFacts,
    coverage: Option<&Coverage>,
) {
    say!(
        "hil: {cases} cases, device {}, {jobs} worker{}",
        a.device,
        if jobs == 1 { "" } else { "s" }
    );
    if !facts.unsupported.is_empty() {
        say!(
            "hil: the profile says the firmware lacks {}: their settings are tested only as refusals (hil matrix --profile lists them)",
            facts.unsupported.join(", ")
        );
    }
    if let Some(c) = coverage {
        let part = if a.shard.is_some() || a.filter.is_some() {
            " (the whole array; this run takes part of it)"
        } else {
            ""
        };
        for line in c.lines() {
            say!("hil: {line}{part}");
        }
    }
}

/// A path as given, made absolute so that a printed command works from anywhere.
fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The options of a run that decide a case's verdict, as `hil run` words.
struct Rerun<'a> {
    device: &'a str,
    profile: Option<&'a std::path::Path>,
    plant: &'a [String],
    model: &'a ModelArgs,
    bind: &'a BindAddr,
    server_address: Option<&'a str>,
    time_scale: Option<f64>,
    responder: Option<std::net::SocketAddr>,
}

impl Rerun<'_> {
    /// `hil run` and the options; `--case ID` after them reproduces one case
    /// (RunMeta::rerun, report::reproduce).
    fn words(&self) -> Vec<String> {
        let mut w: Vec<String> = vec!["hil".into(), "run".into()];
        let mut opt = |name: &str, value: String| {
            w.push(format!("--{name}"));
            w.push(value);
        };
        match self.device.strip_prefix("sim:") {
            Some(program) => opt(
                "device",
                format!("sim:{}", absolute(std::path::Path::new(program))),
            ),
            None if self.device != "sim" => opt("device", self.device.to_string()),
            None => {}
        }
        if let Some(p) = self.profile {
            opt("profile", absolute(p));
        }
        for p in self.plant {
            opt("plant", p.clone());
        }
        if let Some(c) = &self.model.certs {
            opt("certs", absolute(c));
        }
        if let Some(s) = &self.model.scenarios {
            opt("scenarios", absolute(s));
        }
        let bind = self.bind.to_string();
        if bind != "127.0.0.1" {
            opt("bind", bind);
        }
        if let Some(s) = self.server_address {
            opt("server-address", s.to_string());
        }
        if let Some(t) = self.time_scale {
            opt("time-scale", t.to_string());
        }
        if let Some(r) = self.responder {
            opt("responder", r.to_string());
        }
        w
    }
}

/// The reproduce words of a `hil run` (the case id names the matrix values, so
/// --matrix, --seed and --strength are not needed).
fn rerun_words(a: &RunArgs) -> Vec<String> {
    let mut w = Rerun {
        device: &a.device,
        profile: a.profile.as_deref(),
        plant: &a.plant,
        model: &a.model,
        bind: &a.bind,
        server_address: a.server_address.as_deref(),
        time_scale: a.time_scale,
        responder: a.responder,
    }
    .words();
    if a.smtp_port != 0 {
        w.push("--smtp-port".into());
        w.push(a.smtp_port.to_string());
    }
    if a.default_ports {
        w.push("--default-ports".into());
    }
    w
}

/// Runs the cases; answers the exit status.
fn run(a: RunArgs) -> anyhow::Result<u8> {
    let device = device_choice(&a.device, a.time_scale)?;
    preflight(&device, a.time_scale, a.profile.as_deref(), &a.plant)?;
    let rerun = rerun_words(&a);
    let baseline = a
        .baseline
        .as_deref()
        .map(hil::baseline::Baseline::load)
        .transpose()?;
    let profile_path = a.profile.clone();
    let scenarios_dir = data_dir(a.model.scenarios.clone(), "scenarios");
    let certs = data_dir(a.model.certs.clone(), "certs");
    let facts = profile_facts(a.profile.as_deref())?;
    ipv6_supported(&facts, &a.bind, a.server_address.as_deref())?;
    let real_device = matches!(device, DeviceChoice::Endpoint(_));
    let (cases, coverage) = select(&a, &certs, &facts)?;
    let jobs = if a.case.is_some() {
        1
    } else {
        choose_jobs(&a, real_device)?.min(cases.len().max(1))
    };
    if a.list {
        for c in &cases {
            say!("{}", c.id);
        }
        return Ok(0);
    }
    if cases.is_empty() {
        bail!("no case matches {}", selection_words(&a));
    }
    // The longest waits first: with several workers they overlap with the rest
    // instead of ending the run alone.
    let mut cases = cases;
    if jobs > 1 {
        cases.sort_by_key(|c| std::cmp::Reverse(hil::runner::device_wait_estimate(c)));
    }
    let verbose = a.verbose || a.case.is_some();
    let report_dir = match (&a.report, &a.case) {
        (Some(d), _) => Some(d.clone()),
        (None, None) => Some(PathBuf::from("hil-report")),
        (None, Some(_)) => None,
    };
    // Before anything starts: a capture that cannot open its socket ends the run here.
    let capture = if a.capture {
        if report_dir.is_none() {
            bail!(
                "--capture writes its files into the report folder: give --report DIR with --case"
            );
        }
        let iface = hil::capture::interface_for(&a.bind)?;
        hil::capture::check(&iface)?;
        Some(iface)
    } else {
        None
    };
    if let Some(d) = &report_dir {
        std::fs::create_dir_all(d)
            .map_err(|e| anyhow!("--report {}: cannot create it: {e}", d.display()))?;
        if !a.resume {
            remove_old_evidence(d);
        }
    }
    let stop = pool::stop_on_signals()?;
    let tls_cases = cases.iter().any(uses_tls);
    let (_responder, served_certs) = if tls_cases {
        let (rt, dir) = start_responder(&certs, a.responder)?;
        (Some(rt), dir)
    } else {
        (None, certs.clone())
    };
    announce(&a, cases.len(), jobs, &facts, coverage.as_ref());
    let base = run_meta(
        &a,
        coverage.as_ref(),
        rerun,
        &certs,
        &scenarios_dir,
        profile_path,
    );
    let opts = RunOptions {
        certs: tls_cases.then_some(served_certs),
        plant: a.plant.clone(),
        sim_exe: None,
        device,
        profile: a.profile,
        bind: a.bind,
        smtp_port: a.smtp_port,
        default_ports: a.default_ports,
        server_address: a.server_address,
        filter: a.filter,
        verbose,
        device_time_scale: a.time_scale.unwrap_or(1.0),
        reconnect_wait: Duration::from_secs_f64(a.reconnect_wait),
        capture,
    };
    let make: Arc<MakeRunner> = Arc::new(move |_worker| {
        Runner::start(opts.clone()).map(|r| Box::new(r) as Box<dyn CaseRunner>)
    });
    let pool_opts = PoolOptions {
        jobs,
        retries: 2,
        results: report_dir.as_ref().map(|d| d.join("results.jsonl")),
        resume: a.resume,
        verbose,
        progress: std::io::stderr().is_terminal(),
        grace: Duration::from_secs(30),
        stop,
    };
    // The model again, for which server-side values fired (none for the classic set).
    let model = hil_oracle::matrix::Matrix::build(&certs, &scenarios_dir, &facts).ok();
    // The final report (junit.xml, report.html) from every record of the run.
    let recap = std::cell::RefCell::new(Vec::<String>::new());
    let known = std::cell::RefCell::new(None::<Known>);
    let write_report = |records: &[Record], summary: &PoolSummary| {
        let Some(dir) = &report_dir else {
            return Ok(());
        };
        let meta = hil::report::RunMeta {
            finished: hil::report::now_utc(),
            duration_s: summary.elapsed_ms as f64 / 1000.0,
            device_identity: summary.device_identity.clone(),
            baseline: baseline.as_ref().map(|b| b.apply(records)),
            ..base.clone()
        };
        let triage = hil::triage::triage(records);
        let mut lines = hil::triage::recap(records, &triage, &meta);
        lines.extend(never_fired_line(model.as_ref(), records));
        *recap.borrow_mut() = lines;
        *known.borrow_mut() = meta.baseline.as_ref().map(|b| Known::of(b, records));
        hil::report::write_all(dir, records, &meta)
    };
    let result = pool::run_pool(
        cases,
        &pool_opts,
        make,
        &mut std::io::stdout(),
        report_dir.as_ref().map(|_| &write_report as &WriteReport),
    );
    // Cases given up on after a stop request may still hold a simulated device.
    hil::device::embedded::kill_all();
    let s = result?;
    let (recap, known) = (recap.into_inner(), known.into_inner());
    Ok(finish(s, report_dir.as_deref(), &recap, known.as_ref()))
}

/// What a baseline knows of a run: its report, and how many of the run's failures
/// and crashes it knows.
struct Known {
    report: hil::baseline::BaselineReport,
    failed: usize,
    crashes: usize,
}

impl Known {
    fn of(b: &hil::baseline::BaselineReport, records: &[Record]) -> Known {
        let of = |v: Verdict| {
            records
                .iter()
                .filter(|r| r.verdict == v && b.knows(&r.id).is_some())
                .count()
        };
        Known {
            report: b.clone(),
            failed: of(Verdict::Fail),
            crashes: of(Verdict::Crash),
        }
    }
}

/// What a run's report says of it before it starts: the command, device, options
/// that reproduce a case, profile and digests (the rest is filled in at the end).
fn run_meta(
    a: &RunArgs,
    coverage: Option<&Coverage>,
    rerun: Vec<String>,
    certs: &std::path::Path,
    scenarios: &std::path::Path,
    profile: Option<PathBuf>,
) -> hil::report::RunMeta {
    let (profile, profile_sha256) = match &profile {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p)
                .map(|b| hil::report::sha256_hex(&b))
                .unwrap_or_default(),
        ),
        None => ("built-in reference dialect".to_string(), String::new()),
    };
    let (hil_version, hil_commit) = hil::report::hil_build();
    hil::report::RunMeta {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        device: a.device.clone(),
        started: hil::report::now_utc(),
        shard: a.shard.clone(),
        coverage: coverage.iter().flat_map(|c| c.lines()).collect(),
        rerun,
        hil_version,
        hil_commit,
        profile,
        profile_sha256,
        certs_sha256: hil::report::dir_sha256(certs),
        scenarios_sha256: hil::report::dir_sha256(scenarios),
        ..hil::report::RunMeta::default()
    }
}

/// Whether a case needs the zoo: its SMTP or POP3 server speaks TLS (the POP3 one
/// with the case's certificate, or the valid one).
fn uses_tls(c: &hil_oracle::model::Case) -> bool {
    c.cert.is_some()
        || c.import_ca
        || c.settings
            .iter()
            .any(|(k, v)| *k == hil_oracle::model::Key::PopTls && v != "none")
}

/// The scripted server values none of the run's cases met, in a line (none for the
/// classic set, which has no model).
fn never_fired_line(
    model: Option<&hil_oracle::matrix::Matrix>,
    records: &[Record],
) -> Option<String> {
    let never = model.map(|m| hil::vacuity::never_fired(m, records))?;
    (!never.is_empty()).then(|| {
        format!(
            "hil: {} scripted server value{} never fired in this run (their cases could not fail for the fault): {}",
            never.len(),
            if never.len() == 1 { "" } else { "s" },
            never.join(", ")
        )
    })
}

/// Says how the run ended (time, results file, early stop, how many cases reached
/// the server, the recap, what the baseline knows, the counts); the exit status.
fn finish(
    mut s: PoolSummary,
    report_dir: Option<&std::path::Path>,
    recap: &[String],
    known: Option<&Known>,
) -> u8 {
    say!("hil: ran in {:.1}s", s.elapsed_ms as f64 / 1000.0);
    if let Some(d) = report_dir {
        say!("hil: results in {}", d.join("results.jsonl").display());
    }
    if let Some(why) = &s.stopped {
        error!("hil: stopped early: {why}");
    }
    if let Some(e) = &s.report_error {
        error!("hil: the report: {e}");
    }
    if let Some(line) = s.reach_line() {
        say!("{line}");
    }
    for line in recap {
        say!("{line}");
    }
    if let Some(k) = known {
        s.discount_known(k.failed, k.crashes);
        let b = &k.report;
        if !b.fixed.is_empty() {
            say!(
                "hil: {} known failure{} of {} pass now: {}",
                b.fixed.len(),
                if b.fixed.len() == 1 { "" } else { "s" },
                b.source,
                b.fixed.join(", ")
            );
        }
        for u in &b.unseen {
            say!("hil: a known deviation no case showed: {u}");
        }
    }
    say!("{}", s.last_line());
    let _ = std::io::stdout().flush();
    if s.interrupted {
        130
    } else if s.success() {
        0
    } else {
        1
    }
}

/// A run that starts `results.jsonl` afresh removes the captures an earlier run left
/// in `DIR/evidence/` (its `.pcapng` files only), so none outlives its record.
fn remove_old_evidence(dir: &std::path::Path) {
    let ev = dir.join(hil::record::EVIDENCE_DIR);
    let Ok(entries) = std::fs::read_dir(&ev) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pcapng") {
            if let Err(err) = std::fs::remove_file(&p) {
                error!("hil: cannot remove the old capture {}: {err}", p.display());
            }
        }
    }
}

/// A folder given, else `NAME/` here, else the one next to the sources this binary
/// was built from.
fn data_dir(given: Option<PathBuf>, name: &str) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let here = PathBuf::from(name);
    if here
        .join(if name == "certs" {
            "manifest.toml"
        } else {
            "README.md"
        })
        .exists()
    {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(name)
}

fn matrix(a: MatrixArgs) -> anyhow::Result<()> {
    let facts = profile_facts(a.profile.as_deref())?;
    let m = hil_oracle::matrix::Matrix::build(
        &data_dir(a.model.certs, "certs"),
        &data_dir(a.model.scenarios, "scenarios"),
        &facts,
    )?;
    if a.matrix == "classic" && a.strength.is_none() {
        let cases = hil_oracle::cases::first_set();
        say!("classic: {} hand-written cases (not a matrix)", cases.len());
        if a.list {
            for c in &cases {
                say!("{}", c.id);
            }
        }
        return Ok(());
    }
    let (rows, coverage) = rows_of(&m, &a.matrix, a.strength, a.seed)?;
    for line in unsupported_lines(&m) {
        say!("{line}");
    }
    print!("{}", m.explain(&rows));
    for line in coverage.iter().flat_map(|c| c.lines()) {
        say!("{line}");
    }
    let vacuous = m.never_met(&rows);
    if vacuous.is_empty() {
        say!("\nevery server.fault value fires in at least one case");
    } else {
        say!(
            "\n{} server.fault value(s) never fire (their cases cannot fail for the fault):",
            vacuous.len()
        );
        for (v, why) in &vacuous {
            say!("  {v}: {why}");
        }
    }
    if a.list {
        for r in &rows {
            say!("{}", m.id(r));
        }
    }
    Ok(())
}

/// A firmware that lacks IPv6 (the profile's `unsupported`) cannot be told an IPv6
/// server address: refused before anything starts, naming the option to change.
fn ipv6_supported(
    facts: &DeviceFacts,
    bind: &BindAddr,
    server_address: Option<&str>,
) -> anyhow::Result<()> {
    if !facts.unsupported.iter().any(|u| u == "ipv6") {
        return Ok(());
    }
    let told = match server_address {
        Some(a) => a
            .split('%')
            .next()
            .unwrap_or(a)
            .parse::<std::net::Ipv6Addr>()
            .is_ok(),
        None => bind.ip().is_ipv6(),
    };
    if told {
        bail!(
            "the profile says the firmware lacks ipv6, so it cannot be told an IPv6 server address: give an IPv4 --bind (or --server-address)"
        );
    }
    Ok(())
}

/// What the matrix leaves out because the profile says the firmware lacks it: one
/// line per feature with the values it drops (each kept as one refusal case).
fn unsupported_lines(m: &hil_oracle::matrix::Matrix) -> Vec<String> {
    let mut by_feature: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (d, v, f) in hil_oracle::matrix::unsupported_values(m) {
        by_feature
            .entry(f)
            .or_default()
            .push(format!("{}={v}", d.as_str()));
    }
    by_feature
        .into_iter()
        .map(|(f, vals)| {
            format!(
                "unsupported: the firmware lacks {f} (profile): {} dropped from every section and covering array, kept as one refusal case each",
                vals.join(", ")
            )
        })
        .collect()
}

/// `hil fuzz`: answers whether every case matched.
fn fuzz(a: FuzzArgs) -> anyhow::Result<bool> {
    let device = device_choice(&a.device, a.time_scale)?;
    preflight(&device, a.time_scale, a.profile.as_deref(), &a.plant)?;
    let meta = hil::report::RunMeta {
        rerun: Rerun {
            device: &a.device,
            profile: a.profile.as_deref(),
            plant: &a.plant,
            model: &a.model,
            bind: &a.bind,
            server_address: a.server_address.as_deref(),
            time_scale: a.time_scale,
            responder: a.responder,
        }
        .words(),
        ..Default::default()
    };
    let certs = data_dir(a.model.certs.clone(), "certs");
    let facts = profile_facts(a.profile.as_deref())?;
    let m = hil_oracle::matrix::Matrix::build(
        &certs,
        &data_dir(a.model.scenarios.clone(), "scenarios"),
        &facts,
    )?;
    let (_responder, served_certs) = start_responder(&certs, a.responder)?;
    let mut runner = Runner::start(RunOptions {
        device,
        profile: a.profile.clone(),
        bind: a.bind,
        smtp_port: 0,
        default_ports: false,
        server_address: a.server_address.clone(),
        filter: None,
        verbose: false,
        device_time_scale: a.time_scale.unwrap_or(1.0),
        certs: Some(served_certs),
        plant: a.plant.clone(),
        sim_exe: None,
        reconnect_wait: hil::runner::RECONNECT_WAIT,
        capture: None,
    })?;
    say!(
        "hil fuzz: {} random combinations of {} dimensions, seed {}, device {}",
        a.cases,
        m.dims.len(),
        a.seed,
        a.device
    );
    let mut n = 0u32;
    let outcome = hil::fuzz::fuzz(&m, &mut runner, a.cases, a.seed, &mut |id, verdict| {
        n += 1;
        say!("[{n}] {verdict} {id}");
    });
    hil::pool::CaseRunner::shutdown(Box::new(runner));
    match outcome? {
        hil::fuzz::Outcome::Passed {
            cases,
            harness_errors,
        } => {
            say!("hil fuzz: {cases} cases matched the oracle ({harness_errors} harness errors skipped)");
            Ok(true)
        }
        hil::fuzz::Outcome::Failed(f) => {
            say!(
                "hil fuzz: FAIL, shrunk in {} runs to {} non-default value(s):",
                f.runs,
                f.non_default.len()
            );
            for (k, v) in &f.non_default {
                say!("  {k} = {v}");
            }
            for mm in &f.mismatches {
                say!("  - {mm}");
            }
            say!("rerun: {}", hil::report::reproduce(&meta, &f.id));
            Ok(false)
        }
    }
}

/// `hil bench-setup`: answers whether every check passed.
fn bench_setup(a: BenchSetupArgs) -> anyhow::Result<bool> {
    let device = a
        .device
        .as_deref()
        .map(|d| device_choice(d, a.time_scale))
        .transpose()?;
    let o = hil::bench_setup::BenchSetupOptions {
        bind: a.bind,
        server_address: a.server_address,
        certs: data_dir(a.model.certs.clone(), "certs"),
        scenarios: data_dir(a.model.scenarios.clone(), "scenarios"),
        device,
        profile: a.profile,
        smtp_port: a.smtp_port,
        pop_port: a.pop_port,
        wait: Duration::from_secs(a.wait),
        time_scale: a.time_scale.unwrap_or(1.0),
        reconnect_wait: hil::runner::RECONNECT_WAIT,
    };
    // A closed standard output (a pager quit) ends nothing but the printing.
    let mut out = std::io::stdout();
    Ok(hil::bench_setup::run(&o, &mut |l| {
        let _ = writeln!(out, "{l}");
        let _ = out.flush();
    })?)
}

fn certs(a: CertsArgs) -> anyhow::Result<()> {
    let key = hil_zoo::keys::KeyKind::parse(&a.key)?;
    let mut o = hil_zoo::zoo::ZooOptions {
        key,
        seed: a.seed,
        responder: a.responder.trim_end_matches('/').to_string(),
        ..Default::default()
    };
    if !a.host.is_empty() {
        o.hosts = a.host;
    }
    let m = hil_zoo::zoo::generate(&a.out, &o)?;
    say!(
        "hil certs: {} server certificates and {} CAs ({}, seed {}) in {}; trust anchor {}",
        m.cert.len(),
        m.ca.len(),
        m.key,
        m.seed,
        a.out.display(),
        m.trust_anchor
    );
    Ok(())
}

fn responder(a: ResponderArgs) -> anyhow::Result<()> {
    use hil_zoo::responder::{Responder, RevocationFault};
    let fault = RevocationFault::parse(&a.fault)?;
    let zoo = hil_zoo::load(&a.certs)?;
    let bind = match a.bind {
        Some(b) => b,
        None => {
            let url = &zoo.manifest.responder;
            hil_zoo::responder_addr(url).ok_or_else(|| {
                anyhow!("the manifest's responder {url:?} is not http://IP:PORT; give --bind")
            })?
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let r = Responder::start_with(bind, zoo, a.time_scale, fault).await?;
        say!(
            "hil responder: OCSP http://{0}/ocsp, CRLs http://{0}/crl/CA.crl, fault {1}",
            r.addr(),
            a.fault
        );
        say!("ready");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| anyhow!("cannot watch for SIGTERM: {e}"))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        for q in r.requests() {
            say!(
                "{} {} {} -> {} {}",
                q.peer,
                q.method,
                q.path,
                q.status,
                q.what
            );
        }
        Ok(())
    })
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Report directories or results.jsonl files to merge (the runs of `--shard K/N`).
    #[arg(long, num_args = 1.., required_unless_present_any = ["from", "diff"], conflicts_with_all = ["from", "diff"])]
    merge: Vec<PathBuf>,
    /// One run's report directory or results.jsonl to render again.
    #[arg(long, conflicts_with = "diff")]
    from: Option<PathBuf>,
    /// Two runs (report directories or results.jsonl), OLD then NEW: prints the new
    /// failures by cause, the fixed cases and the changed outcomes; with --out, also
    /// writes diff.html there. Exits 1 when there are new failures.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    diff: Vec<PathBuf>,
    /// Where to write results.jsonl, junit.xml, report.html and run.json (diff.html for
    /// --diff).
    #[arg(long, required_unless_present = "diff")]
    out: Option<PathBuf>,
}

/// Ok(false) when a case failed or could not be run (for --diff: a new failure).
fn report(a: ReportArgs) -> anyhow::Result<bool> {
    if let [old, new] = a.diff.as_slice() {
        let d = hil::diff::diff(old, new)?;
        print!("{}", d.text());
        if let Some(out) = &a.out {
            let p = d.write_html(out)?;
            say!("hil report: {}", p.display());
        }
        return Ok(d.new_failures.is_empty());
    }
    let inputs = match a.from {
        Some(f) => vec![f],
        None => a.merge,
    };
    let Some(out) = a.out else {
        bail!("--out DIR is needed to write the report");
    };
    let s = hil::report::merge(&inputs, &out)?;
    say!("{}", s.line());
    Ok(s.counts.failed == 0 && s.counts.harness_errors == 0)
}

/// The exit status of a command that answers whether everything passed: 0, or 1 when
/// something failed; when the command could not run, its error is said after
/// `prefix` on standard error and the status is `status`.
fn exit(result: anyhow::Result<bool>, prefix: &str, status: u8) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            error!("{prefix}: {e}");
            ExitCode::from(status)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match cli.cmd {
        Cmd::Run(a) => match run(*a) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                error!("hil: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Serve(a) => {
            let o = hil::serve_cmd::ServeOptions {
                scenario: a.scenario,
                bind: a.bind,
                certs: a.certs,
                transcripts: a.transcripts,
                time_scale: a.time_scale,
            };
            let ran = hil::serve_cmd::run(o).map(|_| true);
            exit(ran.map_err(Into::into), "hil serve", 2)
        }
        Cmd::Certs(a) => exit(certs(a).map(|()| true), "hil certs", 2),
        Cmd::Responder(a) => exit(responder(a).map(|()| true), "hil responder", 2),
        Cmd::Matrix(a) => exit(matrix(a).map(|()| true), "hil matrix", 2),
        Cmd::Fuzz(a) => exit(fuzz(a), "hil fuzz", 2),
        Cmd::Report(a) => exit(report(a), "hil report", 2),
        Cmd::Profile(ProfileCmd::Check { file }) => ExitCode::from(profile_check(&file)),
        Cmd::Profile(ProfileCmd::Probe(a)) => ExitCode::from(profile_probe(a)),
        Cmd::BenchSetup(a) => exit(bench_setup(a), "hil bench-setup", 2),
        // The simulated device's own failure status (1), as mfp-sim exits.
        Cmd::Sim(args) => exit(
            mfp_sim::run(args).map(|()| true).map_err(Into::into),
            "hil sim",
            1,
        ),
    }
}
