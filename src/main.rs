//! The `strongroom` binary: parses the command line and hands over to [`strongroom::cli`].

fn main() -> std::process::ExitCode {
    strongroom::cli::main()
}
