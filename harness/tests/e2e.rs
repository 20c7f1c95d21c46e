//! End to end over real sockets and a real pty: the embedded simulated device (as
//! `hil sim`) sends a scan, an alert and a counter mail to the fake SMTP server, and
//! what arrives is checked byte for byte.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hil::device::{Console, Endpoint, JobEnd, Profile, TriggerAnswer};
use hil::runner::SIM_PROFILE;
use hil::verdict::expected_scan_bytes;
use hil_mail::smtp::SmtpConfig;
use hil_mail::smtp_server::{Observations, SmtpServer};
use mail_parser::{MessageParser, MimeHeaders};

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hil sim` with `console` and answers the process and the line it announced.
fn start_sim(console: &str) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["sim", "--console", console, "--time-scale", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hil sim");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("first line");
    let what = line
        .trim()
        .strip_prefix("console: ")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_string();
    (Sim(child), what)
}

struct Bench {
    _sim: Sim,
    rt: tokio::runtime::Runtime,
    server: SmtpServer,
    con: Console,
}

fn bench(console: &str, config: SmtpConfig) -> Bench {
    let (sim, what) = start_sim(console);
    let endpoint = match what.strip_prefix("tcp:") {
        Some(addr) => Endpoint::Tcp { addr: addr.into() },
        None => Endpoint::Serial {
            path: what,
            line: Default::default(),
        },
    };
    let profile = Arc::new(Profile::parse("sim.toml", SIM_PROFILE).expect("profile"));
    let con = Console::open(&endpoint, profile).expect("open console");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            config,
        ))
        .expect("server");
    let mut b = Bench {
        _sim: sim,
        rt,
        server,
        con,
    };
    let port = b.server.addr().port().to_string();
    let pairs: Vec<(String, String)> = [
        ("smtp.server", "127.0.0.1"),
        ("smtp.port", port.as_str()),
        ("admin.address", "admin@hil.test"),
        ("device.address", "mfp@hil.test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let a = b.con.apply(&keyed(&pairs), &[]).expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok);
    b
}

impl Bench {
    fn run(&mut self, op: &str, params: &[(&str, &str)]) -> (JobEnd, Observations) {
        let TriggerAnswer::Job(id) = self.con.trigger(op, params).expect("trigger") else {
            panic!("{op} refused");
        };
        let end = self
            .con
            .wait_job(id, Duration::from_secs(20))
            .expect("job end");
        assert!(self.server.wait_idle(Duration::from_secs(5)));
        (end, self.server.take())
    }
}

fn no_bare_lf(data: &[u8]) {
    for (i, w) in data.windows(2).enumerate() {
        assert!(
            !(w[1] == b'\n' && w[0] != b'\r'),
            "bare LF at byte {}",
            i + 1
        );
    }
    assert_ne!(data.first(), Some(&b'\n'));
}

#[test]
fn scan_alert_and_counter_arrive_intact_over_a_pty() {
    let mut b = bench("pty", SmtpConfig::default());
    b.con
        .op_ok(
            "user_add",
            &[
                ("name", "taro"),
                ("password", "secret-pw"),
                ("address", "taro@hil.test"),
            ],
            &["password"],
        )
        .expect("user add");
    b.con
        .op_ok("notify_add", &[("address", "ops@hil.test")], &[])
        .expect("notify add");
    b.con
        .op_ok("notify_add", &[("address", "boss@hil.test")], &[])
        .expect("notify add");

    // A scan of 57 KB to two recipients, as user taro.
    let (end, obs) = b.run(
        "scan_as_user",
        &[
            ("to", "a@hil.test,b@hil.test"),
            ("size_kb", "57"),
            ("user", "taro"),
        ],
    );
    assert_eq!(end, JobEnd::Done);
    assert_eq!(obs.connections.len(), 1);
    let [m] = obs.messages.as_slice() else {
        panic!("{} messages", obs.messages.len())
    };
    assert_eq!(m.greeted_with, "EHLO");
    assert_eq!(m.helo, "mfp-sim");
    assert_eq!(m.mail_from, "admin@hil.test");
    assert_eq!(m.recipients, vec!["a@hil.test", "b@hil.test"]);
    assert_eq!(
        m.size_param,
        Some(m.data.len()),
        "SIZE= is the message size"
    );
    no_bare_lf(&m.data);
    assert_eq!(m.long_lines, 0);
    let msg = MessageParser::default().parse(&m.data).expect("MIME");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("taro@hil.test")
    );
    let to: Vec<_> = msg
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, vec!["a@hil.test", "b@hil.test"]);
    assert!(msg.subject().is_some_and(|s| s.contains("Scanned")));
    assert!(msg.date().is_some());
    assert!(msg.message_id().is_some());
    let atts: Vec<_> = msg.attachments().collect();
    assert_eq!(atts.len(), 1);
    assert_eq!(
        atts[0].contents(),
        expected_scan_bytes(57).as_slice(),
        "attachment byte for byte"
    );
    assert!(atts[0]
        .attachment_name()
        .is_some_and(|n| n.ends_with(".bin")));
    // The server kept its own parsed view of the message.
    let mime = m.mime.as_ref().expect("parsed MIME recorded");
    assert_eq!(mime.from, vec!["taro@hil.test"]);
    assert_eq!(mime.parts.len(), 2);
    assert!(mime
        .parts
        .iter()
        .any(|p| p.filename.is_some() && p.size == 57 * 1024));

    // An alert: to every notification address, From the device address. Its text has
    // a line holding one dot, which must survive dot-stuffing.
    let (end, obs) = b.run("alert", &[("kind", "paper_jam")]);
    assert_eq!(end, JobEnd::Done);
    let [m] = obs.messages.as_slice() else {
        panic!("{} messages", obs.messages.len())
    };
    assert_eq!(m.mail_from, "admin@hil.test");
    assert_eq!(m.recipients, vec!["ops@hil.test", "boss@hil.test"]);
    no_bare_lf(&m.data);
    let text = String::from_utf8_lossy(&m.data);
    assert!(
        text.contains("\r\n.\r\nThis line follows a line holding a single dot.\r\n"),
        "{text}"
    );
    let msg = MessageParser::default().parse(&m.data).expect("MIME");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("mfp@hil.test")
    );
    assert!(msg.subject().is_some_and(|s| s.contains("paper_jam")));
    assert_eq!(msg.attachments().count(), 0);

    // A counter mail; lines starting with dots come through unstuffed.
    let (end, obs) = b.run("counter", &[]);
    assert_eq!(end, JobEnd::Done);
    let [m] = obs.messages.as_slice() else {
        panic!("{} messages", obs.messages.len())
    };
    assert_eq!(m.recipients, vec!["ops@hil.test", "boss@hil.test"]);
    let text = String::from_utf8_lossy(&m.data);
    assert!(
        text.contains("\r\n.total: 12345\r\n..color: 2345\r\n...mono: 10000\r\n"),
        "{text}"
    );
    let msg = MessageParser::default().parse(&m.data).expect("MIME");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("mfp@hil.test")
    );

    // The user's password never reached the console log unmasked.
    let log = b.con.take_log();
    assert!(log.iter().any(|l| l.text.contains("user add taro ***")));
    assert!(log.iter().all(|l| !l.text.contains("secret-pw")));
    drop(b.rt);
}

#[test]
fn specified_envelope_sender_and_a_refused_recipient_over_tcp_console() {
    let config = SmtpConfig {
        policy: hil_mail::smtp::Policy {
            recipients: vec![hil_mail::smtp::RecipientRule {
                address: "gone@hil.test".into(),
                code: 550,
                text: "5.1.1 User unknown".into(),
            }],
            ..Default::default()
        },
        ..SmtpConfig::default()
    };
    let mut b = bench("tcp:127.0.0.1:0", config);
    let pairs = vec![
        ("envelope_from.mode".to_string(), "specified".to_string()),
        (
            "envelope_from.address".to_string(),
            "bounce@hil.test".to_string(),
        ),
    ];
    b.con.apply(&keyed(&pairs), &[]).expect("apply");
    let (end, obs) = b.run(
        "scan",
        &[("to", "gone@hil.test,here@hil.test"), ("size_kb", "1")],
    );
    assert_eq!(end, JobEnd::Done);
    let [m] = obs.messages.as_slice() else {
        panic!()
    };
    assert_eq!(m.mail_from, "bounce@hil.test");
    assert_eq!(m.recipients, vec!["here@hil.test"]);
    let msg = MessageParser::default().parse(&m.data).expect("MIME");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("mfp@hil.test")
    );
    let report = b.con.job_report(1).expect("job report");
    assert_eq!(report.state, "done");
    let gone = report
        .recipients
        .iter()
        .find(|r| r.address == "gone@hil.test")
        .expect("gone reported");
    assert!(!gone.accepted);
    assert!(gone.detail.starts_with("550 5.1.1"), "{}", gone.detail);
    assert!(report
        .recipients
        .iter()
        .any(|r| r.address == "here@hil.test" && r.accepted));
}

/// A report folder of this test process (so `hil run` writes no `hil-report/` here).
fn report_dir(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("hil-e2e-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

#[test]
fn hil_run_passes_a_subset_end_to_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run",
            "--matrix",
            "classic",
            "--filter",
            "steps/",
            "--report",
            &report_dir("subset"),
        ])
        .output()
        .expect("run hil");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    assert!(!last.starts_with("0 passed"), "{last}");
}

fn run_hil(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .output()
        .expect("run hil");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "hil {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" passed, 0 failed") && !last.starts_with("0 "),
        "{last}"
    );
    stdout
}

#[test]
fn hil_run_drives_an_already_running_device_over_tcp_and_serial() {
    let (_tcp_sim, what) = start_sim("tcp:127.0.0.1:0");
    let device = what.clone();
    let report = report_dir("running-device");
    run_hil(&[
        "run",
        "--matrix",
        "classic",
        "--device",
        &device,
        "--filter",
        "recipients/",
        "--report",
        &report,
    ]);
    let (_pty_sim, path) = start_sim("pty");
    let device = format!("serial:{path},115200");
    let out = run_hil(&[
        "run",
        "--matrix",
        "classic",
        "--device",
        &device,
        "--filter",
        "envelope/",
        "--report",
        &report,
    ]);
    assert!(out.contains(&format!("device {device}")), "{out}");
}

#[test]
fn hil_run_names_a_bad_device_and_a_missing_port() {
    for (device, says) in [
        ("usb:3", "a device is sim, sim:PROGRAM, serial:"),
        ("serial:/dev/does-not-exist", "/dev/does-not-exist"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hil"))
            .args([
                "run",
                "--matrix",
                "classic",
                "--device",
                device,
                "--report",
                &report_dir("bad-device"),
            ])
            .output()
            .expect("run hil");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{device}: {stderr}");
        assert!(stderr.contains(says), "{device}: {stderr}");
    }
}

#[test]
fn a_60_s_timeout_at_time_scale_100_is_reported_as_a_timeout() {
    use hil_mail::faults::{Action, Fault, When};
    let config = SmtpConfig {
        faults: vec![Fault {
            step: hil_mail::smtp::Step::Greeting,
            when: When {
                nth: None,
                probability: None,
            },
            action: Action::Hang,
        }],
        ..SmtpConfig::default()
    };
    let (sim, what) = {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
            .args(["sim", "--console", "pty", "--time-scale", "100"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hil sim");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("first line");
        (
            Sim(child),
            line.trim().trim_start_matches("console: ").to_string(),
        )
    };
    let profile = Arc::new(Profile::parse("sim.toml", SIM_PROFILE).expect("profile"));
    let mut con = Console::open(
        &Endpoint::Serial {
            path: what,
            line: Default::default(),
        },
        profile,
    )
    .expect("console");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            config,
        ))
        .expect("server");
    let port = server.addr().port().to_string();
    let pairs: Vec<(String, String)> = [
        ("smtp.server", "127.0.0.1"),
        ("smtp.port", port.as_str()),
        ("smtp.timeout", "60"),
        ("admin.address", "admin@hil.test"),
        ("device.address", "mfp@hil.test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    con.apply(&keyed(&pairs), &[]).expect("apply");
    let started = std::time::Instant::now();
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")])
        .expect("trigger")
    else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(30)).expect("job end");
    let wall = started.elapsed();
    println!(
        "a 60 s device timeout at time scale 100 took {:.3} s of wall time",
        wall.as_secs_f64()
    );
    match end {
        JobEnd::Failed { class, detail } => {
            assert_eq!(class, "timeout", "{detail}");
            assert!(detail.contains("greeting"), "{detail}");
        }
        JobEnd::Done => panic!("delivered through a server that never answers"),
    }
    assert!(
        wall >= Duration::from_millis(570),
        "gave up after {wall:?}, before 60 s / 100"
    );
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
    drop(sim);
}

/// Pairs with SPEC key names, keyed.
fn keyed(p: &[(String, String)]) -> Vec<(hil_oracle::model::Key, String)> {
    p.iter()
        .map(|(k, v)| (k.parse().expect("a SPEC key"), v.clone()))
        .collect()
}
