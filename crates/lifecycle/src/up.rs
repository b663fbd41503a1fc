//! `doctor`, `apply` and `up`: render, reach the cluster (a kind cluster of the environment's
//! name, or an allowed existing context), apply phase by phase with prune, wait for readiness;
//! for `up`, first the preflight checks and the image builds, last the short parity check.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::apply::{self, Change};
use kind_parity_cluster::docker::Docker;
use kind_parity_cluster::kind::Kind;
use kind_parity_cluster::preflight::{self, Check};
use kind_parity_cluster::readiness::Readiness;
use kind_parity_cluster::wait::{self, WaitOptions};
use kind_parity_probes::Report;
use serde::Serialize;

use crate::event::{CheckStatus, Event, PendingWorkload, ReadinessState, Reporter, Step};
use crate::{ApplyOptions, Environment, Error, Rendered, Result, Target, UpOptions};

/// How long `kind create cluster --wait` may take.
const KIND_WAIT: Duration = Duration::from_secs(180);

/// What [`Environment::apply`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The environment.
    pub environment: String,
    /// The folder rendered into.
    pub rendered: PathBuf,
    /// The kubeconfig context applied to.
    pub context: String,
    /// Every object applied, with what the apply did to it.
    pub applied: Vec<(ObjectRef, Change)>,
    /// Objects of the previous apply deleted because they are no longer rendered.
    pub pruned: Vec<ObjectRef>,
    /// Whether every workload was waited for and is ready (`false` with `no_wait`).
    pub ready: bool,
}

impl ApplyReport {
    /// How many objects the apply changed in this way.
    pub fn count(&self, change: Change) -> usize {
        self.applied.iter().filter(|(_, c)| *c == change).count()
    }
}

/// What [`Environment::up`] did, and where the environment is reached.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// The environment.
    pub environment: String,
    /// The apply.
    #[serde(flatten)]
    pub apply: ApplyReport,
    /// The images built and loaded (or pushed), by content tag.
    pub images: Vec<String>,
    /// The short parity check's report, unless skipped (or not waited for).
    pub parity: Option<Report>,
    /// The environment's URLs.
    pub endpoints: Vec<String>,
    /// The local CA certificate, for users to trust.
    pub ca_file: PathBuf,
    /// The stored secrets (Keycloak's admin password among them).
    pub secrets_file: PathBuf,
    /// The key of Keycloak's admin password in the secrets file, when Keycloak runs.
    pub keycloak_admin_password_key: Option<String>,
}

impl Environment {
    /// Every preflight check, rendered in memory only (the check compares kind configs): writes
    /// nothing but the secrets an environment needs anyway.
    pub async fn doctor(&self) -> Result<Vec<Check>> {
        let (secrets, _) = self.state.ensure_secrets(self.config())?;
        let kind_config = self.kind_config(&secrets)?;
        Ok(self.preflight_checks(&kind_config).await)
    }

    /// The kind config the environment renders, in memory.
    fn kind_config(&self, secrets: &kind_parity_render::Secrets) -> Result<String> {
        let config = self.config();
        let images = crate::images::image_refs(config, &[]);
        let templates = kind_parity_render::Templates::embedded()?;
        Ok(kind_parity_render::render(config, &self.loaded.inputs, secrets, &images, &templates)?.kind_config)
    }

    /// `up`'s preflight as `reset` runs it, before it deletes anything: in memory (the stored
    /// secrets, or new ones if they are missing or unreadable, since `reset` replaces them), and
    /// without the drift check, as the cluster it would compare with is the one `reset` deletes.
    pub(crate) async fn preflight_for_reset(&self, reporter: &dyn Reporter) -> Result<()> {
        let mut secrets = self.state.read_secrets().ok().flatten().unwrap_or_default();
        secrets
            .ensure(self.config(), &mut rand::rng(), time::OffsetDateTime::now_utc())
            .map_err(|source| crate::state::StateError::Secrets { path: self.state.secrets_file(), source })?;
        let kind_config = self.kind_config(&secrets)?;
        let mut checks = self.preflight_checks(&kind_config).await;
        checks.retain(|check| check.name != preflight::DRIFT);
        // Its own error: the next step is `reset` again, not `up` (nothing was deleted).
        report_preflight(&checks, reporter).map_err(|error| match error {
            Error::Preflight { failed } => Error::ResetPreflight { failed },
            other => other,
        })
    }

