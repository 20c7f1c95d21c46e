//! Server-side TLS for the fake servers: load a certificate chain and key (by zoo name
//! from the certificates folder, or by PEM paths), build a rustls server config, and
//! describe a finished handshake for the transcript.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// Which certificate a TLS listener presents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CertSpec {
    /// A name from the certificate zoo: `CERTS/NAME.crt` (the chain, leaf first) and
    /// `CERTS/NAME.key` (its private key), both PEM.
    Zoo(String),
    /// Explicit PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

impl CertSpec {
    /// A short name for transcripts.
    pub fn label(&self) -> String {
        match self {
            CertSpec::Zoo(n) => n.clone(),
            CertSpec::Files { cert, .. } => cert.display().to_string(),
        }
    }

    /// The certificate and key paths, relative names resolved against `certs_dir`
    /// (zoo names) or `base` (explicit files, relative to the scenario file).
    pub fn paths(&self, certs_dir: &Path, base: &Path) -> (PathBuf, PathBuf) {
        match self {
            CertSpec::Zoo(n) => (
                certs_dir.join(format!("{n}.crt")),
                certs_dir.join(format!("{n}.key")),
            ),
            CertSpec::Files { cert, key } => (base.join(cert), base.join(key)),
        }
    }
}

/// A loaded certificate chain and key, ready to serve.
#[derive(Clone)]
pub struct Identity {
    pub label: String,
    pub config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.label)
    }
}

impl Identity {
    /// The same certificate and key, its handshakes' secrets given to `log` (for a
    /// packet capture that a reader can decrypt: `hil run --capture`).
    pub fn with_key_log(&self, log: Arc<dyn rustls::KeyLog>) -> Identity {
        let mut config = (*self.config).clone();
        config.key_log = log;
        Identity {
            label: self.label.clone(),
            config: Arc::new(config),
        }
    }
}

/// The TLS secrets of the connections served, as NSS key-log lines
/// (`CLIENT_RANDOM <hex> <hex>`, `SERVER_TRAFFIC_SECRET_0 <hex> <hex>`, …), kept in
/// memory until taken: they are written nowhere but where the taker puts them. At most
/// [`KeyLogLines::MAX`] lines are kept between takes.
#[derive(Debug, Default)]
pub struct KeyLogLines {
    lines: std::sync::Mutex<Vec<String>>,
}

impl KeyLogLines {
    /// The most lines kept between two takes (a handshake logs five at most).
    pub const MAX: usize = 10_000;

    /// The lines logged since the last take.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl rustls::KeyLog for KeyLogLines {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() < Self::MAX {
            lines.push(format!("{label} {} {}", hex(client_random), hex(secret)));
        }
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// The crypto provider of every TLS config in the harness.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a certificate chain and key cannot serve TLS; each names the file (or the
/// certificate's label) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate {}: cannot read: {source}", path.display())]
    CannotReadCertificate {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("certificate {}: not PEM: {source}", path.display())]
    NotPem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("certificate {}: no CERTIFICATE block", path.display())]
    NoCertificate { path: PathBuf },
    #[error("key {}: cannot read a private key: {source}", path.display())]
    CannotReadKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("TLS versions: {0}")]
    Versions(rustls::Error),
    #[error("certificate {label}: rejected by TLS: {source}")]
    Rejected {
        label: String,
        source: rustls::Error,
    },
}

/// Loads PEM files into a server identity; errors name the file and the problem.
pub fn load(label: &str, cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|source| TlsError::CannotReadCertificate {
            path: cert.to_path_buf(),
            source,
        })?
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::NotPem {
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::CannotReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    from_der(label, chain, key)
}

/// Builds a server identity from DER.
pub fn from_der(
    label: &str,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Identity, TlsError> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rejected {
            label: label.to_string(),
            source,
        })?;
    Ok(Identity {
        label: label.to_string(),
        config: Arc::new(config),
    })
}

/// What a finished handshake agreed on, for the transcript and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    pub version: String,
    pub cipher: String,
    /// The server name the client asked for (many printers send none).
    pub sni: Option<String>,
    /// The certificate shown (zoo name or file).
    pub certificate: String,
}

impl TlsFacts {
    pub fn of(conn: &rustls::ServerConnection, certificate: &str) -> TlsFacts {
        TlsFacts {
            version: conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "?".into()),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_else(|| "?".into()),
            sni: conn.server_name().map(str::to_string),
            certificate: certificate.to_string(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "TLS established: {} {}, certificate {}, SNI {}",
            self.version,
            self.cipher,
            self.certificate,
            self.sni.as_deref().unwrap_or("none")
        )
    }
}

/// Knobs that switch off certificate checks, for probes that test the servers'
/// behaviour rather than their certificates. Visible as `danger::` at every use.
pub mod danger {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts any server certificate (signatures are still checked).
    #[derive(Debug)]
    pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A client config that accepts any certificate, for the given TLS versions.
    pub fn client_config_accepting_any(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
        let provider = super::provider();
        Ok(Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(versions)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth(),
        ))
    }
}
