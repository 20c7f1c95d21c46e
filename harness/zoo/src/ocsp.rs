//! The harness's OCSP responder (RFC 6960) for the certificate zoo.
//!
//! [`respond`] turns a DER `OCSPRequest` (as POSTed with Content-Type
//! `application/ocsp-request`) into a DER `OCSPResponse`, signed directly by the key of the
//! CA that issued the certificates asked about (RFC 6960 §2.6: the CA itself is an
//! authorized responder, so no delegated OCSP signing certificate is needed). Which state
//! each certificate is in is the caller's business: it is asked through a callback. A
//! `signer` override makes another CA sign the answer instead, for the "response signed by
//! the wrong key" fault. [`request`] builds requests for tests and probes.
//!
//! Nothing in here panics on what a client sends: a request that does not parse gets a
//! bare `malformedRequest`, and anything that goes wrong afterwards a bare `internalError`.

use std::sync::atomic::{AtomicU64, Ordering};

use der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, Request, ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use super::keys::{KeyKind, ZooKey};

/// An issuer the responder answers for: its certificate (DER) and its key.
#[derive(Debug, Clone, Copy)]
pub struct OcspIssuer<'a> {
    pub cert_der: &'a [u8],
    pub key: &'a ZooKey,
}

/// What the responder says of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertState {
    Good,
    Revoked { at: time::OffsetDateTime },
    Unknown,
}

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// How long a response stays fresh: nextUpdate = thisUpdate + this.
/// How long a response stays fresh: twenty years, so a device whose clock was set
/// anywhere in the zoo's validity (2025–2045) accepts it.
pub const VALIDITY: time::Duration = time::Duration::days(7305);

/// Why an OCSP request could not be built (or a response signed); names the part.
/// [`respond`] never shows it: a client gets `internalError`.
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    /// A certificate, name, hash, nonce, request or response that does not encode or
    /// decode; `what` names it.
    #[error("{what}: {source}")]
    Der {
        what: &'static str,
        source: der::Error,
    },
    #[error("nonce extension: {0}")]
    NonceExtension(x509_ocsp::builder::Error),
    #[error("signature algorithm: {0}")]
    SignatureAlgorithm(spki::Error),
    #[error("signing: {0}")]
    Signing(signature::Error),
    #[error("year {year}: {source}")]
    Year {
        year: i32,
        source: std::num::TryFromIntError,
    },
    #[error("time {time}: {source}")]
    Time {
        time: time::OffsetDateTime,
        source: der::Error,
    },
    #[error("{now} + {}", VALIDITY)]
    TimeOverflow { now: time::OffsetDateTime },
    #[error("issuer index out of range")]
    IssuerIndex,
}

/// `OcspError::Der` for `what`, as a `map_err` argument.
fn der_error(what: &'static str) -> impl Fn(der::Error) -> OcspError {
    move |source| OcspError::Der { what, source }
}

/// A signature made by a [`ZooKey`], as the OCSP builders want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for ZooSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

/// Bridges a [`ZooKey`] to `signature::Signer` and `spki::DynSignatureAlgorithmIdentifier`,
/// so x509-ocsp's builders (and [`respond`]) can sign with it.
#[derive(Debug, Clone, Copy)]
pub struct ZooSigner<'a>(pub &'a ZooKey);

impl signature::Signer<ZooSignature> for ZooSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<ZooSignature, signature::Error> {
        Ok(ZooSignature(self.0.sign_bytes(msg)))
    }
}

impl DynSignatureAlgorithmIdentifier for ZooSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(match self.0.kind() {
            KeyKind::Rsa2048 => AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(der::Any::null()),
            },
            KeyKind::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            KeyKind::Ed25519 => AlgorithmIdentifierOwned {
                oid: ID_ED25519,
                parameters: None,
            },
        })
    }
}

