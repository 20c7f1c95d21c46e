//! mfp-sim: a simulated multifunction printer's e-mail (SMTP) sending function with
//! its serial console, following the behaviour contract in SPEC.md.
//!
//! The modules follow one concept each: `settings` (schema and validation),
//! `console` (the reference line protocol, no I/O), `menu` (the second dialect),
//! `dialect` (what a transport needs of either), `device` (state and job queue), `jobs`
//! (what a job sends), `mime` (building mails), `smtp_client` (the SMTP state
//! machine, no I/O), `net` (its tokio layer), `transport` (pty, stdio, TCP).

pub mod console;
pub mod device;
pub mod dialect;
pub mod files;
pub mod http;
pub mod jobs;
pub mod menu;
pub mod mime;
pub mod net;
pub mod partial;
pub mod pop_client;
pub mod revocation;
pub mod sasl_client;
pub mod settings;
pub mod smtp_client;
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
fn dialect_of(args: &SimArgs) -> Result<dialect::DialectKind, String> {
    match (args.dialect.as_str(), &args.menu_login) {
        ("reference", None) => Ok(dialect::DialectKind::Reference),
        ("reference", Some(_)) => Err(
            "--menu-login: only with --dialect menu (the reference dialect has no login)".into(),
        ),
        ("menu", login) => Ok(dialect::DialectKind::Menu(match login {
            Some(spec) => menu::MenuLogin::parse(spec)?,
            None => menu::MenuLogin::default(),
        })),
        (other, _) => Err(format!(
            "--dialect {other:?}: must be one of {}",
            dialect::DIALECTS.join(", ")
        )),
    }
}
