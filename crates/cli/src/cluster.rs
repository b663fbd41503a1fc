//! `up`, `apply`, `doctor`, `status`, `down`, `reset`: the arguments turned into the
//! lifecycle's options, its events drawn by a reporter (lines for people, or JSON lines with
//! `--output json`), its reports printed.

use kind_parity_lifecycle::{ApplyOptions, DownOptions, Event, Reporter, StatusOptions, Target, UpOptions, UpReport};

use crate::args::{
    ApplyArgs, ClusterKind, DownArgs, GlobalArgs, OutputFormat, ResetArgs, StatusArgs, TargetArgs, UpArgs,
};
use crate::reporter::{Human, Json};
use crate::{Exit, ExitStatus, Failure, Outcome};

/// The lifecycle's target of `--cluster`, `--kubeconfig`, `--context`.
pub(crate) fn target(args: &TargetArgs) -> Target {
    match args.cluster {
        ClusterKind::Kind => Target::Kind,
        ClusterKind::Existing => {
            Target::Existing { kubeconfig: args.kubeconfig.clone(), context: args.context.clone() }
        }
    }
}

fn apply_options(args: &ApplyArgs) -> ApplyOptions {
    ApplyOptions {
        target: target(&args.target),
        allow_contexts: args.allow.allow_context.clone(),
        timeout: args.wait.timeout,
        unschedulable_grace: args.wait.unschedulable_grace,
        force: args.force,
        no_wait: args.wait.no_wait,
        export_kubeconfig: args.export_kubeconfig,
    }
}

fn up_options(args: &UpArgs) -> UpOptions {
    UpOptions { apply: apply_options(&args.apply), skip_validate: args.skip_validate }
}

/// The reporter of a command that changes the cluster: JSON lines on stdout with `--output
/// json`, else lines (and bars) on stderr.
enum Draw {
    Human(Human),
    Json(Json),
}

impl Draw {
    fn new(global: &GlobalArgs) -> Self {
        match global.output {
            OutputFormat::Json => Self::Json(Json),
            OutputFormat::Human => Self::Human(Human::new(global)),
        }
    }

    fn reporter(&self) -> &dyn Reporter {
        match self {
            Self::Human(human) => human,
            Self::Json(json) => json,
        }
    }

    fn clear(&self) {
        if let Self::Human(human) = self {
            human.clear();
        }
    }

    /// Writes the command's report as the last JSON line (`"event": "report"`).
    fn report(&self, report: &impl serde::Serialize) {
        if let Self::Json(_) = self {
            let mut value = serde_json::to_value(report).expect("a report serializes");
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("event".into(), "report".into());
            }
            crate::reporter::line(&value);
        }
    }
}

pub(crate) async fn up(global: &GlobalArgs, args: &UpArgs) -> Outcome {
    let environment = crate::open(global)?;
    let _lock = crate::lock(global, &environment, "up").await?;
    let draw = Draw::new(global);
    let result = environment.up(&up_options(args), draw.reporter()).await;
    draw.clear();
    finish_up(global, &draw, result)
}

pub(crate) async fn reset(global: &GlobalArgs, args: &ResetArgs) -> Outcome {
    let environment = crate::open(global)?;
    confirm_down(&environment, &args.up.apply.target, args.yes)?;
    let _lock = crate::lock(global, &environment, "reset").await?;
    let draw = Draw::new(global);
    let result = environment.reset(&up_options(&args.up), draw.reporter()).await;
    draw.clear();
    finish_up(global, &draw, result)
}

/// Prints what `up` ends with: the parity table when it failed, the endpoints when it is ready.
fn finish_up(global: &GlobalArgs, draw: &Draw, result: kind_parity_lifecycle::Result<UpReport>) -> Outcome {
    let report = match result {
        Ok(report) => report,
        Err(kind_parity_lifecycle::Error::ParityFailed { name, report }) => {
            match draw {
                // Part of the failure `up` ends with, printed with it on stderr.
                Draw::Human(_) => {
                    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
                    eprint!("{}", crate::validate::table_for(global, &report, terminal));
                }
                Draw::Json(_) => draw.report(&serde_json::json!({ "environment": name, "parity": report })),
            }
            return Err(kind_parity_lifecycle::Error::ParityFailed { name, report }.into());
        }
        Err(e) => return Err(e.into()),
    };
    draw.report(&report);
    if global.quiet || !report.apply.ready || matches!(draw, Draw::Json(_)) {
        return Ok(ExitStatus::Success);
    }
    for endpoint in &report.endpoints {
        eprintln!("  {endpoint}");
    }
    eprintln!(
        "  local CA: {} (trust it once so browsers accept these URLs: see docs/runbook.md, \"Trusting the local CA\")",
        report.ca_file.display()
    );
    if let Some(key) = &report.keycloak_admin_password_key {
        eprintln!(
            "  Keycloak admin: user `admin`, password under `{key}` in {} (not printed)",
            report.secrets_file.display()
        );
    }
    Ok(ExitStatus::Success)
}

