//! The fake servers on the address the user names, over IPv4 and IPv6 loopback, and
//! `hil bench-setup`: what it prints, and its reachability checks with the embedded
//! simulated device (driven over its console) and with a device that only sends its
//! own test mail (a plain SMTP client here).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One run at a time: each starts many simulated devices (two cores may be all).
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hil(args: &[&str]) -> Output {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("hil runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_matrix_runs_over_ipv6() {
    // Plain, STARTTLS (the zoo names ::1) with every check, and POP before SMTP.
    for filter in [
        "delivery/",
        "tls/smtp.tls=starttls,smtp.verify.",
        "pop/pop_before_smtp.enabled=on",
    ] {
        let dir = std::env::temp_dir().join(format!("hil-v6-{}", std::process::id()));
        let o = hil(&[
            "run",
            "--bind",
            "::1",
            "--filter",
            filter,
            "--report",
            dir.to_str().expect("utf-8"),
        ]);
        let t = text(&o);
        assert!(o.status.success(), "{filter}: {t}");
        let last = t
            .lines()
            .rev()
            .find(|l| l.ends_with(" failed"))
            .expect("a summary line");
        let passed: usize = last
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!(passed > 0 && last.ends_with(" passed, 0 failed"), "{last}");
        // The device really connected over IPv6.
        let results = std::fs::read_to_string(dir.join("results.jsonl")).expect("results");
        assert!(
            results.contains("connection from [::1]:"),
            "{filter}: no IPv6 peer"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn bench_setup_drives_the_sim_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1", "::1"] {
        let o = hil(&[
            "bench-setup",
            "--bind",
            bind,
            "--device",
            "sim",
            "--time-scale",
            "50",
        ]);
        let t = text(&o);
        assert!(o.status.success(), "{bind}: {t}");
        assert!(t.contains(&format!("smtp.server    {bind}")), "{t}");
        assert!(t.contains("interface      lo ("), "{t}");
        for what in [
            "SMTP: reached",
            "POP3 (POP before SMTP): reached",
            "STARTTLS and the OCSP responder: reached",
        ] {
            assert!(t.contains(&format!("[ ok ] {what}")), "{bind}: {what}: {t}");
        }
        assert!(t.contains("POST /ocsp from "), "{t}");
        assert!(!t.contains("FAIL"), "{t}");
    }
}

#[test]
fn bench_setup_names_what_is_wrong() {
    // An address no interface has: refused before anything listens.
    let o = hil(&["bench-setup", "--bind", "192.0.2.213", "--wait", "0"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("no interface of this machine has 192.0.2.213"),
        "{t}"
    );
    // A link-local address without its zone, and a zone that is no interface.
    let o = hil(&["bench-setup", "--bind", "fe80::1"]);
    assert!(
        text(&o).contains("name the interface it is on"),
        "{}",
        text(&o)
    );
    let o = hil(&["bench-setup", "--bind", "fe80::1%nosuchif9"]);
    assert!(
        text(&o).contains("no network interface \"nosuchif9\""),
        "{}",
        text(&o)
    );
    // A zoo for another address: both zoo checks fail and say how to make one.
    let dir = std::env::temp_dir().join(format!("hil-bench-zoo-{}", std::process::id()));
    let o = hil(&[
        "certs",
        "--out",
        dir.to_str().expect("utf-8"),
        "--host",
        "192.0.2.50",
        "--responder",
        "http://192.0.2.50:8099",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = hil(&[
        "bench-setup",
        "--bind",
        "127.0.0.1",
        "--wait",
        "0",
        "--certs",
        dir.to_str().expect("utf-8"),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("[FAIL] certificates name the server address"),
        "{t}"
    );
    assert!(
        t.contains("[FAIL] responder reachable by the device"),
        "{t}"
    );
    assert!(
        t.contains("hil certs --out bench-certs --host 127.0.0.1"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a console, bench-setup waits for the device's own test mail: here a plain
/// SMTP client sends one to the port it printed.
#[test]
fn bench_setup_waits_for_a_test_mail() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["bench-setup", "--bind", "127.0.0.1", "--wait", "30"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hil runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        let mut l = String::new();
        if out.read_line(&mut l).expect("read") == 0 || Instant::now() > deadline {
            panic!("no smtp.port line in {seen}");
        }
        seen.push_str(&l);
        if let Some(p) = l
            .trim()
            .strip_prefix("smtp.port")
            .and_then(|p| p.trim().parse().ok())
        {
            break p;
        }
    };
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let reply = |r: &mut BufReader<TcpStream>| -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).expect("reply");
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] == b' ' {
                return all;
            }
        }
    };
    assert!(reply(&mut r).starts_with("220"));
    for (cmd, code) in [
        ("EHLO printer.bench\r\n", "250"),
        ("MAIL FROM:<mfp@bench.test>\r\n", "250"),
        ("RCPT TO:<qa@bench.test>\r\n", "250"),
        ("DATA\r\n", "354"),
        ("Subject: test\r\n\r\nhello\r\n.\r\n", "250"),
        ("QUIT\r\n", "221"),
    ] {
        w.write_all(cmd.as_bytes()).expect("write");
        let got = reply(&mut r);
        assert!(got.starts_with(code), "{cmd:?}: {got}");
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = child.wait().expect("exit");
    seen.push_str(&rest);
    assert!(status.success(), "{seen}");
    assert!(
        seen.contains("[ ok ] SMTP: reached from 127.0.0.1:")
            && seen.contains("EHLO printer.bench"),
        "{seen}"
    );
}
