//! An RFC 2217 client: a serial port served over telnet with the COM-PORT-OPTION
//! (ser2net's `telnet(rfc2217)`, Moxa and Digi terminal servers). No Rust client
//! exists, so this is ours, in two layers: [`Codec`], sans-IO (bytes in → data
//! bytes, replies and events out; data out → escaped bytes), and [`connect`], the
//! blocking stream the console driver reads and writes.
//!
//! The client offers `WILL COM-PORT-OPTION`, `WILL`/`DO BINARY` and `WILL`/`DO
//! SUPPRESS-GO-AHEAD`, refuses every other option (`DONT`/`WONT`), and once the
//! server says `DO COM-PORT-OPTION` sets the line with SET-BAUDRATE, SET-DATASIZE,
//! SET-PARITY, SET-STOPSIZE and SET-CONTROL, checking each of the server's answers
//! (the request's code + 100).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Flow, LineSettings, Parity};

pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
pub const SB: u8 = 250;
pub const SE: u8 = 240;

pub const OPT_BINARY: u8 = 0;
pub const OPT_SGA: u8 = 3;
pub const OPT_COM_PORT: u8 = 44;

/// Client → server COM-PORT-OPTION commands (the server answers with code + 100).
pub const SIGNATURE: u8 = 0;
pub const SET_BAUDRATE: u8 = 1;
pub const SET_DATASIZE: u8 = 2;
pub const SET_PARITY: u8 = 3;
pub const SET_STOPSIZE: u8 = 4;
pub const SET_CONTROL: u8 = 5;
pub const NOTIFY_LINESTATE: u8 = 6;
pub const NOTIFY_MODEMSTATE: u8 = 7;
pub const FLOWCONTROL_SUSPEND: u8 = 8;
pub const FLOWCONTROL_RESUME: u8 = 9;
pub const SET_LINESTATE_MASK: u8 = 10;
pub const SET_MODEMSTATE_MASK: u8 = 11;
pub const PURGE_DATA: u8 = 12;
/// What the server adds to a command's code in its answer.
pub const SERVER_OFFSET: u8 = 100;

/// Longest subnegotiation kept; longer ones are cut (a signature is the longest).
const MAX_SB: usize = 1024;

/// What the codec saw besides data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Both sides agreed an option (ours: the server said DO; theirs: WILL).
    Agreed { ours: bool, option: u8 },
    /// The server refused an option we offered or asked for (DONT or WONT).
    Refused { ours: bool, option: u8 },
    /// The server offered or asked for an option we do not do (we refused it).
    Declined { ours: bool, option: u8 },
    /// A COM-PORT-OPTION subnegotiation from the server: code (101..112 for answers,
    /// 0..12 if the server asks us) and value bytes, IAC escapes undone.
    ComPort { code: u8, value: Vec<u8> },
    /// A subnegotiation of another option, ignored.
    OtherSubnegotiation { option: u8 },
}

/// What one [`Codec::receive`] call produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// The serial data, escapes undone.
    pub data: Vec<u8>,
    /// Bytes to send back to the server (negotiation answers).
    pub reply: Vec<u8>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    Data,
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the verb.
    Verb(u8),
    /// After IAC SB: waiting for the option byte.
    SbOption,
    /// Inside SB: collecting.
    Sb,
    /// Inside SB after IAC.
    SbIac,
}

/// An option's state on one side (RFC 1143, without the queue bits: we never change
/// our mind while a request is pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Opt {
    #[default]
    No,
    Yes,
    /// We asked (WILL or DO) and wait for the answer.
    WantYes,
}

/// The telnet and COM-PORT-OPTION state machine of the client side. No sockets.
pub struct Codec {
    parse: Parse,
    sb_option: u8,
    sb: Vec<u8>,
    /// Options we perform (we said WILL), by option number.
    us: [Opt; 256],
    /// Options the server performs (it said WILL), by option number.
    him: [Opt; 256],
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

/// Options we will perform when asked.
fn we_do(option: u8) -> bool {
    matches!(option, OPT_BINARY | OPT_SGA | OPT_COM_PORT)
}

/// Options we let the server perform.
fn we_let(option: u8) -> bool {
    matches!(option, OPT_BINARY | OPT_SGA)
}

impl Codec {
    pub fn new() -> Codec {
        Codec {
            parse: Parse::Data,
            sb_option: 0,
            sb: Vec::new(),
            us: [Opt::No; 256],
            him: [Opt::No; 256],
        }
    }

