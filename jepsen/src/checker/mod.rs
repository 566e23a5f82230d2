//! Checkers: pure functions from a recorded run (history, audit export, scan findings) to a
//! verdict with minimal witnesses. Nothing here talks to a cluster, so every checker runs on
//! hand-made histories in tests and on stored runs (`strongroom-jepsen check DIR`).

pub mod audit;
pub mod leak;
pub mod liveness;
pub mod register;
pub mod set;
pub mod transit;
pub mod wgl;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

/// A checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// No anomaly found, and the check was complete.
    Valid,
    /// At least one anomaly.
    Invalid,
    /// The check could not decide (time budget exhausted, nothing to check).
    Unknown,
}

impl Validity {
    /// Combines verdicts: invalid wins, then unknown.
    pub fn and(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }

    /// Jepsen's rendering: `true`, `false` or `"unknown"`.
    pub fn to_json(self) -> Value {
        match self {
            Validity::Valid => Value::Bool(true),
            Validity::Invalid => Value::Bool(false),
            Validity::Unknown => Value::String("unknown".into()),
        }
    }

    /// Parses [`Validity::to_json`]'s rendering.
    pub fn from_json(value: &Value) -> Validity {
        match value {
            Value::Bool(true) => Validity::Valid,
            Value::Bool(false) => Validity::Invalid,
            _ => Validity::Unknown,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Validity::from_json(&Value::deserialize(deserializer)?))
    }
}

/// One anomaly with the operations that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The anomaly class (`stale-read`, `lost`, `duplicate-record`, ...).
    pub kind: String,
    /// The register key or audit path concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// History indexes of the operations that witness it (completion events where known).
    #[serde(default)]
    pub ops: Vec<u64>,
    /// A sentence saying what is wrong.
    pub explanation: String,
}

impl Anomaly {
    /// An anomaly of `kind` about `key`.
    pub fn new(kind: &str, key: Option<&str>, ops: Vec<u64>, explanation: String) -> Anomaly {
        Anomaly {
            kind: kind.to_string(),
            key: key.map(str::to_string),
            ops,
            explanation,
        }
    }
}

/// Anomalies kept per checker in results (the count is always exact).
pub const MAX_REPORTED: usize = 50;

/// One checker's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// The checker's name.
    pub name: String,
    /// Its verdict.
    pub valid: Validity,
    /// Counts describing what was checked.
    pub stats: Value,
    /// How many anomalies were found (the list below may be truncated).
    pub anomaly_count: usize,
    /// The first [`MAX_REPORTED`] anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Why the verdict is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CheckResult {
    /// A result from anomalies: invalid if any, else `fallback` (valid or unknown).
    pub fn from_anomalies(
        name: &str,
        mut anomalies: Vec<Anomaly>,
        stats: Value,
        fallback: Validity,
    ) -> CheckResult {
        let anomaly_count = anomalies.len();
        anomalies.truncate(MAX_REPORTED);
        CheckResult {
            name: name.to_string(),
            valid: if anomaly_count > 0 {
                Validity::Invalid
            } else {
                fallback
            },
            stats,
            anomaly_count,
            anomalies,
            note: None,
        }
    }

    /// Adds a note (why unknown, or what was skipped).
    pub fn with_note(mut self, note: impl Into<String>) -> CheckResult {
        self.note = Some(note.into());
        self
    }
}

/// The combined verdict of several results.
pub fn overall(results: &[CheckResult]) -> Validity {
    results
        .iter()
        .fold(Validity::Valid, |acc, result| acc.and(result.valid))
}
