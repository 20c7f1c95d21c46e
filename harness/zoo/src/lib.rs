//! The certificate zoo: generated CAs and server certificates for every check the
//! device makes (SPEC §3.5), deterministic per seed. `keys` makes the keys; `zoo`
//! the certificates, CRLs and the manifest.

pub mod keys;
pub mod ocsp;
pub mod responder;
pub mod zoo;

use std::path::Path;

use serde::Deserialize;

/// The options a zoo folder was generated with, read from its `manifest.toml`.
pub fn options_of(dir: &Path) -> Result<zoo::ZooOptions, String> {
    #[derive(Deserialize)]
    struct Head {
        seed: u64,
        key: String,
        hosts: Vec<String>,
        responder: String,
    }
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let h: Head =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
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
pub fn load(dir: &Path) -> Result<zoo::Zoo, String> {
    let o = options_of(dir)?;
    let z = zoo::build(&o)?;
    for (name, bytes) in &z.files {
        let on_disk = std::fs::read(dir.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
        if &on_disk != bytes {
            return Err(format!(
                "{}: differs from what `hil certs` writes with the manifest's options; regenerate the zoo",
                dir.join(name).display()
            ));
        }
    }
    Ok(z)
}
