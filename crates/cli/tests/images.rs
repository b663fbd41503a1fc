//! `kind-parity build` and `kind-parity load` against the test bed's Docker Engine and a kind
//! node stand-in running a real containerd (`KIND_PARITY_TEST_NODE_IMAGE`).

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use kind_parity_testkit::standin::Leftovers;
use predicates::prelude::*;

fn kind_parity(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("KIND_PARITY_CONFIG");
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// Starts the control-plane stand-in node of `cluster`; it (and what the test adds) is removed
/// when the returned guard drops, even if the start fails half-way.
async fn start_node(node_image: &str, cluster: &str) -> Leftovers {
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let name = format!("{cluster}-control-plane");
    let leftovers = Leftovers { process: None, containers: vec![name.clone()], images: Vec::new() };
    kind_parity_testkit::standin::start_node(&docker, node_image, cluster, &name, "control-plane", None).await;
    leftovers
}

#[tokio::test]
async fn build_then_load_into_a_node_then_load_again_sends_nothing() {
    let test = "build_then_load_into_a_node_then_load_again_sends_nothing";
    let Some(node_image) = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!("kp-cli-load-{}", std::process::id());
    let service = format!("hello{}", std::process::id());
    std::fs::create_dir(dir.path().join("hello")).unwrap();
    std::fs::write(dir.path().join("hello/Dockerfile"), "FROM scratch\nCOPY data.txt /data.txt\n").unwrap();
    std::fs::write(dir.path().join("hello/data.txt"), format!("{cluster}\n")).unwrap();
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        format!("name: {cluster}\nservices:\n  {service}:\n    build:\n      context: hello\n    port: 8080\n"),
    )
    .unwrap();
    let mut node = start_node(&node_image, &cluster).await;

    // Build prints the content tag; building again skips.
    let out = kind_parity(dir.path()).arg("build").assert().success().stderr(predicate::str::contains(": built"));
    let tag = String::from_utf8(out.get_output().stdout.clone()).unwrap().trim().to_owned();
    node.images.push(tag.clone());
    assert!(tag.starts_with(&format!("{service}:kp-")) && tag.len() == service.len() + 16, "{tag}");
    kind_parity(dir.path())
        .arg("build")
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("image {tag}: unchanged")));
    kind_parity(dir.path()).args(["build", "nope"]).assert().code(2).stderr(predicate::str::contains(format!(
        "error: no service `nope` builds an image\n  next: services with a `build`: {service}"
    )));

    // Load streams it into the node, then finds it there.
    kind_parity(dir.path())
        .args(["load", &tag])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("loading 1 image(s) into the nodes of kind cluster {cluster}")))
        .stderr(
            predicate::str::is_match(format!(r"  {cluster}-control-plane: {tag} loaded; [0-9.]+ MB sent in ")).unwrap(),
        );
    let again = kind_parity(dir.path()).args(["load", &tag, "--output", "json"]).assert().success();
    let json: serde_json::Value = serde_json::from_slice(&again.get_output().stdout).unwrap();
    assert_eq!(json["nodes"][0]["bytes_sent"], 0);
    assert_eq!(json["nodes"][0]["images"][0]["outcome"], "already present");

    // An image that does not exist is named; nothing is loaded.
    kind_parity(dir.path())
        .args(["load", "kp-no-such-image:1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("kp-no-such-image:1"));
    // A cluster without nodes says how to create it.
    kind_parity(dir.path())
        .args(["--name", "kp-no-such-cluster", "load", &tag])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cluster kp-no-such-cluster has no node containers"));
}
