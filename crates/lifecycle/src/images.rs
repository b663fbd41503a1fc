//! The image steps: each service's build spec (the embedded demo's contexts written into the
//! state folder first), the image references the manifests name (one place, for `render` and
//! `up` alike), builds through the Docker API, loading into a kind cluster's nodes, and the
//! local registry. Progress goes to the [`Reporter`] as events.

use kind_parity_images::build::{BuildSpec, Built, Prepared};
use kind_parity_images::load::{self, LoadReport, Outcome, Progress};
use kind_parity_render::{Config, ImageRefs, Loaded};

use crate::event::{Event, NodeImage, Reporter, Step};
use crate::state::State;
use crate::{Error, Result};

/// The environment's local registry (its container is `<name>-registry`, as the kind config's
/// containerd patch and the KEP-1755 ConfigMap name it).
pub fn registry(config: &Config) -> kind_parity_images::registry::Registry {
    kind_parity_images::registry::Registry {
        name: format!("{}-registry", config.name),
        environment: config.name.clone(),
        image: config.registry.image.clone(),
        host_port: config.registry.host_port,
    }
}

/// The image builds of the config's services, with their contexts on disk. The embedded demo's
/// files are written into the state folder first (`<state>/demo/`), so a fresh clone or an
/// installed binary can build it too.
pub fn build_specs(loaded: &Loaded, state: &State) -> Result<Vec<BuildSpec>> {
    let base = match loaded.inputs.base_dir() {
        Some(dir) => dir.to_path_buf(),
        None => {
            let dir = state.demo();
            kind_parity_render::Inputs::embedded_demo()
                .extract(&dir)
                .map_err(|source| Error::Demo { dir: dir.clone(), source })?;
            dir
        }
    };
    Ok(loaded
        .config
        .services
        .iter()
        .filter_map(|(name, service)| {
            let build = service.build.as_ref()?;
            Some(BuildSpec {
                service: name.clone(),
                context: base.join(&build.context),
                dockerfile: build.dockerfile.as_ref().map_or_else(
                    || kind_parity_render::config::DEFAULT_DOCKERFILE.into(),
                    |d| d.to_string_lossy().into_owned(),
                ),
                args: build.args.clone(),
                target: build.target.clone(),
            })
        })
        .collect())
}

/// The images the manifests name: prebuilt images as configured, each build by the content tag
/// of its context (`<service>:kp-<12 hex>`), by its registry reference when the local registry
/// carries images. The one place that decides them, so a render and `up` always agree.
pub fn image_refs(config: &Config, builds: &[Prepared]) -> ImageRefs {
    builds.iter().fold(ImageRefs::from_config(config), |images, build| {
        let tag = build.tag().to_owned();
        // With the local registry, nodes pull the image by its registry name.
        let reference = if config.registry.enabled { registry(config).reference(&tag) } else { tag };
        images.with_build(build.spec().service.clone(), reference)
    })
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

impl crate::Environment {
    /// Builds the images of the named services (every service with a `build` when none are
    /// named), each skipped when its content tag exists, and returns their tags.
    pub async fn build(&self, services: &[String], reporter: &dyn Reporter) -> Result<Vec<String>> {
        let specs = build_specs(&self.loaded, &self.state)?;
        let known: Vec<String> = specs.iter().map(|s| s.service.clone()).collect();
        if let Some(unknown) = services.iter().find(|s| !known.contains(s)) {
            return Err(Error::UnknownService { service: unknown.clone(), known });
        }
        let mut wanted: Vec<Prepared> = Vec::new();
        for spec in specs.iter().filter(|s| services.is_empty() || services.contains(&s.service)) {
            wanted.push(kind_parity_images::build::prepare(spec).await?);
        }
        build_all(&wanted, reporter).await
    }
}

/// Builds each of `builds` (skipped when its content tag exists) and returns the tags.
pub(crate) async fn build_all(builds: &[Prepared], reporter: &dyn Reporter) -> Result<Vec<String>> {
    if builds.is_empty() {
        return Ok(Vec::new());
    }
    let docker = kind_parity_images::connect().await?;
    let mut tags = Vec::new();
    for prepared in builds {
        let service = prepared.spec().service.clone();
        reporter.report(&Event::BuildStarted { service: service.clone() });
        let progress =
            |line: &str| reporter.report(&Event::BuildOutput { service: service.clone(), line: line.to_owned() });
        let built = kind_parity_images::build::build(&docker, prepared, &progress).await?;
        let was_built = matches!(built, Built::Built { .. });
        reporter.report(&Event::ImageBuilt { service, tag: built.tag().to_owned(), built: was_built });
        tags.push(built.tag().to_owned());
    }
    Ok(tags)
}

/// Loads `images` into every node of kind cluster `cluster`; progress per node as events, then
/// an [`Event::NodeLoaded`] per node.
pub async fn load_images(cluster: &str, images: &[String], reporter: &dyn Reporter) -> Result<LoadReport> {
    let docker = kind_parity_images::connect().await?;
    let progress = |event: Progress<'_>| {
        let event = match event {
            Progress::Checked { node, present, retag, send } => {
                Event::NodeChecked { node: node.to_owned(), present, retag, send }
            }
            Progress::Sent { node, bytes, estimated_total } => {
                Event::NodeSent { node: node.to_owned(), bytes, estimated_total }
            }
            Progress::Done { node } => Event::NodeVerified { node: node.to_owned() },
            _ => return,
        };
        reporter.report(&event);
    };
    let report = load::load(&docker, cluster, images, &progress).await?;
    for node in &report.nodes {
        let images = node
            .images
            .iter()
            .map(|i| {
                let (outcome, retagged_from) = match &i.outcome {
                    Outcome::Loaded => ("loaded", None),
                    Outcome::AlreadyPresent => ("already present", None),
                    Outcome::Retagged { from } => ("re-tagged", Some(from.clone())),
                };
                NodeImage { image: i.image.clone(), outcome: outcome.to_owned(), retagged_from }
            })
            .collect();
        reporter.report(&Event::NodeLoaded {
            node: node.node.clone(),
            images,
            bytes_sent: node.bytes_sent,
            elapsed_ms: u64::try_from(node.elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(report)
}

/// Starts the local registry, points the nodes at it and pushes `images` (only changed layers
/// travel); the path `up` takes instead of loading when `registry.enabled`.
pub(crate) async fn push_all(config: &Config, images: &[String], reporter: &dyn Reporter) -> Result<()> {
    let docker = kind_parity_images::connect().await?;
    let registry = registry(config);
    match kind_parity_images::registry::ensure(&docker, &registry, "kind").await? {
        kind_parity_images::registry::Ensured::Created => reporter.report(&Event::Info {
            step: Step::Push,
            message: format!("created the local registry {} on 127.0.0.1:{}", registry.name, registry.host_port),
        }),
        kind_parity_images::registry::Ensured::Existing => {}
    }
    kind_parity_images::registry::configure_nodes(&docker, &config.name, &registry, None).await?;
    for image in images {
        let reference = kind_parity_images::registry::push(&docker, &registry, image, &|_| {}).await?;
        reporter.report(&Event::ImagePushed { reference });
    }
    Ok(())
}
