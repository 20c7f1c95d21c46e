//! A small HTTP/1.1 client for the device's revocation checks (OCSP POST, CRL GET):
//! one request per connection, bounded in time and size.
//!
//! Every byte of the answer is the server's, and the server may be hostile (any
//! certificate can name any OCSP or CRL address): [`ResponseReader`] reads the answer
//! as it arrives with checked arithmetic and hard caps — a header of at most
//! [`MAX_HEAD`] bytes in at most [`MAX_HEADERS`] lines, a body of at most [`MAX_BODY`]
//! bytes however it is framed (Content-Length, chunked, or up to the close) — and
//! anything past a cap is an error naming the cap, never an allocation.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resolve::{resolve, ResolveError};
use crate::text::printable;

/// Largest response body the device accepts, in bytes.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Largest response header (status line and header lines, up to the empty line).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines an answer may have.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (the size and its extensions) or trailer line.
pub const MAX_CHUNK_LINE: usize = 1024;

/// A URL the device can fetch: `http://HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Why a URL is not one the device fetches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?}: only http:// URLs are fetched")]
    NotHttp(String),
    #[error("{0:?}: bad IPv6 host")]
    BadIpv6(String),
    #[error("{url:?}: bad port {port:?}")]
    BadPort { url: String, port: String },
    #[error("{0:?}: no host")]
    NoHost(String),
    /// A space or control character would end the request line early.
    #[error("{0:?}: spaces and control characters are not allowed in a URL")]
    BadChar(String),
}

impl Url {
    /// Reads `http://HOST[:PORT]/PATH` (an IPv6 host in brackets).
    pub fn parse(url: &str) -> Result<Url, UrlError> {
        if url.chars().any(|c| c == ' ' || c.is_control()) {
            return Err(UrlError::BadChar(printable(url)));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| UrlError::NotHttp(url.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::BadIpv6(url.into()))?;
            (
                h.to_string(),
                p.strip_prefix(':').unwrap_or("80").to_string(),
            )
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.to_string()),
                None => (authority.to_string(), "80".to_string()),
            }
        };
        let port = port.parse().map_err(|_| UrlError::BadPort {
            url: url.into(),
            port,
        })?;
        if host.is_empty() {
            return Err(UrlError::NoHost(url.into()));
        }
        Ok(Url {
            host,
            port,
            path: path.to_string(),
        })
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a chunked body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("bad chunk size {0:?}: must be hexadecimal digits")]
    BadSize(String),
    #[error("chunk size {0:?} is over the {max}-byte body limit", max = MAX_BODY)]
    TooLarge(String),
    #[error("the chunked body is longer than {max} bytes", max = MAX_BODY)]
    BodyTooLarge,
    #[error("a chunk-size line is longer than {max} bytes", max = MAX_CHUNK_LINE)]
    LongSizeLine,
    #[error("a chunk is not followed by CR LF")]
    NoChunkEnd,
    #[error("the trailer is longer than {max} bytes", max = MAX_HEAD)]
    LongTrailer,
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The name resolved to no address at all.
    #[error("no address")]
    NoAddress,
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// Writing the request or reading the answer failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the answer's header is longer than {max} bytes", max = MAX_HEAD)]
    LongHead,
    #[error("the answer has more than {max} header lines", max = MAX_HEADERS)]
    ManyHeaders,
    #[error("the server closed the connection before the end of the answer's header")]
    NoEndOfHeaders,
    #[error("bad status line {0:?}: must be HTTP/1.x and a 3-digit code")]
    BadStatusLine(String),
    #[error("bad Content-Length {0:?}: must be decimal digits")]
    BadLength(String),
    #[error("two different Content-Length headers ({0} and {1})")]
    TwoLengths(u64, u64),
    #[error("Content-Length {0} is over the {max}-byte body limit", max = MAX_BODY)]
    LengthTooLarge(u64),
    #[error("the body is longer than {max} bytes", max = MAX_BODY)]
    BodyTooLarge,
    #[error("the server closed the connection {got} bytes into a body of {want}")]
    Truncated { got: usize, want: u64 },
    #[error("the server closed the connection inside the chunked body")]
    ChunksTruncated,
    #[error(transparent)]
    Chunked(#[from] ChunkError),
    #[error("no answer within {secs:.1}s", secs = .0.as_secs_f64())]
    Timeout(Duration),
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: this many bytes still to come.
    Data(usize),
    /// After a chunk's data: the CR LF (how many of its bytes seen).
    DataEnd(u8),
    /// After the last chunk: trailer lines up to an empty one (bytes read so far).
    Trailer(usize),
    Done,
}

