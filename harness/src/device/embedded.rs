//! The embedded simulated device: `hil` starts itself as `hil sim --console pty` (the
//! mfp-sim code linked into this binary) in a child process, so a crash of the
//! simulated device cannot take the harness down, and reads the pty path it prints.
//!
//! Each simulated device runs in a process group of its own, so a Ctrl-C typed at the
//! terminal reaches `hil` alone (which lets the cases in flight finish) and not the
//! devices; [`kill_all`] ends every one still running when `hil` has to quit at once.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// A running embedded simulated device; killed when dropped.
pub struct EmbeddedSim {
    child: Arc<Mutex<Child>>,
    /// The pty path of its console.
    pub console_path: String,
}

/// Why a simulated device did not start: its program cannot be run, or it did not
/// announce its console (`console: PATH` on its first line) in time.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start the simulated device ({}): {source}", exe.display())]
    Exec {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the simulated device has no standard output")]
    NoStdout,
    #[error("reading the simulated device's first line: {0}")]
    FirstLine(#[source] std::io::Error),
    #[error("the simulated device printed no console line within {0:?}")]
    Silent(Duration),
    #[error("the simulated device's first line {0:?} is not `console: PATH`")]
    NotConsoleLine(String),
    /// It ended before it printed its console line: its options (or its program) are
    /// wrong, and starting it again will not help.
    #[error("the simulated device ({}) {status} before it printed `console: PATH`{}", exe.display(), said(.stderr))]
    Exited {
        exe: PathBuf,
        status: String,
        /// Its last lines on standard error.
        stderr: Vec<String>,
    },
}

fn said(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; it said: {}", lines.join(" / "))
    }
}

impl SpawnError {
    /// Whether starting it again may work: not for a program that is missing or
    /// may not be run.
    pub fn is_retryable(&self) -> bool {
        match self {
            SpawnError::Exec { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            SpawnError::Exited { .. } => false,
            _ => true,
        }
    }
}

/// Every embedded simulated device this process started and has not dropped.
static LIVE: Mutex<Vec<Weak<Mutex<Child>>>> = Mutex::new(Vec::new());

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every embedded simulated device still running (before `hil` exits without
/// unwinding, e.g. at a second Ctrl-C or when it gives up on cases in flight).
pub fn kill_all() {
    let live: Vec<_> = locked(&LIVE).iter().filter_map(Weak::upgrade).collect();
    for child in live {
        let mut c = locked(&child);
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// How many of a device's last lines on standard error an error quotes.
const STDERR_KEPT: usize = 5;

/// Copies a device's standard error to ours, line by line, keeping its last lines.
fn forward_stderr(
    stderr: Option<std::process::ChildStderr>,
) -> Arc<Mutex<std::collections::VecDeque<String>>> {
    let tail = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let Some(stderr) = stderr else {
        return tail;
    };
    let keep = Arc::clone(&tail);
    std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Written as it came; a standard error that is gone (a closed pipe) is no
            // reason to stop draining, or the device would block on a full pipe.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), &buf);
            let line = String::from_utf8_lossy(&buf);
            let mut t = locked(&keep);
            if t.len() == STDERR_KEPT {
                t.pop_front();
            }
            t.push_back(crate::device::capped::cut_line(line.trim_end(), 500));
        }
    });
    tail
}

/// How a child that closed its output ended: its exit status, once it has (waited
/// for up to 2 s), else that it is still running.
fn ended(child: &mut Child) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match (
                    st.code(),
                    std::os::unix::process::ExitStatusExt::signal(&st),
                ) {
                    (Some(c), _) => format!("exited with status {c}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    _ => format!("ended ({st})"),
                };
            }
            Ok(None) if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return "closed its output".to_string(),
        }
    }
}

/// The child gets SIGKILL when the thread that started it ends: when `hil` is killed
/// (even by SIGKILL, which leaves it no time to clean up), its simulated devices do
/// not outlive it. A worker starts its devices and keeps them until it ends; a child
/// whose parent is gone before the signal is set up does not start.
fn die_with_parent(cmd: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("hil has gone"));
            }
            Ok(())
        });
    }
}

impl EmbeddedSim {
    /// Starts `exe [sub] --console pty` with `extra` arguments (`hil sim …`, or a
    /// simulated device of one's own that takes mfp-sim's options).
    pub fn spawn(
        exe: &Path,
        sub: Option<&str>,
        extra: &[String],
        startup: Duration,
    ) -> Result<EmbeddedSim, SpawnError> {
        let mut cmd = Command::new(exe);
        cmd.args(sub)
            .args(["--console", "pty"])
            .args(extra)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| SpawnError::Exec {
            exe: exe.to_path_buf(),
            source,
        })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::NoStdout);
        };
        let stderr_tail = forward_stderr(child.stderr.take());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut first = String::new();
            let res = r.read_line(&mut first).map(|_| first);
            let _ = tx.send(res);
            // Keep draining so the child never blocks on a full pipe.
            let mut sink = String::new();
            while matches!(r.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let line = match rx.recv_timeout(startup) {
            // End of its output: it has ended, or is ending.
            Ok(Ok(l)) if l.is_empty() => {
                let status = ended(&mut child);
                let _ = child.kill();
                let _ = child.wait();
                // What it said on the way out (the forwarding thread may lag).
                std::thread::sleep(Duration::from_millis(50));
                return Err(SpawnError::Exited {
                    exe: exe.to_path_buf(),
                    status,
                    stderr: locked(&stderr_tail).iter().cloned().collect(),
                });
            }
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::FirstLine(e));
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::Silent(startup));
            }
        };
        let Some(path) = line.trim().strip_prefix("console: ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::NotConsoleLine(line.trim().to_string()));
        };
        let child = Arc::new(Mutex::new(child));
        {
            let mut live = locked(&LIVE);
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&child));
        }
        Ok(EmbeddedSim {
            console_path: path.to_string(),
            child,
        })
    }

    /// The process id (for a profile's `power_cycle`, `{pid}`).
    pub fn pid(&self) -> u32 {
        locked(&self.child).id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(locked(&self.child).try_wait(), Ok(None))
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        let mut c = locked(&self.child);
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The options a simulated device is started with, after `--console pty`: its time
/// scale, where it serves download URLs, the firmware variants the profile declares
/// (and `plant`: a variant the profile does not declare, or a quirk — an old or
/// planted bug, or the other side of a SPEC latitude — that the run must catch), the
/// features the profile says it lacks (`--without`), then the profile's own
/// `sim_args`. A `plant` word is `--variant W` when it names a SPEC variant
/// ([`mfp_sim::options::Variants::NAMES`]), else `--quirk W` (the device refuses a
/// word that is neither).
pub fn args_for(
    profile: &super::Profile,
    time_scale: f64,
    downloads: &str,
    plant: &[String],
) -> Vec<String> {
    let mut args = vec![
        "--time-scale".to_string(),
        time_scale.to_string(),
        "--downloads".to_string(),
        downloads.to_string(),
    ];
    for v in &profile.variants {
        args.extend(["--variant".to_string(), v.clone()]);
    }
    for w in plant {
        let flag = if mfp_sim::options::Variants::NAMES.contains(&w.as_str()) {
            "--variant"
        } else {
            "--quirk"
        };
        args.extend([flag.to_string(), w.clone()]);
    }
    for f in &profile.facts.unsupported {
        args.extend(["--without".to_string(), f.clone()]);
    }
    args.extend(profile.sim_args.iter().cloned());
    args
}
