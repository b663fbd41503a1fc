//! Loading into kind nodes, against the real Docker Engine of the test bed: the nodes are
//! containers of its kind-node stand-in image (a real containerd and ctr), labelled like kind's.
//! No registry is reachable, so the images are built locally `FROM scratch`.
//!
//! Each test has its own cluster name, nodes and images, and a guard removes them even when the
//! test fails.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use bollard::Docker;
use bollard::query_parameters::TagImageOptionsBuilder;
use kind_parity_docker::CLUSTER_LABEL;
use kind_parity_images::Error;
use kind_parity_images::build::{BuildSpec, build, prepare};
use kind_parity_images::load::{self, Node, Outcome, Progress};
use kind_parity_testkit::standin::{self, Leftovers};

/// The node containers and images of one test, removed on drop.
struct Fixture {
    docker: Docker,
    node_image: String,
    cluster: String,
    /// Removed on drop, even when the test fails.
    leftovers: Leftovers,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(test: &str) -> Option<Self> {
        let node_image = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test)?;
        let docker = kind_parity_images::connect().await.expect("the test bed's engine answers");
        Some(Self {
            docker,
            node_image,
            cluster: format!("kp-load-{test}-{}", std::process::id()).replace('_', "-"),
            leftovers: Leftovers::default(),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// Starts a node as kind runs one; `setup` (sh) runs before containerd, as root, to break it.
    async fn node(&mut self, suffix: &str, role: &str, setup: Option<&str>) -> String {
        let name = format!("{}-{suffix}", self.cluster);
        self.leftovers.containers.push(name.clone());
        let entrypoint = setup
            .map(|setup| vec!["/bin/sh".to_owned(), "-c".to_owned(), format!("{setup}\nexec /usr/bin/containerd")]);
        standin::start_node(&self.docker, &self.node_image, &self.cluster, &name, role, entrypoint).await;
        name
    }

    /// Builds a small image `FROM scratch` whose content is `text`; returns its tag.
    async fn image(&mut self, service: &str, text: &str) -> String {
        let dir = self.dir.path().join(service);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY data.txt /data.txt\n").unwrap();
        std::fs::write(dir.join("data.txt"), text).unwrap();
        let spec = BuildSpec {
            service: format!("{}-{service}", self.cluster),
            context: dir,
            dockerfile: "Dockerfile".into(),
            args: BTreeMap::new(),
            target: None,
        };
        let tag =
            build(&self.docker, &prepare(&spec).await.unwrap(), &|_| {}).await.expect("image built").tag().to_owned();
        self.leftovers.images.push(tag.clone());
        tag
    }

    async fn tag(&mut self, image: &str, repo: &str, tag: &str) -> String {
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.docker.tag_image(image, Some(options)).await.expect("tagged");
        let name = format!("{repo}:{tag}");
        self.leftovers.images.push(name.clone());
        name
    }

    fn node_handle(name: &str, role: &str) -> Node {
        Node { name: name.to_owned(), role: role.to_owned() }
    }
}

use kind_parity_testkit::standin::exec as run;

/// The references a node lists.
async fn references(docker: &Docker, node: &str) -> Vec<String> {
    let (exit, text) = run(docker, node, &["ctr", "-n", "k8s.io", "images", "ls", "-q"]).await;
    assert_eq!(exit, Some(0), "{text}");
    text.lines().map(str::to_owned).collect()
}

fn outcomes(report: &load::LoadReport) -> Vec<(String, Vec<Outcome>)> {
    report.nodes.iter().map(|n| (n.node.clone(), n.images.iter().map(|i| i.outcome.clone()).collect())).collect()
}

#[tokio::test]
async fn loads_into_every_node_then_skips_then_retags() {
    let Some(mut fx) = Fixture::new("flow").await else { return };
    let control = fx.node("control-plane", "control-plane", None).await;
    let worker = fx.node("worker", "worker", None).await;
    let worker2 = fx.node("worker2", "worker", None).await;
    let app = fx.image("app", "application v1").await;
    let sent = Mutex::new(BTreeMap::<String, u64>::new());
    let progress = |p: Progress<'_>| {
        if let Progress::Sent { node, bytes, .. } = p {
            sent.lock().unwrap().insert(node.to_owned(), bytes);
        }
    };

    // First load: every node gets it, from one export.
    let found = load::nodes(&fx.docker, &fx.cluster).await.unwrap();
    assert_eq!(found.iter().map(|n| n.role.as_str()).collect::<Vec<_>>(), ["control-plane", "worker", "worker"]);
    let report = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&app), &progress).await.expect("loaded");
    assert_eq!(outcomes(&report), [&control, &worker, &worker2].map(|n| (n.clone(), vec![Outcome::Loaded])).to_vec());
    let reference = format!("docker.io/library/{app}");
    for node in &report.nodes {
        assert_eq!(node.snapshotter, "overlayfs");
        assert!(node.bytes_sent > 0, "{node:?}");
        assert_eq!(sent.lock().unwrap().get(&node.node), Some(&node.bytes_sent), "progress heard every byte");
        assert!(references(&fx.docker, &node.node).await.contains(&reference), "{} lists {reference}", node.node);
    }

    // `listed` (what `status` reads): the loaded tag is in every node, another is in none.
    let listed = load::listed(&fx.docker, &fx.cluster, &[app.clone(), "app:kp-000000000000".into()]).await.unwrap();
    assert_eq!(listed, [&control, &worker, &worker2].map(|n| (n.clone(), vec![true, false])).to_vec());

    // Second load: already present everywhere, nothing sent.
    sent.lock().unwrap().clear();
    let again = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&app), &progress).await.unwrap();
    assert!(outcomes(&again).iter().all(|(_, o)| *o == [Outcome::AlreadyPresent]), "{again:?}");
    assert!(again.nodes.iter().all(|n| n.bytes_sent == 0) && sent.lock().unwrap().is_empty());

    // The same content under another name: re-tagged in the nodes, not sent again.
    let repo = format!("{}-alias", fx.cluster);
    let alias = fx.tag(&app, &repo, "v1").await;
    let retagged = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&alias), &progress).await.unwrap();
    assert!(
        outcomes(&retagged).iter().all(|(_, o)| *o == [Outcome::Retagged { from: reference.clone() }]),
        "{retagged:?}"
    );
    assert!(retagged.nodes.iter().all(|n| n.bytes_sent == 0));
    assert!(references(&fx.docker, &worker2).await.contains(&format!("docker.io/library/{alias}")));

    // Nodes that need different sets: the control plane has `base` already, the workers do not.
    let base = fx.image("base", "base layer v1").await;
    let only_control = [Fixture::node_handle(&control, "control-plane")];
    load::load_into(&fx.docker, &only_control, std::slice::from_ref(&base), &|_| {}).await.unwrap();
    let mixed = load::load(&fx.docker, &fx.cluster, &[app.clone(), base.clone()], &progress).await.unwrap();
    assert_eq!(
        outcomes(&mixed),
        [
            (control.clone(), vec![Outcome::AlreadyPresent, Outcome::AlreadyPresent]),
            (worker.clone(), vec![Outcome::AlreadyPresent, Outcome::Loaded]),
            (worker2.clone(), vec![Outcome::AlreadyPresent, Outcome::Loaded]),
        ]
    );
    assert_eq!(mixed.nodes[0].bytes_sent, 0);
    assert_eq!(mixed.nodes[1].bytes_sent, mixed.nodes[2].bytes_sent, "one export for both workers");
}

