//! `down` and `reset`: delete the cluster (kind) or every object the tool applied (existing),
//! the `kind` network when nothing else uses it, and the environment's state folder. Nothing
//! else: other clusters, the user's kubeconfig and images stay.

use std::path::PathBuf;

use kind_parity_cluster::apply;
use kind_parity_cluster::docker::Docker;
use kind_parity_cluster::kind::Kind;
use serde::Serialize;

use crate::event::{Event, Reporter, Step};
use crate::{DownOptions, Environment, Error, Result, Target, UpOptions, UpReport};

/// What [`Environment::down`] deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// The environment.
    pub environment: String,
    /// Whether a kind cluster was deleted (kind target).
    pub deleted_cluster: bool,
    /// How many objects were deleted (existing clusters).
    pub deleted_objects: usize,
    /// Shared objects (the ingress) left because other environments of the cluster use them.
    pub kept_shared: Vec<kind_parity_cluster::ObjectRef>,
    /// The node containers removed through Docker (a half-created cluster, or no kind binary).
    pub removed_containers: Vec<String>,
    /// Whether the local registry was removed.
    pub removed_registry: bool,
    /// Whether the `kind` network was removed (nothing else used it).
    pub removed_network: bool,
    /// The state folder, when it existed and was removed.
    pub removed_state: Option<PathBuf>,
}

impl Environment {
    /// Deletes the environment. It does not ask: a caller that wants a confirmation asks first.
    pub async fn down(&self, options: &DownOptions, reporter: &dyn Reporter) -> Result<DownReport> {
        let name = self.name().to_owned();
        let mut report = DownReport { environment: name.clone(), ..DownReport::default() };
        match &options.target {
            Target::Kind => {
                self.check_applied_here(reporter)?;
                self.down_kind(&mut report, reporter).await?;
            }
            Target::Existing { .. } => {
                let previous = self.state.read_inventory()?;
                let target = self.cluster_target(&options.target);
                let (client, context) = kind_parity_cluster::connect(&target).await?;
                let mut allowed = self.config().cluster.allowed_contexts.clone();
                allowed.extend(options.allow_contexts.iter().cloned());
                kind_parity_cluster::check_allowed(&context, &allowed)?;
                // The label below is the name's, which another state folder's environment of the
                // same name carries too: its stamped namespace says whose they are. (With no
                // stored secrets, this state folder is gone and the user asked for the name's.)
                if let Some(identity) = self.state.read_secrets()?.and_then(|s| s.identity()) {
                    kind_parity_cluster::check_identity(&client, self.config().namespace(), &identity).await?;
                }
                // The inventory names what the last apply applied; the environment's label finds
                // what it does not (an inventory deleted by a kind `down`, or never kept by an
                // apply that failed in an older version).
                let owned = apply::find_owned(&client, &name).await?;
                let unrecorded = owned.iter().filter(|o| !previous.objects.contains_key(&o.reference)).count();
                if unrecorded > 0 {
                    reporter.report(&Event::Info {
                        step: Step::Delete,
                        message: format!(
                            "found {unrecorded} object(s) of {name} by its label that its inventory does not name"
                        ),
                    });
                }
                let all = previous.with_objects(&name, owned.into_iter().map(|o| o.reference));
                let apply_options = apply::ApplyOptions { environment: name.clone(), force: false, prune: true };
                let applied = apply::apply(&client, &[], &all, &apply_options).await?;
                report.deleted_objects = applied.pruned.len();
                // The shared ingress stays while another environment of the cluster uses it.
                for (object, users) in &applied.kept {
                    reporter.report(&Event::Info {
                        step: Step::Delete,
                        message: format!("kept {object}: environment(s) {} use it too", users.join(", ")),
                    });
                }
                report.kept_shared = applied.kept.iter().map(|(object, _)| object.clone()).collect();
                reporter.report(&Event::StepFinished {
                    step: Step::Delete,
                    message: format!("deleted {} objects from context {context}", applied.pruned.len()),
                });
                // The state folder goes only once nothing the environment made is left: it is
                // what the next `down` would need to find the rest.
                let remaining = apply::find_owned(&client, &name).await?;
                if !remaining.is_empty() {
                    return Err(Error::ObjectsRemain {
                        name,
                        context,
                        remaining: remaining.into_iter().map(|o| (o.reference, o.deleting)).collect(),
                        root: self.state.root().to_path_buf(),
                    });
                }
            }
        }
        if self.state.remove()? {
            let root = self.state.root().to_path_buf();
            reporter.report(&Event::Info { step: Step::Delete, message: format!("removed {}", root.display()) });
            report.removed_state = Some(root);
        }
        Ok(report)
    }

