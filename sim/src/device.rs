//! The device's state behind the console: settings, clock, users, the external
//! certificate store, notification addresses and the job queue, plus the fan-out of
//! job events to every open console (each console prints them in its own dialect).
//!
//! Jobs run one at a time on a worker thread, each with a snapshot of the settings
//! and stores taken when it was triggered. A job that panics fails (with the class
//! of the stage it was in, [`crate::stage`]) and the worker goes on with the next.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::clock::{device_now, parse_clock, ClockError};
use crate::jobs::{self, JobError, JobInput, JobResult};
pub use crate::jobs::{Trigger, User};
pub use crate::options::{Options, Variants};
use crate::settings::{self, AddressError, Key, Refusal, Refused, Settings};
use crate::stage;
use crate::text::{printable, quote};

/// Capacities of the device's stores; a full store refuses more.
pub const MAX_USERS: usize = 64;
pub const MAX_NOTIFY: usize = 64;
pub const MAX_CERTS: usize = 32;
/// Job records kept (the oldest finished ones are forgotten).
pub const MAX_JOBS: usize = 1000;

/// Why the device cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The job worker's async runtime cannot be built.
    #[error(transparent)]
    Runtime(std::io::Error),
    /// The job worker's thread cannot be started.
    #[error(transparent)]
    Worker(std::io::Error),
}

/// Why `user add` refuses a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("NAME {rule}", rule = .0.rule)]
    Name(Refusal),
    #[error("NAME must not be empty")]
    EmptyName,
    #[error("PASSWORD {rule}", rule = .0.rule)]
    Password(Refusal),
    #[error("ADDRESS must be {0}")]
    Address(AddressError),
    #[error("the user list is full ({max} users)", max = MAX_USERS)]
    Full,
    #[error("a user {name} exists already", name = quote(.0))]
    Exists(String),
}

/// Why `notify add` refuses an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("ADDRESS must be {0}")]
    Address(AddressError),
    #[error("the notification list is full ({max} addresses)", max = MAX_NOTIFY)]
    Full,
}

/// Why a certificate is not imported into the external store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// A line outside the PEM block (made printable).
    #[error("unexpected line {0:?} outside the PEM block")]
    OutsideBlock(String),
    #[error("no -----BEGIN CERTIFICATE----- block")]
    NoBlock,
    #[error("the PEM body is not base64: {0}")]
    NotBase64(base64::DecodeError),
    #[error("the PEM body is not a DER certificate")]
    NotDer,
    #[error("the external certificate store is full ({max} certificates)", max = MAX_CERTS)]
    StoreFull,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

/// A job's end, as told to every open console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub id: u64,
    /// `None`: done; else the error class of SPEC §5 and the detail.
    pub error: Option<JobError>,
}

/// One recipient of a finished job: whether the server took it, else its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    pub address: String,
    pub accepted: bool,
    pub reply: String,
}

/// What the device knows of one job (`job n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub id: u64,
    pub state: JobState,
    /// The error class of SPEC §5 and the detail, for a failed job.
    pub error: Option<JobError>,
    /// Per recipient, once the job has ended.
    pub recipients: Vec<RecipientStatus>,
}

/// How a job's run ended, for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Normally,
    Panicked,
}

