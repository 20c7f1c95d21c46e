//! mfp-sim: a simulated multifunction printer's e-mail (SMTP) sending function with
//! its serial console, following the behaviour contract in SPEC.md.
//!
//! # The modules and their arrows
//!
//! One concept per module. An arrow A → B means A uses items of B; the arrows only
//! ever point down this list, so the module graph is a DAG (`tests/module_graph.rs`
//! reads the sources, the crate root included, and fails on a cycle, naming it).
//!
//! ```text
//! (lib.rs)   → transport, dialects, menu, device, options, files, settings
//!                                                     run(): options, device, console
//! transport  → dialects, dialect, device, line        bytes in and out (pty, stdio, TCP)
//! dialects   → console, menu, dialect                 the factory: --dialect → a session
//! menu       → console, dialect, device, jobs, …      the second dialect (numbered menus)
//! console    → dialect, device, jobs, settings, …     the reference dialect (SPEC §6)
//! dialect    → device, line                           the Dialect trait, knowing no dialect
//! device     → jobs, settings, options, clock, text, stage
//!                                                     state, stores, job queue, job events
//! jobs       → net, smtp_client, sasl_client, pop_client, partial, mime, settings,
//!              options, clock, verify, resolve        what one job sends (SPEC §2–§4)
//! net        → smtp_client, pop_client, revocation, resolve, verify, stage
//!                                                     the tokio layer under the clients
//! revocation → http, resolve, verify, stage           OCSP then CRL (SPEC §3.5)
//! smtp_client → sasl_client, mime, text               the SMTP state machine, no I/O
//! http       → resolve, text                          the HTTP client of revocation
//! sasl_client → text                                  SASL mechanisms, a pure lower layer
//! settings   → text                                   keys, schema, validation (SPEC §1)
//! options    → files, settings, dns                   what the device is started with
//! resolve    → dns                                    names to addresses (SPEC §3.1)
//! partial                                             message/partial fragments (SPEC §4)
//! text, line, clock, dns, files, mime, verify, pop_client, stage
//!                                                     the ground floor
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
pub mod dns;
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
pub mod stage;
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
    /// The port the device asks its DNS servers (`net.dns`, addresses only) on: 53 on
    /// a real network; a test's fake DNS server on a free port.
    #[arg(long, value_name = "PORT", default_value_t = dns::DNS_PORT)]
    pub dns_port: u16,
    /// Follow a known firmware variant of SPEC (repeat): plaintext-after-starttls-failure,
    /// send-without-auth, cn-only, soft-fail-revocation.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Vec<String>,
    /// Plant a behaviour that is not SPEC's (repeat): an old or planted bug, or the
    /// other side of a SPEC latitude, for the harness to show its cases catch it.
    /// rcpt-530-rejected, address-max-253, pop-tls-unchecked, quit-refusal-fails,
    /// malformed-challenge-ignored, expired-intermediate-fails (latitude),
    /// fragments-one-connection (latitude), no-fragment-subject-prefix,
    /// pop-wait-ignored, lenient-input, password-shown.
    #[arg(long, value_name = "QUIRK")]
    pub quirk: Vec<String>,
    /// A feature this firmware does not implement (repeat): its settings are refused
    /// when set. pop-before-smtp, apop, pop3s, stls, smtps, starttls, split,
    /// abort-over-limit, url-over-limit, url-always, load-reduction (all four modes),
    /// check-cn, check-key-usage, check-chain, check-revocation, ocsp (revocation by
    /// the CRL only), crl (by OCSP only), device-user, envelope-from-specified.
    #[arg(long, value_name = "FEATURE")]
    pub without: Vec<String>,
    /// Where the device serves scans it mails as download URLs (SPEC §4 url modes).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub downloads: String,
    /// How long a scan stays downloadable, in device seconds (default 7 days).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub url_ttl: u64,
}

