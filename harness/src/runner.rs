//! The runner: for each case, set the fake server to the case's scenario, bring the
//! device to a known state over its console (reset, then only the case's settings),
//! trigger the job, wait for its end, collect what the server saw, ask the oracle,
//! compare, and keep everything the case saw.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::device::embedded::{EmbeddedSim, SpawnError};
use crate::device::profile::ProfileError;
use crate::device::{Console, DriverError, Endpoint, Profile, TriggerAnswer};
use crate::outcome::{Ending, Outcome};
use crate::verdict::{self, Observed};
use hil_mail::netaddr::BindAddr;
use hil_mail::netio::ListenError;
use hil_mail::pop3::{Pop3Config, PopAccount};
use hil_mail::pop3_server::{Pop3Listen, Pop3Server};
use hil_mail::pop_window::PopLogins;
use hil_mail::smtp::{ListenerKind, SmtpConfig};
use hil_mail::smtp_server::{Listen, Observations, ServerOptions, SmtpServer};
use hil_mail::tls::KeyLogLines;
use hil_oracle::matrix::{BuildError, Dim};
use hil_oracle::model::{Case, Key, SettingView, Target, TriggerSpec, SECRET_KEYS};
use hil_oracle::oracle::{self, Expected};

/// The reference dialect's profile, built in so `hil run` works from any directory.
pub const SIM_PROFILE: &str = include_str!("../../fixtures/devices/sim.toml");

/// Which device to drive.
#[derive(Debug, Clone)]
pub enum DeviceChoice {
    /// The simulated device embedded in this binary (or `program`, a simulated device
    /// of one's own that takes mfp-sim's options and prints `console: PATH`),
    /// started on a pty, one per worker.
    Sim {
        time_scale: f64,
        program: Option<PathBuf>,
    },
    /// An already-running device.
    Endpoint(Endpoint),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub device: DeviceChoice,
    /// A profile file; `None` is the built-in reference dialect.
    pub profile: Option<PathBuf>,
    /// Where the fake servers listen.
    pub bind: hil_mail::netaddr::BindAddr,
    /// The plain SMTP listener's port (0: any free port).
    pub smtp_port: u16,
    /// Listen on SPEC's default ports (SMTP 25, SMTPS 465, POP3 110, POP3S 995, the
    /// TLS ones with the zoo's `valid` certificate), so that a case using those
    /// listeners leaves the device's ports at their factory values.
    pub default_ports: bool,
    /// The server address given to the device (default: the bind address).
    pub server_address: Option<String>,
    pub filter: Option<String>,
    pub verbose: bool,
    /// The time scale of an already-running device (1 for hardware).
    pub device_time_scale: f64,
    /// The certificate zoo: its certificates are served by TLS listeners and its root
    /// is imported into the device. `None`: plain listeners only.
    pub certs: Option<PathBuf>,
    /// Firmware variants the embedded simulated device is started with although the
    /// profile does not declare them: a planted bug the run must catch.
    pub plant: Vec<String>,
    /// The executable that serves `sim` (default: this one; tests give the hil binary).
    pub sim_exe: Option<PathBuf>,
    /// How long a lost endpoint link is waited for (default [`RECONNECT_WAIT`]).
    pub reconnect_wait: Duration,
    /// Capture each case's packets on this interface, with its TLS secrets
    /// (`--capture`): the case's [`CaseResult::evidence`].
    pub capture: Option<crate::capture::Interface>,
}

/// The record of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub passed: bool,
    pub mismatches: Vec<crate::outcome::Mismatch>,
    pub harness_error: Option<String>,
    pub expected: Expected,
    pub findings: Vec<String>,
    /// Where SPEC lets the firmware choose: what this device chose
    /// (`expired intermediate: refused under expiry`), on a pass.
    pub chose: Vec<String>,
    pub observed: Option<Observed>,
    pub console: Vec<crate::device::console::ConsoleLine>,
    pub millis: u64,
    /// The same in microseconds.
    pub micros: u64,
    /// The device crashed or hung during the case (and was brought back, or not):
    /// what happened. Counted apart from failures and harness errors.
    pub crash: Option<String>,
    /// A harness error that running the case again on a fresh runner may cure (a
    /// lost link, a silent device, a runner that could not start); `false` for a
    /// profile that does not fit the device or a refused set-up step, which would
    /// only fail the same way again.
    pub retry: bool,
    /// The profile does not fit the device: what, and the field and fix, as
    /// `(key, text)` where equal keys mean the same misfit (the run stops after a
    /// few in a row).
    pub profile_misfit: Option<(String, String)>,
    /// With `--capture`: the case's packets and TLS key log (raw, unredacted; the pool
    /// writes them only for a failed or crashed case, and never into a record).
    #[serde(skip)]
    pub evidence: Option<crate::capture::Evidence>,
}

impl CaseResult {
    /// The result of a case the harness could not run at all (no device or server
    /// could be started for it): a harness error, with what the oracle expects of the
    /// case against a fake server.
    pub fn not_run(case: &Case, why: String, millis: u64) -> CaseResult {
        let pairs = case_settings(case, "192.0.2.1", Ports::NOMINAL);
        let prediction =
            oracle::predict_pairs(case, &pairs, &hil_oracle::model::DeviceFacts::default()).ok();
        CaseResult {
            id: case.id.clone(),
            passed: false,
            mismatches: Vec::new(),
            harness_error: Some(why),
            expected: prediction
                .as_ref()
                .map(|p| p.outcome.clone())
                .unwrap_or_else(|| oracle::expect(case, &SettingView::from_pairs(&pairs))),
            findings: prediction.map(|p| p.findings).unwrap_or_default(),
            chose: Vec::new(),
            observed: None,
            console: Vec::new(),
            millis,
            micros: millis * 1000,
            crash: None,
            retry: true,
            profile_misfit: None,
            evidence: None,
        }
    }
}

