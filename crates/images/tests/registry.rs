//! The local registry path against real components: Debian's docker-registry on this machine,
//! the test bed's Docker Engine pushing to it, and a containerd stand-in node pulling from it
//! through the `hosts.toml` that `configure_nodes` writes.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;

use bollard::Docker;
use kind_parity_images::Error;
use kind_parity_images::build::{BuildSpec, build, prepare};
use kind_parity_images::registry::{self, Registry};
use kind_parity_testkit::standin::{self, Leftovers};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn image(docker: &Docker, dir: &std::path::Path, service: &str, last: &str) -> String {
    let context = dir.join(format!("{service}-{}", last.len()));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY base.txt /base.txt\nCOPY last.txt /last.txt\n")
        .unwrap();
    // A first layer big enough that sending it twice would show.
    std::fs::write(context.join("base.txt"), "base layer\n".repeat(100_000)).unwrap();
    std::fs::write(context.join("last.txt"), last).unwrap();
    let spec = BuildSpec {
        service: service.into(),
        context,
        dockerfile: "Dockerfile".into(),
        args: BTreeMap::new(),
        target: None,
    };
    build(docker, &prepare(&spec).await.unwrap(), &|_| {}).await.expect("built").tag().to_owned()
}

#[tokio::test]
async fn images_are_pushed_once_per_layer_and_nodes_pull_them_through_hosts_toml() {
    let test = "images_are_pushed_once_per_layer_and_nodes_pull_them_through_hosts_toml";
    let Some(node_image) = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test) else { return };
    let Some(server) = kind_parity_testkit::require_program("docker-registry", test) else { return };
    let docker = kind_parity_images::connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = standin::start_registry(&server, dir.path());
    let cluster = format!("kp-registry-{}", std::process::id());
    let mut fx = Leftovers { process: Some(child), containers: Vec::new(), images: Vec::new() };
    let registry = Registry {
        name: format!("{cluster}-registry"),
        environment: cluster.clone(),
        image: "unused".into(),
        host_port: port,
    };
    let service = format!("kpreg{}", std::process::id());

    // First push: every layer travels.
    let v1 = image(&docker, dir.path(), &service, "v1").await;
    fx.images.push(v1.clone());
    let statuses = std::sync::Mutex::new(Vec::new());
    let record = |s: &str| statuses.lock().unwrap().push(s.to_owned());
    let reference = registry::push(&docker, &registry, &v1, &record).await.expect("pushed");
    fx.images.push(reference.clone());
    assert_eq!(reference, format!("localhost:{port}/{v1}"));
    assert!(statuses.lock().unwrap().iter().any(|s| s == "Pushed"), "{:?}", statuses.lock().unwrap());

    // A change in the last layer: the first layer is already there and is not sent again.
    let v2 = image(&docker, dir.path(), &service, "v2, changed").await;
    fx.images.push(v2.clone());
    statuses.lock().unwrap().clear();
    let reference2 = registry::push(&docker, &registry, &v2, &record).await.expect("pushed");
    fx.images.push(reference2.clone());
    let seen = statuses.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|s| *s == "Layer already exists").count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| *s == "Pushed").count(), 1, "{seen:?}");

    // A node pulls it by its localhost name, served by the registry through hosts.toml.
    let node = format!("{cluster}-control-plane");
    fx.containers.push(node.clone());
    standin::start_node(&docker, &node_image, &cluster, &node, "control-plane", None).await;
    let subnet =
        docker.inspect_network("bridge", None::<bollard::query_parameters::InspectNetworkOptions>).await.unwrap();
    let subnet = subnet.ipam.and_then(|i| i.config).and_then(|c| c.into_iter().next()).and_then(|c| c.subnet).unwrap();
    let gateway = format!("{}.1", subnet.split('/').next().unwrap().rsplit_once('.').unwrap().0);
    let endpoint = format!("http://{gateway}:{port}");
    let configured = registry::configure_nodes(&docker, &cluster, &registry, Some(&endpoint)).await.unwrap();
    assert_eq!(configured, std::slice::from_ref(&node));
    let (exit, text) =
        standin::exec(&docker, &node, &["cat", &format!("/etc/containerd/certs.d/localhost:{port}/hosts.toml")]).await;
    assert_eq!(
        (exit, text.as_str()),
        (Some(0), format!("[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n").as_str())
    );
    let pull = ["ctr", "-n", "k8s.io", "images", "pull", "--hosts-dir", "/etc/containerd/certs.d", reference2.as_str()];
    let (exit, text) = standin::exec(&docker, &node, &pull).await;
    assert_eq!(exit, Some(0), "{text}");

    // An image that does not exist is named.
    let err = registry::push(&docker, &registry, "kp-no-such-image:1", &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_registry_container_not_ours_is_left_alone() {
    let test = "a_registry_container_not_ours_is_left_alone";
    let Some(node_image) = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test) else { return };
    let docker = kind_parity_images::connect().await.unwrap();
    let name = format!("kp-foreign-{}", std::process::id());
    let mut fx = Leftovers { process: None, containers: vec![name.clone()], images: Vec::new() };
    let body = bollard::models::ContainerCreateBody { image: Some(node_image), ..Default::default() };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&name).build();
    docker.create_container(Some(options), body).await.unwrap();
    let registry =
        Registry { name: name.clone(), environment: "kp".into(), image: "unused".into(), host_port: free_port() };
    let err = registry::ensure(&docker, &registry, "kind").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("a container named {name} exists and was not created by kind-parity; remove it or set `registry` off")
    );
    assert!(!registry::remove(&docker, &registry).await.unwrap(), "a foreign container is not removed");
    assert!(docker.inspect_container(&name, None).await.is_ok());

    // A registry image that is not here and cannot be pulled is named.
    fx.containers.clear();
    let _ = docker.remove_container(&name, None).await;
    let missing = Registry {
        name: format!("{name}-x"),
        environment: "kp".into(),
        image: "registry.invalid/kp/registry:2.8.3".into(),
        host_port: free_port(),
    };
    let err = registry::ensure(&docker, &missing, "kind").await.unwrap_err();
    assert!(err.to_string().contains("registry.invalid/kp/registry:2.8.3"), "{err}");
    drop(fx);
}
