//! The certificate zoo: generated CAs and server certificates for every check the
//! device makes (SPEC §3.5), deterministic per seed. `keys` makes the keys; `zoo`
//! the certificates, CRLs and the manifest; `ocsp` answers OCSP requests and
//! `responder` serves OCSP and CRLs over HTTP, with scripted faults.

pub mod keys;
pub mod ocsp;
pub mod responder;
pub mod served;
pub mod zoo;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a zoo folder cannot be served: its manifest cannot be read, or its files are
/// not what the manifest's options generate. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {}", path.display(), .source.message())]
    Manifest {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(transparent)]
    KeyKind(#[from] keys::UnknownKeyKind),
    #[error(transparent)]
    Build(#[from] zoo::ZooError),
    #[error("{}: differs from what `hil certs` writes with the manifest's options; regenerate the zoo", path.display())]
    Differs { path: PathBuf },
}

/// The options a zoo folder was generated with, read from its `manifest.toml`.
pub fn options_of(dir: &Path) -> Result<zoo::ZooOptions, LoadError> {
    #[derive(Deserialize)]
    struct Head {
        seed: u64,
        key: String,
        hosts: Vec<String>,
        responder: String,
    }
    let path = dir.join("manifest.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(source) => return Err(LoadError::Read { path, source }),
    };
    let h: Head = match toml::from_str(&text) {
        Ok(h) => h,
        Err(source) => return Err(LoadError::Manifest { path, source }),
    };
    Ok(zoo::ZooOptions {
        key: keys::KeyKind::parse(&h.key)?,
        seed: h.seed,
        hosts: h.hosts,
        responder: h.responder,
    })
}

/// The listening address in a zoo's responder URL (`http://IP:PORT[/…]`), if it has one.
pub fn responder_addr(url: &str) -> Option<std::net::SocketAddr> {
    url.strip_prefix("http://")
        .map(|r| r.split('/').next().unwrap_or(r))
        .and_then(|h| h.parse().ok())
}

/// Rebuilds the zoo of `dir` in memory (keys included) and checks that the folder
/// holds exactly what that rebuild writes, so the responder answers for these files.
pub fn load(dir: &Path) -> Result<zoo::Zoo, LoadError> {
    let o = options_of(dir)?;
    let z = zoo::build(&o)?;
    for (name, bytes) in &z.files {
        let path = dir.join(name);
        let on_disk = match std::fs::read(&path) {
            Ok(b) => b,
            Err(source) => return Err(LoadError::Read { path, source }),
        };
        if &on_disk != bytes {
            return Err(LoadError::Differs { path });
        }
    }
    Ok(z)
}