#[tokio::test]
async fn a_snapshotter_named_in_an_imported_file_is_found_by_the_dump() {
    let Some(mut fx) = Fixture::new("dump").await else { return };
    // The main file only imports: only `containerd config dump` knows the snapshotter (native).
    let config = r#"mkdir -p /etc/containerd/conf.d
printf 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n' > /etc/containerd/config.toml
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "native"\n' > /etc/containerd/conf.d/snapshotter.toml"#;
    let node = fx.node("control-plane", "control-plane", Some(config)).await;
    let app = fx.image("app", "config dump test").await;
    let report = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&app), &|_| {}).await.expect("loaded");
    assert_eq!(report.nodes[0].node, node);
    assert_eq!(report.nodes[0].snapshotter, "native");
    assert_eq!(report.nodes[0].images[0].outcome, Outcome::Loaded);
    let again = load::load(&fx.docker, &fx.cluster, &[app], &|_| {}).await.unwrap();
    assert_eq!(again.nodes[0].images[0].outcome, Outcome::AlreadyPresent, "unpacked for native counts");
}

#[tokio::test]
async fn a_stopped_node_is_named() {
    let Some(mut fx) = Fixture::new("stopped").await else { return };
    fx.node("control-plane", "control-plane", None).await;
    let worker = fx.node("worker", "worker", None).await;
    let app = fx.image("app", "stopped-node test").await;
    fx.docker.stop_container(&worker, None).await.unwrap();
    let error = load::load(&fx.docker, &fx.cluster, &[app], &|_| {}).await.unwrap_err();
    assert!(matches!(&error, Error::NodeStopped { node, state } if *node == worker && state == "exited"), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("node {worker} is exited, not running; start it (`docker start {worker}`) or recreate the cluster")
    );
}

