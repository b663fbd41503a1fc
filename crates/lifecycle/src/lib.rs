//! kind-parity-lifecycle: the lifecycle of one environment as a library.
//!
//! An [`Environment`] is opened from a loaded config ([`kind_parity_render::Loaded`]) and a
//! state folder. Its async methods ([`Environment::up`], [`apply`](Environment::apply),
//! [`status`](Environment::status), [`validate`](Environment::validate),
//! [`logs`](Environment::logs), [`down`](Environment::down), [`reset`](Environment::reset)) take
//! option structs with [`Default`], send what they do as [`Event`]s to the caller's
//! [`Reporter`], and return typed reports or an [`Error`] whose [`Error::hint`] says what to do
//! next. Nothing here prints, and nothing builds a runtime: the methods run on the caller's tokio
//! runtime (a multi-threaded one: renders run on its blocking threads). Dropping a method's
//! future cancels the command; every write to the state folder is atomic, so a cancelled command
//! leaves it as it was or as it was meant to be.
//!
//! The state folder's layout is [`state`]'s alone; the image references the manifests name come
//! from [`images::image_refs`] for `render` and `up` alike.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use kind_parity_lifecycle::{Environment, Event, UpOptions, ValidateOptions};
//! use kind_parity_render::LoadOptions;
//!
//! let options = LoadOptions::from_process(None, std::env::current_dir()?, Vec::new());
//! let environment = Environment::open(kind_parity_render::load(&options)?, ".kind-parity");
//! let reporter = |event: &Event| tracing::info!(?event);
//! let up = environment.up(&UpOptions::default(), &reporter).await?;
//! println!("{} is up on {}", up.environment, up.apply.context);
//! let report = environment.validate(&ValidateOptions::default(), &reporter).await?;
//! assert!(report.passed);
//! # Ok(()) }
//! ```

mod down;
mod error;
mod event;
pub mod images;
pub mod init;
mod logs;
pub mod state;
mod status;
mod up;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kind_parity_images::build::Prepared;
use kind_parity_render::{Config, Loaded, Plan, Templates};

pub use down::DownReport;
pub use error::{Error, Hint, Result};
pub use event::{CheckStatus, Event, NodeImage, PendingWorkload, ReadinessState, Reporter, Silent, Step};
pub use kind_parity_cluster::ObjectRef;
pub use kind_parity_cluster::preflight::Check;
pub use kind_parity_probes::{Outcome, ProbeResult, Report};
pub use logs::LogsReport;
pub use state::{Holder, Lock, State};
pub use status::{ImageCurrency, StatusReport};
pub use up::{ApplyReport, UpReport};

/// How often a command waiting for an environment's lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// Which cluster a command talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Target {
    /// The kind cluster named after the environment, through the state folder's kubeconfig
    /// (`up` creates it when missing).
    #[default]
    Kind,
    /// A cluster reachable through a kubeconfig context (k3d, a dev cluster…).
    Existing {
        /// The kubeconfig; `KUBECONFIG`, then `~/.kube/config` when unset.
        kubeconfig: Option<PathBuf>,
        /// The context; the kubeconfig's current one when unset.
        context: Option<String>,
    },
}

impl Target {
    /// Whether this is the environment's kind cluster.
    pub fn is_kind(&self) -> bool {
        matches!(self, Self::Kind)
    }
}

/// Options of [`Environment::render`].
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// The output folder; the state folder's `rendered/` when unset.
    pub out: Option<PathBuf>,
    /// Templates that replace the embedded ones, file by file.
    pub templates: Option<PathBuf>,
}

/// Options of [`Environment::apply`] (and of the apply inside [`Environment::up`]).
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The cluster.
    pub target: Target,
    /// Contexts that may be changed besides `cluster.allowed_contexts` (the kind cluster the
    /// environment created always may).
    pub allow_contexts: Vec<String>,
    /// How long to wait for every workload to be ready.
    pub timeout: Duration,
    /// How long pods may stay unschedulable before that is an error.
    pub unschedulable_grace: Duration,
    /// Take ownership of fields another field manager owns.
    pub force: bool,
    /// Apply without waiting for readiness (and, for `up`, without the parity check).
    pub no_wait: bool,
    /// Also merge the kind cluster's context into the user's kubeconfig.
    pub export_kubeconfig: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            target: Target::Kind,
            allow_contexts: Vec::new(),
            timeout: Duration::from_secs(600),
            unschedulable_grace: Duration::from_secs(60),
            force: false,
            no_wait: false,
            export_kubeconfig: false,
        }
    }
}

