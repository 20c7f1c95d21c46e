//! `hil run --capture`: the packets of each case's connections, captured on the
//! interface the fake servers listen on with a Linux `AF_PACKET` socket (cooked
//! `SOCK_DGRAM`: raw IP packets, whatever the link), filtered in the kernel by a
//! classic BPF program to TCP segments from or to the runner's own server ports, and
//! checked again here. A reader thread keeps them, up to [`CASE_CAP`] bytes a case;
//! the runner takes them at the end of each case, and `pool` writes the pcapng of a
//! failed or crashed case (`evidence/…`), with the case's TLS key log in a Decryption
//! Secrets Block.
//!
//! A capture holds the raw conversation, credentials included (test credentials):
//! it is written only when asked for.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hil_mail::netaddr::{self, BindAddr};

use crate::pcapng::Packet;

/// The most packet bytes a case keeps; later packets are counted, not kept.
pub const CASE_CAP: usize = 16 * 1024 * 1024;
/// The most bytes kept of one packet (loopback segments can reach 64 KiB and more).
pub const SNAPLEN: u32 = 262_144;

/// The interface a capture listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`lo`, `eth0`), or `any` for every interface.
    pub name: String,
    /// Its index (0: every interface).
    pub index: u32,
    /// The loopback interface's index when this is another one: a device on this
    /// host (the embedded simulator) reaches the servers' address over loopback,
    /// whatever interface holds it, so its packets are kept too.
    pub loopback: Option<u32>,
}

impl Interface {
    /// The interfaces read, in words (`eth0 and lo`).
    pub fn describe(&self) -> String {
        match self.loopback {
            Some(_) => format!("{} and lo", self.name),
            None => self.name.clone(),
        }
    }

    /// The index the socket binds to: the interface's own, or every interface (0)
    /// when loopback is read too (the reader keeps the two).
    fn bind_index(&self) -> u32 {
        if self.loopback.is_some() {
            0
        } else {
            self.index
        }
    }

    /// Whether a packet that arrived on interface `index` is kept.
    fn keeps(&self, index: u32) -> bool {
        self.index == 0 || index == self.index || Some(index) == self.loopback
    }
}

/// Why a capture cannot start; each names the interface (or the address).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("--capture: no network interface holds the --bind address {0}")]
    NoInterface(String),
    #[error("--capture: cannot capture on interface {interface}: a raw packet socket needs root or the CAP_NET_RAW capability ({source})")]
    Privilege {
        interface: String,
        source: std::io::Error,
    },
    #[error("--capture: cannot capture on interface {interface}: {what}: {source}")]
    Socket {
        interface: String,
        what: &'static str,
        source: std::io::Error,
    },
}

/// The interface the fake servers bound to `bind` listen on: the zone's of a
/// link-local address, the loopback interface for a loopback address, the one holding
/// the address, or every interface for the any-address.
pub fn interface_for(bind: &BindAddr) -> Result<Interface, CaptureError> {
    if bind.is_unspecified() {
        return Ok(Interface {
            name: "any".into(),
            index: 0,
            loopback: None,
        });
    }
    let addrs = netaddr::local_addresses();
    let lo_name = addrs
        .iter()
        .find(|a| a.ip.is_loopback())
        .map(|a| a.interface.clone())
        .unwrap_or_else(|| "lo".into());
    let lo = netaddr::interface_index(&lo_name);
    let with_lo = |name: String, index: u32| Interface {
        loopback: lo.filter(|l| *l != index),
        name,
        index,
    };
    let ip = bind.ip();
    let name = if let Some(zone) = bind.zone() {
        match zone.parse::<u32>() {
            Ok(index) => {
                let name = name_of_index(index).unwrap_or_else(|| zone.to_string());
                return Ok(with_lo(name, index));
            }
            Err(_) => Some(zone.to_string()),
        }
    } else if ip.is_loopback() {
        Some(lo_name.clone())
    } else {
        addrs
            .iter()
            .find(|a| a.ip == ip)
            .map(|a| a.interface.clone())
    };
    let name = name.ok_or_else(|| CaptureError::NoInterface(bind.to_string()))?;
    let index = netaddr::interface_index(&name)
        .ok_or_else(|| CaptureError::NoInterface(bind.to_string()))?;
    Ok(with_lo(name, index))
}

