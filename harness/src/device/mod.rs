//! Reaching a device: where its console is (`Endpoint`), how its dialect reads
//! (`profile`), the console driver speaking that dialect (`console`), and the
//! embedded simulated device started on a pty (`embedded`).

pub mod console;
pub mod embedded;
pub mod profile;

pub use console::{Console, DriverError, JobEnd, JobReport, Status, TriggerAnswer};
pub use profile::Profile;

/// Where a device's console is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial port (a pty path or `/dev/tty…`) at a baud rate.
    Serial { path: String, baud: u32 },
    /// A raw TCP console, as ser2net serves a port.
    Tcp { addr: String },
}

impl Endpoint {
    /// Reads `serial:/dev/ttyX[,BAUD]` or `tcp:HOST:PORT`.
    pub fn parse(spec: &str) -> Result<Endpoint, String> {
        if let Some(rest) = spec.strip_prefix("serial:") {
            let (path, baud) = match rest.rsplit_once(',') {
                Some((p, b)) => {
                    let baud = b.parse::<u32>().ok().filter(|b| *b > 0).ok_or_else(|| {
                        format!("{spec:?}: the baud rate {b:?} is not a positive integer")
                    })?;
                    (p, baud)
                }
                None => (rest, 115_200),
            };
            if path.is_empty() {
                return Err(format!("{spec:?}: no port path after serial:"));
            }
            return Ok(Endpoint::Serial {
                path: path.to_string(),
                baud,
            });
        }
        if let Some(addr) = spec.strip_prefix("tcp:") {
            if addr
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!("{spec:?}: expected tcp:HOST:PORT"));
            }
            return Ok(Endpoint::Tcp {
                addr: addr.to_string(),
            });
        }
        Err(format!(
            "{spec:?}: a device is sim, serial:/dev/ttyX[,BAUD] or tcp:HOST:PORT"
        ))
    }

    /// A short name for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Serial { path, baud } => format!("serial port {path} at {baud} baud"),
            Endpoint::Tcp { addr } => format!("TCP console {addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("serial:/dev/ttyUSB0,9600"),
            Ok(Endpoint::Serial {
                path: "/dev/ttyUSB0".into(),
                baud: 9600
            })
        );
        assert_eq!(
            Endpoint::parse("serial:/dev/pts/3"),
            Ok(Endpoint::Serial {
                path: "/dev/pts/3".into(),
                baud: 115200
            })
        );
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:7000"),
            Ok(Endpoint::Tcp {
                addr: "127.0.0.1:7000".into()
            })
        );
        assert!(Endpoint::parse("tcp:host").is_err());
        assert!(Endpoint::parse("serial:/dev/x,fast").is_err());
        assert!(Endpoint::parse("usb").is_err());
    }
}
