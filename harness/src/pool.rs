//! The parallel runner of `hil run`: `jobs` workers (threads), each with a runner of
//! its own (its own simulated device on its own pty and its own fake servers), take
//! the cases from one queue in order. The main thread writes each result to
//! `results.jsonl` the moment it arrives (one whole record per line), prints it, and
//! redraws a progress line on a terminal.
//!
//! A harness fault (a case whose result has `harness_error`: a device that died, a
//! port in use, a lost console) is retried on a freshly started runner; a case that
//! still cannot run is recorded as [`Verdict::HarnessError`], counted apart from the
//! device's failures. A worker runs a case only once it has a runner; one that cannot
//! start a runner after its retries stops, and the other workers take the rest. A
//! configuration error (a profile, a zoo or an option that is wrong:
//! [`StartError::is_retryable`] says no) is never retried: the worker stops at once
//! with it. Every case handed out ends as a record.
//!
//! A stop request (Ctrl-C or SIGTERM, see [`stop_on_signals`]) ends the handing out;
//! the cases in flight may finish within a grace period, then the summary and the
//! report are written from what ran.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::record::{self, Record, Verdict};
use crate::report::ReportError;
use crate::runner::{self, describe_failure, CaseResult, Runner, StartError};
use hil_oracle::model::Case;

/// What a worker runs cases with: [`Runner`], or a stand-in in tests.
pub trait CaseRunner: Send {
    /// Runs one case; a result with `harness_error` means the runner may be broken.
    fn run_case(&mut self, case: &Case) -> CaseResult;
    /// What the runner serves, for the worker's start line.
    fn describe(&self) -> String;
    /// What the device says of itself (firmware, serial), when its profile can ask.
    fn identity(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Stops the runner (its device and servers).
    fn shutdown(self: Box<Self>);
}

impl CaseRunner for Runner {
    fn run_case(&mut self, case: &Case) -> CaseResult {
        Runner::run_case(self, case)
    }

    fn describe(&self) -> String {
        format!("fake SMTP server on {}", self.smtp_addr())
    }

    fn identity(&mut self) -> Vec<String> {
        Runner::identity(self)
    }

    fn shutdown(self: Box<Self>) {
        Runner::shutdown(*self)
    }
}

/// Makes worker `i`'s runner (called again for a fresh one after a harness fault).
/// A start error that is not retryable (a configuration error) stops the worker.
pub type MakeRunner = dyn Fn(usize) -> Result<Box<dyn CaseRunner>, StartError> + Send + Sync;

/// Writes the final report from every record of the run (resumed ones included).
pub type WriteReport<'a> = dyn Fn(&[Record], &PoolSummary) -> Result<(), ReportError> + 'a;

/// Why a `--shard` text is not `K/N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {spec}: {problem}")]
pub struct ShardError {
    pub spec: String,
    pub problem: ShardProblem,
}

/// What is wrong with a `--shard` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShardProblem {
    #[error("expected K/N, like 2/4")]
    NotKOverN,
    #[error("K is not a whole number")]
    K,
    #[error("N is not a whole number")]
    N,
    #[error("N must be at least 1")]
    NoSlice,
    #[error("K must be between 1 and N")]
    KOutOfRange,
}

/// Why the pool did not run: the earlier results cannot be read or written, a
/// worker thread cannot start, or no worker could start a runner.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// `results.jsonl` cannot be read for `--resume`.
    #[error(transparent)]
    Resume(#[from] record::ReadError),
    /// `results.jsonl` cannot be started afresh.
    #[error("{}: {source}", path.display())]
    Results {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start worker {worker}: {source}")]
    Thread {
        /// From 1.
        worker: usize,
        source: std::io::Error,
    },
    /// No worker could start a runner: the last one's reason.
    #[error("cannot start the device and fake servers: {0}")]
    NoRunner(String),
}

/// Why the signal watcher cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot start the signal watcher: {0}")]
    Start(#[source] std::io::Error),
    #[error("cannot watch for Ctrl-C and SIGTERM: {0}")]
    Watch(#[source] std::io::Error),
}

/// `--shard K/N`: the K-th of N slices of the full case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1 ≤ k ≤ n.
    pub k: usize,
    pub n: usize,
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let bad = |problem| ShardError {
            spec: s.to_string(),
            problem,
        };
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| bad(ShardProblem::NotKOverN))?;
        let k: usize = k.trim().parse().map_err(|_| bad(ShardProblem::K))?;
        let n: usize = n.trim().parse().map_err(|_| bad(ShardProblem::N))?;
        if n == 0 {
            return Err(bad(ShardProblem::NoSlice));
        }
        if k < 1 || k > n {
            return Err(bad(ShardProblem::KOutOfRange));
        }
        Ok(Shard { k, n })
    }

    /// Whether the case at `index` (0-based, in the full case list) is in the shard.
    pub fn keeps(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

/// The ids closest to an unknown `id`: those containing it, else those sharing the
/// most of its words (at most `max`, best first, in list order among equals).
pub fn closest_ids<'a>(id: &str, ids: &[&'a str], max: usize) -> Vec<&'a str> {
    let containing: Vec<&str> = ids.iter().copied().filter(|c| c.contains(id)).collect();
    if !containing.is_empty() {
        return containing.into_iter().take(max).collect();
    }
    let words: Vec<&str> = id
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2)
        .collect();
    let mut scored: Vec<(usize, usize, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, c)| (words.iter().filter(|w| c.contains(*w)).count(), i, *c))
        .filter(|(score, _, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(max).map(|(_, _, c)| c).collect()
}

/// How to run the pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Workers (clamped to the number of cases to run; at least 1).
    pub jobs: usize,
    /// How many times a case with a harness error is run again.
    pub retries: u32,
    /// Where the records go (`DIR/results.jsonl`); `None`: nowhere.
    pub results: Option<PathBuf>,
    /// Skip the cases `results` already records as pass or fail, and append.
    pub resume: bool,
    /// Print every case's story, not only the failures'.
    pub verbose: bool,
    /// Draw a progress line on standard error (only for a terminal).
    pub progress: bool,
    /// How long the cases in flight may take to finish after a stop request.
    pub grace: Duration,
    /// Set to stop handing out cases (Ctrl-C, SIGTERM).
    pub stop: Arc<AtomicBool>,
}

