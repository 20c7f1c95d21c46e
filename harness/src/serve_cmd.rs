//! `hil serve`: a scenario's servers standalone, for manual QA and for driving with
//! other clients (swaks, curl). Prints every endpoint, writes each finished
//! connection as one JSON line, and stops cleanly on Ctrl-C or SIGTERM.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use hil_mail::partial::Reassembled;
use hil_mail::pop3_server::Pop3Connection;
use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::Received;
use hil_mail::smtp_server::Connection;

/// Why `hil serve` did not run or stopped: its scenario or options, the servers, or
/// writing the transcripts (each names the file).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Scenario(#[from] hil_mail::scenario::ScenarioError),
    #[error("--time-scale {0}: must be at least 1")]
    TimeScale(f64),
    #[error("{}: cannot write transcripts: {source}", path.display())]
    CreateTranscripts {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise a record: {0}")]
    Serialise(#[source] serde_json::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Start(#[from] serve::StartError),
    #[error("cannot watch for SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
}

/// What `hil serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub scenario: PathBuf,
    pub bind: hil_mail::netaddr::BindAddr,
    pub certs: PathBuf,
    pub transcripts: PathBuf,
    pub time_scale: f64,
}

/// One line of `transcripts.jsonl`: a finished connection of either server.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Line<'a> {
    Smtp {
        server: &'static str,
        connection: &'a Connection,
        messages: &'a [Received],
    },
    Pop3 {
        server: &'static str,
        connection: &'a Pop3Connection,
    },
    Reassembled {
        server: &'static str,
        reassembled: &'a Reassembled,
    },
}

impl<'a> Line<'a> {
    pub fn smtp(connection: &'a Connection, messages: &'a [Received]) -> Self {
        Line::Smtp {
            server: "smtp",
            connection,
            messages,
        }
    }
    pub fn pop3(connection: &'a Pop3Connection) -> Self {
        Line::Pop3 {
            server: "pop3",
            connection,
        }
    }
    pub fn reassembled(reassembled: &'a Reassembled) -> Self {
        Line::Reassembled {
            server: "smtp",
            reassembled,
        }
    }

    /// The line's JSON, serialised straight from the records (no `serde_json::Value`
    /// in between: building and dropping one was half of `hil serve`'s instructions
    /// per connection).
    pub fn to_json(&self) -> Result<String, ServeError> {
        serde_json::to_string(self).map_err(ServeError::Serialise)
    }
}

/// `transcripts.jsonl`, buffered; `flush` when no more lines are waiting.
struct Out {
    file: BufWriter<File>,
    path: PathBuf,
    written: usize,
}

impl Out {
    fn line(&mut self, line: &str) -> Result<(), ServeError> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.write_all(b"\n"))
            .map_err(|source| self.write_error(source))?;
        self.written += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ServeError> {
        self.file.flush().map_err(|source| self.write_error(source))
    }
    fn write_error(&self, source: std::io::Error) -> ServeError {
        ServeError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Writes one line to the shared `transcripts.jsonl`, flushing it when `flush`.
fn write_line(out: &Mutex<Out>, line: Line<'_>, flush: bool) -> Result<(), ServeError> {
    let json = line.to_json()?;
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    out.line(&json)?;
    if flush {
        out.flush()?;
    }
    Ok(())
}

/// Runs until Ctrl-C or SIGTERM; answers how many connections were written.
pub fn run(o: ServeOptions) -> Result<usize, ServeError> {
    let scenario = Scenario::load(&o.scenario)?;
    if !(o.time_scale.is_finite() && o.time_scale >= 1.0) {
        return Err(ServeError::TimeScale(o.time_scale));
    }
    let file = File::create(&o.transcripts).map_err(|source| ServeError::CreateTranscripts {
        path: o.transcripts.clone(),
        source,
    })?;
    let out = Out {
        file: BufWriter::new(file),
        path: o.transcripts.clone(),
        written: 0,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
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
        // Each finished connection is serialised and written by the task that receives
        // it, on the runtime's workers (no hop to this thread per connection), and
        // flushed whenever no more are waiting. A write error ends the command.
        let out = Arc::new(Mutex::new(out));
        let (err_tx, mut err_rx) = tokio::sync::mpsc::unbounded_channel::<ServeError>();
        if let Some(s) = &running.smtp {
            let (ctx, mut crx) = tokio::sync::mpsc::unbounded_channel();
            s.on_finished(ctx);
            let (out, err_tx) = (Arc::clone(&out), err_tx.clone());
            tokio::spawn(async move {
                while let Some((c, msgs)) = crx.recv().await {
                    if let Err(e) = write_line(&out, Line::smtp(&c, &msgs), crx.is_empty()) {
                        let _ = err_tx.send(e);
                        return;
                    }
                }
            });
        }
        if let Some(p) = &running.pop3 {
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
            p.on_finished(ptx);
            let (out, err_tx) = (Arc::clone(&out), err_tx.clone());
            tokio::spawn(async move {
                while let Some(c) = prx.recv().await {
                    if let Err(e) = write_line(&out, Line::pop3(&c), prx.is_empty()) {
                        let _ = err_tx.send(e);
                        return;
                    }
                }
            });
        }
        drop(err_tx);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ServeError::Signal)?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        tokio::select! {
            _ = &mut ctrl_c => {}
            _ = term.recv() => {}
            Some(e) = err_rx.recv() => return Err(e),
        }
        // Whatever finished meanwhile has been written by then; then what is still
        // open (a hung session is often exactly what the QA engineer came to see).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = &running.smtp {
            let obs = s.take();
            for c in obs.connections {
                let msgs: Vec<_> = obs
                    .messages
                    .iter()
                    .filter(|m| m.connection == c.id)
                    .cloned()
                    .collect();
                out.line(&Line::smtp(&c, &msgs).to_json()?)?;
            }
            for r in obs.reassembled {
                out.line(&Line::reassembled(&r).to_json()?)?;
            }
        }
        if let Some(p) = &running.pop3 {
            for c in p.take() {
                out.line(&Line::pop3(&c).to_json()?)?;
            }
        }
        out.flush()?;
        let written = out.written;
        say!(
            "hil serve: stopped; {written} records written to {}",
            o.transcripts.display()
        );
        Ok(written)
    })
}
