//! The `kind-parity` binary: parses arguments and hands them to [`kind_parity::run`].

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = kind_parity::Cli::parse();
    kind_parity::init_logging(&cli.global);
    kind_parity::run(cli)
}
