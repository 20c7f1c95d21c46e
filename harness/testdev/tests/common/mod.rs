//! Drives the real `mfp-testdev` binary over a real pty, as the harness does: start
//! it with `--console pty`, read the `console:` line, open the pty, type, and wait
//! for text. Also a tiny SMTP server on an ephemeral loopback port.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(20);

/// The router prompt as text (colours stripped).
pub const PROMPT: &str = "mfp-4000# ";
pub const CONFIG_PROMPT: &str = "mfp-4000(config)# ";

/// A running test device and its console.
pub struct Dev {
    pub child: Child,
    port: File,
    out: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// How far the raw output has been consumed.
    pos: usize,
    pub stderr: mpsc::Receiver<String>,
}

/// Removes SGR and erase-line sequences.
pub fn strip_ansi(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b && raw.get(i + 1) == Some(&b'[') {
            let mut j = i + 2;
            while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                j += 1;
            }
            i = j + 1;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Dev {
    /// Starts `mfp-testdev --console pty ARGS…` and opens its console.
    pub fn start(args: &[&str]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-testdev"))
            .args(["--console", "pty"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mfp-testdev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            // The console line is the only thing on stdout.
            let mut rest = String::new();
            if matches!(r.read_line(&mut rest), Ok(n) if n > 0) {
                panic!("mfp-testdev printed more on stdout: {rest:?}");
            }
        });
        let first = rx.recv_timeout(WAIT).expect("the console line");
        let path = first
            .trim()
            .strip_prefix("console: ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_string();
        let stderr = child.stderr.take().expect("stderr");
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .expect("open the pty");
        let mut reader = port.try_clone().expect("clone the pty");
        let out = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let shared = Arc::clone(&out);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (m, cv) = &*shared;
                m.lock().unwrap().extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Dev {
            child,
            port,
            out,
            pos: 0,
            stderr: erx,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `s` as it is.
    pub fn send(&mut self, s: &str) {
        self.port.write_all(s.as_bytes()).expect("write the pty");
        self.port.flush().expect("flush the pty");
    }

    /// Types a line ended by CR.
    pub fn line(&mut self, s: &str) {
        self.send(&format!("{s}\r"));
    }

    /// Waits until the output (colours stripped) contains `needle`; answers the
    /// text up to and including it and consumes it.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, WAIT).unwrap_or_else(|seen| {
            panic!("no {needle:?} within {WAIT:?}; the device said {seen:?}")
        })
    }

    /// As [`Dev::expect`], or `Err(what came)` after `limit`.
    pub fn expect_within(&mut self, needle: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let (m, cv) = &*self.out;
        let mut raw = m.lock().unwrap();
        loop {
            if let Some(end) = find_stripped(&raw[self.pos..], needle) {
                let text = strip_ansi(&raw[self.pos..self.pos + end]);
                self.pos += end;
                return Ok(text);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(strip_ansi(&raw[self.pos..]));
            }
            raw = cv.wait_timeout(raw, deadline - now).unwrap().0;
        }
    }

    /// Everything not yet consumed, raw, after waiting `d` for more.
    pub fn drain_raw(&mut self, d: Duration) -> Vec<u8> {
        std::thread::sleep(d);
        let (m, _) = &*self.out;
        let raw = m.lock().unwrap();
        let rest = raw[self.pos..].to_vec();
        self.pos = raw.len();
        rest
    }

    /// Logs in with the router style's default login.
    pub fn login(&mut self) {
        self.expect("Username: ");
        self.line("admin");
        self.expect("Password: ");
        self.line("admin123");
        self.expect(PROMPT);
    }

    /// Sends a command at the prompt and answers what came before the next prompt.
    pub fn cmd(&mut self, line: &str) -> String {
        self.line(line);
        self.expect_prompt()
    }

    /// Waits for the next exec or config prompt; answers the text before it.
    pub fn expect_prompt(&mut self) -> String {
        let t = self.expect("# ");
        t.trim_end_matches(CONFIG_PROMPT)
            .trim_end_matches(PROMPT)
            .to_string()
    }

    /// Changes settings through configure, set and commit.
    pub fn configure(&mut self, sets: &[&str]) {
        assert_eq!(self.cmd("configure"), "configure\r\n");
        for s in sets {
            let out = self.cmd(&format!("set {s}"));
            assert_eq!(out, format!("set {s}\r\n"));
        }
        let out = self.cmd("commit");
        assert_eq!(out, "commit\r\n", "the commit was refused");
        assert_eq!(self.cmd("end"), "end\r\n");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The end (in raw bytes) of the first place where `needle` appears in `raw` once
/// its escape sequences are removed.
fn find_stripped(raw: &[u8], needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    let mut seen = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b && raw.get(i + 1) == Some(&b'[') {
            let mut j = i + 2;
            while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                j += 1;
            }
            i = j + 1;
            continue;
        }
        seen.push(raw[i]);
        i += 1;
        if seen.ends_with(needle) {
            // Take the escape sequences that close the match (a colour's reset).
            while raw.get(i) == Some(&0x1b) && raw.get(i + 1) == Some(&b'[') {
                let mut j = i + 2;
                while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                    j += 1;
                }
                if j >= raw.len() {
                    break;
                }
                i = j + 1;
            }
            return Some(i);
        }
    }
    None
}

/// A tiny SMTP server on 127.0.0.1 (ephemeral port): 220, 250 to EHLO, MAIL and
/// RCPT (550 to recipients starting with `nobody`), 354 to DATA, 250 at its end,
/// 221 to QUIT. Each session's commands go to the receiver.
pub struct SmtpServer {
    pub port: u16,
    pub sessions: mpsc::Receiver<Vec<String>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let log = serve_smtp(conn);
                    let _ = tx.send(log);
                });
            }
        });
        SmtpServer { port, sessions: rx }
    }
}

fn serve_smtp(conn: TcpStream) -> Vec<String> {
    let _ = conn.set_read_timeout(Some(WAIT));
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    let mut log = Vec::new();
    let mut say = |s: &str| {
        let _ = w.write_all(format!("{s}\r\n").as_bytes());
    };
    say("220 test.local ESMTP");
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_string();
        log.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            say("250 test.local");
        } else if upper.starts_with("MAIL FROM") {
            say("250 2.1.0 sender ok");
        } else if upper.starts_with("RCPT TO:<NOBODY") {
            say("550 5.1.1 no such user");
        } else if upper.starts_with("RCPT TO") {
            say("250 2.1.5 recipient ok");
        } else if upper == "DATA" {
            say("354 go ahead");
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return log,
                    Ok(_) => {}
                }
                if line.trim_end() == "." {
                    break;
                }
            }
            log.push(".".into());
            say("250 2.0.0 queued as 42");
        } else if upper == "QUIT" {
            say("221 2.0.0 bye");
            break;
        } else {
            say("502 5.5.2 not implemented");
        }
    }
    log
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The project's test CA certificate (PEM lines).
pub fn ca_pem() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/root.crt");
    let text = std::fs::read_to_string(path).expect("certs/root.crt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
