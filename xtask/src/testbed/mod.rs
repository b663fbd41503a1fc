//! `cargo xtask testbed up [PART…] | down [--wipe] | env [--file] | status`: the real software
//! the integration tests run against, on this machine, from Debian's packages and the Go module
//! proxy. Nothing in it is a mock.
//!
//! Parts, in the order they start (a part brings up what it needs first):
//! - `docker`: a Docker Engine (the running one, or Debian's `dockerd` started here, with
//!   `runc-capfix` as its default runtime where the machine lacks CAP_SYS_RESOURCE);
//! - `kube`: etcd, kube-apiserver, kube-controller-manager and kube-scheduler at the Kubernetes
//!   version kind's pinned node image runs, built once from the Go module proxy;
//! - `services`: PostgreSQL, Redis and NATS on fixed loopback ports;
//! - `node`: a node that runs pods, as kind runs one (a privileged container labelled for the
//!   cluster `kind-parity-testbed`, containerd at `/run/containerd/containerd.sock`, kubelet and
//!   kube-proxy of the same version, CNI from Debian, CoreDNS as the cluster DNS), and the
//!   containerd-only stand-in image the load tests start;
//! - `stack`: the demo stack's images (Traefik, Postgres, Redis, Keycloak, NATS, the Python base
//!   of the demo's services), built from upstream software and tagged as the manifests name them;
//! - `kind`: a stand-in for kind on `bin/kind`, whose `create cluster` starts a whole one-node
//!   cluster in a node container and loads the stack's images into it.
//!
//! Everything built is cached by version under one folder (`KIND_PARITY_TESTBED_DIR`, default
//! `/var/tmp/kind-parity-testbed`), so a second `up` takes seconds. The env file there names
//! each running part by its `KIND_PARITY_TEST_*` variable.

mod certs;
mod docker;
mod gobuild;
pub mod kind;
mod kindnode;
mod kube;
mod node;
mod proc;
mod services;
mod stack;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// The Kubernetes version of the control plane and the node: the node image's that the config
/// pins (`kindest/node:v1.33.1`). 1.35's kubelet refuses cgroup v1, which this machine has.
pub const KUBERNETES: &str = "1.33.1";

/// The test bed's folder and the places in it.
pub struct Testbed {
    /// `KIND_PARITY_TESTBED_DIR`.
    pub dir: PathBuf,
}

impl Testbed {
    pub fn from_env() -> Result<Self> {
        let dir = std::env::var_os("KIND_PARITY_TESTBED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/kind-parity-testbed"));
        for sub in ["bin", "log", "run", "cache", "certs"] {
            fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        Ok(Self { dir })
    }

    /// `log/NAME.log`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("log").join(format!("{name}.log"))
    }

    /// `run/NAME.pid`.
    pub fn run(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.pid"))
    }

    /// `cache/NAME`: what is built once per version.
    pub fn cache(&self, name: &str) -> PathBuf {
        self.dir.join("cache").join(name)
    }

    fn env_file(&self) -> PathBuf {
        self.dir.join("env")
    }
}

/// A line of progress on stderr.
pub fn say(message: impl std::fmt::Display) {
    eprintln!("testbed: {message}");
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Part {
    Docker,
    Kube,
    Services,
    Node,
    Stack,
    Kind,
    /// Not among the defaults yet: the node image to kind's contract is work in progress.
    KindNode,
}

impl Part {
    const ALL: [Part; 6] = [Part::Docker, Part::Kube, Part::Services, Part::Node, Part::Stack, Part::Kind];

    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "docker" => Part::Docker,
            "kube" => Part::Kube,
            "services" => Part::Services,
            "node" => Part::Node,
            "stack" => Part::Stack,
            "kind" => Part::Kind,
            "kindnode" => Part::KindNode,
            other => {
                bail!("unknown test-bed part `{other}` (parts: docker, kube, services, node, stack, kind, kindnode)")
            }
        })
    }

    /// What must run before this part can.
    fn needs(self) -> &'static [Part] {
        match self {
            Part::Docker | Part::Services => &[],
            // The API server advertises itself on the node network's gateway.
            Part::Kube => &[Part::Docker],
            Part::Node => &[Part::Docker, Part::Kube],
            // The stack's Traefik image starts from the node's busybox pod image.
            Part::Stack => &[Part::Docker, Part::Kube, Part::Node],
            // Its clusters get the stack's images.
            Part::Kind => &[Part::Docker, Part::Kube, Part::Node, Part::Stack],
            // It builds the real kind (for its module's files) and reuses the node's images.
            Part::KindNode => &[Part::Docker, Part::Kube, Part::Node, Part::Stack, Part::Kind],
        }
    }
}

