//! The `node` part: a node that runs pods, run as kind runs one, and the containerd-only node
//! stand-in the load tests start.
//!
//! The node is a privileged container (`--privileged` through `runc-capfix` here) of a Debian 12
//! root made by debootstrap, with Debian's containerd 1.6 (CRI v1), runc and CNI plugins, and the
//! kubelet and kube-proxy of the control plane's version mounted from the build cache. It sits on
//! the Docker network [`kube::NETWORK`], labelled `io.x-k8s.kind.cluster=kind-parity-testbed` and
//! `io.x-k8s.kind.role=control-plane`, containerd at `/run/containerd/containerd.sock` with its
//! config at `/etc/containerd/config.toml`: `kind-parity load` and `up`'s loader reach it as
//! they reach a kind node. It publishes no ports: 80 and 443 on 127.0.0.1 are left to the
//! clusters the kind stand-in creates (`kind.rs`), as kind's extraPortMappings take them. `/var/lib/containerd` is a volume,
//! since overlay snapshots cannot sit on the container's own overlay root. CoreDNS, built from
//! its Go module, is the cluster DNS. The pause image is a stand-in: busybox's `sleep`; the tests'
//! pod image ([`POD_IMAGE`]) is busybox with every applet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::gobuild::{GoBuild, Wrap};
use super::{KUBERNETES, Testbed, apt_install, certs, docker, kube, proc, say, write_file};

/// The cluster name on the node's labels, and the node's container and node name.
pub const CLUSTER: &str = "kind-parity-testbed";
pub const CONTAINER: &str = "kind-parity-testbed-control-plane";
const NODE_IP: &str = "172.30.250.2";
/// The Debian root every node image starts from; bump the number when its package list changes.
pub(super) const BASE_IMAGE: &str = "kind-parity-testbed/kubenode-base:bookworm-1";
const BASE_PACKAGES: &str = "containerd,runc,iptables,containernetworking-plugins,iproute2,mount,util-linux,ca-certificates,conntrack,procps,kmod,socat";
/// The containerd-only stand-in for a kind node (`KIND_PARITY_TEST_NODE_IMAGE`).
pub const STANDIN_IMAGE: &str = "kind-parity-testbed/node:v3";
/// The version kubeadm 1.33 deploys (`cmd/kubeadm/app/constants`, `CoreDNSVersion`).
const COREDNS: &str = "1.12.0";
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// The tests' pod image, in the node from its start: Debian's static busybox with every applet
/// (`sh`, `httpd`, `nc`, `sleep`…), so tests run real containers without pulling.
pub const POD_IMAGE: &str = "kind-parity-testbed/busybox:2";
const COREDNS_IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.12.0";

const START: &str = include_str!("files/node/start.sh");
const CONTAINERD: &str = include_str!("files/node/containerd.toml");
const CNI: &str = include_str!("files/node/10-bridge.conflist");
const KUBELET: &str = include_str!("files/node/kubelet.yaml");
const KUBE_PROXY: &str = include_str!("files/node/kube-proxy.yaml");
const COREDNS_MANIFESTS: &str = include_str!("files/node/coredns.yaml");
const STANDIN_CONTAINERD: &str = include_str!("files/node/standin-containerd.toml");

pub(super) fn image_exists(image: &str) -> bool {
    Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success())
}

