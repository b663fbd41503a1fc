//! Finds Debian's `docker-registry` for the local-registry test and bench. The test bed does not
//! install it (testkit's `require_program` would say it does); `.ci/run` installs it before the
//! tests, and elsewhere it is one package away, so that is what a skip says.

#![allow(clippy::print_stderr, dead_code)]

use std::path::{Path, PathBuf};

/// The program's path, looked for on `PATH` and in `/usr/bin` (where Debian's package puts it).
/// Missing: a loud skip naming how to install it, or a failure under `CI=true`.
pub fn docker_registry(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/bin".into());
    match find(&dirs) {
        Some(program) => Some(program),
        None if kind_parity_testkit::in_ci() => panic!("{test}: {} and CI=true", missing()),
        None => {
            eprintln!("SKIPPED {test}: {}", missing());
            None
        }
    }
}

/// `docker-registry` in the first of `dirs` that has it.
pub fn find(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join("docker-registry")).find(|p| Path::is_file(p))
}

/// What a run without it is told: who installs it, and how.
pub fn missing() -> &'static str {
    "`docker-registry` is not installed: `.ci/run` installs it (the test bed does not); \
     here, `sudo apt-get install docker-registry` (Debian's package)"
}
