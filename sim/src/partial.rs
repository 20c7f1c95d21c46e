//! The `split` load-reduction mode of SPEC §4: one encoded message cut into N
//! `message/partial` messages (RFC 2046 §5.2.2), each sent in its own SMTP
//! transaction, such that a receiver reassembling them as RFC 2046 §5.2.2.1 says
//! gets the original message back byte for byte.
//!
//! # How a fragment looks
//!
//! Fragment `n` of `N` is a complete message: its own header block, a blank line,
//! and as body the next slice of the original message's bytes (the "enclosed"
//! message: the original verbatim, its header block included, all in fragment 1).
//! Slices end at line ends, so every fragment body ends with CRLF, and no line is
//! longer than the original's longest (at most 998 octets before CRLF).
//!
//! - Fragment 1's header block is the original's header fields that reassembly
//!   keeps from the first enclosing message (all but `Content-*`, `Subject`,
//!   `Message-ID`, `Encrypted` and `MIME-Version`), copied verbatim in the
//!   original's order (folding included), then `Subject: [1/N] subject`,
//!   `Message-ID`, `MIME-Version: 1.0` and
//!   `Content-Type: message/partial; id="…"; number=1; total=N`. It carries no
//!   field of its own that reassembly would keep, so nothing foreign gets into the
//!   reassembled message.
//! - Fragments 2..N, whose header blocks reassembly discards, get `Date`, `From`
//!   and `To` from the arguments, then the same four fields.
//!
//! # Header order (the decision)
//!
//! Reassembly puts the first fragment's kept fields first and the enclosed
//! message's `Content-*`/`Subject`/`Message-ID`/`Encrypted`/`MIME-Version` fields
//! after them. So only a message whose header block already has that shape (every
//! other field before the first of those) comes back byte for byte. [`split`]
//! refuses any other message with an error naming the field that is out of place;
//! it never reorders silently, because the reassembled message must equal the one
//! that would have been sent whole, and only the caller decides what that is.
//!
//! [`mime::encode`](crate::mime::encode) writes `X-Mailer` after `MIME-Version`, so
//! its output must go through [`canonical_order`] first. The device applies
//! [`canonical_order`] to every mail before it decides between sending whole and
//! splitting (the size is unchanged by it), so that the whole message and the
//! reassembled one are the same bytes: `Date, From, To, X-Mailer, Subject,
//! Message-ID, MIME-Version, Content-Type…` for a mail of `encode`.
//!
//! # What the caller checks
//!
//! [`split`] cuts whatever it is given, even into one fragment; SPEC §4 sends a
//! message of at most `load.split_size` KB whole, so the caller compares the size
//! first and calls [`split`] only for a larger message. It fails only when no valid
//! fragmentation exists (a limit too small for one header block plus a line, or
//! for fragment 1 to hold the original's whole header block) or the input is not a
//! message it can fragment exactly (see the errors).
//!
//! RFC 2046 forbids 8bit and binary content in a `message/partial`; the device's
//! messages are 7bit (base64 attachments), and `split` does not check that.

/// The most octets a line may have before its CRLF (RFC 5322 §2.1.1).
pub const MAX_LINE: usize = 998;

/// A fragment's header block and the range of the message that is its body.
type Packed = (Vec<u8>, std::ops::Range<usize>);

/// One fragment: a complete message to send in its own SMTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub number: u32,
    pub total: u32,
    /// The fragment's message bytes (CRLF line endings, not dot-stuffed).
    pub bytes: Vec<u8>,
}