impl PoolOptions {
    /// `jobs` workers, 2 retries, no results file, 30 s of grace.
    pub fn new(jobs: usize) -> PoolOptions {
        PoolOptions {
            jobs,
            retries: 2,
            results: None,
            resume: false,
            verbose: false,
            progress: false,
            grace: Duration::from_secs(30),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// How the run went. The counts cover every record of the run: those this run wrote
/// and, with `--resume`, those it kept from `results.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSummary {
    /// Cases given to the pool.
    pub selected: usize,
    /// Of those, the ones skipped because `results.jsonl` records them (pass or fail).
    pub resumed: usize,
    /// Records this run wrote.
    pub ran: usize,
    pub passed: usize,
    pub failed: usize,
    pub harness_errors: usize,
    /// Cases during which the device crashed, rebooted or hung.
    pub crashes: usize,
    /// Cases of this run left without a record: the run was stopped, or no worker
    /// could run them.
    pub not_run: usize,
    /// A stop request (Ctrl-C, SIGTERM) ended the run.
    pub interrupted: bool,
    /// Why the run ended early other than by a stop request (every worker gave up,
    /// `results.jsonl` could not be written).
    pub stopped: Option<String>,
    /// Why the report could not be written.
    pub report_error: Option<String>,
    /// Wall time.
    pub elapsed_ms: u64,
    /// Cases counted above whose record holds an SMTP connection to the fake server
    /// (`Record::reached_smtp_server`): how much of the run tested the SMTP session.
    pub reached_server: usize,
    /// Failures and crashes a baseline knows (`hil run --baseline`): not counted in
    /// `failed` and `crashes` once [`PoolSummary::discount_known`] has run.
    pub known: usize,
    /// What the device said of itself (the profile's `identify` operation).
    pub device_identity: Vec<String>,
}

impl PoolSummary {
    /// The last line `hil run` prints: `N passed, F failed`, then `, E harness errors`
    /// and `, K not run` when there are any (so CI's `^[1-9][0-9]* passed, 0 failed$`
    /// matches only a whole, clean run).
    pub fn last_line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if self.harness_errors > 0 {
            s.push_str(&format!(", {} harness errors", self.harness_errors));
        }
        if self.crashes > 0 {
            s.push_str(&format!(", {} device crashes", self.crashes));
        }
        if self.not_run > 0 {
            s.push_str(&format!(", {} not run", self.not_run));
        }
        if self.known > 0 {
            s.push_str(&format!(", {} known", self.known));
        }
        s
    }

    /// Moves the failures and crashes a baseline knows out of `failed` and `crashes`
    /// into `known`: the summary and the exit status count only new ones.
    pub fn discount_known(&mut self, failed: usize, crashes: usize) {
        let f = failed.min(self.failed);
        let c = crashes.min(self.crashes);
        self.failed -= f;
        self.crashes -= c;
        self.known += f + c;
    }

    /// `hil: R of N cases reached the fake SMTP server (P%)`, over the cases counted
    /// (`None` when there are none): printed before [`PoolSummary::last_line`].
    pub fn reach_line(&self) -> Option<String> {
        let n = self.passed + self.failed + self.harness_errors + self.crashes + self.known;
        (n > 0).then(|| {
            format!(
                "hil: {} of {n} cases reached the fake SMTP server ({}%)",
                self.reached_server,
                (self.reached_server * 100 + n / 2) / n
            )
        })
    }

    /// Nothing failed, no harness error, every case ran, the report was written.
    pub fn success(&self) -> bool {
        self.failed == 0
            && self.harness_errors == 0
            && self.crashes == 0
            && self.not_run == 0
            && !self.interrupted
            && self.stopped.is_none()
            && self.report_error.is_none()
    }
}

/// Set when `hil` quits at once (a second stop request): the devices are being
/// killed, so what the cases in flight report from now on is not recorded.
static QUITTING: AtomicBool = AtomicBool::new(false);

/// What workers tell the main thread.
enum Msg {
    /// The worker's first runner is up.
    Started {
        worker: usize,
        what: String,
        identity: Vec<String>,
    },
    /// A runner could not be started before taking a case.
    StartFailed {
        worker: usize,
        attempt: u32,
        why: String,
    },
    /// Case `index` had a harness error and runs again.
    Retry {
        index: usize,
        attempt: u32,
        why: String,
    },
    /// Case `index` ended.
    Done {
        index: usize,
        result: Box<CaseResult>,
        attempts: u32,
    },
    /// The worker cannot start a runner and takes no more cases.
    Retired { worker: usize, why: String },
    /// The worker's thread ends (sent on drop, so also after a panic).
    Exited,
}

struct ExitGuard(mpsc::Sender<Msg>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Exited);
    }
}

