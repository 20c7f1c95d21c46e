//! A small HTTP/1.1 client for the device's revocation checks (OCSP POST, CRL GET):
//! one request per connection, bounded in time and size.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resolve::{resolve, ResolveError};

/// Largest response body the device accepts.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

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
}

impl Url {
    /// Reads `http://HOST[:PORT]/PATH` (an IPv6 host in brackets).
    pub fn parse(url: &str) -> Result<Url, UrlError> {
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
    #[error("chunked body without a chunk size line")]
    NoSizeLine,
    #[error("bad chunk size {0:?}")]
    BadSize(String),
    #[error("truncated or oversized chunk")]
    Truncated,
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
    #[error("the answer is too large")]
    TooLarge,
    #[error("the answer has no end of headers")]
    NoEndOfHeaders,
    #[error("bad status line {0:?}")]
    BadStatusLine(String),
    #[error(transparent)]
    Chunked(#[from] ChunkError),
    #[error("no answer within {secs:.1}s", secs = .0.as_secs_f64())]
    Timeout(Duration),
}

fn decode_chunked(mut b: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(ChunkError::NoSizeLine)?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ChunkError::BadSize(size_text.to_string()))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 || out.len() + size > MAX_BODY {
            return Err(ChunkError::Truncated);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Sends one request (a POST when `body` is given) and reads the whole answer, all
/// within `timeout`.
pub async fn request(
    url: &Url,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
    fixed: &[(String, std::net::IpAddr)],
) -> Result<Response, HttpError> {
    let work = async {
        let addrs = resolve(&url.host, url.port, fixed).await?;
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
        s.write_all(&req).await?;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
            if raw.len() > MAX_BODY + 16 * 1024 {
                return Err(HttpError::TooLarge);
            }
        }
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(HttpError::NoEndOfHeaders)?;
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                HttpError::BadStatusLine(head.lines().next().unwrap_or("").to_string())
            })?;
        let chunked = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
            })
        });
        let rest = &raw[head_end + 4..];
        let body = if chunked {
            decode_chunked(rest)?
        } else {
            rest.to_vec()
        };
        Ok(Response { status, body })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
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
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            decode_chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            Ok(b"abcde".to_vec())
        );
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"10\r\nab").is_err());
    }
}
