//! Serial transports on loopback, no hardware: the RFC 2217 client against a small
//! RFC 2217 server written here (bridging to a simulated device), a link dropped and
//! restored mid-run by a TCP proxy, and the errors of local serial ports (a wrong
//! path, a busy pty, a pty whose other end goes away).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hil::device::{Console, DriverError, Endpoint, Flow, LineSettings, Parity};

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const COM_PORT: u8 = 44;
const ECHO: u8 = 1;

/// How the test server behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A correct RFC 2217 server.
    Good,
    /// A plain telnet server: DONT COM-PORT-OPTION.
    Refuse,
    /// Answers SET-BAUDRATE with another rate.
    WrongBaud,
}

/// What the server saw from the client.
#[derive(Default, Debug)]
struct Seen {
    /// (verb, option) of every negotiation command.
    negotiation: Vec<(u8, u8)>,
    /// (code, value) of every COM-PORT-OPTION subnegotiation.
    com_port: Vec<(u8, Vec<u8>)>,
}

/// The telnet parser of the server side, written apart from the client's codec so
/// the two check each other.
#[derive(Default)]
struct ServerParse {
    state: u8, // 0 data, 1 IAC, 2 verb, 3 SB option, 4 SB, 5 SB IAC
    verb: u8,
    sb: Vec<u8>,
}

enum Item {
    Data(u8),
    Verb(u8, u8),
    Sub(Vec<u8>),
}

impl ServerParse {
    fn push(&mut self, b: u8, out: &mut Vec<Item>) {
        self.state = match (self.state, b) {
            (0, IAC) => 1,
            (0, _) => {
                out.push(Item::Data(b));
                0
            }
            (1, IAC) => {
                out.push(Item::Data(IAC));
                0
            }
            (1, WILL..=DONT) => {
                self.verb = b;
                2
            }
            (1, SB) => 3,
            (1, _) => 0,
            (2, _) => {
                out.push(Item::Verb(self.verb, b));
                0
            }
            (3, _) => {
                self.sb = vec![b];
                4
            }
            (4, IAC) => 5,
            (4, _) => {
                self.sb.push(b);
                4
            }
            (5, IAC) => {
                self.sb.push(IAC);
                4
            }
            (5, _) => {
                out.push(Item::Sub(std::mem::take(&mut self.sb)));
                0
            }
            _ => 0,
        };
    }
}

fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// Serves one RFC 2217 connection at a time, bridging data to the simulated device's
/// raw TCP console at `device`; returns its address and what it saw.
fn rfc2217_server(device: String, mode: Mode) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { return };
            let Ok(dev) = TcpStream::connect(&device) else {
                return;
            };
            let seen = Arc::clone(&seen2);
            std::thread::spawn(move || serve_one(client, dev, mode, seen));
        }
    });
    (addr, seen)
}

fn serve_one(mut client: TcpStream, dev: TcpStream, mode: Mode, seen: Arc<Mutex<Seen>>) {
    let out = Arc::new(Mutex::new(client.try_clone().expect("clone")));
    // The server speaks first, as ser2net does: it asks for COM-PORT-OPTION (or
    // refuses it), offers BINARY, and offers ECHO, which a client should refuse.
    let hello = match mode {
        Mode::Refuse => vec![IAC, DONT, COM_PORT],
        _ => vec![IAC, DO, COM_PORT, IAC, WILL, 0, IAC, WILL, ECHO],
    };
    let _ = out.lock().expect("lock").write_all(&hello);
    // Device → client, escaped.
    let mut dev_r = dev.try_clone().expect("clone");
    let out2 = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = dev_r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let Ok(mut w) = out2.lock() else { break };
            if w.write_all(&escape(&buf[..n])).is_err() {
                break;
            }
        }
        let _ = out2.lock().map(|w| w.shutdown(Shutdown::Both));
    });
    // Client → device, unescaped; negotiation answered.
    let mut dev_w = dev;
    let mut parse = ServerParse::default();
    let mut buf = [0u8; 4096];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut items = Vec::new();
        for &b in &buf[..n] {
            parse.push(b, &mut items);
        }
        let mut data = Vec::new();
        let mut reply = Vec::new();
        for it in items {
            match it {
                Item::Data(b) => data.push(b),
                Item::Verb(v, o) => {
                    seen.lock().expect("lock").negotiation.push((v, o));
                    // Our own DO COM-PORT was sent first: a WILL answers it.
                    if v == WILL && o != COM_PORT && o != 0 {
                        reply.extend([IAC, DONT, o]);
                    } else if v == DO && o != 0 && o != 3 {
                        reply.extend([IAC, WONT, o]);
                    } else if v == WILL && o == COM_PORT && mode == Mode::Refuse {
                        // Already refused.
                    }
                }
                Item::Sub(sb) => {
                    if sb.first() != Some(&COM_PORT) || sb.len() < 2 {
                        continue;
                    }
                    let code = sb[1];
                    let mut value = sb[2..].to_vec();
                    seen.lock()
                        .expect("lock")
                        .com_port
                        .push((code, value.clone()));
                    if code == 1 && mode == Mode::WrongBaud {
                        value = 4800u32.to_be_bytes().to_vec();
                    }
                    reply.extend([IAC, SB, COM_PORT, code + 100]);
                    reply.extend(escape(&value));
                    reply.extend([IAC, SE]);
                }
            }
        }
        if !reply.is_empty() && out.lock().expect("lock").write_all(&reply).is_err() {
            break;
        }
        if !data.is_empty() && dev_w.write_all(&data).is_err() {
            break;
        }
    }
    let _ = dev_w.shutdown(Shutdown::Both);
}

