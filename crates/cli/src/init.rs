//! `init`: the starter config written by the lifecycle's `init`, and what it says about it.

use kind_parity_lifecycle::init::{self, InitOptions, InitReport};

use crate::args::InitArgs;
use crate::{Exit, ExitStatus, GlobalArgs, Outcome, OutputFormat};

pub(crate) fn init(global: &GlobalArgs, args: &InitArgs) -> Outcome {
    let dir = std::env::current_dir().map_err(anyhow::Error::from)?;
    let options = InitOptions {
        output: args.config.clone().or_else(|| global.config.clone()),
        force: args.force,
        name: args.name.clone().or_else(|| global.name.clone()),
        schema: args.schema.clone(),
        compose_files: args.from_compose.clone(),
        profiles: args.profiles.clone(),
        env: std::env::vars().collect(),
        dir,
    };
    let report = init::init(&options).map_err(|error| match error {
        init::Error::Exists { path } => Exit {
            message: format!("{} exists", path.display()),
            help: Some("edit it, or rerun with --force to replace it".into()),
            status: ExitStatus::Usage,
        }
        .into(),
        other => crate::Failure { error: other.into(), hint: None, status: ExitStatus::Failure },
    })?;
    print(global, &report)?;
    Ok(ExitStatus::Success)
}

fn print(global: &GlobalArgs, report: &InitReport) -> anyhow::Result<()> {
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        OutputFormat::Human if global.quiet => {}
        OutputFormat::Human => {
            let verb = if report.replaced { "replaced" } else { "wrote" };
            let services =
                if report.services.is_empty() { "no service yet".to_owned() } else { report.services.join(", ") };
            eprintln!("{verb} {} (services: {services})", report.path.display());
            for unmapped in &report.unmapped {
                match &unmapped.profile {
                    Some(profile) => eprintln!("warning: not imported: {unmapped} (`--profile {profile}`)"),
                    None => eprintln!("warning: not imported: {unmapped}"),
                }
            }
            eprintln!("next: `kind-parity config` checks it, `kind-parity render` writes the environment's files");
        }
    }
    Ok(())
}
