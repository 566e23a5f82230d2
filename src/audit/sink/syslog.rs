//! The `syslog` sink: one RFC 5424 message per journal record, like Vault's `syslog` audit device
//! (`facility`, `tag`), sent to the local syslog daemon's Unix datagram socket (`/dev/log`, or
//! the sink's `path`) or to a remote collector over UDP (`address`).
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME TAG PROCID audit - JSON` where PRI = facility * 8 + 6
//! (severity `info`, as Vault logs), TIMESTAMP is when the message was sent and JSON is the
//! record's line (with its `seq`). A record whose message would exceed [`MAX_MESSAGE`] bytes (a
//! datagram limit) is sent as a stub naming its `seq`, request id and size; the full record stays
//! in the journal (`sys/audit/log`) and in file sinks.
//!
//! A record counts as delivered once the kernel accepted its datagram. A Unix datagram socket
//! then holds it in the daemon's queue (and blocks, up to [`IO_TIMEOUT`], while that is full);
//! UDP gives no guarantee at all: a collector that is down loses what was sent to it. Any send
//! error drops the socket and fails the batch, which is retried from the cursor (at least once;
//! every message carries its `seq`).

use std::io;
use std::net::ToSocketAddrs;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use super::Sink;
use super::SinkRecord;
use crate::config::SYSLOG_FACILITIES;

/// How long one send may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message sent (fits a UDP datagram and the usual Unix datagram limits).
pub const MAX_MESSAGE: usize = 60 * 1024;
/// Severity `info`.
const SEVERITY_INFO: u8 = 6;

/// Where a syslog sink sends.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Unix datagram socket (the local syslog daemon's `/dev/log`).
    Unixgram(PathBuf),
    /// A UDP `host:port`.
    Udp(String),
}

enum Socket {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Socket {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let sent = match self {
            Socket::Unix(socket) => socket.send(message)?,
            Socket::Udp(socket) => socket.send(message)?,
        };
        if sent == message.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "syslog datagram was cut short",
            ))
        }
    }
}

/// A syslog sink.
#[derive(Clone)]
pub struct SyslogSink {
    target: Target,
    /// `<PRI>1 ` of every message.
    priority: String,
    tag: String,
    hostname: String,
    socket: Arc<Mutex<Option<Socket>>>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("target", &self.target)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl SyslogSink {
    /// A sink sending to `target` with the facility named `facility` (one of
    /// [`SYSLOG_FACILITIES`], validated with the config; an unknown name falls back to `AUTH`)
    /// and `tag` as the APP-NAME.
    pub fn new(target: Target, facility: &str, tag: &str) -> Self {
        let code = SYSLOG_FACILITIES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(facility))
            .unwrap_or(4);
        let priority = code * 8 + usize::from(SEVERITY_INFO);
        SyslogSink {
            target,
            priority: format!("<{priority}>1 "),
            tag: tag.to_string(),
            hostname: hostname(),
            socket: Arc::new(Mutex::new(None)),
        }
    }

    fn connect(&self) -> io::Result<Socket> {
        match &self.target {
            Target::Unixgram(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                socket.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Socket::Unix(socket))
            }
            Target::Udp(address) => {
                let addr = address.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing")
                })?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(addr)?;
                socket.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Socket::Udp(socket))
            }
        }
    }

    /// The RFC 5424 message of one record.
    fn message(&self, record: &SinkRecord) -> Vec<u8> {
        // RFC 5424 allows at most microseconds; the formatter drops trailing zeros.
        let micros = crate::logical::time::now_nanos() / 1000 * 1000;
        let timestamp = crate::logical::time::format_nanos(micros);
        let header = format!(
            "{}{timestamp} {} {} {} audit - ",
            self.priority,
            self.hostname,
            self.tag,
            std::process::id()
        );
        let mut message = header.into_bytes();
        if message.len() + record.line.len() <= MAX_MESSAGE {
            message.extend_from_slice(&record.line);
        } else {
            message.extend_from_slice(oversized_stub(record).to_string().as_bytes());
        }
        message
    }
}

/// What is sent instead of a record too large for one datagram.
fn oversized_stub(record: &SinkRecord) -> Value {
    let parsed: Value = serde_json::from_slice(&record.line).unwrap_or(Value::Null);
    json!({
        "seq": record.seq,
        "type": parsed["type"],
        "time": parsed["time"],
        "request": {"id": parsed["request"]["id"], "path": parsed["request"]["path"]},
        "oversized": {"bytes": record.line.len(), "see": "sys/audit/log"},
    })
}

/// This machine's host name for the HOSTNAME field (`-`, RFC 5424's nil value, if unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "-".to_string())
}

impl Sink for SyslogSink {
    fn append(&self, records: &[SinkRecord]) -> io::Result<()> {
        let mut socket = self
            .socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for record in records {
            let current = match socket.as_mut() {
                Some(current) => current,
                None => socket.insert(self.connect()?),
            };
            if let Err(err) = current.send(&self.message(record)) {
                *socket = None;
                return Err(err);
            }
        }
        Ok(())
    }

    fn last_seq(&self) -> io::Result<Option<u64>> {
        // Syslog keeps nothing this node can read back: the cursor alone says where to resume.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, line: String) -> SinkRecord {
        SinkRecord {
            seq,
            line: line.into_bytes(),
        }
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = vec![0u8; 128 * 1024];
        let len = socket.recv(&mut buffer).unwrap();
        String::from_utf8(buffer[..len].to_vec()).unwrap()
    }

    #[test]
    fn one_rfc5424_message_per_record_with_facility_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let sink = SyslogSink::new(Target::Unixgram(path.clone()), "local3", "sr-test");
        assert!(
            sink.append(&[record(1, r#"{"seq":1}"#.into())]).is_err(),
            "nobody listens yet"
        );
        let daemon = UnixDatagram::bind(&path).unwrap();
        sink.append(&[
            record(1, r#"{"seq":1}"#.into()),
            record(2, r#"{"seq":2}"#.into()),
        ])
        .unwrap();
        for seq in 1..=2 {
            let message = receive(&daemon);
            // LOCAL3 = 19; 19 * 8 + 6 = 158.
            assert!(message.starts_with("<158>1 "), "{message}");
            let fields: Vec<&str> = message.splitn(8, ' ').collect();
            assert_eq!(fields[3], "sr-test");
            assert_eq!(fields[4], std::process::id().to_string());
            assert_eq!(fields[5], "audit");
            assert_eq!(fields[6], "-");
            let body: Value = serde_json::from_str(fields[7]).unwrap();
            assert_eq!(body["seq"], seq);
        }
    }

    #[test]
    fn an_oversized_record_is_sent_as_a_stub_and_the_default_facility_is_auth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let sink = SyslogSink::new(Target::Unixgram(path), "nonsense", "t");
        let big = json!({"seq": 9, "type": "request", "request": {"id": "r-1", "path": "p"},
            "data": "x".repeat(MAX_MESSAGE)});
        sink.append(&[record(9, big.to_string())]).unwrap();
        let message = receive(&daemon);
        assert!(message.starts_with("<38>1 "), "AUTH = 4: {message}");
        assert!(message.len() < MAX_MESSAGE);
        let body: Value = serde_json::from_str(message.splitn(8, ' ').nth(7).unwrap()).unwrap();
        assert_eq!(body["seq"], 9);
        assert_eq!(body["request"]["id"], "r-1");
        assert_eq!(body["oversized"]["bytes"], big.to_string().len());
    }

    #[test]
    fn udp_messages_arrive() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let address = collector.local_addr().unwrap().to_string();
        let sink = SyslogSink::new(Target::Udp(address), "AUTH", "t");
        sink.append(&[record(3, r#"{"seq":3}"#.into())]).unwrap();
        let mut buffer = [0u8; 1024];
        let len = collector.recv(&mut buffer).unwrap();
        let message = String::from_utf8(buffer[..len].to_vec()).unwrap();
        assert!(message.ends_with(r#"{"seq":3}"#), "{message}");
        assert_eq!(sink.last_seq().unwrap(), None);
    }
}
