//! kind node stand-ins for tests and benches: a container of the test bed's node image
//! (`KIND_PARITY_TEST_NODE_IMAGE`, a real containerd) labelled as kind labels its nodes, and
//! commands run in it through the Docker API.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use futures::StreamExt as _;

/// The label kind puts on a cluster's node containers, valued with the cluster's name.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// The label kind puts on node containers, valued `control-plane` or `worker`.
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";

/// Runs `command` in `container`: its exit code and its output (stdout and stderr).
pub async fn exec(docker: &Docker, container: &str, command: &[&str]) -> (Option<i64>, String) {
    let options = CreateExecOptions {
        cmd: Some(command.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker.create_exec(container, options).await.expect("exec created");
    let mut text = String::new();
    // The exec ends when its output is drained.
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec.id, None).await.unwrap() {
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    }
    (docker.inspect_exec(&exec.id).await.unwrap().exit_code, text)
}

/// Starts node `name` of `cluster` with `role` from `image` as kind runs one, and waits until its
/// containerd serves. `entrypoint` replaces the image's (to break a node on purpose).
pub async fn start_node(
    docker: &Docker,
    image: &str,
    cluster: &str,
    name: &str,
    role: &str,
    entrypoint: Option<Vec<String>>,
) {
    let labels =
        HashMap::from([(CLUSTER_LABEL.to_owned(), cluster.to_owned()), (ROLE_LABEL.to_owned(), role.to_owned())]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        labels: Some(labels),
        entrypoint,
        // Overlay snapshots cannot sit on the container's own overlay root: kind gives /var a volume.
        volumes: Some(vec!["/var/lib/containerd".to_owned()]),
        host_config: Some(HostConfig {
            cap_add: Some(vec!["SYS_ADMIN".into()]),
            security_opt: Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker.create_container(Some(options), body).await.expect("node container created");
    docker.start_container(name, None).await.expect("node container started");
    let deadline = Instant::now() + Duration::from_secs(30);
    while exec(docker, name, &["sh", "-c", "test -S /run/containerd/containerd.sock"]).await.0 != Some(0) {
        assert!(Instant::now() < deadline, "containerd did not start in {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
