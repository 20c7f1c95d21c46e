//! `hil serve`: a scenario's servers standalone, for manual QA and for driving with
//! other clients (swaks, curl). Prints every endpoint, writes each finished
//! connection as one JSON line, and stops cleanly on Ctrl-C or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::scenario::Scenario;
use crate::serve;

/// What `hil serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub scenario: PathBuf,
    pub bind: crate::netaddr::BindAddr,
    pub certs: PathBuf,
    pub transcripts: PathBuf,
    pub time_scale: f64,
}

/// Runs until Ctrl-C or SIGTERM; answers how many connections were written.
pub fn run(o: ServeOptions) -> Result<usize, String> {
    let scenario = Scenario::load(&o.scenario)?;
    if !(o.time_scale.is_finite() && o.time_scale >= 1.0) {
        return Err(format!("--time-scale {}: must be at least 1", o.time_scale));
    }
    let mut out = std::fs::File::create(&o.transcripts)
        .map_err(|e| format!("{}: cannot write transcripts: {e}", o.transcripts.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let running = serve::start(&scenario, &o.bind, &o.certs, o.time_scale).await?;
        say!(
            "hil serve: scenario {} ({})",
            scenario.name,
            o.scenario.display()
        );
        if !scenario.description.is_empty() {
            say!("  {}", scenario.description);
        }
        for e in &running.endpoints {
            say!("  {e}");
        }
        say!("  transcripts: {}", o.transcripts.display());
        say!("ready");
        let _ = std::io::stdout().flush();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
        if let Some(s) = &running.smtp {
            let (ctx, mut crx) = tokio::sync::mpsc::unbounded_channel();
            s.on_finished(ctx);
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some((c, msgs)) = crx.recv().await {
                    let _ = tx.send(json!({ "server": "smtp", "connection": c, "messages": msgs }));
                }
            });
        }
        if let Some(p) = &running.pop3 {
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
            p.on_finished(ptx);
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(c) = prx.recv().await {
                    let _ = tx.send(json!({ "server": "pop3", "connection": c }));
                }
            });
        }
        drop(tx);
        let mut written = 0usize;
        let mut write = |v: &serde_json::Value| -> Result<(), String> {
            let line = serde_json::to_string(v).map_err(|e| e.to_string())?;
            writeln!(out, "{line}")
                .and_then(|_| out.flush())
                .map_err(|e| format!("{}: cannot write: {e}", o.transcripts.display()))?;
            written += 1;
            Ok(())
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = term.recv() => break,
                v = rx.recv() => match v {
                    Some(v) => write(&v)?,
                    None => break,
                },
            }
        }
        // Whatever finished meanwhile, then what is still open (a hung session is
        // often exactly what the QA engineer came to see).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        while let Ok(v) = rx.try_recv() {
            write(&v)?;
        }
        if let Some(s) = &running.smtp {
            let obs = s.take();
            for c in obs.connections {
                let msgs: Vec<_> = obs
                    .messages
                    .iter()
                    .filter(|m| m.connection == c.id)
                    .cloned()
                    .collect();
                write(&json!({ "server": "smtp", "connection": c, "messages": msgs }))?;
            }
            for r in obs.reassembled {
                write(&json!({ "server": "smtp", "reassembled": r }))?;
            }
        }
        if let Some(p) = &running.pop3 {
            for c in p.take() {
                write(&json!({ "server": "pop3", "connection": c }))?;
            }
        }
        say!(
            "hil serve: stopped; {written} records written to {}",
            o.transcripts.display()
        );
        Ok(written)
    })
}
