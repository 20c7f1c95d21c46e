//! Reaching a device: where its console is (`Endpoint`), how its dialect reads
//! (`profile`), the console driver speaking that dialect (`console`, its operations
//! in `ops`, its link and reader thread in `link`, what a terminal displays in
//! `term`, what a profile misses in `diagnose`), the RFC 2217 telnet client for
//! serial ports served over the network (`rfc2217`), and the embedded simulated
//! device started on a pty (`embedded`).

pub(crate) mod capped;
pub mod console;
pub mod diagnose;
pub mod embedded;
mod link;
mod ops;
pub mod profile;
pub mod rfc2217;
pub mod term;

pub use console::{Console, DriverError, JobEnd, JobReport, Status, TriggerAnswer};
pub use profile::Profile;

/// A serial line's parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Odd,
    Even,
}

/// A serial line's flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    None,
    RtsCts,
    XonXoff,
}

/// How a serial line is set: baud rate, frame format (`8N1`) and flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    pub flow: Flow,
}

impl Default for LineSettings {
    /// 115200 baud, 8N1, no flow control.
    fn default() -> Self {
        LineSettings {
            baud: 115_200,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow: Flow::None,
        }
    }
}

/// Why a `--device` text is not an endpoint, or its line options are not a line
/// setting: the whole text (`spec`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{spec:?}: {problem}")]
pub struct EndpointError {
    pub spec: String,
    pub problem: EndpointProblem,
}

/// What is wrong with an endpoint text; each names the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointProblem {
    /// `what` (`the baud rate`, `the frame format`, `the flow control`) twice.
    #[error("{what} is given twice ({option:?})")]
    GivenTwice { what: &'static str, option: String },
    #[error("the baud rate {0:?} is not a positive 32-bit integer")]
    Baud(String),
    #[error("{0:?}: data bits are 5 to 8")]
    DataBits(String),
    #[error("{0:?}: parity is N, O or E")]
    Parity(String),
    #[error("{0:?}: stop bits are 1 or 2")]
    StopBits(String),
    #[error("{0:?} is none of a baud rate (115200), a frame format (8N1) or a flow control (none, rtscts, xonxoff)")]
    UnknownOption(String),
    #[error("no port path after serial:")]
    NoPath,
    /// `tcp:` or `rfc2217:` without `HOST:PORT`.
    #[error("expected {0}:HOST:PORT")]
    NotHostPort(&'static str),
    #[error("a device is {ENDPOINT_SYNTAX}")]
    UnknownKind,
}

impl EndpointProblem {
    fn of(self, spec: &str) -> EndpointError {
        EndpointError {
            spec: spec.to_string(),
            problem: self,
        }
    }
}

impl LineSettings {
    /// Reads the options after the port: each of `BAUD` (digits), a frame format
    /// `DPS` (data bits 5-8, parity N/O/E, stop bits 1/2, e.g. `8N1`) and a flow
    /// control (`none`, `rtscts`, `xonxoff`, also written `flow=…`), in any order,
    /// each at most once.
    pub fn parse_options(spec: &str, opts: &[&str]) -> Result<LineSettings, EndpointError> {
        use EndpointProblem as P;
        let mut s = LineSettings::default();
        let (mut baud, mut format, mut flow) = (false, false, false);
        for o in opts {
            let o = o.trim();
            let bad = |problem: fn(String) -> EndpointProblem| problem(o.to_string()).of(spec);
            let once = |seen: &mut bool, what: &'static str| {
                if std::mem::replace(seen, true) {
                    let option = o.to_string();
                    Err(P::GivenTwice { what, option }.of(spec))
                } else {
                    Ok(())
                }
            };
            if !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()) {
                once(&mut baud, "the baud rate")?;
                s.baud = o
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad(P::Baud))?;
            } else if let Some(f) = flow_word(o) {
                once(&mut flow, "the flow control")?;
                s.flow = f;
            } else if let [d, p, st] = o.as_bytes() {
                once(&mut format, "the frame format")?;
                s.data_bits = match d {
                    b'5'..=b'8' => d - b'0',
                    _ => return Err(bad(P::DataBits)),
                };
                s.parity = match p.to_ascii_uppercase() {
                    b'N' => Parity::None,
                    b'O' => Parity::Odd,
                    b'E' => Parity::Even,
                    _ => return Err(bad(P::Parity)),
                };
                s.stop_bits = match st {
                    b'1' | b'2' => st - b'0',
                    _ => return Err(bad(P::StopBits)),
                };
            } else {
                return Err(bad(P::UnknownOption));
            }
        }
        Ok(s)
    }
}

fn flow_word(o: &str) -> Option<Flow> {
    match o
        .strip_prefix("flow=")
        .unwrap_or(o)
        .to_ascii_lowercase()
        .as_str()
    {
        "none" => Some(Flow::None),
        "rtscts" => Some(Flow::RtsCts),
        "xonxoff" => Some(Flow::XonXoff),
        _ => None,
    }
}

impl std::fmt::Display for LineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
        };
        let flow = match self.flow {
            Flow::None => "no flow control",
            Flow::RtsCts => "RTS/CTS",
            Flow::XonXoff => "XON/XOFF",
        };
        write!(
            f,
            "{} baud {}{p}{} {flow}",
            self.baud, self.data_bits, self.stop_bits
        )
    }
}