/// A rough bound of the device time (ms) a case spends waiting: the POP before SMTP
/// wait, and `smtp.timeout` when the server stalls (a scripted delay, hang, half line
/// or throttle) or the device is pointed at a listener of the other TLS kind. Used only
/// to start the longest cases first, so that their waits overlap with the rest.
pub fn device_wait_estimate(case: &Case) -> u64 {
    use hil_mail::faults::Action;
    let setting = |k: Key| {
        case.settings
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_str())
    };
    let number = |k: Key, default: u64| setting(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let mut ms = 0;
    if setting(Key::PopBeforeSmtpEnabled) == Some("on") {
        ms += number(Key::PopBeforeSmtpWait, 5) * 1000;
    }
    let stalls = case.server.faults.iter().any(|f| {
        matches!(
            f.action,
            Action::Delay { .. } | Action::Hang | Action::HalfLine | Action::Throttle { .. }
        )
    });
    let implicit = setting(Key::SmtpTls) == Some("smtps");
    let mismatched = (case.listener == ListenerKind::Tls) != implicit;
    if stalls || mismatched {
        ms += number(Key::SmtpTimeout, 60) * 1000;
    }
    ms
}

/// Where the device is pointed: the server address and the four ports.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub smtp: u16,
    pub smtp_ssl: u16,
    pub pop: u16,
    pub pop_ssl: u16,
}

impl Ports {
    /// The SPEC defaults, for predictions that need no real port.
    pub const NOMINAL: Ports = Ports {
        smtp: 25,
        smtp_ssl: 465,
        pop: 110,
        pop_ssl: 995,
    };
}

/// The settings applied for `case` after `reset`: the server address and ports, the
/// POP server when POP before SMTP is on, then the case's own settings (a case's value
/// of any of these replaces the runner's), leaving out every value that is already
/// the factory default: only what the case needs.
pub fn case_settings(case: &Case, server: &str, ports: Ports) -> Vec<(Key, String)> {
    let pop_on = case
        .settings
        .iter()
        .any(|(k, v)| *k == Key::PopBeforeSmtpEnabled && v == "on");
    let mut pairs = vec![
        (Key::SmtpServer, server.to_string()),
        (Key::SmtpPort, ports.smtp.to_string()),
        (Key::SmtpSslPort, ports.smtp_ssl.to_string()),
    ];
    if pop_on {
        pairs.extend([
            (Key::PopServer, server.to_string()),
            (Key::PopPort, ports.pop.to_string()),
            (Key::PopSslPort, ports.pop_ssl.to_string()),
        ]);
    }
    for (k, v) in &case.settings {
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => pairs.push((*k, v.clone())),
        }
    }
    pairs.retain(|(k, v)| {
        !hil_oracle::model::DEFAULTS
            .iter()
            .any(|(dk, dv)| dk == k && dv == v)
    });
    pairs
}

/// How long a lost device link is waited for by default: the endpoint is opened again
/// and again (with backoff) for this long before the run gives up on it.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(20);

/// Whether an endpoint console was ever opened by this process: the first open
/// fails at once (a wrong path or port is said straight away), every later one (a
/// reconnect after a lost link) waits up to `wait` (`--reconnect-wait`) for the link
/// to come back. Process-wide because the pool starts a fresh runner after a harness error.
static ENDPOINT_OPENED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Why a runner could not start. The kind says whether starting it again may help:
/// a configuration error (a profile, a zoo or an option that is wrong) fails the same
/// way every time, so the pool never retries it; a device, link or fake server that
/// cannot be brought up now may come up on a later attempt ([`StartError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The profile cannot be read or is not valid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The certificate zoo's manifest cannot be read.
    #[error(transparent)]
    Zoo(#[from] BuildError),
    /// A zoo certificate cannot serve TLS.
    #[error(transparent)]
    Certificate(#[from] hil_mail::tls::TlsError),
    /// The zoo's trust anchor cannot be read.
    #[error("{}: {source}", path.display())]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--bind {0} listens on every address: say which one the device should use with --server-address")]
    AnyAddress(BindAddr),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A fake server cannot listen (a port in use).
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The packet capture cannot start (`--capture`).
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    #[error("cannot find a closed port on {bind}: {source}")]
    ClosedPort {
        bind: BindAddr,
        source: std::io::Error,
    },
    /// The device cannot be reached.
    #[error(transparent)]
    Device(#[from] ReachError),
    /// Making the runner panicked (the pool catches it).
    #[error("starting the runner panicked: {0}")]
    Panicked(String),
}

impl StartError {
    /// Whether starting again may succeed: not for a configuration error.
    pub fn is_retryable(&self) -> bool {
        match self {
            StartError::Profile(_)
            | StartError::Zoo(_)
            | StartError::Certificate(_)
            | StartError::Root { .. }
            | StartError::AnyAddress(_)
            | StartError::Capture(_) => false,
            StartError::Runtime(_)
            | StartError::Listen(_)
            | StartError::ClosedPort { .. }
            | StartError::Panicked(_) => true,
            StartError::Device(e) => e.is_retryable(),
        }
    }
}

/// Why the device could not be reached: its simulated device did not start, or its
/// console could not be opened (or did not come back).
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("cannot find the hil executable: {0}")]
    Executable(#[source] std::io::Error),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The console cannot be opened (boxed: a profile misfit is large).
    #[error(transparent)]
    Console(Box<DriverError>),
    /// A link that was up before did not come back within `--reconnect-wait`.
    #[error("the link to {endpoint} did not come back within {waited_s:.1} s ({tries} attempts): {source}")]
    LinkLost {
        endpoint: String,
        waited_s: f64,
        tries: u32,
        source: Box<DriverError>,
    },
}

impl From<DriverError> for ReachError {
    fn from(e: DriverError) -> ReachError {
        ReachError::Console(Box::new(e))
    }
}

impl ReachError {
    /// Whether trying again may reach the device: not when its profile does not fit
    /// or the device refuses the login, nor when the program cannot be run.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReachError::Executable(_) => false,
            ReachError::Spawn(e) => e.is_retryable(),
            ReachError::Console(e) => !matches!(
                e.as_ref(),
                DriverError::Profile(_) | DriverError::Refused(_)
            ),
            ReachError::LinkLost { .. } => true,
        }
    }
}

/// A case needs a listener the runner does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoListener {
    /// A TLS listener with a certificate of the zoo (no zoo was given).
    #[error("no {} listener with certificate {cert:?}: give --certs (the zoo)", kind.name())]
    Tls { kind: ListenerKind, cert: String },
    /// A port whose connects are never answered: this system cannot make one.
    #[error("no silent port for the connect timeout: {0}")]
    Silent(String),
}

