//! Loading local images into a kind cluster's nodes: what `kind load docker-image` does, with a
//! check before sending, one export streamed to every node at once, and a check after.
//!
//! The steps of [`load`]:
//! 1. The cluster's node containers are found by kind's labels; a stopped node is an error.
//! 2. Every node is checked in parallel with one exec: its snapshotter (containerd's config
//!    file; `containerd config dump` when the file does not say), its image references
//!    (`ctr images ls`) and its content labels (`ctr content ls`), which lead from a reference's
//!    manifest to its config digest (Docker's image id) and tell whether it is unpacked. An image
//!    present under the wanted reference is skipped; present under another reference only, it is
//!    re-tagged.
//! 3. Nodes that need the same set of images share one export (`GET /images/get`), streamed into
//!    each node's `ctr images import` over the exec's stdin through a small bounded channel per
//!    node: no temp file, memory bounded by the channels, the slowest node sets the pace.
//! 4. Each changed node is listed again: the image must be there under the wanted reference with
//!    the local image's content, or the load is an error.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::future::join_all;
use tokio::io::AsyncWriteExt as _;

use crate::{CONTAINERD_NAMESPACE, Error, Result};

/// The snapshotter assumed when a node's containerd configuration does not name one (containerd's
/// default, and kind's).
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// Bytes gathered from the export before they are handed to the nodes: large enough that a
/// 200 MB image is under a thousand sends, small enough to keep memory flat.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks each node's channel holds: the most a fast node runs ahead of the slowest.
const CHANNEL_CHUNKS: usize = 8;
/// How much of a command's output an error keeps (its end, where ctr says what went wrong).
const KEPT_OUTPUT_BYTES: usize = 8 * 1024;
/// How long to wait for the engine to record an exec's exit code once its output has ended.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(10);

/// Lines that separate the parts of the check's output.
const CONFIG_MARK: &str = "@@kind-parity:config";
const IMAGES_MARK: &str = "@@kind-parity:images";
const CONTENT_MARK: &str = "@@kind-parity:content";

/// A node container of a kind cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The container's name.
    pub name: String,
    /// Its kind role (`control-plane`, `worker`), empty when the label is missing.
    pub role: String,
}

/// What happened to one image on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The image was streamed into the node and imported.
    Loaded,
    /// The node had the image under the wanted reference: nothing was sent.
    AlreadyPresent,
    /// The node had the content under another reference: it was tagged, nothing was sent.
    Retagged {
        /// The reference that held the content.
        from: String,
    },
}

/// One image's outcome on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    /// The image as asked for (`api:kp-0123456789ab`).
    pub image: String,
    /// Its containerd reference (`docker.io/library/api:kp-0123456789ab`).
    pub reference: String,
    /// What was done.
    pub outcome: Outcome,
}

/// What [`load`] did on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node container.
    pub node: String,
    /// The snapshotter its images were unpacked with.
    pub snapshotter: String,
    /// Each wanted image, in the order asked.
    pub images: Vec<ImageReport>,
    /// Bytes of export streamed into the node (0 when nothing had to be sent).
    pub bytes_sent: u64,
    /// From the start of the load until this node was checked, loaded and verified.
    pub elapsed: Duration,
}

/// What [`load`] did, node by node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// One report per node, sorted by node name.
    pub nodes: Vec<NodeReport>,
    /// The whole load.
    pub elapsed: Duration,
}

/// What a load reports while it runs, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A node was checked.
    Checked {
        /// The node container.
        node: &'a str,
        /// Images it already has under the wanted reference.
        present: usize,
        /// Images it has under another reference only.
        retag: usize,
        /// Images that will be sent.
        send: usize,
    },
    /// Bytes streamed into a node so far.
    Sent {
        /// The node container.
        node: &'a str,
        /// Bytes sent so far.
        bytes: u64,
        /// The images' size as the engine reports it: about the size of the export.
        estimated_total: u64,
    },
    /// A node has all the wanted images, verified.
    Done {
        /// The node container.
        node: &'a str,
    },
}

/// The running node containers of `cluster`, sorted by name. A node that is not running is an
/// error naming it: loading into some nodes only would leave the cluster half-loaded.
pub async fn nodes(docker: &Docker, cluster: &str) -> Result<Vec<Node>> {
    let containers = kind_parity_docker::node_containers(docker, cluster)
        .await
        .map_err(|source| engine_error(source, || format!("listing the node containers of cluster {cluster}")))?;
    if containers.is_empty() {
        return Err(Error::NoNodes { cluster: cluster.to_owned(), label: kind_parity_docker::CLUSTER_LABEL });
    }
    let mut nodes = Vec::with_capacity(containers.len());
    for container in containers {
        if !container.running() {
            let state = if container.state.is_empty() { "unknown".into() } else { container.state };
            return Err(Error::NodeStopped { node: container.name, state });
        }
        nodes.push(Node { name: container.name, role: container.role });
    }
    Ok(nodes)
}

