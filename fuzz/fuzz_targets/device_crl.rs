//! The device's reading of a CRL (`mfp_sim::revocation::read_crl`) fed arbitrary bytes
//! as the CRL server's answer about the zoo's `valid` certificate, issued by the
//! zoo's intermediate CA (both read from `certs/`), with the device clock in 2026.
//!
//! Input: one flags byte, then the CRL body (DER).
//! - bit 0: the device has the issuer (the signature is checked).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfp_sim::revocation::read_crl;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::{FromDer, X509Certificate};

fn der_of(pem: &[u8]) -> Vec<u8> {
    parse_x509_pem(pem)
        .expect("a certificate of certs/")
        .1
        .contents
}

fn certs() -> &'static (Vec<u8>, Vec<u8>) {
    static C: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    C.get_or_init(|| {
        (
            der_of(include_bytes!("../../certs/valid.crt")),
            der_of(include_bytes!("../../certs/intermediate.crt")),
        )
    })
}

/// 2026-06-01T00:00:00Z.
const NOW: i64 = 1_780_272_000;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (leaf, issuer) = certs();
    let Ok((_, leaf)) = X509Certificate::from_der(leaf) else {
        return;
    };
    let issuer = (flags & 1 != 0).then_some(issuer.as_slice());
    let _ = read_crl(body, &leaf, issuer, NOW);
});
