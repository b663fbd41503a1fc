//! kind-parity-images: image work through the Docker Engine API (bollard), never the `docker` CLI.
//!
//! Planned surface (not implemented yet; `kind-parity build` and `load` do not exist until it is):
//! build each service from its context (client-side tar honouring `.dockerignore`), tag it by
//! content (`<service>:kp-<12 hex>`, skipped when the tag exists), and load images into kind
//! nodes faster than `kind load`: check every node first (config or manifest digest, re-tag
//! instead of re-send), export once per group of nodes needing the same set, stream the same
//! bytes into each node's `ctr -n k8s.io images import` concurrently, verify, report per node.
//!
//! Until then, `kind_parity_render::ImageRefs::from_config` names images from build settings.

/// The Docker label kind puts on every node container of a cluster, valued with its name.
pub const NODE_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// The Docker label kind puts on node containers, valued `control-plane` or `worker`.
pub const NODE_ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The containerd namespace the kubelet reads images from.
pub const CONTAINERD_NAMESPACE: &str = "k8s.io";
/// The prefix of content tags.
pub const CONTENT_TAG_PREFIX: &str = "kp-";
