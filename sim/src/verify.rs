//! The device's certificate checks (SPEC §3.5), one flag each, and the rustls
//! verifier that applies them. With every flag off any certificate is accepted (the
//! handshake's signatures are still checked, so the session is still encrypted to the
//! holder of the key). A failed check ends the handshake; the job reports the class.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::prelude::*;

/// Which checks are on (the `smtp.verify.*` settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    pub expiry: bool,
    pub cn: bool,
    pub key_usage: bool,
    pub chain: bool,
    pub revocation: bool,
}

/// A failed check: the error class of SPEC §5 and what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFailure {
    pub class: &'static str,
    pub detail: String,
}

fn failure(class: &'static str, detail: impl Into<String>) -> CertFailure {
    CertFailure {
        class,
        detail: detail.into(),
    }
}

fn when(t: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Whether a certificate name (CN or DNS SAN) matches a host name: exactly, ignoring
/// case, or by a wildcard standing for the one left-most label.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    if let Some(rest) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((label, domain)) => !label.is_empty() && domain.eq_ignore_ascii_case(rest),
            None => false,
        };
    }
    pattern.eq_ignore_ascii_case(host)
}

/// The checks on the server certificate that need nothing but the certificate.
pub fn check_leaf(
    der: &[u8],
    checks: &Checks,
    server: &str,
    now_unix: i64,
) -> Result<(), CertFailure> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
        failure(
            "tls_handshake",
            format!("the server certificate does not parse: {e}"),
        )
    })?;
    if checks.expiry {
        let from = cert.validity().not_before.timestamp();
        let to = cert.validity().not_after.timestamp();
        if now_unix < from || now_unix > to {
            return Err(failure(
                "cert_expired",
                format!(
                    "the server certificate is valid from {} to {}; the device clock says {}",
                    when(from),
                    when(to),
                    when(now_unix)
                ),
            ));
        }
    }
    if checks.cn {
        let host = server.split('%').next().unwrap_or(server);
        let ip: Option<IpAddr> = host.parse().ok();
        let cns: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let mut ok = cns.iter().any(|cn| match ip {
            Some(ip) => cn.parse::<IpAddr>().is_ok_and(|c| c == ip),
            None => name_matches(cn, host),
        });
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            ok |= san.value.general_names.iter().any(|g| match (g, ip) {
                (GeneralName::DNSName(n), None) => name_matches(n, host),
                (GeneralName::IPAddress(b), Some(IpAddr::V4(v4))) => *b == v4.octets().as_slice(),
                (GeneralName::IPAddress(b), Some(IpAddr::V6(v6))) => *b == v6.octets().as_slice(),
                _ => false,
            });
        }
        if !ok {
            return Err(failure(
                "cert_name",
                format!("the server certificate is not for {server:?} (CN {cns:?})"),
            ));
        }
    }
    if checks.key_usage {
        if let Ok(Some(ku)) = cert.key_usage() {
            if !(ku.value.digital_signature() || ku.value.key_encipherment()) {
                return Err(failure(
                    "cert_key_usage",
                    "the server certificate's KeyUsage has neither digitalSignature nor keyEncipherment",
                ));
            }
        }
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            if !(eku.value.server_auth || eku.value.any) {
                return Err(failure(
                    "cert_key_usage",
                    "the server certificate's ExtendedKeyUsage has neither serverAuth nor anyExtendedKeyUsage",
                ));
            }
        }
    }
    Ok(())
}

/// The verifier the device's TLS client uses.
#[derive(Debug)]
pub struct DeviceVerifier {
    pub checks: Checks,
    /// `smtp.server` as typed.
    pub server: String,
    /// The device clock at the handshake, seconds since 1970.
    pub now_unix: i64,
    /// Where the failed check is left for the job to report.
    pub failure: Arc<Mutex<Option<CertFailure>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl DeviceVerifier {
    pub fn new(
        checks: Checks,
        server: &str,
        now_unix: i64,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Self {
        DeviceVerifier {
            checks,
            server: server.to_string(),
            now_unix,
            failure: Arc::new(Mutex::new(None)),
            provider,
        }
    }
}

impl ServerCertVerifier for DeviceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match check_leaf(end_entity, &self.checks, &self.server, self.now_unix) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(f) => {
                let msg = f.detail.clone();
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
                Err(rustls::Error::General(msg))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stand_for_one_left_most_label() {
        assert!(name_matches("*.hil.test", "mx.hil.test"));
        assert!(name_matches("*.HIL.test", "MX.hil.test"));
        assert!(!name_matches("*.hil.test", "a.b.hil.test"));
        assert!(!name_matches("*.hil.test", "hil.test"));
        assert!(name_matches("localhost", "LOCALHOST"));
        assert!(!name_matches("localhost", "localhost2"));
    }
}
