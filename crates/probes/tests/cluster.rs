//! The cluster probes, the port-forward the dependency probes speak through, and a whole derived
//! suite against the test bed's real kube-apiserver (`KIND_PARITY_TEST_KUBECONFIG`) and its node
//! (`KIND_PARITY_TEST_CLUSTER`), which runs the pods.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kind_parity_cluster::{ObjectRef, Target, connect};
use kind_parity_probes::cluster::{ApiReachable, EnvContract, NodesReady, WorkloadReady};
use kind_parity_probes::suite::{self, Context, Endpoints};
use kind_parity_probes::{Check, Next, Outcome};
use kind_parity_render::{LoadOptions, Override, Secrets};
use kube::api::{Api, PostParams};
use serde_json::json;

async fn client(test: &str) -> Option<kube::Client> {
    let path = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test)?;
    let target = Target { kubeconfig: Some(path.into()), context: None };
    Some(connect(&target).await.expect("test bed reachable").0)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 100_000
}

/// A namespace deleted when the test ends, pass or fail.
struct Namespaced {
    client: kube::Client,
    name: String,
}

impl Namespaced {
    async fn new(client: &kube::Client, prefix: &str) -> Self {
        let name = unique(prefix);
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
        Self { client: client.clone(), name }
    }

    async fn create<K>(&self, object: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.name);
        let object: K = serde_json::from_value(object).unwrap();
        // A pod is refused until the namespace's default service account exists.
        for _ in 0..50 {
            match api.create(&PostParams::default(), &object).await {
                Ok(o) => return o,
                Err(kube::Error::Api(e)) if e.message.contains("service account") => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("creating: {e}"),
            }
        }
        panic!("the namespace's service account never appeared")
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.name);
    }
}

#[tokio::test]
async fn the_api_answers_and_the_test_beds_node_is_ready() {
    let Some(client) = client("the_api_answers_and_the_test_beds_node_is_ready").await else {
        return;
    };
    if kind_parity_testkit::require(kind_parity_testkit::CLUSTER, "the_api_answers_and_the_test_beds_node_is_ready")
        .is_none()
    {
        return;
    }
    let found = ApiReachable::new(client.clone(), "kind-parity-testbed").run().await.unwrap();
    assert!(found.starts_with("Kubernetes v1.33."), "{found}");
    // The kubelet's own Ready condition (a cluster without nodes: the probe's unit tests).
    let found = NodesReady::new(client.clone()).run().await.expect("the node is Ready");
    assert!(found.ends_with(" Ready"), "{found}");

    // A workload that cannot become ready, and one that is gone.
    let ns = Namespaced::new(&client, "kp-probe-ready").await;
    let _: k8s_openapi::api::apps::v1::Deployment = ns
        .create(json!({"metadata": {"name": "api"}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "example.test/c:1"}]}}}}))
        .await;
    let object = |name: &str| ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.name.clone()),
        name: name.into(),
    };
    let failure = WorkloadReady::new(client.clone(), object("api")).run().await.expect_err("not ready");
    assert!(failure.found.starts_with("not ready: "), "{}", failure.found);
    let failure = WorkloadReady::new(client.clone(), object("gone")).run().await.expect_err("gone");
    assert_eq!(failure.found, "failed: missing: it was applied but is gone (deleted by hand?)");

    // An API server that is not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let nowhere = kube::Client::try_from(config).unwrap();
    let failure = ApiReachable::new(nowhere, "gone").run().await.expect_err("unreachable");
    assert!(failure.found.starts_with("the API server does not answer: "), "{}", failure.found);
    assert_eq!(failure.next, [Next::Up], "{failure:?}");
}

