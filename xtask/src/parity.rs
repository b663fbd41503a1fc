//! `cargo xtask parity-*`: the same commands as the `kind-parity` binary, through its library,
//! run from the project root so the state lands in the repository's `.kind-parity/`.
//!
//! On a machine with no `kind` whose test bed is up (this project's CI machines), the command
//! runs again with the test bed's kind stand-in first on PATH, and says so.

use std::process::ExitCode;

use clap::Parser as _;

/// Set in the command run again with the stand-in on PATH, so it is not run a third time.
const WITH_STANDIN: &str = "KIND_PARITY_XTASK_WITH_STANDIN";

pub fn run(command: &str, rest: &[String]) -> ExitCode {
    if std::env::var_os(WITH_STANDIN).is_none()
        && let Ok(Some(path)) = crate::testbed::kind::path_with_standin()
    {
        let again = std::env::current_exe().and_then(|me| {
            std::process::Command::new(me)
                .arg(format!("parity-{command}"))
                .args(rest)
                .env("PATH", path)
                .env(WITH_STANDIN, "1")
                .status()
        });
        return match again {
            Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: running parity-{command} again with the kind stand-in: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let root = crate::project_root();
    if let Err(e) = std::env::set_current_dir(&root) {
        eprintln!("error: entering {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let argv: Vec<std::ffi::OsString> = std::iter::once("kind-parity".to_owned())
        .chain(std::iter::once(command.to_owned()))
        .chain(rest.iter().cloned())
        .map(Into::into)
        .collect();
    let cli = match kind_parity::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        // As the binary ends it: clap's text, or one JSON error with `--output json`.
        Err(e) => return kind_parity::refused(&e, &argv),
    };
    kind_parity::init_logging(&cli.global());
    kind_parity::run(cli)
}