/// The Debian mirror the machine's own sources name (debootstrap needs one).
pub(super) fn mirror() -> String {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default()
        + &std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    sources
        .lines()
        .find_map(|l| {
            l.strip_prefix("URIs: ")
                .or_else(|| l.strip_prefix("deb ").and_then(|r| r.split_whitespace().find(|w| w.starts_with("http"))))
                .map(|u| u.split_whitespace().next().unwrap_or(u).to_owned())
        })
        .filter(|u| !u.contains("security"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// The base image, from a debootstrapped root kept as a tarball in the cache.
pub(super) fn ensure_base(tb: &Testbed) -> Result<()> {
    if image_exists(BASE_IMAGE) {
        return Ok(());
    }
    let tarball = tb.cache(&format!("{}.tar", BASE_IMAGE.rsplit('/').next().unwrap_or("base").replace(':', "-")));
    if !tarball.exists() {
        apt_install(tb, &["debootstrap"])?;
        let root = tb.cache("kubenode-rootfs.tmp");
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        say("node: making the node's Debian 12 root with debootstrap (about 1 minute, once)");
        proc::logged(
            Command::new("debootstrap")
                .args(["--variant=minbase", &format!("--include={BASE_PACKAGES}"), "bookworm"])
                .arg(&root)
                .arg(mirror()),
            &tb.log("debootstrap"),
            "debootstrap",
        )?;
        let partial = tarball.with_extension("partial");
        proc::output(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&partial).arg("."))?;
        std::fs::rename(&partial, &tarball)?;
        std::fs::remove_dir_all(&root)?;
    }
    proc::output(
        Command::new("docker")
            .args(["import", "--change", "LABEL org.opencontainers.image.description=\"kind-parity test bed: Debian 12 with containerd, runc and CNI plugins\""])
            .arg(&tarball)
            .arg(BASE_IMAGE),
    )?;
    Ok(())
}

/// Builds `image` from a context folder holding `files` and a Dockerfile.
pub(super) fn docker_build(tb: &Testbed, image: &str, dockerfile: &str, files: &[(&str, &[u8], u32)]) -> Result<()> {
    let context = tempfile::tempdir()?;
    write_file(&context.path().join("Dockerfile"), dockerfile.as_bytes(), 0o644)?;
    for (name, body, mode) in files {
        write_file(&context.path().join(name), body, *mode)?;
    }
    proc::logged(
        Command::new("docker").args(["build", "-q", "-t", image]).arg(context.path()),
        &tb.log("docker-build"),
        &format!("building {image}"),
    )
}

/// The images the node's containerd imports at start: the pause stand-in and CoreDNS.
pub(super) fn ensure_images(tb: &Testbed) -> Result<PathBuf> {
    let dir = tb.cache("node-images");
    std::fs::create_dir_all(&dir)?;
    let pause = dir.join("pause-3.10.tar");
    if !pause.exists() {
        let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY sleep /bin/sleep\n\
            LABEL org.opencontainers.image.description=\"kind-parity test bed: a stand-in for registry.k8s.io/pause (busybox sleep)\"\n\
            ENTRYPOINT [\"/bin/sleep\", \"infinity\"]\n";
        let body = busybox(tb)?;
        // busybox picks its applet by the name it was called by: `sleep` is a copy, not a link.
        docker_build(tb, PAUSE_IMAGE, dockerfile, &[("busybox", &body, 0o755), ("sleep", &body, 0o755)])?;
        save(PAUSE_IMAGE, &pause)?;
    }
    let busybox_tar = dir.join("busybox-2.tar");
    if !busybox_tar.exists() {
        let body = busybox(tb)?;
        let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN [\"/bin/mkdir\", \"-m\", \"1777\", \"/tmp\"]\n\
            ENV PATH=/bin\n\
            LABEL org.opencontainers.image.description=\"kind-parity test bed: the tests' pod image (Debian's busybox-static)\"\n\
            CMD [\"/bin/sh\"]\n";
        docker_build(tb, POD_IMAGE, dockerfile, &[("busybox", &body, 0o755)])?;
        save(POD_IMAGE, &busybox_tar)?;
    }
    let coredns = dir.join(format!("coredns-v{COREDNS}.tar"));
    if !coredns.exists() {
        let bin = GoBuild {
            name: "coredns",
            module: "github.com/coredns/coredns",
            version: &format!("v{COREDNS}"),
            wrap: Wrap::Require,
            programs: &[("github.com/coredns/coredns", "coredns")],
            ldflags: "-s -w".into(),
            expected: "3 minutes",
        }
        .ensure(tb)?;
        let body = std::fs::read(bin.join("coredns"))?;
        // The official image: scratch with /coredns as its entrypoint (coredns/coredns Dockerfile).
        let dockerfile = "FROM scratch\nCOPY coredns /coredns\nEXPOSE 53 53/udp\nENTRYPOINT [\"/coredns\"]\n";
        docker_build(tb, COREDNS_IMAGE, dockerfile, &[("coredns", &body, 0o755)])?;
        save(COREDNS_IMAGE, &coredns)?;
    }
    Ok(dir)
}

/// Debian's static busybox, installed first when missing: the pause stand-in, the tests' pod
/// image and the node stand-in each carry it.
fn busybox(tb: &Testbed) -> Result<Vec<u8>> {
    let path = Path::new("/bin/busybox");
    if !path.exists() {
        apt_install(tb, &["busybox-static"])?;
    }
    std::fs::read(path).context("reading /bin/busybox (Debian's busybox-static)")
}

pub(super) fn save(image: &str, to: &Path) -> Result<()> {
    let partial = to.with_extension("partial");
    proc::output(Command::new("docker").args(["save", "-o"]).arg(&partial).arg(image))?;
    std::fs::rename(&partial, to)?;
    Ok(())
}

/// The node's files, mounted at /testbed/etc; their digest, with the images the node imports at
/// start, names the node's configuration.
fn write_files(tb: &Testbed, images: &Path) -> Result<(PathBuf, String)> {
    let dir = tb.dir.join("node");
    let kubeconfig =
        certs::kubeconfig(&tb.dir.join("certs"), &format!("https://{}:{}", kube::GATEWAY, kube::APISERVER_PORT))?;
    let files: [(&str, &str, u32); 6] = [
        ("start.sh", START, 0o755),
        ("containerd.toml", CONTAINERD, 0o644),
        ("10-bridge.conflist", CNI, 0o644),
        ("kubelet.yaml", KUBELET, 0o644),
        ("kube-proxy.yaml", KUBE_PROXY, 0o644),
        ("kubeconfig", &kubeconfig, 0o600),
    ];
    let mut digest = Sha256::new();
    for (name, body, mode) in files {
        write_file(&dir.join(name), body.as_bytes(), mode)?;
        digest.update(name.as_bytes());
        digest.update(body.as_bytes());
    }
    digest.update(KUBERNETES.as_bytes());
    digest.update(BASE_IMAGE.as_bytes());
    let mut tars: Vec<String> = std::fs::read_dir(images)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tar"))
        .map(|e| format!("{}:{}", e.file_name().to_string_lossy(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .collect();
    tars.sort();
    digest.update(tars.join(",").as_bytes());
    let hex: String = digest.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((dir, hex))
}

/// The node container's state: `(running, config label)`, or `None` when there is none.
fn container() -> Option<(bool, String)> {
    let out = Command::new("docker")
        .args([
            "inspect",
            CONTAINER,
            "--format",
            "{{.State.Running}} {{index .Config.Labels \"kind-parity-testbed.config\"}}",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (running, config) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    Some((running == "true", config.to_owned()))
}

fn node_ready(tb: &Testbed) -> bool {
    kube::kubectl(tb)
        .args(["get", "node", CONTAINER, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"True")
}

pub fn up(tb: &Testbed) -> Result<()> {
    docker::check_privileged()?;
    ensure_base(tb)?;
    if !image_exists(STANDIN_IMAGE) {
        // busybox too: the load tests break a node's ctr on purpose with its applets.
        let dockerfile = format!(
            "FROM {BASE_IMAGE}\nCOPY config.toml /etc/containerd/config.toml\nCOPY busybox /bin/busybox\n\
             LABEL org.opencontainers.image.description=\"kind-parity test bed: a stand-in for a kind node (containerd only)\"\n\
             ENTRYPOINT [\"/usr/bin/containerd\"]\n"
        );
        let busybox = busybox(tb)?;
        docker_build(
            tb,
            STANDIN_IMAGE,
            &dockerfile,
            &[("config.toml", STANDIN_CONTAINERD.as_bytes(), 0o644), ("busybox", &busybox, 0o755)],
        )?;
    }
    let images = ensure_images(tb)?;
    let bin = kube::kubernetes(tb)?;
    let (files, config) = write_files(tb, &images)?;
    kube::ensure_network()?;

    match container() {
        Some((true, found)) if found == config => {}
        Some((running, _)) => {
            say(format!(
                "node: replacing {CONTAINER} ({})",
                if running { "its configuration changed" } else { "it had stopped" }
            ));
            remove_container(tb)?;
            run_container(&bin, &files, &images, &config)?;
        }
        None => run_container(&bin, &files, &images, &config)?,
    }
    // A node whose start script failed has exited: stop waiting at once.
    let ready_or_gone = || node_ready(tb) || !matches!(container(), Some((true, _)));
    let waited = proc::wait_for(&format!("node {CONTAINER}"), Duration::from_secs(120), &tb.log("node"), ready_or_gone);
    if let Err(e) = waited.and_then(|()| if node_ready(tb) { Ok(()) } else { bail!("node {CONTAINER} exited") }) {
        let logs = Command::new("docker").args(["logs", "--tail", "30", CONTAINER]).output();
        let tail = logs
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
            .unwrap_or_default();
        let _ = std::fs::write(tb.log("node"), &tail);
        bail!("{e}\nlast lines of `docker logs {CONTAINER}`:\n{tail}");
    }

    let mut apply = kube::kubectl(tb);
    apply.args(["apply", "--server-side", "--force-conflicts", "--field-manager=kind-parity-testbed", "-f", "-"]);
    pipe(&mut apply, COREDNS_MANIFESTS.as_bytes()).context("applying CoreDNS")?;
    proc::output(kube::kubectl(tb).args([
        "-n",
        "kube-system",
        "rollout",
        "status",
        "deployment/coredns",
        "--timeout=120s",
    ]))
    .context("waiting for CoreDNS to be ready")?;
    say(format!("node: {CONTAINER} Ready (Kubernetes v{KUBERNETES}), CoreDNS at 10.96.0.10"));
    Ok(())
}

pub(super) fn pipe(command: &mut Command, input: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(input)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{:?} failed: {}", command.get_program(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn run_container(bin: &Path, files: &Path, images: &Path, config: &str) -> Result<()> {
    let mount = |from: &Path, to: &str| format!("{}:{to}:ro", from.display());
    docker::docker(&[
        "run",
        "--detach",
        "--name",
        CONTAINER,
        "--hostname",
        CONTAINER,
        "--privileged",
        "--init",
        "--network",
        kube::NETWORK,
        "--ip",
        NODE_IP,
        "--label",
        &format!("io.x-k8s.kind.cluster={CLUSTER}"),
        "--label",
        "io.x-k8s.kind.role=control-plane",
        "--label",
        &format!("kind-parity-testbed.config={config}"),
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp",
        "--volume",
        "/var/lib/containerd",
        "--volume",
        "/var/lib/kubelet",
        "--volume",
        "/lib/modules:/lib/modules:ro",
        "--volume",
        &mount(bin, "/testbed/bin"),
        "--volume",
        &mount(files, "/testbed/etc"),
        "--volume",
        &mount(images, "/testbed/images"),
        "--entrypoint",
        "/testbed/etc/start.sh",
        BASE_IMAGE,
    ])
    .context("starting the node container")?;
    say(format!("node: started {CONTAINER} on {} ({NODE_IP})", kube::NETWORK));
    Ok(())
}

/// Removes the node container and its volumes, the node object, and the kubelet's cgroups.
fn remove_container(tb: &Testbed) -> Result<()> {
    if container().is_some() {
        docker::docker(&["rm", "--force", "--volumes", CONTAINER])?;
    }
    if proc::running(tb, "kube-apiserver").is_some() {
        let _ = kube::kubectl(tb).args(["delete", "node", CONTAINER, "--ignore-not-found", "--wait=false"]).output();
    }
    remove_cgroups(CLUSTER);
    Ok(())
}

/// A kubelet's cgroup folders (its `cgroupRoot`, `/kind-parity-testbed` for the test bed's
/// node), deepest first: a cgroup goes only once it is empty, and the container's removal ended
/// every process in them.
pub(super) fn remove_cgroups(cgroup_root: &str) {
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for controller in controllers.flatten() {
        let root = controller.path().join(cgroup_root);
        if root.is_dir() {
            let mut dirs = Vec::new();
            collect_dirs(&root, &mut dirs);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for dir in dirs {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_owned());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

pub fn down(tb: &Testbed) -> Result<()> {
    if !docker::answers() {
        return Ok(());
    }
    if container().is_some() {
        remove_container(tb)?;
        say(format!("removed the node {CONTAINER}"));
    }
    // Only the test bed's own network, and only once nothing uses it.
    let labelled = Command::new("docker")
        .args([
            "network",
            "inspect",
            kube::NETWORK,
            "--format",
            "{{index .Labels \"kind-parity-testbed\"}} {{len .Containers}}",
        ])
        .output();
    if let Ok(out) = labelled
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).trim() == "1 0"
    {
        docker::docker(&["network", "rm", kube::NETWORK])?;
    }
    Ok(())
}

pub fn env(_tb: &Testbed) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    if docker::answers() {
        if image_exists(STANDIN_IMAGE) {
            vars.push(("KIND_PARITY_TEST_NODE_IMAGE".to_owned(), STANDIN_IMAGE.to_owned()));
        }
        if matches!(container(), Some((true, _))) {
            vars.push(("KIND_PARITY_TEST_CLUSTER".to_owned(), CLUSTER.to_owned()));
            vars.push(("KIND_PARITY_TEST_POD_IMAGE".to_owned(), POD_IMAGE.to_owned()));
        }
    }
    Ok(vars)
}

pub fn status(tb: &Testbed) -> Vec<(String, String)> {
    let state = match container() {
        Some((true, _)) if node_ready(tb) => format!("{CONTAINER}: Ready, Kubernetes v{KUBERNETES}"),
        Some((true, _)) => format!("{CONTAINER}: running, not Ready (docker logs {CONTAINER})"),
        Some((false, _)) => format!("{CONTAINER}: stopped"),
        None => "not running".into(),
    };
    vec![("node".to_owned(), state)]
}

/// The test bed's images in the engine.
pub fn cached_images() -> Vec<String> {
    if !docker::answers() {
        return Vec::new();
    }
    [BASE_IMAGE, STANDIN_IMAGE, PAUSE_IMAGE, POD_IMAGE, COREDNS_IMAGE]
        .iter()
        .filter(|i| image_exists(i))
        .map(|i| format!("image {i}"))
        .collect()
}
