//! The `kind` part: a **stand-in** for kind v0.29.0, on `PATH` as `kind` (the test bed's `bin/`),
//! until a real kind with a node image built to its contract runs here.
//!
//! It is this same xtask binary, copied to `bin/kind`, answering when called by that name with
//! the commands kind-parity runs: `version`, `get clusters`, `get nodes`, `create cluster`,
//! `delete cluster`, `export logs`, `export kubeconfig`, `load docker-image`. `create cluster`
//! reads the rendered kind config and starts one node container as kind does (labelled
//! `io.x-k8s.kind.cluster=<name>` and `io.x-k8s.kind.role=control-plane`, on the Docker network
//! `kind`, the config's `extraPortMappings` published, its kubeadm patches' `node-labels`
//! applied, the API server on a loopback port), runs in it the control plane (etcd,
//! kube-apiserver, controller manager, scheduler), containerd, kube-proxy and the kubelet that the
//! test bed builds, installs what kind installs (CoreDNS, kind's local-path storage as the default
//! StorageClass `standard`), and writes the cluster's context `kind-<name>` into the kubeconfig
//! it is given. Where kind pulls images (its nodes pull the stack's from their registries), the
//! stand-in loads the stack images the test bed built, with kind-parity's own loader.
//!
//! What differs from kind: no systemd or kubeadm in the node (a script starts the programs, see
//! `files/node/start.sh`), Debian's containerd 1.6 and bridge CNI instead of kindnetd, one node
//! (a config with workers is refused), and `--image` is recorded, not booted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::gobuild::{GoBuild, Wrap};
use super::{KUBERNETES, Testbed, certs, docker, kube, node, proc, stack, write_file};

/// The kind release whose behaviour the stand-in follows: the pinned node image's.
pub const VERSION: &str = "v0.29.0";
const NETWORK: &str = "kind";
const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
const ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// kind v0.29.0's storage images (pkg/build/nodeimage/const_storage.go).
const PROVISIONER_IMAGE: &str = "docker.io/kindest/local-path-provisioner:v20250214-acbabc1a";
const HELPER_IMAGE: &str = "docker.io/kindest/local-path-helper:v20241212-8ac705d0";
/// The local-path-provisioner release kind v0.29.0 builds its image from
/// (images/local-path-provisioner/Makefile, `VERSION`).
const PROVISIONER_VERSION: &str = "v0.0.30";
const STORAGE: &str = include_str!("files/kind/storage.yaml");
const COREDNS: &str = include_str!("files/node/coredns.yaml");

/// `bin/kind` in the test bed.
pub fn program(tb: &Testbed) -> PathBuf {
    tb.dir.join("bin").join("kind")
}

/// Installs the stand-in and builds what its clusters need.
pub fn up(tb: &Testbed) -> Result<()> {
    kube::kubernetes(tb)?;
    kube::etcd(tb)?;
    node::ensure_base(tb)?;
    node::ensure_images(tb)?;
    storage_images(tb)?;
    ensure_hosts()?;
    let real = real_kind(tb)?;
    let me = std::env::current_exe().context("finding the xtask binary")?;
    let body = std::fs::read(&me).with_context(|| format!("reading {}", me.display()))?;
    write_file(&program(tb), &body, 0o755)?;
    super::say(format!(
        "kind: stand-in for kind {VERSION} at {} (put {} first on PATH)",
        program(tb).display(),
        program(tb).parent().unwrap_or(Path::new(".")).display()
    ));
    super::say(format!(
        "kind: the real kind {VERSION} at {} (not on PATH yet: its node image is the `kindnode` part, docs/testbed.md)",
        real.display()
    ));
    Ok(())
}

