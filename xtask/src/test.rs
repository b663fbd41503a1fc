//! `cargo xtask test`: runs the workspace's tests and lists the integration suites that were
//! skipped because a test-bed component was missing (tests print `SKIPPED <name>: <why>`).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

pub fn run(rest: &[String]) -> Result<()> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::project_root())
        .args(["test", "--workspace"])
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
