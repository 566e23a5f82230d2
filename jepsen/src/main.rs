//! The `strongroom-jepsen` binary: parses the command line, enters the sandbox for netns runs
//! (re-executing itself under `unshare`), runs or re-checks a test, and exits with 0 (valid),
//! 1 (invalid), 2 (unknown) or 3 (the harness itself failed).

use clap::Parser;
use strongroom_jepsen::checks;
use strongroom_jepsen::cli::Cli;
use strongroom_jepsen::cli::Command;
use strongroom_jepsen::cli::RunArgs;
use strongroom_jepsen::net::NetMode;
use strongroom_jepsen::net::sandbox;
use strongroom_jepsen::run;
use strongroom_jepsen::run::config::RunConfig;

/// Exit code of a harness failure.
const HARNESS_ERROR: i32 = 3;

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { dir, wgl_budget } => checks::check_dir(&dir, wgl_budget),
        Command::Run(args) => run_command(*args),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("strongroom-jepsen: error: {err:#}");
            std::process::exit(HARNESS_ERROR);
        }
    }
}

fn run_command(args: RunArgs) -> anyhow::Result<i32> {
    let mode = match args.net.as_str() {
        "loopback" => NetMode::Loopback,
        "netns" | "auto" => {
            if sandbox::inside() {
                NetMode::Netns
            } else {
                match sandbox::available() {
                    Ok(()) => {
                        // Fail fast on bad options before entering the sandbox.
                        RunConfig::resolve(&args, NetMode::Netns)?;
                        let argv: Vec<_> = std::env::args_os().skip(1).collect();
                        return sandbox::reexec(&argv);
                    }
                    Err(why) if args.net == "auto" => {
                        eprintln!(
                            "strongroom-jepsen: no network namespaces ({why}); using loopback"
                        );
                        NetMode::Loopback
                    }
                    Err(why) => anyhow::bail!("netns mode unavailable: {why}"),
                }
            }
        }
        other => anyhow::bail!("unknown --net {other:?} (auto, netns, loopback)"),
    };
    // Validate before entering anything expensive.
    let config = RunConfig::resolve(&args, mode)?;
    if mode == NetMode::Netns {
        sandbox::prepare()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run::run(config))
}
