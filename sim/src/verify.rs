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
    /// Firmware variant: the name check looks at the CN only.
    pub cn_only: bool,
    /// The expiry check also fails on an expired (or not yet valid) intermediate
    /// in the presented chain (SPEC §3.5 latitude; by default only the server
    /// certificate's dates count).
    pub expired_intermediate: bool,
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
        if let (false, Ok(Some(san))) = (checks.cn_only, cert.subject_alternative_name()) {
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

/// The expiry check on the intermediates presented after the server certificate
/// (the latitude of SPEC §3.5 some firmware takes): each within its validity.
pub fn check_intermediates_dates(presented: &[Vec<u8>], now_unix: i64) -> Result<(), CertFailure> {
    for der in presented {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            continue;
        };
        let from = cert.validity().not_before.timestamp();
        let to = cert.validity().not_after.timestamp();
        if now_unix < from || now_unix > to {
            return Err(failure(
                "cert_expired",
                format!(
                    "the intermediate certificate {} is valid from {} to {}; the device clock says {}",
                    cert.subject(),
                    when(from),
                    when(to),
                    when(now_unix)
                ),
            ));
        }
    }
    Ok(())
}

/// The certificate among `candidates` that issued `cert`: its subject is `cert`'s
/// issuer and its key verifies `cert`'s signature.
pub fn find_issuer<'a>(cert: &X509Certificate<'_>, candidates: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    candidates.iter().map(Vec::as_slice).find(|der| {
        X509Certificate::from_der(der).is_ok_and(|(_, c)| {
            c.subject().as_raw() == cert.issuer().as_raw()
                && cert.verify_signature(Some(c.public_key())).is_ok()
        })
    })
}

fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// SPEC §3.5 chain: the presented chain leads to a certificate in the device's external
/// store, each link signed by the next and each CA a CA. Validity dates are the expiry
/// check's business, not this one's.
pub fn check_chain(presented: &[Vec<u8>], store: &[Vec<u8>]) -> Result<(), CertFailure> {
    let leaf = presented
        .first()
        .ok_or_else(|| failure("cert_chain", "no certificate presented"))?;
    if store.iter().any(|s| s == leaf) {
        return Ok(());
    }
    let intermediates = presented.get(1..).unwrap_or(&[]);
    let mut current = leaf.clone();
    for _ in 0..8 {
        let (_, cert) = X509Certificate::from_der(&current).map_err(|e| {
            failure(
                "cert_chain",
                format!("a certificate of the chain does not parse: {e}"),
            )
        })?;
        if let Some(anchor) = find_issuer(&cert, store) {
            let ok = X509Certificate::from_der(anchor).is_ok_and(|(_, a)| is_ca(&a));
            return if ok {
                Ok(())
            } else {
                Err(failure(
                    "cert_chain",
                    "the certificate in the store that signed the chain is not a CA",
                ))
            };
        }
        let Some(next) = find_issuer(&cert, intermediates) else {
            return Err(failure(
                "cert_chain",
                format!(
                    "no path from the server certificate to the external certificate store (stuck at {})",
                    cert.issuer()
                ),
            ));
        };
        let ca_ok = X509Certificate::from_der(next).is_ok_and(|(_, n)| is_ca(&n));
        if !ca_ok {
            return Err(failure(
                "cert_chain",
                "a certificate that signs the chain is not a CA",
            ));
        }
        current = next.to_vec();
    }
    Err(failure(
        "cert_chain",
        "the chain is longer than 8 certificates",
    ))
}

/// What the handshake saw, for the revocation check that runs after it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub leaf: Vec<u8>,
    /// The leaf's issuer, if the device has it (presented or in the store).
    pub issuer: Option<Vec<u8>>,
}

/// The verifier the device's TLS client uses.
#[derive(Debug)]
pub struct DeviceVerifier {
    pub checks: Checks,
    /// `smtp.server` as typed.
    pub server: String,
    /// The device clock at the handshake, seconds since 1970.
    pub now_unix: i64,
    /// The external certificate store (DER).
    pub store: Arc<Vec<Vec<u8>>>,
    /// Where the failed check is left for the job to report.
    pub failure: Arc<Mutex<Option<CertFailure>>>,
    /// What the handshake presented.
    pub seen: Arc<Mutex<Seen>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl DeviceVerifier {
    pub fn new(
        checks: Checks,
        server: &str,
        now_unix: i64,
        store: Arc<Vec<Vec<u8>>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Self {
        DeviceVerifier {
            checks,
            server: server.to_string(),
            now_unix,
            store,
            failure: Arc::new(Mutex::new(None)),
            seen: Arc::new(Mutex::new(Seen::default())),
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
        let presented: Vec<Vec<u8>> = std::iter::once(end_entity.to_vec())
            .chain(_intermediates.iter().map(|c| c.to_vec()))
            .collect();
        let issuer = X509Certificate::from_der(end_entity)
            .ok()
            .and_then(|(_, leaf)| {
                let mut candidates = presented.get(1..).unwrap_or(&[]).to_vec();
                candidates.extend(self.store.iter().cloned());
                find_issuer(&leaf, &candidates).map(<[u8]>::to_vec)
            });
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen {
            leaf: end_entity.to_vec(),
            issuer,
        };
        let result = check_leaf(end_entity, &self.checks, &self.server, self.now_unix)
            .and_then(|()| {
                if self.checks.expiry && self.checks.expired_intermediate {
                    check_intermediates_dates(presented.get(1..).unwrap_or(&[]), self.now_unix)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| {
                if self.checks.chain {
                    check_chain(&presented, &self.store)
                } else {
                    Ok(())
                }
            });
        match result {
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