pub fn run(rest: &[String]) -> Result<()> {
    let tb = Testbed::from_env()?;
    let (command, args) = rest.split_first().map(|(c, a)| (c.as_str(), a)).unwrap_or(("help", &[]));
    match command {
        "up" => {
            let mut parts: Vec<Part> = if args.is_empty() {
                Part::ALL.to_vec()
            } else {
                args.iter().map(|a| Part::parse(a)).collect::<Result<_>>()?
            };
            let needed: Vec<Part> = parts.iter().flat_map(|p| p.needs().iter().copied()).collect();
            parts.extend(needed);
            parts.sort();
            parts.dedup();
            let _lock = lock(&tb)?;
            up(&tb, &parts)
        }
        "down" => {
            let wipe = match args {
                [] => false,
                [flag] if flag == "--wipe" => true,
                _ => bail!("usage: cargo xtask testbed down [--wipe]"),
            };
            let _lock = lock(&tb)?;
            down(&tb, wipe)
        }
        "env" => {
            if args.iter().any(|a| a == "--file") {
                println!("{}", tb.env_file().display());
                return Ok(());
            }
            let text = fs::read_to_string(tb.env_file()).with_context(|| {
                format!("reading {} (start the test bed first: cargo xtask testbed up)", tb.env_file().display())
            })?;
            print!("{text}");
            Ok(())
        }
        "status" => status(&tb),
        "help" | "--help" | "-h" => {
            println!("{HELP}");
            Ok(())
        }
        other => bail!("unknown testbed command `{other}`\n\n{HELP}"),
    }
}

const HELP: &str = "cargo xtask testbed <command>

commands:
  up [PART...]     start the parts (docker, kube, services, node, stack, kind; default all; kindnode, the
                   real kind's node image, is work in progress and only on request), building what is not cached
  down [--wipe]    stop what up started; --wipe also empties etcd, Postgres and NATS data
  env [--file]     print the env file (eval \"$(cargo xtask testbed env)\"), or its path
  status           what runs and what is cached

KIND_PARITY_TESTBED_DIR (default /var/tmp/kind-parity-testbed) holds the cache, logs and state.";

/// An exclusive lock on the test bed for one `up` or `down`: a second one waits, and says so.
fn lock(tb: &Testbed) -> Result<fs::File> {
    let path = tb.dir.join("lock");
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    // fs4's, not std's (Rust 1.89): the workspace's MSRV is older. Called by path, since std's
    // inherent methods of the same names would win.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            say(format!("another testbed command holds {}; waiting for it", path.display()));
            fs4::FileExt::lock(&file)?;
        }
        Err(fs4::TryLockError::Error(e)) => return Err(e).context(format!("locking {}", path.display())),
    }
    Ok(file)
}

