//! The second console dialect (`mfp-sim --dialect menu`) over real bytes: the login
//! and its prompts without a newline, numbered selections, the menu's answers and
//! job events over raw TCP and over a pseudo-terminal, and the command line's
//! refusals of a bad dialect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serialport::SerialPort;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mfp-sim --dialect menu` with `args`; answers the process and what it
/// announced after `console: `.
fn start(args: &[&str]) -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
        .args(["--dialect", "menu"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mfp-sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let what = first
        .trim()
        .strip_prefix("console: ")
        .unwrap_or_else(|| panic!("first line {first:?}"))
        .to_string();
    (Kill(child), what)
}

/// Reads until what was read ends with `suffix` (prompts have no newline); answers
/// everything read.
fn read_to(r: &mut dyn Read, suffix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(suffix.as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "no {suffix:?} within 10 s; read {:?}",
            String::from_utf8_lossy(&got)
        );
        match r.read(&mut buf) {
            Ok(0) => panic!("closed; read {:?}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(got).expect("UTF-8")
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn login(s: &mut TcpStream, user: &str, password: &str) -> String {
    assert_eq!(read_to(s, "login: "), "MFP-4000 service console\r\nlogin: ");
    s.write_all(format!("{user}\r\n").as_bytes())
        .expect("write");
    assert_eq!(read_to(s, "Password: "), "Password: ");
    s.write_all(format!("{password}\r\n").as_bytes())
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(got.ends_with(b"login: ") || got.ends_with(b"MFP> ")) {
        assert!(Instant::now() < deadline, "no answer to the password");
        match s.read(&mut buf) {
            Ok(0) => panic!("closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8(got).expect("UTF-8")
}

#[test]
fn over_tcp_a_login_selections_and_events_in_menu_words() {
    let (_sim, what) = start(&[
        "--console",
        "tcp:127.0.0.1:0",
        "--time-scale",
        "100",
        "--menu-login",
        "tech:s3cret pass",
    ]);
    let addr = what
        .strip_prefix("tcp:")
        .unwrap_or_else(|| panic!("{what}"))
        .to_string();
    let mut a = connect(&addr);
    // Wrong password: asked again.
    let refused = login(&mut a, "tech", "service");
    assert_eq!(
        refused,
        "\r\nLogin incorrect\r\nMFP-4000 service console\r\nlogin: "
    );
    // The default credentials are not taken when others were given.
    a.write_all(b"service\r\nmfp-4000\r\n").expect("write");
    assert!(read_to(&mut a, "login: ").contains("Login incorrect"));
    a.write_all(b"tech\r\n").expect("write");
    read_to(&mut a, "Password: ");
    a.write_all(b"s3cret pass\r\n").expect("write");
    let welcome = read_to(&mut a, "MFP> ");
    assert!(
        welcome.starts_with("\r\nWelcome, tech.\r\n 1 Settings\r\n"),
        "{welcome:?}"
    );
    // A second console must log in on its own and hears no events before.
    let mut b = connect(&addr);
    assert_eq!(
        read_to(&mut b, "login: "),
        "MFP-4000 service console\r\nlogin: "
    );
    b.write_all(b"1.4\r\n").expect("write");
    assert!(read_to(&mut b, "login: ").starts_with("Please log in first"));

    a.write_all(b"1.1 SMTP_TIMEOUT\r\n").expect("write");
    assert_eq!(
        read_to(&mut a, "MFP> "),
        "SMTP_TIMEOUT            : 60\r\nDone.\r\nMFP> "
    );
    let port = closed_port();
    a.write_all(
        format!(
            "1.3 SMTP_SERVER=127.0.0.1 SMTP_PORT={port} ADMIN_ADDRESS=a@hil.test DEVICE_ADDRESS=d@hil.test SMTP_AUTH_USER=\"a \\\"b\\\"\"\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    assert_eq!(read_to(&mut a, "MFP> "), "Done.\r\nMFP> ");
    a.write_all(b"1.1 SMTP_AUTH_USER\r\n").expect("write");
    assert_eq!(
        read_to(&mut a, "MFP> "),
        "SMTP_AUTH_USER          : \"a \\\"b\\\"\"\r\nDone.\r\nMFP> "
    );
    // Nothing listens: the scan fails with `connect`, told as an event.
    a.write_all(b"4.1 x@hil.test,y@hil.test 1\r\n")
        .expect("write");
    assert_eq!(
        read_to(&mut a, "MFP> "),
        "Job #1 accepted\r\nDone.\r\nMFP> "
    );
    let ev = read_to(&mut a, "MFP> ");
    assert!(
        ev.starts_with("\r\n*** Job #1 aborted [connect] ") && ev.ends_with("\r\nMFP> "),
        "{ev:?}"
    );
    a.write_all(b"4.4 1\r\n").expect("write");
    let st = read_to(&mut a, "MFP> ");
    assert!(st.starts_with("Job #1 aborted [connect] "), "{st:?}");
    assert!(st.ends_with("\r\nDone.\r\nMFP> "), "{st:?}");
    // The console that has not logged in heard nothing of it.
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    assert!(
        !matches!(b.read(&mut buf), Ok(n) if n > 0),
        "an event before the login"
    );
    // Binary and over-long lines are refused; the console goes on.
    a.write_all(b"\xff\xfe\r\n").expect("write");
    assert_eq!(
        read_to(&mut a, "MFP> "),
        "Error [config]: line is not UTF-8 text; ignored\r\nMFP> "
    );
    let mut long = vec![b'1'; 10_000];
    long.extend_from_slice(b"\r\n");
    a.write_all(&long).expect("write");
    assert!(read_to(&mut a, "MFP> ").starts_with("Error [config]: line of 10000 bytes"));
    a.write_all(b"4.2 toner-empty\r\n").expect("write");
    assert_eq!(
        read_to(&mut a, "MFP> "),
        "Job #2 accepted\r\nDone.\r\nMFP> "
    );
    // No notification address: config.
    assert!(read_to(&mut a, "MFP> ").starts_with("\r\n*** Job #2 aborted [config] "));
}

#[test]
fn over_a_pty_the_login_screen_waits_for_the_first_reader() {
    let (_sim, path) = start(&["--console", "pty"]);
    let mut port = serialport::new(&path, 115_200)
        .timeout(Duration::from_millis(200))
        .open_native()
        .expect("open the pty");
    // Printed when the device started, read now.
    assert_eq!(
        read_to(&mut port, "login: "),
        "MFP-4000 service console\r\nlogin: "
    );
    // A key press shows the login screen again.
    port.write_all(b"\r\n").expect("write");
    assert_eq!(
        read_to(&mut port, "login: "),
        "MFP-4000 service console\r\nlogin: "
    );
    port.write_all(b"service\r\n").expect("write");
    read_to(&mut port, "Password: ");
    port.write_all(b"mfp-4000\r\n").expect("write");
    read_to(&mut port, "MFP> ");
    port.write_all(b"1.2 SMTP_PORT 2525\r\n1.1 SMTP_PORT\r\n")
        .expect("write");
    let got = read_to(
        &mut port,
        "SMTP_PORT               : 2525\r\nDone.\r\nMFP> ",
    );
    assert_eq!(
        got,
        "Done.\r\nMFP> SMTP_PORT               : 2525\r\nDone.\r\nMFP> "
    );
    let _ = port.clear(serialport::ClearBuffer::All);
}

#[test]
fn a_bad_dialect_or_login_is_refused_naming_the_flag() {
    for (args, want) in [
        (
            vec!["--dialect", "fancy"],
            "--dialect \"fancy\": must be one of reference, menu",
        ),
        (
            vec!["--menu-login", "a:b"],
            "--menu-login: only with --dialect menu",
        ),
        (
            vec!["--dialect", "menu", "--menu-login", "nopassword"],
            "--menu-login: expected USER:PASSWORD",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
            .args(["--console", "stdio"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run mfp-sim");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
