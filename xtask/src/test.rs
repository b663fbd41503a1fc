//! `cargo xtask test`: brings the test bed up (cached: seconds when it runs already; `--no-testbed`
//! skips it), runs the workspace's tests with its env file loaded, and lists the integration
//! suites that were skipped because a test-bed component was missing (tests print
//! `SKIPPED <name>: <why>`).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

pub fn run(rest: &[String]) -> Result<()> {
    let no_testbed = rest.iter().any(|a| a == "--no-testbed");
    let rest: Vec<&String> = rest.iter().filter(|a| *a != "--no-testbed").collect();
    if !no_testbed {
        crate::testbed::run(&["up".to_owned()])
            .context("starting the test bed (--no-testbed runs the tests without it)")?;
    }
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The env file's variables, unless the caller set them already.
    for (name, value) in crate::testbed::env_vars()? {
        if std::env::var_os(&name).is_none() {
            command.env(name, value);
        }
    }
    let mut child = command
        .current_dir(crate::project_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(rest)
        .args(["--", "--nocapture"])
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let mut skipped = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line?;
        if line.starts_with("SKIPPED ") {
            skipped.push(line.clone());
        }
        eprintln!("{line}");
    }
    let status = child.wait()?;
    eprintln!();
    if skipped.is_empty() {
        eprintln!("all integration suites ran against the test bed");
    } else {
        eprintln!("{} integration suite(s) skipped for lack of a test-bed component:", skipped.len());
        for s in &skipped {
            eprintln!("  {s}");
        }
    }
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}
