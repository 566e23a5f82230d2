//! Output helpers shared by the client commands: the `--format` choice, Vault-style two-column
//! tables, and how JSON values are shown inside a table.

use serde_json::Value;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables, like Vault's CLI.
    #[default]
    Table,
    /// The server's JSON response, pretty-printed.
    Json,
}

/// Space between the two columns, as in Vault's CLI.
const GLUE: &str = "    ";

/// A two-column table with a `Key`/`Value` header (or the given headers), columns aligned.
pub fn table(headers: (&str, &str), rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain([headers.0.chars().count()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        let pad = width - k.chars().count();
        out.push_str(k);
        if !v.is_empty() {
            out.push_str(&" ".repeat(pad));
            out.push_str(GLUE);
            out.push_str(v);
        }
        out.push('\n');
    };
    line(headers.0, headers.1);
    line(&"-".repeat(headers.0.len()), &"-".repeat(headers.1.len()));
    for (k, v) in rows {
        line(k, v);
    }
    out
}

/// A table with Vault's default `Key`/`Value` header.
pub fn kv_table(rows: &[(String, String)]) -> String {
    table(("Key", "Value"), rows)
}

/// A JSON value as shown in a table cell: strings bare, `null` as `<nil>`, others as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// A section title like Vault's: `== Title ==` with the rule as wide as the table below it.
pub fn heading(title: &str) -> String {
    format!("== {title} ==\n")
}

/// A JSON value pretty-printed with a trailing newline.
pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns() {
        let t = kv_table(&[
            ("Seal Type".into(), "shamir".into()),
            ("Total Shares".into(), "5".into()),
        ]);
        assert_eq!(
            t,
            "Key             Value\n\
             ---             -----\n\
             Seal Type       shamir\n\
             Total Shares    5\n"
        );
    }

    #[test]
    fn cells_render_like_vault() {
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&Value::Null), "<nil>");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!({"a":[1]})), r#"{"a":[1]}"#);
    }
}
