//! `cargo xtask e2e`: the end-to-end tier on a kind cluster. In an empty folder, so the embedded
//! demo stack runs whole (ingress, Postgres, Redis, Keycloak, the api and web built and loaded):
//! doctor; `up` interrupted by Ctrl-C while it creates the cluster, then while it waits; `up`
//! again with the Postgres pod killed while it waits, which converges; no orphaned object; status,
//! validate, an idempotent third up, logs, reset, validate again, down. Then a second environment
//! whose only service's image exits 1: `up` stops naming the pod, the reason and its log. Writes
//! a JUnit report; a failed step keeps the environment's diagnostics bundle in
//! `target/e2e-diagnostics/<step>/`.
//!
//! `--real-kind` runs it on the test bed's real kind v0.29.0 with the node image made here
//! (`cargo xtask testbed up kindnode`). On a real kind (that one, or one on PATH), a cluster of
//! a control plane and one worker follows (`cluster.workers: 1`, which the stand-in cannot run):
//! `up`, `load`, both nodes Ready with the images in each node's containerd and a replica on the
//! worker, `down`.
//!
//! It runs the `kind` on PATH (a machine with Docker, kind and registries to pull from, such as
//! the GitHub runner of `.github/workflows/e2e.yml`, where kind pulls the pinned `kindest/node`;
//! the fault steps use the `kubectl` on PATH). Where there is none and the test bed is up
//! (`cargo xtask testbed up`), it runs on the test bed's kind stand-in, whose clusters get the
//! stack images the test bed built: the same commands, nothing else changed.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kind_parity::ci;

/// The embedded demo's environment name and namespace (examples/demo/kind-parity.yaml).
const DEMO: &str = "kp-demo";
/// The label every applied object carries (kind_parity_cluster::ENVIRONMENT_LABEL).
const ENVIRONMENT_LABEL: &str = "kind-parity.dev/environment";
/// The two-node environment's name (`cluster.workers: 1`), real kind only.
const NODES: &str = "kp-e2e-nodes";
/// The failing service's log line `up` must show.
const CRASH_LOG: &str = "crash: cannot reach the payments service";

struct Step {
    name: &'static str,
    seconds: f64,
    failure: Option<String>,
}

/// What a step does while its command runs, once a line holding `after_line` shows on stderr
/// and `delay` has passed.
struct During {
    after_line: &'static str,
    delay: Duration,
    action: Action,
}

#[derive(Clone, Copy)]
enum Action {
    /// SIGINT to the command's process group, as a terminal's Ctrl-C sends it.
    Interrupt,
    /// Deletes the demo's Postgres pod, as a node's eviction or a crash would end it.
    KillPostgres,
}

/// What a step's command did.
struct Outcome {
    code: Option<i32>,
    text: String,
    /// What the action did, or why it could not.
    acted: Option<Result<String, String>>,
}

/// The kind-parity binary in one folder with one PATH.
struct Runner {
    binary: PathBuf,
    path: OsString,
    /// The node image the environment's config takes instead of the pinned one (`--real-kind`).
    node_image: Option<String>,
}

