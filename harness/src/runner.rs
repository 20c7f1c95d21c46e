//! The runner: for each case, set the fake server to the case's scenario, bring the
//! device to a known state over its console (reset, then only the case's settings),
//! trigger the job, wait for its end, collect what the server saw, ask the oracle,
//! compare, and keep everything the case saw.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::device::embedded::EmbeddedSim;
use crate::device::{Console, DriverError, Endpoint, Profile, TriggerAnswer};
use crate::model::{Case, SettingView, Target, TriggerSpec, SECRET_KEYS};
use crate::oracle::{self, Expected};
use crate::smtp::SmtpConfig;
use crate::smtp_server::SmtpServer;
use crate::verdict::{self, Observed};

/// The reference dialect's profile, built in so `hil run` works from any directory.
pub const SIM_PROFILE: &str = include_str!("../../fixtures/devices/sim.toml");

/// Which device to drive.
#[derive(Debug, Clone)]
pub enum DeviceChoice {
    /// The simulated device embedded in this binary, started on a pty.
    Sim { time_scale: f64 },
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
    pub bind: IpAddr,
    /// The SMTP server port (0: any free port).
    pub smtp_port: u16,
    /// The server address given to the device (default: the bind address).
    pub server_address: Option<String>,
    pub filter: Option<String>,
    pub verbose: bool,
    /// The time scale of an already-running device (1 for hardware).
    pub device_time_scale: f64,
}

/// The record of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub passed: bool,
    pub mismatches: Vec<String>,
    pub harness_error: Option<String>,
    pub expected: Expected,
    pub observed: Option<Observed>,
    pub console: Vec<crate::device::console::ConsoleLine>,
    pub millis: u64,
}

impl CaseResult {
    /// The result of a case the harness could not run at all (no device or server
    /// could be started for it): a harness error, with what the oracle expects of the
    /// case against a fake server.
    pub fn not_run(case: &Case, why: String, millis: u64) -> CaseResult {
        let pairs = settings_with("the fake server", 25, case);
        CaseResult {
            id: case.id.clone(),
            passed: false,
            mismatches: Vec::new(),
            harness_error: Some(why),
            expected: oracle::expect(case, &SettingView::from_pairs(&pairs)),
            observed: None,
            console: Vec::new(),
            millis,
        }
    }
}

/// The server address and port, then the case's own settings (a case's value of
/// either replaces the runner's).
fn settings_with(server: &str, port: u16, case: &Case) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("smtp.server".to_string(), server.to_string()),
        ("smtp.port".to_string(), port.to_string()),
    ];
    for (k, v) in &case.settings {
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => pairs.push((k.clone(), v.clone())),
        }
    }
    pairs
}

/// A device, a fake server and the means to run cases against them.
pub struct Runner {
    rt: tokio::runtime::Runtime,
    server: SmtpServer,
    server_address: String,
    closed_port: u16,
    profile: Arc<Profile>,
    opts: RunOptions,
    sim: Option<EmbeddedSim>,
    console: Option<Console>,
}

fn free_closed_port(ip: IpAddr) -> std::io::Result<u16> {
    // Bind a port, note it, and let it go: nothing listens there afterwards.
    let l = TcpListener::bind(SocketAddr::new(ip, 0))?;
    Ok(l.local_addr()?.port())
}

