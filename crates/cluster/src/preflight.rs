//! Preflight checks (`kind-parity doctor`, and the first step of `up`): each says what was
//! found and, when it fails, the one thing to do.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;

use crate::docker::Docker;
use crate::kind::Kind;

/// Free disk below which node images and volumes tend to run out (kind's nodes are ~1 GB, the
/// stack's images several more).
pub const MIN_FREE_DISK: u64 = 10 * 1024 * 1024 * 1024;
/// kind's recommended `fs.inotify.max_user_watches` (its known issues, "Pod errors due to too
/// many open files").
pub const MIN_INOTIFY_WATCHES: u64 = 524_288;
/// kind's recommended `fs.inotify.max_user_instances`; stock distributions ship 128.
pub const MIN_INOTIFY_INSTANCES: u64 = 512;
/// Where kind documents the inotify limits.
pub const INOTIFY_DOC: &str = "https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As needed.
    Pass,
    /// Below a recommendation, but not known to break this environment: said, with the fix.
    Warn,
    /// Known to break this environment: `up` stops.
    Fail,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`docker`, `kind`, `port 443`).
    pub name: String,
    /// Whether it passed, warns or failed.
    pub status: Status,
    /// What was found.
    pub found: String,
    /// What to do when it did not pass, naming no command.
    pub fix: Option<String>,
    /// Whether the fix is to recreate the cluster from the current config (delete it, create it
    /// anew): an action the caller names in its own terms (the binary's `reset` command).
    pub recreate: bool,
}

impl Check {
    fn pass(name: impl Into<String>, found: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Pass, found: found.into(), fix: None, recreate: false }
    }

    fn warn(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Warn, found: found.into(), fix: Some(fix.into()), recreate: false }
    }

    fn fail(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Fail, found: found.into(), fix: Some(fix.into()), recreate: false }
    }

    /// Whether the check stops `up`.
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// What the checks need to know.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The environment (kind cluster) name.
    pub cluster: &'a str,
    /// The address the ingress ports bind to.
    pub listen_address: IpAddr,
    /// The host ports to bind.
    pub ports: Vec<u16>,
    /// Where state and images' disk usage is measured.
    pub disk_path: &'a Path,
    /// The kind config the cluster was created from, when it exists.
    pub applied_kind_config: Option<&'a str>,
    /// The kind config rendered now.
    pub rendered_kind_config: &'a str,
    /// The cluster's worker nodes (besides its control plane).
    pub workers: u8,
}

/// The oldest Docker Engine release kind-parity supports, and its API version. What the code
/// needs of the engine is there in 20.10: kind starts its node containers with
/// `--cgroupns=private`, which Docker 20.10 introduced; the images crate negotiates the API
/// down to the engine's (`kind_parity_images::connect`) and builds with the classic builder,
/// which needs no BuildKit session; and the project's test bed and e2e run on Docker 20.10.24
/// (API 1.41, docs/kind-node-image.md §7). docs/runbook.md's prerequisites say the same.
pub const MIN_DOCKER: &str = "20.10";
/// The API version of [`MIN_DOCKER`].
pub const MIN_DOCKER_API: (u32, u32) = (1, 41);