impl Runner {
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.env("PATH", &self.path).env("NO_COLOR", "1").env_remove("KIND_PARITY_CONFIG").current_dir(dir);
        if let Some(image) = &self.node_image {
            // A config override, as a user with a locally built node image would set it.
            command.env("KIND_PARITY_CLUSTER__NODE_IMAGE", image);
        }
        command.args(args);
        command
    }

    /// Runs `args` in `dir`, echoing its output as it comes, doing `during`'s action when due.
    fn run(&self, dir: &Path, args: &[&str], during: Option<&During>) -> Result<Outcome> {
        use std::os::unix::process::CommandExt as _;
        let mut child = self
            .command(dir, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the interrupt reaches it and its children (kind, docker)
            // as a terminal's Ctrl-C does, and nothing else.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let text = Arc::new(Mutex::new(String::new()));
        let (seen, triggered) = mpsc::channel();
        let mut stdout = child.stdout.take().context("stdout")?;
        let out_text = Arc::clone(&text);
        let out = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stdout.read_to_string(&mut all);
            eprint!("{all}");
            out_text.lock().expect("not poisoned").push_str(&all);
        });
        let stderr = child.stderr.take().context("stderr")?;
        let err_text = Arc::clone(&text);
        let trigger = during.map(|d| d.after_line);
        let err = std::thread::spawn(move || {
            let mut fired = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                err_text.lock().expect("not poisoned").push_str(&format!("{line}\n"));
                if !fired && trigger.is_some_and(|t| line.contains(t)) {
                    fired = true;
                    let _ = seen.send(());
                }
            }
        });
        let mut acted = None;
        if let Some(during) = during {
            // The sender goes away with stderr, when the command ends without the line.
            if triggered.recv().is_ok() {
                std::thread::sleep(during.delay);
                acted = Some(act(during.action, child.id(), dir));
            } else {
                acted = Some(Err(format!("the command ended before printing a line with `{}`", during.after_line)));
            }
        }
        let status = child.wait().context("waiting for kind-parity")?;
        let _ = (out.join(), err.join());
        let text = text.lock().expect("not poisoned").clone();
        Ok(Outcome { code: status.code(), text, acted })
    }
}