    async fn preflight_checks(&self, kind_config: &str) -> Vec<Check> {
        let config = self.config();
        let applied = self.state.read_applied_kind_config();
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let inputs = preflight::Inputs {
            cluster: &config.name,
            listen_address: config.listen_address,
            ports: vec![config.ports.http, config.ports.https],
            disk_path: &cwd,
            applied_kind_config: applied.as_deref(),
            rendered_kind_config: kind_config,
            workers: config.cluster.workers,
        };
        preflight::run(&inputs).await
    }

    /// Renders, creates the kind cluster when missing (after the preflight checks), builds and
    /// loads the services' images, applies, waits, and runs the short parity check.
    pub async fn up(&self, options: &UpOptions, reporter: &dyn Reporter) -> Result<UpReport> {
        let rendered = self.render_blocking().await?;
        let target = &options.apply.target;
        if target.is_kind() {
            let checks = self.preflight_checks(&rendered.plan.kind_config).await;
            report_preflight(&checks, reporter)?;
        }
        let images = match target {
            Target::Kind => {
                let mut images = crate::images::build_all(&rendered.builds, reporter).await?;
                // With the local registry, nodes pull the builds from it and the rest from theirs.
                if !self.config().registry.enabled {
                    let others: Vec<String> =
                        rendered.plan.images().into_iter().filter(|i| !images.contains(i)).collect();
                    images.extend(crate::images::present_locally(&others).await);
                }
                images
            }
            // Local images cannot reach an existing cluster's nodes (the local registry will carry them).
            Target::Existing { .. } => {
                if !rendered.builds.is_empty() {
                    let names: Vec<&str> = rendered.builds.iter().map(|b| b.spec().service.as_str()).collect();
                    reporter.report(&Event::Warning {
                        message: format!(
                            "not building {} on an existing cluster: its nodes cannot see local images; give those services a pushed `image:`",
                            names.join(", ")
                        ),
                    });
                }
                Vec::new()
            }
        };
        let (apply, client) = self.apply_rendered(&options.apply, &rendered, &images, reporter).await?;
        let config = self.config();
        let mut parity = None;
        if apply.ready && !options.skip_validate {
            // The short parity check: what `validate` runs, reported only where it is not right.
            let (secrets, _) = self.state.ensure_secrets(config)?;
            let inventory = self.state.read_inventory()?;
            let report = self
                .run_suite(
                    &secrets,
                    &inventory,
                    (client, apply.context.clone()),
                    kind_parity_probes::suite::Endpoints::Forward,
                    None,
                    false,
                    reporter,
                )
                .await?;
            if !report.passed {
                return Err(Error::ParityFailed { name: config.name.clone(), report: Box::new(report) });
            }
            reporter.report(&Event::StepFinished {
                step: Step::Validate,
                message: format!("parity check: {}", report.summary()),
            });
            parity = Some(report);
        }
        Ok(UpReport {
            environment: config.name.clone(),
            apply,
            images,
            parity,
            endpoints: config.endpoints(),
            ca_file: self.state.ca_file(),
            secrets_file: self.state.secrets_file(),
            keycloak_admin_password_key: config
                .keycloak
                .enabled
                .then(|| kind_parity_render::config::KEYCLOAK_ADMIN_PASSWORD.to_owned()),
        })
    }

    /// Renders, applies phase by phase with prune and waits: the apply step of `up`, without
    /// preflight, builds or the parity check (on kind, the cluster is still created when missing).
    pub async fn apply(&self, options: &ApplyOptions, reporter: &dyn Reporter) -> Result<ApplyReport> {
        let rendered = self.render_blocking().await?;
        Ok(self.apply_rendered(options, &rendered, &[], reporter).await?.0)
    }

