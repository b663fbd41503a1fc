//! The one place that runs external programs: the command line, the exit status and the tail of
//! stderr end up in the error, so a failure says exactly what ran and what it said.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use crate::error::{Error, Result};

/// How many trailing lines of stderr an error keeps.
const STDERR_LINES: usize = 20;

/// What a successful run printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error (kind writes its progress there).
    pub stderr: String,
}

/// Runs `program args…` to completion and returns its output, or an error naming the command.
pub async fn run(program: &Path, args: &[&OsStr]) -> Result<Output> {
    let command = display(program, args);
    tracing::debug!(%command, "running");
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn { command: command.clone(), source })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(Output { stdout, stderr })
    } else {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
        Err(Error::Command { command, status: out.status.to_string(), stderr: tail })
    }
}

fn display(program: &Path, args: &[&OsStr]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().copied())
        .map(|a| {
            let s = a.to_string_lossy();
            if s.contains(char::is_whitespace) { format!("'{s}'") } else { s.into_owned() }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
