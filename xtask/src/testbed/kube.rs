//! The `kube` part: a Kubernetes control plane at [`KUBERNETES`] on this
//! machine (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), built from the Go
//! module proxy, with its own CA and an admin kubeconfig (context `kind-parity-testbed`).
//!
//! The API server listens on every address at :16443, so the host reaches it on 127.0.0.1 and
//! the node container (on the Docker network [`NETWORK`]) on that network's gateway, which the
//! API server advertises: pods reach it through the `kubernetes` Service as on kind.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::gobuild::{GoBuild, Wrap, check_version};
use super::{KUBERNETES, Testbed, certs, docker, proc, say, write_file};

/// The etcd kubeadm 1.33 runs (`cmd/kubeadm/app/constants`, `DefaultEtcdVersion`).
pub const ETCD: &str = "3.5.21";
pub const ETCD_PORT: u16 = 23790;
pub const APISERVER_PORT: u16 = 16443;
/// etcd's data folder under the test bed's.
pub const ETCD_DATA: &str = "etcd";
/// The Docker network of the node, its subnet and its gateway (the host's address on it).
pub const NETWORK: &str = "kind-parity-testbed";
pub const SUBNET: &str = "172.30.250.0/24";
pub const GATEWAY: &str = "172.30.250.1";
/// The Services' range, as kind's (`pkg/apis/config/v1alpha4/default.go`, 10.96.0.0/16).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service's address: the first of the range.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

const DAEMONS: [&str; 4] = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/// The Kubernetes programs, built once.
pub fn kubernetes(tb: &Testbed) -> Result<std::path::PathBuf> {
    let v = KUBERNETES;
    let minor = v.split('.').nth(1).unwrap_or_default();
    // Without the stamps, clients and kubeadm see a placeholder version (v0.0.0-master).
    let ldflags = [
        format!("-X k8s.io/component-base/version.gitVersion=v{v}"),
        "-X k8s.io/component-base/version.gitMajor=1".into(),
        format!("-X k8s.io/component-base/version.gitMinor={minor}"),
        "-X k8s.io/component-base/version.gitTreeState=clean".into(),
        format!("-X k8s.io/client-go/pkg/version.gitVersion=v{v}"),
        "-X k8s.io/client-go/pkg/version.gitMajor=1".into(),
        format!("-X k8s.io/client-go/pkg/version.gitMinor={minor}"),
        "-s -w".into(),
    ]
    .join(" ");
    let staging = format!("v0.{}", v.trim_start_matches("1."));
    let bin = GoBuild {
        name: "kubernetes",
        module: "k8s.io/kubernetes",
        version: &format!("v{v}"),
        wrap: Wrap::Copy { local_at: Some(&staging) },
        programs: &[
            ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
            ("k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"),
            ("k8s.io/kubernetes/cmd/kube-scheduler", "kube-scheduler"),
            ("k8s.io/kubernetes/cmd/kubelet", "kubelet"),
            ("k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy"),
            ("k8s.io/kubernetes/cmd/kubectl", "kubectl"),
            ("k8s.io/kubernetes/cmd/kubeadm", "kubeadm"),
        ],
        ldflags,
        expected: "10 minutes",
    }
    .ensure(tb)?;
    check_version(&bin.join("kubectl"), &["version", "--client"], &format!("v{v}"))?;
    Ok(bin)
}

/// etcd's server, built once.
pub fn etcd(tb: &Testbed) -> Result<std::path::PathBuf> {
    GoBuild {
        name: "etcd",
        // etcd 3.5's server module replaces its siblings with `../api` and the like; as a
        // dependency of the wrapper, its own requirements (all v3.5.N) hold instead.
        module: "go.etcd.io/etcd/server/v3",
        version: &format!("v{ETCD}"),
        wrap: Wrap::Require,
        programs: &[("go.etcd.io/etcd/server/v3", "etcd")],
        ldflags: "-s -w".into(),
        expected: "2 minutes",
    }
    .ensure(tb)
}

