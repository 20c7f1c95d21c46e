//! `hil profile probe`: runs each operation of a profile once against the real
//! console — reset, get, apply (plain values, on/off words, choice words, a value
//! with a space, then an invalid value), user add, notify add, cert import, the
//! clock, each trigger against a fake SMTP server, a job's end and report, and a job
//! that fails — and prints every line received with how the driver classified it
//! and which profile field matched. It stops at the first operation the profile
//! cannot express and names the console trait it misses, the field and the fix.
//!
//! This is the first thing to run with a new prototype: a profile that passes the
//! probe can run cases; `hil bench-setup` then checks the network, and a pairwise
//! run tests the firmware.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hil_mail::netaddr::BindAddr;
use hil_mail::smtp::{ListenerKind, SmtpConfig};
use hil_mail::smtp_server::{Listen, ServerOptions, SmtpServer};

use crate::device::console::{ConsoleDir, Traced};
use crate::device::diagnose::{Mismatch, Trait};
use crate::device::embedded::EmbeddedSim;
use crate::device::profile::{Echo, Profile, SPEC_CLASSES, SPEC_STATES};
use crate::device::{Console, DriverError, Endpoint, JobEnd, Status, TriggerAnswer};
use hil_oracle::model::Key;

/// Where the device is.
#[derive(Debug, Clone)]
pub enum ProbeDevice {
    /// The embedded simulated device (`program`: `None` is `hil sim`).
    Sim {
        program: Option<PathBuf>,
        time_scale: f64,
    },
    Endpoint(Endpoint),
}

/// What `hil profile probe` is given.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub device: ProbeDevice,
    pub profile: PathBuf,
    /// Where the fake SMTP server listens.
    pub bind: BindAddr,
    /// The address the device is told (default: `bind`).
    pub server_address: Option<String>,
    /// The certificate zoo, whose root is imported.
    pub certs: PathBuf,
    /// The executable serving `hil sim` (default: this one).
    pub sim_exe: Option<PathBuf>,
}

/// The password the probe sets to see whether `get` shows it back.
const PROBE_PASSWORD: &str = "Probe-pw-7x";

/// The finding when `get` of a password answered `back` after it was set to `set`:
/// SPEC §6 has passwords write-only (shown as `***`); a console that reveals one is a
/// finding. Any answer that does not hold the password is not (`***`, `********`,
/// an empty value).
pub fn revealed_password(back: &str, set: &str) -> Option<String> {
    (!set.is_empty() && back.contains(set)).then(|| {
        "finding: `get smtp.auth.password` shows the password it was set to; SPEC §6: \
         passwords are write-only, shown as ***"
            .to_string()
    })
}

/// Why the probe stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub op: String,
    /// The console trait the profile misses, when it is one.
    pub trait_: Option<Trait>,
    pub text: String,
}

/// What the probe found: the operations that fit, and the first that did not.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub fitted: Vec<String>,
    pub failure: Option<ProbeFailure>,
    /// Things worth knowing that do not stop the probe (the device's own verdicts).
    pub notes: Vec<String>,
}

/// Why the probe could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// A probe step's outcome.
type Step = Result<String, ProbeFailure>;

fn misfit(m: Mismatch) -> ProbeFailure {
    ProbeFailure {
        op: m.op.clone(),
        trait_: Some(m.trait_),
        text: m.to_string(),
    }
}

fn failed(op: &str, trait_: Option<Trait>, text: impl Into<String>) -> ProbeFailure {
    ProbeFailure {
        op: op.to_string(),
        trait_,
        text: text.into(),
    }
}

fn driver(op: &str, e: DriverError) -> ProbeFailure {
    match e {
        DriverError::Profile(m) => misfit(m),
        other => failed(op, None, other.to_string()),
    }
}

/// The running probe: the device's console, the fake server, what to tell the device.
struct Probe<'a> {
    console: Console,
    profile: Arc<Profile>,
    server: SmtpServer,
    rt: tokio::runtime::Runtime,
    server_address: String,
    server_port: u16,
    closed_port: u16,
    root_pem: Option<String>,
    job_limit: Duration,
    out: &'a mut dyn Write,
    notes: Vec<String>,
    _sim: Option<EmbeddedSim>,
}

