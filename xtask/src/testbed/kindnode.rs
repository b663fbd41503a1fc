//! The `kindnode` part (work in progress, not in the default parts yet): `kindest/node:v1.33.1`
//! made here to kind v0.29.0's node-image contract, so the real kind can create clusters on a
//! machine that reaches no container registry. docs/kind-node-image.md is the contract, read from
//! kind v0.29.0's source; this follows its recipe:
//!
//! - the base: a Debian 12 root (debootstrap) with systemd and the packages kind's base image
//!   installs, Debian's containerd 1.6, runc and CNI plugins in the places kind's files name, and
//!   kind's own base files (`images/base/files` of the kind module the `kind` part builds);
//! - what `kind build node-image` adds: kubeadm, kubelet and kubectl v1.33.1 (the test bed's
//!   build), `/kind/version`, `/kind/manifests/default-{cni,storage}.yaml` (kind's constants);
//! - preloaded in its containerd (namespace `k8s.io`, imported as kind's image importer does),
//!   every image kubeadm and kind ask for, each from its Go module or from Debian: the control
//!   plane and kube-proxy, etcd, CoreDNS, pause (Kubernetes' pause.c), kindnetd (kind's own
//!   source, vendored under `files/kindnode/kindnetd`), local-path-provisioner and its helper.
//!
//! The machine's one trap that kind's files do not handle is handled in the image: containerd's
//! CRI `restrict_oom_score_adj = true` (kind sets it only inside a user namespace, which this
//! machine is not in, and the kernel refuses pods' -998 without CAP_SYS_RESOURCE).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::gobuild::{GoBuild, Wrap};
use super::{KUBERNETES, Testbed, apt_install, kind, kube, node, proc, say, stack, write_file};

/// The node image, as kind's default names it (without the digest, which a local build never has).
pub const IMAGE: &str = "kindest/node:v1.33.1";
/// The recipe's generation: a change to what goes into the image bumps it.
const RECIPE: &str = "1";
const RECIPE_LABEL: &str = "kind-parity-testbed.recipe";
/// cri-tools: kind v0.29.0 pins v1.33.0, which the module proxy here does not serve; v1.34.0
/// speaks the same CRI v1.
const CRICTL: &str = "v1.34.0";
/// kind v0.29.0's default CNI image (pkg/build/nodeimage/const_cni.go).
const KINDNETD_IMAGE: &str = "docker.io/kindest/kindnetd:v20250512-df8de77b";
/// The packages kind's base image installs (images/base/Dockerfile, v0.29.0), minus
/// fuse-overlayfs, nfs-common and open-iscsi (rootless and storage drivers: not used here), plus
/// Debian's containerd, runc and CNI plugins in place of kind's own builds of them.
const BASE_PACKAGES: &[&str] = &[
    "systemd",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "containerd",
    "runc",
    "containernetworking-plugins",
];
const KINDNETD_SOURCES: &[(&str, &str)] = &[
    ("go.mod", include_str!("files/kindnode/kindnetd/go.mod")),
    ("go.sum", include_str!("files/kindnode/kindnetd/go.sum")),
    ("cmd/kindnetd/main.go", include_str!("files/kindnode/kindnetd/cmd/kindnetd/main.go")),
    ("cmd/kindnetd/cni.go", include_str!("files/kindnode/kindnetd/cmd/kindnetd/cni.go")),
    ("cmd/kindnetd/masq.go", include_str!("files/kindnode/kindnetd/cmd/kindnetd/masq.go")),
    ("cmd/kindnetd/routes.go", include_str!("files/kindnode/kindnetd/cmd/kindnetd/routes.go")),
];