#[test]
fn rfc2217_end_to_end_sets_the_line_and_carries_the_console() {
    let (_sim, dev) = common::sim_process(20.0, &[]);
    let (addr, seen) = rfc2217_server(dev, Mode::Good);
    let line = LineSettings {
        baud: 9600,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 2,
        flow: Flow::RtsCts,
    };
    let ep = Endpoint::parse(&format!("rfc2217:{addr},9600,7E2,rtscts")).expect("endpoint");
    assert_eq!(
        ep,
        Endpoint::Rfc2217 {
            addr: addr.to_string(),
            line
        }
    );
    let mut con = Console::open(&ep, common::sim_profile()).expect("open over RFC 2217");
    con.op_ok("reset", &[], &[]).expect("reset");
    let a = con
        .apply(
            &common::pairs(&[("smtp.port", "2525"), ("smtp.server", "192.0.2.7")]),
            &[],
        )
        .expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok);
    assert_eq!(con.get(common::key("smtp.port")).expect("get"), "2525");
    assert_eq!(
        con.get(common::key("smtp.server")).expect("get"),
        "192.0.2.7"
    );
    // A setting refused by the device comes back as an error status, intact.
    let a = con
        .apply(&common::pairs(&[("smtp.port", "0")]), &[])
        .expect("apply");
    assert!(matches!(a.status, hil::device::Status::Err { .. }), "{a:?}");
    let s = seen.lock().expect("lock");
    assert_eq!(
        s.com_port,
        vec![
            (1, 9600u32.to_be_bytes().to_vec()),
            (2, vec![7]),
            (3, vec![3]),
            (4, vec![2]),
            (5, vec![3]),
        ],
        "SET-BAUDRATE 9600, SET-DATASIZE 7, SET-PARITY even, SET-STOPSIZE 2, SET-CONTROL hardware"
    );
    assert!(
        s.negotiation.contains(&(WILL, COM_PORT)),
        "{:?}",
        s.negotiation
    );
    assert!(
        s.negotiation.contains(&(DONT, ECHO)),
        "ECHO refused: {:?}",
        s.negotiation
    );
}

#[test]
fn rfc2217_refusals_are_named() {
    let (_sim, dev) = common::sim_process(20.0, &[]);
    let (addr, _) = rfc2217_server(dev.clone(), Mode::Refuse);
    let ep = Endpoint::parse(&format!("rfc2217:{addr}")).expect("endpoint");
    let e = Console::open(&ep, common::sim_profile())
        .err()
        .expect("refused");
    let m = e.to_string();
    assert!(m.contains("refused COM-PORT-OPTION"), "{m}");
    assert!(m.contains(&addr.to_string()), "{m}");

    let (addr, _) = rfc2217_server(dev, Mode::WrongBaud);
    let ep = Endpoint::parse(&format!("rfc2217:{addr},9600")).expect("endpoint");
    let m = Console::open(&ep, common::sim_profile())
        .err()
        .expect("wrong baud")
        .to_string();
    assert!(m.contains("SET-BAUDRATE with 4800 instead of 9600"), "{m}");

    // Nobody listening: the address is named.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let ep = Endpoint::parse(&format!("rfc2217:{closed}")).expect("endpoint");
    let m = Console::open(&ep, common::sim_profile())
        .err()
        .expect("nothing there")
        .to_string();
    assert!(m.contains(&closed.to_string()), "{m}");
}

