//! Timestamps as Vault prints them: RFC 3339 in UTC with nanoseconds (`2018-03-22T02:24:06.945319214Z`).

use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC.
pub fn format_nanos(nanos: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(format_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_nanos(1_500_000_000_123_456_789),
            "2017-07-14T02:40:00.123456789Z"
        );
    }
}