fn act(action: Action, pid: u32, dir: &Path) -> Result<String, String> {
    match action {
        Action::Interrupt => {
            let out = Command::new("kill")
                .args(["-INT", "--", &format!("-{pid}")])
                .output()
                .map_err(|e| format!("running kill: {e}"))?;
            if out.status.success() {
                Ok(format!("sent SIGINT to process group {pid}"))
            } else {
                Err(format!("kill -INT -{pid}: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        }
        Action::KillPostgres => {
            let out =
                kubectl(dir, &["delete", "pod", "-n", DEMO, "-l", "app.kubernetes.io/name=postgres", "--wait=false"])?;
            if out.contains("deleted") { Ok(out) } else { Err(format!("no Postgres pod to delete: {out}")) }
        }
    }
}

/// kubectl (from PATH) on the demo environment's own kubeconfig, its stdout.
fn kubectl(dir: &Path, args: &[&str]) -> Result<String, String> {
    kubectl_of(dir, DEMO, args)
}

/// kubectl (from PATH) on environment `env`'s own kubeconfig, its stdout.
fn kubectl_of(dir: &Path, env: &str, args: &[&str]) -> Result<String, String> {
    let kubeconfig = dir.join(".kind-parity").join(env).join("kubeconfig");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args)
        .output()
        .map_err(|e| format!("running kubectl (the e2e's fault steps need it on PATH): {e}"))?;
    if !out.status.success() {
        return Err(format!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One step of the plan: a command, what it does meanwhile, and what its outcome must show;
/// or an inspection of the cluster.
struct Plan {
    name: &'static str,
    dir: Dir,
    what: What,
}

enum What {
    Run { args: &'static [&'static str], during: Option<During>, check: fn(&Outcome) -> Result<(), String> },
    Inspect(fn(&Path) -> Result<(), String>),
}

impl Plan {
    fn run(name: &'static str, args: &'static [&'static str], check: fn(&Outcome) -> Result<(), String>) -> Self {
        Self { name, dir: Dir::Demo, what: What::Run { args, during: None, check } }
    }

    fn during(mut self, during: During) -> Self {
        if let What::Run { during: slot, .. } = &mut self.what {
            *slot = Some(during);
        }
        self
    }

    fn in_crash_project(mut self) -> Self {
        self.dir = Dir::Crash;
        self
    }

    fn in_nodes_project(mut self) -> Self {
        self.dir = Dir::Nodes;
        self
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Demo,
    Crash,
    Nodes,
}

fn succeeded(outcome: &Outcome) -> Result<(), String> {
    if outcome.code == Some(0) { Ok(()) } else { Err(format!("exit code {:?}", outcome.code)) }
}

fn acted(outcome: &Outcome) -> Result<(), String> {
    match &outcome.acted {
        Some(Ok(_)) | None => Ok(()),
        Some(Err(why)) => Err(why.clone()),
    }
}

fn interrupted(outcome: &Outcome, doing: &str) -> Result<(), String> {
    acted(outcome)?;
    if outcome.code != Some(130) {
        return Err(format!("an interrupted up must exit 130; it exited {:?}", outcome.code));
    }
    let said = format!("`up` was interrupted by Ctrl-C (SIGINT) while: {doing}");
    if !outcome.text.contains(&said) {
        return Err(format!("the message must say `{said}`"));
    }
    Ok(())
}

/// The steps, in order; `real_kind` adds the two-node cluster, which the test bed's kind
/// stand-in cannot run (it starts one node). The gate's command lines (`kind_parity::ci`:
/// doctor, up, validate, logs, down) are the ones a team's CI job runs (docs/ci.md), so the e2e
/// checks them on kind as CI runs them.
fn plan(real_kind: bool) -> Vec<Plan> {
    let seconds = Duration::from_secs;
    let mut plan = vec![
        Plan::run("doctor", ci::DOCTOR, succeeded),
        Plan::run("up, interrupted while it creates the cluster", ci::UP, |o| interrupted(o, "creating kind cluster"))
            .during(During { after_line: "creating kind cluster", delay: seconds(8), action: Action::Interrupt }),
        Plan::run("up, interrupted while it waits for readiness", ci::UP, |o| {
            interrupted(o, "waiting up to")?;
            // The half-created cluster of the step before is not taken as it was.
            if o.text.contains(&format!("kind cluster {DEMO} exists")) {
                return Err("the cluster an interrupted create left was reused".into());
            }
            Ok(())
        })
        .during(During { after_line: "waiting up to", delay: seconds(5), action: Action::Interrupt }),
        Plan::run("up, with the Postgres pod killed while it waits", ci::UP, |o| {
            acted(o)?;
            succeeded(o)
        })
        .during(During { after_line: "waiting up to", delay: seconds(2), action: Action::KillPostgres }),
        Plan { name: "no orphaned object", dir: Dir::Demo, what: What::Inspect(orphans) },
        Plan::run("status", &["status"], succeeded),
        Plan::run("validate", ci::VALIDATE, succeeded),
        Plan::run("up again (idempotent)", &["up", "--timeout", "5m"], |o| {
            succeeded(o)?;
            if o.text.contains(" 0 created, 0 configured,") {
                Ok(())
            } else {
                Err("the up after a converged one changed objects".into())
            }
        }),
        Plan::run("logs", ci::LOGS, succeeded),
        Plan::run("reset", &["reset", "--yes", "--timeout", "15m"], succeeded),
        Plan::run("validate after reset", &["validate"], succeeded),
        Plan::run("down", ci::DOWN, succeeded),
        Plan::run("up of a service whose image exits 1", &["up", "--timeout", "5m"], |o| {
            if o.code != Some(1) {
                return Err(format!("exit code {:?}, not 1", o.code));
            }
            for wanted in ["Deployment kp-e2e-crash/crash", "container crash is CrashLoopBackOff", CRASH_LOG] {
                if !o.text.contains(wanted) {
                    return Err(format!("the failure does not name `{wanted}`"));
                }
            }
            Ok(())
        })
        .in_crash_project(),
        Plan::run("down of the failing environment", ci::DOWN, succeeded).in_crash_project(),
    ];
    if real_kind {
        plan.extend([
            Plan::run("up of a two-node cluster (cluster.workers: 1)", ci::UP, succeeded).in_nodes_project(),
            Plan::run("load into both nodes", &["load", BASE_IMAGE], succeeded).in_nodes_project(),
            Plan {
                name: "two Ready nodes, each with the images, a replica on the worker",
                dir: Dir::Nodes,
                what: What::Inspect(two_nodes),
            },
            Plan::run("down of the two-node cluster", ci::DOWN, succeeded).in_nodes_project(),
        ]);
    }
    plan
}

pub fn run(rest: &[String]) -> Result<()> {
    let report = rest.iter().position(|a| a == "--junit").and_then(|i| rest.get(i + 1)).map(PathBuf::from);
    // A real kind, the test bed's or one on PATH (a CI runner's), runs the two-node steps too.
    let (path, node_image, real) = if rest.iter().any(|a| a == "--real-kind") {
        let (path, image) = real_kind()?;
        (path, image, true)
    } else {
        match crate::testbed::kind::path_with_standin()? {
            Some(standin) => (standin, None, false),
            None => (std::env::var_os("PATH").unwrap_or_default(), None, true),
        }
    };
    // No kind-parity.yaml: the embedded demo stack, as on a fresh clone.
    let demo = tempfile::tempdir().context("creating the e2e work folder")?;
    let crash = crash_project()?;
    let nodes = nodes_project()?;
    let runner = Runner { binary: build_binary()?, path, node_image };
    let diagnostics = Path::new(&crate::project_root()).join("target/e2e-diagnostics");
    let _ = std::fs::remove_dir_all(&diagnostics);
    let mut steps = Vec::new();
    for step in plan(real) {
        let dir = match step.dir {
            Dir::Demo => demo.path(),
            Dir::Crash => crash.path(),
            Dir::Nodes => nodes.path(),
        };
        let started = Instant::now();
        let failure = match &step.what {
            What::Inspect(inspect) => {
                eprintln!("== {}", step.name);
                inspect(dir).err()
            }
            What::Run { args, during, check } => {
                eprintln!("== {}: kind-parity {}", step.name, args.join(" "));
                let outcome = runner.run(dir, args, during.as_ref())?;
                if let Some(Ok(done)) = &outcome.acted {
                    eprintln!("(e2e: {done})");
                }
                check(&outcome).err().map(|why| format!("{why}\n\n{}", outcome.text))
            }
        };
        if let Some(why) = &failure {
            eprintln!("== {} FAILED: {}", step.name, why.lines().next().unwrap_or_default());
            keep_diagnostics(&runner, dir, &diagnostics.join(slug(step.name)));
        }
        steps.push(Step { name: step.name, seconds: started.elapsed().as_secs_f64(), failure });
    }
    // Whatever failed, no cluster is left behind (`down` is idempotent).
    for dir in [demo.path(), crash.path(), nodes.path()] {
        let _ = runner.command(dir, &["down", "--yes", "--quiet"]).output();
    }
    if let Some(path) = &report {
        std::fs::write(path, junit(&steps)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("JUnit report: {}", path.display());
    }
    let failed: Vec<&str> = steps.iter().filter(|s| s.failure.is_some()).map(|s| s.name).collect();
    if !failed.is_empty() {
        // The reasons again at the end, where a CI log's tail shows them.
        eprintln!("== what failed:");
        for step in &steps {
            if let Some(why) = &step.failure {
                eprintln!("{}", failure_summary(step.name, why));
            }
        }
        bail!("e2e failed at: {} (diagnostics in {})", failed.join("; "), diagnostics.display());
    }
    eprintln!(
        "e2e passed: {}",
        steps.iter().map(|s| format!("{} ({:.0}s)", s.name, s.seconds)).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// A failed step in a few lines: its check's reason, then the command's own `error:` lines and
/// what follows them up to a blank line (the CLI's reason, events and hints).
fn failure_summary(name: &str, why: &str) -> String {
    let mut lines = why.lines();
    let mut out = format!("  {name}: {}", lines.next().unwrap_or_default());
    let mut in_error = false;
    let mut kept = 0;
    for line in lines {
        if line.starts_with("error:") {
            in_error = true;
        } else if line.trim().is_empty() {
            in_error = false;
        }
        if in_error && kept < 20 {
            out.push_str("\n    ");
            out.push_str(line);
            kept += 1;
        }
    }
    out
}

/// The demo's base image, which the e2e's own projects build on, so nothing new needs pulling
/// (or, on the test bed, building).
const BASE_IMAGE: &str = "python:3.13-alpine";

/// A project on a control plane and one worker: one service of two replicas and the ingress.
fn nodes_project() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating the two-node project's folder")?;
    std::fs::create_dir(dir.path().join("hello"))?;
    std::fs::write(
        dir.path().join("hello/Dockerfile"),
        format!("FROM {BASE_IMAGE}\nCMD [\"python3\", \"-m\", \"http.server\", \"8080\"]\n"),
    )?;
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        format!(
            "name: {NODES}\ncluster: {{workers: 1}}\npostgres: {{enabled: false}}\nredis: {{enabled: false}}\n\
             keycloak: {{enabled: false}}\nservices:\n  hello:\n    build: {{context: hello}}\n    port: 8080\n\
             \x20   health_path: /\n    replicas: 2\n"
        ),
    )?;
    Ok(dir)
}

/// The two-node environment: both nodes Ready, the service's image (loaded by `up`) and the
/// base image (loaded by `load`) in each node's containerd, and a replica on the worker (kind
/// keeps the control plane's NoSchedule taint when a cluster has workers).
fn two_nodes(dir: &Path) -> Result<(), String> {
    let nodes = kubectl_of(dir, NODES, &["get", "nodes", "-o", "json"])?;
    let nodes: serde_json::Value = serde_json::from_str(&nodes).map_err(|e| format!("kubectl's nodes: {e}"))?;
    let nodes = nodes["items"].as_array().ok_or("kubectl's nodes have no items")?;
    let ready = |n: &serde_json::Value| {
        n["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let names: Vec<&str> = nodes.iter().filter(|n| ready(n)).filter_map(|n| n["metadata"]["name"].as_str()).collect();
    if names.len() != 2 || nodes.len() != 2 {
        return Err(format!("{} nodes, {} of them Ready ({names:?}); want 2 Ready", nodes.len(), names.len()));
    }
    let worker = nodes
        .iter()
        .find(|n| n["metadata"]["labels"].get("node-role.kubernetes.io/control-plane").is_none())
        .and_then(|n| n["metadata"]["name"].as_str())
        .ok_or("no worker among the nodes")?;
    let image = kubectl_of(
        dir,
        NODES,
        &["get", "deployment", "hello", "-n", NODES, "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
    )?;
    // Each node's containerd, as kind's own `load` imports into it (namespace k8s.io), found by
    // the label kind gives its node containers.
    let out = Command::new("docker")
        .args(["ps", "--filter", &format!("label=io.x-k8s.kind.cluster={NODES}"), "--format", "{{.Names}}"])
        .output()
        .map_err(|e| format!("running docker ps: {e}"))?;
    let containers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    if containers.len() != 2 {
        return Err(format!("{} node containers of {NODES} ({containers:?}); want 2", containers.len()));
    }
    for container in &containers {
        let out = Command::new("docker")
            .args(["exec", container, "ctr", "--namespace", "k8s.io", "images", "ls", "--quiet"])
            .output()
            .map_err(|e| format!("running docker exec {container} ctr: {e}"))?;
        let held = String::from_utf8_lossy(&out.stdout);
        for wanted in [image.as_str(), BASE_IMAGE] {
            // containerd holds the normalised reference (docker.io/library/NAME:TAG).
            if !held.lines().any(|r| r == wanted || r.ends_with(&format!("/{wanted}"))) {
                return Err(format!("node {container} lacks image {wanted}; it has:\n{held}"));
            }
        }
    }
    let pods = kubectl_of(
        dir,
        NODES,
        &["get", "pods", "-n", NODES, "-l", "app.kubernetes.io/name=hello", "-o", "jsonpath={.items[*].spec.nodeName}"],
    )?;
    if !pods.split_whitespace().any(|n| n == worker) {
        return Err(format!("no replica of hello on the worker {worker} (pods on: {pods})"));
    }
    eprintln!("nodes {names:?} Ready; {image} and {BASE_IMAGE} in {containers:?}; replicas on {pods}");
    Ok(())
}

/// A project whose one service's image prints a line and exits 1, with nothing else switched on
/// but the ingress.
fn crash_project() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating the failing project's folder")?;
    std::fs::create_dir(dir.path().join("crash"))?;
    std::fs::write(
        dir.path().join("crash/Dockerfile"),
        format!(
            "FROM {BASE_IMAGE}\nCMD [\"python3\", \"-c\", \"import sys; print('{CRASH_LOG}', flush=True); sys.exit(1)\"]\n"
        ),
    )?;
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        "name: kp-e2e-crash\npostgres: {enabled: false}\nredis: {enabled: false}\nkeycloak: {enabled: false}\n\
         services:\n  crash:\n    build: {context: crash}\n    port: 8080\n    health_path: /healthz\n",
    )?;
    Ok(dir)
}

/// Every object carrying the demo's environment label and no owner is in its inventory, and
/// every inventory object exists: the interrupted runs left nothing the next `down` would miss.
fn orphans(dir: &Path) -> Result<(), String> {
    let inventory = std::fs::read_to_string(dir.join(".kind-parity").join(DEMO).join("inventory.json"))
        .map_err(|e| format!("reading the inventory: {e}"))?;
    let inventory: serde_json::Value = serde_json::from_str(&inventory).map_err(|e| format!("the inventory: {e}"))?;
    let recorded: BTreeSet<String> = inventory["objects"]
        .as_array()
        .ok_or("the inventory has no objects")?
        .iter()
        .map(|o| key(o["kind"].as_str(), o["namespace"].as_str(), o["name"].as_str()))
        .collect();
    let kinds = kubectl(dir, &["api-resources", "--verbs=list,delete", "-o", "name"])?;
    // Events are not objects anyone applied; Endpoints mirror Services (the endpoints controller
    // copies a Service's labels onto its Endpoints and sets no owner reference).
    let kinds: Vec<&str> = kinds.lines().filter(|k| !k.starts_with("events") && *k != "endpoints").collect();
    let found =
        kubectl(dir, &["get", &kinds.join(","), "-A", "-l", &format!("{ENVIRONMENT_LABEL}={DEMO}"), "-o", "json"])?;
    let found: serde_json::Value = serde_json::from_str(&found).map_err(|e| format!("kubectl's list: {e}"))?;
    let found: BTreeSet<String> = found["items"]
        .as_array()
        .ok_or("kubectl's list has no items")?
        .iter()
        .filter(|o| o["metadata"]["ownerReferences"].as_array().is_none_or(Vec::is_empty))
        .map(|o| key(o["kind"].as_str(), o["metadata"]["namespace"].as_str(), o["metadata"]["name"].as_str()))
        .collect();
    let orphaned: Vec<&String> = found.difference(&recorded).collect();
    let missing: Vec<&String> = recorded.difference(&found).collect();
    eprintln!("{} labelled objects, {} in the inventory", found.len(), recorded.len());
    if orphaned.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(format!("labelled but not in the inventory: {orphaned:?}; in the inventory but absent: {missing:?}"))
    }
}

fn key(kind: Option<&str>, namespace: Option<&str>, name: Option<&str>) -> String {
    format!("{} {}/{}", kind.unwrap_or_default(), namespace.unwrap_or_default(), name.unwrap_or_default())
}

/// The environment's diagnostics bundle (and kind's node logs) of a failed step, kept beyond
/// the work folder's life.
fn keep_diagnostics(runner: &Runner, dir: &Path, out: &Path) {
    let _ = std::fs::create_dir_all(out);
    match runner.command(dir, &["logs", "--out"]).arg(out).output() {
        Ok(o) if o.status.success() => eprintln!("== diagnostics kept in {}", out.display()),
        Ok(o) => eprintln!("== no diagnostics: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => eprintln!("== no diagnostics: {e}"),
    }
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// `--real-kind`: the PATH with the test bed's real kind first, and the node image made here to
/// kind's contract (`cargo xtask testbed up kindnode`). The pinned default names upstream's
/// digest, which a local build never has, so the config is pointed at the local tag.
pub(crate) fn real_kind() -> Result<(OsString, Option<String>)> {
    let vars = crate::testbed::env_vars()?;
    let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(kind), Some(image)) = (var("KIND_PARITY_TEST_REAL_KIND"), var("KIND_PARITY_TEST_KIND_NODE_IMAGE")) else {
        bail!("--real-kind needs the test bed's real kind and its node image: run `cargo xtask testbed up kindnode`");
    };
    let dir = PathBuf::from(kind).parent().context("the real kind's folder")?.to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    eprintln!("note: on the REAL kind {} with the node image {image} built here", kind_version(&path));
    Ok((path, Some(image)))
}

fn kind_version(path: &std::ffi::OsStr) -> String {
    Command::new("kind")
        .arg("version")
        .env("PATH", path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn build_binary() -> Result<PathBuf> {
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--package", "kind-parity"])
        .status()
        .context("building kind-parity")?;
    if !status.success() {
        bail!("building kind-parity failed");
    }
    // Where cargo put it: `CARGO_TARGET_DIR` (relative to the root it built in) when set.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    Ok(Path::new(&root).join(target).join("debug/kind-parity"))
}

/// The steps as a JUnit report: a failed step is a `<failure>` carrying its output.
fn junit(steps: &[Step]) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("kind-parity e2e");
    for step in steps {
        let status = match &step.failure {
            None => TestCaseStatus::success(),
            Some(output) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message("step failed").set_description(output.as_str());
                status
            }
        };
        let mut case = TestCase::new(step.name, status);
        case.set_classname("e2e").set_time(Duration::from_secs_f64(step.seconds));
        suite.add_test_case(case);
    }
    suite.set_time(Duration::from_secs_f64(steps.iter().map(|s| s.seconds).sum()));
    let mut report = Report::new("kind-parity e2e");
    report.add_test_suite(suite);
    report.to_string().context("writing the JUnit report")
}

#[cfg(test)]
mod tests {
    use super::{Step, What, ci, failure_summary, junit, plan};

    #[test]
    fn every_command_of_the_ci_gate_is_a_step_of_the_plan() {
        let steps: Vec<&[&str]> = plan(false)
            .iter()
            .filter_map(|p| match &p.what {
                What::Run { args, .. } => Some(*args),
                What::Inspect(_) => None,
            })
            .collect();
        for command in ci::GATE {
            assert!(steps.contains(&command), "the e2e does not run `kind-parity {}`", command.join(" "));
        }
    }

    #[test]
    fn a_failed_step_is_a_failure_with_its_output_escaped() {
        let steps = [
            Step { name: "doctor", seconds: 0.5, failure: None },
            Step { name: "up", seconds: 61.25, failure: Some("error: <traefik> & \"postgres\"".into()) },
        ];
        let xml = junit(&steps).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
        assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("2"), Some("1")));
        let up = doc.descendants().find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("up")).unwrap();
        let failure = up.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("message"), Some("step failed"));
        assert_eq!(failure.text(), Some("error: <traefik> & \"postgres\""));
    }

    #[test]
    fn a_failure_summary_keeps_the_reason_and_the_commands_error_block() {
        let why = "exit code Some(1), not 0\n\napplied 15 objects\nwaiting up to 900s\n\
                   error: StatefulSet kp-demo/postgres: container postgres is CrashLoopBackOff\n  \
                   last log lines:\n    FATAL: bad\n\nkind's logs are in x";
        assert_eq!(
            failure_summary("up", why),
            "  up: exit code Some(1), not 0\n    error: StatefulSet kp-demo/postgres: container postgres is \
             CrashLoopBackOff\n      last log lines:\n        FATAL: bad"
        );
    }
}