struct Worker {
    index: usize,
    cases: Arc<Vec<Case>>,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
    make: Arc<MakeRunner>,
    tx: mpsc::Sender<Msg>,
    retries: u32,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.halt.load(Ordering::SeqCst)
    }

    fn start(&self) -> Result<Box<dyn CaseRunner>, StartError> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.make)(self.index))) {
            Ok(r) => r,
            Err(p) => Err(StartError::Panicked(panic_text(&*p))),
        }
    }

    /// Takes cases until none is left, the run stops, or no runner can be started;
    /// its events carry a `worker{n}` span.
    fn run(self) {
        let _exit = ExitGuard(self.tx.clone());
        let _span = tracing::info_span!("worker", n = self.index + 1).entered();
        let mut runner: Option<Box<dyn CaseRunner>> = None;
        let mut announced = false;
        loop {
            // A case is taken only with a runner in hand.
            if runner.is_none() {
                let Some(mut r) = self.start_before_a_case() else {
                    return;
                };
                if !announced {
                    announced = true;
                    // The first worker asks the device who it is, once.
                    let identity = if self.index == 0 {
                        r.identity()
                    } else {
                        Vec::new()
                    };
                    let _ = self.tx.send(Msg::Started {
                        worker: self.index,
                        what: r.describe(),
                        identity,
                    });
                }
                runner = Some(r);
            }
            if self.stopped() {
                break;
            }
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(case) = self.cases.get(index) else {
                break;
            };
            let ran = self.run_one(case, index, &mut runner);
            let _ = self.tx.send(Msg::Done {
                index,
                result: Box::new(ran.result),
                attempts: ran.attempts,
            });
            if let Some(why) = ran.config_error {
                let _ = self.tx.send(Msg::Retired {
                    worker: self.index,
                    why,
                });
                break;
            }
        }
        if let Some(r) = runner {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| r.shutdown()));
        }
    }

    /// Starts a runner before taking a case, trying again after a retryable failure.
    /// `None`: the worker stops (a stop request, no case left, or it gave up, which
    /// it tells the main thread).
    fn start_before_a_case(&self) -> Option<Box<dyn CaseRunner>> {
        let mut failures = 0;
        loop {
            if self.stopped() || self.next.load(Ordering::SeqCst) >= self.cases.len() {
                return None;
            }
            let e = match self.start() {
                Ok(r) => return Some(r),
                Err(e) => e,
            };
            failures += 1;
            let why = e.to_string();
            if !e.is_retryable() || failures > self.retries {
                let _ = self.tx.send(Msg::Retired {
                    worker: self.index,
                    why,
                });
                return None;
            }
            let _ = self.tx.send(Msg::StartFailed {
                worker: self.index,
                attempt: failures,
                why,
            });
            std::thread::sleep(Duration::from_millis(200 * u64::from(failures)));
        }
    }

    /// Runs the case at `index`, on a fresh runner again after a retryable harness
    /// error (up to `retries` times).
    fn run_one(&self, case: &Case, index: usize, runner: &mut Option<Box<dyn CaseRunner>>) -> Ran {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let t0 = Instant::now();
            if runner.is_none() {
                match self.start() {
                    Ok(r) => *runner = Some(r),
                    Err(e) => {
                        let ms = t0.elapsed().as_millis() as u64;
                        let mut result = CaseResult::not_run(
                            case,
                            format!("cannot start the device and fake servers: {e}"),
                            ms,
                        );
                        if !e.is_retryable() {
                            // A configuration error: the same on every start.
                            result.retry = false;
                            let config_error = Some(e.to_string());
                            return Ran::new(result, attempts, config_error);
                        }
                        if attempts > self.retries || self.stopped() {
                            return Ran::new(result, attempts, None);
                        }
                        let _ = self.tx.send(Msg::Retry {
                            index,
                            attempt: attempts,
                            why: result.harness_error.clone().unwrap_or_default(),
                        });
                        std::thread::sleep(Duration::from_millis(200 * u64::from(attempts)));
                        continue;
                    }
                }
            }
            let Some(rn) = runner.as_mut() else {
                continue;
            };
            let r = match std::panic::catch_unwind(AssertUnwindSafe(|| rn.run_case(case))) {
                Ok(r) => r,
                Err(p) => CaseResult::not_run(
                    case,
                    format!("the runner panicked: {}", panic_text(&*p)),
                    t0.elapsed().as_millis() as u64,
                ),
            };
            let Some(why) = r.harness_error.clone() else {
                return Ran::new(r, attempts, None);
            };
            if !r.retry {
                // The same case would fail the same way (a profile that does not
                // fit, a refused set-up step): no retry, and the runner stays.
                return Ran::new(r, attempts, None);
            }
            // The runner may be broken: the next attempt gets a fresh one.
            if let Some(old) = runner.take() {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| old.shutdown()));
            }
            if attempts > self.retries || self.stopped() {
                return Ran::new(r, attempts, None);
            }
            let _ = self.tx.send(Msg::Retry {
                index,
                attempt: attempts,
                why,
            });
        }
    }
}

/// How a worker's case ended: its result, after how many attempts, and the
/// configuration error that stops the worker, if starting a runner met one.
struct Ran {
    result: CaseResult,
    attempts: u32,
    config_error: Option<String>,
}

impl Ran {
    fn new(result: CaseResult, attempts: u32, config_error: Option<String>) -> Ran {
        Ran {
            result,
            attempts,
            config_error,
        }
    }
}

/// The progress line: `[=====>     ] 120/2000 6%  35.2 cases/s  ETA 53s  2 failed`.
pub fn progress_line(
    done: usize,
    total: usize,
    elapsed: Duration,
    failed: usize,
    errors: usize,
) -> String {
    const WIDTH: usize = 20;
    let frac = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((frac * WIDTH as f64) as usize).min(WIDTH);
    let bar = if filled >= WIDTH {
        "=".repeat(WIDTH)
    } else {
        format!("{}>{}", "=".repeat(filled), " ".repeat(WIDTH - filled - 1))
    };
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = if done == 0 || rate <= 0.0 {
        "ETA ?".to_string()
    } else {
        let left = (total.saturating_sub(done)) as f64 / rate;
        if left >= 3600.0 {
            format!(
                "ETA {}h{:02}m",
                (left / 3600.0) as u64,
                ((left % 3600.0) / 60.0) as u64
            )
        } else if left >= 60.0 {
            format!("ETA {}m{:02}s", (left / 60.0) as u64, (left % 60.0) as u64)
        } else {
            format!("ETA {}s", left.ceil() as u64)
        }
    };
    let mut s = format!(
        "[{bar}] {done}/{total} {}%  {rate:.1} cases/s  {eta}  {failed} failed",
        (frac * 100.0) as u64
    );
    if errors > 0 {
        s.push_str(&format!(", {errors} harness errors"));
    }
    s
}

/// The progress line on standard error, redrawn at most 10 times a second.
struct Progress {
    on: bool,
    shown: bool,
    last: Option<Instant>,
}

impl Progress {
    fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(b"\r\x1b[2K");
            let _ = e.flush();
            self.shown = false;
        }
    }

    fn draw(&mut self, line: impl FnOnce() -> String) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(format!("\r\x1b[2K{}", line()).as_bytes());
        let _ = e.flush();
        self.shown = true;
        self.last = Some(Instant::now());
    }
}

/// What `--resume` keeps of an earlier `results.jsonl`: the last record of each id,
/// except harness errors of the cases about to run (they run again). Answers the
/// records kept (in file order) and the ids to skip.
fn resume_plan(prior: Vec<Record>, selected: &HashSet<&str>) -> (Vec<Record>, HashSet<String>) {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, r) in prior.iter().enumerate() {
        last.insert(r.id.clone(), i);
    }
    let mut kept = Vec::new();
    let mut skip = HashSet::new();
    for (i, r) in prior.into_iter().enumerate() {
        if last.get(&r.id) != Some(&i) {
            continue;
        }
        let rerun = r.verdict == Verdict::HarnessError && selected.contains(r.id.as_str());
        if rerun {
            continue;
        }
        if selected.contains(r.id.as_str()) {
            skip.insert(r.id.clone());
        }
        kept.push(r);
    }
    (kept, skip)
}