fn name_of_index(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname requires; the result is
    // read only when it is not null, as a NUL-terminated string inside buf.
    unsafe {
        let p = libc::if_indextoname(index, buf.as_mut_ptr());
        if p.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

// ---------------------------------------------------------------------------------
// the filter

/// The TCP ports of a raw IPv4 or IPv6 packet (no IPv6 extension headers; not a
/// later IPv4 fragment), as the BPF program reads them.
pub fn tcp_ports(p: &[u8]) -> Option<(u16, u16)> {
    let port = |o: usize| p.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if *p.get(9)? != 6 || port(6)? & 0x1fff != 0 {
                return None;
            }
            Some((port(ihl)?, port(ihl + 2)?))
        }
        6 => {
            if *p.get(6)? != 6 {
                return None;
            }
            Some((port(40)?, port(42)?))
        }
        _ => None,
    }
}

/// Whether a raw IP packet is a TCP segment from or to one of `ports`.
pub fn wanted(p: &[u8], ports: &[u16]) -> bool {
    tcp_ports(p).is_some_and(|(s, d)| ports.contains(&s) || ports.contains(&d))
}

/// A classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h).
const LD_B_ABS: u16 = 0x30;
const LD_H_ABS: u16 = 0x28;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_RSH_K: u16 = 0x74;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// A jump target while the program is built.
#[derive(Clone, Copy)]
enum To {
    Next,
    Label(usize),
}