/// Where a device's console is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial port (a pty path or `/dev/tty…`) and how its line is set.
    Serial { path: String, line: LineSettings },
    /// A raw TCP console, as ser2net serves a port.
    Tcp { addr: String },
    /// A serial port served by an RFC 2217 (telnet COM-PORT-OPTION) server, which is
    /// asked to set the line so.
    Rfc2217 { addr: String, line: LineSettings },
    /// A telnet console (a device's own telnet service, ser2net `accepter: telnet`):
    /// telnet's negotiation is answered and kept out of the console's text.
    Telnet { addr: String },
}

/// The endpoint syntax, for messages.
pub const ENDPOINT_SYNTAX: &str = "sim, sim:PROGRAM, serial:PATH[,BAUD][,8N1][,none|rtscts|xonxoff], tcp:HOST:PORT, telnet:HOST:PORT or rfc2217:HOST:PORT[,BAUD][,8N1][,none|rtscts|xonxoff]";

fn check_addr(spec: &str, addr: &str, scheme: &'static str) -> Result<(), EndpointError> {
    if addr
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(EndpointProblem::NotHostPort(scheme).of(spec));
    }
    Ok(())
}

impl Endpoint {
    /// Reads `serial:PATH[,OPTIONS]`, `tcp:HOST:PORT` or `rfc2217:HOST:PORT[,OPTIONS]`
    /// (options: see [`LineSettings::parse_options`]).
    pub fn parse(spec: &str) -> Result<Endpoint, EndpointError> {
        if let Some(rest) = spec.strip_prefix("serial:") {
            let mut parts = rest.split(',');
            let path = parts.next().unwrap_or_default();
            if path.is_empty() {
                return Err(EndpointProblem::NoPath.of(spec));
            }
            let opts: Vec<&str> = parts.collect();
            return Ok(Endpoint::Serial {
                path: path.to_string(),
                line: LineSettings::parse_options(spec, &opts)?,
            });
        }
        if let Some(addr) = spec.strip_prefix("tcp:") {
            check_addr(spec, addr, "tcp")?;
            return Ok(Endpoint::Tcp {
                addr: addr.to_string(),
            });
        }
        if let Some(addr) = spec.strip_prefix("telnet:") {
            check_addr(spec, addr, "telnet")?;
            return Ok(Endpoint::Telnet {
                addr: addr.to_string(),
            });
        }
        if let Some(rest) = spec.strip_prefix("rfc2217:") {
            let mut parts = rest.split(',');
            let addr = parts.next().unwrap_or_default();
            check_addr(spec, addr, "rfc2217")?;
            let opts: Vec<&str> = parts.collect();
            return Ok(Endpoint::Rfc2217 {
                addr: addr.to_string(),
                line: LineSettings::parse_options(spec, &opts)?,
            });
        }
        Err(EndpointProblem::UnknownKind.of(spec))
    }

    /// A short name for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Serial { path, line } => format!("serial port {path} ({line})"),
            Endpoint::Tcp { addr } => format!("TCP console {addr}"),
            Endpoint::Rfc2217 { addr, line } => format!("RFC 2217 port {addr} ({line})"),
            Endpoint::Telnet { addr } => format!("telnet console {addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(path: &str, line: LineSettings) -> Result<Endpoint, EndpointError> {
        Ok(Endpoint::Serial {
            path: path.into(),
            line,
        })
    }

    #[test]
    fn endpoints() {
        let d = LineSettings::default();
        assert_eq!(
            Endpoint::parse("serial:/dev/ttyUSB0,9600"),
            serial("/dev/ttyUSB0", LineSettings { baud: 9600, ..d })
        );
        assert_eq!(
            Endpoint::parse("serial:/dev/pts/3"),
            serial("/dev/pts/3", d)
        );
        assert_eq!(
            Endpoint::parse("serial:/dev/ttyUSB0,115200,7E2,rtscts"),
            serial(
                "/dev/ttyUSB0",
                LineSettings {
                    data_bits: 7,
                    parity: Parity::Even,
                    stop_bits: 2,
                    flow: Flow::RtsCts,
                    ..d
                }
            )
        );
        assert_eq!(
            Endpoint::parse("serial:/dev/ttyS0,flow=xonxoff,8o1"),
            serial(
                "/dev/ttyS0",
                LineSettings {
                    parity: Parity::Odd,
                    flow: Flow::XonXoff,
                    ..d
                }
            )
        );
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:7000"),
            Ok(Endpoint::Tcp {
                addr: "127.0.0.1:7000".into()
            })
        );
        assert_eq!(
            Endpoint::parse("rfc2217:localhost:7001,9600,8N1,none"),
            Ok(Endpoint::Rfc2217 {
                addr: "localhost:7001".into(),
                line: LineSettings { baud: 9600, ..d }
            })
        );
        assert_eq!(
            Endpoint::parse("telnet:10.0.0.5:23"),
            Ok(Endpoint::Telnet {
                addr: "10.0.0.5:23".into()
            })
        );
        assert!(Endpoint::parse("telnet:10.0.0.5").is_err());
        assert!(Endpoint::parse("tcp:host").is_err());
        assert!(Endpoint::parse("rfc2217:host,9600").is_err());
        assert!(Endpoint::parse("serial:/dev/x,fast").is_err());
        assert!(Endpoint::parse("serial:/dev/x,9N1").is_err());
        assert!(Endpoint::parse("serial:/dev/x,8X1").is_err());
        assert!(Endpoint::parse("serial:/dev/x,8N3").is_err());
        assert!(Endpoint::parse("serial:/dev/x,9600,4800").is_err());
        assert!(Endpoint::parse("serial:/dev/x,0").is_err());
        assert!(Endpoint::parse("usb").is_err());
        let e = Endpoint::parse("serial:/dev/x,fast")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"fast\"") && e.contains("baud rate"), "{e}");
    }
}