/// Options of [`Environment::up`] and [`Environment::reset`].
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// How to apply.
    pub apply: ApplyOptions,
    /// Skip the short parity check once everything is ready.
    pub skip_validate: bool,
}

/// Options of [`Environment::down`].
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// The cluster.
    pub target: Target,
    /// Contexts that may be changed besides `cluster.allowed_contexts` (existing clusters).
    pub allow_contexts: Vec<String>,
}

/// Options of [`Environment::status`].
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// The cluster.
    pub target: Target,
}

/// Options of [`Environment::validate`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// The cluster.
    pub target: Target,
    /// Where the ingress's HTTPS port is reached; `listen_address:ports.https` when unset.
    pub ingress: Option<SocketAddr>,
    /// Dependencies reached at `host:port` instead of through a port-forward.
    pub addresses: Addresses,
}

/// `host:port` addresses of the dependencies, for [`ValidateOptions`]; each unset one is
/// reached through a port-forward.
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    /// Postgres.
    pub postgres: Option<String>,
    /// Redis.
    pub redis: Option<String>,
    /// NATS.
    pub nats: Option<String>,
    /// Temporal's frontend.
    pub temporal: Option<String>,
}

/// Options of [`Environment::logs`].
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// The cluster.
    pub target: Target,
    /// Where to write the bundle; `<state>/diagnostics/<UTC time>` when unset.
    pub out: Option<PathBuf>,
}

/// The result of [`Environment::render`].
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The folder written.
    pub out: PathBuf,
    /// The files written, relative to it.
    pub files: Vec<String>,
    /// What was rendered.
    pub plan: Plan,
    /// The services' image builds, their contexts read and tagged by content (the tags the
    /// manifests reference).
    pub builds: Vec<Prepared>,
    /// The environment's identity ([`kind_parity_render::Secrets::identity`]), stamped on its
    /// namespace; `apply` refuses a namespace stamped by another state folder.
    pub identity: Option<String>,
}

/// One environment: its config and its state folder.
#[derive(Debug, Clone)]
pub struct Environment {
    loaded: Loaded,
    state: State,
}

impl Environment {
    /// The environment `loaded` describes, its state in `<state_dir>/<name>/`.
    pub fn open(loaded: Loaded, state_dir: impl AsRef<Path>) -> Self {
        let state = State::new(state_dir.as_ref(), &loaded.config.name);
        Self { loaded, state }
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        &self.loaded.config.name
    }

    /// The effective config.
    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// The loaded config, with its origins and inputs.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// The state folder.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Takes the environment's lock for `command` (`up`, `down`…), waiting up to `timeout` while
    /// another process holds it (`waiting` is called once, with who that is, when it must wait).
    /// Two commands that change one environment at once would interleave their writes to the
    /// cluster and the state folder: a caller that runs commands concurrently takes this first
    /// and holds the [`Lock`] until the command ends. Read-only commands need none.
    pub async fn lock(&self, command: &str, timeout: Duration, waiting: impl FnOnce(&Holder)) -> Result<Lock> {
        let started = Instant::now();
        let mut waiting = Some(waiting);
        loop {
            match self.lock_once(command, started, timeout, &mut waiting)? {
                Some(lock) => return Ok(lock),
                None => tokio::time::sleep(LOCK_POLL).await,
            }
        }
    }

    /// [`Environment::lock`] for a caller without an async runtime (`render`).
    pub fn lock_blocking(&self, command: &str, timeout: Duration, waiting: impl FnOnce(&Holder)) -> Result<Lock> {
        let started = Instant::now();
        let mut waiting = Some(waiting);
        loop {
            match self.lock_once(command, started, timeout, &mut waiting)? {
                Some(lock) => return Ok(lock),
                None => std::thread::sleep(LOCK_POLL),
            }
        }
    }

