//! `wait` and `diagnose` against real rollouts: pods that the test bed's node
//! (`KIND_PARITY_TEST_CLUSTER`) runs with its kubelet, from the busybox image it holds
//! (`KIND_PARITY_TEST_POD_IMAGE`). Nothing here writes `status`: every state is the kubelet's.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kind_parity_cluster::wait::{Progress, WaitOptions, wait_ready};
use kind_parity_cluster::{Error, ObjectRef, Target, connect};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// The client and the pod image, when the test bed has a node that runs pods.
async fn node(test: &str) -> Option<(kube::Client, String)> {
    let kubeconfig = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test)?;
    kind_parity_testkit::require(kind_parity_testkit::CLUSTER, test)?;
    let image = kind_parity_testkit::require(kind_parity_testkit::POD_IMAGE, test)?;
    let target = Target { kubeconfig: Some(kubeconfig.into()), context: None };
    Some((connect(&target).await.expect("test bed reachable").0, image))
}

/// A namespace of its own, deleted when the test ends however it ends.
struct Namespaced {
    client: kube::Client,
    name: String,
}

impl Namespaced {
    async fn new(client: &kube::Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}-{}", std::process::id(), rand::random::<u16>());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
        Self { client: client.clone(), name }
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.name);
    }
}

/// Creates a one-replica Deployment `name` whose container is `container` (over busybox, pull
/// policy Never, a short grace period).
async fn deployment(ns: &Namespaced, name: &str, image: &str, container: serde_json::Value) -> ObjectRef {
    let mut c = json!({"name": "c", "image": image, "imagePullPolicy": "Never"});
    for (key, value) in container.as_object().unwrap() {
        c[key] = value.clone();
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": false, "containers": [c]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(ns.client.clone(), &ns.name).create(&PostParams::default(), &d).await.unwrap();
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.name.clone()),
        name: name.into(),
    }
}

fn options(per_object: Duration) -> WaitOptions {
    WaitOptions {
        deadline: Duration::from_secs(180),
        per_object,
        unschedulable_grace: Duration::from_secs(30),
        inspect_every: Duration::from_secs(1),
        report_every: Duration::ZERO,
    }
}

const NONE: fn(Progress<'_>) = |_| {};

/// busybox's httpd serving /www, where /www/healthz answers `ok`.
fn web() -> serde_json::Value {
    json!({
        "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    })
}

#[tokio::test]
async fn a_deployment_whose_pods_pass_their_readiness_probe_is_ready() {
    let Some((client, image)) = node("a_deployment_whose_pods_pass_their_readiness_probe_is_ready").await else {
        return;
    };
    let ns = Namespaced::new(&client, "kp-pods-ready").await;
    let web = deployment(&ns, "web", &image, web()).await;
    wait_ready(&client, std::slice::from_ref(&web), options(Duration::from_secs(120)), &NONE).await.expect("ready");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let pod = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items.remove(0);
    let ready = pod.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
}

#[tokio::test]
async fn a_readiness_probe_that_never_passes_is_a_timeout() {
    let Some((client, image)) = node("a_readiness_probe_that_never_passes_is_a_timeout").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-unready").await;
    let mut container = web();
    container["readinessProbe"]["httpGet"]["path"] = json!("/missing");
    let unready = deployment(&ns, "unready", &image, container).await;
    let err = wait_ready(&client, std::slice::from_ref(&unready), options(Duration::from_secs(20)), &NONE)
        .await
        .expect_err("never ready");
    // The pod runs: nothing is stuck, the wait runs out.
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&format!("Deployment {}/unready was not ready after 20", ns.name)), "{err}");
}

#[tokio::test]
async fn a_crash_looping_container_is_explained_by_its_last_run() {
    let Some((client, image)) = node("a_crash_looping_container_is_explained_by_its_last_run").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-crash").await;
    // With a readiness probe, as every service of a config has one: without it, the moment the
    // container runs between crashes counts as available, and the Deployment looks ready.
    let container = json!({
        "command": ["sh", "-c", "echo 'connecting to postgres:5432: connection refused'; exit 3"],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/never"]}, "periodSeconds": 1}
    });
    let crash = deployment(&ns, "crash", &image, container).await;
    let err = wait_ready(&client, std::slice::from_ref(&crash), options(Duration::from_secs(120)), &NONE)
        .await
        .expect_err("crash");
    let text = err.to_string();
    assert!(matches!(err, Error::Stuck(_)), "{text}");
    assert!(text.contains(" container c is CrashLoopBackOff"), "{text}");
    // Regression: the current run's log is empty between restarts; the exited run says why.
    assert!(text.contains("last log lines:\n    connecting to postgres:5432: connection refused"), "{text}");
    assert!(text.contains("Warning BackOff"), "{text}");
}

#[tokio::test]
async fn an_image_not_in_the_node_is_err_image_never_pull() {
    let Some((client, _)) = node("an_image_not_in_the_node_is_err_image_never_pull").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-noimage").await;
    let missing = deployment(&ns, "missing", "example.test/missing:1", json!({})).await;
    let err = wait_ready(&client, std::slice::from_ref(&missing), options(Duration::from_secs(60)), &NONE)
        .await
        .expect_err("no image");
    let text = err.to_string();
    assert!(
        text.contains(" container c is ErrImageNeverPull: Container image \"example.test/missing:1\" is not present"),
        "{text}"
    );
    assert!(text.contains("Warning ErrImageNeverPull"), "{text}");
    assert!(text.contains("check: the image is not in the node"), "{text}");
}

#[tokio::test]
async fn a_job_that_fails_fails_the_wait() {
    let Some((client, image)) = node("a_job_that_fails_fails_the_wait").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-job").await;
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "migrate"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", "echo migration 7 failed; exit 1"]}]}}}
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &job).await.unwrap();
    let migrate = ObjectRef {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: Some(ns.name.clone()),
        name: "migrate".into(),
    };
    let err = wait_ready(&client, std::slice::from_ref(&migrate), options(Duration::from_secs(90)), &NONE)
        .await
        .expect_err("failed");
    assert!(matches!(err, Error::Failed { .. }), "{err}");
    assert!(err.to_string().contains("BackoffLimitExceeded"), "{err}");
}

