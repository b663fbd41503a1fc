//! `build`, `load`, and the image steps of `up`: build each service's image through the Docker
//! API (skipped when its content tag exists), then stream images into a kind cluster's nodes
//! with the images crate's loader. Progress is a bar per node on a terminal, a line per node
//! otherwise.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kind_parity_images::build::{Built, Prepared};
use kind_parity_images::load::{self, LoadReport, Outcome, Progress};

use crate::args::{BuildArgs, GlobalArgs, LoadArgs, OutputFormat};
use crate::state::State;
use crate::{EXIT_USAGE, Exit};

/// The environment's local registry (its container is `<name>-registry`, as the kind config's
/// containerd patch and the KEP-1755 ConfigMap name it).
pub(crate) fn registry(config: &kind_parity_render::Config) -> kind_parity_images::registry::Registry {
    kind_parity_images::registry::Registry {
        name: format!("{}-registry", config.name),
        environment: config.name.clone(),
        image: config.registry.image.clone(),
        host_port: config.registry.host_port,
    }
}

/// Starts the local registry, points the nodes at it and pushes `images` (only changed layers
/// travel); the path `up` takes instead of loading when `registry.enabled`.
pub(crate) async fn push_all(
    global: &GlobalArgs,
    config: &kind_parity_render::Config,
    images: &[String],
) -> Result<()> {
    let docker = kind_parity_images::connect().await?;
    let registry = registry(config);
    match kind_parity_images::registry::ensure(&docker, &registry, "kind").await? {
        kind_parity_images::registry::Ensured::Created => {
            say(global, &format!("created the local registry {} on 127.0.0.1:{}", registry.name, registry.host_port));
        }
        kind_parity_images::registry::Ensured::Existing => {}
    }
    kind_parity_images::registry::configure_nodes(&docker, &config.name, &registry, None).await?;
    for image in images {
        let reference = kind_parity_images::registry::push(&docker, &registry, image, &|_| {}).await?;
        say(global, &format!("  pushed {reference}"));
    }
    Ok(())
}