/// The Docker check of an engine that answered: it passes from [`MIN_DOCKER`] (API
/// [`MIN_DOCKER_API`]) on, and fails below. An engine that does not say its API version passes:
/// the commands that need more will say what they could not do.
pub fn docker_check(engine: &crate::docker::Engine) -> Check {
    let found = format!("Docker Engine {}", engine.version);
    let api = engine.api_version.as_deref().and_then(|v| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    match api {
        Some(api) if api < MIN_DOCKER_API => Check::fail(
            "docker",
            format!(
                "{found} (API {}), older than {MIN_DOCKER} (API {}.{})",
                engine.api_version.as_deref().unwrap_or(""),
                MIN_DOCKER_API.0,
                MIN_DOCKER_API.1
            ),
            format!("upgrade Docker to {MIN_DOCKER} or newer: https://docs.docker.com/engine/install/"),
        ),
        Some((major, minor)) => Check::pass("docker", format!("{found} (API {major}.{minor})")),
        None => Check::pass("docker", found),
    }
}

/// Runs every check; none stops the others.
pub async fn run(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    match Docker::connect_engine().await {
        Ok((_, engine)) => checks.push(docker_check(&engine)),
        Err(e) => checks.push(Check::fail(
            "docker",
            e.to_string(),
            "start Docker (Docker Desktop, or `sudo systemctl start docker`)",
        )),
    }
    let mut cluster_exists = false;
    match Kind::detect().await {
        Ok(kind) => {
            checks.push(Check::pass("kind", format!("kind {}; {}", kind.version(), node_image_note(inputs))));
            cluster_exists = kind.clusters().await.map(|c| c.iter().any(|n| n == inputs.cluster)).unwrap_or(false);
        }
        Err(e) => {
            let found = match &e {
                crate::Error::KindMissing { .. } => "not found on PATH".to_owned(),
                crate::Error::KindTooOld { found, minimum } => format!("{found}, older than {minimum}"),
                other => other.to_string(),
            };
            let fix = format!(
                "install kind {} or newer ({}): https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
                crate::kind::MINIMUM,
                node_image_note(inputs)
            );
            checks.push(Check::fail("kind", found, fix));
        }
    }
    for port in &inputs.ports {
        checks.push(port_check(inputs.listen_address, *port, cluster_exists, inputs.cluster));
    }
    checks.push(disk_check(inputs.disk_path));
    if cfg!(target_os = "linux") {
        checks.extend(inotify_checks(inputs.workers));
    }
    if cluster_exists {
        checks.push(drift_check(inputs));
    }
    checks
}

/// Which kind goes with which node image: the one the environment uses, and the default pin's.
fn node_image_note(inputs: &Inputs<'_>) -> String {
    use crate::kind::{MINIMUM, NODE_IMAGE};
    let rendered = inputs
        .rendered_kind_config
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("image:"))
        .map(|i| i.trim().trim_matches('"').to_owned());
    match rendered {
        Some(image) if image != NODE_IMAGE => format!(
            "node image {image} (configured): use the kind release that lists it in its release notes; the default {NODE_IMAGE} is kind {MINIMUM}'s"
        ),
        _ => format!("node image {NODE_IMAGE} is kind {MINIMUM}'s"),
    }
}

/// Whether `address:port` can be bound; a port held by the environment's own cluster is fine.
pub fn port_check(address: IpAddr, port: u16, cluster_exists: bool, cluster: &str) -> Check {
    let name = format!("port {address}:{port}");
    match TcpListener::bind(SocketAddr::new(address, port)) {
        Ok(_) => Check::pass(name, "free"),
        Err(_) if cluster_exists => Check::pass(name, format!("in use (by kind cluster {cluster})")),
        Err(e) => Check::fail(
            name,
            format!("in use or not bindable: {e}"),
            format!(
                "stop what listens on {port} (`sudo ss -ltnp 'sport = :{port}'`), or set `ports` in kind-parity.yaml"
            ),
        ),
    }
}

fn disk_check(path: &Path) -> Check {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    match fs4::available_space(existing) {
        Ok(free) if free >= MIN_FREE_DISK => Check::pass("disk", format!("{} GiB free", free >> 30)),
        Ok(free) => Check::fail(
            "disk",
            format!("{} GiB free", free >> 30),
            "free at least 10 GiB (`docker system prune` removes unused images)",
        ),
        Err(e) => Check::fail(
            "disk",
            format!("cannot measure free space: {e}"),
            "check that the working directory is readable",
        ),
    }
}

fn inotify_checks(workers: u8) -> Vec<Check> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/sys/fs/inotify/{file}")).ok().and_then(|t| t.trim().parse::<u64>().ok())
    };
    [("max_user_watches", MIN_INOTIFY_WATCHES), ("max_user_instances", MIN_INOTIFY_INSTANCES)]
        .into_iter()
        .map(|(setting, recommended)| inotify_check(setting, read(setting), recommended, workers))
        .collect()
}