/// The real kind, built from its Go module (`sigs.k8s.io/kind` has no replace directives, so a
/// wrapper that only requires it builds what `go install sigs.k8s.io/kind@v0.29.0` would). Kept
/// off PATH, where it would take the stand-in's place, until a node image made here boots.
pub fn real_kind(tb: &Testbed) -> Result<PathBuf> {
    let bin = GoBuild {
        name: "kind",
        module: "sigs.k8s.io/kind",
        version: VERSION,
        wrap: Wrap::Require,
        programs: &[("sigs.k8s.io/kind", "kind")],
        // kind's version is a constant in pkg/cmd/kind/version (versionCore); only the commit
        // is stamped at release, and a module build has none to give.
        ldflags: "-s -w".into(),
        expected: "2 minutes",
    }
    .ensure(tb)?;
    Ok(bin.join("kind"))
}

const HOSTS: &str = "/etc/hosts";
const HOSTS_BEGIN: &str = "# kind-parity test bed: the demo's hosts, as public DNS resolves localtest.me (begin)";
const HOSTS_END: &str = "# kind-parity test bed (end)";

/// The demo stack's browser hosts on 127.0.0.1 in `/etc/hosts`, in a marked block: public DNS
/// resolves every `*.localtest.me` to 127.0.0.1, and this machine reaches no public DNS.
fn ensure_hosts() -> Result<()> {
    let empty = tempfile::tempdir()?;
    let options = kind_parity_render::LoadOptions {
        config: None,
        dir: empty.path().to_owned(),
        env: Vec::new(),
        overrides: Vec::new(),
    };
    let demo = kind_parity_render::load(&options).context("loading the embedded demo config")?;
    let hosts = demo.config.browser_hosts();
    let block = format!("{HOSTS_BEGIN}\n127.0.0.1 {}\n{HOSTS_END}\n", hosts.join(" "));
    let text = std::fs::read_to_string(HOSTS).unwrap_or_default();
    let kept = without_block(&text);
    let wanted = format!("{kept}{block}");
    if wanted != text {
        std::fs::write(HOSTS, wanted).with_context(|| format!("writing {HOSTS}"))?;
        super::say(format!("kind: {} resolve to 127.0.0.1 through {HOSTS} (no public DNS here)", hosts.join(", ")));
    }
    Ok(())
}

/// `text` without the test bed's block.
fn without_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        match line {
            l if l == HOSTS_BEGIN => inside = true,
            l if l == HOSTS_END => inside = false,
            l if !inside => {
                out.push_str(l);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Removes the stand-in's clusters and the hosts block (`testbed down`).
pub fn down(tb: &Testbed) -> Result<()> {
    if docker::answers() {
        // Only the clusters the stand-in made (their folder is the stand-in's), never a real kind's.
        for cluster in clusters()? {
            if cluster_dir(tb, &cluster).is_dir() {
                delete(&cluster, &kubeconfig_path(&[]))?;
            }
        }
    }
    let text = std::fs::read_to_string(HOSTS).unwrap_or_default();
    let kept = without_block(&text);
    if kept != text {
        std::fs::write(HOSTS, kept).with_context(|| format!("writing {HOSTS}"))?;
    }
    Ok(())
}

/// When the machine has no `kind` on PATH: PATH with the test bed's stand-in first (saying so),
/// or an error naming both ways out. `None` when a `kind` answers.
pub fn path_with_standin() -> Result<Option<std::ffi::OsString>> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if Command::new("kind").arg("version").output().is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let standin =
        super::env_vars()?.into_iter().find(|(k, _)| k == "KIND_PARITY_TEST_KIND").map(|(_, v)| PathBuf::from(v));
    let Some(standin) = standin.filter(|p| p.is_file()) else {
        bail!(
            "kind is not installed and the test bed's kind stand-in is not up: install kind (https://kind.sigs.k8s.io), or run `cargo xtask testbed up kind`"
        );
    };
    eprintln!("note: no kind on PATH; using the test bed's kind STAND-IN {} (docs/testbed.md)", standin.display());
    let dirs =
        std::iter::once(standin.parent().unwrap_or(Path::new("/")).to_path_buf()).chain(std::env::split_paths(&path));
    Ok(Some(std::env::join_paths(dirs).context("building PATH")?))
}

pub fn env(tb: &Testbed) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    if program(tb).is_file() {
        vars.push(("KIND_PARITY_TEST_KIND".to_owned(), program(tb).display().to_string()));
    }
    let real = tb.cache(&format!("kind-{VERSION}")).join("bin/kind");
    if real.is_file() {
        vars.push(("KIND_PARITY_TEST_REAL_KIND".to_owned(), real.display().to_string()));
    }
    vars
}

