//! `kind-parity down` on kind without the `kind` binary, against the test bed's Docker Engine:
//! what kind's Docker provider made of a cluster (its labelled node containers) is removed
//! through Docker, and nothing else.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use kind_parity_testkit::standin::{CLUSTER_LABEL, Leftovers, ROLE_LABEL};
use predicates::prelude::*;

fn docker(args: &[&str]) -> String {
    let out = Process::new("docker").args(args).output().expect("docker CLI for test setup");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn kind_parity(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("KIND_PARITY_CONFIG");
    cmd.timeout(std::time::Duration::from_secs(120));
    cmd
}

#[test]
fn down_without_kind_removes_the_node_containers_through_docker() {
    let test = "down_without_kind_removes_the_node_containers_through_docker";
    let Some(image) = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!("kp-down-docker-{}", std::process::id());
    let node = format!("{cluster}-control-plane");
    let bystander = format!("kp-down-bystander-{}", std::process::id());
    // Removed whatever happens; `down` should have removed the node already.
    let _leftovers = Leftovers { process: None, containers: vec![node.clone(), bystander.clone()], images: Vec::new() };
    docker(&[
        "create",
        "--name",
        &node,
        "--label",
        &format!("{CLUSTER_LABEL}={cluster}"),
        "--label",
        &format!("{ROLE_LABEL}=control-plane"),
        &image,
    ]);
    docker(&["create", "--name", &bystander, "--label", &format!("{CLUSTER_LABEL}=some-other-cluster"), &image]);
    kind_parity(dir.path()).args(["render", "-q", "--name", &cluster]).assert().success();

    kind_parity(dir.path())
        .env("PATH", dir.path().join("no-programs-here"))
        .args(["down", "--yes", "--name", &cluster])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "kind is not installed: removing what is left of {cluster} through Docker"
        )))
        .stderr(predicate::str::contains(format!("removing node containers of {cluster}: {node}")));
    let filter = |name: &str| format!("name=^{name}$");
    assert!(docker(&["ps", "--all", "--quiet", "--filter", &filter(&node)]).is_empty(), "the node container is gone");
    assert!(
        !docker(&["ps", "--all", "--quiet", "--filter", &filter(&bystander)]).is_empty(),
        "another cluster's node stays"
    );
    assert!(!dir.path().join(".kind-parity").join(&cluster).exists());
}
