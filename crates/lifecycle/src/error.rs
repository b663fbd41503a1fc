//! The lifecycle's error type, and the [`Hint`]s that say what to do next.
//!
//! Messages say what failed; what the user should do next is a [`Hint`], a value the caller
//! renders in its own terms (the `kind-parity` binary names its commands and flags, another
//! tool its own API).

use std::path::PathBuf;
use std::time::Duration;

use kind_parity_probes::Report;

use crate::state::StateError;

/// A result whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do next after an [`Error`], for the caller to put in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Fix what the failed preflight checks say, then run `up` again.
    FixPreflight,
    /// Fix what the failed preflight checks say, then run `reset` again: it deleted nothing.
    FixPreflightThenReset,
    /// Recreate the environment from the current config (`reset`).
    Reset,
    /// Bring the environment up first: the command checks a running one.
    UpFirst,
    /// `up` creates the cluster the command looked for.
    UpCreatesCluster,
    /// The workloads were only slow: allow a longer wait than this one.
    LongerTimeout {
        /// The wait that ran out.
        timeout: Duration,
    },
    /// An image the manifests name is not in the nodes: build the services' images and load
    /// them into every node (what `up` does on kind), or load that image.
    LoadImages,
    /// A container keeps exiting: besides its logs, compare the service's env in the compose
    /// and kind modes (the drift report).
    Drift,
    /// Fix the parity suite's first root cause, then run `validate` again.
    FixParity,
    /// Start Docker (or install kind) and run `down` again; the state folder was kept.
    StartDockerForDown,
    /// Pick another output folder: a render replaces it whole.
    OtherOutFolder,
    /// Name one of these services, which build an image.
    KnownServices {
        /// The services with a `build`.
        known: Vec<String>,
    },
    /// Build the image, or pull it, first.
    BuildOrPull,
    /// Render again: it writes the secrets and the CA the config needs.
    Render,
    /// Take the conflicting fields of the environment's own object back (force the apply);
    /// a forced apply still takes over no object that is not the environment's.
    Force,
    /// The object exists and kind-parity did not make it: remove it, or hand it to the
    /// environment with its label, or disable what installs it (k3s and k3d install Traefik and
    /// its IngressClass `traefik`).
    NotOurs {
        /// The object.
        object: String,
        /// The environment whose label would hand it over.
        environment: String,
    },
    /// The object is another environment's: pick another name or namespace, or take that one down.
    AnotherEnvironments {
        /// The environment it belongs to.
        environment: String,
    },
    /// The namespace is another environment's: pick another name, or take that one down.
    OtherEnvironment {
        /// The namespace.
        namespace: String,
    },
    /// Allow changes to this kubeconfig context.
    AllowContext {
        /// The context.
        context: String,
    },
    /// Find out what holds the objects that remain (a finalizer, a webhook, permissions), then
    /// run `down` again: the state folder was kept.
    ObjectsRemain,
    /// Take the environment down from its kind cluster first.
    DownKind,
    /// Delete the environment from that context first (`down` on the existing cluster).
    DownExisting {
        /// The context.
        context: String,
    },
    /// Another command works on the environment: wait for it, stop it, or wait longer.
    Busy {
        /// Its process id, when known.
        pid: Option<u32>,
    },
}

