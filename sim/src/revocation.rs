//! The revocation check (SPEC §3.5): OCSP first (the certificate's AIA OCSP URL); good
//! passes, revoked fails; no URL, no issuer to ask about, no answer in time, unknown
//! or an error (a bad signature included) → the CRL from the certificate's
//! distribution point: listed fails, not listed passes. Neither answering is a hard
//! fail (`cert_revocation_unknown`), unless the firmware follows the soft-fail variant.

use std::time::Duration;

use der::{Decode, Encode};
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::{
    BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, Request, Version,
};
use x509_parser::prelude::*;

use crate::http::{self, Url};
use crate::resolve::Names;
use crate::stage;
use crate::verify::{CertFailure, Seen};

/// What one source said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Good,
    Revoked,
    /// No answer: the reason, for the error detail.
    None(String),
}

const OID_AIA: &str = "1.3.6.1.5.5.7.1.1";
const OID_OCSP: &str = "1.3.6.1.5.5.7.48.1";

fn ocsp_url(cert: &X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) if e.oid.to_id_string() == OID_AIA => aia
                .accessdescs
                .iter()
                .find_map(|d| match (&d.access_method, &d.access_location) {
                    (m, GeneralName::URI(u)) if m.to_id_string() == OID_OCSP => Some(u.to_string()),
                    _ => None,
                }),
            _ => None,
        })
}

fn crl_url(cert: &X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                points.iter().find_map(|p| match &p.distribution_point {
                    Some(DistributionPointName::FullName(names)) => {
                        names.iter().find_map(|n| match n {
                            GeneralName::URI(u) => Some(u.to_string()),
                            _ => None,
                        })
                    }
                    _ => None,
                })
            }
            _ => None,
        })
}

/// Verifies a signature over `data` with the signer certificate's key (RSA-SHA256,
/// ECDSA-P256-SHA256, Ed25519: what the device supports).
fn verify_with(signer: &[u8], alg_oid: &str, data: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{self, UnparsedPublicKey};
    let Ok((_, cert)) = X509Certificate::from_der(signer) else {
        return false;
    };
    let key = cert.public_key().subject_public_key.data.to_vec();
    let alg: &dyn signature::VerificationAlgorithm = match alg_oid {
        "1.2.840.113549.1.1.11" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.10045.4.3.2" => &signature::ECDSA_P256_SHA256_ASN1,
        "1.3.101.112" => &signature::ED25519,
        _ => return false,
    };
    UnparsedPublicKey::new(alg, key)
        .verify(data, signature)
        .is_ok()
}

/// Asks the OCSP responder about `leaf`, issued by `issuer`.
async fn ask_ocsp(
    url: &str,
    leaf: &[u8],
    issuer: &[u8],
    timeout: Duration,
    names: &Names,
) -> Answer {
    let none = |why: String| Answer::None(format!("OCSP {url}: {why}"));
    let (Ok(leaf_c), Ok(issuer_c)) = (
        x509_cert::Certificate::from_der(leaf),
        x509_cert::Certificate::from_der(issuer),
    ) else {
        return none("the certificates do not parse".into());
    };
    let req = match Request::from_cert::<sha1::Sha1>(&issuer_c, &leaf_c) {
        Ok(r) => r,
        Err(e) => return none(format!("cannot build a request: {e}")),
    };
    let body = match OcspRequestBuilder::new(Version::V1)
        .with_request(req)
        .build()
        .to_der()
    {
        Ok(b) => b,
        Err(e) => return none(format!("cannot encode the request: {e}")),
    };
    let parsed_url = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return none(e.to_string()),
    };
    let resp = match http::request(
        &parsed_url,
        Some(("application/ocsp-request", &body)),
        timeout,
        names,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return none(e.to_string()),
    };
    if resp.status != 200 {
        return none(format!("HTTP {}", resp.status));
    }
    match read_ocsp(&resp.body, &leaf_c, issuer) {
        Answer::None(why) => none(why),
        a => a,
    }
}

/// What an OCSP response (DER, as the responder sent it) says about `leaf`, issued by
/// `issuer` (DER): it must be a successful basic response signed by the issuer, with
/// an answer for the leaf's serial. Any other input is no answer, with the reason.
pub fn read_ocsp(body: &[u8], leaf: &x509_cert::Certificate, issuer: &[u8]) -> Answer {
    let none = |why: &str| Answer::None(why.to_string());
    let Ok(r) = OcspResponse::from_der(body) else {
        return none("the answer is not an OCSP response");
    };
    if r.response_status != OcspResponseStatus::Successful {
        return Answer::None(format!("status {:?}", r.response_status));
    }
    let Some(bytes) = r.response_bytes else {
        return none("no response body");
    };
    let Ok(basic) = BasicOcspResponse::from_der(bytes.response.as_bytes()) else {
        return none("the basic response does not parse");
    };
    let Ok(tbs) = basic.tbs_response_data.to_der() else {
        return none("the response data does not encode");
    };
    let sig = basic.signature.as_bytes().unwrap_or_default();
    // Signed by the issuer itself (the zoo's responders do this); a delegated
    // responder would need its own certificate checked, which this firmware does not do.
    if !verify_with(
        issuer,
        &basic.signature_algorithm.oid.to_string(),
        &tbs,
        sig,
    ) {
        return none("the response is not signed by the certificate's issuer");
    }
    let serial = leaf.tbs_certificate.serial_number.as_bytes();
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|s| s.cert_id.serial_number.as_bytes() == serial);
    match single.map(|s| &s.cert_status) {
        Some(CertStatus::Good(_)) => Answer::Good,
        Some(CertStatus::Revoked(_)) => Answer::Revoked,
        Some(CertStatus::Unknown(_)) => none("unknown"),
        None => none("no answer about this certificate"),
    }
}

