//! The leak scan: every secret value the run wrote is a random canary (`CANARY-<hex>`), and the
//! root token and unseal shares are secrets too. After the run, every byte of the node logs,
//! the node data directories (RocksDB files, Raft log, snapshots) and the exported audit
//! journals is searched for them. Any hit is a leak: values and records must be encrypted at
//! rest, and audit records hold only HMACs.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;
use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;

/// The prefix of every canary value.
pub const CANARY_PREFIX: &str = "CANARY-";
/// Hex digits after the prefix.
pub const CANARY_HEX_LEN: usize = 16;

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Needles {
    /// Every canary written in the run.
    pub canaries: HashSet<String>,
    /// Other secrets, with a label used in reports instead of the secret itself.
    pub secrets: Vec<(String, String)>,
}

/// One occurrence of a secret where none may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The file.
    pub file: String,
    /// Byte offset of the occurrence.
    pub offset: u64,
    /// What was found: `canary` (a value the run wrote), `canary-prefix` (the canary prefix
    /// with an unknown suffix) or a secret's label (`root-token`, `unseal-share-2`, ...).
    pub what: String,
}

/// The scan's findings (stored in `leak-scan.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeakScan {
    /// Files read.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Canaries searched for.
    pub canaries: usize,
    /// Other secrets searched for.
    pub secrets: usize,
    /// Hits (at most 1000 kept).
    pub hits: Vec<Hit>,
    /// Files that could not be read.
    pub unreadable: Vec<String>,
}

/// Hits kept at most.
const MAX_HITS: usize = 1000;

/// Every regular file under `roots` (files themselves are taken as they are).
pub fn files_under(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Scans every file under `roots` for `needles`.
pub fn scan(roots: &[PathBuf], needles: &Needles) -> LeakScan {
    let mut result = LeakScan {
        canaries: needles.canaries.len(),
        secrets: needles.secrets.len(),
        ..LeakScan::default()
    };
    for file in files_under(roots) {
        match fs::read(&file) {
            Ok(bytes) => {
                result.files += 1;
                result.bytes += bytes.len() as u64;
                scan_bytes(&file, &bytes, needles, &mut result.hits);
            }
            Err(err) => result.unreadable.push(format!("{}: {err}", file.display())),
        }
    }
    result
}

/// Scans one buffer, appending hits.
pub fn scan_bytes(file: &Path, bytes: &[u8], needles: &Needles, hits: &mut Vec<Hit>) {
    let prefix = CANARY_PREFIX.as_bytes();
    let mut first = [false; 256];
    first[prefix[0] as usize] = true;
    for (_, secret) in &needles.secrets {
        if let Some(&b) = secret.as_bytes().first() {
            first[b as usize] = true;
        }
    }
    let mut i = 0;
    while i < bytes.len() {
        if !first[bytes[i] as usize] {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let mut found = None;
        if rest.starts_with(prefix) {
            let end = (prefix.len() + CANARY_HEX_LEN).min(rest.len());
            let candidate = String::from_utf8_lossy(&rest[..end]).to_string();
            found = Some(if needles.canaries.contains(&candidate) {
                "canary".to_string()
            } else {
                "canary-prefix".to_string()
            });
        } else if let Some((label, _)) = needles
            .secrets
            .iter()
            .find(|(_, secret)| !secret.is_empty() && rest.starts_with(secret.as_bytes()))
        {
            found = Some(label.clone());
        }
        if let Some(what) = found {
            if hits.len() < MAX_HITS {
                hits.push(Hit {
                    file: file.display().to_string(),
                    offset: i as u64,
                    what,
                });
            }
            i += prefix.len().max(1);
        } else {
            i += 1;
        }
    }
}

/// Turns scan findings into a result.
pub fn check(scan: &LeakScan) -> CheckResult {
    let anomalies: Vec<Anomaly> = scan
        .hits
        .iter()
        .map(|hit| {
            Anomaly::new(
                "leak",
                None,
                vec![],
                format!("{} found in {} at byte {}", hit.what, hit.file, hit.offset),
            )
        })
        .collect();
    let fallback = if scan.files == 0 || scan.canaries == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let result = CheckResult::from_anomalies(
        "leak-scan",
        anomalies,
        json!({
            "files": scan.files,
            "bytes": scan.bytes,
            "canaries": scan.canaries,
            "secrets": scan.secrets,
            "unreadable": scan.unreadable.len(),
        }),
        fallback,
    );
    if fallback == Validity::Unknown {
        result.with_note("nothing scanned, or no canary written")
    } else {
        result
    }
}