pub fn up(tb: &Testbed) -> Result<()> {
    inotify_limits();
    let kind_module = kind_module(tb)?;
    if recipe_of(IMAGE).as_deref() == Some(RECIPE) {
        say(format!("kindnode: {IMAGE} (recipe {RECIPE}) is in the engine"));
        return Ok(());
    }
    let tarball = tb.cache(&format!("kindnode-v{KUBERNETES}-{RECIPE}.tar"));
    if tarball.exists() {
        proc::output(Command::new("docker").arg("load").arg("-i").arg(&tarball))?;
        say(format!("kindnode: {IMAGE} loaded from {}", tarball.display()));
        return Ok(());
    }
    let started = std::time::Instant::now();
    let images = component_images(tb, &kind_module)?;
    let base = base_image(tb, &kind_module)?;
    preload(&base, &images)?;
    node::save(IMAGE, &tarball)?;
    say(format!("kindnode: built {IMAGE} in {:.0}s, saved to {}", started.elapsed().as_secs_f64(), tarball.display()));
    Ok(())
}

/// The inotify limits kind's known issues recommend for clusters with several nodes
/// (kind.sigs.k8s.io/docs/user/known-issues, "Pod errors due to too many open files"), raised
/// on this machine as a user following them would: stock Debian allows 128 instances, which
/// one node runs with and a worker's kubelet and kube-proxy exhaust (kind-parity's doctor fails
/// a config with workers below them). Never lowered; a refusal is said and left to doctor.
fn inotify_limits() {
    for (name, wanted) in [("max_user_watches", 524_288u64), ("max_user_instances", 512)] {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let Some(current) = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u64>().ok()) else {
            continue;
        };
        if current >= wanted {
            continue;
        }
        match std::fs::write(&path, wanted.to_string()) {
            Ok(()) => say(format!(
                "kindnode: fs.inotify.{name} raised from {current} to {wanted}, as kind's known issues advise"
            )),
            Err(e) => say(format!(
                "kindnode: fs.inotify.{name} is {current}, below kind's {wanted}, and cannot be raised: {e}"
            )),
        }
    }
}

pub fn env(_tb: &Testbed) -> Vec<(String, String)> {
    if recipe_of(IMAGE).as_deref() == Some(RECIPE) {
        vec![("KIND_PARITY_TEST_KIND_NODE_IMAGE".to_owned(), IMAGE.to_owned())]
    } else {
        Vec::new()
    }
}

/// The recipe label of a local image, if it exists.
fn recipe_of(image: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", image, "--format", &format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}")])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// kind v0.29.0's module in Go's module cache (the `kind` part's build downloads it).
fn kind_module(tb: &Testbed) -> Result<PathBuf> {
    kind::real_kind(tb)?;
    let dir = go_mod_cache()?.join(format!("sigs.k8s.io/kind@{}", kind::VERSION));
    if !dir.join("images/base/files").is_dir() {
        bail!("kind's module is not in Go's module cache at {}", dir.display());
    }
    Ok(dir)
}

/// Go's module cache, where the `kind` and `kube` parts' builds leave the modules' sources.
fn go_mod_cache() -> Result<PathBuf> {
    Ok(PathBuf::from(proc::output(Command::new("go").args(["env", "GOMODCACHE"]))?.trim()))
}

/// The value of Go constant `name` in `source`: a raw string, possibly joined with `+` to other
/// constants of the same file (`` `…image: ` + kindnetdImage + `…` ``).
fn go_const(source: &str, name: &str) -> Result<String> {
    let start = source.find(&format!("const {name} = ")).with_context(|| format!("no constant {name}"))?;
    let mut rest = &source[start + format!("const {name} = ").len()..];
    let mut value = String::new();
    loop {
        rest = rest.trim_start();
        if let Some(raw) = rest.strip_prefix('`') {
            let end = raw.find('`').with_context(|| format!("{name}: an unterminated raw string"))?;
            value.push_str(&raw[..end]);
            rest = &raw[end + 1..];
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').with_context(|| format!("{name}: an unterminated string"))?;
            value.push_str(&quoted[..end]);
            rest = &quoted[end + 1..];
        } else {
            let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if ident.is_empty() {
                bail!("{name}: cannot read its value");
            }
            value.push_str(&go_const(source, &ident)?);
            rest = &rest[ident.len()..];
        }
        match rest.trim_start_matches([' ', '\t']).strip_prefix('+') {
            Some(more) => rest = more,
            None => return Ok(value),
        }
    }
}