/// The kubectl the test bed builds.
pub fn kubectl_program(tb: &Testbed) -> std::path::PathBuf {
    tb.cache(&format!("kubernetes-v{KUBERNETES}")).join("bin/kubectl")
}

/// kubectl on the test bed's API server.
pub fn kubectl(tb: &Testbed) -> Command {
    let mut command = Command::new(kubectl_program(tb));
    command.arg("--kubeconfig").arg(tb.dir.join("kubeconfig"));
    command
}

/// Whether the API server answers `/readyz`.
fn ready(tb: &Testbed) -> bool {
    kubectl(tb).args(["get", "--raw", "/readyz"]).output().is_ok_and(|o| o.status.success())
}

/// The node network, made when missing; an existing one with another subnet is an error.
pub fn ensure_network() -> Result<()> {
    let found = Command::new("docker")
        .args(["network", "inspect", NETWORK, "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"])
        .output()?;
    if found.status.success() {
        let subnet = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        if subnet != SUBNET {
            bail!(
                "the Docker network {NETWORK} has subnet {subnet}, the test bed needs {SUBNET}: remove it (docker network rm {NETWORK}) and rerun"
            );
        }
        return Ok(());
    }
    docker::docker(&[
        "network",
        "create",
        "--subnet",
        SUBNET,
        "--gateway",
        GATEWAY,
        "--label",
        "kind-parity-testbed=1",
        NETWORK,
    ])
    .with_context(|| {
        format!("creating the Docker network {NETWORK} ({SUBNET}); a network of the machine may overlap it")
    })?;
    Ok(())
}