pub fn status(tb: &Testbed) -> Vec<(String, String)> {
    let state = if program(tb).is_file() {
        let clusters = clusters().unwrap_or_default();
        format!("stand-in for kind {VERSION} at {}; clusters: {}", program(tb).display(), clusters.join(", "))
    } else {
        "not installed".into()
    };
    vec![("kind".to_owned(), state)]
}

/// The storage images of kind's node image, saved beside the node's other images.
pub(super) fn storage_images(tb: &Testbed) -> Result<PathBuf> {
    let dir = tb.cache("kind-images");
    std::fs::create_dir_all(&dir)?;
    let provisioner = dir.join("local-path-provisioner.tar");
    if !provisioner.exists() {
        let bin = GoBuild {
            name: "local-path-provisioner",
            module: "github.com/rancher/local-path-provisioner",
            version: PROVISIONER_VERSION,
            wrap: Wrap::Require,
            programs: &[("github.com/rancher/local-path-provisioner", "local-path-provisioner")],
            ldflags: format!("-s -w -X main.VERSION={PROVISIONER_VERSION}"),
            expected: "2 minutes",
        }
        .ensure(tb)?;
        // kind's image (images/local-path-provisioner/Dockerfile): the binary in
        // /usr/local/bin on distroless; built static here, so scratch serves.
        let dockerfile = format!(
            "FROM scratch\nCOPY local-path-provisioner /usr/local/bin/local-path-provisioner\n\
             LABEL org.opencontainers.image.description=\"kind-parity test bed: rancher local-path-provisioner {PROVISIONER_VERSION} built from its Go module, as kind's image\"\n\
             ENTRYPOINT [\"/usr/local/bin/local-path-provisioner\"]\n"
        );
        node::docker_build(
            tb,
            PROVISIONER_IMAGE,
            &dockerfile,
            &[("local-path-provisioner", &std::fs::read(bin.join("local-path-provisioner"))?, 0o755)],
        )?;
        node::save(PROVISIONER_IMAGE, &provisioner)?;
    }
    let helper = dir.join("local-path-helper.tar");
    if !helper.exists() {
        // kind's helper (images/local-path-helper) is `sh`, `mkdir` and `rm` on distroless; the
        // test bed's busybox image carries the same commands.
        let dockerfile = format!(
            "FROM {}\nLABEL org.opencontainers.image.description=\"kind-parity test bed: a stand-in for kind's local-path helper (busybox sh, mkdir, rm)\"\n",
            node::POD_IMAGE
        );
        node::docker_build(tb, HELPER_IMAGE, &dockerfile, &[])?;
        node::save(HELPER_IMAGE, &helper)?;
    }
    Ok(dir)
}

// ---- the stand-in itself, run as `kind ARGS` ----

/// `kind ARGS`, as the stand-in.
pub fn main(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| if a == name { args.get(i + 1).map(String::as_str) } else { a.strip_prefix(&prefix) })
}

