//! An image that `kind-parity build` makes and `kind-parity load` puts into the test bed's node
//! (`KIND_PARITY_TEST_CLUSTER`, a kubelet on containerd, found by kind's labels) starts a pod
//! there: the loader's work is what the kubelet runs, not only what `ctr` lists.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, LogParams, PostParams};
use predicates::prelude::*;

fn kind_parity(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("KIND_PARITY_CONFIG");
    cmd.timeout(Duration::from_secs(180));
    cmd
}

/// Removes the test's namespace, its image from Docker and from the node's containerd.
struct Cleanup {
    namespace: String,
    node: String,
    image: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.namespace);
        if let Some(image) = self.image.take() {
            let _ = std::process::Command::new("docker").args(["rmi", "--force", &image]).output();
            // The kubelet never collects images on the test bed (imageGCHighThresholdPercent: 100).
            let reference = format!("docker.io/library/{image}");
            let _ = std::process::Command::new("docker")
                .args(["exec", &self.node, "ctr", "-n", "k8s.io", "images", "rm", &reference])
                .output();
        }
    }
}

#[tokio::test]
async fn a_built_and_loaded_image_starts_a_pod_on_the_node() {
    let test = "a_built_and_loaded_image_starts_a_pod_on_the_node";
    let Some(kubeconfig) = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test) else { return };
    let Some(cluster) = kind_parity_testkit::require(kind_parity_testkit::CLUSTER, test) else { return };
    let Some(base) = kind_parity_testkit::require(kind_parity_testkit::POD_IMAGE, test) else { return };
    let marker = format!("loaded by kind-parity {}-{}", std::process::id(), rand::random::<u32>());
    let service = format!("podload{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!(
            "FROM {base}\nCOPY marker.txt /marker.txt\nCMD [\"sh\", \"-c\", \"cat /marker.txt; exec sleep 3600\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("app/marker.txt"), format!("{marker}\n")).unwrap();
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        format!("name: {cluster}\nservices:\n  {service}:\n    build:\n      context: app\n    port: 8080\n"),
    )
    .unwrap();
    let namespace = format!("kp-cli-podload-{}", std::process::id());
    let mut cleanup = Cleanup { namespace: namespace.clone(), node: format!("{cluster}-control-plane"), image: None };

    let out = kind_parity(dir.path()).arg("build").assert().success();
    let tag = String::from_utf8(out.get_output().stdout.clone()).unwrap().trim().to_owned();
    cleanup.image = Some(tag.clone());
    kind_parity(dir.path()).args(["load", &tag]).assert().success().stderr(
        predicate::str::is_match(format!(r"  {cluster}-control-plane: {tag} loaded; [0-9.]+ MB sent in ")).unwrap(),
    );

    let target = kind_parity_cluster::Target { kubeconfig: Some(kubeconfig.into()), context: None };
    let (client, _) = kind_parity_cluster::connect(&target).await.unwrap();
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app"},
        "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": false,
                 "containers": [{"name": "app", "image": tag, "imagePullPolicy": "Never"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let logs = loop {
        let phase = pods.get("app").await.unwrap().status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Running"
            && let Ok(logs) = pods.logs("app", &LogParams::default()).await
            && !logs.is_empty()
        {
            break logs;
        }
        assert!(Instant::now() < deadline, "pod app is {phase} after 90s: {:?}", pods.get("app").await.unwrap().status);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(logs.trim(), marker);
}