/// Why a message cannot be fragmented exactly, or its fragments cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the message is empty")]
    Empty,
    #[error("the message does not end with CRLF (last line at byte {0})")]
    NoFinalCrlf(usize),
    #[error("bare LF at byte {0}")]
    BareLf(usize),
    #[error("bare CR at byte {0}")]
    BareCr(usize),
    #[error("the line at byte {at} has {octets} octets (at most {max})", max = MAX_LINE)]
    LongLine { at: usize, octets: usize },
    #[error("the message starts with a continuation line")]
    StartsWithContinuation,
    #[error("header line {0} is not a field (\"Name: value\")")]
    NotAField(usize),
    #[error(transparent)]
    NameNotUtf8(std::str::Utf8Error),
    #[error("the message has no blank line after its header")]
    NoBlankLine,
    #[error(
        "header {late} comes after {first}: for a byte-exact reassembly (RFC 2046 \
         §5.2.2.1) every field other than Content-*, Subject, Message-ID, \
         Encrypted and MIME-Version must come before all of those; put the \
         message through partial::canonical_order first"
    )]
    OutOfOrder { late: String, first: String },
    #[error(
        "the message has no {0} field: fragment 1 must carry the \
         original's own {0}, since reassembly copies it"
    )]
    MissingField(&'static str),
    #[error("the partial id {0:?} must be non-empty, without '\"' or '\\'")]
    BadId(String),
    #[error("the {what} {value:?} contains a control character")]
    ControlCharacter { what: &'static str, value: String },
    #[error("the fragment's {name} line would have {octets} octets (at most {max})", max = MAX_LINE)]
    FieldTooLong { name: &'static str, octets: usize },
    #[error(
        "a fragment of at most {max_bytes} bytes cannot hold fragment 1: \
         its headers and the message's whole header block need {need} bytes"
    )]
    HeaderBlockTooBig { max_bytes: usize, need: usize },
    #[error(
        "a fragment of at most {max_bytes} bytes cannot hold fragment {n}: \
         its headers ({headers} bytes) and the next line ({line} bytes) do not fit"
    )]
    LineTooBig {
        max_bytes: usize,
        n: u32,
        headers: usize,
        line: usize,
    },
    #[error("too many fragments")]
    TooMany,
    #[error("the fragment count does not settle")]
    Unsettled,
}

/// Whether RFC 2046 §5.2.2.1 takes this field from the enclosed message (rather
/// than from the first enclosing one).
fn is_enclosed_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("content-")
        || matches!(
            n.as_str(),
            "subject" | "message-id" | "encrypted" | "mime-version"
        )
}

/// One header field: its name and its raw bytes (all its lines, with CRLFs).
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

/// A message cut into lines (each range includes its CRLF), checked to have CRLF
/// line endings only, lines of at most 998 octets, and a final CRLF.
fn lines(message: &[u8]) -> Result<Vec<std::ops::Range<usize>>, SplitError> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < message.len() {
        let Some(lf) = message[start..].iter().position(|b| *b == b'\n') else {
            return Err(SplitError::NoFinalCrlf(start));
        };
        let end = start + lf + 1;
        if lf == 0 || message[end - 2] != b'\r' {
            return Err(SplitError::BareLf(end - 1));
        }
        let content = &message[start..end - 2];
        if let Some(cr) = content.iter().position(|b| *b == b'\r') {
            return Err(SplitError::BareCr(start + cr));
        }
        if content.len() > MAX_LINE {
            return Err(SplitError::LongLine {
                at: start,
                octets: content.len(),
            });
        }
        out.push(start..end);
        start = end;
    }
    Ok(out)
}

