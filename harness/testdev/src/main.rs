//! mfp-testdev, a test device for the harness (being built): the vocabulary, the
//! per-parameter quoting, the Cisco clock and the reader of the engine's reference
//! protocol, not used yet.

#![allow(dead_code)]

mod clock;
mod quoting;
mod reference;
mod words;

fn main() {}
