//! `cargo bench -p hil --bench serve_flood`: the peak RSS of `hil serve` under the
//! POP3 line flood of issue 18 — 10 clients at once, each sending 10,000 lines of
//! 4 KB (unknown commands, each answered `-ERR`) then QUIT — against the same server
//! idle, in the same run; and the size of the `transcripts.jsonl` it writes. The same
//! flood against SMTP (`NOOP` lines) for comparison. Figures are the ratio and the
//! growth against the idle baseline, never timed assertions.
//!
//! `HIL_SERVE_BEFORE=PATH` measures another build of `hil` (an older commit) too, in
//! the same run, one after the other, and prints both.

#[path = "../tests/serve_common/mod.rs"]
mod serve_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serve_common::{peak_rss_kib, rss_kib, Serve};

const CLIENTS: usize = 10;
const LINES: usize = 10_000;
const LINE: usize = 4096;

/// One SMTP client: EHLO, `LINES` NOOP lines of `LINE` bytes, QUIT.
fn smtp_flood(addr: SocketAddr) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut l = String::new();
        let mut n = 0;
        loop {
            l.clear();
            if r.read_line(&mut l).unwrap_or(0) == 0 || l.starts_with("221") {
                return n;
            }
            n += usize::from(l.starts_with("250 "));
        }
    });
    w.write_all(b"EHLO flood\r\n").expect("ehlo");
    let mut line = b"NOOP ".to_vec();
    line.resize(LINE - 2, b'x');
    line.extend_from_slice(b"\r\n");
    let block = line.repeat(64);
    let mut sent = 0;
    while sent < LINES {
        let k = (LINES - sent).min(64);
        w.write_all(&block[..k * line.len()]).expect("flood");
        sent += k;
    }
    w.write_all(b"QUIT\r\n").expect("quit");
    let n = reader.join().expect("reader");
    assert_eq!(n, LINES + 1, "EHLO and every NOOP answered 250");
}

struct Figures {
    idle_kib: u64,
    peak_kib: u64,
    transcripts: usize,
    secs: f64,
}

fn measure(bin: Option<&std::ffi::OsStr>, server: &str) -> Figures {
    let s = match bin {
        Some(bin) => Serve::start_bin(bin, serve_common::FLOOD_SCENARIO, &[]),
        None => Serve::start_with(serve_common::FLOOD_SCENARIO, &[]),
    };
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib = rss_kib(s.pid());
    let addr = s.endpoint(server);
    let t = Instant::now();
    let floods: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let server = server.to_string();
            std::thread::spawn(move || match server.as_str() {
                "pop3" => serve_common::pop3_flood(addr, LINES, LINE),
                _ => smtp_flood(addr),
            })
        })
        .collect();
    for f in floods {
        f.join().expect("a flood client");
    }
    let secs = t.elapsed().as_secs_f64();
    // Every connection written out before the peak is read.
    std::thread::sleep(Duration::from_millis(500));
    let peak_kib = peak_rss_kib(s.pid());
    let out = s.stop();
    Figures {
        idle_kib,
        peak_kib,
        transcripts: out.transcripts.len(),
        secs,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run once
    // either way.
    println!(
        "hil serve under a line flood: {CLIENTS} clients x {LINES} lines of {LINE} bytes \
         ({} MB sent per server)",
        CLIENTS * LINES * LINE / 1_000_000
    );
    let before = std::env::var_os("HIL_SERVE_BEFORE");
    for server in ["pop3", "smtp"] {
        report("this build", server, &measure(None, server));
        if let Some(bin) = &before {
            let label = format!("{}", std::path::Path::new(bin).display());
            report(&label, server, &measure(Some(bin), server));
        }
    }
}

fn report(build: &str, server: &str, f: &Figures) {
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "  {server} ({build}): RSS idle {:.1} MiB, peak {:.1} MiB under the flood: x{:.2} idle, \
         +{:.1} MiB (+{:.2} MiB per connection); transcripts.jsonl {:.2} MiB \
         ({:.1}% of the bytes sent); flood took {:.1} s",
        mib(f.idle_kib),
        mib(f.peak_kib),
        f.peak_kib as f64 / f.idle_kib.max(1) as f64,
        mib(f.peak_kib.saturating_sub(f.idle_kib)),
        mib(f.peak_kib.saturating_sub(f.idle_kib)) / CLIENTS as f64,
        f.transcripts as f64 / (1024.0 * 1024.0),
        100.0 * f.transcripts as f64 / (CLIENTS * LINES * LINE) as f64,
        f.secs
    );
}
