//! The device's download service for the URL modes of server load reduction (SPEC §4):
//! a scan kept on the device and served over HTTP at the URL the mail carries, until
//! it expires. A small blocking HTTP server on a thread of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most bytes kept for download; the oldest files go first.
pub const MAX_STORED: usize = 512 * 1024 * 1024;

struct Stored {
    token: String,
    name: String,
    bytes: Arc<Vec<u8>>,
    expires: Instant,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({})", self.addr)
    }
}

/// Why the download service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("download service on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The running download service.
pub struct FileStore {
    files: Mutex<Vec<Stored>>,
    addr: SocketAddr,
}

impl FileStore {
    /// Listens on `bind` (port 0: any free port) and serves until the process ends.
    pub fn start(bind: &str) -> Result<Arc<FileStore>, FilesError> {
        let listener = TcpListener::bind(bind).map_err(|source| FilesError::Bind {
            bind: bind.into(),
            source,
        })?;
        let store = Arc::new(FileStore {
            files: Mutex::new(Vec::new()),
            addr: listener.local_addr()?,
        });
        let s = Arc::clone(&store);
        std::thread::Builder::new()
            .name("downloads".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || s.serve(conn));
                }
            })?;
        Ok(store)
    }

    /// Keeps `bytes` as `name` for `ttl` of wall time; answers its URL.
    pub fn put(&self, token: &str, name: &str, bytes: Vec<u8>, ttl: Duration) -> String {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        files.retain(|f| f.expires > now);
        let mut total: usize = files.iter().map(|f| f.bytes.len()).sum();
        while total + bytes.len() > MAX_STORED && !files.is_empty() {
            total -= files.remove(0).bytes.len();
        }
        files.push(Stored {
            token: token.to_string(),
            name: name.to_string(),
            bytes: Arc::new(bytes),
            expires: now + ttl,
        });
        format!("http://{}/scan/{token}/{name}", self.addr)
    }

    fn find(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        let rest = path.strip_prefix("/scan/")?;
        let (token, name) = rest.split_once('/')?;
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        files
            .iter()
            .find(|f| f.token == token && f.name == name && f.expires > now)
            .map(|f| Arc::clone(&f.bytes))
    }

    fn serve(&self, mut s: TcpStream) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&b[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head);
        let mut first = text.lines().next().unwrap_or("").split_whitespace();
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let answer = match (method, self.find(path)) {
            ("GET", Some(bytes)) => {
                let h = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = s.write_all(h.as_bytes()).and_then(|_| s.write_all(&bytes));
                return;
            }
            ("GET", None) => {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            _ => {
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
        };
        let _ = s.write_all(answer.as_bytes());
    }
}