/// Builds `reference` from a Dockerfile and files, saves it to `dir`, returns the tarball.
fn image_tar(
    tb: &Testbed,
    dir: &Path,
    reference: &str,
    dockerfile: &str,
    files: &[(&str, &[u8], u32)],
) -> Result<PathBuf> {
    let tar = dir.join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    if !tar.exists() {
        node::docker_build(tb, reference, dockerfile, files)?;
        node::save(reference, &tar)?;
    }
    Ok(tar)
}

/// The images kubeadm v1.33.1 and kind v0.29.0 ask for, as tarballs.
fn component_images(tb: &Testbed, kind_module: &Path) -> Result<Vec<PathBuf>> {
    let dir = tb.cache(&format!("kindnode-images-{RECIPE}"));
    std::fs::create_dir_all(&dir)?;
    let kubernetes = kube::kubernetes(tb)?;
    let mut tars = Vec::new();
    let label = |what: &str| {
        format!(
            "LABEL org.opencontainers.image.description=\"kind-parity test bed: {what}\" {RECIPE_LABEL}=\"{RECIPE}\"\n"
        )
    };
    // The control plane: static binaries in /usr/local/bin, as the official (distroless) images
    // have them; kubeadm's static pods name the command.
    for program in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        let body = std::fs::read(kubernetes.join(program))?;
        let dockerfile = format!(
            "FROM scratch\nCOPY {program} /usr/local/bin/{program}\nENV PATH=/usr/local/bin:/usr/bin:/bin\n{}",
            label(&format!("{program} v{KUBERNETES} built from k8s.io/kubernetes"))
        );
        tars.push(image_tar(
            tb,
            &dir,
            &format!("registry.k8s.io/{program}:v{KUBERNETES}"),
            &dockerfile,
            &[(program, &body, 0o755)],
        )?);
    }
    let etcd = kube::etcd(tb)?;
    let dockerfile = format!(
        "FROM scratch\nCOPY etcd /usr/local/bin/etcd\nENV PATH=/usr/local/bin:/usr/bin:/bin\n{}",
        label("etcd 3.5.21 built from go.etcd.io/etcd")
    );
    tars.push(image_tar(
        tb,
        &dir,
        "registry.k8s.io/etcd:3.5.21-0",
        &dockerfile,
        &[("etcd", &std::fs::read(etcd.join("etcd"))?, 0o755)],
    )?);
    tars.push(pause(tb, &dir, &label("pause 3.10 built from Kubernetes' build/pause/linux/pause.c"))?);
    // CoreDNS and the storage images: the ones the node and kind parts already build.
    tars.push(node::ensure_images(tb)?.join("coredns-v1.12.0.tar"));
    let storage = kind::storage_images(tb)?;
    tars.push(storage.join("local-path-provisioner.tar"));
    tars.push(storage.join("local-path-helper.tar"));
    // kube-proxy and kindnetd program iptables: a Debian root with its iptables (the nft
    // backend, as the node's own, so both see the same rules).
    tars.push(iptables_image(
        tb,
        &dir,
        &format!("registry.k8s.io/kube-proxy:v{KUBERNETES}"),
        &[("usr/local/bin/kube-proxy", kubernetes.join("kube-proxy"))],
        &format!("kube-proxy v{KUBERNETES} built from k8s.io/kubernetes, on Debian 12's iptables"),
        &[],
    )?);
    let kindnetd = kindnetd(tb)?;
    tars.push(iptables_image(
        tb,
        &dir,
        KINDNETD_IMAGE,
        &[("bin/kindnetd", kindnetd)],
        "kindnetd of kind v0.29.0 (images/kindnetd), on Debian 12's iptables",
        &["CMD [\"/bin/kindnetd\"]"],
    )?);
    // The references kind's manifests name are the ones built.
    let cni = std::fs::read_to_string(kind_module.join("pkg/build/nodeimage/const_cni.go"))?;
    if go_const(&cni, "kindnetdImage")? != KINDNETD_IMAGE {
        bail!("kind's default CNI image is not {KINDNETD_IMAGE}: update kindnode.rs");
    }
    Ok(tars)
}

