//! The node containers of a kind cluster, found by kind's labels on the real Docker Engine of the
//! test bed, with containers made (never started) from its kind-node stand-in image.

use std::process::Command;

use kind_parity_docker::{CLUSTER_LABEL, NodeContainer, ROLE_LABEL};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI for test setup");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the test's containers whatever happens.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "--force", name]).output();
        }
    }
}

#[tokio::test]
async fn a_clusters_nodes_are_found_by_label_with_role_and_state_and_no_other() {
    let test = "a_clusters_nodes_are_found_by_label_with_role_and_state_and_no_other";
    let Some(image) = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test) else { return };
    let cluster = format!("kp-docker-nodes-{}", std::process::id());
    let mut made = Containers(Vec::new());
    // Made in reverse order, so the sort is the function's. The bystander belongs to a cluster
    // whose name starts like this one's: the label filter matches whole values.
    for (name, labels) in [
        (format!("{cluster}-worker"), vec![format!("{CLUSTER_LABEL}={cluster}"), format!("{ROLE_LABEL}=worker")]),
        (
            format!("{cluster}-control-plane"),
            vec![format!("{CLUSTER_LABEL}={cluster}"), format!("{ROLE_LABEL}=control-plane")],
        ),
        (format!("{cluster}2-control-plane"), vec![format!("{CLUSTER_LABEL}={cluster}2")]),
    ] {
        let mut args = vec!["create".to_owned(), "--name".into(), name.clone()];
        for label in labels {
            args.extend(["--label".into(), label]);
        }
        args.push(image.clone());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        made.0.push(name);
    }
    let engine = kind_parity_docker::connect().expect("a client");
    let found = kind_parity_docker::node_containers(&engine, &cluster).await.expect("the engine answers");
    let created = |name: String, role: &str| NodeContainer { name, role: role.into(), state: "created".into() };
    assert_eq!(
        found,
        vec![
            created(format!("{cluster}-control-plane"), "control-plane"),
            created(format!("{cluster}-worker"), "worker"),
        ]
    );
    assert!(found.iter().all(|n| !n.running()), "created, never started");
}

#[tokio::test]
async fn a_cluster_without_containers_has_no_nodes() {
    let test = "a_cluster_without_containers_has_no_nodes";
    if kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test).is_none() {
        return;
    }
    let engine = kind_parity_docker::connect().expect("a client");
    let found = kind_parity_docker::node_containers(&engine, &format!("kp-nobody-{}", std::process::id())).await;
    assert_eq!(found.expect("the engine answers"), Vec::new());
}
