//! kind-parity-cluster: the kind lifecycle, kubeconfig safety, server-side apply in phases,
//! and readiness waits that fail closed.
//!
//! - [`kind::Kind`] drives the `kind` binary (the one place external programs run is
//!   [`command`]); every call writes the environment's own kubeconfig, never `~/.kube/config`.
//! - [`connect`] opens a client for a kubeconfig context and [`check_allowed`] refuses to
//!   change a cluster whose context is not allowed.
//! - [`apply::apply`] applies rendered manifests with server-side apply (field manager
//!   `kind-parity`): CRDs and namespaces first, then the render phases in order, objects of a
//!   phase concurrently; it prunes what an earlier apply created and this one no longer renders.
//! - [`readiness`] holds kubectl's rollout rules; [`wait::wait_ready`] waits for every workload
//!   under one deadline, and stops early with a [`diagnose::Diagnosis`] when a pod is stuck.
//! - [`pod_security`] judges pod templates by the Pod Security Standards as the API server's
//!   admission does, so workloads it would refuse are found before they are applied.

pub mod apply;
pub mod bundle;
pub mod command;
pub mod diagnose;
pub mod docker;
mod error;
pub mod kind;
pub mod pod_security;
pub mod preflight;
pub mod readiness;
pub mod status;
pub mod wait;

/// The clients of this crate's public types ([`Error`]'s sources, [`connect`]'s client),
/// re-exported so an embedder names the versions this crate was built with.
pub use kind_parity_docker::bollard;
pub use {k8s_openapi, kube};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};

/// The field manager of every server-side apply this tool makes.
pub const FIELD_MANAGER: &str = "kind-parity";
/// The label that marks objects this tool applied, valued with the environment's name.
pub const ENVIRONMENT_LABEL: &str = "kind-parity.dev/environment";
/// The label that marks an object every environment of a cluster applies alike (the ingress
/// controller, its namespace and its cluster-wide objects): each environment marks it with its
/// own [`USER_ANNOTATION_PREFIX`] annotation, and it is deleted only by the last one to go.
pub const SHARED_LABEL: &str = "kind-parity.dev/shared";
/// The prefix of the annotation an environment marks a shared object with, followed by the
/// environment's name (`users.kind-parity.dev/kp-demo`).
pub const USER_ANNOTATION_PREFIX: &str = "users.kind-parity.dev/";
/// The annotation on an environment's namespace that says which state folder applies it (the
/// fingerprint of its local CA, `kind_parity_render::Secrets::identity`).
pub const IDENTITY_ANNOTATION: &str = "kind-parity.dev/identity";

/// Identifies one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A kubeconfig context to talk to.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The kubeconfig file; the default chain (`KUBECONFIG`, `~/.kube/config`) when unset.
    pub kubeconfig: Option<PathBuf>,
    /// The context; the kubeconfig's current context when unset.
    pub context: Option<String>,
}

/// Opens a client for the target and returns it with the name of the context it uses, once the
/// API server has answered: an unreachable server is reported here, by its address and context,
/// rather than by the first call that needed it.
pub async fn connect(target: &Target) -> Result<(kube::Client, String)> {
    let kubeconfig_error = |path: Option<&Path>, source: Box<dyn std::error::Error + Send + Sync>| Error::Kubeconfig {
        path: path.map(Path::to_path_buf).unwrap_or_default(),
        source,
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => {
            kube::config::Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(Some(path), Box::new(e)))?
        }
        None => kube::config::Kubeconfig::read().map_err(|e| kubeconfig_error(None, Box::new(e)))?,
    };
    let context = target.context.clone().or_else(|| kubeconfig.current_context.clone()).unwrap_or_default();
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Err(Error::UnknownContext {
            context,
            path: target.kubeconfig.clone().unwrap_or_default(),
            known: kubeconfig.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    }
    let options = kube::config::KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| kubeconfig_error(target.kubeconfig.as_deref(), Box::new(e)))?;
    let server = config.cluster_url.to_string();
    let action = format!("connecting to the API server {server} of context {context}");
    let client = kube::Client::try_from(config).map_err(|source| Error::Api { action: action.clone(), source })?;
    client.apiserver_version().await.map_err(|source| Error::Api { action, source })?;
    Ok((client, context))
}

/// Refuses a context that is not in `allowed` for a command that changes the cluster, so the
/// parity stack never lands in a shared cluster by accident. `kind-<name>` contexts the tool
/// created itself are allowed by the caller adding them.
pub fn check_allowed(context: &str, allowed: &[String]) -> Result<()> {
    if allowed.iter().any(|a| a == context) {
        Ok(())
    } else {
        Err(Error::ContextNotAllowed { context: context.to_owned() })
    }
}

/// Refuses to apply environment `identity` where namespace `namespace` belongs to another
/// environment: one whose [`IDENTITY_ANNOTATION`] differs (another checkout, or a state folder
/// made again, with the same `name`), whose apply would replace the other's passwords and
/// objects. A missing namespace, ours, or one without the annotation (made by hand, or by a
/// kind-parity before it stamped namespaces) passes.
pub async fn check_identity(client: &kube::Client, namespace: &str, identity: &str) -> Result<()> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let found = namespaces
        .get_metadata_opt(namespace)
        .await
        .map_err(|source| Error::Api { action: format!("reading namespace {namespace}"), source })?;
    let theirs = found.and_then(|n| n.metadata.annotations).and_then(|mut a| a.remove(IDENTITY_ANNOTATION));
    match theirs {
        Some(theirs) if theirs != identity => {
            Err(Error::OtherEnvironment { namespace: namespace.to_owned(), ours: identity.to_owned(), theirs })
        }
        _ => Ok(()),
    }
}