/// A TCP proxy to `upstream` that, on the `drop_at`-th `reset` the harness sends,
/// cuts the connection, stops listening for `down`, then listens on the same port
/// again (`None`: never again).
fn flaky_proxy(upstream: String, drop_at: usize, down: Option<Duration>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut listener = Some(listener);
        let mut resets = 0usize;
        let mut dropped = false;
        loop {
            let l = match listener.take() {
                Some(l) => l,
                None => match TcpListener::bind(addr) {
                    Ok(l) => l,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                },
            };
            let Ok((client, _)) = l.accept() else { return };
            let Ok(up) = TcpStream::connect(&upstream) else {
                return;
            };
            let (mut c_r, mut u_w) = (
                client.try_clone().expect("clone"),
                up.try_clone().expect("clone"),
            );
            let (mut u_r, mut c_w) = (
                up.try_clone().expect("clone"),
                client.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u_r, &mut c_w);
                let _ = c_w.shutdown(Shutdown::Both);
            });
            let mut buf = [0u8; 4096];
            let mut cut = false;
            while let Ok(n) = c_r.read(&mut buf) {
                if n == 0 || u_w.write_all(&buf[..n]).is_err() {
                    break;
                }
                resets += String::from_utf8_lossy(&buf[..n]).matches("reset").count();
                if !dropped && resets >= drop_at {
                    std::thread::sleep(Duration::from_millis(100));
                    cut = true;
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
            if cut {
                dropped = true;
                drop(l);
                let Some(down) = down else { return };
                std::thread::sleep(down);
            } else {
                listener = Some(l);
            }
        }
    });
    addr
}

#[test]
fn a_link_dropped_and_restored_mid_run_carries_on() {
    let (_sim, dev) = common::sim_process(20.0, &[]);
    let proxy = flaky_proxy(dev, 3, Some(Duration::from_millis(1500)));
    let report = std::env::temp_dir().join(format!("hil-serial-drop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report);
    let o = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run", "--matrix", "classic", "--filter", "steps/", "--jobs", "1",
        ])
        .args(["--time-scale", "20", "--device"])
        .arg(format!("tcp:{proxy}"))
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run hil");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let _ = std::fs::remove_dir_all(&report);
    let last = out.lines().last().unwrap_or_default();
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        last.ends_with("passed, 0 failed") && !last.starts_with("0 "),
        "{last}\n{out}\n{err}"
    );
    assert!(err.contains("reconnected to TCP console"), "{out}\n{err}");
    assert!(
        out.contains("retry 1/"),
        "the in-flight case is retried:\n{out}\n{err}"
    );
}

#[test]
fn a_link_that_never_comes_back_is_named() {
    let (_sim, dev) = common::sim_process(20.0, &[]);
    let proxy = flaky_proxy(dev, 1, None);
    let o = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["run", "--matrix", "classic", "--case", "steps/ehlo-421"])
        .args(["--time-scale", "20", "--reconnect-wait", "0.5", "--device"])
        .arg(format!("tcp:{proxy}"))
        .output()
        .expect("run hil");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains(&format!(
            "the link to TCP console {proxy} did not come back within 0.5 s"
        )),
        "{all}"
    );
}

#[test]
fn serial_errors_name_the_port() {
    let e = Console::open(
        &Endpoint::parse("serial:/dev/does-not-exist").expect("endpoint"),
        common::sim_profile(),
    )
    .err()
    .expect("no such port");
    let m = e.to_string();
    assert!(matches!(e, DriverError::Link(_)), "{e:?}");
    assert!(
        m.contains("/dev/does-not-exist") && m.contains("no such device"),
        "{m}"
    );
}

#[test]
fn a_pty_opened_twice_is_busy_and_its_loss_is_a_link_error() {
    let (master, slave) = serialport::TTYPort::pair().expect("pty");
    let path = serialport::SerialPort::name(&slave).expect("pty name");
    drop(slave);
    let ep = Endpoint::parse(&format!("serial:{path},115200,8N1,none")).expect("endpoint");
    let mut first = Console::open(&ep, common::sim_profile()).expect("first open");
    // serialport opens exclusively (TIOCEXCL and an exclusive flock; the flock
    // holds even for root, which TIOCEXCL does not stop).
    let m = Console::open(&ep, common::sim_profile())
        .err()
        .expect("second open refused")
        .to_string();
    assert!(m.contains(&path) && m.contains("busy"), "{m}");
    // The device goes away (the pty's master closes): the next command is a link
    // error naming the port.
    drop(master);
    let e = first.op("get", &[("key", "smtp.port")], &[], &[]);
    let Err(DriverError::Link(m)) = e else {
        panic!("{e:?}");
    };
    assert!(m.contains(&path), "{m}");
}

#[test]
fn a_dropped_console_frees_its_port_and_connection() {
    // A serial port: reopened in the same process at once after the first console
    // is dropped (its reader thread held the port open and locked before).
    let (master, slave) = serialport::TTYPort::pair().expect("pty");
    let path = serialport::SerialPort::name(&slave).expect("pty name");
    drop(slave);
    let ep = Endpoint::parse(&format!("serial:{path},115200,8N1,none")).expect("endpoint");
    let first = Console::open(&ep, common::sim_profile()).expect("first open");
    drop(first);
    let second = Console::open(&ep, common::sim_profile());
    assert!(second.is_ok(), "{:?}", second.err());
    drop(second);
    drop(master);

    // A TCP console: the server sees the connection end when the console is dropped.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let c = Console::open(&Endpoint::Tcp { addr }, common::sim_profile()).expect("open");
    let (mut s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    drop(c);
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).expect("the console closed its end");
    assert_eq!(n, 0, "the connection ended");
}
