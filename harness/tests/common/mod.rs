//! What the integration tests share: a simulated device started as `hil sim` on a
//! raw TCP console, driven through the reference profile.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use hil::device::{Console, Endpoint, Profile};
use hil::runner::SIM_PROFILE;
use hil_oracle::model::Key;

/// The simulated device's process; killed when dropped.
pub struct Sim(pub Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hil sim --console tcp:127.0.0.1:0 --time-scale 20 EXTRA…` and opens its
/// console with the reference profile.
pub fn sim(extra: &[&str]) -> (Sim, Console) {
    sim_at(20.0, extra)
}

/// `sim`, device time running `scale` times faster.
pub fn sim_at(scale: f64, extra: &[&str]) -> (Sim, Console) {
    let (sim, addr) = sim_process(scale, extra);
    let profile = Arc::new(Profile::parse("sim.toml", SIM_PROFILE).expect("profile"));
    let con = Console::open(&Endpoint::Tcp { addr }, profile).expect("console");
    (sim, con)
}

/// Starts `hil sim --console tcp:127.0.0.1:0 --time-scale SCALE EXTRA…`; returns it
/// and its console's address (`127.0.0.1:PORT`).
pub fn sim_process(scale: f64, extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["sim", "--console", "tcp:127.0.0.1:0", "--time-scale"])
        .arg(scale.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hil sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the console line");
    let sim = Sim(child);
    let addr = line
        .trim()
        .strip_prefix("console: tcp:")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_string();
    (sim, addr)
}

/// The reference profile.
pub fn sim_profile() -> Arc<Profile> {
    Arc::new(Profile::parse("sim.toml", SIM_PROFILE).expect("profile"))
}

/// Key/value pairs as the driver's `apply` takes them (SPEC keys parsed; a test's
/// misspelt key panics here, by name).
pub fn pairs(p: &[(&str, &str)]) -> Vec<(Key, String)> {
    p.iter().map(|(k, v)| (key(k), v.to_string())).collect()
}

/// Pairs with string keys, keyed.
pub fn keyed(p: &[(String, String)]) -> Vec<(Key, String)> {
    p.iter().map(|(k, v)| (key(k), v.clone())).collect()
}

/// A SPEC key by its name.
pub fn key(name: &str) -> Key {
    name.parse()
        .unwrap_or_else(|e| panic!("{name:?} is not a setting: {e}"))
}

/// Keys by their names.
pub fn keys(names: &[&str]) -> Vec<Key> {
    names.iter().map(|n| key(n)).collect()
}

/// The committed certificate zoo.
pub fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}
