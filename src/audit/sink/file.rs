//! The `file` sink: JSON lines appended to a file (mode 0600), fsync'd before the cursor moves,
//! rotated by size (`<file>.<last seq in it>`). The file is opened for every batch, so a file that
//! was moved away, deleted, or became writable again is picked up without a restart.
//!
//! A failed append is cut back to the length the file had before it, so a retry never leaves a
//! torn line behind (and if cutting back fails too, the next append starts on a fresh line).

use std::fs;
use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::path::PathBuf;

use super::SinkRecord;

/// How much of a file's end is read to find the last record's sequence number.
const TAIL_BYTES: u64 = 256 * 1024;

/// A file sink.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: Option<u64>,
}

impl FileSink {
    /// A sink appending to `path`, rotating before it would pass `max_bytes`.
    pub fn new(path: PathBuf, max_bytes: Option<u64>) -> Self {
        FileSink { path, max_bytes }
    }

    /// Appends `records` (consecutive, in order) and fsyncs. On error nothing of the batch is
    /// left in the file, as far as the file system lets us cut it back.
    pub fn append(&self, records: &[SinkRecord]) -> io::Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let mut lines = Vec::new();
        for record in records {
            lines.extend_from_slice(&record.line);
            lines.push(b'\n');
        }
        let (mut file, mut len) = self.open()?;
        if let Some(max) = self.max_bytes
            && len > 0
            && len.saturating_add(lines.len() as u64) > max
        {
            drop(file);
            self.rotate(first.seq.saturating_sub(1))?;
            (file, len) = self.open()?;
        }
        if len > 0 && !ends_with_newline(&file, len)? {
            lines.insert(0, b'\n');
        }
        let written = file.write_all(&lines).and_then(|()| file.sync_data());
        if let Err(err) = written {
            if file.set_len(len).is_ok() {
                let _ = file.sync_data();
            }
            return Err(err);
        }
        Ok(())
    }

    /// The sequence number of the last complete record in the current file, if any.
    pub fn last_seq(&self) -> io::Result<Option<u64>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let len = file.metadata()?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        Ok(tail
            .split(|byte| *byte == b'\n')
            .rev()
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .find_map(|value| value.get("seq").and_then(serde_json::Value::as_u64)))
    }

    fn open(&self) -> io::Result<(File, u64)> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            sync_parent(&self.path)?;
        }
        Ok((file, len))
    }

    /// Renames the current file to `<file>.<last_seq>` (or a free variant of it).
    fn rotate(&self, last_seq: u64) -> io::Result<()> {
        let mut target = suffixed(&self.path, &last_seq.to_string());
        let mut attempt = 1;
        while target.exists() {
            target = suffixed(&self.path, &format!("{last_seq}-{attempt}"));
            attempt += 1;
        }
        fs::rename(&self.path, &target)?;
        sync_parent(&self.path)
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn ends_with_newline(file: &File, len: u64) -> io::Result<bool> {
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seqs: std::ops::RangeInclusive<u64>) -> Vec<SinkRecord> {
        seqs.map(|seq| SinkRecord {
            seq,
            line: format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "x".repeat(50)).into_bytes(),
        })
        .collect()
    }

    fn seqs_in(path: &Path) -> Vec<u64> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn appends_lines_and_finds_the_last_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = FileSink::new(path.clone(), None);
        assert_eq!(sink.last_seq().unwrap(), None);
        sink.append(&records(1..=3)).unwrap();
        sink.append(&records(4..=4)).unwrap();
        assert_eq!(seqs_in(&path), vec![1, 2, 3, 4]);
        assert_eq!(sink.last_seq().unwrap(), Some(4));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_torn_line_is_isolated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = FileSink::new(path.clone(), None);
        sink.append(&records(1..=1)).unwrap();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":2,\"tor")
            .unwrap();
        assert_eq!(sink.last_seq().unwrap(), Some(1));
        sink.append(&records(2..=2)).unwrap();
        assert_eq!(sink.last_seq().unwrap(), Some(2));
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = FileSink::new(path.clone(), Some(200));
        for seq in 1..=7 {
            sink.append(&records(seq..=seq)).unwrap();
        }
        let mut all = Vec::new();
        let mut rotated: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        rotated.sort_by_key(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .and_then(|e| e.parse::<u64>().ok())
        });
        assert!(!rotated.is_empty());
        for file in rotated.iter().chain([&path]) {
            assert!(fs::metadata(file).unwrap().len() <= 200);
            all.extend(seqs_in(file));
        }
        assert_eq!(all, (1..=7).collect::<Vec<_>>());
    }

    #[test]
    fn a_missing_directory_fails_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        let path = sub.join("audit.log");
        let sink = FileSink::new(path.clone(), None);
        assert!(sink.append(&records(1..=1)).is_err());
        fs::create_dir(&sub).unwrap();
        sink.append(&records(1..=2)).unwrap();
        assert_eq!(seqs_in(&path), vec![1, 2]);
    }
}
