//! hil-mail: fake SMTP and POP3 servers for testing a mail client (a printer's firmware,
//! a simulated device, any MUA), with scripted faults, SASL, STARTTLS and implicit TLS,
//! POP before SMTP, and a record of every connection. Usable on its own: load a
//! scenario, start its servers, point a client at them, read the transcripts
//! (`examples/send_one.rs`).
//!
//! - `smtp`, `smtp_server`: the SMTP session without I/O (on smtp-proto) and its tokio
//!   layer (listeners, faults on the wire, records).
//! - `pop3`, `pop3_server`, `pop_window`: the POP3 server and the logins POP before SMTP
//!   reads.
//! - `sasl`: the server side of PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 and XOAUTH2;
//!   `redact`: what a client line shows in a transcript, credentials out.
//! - `faults`, `netio`: scripted faults and the I/O both servers share.
//! - `tls`: certificates and rustls configurations; `partial`: `message/partial`
//!   reassembly; `transcript`: the cap on what a connection's transcript keeps.
//! - `dns`: a fake DNS server (UDP and TCP) with scripted answers and faults per name,
//!   and a record of every query.
//! - `silent`: a port where a TCP connect never completes (a connect timeout on
//!   loopback).
//! - `scenario`, `serve`: scenario files and starting their servers; `netaddr`: bind
//!   addresses (IPv4, IPv6, link-local with a zone) and this machine's interfaces.
//!
//! From a test of another crate: a scenario of the library served on 127.0.0.1 (any
//! free port), one mail from a plain `TcpStream` client, and the server's record.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::time::Duration;
//! use hil_mail::{netaddr::BindAddr, scenario::Scenario, serve};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! let scenario = Scenario::load(&repo.join("scenarios/plain-ok.toml"))?;
//! let (certs, bind) = (repo.join("certs"), BindAddr::loopback()); // 127.0.0.1
//! let rt = tokio::runtime::Runtime::new()?;
//! let running = rt.block_on(serve::start(&scenario, &bind, &certs, 1.0))?;
//!
//! let addr = running.smtp_addr().ok_or("the scenario has no SMTP server")?;
//! let mut client = BufReader::new(std::net::TcpStream::connect(addr)?);
//! for line in ["", "EHLO me\r\n", "MAIL FROM:<a@hil.test>\r\n", "RCPT TO:<b@hil.test>\r\n",
//!              "DATA\r\n", "Subject: hi\r\n\r\nhello\r\n.\r\n", "QUIT\r\n"] {
//!     client.get_mut().write_all(line.as_bytes())?;
//!     let mut reply = String::new();
//!     while client.read_line(&mut reply)? > 0 && reply.as_bytes().get(3) == Some(&b'-') {
//!         reply.clear(); // a line of a multi-line reply (`250-SIZE …`): read on
//!     }
//! }
//!
//! let seen = running.take_smtp(Duration::from_secs(10));
//! assert!(seen.connections[0].transcript.iter().any(|e| e.text == "MAIL FROM:<a@hil.test>"));
//! assert_eq!(seen.messages[0].recipients, ["b@hil.test"]);
//! # Ok(())
//! # }
//! ```

pub mod dns;
pub mod faults;
pub mod netaddr;
pub mod netio;
pub mod partial;
pub mod pop3;
pub mod pop3_server;
pub mod pop_window;
pub mod redact;
pub mod sasl;
pub mod scenario;
pub mod serve;
pub mod silent;
pub mod smtp;
pub mod smtp_server;
pub mod tls;
pub mod transcript;
