//! Sends one mail to a scenario's fake SMTP server and prints what the server saw:
//! the transcript of the connection and the envelope of the message. It is how
//! another crate's test uses hil-mail: load a scenario, start its servers on
//! 127.0.0.1 (any free port), point a client at them, read the record.
//!
//! ```text
//! cargo run -p hil-mail --example send_one                          # scenarios/plain-ok.toml
//! cargo run -p hil-mail --example send_one -- scenarios/greylisting-451.toml  # a refusal
//! ```
//!
//! The client is a few lines of std `TcpStream`: each command, then its reply.
//! `tests/example.rs` runs the same flow and checks what arrived.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hil_mail::netaddr::BindAddr;
use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::Dir;
use hil_mail::smtp_server::Observations;

/// The sender, the recipient and the message the example sends.
pub const FROM: &str = "mfp@hil.test";
pub const TO: &str = "admin@hil.test";
pub const MESSAGE: &str = "From: <mfp@hil.test>\r\n\
                           To: <admin@hil.test>\r\n\
                           Subject: one mail from send_one\r\n\
                           \r\n\
                           Hello from a plain SMTP client.\r\n";

/// The repository's top folder (the scenario library is `scenarios/` in it).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What one run gave: the server's record, and how far the client got.
pub struct Outcome {
    pub seen: Observations,
    /// `Err`: the reply that stopped the client (a scenario that refuses the mail).
    pub sent: io::Result<()>,
}

/// Starts the servers of the scenario file `path` on 127.0.0.1, sends one mail to its
/// SMTP server with [`send_mail`], and answers what the server saw once the
/// connection has ended.
pub fn run(path: &Path) -> Result<Outcome, Box<dyn Error>> {
    let scenario = Scenario::load(path)?;
    let rt = tokio::runtime::Runtime::new()?;
    let certs = repository().join("certs");
    let running = rt.block_on(serve::start(&scenario, &BindAddr::loopback(), &certs, 1.0))?;
    let addr = running
        .smtp_addr()
        .ok_or_else(|| format!("{}: the scenario has no SMTP server", path.display()))?;
    let sent = send_mail(addr, FROM, TO, MESSAGE);
    let seen = running.take_smtp(Duration::from_secs(10));
    Ok(Outcome { seen, sent })
}

/// One SMTP conversation on a plain connection: the greeting, EHLO, MAIL, RCPT,
/// DATA, the message, QUIT. Each reply must have the code the step expects.
pub fn send_mail(addr: SocketAddr, from: &str, to: &str, message: &str) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut c = BufReader::new(stream);
    expect(&mut c, "", 220)?;
    expect(&mut c, "EHLO client.hil.test\r\n", 250)?;
    expect(&mut c, &format!("MAIL FROM:<{from}>\r\n"), 250)?;
    expect(&mut c, &format!("RCPT TO:<{to}>\r\n"), 250)?;
    expect(&mut c, "DATA\r\n", 354)?;
    // A line starting with "." would need another one in front (RFC 5321 §4.5.2).
    expect(&mut c, &format!("{message}.\r\n"), 250)?;
    expect(&mut c, "QUIT\r\n", 221)?;
    Ok(())
}

/// Sends `out` (nothing for the greeting), reads the reply to its last line
/// (`250 ok` after any `250-…`) and checks its code.
fn expect(c: &mut BufReader<TcpStream>, out: &str, code: u16) -> io::Result<()> {
    c.get_mut().write_all(out.as_bytes())?;
    let mut line = String::new();
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the server closed the connection after {out:?}"),
            ));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    if !line.starts_with(&code.to_string()) {
        return Err(io::Error::other(format!(
            "after {out:?} the server answered {:?}, not {code}",
            line.trim_end()
        )));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => repository().join("scenarios/plain-ok.toml"),
    };
    let Outcome { seen, sent } = run(&path)?;
    for c in &seen.connections {
        println!(
            "connection {} from {} ({} listener):",
            c.id, c.peer, c.listener
        );
        for e in &c.transcript {
            let who = match e.dir {
                Dir::C => "C:",
                Dir::S => "S:",
                Dir::Note => "--",
            };
            println!("  {who} {}", e.text);
        }
    }
    for m in &seen.messages {
        println!("message on connection {}:", m.connection);
        println!("  HELO       {} ({})", m.helo, m.greeted_with);
        println!("  MAIL FROM  {}", m.mail_from);
        println!("  RCPT TO    {}", m.recipients.join(", "));
        println!("  size       {} bytes", m.data.len());
        if let Some(subject) = m.mime.as_ref().and_then(|x| x.subject.as_deref()) {
            println!("  Subject    {subject}");
        }
    }
    if let Err(e) = sent {
        println!("the client stopped: {e}");
    }
    Ok(())
}