/// Starts `path` afresh holding `kept` (written to a temporary file, then renamed
/// over it, so a cut last line of an earlier run goes), open for appending.
fn open_results(path: &Path, kept: &[Record]) -> Result<std::fs::File, PoolError> {
    let tmp = path.with_extension("jsonl.tmp");
    let at = |p: &Path| {
        let path = p.to_path_buf();
        move |source| PoolError::Results { path, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(at(&tmp))?;
    for r in kept {
        record::append(&mut f, r).map_err(at(&tmp))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(at(path))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(at(path))
}

fn tally(s: &mut PoolSummary, r: &Record) {
    if r.reached_smtp_server() {
        s.reached_server += 1;
    }
    match r.verdict {
        Verdict::Pass => s.passed += 1,
        Verdict::Fail => s.failed += 1,
        Verdict::HarnessError => s.harness_errors += 1,
        Verdict::Crash => s.crashes += 1,
    }
}

/// How many harness errors in a row with the same profile misfit stop the run: the
/// profile needs fixing, and every case would fail the same way.
pub const MISFITS_TO_STOP: usize = 3;

/// Runs `cases` on `opts.jobs` workers, each with a runner from `make_runner`; writes
/// each record to `opts.results` as it comes and prints it to `out`; then hands every
/// record of the run (kept ones of `--resume` first) to `report`.
///
/// Errors: `results.jsonl` cannot be read for `--resume`, or no worker could start a
/// runner at all (nothing is written then; the earlier `results.jsonl` stays).
pub fn run_pool(
    cases: Vec<Case>,
    opts: &PoolOptions,
    make_runner: Arc<MakeRunner>,
    out: &mut dyn Write,
    report: Option<&WriteReport>,
) -> Result<PoolSummary, PoolError> {
    let started = Instant::now();
    let (todo, kept, mut summary) = plan_resume(cases, opts, out)?;
    let kept_len = kept.len();
    let total = todo.len();
    let todo = Arc::new(todo);
    let jobs = opts.jobs.clamp(1, total.max(1));
    let (tx, rx) = mpsc::channel::<Msg>();
    let halt = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let mut file = None;
    if total > 0 {
        for i in 0..jobs {
            let w = Worker {
                index: i,
                cases: Arc::clone(&todo),
                next: Arc::clone(&next),
                stop: Arc::clone(&opts.stop),
                halt: Arc::clone(&halt),
                make: Arc::clone(&make_runner),
                tx: tx.clone(),
                retries: opts.retries,
            };
            let h = std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn(move || w.run())
                .map_err(|source| PoolError::Thread {
                    worker: i + 1,
                    source,
                })?;
            handles.push(h);
        }
    } else if let Some(p) = &opts.results {
        file = Some(open_results(p, &kept)?);
    }
    drop(tx);
    let mut c = Collector {
        opts,
        todo: Arc::clone(&todo),
        out,
        summary: &mut summary,
        records: kept,
        file,
        halt,
        next,
        progress: Progress {
            on: opts.progress,
            shown: false,
            last: None,
        },
        width: total.to_string().len(),
        done: 0,
        failed: 0,
        errors: 0,
        any_started: false,
        last_retire: None,
        misfits: (String::new(), 0),
    };
    let abandoned = c.collect(rx, if total > 0 { jobs } else { 0 }, started);
    let Collector {
        records,
        any_started,
        last_retire,
        ..
    } = c;
    if !abandoned {
        for h in handles {
            let _ = h.join();
        }
    }
    if total > 0 && !any_started && !summary.interrupted {
        return Err(PoolError::NoRunner(
            last_retire.unwrap_or_else(|| "no worker started".into()),
        ));
    }
    summary.ran = records.len() - kept_len;
    summary.not_run = total - summary.ran;
    if summary.not_run > 0 && !summary.interrupted && summary.stopped.is_none() {
        summary.stopped = Some(format!(
            "every worker gave up: {}",
            last_retire.unwrap_or_else(|| "no worker is left".into())
        ));
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    if let Some(write) = report {
        if let Err(e) = write(&records, &summary) {
            summary.report_error = Some(e.to_string());
        }
    }
    Ok(summary)
}

/// `--resume`: reads what `results.jsonl` already records and splits the cases into
/// those to run and the records kept; the summary starts from the kept ones.
fn plan_resume(
    cases: Vec<Case>,
    opts: &PoolOptions,
    out: &mut dyn Write,
) -> Result<(Vec<Case>, Vec<Record>, PoolSummary), PoolError> {
    let mut summary = PoolSummary {
        selected: cases.len(),
        ..Default::default()
    };
    let prior = match &opts.results {
        Some(p) if opts.resume && p.exists() => {
            let (records, skipped) = record::read_checked(p)?;
            for s in skipped {
                let _ = writeln!(out, "resume: {s}; its case runs again");
            }
            records
        }
        Some(p) if opts.resume => {
            let _ = writeln!(out, "resume: no {} yet; running every case", p.display());
            Vec::new()
        }
        _ => Vec::new(),
    };
    let (kept, skip) = {
        let ids: HashSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        resume_plan(prior, &ids)
    };
    let todo: Vec<Case> = cases
        .into_iter()
        .filter(|c| !skip.contains(&c.id))
        .collect();
    summary.resumed = summary.selected - todo.len();
    if opts.resume && opts.results.as_ref().is_some_and(|p| p.exists()) {
        let rerun = todo.len();
        let outside = kept.len() - summary.resumed;
        let mut line = format!(
            "resumed: {} cases already recorded, {rerun} to run",
            summary.resumed
        );
        if outside > 0 {
            line.push_str(&format!(
                " ({outside} other records in the file stay in it and in the report)"
            ));
        }
        let _ = writeln!(out, "{line}");
    }
    for r in &kept {
        tally(&mut summary, r);
    }
    Ok((todo, kept, summary))
}

/// The main thread's side of a run: takes the workers' messages, writes and prints
/// each record, keeps the progress line, and stops the run on a stop request or on
/// the same profile misfit [`MISFITS_TO_STOP`] times in a row.
struct Collector<'a> {
    opts: &'a PoolOptions,
    todo: Arc<Vec<Case>>,
    out: &'a mut dyn Write,
    summary: &'a mut PoolSummary,
    records: Vec<Record>,
    file: Option<std::fs::File>,
    halt: Arc<AtomicBool>,
    next: Arc<AtomicUsize>,
    progress: Progress,
    width: usize,
    done: usize,
    failed: usize,
    errors: usize,
    any_started: bool,
    last_retire: Option<String>,
    /// The last profile misfit's key and how many cases in a row had it.
    misfits: (String, usize),
}

impl Collector<'_> {
    /// Takes messages until every worker has exited; `true` if it gave up waiting
    /// for cases in flight after a stop request.
    fn collect(&mut self, rx: mpsc::Receiver<Msg>, mut alive: usize, started: Instant) -> bool {
        let total = self.todo.len();
        let mut stopping: Option<Instant> = None;
        while alive > 0 {
            if stopping.is_none() && self.opts.stop.load(Ordering::SeqCst) {
                stopping = Some(Instant::now());
                self.summary.interrupted = true;
                let handed = self.next.load(Ordering::SeqCst).min(total);
                self.say(&format!(
                    "hil: interrupted: no more cases are handed out; waiting up to {}s for the {} in flight (interrupt again to quit at once)",
                    self.opts.grace.as_secs(),
                    handed.saturating_sub(self.done)
                ));
            }
            if stopping.is_some_and(|t| t.elapsed() >= self.opts.grace) {
                let handed = self.next.load(Ordering::SeqCst).min(total);
                let n = handed.saturating_sub(self.done);
                self.say(&format!("hil: gave up waiting for {n} cases in flight"));
                return true;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Exited) => alive -= 1,
                Ok(m) => self.on_msg(m),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let (done, failed, errors) = (self.done, self.failed, self.errors);
            self.progress
                .draw(|| progress_line(done, total, started.elapsed(), failed, errors));
        }
        self.progress.clear();
        false
    }

    /// A line of its own (the progress line cleared first).
    fn say(&mut self, line: &str) {
        self.progress.clear();
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn on_msg(&mut self, m: Msg) {
        match m {
            Msg::Exited => {}
            Msg::Started {
                worker,
                what,
                identity,
            } => {
                if self.summary.device_identity.is_empty() {
                    self.summary.device_identity = identity;
                }
                if !self.any_started {
                    self.any_started = true;
                    if let Some(p) = &self.opts.results {
                        match open_results(p, &self.records) {
                            Ok(f) => self.file = Some(f),
                            Err(e) => {
                                self.summary.stopped =
                                    Some(format!("cannot write the results: {e}"));
                                self.halt.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                }
                self.progress.clear();
                tracing::debug!("hil: worker {}: {what}", worker + 1);
            }
            Msg::StartFailed {
                worker,
                attempt,
                why,
            } => {
                let line = format!(
                    "hil: worker {} cannot start (attempt {attempt} of {}): {why}",
                    worker + 1,
                    self.opts.retries + 1
                );
                self.say(&line);
            }
            Msg::Retired { worker, why } => {
                self.say(&format!(
                    "hil: worker {} gives up: cannot start the device and fake servers: {why}",
                    worker + 1
                ));
                self.last_retire = Some(why);
            }
            Msg::Retry {
                index,
                attempt,
                why,
            } => {
                let id = self
                    .todo
                    .get(index)
                    .map(|c| c.id.clone())
                    .unwrap_or_default();
                let line = format!(
                    "    retry {attempt}/{} of {id}: harness error: {why}",
                    self.opts.retries
                );
                self.say(&line);
            }
            Msg::Done {
                index,
                result,
                attempts,
            } => self.on_done(index, &result, attempts),
        }
    }

    /// A case ended: its record written and printed, and the misfit streak kept.
    fn on_done(&mut self, index: usize, result: &CaseResult, attempts: u32) {
        let Some(case) = self.todo.get(index).cloned() else {
            return;
        };
        if QUITTING.load(Ordering::SeqCst) {
            return;
        }
        let mut rec = runner::to_record(&case, result, attempts);
        self.write_evidence(&mut rec, result);
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = record::append(f, &rec) {
                if self.summary.stopped.is_none() {
                    self.summary.stopped = Some(format!(
                        "cannot write the results to {}: {e}",
                        self.opts
                            .results
                            .as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ));
                }
                self.halt.store(true, Ordering::SeqCst);
            }
        }
        self.done += 1;
        let word = match rec.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => {
                self.failed += 1;
                "FAIL"
            }
            Verdict::HarnessError => {
                self.errors += 1;
                "ERROR"
            }
            Verdict::Crash => {
                self.errors += 1;
                "CRASH"
            }
        };
        tally(self.summary, &rec);
        let tries = if attempts > 1 {
            format!(", {attempts} attempts")
        } else {
            String::new()
        };
        let (done, total, width) = (self.done, self.todo.len(), self.width);
        self.say(&format!(
            "[{done:>width$}/{total}] {word} {} ({} ms{tries})",
            rec.id, result.millis
        ));
        if !result.passed || self.opts.verbose {
            let _ = write!(self.out, "{}", describe_failure(result));
        }
        let _ = self.out.flush();
        self.records.push(rec);
        self.misfit_streak(result);
    }

    /// `--capture`: a failed or crashed case's packets and TLS secrets written to
    /// `DIR/evidence/CASE.pcapng` (next to `results.jsonl`), the record naming the file;
    /// a passing case's are dropped. A file that cannot be written is said, and the
    /// record names none.
    fn write_evidence(&mut self, rec: &mut Record, result: &CaseResult) {
        let Some(ev) = &result.evidence else {
            return;
        };
        if !matches!(rec.verdict, Verdict::Fail | Verdict::Crash) {
            return;
        }
        let Some(dir) = self.opts.results.as_deref().and_then(Path::parent) else {
            return;
        };
        let rel = format!(
            "{}/{}.pcapng",
            crate::record::EVIDENCE_DIR,
            crate::capture::safe_name(&rec.id)
        );
        match ev.to_pcapng(&rec.id).write(&dir.join(&rel)) {
            Ok(()) => rec.evidence = Some(rel),
            Err(e) => self.say(&format!("hil: --capture: {e}")),
        }
    }

    /// Stops the run when the same profile misfit ended [`MISFITS_TO_STOP`] cases
    /// in a row: one clear message with the fix, instead of a whole run of errors.
    fn misfit_streak(&mut self, result: &CaseResult) {
        let Some((key, text)) = &result.profile_misfit else {
            if result.harness_error.is_none() {
                self.misfits = (String::new(), 0);
            }
            return;
        };
        if self.misfits.0 == *key {
            self.misfits.1 += 1;
        } else {
            self.misfits = (key.clone(), 1);
        }
        if self.misfits.1 >= MISFITS_TO_STOP && self.summary.stopped.is_none() {
            let why = format!(
                "the profile does not fit the device: {MISFITS_TO_STOP} cases in a row failed the same way, so the run stops: {text}"
            );
            self.say(&format!("hil: {why}"));
            self.summary.stopped = Some(why);
            self.halt.store(true, Ordering::SeqCst);
        }
    }
}

/// Watches for Ctrl-C (SIGINT) and SIGTERM: the first sets the flag answered (the
/// pool stops handing out cases and finishes); a second kills the embedded simulated
/// devices and exits at once with status 130.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>, SignalError> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SignalError::Start)?;
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(SignalError::Watch)?;
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let got = tokio::select! {
                        s = int.recv() => s,
                        s = term.recv() => s,
                    };
                    if got.is_none() {
                        return;
                    }
                    if flag.swap(true, Ordering::SeqCst) {
                        QUITTING.store(true, Ordering::SeqCst);
                        // Off the progress line (and the terminal's `^C`) first.
                        let _ = std::io::stderr().write_all(b"\n");
                        tracing::warn!("hil: interrupted again: quitting now");
                        crate::device::embedded::kill_all();
                        std::process::exit(130);
                    }
                }
            })
        })
        .map_err(SignalError::Start)?;
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Copy, Debug)]
    enum Out {
        Pass,
        Fail,
        Harness,
        Panic,
    }

    /// What the fake runner does with the `n`-th run (from 1, over all workers) of
    /// the case `id`.
    type Plan = dyn Fn(&str, u32) -> Out + Send + Sync;

    struct Fake {
        plan: Arc<Plan>,
        runs: Arc<Mutex<HashMap<String, u32>>>,
    }

    impl CaseRunner for Fake {
        fn run_case(&mut self, case: &Case) -> CaseResult {
            let n = {
                let mut runs = self.runs.lock().unwrap();
                let n = runs.entry(case.id.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let base = CaseResult::not_run(case, "fake harness fault".into(), 1);
            match (self.plan)(&case.id, n) {
                Out::Pass => CaseResult {
                    passed: true,
                    harness_error: None,
                    ..base
                },
                Out::Fail => CaseResult {
                    harness_error: None,
                    mismatches: vec![crate::outcome::Mismatch::new(
                        crate::outcome::MismatchKind::Outcome,
                        "fake mismatch".into(),
                    )],
                    ..base
                },
                Out::Harness => base,
                Out::Panic => panic!("fake runner panic"),
            }
        }

        fn describe(&self) -> String {
            "fake".into()
        }

        fn shutdown(self: Box<Self>) {}
    }

    struct World {
        plan: Arc<Plan>,
        runs: Arc<Mutex<HashMap<String, u32>>>,
        /// Runners made, per worker.
        made: Arc<Mutex<HashMap<usize, u32>>>,
    }

    impl World {
        fn new(plan: impl Fn(&str, u32) -> Out + Send + Sync + 'static) -> World {
            World {
                plan: Arc::new(plan),
                runs: Arc::default(),
                made: Arc::default(),
            }
        }

        /// A maker whose `start(worker, k)` (k: that worker's k-th start, from 1)
        /// says whether the start succeeds.
        fn maker(
            &self,
            start: impl Fn(usize, u32) -> bool + Send + Sync + 'static,
        ) -> Arc<MakeRunner> {
            let (plan, runs, made) = (
                Arc::clone(&self.plan),
                Arc::clone(&self.runs),
                Arc::clone(&self.made),
            );
            Arc::new(move |w| {
                let k = {
                    let mut m = made.lock().unwrap();
                    let k = m.entry(w).or_insert(0);
                    *k += 1;
                    *k
                };
                if start(w, k) {
                    Ok(Box::new(Fake {
                        plan: Arc::clone(&plan),
                        runs: Arc::clone(&runs),
                    }) as Box<dyn CaseRunner>)
                } else {
                    Err(fake_start_failure(format!(
                        "fake start failure {k} of worker {}",
                        w + 1
                    )))
                }
            })
        }
    }

    /// A start failure that may pass on a later start: the device's link is down.
    fn fake_start_failure(why: String) -> StartError {
        StartError::Device(crate::device::DriverError::Link(why).into())
    }

    fn cases(n: usize) -> Vec<Case> {
        hil_oracle::cases::first_set().into_iter().take(n).collect()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hil-pool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn opts(jobs: usize, results: Option<PathBuf>) -> PoolOptions {
        PoolOptions {
            results,
            ..PoolOptions::new(jobs)
        }
    }

    fn run(
        cases: Vec<Case>,
        o: &PoolOptions,
        make: Arc<MakeRunner>,
    ) -> (Result<PoolSummary, PoolError>, String, Vec<Record>) {
        let mut out = Vec::new();
        let seen: Mutex<Vec<Record>> = Mutex::new(Vec::new());
        let report = |r: &[Record], _: &PoolSummary| {
            *seen.lock().unwrap() = r.to_vec();
            Ok(())
        };
        let s = run_pool(cases, o, make, &mut out, Some(&report));
        let records = seen.into_inner().unwrap();
        (s, String::from_utf8(out).unwrap(), records)
    }

    #[test]
    fn every_case_once_in_order_of_the_queue() {
        let w = World::new(|_, _| Out::Pass);
        let cs = cases(30);
        let d = dir("all");
        let o = opts(3, Some(d.join("results.jsonl")));
        let (s, out, recs) = run(cs.clone(), &o, w.maker(|_, _| true));
        let s = s.unwrap();
        assert_eq!(
            (s.passed, s.failed, s.harness_errors, s.not_run),
            (30, 0, 0, 0)
        );
        assert!(s.success());
        assert_eq!(s.last_line(), "30 passed, 0 failed");
        let file = record::read(&d.join("results.jsonl")).unwrap();
        assert_eq!(file, recs);
        let mut ids: Vec<_> = file.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        let mut want: Vec<_> = cs.iter().map(|c| c.id.clone()).collect();
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(out.matches("] pass ").count(), 30, "{out}");
        assert!(out.contains("[30/30] pass "), "{out}");
        // At most one runner per worker (a worker that finds the queue empty starts none).
        assert!(w.made.lock().unwrap().values().all(|&k| k == 1));
    }

    #[test]
    fn a_harness_fault_is_retried_on_a_fresh_runner() {
        let w = World::new(|_, n| if n == 1 { Out::Harness } else { Out::Pass });
        let (s, out, recs) = run(cases(1), &opts(1, None), w.maker(|_, _| true));
        let s = s.unwrap();
        assert_eq!((s.passed, s.harness_errors), (1, 0));
        assert_eq!(recs[0].attempts, 2);
        assert_eq!(recs[0].verdict, Verdict::Pass);
        assert!(out.contains("retry 1/2 of "), "{out}");
        assert!(out.contains("2 attempts"), "{out}");
        assert_eq!(
            w.made.lock().unwrap()[&0],
            2,
            "a fresh runner for the retry"
        );
    }

    #[test]
    fn a_lasting_harness_fault_is_a_harness_error_counted_apart() {
        let cs = cases(3);
        let bad = cs[1].id.clone();
        let w = World::new(move |id, _| match id == bad {
            true => Out::Harness,
            false => Out::Fail,
        });
        let (s, out, recs) = run(cs, &opts(2, None), w.maker(|_, _| true));
        let s = s.unwrap();
        assert_eq!((s.passed, s.failed, s.harness_errors), (0, 2, 1));
        assert_eq!(s.last_line(), "0 passed, 2 failed, 1 harness errors");
        let e = recs
            .iter()
            .find(|r| r.verdict == Verdict::HarnessError)
            .unwrap();
        assert_eq!(e.attempts, 3);
        assert_eq!(e.harness_error.as_deref(), Some("fake harness fault"));
        assert!(out.contains("] ERROR "), "{out}");
        assert!(out.contains("harness error: fake harness fault"), "{out}");
        assert!(!s.success());
    }

    #[test]
    fn a_panicking_runner_is_a_harness_fault_not_a_lost_case() {
        let w = World::new(|_, n| if n == 1 { Out::Panic } else { Out::Pass });
        let (s, _, recs) = run(cases(2), &opts(1, None), w.maker(|_, _| true));
        let s = s.unwrap();
        assert_eq!(s.passed, 2);
        assert!(recs.iter().all(|r| r.attempts == 2));
    }

    #[test]
    fn a_worker_that_cannot_start_leaves_its_cases_to_the_others() {
        // Slow cases, so the other workers are still busy when worker 2 gives up.
        let w = World::new(|_, _| {
            std::thread::sleep(Duration::from_millis(150));
            Out::Pass
        });
        let (s, out, recs) = run(cases(20), &opts(3, None), w.maker(|w, _| w != 1));
        let s = s.unwrap();
        assert_eq!((s.passed, s.not_run), (20, 0));
        assert_eq!(recs.len(), 20);
        assert!(
            out.contains("worker 2 cannot start (attempt 1 of 3)"),
            "{out}"
        );
        assert!(out.contains("worker 2 gives up"), "{out}");
        assert_eq!(w.made.lock().unwrap()[&1], 3);
        assert!(w.runs.lock().unwrap().values().all(|&n| n == 1));
    }

    #[test]
    fn a_configuration_error_stops_the_worker_at_once() {
        let w = World::new(|_, _| Out::Pass);
        let bad_profile = |_: usize| -> Result<Box<dyn CaseRunner>, StartError> {
            Err(StartError::Profile(crate::device::profile::ProfileError(
                "fake.toml: no such field".into(),
            )))
        };
        let (s, out, _) = run(cases(4), &opts(2, None), Arc::new(bad_profile));
        let e = s.unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot start the device and fake servers: fake.toml: no such field"
        );
        assert!(!out.contains("cannot start (attempt"), "not retried: {out}");
        assert_eq!(out.matches("gives up").count(), 2, "{out}");
        assert!(w.runs.lock().unwrap().is_empty());

        // Met on a fresh runner after a harness fault: the case ends at once, and the
        // worker stops with the reason.
        let w = World::new(|_, _| Out::Harness);
        let made = Arc::clone(&w.made);
        let plan = Arc::clone(&w.plan);
        let runs = Arc::clone(&w.runs);
        let make = move |w: usize| -> Result<Box<dyn CaseRunner>, StartError> {
            let k = {
                let mut m = made.lock().unwrap();
                let k = m.entry(w).or_insert(0);
                *k += 1;
                *k
            };
            if k == 1 {
                Ok(Box::new(Fake {
                    plan: Arc::clone(&plan),
                    runs: Arc::clone(&runs),
                }))
            } else {
                Err(StartError::AnyAddress(
                    hil_mail::netaddr::BindAddr::loopback(),
                ))
            }
        };
        let (s, out, recs) = run(cases(3), &opts(1, None), Arc::new(make));
        let s = s.unwrap();
        assert_eq!((s.harness_errors, s.not_run), (1, 2), "{out}");
        assert_eq!(recs[0].attempts, 2, "{recs:?}");
        assert!(
            recs[0]
                .harness_error
                .as_deref()
                .is_some_and(|m| m.contains("listens on every address")),
            "{recs:?}"
        );
        assert_eq!(
            w.made.lock().unwrap()[&0],
            2,
            "no start after the config error"
        );
        assert!(out.contains("worker 1 gives up"), "{out}");
    }

    #[test]
    fn no_worker_starting_is_an_error_and_keeps_the_old_results() {
        let d = dir("nostart");
        let p = d.join("results.jsonl");
        std::fs::write(&p, "old\n").unwrap();
        let w = World::new(|_, _| Out::Pass);
        let (s, _, _) = run(cases(4), &opts(2, Some(p.clone())), w.maker(|_, _| false));
        let e = s.unwrap_err().to_string();
        assert!(e.contains("fake start failure 3"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n");
    }

    #[test]
    fn a_device_lost_for_good_ends_each_handed_case_as_a_record() {
        // The first runner runs one case, then the device is gone: every later start
        // fails and every run is a harness fault.
        let cs = cases(6);
        let first = cs[0].id.clone();
        let w = World::new(move |id, n| {
            if id == first && n == 1 {
                Out::Pass
            } else {
                Out::Harness
            }
        });
        let d = dir("lost");
        let o = opts(1, Some(d.join("results.jsonl")));
        let (s, out, recs) = run(cs, &o, w.maker(|_, k| k == 1));
        let s = s.unwrap();
        // Case 1 passed; case 2 failed on the runner, then twice to start one: a
        // harness error; then the worker cannot start and gives up.
        assert_eq!((s.passed, s.harness_errors, s.not_run), (1, 1, 4), "{out}");
        assert_eq!(recs.len(), 2);
        assert_eq!(record::read(&d.join("results.jsonl")).unwrap(), recs);
        let e = &recs[1];
        assert_eq!(e.attempts, 3);
        assert!(
            e.harness_error
                .as_deref()
                .is_some_and(|m| m.starts_with("cannot start the device")),
            "{e:?}"
        );
        assert!(s
            .stopped
            .as_deref()
            .is_some_and(|m| m.contains("every worker gave up")));
        assert_eq!(
            s.last_line(),
            "1 passed, 0 failed, 1 harness errors, 4 not run"
        );
    }

    #[test]
    fn resume_skips_recorded_cases_and_runs_harness_errors_again() {
        let cs = cases(5);
        let d = dir("resume");
        let p = d.join("results.jsonl");
        let rec = |i: usize, v: Verdict| {
            let mut r = runner::to_record(&cs[i], &CaseResult::not_run(&cs[i], "x".into(), 1), 1);
            r.verdict = v;
            r
        };
        let mut f = std::fs::File::create(&p).unwrap();
        record::append(&mut f, &rec(0, Verdict::Pass)).unwrap();
        record::append(&mut f, &rec(1, Verdict::HarnessError)).unwrap();
        record::append(&mut f, &rec(2, Verdict::Fail)).unwrap();
        // An earlier run was killed while writing.
        f.write_all(b"{\"id\":\"cut").unwrap();
        drop(f);
        let w = World::new(|_, _| Out::Pass);
        let o = PoolOptions {
            resume: true,
            ..opts(2, Some(p.clone()))
        };
        let (s, out, recs) = run(cs.clone(), &o, w.maker(|_, _| true));
        let s = s.unwrap();
        assert!(
            out.contains("resumed: 2 cases already recorded, 3 to run"),
            "{out}"
        );
        assert_eq!((s.resumed, s.ran), (2, 3));
        assert_eq!((s.passed, s.failed, s.harness_errors), (4, 1, 0));
        let ran: HashSet<String> = w.runs.lock().unwrap().keys().cloned().collect();
        let want: HashSet<String> = [1, 3, 4].iter().map(|&i| cs[i].id.clone()).collect();
        assert_eq!(ran, want);
        let file = record::read(&p).unwrap();
        assert_eq!(file, recs, "the report has the resumed records too");
        let mut ids: Vec<_> = file.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        let mut all: Vec<_> = cs.iter().map(|c| c.id.as_str()).collect();
        all.sort();
        assert_eq!(ids, all, "each case once");
        // Everything recorded: nothing to run, the file and counts stay.
        let (s, out, recs) = run(cs, &o, w.maker(|_, _| true));
        let s = s.unwrap();
        assert!(
            out.contains("resumed: 5 cases already recorded, 0 to run"),
            "{out}"
        );
        assert_eq!((s.ran, s.passed, s.failed), (0, 4, 1));
        assert_eq!(recs.len(), 5);
        assert_eq!(record::read(&p).unwrap(), recs);
    }

    #[test]
    fn without_resume_the_results_start_afresh() {
        let d = dir("fresh");
        let p = d.join("results.jsonl");
        let w = World::new(|_, _| Out::Pass);
        let o = opts(2, Some(p.clone()));
        run(cases(4), &o, w.maker(|_, _| true)).0.unwrap();
        run(cases(3), &o, w.maker(|_, _| true)).0.unwrap();
        assert_eq!(record::read(&p).unwrap().len(), 3);
    }

    #[test]
    fn a_stop_request_ends_the_handing_out() {
        let cs = cases(20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let w = World::new(move |_, _| {
            flag.store(true, Ordering::SeqCst);
            Out::Pass
        });
        let o = PoolOptions {
            stop,
            ..opts(2, None)
        };
        let (s, out, recs) = run(cs, &o, w.maker(|_, _| true));
        let s = s.unwrap();
        assert!(s.interrupted);
        assert!(!recs.is_empty() && recs.len() <= 2, "{out}");
        assert_eq!(s.not_run, 20 - recs.len());
        assert!(s.last_line().ends_with(&format!(", {} not run", s.not_run)));
        assert!(out.contains("hil: interrupted"), "{out}");
    }

    #[test]
    fn shards_parse_and_split() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { k: 2, n: 3 }));
        let err = |s: &str| Shard::parse(s).unwrap_err().to_string();
        assert_eq!(err("3/2"), "--shard 3/2: K must be between 1 and N");
        assert_eq!(err("0/2"), "--shard 0/2: K must be between 1 and N");
        assert!(err("1/0").contains("N must be at least 1"));
        assert!(err("2").contains("expected K/N"));
        assert!(err("a/2").contains("K is not"));
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { k, n: 3 }).collect();
        for i in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.keeps(i)).count(), 1);
        }
        assert!(shards[0].keeps(0) && shards[1].keeps(4) && shards[2].keeps(8));
    }

    #[test]
    fn closest_ids_by_substring_then_by_words() {
        let ids = ["steps/ehlo-421", "steps/mail-451", "timeout/hang-at-ehlo"];
        assert_eq!(
            closest_ids("ehlo", &ids, 5),
            ["steps/ehlo-421", "timeout/hang-at-ehlo"]
        );
        assert_eq!(
            closest_ids("steps/mail-999", &ids, 5),
            ["steps/mail-451", "steps/ehlo-421"]
        );
        assert!(closest_ids("zzz", &ids, 5).is_empty());
    }

    #[test]
    fn the_share_of_cases_that_reached_the_server() {
        let s = PoolSummary {
            passed: 2,
            failed: 1,
            reached_server: 2,
            ..Default::default()
        };
        assert_eq!(
            s.reach_line().as_deref(),
            Some("hil: 2 of 3 cases reached the fake SMTP server (67%)")
        );
        assert_eq!(s.last_line(), "2 passed, 1 failed");
        assert_eq!(PoolSummary::default().reach_line(), None);
    }

    #[test]
    fn the_progress_line() {
        let l = progress_line(120, 2000, Duration::from_secs_f64(120.0 / 35.2), 2, 0);
        assert_eq!(
            l,
            "[=>                  ] 120/2000 6%  35.2 cases/s  ETA 54s  2 failed"
        );
        let l = progress_line(2000, 2000, Duration::from_secs(10), 0, 1);
        assert_eq!(l, "[====================] 2000/2000 100%  200.0 cases/s  ETA 0s  0 failed, 1 harness errors");
        assert!(progress_line(0, 10, Duration::ZERO, 0, 0).contains("ETA ?"));
    }
}