/// The job worker's runtime: one thread, the worker's own.
fn job_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The result of a job that panicked: the class of the stage it was in (SPEC §5 has
/// no class for a device's own fault, so the job fails as that stage fails), and a
/// detail that says it was the device's fault, with the panic's message.
fn panicked(id: u64, payload: &(dyn std::any::Any + Send)) -> JobResult {
    let at = stage::take_panicked();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let message = printable(&message);
    tracing::error!(
        job = id,
        class = at.class,
        "the job panicked during {}: {message}",
        at.what
    );
    JobResult {
        error: Some(JobError::new(
            at.class,
            format!(
                "internal error of the device during {}: {message} (the job was stopped; the device goes on)",
                at.what
            ),
        )),
        recipients: Vec::new(),
    }
}

/// A console's handler of job events; answers false once the console has gone.
pub type Subscriber = Box<dyn Fn(&JobEvent) -> bool + Send>;

#[derive(Debug)]
struct Job {
    state: JobState,
    input: Option<JobInput>,
    result: Option<JobResult>,
}

#[derive(Debug, Default)]
struct State {
    settings: Settings,
    users: Vec<User>,
    certs: Arc<Vec<Vec<u8>>>,
    notify: Vec<String>,
    /// Device clock minus system clock.
    clock_offset: time::Duration,
    jobs: BTreeMap<u64, Job>,
    next_job: u64,
}

/// The device. Shared by the consoles and the job worker.
pub struct Device {
    state: Mutex<State>,
    subscribers: Mutex<Vec<(u64, Subscriber)>>,
    next_subscriber: std::sync::atomic::AtomicU64,
    queue: Mutex<mpsc::Sender<u64>>,
    opts: Options,
}

impl Device {
    /// Starts a device with factory settings and its job worker.
    pub fn start(opts: Options) -> Result<Arc<Device>, StartError> {
        let (tx, rx) = mpsc::channel::<u64>();
        let dev = Arc::new(Device {
            state: Mutex::new(State {
                next_job: 1,
                ..State::default()
            }),
            subscribers: Mutex::new(Vec::new()),
            next_subscriber: std::sync::atomic::AtomicU64::new(1),
            queue: Mutex::new(tx),
            opts,
        });
        dev.lock().settings = Settings::with_lacks(
            dev.lacked(),
            dev.opts.lacks.0.contains(&"ipv6"),
            dev.opts.lacks.0.contains(&"separate-cert-checks"),
        )
        .with_quirks(dev.opts.quirks.input());
        let worker = Arc::clone(&dev);
        let mut rt = job_runtime().map_err(StartError::Runtime)?;
        std::thread::Builder::new()
            .name("jobs".into())
            .spawn(move || {
                while let Ok(id) = rx.recv() {
                    if worker.run_job(&rt, id) == Ran::Panicked {
                        // What the panicked job left in its runtime goes with it.
                        match job_runtime() {
                            Ok(fresh) => rt = fresh,
                            Err(e) => tracing::error!(error = %e, "keeping the job runtime"),
                        }
                    }
                }
            })
            .map_err(StartError::Worker)?;
        Ok(dev)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the console down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The options the device started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Applies `pairs`, keys as the console's text gives them, all or nothing; the
    /// error names every refusal (an unknown key among them).
    pub fn apply(&self, pairs: &[(&str, &str)]) -> Result<(), Refused> {
        self.lock().settings.apply_text(pairs)
    }

    /// Applies `pairs` all or nothing; the error names every refusal.
    pub fn apply_checked(&self, pairs: &[(Key, &str)]) -> Result<(), Refused> {
        self.lock().settings.apply(pairs)
    }

    /// The `(key, value)` settings this firmware lacks (`--without`).
    fn lacked(&self) -> Vec<(Key, &'static str)> {
        crate::options::Lacks::FEATURES
            .iter()
            .filter(|(w, _)| self.opts.lacks.0.contains(w))
            .flat_map(|(_, kv)| kv.iter().copied())
            .collect()
    }

    /// Factory defaults and empty stores; job numbers keep counting up.
    pub fn reset(&self) {
        let mut s = self.lock();
        s.settings = Settings::with_lacks(
            self.lacked(),
            self.opts.lacks.0.contains(&"ipv6"),
            self.opts.lacks.0.contains(&"separate-cert-checks"),
        )
        .with_quirks(self.opts.quirks.input());
        s.users.clear();
        s.certs = Arc::default();
        s.notify.clear();
        s.clock_offset = time::Duration::ZERO;
    }

    /// The device clock now.
    pub fn now(&self) -> OffsetDateTime {
        device_now(self.lock().clock_offset)
    }

    pub fn clock_rfc3339(&self) -> String {
        self.now()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "invalid".into())
    }

    /// Sets the device clock (`clock set`).
    pub fn set_clock(&self, t: &str) -> Result<(), ClockError> {
        let when = parse_clock(t)?;
        self.lock().clock_offset = when - OffsetDateTime::now_utc();
        Ok(())
    }

    /// Registers a device user (`user add`).
    pub fn add_user(&self, name: &str, password: &str, address: &str) -> Result<(), UserError> {
        settings::validate(Key::SmtpAuthUser, name).map_err(UserError::Name)?;
        if name.is_empty() {
            return Err(UserError::EmptyName);
        }
        settings::validate(Key::SmtpAuthPassword, password).map_err(UserError::Password)?;
        if !address.is_empty() {
            settings::check_email_with(address, 320, self.opts.quirks.input())
                .map_err(UserError::Address)?;
        }
        let mut s = self.lock();
        if s.users.len() >= MAX_USERS {
            return Err(UserError::Full);
        }
        if s.users.iter().any(|u| u.name == name) {
            return Err(UserError::Exists(name.into()));
        }
        s.users.push(User {
            name: name.into(),
            password: password.into(),
            address: address.into(),
        });
        Ok(())
    }

    /// Registers a notification address (`notify add`); one already there is kept.
    pub fn add_notify(&self, address: &str) -> Result<(), NotifyError> {
        settings::check_email_with(address, 320, self.opts.quirks.input())
            .map_err(NotifyError::Address)?;
        let mut s = self.lock();
        if s.notify.len() >= MAX_NOTIFY && !s.notify.iter().any(|a| a == address) {
            return Err(NotifyError::Full);
        }
        if !s.notify.iter().any(|a| a == address) {
            s.notify.push(address.into());
        }
        Ok(())
    }

    /// Imports one PEM certificate into the external store.
    pub fn import_cert(&self, pem: &str) -> Result<(), CertError> {
        let mut body = String::new();
        let mut inside = false;
        let mut seen_end = false;
        for line in pem.lines().map(str::trim) {
            match line {
                "-----BEGIN CERTIFICATE-----" if !inside && !seen_end => inside = true,
                "-----END CERTIFICATE-----" if inside => {
                    inside = false;
                    seen_end = true;
                }
                "" => {}
                l if inside => body.push_str(l),
                l => return Err(CertError::OutsideBlock(printable(l))),
            }
        }
        if !seen_end {
            return Err(CertError::NoBlock);
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(CertError::NotBase64)?;
        // A certificate is a DER SEQUENCE; the full parse comes with the checks.
        if der.first() != Some(&0x30) || der.len() < 64 {
            return Err(CertError::NotDer);
        }
        let mut s = self.lock();
        if s.certs.len() >= MAX_CERTS {
            return Err(CertError::StoreFull);
        }
        Arc::make_mut(&mut s.certs).push(der);
        Ok(())
    }

    /// Records a job, or refuses it at once (`disabled` scan, unknown user); the job
    /// runs after [`Device::run_submitted`].
    pub fn submit(&self, trigger: Trigger) -> Result<u64, JobError> {
        let mut s = self.lock();
        if let Trigger::Scan {
            user: Some(name), ..
        } = &trigger
        {
            if !s.users.iter().any(|u| &u.name == name) {
                return Err(JobError::new(
                    "config",
                    format!("scan send: no device user {}", quote(name)),
                ));
            }
        }
        if matches!(trigger, Trigger::Scan { .. }) {
            jobs::scan_gate(&s.settings)?;
        }
        let id = s.next_job;
        s.next_job += 1;
        // Keep the newest jobs' records; forget the oldest finished ones.
        while s.jobs.len() >= MAX_JOBS {
            let oldest_done = s
                .jobs
                .iter()
                .find(|(_, j)| matches!(j.state, JobState::Done | JobState::Failed))
                .map(|(k, _)| *k);
            match oldest_done {
                Some(k) => {
                    s.jobs.remove(&k);
                }
                None => {
                    return Err(JobError::new(
                        "config",
                        format!("the job queue is full ({MAX_JOBS} jobs)"),
                    ))
                }
            }
        }
        let input = JobInput {
            id,
            trigger,
            settings: s.settings.clone(),
            users: s.users.clone(),
            notify: s.notify.clone(),
            certs: Arc::clone(&s.certs),
            clock_offset: s.clock_offset,
        };
        s.jobs.insert(
            id,
            Job {
                state: JobState::Queued,
                input: Some(input),
                result: None,
            },
        );
        Ok(id)
    }

    /// Lets a submitted job run. The console calls this once the `JOB n` answer is
    /// on its way, so that the job's `EVENT` can never come before it.
    pub fn run_submitted(&self, id: u64) {
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(id);
        if sent.is_err() {
            let mut s = self.lock();
            if let Some(job) = s.jobs.get_mut(&id) {
                job.state = JobState::Failed;
                job.input = None;
                job.result = Some(JobResult {
                    error: Some(JobError::new("config", "the job worker has stopped")),
                    recipients: Vec::new(),
                });
            }
        }
    }

    /// Runs job `id` to its end; a panic in it fails the job, nothing more.
    fn run_job(&self, rt: &tokio::runtime::Runtime, id: u64) -> Ran {
        let input = {
            let mut s = self.lock();
            let Some(job) = s.jobs.get_mut(&id) else {
                return Ran::Normally;
            };
            job.state = JobState::Running;
            job.input.take()
        };
        let Some(input) = input else {
            return Ran::Normally;
        };
        tracing::debug!(job = id, "job running");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(jobs::run(input, &self.opts))
        }));
        let (result, ran) = match run {
            Ok(result) => (result, Ran::Normally),
            Err(payload) => (panicked(id, payload.as_ref()), Ran::Panicked),
        };
        match &result.error {
            None => tracing::debug!(job = id, "job done"),
            Some(e) => tracing::debug!(job = id, error = %e, "job failed"),
        }
        let event = JobEvent {
            id,
            error: result.error.clone(),
        };
        {
            let mut s = self.lock();
            if let Some(job) = s.jobs.get_mut(&id) {
                job.state = if result.error.is_none() {
                    JobState::Done
                } else {
                    JobState::Failed
                };
                job.result = Some(result);
            }
        }
        self.broadcast(&event);
        ran
    }

    /// Forgets every job record (queued ones included; job numbers keep counting up),
    /// so that a fuzz target can run many inputs against one device. Only for a device
    /// whose worker runs nothing.
    #[doc(hidden)]
    pub fn forget_jobs(&self) {
        self.lock().jobs.clear();
    }

    /// What the device knows of job `id`; `None` for a job it does not know.
    pub fn job_status(&self, id: u64) -> Option<JobStatus> {
        let s = self.lock();
        let job = s.jobs.get(&id)?;
        let (error, recipients) = match &job.result {
            Some(r) => (
                r.error.clone(),
                r.recipients
                    .iter()
                    .map(|rc| RecipientStatus {
                        address: rc.address.clone(),
                        accepted: rc.accepted,
                        reply: rc.reply.clone(),
                    })
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Some(JobStatus {
            id,
            state: job.state,
            error,
            recipients,
        })
    }

    /// Registers a console for job events; answers its handle for unsubscribe.
    pub fn subscribe(&self, handler: Subscriber) -> u64 {
        let id = self
            .next_subscriber
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, handler));
        id
    }

    /// Stops telling a console that has gone of job events.
    pub fn unsubscribe(&self, id: u64) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, _)| *i != id);
    }

    fn broadcast(&self, event: &JobEvent) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, handler)| handler(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    /// An SMTP server for one session on 127.0.0.1 that takes any mail; its thread
    /// answers whether a message arrived.
    fn smtp_once() -> (u16, std::thread::JoinHandle<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let Ok((conn, _)) = listener.accept() else {
                return false;
            };
            let mut out = conn.try_clone().expect("clone");
            let mut lines = BufReader::new(conn);
            let _ = out.write_all(b"220 test ESMTP\r\n");
            let mut in_data = false;
            let mut got = false;
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                let answer: &[u8] = match line.trim_end() {
                    "." if in_data => {
                        in_data = false;
                        got = true;
                        b"250 queued\r\n"
                    }
                    _ if in_data => b"",
                    l if l.starts_with("DATA") => {
                        in_data = true;
                        b"354 go\r\n"
                    }
                    l if l.starts_with("QUIT") => {
                        let _ = out.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = out.write_all(answer);
                line.clear();
            }
            got
        });
        (port, server)
    }

    /// Issue 18: a job that panics fails with a class and a clear detail, and the
    /// worker runs the next job (before, the job stayed `running` and every later one
    /// failed `the job worker has stopped`).
    #[test]
    fn a_panicking_job_fails_and_the_worker_goes_on() {
        let dev = Device::start(Options::default()).expect("device");
        dev.add_notify("ops@hil.test").expect("notify");
        let (tx, rx) = mpsc::channel();
        dev.subscribe(Box::new(move |e: &JobEvent| tx.send(e.clone()).is_ok()));
        let id = dev.submit(Trigger::Alert("test: panic")).expect("submit");
        dev.run_submitted(id);
        let end = rx.recv_timeout(Duration::from_secs(10)).expect("job event");
        assert_eq!(end.id, id);
        let err = end.error.expect("the job failed");
        assert_eq!(err.class, "config", "{err}");
        assert!(
            err.detail
                .contains("internal error of the device during preparing the mail")
                && err.detail.contains("a planted panic (test)"),
            "{err}"
        );
        let status = dev.job_status(id).expect("status");
        assert_eq!(status.state, JobState::Failed);

        let (port, server) = smtp_once();
        let port = port.to_string();
        dev.apply(&[
            ("smtp.server", "127.0.0.1"),
            ("smtp.port", port.as_str()),
            ("device.address", "mfp@hil.test"),
            ("admin.address", "admin@hil.test"),
        ])
        .expect("apply");
        let next = dev.submit(Trigger::Alert("paper_empty")).expect("submit");
        dev.run_submitted(next);
        let end = rx.recv_timeout(Duration::from_secs(20)).expect("job event");
        assert_eq!((end.id, end.error), (next, None));
        assert!(server.join().expect("server thread"), "no mail arrived");
    }
}
