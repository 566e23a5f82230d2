//! Filters over decrypted audit records, for `sys/audit/log` and `strongroom audit tail`: by path
//! prefix, token accessor (compared by its HMAC, since records only hold the HMAC), operation,
//! status (exact, or a class such as `4xx`) and time range (`since`/`until`, RFC 3339, inclusive).
//!
//! A filter that names nothing matches every record.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Hasher;

/// A query parameter that cannot be used as a filter.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// The value of `name` is malformed.
    #[error("invalid {name} filter: {reason}")]
    Invalid {
        /// The query parameter.
        name: &'static str,
        /// What is wrong with it (never echoes the value: it may be an accessor).
        reason: &'static str,
    },
}

/// Which statuses a filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusMatch {
    /// One status code.
    Exact(u16),
    /// A class: `4xx` is 400..=499.
    Class(u16),
}

/// What a record must match (every field that is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    path_prefix: Option<String>,
    accessor_hmac: Option<String>,
    operation: Option<String>,
    status: Option<StatusMatch>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl RecordFilter {
    /// Reads `path`, `accessor`, `operation`, `status`, `since` and `until` from query parameters.
    /// A plain accessor is HMAC'd with `hasher`; an `hmac-sha256:...` value is used as given.
    pub fn from_query(
        query: &BTreeMap<String, String>,
        hasher: Hasher<'_>,
    ) -> Result<Self, FilterError> {
        let text = |name: &str| query.get(name).filter(|value| !value.is_empty());
        let time = |name: &'static str| -> Result<Option<OffsetDateTime>, FilterError> {
            text(name)
                .map(|value| {
                    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| FilterError::Invalid {
                        name,
                        reason: "expected an RFC 3339 time such as 2026-01-02T15:04:05Z",
                    })
                })
                .transpose()
        };
        let status = text("status")
            .map(|value| parse_status(value))
            .transpose()?;
        Ok(RecordFilter {
            path_prefix: text("path").map(|path| path.trim_start_matches('/').to_string()),
            accessor_hmac: text("accessor").map(|accessor| {
                if accessor.starts_with("hmac-sha256:") {
                    accessor.clone()
                } else {
                    hasher(accessor.as_bytes())
                }
            }),
            operation: text("operation").map(|op| op.to_ascii_lowercase()),
            status,
            since: time("since")?,
            until: time("until")?,
        })
    }

    /// Whether `record` (a decrypted record in Vault's shape) passes every set criterion.
    pub fn matches(&self, record: &Value) -> bool {
        let request = &record["request"];
        if let Some(prefix) = &self.path_prefix
            && !request["path"]
                .as_str()
                .is_some_and(|path| path.starts_with(prefix.as_str()))
        {
            return false;
        }
        if let Some(accessor) = &self.accessor_hmac
            && record["auth"]["accessor"].as_str() != Some(accessor.as_str())
        {
            return false;
        }
        if let Some(operation) = &self.operation
            && request["operation"].as_str() != Some(operation.as_str())
        {
            return false;
        }
        if let Some(status) = self.status {
            let Some(actual) = record["response"]["status"].as_u64() else {
                return false;
            };
            let ok = match status {
                StatusMatch::Exact(code) => actual == u64::from(code),
                StatusMatch::Class(class) => actual / 100 == u64::from(class),
            };
            if !ok {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(at) = record["time"]
                .as_str()
                .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
            else {
                return false;
            };
            if self.since.is_some_and(|since| at < since) || self.until.is_some_and(|u| at > u) {
                return false;
            }
        }
        true
    }
}

fn parse_status(value: &str) -> Result<StatusMatch, FilterError> {
    let invalid = FilterError::Invalid {
        name: "status",
        reason: "expected a status code (404) or a class (4xx)",
    };
    let lower = value.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(class @ 1..=5) => Ok(StatusMatch::Class(class)),
            _ => Err(invalid),
        };
    }
    match lower.parse::<u16>() {
        Ok(code @ 100..=599) => Ok(StatusMatch::Exact(code)),
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fake_hmac(bytes: &[u8]) -> String {
        format!("hmac-sha256:{}", String::from_utf8_lossy(bytes).len())
    }

    fn filter(pairs: &[(&str, &str)]) -> Result<RecordFilter, FilterError> {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RecordFilter::from_query(&query, &fake_hmac)
    }

    fn record(path: &str, op: &str, status: u16, time: &str) -> Value {
        json!({
            "time": time,
            "auth": {"accessor": "hmac-sha256:5"},
            "request": {"path": path, "operation": op},
            "response": {"status": status},
        })
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = filter(&[]).unwrap();
        assert!(f.matches(&record("a", "read", 200, "2026-01-01T00:00:00Z")));
        assert!(f.matches(&json!({})));
    }

    #[test]
    fn each_criterion_filters() {
        let r = record("secret/data/app", "update", 403, "2026-01-02T00:00:00.5Z");
        assert!(filter(&[("path", "secret/")]).unwrap().matches(&r));
        assert!(filter(&[("path", "/secret/data")]).unwrap().matches(&r));
        assert!(!filter(&[("path", "sys/")]).unwrap().matches(&r));
        assert!(filter(&[("accessor", "abcde")]).unwrap().matches(&r));
        assert!(
            filter(&[("accessor", "hmac-sha256:5")])
                .unwrap()
                .matches(&r)
        );
        assert!(!filter(&[("accessor", "abc")]).unwrap().matches(&r));
        assert!(filter(&[("operation", "UPDATE")]).unwrap().matches(&r));
        assert!(!filter(&[("operation", "read")]).unwrap().matches(&r));
        assert!(filter(&[("status", "403")]).unwrap().matches(&r));
        assert!(filter(&[("status", "4xx")]).unwrap().matches(&r));
        assert!(!filter(&[("status", "2xx")]).unwrap().matches(&r));
        assert!(
            filter(&[("since", "2026-01-02T00:00:00Z")])
                .unwrap()
                .matches(&r)
        );
        assert!(
            !filter(&[("until", "2026-01-02T00:00:00Z")])
                .unwrap()
                .matches(&r)
        );
        assert!(
            filter(&[
                ("since", "2026-01-01T00:00:00Z"),
                ("until", "2026-01-03T00:00:00+01:00")
            ])
            .unwrap()
            .matches(&r)
        );
    }

    #[test]
    fn malformed_filters_are_refused_without_echoing() {
        for (name, value) in [
            ("status", "abc"),
            ("status", "7xx"),
            ("status", "99"),
            ("since", "yesterday"),
            ("until", "2026-13-01T00:00:00Z"),
        ] {
            let err = filter(&[(name, value)]).unwrap_err();
            assert!(!err.to_string().contains(value), "{err}");
        }
    }
}
