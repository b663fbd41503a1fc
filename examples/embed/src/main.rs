//! An embedding of kind-parity as another team's xtask would write it: load the config of the
//! working directory, render, bring the environment up with a reporter of its own, run the
//! parity suite and look at its results, and take the environment down again. No CLI types, no
//! shelling out, no state folder convention of its own: everything is `kind-parity-lifecycle`.
//!
//! `embed [STATE_DIR]` (default `.kind-parity`). Exit 0 when everything passed.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::Mutex;

use kind_parity_lifecycle::{DownOptions, Environment, Event, Outcome, Reporter, Step, UpOptions, ValidateOptions};

/// This tool's own reporter: one short line per step, and a tally of what happened, which it
/// checks at the end.
#[derive(Default)]
struct Tally {
    steps: Mutex<Vec<Step>>,
    applied: Mutex<usize>,
    probes: Mutex<usize>,
}

impl Reporter for Tally {
    fn report(&self, event: &Event) {
        match event {
            Event::StepStarted { step, message } | Event::StepFinished { step, message } => {
                self.steps.lock().expect("not poisoned").push(*step);
                eprintln!("[embed] {step:?}: {message}");
            }
            Event::ObjectsApplied { applied, .. } => *self.applied.lock().expect("not poisoned") = *applied,
            Event::ProbeFinished { .. } => *self.probes.lock().expect("not poisoned") += 1,
            Event::Warning { message } => eprintln!("[embed] warning: {message}"),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let state_dir = std::env::args().nth(1).unwrap_or_else(|| ".kind-parity".into());
    match run(&state_dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("[embed] failed: {error}");
            let mut source = std::error::Error::source(error.as_ref());
            while let Some(cause) = source {
                eprintln!("[embed]   caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(state_dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cwd = std::env::current_dir()?;
    let loaded = kind_parity_render::load(&kind_parity_render::LoadOptions::from_process(None, cwd, Vec::new()))?;
    let environment = Environment::open(loaded, state_dir);

    // Render on its own first: what a tool that only wants the manifests does.
    let rendered = environment.render(&Default::default())?;
    println!("rendered {} files into {}", rendered.files.len(), rendered.out.display());

    let tally = Tally::default();
    let up = environment.up(&UpOptions { skip_validate: true, ..Default::default() }, &tally).await;
    let result = match up {
        Ok(up) => inspect(&environment, &tally, &up).await,
        Err(error) => Err(error.into()),
    };
    // Down whatever happened: the environment is this tool's to clean up.
    let down = environment.down(&DownOptions::default(), &kind_parity_lifecycle::Silent).await;
    result?;
    let down = down?;
    println!("down: cluster deleted {}, state removed {}", down.deleted_cluster, down.removed_state.is_some());
    Ok(())
}

/// Validates the environment `up` brought up, and checks the results against the events.
async fn inspect(
    environment: &Environment,
    tally: &Tally,
    up: &kind_parity_lifecycle::UpReport,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("up: {} objects on context {}, images {:?}", up.apply.applied.len(), up.apply.context, up.images);
    if *tally.applied.lock().expect("not poisoned") != up.apply.applied.len() {
        return Err("the reporter's count of applied objects differs from the report".into());
    }
    // The ingress controller adds a route once its Service has endpoints, which can be a moment
    // after the pod is ready: this tool gives the suite a few tries before it calls it failed.
    let mut attempt = 1;
    let report = loop {
        *tally.probes.lock().expect("not poisoned") = 0;
        let report = environment.validate(&ValidateOptions::default(), tally).await?;
        let failed: Vec<&str> =
            report.results.iter().filter(|r| r.outcome == Outcome::Fail).map(|r| r.id.as_str()).collect();
        println!(
            "validate: {} probes, {} failed{}",
            report.results.len(),
            failed.len(),
            if failed.is_empty() { String::new() } else { format!(": {}", failed.join(", ")) }
        );
        if *tally.probes.lock().expect("not poisoned") != report.results.len() {
            return Err("the reporter saw another number of probes than the report holds".into());
        }
        if report.passed || attempt == 5 {
            break report;
        }
        attempt += 1;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    };
    if !report.passed {
        let root = &report.results[0];
        return Err(format!("the parity suite failed; first root cause {}: {}", root.id, root.found).into());
    }
    Ok(())
}
