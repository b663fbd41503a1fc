//! kind-parity-cluster: the kind lifecycle, kubeconfig safety, server-side apply in phases,
//! and readiness waits that fail closed.
//!
//! Planned surface (not implemented yet): detect `kind` and its version, create the cluster from
//! the rendered `kind-config.yaml` with its own kubeconfig in the state folder (the user's
//! `~/.kube/config` is never touched unless asked), refuse to reuse a cluster whose kind config
//! drifted, apply the rendered manifests phase by phase (`kind_parity_render::Phase`) with
//! server-side apply and prune, and wait for readiness with kubectl's rollout rules, stopping
//! early with a diagnosis on ErrImageNeverPull, CrashLoopBackOff and the like.

/// The field manager of every server-side apply this tool makes.
pub const FIELD_MANAGER: &str = "kind-parity";
/// The label that marks objects this tool applied, valued with the environment's name.
pub const ENVIRONMENT_LABEL: &str = "kind-parity.dev/environment";
