//! What the cluster layer asks of the Docker Engine (through its API, never the CLI): its
//! version, the node containers of a cluster by kind's labels, and the `kind` network, through
//! `kind-parity-docker`, the one Docker layer the image layer shares.

use bollard::query_parameters::RemoveContainerOptionsBuilder;

use crate::error::{Error, Result};

pub use kind_parity_docker::{CLUSTER_LABEL, KIND_NETWORK};

/// What the Docker Engine says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// Its release, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The newest API version it serves, e.g. `1.41`; `None` when it does not say.
    pub api_version: Option<String>,
}

/// A connection to the local Docker Engine.
#[derive(Debug, Clone)]
pub struct Docker(bollard::Docker);

impl Docker {
    /// Connects as the docker CLI would ([`kind_parity_docker::connect`]: `DOCKER_HOST`, else
    /// the local socket) and returns the engine's version.
    pub async fn connect() -> Result<(Self, String)> {
        let (docker, engine) = Self::connect_engine().await?;
        Ok((docker, engine.version))
    }

    /// Connects as [`Docker::connect`] does and returns the engine's version and API version.
    pub async fn connect_engine() -> Result<(Self, Engine)> {
        let docker = kind_parity_docker::connect()
            .map_err(|source| Error::Docker { action: "connecting to the Docker Engine".into(), source })?;
        let version = docker
            .version()
            .await
            .map_err(|source| Error::Docker { action: "asking the Docker Engine for its version".into(), source })?;
        let engine = Engine { version: version.version.unwrap_or_default(), api_version: version.api_version };
        Ok((Self(docker), engine))
    }

    /// The names of the node containers of `cluster`, running or not.
    pub async fn node_containers(&self, cluster: &str) -> Result<Vec<String>> {
        let containers = kind_parity_docker::node_containers(&self.0, cluster)
            .await
            .map_err(|source| Error::Docker { action: format!("listing the node containers of {cluster}"), source })?;
        Ok(containers.into_iter().map(|c| c.name).collect())
    }

    /// Force-removes containers (and their anonymous volumes).
    pub async fn remove_containers(&self, names: &[String]) -> Result<()> {
        for name in names {
            let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
            self.0
                .remove_container(name, Some(options))
                .await
                .map_err(|source| Error::Docker { action: format!("removing container {name}"), source })?;
        }
        Ok(())
    }

    /// Removes the `kind` network when no container is attached to it any more; returns whether
    /// it was removed. Other clusters and containers on it keep it alive.
    pub async fn remove_kind_network_if_unused(&self) -> Result<bool> {
        let network = match self.0.inspect_network(KIND_NETWORK, None).await {
            Ok(n) => n,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(false),
            Err(source) => return Err(Error::Docker { action: "inspecting the kind network".into(), source }),
        };
        if network.containers.is_some_and(|c| !c.is_empty()) {
            return Ok(false);
        }
        self.0
            .remove_network(KIND_NETWORK)
            .await
            .map_err(|source| Error::Docker { action: "removing the kind network".into(), source })?;
        Ok(true)
    }
}