/// Loads `images` (local image names) into every node of `cluster`; see the module docs.
pub async fn load(
    docker: &Docker,
    cluster: &str,
    images: &[String],
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<LoadReport> {
    let nodes = nodes(docker, cluster).await?;
    load_into(docker, &nodes, images, progress).await
}

/// Loads `images` into the given running node containers; [`load`] finds them by cluster.
pub async fn load_into(
    docker: &Docker,
    nodes: &[Node],
    images: &[String],
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<LoadReport> {
    let start = Instant::now();
    // An engine that is down fails the first inspect as EngineDown (see `engine_error`).
    let local = futures::future::try_join_all(images.iter().map(|image| LocalImage::inspect(docker, image))).await?;

    // Check every node at once; the first node's error (by name) is returned, all are logged.
    let checks = join_all(nodes.iter().map(|node| inventory(docker, &node.name, true))).await;
    let inventories = first_error(checks)?;
    let mut plans: Vec<NodePlan> =
        nodes.iter().zip(inventories).map(|(node, inventory)| NodePlan::new(node, inventory, &local, start)).collect();
    for plan in &plans {
        let count = |want: fn(&Outcome) -> bool| plan.outcomes.iter().filter(|o| want(o)).count();
        progress(Progress::Checked {
            node: &plan.node,
            present: count(|o| *o == Outcome::AlreadyPresent),
            retag: count(|o| matches!(o, Outcome::Retagged { .. })),
            send: count(|o| *o == Outcome::Loaded),
        });
        tracing::debug!(node = %plan.node, snapshotter = %plan.snapshotter, outcomes = ?plan.outcomes, "node checked");
    }

    let retags = join_all(plans.iter().map(|plan| retag(docker, plan, &local))).await;
    first_error(retags)?;

    // One export per set of images, streamed into every node that needs exactly that set.
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for (index, plan) in plans.iter().enumerate() {
        let wanted: Vec<usize> = (0..local.len()).filter(|&i| plan.outcomes[i] == Outcome::Loaded).collect();
        if !wanted.is_empty() {
            groups.entry(wanted).or_default().push(index);
        }
    }
    let imports = join_all(groups.iter().map(|(wanted, members)| {
        let images: Vec<&LocalImage> = wanted.iter().map(|&i| &local[i]).collect();
        let targets: Vec<(&str, &str)> =
            members.iter().map(|&m| (plans[m].node.as_str(), plans[m].snapshotter.as_str())).collect();
        async move { (members, import_group(docker, &targets, &images, progress).await) }
    }))
    .await;
    let mut failures = Vec::new();
    for (members, results) in imports {
        match results {
            Ok(results) => {
                for (&member, result) in members.iter().zip(results) {
                    match result {
                        Ok(bytes) => plans[member].bytes_sent = bytes,
                        Err(error) => failures.push((member, error)),
                    }
                }
            }
            Err(error) => failures.push((members[0], error)),
        }
    }
    failures.sort_by_key(|(member, _)| *member);
    if let Some((_, first)) = log_failures(failures) {
        return Err(first);
    }

    let verified = join_all(plans.iter().map(|plan| verify(docker, plan, &local))).await;
    first_error(verified)?;
    for plan in &mut plans {
        plan.elapsed = start.elapsed();
        progress(Progress::Done { node: &plan.node });
    }
    let nodes = plans
        .into_iter()
        .map(|plan| NodeReport {
            images: local
                .iter()
                .zip(plan.outcomes)
                .map(|(image, outcome)| ImageReport {
                    image: image.image.clone(),
                    reference: image.reference.clone(),
                    outcome,
                })
                .collect(),
            node: plan.node,
            snapshotter: plan.snapshotter,
            bytes_sent: plan.bytes_sent,
            elapsed: plan.elapsed,
        })
        .collect();
    Ok(LoadReport { nodes, elapsed: start.elapsed() })
}

/// Which of `images` each running node of `cluster` lists under its containerd reference, node
/// by node (sorted by name). Read-only. With content tags (`<service>:kp-<digest>`), a node that
/// lists the tag runs the current build; for `status`.
pub async fn listed(docker: &Docker, cluster: &str, images: &[String]) -> Result<Vec<(String, Vec<bool>)>> {
    let nodes = nodes(docker, cluster).await?;
    let checks = join_all(nodes.iter().map(|node| inventory(docker, &node.name, false))).await;
    let inventories = first_error(checks)?;
    Ok(nodes
        .into_iter()
        .zip(inventories)
        .map(|(node, inventory)| {
            let has = images.iter().map(|i| inventory.references.contains_key(&containerd_reference(i))).collect();
            (node.name, has)
        })
        .collect())
}

/// The containerd reference `ctr images import` gives a Docker image name: Docker's short names
/// expanded (`api:v1` is `docker.io/library/api:v1`), `:latest` added when there is no tag.
pub fn containerd_reference(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest.to_owned()),
        _ => ("docker.io", name.to_owned()),
    };
    let domain = if domain == "index.docker.io" { "docker.io" } else { domain };
    let path = if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
    let tagged = path.rsplit('/').next().is_some_and(|last| last.contains(':'));
    let mut reference = format!("{domain}/{path}");
    if !tagged && digest.is_none() {
        reference.push_str(":latest");
    }
    if let Some(digest) = digest {
        reference.push('@');
        reference.push_str(digest);
    }
    reference
}

