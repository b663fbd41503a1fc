//! kind-parity-images: image work through the Docker Engine API (bollard), never the `docker` CLI.
//!
//! Done: [`context`] collects a build context honouring `.dockerignore` (Docker's rules: paths
//! relative to the context, `*` within one segment, `**` across, `!` exceptions, last match
//! wins, the Dockerfile and `.dockerignore` always sent), digests it with the Dockerfile, the
//! build args and the target, reading each file once, and streams it as a deterministic tar;
//! [`build`] prepares a build once (the context read and hashed on a blocking thread: the tag
//! `<service>:kp-<12 hex>`), skips it when the tag exists, else streams the tar to the engine
//! (never whole in memory; a file changed since it was hashed stops the build), streams the
//! engine's output to `tracing` and a progress callback, and reports a failed build with the
//! step that failed and the last lines of its output.
//!
//! [`load`] loads images into a kind cluster's nodes (found by kind's labels; a stopped node is
//! an error naming it). One exec per node, all nodes at once, reads the node's snapshotter
//! (from containerd's config file, else `containerd config dump`), its references (`ctr images ls`) and its content labels
//! (`ctr content ls`, which lead from a manifest to its config digest and say whether it is
//! unpacked), so an image already there under the wanted name is skipped and one there under
//! another name is re-tagged (`ctr images tag`) instead of sent. Nodes that need the same set
//! share one export, streamed from the engine into every node's
//! `ctr images import --digests --snapshotter=S -` at once through small bounded channels (no
//! temp file; the slowest node sets the pace). ctr's exit code is read from the exec; a failure
//! carries ctr's stderr and removes the half-imported references. Every changed node is listed
//! again afterwards: an image not there under its name, with its content, unpacked, is an error.
//! The report says per node and image: loaded, already present or re-tagged, bytes and time;
//! a progress callback hears the bytes per node. [`platform`] caches platform images on the host
//! (pulled once; without a registry the error says none is reachable and names the image).
//!
//! Not yet: the cli's `build`/`load` commands and `up` calling [`load`] instead of
//! `kind load docker-image` (the cli crate wires them); layer-level dedup (an image whose base
//! layers a node already has is still sent whole, as kind does).

pub mod build;
pub mod context;
pub mod load;
pub mod platform;
pub mod registry;

use std::path::PathBuf;

/// The Docker client of this crate's signatures, re-exported so an embedder names the same
/// version; nodes are found by `kind-parity-docker`, the one Docker layer.
pub use kind_parity_docker::bollard;
/// The containerd namespace the kubelet reads images from.
pub const CONTAINERD_NAMESPACE: &str = "k8s.io";
/// The prefix of content tags.
pub const CONTENT_TAG_PREFIX: &str = "kp-";

/// Connects to the Docker Engine as the docker CLI would ([`kind_parity_docker::connect`]:
/// `DOCKER_HOST`, else the local socket) and agrees on an API version with it, so that older
/// engines (API 1.41 of Docker 20.10) answer too.
pub async fn connect() -> Result<bollard::Docker> {
    let docker = kind_parity_docker::connect().map_err(|source| Error::EngineDown { source })?;
    docker.negotiate_version().await.map_err(|source| Error::EngineDown { source })
}

