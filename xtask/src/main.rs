//! Project tasks: `cargo xtask <task>` (the alias lives in .cargo/config.toml).
//!
//! parity-up|parity-status|parity-validate|parity-down|parity-reset call the kind-parity
//! library (not the binary); test runs the unit and integration tiers and says which suites
//! were skipped for lack of a test-bed component; bench runs the benchmarks.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod e2e;
mod man;
#[cfg(test)]
mod msrv;
mod parity;
mod test;
mod testbed;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Copied to the test bed's `bin/kind`, this binary is the test bed's kind stand-in.
    if std::env::args_os().next().is_some_and(|a| std::path::Path::new(&a).file_name() == Some("kind".as_ref())) {
        return testbed::kind::main(&args);
    }
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "parity-up" | "parity-status" | "parity-validate" | "parity-down" | "parity-reset" => {
            return parity::run(task.trim_start_matches("parity-"), rest);
        }
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "e2e" => e2e::run(rest),
        "man" => man::run(rest),
        "testbed" => testbed::run(rest),
        "help" | "--help" | "-h" => {
            println!("{}", HELP);
            Ok(())
        }
        other => Err(anyhow::anyhow!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "cargo xtask <task>

tasks:
  parity-up        create and bootstrap the environment (kind-parity up)
  parity-status    show the environment (kind-parity status)
  parity-validate  run the parity suite (kind-parity validate)
  parity-down      delete the environment (kind-parity down)
  parity-reset     rebuild it from zero (kind-parity reset)
  test             the test bed up, then unit + integration tiers, naming skipped suites
  e2e [--junit F] [--real-kind]
                   end to end on a kind cluster (kind on PATH, else the test bed's stand-in;
                   --real-kind: the test bed's real kind and node image)
  bench [NAME]     benchmarks (render, apply, images, probes, registry, lifecycle [--real-kind])
  man [--out DIR]  the man pages of kind-parity and its commands (default: target/man)
  testbed up|down|env|status
                   the integration test bed: Docker, Kubernetes with a node that runs pods,
                   PostgreSQL, Redis, NATS (cargo xtask testbed help)";

/// The workspace root, whatever folder cargo was run from.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}
