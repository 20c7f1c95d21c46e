//! Running the `hil serve` binary from a test or a bench: start it on a scenario,
//! find its endpoints, read its memory, stop it with SIGTERM and collect what it
//! printed and wrote.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Both servers, one plain listener each, one account on each.
pub const FLOOD_SCENARIO: &str = r#"
description = "flood target"
[smtp]
idle_timeout_s = 600
[pop3]
idle_timeout_s = 600
accounts = [{ user = "u", password = "p" }]
[[check]]
steps = [{ expect = "220" }]
"#;

pub struct Serve {
    child: Child,
    dir: PathBuf,
    endpoints: Vec<String>,
    stdout: Vec<String>,
}

/// What `hil serve` left: its output, its log and its transcripts file.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub transcripts: String,
}

fn hil() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hil"))
}

impl Serve {
    /// `hil -vv serve` on `scenario` (TOML text), loopback, any free ports.
    pub fn start(scenario: &str) -> Serve {
        Serve::start_with(scenario, &["-vv"])
    }

    /// `hil GLOBAL serve` on `scenario`.
    pub fn start_with(scenario: &str, global: &[&str]) -> Serve {
        Serve::start_bin(hil().as_os_str(), scenario, global)
    }

    /// [`Serve::start_with`] with another build of `hil`.
    pub fn start_bin(bin: &std::ffi::OsStr, scenario: &str, global: &[&str]) -> Serve {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hil-serve-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("scenario.toml"), scenario).expect("scenario");
        let certs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certs");
        let mut child = Command::new(bin)
            .args(global)
            .arg("serve")
            .arg("--scenario")
            .arg(dir.join("scenario.toml"))
            .arg("--transcripts")
            .arg(dir.join("transcripts.jsonl"))
            .arg("--certs")
            .arg(certs)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).expect("stderr file"),
            ))
            .spawn()
            .expect("hil serve starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut stdout = Vec::new();
        loop {
            let mut l = String::new();
            if out.read_line(&mut l).expect("read stdout") == 0 {
                panic!("hil serve ended before it was ready: {stdout:?}");
            }
            let l = l.trim_end().to_string();
            stdout.push(l.clone());
            if l == "ready" {
                break;
            }
        }
        // The rest of standard output is read when it stops.
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
        });
        let endpoints = stdout
            .iter()
            .filter(|l| l.trim_start().starts_with("smtp ") || l.trim_start().starts_with("pop3 "))
            .cloned()
            .collect();
        Serve {
            child,
            dir,
            endpoints,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address of the first endpoint of `server` (`smtp` or `pop3`).
    pub fn endpoint(&self, server: &str) -> SocketAddr {
        self.endpoints
            .iter()
            .find(|l| l.trim_start().starts_with(server))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {server} endpoint in {:?}", self.endpoints))
    }

    /// SIGTERM, then what it printed and wrote.
    pub fn stop(mut self) -> Output {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = self.child.wait().expect("hil serve ends");
        assert!(status.success(), "hil serve ended with {status}");
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let o = Output {
            stdout: self.stdout.join("\n"),
            stderr: read("stderr"),
            transcripts: read("transcripts.jsonl"),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        o
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// The process's resident memory now, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The process's peak resident memory so far, KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// One POP3 client sending `lines` unknown commands of `len` bytes (CRLF included),
/// reading every answer, then QUIT.
pub fn pop3_flood(addr: SocketAddr, lines: usize, len: usize) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut l = String::new();
        let mut n = 0;
        while n <= lines + 1 {
            l.clear();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            n += 1;
            if l.starts_with("+OK") && l.contains("signing off") {
                return n;
            }
        }
        n
    });
    let mut line = b"XFLOOD ".to_vec();
    line.resize(len.saturating_sub(2), b'x');
    line.extend_from_slice(b"\r\n");
    let block = line.repeat(64);
    let mut sent = 0;
    while sent < lines {
        let k = (lines - sent).min(64);
        w.write_all(&block[..k * line.len()]).expect("flood");
        sent += k;
    }
    w.write_all(b"QUIT\r\n").expect("quit");
    let n = reader.join().expect("reader");
    assert_eq!(n, lines + 2, "greeting, one answer a line, QUIT answered");
}

/// A well-behaved POP3 login: USER, PASS, STAT, QUIT all answered +OK.
pub fn pop3_login(addr: SocketAddr, user: &str, pass: &str) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut l = String::new();
    for cmd in [
        "",
        &format!("USER {user}"),
        &format!("PASS {pass}"),
        "STAT",
        "QUIT",
    ] {
        if !cmd.is_empty() {
            w.write_all(format!("{cmd}\r\n").as_bytes()).expect("write");
        }
        l.clear();
        r.read_line(&mut l).expect("answer");
        assert!(l.starts_with("+OK"), "{cmd}: {l}");
    }
}
