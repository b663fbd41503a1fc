//! The registry path against loading: a ~500 MB image whose last layer changes by one line.
//! Both stand-in nodes already hold the previous version. Measured: making the new version
//! available to both nodes through the local registry (push: only the changed layer travels;
//! then both nodes pull it, fetching only that layer) vs `kind-parity load` of the whole new
//! image into both nodes. Same run, median of several, ratio printed. Target: <= 0.3x.
//!
//! The registry is Debian's docker-registry started here (the one the tests use; the test bed's services part installs it).

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use kind_parity_images::build::{BuildSpec, build, prepare};
use kind_parity_images::load;
use kind_parity_images::registry::{self, Registry};
use kind_parity_testkit::standin::{self, Leftovers, noise};

const RUNS: usize = 3;
const BLOB_BYTES: usize = 500 * 1024 * 1024;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn pull_everywhere(docker: &Docker, nodes: &[String], reference: &str) {
    let pulls = nodes.iter().map(|node| async move {
        let command = ["ctr", "-n", "k8s.io", "images", "pull", "--hosts-dir", "/etc/containerd/certs.d", reference];
        let (exit, text) = standin::exec(docker, node, &command).await;
        assert_eq!(exit, Some(0), "pull in {node}: {text}");
    });
    futures::future::join_all(pulls).await;
}

#[tokio::main]
async fn main() {
    let Ok(node_image) = std::env::var(kind_parity_testkit::NODE_IMAGE) else {
        eprintln!("bench registry: {} is not set; start the test bed", kind_parity_testkit::NODE_IMAGE);
        return;
    };
    let Some(server) = kind_parity_testkit::require_program("docker-registry", "bench registry") else { return };
    let docker = kind_parity_images::connect().await.expect("the engine answers");
    let work = tempfile::tempdir().unwrap();
    let (child, port) = standin::start_registry(&server, work.path());
    let mut cleanup = Leftovers { process: Some(child), containers: Vec::new(), images: Vec::new() };
    let cluster = format!("kp-bench-registry-{}", std::process::id());
    let nodes: Vec<String> = ["control-plane", "worker"].iter().map(|r| format!("{cluster}-{r}")).collect();
    for (node, role) in nodes.iter().zip(["control-plane", "worker"]) {
        cleanup.containers.push(node.clone());
        standin::start_node(&docker, &node_image, &cluster, node, role, None).await;
    }
    let registry = Registry {
        name: format!("{cluster}-registry"),
        environment: cluster.clone(),
        image: String::new(),
        host_port: port,
    };
    let gateway = standin::bridge_gateway(&docker).await;
    registry::configure_nodes(&docker, &cluster, &registry, Some(&format!("http://{gateway}:{port}"))).await.unwrap();

    // One context: a 500 MB layer that never changes, then a one-line layer that does.
    let context = work.path().join("service");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY blob /blob\nCOPY version.txt /version.txt\n")
        .unwrap();
    std::fs::write(context.join("blob"), noise(BLOB_BYTES)).unwrap();
    let service = format!("kpbenchreg{}", std::process::id());
    let version = |n: usize| {
        std::fs::write(context.join("version.txt"), format!("version {n}\n")).unwrap();
        let spec = BuildSpec {
            service: service.clone(),
            context: context.clone(),
            dockerfile: "Dockerfile".into(),
            args: BTreeMap::new(),
            target: None,
        };
        let docker = docker.clone();
        async move { build(&docker, &prepare(&spec).await.unwrap(), &|_| {}).await.expect("built").tag().to_owned() }
    };

    // The starting point: both nodes hold version 0, through the registry.
    let v0 = version(0).await;
    cleanup.images.push(v0.clone());
    let r0 = registry::push(&docker, &registry, &v0, &|_| {}).await.unwrap();
    cleanup.images.push(r0.clone());
    pull_everywhere(&docker, &nodes, &r0).await;

    let mut through_registry = Vec::new();
    let mut loaded = Vec::new();
    for run in 1..=RUNS {
        let tag = version(run).await;
        cleanup.images.push(tag.clone());
        let started = Instant::now();
        let reference = registry::push(&docker, &registry, &tag, &|_| {}).await.unwrap();
        pull_everywhere(&docker, &nodes, &reference).await;
        through_registry.push(started.elapsed());
        cleanup.images.push(reference);

        // Another one-line change for the load, so that neither path finds its image present.
        let other = version(1000 + run).await;
        cleanup.images.push(other.clone());
        let started = Instant::now();
        let report = load::load(&docker, &cluster, std::slice::from_ref(&other), &|_| {}).await.unwrap();
        loaded.push(started.elapsed());
        assert!(report.nodes.iter().all(|n| n.bytes_sent > BLOB_BYTES as u64), "the whole image was loaded");
    }
    let (ours, whole) = (median(through_registry), median(loaded));
    let ratio = ours.as_secs_f64() / whole.as_secs_f64();
    println!(
        "bench registry: {} MB image, one-line change in the last layer, 2 stand-in nodes holding the previous version, median of {RUNS}",
        BLOB_BYTES / (1024 * 1024)
    );
    println!("  push changed layer + 2 nodes pull  median {:>9.1} ms", ours.as_secs_f64() * 1000.0);
    println!("  kind-parity load of the whole image median {:>9.1} ms", whole.as_secs_f64() * 1000.0);
    println!("  ratio {ratio:.3}x (target <= 0.3x) {}", if ratio <= 0.3 { "ok" } else { "OVER TARGET" });
    drop(cleanup);
}
