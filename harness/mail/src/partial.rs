//! Reassembly of `message/partial` fragments (RFC 2046 §5.2.2): the device's `split`
//! load-reduction mode sends one message as N fragments, each its own SMTP
//! transaction. The fake server collects them by `id` and, when all N are in,
//! rebuilds the original message by the header rules of §5.2.2.2.

use std::collections::BTreeMap;

use serde::Serialize;

/// One header field as it stands in the message, folding included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    /// Lower-case name.
    name: String,
    /// The raw bytes of the field, continuation lines and final CRLF included.
    raw: Vec<u8>,
}

/// Splits a message into its header fields and its body (after the blank line).
/// A message without a blank line is all header.
fn split(msg: &[u8]) -> (Vec<Field>, &[u8]) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let end = msg[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(msg.len(), |i| pos + i + 1);
        let line = &msg[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return (fields, &msg[end..]);
        }
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.raw.extend_from_slice(line),
            _ => {
                let name = line
                    .iter()
                    .position(|b| *b == b':')
                    .map(|i| {
                        String::from_utf8_lossy(&line[..i])
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default();
                fields.push(Field {
                    name,
                    raw: line.to_vec(),
                });
            }
        }
        pos = end;
    }
    (fields, &[])
}

/// The unfolded value of a field.
fn value(f: &Field) -> String {
    let text = String::from_utf8_lossy(&f.raw);
    let v = text.split_once(':').map_or("", |(_, v)| v);
    v.split(['\r', '\n'])
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

/// The `message/partial` parameters of a message, if it is a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInfo {
    pub id: String,
    pub number: u32,
    pub total: Option<u32>,
}

/// Reads `Content-Type: message/partial; id=…; number=…; total=…`.
pub fn fragment_info(msg: &[u8]) -> Option<FragmentInfo> {
    let (fields, _) = split(msg);
    let ct = fields.iter().find(|f| f.name == "content-type")?;
    let v = value(ct);
    let mut parts = v.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("message/partial") {
        return None;
    }
    let mut params = BTreeMap::new();
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            params.insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }
    Some(FragmentInfo {
        id: params.get("id")?.clone(),
        number: params.get("number")?.parse().ok().filter(|n| *n >= 1)?,
        total: params.get("total").and_then(|t| t.parse().ok()),
    })
}

/// The header fields of the enclosed message that replace the outer ones (§5.2.2.2).
fn from_enclosed(name: &str) -> bool {
    name.starts_with("content-")
        || matches!(
            name,
            "subject" | "message-id" | "encrypted" | "mime-version"
        )
}

/// Rebuilds the original message from fragments given in order 1..=N.
pub fn reassemble(fragments: &[&[u8]]) -> Option<Vec<u8>> {
    let (first_outer, _) = split(fragments.first()?);
    let mut joined = Vec::new();
    for f in fragments {
        let (_, body) = split(f);
        joined.extend_from_slice(body);
    }
    let (enclosed, enclosed_body) = split(&joined);
    let mut out = Vec::with_capacity(joined.len() + 1024);
    for f in first_outer.iter().filter(|f| !from_enclosed(&f.name)) {
        out.extend_from_slice(&f.raw);
    }
    for f in enclosed.iter().filter(|f| from_enclosed(&f.name)) {
        out.extend_from_slice(&f.raw);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(enclosed_body);
    Some(out)
}

/// A message rebuilt from its fragments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reassembled {
    pub id: String,
    pub total: u32,
    /// The SMTP connection each fragment came on, in fragment order.
    pub connections: Vec<u64>,
    #[serde(skip)]
    pub data: Vec<u8>,
    pub size: usize,
}

/// Collects fragments by id; answers a message when its last fragment arrives.
///
/// By default each fragment is kept whole and the message rebuilt byte for byte. With
/// [`Assembler::sizes_only`] (a server that streams its record out and never keeps
/// message bytes) a fragment is kept only up to [`SUMMARY_PREFIX`] bytes of its body
/// and its length: enough for the rebuilt message's id, fragments and exact size (as
/// long as the enclosed header fits in the first fragment's prefix), at a small cost
/// per pending fragment whatever its size.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: BTreeMap<String, BTreeMap<u32, (u64, Kept)>>,
    sizes_only: bool,
    totals: BTreeMap<String, u32>,
    /// Set ids, oldest first.
    order: Vec<String>,
    bytes: usize,
    /// What was dropped to stay under the caps, not yet taken.
    dropped: Vec<String>,
}

/// A pending fragment: its bytes (whole, or its header and the start of its body) and
/// the length of its body.
#[derive(Debug)]
struct Kept {
    bytes: Vec<u8>,
    body_len: usize,
}

