//! The cluster side: the API answers, nodes are Ready, the stack's workloads are ready (by the
//! rules `up` waits with), and each service's running pod has every env key the config declares,
//! with the Secrets and ConfigMaps it references present and holding the keys. Also the config's
//! own contract: no undeclared drift between the compose and kind environments.

use std::collections::BTreeSet;

use futures::future::{BoxFuture, FutureExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::readiness::Readiness;
use kube::api::{Api, ListParams};

use crate::probe::{Check, Failure, Next};

fn api_failure(what: &str, e: &kube::Error) -> Failure {
    Failure::new(format!("{what}: {e}"), "check that the cluster runs and the kubeconfig context is the environment's")
        .then(Next::Status)
}

/// The API server answers a version request.
#[derive(Clone)]
pub struct ApiReachable {
    client: kube::Client,
    context: String,
}

impl ApiReachable {
    /// Checks the API server behind `client` (of kubeconfig context `context`).
    pub fn new(client: kube::Client, context: impl Into<String>) -> Self {
        Self { client, context: context.into() }
    }
}

impl Check for ApiReachable {
    fn target(&self) -> String {
        format!("the API server of context {}", self.context)
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        async move {
            let version = self.client.apiserver_version().await.map_err(|e| {
                Failure::new(
                    format!("the API server does not answer: {e}"),
                    "start the environment, or check the kubeconfig context",
                )
                .then(Next::Up)
            })?;
            Ok(format!("Kubernetes {}", version.git_version))
        }
        .boxed()
    }
}

/// At least one node, and every node Ready.
#[derive(Clone)]
pub struct NodesReady {
    client: kube::Client,
}

impl NodesReady {
    /// Checks the nodes of the cluster behind `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Check for NodesReady {
    fn target(&self) -> String {
        "nodes".into()
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        async move {
            let nodes = Api::<Node>::all(self.client.clone())
                .list(&ListParams::default())
                .await
                .map_err(|e| api_failure("listing nodes", &e))?
                .items;
            nodes_verdict(&nodes)
        }
        .boxed()
    }
}

/// At least one node, and every node Ready by its kubelet's condition.
fn nodes_verdict(nodes: &[Node]) -> Result<String, Failure> {
    if nodes.is_empty() {
        return Err(Failure::new(
            "the cluster has no nodes: no pod can run",
            "a kind cluster has nodes from the start; on an existing cluster, check `kubectl get nodes`",
        ));
    }
    let not_ready: Vec<String> = nodes
        .iter()
        .filter(|n| {
            !n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|n| n.metadata.name.clone().unwrap_or_default())
        .collect();
    if not_ready.is_empty() {
        Ok(format!("{} Ready", nodes.len()))
    } else {
        Err(Failure::new(
            format!("not Ready: {}", not_ready.join(", ")),
            "`kubectl describe node NAME` says why; with kind, the logs hold the node logs",
        )
        .then(Next::Logs { of: None }))
    }
}

/// One workload is ready, by the rules `up` waits with.
#[derive(Clone)]
pub struct WorkloadReady {
    client: kube::Client,
    object: ObjectRef,
}

impl WorkloadReady {
    /// Checks `object` (a Deployment, StatefulSet, DaemonSet or Job).
    pub fn new(client: kube::Client, object: ObjectRef) -> Self {
        Self { client, object }
    }
}

impl Check for WorkloadReady {
    fn target(&self) -> String {
        self.object.to_string()
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        async move {
            match kind_parity_cluster::status::evaluate(&self.client, &self.object).await {
                Ok(Readiness::Ready) => Ok("ready".into()),
                Ok(Readiness::Waiting(w)) => Err(Failure::new(
                    format!("not ready: {w}"),
                    "bringing the environment up waits for it and explains a stuck pod; its status shows the rest",
                )
                .then(Next::Up)
                .then(Next::Status)),
                Ok(Readiness::Failed(f)) => Err(Failure::new(
                    format!("failed: {f}"),
                    "bringing the environment up explains a stuck pod; its logs say more",
                )
                .then(Next::Up)
                .then(Next::logs_of(self.object.name.clone()))),
                Err(e) => Err(Failure::new(e.to_string(), "check that the cluster is reachable")),
            }
        }
        .boxed()
    }
}

/// A service's running pod has every env key the config declares, and the Secrets and
/// ConfigMaps its environment references exist and hold the keys.
#[derive(Clone)]
pub struct EnvContract {
    client: kube::Client,
    namespace: String,
    service: String,
    selector: String,
    keys: Vec<String>,
}

impl EnvContract {
    /// Checks the pods of `service` in `namespace` (selected by `selector`, `k=v,k=v`) for `keys`.
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        service: impl Into<String>,
        selector: impl Into<String>,
        keys: Vec<String>,
    ) -> Self {
        Self { client, namespace: namespace.into(), service: service.into(), selector: selector.into(), keys }
    }

    async fn check(&self) -> Result<String, Failure> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&self.selector))
            .await
            .map_err(|e| api_failure(&format!("listing the pods of {}", self.service), &e))?;
        // The newest pod runs the latest spec; older ones may be terminating after a roll.
        let Some(pod) = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        else {
            return Err(Failure::new(
                format!("no pod of `{}` exists in {}", self.service, self.namespace),
                "bringing the environment up applies the service; its status shows the Deployment",
            )
            .then(Next::Up)
            .then(Next::Status));
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let configmaps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut present = BTreeSet::new();
        let mut problems = Vec::new();
        let fix_apply = "bringing the environment up again re-applies its objects and rolls the pods";
        let containers = pod.spec.iter().flat_map(|s| &s.containers);
        for container in containers {
            for from in container.env_from.iter().flatten() {
                let prefix = from.prefix.clone().unwrap_or_default();
                if let Some(r) = &from.config_map_ref {
                    match configmaps.get_opt(&r.name).await.map_err(|e| api_failure("reading a ConfigMap", &e))? {
                        Some(cm) => present.extend(cm.data.into_iter().flatten().map(|(k, _)| format!("{prefix}{k}"))),
                        None if r.optional == Some(true) => {}
                        None => problems.push(format!("ConfigMap {} (envFrom) does not exist", r.name)),
                    }
                }
                if let Some(r) = &from.secret_ref {
                    match secrets.get_opt(&r.name).await.map_err(|e| api_failure("reading a Secret", &e))? {
                        Some(s) => present.extend(s.data.into_iter().flatten().map(|(k, _)| format!("{prefix}{k}"))),
                        None if r.optional == Some(true) => {}
                        None => problems.push(format!("Secret {} (envFrom) does not exist", r.name)),
                    }
                }
            }
            for var in container.env.iter().flatten() {
                present.insert(var.name.clone());
                let Some(from) = &var.value_from else { continue };
                if let Some(r) = &from.config_map_key_ref {
                    let cm = configmaps.get_opt(&r.name).await.map_err(|e| api_failure("reading a ConfigMap", &e))?;
                    let has = cm.as_ref().is_some_and(|c| c.data.as_ref().is_some_and(|d| d.contains_key(&r.key)));
                    if !has && r.optional != Some(true) {
                        problems.push(format!("{}: ConfigMap {} has no key {}", var.name, r.name, r.key));
                    }
                }
                if let Some(r) = &from.secret_key_ref {
                    let s = secrets.get_opt(&r.name).await.map_err(|e| api_failure("reading a Secret", &e))?;
                    let has = s.as_ref().is_some_and(|s| s.data.as_ref().is_some_and(|d| d.contains_key(&r.key)));
                    if !has && r.optional != Some(true) {
                        problems.push(format!("{}: Secret {} has no key {}", var.name, r.name, r.key));
                    }
                }
            }
        }
        let missing: Vec<&str> = self.keys.iter().filter(|k| !present.contains(*k)).map(String::as_str).collect();
        if !missing.is_empty() {
            problems.insert(0, format!("pod {pod_name} lacks {}", missing.join(", ")));
        }
        if problems.is_empty() {
            Ok(format!("pod {pod_name} has all {} declared env keys", self.keys.len()))
        } else {
            Err(Failure::new(problems.join("; "), fix_apply).then(Next::Up))
        }
    }
}