#[tokio::test]
async fn an_exec_readiness_probe_gates_readiness() {
    let Some((client, image)) = node("an_exec_readiness_probe_gates_readiness").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-exec").await;
    let container = json!({
        "command": ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 3600"],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    });
    let worker = deployment(&ns, "worker", &image, container).await;
    let started = std::time::Instant::now();
    wait_ready(&client, std::slice::from_ref(&worker), options(Duration::from_secs(120)), &NONE).await.expect("ready");
    // Ready only once the file exists: not before the container's first three seconds.
    assert!(started.elapsed() >= Duration::from_secs(3), "ready after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_rollout_waits_for_the_new_pods() {
    let Some((client, image)) = node("a_rollout_waits_for_the_new_pods").await else { return };
    let ns = Namespaced::new(&client, "kp-pods-rollout").await;
    let web = deployment(&ns, "web", &image, web()).await;
    wait_ready(&client, std::slice::from_ref(&web), options(Duration::from_secs(120)), &NONE).await.expect("first");
    // A new pod template (as a new image tag makes one): the wait is over only when the new
    // ReplicaSet's pod is ready and the old one is gone.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "BUILD", "value": "2"}]}]}}}});
    deployments.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    wait_ready(&client, std::slice::from_ref(&web), options(Duration::from_secs(120)), &NONE)
        .await
        .expect("rolled out");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let live: Vec<Pod> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live.len(), 1, "{:?}", live.iter().map(|p| &p.metadata.name).collect::<Vec<_>>());
    let env = live[0].spec.as_ref().unwrap().containers[0].env.clone().unwrap_or_default();
    assert!(env.iter().any(|e| e.name == "BUILD" && e.value.as_deref() == Some("2")), "{env:?}");
}

#[tokio::test]
async fn the_bundle_holds_a_restarted_containers_current_and_previous_logs() {
    let test = "the_bundle_holds_a_restarted_containers_current_and_previous_logs";
    let Some((client, image)) = node(test).await else { return };
    let ns = Namespaced::new(&client, "kp-pods-bundle").await;
    let container = json!({"command": ["sh", "-c", "echo \"run started $(date +%s%N)\"; sleep 2; echo 'run failing: exit 4'; exit 4"]});
    deployment(&ns, "flaky", &image, container).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let list = pods.list(&ListParams::default().labels("app=flaky")).await.unwrap();
        let restarts = list
            .items
            .first()
            .and_then(|p| p.status.as_ref()?.container_statuses.as_ref()?.first().map(|c| c.restart_count));
        if restarts.is_some_and(|r| r >= 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no restart after 90s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let collected =
        kind_parity_cluster::bundle::collect(&client, std::slice::from_ref(&ns.name), dir.path()).await.unwrap();
    let pod_dir =
        std::fs::read_dir(dir.path().join(&ns.name)).unwrap().flatten().find(|e| e.path().is_dir()).unwrap().path();
    // The run that exited, whole, from the kubelet's log of the previous container.
    let previous = std::fs::read_to_string(pod_dir.join("c.previous.log")).unwrap();
    assert!(previous.contains("run started ") && previous.ends_with("run failing: exit 4\n"), "{previous}");
    // The current run's log is read too; between runs (the back-off) the API has none to give,
    // and the bundle says so instead of leaving it out silently.
    assert!(
        pod_dir.join("c.log").is_file() || collected.unavailable.iter().any(|u| u.contains("c.log")),
        "{:?} {:?}",
        collected.files,
        collected.unavailable
    );
    let nodes = std::fs::read_to_string(dir.path().join("nodes.yaml")).unwrap();
    assert!(nodes.contains("kind-parity-testbed-control-plane"), "{nodes}");
}
