//! `cargo bench -p hil --bench matrix`: cases per second of the exhaustive matrix on the
//! simulated device, against a ceiling measured in the same run — the same stack
//! (tokio, rustls, the fake SMTP server) doing connect, TLS handshake and one minimal
//! SMTP transaction in a loop with no harness logic — and the ratio of the two.
//!
//! Both run with the same number of concurrent workers (`HIL_BENCH_JOBS`, default the
//! core count). `HIL_BENCH_FILTER` limits the matrix to the case ids containing it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hil::smtp::{ListenerKind, SmtpConfig};
use hil::smtp_server::{Listen, ServerOptions, SmtpServer};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Reads one SMTP reply (its last line starts with `NNN `); answers its code.
async fn reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> std::io::Result<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad reply {line:?}")));
        }
    }
}

/// One minimal transaction on an open stream.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> std::io::Result<()> {
    let mut r = BufReader::new(s);
    let steps: [(&[u8], u16); 6] = [
        (b"", 220),
        (b"EHLO ceiling\r\n", 250),
        (b"MAIL FROM:<a@hil.test>\r\n", 250),
        (b"RCPT TO:<b@hil.test>\r\n", 250),
        (b"DATA\r\n", 354),
        (b"Subject: ceiling\r\n\r\nx\r\n.\r\n", 250),
    ];
    for (send, want) in steps {
        if !send.is_empty() {
            r.get_mut().write_all(send).await?;
        }
        let got = reply(&mut r).await?;
        if got != want {
            return Err(std::io::Error::other(format!("{got}, expected {want}")));
        }
    }
    r.get_mut().write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut r).await;
    Ok(())
}

/// Transactions per second with `jobs` concurrent clients for `secs` seconds, each
/// connecting and (with `tls`) doing an implicit-TLS handshake first.
fn ceiling(jobs: usize, secs: f64, tls: bool) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let certs = root().join("certs");
        let identity = hil::tls::load("valid", &certs.join("valid.crt"), &certs.join("valid.key"))
            .expect("zoo certificate");
        let bind: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let server = SmtpServer::start_with(
            vec![Listen {
                kind: if tls {
                    ListenerKind::Tls
                } else {
                    ListenerKind::Plain
                },
                bind,
                identity: tls.then_some(identity),
            }],
            SmtpConfig::default(),
            ServerOptions::default(),
        )
        .await
        .expect("server");
        let addr = server.addr();
        let server = Arc::new(server);
        let config = hil::tls::danger::client_config_accepting_any(&[&rustls::version::TLS13])
            .expect("client config");
        let connector = tokio_rustls::TlsConnector::from(config);
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..jobs {
            let connector = connector.clone();
            let server = Arc::clone(&server);
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    let r = if tls {
                        let name = ServerName::try_from("localhost").expect("name");
                        let s = connector.connect(name, tcp).await.expect("handshake");
                        transaction(s).await
                    } else {
                        transaction(tcp).await
                    };
                    r.expect("transaction");
                    n += 1;
                    // The server keeps what it saw; a ceiling keeps nothing.
                    if n.is_multiple_of(64) {
                        let _ = server.take();
                    }
                }
                n
            }));
        }
        let started = Instant::now();
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task");
        }
        total as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let jobs: usize = std::env::var("HIL_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let filter = std::env::var("HIL_BENCH_FILTER").ok();
    let dir = std::env::temp_dir().join(format!("hil-bench-{}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.current_dir(root())
        .args(["run", "--jobs", &jobs.to_string(), "--report"])
        .arg(&dir);
    if let Some(f) = &filter {
        cmd.args(["--filter", f]);
    }
    let started = Instant::now();
    let out = cmd.output().expect("hil run");
    let secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("").to_string();
    let records = hil::record::read(&dir.join("results.jsonl")).expect("results.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let cases = records.len() as f64;
    // Cases that wait out a device timeout measure the timeout, not the harness: the
    // rate without them too.
    let waiting: f64 = records
        .iter()
        .filter(|r| r.expected.contains("wait_ms: Some"))
        .map(|r| r.millis as f64 / 1000.0)
        .sum::<f64>()
        / jobs as f64;
    let matrix_rate = cases / secs;
    let busy_rate = records
        .iter()
        .filter(|r| !r.expected.contains("wait_ms: Some"))
        .count() as f64
        / (secs - waiting).max(1e-3);
    let tls_ceiling = ceiling(jobs, 5.0, true);
    let plain_ceiling = ceiling(jobs, 5.0, false);
    println!(
        "hil matrix bench ({jobs} workers{})",
        filter
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default()
    );
    println!(
        "  exhaustive matrix: {cases:.0} cases in {secs:.1} s = {matrix_rate:.1} cases/s ({last})"
    );
    println!("  without the cases that wait out a device timeout: {busy_rate:.1} cases/s");
    println!("  ceiling, connect + TLS handshake + 1 transaction: {tls_ceiling:.1} /s");
    println!("  ceiling, connect + 1 transaction (no TLS):        {plain_ceiling:.1} /s");
    println!(
        "  ratio matrix / TLS ceiling: {:.3} (without the waiting cases: {:.3})",
        matrix_rate / tls_ceiling,
        busy_rate / tls_ceiling
    );
}
