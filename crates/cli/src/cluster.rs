//! `apply` and `up`: render, reach the cluster (a kind cluster of the environment's name, or an
//! allowed existing context), apply phase by phase with prune, wait for readiness.

use std::time::Duration;

use anyhow::{Context as _, Result};
use kind_parity_cluster::apply::{self, ApplyOptions, Change, Inventory};
use kind_parity_cluster::docker::Docker;
use kind_parity_cluster::kind::Kind;
use kind_parity_cluster::preflight;
use kind_parity_cluster::readiness::Readiness;
use kind_parity_cluster::wait::{self, WaitOptions};
use kind_parity_cluster::{ObjectRef, Target};

use kind_parity_render::Config;

use crate::args::{ClusterArgs, ClusterKind, DownArgs, GlobalArgs, TargetArgs};
use crate::state::State;
use crate::{Exit, Rendered, render_to};

/// The kind config the environment's cluster was created from, in its state folder.
const APPLIED_KIND_CONFIG: &str = "kind-config.applied.yaml";
/// In the state folder while `kind create cluster` runs: a cluster that exists with it present
/// was left half-created by an interrupted command, and the next `up` recreates it.
const CREATING_MARKER: &str = "kind-create.pending";

/// How long `kind create cluster --wait` may take.
const KIND_WAIT: Duration = Duration::from_secs(180);

