//! The `kind-parity` binary: parses arguments and hands them to [`kind_parity::run`].

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match kind_parity::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => return kind_parity::refused(&error, &args),
    };
    kind_parity::init_logging(&cli.global());
    kind_parity::run(cli)
}
