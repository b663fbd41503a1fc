//! The cluster crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::ObjectRef;
use crate::diagnose::Diagnosis;

/// A result whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while managing a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An external program could not be started.
    #[error("running `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// An external program exited with a failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status, as text (`exit status 1`, `signal 9`).
        status: String,
        /// The last lines of what it wrote to stderr.
        stderr: String,
    },
    /// `kind` is not on PATH.
    #[error(
        "kind is not installed (not found on PATH); install kind {minimum} or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    )]
    KindMissing {
        /// The minimum supported version.
        minimum: String,
    },
    /// `kind` is older than supported.
    #[error(
        "kind {found} is too old; install kind {minimum} or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    )]
    KindTooOld {
        /// The version found.
        found: String,
        /// The minimum supported version.
        minimum: String,
    },
    /// `kind version` printed something we do not understand.
    #[error("cannot read the version of kind from `{output}`")]
    KindVersion {
        /// What `kind version` printed.
        output: String,
    },
    /// A kubeconfig could not be read or used.
    #[error("loading kubeconfig {path}")]
    Kubeconfig {
        /// The kubeconfig file (empty for the default chain).
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The kubeconfig has no such context (or names no current one).
    #[error("{}", unknown_context(context, path, known))]
    UnknownContext {
        /// The context asked for; empty when none was asked for and the kubeconfig has no current one.
        context: String,
        /// The kubeconfig file (empty for the default chain).
        path: PathBuf,
        /// The contexts it has.
        known: Vec<String>,
    },
    /// The command would change a cluster whose context is not allowed.
    #[error("context `{context}` is not allowed for commands that change the cluster")]
    ContextNotAllowed {
        /// The context.
        context: String,
    },
    /// A file of a diagnostics bundle could not be written.
    #[error("writing {path}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A call to the Kubernetes API failed.
    #[error("{action}")]
    Api {
        /// What was being done (`applying apps/v1 Deployment kp-demo/api`).
        action: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// A watch of the Kubernetes API, waiting for a condition, failed.
    #[error("{action}")]
    Watch {
        /// What was being waited for (`waiting for namespace kp-demo to be deleted`).
        action: String,
        /// The watch's error.
        #[source]
        source: Box<kube::runtime::wait::Error>,
    },
    /// A rendered manifest does not parse as Kubernetes objects.
    #[error("manifest {file} is not a list of Kubernetes objects")]
    Manifest {
        /// The manifest file.
        file: String,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// An object names a kind the API server does not serve.
    #[error(
        "{object}: the API server does not serve {api_version} {kind}; is its CRD applied, or the cluster too old?"
    )]
    UnknownKind {
        /// The object.
        object: String,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// Another field manager owns fields this apply sets.
    #[error("{object}: {message}")]
    Conflict {
        /// The object.
        object: ObjectRef,
        /// The API server's message, naming the fields and their managers.
        message: String,
    },
    /// An object to apply exists, and kind-parity did not make it: no field of it is
    /// [`crate::FIELD_MANAGER`]'s and it does not carry the environment's label (a cluster's
    /// own IngressClass, managed by its installer). Taking it over would have `down` delete it.
    #[error("{object} exists and is not kind-parity's (managed by {}); not taking it over", managers_list(.managers))]
    NotOurs {
        /// The object (boxed: the error stays small).
        object: Box<ObjectRef>,
        /// The field managers of its fields, sorted.
        managers: Vec<String>,
        /// The environment that was to apply it (whose label would hand it over).
        environment: String,
    },
    /// An object to apply exists and is another environment's: it carries that one's label and
    /// is not one the environments of a cluster share.
    #[error("{object} belongs to environment {environment}; not taking it over")]
    AnotherEnvironments {
        /// The object.
        object: ObjectRef,
        /// The environment whose label it carries.
        environment: String,
    },
    /// The namespace belongs to another environment of the same name (another state folder).
    #[error(
        "namespace {namespace} belongs to another environment: its identity is {theirs}, this state folder's is {ours} (another checkout with the same name, or a state folder made again?)"
    )]
    OtherEnvironment {
        /// The namespace.
        namespace: String,
        /// This environment's identity.
        ours: String,
        /// The identity the namespace carries.
        theirs: String,
    },
    /// A CRD did not become Established in time.
    #[error("CRD {name} was not Established within {timeout:?}")]
    CrdNotEstablished {
        /// The CRD.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// An object did not become ready within its budget or the deadline.
    #[error("{object} was not ready after {:.1}s: {last}{}", .waited.as_secs_f64(), pod_details(.pod.as_deref()))]
    Timeout {
        /// The object (boxed: the error travels in every `Result` of this crate, and stays small).
        object: Box<ObjectRef>,
        /// How long we waited.
        waited: Duration,
        /// Its last known state.
        last: String,
        /// Its first pod that was not ready at the deadline, explained, when it has pods.
        pod: Option<Box<Diagnosis>>,
    },
    /// An object reached a state it cannot recover from by waiting.
    #[error("{object} failed: {reason}")]
    Failed {
        /// The object.
        object: ObjectRef,
        /// Why.
        reason: String,
    },
    /// A workload was not waited for because one it depends on did not become ready.
    #[error("{object} was not waited for: {dependency}, which it depends on, did not become ready")]
    Blocked {
        /// The workload.
        object: Box<ObjectRef>,
        /// The dependency that failed.
        dependency: Box<ObjectRef>,
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
    /// A pod of an object is stuck for a reason waiting will not fix.
    #[error("{}", .0)]
    Stuck(Box<Diagnosis>),
}

fn managers_list(managers: &[String]) -> String {
    if managers.is_empty() { "no field manager".to_owned() } else { managers.join(", ") }
}

fn pod_details(pod: Option<&Diagnosis>) -> String {
    pod.map(|d| format!("\n  {}", d.pod_details())).unwrap_or_default()
}

fn unknown_context(context: &str, path: &std::path::Path, known: &[String]) -> String {
    let file = if path.as_os_str().is_empty() {
        "the kubeconfig".to_owned()
    } else {
        format!("kubeconfig {}", path.display())
    };
    let what = if context.is_empty() {
        format!("{file} names no current context")
    } else {
        format!("context `{context}` is not in {file}")
    };
    match known {
        [] => format!("{what}, and it has no context at all"),
        known => format!("{what}; its contexts are: {}", known.join(", ")),
    }
}
