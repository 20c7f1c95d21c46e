//! The engine: this same program run again as `mfp-testdev engine --console stdio
//! …`, which is mfp-sim's device speaking the reference protocol of SPEC §6 on its
//! standard input and output. The front end owns it as a child process: it writes
//! requests to its stdin, and a reader thread hands every line it prints to the
//! front end's one input channel, tagged with the engine's generation so that lines
//! of an engine killed at a reboot are told apart.
//!
//! The engine dies with the front end (`PR_SET_PDEATHSIG`), also when the front end
//! is killed outright, as the harness does.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Sender;

use crate::device::Input;

/// A running engine.
pub struct Engine {
    child: Child,
    stdin: ChildStdin,
}

impl Engine {
    /// Starts `current_exe args…`; its lines go to `tx` tagged with `generation`. Must be called from the
    /// main thread: the death signal follows the thread that forked, and the main
    /// thread lives as long as the process.
    pub fn spawn(args: &[String], generation: u64, tx: Sender<Input>) -> io::Result<Engine> {
        let exe = std::env::current_exe()?;
        let parent = std::process::id() as libc::pid_t;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::other("the front end has gone"));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the engine has no stdin or stdout pipe"));
        };
        std::thread::Builder::new()
            .name(format!("engine-{generation}"))
            .spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                                buf.pop();
                            }
                            let line = String::from_utf8_lossy(&buf).into_owned();
                            if tx.send(Input::Engine { generation, line }).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = tx.send(Input::EngineClosed { generation });
            })?;
        Ok(Engine { child, stdin })
    }

    /// Sends request lines (each ended by LF).
    pub fn send(&mut self, lines: &[String]) -> io::Result<()> {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.stdin.write_all(text.as_bytes())?;
        self.stdin.flush()
    }
}

impl Drop for Engine {
    /// Kills the engine (a crash or power cycle loses whatever it was doing).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
