//! A minimal pcapng writer (and the reader its tests and `hil`'s own tests use): one
//! section, one interface (raw IP packets, `LINKTYPE_RAW`), a Decryption Secrets Block
//! holding the TLS key log (NSS format) so Wireshark and tshark decrypt the TLS
//! connections, then one Enhanced Packet Block per packet. Little-endian throughout.
//!
//! Block layouts from the pcapng specification (draft-ietf-opsawg-pcapng): every
//! block is `type u32, total length u32, body, total length u32`, the body padded to
//! 4 bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Section Header Block.
pub const SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block.
pub const IDB: u32 = 0x0000_0001;
/// Enhanced Packet Block.
pub const EPB: u32 = 0x0000_0006;
/// Decryption Secrets Block.
pub const DSB: u32 = 0x0000_000A;
/// The DSB secrets type of a TLS key log (`TLSK`).
pub const SECRETS_TLS_KEYLOG: u32 = 0x544C_534B;
/// Raw IPv4 or IPv6 packets, no link-layer header.
pub const LINKTYPE_RAW: u16 = 101;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;

/// One captured packet: when (microseconds since the Unix epoch), the bytes kept and
/// the packet's length on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub micros: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

/// What a pcapng file holds: its comments, the interface, the key log and the packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct File {
    /// Comments of the section header (what was captured, truncation, drops).
    pub comments: Vec<String>,
    /// The interface's name (`lo`, `eth0`, `any`).
    pub interface: String,
    pub snaplen: u32,
    /// NSS key-log lines (`CLIENT_RANDOM …`, `SERVER_TRAFFIC_SECRET_0 …`), one a line.
    pub keylog: Vec<String>,
    pub packets: Vec<Packet>,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = value.len().min(u16::MAX as usize);
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(len as u16).to_le_bytes());
    body.extend_from_slice(&value[..len]);
    body.resize(body.len() + (pad4(len) - len), 0);
}

fn end_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&OPT_END.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    debug_assert_eq!(body.len() % 4, 0);
    let total = (body.len() + 12) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

