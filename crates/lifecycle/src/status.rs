//! `status`: the cluster's nodes, each workload's readiness, whether the nodes hold the current
//! build of each service, the endpoints. Read-only, so any context will do.

use std::path::PathBuf;

use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::status::{NodeStatus, WorkloadStatus};
use serde::Serialize;

use crate::{Environment, Result, StatusOptions};

/// What [`Environment::status`] found.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The environment.
    pub environment: String,
    /// The kubeconfig context looked at.
    pub context: String,
    /// Whether every node and workload is ready.
    pub ready: bool,
    /// The nodes.
    pub nodes: Vec<NodeStatus>,
    /// The workloads the last apply applied.
    pub workloads: Vec<WorkloadStatus>,
    /// The environment's URLs.
    pub endpoints: Vec<String>,
    /// The local CA certificate.
    pub ca: PathBuf,
    /// Whether the nodes hold each service's current build (kind only).
    pub images: Vec<ImageCurrency>,
    /// Whether nothing was applied yet.
    #[serde(skip)]
    pub nothing_applied: bool,
}

impl StatusReport {
    /// Whether every node holds every service's current build.
    pub fn images_current(&self) -> bool {
        self.images.iter().all(|i| i.missing_on.is_empty() && i.error.is_none())
    }
}

/// Whether the nodes hold one service's current build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageCurrency {
    /// The current content tag (the service's name when it could not be computed).
    pub image: String,
    /// Nodes without it.
    pub missing_on: Vec<String>,
    /// Why it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Environment {
    /// The environment's state on its cluster.
    pub async fn status(&self, options: &StatusOptions) -> Result<StatusReport> {
        let config = self.config();
        let inventory = self.state.read_inventory()?;
        let (client, context) = self.connect_existing(&options.target).await?;
        let objects: Vec<ObjectRef> = inventory.objects.keys().cloned().collect();
        let status = kind_parity_cluster::status::collect(&client, &objects).await?;
        let images = if options.target.is_kind() { self.image_currency().await } else { Vec::new() };
        Ok(StatusReport {
            environment: config.name.clone(),
            context,
            ready: status.all_ready(),
            nodes: status.nodes,
            workloads: status.workloads,
            endpoints: config.endpoints(),
            ca: self.state.ca_file(),
            images,
            nothing_applied: inventory.objects.is_empty(),
        })
    }

    async fn image_currency(&self) -> Vec<ImageCurrency> {
        let specs = match crate::images::build_specs(&self.loaded, &self.state) {
            Ok(specs) => specs,
            Err(e) => {
                return vec![ImageCurrency {
                    image: "(builds)".into(),
                    missing_on: Vec::new(),
                    error: Some(e.to_string()),
                }];
            }
        };
        let mut tags: Vec<Result<String, String>> = Vec::with_capacity(specs.len());
        for spec in &specs {
            tags.push(
                kind_parity_images::build::prepare(spec).await.map(|p| p.tag().to_owned()).map_err(|e| e.to_string()),
            );
        }
        let known: Vec<String> = tags.iter().filter_map(|t| t.as_ref().ok().cloned()).collect();
        let listed = match kind_parity_images::connect().await {
            Ok(docker) => {
                kind_parity_images::load::listed(&docker, self.name(), &known).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let mut known_index = 0;
        specs
            .iter()
            .zip(tags)
            .map(|(spec, tag)| match tag {
                Err(e) => ImageCurrency { image: spec.service.clone(), missing_on: Vec::new(), error: Some(e) },
                Ok(tag) => {
                    let index = known_index;
                    known_index += 1;
                    match &listed {
                        Err(e) => ImageCurrency { image: tag, missing_on: Vec::new(), error: Some(e.clone()) },
                        Ok(nodes) => ImageCurrency {
                            image: tag,
                            missing_on: nodes.iter().filter(|(_, has)| !has[index]).map(|(n, _)| n.clone()).collect(),
                            error: None,
                        },
                    }
                }
            })
            .collect()
    }
}
