//! Snapshot files: a point-in-time copy of the state machine (KV, journal, applied log id,
//! membership, journal head) written from a RocksDB snapshot, streamed to followers in chunks, and
//! installed atomically.
//!
//! Format: the magic bytes, then frames `[len: u32 BE][codec-encoded Frame]`: one `Meta` frame,
//! a `Retention` frame (journal prune point and acknowledgements; absent in files written before
//! retention existed, which install as "nothing pruned"), every `Kv` frame in key order, every `Journal` frame in sequence order, and an `End` frame
//! carrying the frame count and the SHA-256 of every byte before the `End` frame. A file whose
//! digest or count does not match is refused before anything is installed.

use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;
use sha2::Digest;
use sha2::Sha256;

use crate::codec;
use crate::db;
use crate::types::JournalEntry;
use crate::types::JournalHead;
use crate::types::JournalRetention;
use crate::types::Record;
use crate::types::typ::LogId;
use crate::types::typ::SnapshotMeta;
use crate::types::typ::StoredMembership;

const MAGIC: &[u8; 8] = b"SRSNAP\0\x01";
/// Frames larger than this are refused when reading (a corrupt length must not allocate GiBs).
const MAX_FRAME_LEN: u32 = 256 << 20;
/// File name suffix of complete snapshot files.
const SUFFIX: &str = ".snap";

/// One frame of a snapshot file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// The snapshot's position: what it covers.
    Meta {
        /// The last log id applied into the snapshot.
        last_applied: Option<LogId>,
        /// The membership in effect at that point.
        membership: StoredMembership,
        /// The journal head at that point.
        journal_head: JournalHead,
    },
    /// One key and its record.
    Kv {
        /// The key.
        key: String,
        /// Its record.
        record: Record,
    },
    /// One journal entry.
    Journal(JournalEntry),
    /// The end marker with the integrity check.
    End {
        /// How many frames came before this one.
        frames: u64,
        /// SHA-256 of every byte of the file before this frame.
        digest: [u8; 32],
    },
    /// The journal's retention state (last in the enum so older files keep their encoding).
    Retention(JournalRetention),
}

/// The data of a snapshot as openraft passes it around: an open snapshot file.
///
/// The handle stays valid even if a newer snapshot replaces (unlinks) the file while it is being
/// streamed.
#[derive(Debug)]
pub struct SnapshotFile {
    /// Where the file was when it was opened.
    pub path: PathBuf,
    /// The open file.
    pub file: File,
}

impl SnapshotFile {
    /// Opens the snapshot file at `path`.
    pub fn open(path: PathBuf) -> Result<Self, io::Error> {
        let file = File::open(&path)?;
        Ok(SnapshotFile { path, file })
    }
}

/// Writes frames to a file while hashing them.
pub(crate) struct SnapshotWriter {
    out: BufWriter<File>,
    hasher: Sha256,
    frames: u64,
}

impl SnapshotWriter {
    /// Creates `path` and writes the magic bytes.
    pub(crate) fn create(path: &Path) -> Result<Self, io::Error> {
        let mut writer = SnapshotWriter {
            out: BufWriter::new(File::create(path)?),
            hasher: Sha256::new(),
            frames: 0,
        };
        writer.write_raw(MAGIC)?;
        Ok(writer)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)
    }

    /// Appends one frame.
    pub(crate) fn write(&mut self, frame: &Frame) -> Result<(), io::Error> {
        let body = codec::encode(frame);
        let len =
            u32::try_from(body.len()).map_err(|_| io::Error::other("snapshot frame too large"))?;
        self.write_raw(&len.to_be_bytes())?;
        self.write_raw(&body)?;
        self.frames += 1;
        Ok(())
    }

    /// Writes the end frame and syncs the file to disk.
    pub(crate) fn finish(mut self) -> Result<(), io::Error> {
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        let end = codec::encode(&Frame::End {
            frames: self.frames,
            digest,
        });
        let len =
            u32::try_from(end.len()).map_err(|_| io::Error::other("snapshot frame too large"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&end)?;
        let file = self.out.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()
    }
}

/// Reads and checks frames from a snapshot file.
pub(crate) struct SnapshotReader<R: Read> {
    input: R,
    hasher: Sha256,
    frames: u64,
    finished: bool,
}

impl SnapshotReader<BufReader<File>> {
    /// Opens the snapshot at `path` (through a fresh handle, from the start).
    pub(crate) fn open(path: &Path) -> Result<Self, io::Error> {
        SnapshotReader::new(BufReader::new(File::open(path)?))
    }
}