/// Runs the probe, printing as it goes. `Err`: the probe could not start (no
/// profile, no device, no server).
pub fn probe(o: &ProbeOptions, out: &mut dyn Write) -> Result<ProbeReport, ProbeError> {
    start_and_probe(o, out).map_err(ProbeError)
}

fn start_and_probe(o: &ProbeOptions, out: &mut dyn Write) -> Result<ProbeReport, String> {
    let profile = Arc::new(Profile::load(&o.profile).map_err(|e| e.to_string())?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let server = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind: ListenerKind::Plain,
                bind: o.bind.socket(0),
                identity: None,
            }],
            SmtpConfig::default(),
            ServerOptions::default(),
        ))
        .map_err(|e| format!("the fake SMTP server cannot listen on {}: {e}", o.bind))?;
    let closed_port = TcpListener::bind(o.bind.socket(0))
        .and_then(|l| l.local_addr())
        .map(|a: SocketAddr| a.port())
        .map_err(|e| format!("cannot find a closed port on {}: {e}", o.bind))?;
    let root = o.certs.join("root.crt");
    let root_pem = std::fs::read_to_string(&root).ok();
    let (endpoint, sim, scale) = match &o.device {
        ProbeDevice::Sim {
            program,
            time_scale,
        } => {
            let (exe, sub) = match (program, &o.sim_exe) {
                (Some(p), _) => (p.clone(), None),
                (None, Some(p)) => (p.clone(), Some("sim")),
                (None, None) => (
                    std::env::current_exe().map_err(|e| format!("cannot find hil: {e}"))?,
                    Some("sim"),
                ),
            };
            let args = crate::device::embedded::args_for(
                &profile,
                *time_scale,
                &o.bind.socket(0).to_string(),
                &[],
            );
            let startup = Duration::from_millis(profile.timeouts.startup_ms);
            let sim = EmbeddedSim::spawn(&exe, sub, &args, startup).map_err(|e| e.to_string())?;
            let ep = Endpoint::Serial {
                path: sim.console_path.clone(),
                line: crate::device::LineSettings::default(),
            };
            (ep, Some(sim), *time_scale)
        }
        ProbeDevice::Endpoint(ep) => (ep.clone(), None, 1.0),
    };
    let server_port = server.addr().port();
    let server_address = o
        .server_address
        .clone()
        .unwrap_or_else(|| o.bind.to_string());
    let _ = writeln!(
        out,
        "probe: {} with {} (fake SMTP server on {}, the device told {server_address})",
        endpoint.describe(),
        o.profile.display(),
        server.addr()
    );
    let job_limit = Duration::from_millis((profile.timeouts.job_ms as f64 / scale) as u64 + 5000);
    let pid = sim.as_ref().map(|s| s.pid());
    let opened = Console::open_with(&endpoint, Arc::clone(&profile), Instant::now(), true);
    let mut report = ProbeReport::default();
    let console = match opened {
        Ok(mut c) => {
            c.set_pid(pid);
            let trace = c.take_trace();
            print_op(
                out,
                "open and log in",
                &trace,
                &Ok("the console is ready".into()),
            );
            report.fitted.push("open".into());
            c
        }
        Err(e) => {
            let f = driver("open", e);
            print_op(out, "open and log in", &[], &Err(f.clone()));
            report.failure = Some(f);
            return Ok(report);
        }
    };
    let mut p = Probe {
        console,
        profile,
        server,
        rt,
        server_address,
        server_port,
        closed_port,
        root_pem,
        job_limit,
        out,
        notes: Vec::new(),
        _sim: sim,
    };
    p.run_all(&mut report);
    report.notes = std::mem::take(&mut p.notes);
    for n in &report.notes {
        let _ = writeln!(p.out, "note: {n}");
    }
    drop(p.rt);
    Ok(report)
}