    /// The opening negotiation: WILL COM-PORT-OPTION, WILL and DO BINARY, WILL and
    /// DO SUPPRESS-GO-AHEAD.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for option in [OPT_COM_PORT, OPT_BINARY, OPT_SGA] {
            self.us[option as usize] = Opt::WantYes;
            out.extend([IAC, WILL, option]);
        }
        for option in [OPT_BINARY, OPT_SGA] {
            self.him[option as usize] = Opt::WantYes;
            out.extend([IAC, DO, option]);
        }
        out
    }

    /// The opening negotiation of a plain telnet console: WILL and DO BINARY, WILL
    /// and DO SUPPRESS-GO-AHEAD; no COM-PORT-OPTION (there is no line to set).
    pub fn start_telnet(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for option in [OPT_BINARY, OPT_SGA] {
            self.us[option as usize] = Opt::WantYes;
            out.extend([IAC, WILL, option]);
            self.him[option as usize] = Opt::WantYes;
            out.extend([IAC, DO, option]);
        }
        out
    }

    /// Whether the server agreed to COM-PORT-OPTION.
    pub fn com_port(&self) -> bool {
        self.us[OPT_COM_PORT as usize] == Opt::Yes
    }

    /// Serial data escaped for the wire: every 0xFF doubled.
    pub fn encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 8);
        for &b in data {
            out.push(b);
            if b == IAC {
                out.push(IAC);
            }
        }
        out
    }

    /// A COM-PORT-OPTION subnegotiation `IAC SB 44 code value IAC SE`, 0xFF in the
    /// value doubled.
    pub fn com_port_command(code: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![IAC, SB, OPT_COM_PORT, code];
        out.extend(Codec::encode(value));
        out.extend([IAC, SE]);
        out
    }

    /// The commands that set the line: baud rate, data size, parity, stop size and
    /// flow control, in that order.
    pub fn line_commands(line: &LineSettings) -> Vec<(u8, Vec<u8>)> {
        vec![
            (SET_BAUDRATE, line.baud.to_be_bytes().to_vec()),
            (SET_DATASIZE, vec![line.data_bits]),
            (SET_PARITY, vec![parity_code(line.parity)]),
            (SET_STOPSIZE, vec![line.stop_bits]),
            (SET_CONTROL, vec![flow_code(line.flow)]),
        ]
    }

    /// Takes bytes from the server.
    pub fn receive(&mut self, input: &[u8]) -> Received {
        let mut r = Received::default();
        for &b in input {
            self.parse = match self.parse {
                Parse::Data if b == IAC => Parse::Iac,
                Parse::Data => {
                    r.data.push(b);
                    Parse::Data
                }
                Parse::Iac => match b {
                    IAC => {
                        r.data.push(IAC);
                        Parse::Data
                    }
                    WILL | WONT | DO | DONT => Parse::Verb(b),
                    SB => Parse::SbOption,
                    // NOP, GA, DM, BRK, IP, AO, AYT, EC, EL, a stray SE: nothing for us.
                    _ => Parse::Data,
                },
                Parse::Verb(verb) => {
                    self.negotiate(verb, b, &mut r);
                    Parse::Data
                }
                Parse::SbOption => {
                    self.sb_option = b;
                    self.sb.clear();
                    Parse::Sb
                }
                Parse::Sb if b == IAC => Parse::SbIac,
                Parse::Sb => {
                    if self.sb.len() < MAX_SB {
                        self.sb.push(b);
                    }
                    Parse::Sb
                }
                Parse::SbIac => match b {
                    IAC => {
                        if self.sb.len() < MAX_SB {
                            self.sb.push(IAC);
                        }
                        Parse::Sb
                    }
                    SE => {
                        self.subnegotiation(&mut r);
                        Parse::Data
                    }
                    // IAC then anything else inside SB: a broken server; end the SB
                    // there and read on as data.
                    _ => {
                        self.subnegotiation(&mut r);
                        Parse::Data
                    }
                },
            };
        }
        r
    }

    fn subnegotiation(&mut self, r: &mut Received) {
        let sb = std::mem::take(&mut self.sb);
        if self.sb_option != OPT_COM_PORT {
            r.events.push(Event::OtherSubnegotiation {
                option: self.sb_option,
            });
            return;
        }
        if let Some((&code, value)) = sb.split_first() {
            r.events.push(Event::ComPort {
                code,
                value: value.to_vec(),
            });
        }
    }

    fn negotiate(&mut self, verb: u8, option: u8, r: &mut Received) {
        let i = option as usize;
        match verb {
            DO => match self.us[i] {
                Opt::WantYes => {
                    self.us[i] = Opt::Yes;
                    r.events.push(Event::Agreed { ours: true, option });
                }
                Opt::Yes => {}
                Opt::No if we_do(option) => {
                    self.us[i] = Opt::Yes;
                    r.reply.extend([IAC, WILL, option]);
                    r.events.push(Event::Agreed { ours: true, option });
                }
                Opt::No => {
                    r.reply.extend([IAC, WONT, option]);
                    r.events.push(Event::Declined { ours: true, option });
                }
            },
            DONT => match self.us[i] {
                Opt::WantYes => {
                    self.us[i] = Opt::No;
                    r.events.push(Event::Refused { ours: true, option });
                }
                Opt::Yes => {
                    self.us[i] = Opt::No;
                    r.reply.extend([IAC, WONT, option]);
                    r.events.push(Event::Refused { ours: true, option });
                }
                Opt::No => {}
            },
            WILL => match self.him[i] {
                Opt::WantYes => {
                    self.him[i] = Opt::Yes;
                    r.events.push(Event::Agreed {
                        ours: false,
                        option,
                    });
                }
                Opt::Yes => {}
                Opt::No if we_let(option) => {
                    self.him[i] = Opt::Yes;
                    r.reply.extend([IAC, DO, option]);
                    r.events.push(Event::Agreed {
                        ours: false,
                        option,
                    });
                }
                Opt::No => {
                    r.reply.extend([IAC, DONT, option]);
                    r.events.push(Event::Declined {
                        ours: false,
                        option,
                    });
                }
            },
            // WONT
            _ => match self.him[i] {
                Opt::WantYes => {
                    self.him[i] = Opt::No;
                    r.events.push(Event::Refused {
                        ours: false,
                        option,
                    });
                }
                Opt::Yes => {
                    self.him[i] = Opt::No;
                    r.reply.extend([IAC, DONT, option]);
                    r.events.push(Event::Refused {
                        ours: false,
                        option,
                    });
                }
                Opt::No => {}
            },
        }
    }
}

