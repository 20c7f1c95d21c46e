//! Generating the certificate zoo: a root CA, an intermediate CA, a second
//! ("untrusted") root, an expired intermediate, and one server certificate per check
//! of SPEC §3.5, each with a manifest entry saying what a device with only one
//! verification flag on must do with it. Dates, serials, keys and signatures all come
//! from the seed, so the same seed writes byte-identical files.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::keys::{pem, KeyError, KeyKind, ZooKey};

/// What to generate.
#[derive(Debug, Clone)]
pub struct ZooOptions {
    pub key: KeyKind,
    pub seed: u64,
    /// Names and addresses the server certificates are for; the first is the main one.
    pub hosts: Vec<String>,
    /// Base URL of the OCSP responder and CRL server (`/ocsp`, `/crl/NAME.crl`).
    pub responder: String,
}

impl Default for ZooOptions {
    fn default() -> Self {
        ZooOptions {
            key: KeyKind::Rsa2048,
            seed: 1,
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            responder: "http://127.0.0.1:8099".into(),
        }
    }
}

/// Why a zoo could not be generated (or written); names the host, certificate, CRL
/// or file.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("at least one --host")]
    NoHost,
    #[error("--host {host:?}: {source}")]
    Host { host: String, source: rcgen::Error },
    /// A name the zoo writes itself (`wrong.hil.invalid`, `*.hil.test`) refused.
    #[error("{0}")]
    Name(rcgen::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A CA or server certificate (by its label or name) that could not be signed.
    #[error("{name}: {source}")]
    Certificate { name: String, source: rcgen::Error },
    #[error("{name}: no CA {issuer}")]
    NoCa { name: String, issuer: String },
    #[error("CRL of {label}: {source}")]
    Crl { label: String, source: rcgen::Error },
    #[error("manifest: {0}")]
    Manifest(toml::ser::Error),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A device's verdict with one verification flag on: `accept` or the error class.
pub type Verdict = String;

/// The five flags' verdicts (SPEC §3.5), for a device whose external store holds
/// `root.crt`, whose clock is in 2026, and whose `smtp.server` is `server_address`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Expect {
    pub expiry: Verdict,
    pub cn: Verdict,
    pub key_usage: Verdict,
    pub chain: Verdict,
    pub revocation: Verdict,
}

/// One server certificate in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct CertEntry {
    pub name: String,
    pub description: String,
    /// The chain as served, leaf first (PEM), and its key.
    pub file: String,
    pub key: String,
    pub issuer: String,
    /// Hexadecimal serial number.
    pub serial: String,
    pub subject_cn: Option<String>,
    pub san: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub ocsp_url: Option<String>,
    pub crl_url: Option<String>,
    /// What the OCSP responder answers for it: good, revoked, unknown (or none).
    pub ocsp_status: String,
    /// Whether its issuer's CRL lists it.
    pub crl_listed: bool,
    /// The `smtp.server` value the `cn` verdict assumes.
    pub server_address: String,
    pub expect: Expect,
    /// What `openssl verify -x509_strict -purpose sslserver -verify_hostname (or
    /// -verify_ip) SERVER_ADDRESS -crl_check` says with `root.crt` as the only anchor,
    /// the chain as served, and the issuer's served CRL: `OK`, or the text of the error.
    pub openssl_verify: String,
}

/// A CA in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct CaEntry {
    pub file: String,
    pub key: String,
    pub crl: String,
    pub stale_crl: String,
    pub trusted: bool,
    pub not_after: String,
}

/// The manifest written as `manifest.toml`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub seed: u64,
    pub key: String,
    pub responder: String,
    pub hosts: Vec<String>,
    /// The root a device imports into its external certificate store.
    pub trust_anchor: String,
    pub ca: BTreeMap<String, CaEntry>,
    pub cert: Vec<CertEntry>,
}

