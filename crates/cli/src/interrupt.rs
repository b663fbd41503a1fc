//! Ctrl-C (SIGINT) and SIGTERM while a command works on the environment.
//!
//! The command's future is dropped at its next await: child processes (`kind`, `docker`) die
//! with it (they are spawned with `kill_on_drop`), the environment's lock it holds is released
//! (dropped with it), every state file is written atomically and durably, the applied kind config
//! only once the create succeeded, the half-created-cluster marker before it began, and the
//! inventory before an apply starts (naming everything it may leave). So the next command
//! converges from whatever was left, and the message says what was under way and what to run.

use std::future::Future;
use std::sync::Mutex;

use kind_parity_lifecycle::Event;

use crate::{Exit, ExitStatus, Outcome};

/// The last progress line a command announced, for the message an interruption prints.
static STEP: Mutex<String> = Mutex::new(String::new());

/// Records `line` as what the command is doing now.
pub(crate) fn step(line: &str) {
    if let Ok(mut step) = STEP.lock() {
        line.trim().clone_into(&mut step);
    }
}

/// Records what an event of the lifecycle says the command is doing; every reporter of the
/// binary calls it, so the message is the same whatever `--output` says.
pub(crate) fn record(event: &Event) {
    match event {
        Event::StepStarted { message, .. } | Event::StepFinished { message, .. } | Event::Info { message, .. } => {
            step(message);
        }
        Event::BuildStarted { service } => step(&format!("building {service}")),
        _ => {}
    }
}

/// Runs `command`'s future until it ends or the process gets SIGINT or SIGTERM; an interrupted
/// command is an [`Exit`] with code 130 (SIGINT) or 143 (SIGTERM), as shells report them. The
/// lifecycle's futures may be dropped at any await (its state writes are atomic), which is what
/// `select!` does to `work` here.
pub(crate) async fn interruptible(command: &str, work: impl Future<Output = Outcome>) -> Outcome {
    let signal = signal();
    tokio::select! {
        biased;
        signal = signal => {
            let (name, status) = signal.map_err(anyhow::Error::from)?;
            let doing = STEP.lock().map(|s| s.clone()).unwrap_or_default();
            let doing = if doing.is_empty() { String::new() } else { format!(" while: {doing}") };
            Err(Exit {
                message: format!("`{command}` was interrupted by {name}{doing}"),
                help: Some(format!(
                    "run `kind-parity {command}` again: it continues from what this run left (nothing half-written is kept)"
                )),
                status,
            }
            .into())
        }
        result = work => result,
    }
}

/// The first SIGINT or SIGTERM: its name and the exit code that reports it.
async fn signal() -> std::io::Result<(&'static str, ExitStatus)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => Ok(("Ctrl-C (SIGINT)", ExitStatus::Interrupted)),
        _ = terminate.recv() => Ok(("SIGTERM", ExitStatus::Terminated)),
    }
}