impl Runner {
    /// Starts the fake server and reaches the device.
    pub fn start(opts: RunOptions) -> Result<Runner, String> {
        let profile = match &opts.profile {
            Some(p) => Profile::load(p).map_err(|e| e.to_string())?,
            None => Profile::parse("built-in sim.toml", SIM_PROFILE).map_err(|e| e.to_string())?,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let bind = SocketAddr::new(opts.bind, opts.smtp_port);
        let server = rt
            .block_on(SmtpServer::start(bind, SmtpConfig::default()))
            .map_err(|e| e.to_string())?;
        let server_address = match (&opts.server_address, opts.bind.is_unspecified()) {
            (Some(a), _) => a.clone(),
            (None, false) => opts.bind.to_string(),
            (None, true) => {
                return Err(format!(
                    "--bind {} listens on every address: say which one the device should use with --server-address",
                    opts.bind
                ))
            }
        };
        let closed_port = free_closed_port(opts.bind)
            .map_err(|e| format!("cannot find a closed port on {}: {e}", opts.bind))?;
        let mut r = Runner {
            rt,
            server,
            server_address,
            closed_port,
            profile: Arc::new(profile),
            opts,
            sim: None,
            console: None,
        };
        r.connect()?;
        Ok(r)
    }

    /// The fake SMTP server's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn connect(&mut self) -> Result<(), String> {
        self.console = None;
        let endpoint = match &self.opts.device {
            DeviceChoice::Sim { time_scale } => {
                self.sim = None;
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot find the hil executable: {e}"))?;
                let mut args = vec!["--time-scale".to_string(), time_scale.to_string()];
                for v in &self.profile.variants {
                    args.extend(["--variant".to_string(), v.clone()]);
                }
                let sim = EmbeddedSim::spawn(
                    &exe,
                    &args,
                    Duration::from_millis(self.profile.timeouts.startup_ms),
                )?;
                let ep = Endpoint::Serial {
                    path: sim.console_path.clone(),
                    baud: 115_200,
                };
                self.sim = Some(sim);
                ep
            }
            DeviceChoice::Endpoint(ep) => ep.clone(),
        };
        let console =
            Console::open(&endpoint, Arc::clone(&self.profile)).map_err(|e| e.to_string())?;
        self.console = Some(console);
        Ok(())
    }

    /// How much faster than wall time the device's time runs.
    pub fn time_scale(&self) -> f64 {
        match self.opts.device {
            DeviceChoice::Sim { time_scale } => time_scale,
            DeviceChoice::Endpoint(_) => self.opts.device_time_scale,
        }
    }

    fn job_limit(&self) -> Duration {
        let scale = self.time_scale();
        Duration::from_millis((self.profile.timeouts.job_ms as f64 / scale) as u64 + 5_000)
    }

    /// The settings the runner applies for `case`: the server address and port,
    /// then the case's own.
    pub fn settings_for(&self, case: &Case) -> Vec<(String, String)> {
        let port = match case.target {
            Target::FakeServer => self.server.addr().port(),
            Target::ClosedPort => self.closed_port,
        };
        settings_with(&self.server_address, port, case)
    }

