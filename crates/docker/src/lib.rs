//! kind-parity's one Docker layer, shared by the image and cluster layers: the connection to the
//! engine, and the node containers of a kind cluster, found by the labels kind gives them
//! (kubernetes-sigs/kind `pkg/cluster/internal/providers/docker/constants.go`).
//!
//! The connection honours `DOCKER_HOST` as the docker CLI does (`unix://`, `tcp://`, `http://`,
//! and `ssh://` where bollard has it), and the local socket without it. bollard's
//! `connect_with_local_defaults`, used before, reads only a `unix://` `DOCKER_HOST` and takes the
//! local socket for any other, so a `tcp://` engine (GitLab's docker:dind service) was missed.
//!
//! [`bollard`] is re-exported: its [`Docker`](bollard::Docker) appears in the public signatures of
//! this crate and of `kind-parity-images`, and an embedder names the same version through it.

pub use bollard;

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;

/// The label kind puts on every node container of a cluster, valued with the cluster's name.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// The label kind puts on node containers, valued `control-plane` or `worker`.
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The Docker network kind attaches its nodes to.
pub const KIND_NETWORK: &str = "kind";

/// A client of the engine `DOCKER_HOST` names, else of the local socket. Nothing is sent yet:
/// the first request says whether the engine answers.
pub fn connect() -> Result<bollard::Docker, bollard::errors::Error> {
    bollard::Docker::connect_with_defaults()
}

/// A node container of a kind cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContainer {
    /// The container's name.
    pub name: String,
    /// Its kind role (`control-plane`, `worker`), empty when the label is missing.
    pub role: String,
    /// The engine's state word (`running`, `exited`, `created`…), empty when it gives none.
    pub state: String,
}

impl NodeContainer {
    /// Whether the container runs.
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// The node containers of kind cluster `cluster`, running or not, sorted by name.
pub async fn node_containers(
    docker: &bollard::Docker,
    cluster: &str,
) -> Result<Vec<NodeContainer>, bollard::errors::Error> {
    let filters = HashMap::from([("label", vec![format!("{CLUSTER_LABEL}={cluster}")])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let mut nodes: Vec<NodeContainer> = docker
        .list_containers(Some(options))
        .await?
        .into_iter()
        .filter_map(|c| {
            let name = c.names.as_ref()?.first()?.trim_start_matches('/').to_owned();
            let role = c.labels.as_ref().and_then(|l| l.get(ROLE_LABEL)).cloned().unwrap_or_default();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            Some(NodeContainer { name, role, state })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}
