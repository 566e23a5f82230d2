//! A request as engines see it: an operation on a path relative to the mount, with a JSON body
//! and query parameters.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Map;
use serde_json::Value;

/// What a request asks to do, after HTTP verbs are mapped (Vault's logical operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Operation {
    /// GET.
    #[default]
    Read,
    /// LIST, or GET with `list=true`.
    List,
    /// POST/PUT where the target does not exist yet (decided by the ACL layer when it matters).
    Create,
    /// POST/PUT.
    Update,
    /// PATCH (JSON merge patch).
    Patch,
    /// DELETE.
    Delete,
}

impl Operation {
    /// True for operations that may change state.
    pub fn is_write(self) -> bool {
        !matches!(self, Operation::Read | Operation::List)
    }

    /// Vault's name for the operation, as written in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which entries of a LIST answer the client may see, decided by the core from the token's ACL
/// (engines never see policies). It is asked about each entry, relative to the listed folder,
/// before a page is cut, so pages stay full.
#[derive(Clone)]
pub struct ListFilter(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl ListFilter {
    /// A filter that keeps the entries for which `keep` returns true.
    pub fn new(keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        ListFilter(Arc::new(keep))
    }

    /// Whether the client may see `entry`.
    pub fn keeps(&self, entry: &str) -> bool {
        (self.0)(entry)
    }
}

impl fmt::Debug for ListFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ListFilter")
    }
}

/// One request routed to an engine.
#[derive(Clone, Default)]
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The path below the mount point, without a leading slash (`data/app`).
    pub path: String,
    /// The JSON body (an object; empty when there was none).
    pub data: Map<String, Value>,
    /// Query parameters (`version`, `list`, ...).
    pub query: BTreeMap<String, String>,
    /// The options of the mount serving the request (`version`, engine-specific settings).
    pub mount_options: BTreeMap<String, String>,
    /// The client's IP address, when known (for CIDR-bound credentials).
    pub remote_address: Option<String>,
    /// For LIST: which entries the token may see (see [`Request::list_page`]); `None` keeps all.
    pub list_filter: Option<ListFilter>,
}

impl Request {
    /// A request for `operation` on `path` with no body.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Request {
            operation,
            path: path.into(),
            ..Request::default()
        }
    }

    /// Beyond Vault: whether a LIST asks for every key below the folder (`recursive=true`)
    /// instead of its immediate children.
    pub fn recursive(&self) -> Result<bool, super::LogicalError> {
        match self.field("recursive") {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(flag),
            Some(Value::String(text)) => match text.as_str() {
                "1" | "t" | "T" | "true" | "True" | "TRUE" => Ok(true),
                "0" | "f" | "F" | "false" | "False" | "FALSE" => Ok(false),
                _ => Err(super::LogicalError::invalid("recursive must be a boolean")),
            },
            Some(_) => Err(super::LogicalError::invalid("recursive must be a boolean")),
        }
    }

    /// Beyond Vault: one page of a LIST answer (sorted children). Entries the request's
    /// [`ListFilter`] hides are left out first; then `after` keeps only the children that sort
    /// after it (the last key of the previous page) and `limit` caps how many are returned.
    pub fn list_page(&self, children: Vec<String>) -> Result<Vec<String>, super::LogicalError> {
        let after = match self.field("after") {
            None => None,
            Some(Value::String(after)) => Some(after),
            Some(_) => return Err(super::LogicalError::invalid("after must be a string")),
        };
        let limit = match self.field("limit") {
            None => None,
            Some(value) => Some(
                match &value {
                    Value::Number(number) => number.as_u64(),
                    Value::String(text) => text.parse().ok(),
                    _ => None,
                }
                .filter(|limit| *limit > 0)
                .and_then(|limit| usize::try_from(limit).ok())
                .ok_or_else(|| super::LogicalError::invalid("limit must be a positive integer"))?,
            ),
        };
        let children = children
            .into_iter()
            .filter(|child| after.as_deref().is_none_or(|after| child.as_str() > after))
            .filter(|child| {
                self.list_filter
                    .as_ref()
                    .is_none_or(|filter| filter.keeps(child))
            });
        Ok(match limit {
            Some(limit) => children.take(limit).collect(),
            None => children.collect(),
        })
    }

    /// A body field or, failing that, a query parameter of the same name, as a JSON value.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.data.get(name).cloned().or_else(|| {
            self.query
                .get(name)
                .map(|value| Value::String(value.clone()))
        })
    }
}

// Bodies hold secrets: never print them.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("data_keys", &self.data.len())
            .finish_non_exhaustive()
    }
}
