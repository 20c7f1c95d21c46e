//! Gaps real clients found in the fake servers, over real sockets: a scripted reply at
//! `connect` is in the transcript and goes out as a proper multi-line reply, and an
//! AUTH (or POP3 login) attempt a client abandoned after an error is in the record.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use hil_mail::pop3_server::Pop3Connection;
use hil_mail::scenario::Scenario;
use hil_mail::serve::{self, Running};
use hil_mail::smtp_server::Connection;

fn start(toml: &str) -> (tokio::runtime::Runtime, Running) {
    let scenario = Scenario::parse(Path::new("gaps.toml"), toml).expect("scenario");
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

/// Everything the server sends until it closes.
fn read_all(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read until closed");
    out
}

fn smtp_conns(run: &Running) -> Vec<Connection> {
    run.take_smtp(Duration::from_secs(10)).connections
}

fn pop_conns(run: &Running) -> Vec<Pop3Connection> {
    let p = run.pop3.as_ref().expect("pop3");
    assert!(p.wait_idle(Duration::from_secs(10)));
    p.take()
}

fn texts(t: &[hil_mail::smtp::Entry]) -> Vec<String> {
    t.iter()
        .map(|e| format!("{:?} {}", e.dir, e.text))
        .collect()
}

#[test]
fn a_multi_line_reply_at_connect_goes_out_as_one_and_is_in_the_transcript() {
    let (_rt, run) = start(
        r#"
[smtp]
[[smtp.faults]]
step = "connect"
action = "reply"
code = 554
text = "5.3.2 mx.hil.test No SMTP service here\nsecond line"
[pop3]
[[pop3.faults]]
step = "connect"
action = "reply"
code = 500
text = "-ERR [SYS/TEMP] busy\nsecond line"
[[check]]
steps = [{ expect = "554" }]
"#,
    );
    let got = read_all(run.smtp_addr().expect("smtp"));
    assert_eq!(
        got,
        "554-5.3.2 mx.hil.test No SMTP service here\r\n554 second line\r\n"
    );
    let c = smtp_conns(&run);
    let t = texts(&c[0].transcript);
    assert!(
        t.contains(&"S 554-5.3.2 mx.hil.test No SMTP service here".to_string())
            && t.contains(&"S 554 second line".to_string()),
        "{t:#?}"
    );
    let got = read_all(run.pop3_endpoints()[0].1);
    assert_eq!(got, "-ERR [SYS/TEMP] busy\r\nsecond line\r\n");
    let c = pop_conns(&run);
    let t = texts(&c[0].transcript);
    assert!(
        t.contains(&"S -ERR [SYS/TEMP] busy".to_string())
            && t.contains(&"S second line".to_string()),
        "{t:#?}"
    );
}

#[test]
fn a_raw_line_at_connect_is_in_the_transcript() {
    let (_rt, run) = start(
        r#"
[smtp]
[[smtp.faults]]
step = "connect"
action = "line"
text = "421 go away\nnow"
[[check]]
steps = [{ expect = "421" }]
"#,
    );
    assert_eq!(
        read_all(run.smtp_addr().expect("smtp")),
        "421 go away\r\nnow\r\n"
    );
    let t = texts(&smtp_conns(&run)[0].transcript);
    assert!(
        t.contains(&"S 421 go away".to_string()) && t.contains(&"S now".to_string()),
        "{t:#?}"
    );
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn open(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c = Client {
            w: s.try_clone().expect("clone"),
            r: BufReader::new(s),
        };
        c.reply();
        c
    }
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    fn say(&mut self, line: &str) -> String {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.reply()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn smtp_auth_attempts_abandoned_after_an_error_are_recorded() {
    let (_rt, run) = start(
        r#"
[smtp]
auth = ["plain", "login"]
accounts = [{ user = "printer", password = "pw" }]
[[smtp.faults]]
step = "auth"
nth = 1
action = "reply"
code = 535
text = "5.7.3 Authentication unsuccessful"
[[check]]
steps = [{ expect = "220" }]
"#,
    );
    let addr = run.smtp_addr().expect("smtp");
    // 1: refused by the scripted 535 at the AUTH command; the client gives up.
    let mut c = Client::open(addr);
    c.say("EHLO me");
    assert!(c
        .say(&format!("AUTH PLAIN {}", b64("\0printer\0pw")))
        .starts_with("535"));
    assert!(c.say("QUIT").starts_with("221"));
    // 2: a mechanism the server does not offer.
    let mut c = Client::open(addr);
    c.say("EHLO me");
    c.say("AUTH FOO");
    assert!(c.say("AUTH CRAM-MD5").starts_with("504"));
    c.say("QUIT");
    // 3: cancelled with `*` at the first challenge.
    let mut c = Client::open(addr);
    c.say("EHLO me");
    c.say("AUTH FOO");
    assert!(c.say("AUTH LOGIN").starts_with("334"));
    assert!(c.say("*").starts_with("501"));
    c.say("QUIT");
    // 4: the connection closed in the middle of the exchange.
    let mut c = Client::open(addr);
    c.say("EHLO me");
    c.say("AUTH FOO");
    assert!(c.say("AUTH LOGIN").starts_with("334"));
    drop(c);
    let conns = smtp_conns(&run);
    let auth: Vec<Vec<(String, bool, String)>> = conns
        .iter()
        .map(|c| {
            c.auth
                .iter()
                .map(|a| (a.mechanism.clone(), a.ok, a.detail.clone()))
                .collect()
        })
        .collect();
    assert_eq!(auth.len(), 4, "{auth:#?}");
    assert!(
        matches!(&auth[0][..], [(m, false, d)] if m == "PLAIN" && d.contains("scripted")),
        "{auth:#?}"
    );
    assert!(
        matches!(&auth[1][..], [(f, false, _), (m, false, d)] if f == "?" && m == "CRAM-MD5" && d.contains("504")),
        "{auth:#?}"
    );
    assert!(
        matches!(&auth[2][..], [_, (m, false, d)] if m == "LOGIN" && d.contains("cancelled")),
        "{auth:#?}"
    );
    assert!(
        matches!(&auth[3][..], [_, (m, false, d)] if m == "LOGIN" && d.contains("abandoned")),
        "{auth:#?}"
    );
}

#[test]
fn pop3_login_attempts_that_failed_are_recorded() {
    let (_rt, run) = start(
        r#"
[pop3]
apop = true
accounts = [{ user = "printer", password = "pw" }]
[[pop3.faults]]
step = "pass"
nth = 1
action = "reply"
code = 500
text = "-ERR [IN-USE] mailbox locked"
[[check]]
server = "pop3"
steps = [{ expect = "+OK" }]
"#,
    );
    let addr = run.pop3_endpoints()[0].1;
    let mut c = Client::open(addr);
    c.say("USER printer");
    assert!(c.say("PASS pw").starts_with("-ERR [IN-USE]"));
    c.say("USER printer");
    assert!(c.say("PASS wrong").starts_with("-ERR"));
    assert!(c.say("AUTH PLAIN").starts_with("-ERR"));
    assert!(c
        .say("APOP printer 0123456789abcdef0123456789abcdef")
        .starts_with("-ERR"));
    c.say("USER printer");
    assert!(c.say("PASS pw").starts_with("+OK"));
    c.say("QUIT");
    let conns = pop_conns(&run);
    let tried: Vec<(String, Option<String>, bool)> = conns[0]
        .auth
        .iter()
        .map(|a| (a.mechanism.clone(), a.user.clone(), a.ok))
        .collect();
    let p = |m: &str, ok| (m.to_string(), Some("printer".to_string()), ok);
    assert_eq!(
        tried,
        [
            p("USER/PASS", false),
            p("USER/PASS", false),
            ("AUTH PLAIN".to_string(), None, false),
            p("APOP", false),
            p("USER/PASS", true),
        ]
    );
    assert_eq!(conns[0].logins, ["printer (USER/PASS)"]);
}
