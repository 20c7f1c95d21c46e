//! Whether each server-side value of a run met its script (issue 19): a fault or a
//! scenario whose step no case reached tests nothing, however the cases end. Read
//! from the records, as the servers kept them: a `server.fault` value that scripts
//! faults or policies fired when an SMTP connection of one of its cases lists a
//! fired fault or a met policy; a `server.pop_fault` value when a POP3 connection
//! does. Values that script nothing the server could record (other extensions, AUTH
//! offers, a closed or silent port) are left to the oracle's check, `hil matrix`.

use std::collections::BTreeMap;

use hil_oracle::matrix::Matrix;

use crate::record::{Record, Verdict};

/// The scripted `server.fault` and `server.pop_fault` values among `records` that
/// fired in none of them, as `dimension=value`, sorted. Cases the harness could not
/// run do not count either way.
pub fn never_fired(m: &Matrix, records: &[Record]) -> Vec<String> {
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    for r in records {
        if matches!(r.verdict, Verdict::HarnessError) {
            continue;
        }
        if let Some(v) = r.dims.get("server.fault") {
            if m.ctx.faults.get(v).is_some_and(|f| f.scripted()) {
                let fired = r
                    .transcripts
                    .iter()
                    .any(|t| t.server == "smtp" && !t.fired.is_empty());
                *seen.entry(format!("server.fault={v}")).or_default() |= fired;
            }
        }
        if let Some(v) = r.dims.get("server.pop_fault") {
            if v != "none" && m.ctx.pop_faults.contains_key(v) {
                let fired = r
                    .transcripts
                    .iter()
                    .any(|t| t.server == "pop3" && !t.fired.is_empty());
                *seen.entry(format!("server.pop_fault={v}")).or_default() |= fired;
            }
        }
    }
    seen.into_iter()
        .filter(|(_, fired)| !fired)
        .map(|(v, _)| v)
        .collect()
}