/// [`render_to`] the state folder on a blocking thread: it reads and hashes every build context
/// and writes files, work that must not hold an async worker.
async fn render_blocking(global: &GlobalArgs) -> Result<(kind_parity_render::Loaded, Rendered)> {
    let global = global.clone();
    match tokio::task::spawn_blocking(move || render_to(&global, None, None)).await {
        Ok(rendered) => rendered,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

pub(crate) async fn up(global: &GlobalArgs, args: &ClusterArgs) -> Result<()> {
    let (loaded, rendered) = render_blocking(global).await?;
    if args.target.cluster == ClusterKind::Kind {
        let failed = preflight(global, &loaded.config, &rendered.state, &rendered.plan.kind_config).await;
        if failed > 0 {
            return Err(Exit {
                message: format!("{failed} preflight check(s) failed"),
                help: Some("fix what the lines above say, then run `kind-parity up` again".into()),
                code: 1,
            }
            .into());
        }
    }
    let images = match args.target.cluster {
        ClusterKind::Kind => {
            let mut images = crate::images::build_all(global, &rendered.builds).await?;
            // With the local registry, nodes pull the builds from it and the rest from theirs.
            if !loaded.config.registry.enabled {
                let others: Vec<String> = rendered.plan.images().into_iter().filter(|i| !images.contains(i)).collect();
                images.extend(crate::images::present_locally(&others).await);
            }
            images
        }
        // Local images cannot reach an existing cluster's nodes (the local registry will carry them).
        ClusterKind::Existing => {
            if !rendered.builds.is_empty() && !global.quiet {
                let names: Vec<&str> = rendered.builds.iter().map(|b| b.spec().service.as_str()).collect();
                eprintln!(
                    "warning: not building {} on an existing cluster: its nodes cannot see local images; give those services a pushed `image:`",
                    names.join(", ")
                );
            }
            Vec::new()
        }
    };
    apply_rendered(global, args, &loaded.config, &rendered, &images, true, &loaded.inputs).await
}

/// `kind-parity doctor`: every preflight check, one line each; exit 1 when one failed (a
/// warning does not).
pub(crate) async fn doctor(global: &GlobalArgs) -> Result<u8> {
    let loaded = crate::load_config(global)?;
    let config = &loaded.config;
    let state = State::new(&global.state_dir, &config.name);
    // Rendered in memory only: the check compares kind configs, and doctor writes nothing
    // but the secrets an environment needs anyway.
    let (secrets, _) = state.ensure_secrets(config)?;
    let images = kind_parity_render::ImageRefs::from_config(config);
    let templates = kind_parity_render::Templates::embedded()?;
    let plan = kind_parity_render::render(config, &loaded.inputs, &secrets, &images, &templates)?;
    Ok(u8::from(preflight(global, config, &state, &plan.kind_config).await > 0))
}

/// Runs the preflight checks, prints one line each, returns how many failed.
async fn preflight(global: &GlobalArgs, config: &Config, state: &State, kind_config: &str) -> usize {
    let applied = std::fs::read_to_string(state.root().join(APPLIED_KIND_CONFIG)).ok();
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
    let checks = preflight::run(&inputs).await;
    for check in &checks {
        let fix = check.fix.as_deref().unwrap_or("");
        match check.status {
            preflight::Status::Pass => say(global, &format!("ok    {}: {}", check.name, check.found)),
            preflight::Status::Warn => say(global, &format!("warn  {}: {}\n      fix: {fix}", check.name, check.found)),
            preflight::Status::Fail => eprintln!("fail  {}: {}\n      fix: {fix}", check.name, check.found),
        }
    }
    checks.iter().filter(|c| c.failed()).count()
}

pub(crate) async fn apply(global: &GlobalArgs, args: &ClusterArgs) -> Result<()> {
    let (loaded, rendered) = render_blocking(global).await?;
    apply_rendered(global, args, &loaded.config, &rendered, &[], false, &loaded.inputs).await
}

/// Ensures the cluster (kind), loads `images` into its nodes, applies, waits; for `up`, also
/// the short parity check and the endpoints.
async fn apply_rendered(
    global: &GlobalArgs,
    args: &ClusterArgs,
    config: &Config,
    rendered: &Rendered,
    images: &[String],
    up: bool,
    inputs: &kind_parity_render::Inputs,
) -> Result<()> {
    say(global, &format!("rendered {} into {}", config.name, rendered.out.display()));
    let target = read_target(config, &rendered.state, &args.target);
    let mut allowed = match args.target.cluster {
        ClusterKind::Existing => Vec::new(),
        ClusterKind::Kind => {
            ensure_kind(global, config, rendered, args.export_kubeconfig).await?;
            if config.registry.enabled {
                say(global, &format!("pushing {} image(s) to the local registry", images.len()));
                crate::images::push_all(global, config, images).await?;
            } else if !images.is_empty() {
                say(global, &format!("loading {} image(s) into the nodes of {}", images.len(), config.name));
                crate::images::load_all(global, &config.name, images).await?;
            }
            // The tool created this cluster for this environment: changing it is allowed.
            vec![format!("kind-{}", config.name)]
        }
    };
    allowed.extend(config.cluster.allowed_contexts.iter().cloned());
    allowed.extend(args.allow_context.iter().cloned());
    let (client, context) = kind_parity_cluster::connect(&target).await?;
    kind_parity_cluster::check_allowed(&context, &allowed)?;

    let previous = load_inventory(&rendered.state)?;
    let options = ApplyOptions { environment: config.name.clone(), force: args.force, prune: true };
    say(global, &format!("applying to context {context}"));
    let report = apply::apply(&client, &rendered.plan.manifests, &previous, &options).await?;
    save_inventory(&rendered.state, &report.inventory)?;
    say(
        global,
        &format!(
            "applied {} objects: {} created, {} configured, {} unchanged; pruned {}",
            report.applied.len(),
            report.count(Change::Created),
            report.count(Change::Configured),
            report.count(Change::Unchanged),
            report.pruned.len()
        ),
    );
    for pruned in &report.pruned {
        say(global, &format!("  pruned {pruned}"));
    }
    if args.no_wait {
        return Ok(());
    }
    let objects: Vec<ObjectRef> = report.applied.iter().map(|(r, _)| r.clone()).collect();
    let workloads = objects.iter().filter(|r| wait::is_workload(r)).count();
    say(global, &format!("waiting up to {}s for {workloads} workloads to be ready", args.timeout.as_secs()));
    let quiet = global.quiet;
    let total = args.timeout;
    let progress = move |event: wait::Progress<'_>| {
        if quiet {
            return;
        }
        match event {
            wait::Progress::Changed(object, Readiness::Ready) => eprintln!("  ready: {object}"),
            wait::Progress::Changed(object, Readiness::Waiting(why)) => eprintln!("  waiting: {object}: {why}"),
            wait::Progress::Changed(object, Readiness::Failed(why)) => eprintln!("  failed: {object}: {why}"),
            // Every few seconds, so a long wait is never silent: what is left, and why.
            wait::Progress::Pending { waited, pending } => {
                eprintln!("  still waiting after {}s of {}s for {}:", waited.as_secs(), total.as_secs(), pending.len());
                for p in pending {
                    eprintln!("    {}: {}", p.object, p.state);
                }
            }
        }
    };
    let wait_options = WaitOptions {
        deadline: args.timeout,
        per_object: args.timeout,
        unschedulable_grace: args.unschedulable_grace,
        ..WaitOptions::default()
    };
    let depends_on = workload_dependencies(&rendered.plan.manifests)?;
    if let Err(e) = wait::wait_ready_ordered(&client, &objects, &depends_on, wait_options, &progress).await {
        if args.target.cluster == ClusterKind::Kind {
            export_logs(&config.name, &rendered.state).await;
        }
        if matches!(e, kind_parity_cluster::Error::Timeout { .. }) {
            return Err(anyhow::Error::new(e).context(Exit {
                message: format!("{} was not ready within --timeout {}s", config.name, args.timeout.as_secs()),
                help: Some(
                    "the pod above says what it waited for; if it was only slow, raise `--timeout` (e.g. `--timeout 20m`)"
                        .into(),
                ),
                code: 1,
            }));
        }
        return Err(e.into());
    }
    say(global, &format!("{} is ready", config.name));
    if !up {
        return Ok(());
    }
    let (secrets, _) = rendered.state.ensure_secrets(config)?;
    if !args.skip_validate {
        // The short parity check: what `validate` runs, reported only where it is not right.
        let inventory = load_inventory(&rendered.state)?;
        let quiet = GlobalArgs { quiet: true, ..global.clone() };
        let report = crate::validate::run_suite(
            &quiet,
            config,
            &secrets,
            &inventory,
            (client.clone(), context.clone()),
            kind_parity_probes::suite::Endpoints::Forward,
            None,
            kind_parity_render::artifacts(config, inputs)?,
        )
        .await?;
        if report.passed {
            say(global, &format!("parity check: {}", report.summary()));
        } else {
            eprint!("{}", crate::validate::table(global, &report));
            return Err(Exit {
                message: format!("{} is up, but the parity check failed", config.name),
                help: Some("fix the first root cause above; `kind-parity validate` runs the check again".into()),
                code: 1,
            }
            .into());
        }
    }
    if !global.quiet {
        for endpoint in config.endpoints() {
            eprintln!("  {endpoint}");
        }
        eprintln!(
            "  local CA: {} (trust it once so browsers accept these URLs: see docs/runbook.md, \"Trusting the local CA\")",
            rendered.state.ca_file().display()
        );
        if config.keycloak.enabled {
            eprintln!(
                "  Keycloak admin: user `admin`, password under `{}` in {} (not printed)",
                kind_parity_render::config::KEYCLOAK_ADMIN_PASSWORD,
                rendered.state.secrets_file().display()
            );
        }
    }
    Ok(())
}

/// Creates the environment's kind cluster when it does not exist; refuses one whose kind config
/// differs from the rendered one.
async fn ensure_kind(global: &GlobalArgs, config: &Config, rendered: &Rendered, export_kubeconfig: bool) -> Result<()> {
    let kind = Kind::detect().await?;
    create_if_missing(global, config, rendered, &kind).await?;
    if export_kubeconfig {
        kind.export_kubeconfig(&config.name).await?;
        say(
            global,
            &format!("merged context kind-{} into your kubeconfig (as asked by --export-kubeconfig)", config.name),
        );
    }
    Ok(())
}

/// Writes `kind export logs` into the state folder after a failure, and says where.
async fn export_logs(name: &str, state: &State) {
    let Ok(kind) = Kind::detect().await else { return };
    let logs = state.root().join("logs");
    match kind.export_logs(name, &logs).await {
        Ok(()) => eprintln!("kind's logs of {name} are in {}", logs.display()),
        Err(e) => eprintln!("warning: exporting kind's logs failed: {e}"),
    }
}

async fn create_if_missing(global: &GlobalArgs, config: &Config, rendered: &Rendered, kind: &Kind) -> Result<()> {
    let name = &config.name;
    let kind_config = &rendered.plan.kind_config;
    let applied_config = rendered.state.root().join(APPLIED_KIND_CONFIG);
    let creating = rendered.state.root().join(CREATING_MARKER);
    let exists = kind.clusters().await?.iter().any(|c| c == name);
    if exists && creating.exists() {
        // `kind create cluster` was stopped (Ctrl-C, a crash) after its node existed: kind lists
        // the cluster, but what kind had still to do (kubeadm, the CNI, the kubeconfig) may not
        // have happened. Only a create kind-parity itself started leaves this marker.
        say(
            global,
            &format!(
                "kind cluster {name} was being created when an earlier command stopped: deleting it to create it anew"
            ),
        );
        kind.delete(name, &rendered.state.kubeconfig()).await?;
    } else if exists {
        if let Ok(previous) = std::fs::read_to_string(&applied_config)
            && previous != *kind_config
        {
            let differences = preflight::unified_diff(
                &previous,
                kind_config,
                &applied_config.display().to_string(),
                "the rendered kind config",
            );
            let indented: Vec<String> = differences.lines().map(|l| format!("  {l}")).collect();
            return Err(Exit {
                message: format!(
                    "kind cluster {name} was created from a different kind config:\n{}",
                    indented.join("\n")
                ),
                help: Some("run `kind-parity reset` to recreate it from the current config".into()),
                code: 1,
            }
            .into());
        }
        say(global, &format!("kind cluster {name} exists"));
        return Ok(());
    }
    // A create killed half-way leaves node containers kind no longer lists; they block a new one.
    let (docker, _) = Docker::connect().await?;
    let leftovers = docker.node_containers(name).await?;
    if !leftovers.is_empty() {
        let list = leftovers.join(", ");
        say(
            global,
            &format!("removing {} node container(s) of a half-created cluster {name}: {list}", leftovers.len()),
        );
        docker.remove_containers(&leftovers).await?;
    }
    say(global, &format!("creating kind cluster {name} (kind {})", kind.version()));
    let config_file = rendered.out.join("kind-config.yaml");
    let kubeconfig = rendered.state.kubeconfig();
    crate::state::write_file(&creating, b"kind create cluster started; removed once it succeeded\n", 0o600)?;
    if let Err(e) = kind.create(name, &config_file, &config.cluster.node_image, &kubeconfig, KIND_WAIT).await {
        export_logs(name, &rendered.state).await;
        return Err(e.into());
    }
    crate::state::write_file(&applied_config, kind_config.as_bytes(), 0o600)?;
    std::fs::remove_file(&creating).with_context(|| format!("removing {}", creating.display()))?;
    Ok(())
}

/// Each workload's dependencies as workloads: a manifest's `depends_on` names components
/// (`postgres`) and services (`api`, whose manifest is the component `app-api`).
fn workload_dependencies(
    manifests: &[kind_parity_render::Manifest],
) -> Result<std::collections::HashMap<ObjectRef, Vec<ObjectRef>>> {
    use std::collections::HashMap;
    let planned = apply::plan(manifests)?;
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

/// The cluster a command talks to: the kind cluster through the kubeconfig in the state
/// folder, or an existing cluster's context.
pub(crate) fn read_target(config: &Config, state: &State, target: &TargetArgs) -> Target {
    match target.cluster {
        ClusterKind::Existing => Target { kubeconfig: target.kubeconfig.clone(), context: target.context.clone() },
        ClusterKind::Kind => {
            Target { kubeconfig: Some(state.kubeconfig()), context: Some(format!("kind-{}", config.name)) }
        }
    }
}

/// Connects to the cluster a read-only command (`status`, `validate`) looks at. On kind, the
/// environment's kubeconfig is written by `up` when it creates the cluster: without it, there is
/// no cluster yet (only `render` ran, or `up` failed first), which is what the user needs to hear,
/// not that a file is missing.
pub(crate) async fn connect_existing(
    config: &Config,
    state: &State,
    target: &TargetArgs,
) -> Result<(kube::Client, String)> {
    if target.cluster == ClusterKind::Kind {
        let kubeconfig = state.kubeconfig();
        if let Err(e) = std::fs::metadata(&kubeconfig)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Err(Exit {
                message: format!(
                    "environment {} has no cluster yet ({} does not exist)",
                    config.name,
                    kubeconfig.display()
                ),
                help: Some("`kind-parity up` creates it".into()),
                code: 1,
            }
            .into());
        }
    }
    Ok(kind_parity_cluster::connect(&read_target(config, state, target)).await?)
}

pub(crate) fn load_inventory(state: &State) -> Result<Inventory> {
    let path = state.root().join("inventory.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Inventory::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_inventory(state: &State, inventory: &Inventory) -> Result<()> {
    let path = state.root().join("inventory.json");
    let text = serde_json::to_string_pretty(inventory)?;
    crate::state::write_file(&path, text.as_bytes(), 0o600).with_context(|| format!("writing {}", path.display()))
}

fn say(global: &GlobalArgs, line: &str) {
    crate::interrupt::step(line);
    if !global.quiet {
        eprintln!("{line}");
    }
}

/// `kind-parity down`: deletes the cluster (kind) or every object the tool applied (existing),
/// the `kind` network when nothing else uses it, and the environment's state folder. Nothing
/// else: other clusters, the user's kubeconfig and images stay.
pub(crate) async fn down(global: &GlobalArgs, args: &DownArgs) -> Result<()> {
    let loaded = crate::load_config(global)?;
    let name = loaded.config.name.clone();
    let state = State::new(&global.state_dir, &name);
    let what = match args.cluster.target.cluster {
        ClusterKind::Kind => format!("kind cluster {name} and {}", state.root().display()),
        ClusterKind::Existing => format!("every object kind-parity applied for {name}, and {}", state.root().display()),
    };
    if !args.yes && !confirm(&format!("delete {what}?"))? {
        return Err(Exit {
            message: "nothing deleted".into(),
            help: Some("pass --yes to skip the question".into()),
            code: 1,
        }
        .into());
    }
    match args.cluster.target.cluster {
        ClusterKind::Kind => down_kind(global, &loaded.config, &state).await?,
        ClusterKind::Existing => {
            let previous = load_inventory(&state)?;
            let target = read_target(&loaded.config, &state, &args.cluster.target);
            let (client, context) = kind_parity_cluster::connect(&target).await?;
            let mut allowed = loaded.config.cluster.allowed_contexts.clone();
            allowed.extend(args.cluster.allow_context.iter().cloned());
            kind_parity_cluster::check_allowed(&context, &allowed)?;
            let options = ApplyOptions { environment: name.clone(), force: false, prune: true };
            let report = apply::apply(&client, &[], &previous, &options).await?;
            say(global, &format!("deleted {} objects from context {context}", report.pruned.len()));
        }
    }
    match std::fs::remove_dir_all(state.root()) {
        Ok(()) => say(global, &format!("removed {}", state.root().display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", state.root().display())),
    }
    Ok(())
}

/// `down` on kind: the cluster, leftover node containers, our local registry, the unused `kind`
/// network. Without the kind binary, the cluster is still what kind's Docker provider made of it
/// (node containers labelled with its name, their volumes), so Docker removes it; only when
/// Docker does not answer either and the state says `up` created a cluster is there something
/// this cannot delete, and the error names it (the state folder stays, with its kubeconfig).
async fn down_kind(global: &GlobalArgs, config: &Config, state: &State) -> Result<()> {
    let name = &config.name;
    let kind = match Kind::detect().await {
        Ok(kind) => Some(kind),
        Err(kind_parity_cluster::Error::KindMissing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let docker = match Docker::connect().await {
        Ok((docker, _)) => Some(docker),
        Err(e) if kind.is_none() && created_a_cluster(state) => {
            return Err(anyhow::Error::new(e).context(Exit {
                message: format!(
                    "kind cluster {name} may still exist ({} says `up` created it), and neither kind nor Docker is here to delete it",
                    state.root().display()
                ),
                help: Some(
                    "start Docker and run `kind-parity down` again, or install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation); the state folder was kept"
                        .into(),
                ),
                code: 1,
            }));
        }
        // No kind, no Docker, and `up` never created a cluster here: nothing of it can be running.
        Err(_) if kind.is_none() => {
            say(global, &format!("kind is not installed and Docker does not answer: {name} has no cluster"));
            None
        }
        Err(e) => return Err(e.into()),
    };
    match (&kind, &docker) {
        (Some(kind), _) => {
            if kind.clusters().await?.contains(name) {
                say(global, &format!("deleting kind cluster {name}"));
                kind.delete(name, &state.kubeconfig()).await?;
            } else {
                say(global, &format!("kind cluster {name} does not exist"));
            }
        }
        (None, Some(_)) => {
            say(global, &format!("kind is not installed: removing what is left of {name} through Docker"));
        }
        (None, None) => {}
    }
    let Some(docker) = docker else { return Ok(()) };
    let leftovers = docker.node_containers(name).await?;
    if !leftovers.is_empty() {
        say(global, &format!("removing node containers of {name}: {}", leftovers.join(", ")));
        docker.remove_containers(&leftovers).await?;
    }
    // The registry goes only if this tool created it (its label says so).
    let images_docker = kind_parity_images::connect().await?;
    let registry = crate::images::registry(config);
    if kind_parity_images::registry::remove(&images_docker, &registry).await? {
        say(global, &format!("removed the local registry {}", registry.name));
    }
    if docker.remove_kind_network_if_unused().await? {
        say(global, "removed the kind network (nothing else used it)");
    }
    Ok(())
}

/// Whether `up` created a kind cluster for this state folder: kind wrote its kubeconfig, or we
/// recorded the kind config it was created from.
fn created_a_cluster(state: &State) -> bool {
    state.kubeconfig().exists()
        || state.root().join(APPLIED_KIND_CONFIG).exists()
        || state.root().join(CREATING_MARKER).exists()
}

/// `kind-parity reset`: `down`, then `up` from zero.
pub(crate) async fn reset(global: &GlobalArgs, args: &DownArgs) -> Result<()> {
    down(global, args).await?;
    up(global, &args.cluster).await
}

/// Asks on the terminal; without one (CI, pipes) there is nobody to ask, and the answer is yes.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `kind-parity status`: the cluster's nodes, each workload's readiness, the endpoints. Read-only,
/// so any context will do. Exit 0 when everything is ready, 1 otherwise.
pub(crate) async fn status(global: &GlobalArgs, args: &ClusterArgs) -> Result<u8> {
    let loaded = crate::load_config(global)?;
    let config = &loaded.config;
    let state = State::new(&global.state_dir, &config.name);
    let inventory = load_inventory(&state)?;
    let endpoints = config.endpoints();
    let (client, context) = connect_existing(config, &state, &args.target).await?;
    let objects: Vec<ObjectRef> = inventory.objects.keys().cloned().collect();
    let status = kind_parity_cluster::status::collect(&client, &objects).await?;
    // Whether the nodes run the current build of each service: its content tag is in every node.
    let images = match args.target.cluster {
        ClusterKind::Kind => image_currency(&loaded, &state).await,
        ClusterKind::Existing => Vec::new(),
    };
    let images_current = images.iter().all(|i| i.missing_on.is_empty() && i.error.is_none());
    match global.output {
        crate::OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "environment": config.name, "context": context, "ready": status.all_ready(),
                "nodes": status.nodes, "workloads": status.workloads, "endpoints": endpoints,
                "ca": state.ca_file(), "images": images,
            }))?
        ),
        crate::OutputFormat::Human => {
            println!("environment {} on context {context}", config.name);
            if status.nodes.is_empty() {
                println!("nodes: none (pods cannot run)");
            }
            for n in &status.nodes {
                println!("node {:<40} {} {}", n.name, if n.ready { "Ready" } else { "NotReady" }, n.version);
            }
            if inventory.objects.is_empty() {
                println!("nothing applied yet: run `kind-parity up`");
            }
            for w in &status.workloads {
                println!(
                    "{:<8} {}{}",
                    w.state,
                    w.object,
                    if w.detail.is_empty() { String::new() } else { format!(": {}", w.detail) }
                );
            }
            for i in &images {
                match (&i.error, i.missing_on.is_empty()) {
                    (Some(e), _) => println!("image    {}: unknown ({e})", i.image),
                    (None, true) => println!("image    {}: current build, in every node", i.image),
                    (None, false) => println!(
                        "image    {}: not in {} (an older build runs): `kind-parity up` builds and loads it",
                        i.image,
                        i.missing_on.join(", ")
                    ),
                }
            }
            for e in &endpoints {
                println!("endpoint {e}");
            }
            println!("local CA {} (trust it to open the endpoints without warnings)", state.ca_file().display());
        }
    }
    Ok(u8::from(!status.all_ready() || !images_current))
}

/// Whether the nodes hold one service's current build.
#[derive(Debug, serde::Serialize)]
struct ImageCurrency {
    /// The current content tag.
    image: String,
    /// Nodes without it.
    missing_on: Vec<String>,
    /// Why it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn image_currency(loaded: &kind_parity_render::Loaded, state: &State) -> Vec<ImageCurrency> {
    let specs = match crate::build_specs(loaded, state) {
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
            kind_parity_images::load::listed(&docker, &loaded.config.name, &known).await.map_err(|e| e.to_string())
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