/// The header fields of a message whose lines are `lines`, and how many lines the
/// header block has including the blank line that ends it.
fn header_fields<'a>(
    message: &'a [u8],
    lines: &[std::ops::Range<usize>],
) -> Result<(Vec<Field<'a>>, usize), SplitError> {
    let mut fields: Vec<Field<'a>> = Vec::new();
    // The field being read: where it starts, and its name.
    let mut open: Option<(usize, &'a str)> = None;
    for (i, r) in lines.iter().enumerate() {
        let content = &message[r.start..r.end - 2];
        if content.is_empty() || (content[0] != b' ' && content[0] != b'\t') {
            if let Some((start, name)) = open.take() {
                fields.push(Field {
                    name,
                    raw: &message[start..r.start],
                });
            }
        }
        if content.is_empty() {
            return Ok((fields, i + 1));
        }
        if content[0] == b' ' || content[0] == b'\t' {
            if open.is_none() {
                return Err(SplitError::StartsWithContinuation);
            }
            continue;
        }
        let colon = content.iter().position(|b| *b == b':');
        let name = colon
            .map(|c| &content[..c])
            .filter(|n| !n.is_empty() && n.iter().all(|b| (33..=126).contains(b)));
        let Some(name) = name else {
            return Err(SplitError::NotAField(i + 1));
        };
        // The name is printable ASCII, so this always succeeds.
        let name = std::str::from_utf8(name).map_err(SplitError::NameNotUtf8)?;
        open = Some((r.start, name));
    }
    Err(SplitError::NoBlankLine)
}

/// Reorders a message's header fields into the order RFC 2046 reassembly yields:
/// every field other than `Content-*`, `Subject`, `Message-ID`, `Encrypted` and
/// `MIME-Version` first, then those; each group keeps its relative order, fields
/// keep their bytes (folding included), the body is untouched and the size is the
/// same. A message already in that order comes back unchanged, and so does one
/// whose header cannot be read (then [`split`] says why).
pub fn canonical_order(message: &[u8]) -> Vec<u8> {
    let Ok(ls) = lines(message) else {
        return message.to_vec();
    };
    let Ok((fields, header_lines)) = header_fields(message, &ls) else {
        return message.to_vec();
    };
    let body_start = ls[header_lines - 1].start;
    let mut out = Vec::with_capacity(message.len());
    for keep_enclosed in [false, true] {
        for f in fields
            .iter()
            .filter(|f| is_enclosed_field(f.name) == keep_enclosed)
        {
            out.extend_from_slice(f.raw);
        }
    }
    out.extend_from_slice(&message[body_start..]);
    out
}

/// A value for a header line of a fragment: one line, no control characters.
fn check_value(what: &'static str, value: &str) -> Result<(), SplitError> {
    if value.chars().any(char::is_control) {
        return Err(SplitError::ControlCharacter {
            what,
            value: value.into(),
        });
    }
    Ok(())
}

/// Appends `name: value` CRLF, refusing a line longer than 998 octets.
fn push_field(out: &mut Vec<u8>, name: &'static str, value: &str) -> Result<(), SplitError> {
    let line = format!("{name}: {value}");
    if line.len() > MAX_LINE {
        return Err(SplitError::FieldTooLong {
            name,
            octets: line.len(),
        });
    }
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Fragments `message` (CRLF line endings, header block then body) into
/// `message/partial` messages of at most `max_bytes` bytes each, headers included.
///
/// - `max_bytes`: `load.split_size` KB × 1024.
/// - `id`: the id shared by the fragments (e.g. `"<job>.<time>@host"`), sent as a
///   quoted string, so it must not contain `"` or `\`.
/// - `outer_from`, `outer_to`, `date`: the `From`, `To` and `Date` of fragments
///   2..N (fragment 1 carries the original's own, see the module documentation);
///   an empty `outer_to` leaves `To` out.
/// - `subject`: each fragment's subject after its `[n/N] ` prefix.
/// - `message_id_for(n)`: the `Message-ID` of fragment `n`.
/// - `prefix`: whether the subjects have the `[n/N] ` prefix (SPEC §4; only a
///   planted bug leaves it out).
///
/// The caller sends a message of at most `max_bytes` whole and calls this only for
/// larger ones (for a small message it answers one fragment, `total=1`). The
/// message must be in the order of [`canonical_order`]; errors say what is wrong.
#[allow(clippy::too_many_arguments)]
pub fn split(
    message: &[u8],
    max_bytes: usize,
    id: &str,
    outer_from: &str,
    outer_to: &str,
    subject: &str,
    date: &str,
    message_id_for: &dyn Fn(u32) -> String,
    prefix: bool,
) -> Result<Vec<Fragment>, SplitError> {
    if message.is_empty() {
        return Err(SplitError::Empty);
    }
    let ls = lines(message)?;
    let (fields, header_lines) = header_fields(message, &ls)?;
    if let Some(first) = fields.iter().position(|f| is_enclosed_field(f.name)) {
        if let Some(late) = fields[first..].iter().find(|f| !is_enclosed_field(f.name)) {
            return Err(SplitError::OutOfOrder {
                late: late.name.into(),
                first: fields[first].name.into(),
            });
        }
    }
    for needed in ["Date", "From"] {
        if !fields.iter().any(|f| f.name.eq_ignore_ascii_case(needed)) {
            return Err(SplitError::MissingField(needed));
        }
    }
    if id.is_empty() || id.contains(['"', '\\']) {
        return Err(SplitError::BadId(id.into()));
    }
    check_value("partial id", id)?;
    check_value("From", outer_from)?;
    check_value("To", outer_to)?;
    check_value("Subject", subject)?;
    check_value("Date", date)?;

    // Fragment 1 begins with the original's kept fields, verbatim.
    let kept: Vec<u8> = fields
        .iter()
        .filter(|f| !is_enclosed_field(f.name))
        .flat_map(|f| f.raw.iter().copied())
        .collect();
    let headers = |n: u32, total: u32| -> Result<Vec<u8>, SplitError> {
        let mut h = Vec::with_capacity(kept.len() + 256);
        if n == 1 {
            h.extend_from_slice(&kept);
        } else {
            push_field(&mut h, "Date", date)?;
            push_field(&mut h, "From", outer_from)?;
            if !outer_to.is_empty() {
                push_field(&mut h, "To", outer_to)?;
            }
        }
        let subject = if prefix {
            format!("[{n}/{total}] {subject}")
        } else {
            subject.to_string()
        };
        push_field(&mut h, "Subject", &subject)?;
        let mid = message_id_for(n);
        check_value("Message-ID", &mid)?;
        push_field(&mut h, "Message-ID", &mid)?;
        push_field(&mut h, "MIME-Version", "1.0")?;
        push_field(
            &mut h,
            "Content-Type",
            &format!("message/partial; id=\"{id}\"; number={n}; total={total}"),
        )?;
        h.extend_from_slice(b"\r\n");
        Ok(h)
    };

    // Greedy packing of whole lines, for a guessed total. Longer totals only make
    // headers longer, so the count never shrinks as the guess grows: iterating
    // from 1 reaches the total that reproduces itself.
    let pack = |total: u32| -> Result<Vec<Packed>, SplitError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < ls.len() {
            let n = u32::try_from(out.len() + 1).map_err(|_| SplitError::TooMany)?;
            let h = headers(n, total)?;
            let budget = max_bytes.saturating_sub(h.len());
            let first = i;
            let mut used = 0;
            while i < ls.len() && used + ls[i].len() <= budget {
                used += ls[i].len();
                i += 1;
            }
            if n == 1 && i < header_lines {
                let need: usize =
                    h.len() + ls[..header_lines].iter().map(|r| r.len()).sum::<usize>();
                return Err(SplitError::HeaderBlockTooBig { max_bytes, need });
            }
            if i == first {
                return Err(SplitError::LineTooBig {
                    max_bytes,
                    n,
                    headers: h.len(),
                    line: ls[i].len(),
                });
            }
            out.push((h, ls[first].start..ls[i - 1].end));
        }
        Ok(out)
    };

    let mut total: u32 = 1;
    for _ in 0..64 {
        let packed = pack(total)?;
        let count = u32::try_from(packed.len()).map_err(|_| SplitError::TooMany)?;
        if count == total {
            return Ok(packed
                .into_iter()
                .zip(1..)
                .map(|((mut bytes, body), number)| {
                    bytes.extend_from_slice(&message[body]);
                    Fragment {
                        number,
                        total,
                        bytes,
                    }
                })
                .collect());
        }
        total = count;
    }
    Err(SplitError::Unsettled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::{encode, scan_bytes, Attachment, Mail};

    /// A receiver's reassembly, written from RFC 2046 §5.2.2 alone.
    mod receiver {
        use std::collections::BTreeMap;

        pub struct Parsed {
            /// (name, raw bytes of the whole field).
            pub fields: Vec<(String, Vec<u8>)>,
            pub body: Vec<u8>,
        }

        /// An RFC 5322 message: fields (with their folded lines) until the first
        /// empty line, then the body.
        pub fn parse(m: &[u8]) -> Parsed {
            let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
            let mut pos = 0;
            loop {
                let end = pos
                    + m[pos..]
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .expect("a header line ends in CRLF")
                    + 2;
                let line = &m[pos..end];
                if line == b"\r\n" {
                    return Parsed {
                        fields,
                        body: m[end..].to_vec(),
                    };
                }
                if line[0] == b' ' || line[0] == b'\t' {
                    fields
                        .last_mut()
                        .expect("no field to continue")
                        .1
                        .extend_from_slice(line);
                } else {
                    let colon = line.iter().position(|b| *b == b':').expect("a field");
                    let name = String::from_utf8(line[..colon].to_vec()).unwrap();
                    fields.push((name, line.to_vec()));
                }
                pos = end;
            }
        }

        fn value(raw: &[u8]) -> String {
            let s = String::from_utf8_lossy(raw);
            let v = &s[s.find(':').unwrap() + 1..];
            v.replace("\r\n", "").trim().to_string()
        }

        /// `type/subtype` and parameters (names lower-cased; quoted strings
        /// unquoted with their backslash escapes).
        pub fn content_type(v: &str) -> (String, BTreeMap<String, String>) {
            let mut it = v.splitn(2, ';');
            let ty = it.next().unwrap().trim().to_ascii_lowercase();
            let mut params = BTreeMap::new();
            let rest: Vec<char> = it.next().unwrap_or("").chars().collect();
            let mut i = 0;
            while i < rest.len() {
                while i < rest.len() && (rest[i] == ';' || rest[i].is_whitespace()) {
                    i += 1;
                }
                let start = i;
                while i < rest.len() && rest[i] != '=' {
                    i += 1;
                }
                let name: String = rest[start..i].iter().collect();
                i += 1;
                let mut val = String::new();
                if i < rest.len() && rest[i] == '"' {
                    i += 1;
                    while i < rest.len() && rest[i] != '"' {
                        if rest[i] == '\\' {
                            i += 1;
                        }
                        val.push(rest[i]);
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < rest.len() && rest[i] != ';' && !rest[i].is_whitespace() {
                        val.push(rest[i]);
                        i += 1;
                    }
                }
                if !name.trim().is_empty() {
                    params.insert(name.trim().to_ascii_lowercase(), val);
                }
            }
            (ty, params)
        }

        pub fn header(p: &Parsed, name: &str) -> Option<String> {
            p.fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, raw)| value(raw))
        }

        fn from_enclosed(name: &str) -> bool {
            let n = name.to_ascii_lowercase();
            n.starts_with("content-")
                || ["subject", "message-id", "encrypted", "mime-version"].contains(&n.as_str())
        }

        /// RFC 2046 §5.2.2.1: puts the fragments (any order) back together.
        pub fn reassemble(fragments: &[Vec<u8>]) -> Result<Vec<u8>, String> {
            let mut by_number: BTreeMap<u32, Parsed> = BTreeMap::new();
            let mut id: Option<String> = None;
            let mut total: Option<u32> = None;
            for f in fragments {
                let p = parse(f);
                let ct = header(&p, "Content-Type").ok_or("no Content-Type")?;
                let (ty, params) = content_type(&ct);
                if ty != "message/partial" {
                    return Err(format!("not message/partial: {ty}"));
                }
                let this_id = params.get("id").ok_or("no id")?.clone();
                if *id.get_or_insert(this_id.clone()) != this_id {
                    return Err("ids differ".into());
                }
                let n: u32 = params
                    .get("number")
                    .ok_or("no number")?
                    .parse()
                    .map_err(|_| "number")?;
                if let Some(t) = params.get("total") {
                    let t: u32 = t.parse().map_err(|_| "total")?;
                    if *total.get_or_insert(t) != t {
                        return Err("totals differ".into());
                    }
                }
                if by_number.insert(n, p).is_some() {
                    return Err(format!("fragment {n} twice"));
                }
            }
            let total = total.ok_or("no fragment gives the total")?;
            if by_number.keys().copied().ne(1..=total) {
                return Err("fragments missing".into());
            }
            let enclosed: Vec<u8> = by_number.values().flat_map(|p| p.body.clone()).collect();
            let inner = parse(&enclosed);
            let mut out = Vec::new();
            for (name, raw) in &by_number[&1].fields {
                if !from_enclosed(name) {
                    out.extend_from_slice(raw);
                }
            }
            for (name, raw) in &inner.fields {
                if from_enclosed(name) {
                    out.extend_from_slice(raw);
                }
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&inner.body);
            Ok(out)
        }
    }

    fn mail(kb: u32, to: &[&str]) -> Vec<u8> {
        let m = Mail {
            from: "scanner@example.com".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: "Scanned document".into(),
            date: "Thu, 1 Jan 2026 00:00:00 +0000".into(),
            message_id: "<42.1767225600@mfp-sim>".into(),
            text: "Your scan is attached.\n.\n..two dots".into(),
            attachment: Some(Attachment {
                filename: "scan.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: scan_bytes(kb),
            }),
        };
        encode(&m, 0x1234_5678)
    }

    fn mid(n: u32) -> String {
        format!("<42.1767225600.{n}@mfp-sim>")
    }

    /// Splits with fixed arguments; an error as its text.
    fn cut(m: &[u8], max: usize) -> Result<Vec<Fragment>, String> {
        split(
            m,
            max,
            "<42.1767225600@mfp-sim>",
            "scanner@example.com",
            "a@example.com,b@example.com",
            "Scanned document",
            "Thu, 1 Jan 2026 00:00:00 +0000",
            &mid,
            true,
        )
        .map_err(|e| e.to_string())
    }

    fn names(m: &[u8]) -> Vec<String> {
        receiver::parse(m)
            .fields
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn encoded_mails_are_already_in_canonical_order() {
        let raw = mail(1, &["a@example.com", "b@example.com"]);
        let want = [
            "Date",
            "From",
            "To",
            "X-Mailer",
            "Subject",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
        ];
        assert_eq!(names(&raw), want);
        assert_eq!(canonical_order(&raw), raw);
        // Unreadable input is returned as it is.
        assert_eq!(canonical_order(b"no header\n"), b"no header\n");
    }

    #[test]
    fn another_order_is_refused_with_the_reason_and_canonical_order_fixes_it() {
        let ok = mail(100, &["a@example.com"]);
        // Move X-Mailer after Subject, as an older encoder did.
        let text = String::from_utf8(ok.clone()).unwrap();
        let moved = text
            .replacen("X-Mailer: mfp-sim\r\n", "", 1)
            .replacen(
                "MIME-Version: 1.0\r\n",
                "MIME-Version: 1.0\r\nX-Mailer: mfp-sim\r\n",
                1,
            )
            .into_bytes();
        let e = cut(&moved, 10 * 1024).unwrap_err();
        assert!(e.contains("X-Mailer comes after"), "{e}");
        assert!(e.contains("canonical_order"), "{e}");
        let fixed = canonical_order(&moved);
        assert_eq!(names(&fixed), names(&ok));
        assert_eq!(receiver::parse(&fixed).body, receiver::parse(&moved).body);
        assert_eq!(canonical_order(&fixed), fixed);
    }

    #[test]
    fn encoded_mails_reassemble_byte_for_byte() {
        let sizes = [1200, 2048, 4096, 10 * 1024, 100 * 1024, 1024 * 1024];
        for kb in [1, 100, 1024] {
            for to in [
                &["a@example.com"][..],
                &["a@example.com", "b@example.com", "c@example.com"],
            ] {
                let m = canonical_order(&mail(kb, to));
                for max in sizes {
                    if kb == 1024 && max < 4096 {
                        continue; // thousands of fragments; the smaller sizes are covered above
                    }
                    let frags = cut(&m, max).unwrap_or_else(|e| panic!("{kb} KB at {max}: {e}"));
                    check_fragments(&m, &frags, max);
                    let bytes: Vec<Vec<u8>> = frags.iter().map(|f| f.bytes.clone()).collect();
                    let back = receiver::reassemble(&bytes).unwrap();
                    assert!(back == m, "{kb} KB at {max}: reassembly differs");
                    // Order of arrival does not matter.
                    let mut rev = bytes.clone();
                    rev.reverse();
                    assert!(receiver::reassemble(&rev).unwrap() == m);
                    if m.len() > max {
                        assert!(frags.len() >= 2);
                    }
                }
            }
        }
    }

    fn check_fragments(m: &[u8], frags: &[Fragment], max: usize) {
        let total = frags.len() as u32;
        let mut body = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let n = i as u32 + 1;
            assert_eq!((f.number, f.total), (n, total));
            assert!(
                f.bytes.len() <= max,
                "fragment {n}: {} > {max}",
                f.bytes.len()
            );
            assert!(f.bytes.ends_with(b"\r\n"));
            for (j, w) in f.bytes.windows(2).enumerate() {
                assert!(
                    !(w[1] == b'\n' && w[0] != b'\r'),
                    "bare LF in fragment {n} at {j}"
                );
                assert!(
                    !(w[0] == b'\r' && w[1] != b'\n'),
                    "bare CR in fragment {n} at {j}"
                );
            }
            for line in f.bytes.split(|b| *b == b'\n') {
                assert!(line.len() <= MAX_LINE, "a line of {} octets", line.len());
            }
            let p = receiver::parse(&f.bytes);
            assert!(p.body.ends_with(b"\r\n"));
            body.extend_from_slice(&p.body);
            assert_eq!(
                receiver::header(&p, "Subject").unwrap(),
                format!("[{n}/{total}] Scanned document")
            );
            assert_eq!(receiver::header(&p, "Message-ID").unwrap(), mid(n));
            assert_eq!(receiver::header(&p, "MIME-Version").unwrap(), "1.0");
            assert!(receiver::header(&p, "From").is_some());
            assert!(receiver::header(&p, "Date").is_some());
            assert!(receiver::header(&p, "To").is_some());
            let (ty, params) =
                receiver::content_type(&receiver::header(&p, "Content-Type").unwrap());
            assert_eq!(ty, "message/partial");
            assert_eq!(params["id"], "<42.1767225600@mfp-sim>");
            assert_eq!(params["number"], n.to_string());
            assert_eq!(params["total"], total.to_string());
            // Fragment 1 keeps no field of its own that reassembly would copy.
            if n == 1 {
                let kept: Vec<String> = names(&f.bytes)
                    .into_iter()
                    .filter(|x| !is_enclosed_field(x))
                    .collect();
                assert_eq!(kept, ["Date", "From", "To", "X-Mailer"]);
            }
        }
        // The bodies are the original, in order.
        assert!(body == m);
    }

    #[test]
    fn small_message_is_one_fragment_and_limits_are_exact() {
        let m = canonical_order(&mail(1, &["a@example.com"]));
        let one = cut(&m, 1024 * 1024).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].number, one[0].total), (1, 1));
        assert!(receiver::reassemble(&[one[0].bytes.clone()]).unwrap() == m);
        // Every size from the smallest that works upward gives fragments within it.
        let mut smallest = None;
        for max in (300..2500).step_by(7) {
            if let Ok(frags) = cut(&m, max) {
                smallest.get_or_insert(max);
                check_fragments(&m, &frags, max);
                let bytes: Vec<Vec<u8>> = frags.iter().map(|f| f.bytes.clone()).collect();
                assert!(receiver::reassemble(&bytes).unwrap() == m);
            } else {
                assert!(
                    smallest.is_none(),
                    "failed at {max} after working at a smaller size"
                );
            }
        }
        assert!(smallest.is_some());
    }

    #[test]
    fn a_limit_too_small_is_refused() {
        let m = canonical_order(&mail(1, &["a@example.com"]));
        let e = cut(&m, 100).unwrap_err();
        assert!(e.contains("fragment 1"), "{e}");
        assert!(e.contains("whole header block"), "{e}");
        // Room for fragment 1 but not for fragment 2's headers (a long To) plus
        // one base64 line.
        let smallest = (300..2000).find(|max| cut(&m, *max).is_ok()).unwrap();
        let to = format!("{}@example.com", "x".repeat(smallest));
        let e = split(&m, smallest, "x", "a@b", &to, "s", "now", &mid, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot hold fragment 2"), "{e}");
        assert!(e.contains("and the next line"), "{e}");
    }

    #[test]
    fn rfc2046_example_shape_with_other_fields() {
        let m = b"X-Weird-Header-1: Foo\r\nFrom: Bill@host.com\r\nTo: joe@otherhost.com\r\n\
Date: Fri, 26 Mar 1993 12:59:38 -0500 (EST)\r\nSubject: Audio mail\r\n\
Message-ID: <anotherid@foo.com>\r\nMIME-Version: 1.0\r\nContent-type: audio/basic\r\n\
Content-transfer-encoding: base64\r\n\r\n"
            .iter()
            .copied()
            .chain(b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(40))
            .collect::<Vec<u8>>();
        let frags = split(
            &m,
            700,
            "ABC@host.com",
            "Bill@host.com",
            "joe@otherhost.com",
            "Audio mail",
            "Fri, 26 Mar 1993 12:59:38 -0500 (EST)",
            &|n| format!("<id{n}@host.com>"),
            true,
        )
        .unwrap();
        assert!(frags.len() > 2);
        let bytes: Vec<Vec<u8>> = frags.iter().map(|f| f.bytes.clone()).collect();
        assert!(receiver::reassemble(&bytes).unwrap() == m);
        assert!(frags[0]
            .bytes
            .starts_with(b"X-Weird-Header-1: Foo\r\nFrom: Bill@host.com\r\n"));
    }

    #[test]
    fn bad_input_is_refused() {
        let ok = canonical_order(&mail(1, &["a@example.com"]));
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = ok.clone();
            f(&mut m);
            cut(&m, 1024).unwrap_err()
        };
        assert!(with(&|m| m.truncate(m.len() - 2)).contains("CRLF"));
        assert!(with(&|m| m.extend_from_slice(b"bare\n")).contains("bare LF"));
        assert!(with(&|m| m.extend_from_slice(b"a\rb\r\n")).contains("bare CR"));
        assert!(with(&|m| {
            m.extend_from_slice(&[b'x'; 999]);
            m.extend_from_slice(b"\r\n")
        })
        .contains("999 octets"));
        assert!(cut(b"Date: x\r\nFrom: y\r\n", 1024)
            .unwrap_err()
            .contains("no blank line"));
        assert!(cut(b" x\r\n\r\n", 1024)
            .unwrap_err()
            .contains("continuation"));
        assert!(cut(b"no colon\r\n\r\n", 1024)
            .unwrap_err()
            .contains("not a field"));
        assert!(cut(b"From: y\r\n\r\nbody\r\n", 1024)
            .unwrap_err()
            .contains("no Date"));
        assert!(cut(b"", 1024).is_err());
        let args = |id: &str, subject: &str| {
            split(&ok, 4096, id, "a@b", "c@d", subject, "now", &mid, true)
                .unwrap_err()
                .to_string()
        };
        assert!(args("a\"b", "s").contains("partial id"));
        assert!(args("", "s").contains("partial id"));
        assert!(args("x", "s\r\nBcc: evil@x").contains("control"));
        let long = "s".repeat(1000);
        assert!(args("x", &long).contains("Subject line"));
        let e = split(
            &ok,
            4096,
            "x",
            "a@b",
            "c@d",
            "s",
            "now",
            &|_| "<a\r\nb>".into(),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Message-ID"), "{e}");
    }
}
