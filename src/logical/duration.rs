//! Durations as Vault writes and reads them: Go-style strings (`"1h2m3s"`, `"90s"`, `"0s"`) or a
//! bare number of seconds.

use serde_json::Value;

/// Parses a duration given as seconds (number or numeric string) or a Go duration string with
/// units `h`, `m`, `s` (also `d` for days, which Vault accepts in some places).
pub fn parse_seconds(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .ok_or_else(|| "duration must be a non-negative integer".to_string()),
        Value::String(text) => parse_text(text),
        _ => Err("duration must be a string or a number".to_string()),
    }
}

fn parse_text(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let invalid = || format!("invalid duration {text:?}");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let amount: u64 = digits.parse().map_err(|_| invalid())?;
        digits.clear();
        let unit = match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        total = amount
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(invalid)?;
    }
    if !digits.is_empty() {
        return Err(invalid());
    }
    Ok(total)
}

/// Formats seconds the way Go prints a `time.Duration` (`"0s"`, `"1h2m3s"`, `"90h0m0s"`).
pub fn format_seconds(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let (hours, rest) = (seconds / 3600, seconds % 3600);
    let (minutes, secs) = (rest / 60, rest % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_vault_durations() {
        assert_eq!(parse_seconds(&json!("3h25m19s")).unwrap(), 12_319);
        assert_eq!(parse_seconds(&json!("0s")).unwrap(), 0);
        assert_eq!(parse_seconds(&json!("90")).unwrap(), 90);
        assert_eq!(parse_seconds(&json!(45)).unwrap(), 45);
        assert_eq!(parse_seconds(&json!("1d")).unwrap(), 86_400);
        assert!(parse_seconds(&json!("5x")).is_err());
        assert!(parse_seconds(&json!("5h3")).is_err());
        assert!(parse_seconds(&json!(-1)).is_err());
        assert!(parse_seconds(&json!(true)).is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_seconds(0), "0s");
        assert_eq!(format_seconds(12_319), "3h25m19s");
        assert_eq!(format_seconds(61), "1m1s");
        assert_eq!(format_seconds(5), "5s");
    }
}
