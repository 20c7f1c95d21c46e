//! The console's transports (issue: pty, stdio, raw TCP as ser2net serves a port).
//! They only move bytes between a byte stream and a session of a [`Dialect`];
//! greetings, answers and job events go out through one writer thread per
//! connection, so an answer's lines are never split by an event.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use serialport::SerialPort;

use crate::device::{Device, JobEvent};
use crate::dialect::Dialect;
use crate::dialects::DialectKind;
use crate::line::LineBuffer;

/// Why a console cannot be served, or stopped being served.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No pseudo-terminal could be made.
    #[error("{0}")]
    Pty(#[source] serialport::Error),
    #[error("the pty has no name")]
    NoPtyName,
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: io::Error },
    /// Reading the console, or announcing it, failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the writer thread writes: a dialect's text, or a job event it words.
enum Out {
    Text(String),
    Event(JobEvent),
}

fn locked(d: &Mutex<Box<dyn Dialect>>) -> MutexGuard<'_, Box<dyn Dialect>> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one console connection in `dialect` until the reader ends.
pub fn serve<R, W>(
    mut reader: R,
    mut writer: W,
    dev: Arc<Device>,
    dialect: &DialectKind,
) -> Result<(), TransportError>
where
    R: Read,
    W: Write + Send + 'static,
{
    let session: Arc<Mutex<Box<dyn Dialect>>> = Arc::new(Mutex::new(dialect.session()));
    let (tx, rx) = mpsc::channel::<Out>();
    let events = tx.clone();
    let sub = dev.subscribe(Box::new(move |e: &JobEvent| {
        events.send(Out::Event(e.clone())).is_ok()
    }));
    let greeting = locked(&session).greeting();
    if !greeting.is_empty() {
        let _ = tx.send(Out::Text(greeting));
    }
    let words = Arc::clone(&session);
    let out = std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            for msg in rx {
                let chunk = match msg {
                    Out::Text(t) => t,
                    Out::Event(e) => locked(&words).event(&e),
                };
                if chunk.is_empty() {
                    continue;
                }
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
    let mut buf = vec![0u8; 8192];
    let result = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e.into()),
        };
        for line in lines.push(&buf[..n]) {
            let (answer, started) = {
                let mut s = locked(&session);
                let answer = s.answer(line, &dev);
                (answer, s.take_started())
            };
            if !answer.is_empty() && tx.send(Out::Text(answer)).is_err() {
                break;
            }
            for id in started {
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
pub fn serve_pty(dev: Arc<Device>, dialect: &DialectKind) -> Result<(), TransportError> {
    let (master, slave) = serialport::TTYPort::pair().map_err(TransportError::Pty)?;
    let path = slave.name().ok_or(TransportError::NoPtyName)?;
    announce(&path)?;
    // Keep our handle on the slave open: the master then never sees a hang-up when a
    // harness closes the port, and a later open finds the console still serving.
    let _keep = slave;
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid open descriptor.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    let writer = master.try_clone()?;
    serve(master, writer, dev, dialect)
}

/// Serves the console on standard input and output.
pub fn serve_stdio(dev: Arc<Device>, dialect: &DialectKind) -> Result<(), TransportError> {
    serve(io::stdin(), io::stdout(), dev, dialect)
}

/// Serves raw TCP connections (as ser2net does), each a console of its own.
pub fn serve_tcp(
    addr: &str,
    dev: Arc<Device>,
    dialect: &DialectKind,
) -> Result<(), TransportError> {
    let listener = TcpListener::bind(addr).map_err(|source| TransportError::Listen {
        addr: addr.into(),
        source,
    })?;
    announce(&format!("tcp:{}", listener.local_addr()?))?;
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "console accept failed");
                continue;
            }
        };
        if let Ok(peer) = stream.peer_addr() {
            tracing::debug!(%peer, "console connection");
        }
        let writer = stream.try_clone()?;
        let dev = Arc::clone(&dev);
        let dialect = dialect.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, writer, dev, &dialect) {
                tracing::warn!(error = %e, "console connection ended");
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