struct Asm {
    code: Vec<(u16, To, To, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, To::Next, To::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((code, jt, jf, k));
    }
    /// The instructions, or `None` when a jump is too far for 8 bits.
    fn finish(self) -> Option<Vec<Insn>> {
        let rel = |i: usize, to: To| -> Option<u8> {
            match to {
                To::Next => Some(0),
                To::Label(l) => {
                    let at = self.labels.get(l).copied().flatten()?;
                    u8::try_from(at.checked_sub(i + 1)?).ok()
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(i, &(code, jt, jf, k))| {
                Some(Insn {
                    code,
                    jt: rel(i, jt)?,
                    jf: rel(i, jf)?,
                    k,
                })
            })
            .collect()
    }
}

/// The BPF program keeping TCP segments from or to `ports` (IPv4 without later
/// fragments, IPv6 without extension headers), on raw IP packets. With too many ports
/// for 8-bit jumps, a program keeping every TCP segment (the reader checks the ports).
pub fn filter(ports: &[u16]) -> Vec<Insn> {
    program(ports).unwrap_or_else(|| program(&[]).unwrap_or_default())
}

fn program(ports: &[u16]) -> Option<Vec<Insn>> {
    let mut a = Asm {
        code: Vec::new(),
        labels: Vec::new(),
    };
    let (v6, accept4, reject4, accept6, reject6) =
        (a.label(), a.label(), a.label(), a.label(), a.label());
    // Each block ends in its own returns, so no jump spans both.
    let ports_then_returns = |a: &mut Asm, offsets: [(u16, u32); 2], accept, reject| {
        if !ports.is_empty() {
            for (code, off) in offsets {
                a.op(code, off);
                for p in ports {
                    a.jump(JEQ_K, u32::from(*p), To::Label(accept), To::Next);
                }
            }
            a.here(reject);
            a.op(RET_K, 0);
            a.here(accept);
            a.op(RET_K, SNAPLEN);
        } else {
            a.here(accept);
            a.op(RET_K, SNAPLEN);
            a.here(reject);
            a.op(RET_K, 0);
        }
    };
    a.op(LD_B_ABS, 0);
    a.op(ALU_RSH_K, 4);
    a.jump(JEQ_K, 6, To::Label(v6), To::Next);
    a.jump(JEQ_K, 4, To::Next, To::Label(reject4));
    // IPv4: TCP, not a later fragment, then either port after the header.
    a.op(LD_B_ABS, 9);
    a.jump(JEQ_K, 6, To::Next, To::Label(reject4));
    a.op(LD_H_ABS, 6);
    a.jump(JSET_K, 0x1fff, To::Label(reject4), To::Next);
    a.op(LDX_B_MSH, 0);
    ports_then_returns(&mut a, [(LD_H_IND, 0), (LD_H_IND, 2)], accept4, reject4);
    // IPv6: TCP as the next header, then either port.
    a.here(v6);
    a.op(LD_B_ABS, 6);
    a.jump(JEQ_K, 6, To::Next, To::Label(reject6));
    ports_then_returns(&mut a, [(LD_H_ABS, 40), (LD_H_ABS, 42)], accept6, reject6);
    a.finish()
}

/// Runs a classic BPF program as the kernel does (the subset [`filter`] emits):
/// the packet's kept length, 0 to drop it. For tests.
pub fn run_filter(prog: &[Insn], p: &[u8]) -> u32 {
    let (mut acc, mut x, mut pc) = (0u32, 0u32, 0usize);
    let byte = |o: usize| p.get(o).map(|b| u32::from(*b));
    let half = |o: usize| {
        p.get(o..o + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k as usize;
        match i.code {
            LD_B_ABS => match byte(k) {
                Some(v) => acc = v,
                None => return 0,
            },
            LD_H_ABS => match half(k) {
                Some(v) => acc = v,
                None => return 0,
            },
            LD_H_IND => match half(x as usize + k) {
                Some(v) => acc = v,
                None => return 0,
            },
            LDX_B_MSH => match byte(k) {
                Some(v) => x = (v & 0xf) * 4,
                None => return 0,
            },
            ALU_RSH_K => acc >>= i.k,
            JEQ_K | JSET_K => {
                let hit = if i.code == JEQ_K {
                    acc == i.k
                } else {
                    acc & i.k != 0
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            RET_K => return i.k,
            _ => return 0,
        }
    }
    0
}

// ---------------------------------------------------------------------------------
// the socket and its reader

/// What a case's capture holds when taken.
#[derive(Debug, Clone, Default)]
pub struct Packets {
    pub packets: Vec<Packet>,
    /// Bytes of the packets kept.
    pub bytes: usize,
    /// Packets seen after [`CASE_CAP`] was reached: counted, not kept.
    pub over_cap: u64,
    /// Packets the kernel dropped for this socket since the last take (its buffer full).
    pub kernel_drops: u64,
}

#[derive(Default)]
struct State {
    packets: Packets,
    /// A drain was asked for (a generation number) and the last one done.
    asked: u64,
    drained: u64,
    error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    stop: AtomicBool,
    drops: AtomicU64,
}

/// A running capture on one interface for one runner's ports.
pub struct Capture {
    interface: Interface,
    ports: Vec<u16>,
    shared: Arc<Shared>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Capture({}, ports {:?})",
            self.interface.name, self.ports
        )
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    // SAFETY: value points at a live T of the given size for the call's duration.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Opens a packet socket on `interface` with the filter for `ports` (none yet: a
/// socket that receives nothing until bound), without reading: whether capturing
/// is allowed here. `hil run --capture` calls it before anything starts.
pub fn check(interface: &Interface) -> Result<(), CaptureError> {
    open_socket(interface, &[]).map(drop)
}

fn open_socket(interface: &Interface, ports: &[u16]) -> Result<OwnedFd, CaptureError> {
    let fail = |what: &'static str| {
        let source = std::io::Error::last_os_error();
        CaptureError::Socket {
            interface: interface.name.clone(),
            what,
            source,
        }
    };
    // Protocol 0: nothing is received until the bind below, after the filter is on.
    // SAFETY: a plain socket(2) call; the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let source = std::io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => CaptureError::Privilege {
                interface: interface.name.clone(),
                source,
            },
            _ => CaptureError::Socket {
                interface: interface.name.clone(),
                what: "cannot open a packet socket",
                source,
            },
        });
    }
    // SAFETY: raw is a descriptor just returned by socket(2), owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let prog = filter(ports);
    let mut insns: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
        .map_err(|_| fail("cannot attach the packet filter"))?;
    // A large buffer so that a burst is not dropped before the reader gets to it.
    let size: libc::c_int = 8 * 1024 * 1024;
    if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
    }
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = interface.bind_index() as i32;
    // SAFETY: sll is a live sockaddr_ll and the length given is its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(fail("cannot bind the packet socket to it"));
    }
    Ok(fd)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `SIOCGSTAMP` (linux/sockios.h; not in the libc crate): the kernel's arrival time of