fn dispatch(args: &[String]) -> Result<()> {
    let words: Vec<&str> = args.iter().take_while(|a| !a.starts_with('-')).map(String::as_str).collect();
    let name = flag(args, "--name").unwrap_or("kind");
    match words.as_slice() {
        ["version"] => {
            println!("kind {VERSION} (kind-parity test bed stand-in) linux/amd64");
            Ok(())
        }
        ["get", "clusters"] => {
            let clusters = clusters()?;
            if clusters.is_empty() {
                eprintln!("No kind clusters found.");
            }
            for c in clusters {
                println!("{c}");
            }
            Ok(())
        }
        ["get", "nodes"] => {
            let nodes = nodes(name)?;
            if nodes.is_empty() {
                eprintln!("No kind nodes found for cluster \"{name}\".");
            }
            for n in nodes {
                println!("{n}");
            }
            Ok(())
        }
        ["create", "cluster"] => create(args, name),
        ["delete", "cluster"] => delete(name, &kubeconfig_path(args)),
        ["export", "logs", rest @ ..] => export_logs(name, rest.first().copied()),
        ["export", "kubeconfig"] => {
            let tb = Testbed::from_env()?;
            write_kubeconfig(&tb, name, &kubeconfig_path(args), api_port(name)?)
        }
        ["load", "docker-image", images @ ..] => {
            load(name, &images.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).map(drop)
        }
        _ => bail!(
            "the kind-parity test bed's kind stand-in does not implement `kind {}` (it implements version, get clusters|nodes, create|delete cluster, export logs|kubeconfig, load docker-image)",
            args.join(" ")
        ),
    }
}

/// kind's rule: `--kubeconfig`, else `$KUBECONFIG`'s first file, else `~/.kube/config`.
fn kubeconfig_path(args: &[String]) -> PathBuf {
    if let Some(path) = flag(args, "--kubeconfig") {
        return PathBuf::from(path);
    }
    if let Some(first) = std::env::var_os("KUBECONFIG").and_then(|k| std::env::split_paths(&k).next()) {
        return first;
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
}

fn clusters() -> Result<Vec<String>> {
    let out = docker::docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={CLUSTER_LABEL}"),
        "--format",
        &format!("{{{{.Label \"{CLUSTER_LABEL}\"}}}}"),
    ])?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

fn nodes(cluster: &str) -> Result<Vec<String>> {
    let out = docker::docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={CLUSTER_LABEL}={cluster}"),
        "--format",
        "{{.Names}}",
    ])?;
    let mut nodes: Vec<String> = out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    nodes.sort();
    Ok(nodes)
}

/// What the stand-in reads of a kind config.
#[derive(Debug, Default, PartialEq)]
struct ClusterConfig {
    /// `(listenAddress, hostPort, containerPort, protocol)`.
    ports: Vec<(String, u16, u16, String)>,
    node_labels: Vec<String>,
    service_subnet: Option<String>,
    workers: usize,
    containerd_patches: Vec<String>,
}