/// A whole `OCSPResponse` with only a status (no responseBytes), written out by hand so
/// that it cannot fail: SEQUENCE { ENUMERATED status }.
fn status_only(status: OcspResponseStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

/// Answers an OCSP request (DER, as POSTed with Content-Type application/ocsp-request).
///
/// For each request entry the issuer is the one whose key hash (the CertID's hash of the
/// issuer's subjectPublicKey BIT STRING contents; SHA-1, SHA-256, SHA-384 and SHA-512
/// CertIDs are understood) matches, preferring one whose name hash matches too; then
/// `state(issuer_index, serial_bytes)` says what to answer (serial as unsigned big-endian
/// bytes without leading zeros). Entries for issuers we do not know are answered
/// `unknown`. The CertIDs are echoed as the client sent them.
///
/// The response is signed directly by the issuer of the first entry we know the issuer of
/// (responderID byName = its subject, and its certificate in `certs`); thisUpdate = `now`,
/// nextUpdate = `now` + [`VALIDITY`], producedAt = `now`; the request's nonce extension, if any,
/// is echoed byte for byte. `signer` overrides who signs (the "wrong signer" fault): that
/// issuer's key, name and certificate, while still answering about the real certificates.
///
/// A request that does not parse (or has no entries) gets `malformedRequest` (1) with no
/// body; a request none of whose entries names an issuer we know gets `unauthorized` (6);
/// any failure after that (an issuer certificate that does not parse, a time that cannot
/// be encoded) gets `internalError` (2).
pub fn respond(
    request_der: &[u8],
    issuers: &[OcspIssuer<'_>],
    state: &dyn Fn(usize, &[u8]) -> CertState,
    signer: Option<&OcspIssuer<'_>>,
    now: time::OffsetDateTime,
) -> Vec<u8> {
    let req = match OcspRequest::from_der(request_der) {
        Ok(r) if !r.tbs_request.request_list.is_empty() => r,
        _ => return status_only(OcspResponseStatus::MalformedRequest),
    };
    match answer(&req, issuers, state, signer, now) {
        Ok(Some(der)) => der,
        Ok(None) => status_only(OcspResponseStatus::Unauthorized),
        Err(_) => status_only(OcspResponseStatus::InternalError),
    }
}

/// An issuer certificate, parsed, with what CertIDs are matched against.
struct Known {
    cert: Certificate,
    name_der: Vec<u8>,
}

/// Digest of `data` with the CertID hash algorithm `alg`, if we know it.
fn digest(alg: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    match *alg {
        ID_SHA1 => Some(Sha1::digest(data).to_vec()),
        ID_SHA256 => Some(Sha256::digest(data).to_vec()),
        ID_SHA384 => Some(Sha384::digest(data).to_vec()),
        ID_SHA512 => Some(Sha512::digest(data).to_vec()),
        _ => None,
    }
}

/// The index of the issuer a CertID names, if any.
fn find_issuer(id: &CertId, known: &[Known]) -> Option<usize> {
    let alg = &id.hash_algorithm.oid;
    let key_matches = |k: &Known| {
        let spk = k
            .cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        digest(alg, spk).is_some_and(|h| h.as_slice() == id.issuer_key_hash.as_bytes())
    };
    let name_matches = |k: &Known| {
        digest(alg, &k.name_der).is_some_and(|h| h.as_slice() == id.issuer_name_hash.as_bytes())
    };
    known
        .iter()
        .position(|k| key_matches(k) && name_matches(k))
        .or_else(|| known.iter().position(key_matches))
}

/// The serial as unsigned big-endian bytes without leading zero bytes (at least one byte).
fn serial_bytes(s: &SerialNumber) -> &[u8] {
    let b = s.as_bytes();
    let zeros = b.iter().take_while(|&&x| x == 0).count();
    match b.get(zeros..) {
        Some(rest) if !rest.is_empty() => rest,
        _ => b.get(b.len().saturating_sub(1)..).unwrap_or(b),
    }
}

/// `t` as an OCSP GeneralizedTime (UTC, whole seconds).
fn gtime(t: time::OffsetDateTime) -> Result<OcspGeneralizedTime, OcspError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(t.year()).map_err(|source| OcspError::Year {
        year: t.year(),
        source,
    })?;
    let dt = der::DateTime::new(
        year,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .map_err(|source| OcspError::Time { time: t, source })?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

/// Signs `tbs` the way `OcspResponseBuilder::sign` does, and wraps it in a successful
/// `OCSPResponse`.
fn sign_response<S, Sig>(
    signer: &S,
    tbs: ResponseData,
    certs: Option<Vec<Certificate>>,
) -> Result<OcspResponse, OcspError>
where
    S: signature::Signer<Sig> + DynSignatureAlgorithmIdentifier,
    Sig: SignatureBitStringEncoding,
{
    let signature_algorithm = signer
        .signature_algorithm_identifier()
        .map_err(OcspError::SignatureAlgorithm)?;
    let tbs_der = tbs.to_der().map_err(der_error("tbsResponseData"))?;
    let signature = signer
        .try_sign(&tbs_der)
        .map_err(OcspError::Signing)?
        .to_bitstring()
        .map_err(der_error("signature"))?;
    OcspResponse::successful(BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm,
        signature,
        certs,
    })
    .map_err(der_error("response"))
}

/// The signed response, `None` if we know none of the issuers asked about.
fn answer(
    req: &OcspRequest,
    issuers: &[OcspIssuer<'_>],
    state: &dyn Fn(usize, &[u8]) -> CertState,
    signer: Option<&OcspIssuer<'_>>,
    now: time::OffsetDateTime,
) -> Result<Option<Vec<u8>>, OcspError> {
    let parse = |i: &OcspIssuer<'_>| -> Result<Known, OcspError> {
        let cert = Certificate::from_der(i.cert_der).map_err(der_error("issuer"))?;
        let name_der = cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(der_error("issuer name"))?;
        Ok(Known { cert, name_der })
    };
    let known = issuers.iter().map(parse).collect::<Result<Vec<_>, _>>()?;

    let entries = &req.tbs_request.request_list;
    let found: Vec<Option<usize>> = entries
        .iter()
        .map(|r| find_issuer(&r.req_cert, &known))
        .collect();
    let Some(first) = found.iter().flatten().next().copied() else {
        return Ok(None);
    };

    let this_update = gtime(now)?;
    let next_update = gtime(
        now.checked_add(VALIDITY)
            .ok_or(OcspError::TimeOverflow { now })?,
    )?;
    let mut responses = Vec::with_capacity(entries.len());
    for (entry, issuer) in entries.iter().zip(&found) {
        let st = match issuer {
            Some(i) => state(*i, serial_bytes(&entry.req_cert.serial_number)),
            None => CertState::Unknown,
        };
        let status = match st {
            CertState::Good => CertStatus::good(),
            CertState::Unknown => CertStatus::unknown(),
            CertState::Revoked { at } => CertStatus::revoked(RevokedInfo {
                revocation_time: gtime(at)?,
                revocation_reason: None,
            }),
        };
        responses.push(
            SingleResponse::new(entry.req_cert.clone(), status, this_update)
                .with_next_update(next_update),
        );
    }

    // Echo the nonce extension as it came (RFC 8954), whatever its value looks like.
    let nonce: Option<Extension> = req
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
        .cloned();

    let (signing_cert, signing_key) = match signer {
        Some(s) => (parse(s)?.cert, s.key),
        None => {
            let k = known.get(first).ok_or(OcspError::IssuerIndex)?;
            let i = issuers.get(first).ok_or(OcspError::IssuerIndex)?;
            (k.cert.clone(), i.key)
        }
    };
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(signing_cert.tbs_certificate.subject.clone()),
        produced_at: this_update,
        responses,
        response_extensions: nonce.map(|e| vec![e]),
    };
    let resp = sign_response(&ZooSigner(signing_key), tbs, Some(vec![signing_cert]))?;
    resp.to_der().map(Some).map_err(der_error("response"))
}

/// Builds an OCSP request (one SHA-1 CertID, as openssl sends, and a fresh 16-byte nonce)
/// for a certificate and its issuer, for tests and probes. The issuer is taken as given:
/// passing another CA's certificate makes a request about an issuer the responder may not
/// know.
pub fn request(cert_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, OcspError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let cert = Certificate::from_der(cert_der).map_err(der_error("certificate"))?;
    let issuer = Certificate::from_der(issuer_der).map_err(der_error("issuer"))?;
    let name_der = issuer
        .tbs_certificate
        .subject
        .to_der()
        .map_err(der_error("issuer name"))?;
    let spk = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA1,
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: OctetString::new(Sha1::digest(&name_der).to_vec())
            .map_err(der_error("name hash"))?,
        issuer_key_hash: OctetString::new(Sha1::digest(spk).to_vec())
            .map_err(der_error("key hash"))?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    };

    let mut h = Sha256::new();
    h.update(b"hil ocsp nonce");
    h.update(cert_der);
    h.update(issuer_der);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.update(t.to_be_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let nonce = Nonce::new(h.finalize().get(..16).unwrap_or_default().to_vec())
        .map_err(der_error("nonce"))?;

    OcspRequestBuilder::new(Version::V1)
        .with_request(Request::new(id))
        .with_extension(nonce)
        .map_err(OcspError::NonceExtension)?
        .build()
        .to_der()
        .map_err(der_error("request"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose,
        SerialNumber as RcSerial,
    };
    use rustls::pki_types::SignatureVerificationAlgorithm;
    use std::path::Path;
    use std::process::Command;

    const KINDS: [KeyKind; 3] = [KeyKind::Rsa2048, KeyKind::EcdsaP256, KeyKind::Ed25519];

    /// A CA and a leaf it issued, with their keys.
    struct Pki {
        ca_der: Vec<u8>,
        ca_key: ZooKey,
        leaf_der: Vec<u8>,
        leaf_serial: Vec<u8>,
    }

    fn ca_params(cn: &str, serial: u8) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(RcSerial::from_slice(&[serial]));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p
    }

    fn pki(kind: KeyKind, seed: u64, cn: &str) -> Pki {
        let ca_key = ZooKey::generate(kind, seed, "ocsp-test-ca").unwrap();
        let ca_params = ca_params(cn, 1);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = ZooKey::generate(kind, seed, "ocsp-test-leaf").unwrap();
        let mut lp = CertificateParams::new(vec!["leaf.test".to_string()]).unwrap();
        lp.distinguished_name.push(DnType::CommonName, "leaf.test");
        // The high bit is set, so the DER INTEGER gets a leading zero byte that
        // `state` must not see.
        let leaf_serial = vec![0x9a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        lp.serial_number = Some(RcSerial::from_slice(&leaf_serial));
        let leaf = lp
            .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        Pki {
            ca_der: ca.der().to_vec(),
            ca_key,
            leaf_der: leaf.der().to_vec(),
            leaf_serial,
        }
    }

    fn now() -> time::OffsetDateTime {
        // Whole seconds, so that it survives the trip through GeneralizedTime.
        let t = time::OffsetDateTime::now_utc();
        t.replace_nanosecond(0).unwrap()
    }

    fn status_of(der: &[u8]) -> OcspResponseStatus {
        OcspResponse::from_der(der).unwrap().response_status
    }

    fn basic(der: &[u8]) -> BasicOcspResponse {
        let r = OcspResponse::from_der(der).unwrap();
        assert_eq!(r.response_status, OcspResponseStatus::Successful);
        let bytes = r.response_bytes.unwrap();
        assert_eq!(
            bytes.response_type,
            ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1")
        );
        BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap()
    }

    /// The contents of an AlgorithmIdentifier's DER SEQUENCE, as webpki compares them.
    fn alg_contents(a: &AlgorithmIdentifierOwned) -> Vec<u8> {
        let der = a.to_der().unwrap();
        assert!(der[1] < 0x80);
        der[2..].to_vec()
    }

    /// Checks the response's signature with `signer_der`'s public key through ring (via
    /// rustls's webpki algorithm table): the algorithm has to match both the signer's
    /// key algorithm and the response's signatureAlgorithm, byte for byte.
    fn verify_with(b: &BasicOcspResponse, signer_der: &[u8]) -> bool {
        let signer = Certificate::from_der(signer_der).unwrap();
        let spki = &signer.tbs_certificate.subject_public_key_info;
        let key_alg = alg_contents(&spki.algorithm);
        let sig_alg = alg_contents(&b.signature_algorithm);
        let provider = rustls::crypto::ring::default_provider();
        let algs: Vec<&dyn SignatureVerificationAlgorithm> = provider
            .signature_verification_algorithms
            .all
            .iter()
            .copied()
            .filter(|a| *a.public_key_alg_id() == key_alg[..])
            .filter(|a| *a.signature_alg_id() == sig_alg[..])
            .collect();
        assert!(!algs.is_empty(), "no webpki algorithm for {sig_alg:02x?}");
        let tbs = b.tbs_response_data.to_der().unwrap();
        let sig = b.signature.as_bytes().unwrap();
        algs.iter().any(|a| {
            a.verify_signature(spki.subject_public_key.raw_bytes(), &tbs, sig)
                .is_ok()
        })
    }

    fn responder_name(b: &BasicOcspResponse) -> x509_cert::name::Name {
        match &b.tbs_response_data.responder_id {
            ResponderId::ByName(n) => n.clone(),
            other => panic!("responder id {other:?}"),
        }
    }

    fn req_nonce(req: &[u8]) -> Vec<u8> {
        let r = OcspRequest::from_der(req).unwrap();
        r.nonce().unwrap().0.as_bytes().to_vec()
    }

    #[test]
    fn answers_good_revoked_unknown_signed_by_the_issuer_for_every_key_kind() {
        for kind in KINDS {
            let p = pki(kind, 11, "OCSP Test CA");
            let other = pki(kind, 12, "Other CA");
            let req = request(&p.leaf_der, &p.ca_der).unwrap();
            let nonce = req_nonce(&req);
            assert_eq!(nonce.len(), 16);
            let now = now();
            let revoked_at = now - time::Duration::hours(3);
            let issuers = [
                OcspIssuer {
                    cert_der: &other.ca_der,
                    key: &other.ca_key,
                },
                OcspIssuer {
                    cert_der: &p.ca_der,
                    key: &p.ca_key,
                },
            ];
            for (want, expect) in [
                (CertState::Good, "good"),
                (CertState::Revoked { at: revoked_at }, "revoked"),
                (CertState::Unknown, "unknown"),
            ] {
                let seen = std::cell::RefCell::new(Vec::new());
                let state = |i: usize, serial: &[u8]| {
                    seen.borrow_mut().push((i, serial.to_vec()));
                    want.clone()
                };
                let der = respond(&req, &issuers, &state, None, now);
                assert_eq!(
                    *seen.borrow(),
                    vec![(1, p.leaf_serial.clone())],
                    "{kind:?} {expect}"
                );
                let b = basic(&der);
                let data = &b.tbs_response_data;
                assert_eq!(data.responses.len(), 1);
                let single = &data.responses[0];
                assert_eq!(
                    single.cert_id,
                    OcspRequest::from_der(&req)
                        .unwrap()
                        .tbs_request
                        .request_list[0]
                        .req_cert
                );
                assert_eq!(
                    serial_bytes(&single.cert_id.serial_number),
                    &p.leaf_serial[..]
                );
                match (&want, &single.cert_status) {
                    (CertState::Good, CertStatus::Good(_)) => {}
                    (CertState::Unknown, CertStatus::Unknown(_)) => {}
                    (CertState::Revoked { at }, CertStatus::Revoked(info)) => {
                        assert_eq!(info.revocation_time, gtime(*at).unwrap());
                    }
                    (w, got) => panic!("{kind:?}: wanted {w:?}, got {got:?}"),
                }
                assert_eq!(single.this_update, gtime(now).unwrap());
                assert_eq!(single.next_update, Some(gtime(now + VALIDITY).unwrap()));
                assert_eq!(data.produced_at, gtime(now).unwrap());
                assert_eq!(b.nonce().unwrap().0.as_bytes(), &nonce[..], "{kind:?}");
                let ca = Certificate::from_der(&p.ca_der).unwrap();
                assert_eq!(responder_name(&b), ca.tbs_certificate.subject);
                assert_eq!(b.certs.as_deref(), Some(std::slice::from_ref(&ca)));
                assert!(verify_with(&b, &p.ca_der), "{kind:?} {expect}");
                assert!(!verify_with(&b, &other.ca_der), "{kind:?} {expect}");
            }
        }
    }

    #[test]
    fn sha256_cert_ids_and_requests_without_nonce() {
        let p = pki(KeyKind::EcdsaP256, 21, "SHA-256 CA");
        let ca = Certificate::from_der(&p.ca_der).unwrap();
        let leaf = Certificate::from_der(&p.leaf_der).unwrap();
        let id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ID_SHA256,
                parameters: None,
            },
            issuer_name_hash: OctetString::new(
                Sha256::digest(ca.tbs_certificate.subject.to_der().unwrap()).to_vec(),
            )
            .unwrap(),
            issuer_key_hash: OctetString::new(
                Sha256::digest(
                    ca.tbs_certificate
                        .subject_public_key_info
                        .subject_public_key
                        .raw_bytes(),
                )
                .to_vec(),
            )
            .unwrap(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        };
        let req = OcspRequestBuilder::new(Version::V1)
            .with_request(Request::new(id.clone()))
            .build()
            .to_der()
            .unwrap();
        let issuers = [OcspIssuer {
            cert_der: &p.ca_der,
            key: &p.ca_key,
        }];
        let der = respond(&req, &issuers, &|_, _| CertState::Good, None, now());
        let b = basic(&der);
        assert_eq!(b.tbs_response_data.responses[0].cert_id, id);
        assert!(matches!(
            b.tbs_response_data.responses[0].cert_status,
            CertStatus::Good(_)
        ));
        assert!(b.tbs_response_data.response_extensions.is_none());
        assert!(verify_with(&b, &p.ca_der));
    }

    #[test]
    fn wrong_signer_answers_the_real_question_with_the_wrong_key() {
        for kind in KINDS {
            let p = pki(kind, 31, "Real CA");
            let rogue = pki(kind, 32, "Rogue CA");
            let req = request(&p.leaf_der, &p.ca_der).unwrap();
            let issuers = [OcspIssuer {
                cert_der: &p.ca_der,
                key: &p.ca_key,
            }];
            let wrong = OcspIssuer {
                cert_der: &rogue.ca_der,
                key: &rogue.ca_key,
            };
            let der = respond(&req, &issuers, &|_, _| CertState::Good, Some(&wrong), now());
            let b = basic(&der);
            let single = &b.tbs_response_data.responses[0];
            assert!(matches!(single.cert_status, CertStatus::Good(_)));
            assert_eq!(
                single.cert_id,
                OcspRequest::from_der(&req)
                    .unwrap()
                    .tbs_request
                    .request_list[0]
                    .req_cert
            );
            let rogue_cert = Certificate::from_der(&rogue.ca_der).unwrap();
            assert_eq!(responder_name(&b), rogue_cert.tbs_certificate.subject);
            assert!(!verify_with(&b, &p.ca_der), "{kind:?}");
            assert!(verify_with(&b, &rogue.ca_der), "{kind:?}");
        }
    }

    #[test]
    fn garbage_is_a_malformed_request() {
        let p = pki(KeyKind::Ed25519, 41, "CA");
        let issuers = [OcspIssuer {
            cert_der: &p.ca_der,
            key: &p.ca_key,
        }];
        let good = request(&p.leaf_der, &p.ca_der).unwrap();
        let empty_list = OcspRequestBuilder::new(Version::V1)
            .build()
            .to_der()
            .unwrap();
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0x30, 0x80, 0x00, 0x00],
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            p.leaf_der.clone(),
            empty_list,
            [good.as_slice(), &[0]].concat(),
        ];
        for n in 0..good.len() {
            inputs.push(good[..n].to_vec());
        }
        for i in 0..good.len() {
            let mut g = good.clone();
            g[i] ^= 0xff;
            inputs.push(g);
        }
        let mut malformed = 0;
        for input in &inputs {
            let der = respond(input, &issuers, &|_, _| CertState::Good, None, now());
            let st = status_of(&der);
            if st == OcspResponseStatus::MalformedRequest {
                assert_eq!(der, [0x30, 0x03, 0x0a, 0x01, 0x01]);
                malformed += 1;
            } else {
                // A flipped byte inside a hash or the nonce still parses.
                assert!(
                    matches!(
                        st,
                        OcspResponseStatus::Successful | OcspResponseStatus::Unauthorized
                    ),
                    "{st:?}"
                );
            }
        }
        assert!(malformed > good.len(), "{malformed}");
        for input in &inputs[..7] {
            let der = respond(input, &issuers, &|_, _| CertState::Good, None, now());
            assert_eq!(status_of(&der), OcspResponseStatus::MalformedRequest);
        }
    }

    #[test]
    fn unknown_issuers_are_unauthorized_or_unknown() {
        let p = pki(KeyKind::EcdsaP256, 51, "Known CA");
        let stranger = pki(KeyKind::EcdsaP256, 52, "Stranger CA");
        let issuers = [OcspIssuer {
            cert_der: &p.ca_der,
            key: &p.ca_key,
        }];
        let asked = std::cell::Cell::new(0);
        let state = |_: usize, _: &[u8]| {
            asked.set(asked.get() + 1);
            CertState::Good
        };
        // Only a stranger's certificate: unauthorized, no body.
        let req = request(&stranger.leaf_der, &stranger.ca_der).unwrap();
        let der = respond(&req, &issuers, &state, None, now());
        assert_eq!(der, [0x30, 0x03, 0x0a, 0x01, 0x06]);
        assert_eq!(status_of(&der), OcspResponseStatus::Unauthorized);
        assert_eq!(asked.get(), 0);
        // No issuers at all: the same.
        let der = respond(&req, &[], &state, None, now());
        assert_eq!(status_of(&der), OcspResponseStatus::Unauthorized);

        // One of ours and one stranger's: ours answered, the stranger's unknown.
        let ours = OcspRequest::from_der(&request(&p.leaf_der, &p.ca_der).unwrap()).unwrap();
        let theirs = OcspRequest::from_der(&req).unwrap();
        let both = OcspRequestBuilder::new(Version::V1)
            .with_request(theirs.tbs_request.request_list[0].clone())
            .with_request(ours.tbs_request.request_list[0].clone())
            .build()
            .to_der()
            .unwrap();
        let b = basic(&respond(&both, &issuers, &state, None, now()));
        assert_eq!(asked.get(), 1);
        let r = &b.tbs_response_data.responses;
        assert_eq!(r.len(), 2);
        assert!(matches!(r[0].cert_status, CertStatus::Unknown(_)));
        assert!(matches!(r[1].cert_status, CertStatus::Good(_)));
        assert!(verify_with(&b, &p.ca_der));
    }

    #[test]
    fn a_broken_issuer_certificate_is_an_internal_error() {
        let p = pki(KeyKind::Ed25519, 61, "CA");
        let req = request(&p.leaf_der, &p.ca_der).unwrap();
        let issuers = [OcspIssuer {
            cert_der: b"not a certificate",
            key: &p.ca_key,
        }];
        let der = respond(&req, &issuers, &|_, _| CertState::Good, None, now());
        assert_eq!(status_of(&der), OcspResponseStatus::InternalError);
    }

    #[test]
    fn request_rejects_non_certificates() {
        let p = pki(KeyKind::Ed25519, 71, "CA");
        assert!(request(b"junk", &p.ca_der).is_err());
        assert!(request(&p.leaf_der, b"junk").is_err());
        assert_ne!(
            req_nonce(&request(&p.leaf_der, &p.ca_der).unwrap()),
            req_nonce(&request(&p.leaf_der, &p.ca_der).unwrap())
        );
    }

    fn openssl_present() -> bool {
        let ok = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("NOTE: `openssl` is not installed; skipping the openssl ocsp cross-check");
        }
        ok
    }

    /// Runs `openssl ocsp -respin resp.der -issuer CA -CAfile CA` with `extra` in `dir`;
    /// returns (success, stdout+stderr).
    fn openssl_ocsp(dir: &Path, ca: &str, extra: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(["ocsp", "-respin", "resp.der", "-issuer", ca, "-CAfile", ca])
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn openssl_accepts_the_responses() {
        if !openssl_present() {
            return;
        }
        for kind in KINDS {
            let p = pki(kind, 81, "OpenSSL CA");
            let rogue = pki(kind, 82, "OpenSSL Rogue CA");
            let dir = std::env::temp_dir().join(format!(
                "hil-ocsp-test-{}-{}",
                std::process::id(),
                kind.name()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let pem = |name: &str, der: &[u8]| {
                std::fs::write(dir.join(name), super::super::keys::pem("CERTIFICATE", der))
                    .unwrap();
            };
            pem("ca.pem", &p.ca_der);
            pem("rogue.pem", &rogue.ca_der);
            pem("leaf.pem", &p.leaf_der);
            let req = request(&p.leaf_der, &p.ca_der).unwrap();
            std::fs::write(dir.join("req.der"), &req).unwrap();
            // As `-resp_text` prints it: the extension value, an OCTET STRING.
            let nonce_hex: String = [&[0x04, 0x10][..], &req_nonce(&req)]
                .concat()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            let issuers = [OcspIssuer {
                cert_der: &p.ca_der,
                key: &p.ca_key,
            }];
            let revoked_at = now() - time::Duration::days(2);
            for (st, word) in [
                (CertState::Good, "good"),
                (CertState::Revoked { at: revoked_at }, "revoked"),
                (CertState::Unknown, "unknown"),
            ] {
                let der = respond(&req, &issuers, &|_, _| st.clone(), None, now());
                std::fs::write(dir.join("resp.der"), &der).unwrap();
                // With the request: openssl checks the nonce echo as well as the
                // signature (`-cert` would make it build a request of its own instead).
                let (ok, text) = openssl_ocsp(&dir, "ca.pem", &["-reqin", "req.der", "-resp_text"]);
                assert!(ok, "{kind:?} {word}: {text}");
                assert!(
                    text.contains("Response verify OK"),
                    "{kind:?} {word}: {text}"
                );
                assert!(
                    text.contains(&format!("Cert Status: {word}")),
                    "{kind:?} {word}: {text}"
                );
                assert!(!text.contains("Nonce Verify error"), "{kind:?}: {text}");
                assert!(!text.contains("no nonce"), "{kind:?}: {text}");
                assert!(text.contains(&nonce_hex), "{kind:?} {word}: {text}");
                assert!(!text.contains("WARNING"), "{kind:?} {word}: {text}");
                // With the certificate: openssl matches the answer to it by CertID.
                let by_cert = ["-cert", "leaf.pem", "-no_nonce"];
                let (ok, text) = openssl_ocsp(&dir, "ca.pem", &by_cert);
                assert!(ok, "{kind:?} {word}: {text}");
                assert!(
                    text.contains("Response verify OK"),
                    "{kind:?} {word}: {text}"
                );
                assert!(
                    text.contains(&format!("leaf.pem: {word}")),
                    "{kind:?} {word}: {text}"
                );
                assert!(!text.contains("WARNING"), "{kind:?} {word}: {text}");
            }

            // Signed by the rogue CA: openssl must refuse it, even when it trusts the
            // rogue CA as a root (its key is simply not the issuer's).
            let wrong = OcspIssuer {
                cert_der: &rogue.ca_der,
                key: &rogue.ca_key,
            };
            let der = respond(&req, &issuers, &|_, _| CertState::Good, Some(&wrong), now());
            std::fs::write(dir.join("resp.der"), &der).unwrap();
            let (_, text) = openssl_ocsp(&dir, "ca.pem", &[]);
            assert!(!text.contains("Response verify OK"), "{kind:?}: {text}");
            assert!(text.contains("Response Verify Failure"), "{kind:?}: {text}");
            std::fs::write(
                dir.join("both.pem"),
                [
                    super::super::keys::pem("CERTIFICATE", &p.ca_der),
                    super::super::keys::pem("CERTIFICATE", &rogue.ca_der),
                ]
                .concat(),
            )
            .unwrap();
            let (_, text) = openssl_ocsp(&dir, "both.pem", &[]);
            assert!(!text.contains("Response verify OK"), "{kind:?}: {text}");
            assert!(text.contains("Response Verify Failure"), "{kind:?}: {text}");

            // Malformed and unauthorized statuses as openssl reads them.
            for (bytes, words) in [
                (
                    respond(b"junk", &issuers, &|_, _| CertState::Good, None, now()),
                    "malformedrequest (1)",
                ),
                (
                    respond(
                        &request(&rogue.leaf_der, &rogue.ca_der).unwrap(),
                        &issuers,
                        &|_, _| CertState::Good,
                        None,
                        now(),
                    ),
                    "unauthorized (6)",
                ),
            ] {
                std::fs::write(dir.join("resp.der"), &bytes).unwrap();
                let out = Command::new("openssl")
                    .current_dir(&dir)
                    .args(["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"])
                    .output()
                    .unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
                .to_lowercase();
                assert!(text.contains(words), "{kind:?}: {text}");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