/// A local image to load, as the engine describes it.
#[derive(Debug)]
struct LocalImage {
    image: String,
    reference: String,
    /// Docker's image id: the config digest (or the manifest digest on the containerd store).
    id: String,
    /// Registry manifest digests, for images that were pulled.
    manifest_digests: Vec<String>,
    size: u64,
}

impl LocalImage {
    async fn inspect(docker: &Docker, image: &str) -> Result<Self> {
        let inspect = match docker.inspect_image(image).await {
            Ok(inspect) => inspect,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(Error::ImageNotFound { image: image.to_owned() });
            }
            Err(source) => return Err(engine_error(source, || format!("inspecting image {image}"))),
        };
        let manifest_digests = inspect
            .repo_digests
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.split_once('@').map(|(_, digest)| digest.to_owned()))
            .collect();
        Ok(Self {
            image: image.to_owned(),
            reference: containerd_reference(image),
            id: inspect.id.unwrap_or_default(),
            manifest_digests,
            size: inspect.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        })
    }
}

/// What one node holds, from the check's output.
#[derive(Debug, Default, PartialEq, Eq)]
struct Inventory {
    /// The snapshotter the node's CRI plugin unpacks with, when the check asked for it.
    snapshotter: Option<String>,
    /// Reference → the digest of its target (a manifest or an index).
    references: BTreeMap<String, String>,
    /// Content digest → its `containerd.io/gc.ref.*` labels: a manifest's config and layers, an
    /// index's manifests, and on a config `gc.ref.snapshot.<snapshotter>` once it is unpacked.
    children: HashMap<String, Vec<(String, String)>>,
}

impl Inventory {
    fn parse(output: &str) -> Self {
        let mut inventory = Self::default();
        let mut part = "";
        let mut config = String::new();
        for line in output.lines() {
            if [CONFIG_MARK, IMAGES_MARK, CONTENT_MARK].contains(&line.trim()) {
                part = line.trim();
                continue;
            }
            match part {
                CONFIG_MARK => {
                    config.push_str(line);
                    config.push('\n');
                }
                // REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE has a space ("2.0 MiB").
                IMAGES_MARK => {
                    let columns: Vec<&str> = line.split_whitespace().collect();
                    if columns.len() >= 3 && columns[0] != "REF" && columns[2].starts_with("sha256:") {
                        inventory.references.insert(columns[0].to_owned(), columns[2].to_owned());
                    }
                }
                // DIGEST SIZE AGE LABELS; AGE has spaces ("2 minutes"), LABELS has none.
                CONTENT_MARK => {
                    let columns: Vec<&str> = line.split_whitespace().collect();
                    let (Some(digest), Some(labels)) = (columns.first(), columns.last()) else { continue };
                    if !digest.starts_with("sha256:") || columns.len() < 2 {
                        continue;
                    }
                    let children: Vec<(String, String)> = labels
                        .split(',')
                        .filter_map(|label| label.split_once('='))
                        .filter(|(key, _)| key.starts_with("containerd.io/gc.ref."))
                        .map(|(key, value)| (key.to_owned(), value.to_owned()))
                        .collect();
                    if !children.is_empty() {
                        inventory.children.insert((*digest).to_owned(), children);
                    }
                }
                _ => {}
            }
        }
        inventory.snapshotter = if imports_files(&config) { None } else { snapshotter_from_config(&config) };
        inventory
    }

    /// The config digests a target leads to: a manifest's config, or its manifests' configs for
    /// an index.
    fn configs(&self, target: &str, depth: usize) -> Vec<&str> {
        let Some(children) = self.children.get(target) else { return Vec::new() };
        let mut configs = Vec::new();
        for (key, value) in children {
            let kind = key.trim_start_matches("containerd.io/gc.ref.content.");
            if kind == "config" {
                configs.push(value.as_str());
            } else if kind.starts_with("m.") && depth > 0 {
                configs.extend(self.configs(value, depth - 1));
            }
        }
        configs
    }

