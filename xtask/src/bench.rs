//! `cargo xtask bench [NAME]`: runs the benchmarks in release mode; each prints its figures and
//! its ratio against the target or reference it is measured with. The `cargo bench` ones
//! measure a layer; `lifecycle` measures the commands themselves on a kind cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

const BENCHES: &[(&str, &str)] = &[
    ("render", "kind-parity-render"),
    ("apply", "kind-parity-cluster"),
    ("images", "kind-parity-images"),
    ("probes", "kind-parity-probes"),
    ("registry", "kind-parity-images"),
];

pub fn run(rest: &[String]) -> Result<()> {
    let real_kind = rest.iter().any(|a| a == "--real-kind");
    let wanted: Vec<&str> = rest.iter().map(String::as_str).filter(|a| *a != "--real-kind").collect();
    if let Some(unknown) = wanted.iter().find(|w| **w != "lifecycle" && !BENCHES.iter().any(|(n, _)| n == *w)) {
        let known: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).chain(["lifecycle"]).collect();
        bail!("no bench named `{unknown}`; the benches are {}", known.join(", "));
    }
    for (name, package) in BENCHES.iter().filter(|(n, _)| wanted.is_empty() || wanted.contains(n)) {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(crate::project_root())
            .args(["bench", "--package", package, "--bench", name])
            .status()
            .with_context(|| format!("running bench {name}"))?;
        if !status.success() {
            bail!("bench {name} failed");
        }
    }
    if wanted.is_empty() || wanted.contains(&"lifecycle") {
        lifecycle(real_kind)?;
    }
    Ok(())
}

/// `lifecycle`: the commands a developer waits for, on a kind cluster (the test bed's kind
/// stand-in where no kind is installed), with the demo stack copied into a work folder so its
/// api can be edited. Each figure is printed with its ratio against its target (issue 15's
/// targets) or, for a cold `up`, against a bare `kind create cluster` measured in the same run.
fn lifecycle(real_kind: bool) -> Result<()> {
    // `--real-kind`: the test bed's real kind and the node image built here, as the e2e takes them.
    let (path, node_image, which) = if real_kind {
        let (path, image) = crate::e2e::real_kind()?;
        (path, image, "the REAL kind (the test bed's)")
    } else {
        match crate::testbed::kind::path_with_standin() {
            Ok(Some(path)) => (path, None, "the test bed's kind STAND-IN"),
            Ok(None) => (std::env::var_os("PATH").unwrap_or_default(), None, "the kind on PATH"),
            Err(e) => {
                eprintln!("SKIPPED bench lifecycle: {e:#}");
                return Ok(());
            }
        }
    };
    // The node image `up` boots is the one the bare cluster boots too.
    let image = node_image.clone().unwrap_or_else(|| kind_parity_render::config::DEFAULT_NODE_IMAGE.to_owned());
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "--package", "kind-parity"])
        .status()
        .context("building kind-parity")?;
    if !status.success() {
        bail!("building kind-parity failed");
    }
    let binary = root.join("target/release/kind-parity");
    let work = tempfile::tempdir().context("creating the bench's work folder")?;
    // The embedded demo (examples/demo, as the binary carries it), on disk so its api can be edited.
    kind_parity_render::Inputs::embedded_demo()
        .extract(work.path())
        .context("writing the demo into the work folder")?;
    let run = |args: &[&str]| -> Result<Duration> {
        let started = Instant::now();
        let mut command = Command::new(&binary);
        command
            .args(args)
            .current_dir(work.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("KIND_PARITY_CONFIG");
        if let Some(image) = &node_image {
            command.env("KIND_PARITY_CLUSTER__NODE_IMAGE", image);
        }
        let out = command.output().with_context(|| format!("running kind-parity {}", args.join(" ")))?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!("kind-parity {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    };
    let kind = |args: &[&str]| -> Result<Duration> {
        let started = Instant::now();
        let out = Command::new("kind").args(args).env("PATH", &path).output().context("running kind")?;
        if !out.status.success() {
            bail!("kind {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(started.elapsed())
    };
    let reference = "kp-bench-reference";
    let kubeconfig = work.path().join("reference.kubeconfig");
    let kubeconfig = kubeconfig.to_string_lossy();
    let _ = kind(&["delete", "cluster", "--name", reference, "--kubeconfig", &kubeconfig]);
    let bare = kind(&[
        "create",
        "cluster",
        "--name",
        reference,
        "--kubeconfig",
        &kubeconfig,
        "--image",
        &image,
        "--wait",
        "5m",
    ])?;
    kind(&["delete", "cluster", "--name", reference, "--kubeconfig", &kubeconfig])?;

    // Whatever fails below, the environment goes.
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Result<Duration>);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "--yes", "--quiet"]);
        }
    }
    let _ = run(&["down", "--yes", "--quiet"]);
    let _down = Down(&run);
    let cold = run(&["up", "--timeout", "15m"])? + run(&["validate"])?;
    let noop = run(&["up", "--timeout", "5m"])?;
    let app = work.path().join("api/app.py");
    let mut source = std::fs::read_to_string(&app).context("reading the demo api")?;
    source.push_str("\n# edited by cargo xtask bench lifecycle\n");
    std::fs::write(&app, source).context("editing the demo api")?;
    let edit = run(&["up", "--skip-validate", "--timeout", "5m"])?;
    let reset = run(&["reset", "--yes", "--timeout", "15m"])? + run(&["validate"])?;

    let secs = |d: Duration| d.as_secs_f64();
    println!("lifecycle, on {which}, the demo stack (its images cached on the host):");
    println!(
        "  up from nothing to validated   {:7.1} s  {:.2}x a bare `kind create cluster` ({:.1} s, same run)",
        secs(cold),
        secs(cold) / secs(bare),
        secs(bare)
    );
    for (what, took, target) in [
        ("no-op up on the converged stack", noop, 2.0),
        ("api edited until its pod is Ready", edit, 15.0),
        ("reset until validated", reset, 90.0),
    ] {
        let ratio = secs(took) / target;
        let verdict = if ratio <= 1.0 { "meets" } else { "MISSES" };
        println!("  {what:<32}{:7.1} s  {ratio:.2}x the {target:.0} s target ({verdict})", secs(took));
    }
    Ok(())
}
