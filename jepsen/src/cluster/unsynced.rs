//! The crash model of the `lose-unsynced` nemesis: what a node's data directory would hold after
//! a power failure. It owns the per-node sync log the preloaded shim (`jepsen/fsync-shim`) writes,
//! the baseline of file sizes known durable, replaying the log over the baseline, and cutting the
//! data directory down to what the replay says survived.
//!
//! The model is append-only, like LazyFS's "lose unsynced writes" but done by truncation after
//! the process is dead:
//!
//! - A file's durable size is the size it had at the last successful `fsync`/`fdatasync` of it
//!   (taken by the shim before the call, so only bytes written before the call count), else its
//!   size in the baseline, else it has none: it was created since and never synced.
//! - `rename A B` moves A's durable size to B (B's old content is gone); if A had none, B has
//!   none. `exchange A B` swaps them. `unlink P` forgets P.
//! - At the crash every regular file is truncated to its durable size, or deleted if it has none.
//!   What is cut away is kept beside the data dir (`lost.<n>/`) for investigation.
//!
//! The baseline is taken when a node is first started and again right after each simulated power
//! failure (the truncated state is what a machine boots with). A plain process restart (the
//! `kill` nemesis) does not reset it: the page cache survives a process kill, so data never
//! synced stays at risk until a sync covers it or a power failure takes it.
//!
//! Not modelled: overwrites in place (only a file's length is tracked; RocksDB and Strongroom
//! only append, and write other files whole under a new name), truncation of a file to less than
//! its durable size, and the durability of directory entries (a create, rename or unlink counts as
//! durable at once, as if every directory were synced; a server that forgets to sync a directory
//! is not caught). `sync_file_range`, `msync` and `O_SYNC`/`O_DSYNC` writes are not durability
//! events here (Strongroom and RocksDB's default options use none of them for durability).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::bail;
use serde::Serialize;

/// Durable (or current) size of each regular file, by absolute path.
pub type Sizes = BTreeMap<PathBuf, u64>;

/// The shim's library file name, as cargo builds it next to the `strongroom` binary.
pub const SHIM_FILE: &str = "libstrongroom_fsync_shim.so";
/// Environment variable naming the sync log (read by the shim).
pub const ENV_LOG: &str = "STRONGROOM_SYNC_LOG";
/// Environment variable naming the data directory (read by the shim).
pub const ENV_DIR: &str = "STRONGROOM_SYNC_DIR";

/// One event of the sync log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The shim was loaded into a process (pid, executable).
    Start(u32, String),
    /// A file was synced at this size.
    Sync(PathBuf, u64),
    /// A rename.
    Rename(PathBuf, PathBuf),
    /// `renameat2(RENAME_EXCHANGE)`.
    Exchange(PathBuf, PathBuf),
    /// An unlink.
    Unlink(PathBuf),
}

/// Parses the shim's log. Lines that do not parse are returned by number (1-based); a write is
/// one line, so there should be none.
pub fn parse(text: &str) -> (Vec<Event>, Vec<usize>) {
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let event = match fields.as_slice() {
            ["start", pid, exe] => pid
                .parse()
                .ok()
                .map(|pid| Event::Start(pid, exe.to_string())),
            ["sync", path, size] => size
                .parse()
                .ok()
                .map(|size| Event::Sync(PathBuf::from(path), size)),
            ["rename", from, to] => Some(Event::Rename(PathBuf::from(from), PathBuf::from(to))),
            ["exchange", a, b] => Some(Event::Exchange(PathBuf::from(a), PathBuf::from(b))),
            ["unlink", path] => Some(Event::Unlink(PathBuf::from(path))),
            _ => None,
        };
        match event {
            Some(event) => events.push(event),
            None => bad.push(number + 1),
        }
    }
    (events, bad)
}

/// What survives a power failure: `baseline` with `events` applied in order.
pub fn replay(baseline: &Sizes, events: &[Event]) -> Sizes {
    let mut durable = baseline.clone();
    for event in events {
        match event {
            Event::Start(..) => {}
            Event::Sync(path, size) => {
                durable.insert(path.clone(), *size);
            }
            Event::Rename(from, to) => match durable.remove(from) {
                Some(size) => {
                    durable.insert(to.clone(), size);
                }
                None => {
                    durable.remove(to);
                }
            },
            Event::Exchange(a, b) => {
                let size_a = durable.remove(a);
                let size_b = durable.remove(b);
                if let Some(size) = size_a {
                    durable.insert(b.clone(), size);
                }
                if let Some(size) = size_b {
                    durable.insert(a.clone(), size);
                }
            }
            Event::Unlink(path) => {
                durable.remove(path);
            }
        }
    }
    durable
}