    /// Ensures the cluster (kind), loads `images` into its nodes, applies, waits.
    async fn apply_rendered(
        &self,
        options: &ApplyOptions,
        rendered: &Rendered,
        images: &[String],
        reporter: &dyn Reporter,
    ) -> Result<(ApplyReport, kube::Client)> {
        let config = self.config();
        reporter.report(&Event::StepFinished {
            step: Step::Render,
            message: format!("rendered {} into {}", config.name, rendered.out.display()),
        });
        let target = self.cluster_target(&options.target);
        let mut allowed = match options.target {
            Target::Existing { .. } => Vec::new(),
            Target::Kind => {
                self.ensure_kind(rendered, options.export_kubeconfig, reporter).await?;
                if config.registry.enabled {
                    reporter.report(&Event::StepStarted {
                        step: Step::Push,
                        message: format!("pushing {} image(s) to the local registry", images.len()),
                    });
                    crate::images::push_all(config, images, reporter).await?;
                } else if !images.is_empty() {
                    reporter.report(&Event::StepStarted {
                        step: Step::Load,
                        message: format!("loading {} image(s) into the nodes of {}", images.len(), config.name),
                    });
                    crate::images::load_images(&config.name, images, reporter).await?;
                }
                // The tool created this cluster for this environment: changing it is allowed.
                vec![format!("kind-{}", config.name)]
            }
        };
        allowed.extend(config.cluster.allowed_contexts.iter().cloned());
        allowed.extend(options.allow_contexts.iter().cloned());
        let (client, context) = kind_parity_cluster::connect(&target).await?;
        kind_parity_cluster::check_allowed(&context, &allowed)?;

        if let Some(identity) = rendered.identity.as_deref() {
            kind_parity_cluster::check_identity(&client, config.namespace(), identity).await?;
        }
        let previous = self.state.read_inventory()?;
        match &previous.context {
            Some(recorded) if *recorded != context && !previous.objects.is_empty() => {
                return Err(Error::InventoryElsewhere {
                    name: config.name.clone(),
                    recorded: recorded.clone(),
                    context,
                    objects: previous.objects.len(),
                    root: self.state.root().to_path_buf(),
                });
            }
            _ => {}
        }
        let manifests = to_apply(&rendered.plan.manifests);
        let planned: Vec<ObjectRef> = apply::plan(&manifests)?.into_iter().map(|p| p.reference).collect();
        // Recorded before anything is applied: an apply that fails or is stopped (Ctrl-C drops
        // this future at any await) leaves an inventory naming everything it may have created
        // and everything it was to prune, so the next apply prunes and `down` deletes them.
        let mut recorded = previous.with_objects(&config.name, planned.iter().cloned());
        recorded.context = Some(context.clone());
        self.state.write_inventory(&recorded)?;
        let apply_options = apply::ApplyOptions { environment: config.name.clone(), force: options.force, prune: true };
        reporter.report(&Event::StepStarted { step: Step::Apply, message: format!("applying to context {context}") });
        let mut applied = apply::ApplyReport::default();
        if let Err(source) = apply::apply_into(&client, &manifests, &previous, &apply_options, &mut applied).await {
            // What was applied got its version, what was pruned is gone; the rest stays recorded.
            let mut kept = recorded;
            kept.objects.extend(applied.inventory.objects.clone());
            for pruned in &applied.pruned {
                kept.objects.remove(pruned);
            }
            self.state.write_inventory(&kept)?;
            return Err(Error::ApplyStopped {
                context,
                planned: planned.len(),
                applied: applied.applied,
                pruned: applied.pruned,
                source: Box::new(source),
            });
        }
        applied.inventory.context = Some(context.clone());
        self.state.write_inventory(&applied.inventory)?;
        reporter.report(&Event::ObjectsApplied {
            context: context.clone(),
            applied: applied.applied.len(),
            created: applied.count(Change::Created),
            configured: applied.count(Change::Configured),
            unchanged: applied.count(Change::Unchanged),
            pruned: applied.pruned.clone(),
        });
        for (class, theirs) in &applied.not_default {
            reporter.report(&Event::Info {
                step: Step::Apply,
                message: format!("{class} is not the default IngressClass: the cluster's is {theirs}"),
            });
        }
        for (object, users) in &applied.kept {
            reporter.report(&Event::Info {
                step: Step::Apply,
                message: format!("kept {object}: environment(s) {} use it too", users.join(", ")),
            });
        }
        let mut report = ApplyReport {
            environment: config.name.clone(),
            rendered: rendered.out.clone(),
            context,
            applied: applied.applied.clone(),
            pruned: applied.pruned.clone(),
            ready: false,
        };
        if options.no_wait {
            return Ok((report, client));
        }
        let objects: Vec<ObjectRef> = applied.applied.iter().map(|(r, _)| r.clone()).collect();
        let workloads = objects.iter().filter(|r| wait::is_workload(r)).count();
        reporter.report(&Event::StepStarted {
            step: Step::Wait,
            message: format!("waiting up to {}s for {workloads} workloads to be ready", options.timeout.as_secs()),
        });
        let deadline_secs = options.timeout.as_secs();
        let progress = |event: wait::Progress<'_>| {
            let event = match event {
                wait::Progress::Changed(object, readiness) => {
                    let (state, detail) = match readiness {
                        Readiness::Ready => (ReadinessState::Ready, String::new()),
                        Readiness::Waiting(why) => (ReadinessState::Waiting, why.clone()),
                        Readiness::Failed(why) => (ReadinessState::Failed, why.clone()),
                    };
                    Event::Readiness { object: object.clone(), state, detail }
                }
                wait::Progress::Pending { waited, pending } => Event::StillWaiting {
                    waited_secs: waited.as_secs(),
                    deadline_secs,
                    pending: pending
                        .iter()
                        .map(|p| PendingWorkload { object: p.object.clone(), state: p.state.clone() })
                        .collect(),
                },
            };
            reporter.report(&event);
        };
        let wait_options = WaitOptions {
            deadline: options.timeout,
            per_object: options.timeout,
            unschedulable_grace: options.unschedulable_grace,
            ..WaitOptions::default()
        };
        let depends_on = workload_dependencies(&rendered.plan.manifests)?;
        if let Err(e) = wait::wait_ready_ordered(&client, &objects, &depends_on, wait_options, &progress).await {
            if options.target.is_kind() {
                self.export_kind_logs(reporter).await;
            }
            if matches!(e, kind_parity_cluster::Error::Timeout { .. }) {
                return Err(Error::NotReady {
                    name: config.name.clone(),
                    timeout: options.timeout,
                    source: Box::new(e),
                });
            }
            return Err(e.into());
        }
        reporter.report(&Event::StepFinished { step: Step::Wait, message: format!("{} is ready", config.name) });
        report.ready = true;
        Ok((report, client))
    }

    /// Creates the environment's kind cluster when it does not exist; refuses one whose kind
    /// config differs from the rendered one.
    async fn ensure_kind(&self, rendered: &Rendered, export_kubeconfig: bool, reporter: &dyn Reporter) -> Result<()> {
        let kind = Kind::detect().await?;
        self.create_if_missing(rendered, &kind, reporter).await?;
        if export_kubeconfig {
            kind.export_kubeconfig(self.name()).await?;
            reporter.report(&Event::Info {
                step: Step::Cluster,
                message: format!("merged context kind-{} into your kubeconfig (as asked)", self.name()),
            });
        }
        Ok(())
    }

    /// Writes `kind export logs` into the state folder after a failure, and says where.
    async fn export_kind_logs(&self, reporter: &dyn Reporter) {
        let Ok(kind) = Kind::detect().await else { return };
        let logs = self.state.kind_logs();
        match kind.export_logs(self.name(), &logs).await {
            Ok(()) => reporter.report(&Event::KindLogsExported { environment: self.name().to_owned(), path: logs }),
            Err(e) => reporter.report(&Event::Warning { message: format!("exporting kind's logs failed: {e}") }),
        }
    }

    async fn create_if_missing(&self, rendered: &Rendered, kind: &Kind, reporter: &dyn Reporter) -> Result<()> {
        let name = self.name();
        let kind_config = &rendered.plan.kind_config;
        let exists = kind.clusters().await?.iter().any(|c| c == name);
        if exists && self.state.creating_marker().exists() {
            // `kind create cluster` was stopped (Ctrl-C, a crash) after its node existed: kind
            // lists the cluster, but what kind had still to do (kubeadm, the CNI, the kubeconfig)
            // may not have happened. Only a create this library started leaves the marker.
            reporter.report(&Event::Info {
                step: Step::Cluster,
                message: format!(
                    "kind cluster {name} was being created when an earlier command stopped: deleting it to create it anew"
                ),
            });
            kind.delete(name, &self.state.kubeconfig()).await?;
        } else if exists {
            if let Some(previous) = self.state.read_applied_kind_config()
                && previous != *kind_config
            {
                let differences = preflight::unified_diff(
                    &previous,
                    kind_config,
                    &self.state.applied_kind_config().display().to_string(),
                    "the rendered kind config",
                );
                let indented: Vec<String> = differences.lines().map(|l| format!("  {l}")).collect();
                return Err(Error::KindConfigChanged { name: name.to_owned(), diff: indented.join("\n") });
            }
            reporter
                .report(&Event::StepFinished { step: Step::Cluster, message: format!("kind cluster {name} exists") });
            return Ok(());
        }
        // A create killed half-way leaves node containers kind no longer lists; they block a new one.
        let (docker, _) = Docker::connect().await?;
        let leftovers = docker.node_containers(name).await?;
        if !leftovers.is_empty() {
            let list = leftovers.join(", ");
            reporter.report(&Event::Info {
                step: Step::Cluster,
                message: format!(
                    "removing {} node container(s) of a half-created cluster {name}: {list}",
                    leftovers.len()
                ),
            });
            docker.remove_containers(&leftovers).await?;
        }
        reporter.report(&Event::StepStarted {
            step: Step::Cluster,
            message: format!("creating kind cluster {name} (kind {})", kind.version()),
        });
        let config_file = rendered.out.join("kind-config.yaml");
        let kubeconfig = self.state.kubeconfig();
        self.state.mark_creating()?;
        if let Err(e) = kind.create(name, &config_file, &self.config().cluster.node_image, &kubeconfig, KIND_WAIT).await
        {
            self.export_kind_logs(reporter).await;
            return Err(e.into());
        }
        self.state.write_applied_kind_config(kind_config)?;
        self.state.unmark_creating()?;
        Ok(())
    }
}

