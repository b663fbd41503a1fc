//! Node containers by kind's labels and the `kind` network, against the real Docker Engine of
//! the test bed, with containers made from its kind-node stand-in image.

// A test that cannot run says so on stderr (the loud skip line).
#![allow(clippy::print_stderr)]

use std::process::Command;

use kind_parity_cluster::docker::{CLUSTER_LABEL, Docker, KIND_NETWORK};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI for test setup");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn leftover_node_containers_are_found_by_label_and_removed() {
    let Some(image) = kind_parity_testkit::require(
        kind_parity_testkit::NODE_IMAGE,
        "leftover_node_containers_are_found_by_label_and_removed",
    ) else {
        return;
    };
    let cluster = format!("kp-leftover-{}", std::process::id());
    // What a killed `kind create cluster` leaves: node containers, one never started.
    for (name, role) in [("control-plane", "control-plane"), ("worker", "worker")] {
        docker(&[
            "create",
            "--name",
            &format!("{cluster}-{name}"),
            "--label",
            &format!("{CLUSTER_LABEL}={cluster}"),
            "--label",
            &format!("io.x-k8s.kind.role={role}"),
            &image,
        ]);
    }
    let (engine, version) = Docker::connect().await.expect("engine");
    assert!(!version.is_empty());
    let found = engine.node_containers(&cluster).await.unwrap();
    assert_eq!(found, vec![format!("{cluster}-control-plane"), format!("{cluster}-worker")]);
    assert!(engine.node_containers("some-other-cluster-name").await.unwrap().is_empty());
    engine.remove_containers(&found).await.unwrap();
    assert!(engine.node_containers(&cluster).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_kind_network_is_removed_only_when_unused() {
    let Some(image) =
        kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, "the_kind_network_is_removed_only_when_unused")
    else {
        return;
    };
    if !docker(&["network", "ls", "--quiet", "--filter", &format!("name=^{KIND_NETWORK}$")]).is_empty() {
        // A real kind network on this machine belongs to someone's clusters: leave it alone.
        eprintln!("SKIPPED the_kind_network_is_removed_only_when_unused: a `kind` network already exists here");
        return;
    }
    docker(&["network", "create", KIND_NETWORK]);
    let holder = format!("kp-network-holder-{}", std::process::id());
    // busybox `sleep`: containerd, the image's entrypoint, may exit without its capabilities.
    docker(&["create", "--name", &holder, "--network", KIND_NETWORK, "--entrypoint", "/bin/sleep", &image, "300"]);
    docker(&["start", &holder]);
    let (engine, _) = Docker::connect().await.unwrap();
    let removed_while_used = engine.remove_kind_network_if_unused().await;
    docker(&["rm", "--force", &holder]);
    assert!(!removed_while_used.unwrap(), "the network was removed while a container used it");
    assert!(engine.remove_kind_network_if_unused().await.unwrap(), "the unused network was kept");
    assert!(!engine.remove_kind_network_if_unused().await.unwrap(), "a missing network is not an error");
}