/// Reads one HTTP/1.x answer from the bytes as they arrive ([`ResponseReader::push`])
/// up to the close ([`ResponseReader::finish`]), within the caps of this module.
#[derive(Debug, Default)]
pub struct ResponseReader {
    /// The header so far, then the partial line of the chunked decoder.
    pending: Vec<u8>,
    head: Option<(u16, Framing)>,
    chunk: Option<Chunk>,
    body: Vec<u8>,
}

/// The value of `name` in a header line, if the line is that header.
fn header<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
}

/// The status and how the body is framed, from the header (without its empty line).
fn parse_head(head: &[u8]) -> Result<(u16, Framing), HttpError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    let ok = version.starts_with("HTTP/1.")
        && code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit());
    let status = match code.parse::<u16>() {
        Ok(s) if ok => s,
        _ => return Err(HttpError::BadStatusLine(printable(status_line))),
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for (i, line) in lines.enumerate() {
        if i >= MAX_HEADERS {
            return Err(HttpError::ManyHeaders);
        }
        if let Some(v) = header(line, "transfer-encoding") {
            chunked |= v.to_ascii_lowercase().contains("chunked");
        }
        if let Some(v) = header(line, "content-length") {
            let n = match v.parse::<u64>() {
                Ok(n) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(HttpError::BadLength(printable(v))),
            };
            match length {
                Some(m) if m != n => return Err(HttpError::TwoLengths(m, n)),
                _ => length = Some(n),
            }
        }
    }
    // RFC 9112 §6.3: chunked framing wins over a Content-Length.
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => match usize::try_from(n) {
            Ok(n) if n <= MAX_BODY => Framing::Length(n),
            _ => return Err(HttpError::LengthTooLarge(n)),
        },
        (false, None) => Framing::Close,
    };
    Ok((status, framing))
}

/// The size of a chunk from its size line (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<usize, ChunkError> {
    let text = String::from_utf8_lossy(line);
    let digits = text.split(';').next().unwrap_or("").trim();
    let shown = || printable(digits).chars().take(40).collect::<String>();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ChunkError::BadSize(shown()));
    }
    // Leading zeros do not count towards the size; more digits than fit are too large.
    let significant = digits.trim_start_matches('0');
    match usize::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    ) {
        Ok(n) if n <= MAX_BODY => Ok(n),
        _ => Err(ChunkError::TooLarge(shown())),
    }
}