impl Check for EnvContract {
    fn target(&self) -> String {
        format!("the environment of `{}` in {}", self.service, self.namespace)
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// The config means the same in both modes: every difference in the render crate's drift
/// report is declared by a per-mode override (`compose.env`, `kind.env`); the declared ones are
/// listed in what it found.
#[derive(Debug, Clone)]
pub struct NoDrift {
    config: kind_parity_render::Config,
}

impl NoDrift {
    /// Checks `config`.
    pub fn new(config: kind_parity_render::Config) -> Self {
        Self { config }
    }
}

/// `service.KEY: …` for each difference, on one line.
fn one_line<'a>(differences: impl Iterator<Item = (&'a str, &'a kind_parity_render::Difference)>) -> String {
    differences.map(|(service, d)| format!("{service}.{d}")).collect::<Vec<_>>().join("; ")
}

impl Check for NoDrift {
    fn target(&self) -> String {
        "the env of every service in compose and kind modes".into()
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        async move {
            let report = kind_parity_render::drift(&self.config)
                .map_err(|e| Failure::new(format!("the config cannot be resolved: {e}"), "fix the config"))?;
            if !report.passes() {
                return Err(Failure::new(
                    format!("undeclared drift: {}", one_line(report.undeclared())),
                    "write the value once with contract references (`{{ postgres.url \"app\" }}`, `{{ service.api.url }}`), or declare the difference in the service's `compose.env` or `kind.env`; the drift report shows each",
                )
                .then(Next::Drift));
            }
            let services = self.config.services.len();
            let declared: Vec<_> = report.declared().collect();
            if declared.is_empty() {
                Ok(format!("{services} services mean the same in both modes"))
            } else {
                Ok(format!(
                    "{services} services mean the same in both modes, apart from {} declared difference(s): {}",
                    declared.len(),
                    one_line(declared.into_iter())
                ))
            }
        }
        .boxed()
    }
}

/// A bootstrap artifact in the cluster is the repository's file: its ConfigMap exists and its
/// bytes have the file's digest.
#[derive(Clone)]
pub struct ArtifactMatches {
    client: kube::Client,
    namespace: String,
    configmap: String,
    key: String,
    digest: String,
}

impl ArtifactMatches {
    /// Checks that ConfigMap `configmap` in `namespace` holds `key` with `digest` (`sha256:<hex>`).
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        configmap: impl Into<String>,
        key: impl Into<String>,
        digest: impl Into<String>,
    ) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            configmap: configmap.into(),
            key: key.into(),
            digest: digest.into(),
        }
    }

    async fn check(&self) -> Result<String, Failure> {
        use sha2::Digest as _;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let configmap = api
            .get_opt(&self.configmap)
            .await
            .map_err(|e| api_failure(&format!("reading ConfigMap {}", self.configmap), &e))?
            .ok_or_else(|| {
                Failure::new(
                    format!("ConfigMap {}/{} does not exist", self.namespace, self.configmap),
                    "bringing the environment up delivers the artifacts",
                )
                .then(Next::Up)
            })?;
        let bytes = configmap
            .binary_data
            .as_ref()
            .and_then(|d| d.get(&self.key))
            .map(|b| b.0.clone())
            .or_else(|| configmap.data.as_ref().and_then(|d| d.get(&self.key)).map(|s| s.clone().into_bytes()))
            .ok_or_else(|| {
                Failure::new(
                    format!("ConfigMap {} has no key {}", self.configmap, self.key),
                    "bringing the environment up delivers the artifacts",
                )
                .then(Next::Up)
            })?;
        let found = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
        if found == self.digest {
            Ok(format!("{} bytes, {found}", bytes.len()))
        } else {
            Err(Failure::new(
                format!("the cluster holds {found}, the repository's file is {}", self.digest),
                "the file changed since it was delivered: bringing the environment up delivers the current one",
            )
            .then(Next::Up))
        }
    }
}

impl Check for ArtifactMatches {
    fn target(&self) -> String {
        format!("ConfigMap {}/{} key {}", self.namespace, self.configmap, self.key)
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::nodes_verdict;
    use k8s_openapi::api::core::v1::Node;

    fn node(name: &str, ready: &str) -> Node {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
        .unwrap()
    }

    #[test]
    fn nodes_must_exist_and_be_ready() {
        assert_eq!(nodes_verdict(&[]).unwrap_err().found, "the cluster has no nodes: no pod can run");
        assert_eq!(nodes_verdict(&[node("a", "True"), node("b", "Unknown")]).unwrap_err().found, "not Ready: b");
        assert_eq!(nodes_verdict(&[node("a", "True")]).unwrap(), "1 Ready");
    }
}
