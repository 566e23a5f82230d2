//! A sink's durable cursor: the last journal sequence number delivered to it, kept in the node's
//! data directory (`<data_dir>/audit-sinks/<name>.cursor`) and replaced atomically (write, fsync,
//! rename, fsync the directory) only after the sink's own file is fsync'd.
//!
//! The cursor remembers the destination it belongs to: pointing a sink at a new file starts that
//! file from the first record.

use std::fs;
use std::io;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;

/// The directory under the data dir that holds cursors.
const CURSOR_DIR: &str = "audit-sinks";

#[derive(Serialize, Deserialize)]
struct Stored {
    seq: u64,
    destination: String,
}

/// One sink's cursor file.
#[derive(Debug, Clone)]
pub struct Cursor {
    dir: PathBuf,
    path: PathBuf,
    destination: String,
}

impl Cursor {
    /// The cursor of sink `name` writing to `destination` (a file's path, or a socket's
    /// `unix:<path>` / `tcp:<address>`), under `data_dir` (the directory is created when the
    /// cursor is first stored).
    pub fn new(data_dir: &Path, name: &str, destination: &str) -> Self {
        let dir = data_dir.join(CURSOR_DIR);
        Cursor {
            path: dir.join(format!("{name}.cursor")),
            dir,
            destination: destination.to_string(),
        }
    }

    /// The last delivered sequence number (0 when nothing was delivered, or when the cursor
    /// belongs to another destination).
    pub fn load(&self) -> io::Result<u64> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let stored: Stored = serde_json::from_slice(&bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "malformed cursor file"))?;
        Ok(if stored.destination == self.destination {
            stored.seq
        } else {
            0
        })
    }

    /// Durably records that everything up to `seq` was delivered.
    pub fn store(&self, seq: u64) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let stored = Stored {
            seq,
            destination: self.destination.clone(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(io::Error::other)?;
        let temp = self.path.with_extension("cursor.tmp");
        {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        fs::rename(&temp, &self.path)?;
        fs::File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_per_destination() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = Cursor::new(dir.path(), "file", "/a.log");
        assert_eq!(cursor.load().unwrap(), 0);
        cursor.store(42).unwrap();
        assert_eq!(cursor.load().unwrap(), 42);
        cursor.store(43).unwrap();
        assert_eq!(cursor.load().unwrap(), 43);
        let moved = Cursor::new(dir.path(), "file", "/b.log");
        assert_eq!(moved.load().unwrap(), 0, "a new destination starts over");
        let other = Cursor::new(dir.path(), "other", "/a.log");
        assert_eq!(other.load().unwrap(), 0);
    }

    #[test]
    fn a_malformed_cursor_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = Cursor::new(dir.path(), "file", "/a.log");
        cursor.store(1).unwrap();
        fs::write(dir.path().join("audit-sinks/file.cursor"), b"garbage").unwrap();
        assert_eq!(
            cursor.load().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
