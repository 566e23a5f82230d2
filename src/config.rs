//! The server's TOML configuration file (`strongroom server --config FILE`): this node's id,
//! addresses and data directory, the cluster's peers, Raft tuning and request limits.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). [`ServerConfig::load`]
//! and [`ServerConfig::from_toml_str`] parse and then [`ServerConfig::validate`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

mod seal;
pub use seal::{Pkcs11Config, SealSection};

/// Vault's default `max_request_size`: 32 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Smallest accepted `max_request_bytes`.
const MIN_MAX_REQUEST_BYTES: usize = 1024;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML for this schema; toml's message names the key and line.
    #[error("invalid config file: {0}")]
    Parse(String),
    /// Parsed, but a value breaks a rule.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One server's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// This node's Raft id (> 0, unique in the cluster).
    pub node_id: u64,
    /// Where this node keeps its Raft log and state machine.
    #[serde(serialize_with = "path_lossy")]
    pub data_dir: PathBuf,
    /// HTTP (Vault API) listen address, `host:port`.
    pub api_addr: String,
    /// Cluster listen address, `host:port`: node-to-node gRPC (Raft, Propose, ReadIndex). Only
    /// cluster members should reach it.
    pub cluster_addr: String,
    /// Client gRPC API (`proto/vault.proto`) listen address, `host:port`; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_addr: Option<String>,
    /// `tracing` filter directive, e.g. `"info"` or `"strongroom=debug"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Largest request body accepted, in bytes (Vault's default: 32 MiB).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Raft timing and log compaction.
    #[serde(default)]
    pub raft: RaftTuning,
    /// Every voter of the cluster, this node included.
    pub peers: Vec<PeerConfig>,
    /// Audit sinks (`[[audit.sink]]`): configured here only, never through the API.
    #[serde(default, skip_serializing_if = "AuditConfig::is_empty")]
    pub audit: AuditConfig,
    /// How the unseal key is kept (`[seal.pkcs11]` for HSM auto-unseal); Shamir when absent.
    #[serde(default, skip_serializing_if = "SealSection::is_empty")]
    pub seal: SealSection,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its Raft id.
    pub id: u64,
    /// Its HTTP address, `host:port`.
    pub api_addr: String,
    /// Its gRPC address, `host:port`.
    pub cluster_addr: String,
}

/// Raft timing and log compaction settings (`[raft]`); every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftTuning {
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Take a snapshot after at least this many applied entries...
    pub snapshot_logs_since_last: u64,
    /// ...and once the log written since the latest snapshot is at least this percentage of
    /// that snapshot's size (0: entries only). Spaces snapshots out as the state grows, so their
    /// cost per write stays bounded (see `strongroom_raft::node::snapshot_schedule`).
    pub snapshot_min_log_percent: u64,
    /// Entries kept after a snapshot (for slow followers).
    pub max_in_snapshot_log_to_keep: u64,
    /// Log entries purged per batch.
    pub purge_batch_size: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_logs_since_last: 10_000,
            snapshot_min_log_percent: 50,
            max_in_snapshot_log_to_keep: 1_000,
            purge_batch_size: 256,
        }
    }
}

/// The `[audit]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How long journal records are kept (`"720h"`, `"30d"`, `"90s"`, or seconds): older records
    /// are pruned once every node's sinks have them. Unset: kept forever. The leader's setting
    /// applies; give every node the same value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// Where this node streams applied journal records (`[[audit.sink]]`).
    pub sink: Vec<SinkConfig>,
}

impl AuditConfig {
    fn is_empty(&self) -> bool {
        self.sink.is_empty() && self.retention.is_none()
    }

    /// The retention age, if configured (validated by [`Config::validate`]; an unparsable value
    /// reads as unset).
    pub fn retention(&self) -> Option<std::time::Duration> {
        let text = self.retention.as_deref()?;
        crate::logical::duration::parse_seconds(&serde_json::Value::String(text.to_string()))
            .ok()
            .filter(|seconds| *seconds > 0)
            .map(std::time::Duration::from_secs)
    }
}

