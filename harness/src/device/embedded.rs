//! The embedded simulated device: `hil` starts itself as `hil sim --console pty` (the
//! mfp-sim code linked into this binary) in a child process, so a crash of the
//! simulated device cannot take the harness down, and reads the pty path it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running embedded simulated device; killed when dropped.
pub struct EmbeddedSim {
    child: Child,
    /// The pty path of its console.
    pub console_path: String,
}

impl EmbeddedSim {
    /// Starts `exe sim --console pty` with `extra` arguments.
    pub fn spawn(exe: &Path, extra: &[String], startup: Duration) -> Result<EmbeddedSim, String> {
        let mut child = Command::new(exe)
            .arg("sim")
            .args(["--console", "pty"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the simulated device ({}): {e}", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("the simulated device has no standard output".into());
        };
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
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let _ = child.kill();
                return Err(format!("reading the simulated device's first line: {e}"));
            }
            Err(_) => {
                let _ = child.kill();
                return Err(format!(
                    "the simulated device printed no console line within {startup:?}"
                ));
            }
        };
        let Some(path) = line.trim().strip_prefix("console: ") else {
            let _ = child.kill();
            return Err(format!(
                "the simulated device's first line {:?} is not `console: PATH`",
                line.trim()
            ));
        };
        Ok(EmbeddedSim {
            console_path: path.to_string(),
            child,
        })
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