/// Fetches the CRL of `leaf` and looks it up.
async fn ask_crl(
    url: &str,
    leaf: &X509Certificate<'_>,
    issuer: Option<&[u8]>,
    now_unix: i64,
    timeout: Duration,
    names: &Names,
) -> Answer {
    let none = |why: String| Answer::None(format!("CRL {url}: {why}"));
    let parsed_url = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return none(e.to_string()),
    };
    let resp = match http::request(&parsed_url, None, timeout, names).await {
        Ok(r) => r,
        Err(e) => return none(e.to_string()),
    };
    if resp.status != 200 {
        return none(format!("HTTP {}", resp.status));
    }
    match read_crl(&resp.body, leaf, issuer, now_unix) {
        Answer::None(why) => none(why),
        a => a,
    }
}

/// What a CRL (DER, as the server sent it) says about `leaf`: it must be the leaf's
/// issuer's, signed by `issuer` (DER) when the device has it, and not stale at
/// `now_unix`; then listed is revoked and not listed is good. Any other input is no
/// answer, with the reason.
pub fn read_crl(
    body: &[u8],
    leaf: &X509Certificate<'_>,
    issuer: Option<&[u8]>,
    now_unix: i64,
) -> Answer {
    let none = |why: &str| Answer::None(why.to_string());
    let Ok((_, crl)) = parse_x509_crl(body) else {
        return none("the answer is not a CRL");
    };
    if crl.issuer().as_raw() != leaf.issuer().as_raw() {
        return none("the CRL is another issuer's");
    }
    if let Some(issuer) = issuer {
        let ok = X509Certificate::from_der(issuer)
            .is_ok_and(|(_, i)| crl.verify_signature(i.public_key()).is_ok());
        if !ok {
            return none("the CRL is not signed by the certificate's issuer");
        }
    }
    if crl.next_update().is_some_and(|n| n.timestamp() < now_unix) {
        return none("the CRL is stale (its nextUpdate has passed)");
    }
    let serial = leaf.raw_serial();
    if crl
        .iter_revoked_certificates()
        .any(|r| r.raw_serial() == serial)
    {
        Answer::Revoked
    } else {
        Answer::Good
    }
}

/// Where a firmware asks about revocation: OCSP, the CRL, or both (SPEC §3.5's
/// reference: OCSP first, then the CRL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub ocsp: bool,
    pub crl: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            ocsp: true,
            crl: true,
        }
    }
}

/// Runs the revocation check on what the handshake saw.
pub async fn check(
    seen: &Seen,
    now_unix: i64,
    timeout: Duration,
    soft_fail: bool,
    sources: Sources,
    names: &Names,
) -> Result<(), CertFailure> {
    let _stage = stage::enter("cert_revocation_unknown", "the revocation check");
    let fail = |class: &'static str, detail: String| CertFailure { class, detail };
    let Ok((_, leaf)) = X509Certificate::from_der(&seen.leaf) else {
        return Err(fail(
            "cert_revocation_unknown",
            "the server certificate does not parse".into(),
        ));
    };
    let mut why = Vec::new();
    match (ocsp_url(&leaf).filter(|_| sources.ocsp), &seen.issuer) {
        (Some(url), Some(issuer)) => match ask_ocsp(&url, &seen.leaf, issuer, timeout, names).await
        {
            Answer::Good => return Ok(()),
            Answer::Revoked => {
                return Err(fail(
                    "cert_revoked",
                    format!("revoked according to OCSP {url}"),
                ))
            }
            Answer::None(w) => why.push(w),
        },
        (Some(url), None) => why.push(format!(
            "OCSP {url}: the device does not have the issuer to ask about"
        )),
        (None, _) if !sources.ocsp => why.push("this firmware does not ask OCSP".into()),
        (None, _) => why.push("no OCSP URL".into()),
    }
    match crl_url(&leaf).filter(|_| sources.crl) {
        Some(url) => match ask_crl(
            &url,
            &leaf,
            seen.issuer.as_deref(),
            now_unix,
            timeout,
            names,
        )
        .await
        {
            Answer::Good => return Ok(()),
            Answer::Revoked => {
                return Err(fail("cert_revoked", format!("listed in the CRL {url}")))
            }
            Answer::None(w) => why.push(w),
        },
        None if !sources.crl => why.push("this firmware does not fetch CRLs".into()),
        None => why.push("no CRL distribution point".into()),
    }
    if soft_fail {
        return Ok(());
    }
    Err(fail(
        "cert_revocation_unknown",
        format!("neither OCSP nor the CRL answered: {}", why.join("; ")),
    ))
}