/// Reports each check; [`Error::Preflight`] when one failed.
fn report_preflight(checks: &[Check], reporter: &dyn Reporter) -> Result<()> {
    for check in checks {
        reporter.report(&Event::from(check));
    }
    match checks.iter().filter(|c| c.failed()).count() {
        0 => Ok(()),
        failed => Err(Error::Preflight { failed }),
    }
}

/// A preflight check as the event `up` reports it with (so a caller of
/// [`Environment::doctor`] can draw its checks alike).
impl From<&Check> for Event {
    fn from(check: &Check) -> Self {
        let status = match check.status {
            preflight::Status::Pass => CheckStatus::Pass,
            preflight::Status::Warn => CheckStatus::Warn,
            preflight::Status::Fail => CheckStatus::Fail,
        };
        Event::PreflightCheck {
            name: check.name.clone(),
            status,
            found: check.found.clone(),
            fix: check.fix.clone(),
            recreate: check.recreate,
        }
    }
}

/// The rendered manifests as the cluster layer applies them (it depends on no renderer).
fn to_apply(manifests: &[kind_parity_render::Manifest]) -> Vec<apply::Manifest> {
    manifests
        .iter()
        .map(|m| apply::Manifest { file: m.file.clone(), order: m.phase.order(), content: m.content.clone() })
        .collect()
}

