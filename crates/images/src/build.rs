//! Building a service's image through the Docker Engine API, tagged by its content.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt as _;

use crate::context;
use crate::{CONTENT_TAG_PREFIX, Error, Result};

/// How many lines of build output a failure keeps.
const LAST_LINES: usize = 12;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The service (the image's repository name).
    pub service: String,
    /// The build context folder.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// The target stage.
    pub target: Option<String>,
}

impl BuildSpec {
    /// Reads and hashes the context once: the content tag, and the files [`build`] sends.
    /// Blocking IO (every file of the context is read): async code calls [`prepare`].
    pub fn prepare(&self) -> Result<Prepared> {
        let snapshot = context::Snapshot::read(&self.context, &self.dockerfile, &self.args, self.target.as_deref())?;
        let tag = format!("{}:{CONTENT_TAG_PREFIX}{}", self.service, &snapshot.digest[..12]);
        Ok(Prepared { spec: self.clone(), snapshot, tag })
    }

    /// The content tag (`<service>:kp-<12 hex>`) without building. Blocking IO, as
    /// [`BuildSpec::prepare`].
    pub fn tag(&self) -> Result<String> {
        self.prepare().map(|prepared| prepared.tag)
    }
}

/// A build whose context was read and hashed: its content tag is known.
#[derive(Debug, Clone)]
pub struct Prepared {
    spec: BuildSpec,
    snapshot: context::Snapshot,
    tag: String,
}

impl Prepared {
    /// What is built.
    pub fn spec(&self) -> &BuildSpec {
        &self.spec
    }

    /// The content tag (`<service>:kp-<12 hex>`).
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// [`BuildSpec::prepare`] on a blocking thread, off the async runtime's workers.
pub async fn prepare(spec: &BuildSpec) -> Result<Prepared> {
    let spec = spec.clone();
    match tokio::task::spawn_blocking(move || spec.prepare()).await {
        Ok(prepared) => prepared,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// What [`build`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    /// The tag existed: nothing was built.
    Unchanged {
        /// The content tag.
        tag: String,
    },
    /// The image was built and tagged.
    Built {
        /// The content tag.
        tag: String,
        /// The image id the engine reported.
        id: String,
    },
}

impl Built {
    /// The content tag.
    pub fn tag(&self) -> &str {
        match self {
            Self::Unchanged { tag } | Self::Built { tag, .. } => tag,
        }
    }
}

/// Builds `prepared` unless its content tag exists, streaming its context to the engine;
/// `progress` hears each output line.
pub async fn build(docker: &bollard::Docker, prepared: &Prepared, progress: &(dyn Fn(&str) + Sync)) -> Result<Built> {
    let (spec, tag) = (&prepared.spec, prepared.tag.clone());
    match docker.inspect_image(&tag).await {
        Ok(_) => {
            tracing::debug!(%tag, "image exists: build skipped");
            return Ok(Built::Unchanged { tag });
        }
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(Error::Docker { action: format!("looking up image {tag}"), source }),
    }
    let args: HashMap<String, String> = spec.args.clone().into_iter().collect();
    let labels = HashMap::from([("kind-parity.dev/service".to_owned(), spec.service.clone())]);
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .t(&tag)
        .rm(true)
        // A failed step's container would otherwise stay behind on every failed build.
        .forcerm(true)
        .buildargs(&args)
        .labels(&labels);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    let (tar, writer) = prepared.snapshot.tar_stream();
    let mut stream = docker.build_image(options.build(), None, Some(bollard::body_try_stream(tar)));
    let mut last: VecDeque<String> = VecDeque::with_capacity(LAST_LINES);
    let mut step = String::from("(before the first step)");
    let mut id = String::new();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(failed(spec, &step, error, &last));
            }
            Err(source) => {
                // A context that could not be sent is the cause, not the engine's broken request.
                return Err(match writer.await {
                    Ok(Err(context)) => context,
                    _ => Error::Docker { action: format!("building {}", spec.service), source },
                });
            }
        };
        if let Some(text) = info.stream {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if line.starts_with("Step ") || line.starts_with("#") && line.contains(" [") {
                    step = line.trim().to_owned();
                }
                tracing::debug!(service = %spec.service, "{line}");
                progress(line);
                if last.len() == LAST_LINES {
                    last.pop_front();
                }
                last.push_back(line.to_owned());
            }
        }
        if let Some(detail) = info.error_detail {
            return Err(failed(spec, &step, detail.message.unwrap_or_default(), &last));
        }
        if let Some(aux) = info.aux {
            id = aux.id.unwrap_or(id);
        }
    }
    match writer.await {
        Ok(written) => written?,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
    Ok(Built::Built { tag, id })
}

fn failed(spec: &BuildSpec, step: &str, message: String, last: &VecDeque<String>) -> Error {
    Error::BuildFailed {
        service: spec.service.clone(),
        step: step.to_owned(),
        message,
        last_lines: last.iter().cloned().collect(),
    }
}