/// The kinds of audit sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// JSON lines appended to a file, fsync'd, rotated by size.
    File,
    /// JSON lines written to a stream socket (Unix or TCP), like Vault's `socket` device.
    Socket,
    /// One syslog message per record (RFC 5424) to a Unix datagram socket (`/dev/log` by
    /// default) or a UDP `address`, like Vault's `syslog` device (`facility`, `tag`).
    Syslog,
}

impl SinkKind {
    /// The type name (`file`, `socket`), as in the config and in `sys/audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Socket => "socket",
            SinkKind::Syslog => "syslog",
        }
    }
}

/// How a `socket` sink connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketType {
    /// A Unix stream socket at the sink's `path`.
    Unix,
    /// A TCP connection to the sink's `address`.
    Tcp,
}

impl SocketType {
    /// The name (`unix`, `tcp`), as in the config and in `sys/audit` (Vault's `socket_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Unix => "unix",
            SocketType::Tcp => "tcp",
        }
    }
}

/// One `[[audit.sink]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The sink's name (its path in `sys/audit`, like Vault's device path); defaults to the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The sink type.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// `file`: the file records are appended to; `socket` (unix): the socket. Absolute.
    #[serde(
        default,
        serialize_with = "path_lossy",
        skip_serializing_if = "path_is_empty"
    )]
    pub path: PathBuf,
    /// `socket` (tcp): the `host:port` to connect to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// `socket`: `unix` (the default, at `path`) or `tcp` (at `address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<SocketType>,
    /// Rotate the file once it would grow past this many bytes (never when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Free text shown in `sys/audit`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `syslog`: the facility (Vault's names: `AUTH`, the default, `LOCAL0`..`LOCAL7`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    /// `syslog`: the tag (RFC 5424 APP-NAME; default `strongroom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl SinkConfig {
    /// The sink's name: `name`, else its type.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// A `socket` sink's socket type (`unix` unless configured).
    pub fn socket_type(&self) -> SocketType {
        self.socket_type.unwrap_or(SocketType::Unix)
    }

    /// Where the sink writes, as one string (its cursor belongs to it): the file's path, or
    /// `unix:<path>` / `tcp:<address>`, or `syslog:unixgram:<path>` / `syslog:udp:<address>`.
    pub fn destination(&self) -> String {
        match (self.kind, self.socket_type()) {
            (SinkKind::File, _) => self.path.to_string_lossy().into_owned(),
            (SinkKind::Socket, SocketType::Unix) => format!("unix:{}", self.path.to_string_lossy()),
            (SinkKind::Socket, SocketType::Tcp) => format!("tcp:{}", self.address),
            (SinkKind::Syslog, _) if !self.address.is_empty() => {
                format!("syslog:udp:{}", self.address)
            }
            (SinkKind::Syslog, _) => {
                format!("syslog:unixgram:{}", self.syslog_path().to_string_lossy())
            }
        }
    }

    /// A `syslog` sink's Unix datagram socket: `path`, else `/dev/log`.
    pub fn syslog_path(&self) -> &Path {
        if path_is_empty(&self.path) {
            Path::new(DEFAULT_SYSLOG_PATH)
        } else {
            &self.path
        }
    }

    /// A `syslog` sink's facility name, upper case (`AUTH` unless configured).
    pub fn facility(&self) -> String {
        self.facility
            .as_deref()
            .unwrap_or(DEFAULT_SYSLOG_FACILITY)
            .to_ascii_uppercase()
    }

    /// A `syslog` sink's tag (`strongroom` unless configured).
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_SYSLOG_TAG)
    }
}

fn path_is_empty(path: &Path) -> bool {
    path.as_os_str().is_empty()
}

/// Smallest accepted `max_bytes` of a file sink.
const MIN_SINK_MAX_BYTES: u64 = 4096;
/// Where a `syslog` sink sends without `path` or `address`: the local syslog socket.
const DEFAULT_SYSLOG_PATH: &str = "/dev/log";
/// A `syslog` sink's facility when unset (Vault's default).
const DEFAULT_SYSLOG_FACILITY: &str = "AUTH";
/// A `syslog` sink's tag when unset.
const DEFAULT_SYSLOG_TAG: &str = "strongroom";