/// Everything the lifecycle can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config, a template or a render failed (an invalid config is [`Error::is_config`]).
    #[error(transparent)]
    Render(#[from] kind_parity_render::Error),
    /// The template overrides could not be loaded.
    #[error("loading templates from {dir}")]
    Templates {
        /// The overrides' folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: kind_parity_render::Error,
    },
    /// The state folder could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The embedded demo stack's files could not be written to be built.
    #[error("writing the embedded demo stack into {dir}")]
    Demo {
        /// Where.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the working directory or of a bundle could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`writing`, `reading the working directory`).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be prepared, built, loaded or pushed.
    #[error(transparent)]
    Images(#[from] kind_parity_images::Error),
    /// The cluster layer failed (kind, kubeconfig, apply, Docker). Boxed, as the cluster's
    /// errors are large and this one travels in every result.
    #[error(transparent)]
    Cluster(Box<kind_parity_cluster::Error>),
    /// The parity suite could not be derived or run.
    #[error(transparent)]
    Probes(#[from] kind_parity_probes::Error),
    /// Preflight checks failed; each was reported as an [`crate::Event::PreflightCheck`].
    #[error("{failed} preflight check(s) failed")]
    Preflight {
        /// How many.
        failed: usize,
    },
    /// `reset`'s preflight checks failed, before it deleted anything.
    #[error("{failed} preflight check(s) failed; reset deleted nothing")]
    ResetPreflight {
        /// How many.
        failed: usize,
    },
    /// The kind cluster exists but was created from another kind config.
    #[error("kind cluster {name} was created from a different kind config:\n{diff}")]
    KindConfigChanged {
        /// The cluster.
        name: String,
        /// The differences, a unified diff indented by two spaces.
        diff: String,
    },
    /// The workloads were not ready in time.
    #[error("{name} was not ready within {}s", .timeout.as_secs())]
    NotReady {
        /// The environment.
        name: String,
        /// The wait's budget.
        timeout: Duration,
        /// Which workload, and why.
        #[source]
        source: Box<kind_parity_cluster::Error>,
    },
    /// Everything is up, but the parity check at the end of `up` failed.
    #[error("{name} is up, but the parity check failed")]
    ParityFailed {
        /// The environment.
        name: String,
        /// The suite's report (boxed: the error stays small).
        report: Box<Report>,
    },
    /// A service asked to be built has no `build` (or does not exist).
    #[error("no service `{service}` builds an image")]
    UnknownService {
        /// The service asked for.
        service: String,
        /// The services that build an image.
        known: Vec<String>,
    },
    /// A read-only command found no cluster for the environment.
    #[error("environment {name} has no cluster yet ({} does not exist)", .kubeconfig.display())]
    NoCluster {
        /// The environment.
        name: String,
        /// The kubeconfig `up` writes when it creates the cluster.
        kubeconfig: PathBuf,
    },
    /// `validate` found no state: nothing was ever rendered or brought up.
    #[error("environment {name} has no state in {}", .root.display())]
    NoState {
        /// The environment.
        name: String,
        /// Its state folder.
        root: PathBuf,
    },
    /// `down` cannot reach kind or Docker, and `up` created a cluster.
    #[error(
        "kind cluster {name} may still exist ({} says `up` created it), and neither kind nor Docker is here to delete it",
        .root.display()
    )]
    CannotDelete {
        /// The cluster.
        name: String,
        /// The state folder, kept.
        root: PathBuf,
        /// Why Docker did not answer.
        #[source]
        source: Box<kind_parity_cluster::Error>,
    },
    /// An apply failed part-way. Every object it was to apply or prune stays in the
    /// environment's inventory, so the next apply prunes and `down` deletes what it created.
    #[error("the apply to context {context} stopped after applying {} of {planned} objects", .applied.len())]
    ApplyStopped {
        /// The context.
        context: String,
        /// How many objects the apply was to apply.
        planned: usize,
        /// The objects applied before it stopped, with what the apply did to each.
        applied: Vec<(kind_parity_cluster::ObjectRef, kind_parity_cluster::apply::Change)>,
        /// The objects of the previous apply it pruned before it stopped.
        pruned: Vec<kind_parity_cluster::ObjectRef>,
        /// Why it stopped.
        #[source]
        source: Box<kind_parity_cluster::Error>,
    },
    /// `down` deleted what it found, but objects the environment made are still there; the
    /// state folder was kept, for the next `down` to find them.
    #[error(
        "{} object(s) of {name} remain in context {context} after deleting: {}; kept {}",
        .remaining.len(),
        remaining_list(.remaining),
        .root.display()
    )]
    ObjectsRemain {
        /// The environment.
        name: String,
        /// The context.
        context: String,
        /// What remains, each with whether its deletion began (a finalizer holds it).
        remaining: Vec<(kind_parity_cluster::ObjectRef, bool)>,
        /// The state folder, kept.
        root: PathBuf,
    },
    /// A kind `down` while the inventory names objects applied to another cluster.
    #[error(
        "{name}'s inventory names {objects} object(s) applied to context {context}, not to its kind cluster; kept {}",
        .root.display()
    )]
    AppliedElsewhere {
        /// The environment.
        name: String,
        /// Where its objects were applied.
        context: String,
        /// How many.
        objects: usize,
        /// The state folder, kept.
        root: PathBuf,
    },
    /// An apply to one context while the inventory names objects applied to another: the new
    /// inventory would forget them there, and no `down` would find them.
    #[error(
        "{name}'s inventory names {objects} object(s) applied to context {recorded}; applying to {context} would forget them there (kept {})",
        .root.display()
    )]
    InventoryElsewhere {
        /// The environment.
        name: String,
        /// Where its objects are.
        recorded: String,
        /// Where this apply was to go.
        context: String,
        /// How many.
        objects: usize,
        /// The state folder.
        root: PathBuf,
    },
    /// Another process holds the environment's lock, and did not release it in time.
    #[error("environment {name} is busy: {holder} holds {} (waited {}s)", .lock_file.display(), .waited.as_secs())]
    Busy {
        /// The environment.
        name: String,
        /// Who holds the lock.
        holder: crate::state::Holder,
        /// The lock file.
        lock_file: PathBuf,
        /// How long this command waited.
        waited: Duration,
    },
}

