//! `kind-parity validate`: derives the parity suite from the config and the environment's state,
//! runs it, prints the table (stderr) or JSON (stdout), optionally writes JUnit XML. Read-only.
//! Exit 0 when every critical probe passed, 1 otherwise.

use anyhow::Result;
use kind_parity_cluster::ObjectRef;
use kind_parity_probes::suite::{self, Context, Endpoints};
use kind_parity_probes::{Outcome, ProbeResult, Report};
use kind_parity_render::Secrets;

use crate::Exit;
use crate::args::{GlobalArgs, OutputFormat, ValidateArgs};
use crate::cluster::{connect_existing, load_inventory};
use crate::state::State;

pub(crate) async fn validate(global: &GlobalArgs, args: &ValidateArgs) -> Result<u8> {
    let started = std::time::Instant::now();
    if let Some(path) = &args.junit {
        check_report_path(path)?;
    }
    let loaded = match crate::load_config(global) {
        Ok(loaded) => loaded,
        Err(e) => return Err(junit_start_failure(args, global.name.as_deref(), e, started)),
    };
    let config = &loaded.config;
    let report = match prepare_and_run(global, args, &loaded).await {
        Ok(report) => report,
        Err(e) => return Err(junit_start_failure(args, Some(&config.name), e, started)),
    };
    if let Some(path) = &args.junit {
        report.write_junit(&suite_name(Some(&config.name)), path)?;
    }
    match global.output {
        OutputFormat::Json => println!("{}", report.json()),
        OutputFormat::Human if !global.quiet || !report.passed => eprint!("{}", table(global, &report)),
        OutputFormat::Human => {}
    }
    if let Some(root) = report.results.first().filter(|r| r.outcome == Outcome::Fail && r.critical)
        && global.output == OutputFormat::Human
    {
        eprintln!("first root cause: {} ({})", root.id, root.found);
    }
    Ok(u8::from(!report.passed))
}

/// Everything `validate` does before the report: read the state, reach the cluster, run.
async fn prepare_and_run(
    global: &GlobalArgs,
    args: &ValidateArgs,
    loaded: &kind_parity_render::Loaded,
) -> Result<Report> {
    let config = &loaded.config;
    let state = State::new(&global.state_dir, &config.name);
    // Read, never generate: a suite that invents credentials would test nothing.
    let Some(secrets) = state.read_secrets()? else {
        return Err(Exit {
            message: format!("environment {} has no state in {}", config.name, state.root().display()),
            help: Some("run `kind-parity up` first (validate checks a running environment)".into()),
            code: 1,
        }
        .into());
    };
    let inventory = load_inventory(&state)?;
    let cluster = connect_existing(config, &state, &args.target).await?;
    let endpoints = if args.postgres.is_some() || args.redis.is_some() || args.nats.is_some() || args.temporal.is_some()
    {
        Endpoints::Addresses {
            postgres: args.postgres.clone(),
            redis: args.redis.clone(),
            nats: args.nats.clone(),
            temporal: args.temporal.clone(),
        }
    } else {
        Endpoints::Forward
    };
    let artifacts = kind_parity_render::artifacts(config, &loaded.inputs)?;
    run_suite(global, config, &secrets, &inventory, cluster, endpoints, args.ingress, artifacts).await
}

/// Whether a report can be written at `path`, checked before anything runs: a CI gate whose
/// report path is wrong learns it at once, not after the suite, and not as a missing file.
fn check_report_path(path: &std::path::Path) -> Result<()> {
    let refuse = |why: String| Exit {
        message: format!("--junit {}: {why}", path.display()),
        help: Some("give a file in a folder that exists and that you can write, e.g. `--junit report.xml`".into()),
        code: crate::EXIT_USAGE,
    };
    if path.is_dir() {
        return Err(refuse("is a folder".into()).into());
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    // A file made and removed in the folder: the test that holds whatever the permissions say.
    tempfile::NamedTempFile::new_in(folder)
        .map_err(|e| refuse(format!("cannot write in {}: {e}", folder.display())))?;
    if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map_err(|e| refuse(format!("cannot write it: {e}")))?;
    }
    Ok(())
}

