//! `cargo xtask parity-*`: the same commands as the `kind-parity` binary, through its library,
//! run from the project root so the state lands in the repository's `.kind-parity/`.

use std::process::ExitCode;

use clap::Parser as _;

pub fn run(command: &str, rest: &[String]) -> ExitCode {
    let root = crate::project_root();
    if let Err(e) = std::env::set_current_dir(&root) {
        eprintln!("error: entering {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let argv = std::iter::once("kind-parity".to_owned())
        .chain(std::iter::once(command.to_owned()))
        .chain(rest.iter().cloned());
    let cli = match kind_parity::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(kind_parity::EXIT_USAGE);
        }
    };
    kind_parity::init_logging(&cli.global);
    kind_parity::run(cli)
}