/// Every regular file under `dir` (recursively) with its size; empty if `dir` does not exist.
pub fn scan(dir: &Path) -> io::Result<Sizes> {
    let mut sizes = Sizes::new();
    if !dir.exists() {
        return Ok(sizes);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                sizes.insert(entry.path(), entry.metadata()?.len());
            }
        }
    }
    Ok(sizes)
}

/// What one simulated power failure did to a data directory (paths relative to it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Files left as they were (at their durable size already).
    pub kept: usize,
    /// Files cut to their durable size: path, size before, size after.
    pub truncated: Vec<(String, u64, u64)>,
    /// Files deleted (created and never synced): path, size.
    pub deleted: Vec<(String, u64)>,
    /// Files shorter than their durable size (an in-place truncation the model does not follow;
    /// left alone): path, size, durable size.
    pub shorter: Vec<(String, u64, u64)>,
    /// Bytes removed by truncation.
    pub bytes_truncated: u64,
    /// Bytes removed by deletion.
    pub bytes_deleted: u64,
}

/// Cuts every regular file under `dir` down to its size in `durable`, deleting files it lacks.
/// What is cut away is kept under `lost` (a deleted file as itself, a truncated one's tail as
/// `<path>.from-<offset>`), for whoever investigates a verdict.
pub fn apply(dir: &Path, durable: &Sizes, lost: &Path) -> io::Result<Loss> {
    let mut loss = Loss::default();
    for (path, size) in scan(dir)? {
        let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        let shown = relative.display().to_string();
        let kept = lost.join(&relative);
        if let Some(parent) = kept.parent() {
            fs::create_dir_all(parent)?;
        }
        match durable.get(&path) {
            None => {
                fs::rename(&path, &kept).or_else(|_| {
                    fs::copy(&path, &kept)?;
                    fs::remove_file(&path)
                })?;
                loss.bytes_deleted += size;
                loss.deleted.push((shown, size));
            }
            Some(&keep) if size > keep => {
                let mut file = fs::OpenOptions::new().read(true).write(true).open(&path)?;
                let mut tail = Vec::new();
                file.seek(SeekFrom::Start(keep))?;
                file.read_to_end(&mut tail)?;
                fs::write(
                    kept.with_file_name(format!("{}.from-{keep}", shown_name(&relative))),
                    tail,
                )?;
                file.set_len(keep)?;
                loss.bytes_truncated += size - keep;
                loss.truncated.push((shown, size, keep));
            }
            Some(&keep) if size < keep => loss.shorter.push((shown, size, keep)),
            Some(_) => loss.kept += 1,
        }
    }
    Ok(loss)
}

