//! The sandbox every netns-mode run lives in: the harness re-executes itself under `unshare`
//! in fresh network, mount and PID namespaces (plus a user namespace mapping the caller to root
//! when not run as root). Everything the run creates (bridge, node namespaces, iptables rules,
//! node processes) lives inside, so nothing touches the host's network, and when the harness
//! exits or crashes the kernel kills every process of the PID namespace and frees the
//! namespaces: no leftovers are possible. `ip netns` names live on a private tmpfs.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use anyhow::bail;

use super::cmd;

/// Set in the re-executed process.
pub const INSIDE_ENV: &str = "STRONGROOM_JEPSEN_SANDBOX";

/// True inside the sandbox.
pub fn inside() -> bool {
    std::env::var_os(INSIDE_ENV).is_some()
}

/// True when running as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether a sandbox can be created here: `unshare` and `ip` exist, and a probe succeeds.
pub fn available() -> Result<(), String> {
    for tool in ["unshare", "ip", "iptables-restore", "mount"] {
        if !cmd::exists(tool) && !Path::new("/usr/sbin").join(tool).exists() {
            return Err(format!("{tool} is not installed (see scripts/setup.sh)"));
        }
    }
    let mut args: Vec<&str> = Vec::new();
    if !is_root() {
        args.extend(["--user", "--map-root-user"]);
    }
    args.extend(["--net", "--mount", "--pid", "--fork", "true"]);
    cmd::run("unshare", &args, None)
        .map(|_| ())
        .map_err(|err| format!("cannot create namespaces: {err}"))
}

/// Re-executes this program with `args` inside the sandbox; returns its exit code.
pub fn reexec(args: &[OsString]) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut command = Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--kill-child",
            "--",
        ])
        .arg(exe)
        .args(args)
        .env(INSIDE_ENV, "1");
    let status = command.status().context("running unshare")?;
    Ok(status.code().unwrap_or(3))
}

/// Prepares the inside of the sandbox: loopback up, a private tmpfs for `ip netns` names.
pub fn prepare() -> anyhow::Result<()> {
    if !inside() {
        bail!("not inside the sandbox");
    }
    cmd::run("ip", &["link", "set", "lo", "up"], None)?;
    let netns_dir = Path::new("/run/netns");
    if std::fs::create_dir_all(netns_dir).is_ok() {
        cmd::run("mount", &["-t", "tmpfs", "srj-netns", "/run/netns"], None)?;
    } else {
        // Unprivileged: /run is not ours to write; hide it behind a private tmpfs instead.
        cmd::run("mount", &["-t", "tmpfs", "srj-run", "/run"], None)?;
        std::fs::create_dir_all(netns_dir).context("creating /run/netns")?;
    }
    Ok(())
}
