//! The OCSP responder and CRL server, over real HTTP with a client that is not ours
//! (ureq): answers per the manifest, and every scripted fault: down, slow, HTTP 500,
//! malformed, stale CRL, wrong signer.

use std::io::Read;
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use hil_zoo::ocsp;
use hil_zoo::responder::{Responder, RevocationFault};
use hil_zoo::zoo::{build, Zoo, ZooOptions};
use x509_cert::crl::CertificateList;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

/// Device time runs this much faster: the `slow` fault's 400 s are 2 s here.
const SCALE: f64 = 200.0;

fn zoo() -> Zoo {
    build(&ZooOptions {
        key: hil_zoo::keys::KeyKind::Ed25519,
        ..ZooOptions::default()
    })
    .expect("zoo")
}

fn leaf_and_issuer(zoo: &Zoo, name: &str) -> (Vec<u8>, Vec<u8>) {
    let entry = zoo
        .manifest
        .cert
        .iter()
        .find(|c| c.name == name)
        .expect("cert");
    let pem = String::from_utf8_lossy(&zoo.files[&entry.file]).to_string();
    let leaf = rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(|r: Result<rustls_pki_types::CertificateDer<'static>, _>| r.ok())
        .expect("leaf");
    let issuer = zoo
        .cas
        .iter()
        .find(|c| c.label == entry.issuer)
        .expect("issuer");
    (leaf.to_vec(), issuer.der.clone())
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

fn post_ocsp(base: &str, req: &[u8]) -> Result<(u16, Vec<u8>), Box<ureq::Error>> {
    let r = agent()
        .post(&format!("{base}/ocsp"))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(req)
        .map_err(Box::new)?;
    let status = r.status();
    let mut body = Vec::new();
    r.into_reader().read_to_end(&mut body).expect("body");
    Ok((status, body))
}

fn get(base: &str, path: &str) -> Result<(u16, Vec<u8>), Box<ureq::Error>> {
    let r = agent()
        .get(&format!("{base}{path}"))
        .call()
        .map_err(Box::new)?;
    let status = r.status();
    let mut body = Vec::new();
    r.into_reader().read_to_end(&mut body).expect("body");
    Ok((status, body))
}

fn status_of(resp: &[u8]) -> CertStatus {
    let r = OcspResponse::from_der(resp).expect("an OCSP response");
    assert_eq!(r.response_status, OcspResponseStatus::Successful);
    let bytes = r.response_bytes.expect("response bytes");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic response");
    basic.tbs_response_data.responses[0].cert_status
}

#[test]
fn answers_and_faults_over_http() {
    let zoo = zoo();
    let (valid, inter) = leaf_and_issuer(&zoo, "valid");
    let (revoked, _) = leaf_and_issuer(&zoo, "revoked_ocsp");
    let (unknown, _) = leaf_and_issuer(&zoo, "ocsp_unknown");
    let genuine_crl = zoo.files["intermediate.crl"].clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let responder = rt
        .block_on(Responder::start(
            "127.0.0.1:0".parse().expect("addr"),
            zoo,
            SCALE,
        ))
        .expect("responder");
    let base = format!("http://{}", responder.addr());

    // No fault: statuses from the manifest, CRLs as generated.
    let req = |leaf: &[u8]| ocsp::request(leaf, &inter).expect("request");
    let (code, body) = post_ocsp(&base, &req(&valid)).expect("post");
    assert_eq!(code, 200);
    assert!(matches!(status_of(&body), CertStatus::Good(_)));
    let (_, body) = post_ocsp(&base, &req(&revoked)).expect("post");
    assert!(matches!(status_of(&body), CertStatus::Revoked(_)));
    let (_, body) = post_ocsp(&base, &req(&unknown)).expect("post");
    assert!(matches!(status_of(&body), CertStatus::Unknown(_)));
    // RFC 6960 appendix A.1: GET with the request in base64, URL-encoded.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(req(&valid));
    let path = format!(
        "/ocsp/{}",
        b64.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let (_, body) = get(&base, &path).expect("get");
    assert!(matches!(status_of(&body), CertStatus::Good(_)));
    let (code, crl) = get(&base, "/crl/intermediate.crl").expect("crl");
    assert_eq!((code, &crl), (200, &genuine_crl));
    let list = CertificateList::from_der(&crl).expect("a CRL");
    assert_eq!(
        list.tbs_cert_list.revoked_certificates.map(|r| r.len()),
        Some(1)
    );
    assert!(matches!(
        get(&base, "/nothing"),
        Err(e) if matches!(*e, ureq::Error::Status(404, _))
    ));

    // down: connection refused.
    rt.block_on(responder.set_fault(RevocationFault::Down))
        .expect("fault");
    match get(&base, "/crl/intermediate.crl") {
        Err(e) => match *e {
            ureq::Error::Transport(t) => {
                assert_eq!(t.kind(), ureq::ErrorKind::ConnectionFailed, "{t}")
            }
            other => panic!("down: {other:?}"),
        },
        other => panic!("down: {other:?}"),
    }

    // slow: 400 s of device time (2 s here) before any answer.
    rt.block_on(responder.set_fault(RevocationFault::Slow { ms: 400_000 }))
        .expect("fault");
    let impatient = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(500))
        .build();
    let t0 = Instant::now();
    let r = impatient
        .get(&format!("{base}/crl/intermediate.crl"))
        .call();
    assert!(
        matches!(r, Err(ureq::Error::Transport(_))),
        "slow answered within 0.5 s"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    let t0 = Instant::now();
    let (code, _) = get(&base, "/crl/intermediate.crl").expect("slow but answered");
    assert_eq!(code, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );

    // http500.
    rt.block_on(responder.set_fault(RevocationFault::Http500))
        .expect("fault");
    assert!(matches!(
        post_ocsp(&base, &req(&valid)),
        Err(e) if matches!(*e, ureq::Error::Status(500, _))
    ));
    assert!(matches!(
        get(&base, "/crl/intermediate.crl"),
        Err(e) if matches!(*e, ureq::Error::Status(500, _))
    ));

    // malformed: 200, but neither an OCSP response nor a CRL.
    rt.block_on(responder.set_fault(RevocationFault::Malformed))
        .expect("fault");
    let (code, body) = post_ocsp(&base, &req(&valid)).expect("post");
    assert_eq!(code, 200);
    assert!(OcspResponse::from_der(&body).is_err());
    let (_, body) = get(&base, "/crl/intermediate.crl").expect("crl");
    assert!(CertificateList::from_der(&body).is_err());

    // stale_crl: nextUpdate in the past.
    rt.block_on(responder.set_fault(RevocationFault::StaleCrl))
        .expect("fault");
    let (_, body) = get(&base, "/crl/intermediate.crl").expect("crl");
    let list = CertificateList::from_der(&body).expect("a CRL");
    let next = list
        .tbs_cert_list
        .next_update
        .expect("nextUpdate")
        .to_unix_duration();
    assert!(
        next < std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
    );

    // wrong_signer: the answer is about the right certificate, signed by another CA.
    rt.block_on(responder.set_fault(RevocationFault::WrongSigner))
        .expect("fault");
    let (_, body) = post_ocsp(&base, &req(&valid)).expect("post");
    let r = OcspResponse::from_der(&body).expect("response");
    let basic = BasicOcspResponse::from_der(r.response_bytes.expect("bytes").response.as_bytes())
        .expect("basic");
    let inter_cert = x509_cert::Certificate::from_der(&inter).expect("issuer");
    let signer_cert = basic
        .certs
        .as_ref()
        .and_then(|c| c.first())
        .expect("signer cert");
    assert_ne!(
        signer_cert.to_der().expect("der"),
        inter_cert.to_der().expect("der")
    );
    let (_, body) = get(&base, "/crl/intermediate.crl").expect("crl");
    let forged = CertificateList::from_der(&body).expect("a CRL");
    assert_eq!(
        forged.tbs_cert_list.issuer, list.tbs_cert_list.issuer,
        "same issuer name"
    );
    assert_ne!(body, genuine_crl, "another signature");

    // Every request was recorded.
    assert!(responder.requests().len() >= 12);
}
