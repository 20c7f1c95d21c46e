//! A zoo served where its certificates point, wherever the responder listens: the
//! responder takes the address it is given (or a free port), and the zoo's server
//! certificates are re-signed for that address when the folder names another. The
//! CAs, their keys and CRLs do not name the responder, so a device's trust anchor is
//! the same whatever the port. Re-signed zoos are written under a cache folder, one
//! per content, so two runs on one host each get their own responder and their own
//! certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::responder::{Responder, ResponderError, RevocationFault};
use crate::{load, options_of, responder_addr, zoo, LoadError};

/// Re-signed zoos not used for this long are removed when another is written.
const CACHE_KEEP: Duration = Duration::from_secs(24 * 3600);

/// Why a zoo cannot be served; names the folder, address or file.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Build(#[from] zoo::ZooError),
    #[error(transparent)]
    Responder(#[from] ResponderError),
    #[error(
        "the zoo's responder {0:?} is not http://IP:PORT: give the address to listen on \
         (hil run --responder IP:PORT)"
    )]
    NoAddress(String),
    #[error("the zoo cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A zoo's responder, running, and the folder of certificates that point at it.
pub struct Served {
    pub responder: Responder,
    /// The zoo to serve to the device: the folder given, or its re-signed copy.
    pub dir: PathBuf,
    /// The responder's base URL, as the certificates in `dir` name it.
    pub url: String,
}

/// The base URL of a responder listening on `addr`.
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Serves the zoo of `src`: the responder on `bind` (default: the host of the
/// manifest's responder URL, on a free port), and the zoo's certificates re-signed for
/// that address under `cache` unless they already point there.
pub async fn serve(
    src: &Path,
    bind: Option<SocketAddr>,
    cache: &Path,
    time_scale: f64,
    fault: RevocationFault,
) -> Result<Served, ServeError> {
    let zoo = load(src)?;
    let bind = match bind {
        Some(b) => b,
        None => {
            let url = &zoo.manifest.responder;
            let mut a = responder_addr(url).ok_or_else(|| ServeError::NoAddress(url.clone()))?;
            a.set_port(0);
            a
        }
    };
    let responder = Responder::start_with(bind, zoo, time_scale, fault).await?;
    let url = url_of(responder.addr());
    let dir = for_url(src, &url, cache)?;
    Ok(Served {
        responder,
        dir,
        url,
    })
}

/// The zoo of `src` with its certificates pointing at the responder `url`: `src`
/// itself when they already do, else a re-signed copy under `cache` (written once per
/// content, reused after).
pub fn for_url(src: &Path, url: &str, cache: &Path) -> Result<PathBuf, ServeError> {
    let mut o = options_of(src)?;
    if o.responder.trim_end_matches('/') == url.trim_end_matches('/') {
        return Ok(src.to_path_buf());
    }
    o.responder = url.trim_end_matches('/').to_string();
    let z = zoo::build(&o)?;
    let mut h = Sha256::new();
    for (name, bytes) in &z.files {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let digest = h.finalize();
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = cache.join(format!("zoo-{id}"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServeError::Cache { path, source }
    };
    if holds(&dir, &z.files) {
        // Used again: not old, whatever its age.
        if let Ok(f) = std::fs::File::open(&dir) {
            let _ = f.set_modified(SystemTime::now());
        }
        return Ok(dir);
    }
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    prune(cache);
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = cache.join(format!(".tmp-{id}-{}-{nonce}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for (name, bytes) in &z.files {
        let path = tmp.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another run wrote the same zoo at the same moment: use its copy.
        if !holds(&dir, &z.files) {
            return Err(io(&dir)(e));
        }
    }
    Ok(dir)
}

/// Whether `dir` holds exactly `files`.
fn holds(dir: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) -> bool {
    files
        .iter()
        .all(|(name, bytes)| std::fs::read(dir.join(name)).is_ok_and(|b| &b == bytes))
}

/// Removes the re-signed zoos (and abandoned half-written ones) not used for a day.
fn prune(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("zoo-") || name.starts_with(".tmp-")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > CACHE_KEEP);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The cache folder for re-signed zoos: `$XDG_CACHE_HOME/hil/zoo`, else
/// `$HOME/.cache/hil/zoo`, else `hil-zoo-cache` in the temporary folder.
pub fn default_cache() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = env("XDG_CACHE_HOME") {
        return x.join("hil/zoo");
    }
    if let Some(h) = env("HOME") {
        return h.join(".cache/hil/zoo");
    }
    std::env::temp_dir().join("hil-zoo-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
    }

    #[test]
    fn a_zoo_already_pointing_there_is_served_as_it_is() {
        let cache = std::env::temp_dir().join(format!("hil-zoo-same-{}", std::process::id()));
        let src = shipped();
        let url = options_of(&src).expect("manifest").responder;
        assert_eq!(for_url(&src, &url, &cache).expect("zoo"), src);
        assert!(!cache.exists(), "nothing written");
    }

    #[test]
    fn a_resigned_zoo_keeps_its_cas_points_at_the_new_address_and_is_cached() {
        let cache = std::env::temp_dir().join(format!("hil-zoo-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let src = shipped();
        let url = "http://127.0.0.1:40123";
        let dir = for_url(&src, url, &cache).expect("re-signed");
        assert!(dir.starts_with(&cache), "{}", dir.display());
        // The CAs and their CRLs do not name the responder: a device's trust anchor
        // is the same.
        for f in [
            "root.crt",
            "intermediate.crt",
            "root.crl",
            "intermediate.crl",
        ] {
            assert_eq!(
                std::fs::read(src.join(f)).expect("src"),
                std::fs::read(dir.join(f)).expect("copy"),
                "{f}"
            );
        }
        let o = options_of(&dir).expect("manifest of the copy");
        assert_eq!(o.responder, url);
        let manifest = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
        assert!(manifest.contains("http://127.0.0.1:40123/ocsp"));
        assert!(!manifest.contains(":8099"), "{manifest}");
        // It loads (the files are what its manifest generates) and the same address
        // gives the same folder, written once.
        load(&dir).expect("a whole zoo");
        let t = std::fs::metadata(dir.join("valid.crt"))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(for_url(&src, url, &cache).expect("again"), dir);
        let t2 = std::fs::metadata(dir.join("valid.crt"))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(t, t2, "reused, not rewritten");
        // Another address, another folder; a damaged copy is rewritten.
        let other = for_url(&src, "http://127.0.0.1:40124", &cache).expect("other");
        assert_ne!(other, dir);
        std::fs::write(dir.join("valid.crt"), b"damaged").expect("damage");
        assert_eq!(for_url(&src, url, &cache).expect("rewritten"), dir);
        load(&dir).expect("whole again");
        let _ = std::fs::remove_dir_all(&cache);
    }
}