#[tokio::test]
async fn the_env_contract_needs_every_declared_key_and_every_referenced_object() {
    let test = "the_env_contract_needs_every_declared_key_and_every_referenced_object";
    let Some(client) = client(test).await else { return };
    let ns = Namespaced::new(&client, "kp-probe-env").await;
    let _: ConfigMap =
        ns.create(json!({"metadata": {"name": "api-env"}, "data": {"API_URL": "https://api.localtest.me"}})).await;
    let _: Secret =
        ns.create(json!({"metadata": {"name": "api-env"}, "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly8="}})).await;
    // On the test bed's node the pod runs (busybox sleeping), as a service's pod does when the
    // contract is checked; without a node it is only scheduled, and the contract reads the same.
    let image = std::env::var(kind_parity_testkit::POD_IMAGE).unwrap_or_else(|_| "example.test/c:1".into());
    let pod = |name: &str, extra_env: serde_json::Value| {
        json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": image,
                "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
                "envFrom": [{"configMapRef": {"name": "api-env"}}, {"secretRef": {"name": "api-env"}}],
                "env": extra_env}]}
        })
    };
    let _: Pod = ns.create(pod("api", json!([{"name": "LOG_LEVEL", "value": "debug"}]))).await;
    if std::env::var_os(kind_parity_testkit::CLUSTER).is_some() {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while pods.get("api").await.unwrap().status.and_then(|s| s.phase).as_deref() != Some("Running") {
            assert!(std::time::Instant::now() < deadline, "pod api is not running after 60s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let contract = EnvContract::new(
        client.clone(),
        &ns.name,
        "api",
        "app.kubernetes.io/name=api",
        keys(&["API_URL", "DATABASE_URL", "LOG_LEVEL"]),
    );
    assert_eq!(contract.run().await.unwrap(), "pod api has all 3 declared env keys");

    // A key the config declares that the running pod does not have.
    let contract = EnvContract::new(
        client.clone(),
        &ns.name,
        "api",
        "app.kubernetes.io/name=api",
        keys(&["API_URL", "OIDC_ISSUER"]),
    );
    let failure = contract.run().await.expect_err("missing key");
    assert_eq!(failure.found, "pod api lacks OIDC_ISSUER");
    assert!(failure.remediation.contains("re-applies its objects"), "{}", failure.remediation);
    assert_eq!(failure.next, [Next::Up], "{failure:?}");

    // A referenced Secret key and ConfigMap that do not exist.
    let _: Pod = ns
        .create(json!({
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "example.test/c:1",
                "envFrom": [{"configMapRef": {"name": "web-env"}}],
                "env": [{"name": "SESSION_KEY", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "session"}}}]}]}
        }))
        .await;
    let contract =
        EnvContract::new(client.clone(), &ns.name, "web", "app.kubernetes.io/name=web", keys(&["SESSION_KEY"]));
    let failure = contract.run().await.expect_err("missing objects");
    assert_eq!(
        failure.found,
        "ConfigMap web-env (envFrom) does not exist; SESSION_KEY: Secret api-env has no key session"
    );

    // No pod at all.
    let contract = EnvContract::new(client.clone(), &ns.name, "worker", "app.kubernetes.io/name=worker", keys(&["X"]));
    let failure = contract.run().await.expect_err("no pod");
    assert_eq!(failure.found, format!("no pod of `worker` exists in {}", ns.name));
}