/// Opens the console at `ep`, waiting for a link that was up before and is lost.
fn open_endpoint(
    ep: &Endpoint,
    profile: Arc<Profile>,
    wait: Duration,
) -> Result<Console, ReachError> {
    use std::sync::atomic::Ordering;
    let was_up = ENDPOINT_OPENED.load(Ordering::SeqCst);
    let limit = if was_up { wait } else { Duration::ZERO };
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut tries = 0u32;
    loop {
        tries += 1;
        match Console::open(ep, Arc::clone(&profile)) {
            Ok(c) => {
                ENDPOINT_OPENED.store(true, Ordering::SeqCst);
                if was_up {
                    tracing::info!(
                        "reconnected to {} ({} attempt(s), {} ms)",
                        ep.describe(),
                        tries,
                        t0.elapsed().as_millis()
                    );
                }
                return Ok(c);
            }
            Err(e) if t0.elapsed() + pause > limit => {
                return Err(if was_up {
                    ReachError::LinkLost {
                        endpoint: ep.describe(),
                        waited_s: limit.as_secs_f64(),
                        tries,
                        source: Box::new(e),
                    }
                } else {
                    e.into()
                });
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// A device, the fake servers and the means to run cases against them.
pub struct Runner {
    rt: tokio::runtime::Runtime,
    server: SmtpServer,
    pop: Pop3Server,
    /// SMTP listener ports by kind and certificate (`""` for the plain one).
    ports: HashMap<(ListenerKind, String), u16>,
    /// POP3 listener ports by kind and certificate (`""` for the plain one).
    pop_ports: HashMap<(ListenerKind, String), u16>,
    /// The POP3 logins the SMTP server's POP-before-SMTP policy reads.
    logins: Arc<PopLogins>,
    /// The zoo's trust anchor (PEM), imported into the device for a case that asks.
    root_pem: Option<String>,
    server_address: String,
    closed_port: u16,
    /// Holds [`Runner::closed_port`] for the runner's life.
    _closed: ClosedPort,
    /// A port whose connects never complete (SPEC §3.2's connect timeout), kept
    /// for the runner's life; why there is none where the system cannot make one
    /// (the cases that need it are harness errors saying so).
    silent: Result<hil_mail::silent::SilentPort, String>,
    profile: Arc<Profile>,
    opts: RunOptions,
    /// What the servers' transcripts and the console log count time from.
    epoch: Instant,
    sim: Option<EmbeddedSim>,
    console: Option<Console>,
    /// With `--capture`: the packet capture of this runner's server ports, and the TLS
    /// secrets of its servers' handshakes.
    capture: Option<(crate::capture::Capture, Arc<hil_mail::tls::KeyLogLines>)>,
}

/// A port where nothing listens, held for as long as the value lives: a TCP socket
/// bound to it and never listening, so a connect is refused there (RST) and no other
/// socket can bind it (ours does not set SO_REUSEADDR). A port merely let go would be
/// handed to the next bind — another runner's listener, whose device would then
/// reach the wrong server.
struct ClosedPort {
    port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    fn reserve(ip: &BindAddr) -> std::io::Result<ClosedPort> {
        let addr = ip.socket(0);
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(addr)?;
        let port = socket.local_addr()?.port();
        Ok(ClosedPort {
            port,
            _socket: socket,
        })
    }
}

/// The fake servers' listeners of a runner: SMTP plain, then per zoo certificate a
/// STARTTLS and an implicit-TLS one; POP3 the same; on free ports, or SPEC's default
/// ports with `--default-ports` (the TLS ones for the `valid` certificate).
struct Listeners {
    listens: Vec<Listen>,
    keys: Vec<(ListenerKind, String)>,
    pop_listens: Vec<Pop3Listen>,
    pop_keys: Vec<(ListenerKind, String)>,
    /// The zoo's trust anchor (PEM).
    root_pem: Option<String>,
}

fn listeners(
    opts: &RunOptions,
    keylog: Option<&Arc<KeyLogLines>>,
) -> Result<Listeners, StartError> {
    let at = |port: u16| opts.bind.socket(port);
    // SPEC's default ports, or any free one.
    let default = |port: u16| if opts.default_ports { port } else { 0 };
    let mut listens = vec![Listen {
        kind: ListenerKind::Plain,
        bind: at(if opts.default_ports {
            25
        } else {
            opts.smtp_port
        }),
        identity: None,
    }];
    let mut keys = vec![(ListenerKind::Plain, String::new())];
    let mut pop_listens = vec![Pop3Listen {
        kind: ListenerKind::Plain,
        bind: at(default(110)),
        identity: None,
    }];
    let mut pop_keys = vec![(ListenerKind::Plain, String::new())];
    let mut root_pem = None;
    if let Some(dir) = &opts.certs {
        for name in zoo_names(dir)? {
            let mut identity = hil_mail::tls::load(
                &name,
                &dir.join(format!("{name}.crt")),
                &dir.join(format!("{name}.key")),
            )?;
            if let Some(log) = keylog {
                let log: Arc<KeyLogLines> = Arc::clone(log);
                identity = identity.with_key_log(log);
            }
            let valid = name == "valid";
            for kind in [ListenerKind::Starttls, ListenerKind::Tls] {
                let port = if valid && kind == ListenerKind::Tls {
                    default(465)
                } else {
                    0
                };
                listens.push(Listen {
                    kind,
                    bind: at(port),
                    identity: Some(identity.clone()),
                });
                keys.push((kind, name.clone()));
            }
            // The POP3 server presents the case's certificate too (SPEC §3.5:
            // POP over TLS applies the same checks).
            for kind in [ListenerKind::Starttls, ListenerKind::Tls] {
                let port = if valid && kind == ListenerKind::Tls {
                    default(995)
                } else {
                    0
                };
                pop_listens.push(Pop3Listen {
                    kind,
                    bind: at(port),
                    identity: Some(identity.clone()),
                });
                pop_keys.push((kind, name.clone()));
            }
        }
        let root = dir.join("root.crt");
        root_pem = Some(
            std::fs::read_to_string(&root)
                .map_err(|source| StartError::Root { path: root, source })?,
        );
    }
    Ok(Listeners {
        listens,
        keys,
        pop_listens,
        pop_keys,
        root_pem,
    })
}

/// The zoo's certificate names, from its manifest.
fn zoo_names(dir: &std::path::Path) -> Result<Vec<String>, BuildError> {
    Ok(hil_oracle::matrix::load_certs(dir)?.into_keys().collect())
}

impl Runner {
    /// Starts the fake servers and reaches the device.
    pub fn start(opts: RunOptions) -> Result<Runner, StartError> {
        let profile = match &opts.profile {
            Some(p) => Profile::load(p)?,
            None => Profile::parse("built-in sim.toml", SIM_PROFILE)?,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let time_scale = match opts.device {
            DeviceChoice::Sim { time_scale, .. } => time_scale,
            DeviceChoice::Endpoint(_) => opts.device_time_scale,
        };
        let keylog = opts
            .capture
            .as_ref()
            .map(|_| Arc::new(hil_mail::tls::KeyLogLines::default()));
        let Listeners {
            listens,
            keys,
            pop_listens,
            pop_keys,
            root_pem,
        } = listeners(&opts, keylog.as_ref())?;
        let logins = Arc::new(PopLogins::new(time_scale));
        // One time line for the servers' transcripts and the console log.
        let epoch = Instant::now();
        let server = rt.block_on(SmtpServer::start_with(
            listens,
            SmtpConfig::default(),
            ServerOptions {
                time_scale,
                pop_logins: Arc::clone(&logins),
                epoch: Some(epoch),
                max_kept_bytes: hil_mail::smtp_server::MAX_KEPT_BYTES,
            },
        ))?;
        let ports = keys
            .into_iter()
            .zip(server.listeners().iter().map(|(_, a)| a.port()))
            .collect();
        let pop_config = Pop3Config {
            accounts: vec![PopAccount {
                user: hil_oracle::model::POP_USER.into(),
                password: hil_oracle::model::POP_PASSWORD.into(),
            }],
            ..Pop3Config::default()
        };
        let pop = rt.block_on(Pop3Server::start_at(
            pop_listens,
            pop_config,
            time_scale,
            Arc::clone(&logins),
            epoch,
        ))?;
        let pop_ports = pop_keys
            .into_iter()
            .zip(pop.listeners().iter().map(|(_, a)| a.port()))
            .collect();
        let server_address = match (&opts.server_address, opts.bind.is_unspecified()) {
            (Some(a), _) => a.clone(),
            (None, false) => opts.bind.to_string(),
            (None, true) => return Err(StartError::AnyAddress(opts.bind.clone())),
        };
        let silent = rt
            .block_on(hil_mail::silent::SilentPort::open(opts.bind.socket(0)))
            .map_err(|e| e.to_string());
        let closed = ClosedPort::reserve(&opts.bind).map_err(|source| StartError::ClosedPort {
            bind: opts.bind.clone(),
            source,
        })?;
        let closed_port = closed.port;
        // Every port of this runner's servers (and its closed and silent ports): its
        // device's connections, and no one else's.
        let capture = match (&opts.capture, keylog) {
            (Some(iface), Some(log)) => {
                let mut ports: Vec<u16> =
                    server.listeners().iter().map(|(_, a)| a.port()).collect();
                ports.extend(pop.listeners().iter().map(|(_, a)| a.port()));
                ports.push(closed_port);
                ports.extend(silent.as_ref().map(|s| s.addr().port()));
                Some((crate::capture::Capture::start(iface, &ports)?, log))
            }
            _ => None,
        };
        let mut r = Runner {
            capture,
            rt,
            server,
            pop,
            ports,
            pop_ports,
            logins,
            root_pem,
            server_address,
            closed_port,
            _closed: closed,
            silent,
            profile: Arc::new(profile),
            opts,
            sim: None,
            console: None,
            epoch,
        };
        r.connect()?;
        Ok(r)
    }

    /// What the device says of itself: the data lines of the profile's `identify`
    /// operation (firmware version, serial number), at most 8 lines of 200
    /// characters; nothing when the profile has no `identify`, a line saying why when
    /// the device refused it.
    pub fn identity(&mut self) -> Vec<String> {
        if self.profile.template("identify").is_none() {
            return Vec::new();
        }
        let Some(con) = self.console.as_mut() else {
            return Vec::new();
        };
        let lines = match con.op("identify", &[], &[], &[]) {
            Ok(a) => a.data,
            Err(e) => vec![format!("identify: {e}")],
        };
        lines
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .take(8)
            .map(|l| l.chars().take(200).collect())
            .collect()
    }

    /// Every port of the runner's servers and what it is, for a capture's readers.
    fn port_names(&self) -> Vec<(u16, String)> {
        let mut out: Vec<(u16, String)> = self
            .ports
            .iter()
            .map(|((kind, cert), port)| {
                let cert = if cert.is_empty() {
                    String::new()
                } else {
                    format!(" (certificate {cert})")
                };
                (*port, format!("SMTP {}{cert}", kind.name()))
            })
            .collect();
        out.extend(self.pop_ports.iter().map(|((kind, cert), port)| {
            let cert = if cert.is_empty() {
                String::new()
            } else {
                format!(" (certificate {cert})")
            };
            (*port, format!("POP3 {}{cert}", kind.name()))
        }));
        out.push((self.closed_port, "nothing listening: closed".into()));
        if let Ok(s) = &self.silent {
            out.push((s.addr().port(), "connects never answered: silent".into()));
        }
        out.sort();
        out
    }

    /// The plain fake SMTP listener's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The profile's declared firmware variants.
    pub fn variants(&self) -> &[String] {
        &self.profile.variants
    }

    /// What the profile says of the firmware (variants, ranges, AUTH mechanisms).
    pub fn facts(&self) -> &hil_oracle::model::DeviceFacts {
        &self.profile.facts
    }

    fn connect(&mut self) -> Result<(), ReachError> {
        self.console = None;
        let endpoint = match &self.opts.device {
            DeviceChoice::Sim {
                time_scale,
                ref program,
            } => {
                self.sim = None;
                let (exe, sub) = match (program, &self.opts.sim_exe) {
                    (Some(p), _) => (p.clone(), None),
                    (None, Some(p)) => (p.clone(), Some("sim")),
                    (None, None) => (
                        std::env::current_exe().map_err(ReachError::Executable)?,
                        Some("sim"),
                    ),
                };
                let args = crate::device::embedded::args_for(
                    &self.profile,
                    *time_scale,
                    &self.opts.bind.socket(0).to_string(),
                    &self.opts.plant,
                );
                let sim = EmbeddedSim::spawn(
                    &exe,
                    sub,
                    &args,
                    Duration::from_millis(self.profile.timeouts.startup_ms),
                )?;
                let ep = Endpoint::Serial {
                    path: sim.console_path.clone(),
                    line: crate::device::LineSettings::default(),
                };
                self.sim = Some(sim);
                ep
            }
            DeviceChoice::Endpoint(ep) => {
                let ep = ep.clone();
                self.console = Some(open_endpoint(
                    &ep,
                    Arc::clone(&self.profile),
                    self.opts.reconnect_wait,
                )?);
                return Ok(());
            }
        };
        let mut console = Console::open_at(&endpoint, Arc::clone(&self.profile), self.epoch)?;
        console.set_pid(self.sim.as_ref().map(|s| s.pid()));
        self.console = Some(console);
        Ok(())
    }

    /// How much faster than wall time the device's time runs.
    pub fn time_scale(&self) -> f64 {
        match self.opts.device {
            DeviceChoice::Sim { time_scale, .. } => time_scale,
            DeviceChoice::Endpoint(_) => self.opts.device_time_scale,
        }
    }

    fn job_limit(&self) -> Duration {
        let scale = self.time_scale();
        Duration::from_millis((self.profile.timeouts.job_ms as f64 / scale) as u64 + 5_000)
    }

    /// The settings the runner applies for `case`: the server address and ports (the
    /// case's listener on `smtp.port`, or on `smtp.ssl_port` with smtps; a closed port
    /// on the other), the POP server, then the case's own settings.
    pub fn settings_for(&self, case: &Case) -> Result<Vec<(Key, String)>, NoListener> {
        let tls = case
            .settings
            .iter()
            .rev()
            .find(|(k, _)| *k == Key::SmtpTls)
            .map(|(_, v)| v.as_str())
            .unwrap_or("none");
        let pop_tls = case
            .settings
            .iter()
            .rev()
            .find(|(k, _)| *k == Key::PopTls)
            .map(|(_, v)| v.as_str())
            .unwrap_or("none");
        let listener = match case.target {
            Target::ClosedPort => self.closed_port,
            Target::SilentPort => match &self.silent {
                Ok(s) => s.addr().port(),
                Err(why) => return Err(NoListener::Silent(why.clone())),
            },
            Target::FakeServer => {
                let cert = match case.listener {
                    ListenerKind::Plain => String::new(),
                    _ => case
                        .cert
                        .as_ref()
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| "valid".into()),
                };
                *self
                    .ports
                    .get(&(case.listener, cert.clone()))
                    .ok_or(NoListener::Tls {
                        kind: case.listener,
                        cert,
                    })?
            }
        };
        let (port, ssl_port) = if tls == "smtps" {
            (self.closed_port, listener)
        } else {
            (listener, self.closed_port)
        };
        // The POP3 listener with the case's certificate (the zoo's valid one for a
        // case without one).
        let pop_cert = case
            .cert
            .as_ref()
            .map_or_else(|| "valid".to_string(), |c| c.name.clone());
        let pop_port = |k: ListenerKind| {
            let cert = if k == ListenerKind::Plain {
                String::new()
            } else {
                pop_cert.clone()
            };
            self.pop_ports
                .get(&(k, cert))
                .copied()
                .unwrap_or(self.closed_port)
        };
        let (pport, pssl) = match pop_tls {
            "pop3s" => (self.closed_port, pop_port(ListenerKind::Tls)),
            "stls" => (pop_port(ListenerKind::Starttls), self.closed_port),
            _ => (pop_port(ListenerKind::Plain), self.closed_port),
        };
        let pairs = case_settings(
            case,
            &self.server_address,
            Ports {
                smtp: port,
                smtp_ssl: ssl_port,
                pop: pport,
                pop_ssl: pssl,
            },
        );
        Ok(pairs)
    }

    /// Runs one case and records all it saw (its events in a `case{id}` span).
    pub fn run_case(&mut self, case: &Case) -> CaseResult {
        let _span = tracing::info_span!("case", id = %case.id).entered();
        let started = Instant::now();
        let pairs = match self.settings_for(case) {
            Ok(p) => p,
            Err(e) => {
                let mut r = self.harness_failure(
                    case,
                    oracle::expect(case, &SettingView::default()),
                    Vec::new(),
                    e.to_string(),
                    started,
                );
                r.retry = false;
                return r;
            }
        };
        let prediction = match oracle::predict_pairs(case, &pairs, &self.profile.facts) {
            Ok(p) => p,
            Err(e) => {
                let mut r = self.harness_failure(
                    case,
                    oracle::expect(
                        case,
                        &SettingView::from_pairs_for(&self.profile.facts, &pairs),
                    ),
                    Vec::new(),
                    format!("the oracle cannot predict this case: {e}"),
                    started,
                );
                r.retry = false;
                return r;
            }
        };
        let expected = prediction.outcome.clone();
        if self.console.is_none() {
            if let Err(e) = self.connect() {
                let mut r = self.harness_failure(
                    case,
                    expected,
                    prediction.findings,
                    format!("cannot reach the device: {e}"),
                    started,
                );
                r.retry = e.is_retryable();
                return r;
            }
        }
        self.server.set_config(case.server.clone());
        self.pop.set_config(case.pop.clone());
        let _ = self.server.take();
        let _ = self.pop.take();
        // No POP login of an earlier case may open this case's relay.
        self.logins.clear();
        if let Some((cap, log)) = &self.capture {
            cap.begin();
            let _ = log.take();
        }
        let observed = self.drive(case, &pairs);
        let evidence = self.capture.as_ref().map(|(cap, log)| {
            let packets = cap.take();
            crate::capture::Evidence {
                interface: cap.interface().describe(),
                ports: self.port_names(),
                packets,
                keylog: log.take(),
            }
        });
        let mut log = self
            .console
            .as_mut()
            .map(|c| c.take_log())
            .unwrap_or_default();
        match observed {
            Ok(observed) => {
                let judging = verdict::Judging {
                    time_scale: self.time_scale(),
                    synthetic_scan: self.profile.synthetic_scan,
                    profile: Some(&self.profile),
                };
                let j = verdict::judge(&prediction, &observed, &judging);
                let mut findings = prediction.findings;
                if let Some(k) = observed.secret_shown {
                    findings.push(format!(
                        "the console reveals a secret: get {k} shows it in clear"
                    ));
                }
                CaseResult {
                    id: case.id.clone(),
                    passed: j.mismatches.is_empty(),
                    mismatches: j.mismatches,
                    chose: j.chose,
                    harness_error: None,
                    expected: j.expected,
                    findings,
                    observed: Some(observed),
                    console: std::mem::take(&mut log),
                    millis: started.elapsed().as_millis() as u64,
                    micros: started.elapsed().as_micros() as u64,
                    crash: None,
                    retry: false,
                    profile_misfit: None,
                    evidence,
                }
            }
            Err(e) => {
                let mut r =
                    self.driver_failure(case, expected, prediction.findings, e, log, started);
                r.evidence = evidence;
                r
            }
        }
    }

    /// A case the console driver could not finish: a crash (the device is back, or
    /// is reopened before the next case), a lost link or silent device (retried on a
    /// fresh runner), a profile that does not fit (not retried: it would fail the
    /// same way), a refused set-up step.
    fn driver_failure(
        &mut self,
        case: &Case,
        expected: Expected,
        findings: Vec<String>,
        e: DriverError,
        log: Vec<crate::device::console::ConsoleLine>,
        started: Instant,
    ) -> CaseResult {
        // The link may be gone, or the console left mid-dialogue: reopen it (restart
        // the sim) before the next case.
        match &e {
            DriverError::Link(_) | DriverError::Timeout(_) | DriverError::Profile(_) => {
                self.console = None;
            }
            DriverError::Crash(why) if why.contains(" and did not") || why.contains("but:") => {
                self.console = None;
            }
            _ => {}
        }
        if let DriverError::Crash(why) = &e {
            let mut r = self.harness_failure(case, expected, findings, String::new(), started);
            r.harness_error = None;
            r.crash = Some(why.clone());
            r.console = log;
            r.retry = false;
            return r;
        }
        let mut r = self.harness_failure(case, expected, findings, e.to_string(), started);
        r.retry = e.is_retryable();
        if let DriverError::Profile(m) = &e {
            r.profile_misfit = Some((
                format!("{}|{}|{:?}", m.op, m.field, m.trait_),
                m.to_string(),
            ));
        }
        r.console = log;
        r
    }

    fn harness_failure(
        &mut self,
        case: &Case,
        expected: Expected,
        findings: Vec<String>,
        why: String,
        started: Instant,
    ) -> CaseResult {
        let sim_died = self.sim.as_mut().is_some_and(|s| !s.is_alive());
        let why = if sim_died {
            format!("{why} (the simulated device exited)")
        } else {
            why
        };
        CaseResult {
            id: case.id.clone(),
            passed: false,
            mismatches: Vec::new(),
            harness_error: Some(why),
            expected,
            findings,
            chose: Vec::new(),
            observed: None,
            console: Vec::new(),
            millis: started.elapsed().as_millis() as u64,
            micros: started.elapsed().as_micros() as u64,
            crash: None,
            retry: true,
            profile_misfit: None,
            evidence: None,
        }
    }

    fn drive(&mut self, case: &Case, pairs: &[(Key, String)]) -> Result<Observed, DriverError> {
        let limit = self.job_limit();
        let root = if case.import_ca {
            self.root_pem.clone()
        } else {
            None
        };
        let Some(con) = self.console.as_mut() else {
            return Err(DriverError::Link("no console".into()));
        };
        let _ = con.take_log();
        con.op_ok("reset", &[], &[])?;
        if let Some(pem) = root {
            let a = con.import_cert(&pem)?;
            if let crate::device::Status::Err { class, detail } = a.status {
                return Err(DriverError::Refused(format!(
                    "the device refused the zoo's root certificate: {class} {detail}"
                )));
            }
        }
        let a = con.apply(pairs, SECRET_KEYS)?;
        if let crate::device::Status::Err { class, detail } = a.status {
            // Nothing may have been stored: a key the apply changed still holds its
            // default. `smtp.port` is one: the runner always sets it (to a listener's
            // or the closed port).
            let probe = Key::SmtpPort;
            let value = con.get(probe)?;
            return Ok(Observed {
                trigger: TriggerAnswer::Refused {
                    class: "apply".into(),
                    detail: String::new(),
                },
                end: None,
                report: None,
                server: Observations::default(),
                pop: Vec::new(),
                elapsed_ms: 0,
                apply_refused: Some((class, detail)),
                after_refusal: Some((probe, value)),
                secret_shown: None,
                downloaded: None,
            });
        }
        // SPEC §6: passwords are write-only; `get` must not show one in clear.
        let secret_shown = match pairs.iter().find(|(k, v)| k.is_secret() && !v.is_empty()) {
            Some((k, v)) => match con.get(*k) {
                Ok(got) => (got == *v).then_some(*k),
                // Refusing to show it, or answering in a form the profile cannot
                // read, reveals nothing.
                Err(DriverError::Refused(_) | DriverError::Profile(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        for u in &case.users {
            con.op_ok(
                "user_add",
                &[
                    ("name", &u.name),
                    ("password", &u.password),
                    ("address", &u.address),
                ],
                &["password"],
            )?;
        }
        for n in &case.notify {
            con.op_ok("notify_add", &[("address", n)], &[])?;
        }
        let t0 = Instant::now();
        let trigger = match &case.trigger {
            TriggerSpec::Scan { to, size_kb, user } => {
                let to = to.join(",");
                let kb = size_kb.to_string();
                match user {
                    Some(u) => con.trigger(
                        "scan_as_user",
                        &[("to", &to), ("size_kb", &kb), ("user", u)],
                    )?,
                    None => con.trigger("scan", &[("to", &to), ("size_kb", &kb)])?,
                }
            }
            TriggerSpec::Alert(kind) => {
                let k = con.profile().alert_kind(kind).to_string();
                con.trigger("alert", &[("kind", &k)])?
            }
            TriggerSpec::Counter => con.trigger("counter", &[])?,
        };
        let (end, report, elapsed) = match trigger {
            TriggerAnswer::Job(id) => {
                let end = con.wait_job(id, limit)?;
                let elapsed = t0.elapsed();
                (Some(end), Some(con.job_report(id)?), elapsed)
            }
            TriggerAnswer::Refused { .. } => (None, None, t0.elapsed()),
        };
        self.server.wait_idle(Duration::from_secs(3));
        let server = self.server.take();
        // A download URL in the mail (SPEC §4): fetch it while the device keeps it.
        let downloaded = server
            .messages
            .first()
            .and_then(|m| crate::verdict::download_url(&m.data))
            .map(|url| crate::verdict::http_get(&url, Duration::from_secs(5)));
        Ok(Observed {
            trigger,
            end,
            report,
            server,
            pop: self.pop.take(),
            elapsed_ms: elapsed.as_millis() as u64,
            apply_refused: None,
            after_refusal: None,
            secret_shown,
            downloaded,
        })
    }

    /// Shuts the runtime down (the embedded sim is killed on drop).
    pub fn shutdown(self) {
        self.rt.shutdown_timeout(Duration::from_millis(200));
    }
}

/// Prints the story of a failed case: what differed, then everything seen.
pub fn describe_failure(r: &CaseResult) -> String {
    let mut s = String::new();
    if let Some(e) = &r.harness_error {
        s.push_str(&format!("    harness error: {e}\n"));
    }
    for m in &r.mismatches {
        s.push_str(&format!("    - {m}\n"));
    }
    s.push_str(&format!(
        "    expected: {}\n",
        expected_outcome(&r.expected).text
    ));
    if let Some(o) = &r.observed {
        s.push_str(&format!(
            "    device: {}\n",
            crate::verdict::answer_words(&o.trigger, o.end.as_ref())
        ));
        for c in &o.server.connections {
            s.push_str(&format!("    server connection {} ({}):\n", c.id, c.peer));
            for e in &c.transcript {
                s.push_str(&format!(
                    "      {:>6}ms {}: {}\n",
                    e.t_ms,
                    dir_letter(e.dir),
                    e.text
                ));
            }
        }
    }
    if !r.console.is_empty() {
        s.push_str("    console:\n");
        for l in &r.console {
            s.push_str(&format!("      {:>6}ms {:?}: {}\n", l.t_ms, l.dir, l.text));
        }
    }
    s
}

/// `value` masked when `secret`.
fn masked(secret: bool, value: &str) -> String {
    if secret {
        "***".to_string()
    } else {
        value.to_string()
    }
}

/// Whether a matrix dimension's value is a credential: the dimension sets a secret
/// setting, or its name says so.
fn secret_dim(dim: Dim) -> bool {
    let name = dim.as_str();
    name.parse::<Key>().is_ok_and(Key::is_secret)
        || name.ends_with("password")
        || name.ends_with("token")
}

/// The server side of a case, typed and in words.
fn scenario_of(case: &Case) -> crate::record::Scenario {
    let mut sc = crate::record::Scenario::default();
    let mut parts = vec![match case.target {
        Target::ClosedPort => {
            sc.target = "closed_port".into();
            "nothing listening".to_string()
        }
        Target::SilentPort => {
            sc.target = "silent_port".into();
            "a port whose connects are never answered".to_string()
        }
        Target::FakeServer => {
            sc.target = "fake_server".into();
            sc.listener = Some(case.listener.name().to_string());
            format!("the fake SMTP server's {} listener", case.listener.name())
        }
    }];
    if let Some(c) = &case.cert {
        sc.certificate = Some(c.name.to_string());
        parts.push(format!("certificate {}", c.name));
    }
    if let Some(f) = case.dims.get(&Dim::ServerFault).filter(|f| *f != "none") {
        sc.fault = Some(f.to_string());
        parts.push(format!("server.fault {f}"));
    }
    let srv = &case.server;
    if !srv.auth.is_empty() {
        let m: Vec<&str> = srv.auth.iter().map(|m| m.name()).collect();
        sc.auth = m.iter().map(|m| m.to_string()).collect();
        parts.push(format!("AUTH {}", m.join(" ")));
    }
    if srv.policy.require_auth {
        sc.require_auth = true;
        parts.push("AUTH required".into());
    }
    if let Some(w) = srv.policy.pop_before_smtp_window_s {
        sc.pop_before_smtp_window_s = Some(w);
        parts.push(format!("relays only within {w} s of a POP login"));
    }
    if let Some(m) = srv.policy.max_size {
        sc.max_size = Some(m);
        parts.push(format!("messages up to {m} bytes"));
    }
    for f in &srv.faults {
        if let Ok(v) = serde_json::to_value(f) {
            sc.faults.push(v);
        }
        parts.push(format!("fault at {}: {}", f.step.name(), f.action));
    }
    sc.text = parts.join("; ");
    sc
}

/// The typed form of what the oracle expects, with its words.
pub fn expected_outcome(e: &Expected) -> Outcome {
    match e {
        Expected::SettingsRefused { key } => {
            let mut o = Outcome::new(
                Ending::SettingsRefused,
                Some("config"),
                format!("the settings refused with config, naming {key}; nothing stored"),
            );
            o.key = Some(key.to_string());
            o
        }
        Expected::Refused { class } => Outcome::new(
            Ending::Refused,
            Some(class),
            format!("the trigger refused at once with {class}"),
        ),
        Expected::Failed {
            class,
            connects,
            stored,
            detail,
            wait_ms,
        } => {
            let mut text = format!("the job fails with {class}");
            if let Some(d) = detail {
                text.push_str(&format!(", its detail carrying {d}"));
            }
            if let Some(w) = wait_ms {
                text.push_str(&format!(", after waiting {w} ms"));
            }
            text.push_str(match (connects, stored) {
                (false, _) => "; no SMTP connection",
                (true, false) => "; nothing stored at the server",
                (true, true) => "; the server holds the message",
            });
            let mut o = Outcome::new(Ending::Failed, Some(class), text);
            o.connects = Some(*connects);
            o.stored = Some(*stored);
            o.detail = detail.clone();
            o.wait_ms = *wait_ms;
            o
        }
        Expected::Delivered(d) => {
            let mut text = format!(
                "the mail delivered: MAIL FROM <{}> to {} over TLS {}, AUTH {}",
                d.mail_from,
                d.accepted
                    .iter()
                    .map(|a| format!("<{a}>"))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.tls,
                d.auth.unwrap_or("none")
            );
            if let Some(max) = d.fragmented {
                text.push_str(&format!(", split into fragments of at most {max} bytes"));
            }
            if d.url.is_some() {
                text.push_str(", with a download URL");
            }
            if !d.refused.is_empty() {
                text.push_str(&format!(", {} recipient(s) refused", d.refused.len()));
            }
            let mut o = Outcome::new(Ending::Delivered, None, text);
            o.delivery = serde_json::to_value(d).ok();
            o
        }
    }
}

/// The typed form of what a case saw, with its words.
pub fn observed_outcome(obs: Option<&Observed>) -> Outcome {
    let Some(o) = obs else {
        return Outcome::new(
            Ending::NotRun,
            None,
            "nothing (the harness could not run the case)".into(),
        );
    };
    let at_server = format!(
        "; {} connection(s), {} message(s) at the server",
        o.server.connections.len(),
        o.server.messages.len()
    );
    let mut out = if let Some((class, detail)) = &o.apply_refused {
        let mut out = Outcome::new(
            Ending::SettingsRefused,
            Some(class),
            format!("the settings refused with {class}: {detail}"),
        );
        out.detail = Some(detail.clone());
        out
    } else {
        let words = crate::verdict::answer_words(&o.trigger, o.end.as_ref());
        let mut out = match (&o.trigger, &o.end) {
            (TriggerAnswer::Refused { class, detail }, _) => {
                let mut out = Outcome::new(Ending::Refused, Some(class), words);
                out.detail = Some(detail.clone());
                out
            }
            (TriggerAnswer::Job(_), Some(crate::device::JobEnd::Done)) => {
                Outcome::new(Ending::Delivered, None, words)
            }
            (TriggerAnswer::Job(_), Some(crate::device::JobEnd::Failed { class, detail })) => {
                let mut out = Outcome::new(Ending::Failed, Some(class), words);
                out.detail = Some(detail.clone());
                out
            }
            (TriggerAnswer::Job(_), None) => Outcome::new(Ending::NoEnd, None, words),
        };
        if let TriggerAnswer::Job(n) = o.trigger {
            out.job = Some(n);
            out.elapsed_ms = Some(o.elapsed_ms);
        }
        out
    };
    out.text.push_str(&at_server);
    out.connections = Some(o.server.connections.len());
    out.messages = Some(o.server.messages.len());
    out
}

fn dir_letter(d: hil_mail::smtp::Dir) -> &'static str {
    match d {
        hil_mail::smtp::Dir::C => "C",
        hil_mail::smtp::Dir::S => "S",
        hil_mail::smtp::Dir::Note => "Note",
    }
}

fn dir_word(d: hil_mail::smtp::Dir) -> &'static str {
    match d {
        hil_mail::smtp::Dir::C => "client",
        hil_mail::smtp::Dir::S => "server",
        hil_mail::smtp::Dir::Note => "note",
    }
}

fn console_word(d: crate::device::console::ConsoleDir) -> &'static str {
    use crate::device::console::ConsoleDir;
    match d {
        ConsoleDir::H => "harness",
        ConsoleDir::D => "device",
        ConsoleDir::N => "note",
    }
}

/// The report's record of a case and its result (secrets masked).
/// A connection's fired faults and met policies in words: `rcpt #2: reply 450 …`.
fn fired_words(f: &[hil_mail::faults::FiredFault]) -> Vec<String> {
    f.iter()
        .map(|f| format!("{} #{}: {}", f.step, f.occurrence, f.action))
        .collect()
}

pub fn to_record(case: &Case, r: &CaseResult, attempts: u32) -> crate::record::Record {
    use crate::record::{Line, Record, Transcript, Verdict};
    let verdict = match (&r.crash, &r.harness_error, r.passed) {
        (Some(_), _, _) => Verdict::Crash,
        (None, Some(_), _) => Verdict::HarnessError,
        (None, None, true) => Verdict::Pass,
        (None, None, false) => Verdict::Fail,
    };
    let mut transcripts = Vec::new();
    if let Some(o) = &r.observed {
        for c in &o.pop {
            transcripts.push(Transcript {
                server: "pop3".into(),
                listener: c.listener.clone(),
                lines: c
                    .transcript
                    .iter()
                    .map(|e| Line {
                        ms: e.t_ms,
                        dir: dir_word(e.dir).into(),
                        text: e.text.clone(),
                    })
                    .collect(),
                fired: fired_words(&c.fired_faults),
            });
        }
        for c in &o.server.connections {
            transcripts.push(Transcript {
                server: "smtp".into(),
                listener: c.listener.clone(),
                lines: c
                    .transcript
                    .iter()
                    .map(|e| Line {
                        ms: e.t_ms,
                        dir: dir_word(e.dir).into(),
                        text: e.text.clone(),
                    })
                    .collect(),
                fired: fired_words(&c.fired_faults),
            });
        }
    }
    let mut record = Record {
        schema_version: crate::record::SCHEMA_VERSION,
        id: case.id.clone(),
        verdict,
        section: case.section.clone(),
        dims: case
            .dims
            .iter()
            .map(|(k, v)| (k.to_string(), masked(secret_dim(*k), v)))
            .collect(),
        settings: case
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), masked(k.is_secret(), v)))
            .collect(),
        scenario: scenario_of(case),
        expected: expected_outcome(&r.expected),
        observed: observed_outcome(r.observed.as_ref()),
        mismatches: r.mismatches.clone(),
        signature: None,
        harness_error: r.harness_error.clone(),
        crash: r.crash.clone(),
        findings: r.findings.clone(),
        latitude: r.chose.clone(),
        transcripts,
        console: r
            .console
            .iter()
            .map(|l| Line {
                ms: l.t_ms,
                dir: console_word(l.dir).into(),
                text: l.text.clone(),
            })
            .collect(),
        attempts,
        millis: r.millis,
        micros: r.micros,
        evidence: None,
    };
    record.signature = crate::triage::Signature::of(&record).map(|s| s.key());
    record
}
