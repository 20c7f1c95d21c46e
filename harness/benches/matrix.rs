//! `cargo bench -p hil --bench matrix`: cases per second of the exhaustive matrix on the
//! simulated device, against a ceiling measured in the same run — the same stack
//! (tokio, rustls, the fake SMTP server) doing connect, TLS handshake and one minimal
//! SMTP transaction in a loop with no harness logic — and the ratio of the two.
//!
//! Three runs of the matrix: at `hil run`'s default worker count (many workers per
//! core, so that device-time waits overlap; its wall time and peak memory), and at one
//! worker per core, whose per-case times give the rates of plain and TLS cases that
//! wait no device time, against the ceiling with as many concurrent clients.
//! `HIL_BENCH_FILTER` limits the matrix to the case ids containing it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hil_mail::smtp::{ListenerKind, SmtpConfig};
use hil_mail::smtp_server::{Listen, ServerOptions, SmtpServer};
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
        let identity =
            hil_mail::tls::load("valid", &certs.join("valid.crt"), &certs.join("valid.key"))
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
        let config = hil_mail::tls::danger::client_config_accepting_any(&[&rustls::version::TLS13])
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

/// Resident set sizes (KiB) of `pid` and of it with all its descendants, now.
fn rss_tree(pid: u32) -> (u64, u64) {
    let mut parent = std::collections::HashMap::new();
    let mut rss = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
                continue;
            };
            for l in status.lines() {
                if let Some(v) = l.strip_prefix("PPid:") {
                    parent.insert(p, v.trim().parse::<u32>().unwrap_or(0));
                } else if let Some(v) = l.strip_prefix("VmRSS:") {
                    let kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    rss.insert(p, kb);
                }
            }
        }
    }
    let under = |mut p: u32| {
        while p > 1 {
            if p == pid {
                return true;
            }
            p = parent.get(&p).copied().unwrap_or(0);
        }
        false
    };
    let own = rss.get(&pid).copied().unwrap_or(0);
    let all = rss
        .iter()
        .filter(|(p, _)| under(**p))
        .map(|(_, kb)| kb)
        .sum();
    (own, all)
}

/// Mean wall time (µs) of one console round trip (`get smtp.port`, answered `OK`) to an
/// embedded simulated device over its pty, the transport every simulated case uses.
fn console_round_trip_us(n: u32) -> f64 {
    use hil::device::embedded::EmbeddedSim;
    use hil::device::{Console, Endpoint, LineSettings, Profile};
    let sim = EmbeddedSim::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_hil")),
        Some("sim"),
        &[],
        Duration::from_secs(10),
    )
    .expect("a simulated device");
    let profile = Arc::new(Profile::parse("sim.toml", hil::runner::SIM_PROFILE).expect("profile"));
    let ep = Endpoint::Serial {
        path: sim.console_path.clone(),
        line: LineSettings::default(),
    };
    let mut c = Console::open(&ep, profile).expect("console");
    for _ in 0..100 {
        c.get(hil_oracle::model::Key::SmtpPort).expect("warm-up");
    }
    let started = Instant::now();
    for _ in 0..n {
        c.get(hil_oracle::model::Key::SmtpPort).expect("get");
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    drop(c);
    drop(sim);
    us
}

struct Run {
    secs: f64,
    last: String,
    records: Vec<hil::record::Record>,
    /// Peak RSS (KiB) of hil alone and of hil with its simulated devices.
    peak_own: u64,
    peak_all: u64,
}