    /// One try of the lock: the lock, `None` to try again after [`LOCK_POLL`], or
    /// [`Error::Busy`] once `timeout` has passed since `started`.
    fn lock_once(
        &self,
        command: &str,
        started: Instant,
        timeout: Duration,
        waiting: &mut Option<impl FnOnce(&Holder)>,
    ) -> Result<Option<Lock>> {
        match self.state.try_lock(command)? {
            state::TryLock::Acquired(lock) => Ok(Some(lock)),
            state::TryLock::Busy(holder) if started.elapsed() >= timeout => Err(Error::Busy {
                name: self.name().to_owned(),
                holder,
                lock_file: self.state.lock_file(),
                waited: started.elapsed(),
            }),
            state::TryLock::Busy(holder) => {
                if let Some(waiting) = waiting.take() {
                    waiting(&holder);
                }
                Ok(None)
            }
        }
    }

    /// Ensures the secrets, reads and tags every build context, renders and writes the plan
    /// (atomically: a failed render leaves the folder as it was). Blocking: it reads every build
    /// context; async callers run it on a blocking thread (as `up` does).
    pub fn render(&self, options: &RenderOptions) -> Result<Rendered> {
        let loaded = &self.loaded;
        let state = &self.state;
        let (secrets, changes) = state.ensure_secrets(&loaded.config)?;
        if !changes.generated.is_empty() {
            tracing::info!(
                count = changes.generated.len(),
                "generated secrets (stored in {}, mode 0600)",
                state.secrets_file().display()
            );
        }
        for (name, why) in &changes.replaced {
            tracing::warn!("replaced the stored secret {name} ({why}); the components that read it restart");
        }
        if let Some(reason) = &changes.issued_cert {
            tracing::info!("issued the ingress certificate ({reason})");
        }
        let templates = match &options.templates {
            Some(dir) => {
                Templates::with_overrides(dir).map_err(|source| Error::Templates { dir: dir.clone(), source })?
            }
            None => Templates::embedded()?,
        };
        // Each context is read and hashed here, once: `up` builds from these.
        let builds = images::build_specs(loaded, state)?
            .iter()
            .map(kind_parity_images::build::BuildSpec::prepare)
            .collect::<Result<Vec<_>, _>>()?;
        let images = images::image_refs(&loaded.config, &builds);
        let plan = kind_parity_render::render(&loaded.config, &loaded.inputs, &secrets, &images, &templates)?;
        let mut write = state::WriteOptions { adopt_unmarked: options.out.is_none(), ..Default::default() };
        write.protected.extend(loaded.files.iter().map(|file| (file.clone(), "config file")));
        write.protected.push((state.secrets_file(), "secrets file"));
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            action: "reading the working directory",
            path: PathBuf::from("."),
            source,
        })?;
        write.protected.push((cwd, "working directory"));
        let out = options.out.clone().unwrap_or_else(|| state.rendered());
        let files = state::write_plan(&plan, &out, &write)?;
        Ok(Rendered { out, files, plan, builds, identity: secrets.identity() })
    }

    /// [`Environment::render`] into the state folder on a blocking thread: it reads and hashes
    /// every build context and writes files, work that must not hold an async worker.
    async fn render_blocking(&self) -> Result<Rendered> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.render(&RenderOptions::default())).await {
            Ok(rendered) => rendered,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// The kubeconfig context a command talks to.
    fn cluster_target(&self, target: &Target) -> kind_parity_cluster::Target {
        match target {
            Target::Existing { kubeconfig, context } => {
                kind_parity_cluster::Target { kubeconfig: kubeconfig.clone(), context: context.clone() }
            }
            Target::Kind => kind_parity_cluster::Target {
                kubeconfig: Some(self.state.kubeconfig()),
                context: Some(format!("kind-{}", self.name())),
            },
        }
    }

    /// Connects to the cluster a read-only command (`status`, `validate`) looks at. On kind, the
    /// environment's kubeconfig is written by `up` when it creates the cluster: without it,
    /// there is no cluster yet (only `render` ran, or `up` failed first), which is what the user
    /// needs to hear, not that a file is missing.
    async fn connect_existing(&self, target: &Target) -> Result<(kube::Client, String)> {
        if target.is_kind() {
            let kubeconfig = self.state.kubeconfig();
            if let Err(e) = std::fs::metadata(&kubeconfig)
                && e.kind() == std::io::ErrorKind::NotFound
            {
                return Err(Error::NoCluster { name: self.name().to_owned(), kubeconfig });
            }
        }
        Ok(kind_parity_cluster::connect(&self.cluster_target(target)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(state_dir: &Path) -> Environment {
        demo_with(state_dir, &[])
    }

    /// The embedded demo with `--set path=value` overrides.
    fn demo_with(state_dir: &Path, overrides: &[(&str, &str)]) -> Environment {
        let overrides = overrides
            .iter()
            .map(|(path, value)| kind_parity_render::Override {
                flag: format!("--set {path}={value}"),
                path: (*path).into(),
                value: (*value).into(),
            })
            .collect();
        let loaded = kind_parity_render::load(&kind_parity_render::LoadOptions {
            dir: state_dir.to_path_buf(),
            overrides,
            ..Default::default()
        })
        .unwrap();
        Environment::open(loaded, state_dir.join(".kind-parity"))
    }

    #[tokio::test]
    async fn reset_runs_the_preflight_before_it_deletes_anything() {
        // Regression (issue 12): reset deleted the state folder (the CA users trust), then up's preflight failed.
        let dir = tempfile::tempdir().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        let environment = demo_with(dir.path(), &[("listen_address", "127.0.0.1"), ("ports.http", &port)]);
        environment.state().ensure_secrets(environment.config()).unwrap();
        let secrets = std::fs::read(environment.state().secrets_file()).unwrap();
        let ca = std::fs::read(environment.state().ca_file()).unwrap();

        let error = environment.reset(&UpOptions::default(), &Silent).await.unwrap_err();
        assert!(matches!(error, Error::ResetPreflight { .. }), "{error:?}");
        // Regression (issue 12): its hint said to run `up` again, which recreates nothing.
        assert_eq!(error.hint(), Some(Hint::FixPreflightThenReset));
        assert_eq!(std::fs::read(environment.state().secrets_file()).unwrap(), secrets);
        assert_eq!(std::fs::read(environment.state().ca_file()).unwrap(), ca);
    }

    #[tokio::test]
    async fn a_second_lock_waits_then_names_the_holder() {
        // Regression (issue 12): two commands on one environment interleaved.
        let dir = tempfile::tempdir().unwrap();
        let environment = demo(dir.path());
        let _held = environment.lock("up", Duration::ZERO, |_| {}).await.unwrap();
        let mut waited_for = None;
        let started = Instant::now();
        let error = environment
            .lock("down", Duration::from_millis(300), |holder| waited_for = Some(holder.clone()))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let holder = Holder { pid: Some(std::process::id()), command: Some("up".into()) };
        assert_eq!(waited_for, Some(holder.clone()));
        let Error::Busy { holder: busy, lock_file, .. } = &error else { panic!("{error:?}") };
        assert_eq!(*busy, holder);
        assert_eq!(*lock_file, dir.path().join(".kind-parity").join(format!("{}.lock", environment.name())));
        assert!(
            error.to_string().starts_with(&format!(
                "environment {} is busy: `up` (pid {}) holds {}",
                environment.name(),
                std::process::id(),
                lock_file.display()
            )),
            "{error}"
        );
        assert_eq!(error.hint(), Some(Hint::Busy { pid: Some(std::process::id()) }));
    }

    #[tokio::test]
    async fn a_kind_down_keeps_the_state_of_objects_applied_to_another_cluster() {
        // Regression (issue 12): a kind `down` after `apply --cluster existing` deleted the inventory of what it applied there.
        let dir = tempfile::tempdir().unwrap();
        let environment = demo(dir.path());
        let state = environment.state();
        state.ensure_secrets(environment.config()).unwrap();
        let mut inventory = kind_parity_cluster::apply::Inventory {
            environment: environment.name().into(),
            context: Some("shared".into()),
            ..Default::default()
        };
        let secret = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("kp".into()),
            name: "s".into(),
        };
        inventory.objects.insert(secret, "1".into());
        state.write_inventory(&inventory).unwrap();

        let error = environment.down(&DownOptions::default(), &Silent).await.unwrap_err();
        assert!(
            matches!(&error, Error::AppliedElsewhere { context, objects: 1, .. } if context == "shared"),
            "{error:?}"
        );
        assert_eq!(error.hint(), Some(Hint::DownExisting { context: "shared".into() }));
        assert_eq!(state.read_inventory().unwrap(), inventory);
    }

    #[tokio::test]
    async fn a_dropped_lock_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let environment = demo(dir.path());
        drop(environment.lock("up", Duration::ZERO, |_| {}).await.unwrap());
        environment.lock_blocking("render", Duration::ZERO, |_| panic!("nobody holds it")).unwrap();
    }

    #[test]
    fn events_are_json_objects_named_by_their_event() {
        let event = Event::StepStarted { step: Step::Apply, message: "applying to context kind-demo".into() };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "step_started", "step": "apply", "message": "applying to context kind-demo"})
        );
        let event = Event::ImageBuilt { service: "api".into(), tag: "api:kp-0123456789ab".into(), built: false };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "image_built", "service": "api", "tag": "api:kp-0123456789ab", "built": false})
        );
    }

    #[test]
    fn a_context_that_is_not_allowed_hints_at_allowing_it_and_its_message_names_no_flag() {
        // Regression (issue 11): the cluster crate's message named the CLI's `--allow-context`.
        let error = Error::from(kind_parity_cluster::Error::ContextNotAllowed { context: "prod".into() });
        assert_eq!(error.hint(), Some(Hint::AllowContext { context: "prod".into() }));
        assert_eq!(error.to_string(), "context `prod` is not allowed for commands that change the cluster");
        assert!(!error.is_usage());
    }

    #[test]
    fn an_inventory_elsewhere_hints_at_the_down_that_empties_it() {
        let elsewhere = |recorded: &str| Error::InventoryElsewhere {
            name: "kp-demo".into(),
            recorded: recorded.into(),
            context: "prod-like".into(),
            objects: 3,
            root: PathBuf::from(".kind-parity/kp-demo"),
        };
        assert_eq!(elsewhere("kind-kp-demo").hint(), Some(Hint::DownKind));
        assert_eq!(elsewhere("shared").hint(), Some(Hint::DownExisting { context: "shared".into() }));
    }

    #[test]
    fn an_object_that_is_not_the_environments_hints_at_what_frees_it_not_at_force() {
        // Regression (issue 12): the advice was `--force`, which took over other tools' and environments' objects.
        let object = kind_parity_cluster::ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "IngressClass".into(),
            namespace: None,
            name: "traefik".into(),
        };
        let not_ours = Error::from(kind_parity_cluster::Error::NotOurs {
            object: Box::new(object.clone()),
            managers: vec!["helm-controller".into()],
            environment: "kp-demo".into(),
        });
        assert_eq!(
            not_ours.hint(),
            Some(Hint::NotOurs { object: "IngressClass traefik".into(), environment: "kp-demo".into() })
        );
        let theirs =
            Error::from(kind_parity_cluster::Error::AnotherEnvironments { object, environment: "kp-b".into() });
        assert_eq!(theirs.hint(), Some(Hint::AnotherEnvironments { environment: "kp-b".into() }));
    }

    #[test]
    fn another_state_folders_namespace_hints_at_another_name_and_names_both_identities() {
        let error = Error::from(kind_parity_cluster::Error::OtherEnvironment {
            namespace: "kp-demo".into(),
            ours: "sha256:aa".into(),
            theirs: "sha256:bb".into(),
        });
        assert_eq!(error.hint(), Some(Hint::OtherEnvironment { namespace: "kp-demo".into() }));
        let message = error.to_string();
        assert!(message.contains("sha256:aa") && message.contains("sha256:bb"), "{message}");
    }

    /// A pod of `api` stuck for `reason`, as the cluster crate diagnoses it.
    fn stuck(reason: &str) -> kind_parity_cluster::diagnose::Diagnosis {
        kind_parity_cluster::diagnose::Diagnosis {
            object: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("kp".into()),
                name: "api".into(),
            },
            pod: "api-1".into(),
            container: Some("api".into()),
            reason: reason.into(),
            message: String::new(),
            events: vec![],
            logs: vec![],
            hint: "what the diagnosis says to check".into(),
        }
    }

    #[test]
    fn the_layers_errors_name_no_command_and_the_hint_says_what_to_run() {
        // Regression (issue 11): the layers' messages named `kind-parity build`, `up`, `render`.
        let cases = [
            (Error::from(kind_parity_images::Error::ImageNotFound { image: "api:kp-1".into() }), Hint::BuildOrPull),
            (
                Error::from(kind_parity_images::Error::NoNodes {
                    cluster: "demo".into(),
                    label: "io.x-k8s.kind.cluster",
                }),
                Hint::UpCreatesCluster,
            ),
            (Error::from(kind_parity_render::Error::MissingSecret { name: "session-key".into() }), Hint::Render),
            (Error::from(kind_parity_probes::Error::BadCa("no PEM".into())), Hint::Render),
            (Error::from(kind_parity_probes::Error::NotGenerated { what: "local CA".into() }), Hint::Render),
            (Error::from(kind_parity_cluster::Error::Stuck(Box::new(stuck("ErrImageNeverPull")))), Hint::LoadImages),
            (Error::from(kind_parity_cluster::Error::Stuck(Box::new(stuck("CrashLoopBackOff")))), Hint::Drift),
            (
                Error::from(kind_parity_cluster::Error::Conflict {
                    object: ObjectRef {
                        api_version: "v1".into(),
                        kind: "ConfigMap".into(),
                        namespace: Some("kp".into()),
                        name: "env".into(),
                    },
                    message: "conflict with \"kubectl\"".into(),
                }),
                Hint::Force,
            ),
        ];
        for (error, hint) in cases {
            let message = error.to_string();
            assert!(!message.contains("kind-parity") && !message.contains("--"), "{message}");
            assert_eq!(error.hint(), Some(hint), "{message}");
        }
    }

    #[test]
    fn the_state_folder_is_named_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let environment = demo(dir.path());
        let root = dir.path().join(".kind-parity").join(environment.name());
        assert_eq!(environment.state().root(), root);
        assert_eq!(environment.state().kubeconfig(), root.join("kubeconfig"));
        assert_eq!(environment.state().inventory_file(), root.join("inventory.json"));
        assert_eq!(environment.state().applied_kind_config(), root.join("kind-config.applied.yaml"));
    }

    #[test]
    fn render_names_each_built_image_by_its_contexts_content() {
        let dir = tempfile::tempdir().unwrap();
        let environment = demo(dir.path());
        let rendered = environment.render(&RenderOptions::default()).unwrap();
        assert!(!rendered.builds.is_empty());
        for build in &rendered.builds {
            let tag = build.tag();
            assert!(
                rendered.plan.manifests.iter().any(|m| m.content.contains(&format!("image: \"{tag}\""))),
                "no manifest names {tag}"
            );
        }
        assert_eq!(rendered.out, environment.state().rendered());
        assert!(rendered.out.join(state::MARKER).is_file());
    }

    #[test]
    fn the_renderers_default_node_image_is_the_cluster_layers_pin() {
        // Each layer names it without depending on the other; the lifecycle holds both.
        assert_eq!(kind_parity_render::config::DEFAULT_NODE_IMAGE, kind_parity_cluster::kind::NODE_IMAGE);
        assert_eq!(kind_parity_render::config::DEFAULT_NODE_IMAGE_KIND, kind_parity_cluster::kind::MINIMUM.to_string());
    }
}