fn parse_config(text: &str) -> Result<ClusterConfig> {
    let doc: serde_json::Value = serde_yaml_ng::from_str(text).context("reading the kind config")?;
    if doc["kind"] != "Cluster" {
        bail!("the kind config is not `kind: Cluster`");
    }
    let mut config = ClusterConfig {
        service_subnet: doc["networking"]["serviceSubnet"].as_str().map(str::to_owned),
        ..ClusterConfig::default()
    };
    let nodes = doc["nodes"].as_array().cloned().unwrap_or_else(|| vec![serde_json::json!({"role": "control-plane"})]);
    for n in &nodes {
        match n["role"].as_str().unwrap_or("control-plane") {
            "control-plane" => {
                for m in n["extraPortMappings"].as_array().into_iter().flatten() {
                    let port = |k: &str| m[k].as_u64().and_then(|p| u16::try_from(p).ok());
                    let (Some(container), host) = (port("containerPort"), port("hostPort")) else {
                        bail!("an extraPortMapping without a containerPort");
                    };
                    config.ports.push((
                        m["listenAddress"].as_str().unwrap_or("0.0.0.0").to_owned(),
                        host.unwrap_or(container),
                        container,
                        m["protocol"].as_str().unwrap_or("TCP").to_lowercase(),
                    ));
                }
                for patch in n["kubeadmConfigPatches"].as_array().into_iter().flatten() {
                    let patch: serde_json::Value = serde_yaml_ng::from_str(patch.as_str().unwrap_or_default())
                        .context("reading a kubeadmConfigPatch")?;
                    let args = &patch["nodeRegistration"]["kubeletExtraArgs"];
                    // kubeadm v1beta3 writes a map, v1beta4 a list of {name, value}.
                    let labels = args["node-labels"].as_str().map(str::to_owned).or_else(|| {
                        args.as_array()?
                            .iter()
                            .find(|a| a["name"] == "node-labels")
                            .and_then(|a| a["value"].as_str().map(str::to_owned))
                    });
                    config.node_labels.extend(labels.into_iter().flat_map(|l| {
                        l.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>()
                    }));
                }
            }
            "worker" => config.workers += 1,
            other => bail!("unknown node role `{other}`"),
        }
    }
    if nodes.iter().filter(|n| n["role"].as_str().unwrap_or("control-plane") == "control-plane").count() != 1 {
        bail!("the stand-in runs exactly one control-plane node");
    }
    config.containerd_patches = doc["containerdConfigPatches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    Ok(config)
}

/// The node's containerd config: the test bed's, with the config's patches merged in as kind
/// merges them (a TOML merge patch).
fn containerd_config(patches: &[String]) -> Result<String> {
    let mut base: toml::Table = toml::from_str(include_str!("files/node/containerd.toml"))?;
    for patch in patches {
        let patch: toml::Table = toml::from_str(patch).context("reading a containerdConfigPatch")?;
        merge(&mut base, patch);
    }
    Ok(toml::to_string(&base)?)
}

fn merge(base: &mut toml::Table, patch: toml::Table) {
    for (key, value) in patch {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p)) => merge(b, p),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn container_name(cluster: &str) -> String {
    format!("{cluster}-control-plane")
}

fn cluster_dir(tb: &Testbed, cluster: &str) -> PathBuf {
    tb.dir.join("kind").join(cluster)
}

/// A free loopback port for the API server, as kind picks one.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn api_port(cluster: &str) -> Result<u16> {
    let out = docker::docker(&["port", &container_name(cluster), "6443/tcp"])
        .with_context(|| format!("cluster \"{cluster}\" has no API server port (is it running?)"))?;
    out.lines()
        .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
        .with_context(|| format!("reading the API server port of {cluster}: {out}"))
}