    /// Refuses a kind `down` while the inventory says the environment's objects are in another
    /// cluster (`apply --cluster existing`): deleting the state folder would forget them there.
    fn check_applied_here(&self, reporter: &dyn Reporter) -> Result<()> {
        let inventory = match self.state.read_inventory() {
            Ok(inventory) => inventory,
            Err(e) => {
                // Only a hint of where objects are; the kind cluster is deleted whatever it says.
                reporter
                    .report(&Event::Warning { message: format!("{e}: not checking where its objects were applied") });
                return Ok(());
            }
        };
        let kind_context = format!("kind-{}", self.name());
        match inventory.context {
            Some(context) if context != kind_context && !inventory.objects.is_empty() => Err(Error::AppliedElsewhere {
                name: self.name().to_owned(),
                context,
                objects: inventory.objects.len(),
                root: self.state.root().to_path_buf(),
            }),
            _ => Ok(()),
        }
    }

    /// `down`, then `up` from zero. On kind, `up`'s preflight runs first: a reset that could
    /// not create the cluster again must not delete the one there is, nor the state and the CA
    /// the user trusts.
    pub async fn reset(&self, options: &UpOptions, reporter: &dyn Reporter) -> Result<UpReport> {
        if options.apply.target.is_kind() {
            self.preflight_for_reset(reporter).await?;
        }
        let down =
            DownOptions { target: options.apply.target.clone(), allow_contexts: options.apply.allow_contexts.clone() };
        self.down(&down, reporter).await?;
        self.up(options, reporter).await
    }

    /// `down` on kind: the cluster, leftover node containers, our local registry, the unused
    /// `kind` network. Without the kind binary, the cluster is still what kind's Docker provider
    /// made of it (node containers labelled with its name, their volumes), so Docker removes it;
    /// only when Docker does not answer either and the state says `up` created a cluster is there
    /// something this cannot delete, and the error names it (the state folder stays, with its
    /// kubeconfig).
    async fn down_kind(&self, report: &mut DownReport, reporter: &dyn Reporter) -> Result<()> {
        let name = self.name();
        let info = |message: String| reporter.report(&Event::Info { step: Step::Delete, message });
        let kind = match Kind::detect().await {
            Ok(kind) => Some(kind),
            Err(kind_parity_cluster::Error::KindMissing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let docker = match Docker::connect().await {
            Ok((docker, _)) => Some(docker),
            Err(source) if kind.is_none() && self.state.created_a_cluster() => {
                return Err(Error::CannotDelete {
                    name: name.to_owned(),
                    root: self.state.root().to_path_buf(),
                    source: Box::new(source),
                });
            }
            // No kind, no Docker, and `up` never created a cluster here: nothing of it can be running.
            Err(_) if kind.is_none() => {
                info(format!("kind is not installed and Docker does not answer: {name} has no cluster"));
                None
            }
            Err(e) => return Err(e.into()),
        };
        match (&kind, &docker) {
            (Some(kind), _) => {
                if kind.clusters().await?.iter().any(|c| c == name) {
                    reporter.report(&Event::StepStarted {
                        step: Step::Delete,
                        message: format!("deleting kind cluster {name}"),
                    });
                    kind.delete(name, &self.state.kubeconfig()).await?;
                    report.deleted_cluster = true;
                } else {
                    info(format!("kind cluster {name} does not exist"));
                }
            }
            (None, Some(_)) => {
                info(format!("kind is not installed: removing what is left of {name} through Docker"));
            }
            (None, None) => {}
        }
        let Some(docker) = docker else { return Ok(()) };
        let leftovers = docker.node_containers(name).await?;
        if !leftovers.is_empty() {
            info(format!("removing node containers of {name}: {}", leftovers.join(", ")));
            docker.remove_containers(&leftovers).await?;
            report.removed_containers = leftovers;
        }
        // The registry goes only if this tool created it (its label says so).
        let images_docker = kind_parity_images::connect().await?;
        let registry = crate::images::registry(self.config());
        if kind_parity_images::registry::remove(&images_docker, &registry).await? {
            info(format!("removed the local registry {}", registry.name));
            report.removed_registry = true;
        }
        if docker.remove_kind_network_if_unused().await? {
            info("removed the kind network (nothing else used it)".to_owned());
            report.removed_network = true;
        }
        Ok(())
    }
}
