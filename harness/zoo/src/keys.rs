//! Keys for the certificate zoo, drawn from a seeded generator so that the same seed
//! gives byte-identical files. Every signature they make is deterministic too: RSA
//! PKCS#1 v1.5, Ed25519, and ECDSA with RFC 6979 nonces. They sign certificates and
//! CRLs (through rcgen's `SigningKey`) and OCSP responses (through `signature::Signer`).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key algorithms `hil certs --key` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    Rsa2048,
    EcdsaP256,
    Ed25519,
}

/// A key algorithm `hil certs --key` does not offer (or a manifest names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--key {0:?}: one of rsa2048, ecdsa-p256, ed25519")]
pub struct UnknownKeyKind(pub String);

/// A key that could not be made or encoded; names the algorithm and the key's role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} key for {role}: {detail}", .kind.name())]
pub struct KeyError {
    pub kind: KeyKind,
    pub role: String,
    /// What the key library said.
    pub detail: String,
}

impl KeyKind {
    pub fn parse(s: &str) -> Result<KeyKind, UnknownKeyKind> {
        match s {
            "rsa2048" => Ok(KeyKind::Rsa2048),
            "ecdsa-p256" => Ok(KeyKind::EcdsaP256),
            "ed25519" => Ok(KeyKind::Ed25519),
            other => Err(UnknownKeyKind(other.to_string())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa2048",
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

#[derive(Clone)]
enum Inner {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A zoo key: its private half, its public key as rcgen wants it, and its PKCS#8.
#[derive(Clone)]
pub struct ZooKey {
    inner: Inner,
    public_der: Vec<u8>,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ZooKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZooKey({})", self.kind().name())
    }
}

/// A generator for the key called `role` under `seed`: roles get independent keys.
fn rng(seed: u64, role: &str) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"hil certificate zoo");
    h.update(seed.to_be_bytes());
    h.update(role.as_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// The keys made so far in this process: an RSA key takes a tenth of a second, and a
/// zoo re-signed for another responder address (or loaded, then served) reuses them.
type Made = std::collections::HashMap<(KeyKind, u64, String), ZooKey>;

fn made() -> std::sync::MutexGuard<'static, Made> {
    static MADE: std::sync::OnceLock<std::sync::Mutex<Made>> = std::sync::OnceLock::new();
    MADE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl ZooKey {
    /// The key of `role` under `seed` (made once per process, then remembered).
    pub fn generate(kind: KeyKind, seed: u64, role: &str) -> Result<ZooKey, KeyError> {
        let id = (kind, seed, role.to_string());
        if let Some(k) = made().get(&id) {
            return Ok(k.clone());
        }
        let k = Self::fresh(kind, seed, role)?;
        made().insert(id, k.clone());
        Ok(k)
    }

    fn fresh(kind: KeyKind, seed: u64, role: &str) -> Result<ZooKey, KeyError> {
        use p256::pkcs8::EncodePrivateKey as _;
        let mut rng = rng(seed, role);
        let err = |e: &dyn std::fmt::Display| KeyError {
            kind,
            role: role.to_string(),
            detail: e.to_string(),
        };
        match kind {
            KeyKind::Rsa2048 => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| err(&e))?;
                let public_der = key
                    .to_public_key()
                    .to_pkcs1_der()
                    .map_err(|e| err(&e))?
                    .as_bytes()
                    .to_vec();
                let pkcs8 = key.to_pkcs8_der().map_err(|e| err(&e))?.as_bytes().to_vec();
                Ok(ZooKey {
                    inner: Inner::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(key))),
                    public_der,
                    pkcs8,
                })
            }
            KeyKind::EcdsaP256 => {
                let secret = p256::SecretKey::random(&mut rng);
                let public_der = secret.public_key().to_sec1_bytes().to_vec();
                let pkcs8 = secret
                    .to_pkcs8_der()
                    .map_err(|e| err(&e))?
                    .as_bytes()
                    .to_vec();
                Ok(ZooKey {
                    inner: Inner::P256(p256::ecdsa::SigningKey::from(secret)),
                    public_der,
                    pkcs8,
                })
            }
            KeyKind::Ed25519 => {
                let mut bytes = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rng, &mut bytes);
                let key = ed25519_dalek::SigningKey::from_bytes(&bytes);
                let public_der = key.verifying_key().to_bytes().to_vec();
                // PKCS#8 v1 (no public key inside): OpenSSL 3.0 reads only that form.
                let v1 = ed25519_dalek::pkcs8::KeypairBytes {
                    secret_key: key.to_bytes(),
                    public_key: None,
                };
                let pkcs8 = v1.to_pkcs8_der().map_err(|e| err(&e))?.as_bytes().to_vec();
                Ok(ZooKey {
                    inner: Inner::Ed25519(key),
                    public_der,
                    pkcs8,
                })
            }
        }
    }

    pub fn kind(&self) -> KeyKind {
        match self.inner {
            Inner::Rsa(_) => KeyKind::Rsa2048,
            Inner::P256(_) => KeyKind::EcdsaP256,
            Inner::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The private key as PKCS#8 PEM.
    pub fn pkcs8_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// Signs `msg` (deterministically) as its signature algorithm wants.
    pub fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        use signature::{SignatureEncoding, Signer};
        match &self.inner {
            Inner::Rsa(k) => k.sign(msg).to_vec(),
            Inner::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            Inner::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }
}

impl PublicKeyData for ZooKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_der
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self.inner {
            Inner::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            Inner::P256(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Inner::Ed25519(_) => &rcgen::PKCS_ED25519,
        }
    }
}

impl SigningKey for ZooKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.sign_bytes(msg))
    }
}

/// PEM armour with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_key_and_signature_for_every_kind() {
        for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa2048] {
            let a = ZooKey::generate(kind, 7, "root").unwrap();
            let b = ZooKey::generate(kind, 7, "root").unwrap();
            let c = ZooKey::generate(kind, 8, "root").unwrap();
            let d = ZooKey::generate(kind, 7, "leaf").unwrap();
            assert_eq!(a.pkcs8_der(), b.pkcs8_der(), "{kind:?}");
            assert_ne!(a.pkcs8_der(), c.pkcs8_der(), "{kind:?}");
            assert_ne!(a.pkcs8_der(), d.pkcs8_der(), "{kind:?}");
            assert_eq!(a.sign_bytes(b"tbs"), b.sign_bytes(b"tbs"), "{kind:?}");
        }
    }
}