/// Prints one operation: every line with its class and field, then the outcome.
fn print_op(out: &mut dyn Write, op: &str, trace: &[Traced], r: &Step) {
    let _ = writeln!(out, "== {op}");
    for t in trace {
        let dir = match t.dir {
            ConsoleDir::H => "H",
            ConsoleDir::D => "D",
            ConsoleDir::N => "N",
        };
        let _ = writeln!(
            out,
            "  {:>6}ms {dir} {:<13} {:<24} {}",
            t.t_ms, t.class, t.field, t.text
        );
    }
    match r {
        Ok(s) => {
            let _ = writeln!(out, "  ok: {s}");
        }
        Err(f) => {
            let _ = writeln!(
                out,
                "  FAILED: {}{}",
                f.trait_
                    .map(|t| format!("{}: ", t.name()))
                    .unwrap_or_default(),
                f.text
            );
        }
    }
}

impl Probe<'_> {
    fn run_all(&mut self, report: &mut ProbeReport) {
        type StepFn<'b> = fn(&mut Probe<'b>) -> Step;
        let steps: Vec<(&str, StepFn)> = vec![
            ("reset", Probe::reset),
            ("get", Probe::get),
            ("apply: plain values", Probe::apply_plain),
            ("apply: on/off words", Probe::apply_bool),
            ("apply: choice words", Probe::apply_choice),
            ("apply: a value with a space", Probe::apply_space),
            ("get: a password is write-only", Probe::write_only),
            ("apply: an invalid value", Probe::apply_invalid),
            ("user add", Probe::user_add),
            ("notify add", Probe::notify_add),
            ("cert import", Probe::cert_import),
            ("clock", Probe::clock),
            ("scan (30 recipients) and its job", Probe::scan),
            ("alert and its job", Probe::alert),
            ("counter and its job", Probe::counter),
            ("a job that fails", Probe::failing_job),
            ("echo", Probe::echo_check),
        ];
        for (name, f) in steps {
            let r = f(self);
            let trace = self.console.take_trace();
            print_op(self.out, name, &trace, &r);
            let r = r.and_then(|s| self.check_echo(name, &trace).map(|_| s));
            match r {
                Ok(_) => report.fitted.push(name.to_string()),
                Err(f) => {
                    let _ = writeln!(
                        self.out,
                        "probe: the profile does not fit at {name:?}: {}{}",
                        f.trait_
                            .map(|t| format!("the device shows {} — ", t.name()))
                            .unwrap_or_default(),
                        f.text
                    );
                    report.failure = Some(f);
                    return;
                }
            }
        }
        let _ = writeln!(
            self.out,
            "probe: the profile fits every operation ({} of them)",
            report.fitted.len()
        );
    }

    /// With `echo = "off"`, a line that comes back as it was typed is an echo the
    /// profile reads as an answer.
    fn check_echo(&self, op: &str, trace: &[Traced]) -> Result<(), ProbeFailure> {
        if self.profile.echo != Echo::Off {
            return Ok(());
        }
        let mut sent: Vec<&str> = Vec::new();
        for t in trace {
            match t.dir {
                ConsoleDir::H if !t.text.trim().is_empty() => sent.push(t.text.as_str()),
                ConsoleDir::D
                    if sent
                        .iter()
                        .any(|s| self.profile.strip_prompt(&t.text) == *s) =>
                {
                    return Err(failed(
                        op,
                        Some(Trait::Echo),
                        format!(
                            "the device echoes what is typed ({:?} came back), and the profile says echo = \"off\": set echo = \"auto\" or \"on\"",
                            t.text
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn echo_check(&mut self) -> Step {
        Ok(if self.console.echo_seen() {
            "the device echoes what is typed (removed)".into()
        } else {
            "no echo seen".into()
        })
    }

    fn reset(&mut self) -> Step {
        self.console
            .op_ok("reset", &[], &[])
            .map_err(|e| driver("reset", e))?;
        Ok("factory settings".into())
    }

    fn get(&mut self) -> Step {
        let port = self
            .console
            .get(Key::SmtpPort)
            .map_err(|e| driver("get", e))?;
        if port != "25" {
            self.notes.push(format!(
                "after reset smtp.port reads {port:?}, not SPEC's default 25"
            ));
        }
        let scan = self
            .console
            .get(Key::EmailScan)
            .map_err(|e| driver("get", e))?;
        if scan != "on" && scan != "off" {
            return Err(failed(
                "get",
                Some(Trait::ValueWords),
                format!(
                    "the device shows email.scan as {scan:?}, which is no on/off word of SPEC: map its words in [values] (bool = {{ on = \"…\", off = \"…\" }})"
                ),
            ));
        }
        Ok(format!("smtp.port = {port}, email.scan = {scan}"))
    }

    /// Applies `pairs`; a refusal is a failure of `trait_`.
    fn apply(&mut self, op: &str, pairs: &[(Key, &str)], trait_: Trait, hint: &str) -> Step {
        let owned: Vec<(Key, String)> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let a = self
            .console
            .apply(&owned, &[Key::SmtpAuthPassword])
            .map_err(|e| driver(op, e))?;
        match a.status {
            Status::Ok => Ok(format!(
                "{} taken",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Status::Err { class, detail } => Err(failed(
                op,
                Some(trait_),
                format!("the device refused valid settings ({class}: {detail}): {hint}"),
            )),
        }
    }

    fn apply_plain(&mut self) -> Step {
        let port = self.server_port.to_string();
        let addr = self.server_address.clone();
        self.apply(
            "apply",
            &[
                (Key::SmtpServer, &addr),
                (Key::SmtpPort, &port),
                (Key::AdminAddress, "probe-admin@hil.test"),
                (Key::DeviceAddress, "probe-device@hil.test"),
            ],
            Trait::AnswerWords,
            "are the device's setting names right ([keys]) and [apply] pair and separator?",
        )
    }

    fn apply_bool(&mut self) -> Step {
        self.apply(
            "apply",
            &[
                (Key::EmailScan, "on"),
                (Key::EmailNotify, "on"),
                (Key::EmailCounter, "on"),
            ],
            Trait::ValueWords,
            "the device has its own words for on/off: [values] bool = { on = \"…\", off = \"…\" }",
        )
    }

    fn apply_choice(&mut self) -> Step {
        self.apply(
            "apply",
            &[(Key::SmtpTls, "none"), (Key::LoadMode, "none")],
            Trait::ValueWords,
            "the device has its own words for the values of a choice: [values] \"smtp.tls\" = { none = \"…\", … }",
        )
    }

    fn apply_space(&mut self) -> Step {
        self.apply(
            "apply",
            &[(Key::SmtpAuthUser, "probe user")],
            Trait::Quoting,
            "a value with a space is written otherwise: quoting (double, single, none) and [quote]",
        )?;
        let back = self
            .console
            .get(Key::SmtpAuthUser)
            .map_err(|e| driver("get", e))?;
        if back != "probe user" {
            return Err(failed(
                "apply",
                Some(Trait::Quoting),
                format!("smtp.auth.user was set to \"probe user\" and reads {back:?}: check quoting and [quote]"),
            ));
        }
        Ok("smtp.auth.user = \"probe user\" reads back the same".into())
    }

    /// SPEC §6: passwords are write-only. A console that shows one back is a finding
    /// (a note), not a misfit of the profile: the probe goes on.
    fn write_only(&mut self) -> Step {
        self.apply(
            "apply",
            &[(Key::SmtpAuthPassword, PROBE_PASSWORD)],
            Trait::Quoting,
            "the device refused a plain password",
        )?;
        let back = self
            .console
            .get(Key::SmtpAuthPassword)
            .map_err(|e| driver("get", e))?;
        match revealed_password(&back, PROBE_PASSWORD) {
            Some(finding) => {
                self.notes.push(finding);
                Ok("smtp.auth.password reads back what was set: a finding (see the notes)".into())
            }
            None => Ok(format!(
                "smtp.auth.password reads {back:?}, not the password"
            )),
        }
    }

    fn apply_invalid(&mut self) -> Step {
        let key = self.profile.device_key(Key::SmtpPort).to_string();
        let a = self
            .console
            .apply(&[(Key::SmtpPort, "0".into())], &[])
            .map_err(|e| driver("apply", e))?;
        let (class, detail) = match a.status {
            Status::Ok => {
                self.notes.push(
                    "the device took smtp.port=0 (SPEC §1: 1–65535): a failure of the invalid-value cases".into(),
                );
                return Ok("smtp.port=0 taken (see the note)".into());
            }
            Status::Err { class, detail } => (class, detail),
        };
        if class != "config" {
            return Err(failed(
                "apply",
                Some(Trait::ClassWords),
                format!(
                    "a refused setting is class {class:?}, not SPEC's config: map the device's word in [classes] (\"{class}\" = \"config\"), or give status.error_class when the line has no class"
                ),
            ));
        }
        if !detail.contains(&key) {
            let trace = self.console.take_trace();
            let after_error = trace
                .iter()
                .skip_while(|t| t.class != "status error")
                .skip(1)
                .find(|t| t.text.contains(&key));
            let r: Step = Err(match after_error {
                Some(t) => failed(
                    "apply",
                    Some(Trait::Continuation),
                    format!(
                        "the refusal goes on after its status line ({:?} names {key}): set status.continuation to a pattern of those lines, e.g. '^\\s+\\S'",
                        t.text
                    ),
                ),
                None => failed(
                    "apply",
                    None,
                    format!("the refusal {detail:?} does not name {key} (SPEC §1): every invalid-value case will fail"),
                ),
            });
            print_op(
                self.out,
                "apply: an invalid value (lines so far)",
                &trace,
                &r,
            );
            return r;
        }
        let port = self
            .console
            .get(Key::SmtpPort)
            .map_err(|e| driver("get", e))?;
        if port != self.server_port.to_string() {
            self.notes.push(format!(
                "after the refused smtp.port=0, smtp.port reads {port:?}, not the {} set before: part of the apply was stored",
                self.server_port
            ));
        }
        Ok(format!("refused, class config, naming {key}"))
    }

    fn user_add(&mut self) -> Step {
        self.console
            .op_ok(
                "user_add",
                &[
                    ("name", "probe"),
                    ("password", "probe Pass-1"),
                    ("address", "probe-user@hil.test"),
                ],
                &["password"],
            )
            .map_err(|e| driver("user_add", e))?;
        Ok("user probe added".into())
    }

    fn notify_add(&mut self) -> Step {
        self.console
            .op_ok("notify_add", &[("address", "probe-notify@hil.test")], &[])
            .map_err(|e| driver("notify_add", e))?;
        Ok("probe-notify@hil.test added".into())
    }

    fn cert_import(&mut self) -> Step {
        let Some(pem) = self.root_pem.clone() else {
            return Ok("skipped: no root.crt in the zoo directory".into());
        };
        let a = self
            .console
            .import_cert(&pem)
            .map_err(|e| driver("cert_import", e))?;
        match a.status {
            Status::Ok => Ok("the zoo's root imported".into()),
            Status::Err { class, detail } => Err(failed(
                "cert_import",
                Some(Trait::Confirmation),
                format!("the device refused the zoo's root ({class}: {detail}): check the template's steps (a paste, an end line, a question)"),
            )),
        }
    }

    fn clock(&mut self) -> Step {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let a = self
            .console
            .clock_set(now)
            .map_err(|e| driver("clock_set", e))?;
        if let Status::Err { class, detail } = a.status {
            return Err(failed(
                "clock_set",
                Some(Trait::ClockFormat),
                format!(
                    "the device refused the time written as {} ({class}: {detail}): give formats.clock the way it takes its time",
                    self.profile.clock.describe()
                ),
            ));
        }
        if self.profile.template("clock_get").is_none() {
            return Ok("set (no clock_get in the profile to read it back)".into());
        }
        let back = self
            .console
            .clock_get()
            .map_err(|e| driver("clock_get", e))?;
        let off = (back - now).whole_seconds().abs();
        if off > 120 {
            return Err(failed(
                "clock_get",
                Some(Trait::ClockFormat),
                format!("the clock was set to {now} and reads {back}: the formats do not agree with the device"),
            ));
        }
        Ok(format!("set and read back ({off} s apart)"))
    }

    /// Starts a job with `op`, waits for its end and reads its report; `Ok` with
    /// the end and the report's accepted recipients.
    fn job(&mut self, op: &str, params: &[(&str, &str)]) -> Result<(JobEnd, usize), ProbeFailure> {
        let _ = self.server.take();
        let t = self
            .console
            .trigger(op, params)
            .map_err(|e| driver(op, e))?;
        let id = match t {
            TriggerAnswer::Job(id) => id,
            TriggerAnswer::Refused { class, detail } => {
                return Err(failed(
                    op,
                    if op == "alert" {
                        Some(Trait::AnswerWords)
                    } else {
                        None
                    },
                    format!(
                        "the device refused the trigger ({class}: {detail}){}",
                        if op == "alert" {
                            ": its words for alert kinds go in [alert_kinds]"
                        } else {
                            ""
                        }
                    ),
                ))
            }
        };
        let end = self
            .console
            .wait_job(id, self.job_limit)
            .map_err(|e| driver("job", e))?;
        let report = self.console.job_report(id).map_err(|e| driver("job", e))?;
        if !SPEC_STATES.contains(&report.state.as_str()) {
            return Err(failed(
                "job",
                Some(Trait::ClassWords),
                format!("job {id}'s state reads {:?}, no job state of SPEC §6: map the device's words in [states]", report.state),
            ));
        }
        if let JobEnd::Failed { class, .. } = &end {
            if !SPEC_CLASSES.contains(&class.as_str()) {
                return Err(failed(
                    "job",
                    Some(Trait::ClassWords),
                    format!("job {id} failed with {class:?}, no error class of SPEC §5: map the device's words in [classes]"),
                ));
            }
        }
        let accepted = report.recipients.iter().filter(|r| r.accepted).count();
        Ok((end, accepted))
    }

    fn scan(&mut self) -> Step {
        let to: Vec<String> = (1..=30).map(|i| format!("probe{i}@hil.test")).collect();
        let (end, accepted) = self.job("scan", &[("to", &to.join(",")), ("size_kb", "1")])?;
        match end {
            JobEnd::Done if accepted == 30 => Ok("done, 30 recipients reported accepted".into()),
            JobEnd::Done => Err(failed(
                "job",
                Some(Trait::AnswerWords),
                format!(
                    "the job was done and the server took all 30 recipients, but the report reads {accepted} accepted: check answers.recipient and recipient_accepted"
                ),
            )),
            JobEnd::Failed { class, detail } => {
                self.notes.push(format!(
                    "the scan failed ({class}: {detail}): does the device reach the harness at {}:{}? (hil bench-setup)",
                    self.server_address, self.server_port
                ));
                Ok(format!("failed: {class} (see the note)"))
            }
        }
    }

    fn alert(&mut self) -> Step {
        let kind = self.profile.alert_kind("paper_empty").to_string();
        let (end, _) = self.job("alert", &[("kind", &kind)])?;
        Ok(format!("{end:?}").to_lowercase())
    }

    fn counter(&mut self) -> Step {
        let (end, _) = self.job("counter", &[])?;
        Ok(format!("{end:?}").to_lowercase())
    }

    fn failing_job(&mut self) -> Step {
        let port = self.closed_port.to_string();
        self.apply(
            "apply",
            &[(Key::SmtpPort, &port)],
            Trait::AnswerWords,
            "the device refused a port it took before",
        )?;
        let (end, _) = self.job("scan", &[("to", "probe@hil.test"), ("size_kb", "1")])?;
        match end {
            JobEnd::Failed { class, .. } => Ok(format!("failed with {class}")),
            JobEnd::Done => {
                self.notes.push(format!(
                    "a scan to the closed port {port} was reported done"
                ));
                Ok("done (see the note)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_shown_back_is_a_finding() {
        let f = revealed_password("Probe-pw-7x", PROBE_PASSWORD).expect("a finding");
        assert!(
            f.starts_with("finding: ") && f.contains("write-only"),
            "{f}"
        );
        assert!(revealed_password("\"Probe-pw-7x\"", PROBE_PASSWORD).is_some());
        for masked in ["***", "********", "", "(set)"] {
            assert_eq!(revealed_password(masked, PROBE_PASSWORD), None, "{masked}");
        }
    }
}
