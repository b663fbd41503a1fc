//! `build` and `load`: the lifecycle's image steps on their own, progress drawn by the human
//! reporter (a spinner per build and a bar per node on a terminal, a line per node otherwise),
//! the tags or the per-node report on stdout.

use crate::args::{BuildArgs, GlobalArgs, LoadArgs, OutputFormat};
use crate::reporter::Human;
use crate::{ExitStatus, Failure, Outcome};

/// `kind-parity build [SERVICE…]`: builds the named services' images (all with a `build` when
/// none are named) and prints their tags on stdout.
pub(crate) async fn build(global: &GlobalArgs, args: &BuildArgs) -> Outcome {
    let environment = crate::open(global)?;
    let _lock = crate::lock(global, &environment, "build").await?;
    let human = Human::new(global);
    let tags = environment.build(&args.services, &human).await;
    human.clear();
    let tags = tags?;
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&tags).map_err(anyhow::Error::from)?),
        OutputFormat::Human => tags.iter().for_each(|t| println!("{t}")),
    }
    Ok(ExitStatus::Success)
}

/// `kind-parity load IMAGE…`: loads local images into the nodes of the environment's kind
/// cluster (`--name` picks another environment).
pub(crate) async fn load(global: &GlobalArgs, args: &LoadArgs) -> Outcome {
    let cluster = match &global.name {
        Some(name) => name.clone(),
        None => crate::load_config(global)?.config.name,
    };
    let line = format!("loading {} image(s) into the nodes of kind cluster {cluster}", args.images.len());
    crate::interrupt::step(&line);
    if !global.quiet {
        eprintln!("{line}");
    }
    let human = Human::new(global);
    let report = kind_parity_lifecycle::images::load_images(&cluster, &args.images, &human).await;
    human.clear();
    let report = report.map_err(Failure::from)?;
    if global.output == OutputFormat::Json {
        let nodes: Vec<serde_json::Value> = report
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node": n.node,
                    "snapshotter": n.snapshotter,
                    "bytes_sent": n.bytes_sent,
                    "elapsed_ms": n.elapsed.as_millis(),
                    "images": n.images.iter().map(|i| serde_json::json!({
                        "image": i.image,
                        "reference": i.reference,
                        "outcome": match &i.outcome {
                            kind_parity_images::load::Outcome::Loaded => "loaded".to_owned(),
                            kind_parity_images::load::Outcome::AlreadyPresent => "already present".to_owned(),
                            kind_parity_images::load::Outcome::Retagged { .. } => "re-tagged".to_owned(),
                        },
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"cluster": cluster, "nodes": nodes}))
                .map_err(anyhow::Error::from)?
        );
    }
    Ok(ExitStatus::Success)
}
