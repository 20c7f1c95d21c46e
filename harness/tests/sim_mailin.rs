//! The simulated device delivers through a third-party SMTP server, mailin-embedded:
//! STARTTLS with AUTH PLAIN and LOGIN, the message arriving intact.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hil::device::{JobEnd, TriggerAnswer};
use hil::verdict::expected_scan_bytes;
use mail_parser::MessageParser;
use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

#[derive(Clone, Default)]
struct Inbox {
    current: Arc<Mutex<Vec<u8>>>,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    logins: Arc<Mutex<Vec<String>>>,
}

impl Handler for Inbox {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.current.lock().expect("lock").clear();
        OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.lock().expect("lock").extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        let m = std::mem::take(&mut *self.current.lock().expect("lock"));
        self.messages.lock().expect("lock").push(m);
        OK
    }
    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check(user, password, "PLAIN")
    }
    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check(user, password, "LOGIN")
    }
}

impl Inbox {
    fn check(&mut self, user: &str, password: &str, how: &str) -> Response {
        if user == "printer" && password == "s3cret-Pass" {
            self.logins.lock().expect("lock").push(how.to_string());
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

fn deliver(method: &str) -> Inbox {
    // mailin-embedded takes rustls's process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs");
    let inbox = Inbox::default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let mut server = Server::new(inbox.clone());
    server
        .with_name("mailin.hil.test")
        .with_ssl(SslConfig::SelfSigned {
            cert_path: certs.join("valid.crt").display().to_string(),
            key_path: certs.join("valid.key").display().to_string(),
        })
        .expect("ssl")
        .with_auth(AuthMechanism::Plain)
        .with_auth(AuthMechanism::Login)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            eprintln!("mailin-embedded stopped: {e}");
        }
    });

    let (_sim, mut con) = common::sim(&[]);
    let pairs: Vec<(String, String)> = [
        ("smtp.server", "localhost"),
        ("smtp.port", port.as_str()),
        ("smtp.tls", "starttls"),
        ("smtp.verify.cn", "on"),
        ("smtp.auth.enabled", "on"),
        ("smtp.auth.methods", method),
        ("smtp.auth.user", "printer"),
        ("smtp.auth.password", "s3cret-Pass"),
        ("admin.address", "admin@hil.test"),
        ("device.address", "mfp@hil.test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    con.apply(
        &common::keyed(&pairs),
        &common::keys(&["smtp.auth.password"]),
    )
    .expect("apply");
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "40")])
        .expect("trigger")
    else {
        panic!("refused")
    };
    let end = con.wait_job(id, Duration::from_secs(30)).expect("job end");
    assert_eq!(end, JobEnd::Done, "{method}");
    inbox
}

#[test]
fn starttls_with_plain_and_login() {
    for (method, mech) in [("plain", "PLAIN"), ("login", "LOGIN")] {
        let inbox = deliver(method);
        assert_eq!(*inbox.logins.lock().expect("lock"), vec![mech.to_string()]);
        let messages = inbox.messages.lock().expect("lock");
        let [m] = messages.as_slice() else {
            panic!("{} messages", messages.len())
        };
        let parsed = MessageParser::default().parse(m).expect("MIME");
        let a = parsed.attachments().next().expect("attachment");
        assert_eq!(
            a.contents(),
            expected_scan_bytes(40).as_slice(),
            "{method}: attachment intact"
        );
    }
}