fn run_matrix(jobs: Option<usize>, filter: Option<&str>) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "hil-bench-{}-{}",
        std::process::id(),
        jobs.unwrap_or(0)
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.current_dir(root())
        .args(["run", "--report"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(j) = jobs {
        cmd.args(["--jobs", &j.to_string()]);
    }
    if let Some(f) = filter {
        cmd.args(["--filter", f]);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("hil run");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let (mut peak_own, mut peak_all) = (0, 0);
    while child.try_wait().expect("wait").is_none() {
        let (own, all) = rss_tree(pid);
        peak_own = peak_own.max(own);
        peak_all = peak_all.max(all);
        std::thread::sleep(Duration::from_millis(50));
    }
    let secs = started.elapsed().as_secs_f64();
    let out = reader.join().unwrap_or_default();
    let last = out.lines().last().unwrap_or("").to_string();
    let records = hil::record::read(&dir.join("results.jsonl")).expect("results.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        secs,
        last,
        records,
        peak_own,
        peak_all,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let filter = std::env::var("HIL_BENCH_FILTER").ok();
    // What each case is: TLS or plain, and the device time it waits.
    let m = hil_oracle::matrix::Matrix::build(
        &root().join("certs"),
        &root().join("scenarios"),
        &hil_oracle::model::DeviceFacts::default(),
    )
    .expect("the matrix");
    let mut kind = std::collections::HashMap::new();
    for row in m.exhaustive().iter().chain(&m.invalid_rows()) {
        let c = m.case(row);
        let tls = c.settings.iter().any(|(k, v)| {
            use hil_oracle::model::Key;
            (*k == Key::SmtpTls || *k == Key::PopTls) && v != "none"
        });
        kind.insert(c.id.clone(), (tls, hil::runner::device_wait_estimate(&c)));
    }

    let many = run_matrix(None, filter.as_deref());
    let per_core = run_matrix(Some(cores), filter.as_deref());
    let tls_ceiling = ceiling(cores, 5.0, true);
    let plain_ceiling = ceiling(cores, 5.0, false);
    let round_trip = console_round_trip_us(2000);

    let cases = many.records.len() as f64;
    println!(
        "hil matrix bench ({cores} cores{})",
        filter
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default()
    );
    let rate = cases / many.secs;
    let rate_core = per_core.records.len() as f64 / per_core.secs;
    println!(
        "  exhaustive matrix, hil's default workers: {cases:.0} cases in {:.2} s = {rate:.1} cases/s ({})",
        many.secs, many.last
    );
    println!(
        "  exhaustive matrix, {cores} workers (one per core): {:.2} s = {rate_core:.1} cases/s ({})",
        per_core.secs, per_core.last
    );
    println!(
        "  default workers vs one per core: {:.2}x faster",
        per_core.secs / many.secs
    );
    let longest = many.records.iter().map(|r| r.millis).max().unwrap_or(0);
    println!(
        "  longest case: {:.2} s (the run's floor: its device-time wait); run / longest case = {:.2}",
        longest as f64 / 1000.0,
        many.secs / (longest as f64 / 1000.0).max(1e-3)
    );
    println!(
        "  peak RSS: hil {:.1} MiB; hil with its simulated devices {:.1} MiB",
        many.peak_own as f64 / 1024.0,
        many.peak_all as f64 / 1024.0
    );
    // Per-case times at one worker per core, of cases that wait no device time.
    let class = |tls: bool| -> (usize, f64, f64, f64) {
        let chosen: Vec<&hil::record::Record> = per_core
            .records
            .iter()
            .filter(|r| {
                kind.get(&r.id)
                    .is_some_and(|(t, wait)| *t == tls && *wait == 0)
            })
            .filter(|r| r.expected.wait_ms.is_none())
            .collect();
        let mut ms: Vec<u64> = chosen.iter().map(|r| r.micros).collect();
        ms.sort_unstable();
        let n = ms.len();
        // µs to ms.
        let mean = ms.iter().sum::<u64>() as f64 / n.max(1) as f64 / 1000.0;
        // Console commands per case (each a round trip), from the console logs.
        let commands = chosen
            .iter()
            .map(|r| r.console.iter().filter(|l| l.dir == "harness").count())
            .sum::<usize>() as f64
            / n.max(1) as f64;
        let median = ms.get(n / 2).copied().unwrap_or(0) as f64 / 1000.0;
        (n, mean, median, commands)
    };
    println!("  ceiling, connect + TLS handshake + 1 transaction: {tls_ceiling:.1} /s");
    println!("  ceiling, connect + 1 transaction (no TLS):        {plain_ceiling:.1} /s");
    println!("  console round trip to the simulated device (pty): {round_trip:.0} µs");
    for (tls, ceiling) in [(false, plain_ceiling), (true, tls_ceiling)] {
        let (n, mean, median, commands) = class(tls);
        // One worker per core, each a case after another.
        let rate = cores as f64 * 1000.0 / mean.max(1e-3);
        println!(
            "  {} cases without device-time waits: {n} cases, mean {mean:.2} ms, median {median:.2} ms: {rate:.0} cases/s = {:.3} of the {} ceiling",
            if tls { "TLS" } else { "plain" },
            rate / ceiling,
            if tls { "TLS" } else { "plain" }
        );
        println!(
            "    {commands:.1} console commands per case: {:.2} ms of round trips = {:.0}% of the case",
            commands * round_trip / 1000.0,
            100.0 * commands * round_trip / 1000.0 / mean.max(1e-3)
        );
    }
    println!(
        "  whole matrix / TLS ceiling: {:.3} (default workers), {:.3} (one per core)",
        rate / tls_ceiling,
        rate_core / tls_ceiling
    );
}