    /// Runs one case and records all it saw.
    pub fn run_case(&mut self, case: &Case) -> CaseResult {
        let started = Instant::now();
        let pairs = self.settings_for(case);
        let expected = oracle::expect(case, &SettingView::from_pairs(&pairs));
        if self.console.is_none() {
            if let Err(e) = self.connect() {
                return self.harness_failure(
                    case,
                    expected,
                    format!("cannot reach the device: {e}"),
                    started,
                );
            }
        }
        self.server.set_config(case.server.clone());
        let _ = self.server.take();
        let observed = self.drive(case, &pairs);
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
                };
                let mismatches = verdict::compare(&expected, &observed, &judging);
                CaseResult {
                    id: case.id.clone(),
                    passed: mismatches.is_empty(),
                    mismatches,
                    harness_error: None,
                    expected,
                    observed: Some(observed),
                    console: std::mem::take(&mut log),
                    millis: started.elapsed().as_millis() as u64,
                }
            }
            Err(e) => {
                // The link may be gone: reconnect (restart the sim) before the next case.
                if matches!(e, DriverError::Link(_) | DriverError::Timeout(_)) {
                    self.console = None;
                }
                let mut r = self.harness_failure(case, expected, e.to_string(), started);
                r.console = log;
                r
            }
        }
    }

    fn harness_failure(
        &mut self,
        case: &Case,
        expected: Expected,
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
            observed: None,
            console: Vec::new(),
            millis: started.elapsed().as_millis() as u64,
        }
    }

    fn drive(&mut self, case: &Case, pairs: &[(String, String)]) -> Result<Observed, DriverError> {
        let limit = self.job_limit();
        let Some(con) = self.console.as_mut() else {
            return Err(DriverError::Link("no console".into()));
        };
        let _ = con.take_log();
        con.op_ok("reset", &[], &[])?;
        let a = con.apply(pairs, SECRET_KEYS)?;
        if let crate::device::Status::Err { class, detail } = a.status {
            return Err(DriverError::Unexpected(format!(
                "the device refused the case's settings: {class} {detail}"
            )));
        }
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
        Ok(Observed {
            trigger,
            end,
            report,
            server: self.server.take(),
            elapsed_ms: elapsed.as_millis() as u64,
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
    s.push_str(&format!("    expected: {:?}\n", r.expected));
    if let Some(o) = &r.observed {
        s.push_str(&format!(
            "    device: trigger {:?}, end {:?}\n",
            o.trigger, o.end
        ));
        for c in &o.server.connections {
            s.push_str(&format!("    server connection {} ({}):\n", c.id, c.peer));
            for e in &c.transcript {
                s.push_str(&format!("      {:>6}ms {:?}: {}\n", e.t_ms, e.dir, e.text));
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

/// `value` masked when `key` holds a credential.
fn masked(key: &str, value: &str) -> String {
    if SECRET_KEYS.contains(&key) || key.ends_with("password") || key.ends_with("token") {
        "***".to_string()
    } else {
        value.to_string()
    }
}

/// The report's record of a case and its result (secrets masked).
pub fn to_record(case: &Case, r: &CaseResult, attempts: u32) -> crate::record::Record {
    use crate::record::{Record, Transcript, Verdict};
    let verdict = match (&r.harness_error, r.passed) {
        (Some(_), _) => Verdict::HarnessError,
        (None, true) => Verdict::Pass,
        (None, false) => Verdict::Fail,
    };
    let observed = match &r.observed {
        None => "nothing (the harness could not run the case)".to_string(),
        Some(o) => {
            let end = match (&o.trigger, &o.end) {
                (TriggerAnswer::Refused { class, detail }, _) => {
                    format!("trigger refused: {class} {detail}")
                }
                (_, Some(crate::device::JobEnd::Done)) => "job done".to_string(),
                (_, Some(crate::device::JobEnd::Failed { class, detail })) => {
                    format!("job failed: {class} {detail}")
                }
                (_, None) => "no job end".to_string(),
            };
            format!(
                "{end}; {} connection(s), {} message(s) at the server",
                o.server.connections.len(),
                o.server.messages.len()
            )
        }
    };
    let mut transcripts = Vec::new();
    if let Some(o) = &r.observed {
        for c in &o.server.connections {
            transcripts.push(Transcript {
                server: "smtp".into(),
                listener: c.listener.clone(),
                lines: c
                    .transcript
                    .iter()
                    .map(|e| format!("{:>6}ms {:?}: {}", e.t_ms, e.dir, e.text))
                    .collect(),
            });
        }
    }
    Record {
        id: case.id.clone(),
        verdict,
        section: case.section.clone(),
        dims: case
            .dims
            .iter()
            .map(|(k, v)| (k.clone(), masked(k, v)))
            .collect(),
        settings: case
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), masked(k, v)))
            .collect(),
        scenario: format!("{:?}", case.target),
        expected: format!("{:?}", r.expected),
        observed,
        mismatches: r.mismatches.clone(),
        harness_error: r.harness_error.clone(),
        findings: Vec::new(),
        transcripts,
        console: r
            .console
            .iter()
            .map(|l| format!("{:>6}ms {:?}: {}", l.t_ms, l.dir, l.text))
            .collect(),
        attempts,
        millis: r.millis,
    }
}
