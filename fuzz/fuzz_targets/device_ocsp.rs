//! The device's reading of an OCSP response (`mfp_sim::revocation::read_ocsp`) fed
//! arbitrary bytes as the responder's answer about the zoo's `valid` certificate,
//! issued by the zoo's intermediate CA (both read from `certs/`).
//!
//! Input: the response body (DER).
#![no_main]

use std::sync::OnceLock;

use der::Decode;
use libfuzzer_sys::fuzz_target;
use mfp_sim::revocation::read_ocsp;
use x509_parser::pem::parse_x509_pem;

struct Certs {
    leaf: x509_cert::Certificate,
    issuer: Vec<u8>,
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    parse_x509_pem(pem)
        .expect("a certificate of certs/")
        .1
        .contents
}

fn certs() -> &'static Certs {
    static C: OnceLock<Certs> = OnceLock::new();
    C.get_or_init(|| Certs {
        leaf: x509_cert::Certificate::from_der(&der_of(include_bytes!("../../certs/valid.crt")))
            .expect("certs/valid.crt"),
        issuer: der_of(include_bytes!("../../certs/intermediate.crt")),
    })
}

fuzz_target!(|data: &[u8]| {
    let c = certs();
    let _ = read_ocsp(data, &c.leaf, &c.issuer);
});
