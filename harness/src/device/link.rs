//! The link to a console: opening a serial port, a raw TCP console or an RFC 2217
//! port, and the reader thread that turns its bytes into displayed lines (through
//! [`Term`]) stamped with the time they arrived. The driver above reads these
//! messages; it never touches the port's bytes itself.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::term::{Ansi, Term};
use super::{Endpoint, Flow, Parity};

/// What the reader thread saw.
#[derive(Debug, Clone)]
pub enum ReadMsg {
    /// A complete line, as displayed; `escapes`: escape sequences were removed from it.
    Line {
        text: String,
        at: Instant,
        escapes: bool,
    },
    /// What the device printed so far of a line it has not ended (a prompt).
    Partial { text: String, at: Instant },
    /// The link ended.
    Closed(String),
}

/// Most messages the reader thread is ahead of the driver by (each a line of at most
/// 64 KiB): past it the reader waits, the device's output backs up in the port, and
/// a device flooding its console costs the harness a few MiB, not all it sends.
const QUEUE: usize = 64;

/// An open link: its writer, the reader thread's messages, and what ends it.
pub struct Link {
    pub writer: Box<dyn Write + Send>,
    pub rx: mpsc::Receiver<ReadMsg>,
    pub name: String,
    stop: Arc<AtomicBool>,
    hangup: Option<TcpStream>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Link {
    /// Ends the reader thread and with it the port or connection it holds: a serial
    /// port must be free again (it is opened exclusively) when the link is reopened.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.hangup.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(h) = self.reader.take() {
            // A serial read returns within its 200 ms timeout; a TCP one at the
            // shutdown above. A reader waiting for room in the queue gets it here.
            while !h.is_finished() {
                while self.rx.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = h.join();
        }
    }
}

/// Hands `m` to the driver, waiting while its queue is full (a link being dropped
/// drains the queue until this thread ends); `false` when the link is stopping or the
/// driver is gone.
fn hand_over(tx: &mpsc::SyncSender<ReadMsg>, stop: &AtomicBool, m: ReadMsg) -> bool {
    tx.send(m).is_ok() && !stop.load(Ordering::SeqCst)
}

fn reader_thread(
    mut r: Box<dyn Read + Send>,
    tx: mpsc::SyncSender<ReadMsg>,
    stop: Arc<AtomicBool>,
    ansi: Ansi,
    encoding: &'static encoding_rs::Encoding,
    cr_ends_line: bool,
) {
    let mut buf = vec![0u8; 4096];
    let mut term = Term::with_encoding(ansi, encoding);
    if cr_ends_line {
        term = term.cr_ends_lines();
    }
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match r.read(&mut buf) {
            Ok(0) => {
                hand_over(&tx, &stop, ReadMsg::Closed("end of stream".into()));
                return;
            }
            Ok(n) => {
                let at = Instant::now();
                let lines = term.feed(&buf[..n]);
                let escapes = term.take_escapes();
                for text in lines {
                    if !hand_over(&tx, &stop, ReadMsg::Line { text, at, escapes }) {
                        return;
                    }
                }
                let partial = term.partial();
                if !partial.is_empty()
                    && !hand_over(&tx, &stop, ReadMsg::Partial { text: partial, at })
                {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => {
                hand_over(&tx, &stop, ReadMsg::Closed(e.to_string()));
                return;
            }
        }
    }
}

/// Why a serial port did not open, in words naming the port: no such device, busy
/// (another process holds it: serialport opens with TIOCEXCL and an exclusive
/// flock), no permission, or the system's own words.
fn serial_open_error(path: &str, name: &str, e: &serialport::Error) -> String {
    match e.kind() {
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => {
            format!("cannot open {name}: no such device {path} (unplugged, or a wrong path?)")
        }
        serialport::ErrorKind::NoDevice => {
            format!("cannot open {name}: {path} is busy: another process has it open ({e})")
        }
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
            format!("cannot open {name}: no permission to open {path} (the dialout group?)")
        }
        _ => format!("cannot open {name}: {e}"),
    }
}

type Halves = (
    Box<dyn Read + Send>,
    Box<dyn Write + Send>,
    Option<TcpStream>,
);

fn open_serial(path: &str, line: &super::LineSettings, name: &str) -> Result<Halves, String> {
    let port = serialport::new(path, line.baud)
        .data_bits(match line.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        })
        .parity(match line.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        })
        .stop_bits(if line.stop_bits == 2 {
            serialport::StopBits::Two
        } else {
            serialport::StopBits::One
        })
        .flow_control(match line.flow {
            Flow::None => serialport::FlowControl::None,
            Flow::RtsCts => serialport::FlowControl::Hardware,
            Flow::XonXoff => serialport::FlowControl::Software,
        })
        .timeout(Duration::from_millis(200))
        // Exclusive (TIOCEXCL and flock) is the default; said here because "busy"
        // below depends on it.
        .open_native()
        .map_err(|e| serial_open_error(path, name, &e))?;
    let w = port
        .try_clone_native()
        .map_err(|e| format!("cannot use {name}: {e}"))?;
    Ok((Box::new(port), Box::new(w), None))
}

/// Opens the console at `endpoint` and starts its reader, which shows lines as a
/// terminal in `encoding` would.
pub fn open(
    endpoint: &Endpoint,
    ansi: Ansi,
    encoding: &'static encoding_rs::Encoding,
    cr_ends_line: bool,
) -> Result<Link, String> {
    let name = endpoint.describe();
    let (reader, writer, hangup): Halves = match endpoint {
        Endpoint::Serial { path, line } => open_serial(path, line, &name)?,
        Endpoint::Telnet { addr } => {
            let (r, w) = super::rfc2217::connect_telnet(addr).map_err(|e| e.to_string())?;
            let hangup = w.hangup_handle().ok();
            (Box::new(r), Box::new(w), hangup)
        }
        Endpoint::Rfc2217 { addr, line } => {
            let (r, w) = super::rfc2217::connect(addr, line).map_err(|e| e.to_string())?;
            let hangup = w.hangup_handle().ok();
            (Box::new(r), Box::new(w), hangup)
        }
        Endpoint::Tcp { addr } => {
            let s =
                TcpStream::connect(addr).map_err(|e| format!("cannot connect to {name}: {e}"))?;
            let _ = s.set_nodelay(true);
            let w = s
                .try_clone()
                .map_err(|e| format!("cannot use {name}: {e}"))?;
            let hangup = s.try_clone().ok();
            (Box::new(s), Box::new(w), hangup)
        }
    };
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = Arc::clone(&stop);
    let reader = std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || reader_thread(reader, tx, stop_reader, ansi, encoding, cr_ends_line))
        .map_err(|e| format!("cannot start a reader for {name}: {e}"))?;
    Ok(Link {
        writer,
        rx,
        name,
        stop,
        hangup,
        reader: Some(reader),
    })
}
