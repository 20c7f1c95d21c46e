//! The simulated device's revocation check against the zoo's responder in each fault
//! (SPEC §3.5): OCSP first, then the CRL, hard fail when neither answers. One test,
//! run in order against one responder (on a free port, the zoo re-signed to point at it).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hil::device::{JobEnd, TriggerAnswer};
use hil_mail::smtp::{ListenerKind, SmtpConfig};
use hil_mail::smtp_server::{Listen, ServerOptions, SmtpServer};
use hil_zoo::responder::RevocationFault;

fn shipped_certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// One scan with only the revocation flag on, against a server showing `cert` of the
/// zoo in `certs`.
fn scan(rt: &tokio::runtime::Runtime, certs: &Path, cert: &str) -> JobEnd {
    let (_sim, mut con) = common::sim(&[]);
    let identity = hil_mail::tls::load(
        cert,
        &certs.join(format!("{cert}.crt")),
        &certs.join(format!("{cert}.key")),
    )
    .expect("zoo cert");
    let server = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind: ListenerKind::Tls,
                bind: "127.0.0.1:0".parse().expect("bind"),
                identity: Some(identity),
            }],
            SmtpConfig::default(),
            ServerOptions::default(),
        ))
        .expect("server");
    let root = std::fs::read_to_string(certs.join("root.crt")).expect("root.crt");
    con.import_cert(&root).expect("cert import");
    let port = server.addr().port().to_string();
    let pairs: Vec<(String, String)> = [
        ("smtp.server", "localhost"),
        ("smtp.ssl_port", port.as_str()),
        ("smtp.tls", "smtps"),
        ("smtp.timeout", "30"),
        ("smtp.verify.expiry", "off"),
        ("smtp.verify.revocation", "on"),
        ("admin.address", "admin@hil.test"),
        ("device.address", "mfp@hil.test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    con.apply(&common::keyed(&pairs), &[]).expect("apply");
    let TriggerAnswer::Job(id) = con
        .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")])
        .expect("trigger")
    else {
        panic!("refused")
    };
    con.wait_job(id, Duration::from_secs(30)).expect("job end")
}

fn class(end: &JobEnd) -> &str {
    match end {
        JobEnd::Done => "accept",
        JobEnd::Failed { class, .. } => class,
    }
}

#[test]
fn revocation_under_each_responder_fault() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The time scale of the responder matches the device's: `slow` outlasts its timeout.
    let served = rt
        .block_on(hil_zoo::served::serve(
            &shipped_certs(),
            None,
            &std::env::temp_dir().join("hil-test-zoo-cache"),
            20.0,
            RevocationFault::None,
        ))
        .expect("the zoo's responder on a free port");
    let responder = &served.responder;
    // fault, certificate, what the device must say.
    let table: &[(RevocationFault, &str, &str)] = &[
        (RevocationFault::None, "valid", "accept"),
        (RevocationFault::None, "revoked_ocsp", "cert_revoked"),
        (RevocationFault::None, "revoked_crl", "cert_revoked"),
        (RevocationFault::None, "ocsp_unknown", "accept"),
        (
            RevocationFault::None,
            "no_revocation_info",
            "cert_revocation_unknown",
        ),
        // Nothing answers: hard fail.
        (RevocationFault::Down, "valid", "cert_revocation_unknown"),
        (
            RevocationFault::Slow { ms: 400_000 },
            "valid",
            "cert_revocation_unknown",
        ),
        (RevocationFault::Http500, "valid", "cert_revocation_unknown"),
        (
            RevocationFault::Malformed,
            "valid",
            "cert_revocation_unknown",
        ),
        // OCSP still answers good; a stale CRL only matters when OCSP cannot answer.
        (RevocationFault::StaleCrl, "valid", "accept"),
        (
            RevocationFault::StaleCrl,
            "revoked_crl",
            "cert_revocation_unknown",
        ),
        // Answers signed by someone else count as no answer at all.
        (
            RevocationFault::WrongSigner,
            "valid",
            "cert_revocation_unknown",
        ),
        (
            RevocationFault::WrongSigner,
            "revoked_ocsp",
            "cert_revocation_unknown",
        ),
    ];
    let mut bad = Vec::new();
    for (fault, cert, want) in table {
        rt.block_on(responder.set_fault(*fault)).expect("fault");
        let end = scan(&rt, &served.dir, cert);
        if class(&end) != *want {
            bad.push(format!(
                "{fault:?} {cert}: expected {want}, the device said {end:?}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