/// `registry.k8s.io/pause:3.10`: Kubernetes' pause.c, compiled static as its Makefile does.
fn pause(tb: &Testbed, dir: &Path, label: &str) -> Result<PathBuf> {
    let reference = "registry.k8s.io/pause:3.10";
    let tar = dir.join("registry.k8s.io_pause_3.10.tar");
    if tar.exists() {
        return Ok(tar);
    }
    apt_install(tb, &["gcc", "libc6-dev"])?;
    let source = go_mod_cache()?.join(format!("k8s.io/kubernetes@v{KUBERNETES}/build/pause/linux/pause.c"));
    let out = tempfile::tempdir()?;
    let binary = out.path().join("pause");
    // build/pause/Makefile: `-Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV)`.
    proc::output(
        Command::new("gcc")
            .args(["-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.10"])
            .arg("-o")
            .arg(&binary)
            .arg(&source),
    )?;
    let dockerfile = format!("FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n{label}");
    node::docker_build(tb, reference, &dockerfile, &[("pause", &std::fs::read(&binary)?, 0o755)])?;
    node::save(reference, &tar)?;
    Ok(tar)
}

/// kindnetd, built from kind v0.29.0's `images/kindnetd` (a module of its own, left out of
/// kind's module zip, so its source is vendored here).
fn kindnetd(tb: &Testbed) -> Result<PathBuf> {
    let dir = tb.cache("kindnetd-v0.29.0");
    let binary = dir.join("bin/kindnetd");
    if binary.is_file() {
        return Ok(binary);
    }
    for (path, body) in KINDNETD_SOURCES {
        write_file(&dir.join("src").join(path), body.as_bytes(), 0o644)?;
    }
    say("kindnode: building kindnetd from kind v0.29.0's source (cold: about 2 minutes)");
    proc::logged(
        Command::new("go")
            .current_dir(dir.join("src"))
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(&binary)
            .arg("./cmd/kindnetd"),
        &tb.log("build-kindnetd"),
        "building kindnetd",
    )?;
    Ok(binary)
}

/// An image of a Debian 12 root with iptables, nftables and conntrack, holding `files`.
fn iptables_image(
    tb: &Testbed,
    dir: &Path,
    reference: &str,
    files: &[(&str, PathBuf)],
    description: &str,
    changes: &[&str],
) -> Result<PathBuf> {
    let tar = dir.join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    if tar.exists() {
        return Ok(tar);
    }
    let root = stack::debian_root(tb, "iptables", &["iptables", "nftables", "conntrack", "iproute2"])?;
    for (path, from) in files {
        write_file(&root.path().join(path), &std::fs::read(from)?, 0o755)?;
    }
    let label = format!(
        "LABEL org.opencontainers.image.description=\"kind-parity test bed: {description}\" {RECIPE_LABEL}=\"{RECIPE}\""
    );
    let mut all: Vec<&str> = vec!["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", &label];
    all.extend_from_slice(changes);
    stack::import(root.path(), reference, &all)?;
    node::save(reference, &tar)?;
    Ok(tar)
}

