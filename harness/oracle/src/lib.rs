//! hil-oracle: the harness's own reading of the device contract (SPEC), independent of
//! the simulated device: this crate never depends on `mfp-sim` (a test reads `cargo
//! metadata` and fails if it ever does), so a bug in the simulator cannot agree with
//! itself.
//!
//! - `model`: SPEC §1 (defaults, input rules, the certificate name check) and what a
//!   case asks of a device.
//! - `oracle`: what a correct device does for a case (a `Prediction`).
//! - `matrix`: the setting matrix (dimensions, don't-care rules, sections, exhaustive
//!   rows and covering arrays, case ids); `covering`: the t-way covering-array engine;
//!   `masking`: masking-aware covering arrays over the matrix (a tuple counts only
//!   where its dimensions matter); `cases`: the first hand-written set of cases.
//!
//! Settings (`model::Key`), certificate checks (`model::Check`) and dimensions
//! (`matrix::Dim`) are named by enums, so a misspelt name does not compile; errors at
//! the crate's boundary are typed (`model::InvalidValue`, `matrix::BuildError`,
//! `matrix::IdError`, `oracle::Unpredictable`, `covering::CoveringError`).

pub mod cases;
pub mod covering;
mod dim;
pub mod masking;
pub mod matrix;
pub mod model;
mod named;
pub mod oracle;