impl File {
    /// The file's bytes: SHB, IDB, a DSB when there are keys, one EPB per packet.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Section header: magic, version 1.0, section length unknown (-1).
        let mut b = Vec::new();
        b.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        for c in &self.comments {
            option(&mut b, OPT_COMMENT, c.as_bytes());
        }
        option(
            &mut b,
            SHB_USERAPPL,
            concat!("hil ", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        end_options(&mut b);
        block(&mut out, SHB, &b);
        // Interface 0.
        let mut b = Vec::new();
        b.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&self.snaplen.to_le_bytes());
        option(&mut b, IF_NAME, self.interface.as_bytes());
        end_options(&mut b);
        block(&mut out, IDB, &b);
        // The keys before the packets they decrypt.
        if !self.keylog.is_empty() {
            let mut secrets = String::new();
            for l in &self.keylog {
                secrets.push_str(l);
                secrets.push('\n');
            }
            let mut b = Vec::new();
            b.extend_from_slice(&SECRETS_TLS_KEYLOG.to_le_bytes());
            b.extend_from_slice(&(secrets.len() as u32).to_le_bytes());
            b.extend_from_slice(secrets.as_bytes());
            b.resize(pad4(b.len()), 0);
            block(&mut out, DSB, &b);
        }
        for p in &self.packets {
            let mut b = Vec::with_capacity(20 + pad4(p.data.len()));
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&((p.micros >> 32) as u32).to_le_bytes());
            b.extend_from_slice(&(p.micros as u32).to_le_bytes());
            b.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            b.extend_from_slice(&p.orig_len.to_le_bytes());
            b.extend_from_slice(&p.data);
            b.resize(pad4(b.len()), 0);
            block(&mut out, EPB, &b);
        }
        out
    }

    /// Writes the file at `path` (through a temporary file and a rename).
    pub fn write(&self, path: &Path) -> Result<(), WriteError> {
        let io = |source| WriteError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&self.to_bytes()).map_err(io)?;
        f.flush().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads what [`File::to_bytes`] writes (one section, little-endian); other block
    /// types are skipped. Errors name the byte offset and the problem.
    pub fn parse(bytes: &[u8]) -> Result<File, ParseError> {
        let mut f = File::default();
        let mut at = 0usize;
        let u32_at = |o: usize| -> Result<u32, ParseError> {
            bytes
                .get(o..o + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(ParseError::Short { offset: o })
        };
        let mut first = true;
        while at < bytes.len() {
            let kind = u32_at(at)?;
            let total = u32_at(at + 4)? as usize;
            if total < 12 || !total.is_multiple_of(4) || at + total > bytes.len() {
                return Err(ParseError::BadLength { offset: at, total });
            }
            if u32_at(at + total - 4)? as usize != total {
                return Err(ParseError::TrailerMismatch { offset: at });
            }
            let body = &bytes[at + 8..at + total - 4];
            if first && kind != SHB {
                return Err(ParseError::NoSectionHeader);
            }
            first = false;
            match kind {
                SHB => {
                    if body.len() < 16 || body[..4] != BYTE_ORDER_MAGIC.to_le_bytes() {
                        return Err(ParseError::BadMagic { offset: at });
                    }
                    for (code, v) in options(&body[16..], at)? {
                        if code == OPT_COMMENT {
                            f.comments.push(String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
                IDB => {
                    if body.len() < 8 {
                        return Err(ParseError::Short { offset: at });
                    }
                    let link = u16::from_le_bytes([body[0], body[1]]);
                    if link != LINKTYPE_RAW {
                        return Err(ParseError::LinkType { link });
                    }
                    f.snaplen = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                    for (code, v) in options(&body[8..], at)? {
                        if code == IF_NAME {
                            f.interface = String::from_utf8_lossy(v).into_owned();
                        }
                    }
                }
                DSB => {
                    if body.len() < 8 {
                        return Err(ParseError::Short { offset: at });
                    }
                    let stype = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                    let len = u32::from_le_bytes([body[4], body[5], body[6], body[7]]) as usize;
                    let data = body
                        .get(8..8 + len)
                        .ok_or(ParseError::Short { offset: at })?;
                    if stype == SECRETS_TLS_KEYLOG {
                        f.keylog.extend(
                            String::from_utf8_lossy(data)
                                .lines()
                                .filter(|l| !l.is_empty())
                                .map(str::to_string),
                        );
                    }
                }
                EPB => {
                    if body.len() < 20 {
                        return Err(ParseError::Short { offset: at });
                    }
                    let w = |o: usize| {
                        u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]])
                    };
                    let (hi, lo, caplen, orig_len) = (w(4), w(8), w(12) as usize, w(16));
                    let data = body
                        .get(20..20 + caplen)
                        .ok_or(ParseError::Short { offset: at })?;
                    f.packets.push(Packet {
                        micros: (u64::from(hi) << 32) | u64::from(lo),
                        data: data.to_vec(),
                        orig_len,
                    });
                }
                _ => {}
            }
            at += total;
        }
        if first {
            return Err(ParseError::NoSectionHeader);
        }
        Ok(f)
    }
}

/// The options of a block body: `(code, value)` up to the end-of-options.
fn options(mut b: &[u8], block_at: usize) -> Result<Vec<(u16, &[u8])>, ParseError> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let code = u16::from_le_bytes([b[0], b[1]]);
        let len = u16::from_le_bytes([b[2], b[3]]) as usize;
        if code == OPT_END {
            break;
        }
        let v = b
            .get(4..4 + len)
            .ok_or(ParseError::Short { offset: block_at })?;
        out.push((code, v));
        b = b.get(4 + pad4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// A pcapng file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write the capture: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Why bytes are not a pcapng file this module reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a pcapng file: no section header block first")]
    NoSectionHeader,
    #[error("byte {offset}: not a little-endian section header")]
    BadMagic { offset: usize },
    #[error("byte {offset}: a block of length {total}")]
    BadLength { offset: usize, total: usize },
    #[error("byte {offset}: the block's trailing length differs from its leading one")]
    TrailerMismatch { offset: usize },
    #[error("byte {offset}: the block is cut short")]
    Short { offset: usize },
    #[error("link type {link}: only raw IP (101) is read")]
    LinkType { link: u16 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> File {
        File {
            comments: vec!["case tls/x; 2 packets".into(), "ünïcode".into()],
            interface: "lo".into(),
            snaplen: 65535,
            keylog: vec![
                "CLIENT_RANDOM 00112233 44556677".into(),
                "SERVER_TRAFFIC_SECRET_0 aa bb".into(),
            ],
            packets: vec![
                Packet {
                    micros: 1_700_000_000_123_456,
                    data: vec![0x45, 0, 0, 20, 1],
                    orig_len: 5,
                },
                Packet {
                    micros: 1_700_000_000_200_000,
                    data: vec![0x60; 8],
                    orig_len: 1500,
                },
            ],
        }
    }

    #[test]
    fn blocks_lengths_and_the_secrets_block_read_back() {
        let f = sample();
        let bytes = f.to_bytes();
        assert_eq!(bytes.len() % 4, 0);
        // The blocks in order, each with equal leading and trailing lengths.
        let mut kinds = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let w = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
            let total = w(at + 4) as usize;
            assert_eq!(total % 4, 0);
            assert_eq!(w(at + total - 4) as usize, total, "block at {at}");
            kinds.push(w(at));
            if w(at) == DSB {
                assert_eq!(w(at + 8), 0x544c534b, "secrets type TLS key log");
                let len = w(at + 12) as usize;
                let text = std::str::from_utf8(&bytes[at + 16..at + 16 + len]).unwrap();
                assert_eq!(
                    text,
                    "CLIENT_RANDOM 00112233 44556677\nSERVER_TRAFFIC_SECRET_0 aa bb\n"
                );
            }
            at += total;
        }
        assert_eq!(kinds, vec![SHB, IDB, DSB, EPB, EPB]);
        assert_eq!(File::parse(&bytes).unwrap(), f);
    }

    #[test]
    fn written_and_read_from_disk_without_keys() {
        let mut f = sample();
        f.keylog.clear();
        let dir = std::env::temp_dir().join(format!("hil-pcapng-{}", std::process::id()));
        let p = dir.join("evidence").join("a.pcapng");
        f.write(&p).unwrap();
        let back = File::parse(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, f);
        // No keys, no Decryption Secrets Block: SHB, IDB, then the packets.
        let bytes = std::fs::read(&p).unwrap();
        let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let idb_len =
            u32::from_le_bytes(bytes[shb_len + 4..shb_len + 8].try_into().unwrap()) as usize;
        let third = u32::from_le_bytes(
            bytes[shb_len + idb_len..shb_len + idb_len + 4]
                .try_into()
                .unwrap(),
        );
        assert_eq!(third, EPB);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(File::parse(b""), Err(ParseError::NoSectionHeader));
        let bytes = sample().to_bytes();
        for cut in [3, 11, 40, bytes.len() - 1] {
            assert!(File::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[4] = 13; // a length that is not a multiple of 4
        assert!(matches!(
            File::parse(&bad),
            Err(ParseError::BadLength { offset: 0, .. })
        ));
    }
}