    /// Whether `target` is the image's content, unpacked for `snapshotter`. Docker's id is the
    /// config digest (or, on Docker's containerd store, the manifest digest); pulled images have
    /// registry digests. Unpacked matters: a failed import leaves its references behind with
    /// content but no snapshot, and such an image must be sent again, not skipped.
    fn holds(&self, target: &str, image: &LocalImage, snapshotter: &str) -> bool {
        let configs = self.configs(target, 1);
        let same = target == image.id
            || image.manifest_digests.iter().any(|d| d == target)
            || configs.contains(&image.id.as_str());
        let unpacked_label = format!("containerd.io/gc.ref.snapshot.{snapshotter}");
        let unpacked = configs.iter().any(|config| {
            self.children.get(*config).is_some_and(|labels| labels.iter().any(|(key, _)| *key == unpacked_label))
        });
        same && unpacked
    }

    fn has(&self, image: &LocalImage, snapshotter: &str) -> bool {
        self.references.get(&image.reference).is_some_and(|target| self.holds(target, image, snapshotter))
    }

    /// Another reference with the image's content: named ones before digest ones (the CRI
    /// plugin's `sha256:<id>`, ctr's `import-<date>@sha256:<digest>`).
    fn holder(&self, image: &LocalImage, snapshotter: &str) -> Option<&str> {
        let mut holders: Vec<&str> = self
            .references
            .iter()
            .filter(|(reference, target)| **reference != image.reference && self.holds(target, image, snapshotter))
            .map(|(reference, _)| reference.as_str())
            .collect();
        holders.sort_by_key(|reference| (reference.contains('@') || reference.starts_with("sha256:"), *reference));
        holders.first().copied()
    }
}