/// One inotify limit against kind's recommendation. kind's known issues say the stock limits
/// (Ubuntu: 8192 watches, 128 instances) are "not enough to create a cluster with many nodes",
/// and every node container runs its own kubelet, containerd and systemd, each holding inotify
/// instances of the same user: below the recommendation, a cluster with workers is known to
/// break (pods fail with "too many open files"), a single node is not, so it only warns there.
pub fn inotify_check(setting: &str, value: Option<u64>, recommended: u64, workers: u8) -> Check {
    let name = format!("inotify {setting}");
    let Some(value) = value else { return Check::pass(name, "not readable here; skipped") };
    if value >= recommended {
        return Check::pass(name, value.to_string());
    }
    let fix = format!(
        "sudo sysctl fs.inotify.{setting}={recommended}, and persist it in /etc/sysctl.d/ (kind's known issues: {INOTIFY_DOC})"
    );
    match workers {
        0 => Check::warn(
            name,
            format!(
                "{value}, below kind's recommended {recommended}: enough for a one-node cluster, not for one with worker nodes"
            ),
            fix,
        ),
        n => Check::fail(
            name,
            format!(
                "{value}, below kind's recommended {recommended}, which a cluster with {n} worker node(s) needs: its pods fail with \"too many open files\""
            ),
            fix,
        ),
    }
}

/// The name of [`drift_check`]'s check.
pub const DRIFT: &str = "cluster drift";

/// Compares the kind config the cluster was created from with the rendered one.
pub fn drift_check(inputs: &Inputs<'_>) -> Check {
    match inputs.applied_kind_config {
        None => Check::pass(DRIFT, "unknown (the cluster was not created by this tool)"),
        Some(applied) if applied == inputs.rendered_kind_config => Check::pass(DRIFT, "none"),
        Some(applied) => {
            let changed: Vec<String> = diff(applied, inputs.rendered_kind_config);
            let found = format!("the kind config changed: {}", changed.join("; "));
            Check { recreate: true, ..Check::fail(DRIFT, found, "recreate the cluster from the current config") }
        }
    }
}

/// The lines removed (`-`, with their line in `old`) and added (`+`, with their line in `new`)
/// between two texts, trimmed, in the order a line diff meets them: a moved or a repeated line
/// is a change too.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .filter_map(|change| {
            let text = change.value().trim();
            match change.tag() {
                similar::ChangeTag::Equal => None,
                similar::ChangeTag::Delete => Some(format!("- line {}: {text}", change.old_index()? + 1)),
                similar::ChangeTag::Insert => Some(format!("+ line {}: {text}", change.new_index()? + 1)),
            }
        })
        .collect()
}