/// The first objects of [`Error::ObjectsRemain`], for its message.
fn remaining_list(remaining: &[(kind_parity_cluster::ObjectRef, bool)]) -> String {
    const SHOWN: usize = 5;
    let mut list: Vec<String> = remaining
        .iter()
        .take(SHOWN)
        .map(|(object, deleting)| if *deleting { format!("{object} (being deleted)") } else { object.to_string() })
        .collect();
    if remaining.len() > SHOWN {
        list.push(format!("and {} more", remaining.len() - SHOWN));
    }
    list.join(", ")
}

impl From<kind_parity_cluster::Error> for Error {
    fn from(error: kind_parity_cluster::Error) -> Self {
        Self::Cluster(Box::new(error))
    }
}

impl Error {
    /// Whether the config itself is wrong (an invalid value, an unknown key): a usage error,
    /// not a failure of the environment.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Render(kind_parity_render::Error::Config(_)))
    }

    /// Whether the caller asked for something that cannot be (an output folder render may not
    /// replace): like [`Error::is_config`], a usage error.
    pub fn is_usage(&self) -> bool {
        self.is_config() || matches!(self, Self::State(StateError::Out(_)) | Self::UnknownService { .. })
    }

    /// What to do next, when there is something to say.
    pub fn hint(&self) -> Option<Hint> {
        use kind_parity_cluster::Error as Cluster;
        match self {
            Self::Cluster(error) | Self::ApplyStopped { source: error, .. } => match error.as_ref() {
                Cluster::Conflict { .. } => Some(Hint::Force),
                Cluster::NotOurs { object, environment, .. } => {
                    Some(Hint::NotOurs { object: object.to_string(), environment: environment.clone() })
                }
                Cluster::AnotherEnvironments { environment, .. } => {
                    Some(Hint::AnotherEnvironments { environment: environment.clone() })
                }
                Cluster::OtherEnvironment { namespace, .. } => {
                    Some(Hint::OtherEnvironment { namespace: namespace.clone() })
                }
                Cluster::ContextNotAllowed { context } => Some(Hint::AllowContext { context: context.clone() }),
                // A stuck pod's diagnosis says what to check; for these reasons, also what to run.
                Cluster::Stuck(diagnosis) if diagnosis.reason == "ErrImageNeverPull" => Some(Hint::LoadImages),
                Cluster::Stuck(diagnosis) if diagnosis.reason == "CrashLoopBackOff" => Some(Hint::Drift),
                _ => None,
            },
            Self::Images(kind_parity_images::Error::ImageNotFound { .. }) => Some(Hint::BuildOrPull),
            Self::Images(kind_parity_images::Error::NoNodes { .. }) => Some(Hint::UpCreatesCluster),
            Self::Render(kind_parity_render::Error::MissingSecret { .. })
            | Self::Probes(kind_parity_probes::Error::BadCa(_) | kind_parity_probes::Error::NotGenerated { .. }) => {
                Some(Hint::Render)
            }
            Self::Preflight { .. } => Some(Hint::FixPreflight),
            Self::ResetPreflight { .. } => Some(Hint::FixPreflightThenReset),
            Self::KindConfigChanged { .. } => Some(Hint::Reset),
            Self::NotReady { timeout, .. } => Some(Hint::LongerTimeout { timeout: *timeout }),
            Self::ParityFailed { .. } => Some(Hint::FixParity),
            Self::NoCluster { .. } => Some(Hint::UpCreatesCluster),
            Self::NoState { .. } => Some(Hint::UpFirst),
            Self::CannotDelete { .. } => Some(Hint::StartDockerForDown),
            Self::UnknownService { known, .. } => Some(Hint::KnownServices { known: known.clone() }),
            Self::State(StateError::Out(_)) => Some(Hint::OtherOutFolder),
            Self::Busy { holder, .. } => Some(Hint::Busy { pid: holder.pid }),
            Self::ObjectsRemain { .. } => Some(Hint::ObjectsRemain),
            Self::AppliedElsewhere { context, .. } => Some(Hint::DownExisting { context: context.clone() }),
            Self::InventoryElsewhere { name, recorded, .. } if *recorded == format!("kind-{name}") => {
                Some(Hint::DownKind)
            }
            Self::InventoryElsewhere { recorded, .. } => Some(Hint::DownExisting { context: recorded.clone() }),
            _ => None,
        }
    }
}
