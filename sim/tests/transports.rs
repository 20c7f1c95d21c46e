//! The console over standard input/output and over raw TCP (as ser2net serves a port):
//! the same protocol as over the pty, and `EVENT` lines reach every open console.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn stdio_console_answers_and_exits_at_end_of_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
        .args(["--console", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mfp-sim");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"get smtp.port\r\nset smtp.port 2525\nget smtp.port\r\nset smtp.port 0\r\nnonsense\r\n")
        .expect("write");
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(
        &lines[..5],
        &["smtp.port=25", "OK", "OK", "smtp.port=2525", "OK"]
    );
    assert!(
        lines[5].starts_with("ERR config smtp.port: 0 refused"),
        "{}",
        lines[5]
    );
    assert!(
        lines[6].starts_with("ERR config unknown command"),
        "{}",
        lines[6]
    );
}

fn read_until(r: &mut BufReader<TcpStream>, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let mut l = String::new();
        let n = r.read_line(&mut l).expect("read a console line");
        assert!(n > 0, "console closed; seen {seen:?}");
        let l = l.trim_end().to_string();
        let done = l == want;
        seen.push(l);
        if done {
            return seen;
        }
    }
}

#[test]
fn tcp_console_serves_several_connections_and_events_reach_all() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
        .args(["--console", "tcp:127.0.0.1:0", "--time-scale", "100"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mfp-sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let _guard = Kill(child);
    let addr = first
        .trim()
        .strip_prefix("console: tcp:")
        .unwrap_or_else(|| panic!("first line {first:?}"))
        .to_string();
    let open = || {
        let s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let w = s.try_clone().expect("clone");
        (BufReader::new(s), w)
    };
    let (mut r1, mut w1) = open();
    let (mut r2, mut w2) = open();
    w2.write_all(b"get smtp.timeout\r\n").expect("write");
    assert_eq!(read_until(&mut r2, "OK"), vec!["smtp.timeout=60", "OK"]);
    // Nothing listens on port 1 of loopback: the job fails with `connect`.
    w1.write_all(b"apply smtp.server=127.0.0.1 smtp.port=1 admin.address=a@hil.test device.address=d@hil.test\r\nscan send x@hil.test 1\r\n")
        .expect("write");
    let seen = read_until(&mut r1, "OK");
    assert_eq!(seen, vec!["OK"]);
    let seen = read_until(&mut r1, "OK");
    assert_eq!(seen, vec!["JOB 1", "OK"]);
    for r in [&mut r1, &mut r2] {
        let mut l = String::new();
        r.read_line(&mut l).expect("event");
        assert!(l.starts_with("EVENT JOB 1 failed connect "), "{l:?}");
    }
    // A console that goes away does not stop the others.
    drop((r2, w2));
    w1.write_all(b"job 1\r\n").expect("write");
    let seen = read_until(&mut r1, "OK");
    assert!(seen[0].starts_with("JOB 1 failed connect "), "{seen:?}");
}

/// Runs lines through a stdio console and answers its output lines.
fn stdio(lines: &str) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
        .args(["--console", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mfp-sim");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(lines.as_bytes()).expect("write");
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(child.wait().expect("wait").success());
    out.lines().map(str::to_string).collect()
}

#[test]
fn the_clock_refuses_times_it_cannot_keep_and_keeps_serving() {
    let out = stdio("clock set 9999-12-31T23:59:59Z\r\nclock set 1900-01-01T00:00:00Z\r\nclock set 2031-05-06T07:08:09Z\r\nclock get\r\n");
    assert!(
        out[0].starts_with("ERR config clock: ") && out[0].contains("9000"),
        "{}",
        out[0]
    );
    assert!(out[1].starts_with("ERR config clock: "), "{}", out[1]);
    assert_eq!(out[2], "OK");
    assert!(out[3].starts_with("clock=2031-05-06T07:0"), "{}", out[3]);
}

#[test]
fn a_stray_cert_import_does_not_swallow_the_next_commands() {
    let out = stdio("cert import\r\nget smtp.port\r\nget smtp.port\r\ncert import\r\n-----BEGIN CERTIFICATE-----\r\nnot base64!\r\nget smtp.port\r\n");
    assert!(
        out[0].starts_with("ERR config cert import: the line after"),
        "{}",
        out[0]
    );
    assert_eq!(&out[1..3], &["smtp.port=25", "OK"]);
    assert!(
        out[3].starts_with("ERR config cert import: a PEM line"),
        "{}",
        out[3]
    );
    assert_eq!(&out[4..6], &["smtp.port=25", "OK"]);
}

#[test]
fn a_refused_password_is_not_echoed() {
    let out = stdio("set smtp.auth.password \"hunter2\\\"x\"\r\nset pop.password ユユ\r\n");
    for l in &out {
        assert!(l.starts_with("ERR config ") && l.contains("*** ("), "{l}");
        assert!(!l.contains("hunter2") && !l.contains('ユ'), "{l}");
    }
}