/// Why the simulated device does not run, or stopped: a bad option (named as on the
/// command line), or a device or console that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("--time-scale {0}: must be a number from 1 to 10000")]
    TimeScale(f64),
    #[error("--hostname {name:?}: {source}")]
    Hostname {
        name: String,
        source: settings::HostError,
    },
    #[error("--resolve {0:?}: expected NAME=ADDR")]
    ResolveSyntax(String),
    #[error("--resolve {spec:?}: {addr:?} is not an IP address")]
    ResolveAddress { spec: String, addr: String },
    #[error("--dialect {0:?}: must be one of {words}", words = dialects::DIALECTS.join(", "))]
    Dialect(String),
    #[error("--menu-login: only with --dialect menu (the reference dialect has no login)")]
    LoginWithoutMenu,
    #[error(transparent)]
    MenuLogin(#[from] menu::LoginError),
    #[error(transparent)]
    Variant(#[from] options::UnknownVariant),
    #[error(transparent)]
    Quirk(#[from] options::UnknownQuirk),
    #[error(transparent)]
    Without(#[from] options::UnknownFeature),
    #[error("--downloads: {0}")]
    Downloads(#[source] files::FilesError),
    #[error("cannot start the device: {0}")]
    Start(#[source] device::StartError),
    #[error("--console {0:?}: must be pty, stdio or tcp:ADDR:PORT")]
    ConsoleSpec(String),
    #[error("console ({console}): {source}")]
    Console {
        console: String,
        source: transport::TransportError,
    },
}

/// What the options say, checked.
struct Checked {
    resolve: Vec<(String, std::net::IpAddr)>,
    dialect: dialects::DialectKind,
    variants: options::Variants,
    quirks: options::Quirks,
    lacks: options::Lacks,
}

/// Checks the options as [`run`] does, without starting anything: `hil run` asks
/// before any device starts, so that a wrong option is said once, not per device.
pub fn check(args: &SimArgs) -> Result<(), SimError> {
    checked(args).map(|_| ())
}

fn checked(args: &SimArgs) -> Result<Checked, SimError> {
    if !(args.time_scale.is_finite() && args.time_scale >= 1.0 && args.time_scale <= 10_000.0) {
        return Err(SimError::TimeScale(args.time_scale));
    }
    settings::check_host(&args.hostname).map_err(|source| SimError::Hostname {
        name: args.hostname.clone(),
        source,
    })?;
    let mut resolve = Vec::new();
    for r in &args.resolve {
        let (name, addr) = r
            .split_once('=')
            .ok_or_else(|| SimError::ResolveSyntax(r.clone()))?;
        let ip = addr.parse().map_err(|_| SimError::ResolveAddress {
            spec: r.clone(),
            addr: addr.into(),
        })?;
        resolve.push((name.to_ascii_lowercase(), ip));
    }
    let dialect = dialect_of(args)?;
    let mut variants = options::Variants::default();
    for v in &args.variant {
        variants.set(v)?;
    }
    let mut quirks = options::Quirks::default();
    for q in &args.quirk {
        quirks.set(q)?;
    }
    let mut lacks = options::Lacks::default();
    for f in &args.without {
        lacks.add(f)?;
    }
    Ok(Checked {
        resolve,
        dialect,
        variants,
        quirks,
        lacks,
    })
}

/// Runs the device until its console ends.
pub fn run(args: SimArgs) -> Result<(), SimError> {
    let Checked {
        resolve,
        dialect,
        variants,
        quirks,
        lacks,
    } = checked(&args)?;
    let downloads = files::FileStore::start(&args.downloads).map_err(SimError::Downloads)?;
    let dev = device::Device::start(options::Options {
        variants,
        downloads: Some(downloads),
        url_ttl_s: args.url_ttl,
        hostname: args.hostname.clone(),
        time_scale: args.time_scale,
        resolve,
        dns_port: args.dns_port,
        lacks,
        quirks,
    })
    .map_err(SimError::Start)?;
    let r = match args.console.as_str() {
        "pty" => transport::serve_pty(dev, &dialect),
        "stdio" => transport::serve_stdio(dev, &dialect),
        other => match other.strip_prefix("tcp:") {
            Some(addr) => transport::serve_tcp(addr, dev, &dialect),
            None => return Err(SimError::ConsoleSpec(other.into())),
        },
    };
    r.map_err(|source| SimError::Console {
        console: args.console.clone(),
        source,
    })
}

/// The dialect `--dialect` and `--menu-login` ask for.
fn dialect_of(args: &SimArgs) -> Result<dialects::DialectKind, SimError> {
    match (args.dialect.as_str(), &args.menu_login) {
        ("reference", None) => Ok(dialects::DialectKind::Reference),
        ("reference", Some(_)) => Err(SimError::LoginWithoutMenu),
        ("menu", login) => Ok(dialects::DialectKind::Menu(match login {
            Some(spec) => menu::MenuLogin::parse(spec)?,
            None => menu::MenuLogin::default(),
        })),
        (other, _) => Err(SimError::Dialect(other.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    /// The error `run` answers for these options (all refused before anything starts).
    fn refusal(options: &[&str]) -> String {
        let args = Cli::parse_from(std::iter::once("mfp-sim").chain(options.iter().copied())).args;
        match run(args) {
            Ok(()) => panic!("{options:?} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_options_are_named_as_on_the_command_line() {
        for (options, want) in [
            (
                &["--time-scale", "0.5"][..],
                "--time-scale 0.5: must be a number from 1 to 10000",
            ),
            (
                &["--hostname", "a..b"],
                "--hostname \"a..b\": must be a host name (RFC 1123, at most 253 characters), \
                 an IPv4 address or an IPv6 address with optional %zone; it has an empty label",
            ),
            (
                &["--resolve", "foo"],
                "--resolve \"foo\": expected NAME=ADDR",
            ),
            (
                &["--resolve", "foo=bar"],
                "--resolve \"foo=bar\": \"bar\" is not an IP address",
            ),
            (
                &["--dialect", "nope"],
                "--dialect \"nope\": must be one of reference, menu",
            ),
            (
                &["--menu-login", "a:b"],
                "--menu-login: only with --dialect menu (the reference dialect has no login)",
            ),
            (
                &["--dialect", "menu", "--menu-login", "nocolon"],
                "--menu-login: expected USER:PASSWORD",
            ),
            (
                &["--variant", "nope"],
                "--variant \"nope\": one of plaintext-after-starttls-failure, \
                 send-without-auth, cn-only, soft-fail-revocation",
            ),
            (
                &["--quirk", "nope"],
                "--quirk \"nope\": one of rcpt-530-rejected, address-max-253, \
                 pop-tls-unchecked, quit-refusal-fails, malformed-challenge-ignored, \
                 expired-intermediate-fails, fragments-one-connection, \
                 no-fragment-subject-prefix, pop-wait-ignored, lenient-input, password-shown, \
                 refused-recipient-fails, alerts-paper-jam-only, timeout-ignored, factory-port-587",
            ),
        ] {
            assert_eq!(refusal(options), want, "{options:?}");
        }
    }
}