fn shown_name(relative: &Path) -> String {
    relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the `lost.<n>/` directories under a node's directory (with its data dir, after a
/// run that does not keep data).
pub fn remove_lost(node_dir: &Path) {
    let Ok(entries) = fs::read_dir(node_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("lost.") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// One node's sync log and durable baseline.
#[derive(Debug)]
pub struct Tracker {
    /// The log the shim appends to (`nodes/nK/sync.log`).
    log: PathBuf,
    /// The data directory, canonical (the shim compares canonical paths).
    dir: PathBuf,
    baseline: Sizes,
    /// Simulated power failures so far.
    losses: u32,
}

impl Tracker {
    /// Starts tracking `data_dir` (created if missing) with its current files as the baseline;
    /// the shim will write to `log`.
    pub fn new(log: PathBuf, data_dir: &Path) -> anyhow::Result<Tracker> {
        fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let dir = fs::canonicalize(data_dir)?;
        let baseline = scan(&dir)?;
        Ok(Tracker {
            log,
            dir,
            baseline,
            losses: 0,
        })
    }

    fn events(&self) -> anyhow::Result<Vec<Event>> {
        let text = match fs::read_to_string(&self.log) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err).with_context(|| format!("reading {}", self.log.display())),
        };
        let (events, bad) = parse(&text);
        if !bad.is_empty() {
            bail!("{}: unreadable lines {bad:?}", self.log.display());
        }
        Ok(events)
    }

    /// Checks that the shim is at work in the running server: it was loaded, and it has seen
    /// a sync under the data directory (RocksDB syncs its MANIFEST when it opens the database).
    pub fn check_active(&self) -> anyhow::Result<()> {
        let events = self.events()?;
        if !events
            .iter()
            .any(|e| matches!(e, Event::Start(_, exe) if exe.ends_with("strongroom")))
        {
            bail!(
                "{} has no start line from the strongroom server: the fsync shim was not preloaded",
                self.log.display()
            );
        }
        if !events.iter().any(|e| matches!(e, Event::Sync(..))) {
            bail!(
                "{} logged no sync of a file under {}: the fsync shim does not see the server's fsync calls",
                self.log.display(),
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Where the bytes cut away at the `n`th power failure are kept (`nodes/nK/lost.<n>/`).
    fn lost_dir(&self, n: u32) -> PathBuf {
        self.log.with_file_name(format!("lost.{n}"))
    }

    /// Simulates a power failure of a node whose process is dead: replays the log over the
    /// baseline, cuts the data directory to what survived (keeping what was cut under
    /// `lost.<n>/`), keeps the log as `sync.<n>.log`, and takes the result as the new baseline.
    pub fn lose_unsynced(&mut self) -> anyhow::Result<Loss> {
        let events = self.events()?;
        let durable = replay(&self.baseline, &events);
        self.losses += 1;
        let lost = self.lost_dir(self.losses);
        let loss = apply(&self.dir, &durable, &lost)
            .with_context(|| format!("cutting {} to its synced state", self.dir.display()))?;
        if self.log.exists() {
            let kept = self.log.with_file_name(format!("sync.{}.log", self.losses));
            fs::rename(&self.log, &kept)?;
        }
        self.baseline = scan(&self.dir)?;
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, vec![b'x'; bytes]).expect("write");
    }

    fn len(path: &Path) -> Option<u64> {
        fs::metadata(path).ok().map(|m| m.len())
    }

    #[test]
    fn parses_every_kind_and_reports_bad_lines() {
        let text = "start\t7\t/bin/strongroom\nsync\t/d/a\t12\nrename\t/d/a\t/d/b\n\
                    exchange\t/d/b\t/d/c\nunlink\t/d/c\nsync\t/d/a\tx\nbogus\n";
        let (events, bad) = parse(text);
        assert_eq!(
            events,
            vec![
                Event::Start(7, "/bin/strongroom".into()),
                Event::Sync("/d/a".into(), 12),
                Event::Rename("/d/a".into(), "/d/b".into()),
                Event::Exchange("/d/b".into(), "/d/c".into()),
                Event::Unlink("/d/c".into()),
            ]
        );
        assert_eq!(bad, vec![6, 7]);
    }

    #[test]
    fn replay_follows_syncs_renames_exchanges_and_unlinks() {
        let p = |s: &str| PathBuf::from(s);
        let baseline: Sizes = [(p("/d/old"), 100), (p("/d/CURRENT"), 16), (p("/d/gone"), 5)]
            .into_iter()
            .collect();
        let events = vec![
            Event::Sync(p("/d/old"), 150),
            Event::Sync(p("/d/old"), 180),
            Event::Sync(p("/d/tmp"), 16),
            Event::Rename(p("/d/tmp"), p("/d/CURRENT")),
            Event::Rename(p("/d/never-synced"), p("/d/target")),
            Event::Unlink(p("/d/gone")),
            Event::Sync(p("/d/x"), 1),
            Event::Sync(p("/d/y"), 2),
            Event::Exchange(p("/d/x"), p("/d/y")),
        ];
        let durable = replay(&baseline, &events);
        let expected: Sizes = [
            (p("/d/old"), 180),
            (p("/d/CURRENT"), 16),
            (p("/d/x"), 2),
            (p("/d/y"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(durable, expected);
    }

    #[test]
    fn a_rename_of_an_unsynced_file_over_a_durable_one_leaves_nothing_durable() {
        let p = |s: &str| PathBuf::from(s);
        let baseline: Sizes = [(p("/d/CURRENT"), 16)].into_iter().collect();
        let durable = replay(&baseline, &[Event::Rename(p("/d/tmp"), p("/d/CURRENT"))]);
        assert!(durable.is_empty());
    }

    /// A data dir driven through a log, the way the nemesis uses it.
    #[test]
    fn tracker_cuts_a_data_dir_to_its_synced_state() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        write(&data.join("raft/000001.log"), 50);
        write(&data.join("raft/IDENTITY"), 36);
        let mut tracker = Tracker::new(root.path().join("sync.log"), &data).expect("tracker");
        let dir = tracker.dir.clone();
        let wal = dir.join("raft/000001.log");
        // The server appends 70 bytes to the WAL and syncs at 90; writes a snapshot that it
        // syncs and renames into place; creates a WAL it never syncs; renames an unsynced file
        // into place (OPTIONS-1); deletes a file that existed at start.
        write(&wal, 120);
        write(&dir.join("snapshots/snap-9"), 40);
        write(&dir.join("raft/000002.log"), 33);
        write(&dir.join("raft/OPTIONS-1"), 10);
        fs::remove_file(dir.join("raft/IDENTITY")).expect("rm");
        let log = [
            "start\t1\t/x/strongroom".to_string(),
            format!("sync\t{}\t90", wal.display()),
            format!(
                "sync\t{}\t40",
                dir.join("snapshots.partial/a.part").display()
            ),
            format!(
                "rename\t{}\t{}",
                dir.join("snapshots.partial/a.part").display(),
                dir.join("snapshots/snap-9").display()
            ),
            format!("sync\t{}\t10", dir.join("raft/OPTIONS-0").display()),
            format!(
                "rename\t{}\t{}",
                dir.join("raft/OPTIONS-tmp").display(),
                dir.join("raft/OPTIONS-1").display()
            ),
            format!("unlink\t{}", dir.join("raft/IDENTITY").display()),
        ]
        .join("\n");
        fs::write(root.path().join("sync.log"), log + "\n").expect("log");
        tracker.check_active().expect("active");

        let loss = tracker.lose_unsynced().expect("lose");
        assert_eq!(len(&wal), Some(90));
        let lost = root.path().join("lost.1");
        assert_eq!(len(&lost.join("raft/000001.log.from-90")), Some(30));
        assert_eq!(len(&lost.join("raft/000002.log")), Some(33));
        assert_eq!(len(&dir.join("snapshots/snap-9")), Some(40));
        assert_eq!(len(&dir.join("raft/000002.log")), None);
        assert_eq!(len(&dir.join("raft/OPTIONS-1")), None);
        assert_eq!(
            loss.truncated,
            vec![("raft/000001.log".to_string(), 120, 90)]
        );
        assert_eq!(loss.bytes_truncated, 30);
        assert_eq!(loss.bytes_deleted, 43);
        assert_eq!(loss.deleted.len(), 2);
        assert_eq!(loss.kept, 1);
        assert!(root.path().join("sync.1.log").exists());
        assert!(!root.path().join("sync.log").exists());

        // After the failure, what is left is durable: the next power failure with an empty log
        // changes nothing, and appends made since are lost again.
        write(&wal, 95);
        let loss = tracker.lose_unsynced().expect("lose again");
        assert_eq!(len(&wal), Some(90));
        assert_eq!(
            loss.truncated,
            vec![("raft/000001.log".to_string(), 95, 90)]
        );
        assert_eq!(loss.kept, 1);
    }

    #[test]
    fn check_active_needs_the_server_start_line_and_a_sync() {
        let root = tempfile::tempdir().expect("tempdir");
        let tracker =
            Tracker::new(root.path().join("sync.log"), &root.path().join("data")).expect("tracker");
        assert!(tracker.check_active().is_err());
        fs::write(
            root.path().join("sync.log"),
            "start\t1\t/usr/sbin/ip\nstart\t1\t/b/strongroom\n",
        )
        .expect("log");
        assert!(tracker.check_active().is_err());
        fs::write(
            root.path().join("sync.log"),
            "start\t1\t/b/strongroom\nsync\t/data/raft/MANIFEST-000005\t100\n",
        )
        .expect("log");
        assert!(tracker.check_active().is_ok());
    }

    #[test]
    fn a_file_shorter_than_its_durable_size_is_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        write(&data.join("f"), 5);
        let durable: Sizes = [(data.join("f"), 9)].into_iter().collect();
        let loss = apply(&data, &durable, &root.path().join("lost")).expect("apply");
        assert_eq!(loss.shorter, vec![("f".to_string(), 5, 9)]);
        assert_eq!(len(&data.join("f")), Some(5));
    }
}
