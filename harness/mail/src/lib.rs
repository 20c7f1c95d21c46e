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
//! - `sasl`: the server side of PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 and XOAUTH2.
//! - `faults`, `netio`: scripted faults and the I/O both servers share.
//! - `tls`: certificates and rustls configurations; `partial`: `message/partial`
//!   reassembly.
//! - `scenario`, `serve`: scenario files and starting their servers; `netaddr`: bind
//!   addresses (IPv4, IPv6, link-local with a zone) and this machine's interfaces.

pub mod faults;
pub mod netaddr;
pub mod netio;
pub mod partial;
pub mod pop3;
pub mod pop3_server;
pub mod pop_window;
pub mod sasl;
pub mod scenario;
pub mod serve;
pub mod smtp;
pub mod smtp_server;
pub mod tls;