impl ResponseReader {
    /// Adds bytes as they arrive; answers the response once it is complete (a
    /// Content-Length body read, or the last chunk and the trailer), else `None`.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        if self.head.is_none() {
            // Look for the end of the header in the new bytes (and the 3 before them).
            let from = self.pending.len().saturating_sub(3);
            self.pending.extend_from_slice(bytes);
            let Some(end) = self
                .pending
                .get(from..)
                .unwrap_or_default()
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| from + p)
            else {
                if self.pending.len() > MAX_HEAD {
                    return Err(HttpError::LongHead);
                }
                return Ok(None);
            };
            if end > MAX_HEAD {
                return Err(HttpError::LongHead);
            }
            let rest = self.pending.split_off(end);
            let head = std::mem::take(&mut self.pending);
            let (status, framing) = parse_head(&head)?;
            self.head = Some((status, framing));
            if framing == Framing::Chunked {
                self.chunk = Some(Chunk::Size);
            }
            // `rest` starts with the empty line's CR LF CR LF.
            let body = rest.get(4..).unwrap_or_default().to_vec();
            return self.body_bytes(&body);
        }
        self.body_bytes(bytes)
    }

    fn body_bytes(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        let Some((_, framing)) = self.head else {
            return Ok(None);
        };
        match framing {
            Framing::Length(n) => {
                let room = n.saturating_sub(self.body.len());
                self.body
                    .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
                Ok((self.body.len() >= n).then(|| self.response()))
            }
            Framing::Close => {
                if self.body.len().saturating_add(bytes.len()) > MAX_BODY {
                    return Err(HttpError::BodyTooLarge);
                }
                self.body.extend_from_slice(bytes);
                Ok(None)
            }
            Framing::Chunked => {
                self.chunks(bytes)?;
                Ok((self.chunk == Some(Chunk::Done)).then(|| self.response()))
            }
        }
    }

    fn response(&mut self) -> Response {
        Response {
            status: self.head.map(|(s, _)| s).unwrap_or_default(),
            body: std::mem::take(&mut self.body),
        }
    }

    /// Runs the chunked decoder over `bytes`; bytes after the end are ignored.
    fn chunks(&mut self, mut bytes: &[u8]) -> Result<(), ChunkError> {
        while let (Some(state), Some((&b, rest))) = (self.chunk, bytes.split_first()) {
            let next = match state {
                Chunk::Size => {
                    bytes = rest;
                    if b != b'\n' {
                        if self.pending.len() >= MAX_CHUNK_LINE {
                            return Err(ChunkError::LongSizeLine);
                        }
                        self.pending.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.pending);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    match chunk_size(line)? {
                        0 => Chunk::Trailer(0),
                        n if n > MAX_BODY.saturating_sub(self.body.len()) => {
                            return Err(ChunkError::BodyTooLarge)
                        }
                        n => Chunk::Data(n),
                    }
                }
                Chunk::Data(left) => {
                    let take = left.min(bytes.len());
                    let (data, after) = bytes.split_at(take);
                    self.body.extend_from_slice(data);
                    bytes = after;
                    match left - take {
                        0 => Chunk::DataEnd(0),
                        n => Chunk::Data(n),
                    }
                }
                Chunk::DataEnd(seen) => {
                    bytes = rest;
                    match (seen, b) {
                        (0, b'\r') => Chunk::DataEnd(1),
                        (0 | 1, b'\n') => Chunk::Size,
                        _ => return Err(ChunkError::NoChunkEnd),
                    }
                }
                Chunk::Trailer(read) => {
                    bytes = rest;
                    if read >= MAX_HEAD {
                        return Err(ChunkError::LongTrailer);
                    }
                    if b != b'\n' {
                        self.pending.push(b);
                        Chunk::Trailer(read + 1)
                    } else if self.pending.iter().all(|&c| c == b'\r') {
                        self.pending.clear();
                        Chunk::Done
                    } else {
                        self.pending.clear();
                        Chunk::Trailer(read + 1)
                    }
                }
                Chunk::Done => return Ok(()),
            };
            self.chunk = Some(next);
        }
        Ok(())
    }

    /// The server closed the connection: the response if it is complete (a body
    /// framed by the close ends here), else why not.
    pub fn finish(mut self) -> Result<Response, HttpError> {
        match self.head {
            None => Err(HttpError::NoEndOfHeaders),
            Some((_, Framing::Close)) => Ok(self.response()),
            Some((_, Framing::Length(n))) if self.body.len() >= n => Ok(self.response()),
            Some((_, Framing::Length(n))) => Err(HttpError::Truncated {
                got: self.body.len(),
                want: n as u64,
            }),
            Some((_, Framing::Chunked)) if self.chunk == Some(Chunk::Done) => Ok(self.response()),
            Some((_, Framing::Chunked)) => Err(HttpError::ChunksTruncated),
        }
    }
}

/// Reads a whole answer from its bytes, as [`request`] does when they arrive in one
/// piece and the connection then closes (the fuzz target's entry).
pub fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let mut r = ResponseReader::default();
    match r.push(raw)? {
        Some(resp) => Ok(resp),
        None => r.finish(),
    }
}

/// Sends one request (a POST when `body` is given) and reads the whole answer, all
/// within `timeout`.
pub async fn request(
    url: &Url,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
    names: &crate::resolve::Names,
) -> Result<Response, HttpError> {
    let work = async {
        let addrs = resolve(&url.host, url.port, names).await?.addrs;
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(source) => last = Some(HttpError::Connect { addr, source }),
            }
        }
        let Some(mut s) = stream else {
            return Err(last.unwrap_or(HttpError::NoAddress));
        };
        s.write_all(&request_bytes(url, body)).await?;
        let mut reader = ResponseReader::default();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return reader.finish();
            }
            if let Some(resp) = reader.push(chunk.get(..n).unwrap_or_default())? {
                return Ok(resp);
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
}