#[tokio::test]
async fn a_derived_suite_blocks_what_depends_on_a_missing_workload() {
    let test = "a_derived_suite_blocks_what_depends_on_a_missing_workload";
    let Some(client) = client(test).await else { return };
    let ns = Namespaced::new(&client, "kp-probe-suite").await;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let overrides = [("namespace", ns.name.as_str()), ("name", "kp-test")]
        .iter()
        .map(|(p, v)| Override { flag: "--set".into(), path: (*p).into(), value: (*v).into() })
        .collect();
    let loaded = kind_parity_render::load(&LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo,
        env: vec![],
        overrides,
    })
    .unwrap();
    let mut secrets = Secrets::default();
    secrets.ensure(&loaded.config, &mut rand::rng(), time::OffsetDateTime::now_utc()).unwrap();
    let workload = |kind: &str, name: &str| ObjectRef {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        namespace: Some(ns.name.clone()),
        name: name.into(),
    };
    // Nothing listens where the ingress would: the browser-facing probes fail at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let context = Context {
        config: &loaded.config,
        secrets: &secrets,
        cluster: Some((client.clone(), "kind-parity-testbed".into())),
        workloads: vec![workload("Deployment", "api"), workload("StatefulSet", "postgres")],
        endpoints: Endpoints::Forward,
        ingress: Some(closed),
        artifacts: kind_parity_render::artifacts(&loaded.config, &loaded.inputs).unwrap(),
    };
    let probes = suite::derive(&context).unwrap();
    let ids: Vec<&str> = probes.iter().map(|p| p.id()).collect();
    insta::assert_snapshot!(
        probes
            .iter()
            .map(|p| format!("{} after [{}]", p.id(), p.depends_on().join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(ids.contains(&"oidc.issuer") && ids.contains(&"redis") && ids.contains(&"nats"), "{ids:?}");

    let report = suite::run(probes, &|_| {}).await.unwrap();
    assert!(!report.passed);
    let outcome =
        |id: &str| report.results.iter().find(|r| r.id == id).map(|r| (r.outcome, r.blocked_by.clone())).unwrap();
    assert_eq!(outcome("cluster.api"), (Outcome::Pass, None));
    // Nothing of the environment was applied: Postgres, which api depends on, is missing.
    assert_eq!(outcome("cluster.nodes"), (Outcome::Pass, None));
    assert_eq!(outcome("ready.statefulset/postgres"), (Outcome::Fail, None));
    for blocked in ["ready.deployment/api", "contract.api", "postgres"] {
        assert_eq!(outcome(blocked), (Outcome::Blocked, Some("ready.statefulset/postgres".into())), "{blocked}");
    }
    // What needs only the nodes runs, and finds nothing.
    assert_eq!(outcome("contract.web"), (Outcome::Fail, None));
    assert_eq!(outcome("redis"), (Outcome::Fail, None));
    // route.api waits for its TLS probe, which fails on the closed port, and for api's readiness.
    assert_eq!(outcome("route.api").0, Outcome::Blocked);
    assert_eq!(outcome("nats"), (Outcome::Skipped, None));
    assert_eq!(outcome("contract.drift"), (Outcome::Pass, None));
    // The first root cause is reported first.
    assert_eq!(report.results[0].outcome, Outcome::Fail);
}

#[tokio::test]
async fn an_artifact_in_the_cluster_must_be_the_repositorys_file() {
    let test = "an_artifact_in_the_cluster_must_be_the_repositorys_file";
    let Some(client) = client(test).await else { return };
    use kind_parity_probes::cluster::ArtifactMatches;
    let ns = Namespaced::new(&client, "kp-probe-artifact").await;
    // "seed" in base64, and its digest.
    let _: ConfigMap =
        ns.create(json!({"metadata": {"name": "kp-artifact-seed"}, "binaryData": {"seed.sql": "c2VlZA=="}})).await;
    let digest = "sha256:19b25856e1c150ca834cffc8b59b23adbd0ec0389e58eb22b3b64768098d002b";
    let found =
        ArtifactMatches::new(client.clone(), &ns.name, "kp-artifact-seed", "seed.sql", digest).run().await.unwrap();
    assert_eq!(found, format!("4 bytes, {digest}"));

    let stale = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let failure =
        ArtifactMatches::new(client.clone(), &ns.name, "kp-artifact-seed", "seed.sql", stale).run().await.unwrap_err();
    assert_eq!(failure.found, format!("the cluster holds {digest}, the repository's file is {stale}"));
    let failure =
        ArtifactMatches::new(client.clone(), &ns.name, "kp-artifact-other", "x", digest).run().await.unwrap_err();
    assert_eq!(failure.found, format!("ConfigMap {}/kp-artifact-other does not exist", ns.name));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_forward_reaches_a_ready_pod_behind_its_service() {
    let test = "a_port_forward_reaches_a_ready_pod_behind_its_service";
    let Some(client) = client(test).await else { return };
    if kind_parity_testkit::require(kind_parity_testkit::CLUSTER, test).is_none() {
        return;
    }
    let Some(image) = kind_parity_testkit::require(kind_parity_testkit::POD_IMAGE, test) else { return };
    let ns = Namespaced::new(&client, "kp-probe-forward").await;
    let _: Pod = ns
        .create(json!({
            "metadata": {"name": "web-0", "labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": false, "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "Never",
                "command": ["sh", "-c", "mkdir -p /www && echo forwarded > /www/healthz && exec httpd -f -p 8080 -h /www"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}}]}
        }))
        .await;
    let _: k8s_openapi::api::core::v1::Service = ns
        .create(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}))
        .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !ready(&pods.get("web-0").await.unwrap()) {
        assert!(std::time::Instant::now() < deadline, "web-0 not ready after 90s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let forward = kind_parity_probes::forward::ServicePort::new(client.clone(), &ns.name, "web", 80)
        .open()
        .await
        .expect("forward opened");
    let addr = forward.addr;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: web\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("forwarded\n"), "{answer}");

    // A Service with no ready pod behind it is named, not hung on.
    let _: k8s_openapi::api::core::v1::Service = ns
        .create(json!({"metadata": {"name": "nobody"}, "spec": {"selector": {"app": "nobody"},
            "ports": [{"port": 80, "protocol": "TCP"}]}}))
        .await;
    let failure = kind_parity_probes::forward::ServicePort::new(client.clone(), &ns.name, "nobody", 80)
        .open()
        .await
        .expect_err("no pod");
    assert!(failure.found.contains("nobody"), "{}", failure.found);
}