/// the last packet read from the socket.
const SIOCGSTAMP: u32 = 0x8906;

/// When the kernel saw the packet just read (microseconds since the epoch), else now.
fn packet_micros(fd: &OwnedFd) -> u64 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: SIOCGSTAMP writes one timeval into tv, which is live.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCGSTAMP as _, &mut tv) };
    if r == 0 && tv.tv_sec > 0 {
        tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64
    } else {
        now_micros()
    }
}

/// The kernel's drop count for the socket since it was last asked (PACKET_STATISTICS
/// resets on read).
fn kernel_drops(fd: &OwnedFd) -> u64 {
    // SAFETY: tpacket_stats is plain data; getsockopt writes at most len bytes.
    unsafe {
        let mut st: libc::tpacket_stats = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut libc::tpacket_stats as *mut libc::c_void,
            &mut len,
        );
        if r == 0 {
            u64::from(st.tp_drops)
        } else {
            0
        }
    }
}

fn read_loop(fd: OwnedFd, shared: Arc<Shared>, ports: Vec<u16>, iface: Interface) {
    let mut buf = vec![0u8; SNAPLEN as usize];
    while !shared.stop.load(Ordering::SeqCst) {
        let asked = shared
            .state
            .lock()
            .map(|s| s.asked)
            .unwrap_or_else(|p| p.into_inner().asked);
        // Everything queued now.
        loop {
            // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and from are live and their lengths are given; MSG_TRUNC
            // makes the answer the packet's full length, of which at most buf.len()
            // bytes are written.
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock => break,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => {
                        if let Ok(mut s) = shared.state.lock() {
                            s.error = Some(e.to_string());
                        }
                        std::thread::sleep(Duration::from_millis(50));
                        break;
                    }
                }
            }
            let orig = n as usize;
            let kept = &buf[..orig.min(buf.len())];
            // On loopback each packet shows twice, leaving and arriving: keep one.
            if from.sll_pkttype == libc::PACKET_OUTGOING && from.sll_hatype == libc::ARPHRD_LOOPBACK
            {
                continue;
            }
            if !iface.keeps(from.sll_ifindex as u32) || !wanted(kept, &ports) {
                continue;
            }
            let micros = packet_micros(&fd);
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let p = &mut s.packets;
            if p.bytes + kept.len() > CASE_CAP {
                p.over_cap += 1;
            } else {
                p.bytes += kept.len();
                p.packets.push(Packet {
                    micros,
                    data: kept.to_vec(),
                    orig_len: orig as u32,
                });
            }
        }
        shared.drops.fetch_add(kernel_drops(&fd), Ordering::SeqCst);
        {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            s.drained = s.drained.max(asked);
            shared.cv.notify_all();
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 20) };
    }
}

