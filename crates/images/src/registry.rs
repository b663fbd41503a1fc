//! The local registry (phase 3): a registry container on the kind network, published on
//! 127.0.0.1, that the nodes pull from. Images are pushed to it, so only changed layers travel,
//! instead of being loaded whole into every node.
//!
//! - [`ensure`] starts the registry container (creating it when missing, labelled so `down`
//!   removes only a registry this tool created) and attaches it to the `kind` network.
//! - [`configure_nodes`] writes each node's `/etc/containerd/certs.d/localhost:<port>/hosts.toml`
//!   so `localhost:<port>/…` resolves to the registry container from inside the cluster (the
//!   kind config points containerd's `config_path` there).
//! - [`push`] tags an image `localhost:<port>/<name>:<tag>` and pushes it through the engine.
//! - [`remove`] deletes the registry container if this tool created it.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkConnectRequest, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder, TagImageOptionsBuilder,
};
use futures::StreamExt as _;

use crate::load::{engine_error, nodes, run_in_node};
use crate::{Error, Result};

/// The label that marks a registry container this tool created, valued with the environment.
pub const REGISTRY_LABEL: &str = "kind-parity.dev/registry";
/// The port the registry listens on inside its container.
pub const CONTAINER_PORT: u16 = 5000;

/// A local registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The container's name (`<environment>-registry`), also its host name on the kind network.
    pub name: String,
    /// The environment it serves.
    pub environment: String,
    /// The registry image, pinned.
    pub image: String,
    /// The port on 127.0.0.1 it is published on.
    pub host_port: u16,
}

impl Registry {
    /// The reference an image gets in the registry, as the host and the nodes spell it.
    pub fn reference(&self, image: &str) -> String {
        let (name, tag) = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((image, "latest"));
        let name = name.rsplit('/').next().unwrap_or(name);
        format!("localhost:{}/{name}:{tag}", self.host_port)
    }
}

/// Whether [`ensure`] had to create the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// It was created (and started) now.
    Created,
    /// It existed; it was started if it was stopped.
    Existing,
}

/// Starts the registry, creating it when missing, and attaches it to `network` when that
/// network exists. A container of the same name that this tool did not create is an error.
pub async fn ensure(docker: &Docker, registry: &Registry, network: &str) -> Result<Ensured> {
    let ensured = match docker.inspect_container(&registry.name, None).await {
        Ok(existing) => {
            let ours = existing.config.as_ref().and_then(|c| c.labels.as_ref()).and_then(|l| l.get(REGISTRY_LABEL));
            if ours.is_none() {
                return Err(Error::ForeignRegistry { name: registry.name.clone() });
            }
            if existing.state.as_ref().and_then(|s| s.running) != Some(true) {
                docker
                    .start_container(&registry.name, None)
                    .await
                    .map_err(|source| engine_error(source, || format!("starting {}", registry.name)))?;
            }
            Ensured::Existing
        }
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            create(docker, registry).await?;
            Ensured::Created
        }
        Err(source) => return Err(engine_error(source, || format!("inspecting {}", registry.name))),
    };
    connect(docker, registry, network).await?;
    Ok(ensured)
}

async fn create(docker: &Docker, registry: &Registry) -> Result<()> {
    crate::platform::cache(docker, &registry.image, &|_| {}).await?;
    let bindings = HashMap::from([(
        format!("{CONTAINER_PORT}/tcp"),
        Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(registry.host_port.to_string()) }]),
    )]);
    let body = ContainerCreateBody {
        image: Some(registry.image.clone()),
        labels: Some(HashMap::from([(REGISTRY_LABEL.to_owned(), registry.environment.clone())])),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&registry.name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|source| engine_error(source, || format!("creating {}", registry.name)))?;
    docker
        .start_container(&registry.name, None)
        .await
        .map_err(|source| engine_error(source, || format!("starting {}", registry.name)))
}

/// Attaches the registry to `network` (kind's), so nodes reach it by name; idempotent.
async fn connect(docker: &Docker, registry: &Registry, network: &str) -> Result<()> {
    let inspect = match docker.inspect_network(network, None::<bollard::query_parameters::InspectNetworkOptions>).await
    {
        Ok(inspect) => inspect,
        // No kind network yet (no cluster): nothing to attach to.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
        Err(source) => return Err(engine_error(source, || format!("inspecting network {network}"))),
    };
    let attached =
        inspect.containers.unwrap_or_default().values().any(|c| c.name.as_deref() == Some(registry.name.as_str()));
    if attached {
        return Ok(());
    }
    let request = NetworkConnectRequest { container: registry.name.clone(), ..Default::default() };
    docker
        .connect_network(network, request)
        .await
        .map_err(|source| engine_error(source, || format!("attaching {} to network {network}", registry.name)))
}

/// Points every node of `cluster` at the registry: `localhost:<port>` is served by
/// `http://<name>:5000` on the kind network. `endpoint` overrides that address (tests).
pub async fn configure_nodes(
    docker: &Docker,
    cluster: &str,
    registry: &Registry,
    endpoint: Option<&str>,
) -> Result<Vec<String>> {
    let endpoint = endpoint.map_or_else(|| format!("http://{}:{CONTAINER_PORT}", registry.name), str::to_owned);
    let dir = format!("/etc/containerd/certs.d/localhost:{}", registry.host_port);
    let hosts = format!("[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
    let script = format!("mkdir -p '{dir}' && printf '%s' '{hosts}' > '{dir}/hosts.toml'");
    let nodes = nodes(docker, cluster).await?;
    let command = ["sh", "-c", script.as_str()];
    let runs = nodes.iter().map(|node| run_in_node(docker, &node.name, &command));
    for result in futures::future::join_all(runs).await {
        result?;
    }
    Ok(nodes.into_iter().map(|n| n.name).collect())
}

/// Tags `image` for the registry and pushes it; returns the registry reference. Layers the
/// registry already has are not sent again (the engine asks first).
pub async fn push(
    docker: &Docker,
    registry: &Registry,
    image: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String> {
    let reference = registry.reference(image);
    let (repo, tag) = reference.rsplit_once(':').expect("a reference has a tag");
    let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
    docker.tag_image(image, Some(options)).await.map_err(|source| match source {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            Error::ImageNotFound { image: image.to_owned() }
        }
        source => engine_error(source, || format!("tagging {image} as {reference}")),
    })?;
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = docker.push_image(repo, Some(options), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = &info.status {
                    tracing::debug!(image = %reference, %status, "push");
                    progress(status);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(Error::PushFailed { image: reference, message: error });
            }
            Err(source) => return Err(engine_error(source, || format!("pushing {reference}"))),
        }
    }
    Ok(reference)
}

/// Removes the registry container if this tool created it; a foreign one is left alone.
pub async fn remove(docker: &Docker, registry: &Registry) -> Result<bool> {
    let existing = match docker.inspect_container(&registry.name, None).await {
        Ok(existing) => existing,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(false),
        Err(source) => return Err(engine_error(source, || format!("inspecting {}", registry.name))),
    };
    let ours = existing.config.and_then(|c| c.labels).is_some_and(|l| l.contains_key(REGISTRY_LABEL));
    if !ours {
        return Ok(false);
    }
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    docker
        .remove_container(&registry.name, Some(options))
        .await
        .map_err(|source| engine_error(source, || format!("removing {}", registry.name)))?;
    Ok(true)
}
