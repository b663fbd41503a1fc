//! `kind-parity validate`: derives the parity suite from the config and the environment's state,
//! runs it, prints its result on stdout (the table, or JSON), optionally writes JUnit XML; what
//! it does meanwhile (the step line, the live probe line on a terminal) goes to stderr.
//! Read-only. Exit 0 when every critical probe passed, 1 otherwise.

use std::io::IsTerminal as _;

use kind_parity_lifecycle::{Addresses, ValidateOptions};
use kind_parity_probes::{Outcome, ProbeResult, Report};

use crate::args::{GlobalArgs, OutputFormat, ValidateArgs};
use crate::reporter::Human;
use crate::{Exit, ExitStatus, Failure};

pub(crate) async fn validate(global: &GlobalArgs, args: &ValidateArgs) -> crate::Outcome {
    let started = std::time::Instant::now();
    if let Some(path) = &args.junit {
        check_report_path(path)?;
    }
    let environment = match crate::open(global) {
        Ok(environment) => environment,
        Err(e) => return Err(junit_start_failure(args, global.name.as_deref(), e, started)),
    };
    let options = ValidateOptions {
        target: crate::cluster::target(&args.target),
        ingress: args.ingress,
        addresses: Addresses {
            postgres: args.postgres.clone(),
            redis: args.redis.clone(),
            nats: args.nats.clone(),
            temporal: args.temporal.clone(),
        },
    };
    let human = match global.output {
        OutputFormat::Human => Human::new(global).with_probe_line(),
        OutputFormat::Json => Human::new(global),
    };
    let report = environment.validate(&options, &human).await;
    human.clear();
    let report = match report {
        Ok(report) => report,
        Err(e) => return Err(junit_start_failure(args, Some(environment.name()), e.into(), started)),
    };
    if let Some(path) = &args.junit {
        report
            .write_junit(&suite_name(Some(environment.name())), path, &crate::next_command)
            .map_err(anyhow::Error::from)?;
    }
    // The report is the command's result: stdout, in either form.
    match global.output {
        OutputFormat::Json => println!("{}", report.json()),
        OutputFormat::Human if !global.quiet || !report.passed => print!("{}", table(global, &report)),
        OutputFormat::Human => {}
    }
    if let Some(root) = report.results.first().filter(|r| r.outcome == Outcome::Fail && r.critical)
        && global.output == OutputFormat::Human
    {
        println!("first root cause: {} ({})", root.id, root.found);
    }
    Ok(ExitStatus::failed_if(!report.passed))
}

/// Whether a report can be written at `path`, checked before anything runs: a CI gate whose
/// report path is wrong learns it at once, not after the suite, and not as a missing file.
fn check_report_path(path: &std::path::Path) -> Result<(), Failure> {
    let refuse = |why: String| Exit {
        message: format!("--junit {}: {why}", path.display()),
        help: Some("give a file in a folder that exists and that you can write, e.g. `--junit report.xml`".into()),
        status: ExitStatus::Usage,
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
    error: Failure,
    started: std::time::Instant,
) -> Failure {
    let Some(path) = &args.junit else { return error };
    let report = start_failure_report(environment, &error, started.elapsed());
    if let Err(e) = report.write_junit(&suite_name(environment), path, &crate::next_command) {
        eprintln!(
            "warning: the suite could not start, and its JUnit report could not be written either: {:#}",
            anyhow::Error::from(e)
        );
    }
    error
}

/// The one-case report of a suite that could not start.
fn start_failure_report(environment: Option<&str>, failure: &Failure, elapsed: std::time::Duration) -> Report {
    let mut found = failure.error.to_string();
    for cause in crate::causes(&failure.error) {
        found.push_str(": ");
        found.push_str(&cause);
    }
    let remediation = failure.hint.clone();
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
        next: Vec::new(),
        blocked_by: None,
    };
    Report::new(vec![result], elapsed)
}

/// The report's table, its outcome words colored when `--color` says so (`auto`: when stdout,
/// where `validate` prints it, is a terminal; `up` prints it on stderr, and passes that).
pub(crate) fn table(global: &GlobalArgs, report: &Report) -> String {
    table_for(global, report, std::io::stdout().is_terminal())
}

/// [`table`], for a stream that is a terminal or not.
pub(crate) fn table_for(global: &GlobalArgs, report: &Report, terminal: bool) -> String {
    let table = report.table(&crate::next_command);
    if !crate::use_color_on(global.color, terminal) {
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