/// Whether to draw live progress: stderr is a terminal, not CI, not quiet.
pub(crate) fn live_progress(global: &GlobalArgs) -> bool {
    !global.quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

fn say(global: &GlobalArgs, line: &str) {
    crate::interrupt::step(line);
    if !global.quiet {
        eprintln!("{line}");
    }
}

/// Those of `references` the local Docker engine holds. `up` loads them into kind's nodes with
/// the services' builds, as `kind load docker-image` would: a node then pulls only what the host
/// lacks (an image pulled for compose, a registry out of reach, a rate limit).
pub(crate) async fn present_locally(references: &[String]) -> Vec<String> {
    let Ok(docker) = kind_parity_images::connect().await else { return Vec::new() };
    let mut present = Vec::new();
    for reference in references {
        if docker.inspect_image(reference).await.is_ok() {
            present.push(reference.clone());
        }
    }
    present
}

/// Builds each of `builds` (skipped when its content tag exists) and returns the tags.
pub(crate) async fn build_all(global: &GlobalArgs, builds: &[Prepared]) -> Result<Vec<String>> {
    if builds.is_empty() {
        return Ok(Vec::new());
    }
    let docker = kind_parity_images::connect().await?;
    let verbose = global.verbose > 0;
    let mut tags = Vec::new();
    for prepared in builds {
        let spec = prepared.spec();
        crate::interrupt::step(&format!("building {}", spec.service));
        let spinner = live_progress(global).then(|| {
            let bar = ProgressBar::new_spinner().with_message(format!("building {}", spec.service));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        let progress = |line: &str| {
            if verbose {
                match &spinner {
                    Some(bar) => bar.println(format!("    {line}")),
                    None => eprintln!("    {line}"),
                }
            } else if let Some(bar) = &spinner {
                bar.set_message(format!("building {}: {}", spec.service, line.chars().take(80).collect::<String>()));
            }
        };
        let built = kind_parity_images::build::build(&docker, prepared, &progress).await;
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        let built = built?;
        match &built {
            Built::Unchanged { tag } => say(global, &format!("image {tag}: unchanged")),
            Built::Built { tag, .. } => say(global, &format!("image {tag}: built")),
        }
        tags.push(built.tag().to_owned());
    }
    Ok(tags)
}

/// Loads `images` into every node of kind cluster `cluster`, showing progress, and prints a line
/// per node.
pub(crate) async fn load_all(global: &GlobalArgs, cluster: &str, images: &[String]) -> Result<LoadReport> {
    let docker = kind_parity_images::connect().await?;
    let bars = live_progress(global)
        .then(|| (MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), Mutex::new(HashMap::new())));
    let style = ProgressStyle::with_template("  {prefix:<32} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}")
        .expect("a valid template");
    let progress = |event: Progress<'_>| {
        let Some((multi, by_node)) = &bars else { return };
        let mut by_node = by_node.lock().expect("not poisoned");
        match event {
            Progress::Checked { node, present, retag, send } => {
                let bar = multi.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(node.to_owned()));
                bar.set_message(format!("{send} to send, {present} present, {retag} to re-tag"));
                by_node.insert(node.to_owned(), bar);
            }
            Progress::Sent { node, bytes, estimated_total } => {
                if let Some(bar) = by_node.get(node) {
                    bar.set_length(estimated_total.max(bytes));
                    bar.set_position(bytes);
                }
            }
            Progress::Done { node } => {
                if let Some(bar) = by_node.get(node) {
                    bar.finish_with_message("verified");
                }
            }
            _ => {}
        }
    };
    let report = load::load(&docker, cluster, images, &progress).await;
    if let Some((multi, _)) = &bars {
        let _ = multi.clear();
    }
    let report = report?;
    for node in &report.nodes {
        let outcomes: Vec<String> = node
            .images
            .iter()
            .map(|i| match &i.outcome {
                Outcome::Loaded => format!("{} loaded", i.image),
                Outcome::AlreadyPresent => format!("{} already present", i.image),
                Outcome::Retagged { from } => format!("{} re-tagged from {from}", i.image),
            })
            .collect();
        say(
            global,
            &format!(
                "  {}: {}; {:.1} MB sent in {:.1?}",
                node.node,
                outcomes.join(", "),
                node.bytes_sent as f64 / 1e6,
                node.elapsed
            ),
        );
    }
    Ok(report)
}

/// `kind-parity build [SERVICE…]`: builds the named services' images (all with a `build` when
/// none are named) and prints their tags on stdout.
pub(crate) async fn build(global: &GlobalArgs, args: &BuildArgs) -> Result<u8> {
    let loaded = crate::load_config(global)?;
    let state = State::new(&global.state_dir, &loaded.config.name);
    let specs = crate::build_specs(&loaded, &state)?;
    let known: Vec<&str> = specs.iter().map(|s| s.service.as_str()).collect();
    if let Some(unknown) = args.services.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(Exit {
            message: format!("no service `{unknown}` builds an image"),
            help: Some(format!(
                "services with a `build`: {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )),
            code: EXIT_USAGE,
        }
        .into());
    }
    let mut wanted: Vec<Prepared> = Vec::new();
    for spec in specs.iter().filter(|s| args.services.is_empty() || args.services.contains(&s.service)) {
        wanted.push(kind_parity_images::build::prepare(spec).await?);
    }
    let tags = build_all(global, &wanted).await?;
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&tags)?),
        OutputFormat::Human => tags.iter().for_each(|t| println!("{t}")),
    }
    Ok(0)
}

/// `kind-parity load IMAGE…`: loads local images into the nodes of the environment's kind
/// cluster (`--name` picks another environment).
pub(crate) async fn load(global: &GlobalArgs, args: &LoadArgs) -> Result<u8> {
    let cluster = match &global.name {
        Some(name) => name.clone(),
        None => crate::load_config(global)?.config.name,
    };
    say(global, &format!("loading {} image(s) into the nodes of kind cluster {cluster}", args.images.len()));
    let report = load_all(global, &cluster, &args.images).await?;
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
                            Outcome::Loaded => "loaded".to_owned(),
                            Outcome::AlreadyPresent => "already present".to_owned(),
                            Outcome::Retagged { .. } => "re-tagged".to_owned(),
                        },
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"cluster": cluster, "nodes": nodes}))?);
    }
    Ok(0)
}