fn suite_name(environment: Option<&str>) -> String {
    match environment {
        Some(name) => format!("kind-parity validate {name}"),
        None => "kind-parity validate".into(),
    }
}

/// With `--junit`, a suite that could not start is still a report: one failed case holding the
/// cause, so a CI gate that reads the file sees why instead of nothing. Returns `error`.
fn junit_start_failure(
    args: &ValidateArgs,
    environment: Option<&str>,
    error: anyhow::Error,
    started: std::time::Instant,
) -> anyhow::Error {
    let Some(path) = &args.junit else { return error };
    let report = start_failure_report(environment, &error, started.elapsed());
    if let Err(e) = report.write_junit(&suite_name(environment), path) {
        eprintln!(
            "warning: the suite could not start, and its JUnit report could not be written either: {:#}",
            anyhow::Error::from(e)
        );
    }
    error
}

/// The one-case report of a suite that could not start.
fn start_failure_report(environment: Option<&str>, error: &anyhow::Error, elapsed: std::time::Duration) -> Report {
    let mut found = error.to_string();
    for cause in crate::causes(error) {
        found.push_str(": ");
        found.push_str(&cause);
    }
    let remediation = error.downcast_ref::<Exit>().and_then(|exit| exit.help.clone());
    let checked = match environment {
        Some(name) => format!("that the parity suite of {name} can start"),
        None => "that the parity suite can start".into(),
    };
    let result = ProbeResult {
        id: "validate.start".into(),
        component: "kind-parity".into(),
        outcome: Outcome::Fail,
        critical: true,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        checked,
        found,
        remediation,
        blocked_by: None,
    };
    Report::new(vec![result], elapsed)
}

/// Derives the suite and runs it, with a live line on a terminal.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_suite(
    global: &GlobalArgs,
    config: &kind_parity_render::Config,
    secrets: &Secrets,
    inventory: &kind_parity_cluster::apply::Inventory,
    cluster: (kube::Client, String),
    endpoints: Endpoints,
    ingress: Option<std::net::SocketAddr>,
    artifacts: Vec<kind_parity_render::ArtifactFile>,
) -> Result<Report> {
    let workloads: Vec<ObjectRef> =
        inventory.objects.keys().filter(|o| kind_parity_cluster::wait::is_workload(o)).cloned().collect();
    let context_name = cluster.1.clone();
    let context = Context { config, secrets, cluster: Some(cluster), workloads, endpoints, ingress, artifacts };
    let probes = suite::derive(&context)?;
    let total = probes.len();
    let live = crate::images::live_progress(global) && global.output == OutputFormat::Human;
    if !global.quiet {
        eprintln!("validating {} on context {context_name}: {total} probes", config.name);
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |r: &ProbeResult| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if live {
            // One line, rewritten: the table follows when everything has answered.
            eprint!("\r\x1b[2K  [{n}/{total}] {} {}", r.outcome, r.id);
        }
        tracing::debug!(probe = %r.id, outcome = %r.outcome, found = %r.found, "probe done");
    };
    let report = suite::run(probes, &progress).await?;
    if live {
        eprint!("\r\x1b[2K");
    }
    Ok(report)
}

/// The report's table, its outcome words colored when `--color` says so.
pub(crate) fn table(global: &GlobalArgs, report: &Report) -> String {
    let table = report.table();
    if !crate::use_color(global.color) {
        return table;
    }
    let paint = |line: &str| {
        for (word, code) in [("FAIL", "31;1"), ("BLOCKED", "33"), ("WARN", "33"), ("PASS", "32"), ("SKIPPED", "2")] {
            if let Some(rest) = line.strip_prefix(word) {
                return format!("\x1b[{code}m{word}\x1b[0m{rest}");
            }
        }
        line.to_owned()
    };
    table.lines().map(|l| paint(l) + "\n").collect()
}