/// The request's bytes: a GET, or a POST of `body` with its content type.
fn request_bytes(url: &Url, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let mut req = match body {
        Some((ctype, b)) => format!(
            "POST {} HTTP/1.1\r\nHost: {host}:{}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            url.path,
            url.port,
            b.len()
        )
        .into_bytes(),
        None => format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            url.path, url.port
        )
        .into_bytes(),
    };
    if let Some((_, b)) = body {
        req.extend_from_slice(b);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("http://127.0.0.1:8099/crl/a.crl"),
            Ok(Url {
                host: "127.0.0.1".into(),
                port: 8099,
                path: "/crl/a.crl".into()
            })
        );
        assert_eq!(
            Url::parse("http://[::1]:80/ocsp").map(|u| u.host),
            Ok("::1".into())
        );
        assert_eq!(
            Url::parse("http://h").map(|u| (u.port, u.path)),
            Ok((80, "/".into()))
        );
        assert!(Url::parse("https://h/").is_err());
        assert!(Url::parse("http://h:x/").is_err());
        assert!(Url::parse("http://h/a b").is_err());
        assert!(Url::parse("http://h/a\r\nX-Injected: 1").is_err());
    }

    fn body(raw: &[u8]) -> Result<Vec<u8>, String> {
        parse_response(raw)
            .map(|r| r.body)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn framings() {
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n"),
            Ok(b"abcde".to_vec())
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef"),
            Ok(b"abc".to_vec())
        );
        assert_eq!(body(b"HTTP/1.0 200 OK\r\n\r\nxyz"), Ok(b"xyz".to_vec()));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.map(|r| r.status).ok(), Some(404));
    }

    /// The answers of a hostile server (issue 18): each an error naming the rule,
    /// none a panic or an allocation of what the server claims.
    #[test]
    fn hostile_answers_are_errors() {
        let chunked = |b: &str| format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{b}");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                chunked("ffffffffffffffff\r\nab").into_bytes(),
                "chunk size \"ffffffffffffffff\" is over the 4194304-byte body limit",
            ),
            (
                chunked("fffffffffffffffffffff\r\n").into_bytes(),
                "is over the 4194304-byte body limit",
            ),
            (
                chunked("400001\r\n").into_bytes(),
                "chunk size \"400001\" is over",
            ),
            (chunked("zz\r\n").into_bytes(), "bad chunk size \"zz\""),
            (chunked("-1\r\n").into_bytes(), "bad chunk size \"-1\""),
            (chunked("\r\n").into_bytes(), "bad chunk size \"\""),
            (chunked("10\r\nab").into_bytes(), "inside the chunked body"),
            (chunked("2\r\nabXY").into_bytes(), "not followed by CR LF"),
            (
                chunked(&format!("1;{}\r\n", "e".repeat(2000))).into_bytes(),
                "chunk-size line is longer than 1024",
            ),
            (
                chunked(&format!("0\r\n{}", "X: y\r\n".repeat(4000))).into_bytes(),
                "trailer is longer",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n".to_vec(),
                "Content-Length 18446744073709551615 is over",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
                "bad Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
                "bad Content-Length \"-1\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n".to_vec(),
                "bad Content-Length \"+1\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
                "two different Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
                "3 bytes into a body of 10",
            ),
            (
                format!("HTTP/1.1 200 OK\r\n{}", "X: y\r\n".repeat(5000)).into_bytes(),
                "header is longer than 16384",
            ),
            (
                format!("HTTP/1.1 200 OK\r\n{}\r\n", "X: y\r\n".repeat(200)).into_bytes(),
                "more than 100 header lines",
            ),
            (
                b"HTTP/1.1 200 OK\r\n".to_vec(),
                "before the end of the answer's header",
            ),
            (b"SMTP 220 hello\r\n\r\n".to_vec(), "bad status line"),
            (b"HTTP/1.1 99999 x\r\n\r\n".to_vec(), "bad status line"),
        ];
        for (raw, want) in cases {
            match parse_response(&raw) {
                Err(e) => assert!(
                    e.to_string().contains(want),
                    "{:?}: {e} (want {want:?})",
                    String::from_utf8_lossy(raw.get(..80).unwrap_or(&raw))
                ),
                Ok(r) => panic!("accepted, {} bytes of body; want {want:?}", r.body.len()),
            }
        }
    }

    #[test]
    fn endless_bodies_stop_at_the_cap() {
        let mut r = ResponseReader::default();
        assert!(matches!(r.push(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(None)));
        let block = vec![b'x'; 64 * 1024];
        let mut fed = 0usize;
        let err = loop {
            match r.push(&block) {
                Ok(None) => fed += block.len(),
                Ok(Some(_)) => panic!("a body framed by the close cannot end early"),
                Err(e) => break e,
            }
            assert!(fed <= MAX_BODY, "no error after {fed} bytes");
        };
        assert!(matches!(err, HttpError::BodyTooLarge), "{err}");
        let mut r = ResponseReader::default();
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(r.push(chunked), Ok(None)));
        let one = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
        let err = loop {
            if let Err(e) = r.push(one.as_bytes()) {
                break e;
            }
        };
        assert!(
            err.to_string()
                .contains("the chunked body is longer than 4194304 bytes"),
            "{err}"
        );
    }

    /// Bytes one at a time give what they give in one piece.
    #[test]
    fn split_anywhere() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut r = ResponseReader::default();
        let mut got = None;
        for b in raw.iter() {
            if let Some(resp) = r.push(std::slice::from_ref(b)).expect("parses") {
                got = Some(resp.body);
            }
        }
        assert_eq!(got, Some(b"abcde".to_vec()));
    }
}
