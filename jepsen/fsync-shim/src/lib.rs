//! An `LD_PRELOAD` shim for strongroom-jepsen's `lose-unsynced` nemesis. It owns one thing: a log
//! of the durability events a server process causes under its data directory, from which the
//! harness later computes what a power failure would have kept (`cluster::unsynced` in
//! strongroom-jepsen).
//!
//! It interposes `fsync`, `fdatasync`, `syncfs`, `sync`, `rename`, `renameat`, `renameat2`,
//! `unlink`, `unlinkat` and `remove`, calls the real function (found with
//! `dlsym(RTLD_NEXT, ...)`), and appends one line per event to the file named by
//! `STRONGROOM_SYNC_LOG`, only for paths under `STRONGROOM_SYNC_DIR` (an absolute, canonical
//! path). Fields are separated by tabs:
//!
//! ```text
//! start   <pid>   <executable>        when the library is loaded (proof the preload took)
//! sync    <path>  <size>              fsync/fdatasync of a regular file succeeded; size from fstat
//!                                     taken before the call (what the call is sure to cover)
//! rename  <old>   <new>               rename succeeded (RENAME_NOREPLACE included)
//! exchange <a>    <b>                 renameat2(RENAME_EXCHANGE) succeeded
//! unlink  <path>                      unlink/unlinkat (not AT_REMOVEDIR)/remove succeeded
//! ```
//!
//! `sync()` and `syncfs()` log a `sync` line for every regular file under the directory (sizes
//! read before the call). Each line is written with one `write(2)` on an `O_APPEND` descriptor,
//! so lines of concurrent threads never interleave, and a line is written before the
//! interposed call returns: a caller that saw its fsync succeed has its `sync` line logged.
//! Paths containing a tab or a newline are not logged (none exist in a node's data dir).
//!
//! Rust std (`File::sync_all`, `fs::rename`, `fs::remove_file`) and RocksDB (C++ linked into the
//! server, calling glibc through the PLT) both reach these functions. Nothing here may unwind
//! into the caller: the logging runs under `catch_unwind`, and `errno` is restored to the real
//! call's value before returning. Without `STRONGROOM_SYNC_LOG` and `STRONGROOM_SYNC_DIR` the shim
//! only forwards calls.

use std::ffi::CStr;
use std::ffi::OsStr;
use std::ffi::c_char;
use std::ffi::c_int;
use std::ffi::c_uint;
use std::ffi::c_void;
use std::os::unix::ffi::OsStrExt;
use std::path::Component;
use std::path::Path;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where events go, and which paths are of interest.
struct Config {
    /// The data directory, as bytes, without a trailing slash.
    dir: Vec<u8>,
    /// The log, opened `O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC`.
    fd: c_int,
}

static CONFIG: OnceLock<Option<Config>> = OnceLock::new();

fn config() -> Option<&'static Config> {
    CONFIG.get_or_init(load_config).as_ref()
}

fn load_config() -> Option<Config> {
    let log = std::env::var_os("STRONGROOM_SYNC_LOG")?;
    let dir = std::env::var_os("STRONGROOM_SYNC_DIR")?;
    let mut dir = dir.as_bytes().to_vec();
    while dir.len() > 1 && dir.last() == Some(&b'/') {
        dir.pop();
    }
    let mut path = log.as_bytes().to_vec();
    path.push(0);
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast::<c_char>(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644 as c_uint,
        )
    };
    (fd >= 0).then_some(Config { dir, fd })
}

impl Config {
    fn under(&self, path: &[u8]) -> bool {
        path.starts_with(&self.dir)
            && (path.len() == self.dir.len() || path.get(self.dir.len()) == Some(&b'/'))
    }

    /// Appends one line made of `fields` (tab-separated) with a single write.
    fn log(&self, fields: &[&[u8]]) {
        if fields
            .iter()
            .any(|f| f.contains(&b'\t') || f.contains(&b'\n'))
        {
            return;
        }
        let mut line = Vec::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            line.extend_from_slice(field);
        }
        line.push(b'\n');
        unsafe {
            libc::write(self.fd, line.as_ptr().cast::<c_void>(), line.len());
        }
    }
}