fn create(args: &[String], name: &str) -> Result<()> {
    let tb = Testbed::from_env()?;
    let started = Instant::now();
    let wait = flag(args, "--wait").map(humantime::parse_duration).transpose()?.unwrap_or(Duration::from_secs(120));
    let config = match flag(args, "--config") {
        Some(path) => parse_config(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)?,
        None => ClusterConfig::default(),
    };
    if config.workers > 0 {
        bail!(
            "the test bed's kind stand-in runs one node; this config asks for {} worker(s) (real kind runs them)",
            config.workers
        );
    }
    if !nodes(name)?.is_empty() {
        bail!("failed to create cluster: node(s) already exist for a cluster with the name \"{name}\"");
    }
    let image = flag(args, "--image").unwrap_or("kindest/node (the stand-in's own node)");
    eprintln!("Creating cluster \"{name}\" ...");
    eprintln!(" • Ensuring node image ({image}: the test bed's stand-in node runs instead) ...");
    let bin = kube::kubernetes(&tb)?;
    let etcd = kube::etcd(&tb)?;
    node::ensure_base(&tb)?;
    let node_images = node::ensure_images(&tb)?;
    let kind_images = storage_images(&tb)?;

    let node = container_name(name);
    let dir = cluster_dir(&tb, name);
    let _ = std::fs::remove_dir_all(&dir);
    let etc = dir.join("etc");
    certs::ensure(&etc.join("certs"), &["127.0.0.1", kube::KUBERNETES_SERVICE_IP, &node])?;
    let cgroup_root = format!("kind-standin-{name}");
    let kubelet = include_str!("files/node/kubelet.yaml")
        .replace("cgroupRoot: /kind-parity-testbed", &format!("cgroupRoot: /{cgroup_root}"));
    let files: [(&str, String, u32); 5] = [
        ("start.sh", include_str!("files/node/start.sh").to_owned(), 0o755),
        ("containerd.toml", containerd_config(&config.containerd_patches)?, 0o644),
        ("10-bridge.conflist", include_str!("files/node/10-bridge.conflist").to_owned(), 0o644),
        ("kubelet.yaml", kubelet, 0o644),
        ("kube-proxy.yaml", include_str!("files/node/kube-proxy.yaml").to_owned(), 0o644),
    ];
    for (file, body, mode) in &files {
        write_file(&etc.join(file), body.as_bytes(), *mode)?;
    }
    write_file(
        &etc.join("kubeconfig"),
        certs::kubeconfig(&etc.join("certs"), "https://127.0.0.1:6443")?.as_bytes(),
        0o600,
    )?;

    ensure_network()?;
    eprintln!(" • Preparing nodes ...");
    let api = free_port()?;
    let mount = |from: &Path, to: &str| format!("{}:{to}:ro", from.display());
    let mut run: Vec<String> = [
        "run",
        "--detach",
        "--name",
        &node,
        "--hostname",
        &node,
        "--privileged",
        "--init",
        "--network",
        NETWORK,
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp",
        "--volume",
        "/var",
        "--volume",
        "/lib/modules:/lib/modules:ro",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    run.extend([
        "--label".into(),
        format!("{CLUSTER_LABEL}={name}"),
        "--label".into(),
        format!("{ROLE_LABEL}=control-plane"),
    ]);
    run.extend(["--publish".into(), format!("127.0.0.1:{api}:6443/tcp")]);
    for (address, host, container, protocol) in &config.ports {
        run.extend(["--publish".into(), format!("{address}:{host}:{container}/{protocol}")]);
    }
    let mut labels = config.node_labels.clone();
    labels.dedup();
    for (key, value) in [
        ("CONTROL_PLANE", "1".to_owned()),
        ("CGROUP_ROOT", cgroup_root),
        ("NODE_LABELS", labels.join(",")),
        ("SERVICE_CIDR", config.service_subnet.clone().unwrap_or_else(|| kube::SERVICE_CIDR.to_owned())),
    ] {
        run.extend(["--env".into(), format!("{key}={value}")]);
    }
    for (from, to) in [
        (&bin, "/testbed/bin"),
        (&etcd, "/testbed/etcd"),
        (&etc, "/testbed/etc"),
        (&node_images, "/testbed/node-images"),
        (&kind_images, "/testbed/images"),
    ] {
        run.extend(["--volume".into(), mount(from, to)]);
    }
    run.extend(["--entrypoint".into(), "/testbed/etc/start.sh".into(), node::BASE_IMAGE.into()]);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    docker::docker(&run).context("starting the node container")?;

    let admin = dir.join("admin.kubeconfig");
    write_file(&admin, certs::kubeconfig(&etc.join("certs"), &format!("https://127.0.0.1:{api}"))?.as_bytes(), 0o600)?;
    let kubectl = || {
        let mut c = Command::new(bin.join("kubectl"));
        c.arg("--kubeconfig").arg(&admin);
        c
    };
    eprintln!(" • Starting control-plane ...");
    let deadline = Instant::now() + wait.max(Duration::from_secs(60));
    let node_ready = || {
        kubectl()
            .args(["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout == b"True")
    };
    while !node_ready() {
        if Instant::now() > deadline || !running(&node) {
            let logs = docker::docker(&["logs", "--tail", "30", &node]).unwrap_or_default();
            bail!("node {node} did not become Ready in {}s; last lines of its log:\n{logs}", wait.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // As kind labels its control-plane node (kubeadm's role label; the kubelet may not set it).
    proc::output(kubectl().args(["label", "node", &node, "--overwrite", "node-role.kubernetes.io/control-plane="]))?;
    eprintln!(" • Installing StorageClass and CoreDNS ...");
    for manifest in [COREDNS, STORAGE] {
        let mut apply = kubectl();
        apply.args(["apply", "--server-side", "--field-manager=kind", "-f", "-"]);
        node::pipe(&mut apply, manifest.as_bytes())?;
    }
    for (namespace, deployment) in [("kube-system", "coredns"), ("local-path-storage", "local-path-provisioner")] {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(30));
        proc::output(kubectl().args([
            "-n",
            namespace,
            "rollout",
            "status",
            &format!("deployment/{deployment}"),
            &format!("--timeout={}s", left.as_secs()),
        ]))
        .with_context(|| format!("waiting for {deployment}"))?;
    }
    let stack: Vec<String> = stack::references().into_iter().filter(|r| node::image_exists(r)).collect();
    if !stack.is_empty() {
        eprintln!(" • Loading the test bed's stack images (kind nodes would pull them) with kind-parity's loader ...");
        load(name, &stack)?;
    }
    write_kubeconfig(&tb, name, &kubeconfig_path(args), api)?;
    eprintln!(
        "Set kubectl context to \"kind-{name}\"\nThe test bed's stand-in cluster \"{name}\" is ready in {:.0}s (Kubernetes v{KUBERNETES})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn running(container: &str) -> bool {
    docker::docker(&["inspect", container, "--format", "{{.State.Running}}"]).is_ok_and(|o| o.trim() == "true")
}

fn ensure_network() -> Result<()> {
    if docker::docker(&["network", "inspect", NETWORK]).is_err() {
        // As kind makes it: a bridge with masquerading (pkg/cluster/internal/providers/docker/network.go).
        docker::docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "-o",
            "com.docker.network.bridge.enable_ip_masquerade=true",
            NETWORK,
        ])?;
    }
    Ok(())
}

/// Loads `images` into the cluster's nodes with kind-parity's loader (skips what is there).
fn load(cluster: &str, images: &[String]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let docker = kind_parity_images::connect().await?;
        kind_parity_images::load::load(&docker, cluster, images, &|_| {}).await
    })?;
    for node in &report.nodes {
        eprintln!("   {} ({} bytes sent in {:.1}s)", node.node, node.bytes_sent, node.elapsed.as_secs_f64());
    }
    Ok(())
}

/// Merges the cluster's `kind-<name>` entries into `path`, as kind does, with kubectl.
fn write_kubeconfig(tb: &Testbed, cluster: &str, path: &Path, api: u16) -> Result<()> {
    let certs = cluster_dir(tb, cluster).join("etc/certs");
    let context = format!("kind-{cluster}");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let kubectl = kube::kubectl_program(tb);
    let run = |args: &[&str]| -> Result<()> {
        proc::output(Command::new(&kubectl).arg("--kubeconfig").arg(path).args(["config"]).args(args)).map(drop)
    };
    let c = |name: &str| certs.join(name).display().to_string();
    run(&[
        "set-cluster",
        &context,
        &format!("--server=https://127.0.0.1:{api}"),
        &format!("--certificate-authority={}", c("ca.crt")),
        "--embed-certs",
    ])?;
    run(&[
        "set-credentials",
        &context,
        &format!("--client-certificate={}", c("admin.crt")),
        &format!("--client-key={}", c("admin.key")),
        "--embed-certs",
    ])?;
    run(&["set-context", &context, &format!("--cluster={context}"), &format!("--user={context}")])?;
    run(&["use-context", &context])?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn delete(name: &str, kubeconfig: &Path) -> Result<()> {
    let tb = Testbed::from_env()?;
    eprintln!("Deleting cluster \"{name}\" ...");
    for node in nodes(name)? {
        docker::docker(&["rm", "--force", "--volumes", &node])?;
        eprintln!("Deleted nodes: [\"{node}\"]");
    }
    node::remove_cgroups(&format!("kind-standin-{name}"));
    if kubeconfig.exists() {
        let kubectl = kube::kubectl_program(&tb);
        let context = format!("kind-{name}");
        for what in ["delete-context", "delete-cluster", "delete-user"] {
            let _ =
                Command::new(&kubectl).arg("--kubeconfig").arg(kubeconfig).args(["config", what, &context]).output();
        }
        let current =
            Command::new(&kubectl).arg("--kubeconfig").arg(kubeconfig).args(["config", "current-context"]).output();
        if current.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == context) {
            let _ = Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["config", "unset", "current-context"])
                .output();
        }
    }
    let _ = std::fs::remove_dir_all(cluster_dir(&tb, name));
    Ok(())
}

/// `kind export logs [DIR]`: per node, its container's log and inspect output, and `/var/log`
/// (the kubelet's pods and containers, containerd, the control plane).
fn export_logs(name: &str, dir: Option<&str>) -> Result<()> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join(format!("kind-logs-{name}")));
    let nodes = nodes(name)?;
    if nodes.is_empty() {
        bail!("unknown cluster \"{name}\"");
    }
    for node in nodes {
        let out = dir.join(&node);
        std::fs::create_dir_all(&out)?;
        let logs = Command::new("docker").args(["logs", &node]).output()?;
        std::fs::write(out.join("serial.log"), [logs.stdout, logs.stderr].concat())?;
        std::fs::write(out.join("inspect.json"), docker::docker(&["inspect", &node])?)?;
        std::fs::write(out.join("kubernetes-version.txt"), format!("v{KUBERNETES}\n"))?;
        let copied =
            Command::new("docker").args(["cp", &format!("{node}:/var/log/."), &out.display().to_string()]).output()?;
        if !copied.status.success() {
            eprintln!("WARNING: copying {node}:/var/log: {}", String::from_utf8_lossy(&copied.stderr).trim());
        }
    }
    eprintln!("Exporting logs for cluster \"{name}\" to:");
    println!("{}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: kp-demo
networking:
  serviceSubnet: 10.96.0.0/16
nodes:
- role: control-plane
  image: "kindest/node:v1.33.1"
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "ingress-ready=true"
  extraPortMappings:
  - containerPort: 80
    hostPort: 8080
    listenAddress: "127.0.0.1"
    protocol: TCP
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
"#;

    #[test]
    fn reads_ports_labels_and_patches_of_a_rendered_config() {
        let config = parse_config(RENDERED).unwrap();
        assert_eq!(config.ports, vec![("127.0.0.1".into(), 8080, 80, "tcp".into())]);
        assert_eq!(config.node_labels, vec!["ingress-ready=true".to_owned()]);
        assert_eq!(config.service_subnet.as_deref(), Some("10.96.0.0/16"));
        assert_eq!((config.workers, config.containerd_patches.len()), (0, 1));
    }

    #[test]
    fn counts_workers() {
        let config =
            parse_config("kind: Cluster\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n").unwrap();
        assert_eq!(config.workers, 2);
    }

    #[test]
    fn a_containerd_patch_merges_into_the_nodes_config() {
        let merged =
            containerd_config(&["[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/x\"\n".into()])
                .unwrap();
        let table: toml::Table = toml::from_str(&merged).unwrap();
        let cri = &table["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(cri["registry"]["config_path"].as_str(), Some("/x"));
        // What the patch does not name stays.
        assert_eq!(cri["sandbox_image"].as_str(), Some("registry.k8s.io/pause:3.10"));
    }

    #[test]
    fn the_hosts_block_is_removed_whole_and_nothing_else() {
        let text =
            format!("127.0.0.1 localhost\n{HOSTS_BEGIN}\n127.0.0.1 api.localtest.me\n{HOSTS_END}\n::1 localhost\n");
        assert_eq!(without_block(&text), "127.0.0.1 localhost\n::1 localhost\n");
    }

    #[test]
    fn flags_take_both_forms() {
        let args: Vec<String> = ["create", "cluster", "--name", "a", "--wait=30s"].map(String::from).to_vec();
        assert_eq!((flag(&args, "--name"), flag(&args, "--wait")), (Some("a"), Some("30s")));
        assert_eq!(flag(&args, "--config"), None);
    }
}
