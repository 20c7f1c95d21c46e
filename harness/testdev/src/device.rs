//! The device: the driver that joins the console, the session, the engine and the
//! power switch. Everything that happens reaches the main thread as one [`Input`]
//! on one channel (the client's bytes, an engine line, the engine's end, a power
//! cycle), so the session is only ever touched by one thread and output goes out in
//! the order it was made. Crashes, hangs and power cycles are carried out here:
//! kill the engine, start a fresh one, let the session boot again.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::cli::FrontArgs;
use crate::engine::Engine;
use crate::reference::{self, Line, Reply};
use crate::session::{Capabilities, Session, Step};
use crate::signals;
use crate::transport;

/// Everything the main thread waits for.
#[derive(Debug)]
pub enum Input {
    /// Bytes the client typed.
    Console(Vec<u8>),
    /// The console's input ended (stdio: end of file).
    ConsoleClosed,
    /// A line the engine printed.
    Engine { generation: u64, line: String },
    /// The engine's output ended (it exited or was killed).
    EngineClosed { generation: u64 },
    /// SIGUSR1.
    PowerCycle,
}

/// How long the engine may take to answer a command (it answers at once; jobs run
/// in the background). An engine that does not is out of step: the device reboots.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer.
enum NoAnswer {
    PowerCycle,
    EngineLost(String),
}

struct Driver {
    engine_args: Vec<String>,
    tx: Sender<Input>,
    rx: Receiver<Input>,
    engine: Option<Engine>,
    generation: u64,
    session: Session,
    writer: Box<dyn Write + Send>,
    console_closed: bool,
    write_failed: bool,
}

/// Runs the front end until its console ends (stdio) or it is killed (pty).
pub fn run(front: FrontArgs) -> Result<(), String> {
    let traits = front.traits()?;
    let pid = std::process::id();
    eprintln!("mfp-testdev: pid {pid}");
    if let Some(p) = &front.pid_file {
        std::fs::write(p, format!("{pid}\n"))
            .map_err(|e| format!("--pid-file {}: {e}", p.display()))?;
    }
    let (tx, rx) = mpsc::channel();
    signals::install(tx.clone()).map_err(|e| format!("cannot install SIGUSR1: {e}"))?;
    let mut d = Driver {
        engine_args: front.engine_args(),
        tx: tx.clone(),
        rx,
        engine: None,
        generation: 0,
        session: Session::new(traits, Capabilities::default()),
        writer: Box::new(std::io::sink()),
        console_closed: false,
        write_failed: false,
    };
    d.start_engine()?;
    let console = match front.console.as_str() {
        "pty" => transport::pty().map_err(|e| format!("console (pty): {e}"))?,
        _ => transport::stdio(),
    };
    let transport::Console {
        reader,
        writer,
        keep: _keep,
    } = console;
    d.writer = writer;
    transport::read_into(reader, tx).map_err(|e| format!("console reader: {e}"))?;
    d.session.boot();
    d.serve();
    Ok(())
}

impl Driver {
    /// Starts a fresh engine and asks it what it can do; an engine that does not
    /// answer is an error (its options are wrong, e.g. a bad --time-scale).
    fn start_engine(&mut self) -> Result<(), String> {
        self.engine = None;
        self.generation += 1;
        let e = Engine::spawn(&self.engine_args, self.generation, self.tx.clone())
            .map_err(|e| format!("cannot start the mail engine: {e}"))?;
        self.engine = Some(e);
        match self.call(&["help".to_string()]) {
            Ok(r) => {
                let scan_text = r.data.iter().any(|l| l.contains("subject="));
                self.session.set_capabilities(Capabilities { scan_text });
                Ok(())
            }
            Err(NoAnswer::PowerCycle) => self.start_engine(),
            Err(NoAnswer::EngineLost(why)) => {
                self.engine = None;
                Err(format!("the mail engine did not start: {why}"))
            }
        }
    }

    fn flush(&mut self) {
        let out = self.session.take_output();
        if out.is_empty() {
            return;
        }
        if let Err(e) = self
            .writer
            .write_all(&out)
            .and_then(|_| self.writer.flush())
        {
            if !self.write_failed {
                eprintln!("mfp-testdev: writing the console: {e}");
                self.write_failed = true;
            }
        }
    }