/// The base: Debian 12 with kind's base files, laid out as kind's base image.
fn base_image(tb: &Testbed, kind_module: &Path) -> Result<String> {
    let reference = format!("kind-parity-testbed/kindnode-base:{RECIPE}");
    if recipe_of(&reference).as_deref() == Some(RECIPE) {
        return Ok(reference);
    }
    say("kindnode: making the node's Debian 12 root with debootstrap (about 2 minutes, once)");
    let root = stack::debian_root(tb, "kindnode", BASE_PACKAGES)?;
    let r = root.path();
    copy_tree(&kind_module.join("images/base/files"), r)?;
    // The machine's trap, in the image: without CAP_SYS_RESOURCE the kernel refuses pods' -998.
    let config = r.join("etc/containerd/config.toml");
    let toml = std::fs::read_to_string(&config)?;
    if !toml.contains("restrict_oom_score_adj = false") {
        bail!("kind's containerd config no longer says `restrict_oom_score_adj = false`: update kindnode.rs");
    }
    write_file(
        &config,
        toml.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true").as_bytes(),
        0o644,
    )?;
    // Where kind's files expect kind's own builds (images/base/Dockerfile): Debian's, linked.
    for (link, target) in [
        ("usr/local/bin/containerd", "/usr/bin/containerd"),
        ("usr/local/bin/ctr", "/usr/bin/ctr"),
        ("usr/local/bin/containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"),
        ("usr/local/sbin/runc", "/usr/sbin/runc"),
        ("opt/cni/bin/host-local", "/usr/lib/cni/host-local"),
        ("opt/cni/bin/loopback", "/usr/lib/cni/loopback"),
        ("opt/cni/bin/ptp", "/usr/lib/cni/ptp"),
        ("opt/cni/bin/portmap", "/usr/lib/cni/portmap"),
    ] {
        let link = r.join(link);
        std::fs::create_dir_all(link.parent().context("a parent")?)?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link)?;
    }
    // The base Dockerfile's RUN steps, in the root.
    let steps = r#"set -e
