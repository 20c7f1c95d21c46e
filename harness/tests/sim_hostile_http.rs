//! Issue 18: a hostile OCSP or CRL server cannot break the simulated device. A zoo
//! is generated for a responder address on a free port of 127.0.0.1, where a real TCP
//! server answers every OCSP and CRL fetch with one overflow shape at a time (a chunk
//! size of ffffffffffffffff, a huge Content-Length, endless headers, an endless body,
//! endless chunks). Each job must end `cert_revocation_unknown` naming the rule the
//! answer broke, and the next job on the same device must still be delivered.
//! (Before, the chunk size overflowed and panicked in the device's HTTP client: the
//! job stayed `running` forever and every later job failed `the job worker has
//! stopped`.)

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hil::device::{Console, JobEnd, TriggerAnswer};
use hil_mail::smtp::{ListenerKind, SmtpConfig};
use hil_mail::smtp_server::{Listen, ServerOptions, SmtpServer};
use hil_zoo::keys::KeyKind;
use hil_zoo::zoo::{self, ZooOptions};

/// How the hostile server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    ChunkSizeMax,
    ChunkSizeHuge,
    HugeLength,
    EndlessHeaders,
    EndlessBody,
    EndlessChunks,
}

/// Most bytes the server writes into one endless answer (the device must give up
/// long before: its caps are 16 KiB of header and 4 MiB of body).
const ENDLESS: usize = 64 * 1024 * 1024;

fn answer(mut s: TcpStream, shape: Shape) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut req = Vec::new();
    let mut b = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&b[..n]),
        }
    }
    let ok = "HTTP/1.1 200 OK\r\n";
    let chunked = format!(
        "{ok}Content-Type: application/ocsp-response\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (head, endless): (String, Option<Vec<u8>>) = match shape {
        Shape::ChunkSizeMax => (format!("{chunked}ffffffffffffffff\r\nabc"), None),
        Shape::ChunkSizeHuge => (format!("{chunked}1{}\r\nabc", "0".repeat(40)), None),
        Shape::HugeLength => (
            format!("{ok}Content-Length: 18446744073709551615\r\n\r\nabc"),
            None,
        ),
        Shape::EndlessHeaders => (
            ok.to_string(),
            Some(b"X-Pad: aaaaaaaaaaaaaaaa\r\n".repeat(1000)),
        ),
        Shape::EndlessBody => (format!("{ok}\r\n"), Some(vec![b'x'; 64 * 1024])),
        Shape::EndlessChunks => (
            chunked,
            Some(format!("10000\r\n{}\r\n", "y".repeat(0x10000)).into_bytes()),
        ),
    };
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    if let Some(block) = endless {
        let mut sent = 0;
        while sent < ENDLESS && s.write_all(&block).is_ok() {
            sent += block.len();
        }
    }
}

/// Serves every connection to `listener` with the current shape; counts them.
fn hostile_server(listener: TcpListener, shape: Arc<Mutex<Shape>>, hits: Arc<Mutex<usize>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let now = *shape.lock().expect("shape");
            *hits.lock().expect("hits") += 1;
            std::thread::spawn(move || answer(conn, now));
        }
    });
}

fn scan(con: &mut Console, revocation: bool) -> JobEnd {
    let on = if revocation { "on" } else { "off" };
    con.apply(&common::pairs(&[("smtp.verify.revocation", on)]), &[])
        .expect("apply");
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")])
        .expect("trigger")
    else {
        panic!("scan refused")
    };
    con.wait_job(id, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("job {id} did not end: {e}"))
}

#[test]
fn hostile_revocation_answers_fail_the_job_and_the_device_goes_on() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shape = Arc::new(Mutex::new(Shape::ChunkSizeMax));
    let hits = Arc::new(Mutex::new(0));
    hostile_server(listener, Arc::clone(&shape), Arc::clone(&hits));

    let z = zoo::build(&ZooOptions {
        key: KeyKind::EcdsaP256,
        responder: format!("http://127.0.0.1:{port}"),
        ..ZooOptions::default()
    })
    .expect("zoo");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hil-hostile-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for name in ["valid.crt", "valid.key"] {
        std::fs::write(dir.join(name), &z.files[name]).expect("write");
    }
    let identity = hil_mail::tls::load("valid", &dir.join("valid.crt"), &dir.join("valid.key"))
        .expect("identity");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind: ListenerKind::Tls,
                bind: "127.0.0.1:0".parse().expect("bind"),
                identity: Some(identity),
            }],
            SmtpConfig::default(),
            ServerOptions::default(),
        ))
        .expect("SMTP server");

    let (_sim, mut con) = common::sim(&[]);
    let root = String::from_utf8(z.files["root.crt"].clone()).expect("PEM");
    con.import_cert(&root).expect("cert import");
    let port_s = server.addr().port().to_string();
    con.apply(
        &common::pairs(&[
            ("smtp.server", "127.0.0.1"),
            ("smtp.ssl_port", port_s.as_str()),
            ("smtp.tls", "smtps"),
            ("smtp.timeout", "30"),
            ("admin.address", "admin@hil.test"),
            ("device.address", "mfp@hil.test"),
        ]),
        &[],
    )
    .expect("apply");

    // Shape, and what the detail must say about both the OCSP and the CRL answer.
    let table = [
        (
            Shape::ChunkSizeMax,
            "chunk size \"ffffffffffffffff\" is over the 4194304-byte body limit",
        ),
        (Shape::ChunkSizeHuge, "chunk size \"1000000000000000000000000000000000000000\" is over the 4194304-byte body limit"),
        (
            Shape::HugeLength,
            "Content-Length 18446744073709551615 is over the 4194304-byte body limit",
        ),
        (
            Shape::EndlessHeaders,
            "the answer's header is longer than 16384 bytes",
        ),
        (Shape::EndlessBody, "the body is longer than 4194304 bytes"),
        (Shape::EndlessChunks, "the chunked body is longer than 4194304 bytes"),
    ];
    let mut bad = Vec::new();
    for (s, want) in table {
        *shape.lock().expect("shape") = s;
        let before = *hits.lock().expect("hits");
        match scan(&mut con, true) {
            JobEnd::Failed { class, detail }
                if class == "cert_revocation_unknown"
                    && detail.contains(&format!("OCSP http://127.0.0.1:{port}/ocsp: {want}"))
                    && detail.contains(&format!("/crl/intermediate.crl: {want}")) => {}
            other => bad.push(format!("{s:?}: expected cert_revocation_unknown with {want:?} for OCSP and CRL, got {other:?}")),
        }
        let asked = *hits.lock().expect("hits") - before;
        if asked != 2 {
            bad.push(format!(
                "{s:?}: {asked} fetches, expected an OCSP and a CRL one"
            ));
        }
        // The device goes on: the next job is delivered.
        match scan(&mut con, false) {
            JobEnd::Done => {}
            other => bad.push(format!("{s:?}: the next job ended {other:?}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
