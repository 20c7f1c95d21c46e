//! SPEC §6: passwords and tokens are write-only. In both console dialects, over a
//! real TCP console, `get` of every secret key (and the list of every key) shows
//! `***` — set or not, never the value — while the device still uses what was set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The secret keys, each with a value to set (a space, quotes and a backslash in one).
const SECRETS: &[(&str, &str)] = &[
    ("smtp.auth.password", "S3cret pw"),
    ("pop.password", "pop-Pa55"),
    ("smtp.auth.token", "ya29.token-value"),
];

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mfp-sim --console tcp:127.0.0.1:0 ARGS…` and connects to its console.
fn start(args: &[&str]) -> (Kill, TcpStream) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
        .args(["--console", "tcp:127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mfp-sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let addr = first
        .trim()
        .strip_prefix("console: tcp:")
        .unwrap_or_else(|| panic!("first line {first:?}"))
        .to_string();
    let s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    (Kill(child), s)
}

/// Sends `line` (when not empty) and reads until what was read ends with `suffix`.
fn say(s: &mut TcpStream, line: &str, suffix: &str) -> String {
    if !line.is_empty() {
        s.write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(suffix.as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "{line:?}: no {suffix:?} within 10 s; read {:?}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("closed; read {:?}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8(got).expect("UTF-8")
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn no_secret_in(what: &str, answer: &str) {
    for (_, v) in SECRETS {
        assert!(
            !answer.contains(v),
            "{what} shows the secret {v:?}: {answer:?}"
        );
    }
}

#[test]
fn reference_dialect_never_shows_a_secret() {
    let (_sim, mut s) = start(&[]);
    for (k, _) in SECRETS {
        // Not set yet: still `***` (write-only tells nothing, not even "empty").
        assert_eq!(
            say(&mut s, &format!("get {k}"), "OK\r\n"),
            format!("{k}=***\r\nOK\r\n")
        );
    }
    for (k, v) in SECRETS {
        assert_eq!(
            say(&mut s, &format!("set {k} {}", quoted(v)), "\r\n"),
            "OK\r\n"
        );
        let got = say(&mut s, &format!("get {k}"), "OK\r\n");
        assert_eq!(got, format!("{k}=***\r\nOK\r\n"));
    }
    let all = say(&mut s, "show", "OK\r\n");
    for (k, _) in SECRETS {
        assert!(all.contains(&format!("\r\n{k}=***\r\n")), "{all:?}");
    }
    no_secret_in("show", &all);
    // Other values still read back as set.
    say(&mut s, "set smtp.auth.user \"a user\"", "OK\r\n");
    assert_eq!(
        say(&mut s, "get smtp.auth.user", "OK\r\n"),
        "smtp.auth.user=\"a user\"\r\nOK\r\n"
    );
}

#[test]
fn menu_dialect_never_shows_a_secret() {
    let (_sim, mut s) = start(&["--dialect", "menu"]);
    say(&mut s, "", "login: ");
    say(&mut s, "service", "Password: ");
    say(&mut s, "mfp-4000", "MFP> ");
    let menu_key = |k: &str| k.replace('.', "_").to_ascii_uppercase();
    for (k, v) in SECRETS {
        let mk = menu_key(k);
        let before = say(&mut s, &format!("1.1 {mk}"), "MFP> ");
        assert!(before.contains(": ***\r\n"), "{before:?}");
        let set = say(&mut s, &format!("1.2 {mk} {}", quoted(v)), "MFP> ");
        assert!(set.starts_with("Done."), "{set:?}");
        let after = say(&mut s, &format!("1.1 {mk}"), "MFP> ");
        assert!(
            after.starts_with(&mk) && after.contains(": ***\r\n"),
            "{after:?}"
        );
        no_secret_in("1.1", &after);
    }
    let all = say(&mut s, "1.4", "MFP> ");
    for (k, _) in SECRETS {
        let line = all
            .lines()
            .find(|l| l.starts_with(&format!("{} ", menu_key(k))))
            .unwrap_or_else(|| panic!("1.4 lists no {k}: {all:?}"));
        assert!(line.trim_end().ends_with(": ***"), "{line:?}");
    }
    no_secret_in("1.4", &all);
}