    /// Sends a request and waits for its status line. Meanwhile job events are
    /// printed as they come, typed input is queued in the session, and a power
    /// cycle abandons the request.
    fn call(&mut self, lines: &[String]) -> Result<Reply, NoAnswer> {
        let Some(engine) = self.engine.as_mut() else {
            return Err(NoAnswer::EngineLost("no engine runs".into()));
        };
        if let Err(e) = engine.send(lines) {
            return Err(NoAnswer::EngineLost(format!("writing to it: {e}")));
        }
        let mut data = Vec::new();
        loop {
            let input = match self.rx.recv_timeout(ENGINE_TIMEOUT) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(NoAnswer::EngineLost(format!(
                        "no answer within {} s",
                        ENGINE_TIMEOUT.as_secs()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(NoAnswer::EngineLost("the input channel closed".into()))
                }
            };
            match input {
                Input::Engine { generation, line } if generation == self.generation => {
                    match reference::classify(&line) {
                        Line::Status(status) => return Ok(Reply { data, status }),
                        Line::Data(l) => data.push(l),
                        Line::Event(e) => {
                            self.session.event(&e);
                            self.flush();
                        }
                        Line::OtherEvent(l) => eprintln!("mfp-testdev: engine event {l:?} ignored"),
                    }
                }
                Input::EngineClosed { generation } if generation == self.generation => {
                    return Err(NoAnswer::EngineLost("it exited".into()))
                }
                Input::Engine { .. } | Input::EngineClosed { .. } => {}
                Input::Console(b) => self.session.input(&b),
                Input::ConsoleClosed => self.console_closed = true,
                Input::PowerCycle => return Err(NoAnswer::PowerCycle),
            }
        }
    }

    /// Kills the engine, starts a fresh one and boots the session again. A fresh
    /// engine that does not start ends the process (nothing could serve).
    fn reboot(&mut self) {
        self.engine = None;
        if let Err(e) = self.start_engine() {
            eprintln!("mfp-testdev: {e}");
            std::process::exit(1);
        }
        self.session.restart();
        self.flush();
    }

    /// Runs the session until it waits for input.
    fn pump(&mut self) {
        loop {
            self.flush();
            match self.session.step() {
                Step::Idle => {
                    self.flush();
                    return;
                }
                Step::Engine(lines) => match self.call(&lines) {
                    Ok(r) => self.session.reply(r),
                    Err(NoAnswer::PowerCycle) => self.reboot(),
                    Err(NoAnswer::EngineLost(why)) => {
                        eprintln!("mfp-testdev: the mail engine was lost ({why}); rebooting");
                        self.session
                            .reply(Reply::failed("config", "the mail engine stopped"));
                        self.flush();
                        self.reboot();
                    }
                },
                Step::Crash => {
                    self.flush();
                    self.reboot();
                }
                Step::Hang => {
                    // Nothing more goes out until SIGUSR1.
                    self.engine = None;
                }
                Step::Flood(f) => self.flood(f),
            }
        }
    }

    /// Prints a flood straight to the console, 64 KiB at a time (the engine's job goes
    /// on meanwhile; its end is printed after).
    fn flood(&mut self, f: crate::traits::Flood) {
        use crate::traits::FloodKind;
        let mut left = f.bytes;
        let mut n: u64 = 0;
        // xorshift64*: the same bytes every time.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = Vec::with_capacity(70 * 1024);
        // The job's logging starts a moment after its answer, each message on a line
        // of its own, as on a router.
        let _ = self.writer.flush();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = self.writer.write_all(b"\r\n");
        while left > 0 {
            chunk.clear();
            while chunk.len() < 64 * 1024 {
                match f.kind {
                    FloodKind::Events | FloodKind::Lines => {
                        n += 1;
                        let tag = if f.kind == FloodKind::Events {
                            "%MAIL-6-DEBUG"
                        } else {
                            "%SYS-6-LOGMSG"
                        };
                        let _ = write!(
                            chunk,
                            "{tag}: flood line {n:09} the quick brown fox jumps over the lazy dog\r\n"
                        );
                    }
                    FloodKind::Binary => {
                        x ^= x >> 12;
                        x ^= x << 25;
                        x ^= x >> 27;
                        let mut b = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                        // No ESC: a sequence left open at the flood's end would eat
                        // the start of the job's end line.
                        for c in b.iter_mut().filter(|c| **c == 0x1b) {
                            *c = b'.';
                        }
                        chunk.extend_from_slice(&b);
                    }
                }
            }
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if self.writer.write_all(&chunk[..take]).is_err() {
                eprintln!("mfp-testdev: the console stopped taking the flood");
                break;
            }
            left -= take as u64;
        }
        // What was typed meanwhile was queued by the reader thread.
        let _ = self.writer.write_all(b"\r\n");
        let _ = self.writer.flush();
    }

    fn serve(&mut self) {
        loop {
            self.pump();
            if self.console_closed {
                return;
            }
            let Ok(input) = self.rx.recv() else { return };
            match input {
                Input::Console(b) => self.session.input(&b),
                Input::ConsoleClosed => self.console_closed = true,
                Input::Engine { generation, line } if generation == self.generation => {
                    match reference::classify(&line) {
                        Line::Event(e) => self.session.event(&e),
                        other => eprintln!("mfp-testdev: unexpected engine line {other:?}"),
                    }
                }
                Input::EngineClosed { generation }
                    if generation == self.generation && self.engine.is_some() =>
                {
                    eprintln!("mfp-testdev: the mail engine exited; rebooting");
                    self.reboot();
                }
                Input::Engine { .. } | Input::EngineClosed { .. } => {}
                Input::PowerCycle => self.reboot(),
            }
        }
    }
}