pub fn up(tb: &Testbed) -> Result<()> {
    let bin = kubernetes(tb)?;
    let etcd_bin = etcd(tb)?;
    ensure_network()?;
    let certs_dir = tb.dir.join("certs");
    certs::ensure(&certs_dir, &["127.0.0.1", GATEWAY, KUBERNETES_SERVICE_IP])?;
    write_file(
        &tb.dir.join("kubeconfig"),
        certs::kubeconfig(&certs_dir, &format!("https://127.0.0.1:{APISERVER_PORT}"))?.as_bytes(),
        0o600,
    )?;
    let c = |name: &str| certs_dir.join(name).display().to_string();

    // A daemon started from another version's cache (after a version bump) is restarted.
    for name in DAEMONS {
        if let Some((pid, program)) = proc::running_program(tb, name) {
            let expected = if name == "etcd" { etcd_bin.join("etcd") } else { bin.join(name) };
            if program != expected.display().to_string() {
                say(format!("restarting {name} (pid {pid}): it runs {program}, not {}", expected.display()));
                proc::stop(tb, name, Duration::from_secs(10))?;
            }
        }
    }

    if proc::running(tb, "etcd").is_none() {
        proc::clear_port(tb, "etcd", "etcd", ETCD_PORT)?;
        let mut etcd = Command::new(etcd_bin.join("etcd"));
        let client = format!("http://127.0.0.1:{ETCD_PORT}");
        let peer = format!("http://127.0.0.1:{}", ETCD_PORT + 10);
        etcd.args(["--name", "testbed", "--data-dir"])
            .arg(tb.dir.join(ETCD_DATA))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("testbed={peer}")])
            .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", ETCD_PORT + 20)]);
        proc::start(tb, "etcd", etcd)?;
        proc::wait_for("etcd", Duration::from_secs(30), &tb.log("etcd"), || proc::listening(ETCD_PORT))?;
    }
    if proc::running(tb, "kube-apiserver").is_none() {
        proc::clear_port(tb, "kube-apiserver", "kube-apiserver", APISERVER_PORT)?;
        let mut apiserver = Command::new(bin.join("kube-apiserver"));
        apiserver
            .arg(format!("--etcd-servers=http://127.0.0.1:{ETCD_PORT}"))
            .arg("--bind-address=0.0.0.0")
            .arg(format!("--secure-port={APISERVER_PORT}"))
            .arg(format!("--advertise-address={GATEWAY}"))
            .arg(format!("--tls-cert-file={}", c("apiserver.crt")))
            .arg(format!("--tls-private-key-file={}", c("apiserver.key")))
            .arg(format!("--client-ca-file={}", c("ca.crt")))
            .arg("--authorization-mode=Node,RBAC")
            .arg(format!("--service-account-key-file={}", c("sa.pub")))
            .arg(format!("--service-account-signing-key-file={}", c("sa.key")))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
            .arg("--allow-privileged=true")
            // Logs, exec and port-forward reach the kubelet at the node's address, not its name
            // (kubelet/RECIPE.md: "lookup tb-node ... no such host").
            .arg("--kubelet-preferred-address-types=InternalIP,Hostname")
            .arg(format!("--kubelet-client-certificate={}", c("admin.crt")))
            .arg(format!("--kubelet-client-key={}", c("admin.key")))
            .arg("--profiling=false");
        proc::start(tb, "kube-apiserver", apiserver)?;
    }
    proc::wait_for("kube-apiserver", Duration::from_secs(90), &tb.log("kube-apiserver"), || ready(tb))?;
    if proc::running(tb, "kube-controller-manager").is_none() {
        let mut cm = Command::new(bin.join("kube-controller-manager"));
        cm.arg(format!("--kubeconfig={}", tb.dir.join("kubeconfig").display()))
            // Published to every namespace as kube-root-ca.crt: pods verify the API server with it.
            .arg(format!("--root-ca-file={}", c("ca.crt")))
            .arg(format!("--service-account-private-key-file={}", c("sa.key")))
            .arg("--use-service-account-credentials=false")
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg("--secure-port=0");
        proc::start(tb, "kube-controller-manager", cm)?;
    }
    if proc::running(tb, "kube-scheduler").is_none() {
        let mut scheduler = Command::new(bin.join("kube-scheduler"));
        scheduler
            .arg(format!("--kubeconfig={}", tb.dir.join("kubeconfig").display()))
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg("--secure-port=0");
        proc::start(tb, "kube-scheduler", scheduler)?;
    }
    // The controllers come up after the API server: a Namespace's default ServiceAccount is
    // their first visible work.
    proc::wait_for("kube-controller-manager", Duration::from_secs(60), &tb.log("kube-controller-manager"), || {
        kubectl(tb)
            .args(["-n", "default", "get", "serviceaccount", "default"])
            .output()
            .is_ok_and(|o| o.status.success())
    })?;
    say(format!(
        "kube: Kubernetes v{KUBERNETES} at https://127.0.0.1:{APISERVER_PORT} (kubeconfig {})",
        tb.dir.join("kubeconfig").display()
    ));
    Ok(())
}

pub fn down(tb: &Testbed) -> Result<()> {
    for name in DAEMONS.iter().rev() {
        // The API server lingers for a minute after SIGTERM (kubelet/RECIPE.md §8): kill it sooner.
        if let Some(pid) = proc::stop(tb, name, Duration::from_secs(10))? {
            say(format!("stopped {name} ({pid})"));
        }
    }
    Ok(())
}

pub fn env(tb: &Testbed) -> Vec<(String, String)> {
    if proc::running(tb, "kube-apiserver").is_some() {
        vec![("KIND_PARITY_TEST_KUBECONFIG".into(), tb.dir.join("kubeconfig").display().to_string())]
    } else {
        Vec::new()
    }
}

pub fn status(tb: &Testbed) -> Vec<(String, String)> {
    DAEMONS
        .iter()
        .map(|name| {
            let state = match proc::running(tb, name) {
                Some(pid) if *name == "kube-apiserver" => format!("v{KUBERNETES} (pid {pid}), :{APISERVER_PORT}"),
                Some(pid) => format!("pid {pid}"),
                None => "not running".into(),
            };
            ((*name).to_owned(), state)
        })
        .collect()
}