impl Capture {
    /// Starts capturing on `interface` the TCP segments from or to `ports`.
    pub fn start(interface: &Interface, ports: &[u16]) -> Result<Capture, CaptureError> {
        let mut ports = ports.to_vec();
        ports.sort_unstable();
        ports.dedup();
        let fd = open_socket(interface, &ports)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            drops: AtomicU64::new(0),
        });
        let reader = {
            let (shared, ports, iface) = (Arc::clone(&shared), ports.clone(), interface.clone());
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || read_loop(fd, shared, ports, iface))
                .map_err(|source| CaptureError::Socket {
                    interface: interface.name.clone(),
                    what: "cannot start the reader thread",
                    source,
                })?
        };
        Ok(Capture {
            interface: interface.clone(),
            ports,
            shared,
            reader: Some(reader),
        })
    }

    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Waits (up to a second) until the reader has read everything queued before
    /// this call.
    fn sync(&self) {
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        s.asked += 1;
        let want = s.asked;
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while s.drained < want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            s = match self.shared.cv.wait_timeout(s, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Forgets what was captured so far: a case begins.
    pub fn begin(&self) {
        self.sync();
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        s.packets = Packets::default();
        self.shared.drops.store(0, Ordering::SeqCst);
    }

    /// What was captured since [`Capture::begin`]: a case ended.
    pub fn take(&self) -> Packets {
        self.sync();
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut p = std::mem::take(&mut s.packets);
        p.kernel_drops = self.shared.drops.swap(0, Ordering::SeqCst);
        p
    }

    /// A read error of the reader, if any.
    pub fn error(&self) -> Option<String> {
        self.shared.state.lock().ok().and_then(|s| s.error.clone())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// A case's evidence as the runner hands it to the pool: the packets, the TLS key
/// log of its connections, and where they were captured.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub interface: String,
    /// The ports captured and what listens on each (`SMTP starttls valid`, …).
    pub ports: Vec<(u16, String)>,
    pub packets: Packets,
    /// NSS key-log lines of the case's TLS connections.
    pub keylog: Vec<String>,
}

impl Evidence {
    /// The pcapng file of the case `id`.
    pub fn to_pcapng(&self, id: &str) -> crate::pcapng::File {
        let mut comments = vec![
            format!("hil run --capture: case {id}"),
            format!(
                "captured on {} (TCP from or to the {} ports of the worker's fake servers); \
                 raw and unredacted: test credentials only",
                self.interface,
                self.ports.len()
            ),
        ];
        // The server ports the case's connections used, and how to decode each: they
        // are ephemeral, so Wireshark guesses no protocol from them.
        let mut used: Vec<u16> = self
            .packets
            .packets
            .iter()
            .filter_map(|p| tcp_ports(&p.data))
            .flat_map(|(s, d)| [s, d])
            .filter(|p| self.ports.iter().any(|(q, _)| q == p))
            .collect();
        used.sort_unstable();
        used.dedup();
        for port in used {
            let what = self
                .ports
                .iter()
                .find(|(q, _)| *q == port)
                .map(|(_, w)| w.as_str())
                .unwrap_or("?");
            let proto = if what.starts_with("POP3") {
                "pop"
            } else {
                "smtp"
            };
            let decode = if what.ends_with(" closed") {
                String::new()
            } else if what.contains(" tls") {
                format!("; decode: tshark -d tcp.port=={port},tls -d tls.port=={port},{proto}")
            } else {
                format!("; decode: tshark -d tcp.port=={port},{proto}")
            };
            comments.push(format!("port {port}: {what}{decode}"));
        }
        if self.packets.over_cap > 0 {
            comments.push(format!(
                "truncated: {} later packets not kept (a case keeps at most {} MiB)",
                self.packets.over_cap,
                CASE_CAP / (1024 * 1024)
            ));
        }
        if self.packets.kernel_drops > 0 {
            comments.push(format!(
                "the kernel dropped {} packets (the capture socket's buffer was full)",
                self.packets.kernel_drops
            ));
        }
        crate::pcapng::File {
            comments,
            interface: self.interface.clone(),
            snaplen: SNAPLEN,
            keylog: self.keylog.clone(),
            packets: self.packets.packets.clone(),
        }
    }
}

/// A file name for a case id: letters, digits, `-`, `.` and `_` kept, anything else
/// `_`, cut to 150 bytes, with a short hash of the id so two ids never share a name.
pub fn safe_name(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    while s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    // FNV-1a: stable across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{s}-{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: u16, dst: u16, proto: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = proto;
        p[20..22].copy_from_slice(&src.to_be_bytes());
        p[22..24].copy_from_slice(&dst.to_be_bytes());
        p
    }

    fn v6(src: u16, dst: u16, next: u8) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[6] = next;
        p[40..42].copy_from_slice(&src.to_be_bytes());
        p[42..44].copy_from_slice(&dst.to_be_bytes());
        p
    }

    #[test]
    fn the_bpf_program_keeps_the_ports_and_agrees_with_the_reader() {
        let ports = [2525, 40001, 40002];
        let prog = filter(&ports);
        assert!(prog.len() > 10);
        let cases = [
            (v4(2525, 50000, 6), true),
            (v4(50000, 40002, 6), true),
            (v4(50000, 40003, 6), false),
            (v4(2525, 50000, 17), false),
            (v6(40001, 1, 6), true),
            (v6(1, 2525, 6), true),
            (v6(1, 2, 6), false),
            (v6(1, 2525, 17), false),
            (vec![0x45, 0, 0], false),
            (vec![], false),
        ];
        for (p, keep) in &cases {
            assert_eq!(run_filter(&prog, p) > 0, *keep, "{p:?}");
            assert_eq!(wanted(p, &ports), *keep, "{p:?}");
        }
        // A later fragment has no TCP header.
        let mut frag = v4(2525, 1, 6);
        frag[7] = 1;
        assert_eq!(run_filter(&prog, &frag), 0);
        assert!(!wanted(&frag, &ports));
        // IPv4 options move the ports.
        let mut opt = vec![0u8; 48];
        opt[0] = 0x46;
        opt[9] = 6;
        opt[26..28].copy_from_slice(&40001u16.to_be_bytes());
        assert!(run_filter(&prog, &opt) > 0);
        assert!(wanted(&opt, &ports));
    }

    #[test]
    fn too_many_ports_fall_back_to_every_tcp_segment() {
        let ports: Vec<u16> = (1000..1400).collect();
        let prog = filter(&ports);
        assert!(run_filter(&prog, &v4(1, 2, 6)) > 0);
        assert_eq!(run_filter(&prog, &v4(1, 2, 17)), 0);
        assert!(run_filter(&prog, &v6(1, 2, 6)) > 0);
        let some: Vec<u16> = (1000..1060).collect();
        let prog = filter(&some);
        assert!(run_filter(&prog, &v4(1059, 2, 6)) > 0);
        assert_eq!(run_filter(&prog, &v4(1, 2, 6)), 0);
    }

    #[test]
    fn names_are_safe_and_distinct() {
        let a = safe_name("tls/smtp.tls=starttls,cert=valid");
        assert!(a.starts_with("tls_smtp.tls_starttls_cert_valid-"), "{a}");
        assert_ne!(safe_name("a/b"), safe_name("a_b"));
        assert!(!safe_name("../x").contains('/'));
        assert!(!safe_name("..").starts_with('.'));
    }

    #[test]
    fn loopback_binds_capture_on_the_loopback_interface() {
        let i = interface_for(&BindAddr::loopback()).unwrap();
        assert_eq!(i.name, "lo");
        assert!(i.index > 0);
        assert_eq!(i.loopback, None, "loopback is read once");
        assert!(i.keeps(i.index) && !i.keeps(i.index + 1000));
        let other = Interface {
            name: "eth9".into(),
            index: 9,
            loopback: Some(1),
        };
        assert_eq!(other.describe(), "eth9 and lo");
        assert!(other.keeps(9) && other.keeps(1) && !other.keeps(2));
        let any: BindAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(interface_for(&any).unwrap().index, 0);
        let none: BindAddr = "192.0.2.77".parse().unwrap();
        assert!(interface_for(&none)
            .unwrap_err()
            .to_string()
            .contains("192.0.2.77"));
    }
}
