//! Each connection's record lists the scripted faults that fired on it (step,
//! occurrence, action in words), over real sockets: a fault at a step the client
//! reaches is there; one at a step it never reaches is not, nor an `nth = 2` fault on
//! a step reached once.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hil_mail::faults::FiredFault;
use hil_mail::scenario::Scenario;
use hil_mail::serve::{self, Running};

fn start(toml: &str) -> (tokio::runtime::Runtime, Running) {
    let scenario = Scenario::parse(Path::new("fired.toml"), toml).expect("scenario");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let run = rt
        .block_on(serve::start(
            &scenario,
            &hil_mail::netaddr::BindAddr::loopback(),
            Path::new("."),
            1.0,
        ))
        .expect("servers");
    (rt, run)
}

/// Sends each line and reads one answer after it (a whole multi-line SMTP reply);
/// `None` reads the greeting. Answers the first line of each answer.
fn converse(addr: SocketAddr, lines: &[Option<&str>]) -> Vec<String> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut answers = Vec::new();
    for l in lines {
        if let Some(l) = l {
            w.write_all(format!("{l}\r\n").as_bytes()).expect("write");
        }
        let mut first = String::new();
        loop {
            let mut line = String::new();
            let n = r.read_line(&mut line).expect("read");
            if first.is_empty() {
                first = line.trim_end().to_string();
            }
            // An SMTP continuation line (`250-SIZE …`): read on.
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        answers.push(first);
    }
    answers
}

fn fired(step: &str, occurrence: u32, action: &str) -> FiredFault {
    FiredFault {
        step: step.into(),
        occurrence,
        action: action.into(),
    }
}

#[test]
fn smtp_records_the_faults_that_fired_and_only_those() {
    let (_rt, run) = start(
        r#"
[smtp]
[[smtp.faults]]
step = "mail"
action = "reply"
code = 250
text = "2.1.0 scripted ok"
[[smtp.faults]]
step = "data"
action = "drop"
[[smtp.faults]]
step = "ehlo"
nth = 2
action = "reply"
code = 421
text = "4.3.2 bye"
[[check]]
steps = [{ expect = "250" }]
"#,
    );
    let addr = run.smtp_addr().expect("smtp");
    let got = converse(
        addr,
        &[
            None,
            Some("EHLO me"),
            Some("MAIL FROM:<a@hil.test>"),
            Some("QUIT"),
        ],
    );
    assert_eq!(got[2], "250 2.1.0 scripted ok", "{got:?}");
    let conns = run.take_smtp(Duration::from_secs(10)).connections;
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].fired_faults,
        [fired("mail", 1, "reply 250 2.1.0 scripted ok")]
    );
    // Serialised with the record, and read back.
    let json = serde_json::to_value(&conns[0]).expect("json");
    let back: Vec<FiredFault> =
        serde_json::from_value(json["fired_faults"].clone()).expect("fired faults");
    assert_eq!(back, conns[0].fired_faults);
}

#[test]
fn pop3_records_the_faults_that_fired_and_only_those() {
    let (_rt, run) = start(
        r#"
[smtp]
[pop3]
accounts = [{ user = "printer", password = "pop-Pass-1" }]
[[pop3.faults]]
step = "user"
action = "line"
text = "+OK scripted"
[[pop3.faults]]
step = "retr"
action = "drop"
[[pop3.faults]]
step = "pass"
nth = 2
action = "hang"
[[check]]
steps = [{ expect = "+OK" }]
"#,
    );
    let addr = run.pop3_endpoints()[0].1;
    let got = converse(
        addr,
        &[
            None,
            Some("USER printer"),
            Some("PASS pop-Pass-1"),
            Some("QUIT"),
        ],
    );
    assert_eq!(got[1], "+OK scripted", "{got:?}");
    assert!(got[2].starts_with("+OK"), "{got:?}");
    let p = run.pop3.as_ref().expect("pop3");
    assert!(p.wait_idle(Duration::from_secs(10)));
    let conns = p.take();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].fired_faults,
        [fired("user", 1, "send \"+OK scripted\"")]
    );
}