/// Midnight UTC of a calendar day (the zoo's dates are fixed, not "now").
pub fn at(y: i32, m: Month, d: u8) -> OffsetDateTime {
    let date = Date::from_calendar_date(y, m, d).unwrap_or(Date::MIN);
    PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn serial(seed: u64, name: &str) -> SerialNumber {
    let mut h = Sha256::new();
    h.update(b"hil zoo serial");
    h.update(seed.to_be_bytes());
    h.update(name.as_bytes());
    let mut b: Vec<u8> = h.finalize()[..16].to_vec();
    b[0] &= 0x7f;
    b[0] |= 0x10;
    SerialNumber::from_slice(&b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// DER: a tag, a length, the content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// The Authority Information Access extension with one OCSP URL (RFC 5280 §4.2.2.1).
fn aia_ocsp(url: &str) -> CustomExtension {
    const ID_AD_OCSP: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut desc = tlv(0x06, &ID_AD_OCSP);
    desc.extend(tlv(0x86, url.as_bytes()));
    let content = tlv(0x30, &tlv(0x30, &desc));
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], content)
}

fn name(cn: Option<&str>, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(cn) = cn {
        dn.push(DnType::CommonName, cn);
    }
    dn.push(DnType::OrganizationName, org);
    dn
}

fn san_of(host: &str) -> Result<SanType, ZooError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => host
            .try_into()
            .map(SanType::DnsName)
            .map_err(|source| ZooError::Host {
                host: host.to_string(),
                source,
            }),
    }
}

/// A DNS name the zoo itself writes into a certificate (`*.hil.test`).
fn dns_san(name: &str) -> Result<SanType, ZooError> {
    name.try_into()
        .map(SanType::DnsName)
        .map_err(ZooError::Name)
}

fn san_label(s: &SanType) -> String {
    match s {
        SanType::DnsName(n) => format!("DNS:{}", n.as_str()),
        SanType::IpAddress(ip) => format!("IP:{ip}"),
        other => format!("{other:?}"),
    }
}

struct Ca {
    params: CertificateParams,
    key: ZooKey,
    der: Vec<u8>,
    revoked: Vec<SerialNumber>,
}