/// Body bytes kept of each pending fragment in [`Assembler::sizes_only`] mode.
pub const SUMMARY_PREFIX: usize = 64 * 1024;

/// The length of a message's header, blank line included (all of it if it has none).
fn header_len(msg: &[u8]) -> usize {
    let (_, body) = split(msg);
    msg.len() - body.len()
}

/// Most fragment sets kept waiting for their missing parts, most fragments in one
/// set, and most bytes kept waiting in all: past them the oldest sets are dropped.
const MAX_PENDING: usize = 1000;
const MAX_FRAGMENTS: u32 = 10_000;
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

impl Assembler {
    /// From now on keep only what the rebuilt message's size needs (see the type).
    pub fn sizes_only(&mut self) {
        self.sizes_only = true;
    }

    /// Bytes held by the pending fragments.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Notes of the incomplete sets dropped to stay under the caps since the last
    /// call.
    pub fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }

    fn forget(&mut self, id: &str) {
        if let Some(set) = self.pending.remove(id) {
            let bytes: usize = set.values().map(|(_, d)| d.bytes.len()).sum();
            self.bytes = self.bytes.saturating_sub(bytes);
            let total = self
                .totals
                .get(id)
                .map_or_else(|| "?".to_string(), |t| t.to_string());
            self.dropped.push(format!(
                "message/partial {id}: {} of {total} fragments ({} bytes) dropped unassembled: \
                 more than {MAX_PENDING} sets or {} MiB pending",
                set.len(),
                crate::transcript::thousands(bytes as u64),
                MAX_PENDING_BYTES / (1024 * 1024)
            ));
        }
        self.totals.remove(id);
        self.order.retain(|x| x != id);
    }

    /// Adds a received message; not a fragment → `None`.
    pub fn add(&mut self, connection: u64, data: &[u8]) -> Option<Reassembled> {
        let info = fragment_info(data)?;
        if info.number > MAX_FRAGMENTS || info.total.is_some_and(|t| t > MAX_FRAGMENTS) {
            return None;
        }
        if !self.pending.contains_key(&info.id) {
            self.order.push(info.id.clone());
        }
        while (self.pending.len() >= MAX_PENDING || self.bytes + data.len() > MAX_PENDING_BYTES)
            && !self.order.is_empty()
        {
            let oldest = self.order.remove(0);
            if oldest == info.id {
                self.order.push(oldest);
                break;
            }
            self.forget(&oldest);
        }
        let head = header_len(data);
        let keep = if self.sizes_only {
            data.len().min(head + SUMMARY_PREFIX)
        } else {
            data.len()
        };
        let kept = Kept {
            bytes: data[..keep].to_vec(),
            body_len: data.len() - head,
        };
        self.bytes += kept.bytes.len();
        if let Some(t) = info.total {
            self.totals.insert(info.id.clone(), t);
        }
        let set = self.pending.entry(info.id.clone()).or_default();
        if let Some((_, old)) = set.insert(info.number, (connection, kept)) {
            self.bytes = self.bytes.saturating_sub(old.bytes.len());
        }
        let total = *self.totals.get(&info.id)?;
        if set.len() as u32 != total || !(1..=total).all(|n| set.contains_key(&n)) {
            return None;
        }
        let set = self.pending.remove(&info.id)?;
        self.totals.remove(&info.id);
        self.order.retain(|x| x != &info.id);
        self.bytes = self
            .bytes
            .saturating_sub(set.values().map(|(_, d)| d.bytes.len()).sum());
        let parts: Vec<&[u8]> = set.values().map(|(_, d)| d.bytes.as_slice()).collect();
        let data = reassemble(&parts)?;
        let size = if self.sizes_only {
            // The rebuilt message from the prefixes, plus the body bytes not kept.
            let kept_body: usize = parts.iter().map(|p| p.len() - header_len(p)).sum();
            let all_body: usize = set.values().map(|(_, d)| d.body_len).sum();
            data.len() + (all_body - kept_body)
        } else {
            data.len()
        };
        Some(Reassembled {
            id: info.id,
            total,
            connections: set.values().map(|(c, _)| *c).collect(),
            size,
            data: if self.sizes_only { Vec::new() } else { data },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2046 §5.2.2.1's example, with CRLF line ends.
    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn the_rfc_2046_example_reassembles() {
        let first = crlf(
            "X-Weird-Header-1: Foo\nFrom: Bill@host.com\nTo: joe@otherhost.org\nDate: Fri, 26 Mar 1993 12:59:38 -0500 (EST)\nSubject: Audio mail (part 1 of 2)\nMessage-ID: <id1@host.com>\nMIME-Version: 1.0\nContent-type: message/partial; id=\"ABC@host.com\";\n      number=1; total=2\n\nX-Weird-Header-1: Bar\nX-Weird-Header-2: Hello\nMessage-ID: <anotherid@foo.com>\nSubject: Audio mail\nMIME-Version: 1.0\nContent-type: audio/basic\nContent-transfer-encoding: base64\n\n... first half of encoded audio data goes here ...\n",
        );
        let second = crlf(
            "From: Bill@host.com\nTo: joe@otherhost.org\nDate: Fri, 26 Mar 1993 12:59:46 -0500 (EST)\nSubject: Audio mail (part 2 of 2)\nMIME-Version: 1.0\nMessage-ID: <id2@host.com>\nContent-type: message/partial;\n      id=\"ABC@host.com\"; number=2; total=2\n\n... second half of encoded audio data goes here ...\n",
        );
        let want = crlf(
            "X-Weird-Header-1: Foo\nFrom: Bill@host.com\nTo: joe@otherhost.org\nDate: Fri, 26 Mar 1993 12:59:38 -0500 (EST)\nMessage-ID: <anotherid@foo.com>\nSubject: Audio mail\nMIME-Version: 1.0\nContent-type: audio/basic\nContent-transfer-encoding: base64\n\n... first half of encoded audio data goes here ...\n... second half of encoded audio data goes here ...\n",
        );
        assert_eq!(
            fragment_info(&second),
            Some(FragmentInfo {
                id: "ABC@host.com".into(),
                number: 2,
                total: Some(2)
            })
        );
        let mut a = Assembler::default();
        // Out of order, on different connections.
        assert!(a.add(7, &second).is_none());
        let r = a.add(8, &first).expect("complete");
        assert_eq!(
            String::from_utf8_lossy(&r.data),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(r.connections, vec![8, 7]);
        assert_eq!(r.total, 2);
    }

    #[test]
    fn sizes_only_keeps_a_prefix_and_gives_the_exact_size() {
        let body = "y".repeat(998) + "\r\n";
        let frag = |n: u32, inner: &str| {
            let mut f = format!(
                "Subject: big (part {n})\r\nContent-Type: message/partial; id=\"big\"; number={n}; total=3\r\n\r\n{inner}"
            );
            f.push_str(&body.repeat(300));
            f.into_bytes()
        };
        let frags = [
            frag(1, "Subject: big\r\nContent-Type: text/plain\r\n\r\n"),
            frag(2, ""),
            frag(3, ""),
        ];
        let mut whole = Assembler::default();
        let mut small = Assembler::default();
        small.sizes_only();
        let (mut a, mut b) = (None, None);
        for (i, f) in frags.iter().enumerate() {
            a = whole.add(i as u64, f);
            b = small.add(i as u64, f);
            if i < 2 {
                assert!(small.pending_bytes() <= (i + 1) * (SUMMARY_PREFIX + 200));
                assert!(whole.pending_bytes() > (i + 1) * 300_000);
            }
        }
        let (a, b) = (a.expect("whole"), b.expect("sizes only"));
        assert_eq!(b.size, a.size);
        assert_eq!(a.size, a.data.len());
        assert!(b.data.is_empty());
        assert_eq!(b.connections, a.connections);
        assert_eq!(small.pending_bytes(), 0);
    }

    #[test]
    fn past_the_cap_the_oldest_set_is_dropped_and_named() {
        let mut a = Assembler::default();
        for i in 0..=MAX_PENDING {
            let f = format!("Content-Type: message/partial; id=s{i}; number=1; total=2\r\n\r\nx");
            assert!(a.add(1, f.as_bytes()).is_none());
        }
        let dropped = a.take_dropped();
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert!(dropped[0].starts_with("message/partial s0: 1 of 2 fragments"));
        assert!(a.take_dropped().is_empty());
    }

    #[test]
    fn not_fragments_and_broken_fragments_are_ignored() {
        let mut a = Assembler::default();
        assert!(a.add(1, b"Subject: x\r\n\r\nhello\r\n").is_none());
        assert!(fragment_info(b"Content-Type: message/partial; number=1\r\n\r\n").is_none());
        assert!(fragment_info(b"Content-Type: message/partial; id=x; number=0\r\n\r\n").is_none());
        assert!(a.add(1, b"\xff\xfe").is_none());
        // Total unknown until the last fragment says it.
        assert!(a
            .add(
                1,
                b"Content-Type: message/partial; id=q; number=1\r\n\r\nSubject: s\r\n\r\na"
            )
            .is_none());
        let r = a.add(
            2,
            b"Content-Type: message/partial; id=q; number=2; total=2\r\n\r\nb\r\n",
        );
        assert_eq!(
            r.map(|r| r.data),
            Some(b"Subject: s\r\n\r\nab\r\n".to_vec())
        );
    }
}
