//! `kind-parity logs`: the lifecycle's diagnostics bundle, its path on stdout.

use kind_parity_lifecycle::LogsOptions;

use crate::args::{GlobalArgs, LogsArgs};
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
    println!("{}", report.dir.display());
    Ok(0)
}