/// A result whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of a build context could not be read.
    #[error("reading {path} of the build context")]
    ReadContext {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `.dockerignore` line is not a valid pattern.
    #[error("{file}: line {line} `{pattern}` is not a valid pattern")]
    IgnorePattern {
        /// The `.dockerignore` file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The pattern.
        pattern: String,
        /// Why.
        #[source]
        source: globset::Error,
    },
    /// A file of a build context changed between hashing it (its content tag) and sending it.
    #[error("{path} changed while its build context was read")]
    ContextChanged {
        /// The file.
        path: PathBuf,
    },
    /// The Dockerfile named by the build is not in the context.
    #[error("no Dockerfile at {path}; set `build.dockerfile` to its path relative to the context")]
    MissingDockerfile {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The Docker Engine could not be reached or refused a call.
    #[error("{action}: is Docker running? (`docker version` should answer)")]
    Docker {
        /// What was being done.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// A build step failed.
    #[error("building {service} failed at `{step}`: {message}\n  last output:\n    {}", last_lines.join("\n    "))]
    BuildFailed {
        /// The service.
        service: String,
        /// The Dockerfile step that failed (`Step 3/5 : RUN make`).
        step: String,
        /// The engine's error message.
        message: String,
        /// The last lines of the build output.
        last_lines: Vec<String>,
    },
    /// The Docker Engine does not answer at all.
    #[error("the Docker Engine is not answering; start Docker (`docker version` should answer) or set DOCKER_HOST")]
    EngineDown {
        /// The connection error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image to load is not in the local engine.
    #[error("image {image} does not exist locally")]
    ImageNotFound {
        /// The image as asked for.
        image: String,
    },
    /// No container carries the cluster's node label.
    #[error("cluster {cluster} has no node containers (label {label}={cluster})")]
    NoNodes {
        /// The cluster.
        cluster: String,
        /// The label looked for.
        label: &'static str,
    },
    /// A node container exists but is not running.
    #[error("node {node} is {state}, not running; start it (`docker start {node}`) or recreate the cluster")]
    NodeStopped {
        /// The node container.
        node: String,
        /// Its state (`exited`, `created`, `paused`, ...).
        state: String,
    },
    /// A node has no `ctr` to import images with.
    #[error("node {node} has no `ctr` (is it a kind node?): {output}")]
    NodeWithoutCtr {
        /// The node container.
        node: String,
        /// What the shell said.
        output: String,
    },
    /// A push to the local registry failed.
    #[error("pushing {image} to the local registry failed: {message}")]
    PushFailed {
        /// The image reference pushed.
        image: String,
        /// What the engine said.
        message: String,
    },
    /// A container of that name exists and was not created by this tool: it is left alone.
    #[error("a container named {name} exists and was not created by kind-parity; remove it or set `registry` off")]
    ForeignRegistry {
        /// The container's name.
        name: String,
    },
    /// A command inside a node failed.
    #[error("`{command}` in node {node} failed ({}): {stderr}", exit_text(*exit))]
    NodeCommand {
        /// The node container.
        node: String,
        /// The command line.
        command: String,
        /// Its exit code, when the engine reported one.
        exit: Option<i64>,
        /// Its standard error (or output when that was empty).
        stderr: String,
    },
    /// `ctr images import` failed in a node: nothing of this import is reported as loaded.
    #[error("importing {} into node {node} failed ({}): {stderr}", images.join(", "), exit_text(*exit))]
    ImportFailed {
        /// The node container.
        node: String,
        /// The images of the import.
        images: Vec<String>,
        /// ctr's exit code, when the engine reported one.
        exit: Option<i64>,
        /// ctr's standard error (or output when that was empty).
        stderr: String,
    },
    /// After an import, the node does not list the image under the wanted name and content, unpacked.
    #[error(
        "node {node} does not list {image} ({reference}) with the content of {id}, unpacked, after loading it{}",
        found_text(found)
    )]
    VerifyFailed {
        /// The node container.
        node: String,
        /// The image as asked for.
        image: String,
        /// The containerd reference looked for.
        reference: String,
        /// The local image id.
        id: String,
        /// What the node lists under that reference, if anything.
        found: Option<String>,
    },
    /// A platform image could not be pulled because no registry answers.
    #[error(
        "no registry is reachable to pull {image}: {message}; connect to the network once (the image is cached after that) or `docker load` it"
    )]
    RegistryUnreachable {
        /// The image.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// The registry answered but refused or did not have the image.
    #[error("pulling {image} failed: {message}")]
    PullFailed {
        /// The image.
        image: String,
        /// The engine's message.
        message: String,
    },
}

fn exit_text(exit: Option<i64>) -> String {
    exit.map_or_else(|| "no exit code reported".to_owned(), |code| format!("exit code {code}"))
}

fn found_text(found: &Option<String>) -> String {
    found.as_ref().map_or_else(|| " (it lists nothing under that name)".to_owned(), |f| format!(" (it lists {f})"))
}