impl<R: Read> SnapshotReader<R> {
    /// Starts reading a snapshot from `input`, checking the magic bytes.
    pub(crate) fn new(mut input: R) -> Result<Self, io::Error> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid("not a strongroom snapshot file"));
        }
        let mut hasher = Sha256::new();
        hasher.update(magic);
        Ok(SnapshotReader {
            input,
            hasher,
            frames: 0,
            finished: false,
        })
    }

    /// Returns the next data frame, `None` after a verified `End` frame, or an error if the file
    /// is truncated or its digest does not match.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, io::Error> {
        if self.finished {
            return Ok(None);
        }
        let mut len_bytes = [0u8; 4];
        self.input
            .read_exact(&mut len_bytes)
            .map_err(|_| invalid("snapshot file is truncated"))?;
        let len = u32::from_be_bytes(len_bytes);
        if len > MAX_FRAME_LEN {
            return Err(invalid("snapshot frame length is implausible"));
        }
        let mut body = vec![0u8; len as usize];
        self.input
            .read_exact(&mut body)
            .map_err(|_| invalid("snapshot file is truncated"))?;
        let frame: Frame = db::decode(&body)?;
        if let Frame::End { frames, digest } = frame {
            let actual: [u8; 32] = self.hasher.clone().finalize().into();
            if frames != self.frames || digest != actual {
                return Err(invalid("snapshot file failed its integrity check"));
            }
            self.finished = true;
            return Ok(None);
        }
        self.hasher.update(len_bytes);
        self.hasher.update(&body);
        self.frames += 1;
        Ok(Some(frame))
    }

    /// Reads the first frame, which must be `Meta`.
    pub(crate) fn read_meta(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership, JournalHead), io::Error> {
        match self.next_frame()? {
            Some(Frame::Meta {
                last_applied,
                membership,
                journal_head,
            }) => Ok((last_applied, membership, journal_head)),
            _ => Err(invalid("snapshot file does not start with its meta frame")),
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// The file name of a complete snapshot covering up to `meta`, sortable by log index.
pub(crate) fn file_name(last_applied: Option<&LogId>) -> String {
    match last_applied {
        Some(log_id) => format!("{:020}-{}{SUFFIX}", log_id.index, log_id.leader_id),
        None => format!("{:020}-none{SUFFIX}", 0),
    }
}

/// The newest complete snapshot file in `dir`, if any.
pub(crate) fn latest_in(dir: &Path) -> Result<Option<PathBuf>, io::Error> {
    let mut newest: Option<(String, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(SUFFIX) {
            continue;
        }
        if newest.as_ref().is_none_or(|(best, _)| name > *best) {
            newest = Some((name, entry.path()));
        }
    }
    Ok(newest.map(|(_, path)| path))
}

/// Removes the complete snapshots in `dir` that are older than `keep` (names sort by index; a
/// newer one, installed while `keep` was being built, stays).
pub(crate) fn remove_older(dir: &Path, keep: &Path) -> Result<(), io::Error> {
    let Some(keep_name) = keep
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
    else {
        return Ok(());
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(SUFFIX) && name < keep_name {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Builds the openraft meta of a snapshot from its meta frame.
pub(crate) fn meta_of(last_applied: Option<LogId>, membership: StoredMembership) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: last_applied,
        last_membership: membership,
    }
}

/// Syncs a directory so that a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), io::Error> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &[u8]) -> Record {
        Record {
            value: value.to_vec(),
            create_revision: 1,
            mod_revision: 2,
            version: 1,
        }
    }

    fn write_sample(path: &Path) {
        let mut writer = SnapshotWriter::create(path).unwrap();
        writer
            .write(&Frame::Meta {
                last_applied: None,
                membership: StoredMembership::default(),
                journal_head: JournalHead::default(),
            })
            .unwrap();
        writer
            .write(&Frame::Kv {
                key: "a".into(),
                record: record(b"x"),
            })
            .unwrap();
        writer.finish().unwrap();
    }

    #[test]
    fn round_trips_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        write_sample(&path);
        let mut reader = SnapshotReader::open(&path).unwrap();
        reader.read_meta().unwrap();
        assert!(matches!(
            reader.next_frame().unwrap(),
            Some(Frame::Kv { .. })
        ));
        assert!(reader.next_frame().unwrap().is_none());
    }

    #[test]
    fn refuses_corrupted_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        write_sample(&path);
        let bytes = std::fs::read(&path).unwrap();

        let mut flipped = bytes.clone();
        let at = flipped.len() - 50;
        flipped[at] ^= 1;
        let mut reader = SnapshotReader::new(&flipped[..]).unwrap();
        let outcome: Result<Vec<Frame>, io::Error> =
            std::iter::from_fn(|| reader.next_frame().transpose()).collect();
        assert!(outcome.is_err());

        let truncated = &bytes[..bytes.len() - 10];
        let mut reader = SnapshotReader::new(truncated).unwrap();
        let outcome: Result<Vec<Frame>, io::Error> =
            std::iter::from_fn(|| reader.next_frame().transpose()).collect();
        assert!(outcome.is_err());
    }

    #[test]
    fn names_sort_by_index() {
        assert!(file_name(None).as_str() < "00000000000000000002-x.snap");
    }
}
