//! mfp-testdev, a test device for the harness (being built): the vocabulary, the
//! quoting, the clock, the reference reader, and the console session over them (no
//! I/O yet).

#![allow(dead_code)]

mod banner;
mod clock;
mod command;
mod editor;
mod jobs;
mod pager;
mod pem;
mod quoting;
mod reference;
mod render;
mod session;
mod traits;
mod words;

fn main() {}
