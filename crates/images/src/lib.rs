//! kind-parity-images: image work through the Docker Engine API (bollard), never the `docker` CLI.
//!
//! Done: [`context`] collects a build context honouring `.dockerignore` (Docker's rules: paths
//! relative to the context, `*` within one segment, `**` across, `!` exceptions, last match
//! wins, the Dockerfile and `.dockerignore` always sent), packs it as a deterministic tar and
//! digests it with the Dockerfile, the build args and the target; [`build`] tags each image by
//! that digest (`<service>:kp-<12 hex>`), skips the build when the tag exists, streams the
//! engine's output to `tracing` and a progress callback, and reports a failed build with the
//! step that failed and the last lines of its output.
//!
//! Not yet (issue 3 continues): loading into kind nodes (`ctr images import` streamed to every
//! node at once, with a skip check by digest and verification), platform-image caching.

pub mod build;
pub mod context;

use std::path::PathBuf;

/// The Docker label kind puts on every node container of a cluster, valued with its name.
pub const NODE_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// The Docker label kind puts on node containers, valued `control-plane` or `worker`.
pub const NODE_ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The containerd namespace the kubelet reads images from.
pub const CONTAINERD_NAMESPACE: &str = "k8s.io";
/// The prefix of content tags.
pub const CONTENT_TAG_PREFIX: &str = "kp-";

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
}