fn up(tb: &Testbed, parts: &[Part]) -> Result<()> {
    let started = Instant::now();
    for part in parts {
        let step = Instant::now();
        match part {
            Part::Docker => docker::up(tb)?,
            Part::Kube => kube::up(tb)?,
            Part::Services => services::up(tb)?,
            Part::Node => node::up(tb)?,
            Part::Stack => stack::up(tb)?,
            Part::Kind => kind::up(tb)?,
            Part::KindNode => kindnode::up(tb)?,
        }
        say(format!("{part:?} ready in {:.1}s", step.elapsed().as_secs_f64()).to_lowercase());
    }
    write_env(tb)?;
    say(format!("up in {:.1}s; env: {}", started.elapsed().as_secs_f64(), tb.env_file().display()));
    Ok(())
}

fn down(tb: &Testbed, wipe: bool) -> Result<()> {
    kind::down(tb)?;
    if docker::answers() {
        stack::keycloak_down();
    }
    node::down(tb)?;
    kube::down(tb)?;
    services::down(tb)?;
    docker::down(tb)?;
    if wipe {
        for data in [kube::ETCD_DATA, services::PG_DATA, services::NATS_DATA] {
            let path = tb.dir.join(data);
            if path.exists() {
                fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        say("wiped etcd, Postgres and NATS data");
    }
    let _ = fs::remove_file(tb.env_file());
    Ok(())
}

/// The variables of the env file, when there is one.
pub fn env_vars() -> Result<Vec<(String, String)>> {
    let tb = Testbed::from_env()?;
    let Ok(text) = fs::read_to_string(tb.env_file()) else { return Ok(Vec::new()) };
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The env file: one `export` line per running part, for the tests.
fn write_env(tb: &Testbed) -> Result<()> {
    let mut text = format!("export KIND_PARITY_TESTBED_DIR={}\n", tb.dir.display());
    for (name, value) in kube::env(tb)
        .into_iter()
        .chain(services::env(tb))
        .chain(node::env(tb)?)
        .chain(stack::env(tb))
        .chain(kind::env(tb))
        .chain(kindnode::env(tb))
    {
        writeln!(text, "export {name}={value}")?;
    }
    fs::write(tb.env_file(), &text).with_context(|| format!("writing {}", tb.env_file().display()))?;
    for line in text.lines() {
        // The test bed's Keycloak admin password stays in the env file.
        match line.split_once('=') {
            Some((name, _)) if name.ends_with("_ADMIN") => say(format!("  {name}=<not printed: in the env file>")),
            _ => say(format!("  {line}")),
        }
    }
    Ok(())
}

fn status(tb: &Testbed) -> Result<()> {
    println!("test bed in {}", tb.dir.display());
    println!("running:");
    for (name, state) in docker::status(tb)
        .into_iter()
        .chain(kube::status(tb))
        .chain(services::status(tb))
        .chain(node::status(tb))
        .chain(kind::status(tb))
    {
        println!("  {name:<24} {state}");
    }
    println!("cached:");
    let mut cached: Vec<String> = fs::read_dir(tb.dir.join("cache"))?
        .flatten()
        .filter(|e| e.path().join(gobuild::COMPLETE).exists() || e.file_name().to_string_lossy().ends_with(".tar"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cached.extend(node::cached_images());
    cached.sort();
    if cached.is_empty() {
        println!("  nothing (the first up builds it)");
    }
    for c in cached {
        println!("  {c}");
    }
    Ok(())
}

/// Installs Debian packages that are missing, naming the log on failure.
pub fn apt_install(tb: &Testbed, packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !std::process::Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if which("apt-get").is_none() {
        bail!("missing packages {} and no apt-get: install them, then rerun", missing.join(" "));
    }
    say(format!("installing {}", missing.join(" ")));
    let log = tb.log("apt");
    // A stale package index refuses packages it has not heard of; update once, then install.
    let _ = proc::logged(std::process::Command::new("apt-get").args(["update", "-q"]), &log, "apt-get update");
    proc::logged(
        std::process::Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
        &log,
        &format!("apt-get install {}", missing.join(" ")),
    )
}

/// A program on `PATH` (or in the sbin folders), if any.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Writes `contents` to `path` only when it differs (so a second `up` changes nothing), with `mode`.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt as _;
    if fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}