/// Runs `f` without letting a panic escape, and with `errno` left as the real call set it.
fn quietly(f: impl FnOnce()) {
    let errno = unsafe { *libc::__errno_location() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    unsafe {
        *libc::__errno_location() = errno;
    }
}

/// Writes the `start` line when the library is loaded.
extern "C" fn on_load() {
    quietly(|| {
        if let Some(config) = config() {
            let pid = std::process::id().to_string();
            let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
            config.log(&[b"start", pid.as_bytes(), exe.as_os_str().as_bytes()]);
        }
    });
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// Looks the next definition of `name` up once.
fn next_symbol(slot: &OnceLock<usize>, name: &CStr) -> usize {
    *slot.get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize })
}

/// Fails the call as `ENOSYS` when the real function cannot be found.
fn missing() -> c_int {
    unsafe {
        *libc::__errno_location() = libc::ENOSYS;
    }
    -1
}

macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static SLOT: OnceLock<usize> = OnceLock::new();
        let address = next_symbol(&SLOT, $name);
        if address == 0 {
            None
        } else {
            Some(unsafe { std::mem::transmute::<usize, $ty>(address) })
        }
    }};
}

/// The path `/proc/self/fd/<fd>` names, if the link can be read and the file is not deleted.
fn fd_path(fd: c_int) -> Option<Vec<u8>> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let bytes = link.as_os_str().as_bytes().to_vec();
    (!bytes.ends_with(b" (deleted)")).then_some(bytes)
}

/// The size of `fd` if it is a regular file.
fn regular_size(fd: c_int) -> Option<u64> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::zeroed();
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    let stat = unsafe { stat.assume_init() };
    ((stat.st_mode & libc::S_IFMT) == libc::S_IFREG).then_some(stat.st_size as u64)
}

/// What a successful sync of `fd` will make durable: its path and current size.
fn before_sync(fd: c_int) -> Option<(&'static Config, Vec<u8>, u64)> {
    let config = config()?;
    let size = regular_size(fd)?;
    let path = fd_path(fd)?;
    config.under(&path).then_some((config, path, size))
}

fn log_sync(pending: Option<(&'static Config, Vec<u8>, u64)>) {
    if let Some((config, path, size)) = pending {
        config.log(&[b"sync", &path, size.to_string().as_bytes()]);
    }
}

/// Every regular file under the data dir with its size (for `sync` and `syncfs`).
fn all_files(config: &Config) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(OsStr::from_bytes(&config.dir))];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path().as_os_str().as_bytes().to_vec(), meta.len()));
            }
        }
    }
    out
}

/// `path` made absolute against `dirfd` (or the working directory), `.` and `..` resolved
/// lexically.
fn absolute(dirfd: c_int, path: *const c_char) -> Option<Vec<u8>> {
    if path.is_null() {
        return None;
    }
    let path = unsafe { CStr::from_ptr(path) }.to_bytes();
    let joined = if path.first() == Some(&b'/') {
        PathBuf::from(OsStr::from_bytes(path))
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            std::env::current_dir().ok()?
        } else {
            PathBuf::from(OsStr::from_bytes(&fd_path(dirfd)?))
        };
        base.join(OsStr::from_bytes(path))
    };
    let mut out = PathBuf::from("/");
    for component in Path::new(&joined).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out.as_os_str().as_bytes().to_vec())
}

fn log_two(kind: &[u8], old: Option<Vec<u8>>, new: Option<Vec<u8>>) {
    if let (Some(config), Some(old), Some(new)) = (config(), old, new)
        && (config.under(&old) || config.under(&new))
    {
        config.log(&[kind, &old, &new]);
    }
}

fn log_unlink(path: Option<Vec<u8>>) {
    if let (Some(config), Some(path)) = (config(), path)
        && config.under(&path)
    {
        config.log(&[b"unlink", &path]);
    }
}

/// Interposed `fsync(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let Some(real) = real!(c"fsync", unsafe extern "C" fn(c_int) -> c_int) else {
        return missing();
    };
    let mut pending = None;
    quietly(|| pending = before_sync(fd));
    let result = unsafe { real(fd) };
    if result == 0 {
        quietly(|| log_sync(pending));
    }
    result
}

/// Interposed `fdatasync(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let Some(real) = real!(c"fdatasync", unsafe extern "C" fn(c_int) -> c_int) else {
        return missing();
    };
    let mut pending = None;
    quietly(|| pending = before_sync(fd));
    let result = unsafe { real(fd) };
    if result == 0 {
        quietly(|| log_sync(pending));
    }
    result
}

