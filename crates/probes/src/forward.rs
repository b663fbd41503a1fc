//! A local address that reaches a Service of the cluster: the port-forward `kubectl
//! port-forward svc/NAME` makes, through kube-rs, to one ready pod behind the Service. The
//! dependency probes speak their protocol through it.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::probe::{Failure, Next};

/// A Service port to forward to.
#[derive(Clone)]
pub struct ServicePort {
    client: kube::Client,
    namespace: String,
    service: String,
    port: u16,
}

impl std::fmt::Debug for ServicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "svc/{}:{} in {}", self.service, self.port, self.namespace)
    }
}

/// An open forward: a local address, closed when dropped.
#[derive(Debug)]
pub struct Forward {
    /// Where to connect.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ServicePort {
    /// Port `port` of Service `service` in `namespace`.
    pub fn new(client: kube::Client, namespace: impl Into<String>, service: impl Into<String>, port: u16) -> Self {
        Self { client, namespace: namespace.into(), service: service.into(), port }
    }

    /// `svc/NAME:PORT in NAMESPACE`, for reports.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }

    /// Opens a local listener forwarding each connection to a ready pod behind the Service.
    pub async fn open(&self) -> Result<Forward, Failure> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
        let api_failure = |what: &str, e: kube::Error| {
            Failure::new(format!("{what}: {e}"), "check that the cluster is reachable").then(Next::Status)
        };
        let service = services
            .get_opt(&self.service)
            .await
            .map_err(|e| api_failure(&format!("reading Service {}", self.service), e))?
            .ok_or_else(|| {
                Failure::new(
                    format!("Service {}/{} does not exist", self.namespace, self.service),
                    "bringing the environment up applies it",
                )
                .then(Next::Up)
            })?;
        let spec = service.spec.unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        let target = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.port == i32::from(self.port))
            .map(|p| p.target_port.unwrap_or(IntOrString::Int(p.port)))
            .ok_or_else(|| {
                Failure::new(
                    format!("Service {} has no port {}", self.service, self.port),
                    "the manifests and the probes disagree: bring the environment up to render and apply them again",
                )
                .then(Next::Up)
            })?;
        let labels = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&labels))
            .await
            .map_err(|e| api_failure(&format!("listing the pods of Service {}", self.service), e))?;
        let ready = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        let pod = list.items.into_iter().find(ready).ok_or_else(|| {
            Failure::new(
                format!("no ready pod behind Service {}/{}", self.namespace, self.service),
                "the environment's status shows why its pods are not ready",
            )
            .then(Next::Status)
        })?;
        let port = match &target {
            IntOrString::Int(p) => u16::try_from(*p).unwrap_or(self.port),
            IntOrString::String(name) => pod
                .spec
                .iter()
                .flat_map(|s| &s.containers)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| {
                    Failure::new(
                        format!("no container port named `{name}` in the pod"),
                        "bring the environment up to render and apply it again",
                    )
                    .then(Next::Up)
                })?,
        };
        let name = pod.metadata.name.unwrap_or_default();
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Failure::new(format!("binding a local port: {e}"), "check the machine's free ports"))?;
        let addr = listener.local_addr().map_err(|e| Failure::new(e.to_string(), "check the machine's network"))?;
        tracing::debug!(pod = %name, port, %addr, "port-forward open");
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let pods = pods.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let mut forwarder = match pods.portforward(&name, &[port]).await {
                        Ok(f) => f,
                        Err(e) => return tracing::debug!(error = %e, "port-forward failed"),
                    };
                    let Some(mut upstream) = forwarder.take_stream(port) else { return };
                    if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut upstream).await {
                        tracing::debug!(error = %e, "port-forward connection ended");
                    }
                    drop(upstream);
                    let _ = forwarder.join().await;
                });
            }
        });
        Ok(Forward { addr, task })
    }
}
