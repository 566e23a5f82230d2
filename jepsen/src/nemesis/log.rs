//! The nemesis log: every fault's start and stop (and failures to inject or heal), with the
//! harness's monotonic and wall-clock times, appended to `nemesis.jsonl`.

use std::fs::File;
use std::io::BufRead;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

use crate::history::Recorder;

/// One nemesis event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NemesisEvent {
    /// Nanoseconds since the run started (the history's clock).
    pub time_ns: u64,
    /// Wall-clock nanoseconds since the epoch.
    pub wall_ns: u64,
    /// The fault (`kill`, `partition`, ..., or `heal` for the final heal).
    pub fault: String,
    /// `start`, `stop` or `error`.
    pub action: String,
    /// Nodes concerned.
    pub targets: Vec<u64>,
    /// Specifics: partition shape and grudge, loss rate, clock offsets, error text.
    pub detail: Value,
}

/// The live log.
pub struct NemesisLog {
    recorder: Arc<Recorder>,
    inner: Mutex<(Vec<NemesisEvent>, Option<BufWriter<File>>)>,
}

impl NemesisLog {
    /// A log writing to `path` (memory only when `None`), timed by `recorder`'s clock.
    pub fn create(path: Option<&Path>, recorder: Arc<Recorder>) -> std::io::Result<NemesisLog> {
        let file = match path {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        Ok(NemesisLog {
            recorder,
            inner: Mutex::new((Vec::new(), file)),
        })
    }

    /// Records an event.
    pub fn log(&self, fault: &str, action: &str, targets: &[u64], detail: Value) {
        let time_ns = self.recorder.now_ns();
        let event = NemesisEvent {
            time_ns,
            wall_ns: self.recorder.wall_ns(time_ns),
            fault: fault.to_string(),
            action: action.to_string(),
            targets: targets.to_vec(),
            detail,
        };
        tracing_line(&event);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = inner.1.as_mut()
            && let Ok(line) = serde_json::to_string(&event)
        {
            let _ = writeln!(file, "{line}");
            let _ = file.flush();
        }
        inner.0.push(event);
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<NemesisEvent> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

fn tracing_line(event: &NemesisEvent) {
    eprintln!(
        "[{:>7.1}s] nemesis {} {} {:?} {}",
        event.time_ns as f64 / 1e9,
        event.fault,
        event.action,
        event.targets,
        if event.detail.is_null() {
            String::new()
        } else {
            event.detail.to_string()
        }
    );
}

/// Reads a stored `nemesis.jsonl` (missing file: no events).
pub fn load(path: &Path) -> anyhow::Result<Vec<NemesisEvent>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            events.push(serde_json::from_str(&line)?);
        }
    }
    Ok(events)
}

/// Fault windows `(fault, start_ns, stop_ns)` from events (an unstopped fault ends at `end_ns`).
pub fn windows(events: &[NemesisEvent], end_ns: u64) -> Vec<(String, u64, u64)> {
    let mut open: Vec<(String, u64)> = Vec::new();
    let mut out = Vec::new();
    for event in events {
        match event.action.as_str() {
            "start" => open.push((event.fault.clone(), event.time_ns)),
            "stop" => {
                if let Some(i) = open.iter().position(|(f, _)| *f == event.fault) {
                    let (fault, start) = open.remove(i);
                    out.push((fault, start, event.time_ns));
                }
            }
            _ => {}
        }
    }
    out.extend(open.into_iter().map(|(f, s)| (f, s, end_ns)));
    out.sort_by_key(|w| w.1);
    out
}
