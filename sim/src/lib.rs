//! mfp-sim: a simulated multifunction printer's e-mail (SMTP) sending function with
//! its serial console, following the behaviour contract in SPEC.md.
//!
//! # The modules and their arrows
//!
//! One concept per module. An arrow A → B means A uses items of B; the arrows only
//! ever point down this list, so the module graph is a DAG (`tests/module_graph.rs`
//! reads the sources and fails on a cycle, naming it).
//!
//! ```text
//! transport  → dialects, dialect, device, line        bytes in and out (pty, stdio, TCP)
//! dialects   → console, menu, dialect                 the factory: --dialect → a session
//! menu       → console, dialect, device, jobs, …      the second dialect (numbered menus)
//! console    → dialect, device, jobs, settings, …     the reference dialect (SPEC §6)
//! dialect    → device, line                           the Dialect trait, knowing no dialect
//! device     → jobs, settings, options, clock, text   state, stores, job queue, job events
//! jobs       → net, smtp_client, sasl_client, pop_client, partial, mime, settings,
//!              options, clock, verify                 what one job sends (SPEC §2–§4)
//! net        → smtp_client, pop_client, revocation, resolve, verify
//!                                                     the tokio layer under the clients
//! revocation → http, verify                           OCSP then CRL (SPEC §3.5)
//! smtp_client → sasl_client, mime, text               the SMTP state machine, no I/O
//! http       → resolve                                the HTTP client of revocation
//! sasl_client → text                                  SASL mechanisms, a pure lower layer
//! settings   → text                                   keys, schema, validation (SPEC §1)
//! options    → files                                  what the device is started with
//! partial                                             message/partial fragments (SPEC §4)
//! text, line, clock, resolve, files, mime, verify, pop_client    the ground floor
//! ```
//!
//! The rules behind the cuts: the device owns the job events and the consoles render
//! them (the device never formats a console line); the [`dialect::Dialect`] trait
//! knows none of its implementations (only [`dialects`] does); the HTTP client knows
//! nothing of the SMTP layer (both stand on [`resolve`]); the SASL client knows
//! nothing of SMTP (both stand on [`text`]).

pub mod clock;
pub mod console;
pub mod device;
pub mod dialect;
pub mod dialects;
pub mod files;
pub mod http;
pub mod jobs;
pub mod line;
pub mod menu;
pub mod mime;
pub mod net;
pub mod options;
pub mod partial;
pub mod pop_client;
pub mod resolve;
pub mod revocation;
pub mod sasl_client;
pub mod settings;
pub mod smtp_client;
pub mod text;
pub mod transport;
pub mod verify;

use clap::Args;

/// The command line of the simulated device (also `hil sim`).
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Where the console is served: `pty` (prints `console: /dev/pts/N` first),
    /// `stdio`, or `tcp:ADDR:PORT` (raw TCP, as ser2net serves a port).
    #[arg(long, default_value = "pty")]
    pub console: String,
    /// The console dialect: `reference` (SPEC §6) or `menu` (numbered menus behind a
    /// login, docs/profiles.md "The second dialect").
    #[arg(long, default_value = "reference")]
    pub dialect: String,
    /// The menu dialect's login, `USER:PASSWORD` (default service:mfp-4000).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub menu_login: Option<String>,
    /// Device time runs this many times faster for timeouts and waits.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// The host name the device sends in EHLO.
    #[arg(long, default_value = "mfp-sim")]
    pub hostname: String,
    /// Resolve NAME to ADDR instead of asking the resolver (repeat), like curl's
    /// --resolve: for test names such as mx.hil.test.
    #[arg(long, value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
    /// Follow a known firmware variant of SPEC (repeat): plaintext-after-starttls-failure,
    /// send-without-auth, cn-only, soft-fail-revocation.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Vec<String>,
    /// Where the device serves scans it mails as download URLs (SPEC §4 url modes).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub downloads: String,
    /// How long a scan stays downloadable, in device seconds (default 7 days).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub url_ttl: u64,
}

/// Runs the device until its console ends.
pub fn run(args: SimArgs) -> Result<(), String> {
    if !(args.time_scale.is_finite() && args.time_scale >= 1.0 && args.time_scale <= 10_000.0) {
        return Err(format!(
            "--time-scale {}: must be a number from 1 to 10000",
            args.time_scale
        ));
    }
    settings::check_host(&args.hostname)
        .map_err(|e| format!("--hostname {:?}: {e}", args.hostname))?;
    let mut resolve = Vec::new();
    for r in &args.resolve {
        let (name, addr) = r
            .split_once('=')
            .ok_or_else(|| format!("--resolve {r:?}: expected NAME=ADDR"))?;
        let ip = addr
            .parse()
            .map_err(|_| format!("--resolve {r:?}: {addr:?} is not an IP address"))?;
        resolve.push((name.to_ascii_lowercase(), ip));
    }
    let dialect = dialect_of(&args)?;
    let mut variants = device::Variants::default();
    for v in &args.variant {
        variants.set(v)?;
    }
    let downloads =
        files::FileStore::start(&args.downloads).map_err(|e| format!("--downloads: {e}"))?;
    let dev = device::Device::start(device::Options {
        variants,
        downloads: Some(downloads),
        url_ttl_s: args.url_ttl,
        hostname: args.hostname.clone(),
        time_scale: args.time_scale,
        resolve,
    })
    .map_err(|e| format!("cannot start the device: {e}"))?;
    let r = match args.console.as_str() {
        "pty" => transport::serve_pty(dev, &dialect),
        "stdio" => transport::serve_stdio(dev, &dialect),
        other => match other.strip_prefix("tcp:") {
            Some(addr) => transport::serve_tcp(addr, dev, &dialect),
            None => {
                return Err(format!(
                    "--console {other:?}: must be pty, stdio or tcp:ADDR:PORT"
                ))
            }
        },
    };
    r.map_err(|e| format!("console ({}): {e}", args.console))
}

/// The dialect `--dialect` and `--menu-login` ask for.
fn dialect_of(args: &SimArgs) -> Result<dialects::DialectKind, String> {
    match (args.dialect.as_str(), &args.menu_login) {
        ("reference", None) => Ok(dialects::DialectKind::Reference),
        ("reference", Some(_)) => Err(
            "--menu-login: only with --dialect menu (the reference dialect has no login)".into(),
        ),
        ("menu", login) => Ok(dialects::DialectKind::Menu(match login {
            Some(spec) => menu::MenuLogin::parse(spec)?,
            None => menu::MenuLogin::default(),
        })),
        (other, _) => Err(format!(
            "--dialect {other:?}: must be one of {}",
            dialects::DIALECTS.join(", ")
        )),
    }
}