fn log_all(files: Vec<(Vec<u8>, u64)>) {
    if let Some(config) = config() {
        for (path, size) in files {
            config.log(&[b"sync", &path, size.to_string().as_bytes()]);
        }
    }
}

/// Interposed `syncfs(2)` (treated as a sync of every file under the data dir).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syncfs(fd: c_int) -> c_int {
    let Some(real) = real!(c"syncfs", unsafe extern "C" fn(c_int) -> c_int) else {
        return missing();
    };
    let mut files = Vec::new();
    quietly(|| files = config().map(all_files).unwrap_or_default());
    let result = unsafe { real(fd) };
    if result == 0 {
        quietly(|| log_all(files));
    }
    result
}

/// Interposed `sync(2)` (a sync of every file under the data dir).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sync() {
    let Some(real) = real!(c"sync", unsafe extern "C" fn()) else {
        return;
    };
    let mut files = Vec::new();
    quietly(|| files = config().map(all_files).unwrap_or_default());
    unsafe { real() };
    quietly(|| log_all(files));
}

/// Interposed `rename(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let Some(real) = real!(
        c"rename",
        unsafe extern "C" fn(*const c_char, *const c_char) -> c_int
    ) else {
        return missing();
    };
    let result = unsafe { real(old, new) };
    if result == 0 {
        quietly(|| {
            log_two(
                b"rename",
                absolute(libc::AT_FDCWD, old),
                absolute(libc::AT_FDCWD, new),
            )
        });
    }
    result
}

/// Interposed `renameat(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat(
    old_dir: c_int,
    old: *const c_char,
    new_dir: c_int,
    new: *const c_char,
) -> c_int {
    let Some(real) = real!(
        c"renameat",
        unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int
    ) else {
        return missing();
    };
    // The directory descriptors are resolved before the call: afterwards they still name the
    // same directories, but resolving first keeps the order of events simple to reason about.
    let mut paths = (None, None);
    quietly(|| paths = (absolute(old_dir, old), absolute(new_dir, new)));
    let result = unsafe { real(old_dir, old, new_dir, new) };
    if result == 0 {
        quietly(|| log_two(b"rename", paths.0, paths.1));
    }
    result
}

/// Interposed `renameat2(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat2(
    old_dir: c_int,
    old: *const c_char,
    new_dir: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    let Some(real) = real!(
        c"renameat2",
        unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int
    ) else {
        return missing();
    };
    let mut paths = (None, None);
    quietly(|| paths = (absolute(old_dir, old), absolute(new_dir, new)));
    let result = unsafe { real(old_dir, old, new_dir, new, flags) };
    if result == 0 {
        let kind: &[u8] = if flags & libc::RENAME_EXCHANGE != 0 {
            b"exchange"
        } else {
            b"rename"
        };
        quietly(|| log_two(kind, paths.0, paths.1));
    }
    result
}

/// Interposed `unlink(2)`.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    let Some(real) = real!(c"unlink", unsafe extern "C" fn(*const c_char) -> c_int) else {
        return missing();
    };
    let result = unsafe { real(path) };
    if result == 0 {
        quietly(|| log_unlink(absolute(libc::AT_FDCWD, path)));
    }
    result
}

/// Interposed `unlinkat(2)` (directory removals are not logged).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let Some(real) = real!(
        c"unlinkat",
        unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int
    ) else {
        return missing();
    };
    let mut resolved = None;
    if flags & libc::AT_REMOVEDIR == 0 {
        quietly(|| resolved = absolute(dirfd, path));
    }
    let result = unsafe { real(dirfd, path, flags) };
    if result == 0 {
        quietly(|| log_unlink(resolved));
    }
    result
}

/// Interposed `remove(3)` (glibc calls its own unlink/rmdir internally, not through the PLT).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn remove(path: *const c_char) -> c_int {
    let Some(real) = real!(c"remove", unsafe extern "C" fn(*const c_char) -> c_int) else {
        return missing();
    };
    let result = unsafe { real(path) };
    if result == 0 {
        // A removed directory's line is harmless: the replay tracks files only.
        quietly(|| log_unlink(absolute(libc::AT_FDCWD, path)));
    }
    result
}