/// RFC 2217's parity value: 1 none, 2 odd, 3 even.
pub fn parity_code(p: Parity) -> u8 {
    match p {
        Parity::None => 1,
        Parity::Odd => 2,
        Parity::Even => 3,
    }
}

/// RFC 2217's SET-CONTROL value for outbound flow control: 1 none, 2 XON/XOFF, 3
/// hardware (RTS/CTS).
pub fn flow_code(f: Flow) -> u8 {
    match f {
        Flow::None => 1,
        Flow::XonXoff => 2,
        Flow::RtsCts => 3,
    }
}

/// A command's name, for messages.
pub fn command_name(code: u8) -> &'static str {
    match code % SERVER_OFFSET {
        SIGNATURE => "SIGNATURE",
        SET_BAUDRATE => "SET-BAUDRATE",
        SET_DATASIZE => "SET-DATASIZE",
        SET_PARITY => "SET-PARITY",
        SET_STOPSIZE => "SET-STOPSIZE",
        SET_CONTROL => "SET-CONTROL",
        NOTIFY_LINESTATE => "NOTIFY-LINESTATE",
        NOTIFY_MODEMSTATE => "NOTIFY-MODEMSTATE",
        FLOWCONTROL_SUSPEND => "FLOWCONTROL-SUSPEND",
        FLOWCONTROL_RESUME => "FLOWCONTROL-RESUME",
        SET_LINESTATE_MASK => "SET-LINESTATE-MASK",
        SET_MODEMSTATE_MASK => "SET-MODEMSTATE-MASK",
        PURGE_DATA => "PURGE-DATA",
        _ => "an unknown COM-PORT-OPTION command",
    }
}

/// The server set something other than what one of our SET commands asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server answered {command} with {got} instead of {asked}")]
pub struct WrongAnswer {
    /// The command's name (`SET-BAUDRATE`).
    pub command: &'static str,
    /// What the server set and what was asked, as numbers (the baud rate) or bytes.
    pub got: String,
    pub asked: String,
}