/// Each workload's dependencies as workloads: a manifest's `depends_on` names components
/// (`postgres`) and services (`api`, whose manifest is the component `app-api`).
fn workload_dependencies(manifests: &[kind_parity_render::Manifest]) -> Result<HashMap<ObjectRef, Vec<ObjectRef>>> {
    let planned = apply::plan(&to_apply(manifests))?;
    let by_file: HashMap<&str, &kind_parity_render::Manifest> =
        manifests.iter().map(|m| (m.file.as_str(), m)).collect();
    let mut by_component: HashMap<&str, Vec<ObjectRef>> = HashMap::new();
    for p in planned.iter().filter(|p| wait::is_workload(&p.reference)) {
        by_component.entry(by_file[p.file.as_str()].component.as_str()).or_default().push(p.reference.clone());
    }
    let of = |name: &str| -> Vec<ObjectRef> {
        by_component.get(name).or_else(|| by_component.get(format!("app-{name}").as_str())).cloned().unwrap_or_default()
    };
    let mut map = HashMap::new();
    for p in planned.iter().filter(|p| wait::is_workload(&p.reference)) {
        let manifest = by_file[p.file.as_str()];
        let deps: Vec<ObjectRef> =
            manifest.depends_on.iter().flat_map(|d| of(d)).filter(|d| *d != p.reference).collect();
        if !deps.is_empty() {
            map.insert(p.reference.clone(), deps);
        }
    }
    Ok(map)
}
