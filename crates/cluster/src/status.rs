//! A snapshot of an environment on a cluster: nodes, and the readiness of every workload the
//! last apply created, by the same rules `wait` uses.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::readiness::{self, Readiness};
use crate::{ObjectRef, wait};

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// The kubelet version.
    pub version: String,
}

/// One workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadStatus {
    /// The object.
    pub object: ObjectRef,
    /// `ready`, `waiting` or `failed`.
    pub state: &'static str,
    /// What it waits for or why it failed.
    pub detail: String,
}

/// The environment's state on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
    /// Workloads, in inventory order.
    pub workloads: Vec<WorkloadStatus>,
}

impl Status {
    /// Whether every node and workload is ready (and there is at least one node).
    pub fn all_ready(&self) -> bool {
        !self.nodes.is_empty()
            && self.nodes.iter().all(|n| n.ready)
            && self.workloads.iter().all(|w| w.state == "ready")
    }
}

/// Reads the nodes and evaluates each workload among `objects`.
pub async fn collect(client: &kube::Client, objects: &[ObjectRef]) -> Result<Status> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Api { action: "listing nodes".into(), source })?
        .items
        .into_iter()
        .map(|n| NodeStatus {
            name: n.metadata.name.unwrap_or_default(),
            ready: n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            version: n.status.and_then(|s| s.node_info).map(|i| i.kubelet_version).unwrap_or_default(),
        })
        .collect();
    let mut workloads = Vec::new();
    for object in objects.iter().filter(|o| wait::is_workload(o)) {
        let readiness = evaluate(client, object).await?;
        let (state, detail) = match readiness {
            Readiness::Ready => ("ready", String::new()),
            Readiness::Waiting(w) => ("waiting", w),
            Readiness::Failed(f) => ("failed", f),
        };
        workloads.push(WorkloadStatus { object: object.clone(), state, detail });
    }
    Ok(Status { nodes, workloads })
}

/// Evaluates one workload once, by the rules `wait` uses; a workload that is gone has failed.
pub async fn evaluate(client: &kube::Client, object: &ObjectRef) -> Result<Readiness> {
    match object.kind.as_str() {
        "Deployment" => evaluate_as::<Deployment>(client, object, readiness::deployment).await,
        "StatefulSet" => evaluate_as::<StatefulSet>(client, object, readiness::statefulset).await,
        "DaemonSet" => evaluate_as::<DaemonSet>(client, object, readiness::daemonset).await,
        "Job" => evaluate_as::<Job>(client, object, readiness::job).await,
        _ => Ok(Readiness::Ready),
    }
}

async fn evaluate_as<K>(client: &kube::Client, object: &ObjectRef, rule: fn(&K) -> Readiness) -> Result<Readiness>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), object.namespace.as_deref().unwrap_or_default());
    let current =
        api.get_opt(&object.name).await.map_err(|source| Error::Api { action: format!("reading {object}"), source })?;
    Ok(current.map_or_else(
        || Readiness::Failed("missing: it was applied but is gone (deleted by hand?)".into()),
        |o| rule(&o),
    ))
}