fn ca_params(
    cn: &str,
    s: SerialNumber,
    from: OffsetDateTime,
    to: OffsetDateTime,
    path_len: Option<u8>,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(Some(cn), "hil test zoo");
    p.serial_number = Some(s);
    p.not_before = from;
    p.not_after = to;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

/// How one server certificate differs from `valid`.
struct Spec {
    name: &'static str,
    description: &'static str,
    issuer: &'static str,
    cn: Option<String>,
    san: Vec<SanType>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    ku: Vec<KeyUsagePurpose>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    ocsp: bool,
    crl: bool,
    ocsp_status: &'static str,
    crl_listed: bool,
    /// Served without its intermediate.
    bare: bool,
    self_signed: bool,
    server_address: String,
    expect: [&'static str; 5],
    openssl: &'static str,
}

const ACCEPT: &str = "accept";

/// The CRL of a CA listing `revoked` (all revoked on 2025-01-01, the start of the
/// zoo's validity, for key compromise).
pub fn crl_params(
    revoked: &[SerialNumber],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    number: u64,
) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|sn| RevokedCertParams {
                serial_number: sn.clone(),
                revocation_time: at(2025, Month::January, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

/// A CA of the zoo, kept whole for the OCSP responder and CRL server.
pub struct ZooCa {
    pub label: String,
    pub params: CertificateParams,
    pub key: ZooKey,
    pub der: Vec<u8>,
    pub revoked: Vec<SerialNumber>,
}

/// A generated zoo: its files (name → bytes), its manifest and its CAs.
pub struct Zoo {
    pub files: BTreeMap<String, Vec<u8>>,
    pub manifest: Manifest,
    pub cas: Vec<ZooCa>,
}

/// Generates the zoo into `dir` and answers its manifest.
pub fn generate(dir: &Path, o: &ZooOptions) -> Result<Manifest, ZooError> {
    let zoo = build(o)?;
    std::fs::create_dir_all(dir).map_err(|source| ZooError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for (file, data) in &zoo.files {
        let path = dir.join(file);
        std::fs::write(&path, data).map_err(|source| ZooError::Write { path, source })?;
    }
    Ok(zoo.manifest)
}

/// Builds the zoo in memory: the CAs, the server certificates family by family (each
/// CRL-listed one noted in its issuer), then each CA's files with its CRLs, then the
/// manifest.
pub fn build(o: &ZooOptions) -> Result<Zoo, ZooError> {
    let hosts = Hosts::of(&o.hosts)?;
    let mut cas = make_cas(o)?;
    let specs = server_specs(&hosts)?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let leaf_key = ZooKey::generate(o.key, o.seed, "server")?;
    let mut entries = Vec::new();
    for s in &specs {
        entries.push(issue_server_cert(o, s, &leaf_key, &mut cas, &mut files)?);
    }
    let mut ca_entries = BTreeMap::new();
    for (label, ca) in &cas {
        ca_entries.insert(label.to_string(), write_ca(label, ca, &mut files)?);
    }
    let manifest = Manifest {
        seed: o.seed,
        key: o.key.name().to_string(),
        responder: o.responder.clone(),
        hosts: o.hosts.clone(),
        trust_anchor: "root.crt".into(),
        ca: ca_entries,
        cert: entries,
    };
    files.insert(
        "manifest.toml".into(),
        manifest_text(&manifest)?.into_bytes(),
    );
    let cas = cas
        .into_iter()
        .map(|(label, ca)| ZooCa {
            label: label.to_string(),
            params: ca.params,
            key: ca.key,
            der: ca.der,
            revoked: ca.revoked,
        })
        .collect();
    Ok(Zoo {
        files,
        manifest,
        cas,
    })
}

/// The validity of the CAs: 2024 to 2049.
fn ca_validity() -> (OffsetDateTime, OffsetDateTime) {
    (at(2024, Month::January, 1), at(2049, Month::December, 31))
}

/// The validity of the server certificates: 2025 to 2045.
fn leaf_validity() -> (OffsetDateTime, OffsetDateTime) {
    (at(2025, Month::January, 1), at(2045, Month::January, 1))
}

/// The validity of what expired: 2020 to 2021.
fn expired_validity() -> (OffsetDateTime, OffsetDateTime) {
    (at(2020, Month::January, 1), at(2021, Month::January, 1))
}

/// The hosts the zoo's server certificates are for, as the families of certificates
/// need them.
struct Hosts {
    /// Every host, as SAN entries.
    sans: Vec<SanType>,
    /// The first host: the CN, and the server address of most certificates.
    main: String,
    /// The first IPv4 and IPv6 addresses given (else the loopback ones).
    v4: String,
    v6: String,
    /// The first DNS name given (else `localhost`).
    dns: String,
}

impl Hosts {
    fn of(hosts: &[String]) -> Result<Hosts, ZooError> {
        let Some(main) = hosts.first() else {
            return Err(ZooError::NoHost);
        };
        let sans = hosts.iter().map(|h| san_of(h)).collect::<Result<_, _>>()?;
        let first_ip = |v6: bool| -> String {
            hosts
                .iter()
                .find(|h| h.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6() == v6))
                .cloned()
                .unwrap_or_else(|| if v6 { "::1".into() } else { "127.0.0.1".into() })
        };
        let dns = hosts
            .iter()
            .find(|h| h.parse::<IpAddr>().is_err())
            .cloned()
            .unwrap_or_else(|| "localhost".into());
        Ok(Hosts {
            sans,
            main: main.clone(),
            v4: first_ip(false),
            v6: first_ip(true),
            dns,
        })
    }
}

/// One CA, self-signed or signed by `issuer`.
fn make_ca(
    o: &ZooOptions,
    label: &str,
    cn: &str,
    issuer: Option<&Ca>,
    (from, to): (OffsetDateTime, OffsetDateTime),
    path_len: Option<u8>,
) -> Result<Ca, ZooError> {
    let key = ZooKey::generate(o.key, o.seed, label)?;
    let mut params = ca_params(cn, serial(o.seed, label), from, to, path_len);
    params.use_authority_key_identifier_extension = issuer.is_some();
    let cert = match issuer {
        None => params.self_signed(&key),
        Some(i) => params.signed_by(&key, &Issuer::from_params(&i.params, &i.key)),
    }
    .map_err(|source| ZooError::Certificate {
        name: label.to_string(),
        source,
    })?;
    Ok(Ca {
        der: cert.der().to_vec(),
        params,
        key,
        revoked: Vec::new(),
    })
}

/// The zoo's CAs by label: the trusted root, its intermediate, an intermediate that
/// expired in 2021, and a second root no device trusts.
fn make_cas(o: &ZooOptions) -> Result<BTreeMap<&'static str, Ca>, ZooError> {
    let root = make_ca(o, "root", "hil test root CA", None, ca_validity(), None)?;
    let inter = make_ca(
        o,
        "intermediate",
        "hil test intermediate CA",
        Some(&root),
        ca_validity(),
        Some(0),
    )?;
    let expired_inter = make_ca(
        o,
        "expired-intermediate-ca",
        "hil test expired intermediate CA",
        Some(&root),
        expired_validity(),
        Some(0),
    )?;
    let other = make_ca(
        o,
        "untrusted-root",
        "hil untrusted root CA",
        None,
        ca_validity(),
        None,
    )?;
    Ok(BTreeMap::from([
        ("root", root),
        ("intermediate", inter),
        ("expired-intermediate-ca", expired_inter),
        ("untrusted-root", other),
    ]))
}

/// The `valid` certificate, which every other one is a variation of.
fn base_spec(hosts: &Hosts, name: &'static str, description: &'static str) -> Spec {
    let (from, to) = leaf_validity();
    Spec {
        name,
        description,
        issuer: "intermediate",
        cn: Some(hosts.main.clone()),
        san: hosts.sans.clone(),
        from,
        to,
        ku: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ocsp: true,
        crl: true,
        ocsp_status: "good",
        crl_listed: false,
        bare: false,
        self_signed: false,
        server_address: hosts.main.clone(),
        expect: [ACCEPT; 5],
        openssl: "OK",
    }
}

/// Every server certificate, in the manifest's order: family by family, and the one
/// under the expired intermediate last.
fn server_specs(hosts: &Hosts) -> Result<Vec<Spec>, ZooError> {
    let mut specs = validity_specs(hosts);
    specs.extend(name_specs(hosts)?);
    specs.extend(key_usage_specs(hosts));
    specs.extend(chain_specs(hosts));
    specs.extend(revocation_specs(hosts));
    specs.push(Spec {
        issuer: "expired-intermediate-ca",
        openssl: "certificate has expired",
        ..base_spec(
            hosts,
            "expired_intermediate",
            "Issued by an intermediate that expired in 2021 (the leaf itself is valid; SPEC's expiry flag checks the server certificate only).",
        )
    });
    Ok(specs)
}

/// `valid`, and the two outside their validity (the expiry flag).
fn validity_specs(hosts: &Hosts) -> Vec<Spec> {
    let base = |name, description| base_spec(hosts, name, description);
    let a = ACCEPT;
    let (old_from, old_to) = expired_validity();
    vec![
        base(
            "valid",
            "Valid for every host, chained to the root, good in OCSP and CRL.",
        ),
        Spec {
            from: old_from,
            to: old_to,
            expect: ["cert_expired", a, a, a, a],
            openssl: "certificate has expired",
            ..base("expired", "Expired in 2021.")
        },
        Spec {
            from: at(2090, Month::January, 1),
            to: at(2091, Month::January, 1),
            expect: ["cert_expired", a, a, a, a],
            openssl: "certificate is not yet valid",
            ..base("not_yet_valid", "Valid only from 2090.")
        },
    ]
}

/// Where the host's name is, or is not (the CN flag): in the CN, a SAN, an IP SAN, a
/// wildcard.
fn name_specs(hosts: &Hosts) -> Result<Vec<Spec>, ZooError> {
    let base = |name, description| base_spec(hosts, name, description);
    let a = ACCEPT;
    Ok(vec![
        Spec {
            cn: Some("wrong.hil.invalid".into()),
            san: vec![dns_san("wrong.hil.invalid")?],
            expect: [a, "cert_name", a, a, a],
            openssl: if hosts.main.parse::<IpAddr>().is_ok() {
                "IP address mismatch"
            } else {
                "hostname mismatch"
            },
            ..base("wrong_cn", "Names another host (CN and SAN wrong.hil.invalid).")
        },
        Spec {
            cn: Some(hosts.dns.clone()),
            san: vec![],
            server_address: hosts.dns.clone(),
            ..base("cn_only", "The host in the subject CN only, no SAN (matches by CN; a SAN-only checker refuses).")
        },
        Spec {
            cn: None,
            san: vec![san_of(&hosts.dns)?],
            server_address: hosts.dns.clone(),
            ..base("san_only", "No CN; the host in a SAN only (refused by the CN-only variant).")
        },
        Spec {
            cn: Some("ip-address-in-san-only".into()),
            san: vec![san_of(&hosts.v4)?],
            server_address: hosts.v4.clone(),
            ..base("ip_v4", "For the IPv4 address only: a SAN IP entry; the CN names no address.")
        },
        Spec {
            cn: Some("ip-address-in-san-only".into()),
            san: vec![san_of(&hosts.v6)?],
            server_address: hosts.v6.clone(),
            ..base("ip_v6", "For the IPv6 address only: a SAN IP entry; the CN names no address.")
        },
        Spec {
            cn: Some("*.hil.test".into()),
            san: vec![dns_san("*.hil.test")?],
            server_address: "mx.hil.test".into(),
            ..base("wildcard", "*.hil.test, for a device whose smtp.server is mx.hil.test (which must resolve to the harness); it would not match a.b.hil.test nor hil.test.")
        },
    ])
}

/// A KeyUsage or ExtendedKeyUsage that does not allow a TLS server (the key usage flag).
fn key_usage_specs(hosts: &Hosts) -> Vec<Spec> {
    let base = |name, description| base_spec(hosts, name, description);
    let a = ACCEPT;
    vec![
        Spec {
            ku: vec![KeyUsagePurpose::KeyCertSign],
            expect: [a, a, "cert_key_usage", a, a],
            openssl: "unsuitable certificate purpose",
            ..base("bad_key_usage", "KeyUsage keyCertSign only (on a non-CA certificate, which RFC 5280 forbids: strict chain builders refuse it too).")
        },
        Spec {
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            expect: [a, a, "cert_key_usage", a, a],
            openssl: "unsuitable certificate purpose",
            ..base("bad_eku", "ExtendedKeyUsage clientAuth only.")
        },
    ]
}

/// No chain to the trusted root (the chain flag): another root, none, a missing link.
fn chain_specs(hosts: &Hosts) -> Vec<Spec> {
    let base = |name, description| base_spec(hosts, name, description);
    let a = ACCEPT;
    vec![
        Spec {
            issuer: "untrusted-root",
            expect: [a, a, a, "cert_chain", a],
            openssl: "unable to get local issuer certificate",
            ..base("untrusted", "Issued by another root, not in the device's store.")
        },
        Spec {
            self_signed: true,
            ocsp: false,
            crl: false,
            ocsp_status: "none",
            expect: [a, a, a, "cert_chain", "cert_revocation_unknown"],
            openssl: "self-signed certificate",
            ..base("self_signed", "Self-signed, no revocation information.")
        },
        Spec {
            bare: true,
            expect: [a, a, a, "cert_chain", a],
            openssl: "unable to get local issuer certificate",
            ..base(
                "missing_intermediate",
                "Served without its intermediate: no chain to the root. Without the issuer the device cannot ask OCSP, so revocation falls back to the CRL named in the certificate, which does not list it (SPEC §3.5 asks no signature check of OCSP answers or CRLs).",
            )
        },
    ]
}

/// What OCSP and the CRL say (the revocation flag): revoked by either, unknown, no
/// revocation information at all.
fn revocation_specs(hosts: &Hosts) -> Vec<Spec> {
    let base = |name, description| base_spec(hosts, name, description);
    let a = ACCEPT;
    vec![
        Spec {
            ocsp_status: "revoked",
            expect: [a, a, a, a, "cert_revoked"],
            ..base(
                "revoked_ocsp",
                "Revoked according to OCSP (its CRL does not list it).",
            )
        },
        Spec {
            ocsp: false,
            ocsp_status: "none",
            crl_listed: true,
            expect: [a, a, a, a, "cert_revoked"],
            openssl: "certificate revoked",
            ..base("revoked_crl", "No OCSP URL; listed in its issuer's CRL.")
        },
        Spec {
            ocsp_status: "unknown",
            ..base(
                "ocsp_unknown",
                "OCSP answers unknown; the CRL does not list it (accepted after the CRL).",
            )
        },
        Spec {
            ocsp: false,
            crl: false,
            ocsp_status: "none",
            expect: [a, a, a, a, "cert_revocation_unknown"],
            openssl: "unable to get certificate CRL",
            ..base(
                "no_revocation_info",
                "Neither an OCSP URL nor a CRL distribution point (hard fail).",
            )
        },
    ]
}

/// The certificate parameters of `s`, with its OCSP and CRL URLs (when it has them).
fn server_params(
    o: &ZooOptions,
    s: &Spec,
    sn: &SerialNumber,
) -> (CertificateParams, Option<String>, Option<String>) {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(s.cn.as_deref(), "hil test server");
    p.subject_alt_names = s.san.clone();
    p.serial_number = Some(sn.clone());
    p.not_before = s.from;
    p.not_after = s.to;
    p.key_usages = s.ku.clone();
    p.extended_key_usages = s.eku.clone();
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = !s.self_signed;
    let ocsp_url = s.ocsp.then(|| format!("{}/ocsp", o.responder));
    let crl_url = s
        .crl
        .then(|| format!("{}/crl/{}.crl", o.responder, s.issuer));
    if let Some(u) = &ocsp_url {
        p.custom_extensions.push(aia_ocsp(u));
    }
    if let Some(u) = &crl_url {
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![u.clone()],
        }];
    }
    (p, ocsp_url, crl_url)
}

/// Signs the server certificate of `s` (self-signed, or by its CA); answers it and
/// the CA certificates served after it.
fn sign_server(
    s: &Spec,
    p: &CertificateParams,
    key: &ZooKey,
    cas: &BTreeMap<&'static str, Ca>,
) -> Result<(rcgen::Certificate, Vec<Vec<u8>>), ZooError> {
    let signing = |source| ZooError::Certificate {
        name: s.name.to_string(),
        source,
    };
    if s.self_signed {
        return Ok((p.self_signed(key).map_err(signing)?, Vec::new()));
    }
    let ca = cas.get(s.issuer).ok_or_else(|| ZooError::NoCa {
        name: s.name.to_string(),
        issuer: s.issuer.to_string(),
    })?;
    let cert = p
        .signed_by(key, &Issuer::from_params(&ca.params, &ca.key))
        .map_err(signing)?;
    let chain = if s.bare || s.issuer == "untrusted-root" {
        Vec::new()
    } else {
        vec![ca.der.clone()]
    };
    Ok((cert, chain))
}

/// Issues the server certificate of `s`: its chain and key files, its place in its
/// issuer's CRL, and its manifest entry.
fn issue_server_cert(
    o: &ZooOptions,
    s: &Spec,
    key: &ZooKey,
    cas: &mut BTreeMap<&'static str, Ca>,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<CertEntry, ZooError> {
    let sn = serial(o.seed, s.name);
    let (p, ocsp_url, crl_url) = server_params(o, s, &sn);
    let (cert, chain) = sign_server(s, &p, key, cas)?;
    if s.crl_listed {
        if let Some(ca) = cas.get_mut(s.issuer) {
            ca.revoked.push(sn.clone());
        }
    }
    let mut chain_pem = pem("CERTIFICATE", cert.der());
    for c in &chain {
        chain_pem.push_str(&pem("CERTIFICATE", c));
    }
    files.insert(format!("{}.crt", s.name), chain_pem.into_bytes());
    files.insert(format!("{}.key", s.name), key.pkcs8_pem().into_bytes());
    Ok(cert_entry(s, &sn, ocsp_url, crl_url))
}

/// The manifest entry of the server certificate of `s`.
fn cert_entry(
    s: &Spec,
    sn: &SerialNumber,
    ocsp_url: Option<String>,
    crl_url: Option<String>,
) -> CertEntry {
    let [expiry, cn, key_usage, chain, revocation] = s.expect;
    CertEntry {
        name: s.name.to_string(),
        description: s.description.to_string(),
        file: format!("{}.crt", s.name),
        key: format!("{}.key", s.name),
        issuer: if s.self_signed { s.name } else { s.issuer }.to_string(),
        serial: hex(sn.as_ref()),
        subject_cn: s.cn.clone(),
        san: s.san.iter().map(san_label).collect(),
        not_before: rfc3339(s.from),
        not_after: rfc3339(s.to),
        key_usage: s.ku.iter().map(|k| format!("{k:?}")).collect(),
        extended_key_usage: s.eku.iter().map(|k| format!("{k:?}")).collect(),
        ocsp_url,
        crl_url,
        ocsp_status: s.ocsp_status.to_string(),
        crl_listed: s.crl_listed,
        server_address: s.server_address.clone(),
        openssl_verify: s.openssl.to_string(),
        expect: Expect {
            expiry: expiry.into(),
            cn: cn.into(),
            key_usage: key_usage.into(),
            chain: chain.into(),
            revocation: revocation.into(),
        },
    }
}

/// Writes a CA's certificate, key, CRL (2025–2046: valid from the start of the leaf
/// certificates' validity, so a device clock anywhere in 2025–2045 accepts it) and
/// stale CRL (2020, its nextUpdate long passed); answers its manifest entry.
fn write_ca(
    label: &str,
    ca: &Ca,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<CaEntry, ZooError> {
    files.insert(
        format!("{label}.crt"),
        pem("CERTIFICATE", &ca.der).into_bytes(),
    );
    files.insert(format!("{label}.key"), ca.key.pkcs8_pem().into_bytes());
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    for (suffix, this, next) in [
        ("", at(2025, Month::January, 1), at(2046, Month::January, 1)),
        (
            "-stale",
            at(2020, Month::January, 1),
            at(2020, Month::February, 1),
        ),
    ] {
        let number = if suffix.is_empty() { 2 } else { 1 };
        let crl = crl_params(&ca.revoked, this, next, number)
            .signed_by(&issuer)
            .map_err(|source| ZooError::Crl {
                label: label.to_string(),
                source,
            })?;
        files.insert(format!("{label}{suffix}.crl"), crl.der().to_vec());
    }
    Ok(CaEntry {
        file: format!("{label}.crt"),
        key: format!("{label}.key"),
        crl: format!("{label}.crl"),
        stale_crl: format!("{label}-stale.crl"),
        trusted: label == "root",
        not_after: rfc3339(ca.params.not_after),
    })
}

/// `manifest.toml`: a header saying what it is, then the manifest.
fn manifest_text(manifest: &Manifest) -> Result<String, ZooError> {
    let text = toml::to_string(manifest).map_err(ZooError::Manifest)?;
    Ok(format!(
        "# The certificate zoo, generated by `hil certs`; see certs/README.md.\n\
         # expect.* is what a device with only that verification flag on does (SPEC §3.5):\n\
         # \"accept\" or the error class it fails with.\n{text}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        // RSA is covered by the committed zoo (tests/certs.rs); these two are quick.
        for key in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
            let base =
                std::env::temp_dir().join(format!("hil-zoo-{}-{}", std::process::id(), key.name()));
            let o = ZooOptions {
                key,
                ..ZooOptions::default()
            };
            let other = ZooOptions {
                seed: 2,
                ..o.clone()
            };
            let (a, b, c) = (
                build(&o).unwrap(),
                build(&o).unwrap(),
                build(&other).unwrap(),
            );
            assert!(a.files.len() > 40, "{} files", a.files.len());
            assert_eq!(
                a.files, b.files,
                "{key:?}: the same seed must give byte-identical files"
            );
            let differing = a
                .files
                .iter()
                .filter(|(n, v)| c.files.get(*n) != Some(v))
                .count();
            assert_eq!(
                differing,
                a.files.len(),
                "{key:?}: every file must differ under another seed"
            );
            // And what is written is what was built.
            generate(&base, &o).unwrap();
            assert_eq!(files(&base), a.files);
            let _ = std::fs::remove_dir_all(&base);
        }
    }
}
