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

/// kind's labels on node containers, from the one Docker layer.
pub use kind_parity_docker::{CLUSTER_LABEL, ROLE_LABEL};

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

/// What a test or bench made, removed when dropped (also when a step panics): a server process,
/// containers (with their volumes), images.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// A server process to kill.
    pub process: Option<std::process::Child>,
    /// Containers to remove.
    pub containers: Vec<String>,
    /// Images to remove.
    pub images: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (containers, images) = (std::mem::take(&mut self.containers), std::mem::take(&mut self.images));
        if containers.is_empty() && images.is_empty() {
            return;
        }
        // Drop cannot await, and the caller's runtime may be the one blocked here: a thread with
        // its own runtime and its own client does the removal, and is waited for.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let Ok(docker) = Docker::connect_with_local_defaults() else { return };
                for container in &containers {
                    let options =
                        bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).v(true).build();
                    if let Err(error) = docker.remove_container(container, Some(options)).await {
                        eprintln!("cleanup: removing container {container}: {error}");
                    }
                }
                for image in &images {
                    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default().force(true).build();
                    let _ = docker.remove_image(image, Some(options), None).await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// `len` incompressible bytes (xorshift64*), different per process.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Starts Debian's `docker-registry` (the test bed's `services` part installs it) on a free port of every
/// address, storing into `dir`, and waits until it answers: the process and its port. Listening
/// on every address lets stand-in nodes reach it through the Docker bridge's gateway.
pub fn start_registry(program: &std::path::Path, dir: &std::path::Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 0.0.0.0:{port}\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let child = std::process::Command::new(program)
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// The Docker bridge's gateway address: how a container reaches a server on the host.
pub async fn bridge_gateway(docker: &Docker) -> String {
    let bridge =
        docker.inspect_network("bridge", None::<bollard::query_parameters::InspectNetworkOptions>).await.unwrap();
    let subnet = bridge.ipam.and_then(|i| i.config).and_then(|c| c.into_iter().next()).and_then(|c| c.subnet).unwrap();
    format!("{}.1", subnet.split('/').next().unwrap().rsplit_once('.').unwrap().0)
}