pub(crate) async fn apply(global: &GlobalArgs, args: &ApplyArgs) -> Outcome {
    let environment = crate::open(global)?;
    let _lock = crate::lock(global, &environment, "apply").await?;
    let draw = Draw::new(global);
    let result = environment.apply(&apply_options(args), draw.reporter()).await;
    draw.clear();
    draw.report(&result?);
    Ok(ExitStatus::Success)
}

/// `kind-parity doctor`: every preflight check, one line each; exit 1 when one failed (a
/// warning does not).
pub(crate) async fn doctor(global: &GlobalArgs) -> Outcome {
    let environment = crate::open(global)?;
    let checks = environment.doctor().await?;
    let failed = checks.iter().any(|c| c.failed());
    if global.output == OutputFormat::Json {
        // Each check as its `preflight_check` event says it: name, status, found, fix.
        let checks: Vec<serde_json::Value> = checks
            .iter()
            .map(|check| {
                let mut value = serde_json::to_value(Event::from(check)).expect("an event serializes");
                if let serde_json::Value::Object(map) = &mut value {
                    map.remove("event");
                }
                value
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "passed": !failed, "checks": checks }))
                .map_err(anyhow::Error::from)?
        );
        return Ok(ExitStatus::failed_if(failed));
    }
    // The checks are doctor's result: stdout (with `-q`, the failed ones only).
    for check in &checks {
        if let Event::PreflightCheck { name, status, found, fix, recreate } = Event::from(check)
            && (!global.quiet || check.failed())
        {
            println!("{}", crate::reporter::check_text(&name, status, &found, fix.as_deref(), recreate));
        }
    }
    Ok(ExitStatus::failed_if(failed))
}

/// Asks before `down` and `reset` delete anything, unless `--yes`.
fn confirm_down(
    environment: &kind_parity_lifecycle::Environment,
    target: &TargetArgs,
    yes: bool,
) -> Result<(), Failure> {
    let name = environment.name();
    let root = environment.state().root().display();
    let what = match target.cluster {
        ClusterKind::Kind => format!("kind cluster {name} and {root}"),
        ClusterKind::Existing => format!("every object kind-parity applied for {name}, and {root}"),
    };
    if !yes && !confirm(&format!("delete {what}?")).map_err(anyhow::Error::from)? {
        return Err(Exit {
            message: "nothing deleted".into(),
            help: Some("pass --yes to skip the question".into()),
            status: ExitStatus::Failure,
        }
        .into());
    }
    Ok(())
}

/// `kind-parity down`: deletes the cluster (kind) or every object the tool applied (existing),
/// the `kind` network when nothing else uses it, and the environment's state folder.
pub(crate) async fn down(global: &GlobalArgs, args: &DownArgs) -> Outcome {
    let environment = crate::open(global)?;
    confirm_down(&environment, &args.target, args.yes)?;
    let _lock = crate::lock(global, &environment, "down").await?;
    let draw = Draw::new(global);
    let options = DownOptions { target: target(&args.target), allow_contexts: args.allow.allow_context.clone() };
    let result = environment.down(&options, draw.reporter()).await;
    draw.clear();
    draw.report(&result?);
    Ok(ExitStatus::Success)
}

/// Asks on the terminal; without one (CI, pipes) there is nobody to ask, and the answer is yes.
fn confirm(question: &str) -> std::io::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `kind-parity status`: the cluster's nodes, each workload's readiness, the endpoints. Exit 0
/// when everything is ready, 1 otherwise.
pub(crate) async fn status(global: &GlobalArgs, args: &StatusArgs) -> Outcome {
    let environment = crate::open(global)?;
    let status = environment.status(&StatusOptions { target: target(&args.target) }).await?;
    match global.output {
        // Through a `Value`: its keys print sorted, as they always have.
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&status).map_err(anyhow::Error::from)?)
                .map_err(anyhow::Error::from)?
        ),
        OutputFormat::Human => {
            println!("environment {} on context {}", status.environment, status.context);
            if status.nodes.is_empty() {
                println!("nodes: none (pods cannot run)");
            }
            for n in &status.nodes {
                println!("node {:<40} {} {}", n.name, if n.ready { "Ready" } else { "NotReady" }, n.version);
            }
            if status.nothing_applied {
                println!("nothing applied yet: run `kind-parity up`");
            }
            for w in &status.workloads {
                println!(
                    "{:<8} {}{}",
                    w.state,
                    w.object,
                    if w.detail.is_empty() { String::new() } else { format!(": {}", w.detail) }
                );
            }
            for i in &status.images {
                match (&i.error, i.missing_on.is_empty()) {
                    (Some(e), _) => println!("image    {}: unknown ({e})", i.image),
                    (None, true) => println!("image    {}: current build, in every node", i.image),
                    (None, false) => println!(
                        "image    {}: not in {} (an older build runs): `kind-parity up` builds and loads it",
                        i.image,
                        i.missing_on.join(", ")
                    ),
                }
            }
            for e in &status.endpoints {
                println!("endpoint {e}");
            }
            println!("local CA {} (trust it to open the endpoints without warnings)", status.ca.display());
        }
    }
    Ok(ExitStatus::failed_if(!status.ready || !status.images_current()))
}
