//! The console's transports (issue: pty, stdio, raw TCP as ser2net serves a port).
//! They only move bytes between a byte stream and a [`console::Session`]; answers and
//! `EVENT` lines go out through one writer thread per connection, so an answer's
//! lines are never split by an event.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::mpsc;
use std::sync::Arc;

use serialport::SerialPort;

use crate::console::{LineBuffer, Session};
use crate::device::Device;

/// Serves one console connection until the reader ends.
pub fn serve<R, W>(mut reader: R, mut writer: W, dev: Arc<Device>) -> io::Result<()>
where
    R: Read,
    W: Write + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<String>();
    let sub = dev.subscribe(tx.clone());
    let out = std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            for chunk in rx {
                if writer
                    .write_all(chunk.as_bytes())
                    .and_then(|_| writer.flush())
                    .is_err()
                {
                    break;
                }
            }
        })?;
    let mut lines = LineBuffer::default();
    let mut session = Session::default();
    let mut buf = vec![0u8; 8192];
    let result = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        for line in lines.push(&buf[..n]) {
            let answer = session.handle(line, &dev);
            if !answer.is_empty() {
                let mut text = answer.join("\r\n");
                text.push_str("\r\n");
                if tx.send(text).is_err() {
                    break;
                }
            }
            for id in session.take_started() {
                dev.run_submitted(id);
            }
        }
    };
    dev.unsubscribe(sub);
    drop(tx);
    let _ = out.join();
    result
}

/// Creates a pseudo-terminal, announces its path on standard output as the first line
/// (`console: /dev/pts/N`), and serves it for as long as the process lives.
pub fn serve_pty(dev: Arc<Device>) -> io::Result<()> {
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::other)?;
    let path = slave
        .name()
        .ok_or_else(|| io::Error::other("the pty has no name"))?;
    announce(&path)?;
    // Keep our handle on the slave open: the master then never sees a hang-up when a
    // harness closes the port, and a later open finds the console still serving.
    let _keep = slave;
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid open descriptor.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    let writer = master.try_clone()?;
    serve(master, writer, dev)
}

/// Serves the console on standard input and output.
pub fn serve_stdio(dev: Arc<Device>) -> io::Result<()> {
    serve(io::stdin(), io::stdout(), dev)
}

/// Serves raw TCP connections (as ser2net does), each a console of its own.
pub fn serve_tcp(addr: &str, dev: Arc<Device>) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    announce(&format!("tcp:{}", listener.local_addr()?))?;
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mfp-sim: console accept failed: {e}");
                continue;
            }
        };
        let writer = stream.try_clone()?;
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, writer, dev) {
                eprintln!("mfp-sim: console connection ended: {e}");
            }
        });
    }
    Ok(())
}

fn announce(what: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "console: {what}")?;
    out.flush()
}