/// A unified diff (`---`/`+++` headers named `old_name` and `new_name`, hunks with two lines
/// of context) from `old` to `new`: what a person reads to see how a kind config changed.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(2).header(old_name, new_name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(version: &str, api: Option<&str>) -> crate::docker::Engine {
        crate::docker::Engine { version: version.into(), api_version: api.map(str::to_owned) }
    }

    #[test]
    fn docker_from_the_documented_minimum_on_passes() {
        // Regression (issue 11): the runbook said 24+ while doctor passed 20.10, which the
        // code supports; 20.10 (API 1.41) is now both the documented and the checked minimum.
        let check = docker_check(&engine("20.10.24+dfsg1", Some("1.41")));
        assert_eq!((check.status, check.found.as_str()), (Status::Pass, "Docker Engine 20.10.24+dfsg1 (API 1.41)"));
        assert_eq!(docker_check(&engine("28.3.0", Some("1.51"))).status, Status::Pass);
        assert_eq!(docker_check(&engine("odd", None)).status, Status::Pass);
    }

    #[test]
    fn docker_older_than_the_minimum_fails_with_the_fix() {
        let check = docker_check(&engine("19.03.15", Some("1.40")));
        assert_eq!(check.status, Status::Fail);
        assert_eq!(check.found, "Docker Engine 19.03.15 (API 1.40), older than 20.10 (API 1.41)");
        assert!(check.fix.as_deref().unwrap().starts_with("upgrade Docker to 20.10 or newer"), "{check:?}");
    }

    #[test]
    fn a_taken_port_fails_unless_the_cluster_holds_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = IpAddr::from([127, 0, 0, 1]);
        let taken = port_check(address, port, false, "kp-demo");
        assert!(taken.failed() && taken.fix.as_deref().unwrap().contains(&format!("sport = :{port}")), "{taken:?}");
        assert_eq!(port_check(address, port, true, "kp-demo").status, Status::Pass);
        drop(listener);
        assert_eq!(port_check(address, port, false, "kp-demo").found, "free");
    }

    #[test]
    fn drift_lists_changed_lines() {
        let inputs = Inputs {
            cluster: "c",
            listen_address: IpAddr::from([127, 0, 0, 1]),
            ports: vec![],
            disk_path: Path::new("."),
            applied_kind_config: Some("name: c\n  hostPort: 80\n"),
            rendered_kind_config: "name: c\n  hostPort: 8080\n",
            workers: 0,
        };
        let check = drift_check(&inputs);
        assert!(check.failed());
        assert_eq!(check.found, "the kind config changed: - line 2: hostPort: 80; + line 2: hostPort: 8080");
        // Regression (issue 11): the fix was the CLI's `kind-parity reset`; the action is a flag its caller words.
        assert_eq!(
            (check.fix.as_deref(), check.recreate),
            (Some("recreate the cluster from the current config"), true)
        );
    }

    #[test]
    fn a_moved_line_is_a_change() {
        // Regression: the line-set diff found nothing when lines only changed places.
        let old = "nodes:\n- role: control-plane\n- role: worker\n";
        let new = "nodes:\n- role: worker\n- role: control-plane\n";
        assert_eq!(diff(old, new), ["+ line 2: - role: worker", "- line 3: - role: worker"]);
    }

    #[test]
    fn a_repeated_line_is_a_change() {
        // Regression: the line-set diff found nothing when a line it already had was added again.
        let old = "nodes:\n- role: control-plane\n- role: worker\n";
        let new = "nodes:\n- role: control-plane\n- role: worker\n- role: worker\n";
        assert_eq!(diff(old, new), ["+ line 4: - role: worker"]);
    }

    #[test]
    fn the_unified_diff_keeps_order_and_context() {
        let old = "kind: Cluster\nnodes:\n- role: control-plane\n- role: worker\n";
        let new = "kind: Cluster\nnodes:\n- role: worker\n- role: control-plane\n";
        assert_eq!(
            unified_diff(old, new, "applied", "rendered"),
            "--- applied\n+++ rendered\n@@ -1,4 +1,4 @@\n kind: Cluster\n nodes:\n+- role: worker\n - role: control-plane\n-- role: worker\n"
        );
    }

    #[test]
    fn the_kind_check_names_the_kind_release_of_the_node_image() {
        // Regression: doctor accepted kind v0.20 for a node image only kind v0.29.0 boots.
        let rendered = |image: &str| format!("nodes:\n- role: control-plane\n  image: \"{image}\"\n");
        let inputs = |config: &'static str| Inputs {
            cluster: "c",
            listen_address: IpAddr::from([127, 0, 0, 1]),
            ports: vec![],
            disk_path: Path::new("."),
            applied_kind_config: None,
            rendered_kind_config: config,
            workers: 0,
        };
        let default = rendered(crate::kind::NODE_IMAGE).leak();
        assert_eq!(
            node_image_note(&inputs(default)),
            "node image kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f is kind v0.29.0's"
        );
        let custom = node_image_note(&inputs(rendered("kindest/node:v1.34.0").leak()));
        assert!(
            custom.starts_with("node image kindest/node:v1.34.0 (configured): use the kind release that lists it"),
            "{custom}"
        );
    }

    #[test]
    fn stock_inotify_limits_warn_on_one_node_and_fail_with_workers() {
        // Regression: doctor and up refused to start with the 128 instances stock distributions ship.
        let single = inotify_check("max_user_instances", Some(128), MIN_INOTIFY_INSTANCES, 0);
        assert_eq!(single.status, Status::Warn, "{single:?}");
        assert_eq!(
            single.found,
            "128, below kind's recommended 512: enough for a one-node cluster, not for one with worker nodes"
        );
        assert_eq!(
            single.fix.as_deref(),
            Some(
                "sudo sysctl fs.inotify.max_user_instances=512, and persist it in /etc/sysctl.d/ (kind's known issues: https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files)"
            )
        );
        let workers = inotify_check("max_user_instances", Some(128), MIN_INOTIFY_INSTANCES, 2);
        assert_eq!(workers.status, Status::Fail, "{workers:?}");
        assert!(workers.found.contains("which a cluster with 2 worker node(s) needs"), "{workers:?}");
        assert_eq!(inotify_check("max_user_watches", Some(524_288), MIN_INOTIFY_WATCHES, 2).status, Status::Pass);
        assert_eq!(inotify_check("max_user_watches", None, MIN_INOTIFY_WATCHES, 2).status, Status::Pass);
    }
}