#[tokio::test]
async fn a_missing_image_or_cluster_is_named() {
    let Some(mut fx) = Fixture::new("missing").await else { return };
    fx.node("control-plane", "control-plane", None).await;
    let missing = format!("{}-nothing:kp-000000000000", fx.cluster);
    let error = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&missing), &|_| {}).await.unwrap_err();
    assert_eq!(error.to_string(), format!("image {missing} does not exist locally"));
    let nobody = format!("{}-nobody", fx.cluster);
    let error = load::load(&fx.docker, &nobody, &[missing], &|_| {}).await.unwrap_err();
    assert_eq!(error.to_string(), format!("cluster {nobody} has no node containers (label {CLUSTER_LABEL}={nobody})"));
}

#[tokio::test]
async fn a_failed_import_carries_ctrs_stderr() {
    let Some(mut fx) = Fixture::new("import-fails").await else { return };
    // A real misconfiguration: the CRI plugin names a snapshotter this containerd does not have.
    let config = r#"printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "kp-missing"\n' > /etc/containerd/config.toml"#;
    let node = fx.node("control-plane", "control-plane", Some(config)).await;
    let app = fx.image("app", "import failure test").await;
    let error = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&app), &|_| {}).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, Error::ImportFailed { node: n, images, exit: Some(code), .. }
        if *n == node && *images == [app.clone()] && *code != 0),
        "{error:?}"
    );
    assert!(text.starts_with(&format!("importing {app} into node {node} failed (exit code ")), "{text}");
    assert!(text.contains("kp-missing"), "ctr's stderr names the snapshotter: {text}");
    assert!(!references(&fx.docker, &node).await.contains(&format!("docker.io/library/{app}")));
}

#[tokio::test]
async fn a_node_without_ctr_is_named() {
    let Some(mut fx) = Fixture::new("no-ctr").await else { return };
    let node = fx.node("control-plane", "control-plane", Some("rm /usr/bin/ctr")).await;
    let app = fx.image("app", "no ctr test").await;
    let error = load::load(&fx.docker, &fx.cluster, &[app], &|_| {}).await.unwrap_err();
    assert!(matches!(&error, Error::NodeWithoutCtr { node: n, .. } if *n == node), "{error:?}");
    assert_eq!(error.to_string(), format!("node {node} has no `ctr` (is it a kind node?): ctr: not found"));
}

#[tokio::test]
async fn an_import_that_loads_nothing_fails_verification() {
    let Some(mut fx) = Fixture::new("verify").await else { return };
    // A ctr whose import swallows its input and says it succeeded: only verification can tell.
    let lying_ctr = r#"/bin/busybox mv /usr/bin/ctr /usr/bin/ctr.real
printf '#!/bin/sh\ncase "$*" in *"images import"*) /bin/busybox cat >/dev/null; exit 0;; esac\nexec /usr/bin/ctr.real "$@"\n' > /usr/bin/ctr
/bin/busybox chmod 755 /usr/bin/ctr"#;
    let node = fx.node("control-plane", "control-plane", Some(lying_ctr)).await;
    let app = fx.image("app", "verification test").await;
    let error = load::load(&fx.docker, &fx.cluster, std::slice::from_ref(&app), &|_| {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::VerifyFailed { node: n, image, found: None, .. } if *n == node && *image == app),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "node {node} does not list {app} (docker.io/library/{app}) with the content of sha256:"
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_platform_image_without_a_registry_says_so() {
    let Some(mut fx) = Fixture::new("platform").await else { return };
    let app = fx.image("app", "platform cache test").await;
    let cached = kind_parity_images::platform::cache(&fx.docker, &app, &|_| {}).await.unwrap();
    assert_eq!(cached, kind_parity_images::platform::Cached::Present);
    // A name no registry has: offline (the test bed) it is unreachable; online, refused.
    let image = format!("docker.io/kindparity/{}:never", fx.cluster);
    match kind_parity_images::platform::cache(&fx.docker, &image, &|_| {}).await {
        Err(error @ Error::RegistryUnreachable { .. }) => {
            assert!(error.to_string().starts_with(&format!("no registry is reachable to pull {image}: ")), "{error}");
        }
        Err(error @ Error::PullFailed { .. }) => assert!(error.to_string().contains(&image), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_named() {
    // A socket nobody listens on any more: connections are refused, as with a stopped engine.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let docker = Docker::connect_with_unix(socket.to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION).unwrap();
    let error = load::load(&docker, "kp-any", &["api:kp-000000000000".into()], &|_| {}).await.unwrap_err();
    assert!(matches!(error, Error::EngineDown { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the Docker Engine is not answering; start Docker (`docker version` should answer) or set DOCKER_HOST"
    );
    let nodes = [Fixture::node_handle("kp-any-control-plane", "control-plane")];
    let error = load::load_into(&docker, &nodes, &["api:kp-000000000000".into()], &|_| {}).await.unwrap_err();
    assert!(matches!(error, Error::EngineDown { .. }), "{error:?}");
}
