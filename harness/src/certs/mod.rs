//! The certificate zoo: generated CAs and server certificates for every check the
//! device makes (SPEC §3.5), deterministic per seed. `keys` makes the keys; `zoo`
//! the certificates, CRLs and the manifest.

pub mod keys;
pub mod zoo;
