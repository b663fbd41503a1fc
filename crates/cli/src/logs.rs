//! `kind-parity logs`: the lifecycle's diagnostics bundle, its path on stdout (`--output json`:
//! `{"bundle": path, "files": n, "unavailable": [...]}`).

use kind_parity_lifecycle::LogsOptions;

use crate::ExitStatus;
use crate::args::{GlobalArgs, LogsArgs, OutputFormat};
use crate::reporter::Human;

pub(crate) async fn logs(global: &GlobalArgs, args: &LogsArgs) -> crate::Outcome {
    let environment = crate::open(global)?;
    let options = LogsOptions { target: crate::cluster::target(&args.target), out: args.out.clone() };
    let report = environment.logs(&options, &Human::new(global)).await?;
    if !global.quiet {
        for line in &report.unavailable {
            eprintln!("  unavailable: {line}");
        }
        eprintln!("wrote {} files to {} (secrets redacted)", report.files, report.dir.display());
    }
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "bundle": report.dir,
                "files": report.files,
                "unavailable": report.unavailable,
            }))
            .map_err(anyhow::Error::from)?
        ),
        OutputFormat::Human => println!("{}", report.dir.display()),
    }
    Ok(ExitStatus::Success)
}