/// The CRI plugin's snapshotter from containerd's configuration (the file, or
/// `containerd config dump`): containerd 1.x keeps it in
/// `[plugins."io.containerd.grpc.v1.cri".containerd]`, 2.x in `[plugins.'io.containerd.cri.v1.images']`.
/// `None` when the text does not name it.
fn snapshotter_from_config(config: &str) -> Option<String> {
    let mut section = String::new();
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            // TOML quotes keys either way: version 3 files use single quotes.
            section = line.trim_matches(['[', ']']).replace('\'', "\"");
            continue;
        }
        let in_cri = section == r#"plugins."io.containerd.grpc.v1.cri".containerd"#
            || section == r#"plugins."io.containerd.cri.v1.images""#;
        if let Some((key, value)) = line.split_once('=')
            && in_cri
            && key.trim() == "snapshotter"
        {
            let value = value.trim().trim_matches(['"', '\'']);
            if !value.is_empty() {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// Whether a configuration file imports others (which may name the snapshotter too).
fn imports_files(config: &str) -> bool {
    config
        .lines()
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('='))
        .any(|(key, value)| key.trim() == "imports" && value.trim() != "[]")
}

/// What to do on one node.
#[derive(Debug)]
struct NodePlan {
    node: String,
    snapshotter: String,
    /// One per local image, in order.
    outcomes: Vec<Outcome>,
    bytes_sent: u64,
    elapsed: Duration,
}

impl NodePlan {
    fn new(node: &Node, inventory: Inventory, local: &[LocalImage], start: Instant) -> Self {
        let snapshotter = inventory.snapshotter.clone().unwrap_or_else(|| DEFAULT_SNAPSHOTTER.to_owned());
        let outcomes = local
            .iter()
            .map(|image| {
                if inventory.has(image, &snapshotter) {
                    Outcome::AlreadyPresent
                } else if let Some(from) = inventory.holder(image, &snapshotter) {
                    Outcome::Retagged { from: from.to_owned() }
                } else {
                    Outcome::Loaded
                }
            })
            .collect();
        Self { node: node.name.clone(), snapshotter, outcomes, bytes_sent: 0, elapsed: start.elapsed() }
    }
}

/// Lists a node's images and content (and its snapshotter when asked) with one exec.
async fn inventory(docker: &Docker, node: &str, with_snapshotter: bool) -> Result<Inventory> {
    let ns = CONTAINERD_NAMESPACE;
    // The configuration file names the snapshotter on kind's nodes (kind writes it there for its
    // entrypoint to change); `containerd config dump`, which also knows the defaults and imported
    // files, costs about 50 ms more, so it runs only when the file does not say.
    let config = if with_snapshotter { "cat /etc/containerd/config.toml >\"$d/config\" 2>/dev/null" } else { "" };
    // Both listings start in parallel (ctr is a Go binary that takes tens of milliseconds to
    // start) into a scratch folder, then print in order. A node without ctr answers 127 before
    // anything else, so that the error can say so.
    let script = format!(
        r#"command -v ctr >/dev/null 2>&1 || {{ echo 'ctr: not found' >&2; exit 127; }}
d="${{TMPDIR:-/tmp}}/kind-parity-check.$$"; mkdir -p "$d" || exit 4
{config}
ctr -n {ns} images ls >"$d/images" 2>"$d/err" & images=$!
ctr -n {ns} content ls >"$d/content" 2>>"$d/err" & content=$!
wait $images; status=$?; wait $content; [ $? = 0 ] || status=3; wait
echo {CONFIG_MARK}; [ -f "$d/config" ] && cat "$d/config"
echo {IMAGES_MARK}; cat "$d/images"; echo {CONTENT_MARK}; cat "$d/content"; cat "$d/err" >&2
rm -rf "$d"; [ $status = 0 ] || exit 3"#
    );
    let finished = exec(docker, node, &["sh", "-c", &script]).await?;
    match finished.exit {
        Some(0) => {
            let mut inventory = Inventory::parse(&finished.stdout);
            if with_snapshotter && inventory.snapshotter.is_none() {
                let dump = exec(docker, node, &["containerd", "config", "dump"]).await?;
                inventory.snapshotter = snapshotter_from_config(&dump.stdout);
                tracing::debug!(node, snapshotter = ?inventory.snapshotter, "snapshotter from `containerd config dump`");
            }
            Ok(inventory)
        }
        Some(127) => Err(Error::NodeWithoutCtr { node: node.to_owned(), output: finished.message() }),
        exit => Err(Error::NodeCommand {
            node: node.to_owned(),
            command: format!("ctr -n {ns} images ls"),
            exit,
            stderr: finished.message(),
        }),
    }
}

/// Tags content the node already has with the wanted references.
async fn retag(docker: &Docker, plan: &NodePlan, local: &[LocalImage]) -> Result<()> {
    for (image, outcome) in local.iter().zip(&plan.outcomes) {
        let Outcome::Retagged { from } = outcome else { continue };
        let command = ["ctr", "-n", CONTAINERD_NAMESPACE, "images", "tag", "--force", from, &image.reference];
        let finished = exec(docker, &plan.node, &command).await?;
        if finished.exit != Some(0) {
            return Err(Error::NodeCommand {
                node: plan.node.clone(),
                command: command.join(" "),
                exit: finished.exit,
                stderr: finished.message(),
            });
        }
        tracing::debug!(node = %plan.node, %from, to = %image.reference, "re-tagged");
    }
    Ok(())
}

/// Lists a changed node again: every image must be under its reference with its content.
async fn verify(docker: &Docker, plan: &NodePlan, local: &[LocalImage]) -> Result<()> {
    if plan.outcomes.iter().all(|o| *o == Outcome::AlreadyPresent) {
        return Ok(());
    }
    let after = inventory(docker, &plan.node, false).await?;
    for image in local {
        if !after.has(image, &plan.snapshotter) {
            return Err(Error::VerifyFailed {
                node: plan.node.clone(),
                image: image.image.clone(),
                reference: image.reference.clone(),
                id: image.id.clone(),
                found: after.references.get(&image.reference).cloned(),
            });
        }
    }
    Ok(())
}

/// Exports `images` once and streams the export into every target's `ctr images import` at
/// once. Returns the bytes sent per target, in order, or that target's error.
async fn import_group(
    docker: &Docker,
    targets: &[(&str, &str)],
    images: &[&LocalImage],
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Vec<Result<u64>>> {
    let names: Vec<&str> = images.iter().map(|i| i.image.as_str()).collect();
    let estimated_total: u64 = images.iter().map(|i| i.size).sum();
    // Every import starts before the export, so a node that cannot run ctr costs no bytes.
    let mut sessions = Vec::with_capacity(targets.len());
    let mut senders = Vec::with_capacity(targets.len());
    for (node, snapshotter) in targets {
        let snapshotter_flag = format!("--snapshotter={snapshotter}");
        let command = ["ctr", "-n", CONTAINERD_NAMESPACE, "images", "import", "--digests", &snapshotter_flag, "-"];
        match start(docker, node, &command, true).await {
            Ok(session) => {
                let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
                senders.push(Some(sender));
                sessions.push(Ok((session, receiver)));
            }
            Err(error) => {
                senders.push(None);
                sessions.push(Err(error));
            }
        }
    }

    let producer = async {
        let mut export = docker.export_images(&names);
        let mut sent = vec![0_u64; targets.len()];
        let mut buffer = BytesMut::with_capacity(CHUNK_BYTES);
        loop {
            let next = export.next().await;
            let finished = match next {
                Some(Ok(bytes)) => {
                    buffer.extend_from_slice(&bytes);
                    false
                }
                Some(Err(source)) => {
                    return Err(engine_error(source, || format!("exporting {}", names.join(", "))));
                }
                None => true,
            };
            // Hand out full chunks, and what is left at the end.
            let ready = buffer.len() >= CHUNK_BYTES || (finished && !buffer.is_empty());
            if !ready {
                if finished {
                    break;
                }
                continue;
            }
            let chunk = buffer.split().freeze();
            let sends = senders.iter().map(|sender| {
                let chunk = chunk.clone();
                async move {
                    match sender {
                        Some(sender) => sender.send(chunk).await.is_ok(),
                        None => false,
                    }
                }
            });
            let delivered = join_all(sends).await;
            for (index, ok) in delivered.into_iter().enumerate() {
                if ok {
                    sent[index] += chunk.len() as u64;
                    progress(Progress::Sent { node: targets[index].0, bytes: sent[index], estimated_total });
                } else {
                    // Its import ended early (its error comes from ctr): stop feeding it.
                    senders[index] = None;
                }
            }
            if finished {
                break;
            }
        }
        // Dropping the senders ends each node's stdin.
        drop(senders);
        Ok(sent)
    };

    let consumers = join_all(sessions.into_iter().zip(targets).map(|(session, (node, _))| async move {
        let (session, receiver) = session?;
        let finished = session.feed(receiver).await;
        let finished = finished.wait(docker).await?;
        if finished.exit == Some(0) && finished.write_error.is_none() {
            tracing::debug!(node, output = %finished.stdout.trim(), "imported");
            return Ok(());
        }
        let stderr = match (&finished.write_error, finished.exit) {
            (Some(write_error), Some(0)) => format!("writing to ctr's stdin: {write_error}"),
            _ => finished.message(),
        };
        // ctr creates the references before it unpacks: a failed import leaves them pointing at
        // an image the kubelet cannot run. Removing them is best effort; the check would not
        // count them as present anyway (they are not unpacked).
        let mut remove = vec!["ctr", "-n", CONTAINERD_NAMESPACE, "images", "rm"];
        remove.extend(images.iter().map(|i| i.reference.as_str()));
        match exec(docker, node, &remove).await {
            Ok(removed) if removed.exit == Some(0) => {}
            Ok(removed) => tracing::debug!(node, output = %removed.message(), "removing half-imported references"),
            Err(error) => tracing::debug!(node, %error, "removing half-imported references"),
        }
        Err(Error::ImportFailed {
            node: (*node).to_owned(),
            images: images.iter().map(|i| i.image.clone()).collect(),
            exit: finished.exit,
            stderr,
        })
    }));
    let (sent, imported) = futures::join!(producer, consumers);
    let sent = sent?;
    Ok(imported.into_iter().zip(sent).map(|(result, bytes)| result.map(|()| bytes)).collect())
}

/// An exec's output stream, as bollard gives it.
type OutputStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
>;

/// An exec that was started with its streams attached.
struct Session {
    node: String,
    id: String,
    output: OutputStream,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    /// How much of each output stream to keep: all of a listing (it is parsed), the end of an
    /// import's (where ctr says what went wrong).
    keep: usize,
}

/// An exec's output once its streams ended, before its exit code is read.
struct Drained {
    node: String,
    id: String,
    stdout: String,
    stderr: String,
    write_error: Option<std::io::Error>,
}

/// An exec that has exited.
struct Finished {
    exit: Option<i64>,
    stdout: String,
    stderr: String,
    write_error: Option<std::io::Error>,
}

impl Finished {
    /// What the command said about its failure: its stderr, else its output.
    fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        text.trim().to_owned()
    }
}

impl Session {
    /// Writes every chunk from `receiver` to the command's stdin while draining its output, then
    /// closes stdin. A write error (the command exited early) stops the writing but not the
    /// draining: the command's own error is the one worth reporting.
    async fn feed(self, mut receiver: tokio::sync::mpsc::Receiver<Bytes>) -> Drained {
        let Self { node, id, output, mut input, keep } = self;
        let writer = async move {
            let mut write_error = None;
            while let Some(chunk) = receiver.recv().await {
                if let Err(error) = input.write_all(&chunk).await {
                    write_error = Some(error);
                    break;
                }
            }
            // Closing the receiver tells the producer to stop sending to this node.
            drop(receiver);
            if write_error.is_none()
                && let Err(error) = input.shutdown().await
            {
                write_error = Some(error);
            }
            write_error
        };
        let (write_error, (stdout, stderr)) = futures::join!(writer, drain(output, keep));
        Drained { node, id, stdout, stderr, write_error }
    }
}

impl Drained {
    /// Reads the exit code, which the engine records shortly after the output ends.
    async fn wait(self, docker: &Docker) -> Result<Finished> {
        let deadline = Instant::now() + EXIT_CODE_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let inspect = docker.inspect_exec(&self.id).await.map_err(|source| {
                engine_error(source, || format!("reading the exit code of an exec in node {}", self.node))
            })?;
            if inspect.running != Some(true) || Instant::now() >= deadline {
                let exit = if inspect.running == Some(true) { None } else { inspect.exit_code };
                return Ok(Finished { exit, stdout: self.stdout, stderr: self.stderr, write_error: self.write_error });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// Runs `command` in `node`; a non-zero or missing exit code is [`Error::NodeCommand`].
pub(crate) async fn run_in_node(docker: &Docker, node: &str, command: &[&str]) -> Result<()> {
    let finished = exec(docker, node, command).await?;
    if finished.exit == Some(0) {
        return Ok(());
    }
    Err(Error::NodeCommand {
        node: node.to_owned(),
        command: command.join(" "),
        exit: finished.exit,
        stderr: finished.message(),
    })
}

/// Runs `command` in `node` without input and returns its output and exit code.
async fn exec(docker: &Docker, node: &str, command: &[&str]) -> Result<Finished> {
    let session = start(docker, node, command, false).await?;
    let (_, receiver) = tokio::sync::mpsc::channel(1);
    session.feed(receiver).await.wait(docker).await
}

/// Creates and starts an exec with its output (and stdin when asked) attached.
async fn start(docker: &Docker, node: &str, command: &[&str], stdin: bool) -> Result<Session> {
    let options = CreateExecOptions {
        cmd: Some(command.to_vec()),
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(node, options).await.map_err(|source| node_error(node, source))?;
    match docker.start_exec(&created.id, None).await.map_err(|source| node_error(node, source))? {
        StartExecResults::Attached { output, input } => {
            let keep = if stdin { KEPT_OUTPUT_BYTES } else { usize::MAX };
            Ok(Session { node: node.to_owned(), id: created.id, output, input, keep })
        }
        StartExecResults::Detached => unreachable!("exec started without detach"),
    }
}

/// Collects stdout and stderr, keeping the last `limit` bytes of each.
async fn drain(mut output: OutputStream, limit: usize) -> (String, String) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(item) = output.next().await {
        match item {
            Ok(bollard::container::LogOutput::StdErr { message }) => keep_tail(&mut stderr, &message, limit),
            Ok(
                bollard::container::LogOutput::StdOut { message } | bollard::container::LogOutput::Console { message },
            ) => {
                keep_tail(&mut stdout, &message, limit);
            }
            Ok(bollard::container::LogOutput::StdIn { .. }) => {}
            Err(error) => {
                // The stream broke: what was said so far is all there is; the exit code decides.
                tracing::debug!(%error, "exec output ended with an error");
                break;
            }
        }
    }
    (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

/// Appends `more`, keeping the last `limit` bytes.
fn keep_tail(buffer: &mut Vec<u8>, more: &[u8], limit: usize) {
    buffer.extend_from_slice(more);
    if buffer.len() > limit {
        buffer.drain(..buffer.len() - limit);
    }
}

/// An engine error from a call about a node: a node that stopped meanwhile is named as such.
fn node_error(node: &str, source: bollard::errors::Error) -> Error {
    match source {
        bollard::errors::Error::DockerResponseServerError { status_code: 409, message } => {
            Error::NodeStopped { node: node.to_owned(), state: message }
        }
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            Error::NodeStopped { node: node.to_owned(), state: "gone".to_owned() }
        }
        source => engine_error(source, || format!("running a command in node {node}")),
    }
}

/// An engine error: one the engine answered is [`Error::Docker`]; no answer at all is
/// [`Error::EngineDown`].
pub(crate) fn engine_error(source: bollard::errors::Error, action: impl FnOnce() -> String) -> Error {
    use bollard::errors::Error as E;
    match source {
        E::DockerResponseServerError { .. } | E::DockerStreamError { .. } | E::JsonDataError { .. } => {
            Error::Docker { action: action(), source }
        }
        E::SocketNotFoundError(_)
        | E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::IOError { .. }
        | E::RequestTimeoutError => Error::EngineDown { source },
        source => Error::Docker { action: action(), source },
    }
}

/// The results of one step on every node: the values, or the first node's error after logging
/// every failure.
fn first_error<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    let mut values = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(value) => values.push(value),
            Err(error) => failures.push((index, error)),
        }
    }
    match log_failures(failures) {
        Some((_, first)) => Err(first),
        None => Ok(values),
    }
}

fn log_failures(failures: Vec<(usize, Error)>) -> Option<(usize, Error)> {
    let mut failures = failures.into_iter();
    let first = failures.next()?;
    for (_, error) in failures {
        tracing::warn!(%error, "another node failed too");
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_expanded_like_ctr_import_does() {
        let check = |image: &str, expected: &str| assert_eq!(containerd_reference(image), expected, "{image}");
        check("api:kp-0123456789ab", "docker.io/library/api:kp-0123456789ab");
        check("busybox", "docker.io/library/busybox:latest");
        check("team/api:v1", "docker.io/team/api:v1");
        check("docker.io/postgres:16", "docker.io/library/postgres:16");
        check("index.docker.io/library/redis", "docker.io/library/redis:latest");
        check("localhost:5000/api", "localhost:5000/api:latest");
        check("localhost/api:v2", "localhost/api:v2");
        check("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2");
        check("registry:5000/a/b", "registry:5000/a/b:latest");
        check("alpine@sha256:abcd", "docker.io/library/alpine@sha256:abcd");
    }

    #[test]
    fn the_snapshotter_comes_from_the_cri_section() {
        let check = |config: &str, expected: &str| {
            let named = if imports_files(config) { None } else { snapshotter_from_config(config) };
            assert_eq!(named.as_deref().unwrap_or("(not named)"), expected);
        };
        check(
            "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"x\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    default_runtime_name = \"runc\"\n    snapshotter = \"native\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n    snapshotter = \"\"\n",
            "native",
        );
        check(
            "version = 3\n[plugins.'x']\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'fuse-overlayfs'\n",
            "fuse-overlayfs",
        );
        // Imported files may name it: only the dump knows.
        check(
            "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n",
            "(not named)",
        );
        // A runtime's own snapshotter is not the CRI default.
        check(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  snapshotter = \"zfs\"\n",
            "(not named)",
        );
        check("", "(not named)");
        // The dump lists the main file among its imports; it is read without that rule.
        let dump = "imports = [\"/etc/containerd/config.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n";
        assert_eq!(snapshotter_from_config(dump).as_deref(), Some("native"));
    }

    #[test]
    fn the_listing_leads_from_references_to_config_digests() {
        let output = format!(
            "{IMAGES_MARK}\nREF                              TYPE                                                 DIGEST     SIZE      PLATFORMS   LABELS\n\
             docker.io/library/api:kp-1       application/vnd.docker.distribution.manifest.v2+json sha256:m1 2.0 MiB   linux/amd64 -\n\
             docker.io/library/api:old        application/vnd.docker.distribution.manifest.v2+json sha256:m1 2.0 MiB   linux/amd64 -\n\
             docker.io/library/pg:16          application/vnd.oci.image.index.v1+json              sha256:i1 100.0 MiB linux/amd64 io.cri-containerd.image=managed\n\
             docker.io/library/half:1         application/vnd.docker.distribution.manifest.v2+json sha256:m3 2.0 MiB   linux/amd64 -\n\
             {CONTENT_MARK}\nDIGEST SIZE AGE LABELS\n\
             sha256:m1 1.2kB 2 minutes containerd.io/gc.ref.content.config=sha256:c1,containerd.io/gc.ref.content.l.0=sha256:l1\n\
             sha256:c1 1.2kB 2 minutes containerd.io/gc.ref.snapshot.overlayfs=sha256:l1\n\
             sha256:i1 1kB About an hour containerd.io/gc.ref.content.m.0=sha256:m2,containerd.io/distribution.source.docker.io=library/pg\n\
             sha256:m2 1kB About an hour containerd.io/gc.ref.content.config=sha256:c2\n\
             sha256:c2 1kB About an hour containerd.io/gc.ref.snapshot.overlayfs=sha256:l2\n\
             sha256:m3 1kB About an hour containerd.io/gc.ref.content.config=sha256:c3\n\
             sha256:l1 2MB 2 minutes -\n"
        );
        let inventory = Inventory::parse(&output);
        assert_eq!(inventory.snapshotter, None);
        assert_eq!(inventory.references.len(), 4);
        let image = |name: &str, id: &str, repo: &[&str]| LocalImage {
            image: name.into(),
            reference: containerd_reference(name),
            id: id.into(),
            manifest_digests: repo.iter().map(|s| (*s).to_owned()).collect(),
            size: 0,
        };
        assert!(inventory.has(&image("api:kp-1", "sha256:c1", &[]), "overlayfs"));
        // Same content under two other names: the holder is the first named one.
        assert_eq!(
            inventory.holder(&image("api:new", "sha256:c1", &[]), "overlayfs"),
            Some("docker.io/library/api:kp-1")
        );
        assert!(!inventory.has(&image("api:new", "sha256:c1", &[]), "overlayfs"));
        // Through an index to its manifest's config; or by the registry digest.
        assert!(inventory.has(&image("pg:16", "sha256:c2", &[]), "overlayfs"));
        assert!(inventory.has(&image("pg:16", "sha256:other", &["sha256:i1"]), "overlayfs"));
        // Same name, other content: not present, and no holder.
        assert!(!inventory.has(&image("api:kp-1", "sha256:c9", &[]), "overlayfs"));
        assert_eq!(inventory.holder(&image("api:kp-1", "sha256:c9", &[]), "overlayfs"), None);
        // Content that was never unpacked (a failed import), or unpacked for another snapshotter.
        assert!(!inventory.has(&image("half:1", "sha256:c3", &[]), "overlayfs"));
        assert!(!inventory.has(&image("api:kp-1", "sha256:c1", &[]), "native"));
    }
}