chmod 755 /kind/bin /usr/local/bin/* /kind/bin/*
find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
rm -f /lib/systemd/system/multi-user.target.wants/*
rm -f /etc/systemd/system/*.wants/*
rm -f /lib/systemd/system/local-fs.target.wants/*
rm -f /lib/systemd/system/sockets.target.wants/*udev*
rm -f /lib/systemd/system/sockets.target.wants/*initctl*
rm -f /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf "$(command -v systemd || echo /lib/systemd/systemd)" /sbin/init
systemctl enable kubelet.service
systemctl enable containerd.service
systemctl enable undo-mount-hacks.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests
ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
rm -rf /usr/share/doc/* /usr/share/man/*
"#;
    proc::logged(
        Command::new("chroot").arg(r).args(["/bin/bash", "-c", steps]),
        &tb.log("build-kindnode"),
        "kind's base steps",
    )?;
    // What `kind build node-image` adds.
    let kubernetes = kube::kubernetes(tb)?;
    for program in ["kubeadm", "kubelet", "kubectl"] {
        write_file(&r.join("usr/bin").join(program), &std::fs::read(kubernetes.join(program))?, 0o755)?;
    }
    let crictl = GoBuild {
        name: "crictl",
        module: "sigs.k8s.io/cri-tools",
        version: CRICTL,
        wrap: Wrap::Require,
        programs: &[("sigs.k8s.io/cri-tools/cmd/crictl", "crictl")],
        ldflags: format!("-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version={CRICTL}"),
        expected: "2 minutes",
    }
    .ensure(tb)?;
    write_file(&r.join("usr/local/bin/crictl"), &std::fs::read(crictl.join("crictl"))?, 0o755)?;
    // buildcontext.go writes the version without a newline.
    write_file(&r.join("kind/version"), format!("v{KUBERNETES}").as_bytes(), 0o644)?;
    let nodeimage = kind_module.join("pkg/build/nodeimage");
    let cni = go_const(&std::fs::read_to_string(nodeimage.join("const_cni.go"))?, "defaultCNIManifest")?;
    let storage = go_const(&std::fs::read_to_string(nodeimage.join("const_storage.go"))?, "defaultStorageManifest")?;
    write_file(&r.join("kind/manifests/default-cni.yaml"), cni.as_bytes(), 0o644)?;
    write_file(&r.join("kind/manifests/default-storage.yaml"), storage.as_bytes(), 0o644)?;
    stack::import(
        r,
        &format!("{reference}-unlabelled"),
        &["ENV container=docker", "ENTRYPOINT [\"/usr/local/bin/entrypoint\", \"/sbin/init\"]"],
    )?;
    // `docker import --change` takes no STOPSIGNAL: a build on top sets it (systemd stops on
    // SIGRTMIN+3, as kind's base image says).
    let dockerfile = format!(
        "FROM {reference}-unlabelled\nSTOPSIGNAL SIGRTMIN+3\nLABEL org.opencontainers.image.description=\"kind-parity test bed: kind v0.29.0's base image, from Debian 12\" {RECIPE_LABEL}=\"{RECIPE}\"\n"
    );
    node::docker_build(tb, &reference, &dockerfile, &[])?;
    Ok(reference)
}

/// Copies `from`'s tree into `to`, keeping modes.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            // The module cache is read-only: the copy gets the mode kind's Dockerfile gives
            // (0755 for scripts, set in the base steps; 0644 here).
            write_file(&target, &std::fs::read(entry.path())?, 0o644)?;
        }
    }
    Ok(())
}

/// Imports every image into the base's containerd as kind's image importer does
/// (pkg/build/nodeimage/imageimporter.go: `ctr --namespace=k8s.io images import --all-platforms
/// --no-unpack --digests -`), then commits the result as [`IMAGE`].
fn preload(base: &str, images: &[PathBuf]) -> Result<()> {
    let id = proc::output(Command::new("docker").args([
        "run",
        "-d",
        "--privileged",
        "--entrypoint=sleep",
        base,
        "infinity",
    ]))?;
    let id = id.trim().to_owned();
    let result = (|| -> Result<()> {
        proc::output(Command::new("docker").args([
            "exec",
            &id,
            "bash",
            "-c",
            "nohup containerd >/tmp/containerd.log 2>&1 & for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && exit 0; sleep 0.2; done; cat /tmp/containerd.log; exit 1",
        ]))?;
        for tar in images {
            let file = std::fs::File::open(tar).with_context(|| format!("opening {}", tar.display()))?;
            let out = Command::new("docker")
                .args([
                    "exec",
                    "-i",
                    &id,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    "--all-platforms",
                    "--no-unpack",
                    "--digests",
                    "-",
                ])
                .stdin(Stdio::from(file))
                .output()
                .context("running ctr images import")?;
            if !out.status.success() {
                bail!(
                    "importing {} into the node image failed: {}",
                    tar.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let listed = proc::output(Command::new("docker").args([
            "exec",
            &id,
            "ctr",
            "--namespace=k8s.io",
            "images",
            "list",
            "-q",
        ]))?;
        say(format!(
            "kindnode: preloaded {} image references",
            listed.lines().filter(|l| !l.contains("@sha256")).count()
        ));
        proc::output(Command::new("docker").args(["exec", &id, "pkill", "containerd"]))?;
        std::thread::sleep(std::time::Duration::from_secs(2));
        proc::output(Command::new("docker").args([
            "commit",
            "--change",
            "ENTRYPOINT [ \"/usr/local/bin/entrypoint\", \"/sbin/init\" ]",
            "--change",
            "ENV HTTP_PROXY=\"\" HTTPS_PROXY=\"\" NO_PROXY=\"\"",
            &id,
            IMAGE,
        ]))?;
        Ok(())
    })();
    let _ = Command::new("docker").args(["rm", "-f", "-v", &id]).output();
    result
}

#[cfg(test)]
mod tests {
    use super::go_const;

    #[test]
    fn a_go_constant_joined_from_raw_strings_and_constants_is_read_whole() {
        let source = "const image = \"docker.io/kindest/kindnetd:v1\"\n\nconst manifest = `\nkind: Pod\n  image: ` + image + `\n  name: x\n`\n\nfunc f() {}\n";
        assert_eq!(
            go_const(source, "manifest").unwrap(),
            "\nkind: Pod\n  image: docker.io/kindest/kindnetd:v1\n  name: x\n"
        );
    }
}