/// The syslog facility names a `syslog` sink accepts (Vault's, from Go's `log/syslog`), in
/// facility-code order (`KERN` = 0 ... `LOCAL7` = 23).
pub const SYSLOG_FACILITIES: [&str; 24] = [
    "KERN", "USER", "MAIL", "DAEMON", "AUTH", "SYSLOG", "LPR", "NEWS", "UUCP", "CRON", "AUTHPRIV",
    "FTP", "NTP", "AUDIT", "ALERT", "CLOCK", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
    "LOCAL5", "LOCAL6", "LOCAL7",
];

fn validate_syslog(name: &str, sink: &SinkConfig) -> Result<(), ConfigError> {
    let invalid = |message: String| Err(ConfigError::Invalid(message));
    if sink.socket_type.is_some() || sink.max_bytes.is_some() {
        return invalid(format!(
            "audit.sink {name:?}: socket_type and max_bytes are not syslog options"
        ));
    }
    if !sink.address.is_empty() {
        let port_ok = sink
            .address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || !path_is_empty(&sink.path) {
            return invalid(format!(
                "audit.sink {name:?}: a udp syslog sink needs address = \"host:port\" and no path"
            ));
        }
    } else if !sink.syslog_path().is_absolute() {
        return invalid(format!("audit.sink {name:?} path must be absolute"));
    }
    if !SYSLOG_FACILITIES.contains(&sink.facility().as_str()) {
        return invalid(format!(
            "audit.sink {name:?}: unknown syslog facility (one of {})",
            SYSLOG_FACILITIES.join(", ")
        ));
    }
    let tag = sink.tag();
    if tag.is_empty() || tag.len() > 48 || !tag.chars().all(|c| c.is_ascii_graphic()) {
        return invalid(format!(
            "audit.sink {name:?}: tag must be 1-48 printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

fn validate_audit(audit: &AuditConfig) -> Result<(), ConfigError> {
    let invalid = |message: String| Err(ConfigError::Invalid(message));
    if let Some(text) = &audit.retention {
        let parsed =
            crate::logical::duration::parse_seconds(&serde_json::Value::String(text.clone()));
        if !matches!(parsed, Ok(seconds) if seconds > 0) {
            return invalid(format!(
                "audit.retention {text:?} must be a positive duration such as \"720h\", \"30d\" or \"90s\""
            ));
        }
    }
    let mut names = HashSet::new();
    for sink in &audit.sink {
        let name = sink.name();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !name_ok {
            return invalid(format!(
                "audit.sink name {name:?} must be 1-64 of A-Z a-z 0-9 - _ . (not starting with .)"
            ));
        }
        if !names.insert(name) {
            return invalid(format!(
                "audit.sink name {name:?} appears more than once (give each sink a distinct name)"
            ));
        }
        if sink.kind == SinkKind::Syslog {
            validate_syslog(name, sink)?;
            continue;
        }
        if sink.facility.is_some() || sink.tag.is_some() {
            return invalid(format!(
                "audit.sink {name:?}: facility and tag are for syslog sinks"
            ));
        }
        let tcp = sink.kind == SinkKind::Socket && sink.socket_type() == SocketType::Tcp;
        if sink.kind == SinkKind::File && sink.socket_type.is_some() {
            return invalid(format!(
                "audit.sink {name:?}: socket_type is for socket sinks"
            ));
        }
        if tcp {
            let port_ok = sink
                .address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok || !path_is_empty(&sink.path) {
                return invalid(format!(
                    "audit.sink {name:?}: a tcp socket sink needs address = \"host:port\" and no path"
                ));
            }
        } else if !sink.path.is_absolute() || !sink.address.is_empty() {
            return invalid(format!(
                "audit.sink {name:?} path must be absolute (address is only for tcp socket sinks)"
            ));
        }
        if sink.kind == SinkKind::Socket && sink.max_bytes.is_some() {
            return invalid(format!("audit.sink {name:?}: max_bytes is for file sinks"));
        }
        if let Some(max) = sink.max_bytes
            && max < MIN_SINK_MAX_BYTES
        {
            return invalid(format!(
                "audit.sink {name:?} max_bytes ({max}) must be at least {MIN_SINK_MAX_BYTES}"
            ));
        }
        if sink
            .max_bytes
            .is_some_and(|max| i64::try_from(max).is_err())
        {
            return invalid(format!(
                "audit.sink {name:?} max_bytes must be at most {} (a TOML integer)",
                i64::MAX
            ));
        }
    }
    Ok(())
}

fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}

/// Serializes a path as a string even if it is not UTF-8 (lossily), so `to_toml` cannot fail.
fn path_lossy<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

impl ServerConfig {
    /// Reads, parses and validates the file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`], [`ConfigError::Parse`] (naming the file) or [`ConfigError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|err| match err {
            ConfigError::Parse(message) => {
                ConfigError::Parse(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for syntax, unknown keys or wrong types; [`ConfigError::Invalid`]
    /// for rule violations (see [`ServerConfig::validate`]).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: ServerConfig = toml::from_str(text)
            .map_err(|err| ConfigError::Parse(err.to_string().trim_end().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules a parsed file must also follow: `node_id > 0`; every address is
    /// `host:port`; peers are non-empty with unique ids and include this node with the same
    /// addresses; `heartbeat < election min < election max`; `max_request_bytes >= 1024`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.node_id == 0 {
            return invalid("node_id must be greater than 0".into());
        }
        check_addr("api_addr", &self.api_addr)?;
        check_addr("cluster_addr", &self.cluster_addr)?;
        if let Some(grpc_addr) = &self.grpc_addr {
            check_addr("grpc_addr", grpc_addr)?;
        }
        if self.peers.is_empty() {
            return invalid("peers must list every node of the cluster, this one included".into());
        }
        let mut ids = HashSet::new();
        for peer in &self.peers {
            if peer.id == 0 {
                return invalid("peer id must be greater than 0".into());
            }
            if !ids.insert(peer.id) {
                return invalid(format!("peer id {} appears more than once", peer.id));
            }
            check_addr(&format!("peer {} api_addr", peer.id), &peer.api_addr)?;
            check_addr(
                &format!("peer {} cluster_addr", peer.id),
                &peer.cluster_addr,
            )?;
        }
        match self.peers.iter().find(|peer| peer.id == self.node_id) {
            None => {
                return invalid(format!(
                    "peers must include this node (node_id {})",
                    self.node_id
                ));
            }
            Some(me) if me.api_addr != self.api_addr || me.cluster_addr != self.cluster_addr => {
                return invalid(format!(
                    "peer {} must have the same api_addr and cluster_addr as this node's top-level settings",
                    self.node_id
                ));
            }
            Some(_) => {}
        }
        let raft = &self.raft;
        if raft.election_timeout_min_ms >= raft.election_timeout_max_ms {
            return invalid(format!(
                "raft.election_timeout_min_ms ({}) must be less than raft.election_timeout_max_ms ({})",
                raft.election_timeout_min_ms, raft.election_timeout_max_ms
            ));
        }
        if raft.heartbeat_interval_ms == 0
            || raft.heartbeat_interval_ms >= raft.election_timeout_min_ms
        {
            return invalid(format!(
                "raft.heartbeat_interval_ms ({}) must be greater than 0 and less than raft.election_timeout_min_ms ({})",
                raft.heartbeat_interval_ms, raft.election_timeout_min_ms
            ));
        }
        let integers = [
            ("node_id", self.node_id),
            ("raft.heartbeat_interval_ms", raft.heartbeat_interval_ms),
            ("raft.election_timeout_max_ms", raft.election_timeout_max_ms),
            (
                "raft.snapshot_logs_since_last",
                raft.snapshot_logs_since_last,
            ),
            (
                "raft.snapshot_min_log_percent",
                raft.snapshot_min_log_percent,
            ),
            (
                "raft.max_in_snapshot_log_to_keep",
                raft.max_in_snapshot_log_to_keep,
            ),
            ("raft.purge_batch_size", raft.purge_batch_size),
            (
                "max_request_bytes",
                u64::try_from(self.max_request_bytes).unwrap_or(u64::MAX),
            ),
        ];
        let peer_ids = self.peers.iter().map(|peer| ("peer id", peer.id));
        if let Some((name, value)) = integers
            .into_iter()
            .chain(peer_ids)
            .find(|&(_, value)| i64::try_from(value).is_err())
        {
            return invalid(format!(
                "{name} ({value}) must be at most {} (a TOML integer)",
                i64::MAX
            ));
        }
        if self.max_request_bytes < MIN_MAX_REQUEST_BYTES {
            return invalid(format!(
                "max_request_bytes ({}) must be at least {MIN_MAX_REQUEST_BYTES}",
                self.max_request_bytes
            ));
        }
        validate_audit(&self.audit)?;
        if let Some(pkcs11) = &self.seal.pkcs11 {
            pkcs11.validate()?;
        }
        Ok(())
    }

    /// The config as TOML text that [`ServerConfig::from_toml_str`] reads back (used by
    /// `strongroom dev` to write each node's file).
    ///
    /// # Panics
    ///
    /// If an integer exceeds `i64::MAX` (TOML's range), which [`ServerConfig::validate`] rejects.
    pub fn to_toml(&self) -> String {
        // Fields are strings, integers, a table and an array of tables, and the path is written
        // lossily: the only failure left is an integer above i64::MAX, which `validate` rejects.
        toml::to_string(self).expect("a ServerConfig that passes validate() serializes to TOML")
    }
}

/// Accepts `SocketAddr` syntax (`127.0.0.1:8200`, `[::1]:8200`) or `host:port` with a non-empty
/// host name (`localhost:8200`, `vault-1.internal:8201`).
fn check_addr(field: &str, addr: &str) -> Result<(), ConfigError> {
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let valid = match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
                && port.parse::<u16>().is_ok()
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{field} {addr:?} is not a host:port address"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
node_id = 2
data_dir = "/var/lib/strongroom"
api_addr = "10.0.0.2:8200"
cluster_addr = "10.0.0.2:8201"
log_level = "info"
max_request_bytes = 1048576

[raft]
heartbeat_interval_ms = 50
election_timeout_min_ms = 300

[[peers]]
id = 1
api_addr = "10.0.0.1:8200"
cluster_addr = "10.0.0.1:8201"

[[peers]]
id = 2
api_addr = "10.0.0.2:8200"
cluster_addr = "10.0.0.2:8201"

[[peers]]
id = 3
api_addr = "vault-3.internal:8200"
cluster_addr = "vault-3.internal:8201"
"#;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_toml_str(text)
    }

    /// A change to a valid config that breaks one rule.
    type Edit = fn(&mut ServerConfig);

    fn invalid_message(edit: impl FnOnce(&mut ServerConfig)) -> String {
        let mut config = parse(VALID).unwrap();
        edit(&mut config);
        match config.validate() {
            Err(ConfigError::Invalid(message)) => message,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// A sink config without socket settings, for struct updates.
    fn socketless() -> SinkConfig {
        SinkConfig {
            name: None,
            kind: SinkKind::File,
            path: PathBuf::new(),
            address: String::new(),
            socket_type: None,
            max_bytes: None,
            description: String::new(),
            facility: None,
            tag: None,
        }
    }

    #[test]
    fn socket_sinks_parse_and_validate() {
        let text = format!(
            "{VALID}\n[[audit.sink]]\ntype = \"socket\"\npath = \"/run/sr/audit.sock\"\n\n[[audit.sink]]\nname = \"siem\"\ntype = \"socket\"\nsocket_type = \"tcp\"\naddress = \"10.0.0.5:9000\"\n"
        );
        let config = parse(&text).unwrap();
        let sinks = &config.audit.sink;
        assert_eq!(sinks[0].name(), "socket");
        assert_eq!(sinks[0].socket_type(), SocketType::Unix);
        assert_eq!(sinks[0].destination(), "unix:/run/sr/audit.sock");
        assert_eq!(sinks[1].destination(), "tcp:10.0.0.5:9000");
        assert_eq!(parse(&config.to_toml()).unwrap().audit, config.audit);
        fn tcp(address: &str, path: &str) -> SinkConfig {
            SinkConfig {
                kind: SinkKind::Socket,
                socket_type: Some(SocketType::Tcp),
                address: address.into(),
                path: PathBuf::from(path),
                ..socketless()
            }
        }
        assert!(invalid_message(|c| c.audit.sink.push(tcp("nohost", ""))).contains("host:port"));
        assert!(invalid_message(|c| c.audit.sink.push(tcp("h:99999", ""))).contains("host:port"));
        assert!(invalid_message(|c| c.audit.sink.push(tcp("h:1", "/a"))).contains("no path"));
        let unix_sized = invalid_message(|c| {
            c.audit.sink.push(SinkConfig {
                kind: SinkKind::Socket,
                path: PathBuf::from("/a.sock"),
                max_bytes: Some(1 << 20),
                ..socketless()
            })
        });
        assert!(unix_sized.contains("max_bytes"), "{unix_sized}");
        let file_with_socket_type = invalid_message(|c| {
            c.audit.sink.push(SinkConfig {
                path: PathBuf::from("/a.log"),
                socket_type: Some(SocketType::Unix),
                ..socketless()
            })
        });
        assert!(file_with_socket_type.contains("socket_type"));
    }

    #[test]
    fn audit_sinks_parse_validate_and_round_trip() {
        let text = format!(
            "{VALID}\n[[audit.sink]]\ntype = \"file\"\npath = \"/var/log/sr/audit.log\"\nmax_bytes = 1048576\n\n[[audit.sink]]\nname = \"second\"\ntype = \"file\"\npath = \"/var/log/sr/b.log\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.audit.sink.len(), 2);
        assert_eq!(config.audit.sink[0].name(), "file");
        assert_eq!(config.audit.sink[0].max_bytes, Some(1_048_576));
        assert_eq!(config.audit.sink[1].name(), "second");
        assert_eq!(parse(&config.to_toml()).unwrap().audit, config.audit);
        assert!(parse(VALID).unwrap().audit.sink.is_empty());

        let bad = |edit: Edit| invalid_message(edit);
        assert!(
            bad(|c| {
                for _ in 0..2 {
                    c.audit.sink.push(SinkConfig {
                        name: None,
                        kind: SinkKind::File,
                        path: PathBuf::from("/a.log"),
                        max_bytes: None,
                        description: String::new(),
                        ..socketless()
                    });
                }
            })
            .contains("more than once")
        );
        assert!(
            bad(|c| c.audit.sink.push(SinkConfig {
                name: None,
                kind: SinkKind::File,
                path: PathBuf::from("rel.log"),
                max_bytes: None,
                description: String::new(),
                ..socketless()
            }))
            .contains("absolute")
        );
        assert!(
            bad(|c| c.audit.sink.push(SinkConfig {
                name: Some("../x".into()),
                kind: SinkKind::File,
                path: PathBuf::from("/a.log"),
                max_bytes: Some(10),
                description: String::new(),
                ..socketless()
            }))
            .contains("name")
        );
        let unknown = format!("{VALID}\n[[audit.sink]]\ntype = \"journald\"\npath = \"/a\"\n");
        assert!(matches!(parse(&unknown), Err(ConfigError::Parse(_))));
    }

    #[test]
    fn retention_parses_and_validates() {
        let config = parse(&format!("{VALID}\n[audit]\nretention = \"720h\"\n")).unwrap();
        assert_eq!(
            config.audit.retention(),
            Some(std::time::Duration::from_secs(720 * 3600))
        );
        assert_eq!(parse(&config.to_toml()).unwrap().audit, config.audit);
        assert_eq!(parse(VALID).unwrap().audit.retention(), None);
        for bad in ["0s", "forever", "-1h", "", "3x"] {
            let message = invalid_message(|c| c.audit.retention = Some(bad.into()));
            assert!(message.contains("audit.retention"), "{bad}: {message}");
        }
    }

    #[test]
    fn syslog_sinks_parse_and_validate() {
        let text = format!(
            "{VALID}\n[[audit.sink]]\ntype = \"syslog\"\n\n[[audit.sink]]\nname = \"remote\"\ntype = \"syslog\"\naddress = \"10.0.0.9:514\"\nfacility = \"local3\"\ntag = \"sr-prod\"\n"
        );
        let config = parse(&text).unwrap();
        let sinks = &config.audit.sink;
        assert_eq!(sinks[0].name(), "syslog");
        assert_eq!(sinks[0].destination(), "syslog:unixgram:/dev/log");
        assert_eq!(sinks[0].facility(), "AUTH");
        assert_eq!(sinks[0].tag(), "strongroom");
        assert_eq!(sinks[1].destination(), "syslog:udp:10.0.0.9:514");
        assert_eq!(sinks[1].facility(), "LOCAL3");
        assert_eq!(parse(&config.to_toml()).unwrap().audit, config.audit);
        fn syslog(change: impl FnOnce(&mut SinkConfig)) -> SinkConfig {
            let mut sink = SinkConfig {
                kind: SinkKind::Syslog,
                ..socketless()
            };
            change(&mut sink);
            sink
        }
        let cases: [(SinkConfig, &str); 6] = [
            (syslog(|s| s.facility = Some("LOCAL9".into())), "facility"),
            (syslog(|s| s.tag = Some("has space".into())), "tag"),
            (syslog(|s| s.tag = Some(String::new())), "tag"),
            (syslog(|s| s.path = PathBuf::from("rel/log")), "absolute"),
            (syslog(|s| s.address = "nohost".into()), "host:port"),
            (syslog(|s| s.max_bytes = Some(1 << 20)), "max_bytes"),
        ];
        for (sink, needle) in cases {
            let message = invalid_message(|c| c.audit.sink.push(sink));
            assert!(message.contains(needle), "{needle}: {message}");
        }
        let file_with_tag = invalid_message(|c| {
            c.audit.sink.push(SinkConfig {
                path: PathBuf::from("/a.log"),
                tag: Some("x".into()),
                ..socketless()
            })
        });
        assert!(file_with_tag.contains("syslog"), "{file_with_tag}");
    }

    #[test]
    fn full_file_parses_with_defaults() {
        let config = parse(VALID).unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/strongroom"));
        assert_eq!(config.log_level.as_deref(), Some("info"));
        assert_eq!(config.max_request_bytes, 1_048_576);
        assert_eq!(config.raft.heartbeat_interval_ms, 50);
        assert_eq!(config.raft.election_timeout_min_ms, 300);
        assert_eq!(
            config.raft.election_timeout_max_ms, 2000,
            "unset fields keep their defaults"
        );
        assert_eq!(config.raft.purge_batch_size, 256);
        assert_eq!(config.peers.len(), 3);
        assert_eq!(config.peers[2].api_addr, "vault-3.internal:8200");
    }

    #[test]
    fn minimal_file_uses_defaults() {
        let text = r#"
node_id = 1
data_dir = "data"
api_addr = "localhost:8200"
cluster_addr = "localhost:8201"
peers = [{ id = 1, api_addr = "localhost:8200", cluster_addr = "localhost:8201" }]
"#;
        let config = parse(text).unwrap();
        assert_eq!(config.raft, RaftTuning::default());
        assert_eq!(config.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(config.log_level, None);
    }

    #[test]
    fn to_toml_round_trips() {
        let config = parse(VALID).unwrap();
        let back = parse(&config.to_toml()).unwrap();
        assert_eq!(back.peers, config.peers);
        assert_eq!(back.raft, config.raft);
        assert_eq!(back.data_dir, config.data_dir);
        assert_eq!(back.log_level, config.log_level);
        assert_eq!(back.max_request_bytes, config.max_request_bytes);
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, VALID).unwrap();
        assert_eq!(ServerConfig::load(&path).unwrap().node_id, 2);
        let missing = dir.path().join("missing.toml");
        let err = ServerConfig::load(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("missing.toml"));
        std::fs::write(&path, "node_id = ").unwrap();
        let err = ServerConfig::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)));
        assert!(err.to_string().contains("node.toml"));
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let cases = [
            (
                VALID.replacen("node_id = 2", "node_id = 2\nnode_name = \"x\"", 1),
                "node_name",
            ),
            (
                VALID.replacen("id = 3\n", "id = 3\nweight = 1\n", 1),
                "weight",
            ),
            (
                VALID.replacen("[raft]\n", "[raft]\nheartbeat_ms = 10\n", 1),
                "heartbeat_ms",
            ),
        ];
        for (text, key) in cases {
            match parse(&text) {
                Err(ConfigError::Parse(message)) => {
                    assert!(message.contains(key), "{key} not named in: {message}");
                    assert!(message.contains("line"), "no line in: {message}");
                }
                other => panic!("{key}: expected Parse, got {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_types_and_missing_fields_are_rejected() {
        for text in [
            VALID.replacen("node_id = 2", "node_id = \"two\"", 1),
            VALID.replacen(
                "heartbeat_interval_ms = 50",
                "heartbeat_interval_ms = -5",
                1,
            ),
            VALID.replacen("api_addr = \"10.0.0.2:8200\"\n", "", 1),
            VALID.replacen(
                "max_request_bytes = 1048576",
                "max_request_bytes = \"1MiB\"",
                1,
            ),
        ] {
            assert!(
                matches!(parse(&text), Err(ConfigError::Parse(_))),
                "accepted: {text}"
            );
        }
    }

    #[test]
    fn validation_rules() {
        let cases: [(Edit, &str); 17] = [
            (|c| c.node_id = 0, "node_id must be greater than 0"),
            (|c| c.api_addr = "10.0.0.2".into(), "api_addr"),
            (|c| c.cluster_addr = ":8201".into(), "cluster_addr"),
            (|c| c.api_addr = "http://10.0.0.2:8200".into(), "api_addr"),
            (|c| c.api_addr = "host:99999".into(), "api_addr"),
            (|c| c.peers.clear(), "peers must list"),
            (|c| c.peers[0].id = 3, "peer id 3 appears more than once"),
            (
                |c| c.peers[0].cluster_addr = "nope".into(),
                "peer 1 cluster_addr",
            ),
            (
                |c| c.peers.retain(|p| p.id != 2),
                "peers must include this node",
            ),
            (
                |c| c.peers[1].api_addr = "10.0.0.9:8200".into(),
                "same api_addr",
            ),
            (
                |c| c.peers[1].cluster_addr = "10.0.0.9:8201".into(),
                "and cluster_addr",
            ),
            (
                |c| c.raft.election_timeout_max_ms = 300,
                "election_timeout_min_ms (300) must be less",
            ),
            (
                |c| c.raft.heartbeat_interval_ms = 300,
                "heartbeat_interval_ms (300)",
            ),
            (
                |c| c.raft.heartbeat_interval_ms = 0,
                "heartbeat_interval_ms (0)",
            ),
            (
                |c| c.max_request_bytes = 1023,
                "max_request_bytes (1023) must be at least 1024",
            ),
            (
                |c| c.raft.purge_batch_size = u64::MAX,
                "raft.purge_batch_size",
            ),
            (|c| c.peers[0].id = u64::MAX, "peer id"),
        ];
        for (edit, expected) in cases {
            let message = invalid_message(edit);
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
    }

    #[test]
    fn accepted_address_forms() {
        for addr in [
            "127.0.0.1:8200",
            "[::1]:8200",
            "localhost:8200",
            "vault-1.example.com:443",
            "0.0.0.0:0",
        ] {
            check_addr("api_addr", addr).unwrap();
        }
        for addr in [
            "",
            "localhost",
            "localhost:",
            ":80",
            "local host:80",
            "[::1]",
            "a:b",
        ] {
            assert!(check_addr("api_addr", addr).is_err(), "accepted {addr:?}");
        }
    }
    #[test]
    fn seal_pkcs11_section_parses_validates_and_round_trips() {
        let text = format!(
            "{VALID}\n[seal.pkcs11]\nlib = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"strongroom\"\npin_env = \"HSM_PIN\"\nkey_label = \"unseal\"\n"
        );
        let config = parse(&text).unwrap();
        let pkcs11 = config.seal.pkcs11.as_ref().unwrap();
        assert_eq!(pkcs11.token_label.as_deref(), Some("strongroom"));
        assert_eq!(pkcs11.pin_env.as_deref(), Some("HSM_PIN"));
        let again = parse(&config.to_toml()).unwrap();
        assert_eq!(again.seal, config.seal);
        assert!(parse(VALID).unwrap().seal.pkcs11.is_none());
        assert!(!parse(VALID).unwrap().to_toml().contains("seal"));

        let both = text.replace(
            "pin_env = \"HSM_PIN\"",
            "pin_env = \"HSM_PIN\"\npin_file = \"/p\"",
        );
        let err = parse(&both).unwrap_err().to_string();
        assert!(err.contains("exactly one of pin_env and pin_file"), "{err}");
        let literal_pin = text.replace("pin_env = \"HSM_PIN\"", "pin = \"1234\"");
        assert!(matches!(parse(&literal_pin), Err(ConfigError::Parse(_))));
    }
}