/// Checks the server's answer to one of our SET commands: `None` if it is not an
/// answer to `code`, `Some(Err)` if the server set something else.
pub fn check_answer(
    code: u8,
    asked: &[u8],
    got_code: u8,
    got: &[u8],
) -> Option<Result<(), WrongAnswer>> {
    if got_code != code + SERVER_OFFSET {
        return None;
    }
    Some(if got == asked {
        Ok(())
    } else {
        let show = |v: &[u8]| {
            if code == SET_BAUDRATE {
                match <[u8; 4]>::try_from(v) {
                    Ok(b) => u32::from_be_bytes(b).to_string(),
                    Err(_) => format!("{v:?}"),
                }
            } else {
                format!("{v:?}")
            }
        };
        Err(WrongAnswer {
            command: command_name(code),
            got: show(got),
            asked: show(asked),
        })
    })
}

/// Why an RFC 2217 connection could not be set up; each names the server
/// (`HOST:PORT`, the first field) and the step.
#[derive(Debug, thiserror::Error)]
pub enum Rfc2217Error {
    #[error("cannot resolve the RFC 2217 server {0}: {1}")]
    Resolve(String, #[source] io::Error),
    #[error("the RFC 2217 server {0}: the name resolves to no address")]
    NoAddress(String),
    #[error("cannot connect to the RFC 2217 server {0}: {1}")]
    Connect(String, #[source] io::Error),
    #[error("cannot use the connection to the RFC 2217 server {0}: {1}")]
    Clone(String, #[source] io::Error),
    #[error("writing to the RFC 2217 server {0}: {1}")]
    Write(String, #[source] io::Error),
    #[error("reading from the RFC 2217 server {0}: {1}")]
    Read(String, #[source] io::Error),
    /// The socket's read timeout cannot be set.
    #[error("the RFC 2217 server {0}: {1}")]
    Socket(String, #[source] io::Error),
    /// No answer to `what` (the second field) in time.
    #[error("the RFC 2217 server {0} did not answer {1} within {secs} s: is it an RFC 2217 server (ser2net telnet(rfc2217))?", secs = NEGOTIATION_TIMEOUT.as_secs())]
    Silent(String, String),
    #[error("the RFC 2217 server {0} closed the connection while negotiating {1}")]
    Closed(String, String),
    #[error("the RFC 2217 server {0} refused COM-PORT-OPTION (DONT 44): it is a plain telnet server, not RFC 2217; use tcp: for a raw port")]
    NoComPort(String),
    #[error("the RFC 2217 server {0}: {1}")]
    WrongAnswer(String, #[source] WrongAnswer),
}

/// Says when a negotiation step is over: `Some(Ok)` done, `Some(Err)` failed, `None`
/// read on.
type Until<'a> = dyn FnMut(&Codec, &Event) -> Option<Result<(), Rfc2217Error>> + 'a;

/// How long the server has to agree COM-PORT-OPTION and to answer each SET.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The reading half of an RFC 2217 connection: yields serial data only, answering
/// the server's negotiation on the shared writer.
pub struct Rfc2217Reader {
    stream: TcpStream,
    codec: Codec,
    pending: VecDeque<u8>,
    writer: Arc<Mutex<TcpStream>>,
}

/// The writing half: escapes serial data.
pub struct Rfc2217Writer {
    writer: Arc<Mutex<TcpStream>>,
}

fn send(writer: &Mutex<TcpStream>, bytes: &[u8]) -> io::Result<()> {
    let mut w = writer
        .lock()
        .map_err(|_| io::Error::other("the RFC 2217 writer lock is poisoned"))?;
    w.write_all(bytes)?;
    w.flush()
}

impl Read for Rfc2217Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut raw = [0u8; 4096];
        while self.pending.is_empty() {
            let n = self.stream.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            let r = self.codec.receive(&raw[..n]);
            if !r.reply.is_empty() {
                send(&self.writer, &r.reply)?;
            }
            self.pending.extend(r.data);
        }
        let n = buf.len().min(self.pending.len());
        for (slot, b) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Rfc2217Writer {
    /// A handle on the connection, to shut it down (and end a blocked read) from
    /// elsewhere.
    pub fn hangup_handle(&self) -> io::Result<TcpStream> {
        self.writer
            .lock()
            .map_err(|_| io::Error::other("the RFC 2217 writer lock is poisoned"))?
            .try_clone()
    }
}

impl Write for Rfc2217Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send(&self.writer, &Codec::encode(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection being set up: the server's bytes are read and its options
/// answered, and serial data that arrives meanwhile is kept for the reader.
struct Negotiation<'a> {
    /// The server's `HOST:PORT`, for errors.
    server: &'a str,
    stream: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    codec: Codec,
    pending: VecDeque<u8>,
}

impl Negotiation<'_> {
    fn server(&self) -> String {
        self.server.to_string()
    }

    fn send(&self, bytes: &[u8]) -> Result<(), Rfc2217Error> {
        send(&self.writer, bytes).map_err(|e| Rfc2217Error::Write(self.server(), e))
    }

    /// Reads until `done` says so (`Some(result)`) or [`NEGOTIATION_TIMEOUT`]
    /// passes without it; `what` names the step for errors.
    fn wait(&mut self, what: &str, done: &mut Until) -> Result<(), Rfc2217Error> {
        let mut raw = [0u8; 4096];
        let deadline = Instant::now() + NEGOTIATION_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Rfc2217Error::Silent(self.server(), what.to_string()));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| Rfc2217Error::Socket(self.server(), e))?;
            let n = match self.stream.read(&mut raw) {
                Ok(0) => return Err(Rfc2217Error::Closed(self.server(), what.to_string())),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(Rfc2217Error::Read(self.server(), e)),
            };
            let r = self.codec.receive(&raw[..n]);
            if !r.reply.is_empty() {
                self.send(&r.reply)?;
            }
            self.pending.extend(r.data);
            for e in &r.events {
                if let Some(result) = done(&self.codec, e) {
                    return result;
                }
            }
        }
    }
}

/// Connects to the RFC 2217 server at `addr`, agrees COM-PORT-OPTION, sets the line
/// to `line` and checks every answer. Errors name the server and what went wrong.
pub fn connect(
    addr: &str,
    line: &LineSettings,
) -> Result<(Rfc2217Reader, Rfc2217Writer), Rfc2217Error> {
    let server = || addr.to_string();
    let target = addr
        .to_socket_addrs()
        .map_err(|e| Rfc2217Error::Resolve(server(), e))?
        .next()
        .ok_or_else(|| Rfc2217Error::NoAddress(server()))?;
    let stream = TcpStream::connect_timeout(&target, NEGOTIATION_TIMEOUT)
        .map_err(|e| Rfc2217Error::Connect(server(), e))?;
    let _ = stream.set_nodelay(true);
    let writer = stream
        .try_clone()
        .map_err(|e| Rfc2217Error::Clone(server(), e))?;
    let mut n = Negotiation {
        server: addr,
        stream,
        writer: Arc::new(Mutex::new(writer)),
        codec: Codec::new(),
        pending: VecDeque::new(),
    };
    let start = n.codec.start();
    n.send(&start)?;

    n.wait("WILL COM-PORT-OPTION", &mut |c, e| match e {
        Event::Refused {
            ours: true,
            option: OPT_COM_PORT,
        } => Some(Err(Rfc2217Error::NoComPort(server()))),
        _ if c.com_port() => Some(Ok(())),
        _ => None,
    })?;

    let mut out = Vec::new();
    let commands = Codec::line_commands(line);
    for (code, value) in &commands {
        out.extend(Codec::com_port_command(*code, value));
    }
    n.send(&out)?;
    let mut answered = vec![false; commands.len()];
    let names: Vec<&str> = commands.iter().map(|(c, _)| command_name(*c)).collect();
    n.wait(&names.join(", "), &mut |_, e| {
        let Event::ComPort {
            code: got,
            value: v,
        } = e
        else {
            return None;
        };
        for (i, (code, value)) in commands.iter().enumerate() {
            match check_answer(*code, value, *got, v) {
                None => {}
                Some(Err(wrong)) => return Some(Err(Rfc2217Error::WrongAnswer(server(), wrong))),
                Some(Ok(())) => answered[i] = true,
            }
        }
        answered.iter().all(|a| *a).then_some(Ok(()))
    })?;
    n.stream
        .set_read_timeout(None)
        .map_err(|e| Rfc2217Error::Socket(server(), e))?;
    Ok((
        Rfc2217Reader {
            stream: n.stream,
            codec: n.codec,
            pending: n.pending,
            writer: Arc::clone(&n.writer),
        },
        Rfc2217Writer { writer: n.writer },
    ))
}

/// Connects to a telnet console: offers binary and no go-ahead, answers every other
/// option the server asks about, and keeps telnet's commands out of the data (the
/// reader and writer are the RFC 2217 ones, without a line to set).
pub fn connect_telnet(addr: &str) -> Result<(Rfc2217Reader, Rfc2217Writer), Rfc2217Error> {
    let server = || addr.to_string();
    let target = addr
        .to_socket_addrs()
        .map_err(|e| Rfc2217Error::Resolve(server(), e))?
        .next()
        .ok_or_else(|| Rfc2217Error::NoAddress(server()))?;
    let stream = TcpStream::connect_timeout(&target, NEGOTIATION_TIMEOUT)
        .map_err(|e| Rfc2217Error::Connect(server(), e))?;
    let _ = stream.set_nodelay(true);
    let writer = stream
        .try_clone()
        .map_err(|e| Rfc2217Error::Clone(server(), e))?;
    let mut codec = Codec::new();
    let start = codec.start_telnet();
    let writer = Arc::new(Mutex::new(writer));
    {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(&start)
            .map_err(|e| Rfc2217Error::Socket(server(), e))?;
    }
    Ok((
        Rfc2217Reader {
            stream,
            codec,
            pending: VecDeque::new(),
            writer: Arc::clone(&writer),
        },
        Rfc2217Writer { writer },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed_codec() -> Codec {
        let mut c = Codec::new();
        c.start();
        let r = c.receive(&[
            IAC,
            DO,
            OPT_COM_PORT,
            IAC,
            DO,
            OPT_BINARY,
            IAC,
            WILL,
            OPT_BINARY,
        ]);
        assert!(
            r.reply.is_empty(),
            "answers to our own requests need no reply"
        );
        assert!(c.com_port());
        c
    }

    #[test]
    fn start_offers_com_port_binary_and_sga() {
        let mut c = Codec::new();
        assert_eq!(
            c.start(),
            vec![IAC, WILL, 44, IAC, WILL, 0, IAC, WILL, 3, IAC, DO, 0, IAC, DO, 3]
        );
        assert!(!c.com_port());
    }

    #[test]
    fn iac_is_doubled_out_and_undoubled_in() {
        assert_eq!(Codec::encode(b"a\xffb"), b"a\xff\xffb".to_vec());
        assert_eq!(Codec::encode(&[IAC, IAC]), vec![IAC; 4]);
        let mut c = agreed_codec();
        assert_eq!(c.receive(b"x\xff\xffy").data, b"x\xffy".to_vec());
    }

    #[test]
    fn sequences_split_across_reads() {
        let mut c = agreed_codec();
        // IAC IAC split after the first IAC.
        let a = c.receive(b"ab\xff");
        assert_eq!(a.data, b"ab".to_vec());
        let b = c.receive(b"\xffc");
        assert_eq!(b.data, b"\xffc".to_vec());
        // A DO split across three reads.
        let mut d = Codec::new();
        d.start();
        assert!(d.receive(&[IAC]).events.is_empty());
        assert!(d.receive(&[DO]).events.is_empty());
        let r = d.receive(&[OPT_COM_PORT, b'z']);
        assert_eq!(
            r.events,
            vec![Event::Agreed {
                ours: true,
                option: OPT_COM_PORT
            }]
        );
        assert_eq!(r.data, b"z".to_vec());
        // A subnegotiation split byte by byte, with an escaped 0xFF in its value.
        let mut c = agreed_codec();
        let bytes = [IAC, SB, OPT_COM_PORT, 101, 0, 0, IAC, IAC, IAC, SE, b'k'];
        let mut events = Vec::new();
        let mut data = Vec::new();
        for b in bytes {
            let r = c.receive(&[b]);
            events.extend(r.events);
            data.extend(r.data);
        }
        assert_eq!(
            events,
            vec![Event::ComPort {
                code: 101,
                value: vec![0, 0, 255]
            }]
        );
        assert_eq!(data, b"k".to_vec());
    }

    #[test]
    fn com_port_commands_escape_their_values() {
        // RFC 2217: IAC SB COM-PORT-OPTION SET-BAUDRATE <value(4)> IAC SE.
        assert_eq!(
            Codec::com_port_command(SET_BAUDRATE, &9600u32.to_be_bytes()),
            vec![IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE]
        );
        // A baud rate with a 0xFF byte: doubled.
        assert_eq!(
            Codec::com_port_command(SET_BAUDRATE, &0x0000_ff00u32.to_be_bytes()),
            vec![IAC, SB, 44, 1, 0, 0, IAC, IAC, 0, IAC, SE]
        );
        let line = LineSettings {
            baud: 115_200,
            data_bits: 7,
            parity: Parity::Even,
            stop_bits: 2,
            flow: Flow::RtsCts,
        };
        assert_eq!(
            Codec::line_commands(&line),
            vec![
                (SET_BAUDRATE, vec![0, 1, 0xc2, 0]),
                (SET_DATASIZE, vec![7]),
                (SET_PARITY, vec![3]),
                (SET_STOPSIZE, vec![2]),
                (SET_CONTROL, vec![3]),
            ]
        );
    }

    #[test]
    fn unknown_options_are_refused() {
        let mut c = agreed_codec();
        // The server offers ECHO (1) and asks for TERMINAL-TYPE (24): DONT and WONT.
        let r = c.receive(&[IAC, WILL, 1, IAC, DO, 24]);
        assert_eq!(r.reply, vec![IAC, DONT, 1, IAC, WONT, 24]);
        assert_eq!(
            r.events,
            vec![
                Event::Declined {
                    ours: false,
                    option: 1
                },
                Event::Declined {
                    ours: true,
                    option: 24
                }
            ]
        );
        // Said again: refused again, never agreed.
        let r = c.receive(&[IAC, WILL, 1]);
        assert_eq!(r.reply, vec![IAC, DONT, 1]);
        // A WONT/DONT for something off draws no answer (no loop).
        assert!(c.receive(&[IAC, WONT, 1, IAC, DONT, 24]).reply.is_empty());
    }

    #[test]
    fn a_refused_com_port_is_an_event() {
        let mut c = Codec::new();
        c.start();
        let r = c.receive(&[IAC, DONT, OPT_COM_PORT]);
        assert!(r.reply.is_empty());
        assert_eq!(
            r.events,
            vec![Event::Refused {
                ours: true,
                option: OPT_COM_PORT
            }]
        );
        assert!(!c.com_port());
    }

    #[test]
    fn an_agreed_option_turned_off_is_acknowledged() {
        let mut c = agreed_codec();
        let r = c.receive(&[IAC, DONT, OPT_COM_PORT, IAC, WONT, OPT_BINARY]);
        assert_eq!(
            r.reply,
            vec![IAC, WONT, OPT_COM_PORT, IAC, DONT, OPT_BINARY]
        );
        assert!(!c.com_port());
        // The server asking first (DO before our WILL was seen) is answered WILL.
        let mut d = Codec::new();
        let r = d.receive(&[IAC, DO, OPT_COM_PORT]);
        assert_eq!(r.reply, vec![IAC, WILL, OPT_COM_PORT]);
        assert!(d.com_port());
    }

    #[test]
    fn commands_and_other_subnegotiations_in_data() {
        let mut c = agreed_codec();
        // NOP (241) and GA (249) vanish; another option's SB is reported and skipped.
        let r = c.receive(&[
            b'a', IAC, 241, b'b', IAC, 249, IAC, SB, 24, 1, IAC, SE, b'c',
        ]);
        assert_eq!(r.data, b"abc".to_vec());
        assert_eq!(r.events, vec![Event::OtherSubnegotiation { option: 24 }]);
    }

    #[test]
    fn answers_are_checked() {
        let asked = 9600u32.to_be_bytes();
        assert_eq!(
            check_answer(SET_BAUDRATE, &asked, 101, &asked),
            Some(Ok(()))
        );
        assert_eq!(check_answer(SET_BAUDRATE, &asked, 102, &asked), None);
        let e = check_answer(SET_BAUDRATE, &asked, 101, &4800u32.to_be_bytes());
        assert_eq!(
            e.and_then(Result::err).map(|e| e.to_string()).as_deref(),
            Some("the server answered SET-BAUDRATE with 4800 instead of 9600")
        );
        assert!(matches!(
            check_answer(SET_PARITY, &[3], 103, &[1]),
            Some(Err(_))
        ));
    }
}
