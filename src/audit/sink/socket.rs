//! The `socket` sink: JSON lines written to a stream socket, Unix (`path`) or TCP (`address`),
//! like Vault's `socket` audit device. One connection is kept open and reused; any error drops
//! it, and the next batch reconnects (so a collector that restarts is picked up again).
//!
//! A record counts as delivered once the kernel accepted all of its batch (`write_all` and
//! `flush` returned): there is no acknowledgement from the collector, so a collector that dies
//! with unread bytes in its buffer loses them. After an error the whole batch is sent again from
//! the cursor, so delivery is at least once; every line carries its `seq` to drop repeats by.
//! Connecting and each write give up after [`IO_TIMEOUT`], so a stuck collector only makes the
//! sink fall behind and retry, never blocks anything else.

use std::io;
use std::io::Write;
use std::net::TcpStream;
use std::net::ToSocketAddrs;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use super::Sink;
use super::SinkRecord;

/// How long connecting or one write may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a socket sink connects.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Unix stream socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
            Stream::Tcp(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
        }
    }
}

/// A socket sink.
#[derive(Clone)]
pub struct SocketSink {
    target: Target,
    connection: Arc<Mutex<Option<Stream>>>,
}

impl std::fmt::Debug for SocketSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSink")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl SocketSink {
    /// A sink writing to `target` (connected on first use).
    pub fn new(target: Target) -> Self {
        SocketSink {
            target,
            connection: Arc::new(Mutex::new(None)),
        }
    }

    fn connect(&self) -> io::Result<Stream> {
        match &self.target {
            Target::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Stream::Unix(stream))
            }
            Target::Tcp(address) => {
                let mut last =
                    io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
                for addr in address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                        Ok(stream) => {
                            stream.set_write_timeout(Some(IO_TIMEOUT))?;
                            stream.set_nodelay(true)?;
                            return Ok(Stream::Tcp(stream));
                        }
                        Err(err) => last = err,
                    }
                }
                Err(last)
            }
        }
    }
}

impl Sink for SocketSink {
    fn append(&self, records: &[SinkRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend_from_slice(&record.line);
            bytes.push(b'\n');
        }
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stream = match connection.as_mut() {
            Some(stream) => stream,
            None => connection.insert(self.connect()?),
        };
        let written = stream.write_batch(&bytes);
        if written.is_err() {
            *connection = None;
        }
        written
    }

    fn last_seq(&self) -> io::Result<Option<u64>> {
        // A socket keeps nothing to look at: the cursor alone says where to resume.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::io::BufReader;
    use std::os::unix::net::UnixListener;

    use super::*;

    fn records(seqs: std::ops::RangeInclusive<u64>) -> Vec<SinkRecord> {
        seqs.map(|seq| SinkRecord {
            seq,
            line: format!(r#"{{"seq":{seq}}}"#).into_bytes(),
        })
        .collect()
    }

    fn read_seqs(reader: &mut BufReader<UnixStream>, count: usize) -> Vec<u64> {
        (0..count)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn unix_socket_lines_fail_without_a_listener_and_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sock");
        let sink = SocketSink::new(Target::Unix(path.clone()));
        assert!(sink.append(&records(1..=1)).is_err(), "nobody listens yet");

        let listener = UnixListener::bind(&path).unwrap();
        sink.append(&records(1..=2)).unwrap();
        sink.append(&records(3..=3)).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_seqs(&mut reader, 3), vec![1, 2, 3]);

        // The collector goes away: writes fail (at the latest once the peer is gone), then a
        // new collector gets the retried batch on a new connection.
        drop(reader);
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let failed = (0..50).any(|_| sink.append(&records(4..=4)).is_err());
        assert!(failed, "writing to a closed collector fails");
        let listener = UnixListener::bind(&path).unwrap();
        sink.append(&records(4..=5)).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_seqs(&mut reader, 2), vec![4, 5]);
    }

    #[test]
    fn tcp_connect_failure_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let sink = SocketSink::new(Target::Tcp(address));
        assert!(sink.append(&records(1..=1)).is_err());
        assert_eq!(sink.last_seq().unwrap(), None);
    }
}
