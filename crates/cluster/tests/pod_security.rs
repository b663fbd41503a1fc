//! The Pod Security Standards port against the real thing: each pod below is sent to the test
//! bed's kube-apiserver (`KIND_PARITY_TEST_KUBECONFIG`, Kubernetes v1.33, whose PodSecurity
//! admission is on by default) as a dry-run create in a namespace that enforces a level, and
//! what the server answers must be what [`pod_security::message`] says, word for word; a pod the
//! port passes must be admitted. The workload path ([`pod_security::check`] on manifests) is
//! tested without a server, below.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kind_parity_cluster::apply::Manifest;
use kind_parity_cluster::pod_security::{self, Level, Policy, Version};
use kind_parity_cluster::{Target, connect};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn client(test: &str) -> Option<kube::Client> {
    let path = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test)?;
    let target = Target { kubeconfig: Some(path.into()), context: None };
    Some(connect(&target).await.expect("test bed reachable").0)
}

/// Deletes namespace `name` when dropped, whatever the test did.
struct DeleteOnDrop(String);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.0);
    }
}

/// A namespace enforcing `level` at `version`.
async fn namespace(client: &kube::Client, level: &str, version: &str) -> (String, DeleteOnDrop) {
    let name = format!("kp-pss-{level}-{}-{}", std::process::id(), rand::random::<u16>());
    let namespace: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            pod_security::ENFORCE_LABEL: level,
            pod_security::ENFORCE_VERSION_LABEL: version,
        }}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    (name.clone(), DeleteOnDrop(name))
}

/// What the server says of `pod` in `ns`: `None` when it admits it.
async fn server_says(client: &kube::Client, ns: &str, pod: &serde_json::Value) -> Option<String> {
    let pod: Pod = serde_json::from_value(pod.clone()).unwrap();
    let params = PostParams { dry_run: true, ..PostParams::default() };
    match Api::<Pod>::namespaced(client.clone(), ns).create(&params, &pod).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) if status.code == 403 => Some(status.message),
        Err(other) => panic!("unexpected answer: {other}"),
    }
}

/// What the port says of `pod` under `policy`: `None` when it finds nothing.
fn port_says(policy: Policy, pod: &serde_json::Value) -> Option<String> {
    let pod: Pod = serde_json::from_value(pod.clone()).unwrap();
    let violations = pod_security::evaluate(policy, &pod.metadata, pod.spec.as_ref().unwrap());
    (!violations.is_empty()).then(|| pod_security::message(policy, &violations))
}

fn pods() -> Vec<(&'static str, serde_json::Value)> {
    let hardened = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    vec![
        ("a bare pod", json!({"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "app", "image": "x"}]}})),
        (
            "host namespaces, a hostPort, a hostPath and a privileged init container",
            json!({"metadata": {"name": "host"}, "spec": {
                "hostNetwork": true, "hostPID": true,
                "initContainers": [{"name": "setup", "image": "x", "securityContext": {"privileged": true}}],
                "containers": [
                    {"name": "b", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 9000, "hostPort": 9000}]},
                    {"name": "a", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "SYS_TIME", "CHOWN"]}}}
                ],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "nfs", "nfs": {"server": "s", "path": "/"}}]
            }}),
        ),
        (
            "explicit bad values: runAsNonRoot=false, runAsUser=0, Unconfined seccomp, sysctls, procMount",
            json!({"metadata": {"name": "explicit", "annotations": {
                "container.apparmor.security.beta.kubernetes.io/app": "unconfined"
            }}, "spec": {
                "hostUsers": false,
                "securityContext": {"runAsNonRoot": false, "runAsUser": 0, "seccompProfile": {"type": "Unconfined"},
                    "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]},
                "containers": [{"name": "app", "image": "x", "securityContext": {
                    "allowPrivilegeEscalation": true, "runAsUser": 0, "procMount": "Unmasked",
                    "seLinuxOptions": {"type": "spc_t", "user": "u"},
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}}]
            }}),
        ),
        (
            "a hardened pod",
            json!({"metadata": {"name": "hardened"}, "spec": {
                "securityContext": {"runAsNonRoot": true, "runAsUser": 999, "seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [{"name": "init", "image": "x", "securityContext": hardened}],
                "containers": [{"name": "app", "image": "x", "securityContext": hardened}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}]
            }}),
        ),
    ]
}

async fn the_server_and_the_port_agree(test: &str, level: Level, version: &str) {
    let Some(client) = client(test).await else { return };
    let (ns, _cleanup) = namespace(&client, level.as_str(), version).await;
    let policy = Policy { level, version: Version::parse(version).unwrap() };
    for (what, pod) in pods() {
        let server = server_says(&client, &ns, &pod).await;
        // The server's message names the pod first: `pods "bare" is forbidden: violates …`.
        let name = pod["metadata"]["name"].as_str().unwrap();
        let port = port_says(policy, &pod).map(|m| format!("pods \"{name}\" is forbidden: {m}"));
        assert_eq!(port, server, "{what} under {policy}");
    }
    let _ = Api::<Namespace>::all(client).delete(&ns, &DeleteParams::default()).await;
}

#[tokio::test]
async fn restricted_is_judged_as_the_api_server_judges_it() {
    the_server_and_the_port_agree("restricted_is_judged_as_the_api_server_judges_it", Level::Restricted, "v1.33").await;
}

#[tokio::test]
async fn baseline_is_judged_as_the_api_server_judges_it() {
    the_server_and_the_port_agree("baseline_is_judged_as_the_api_server_judges_it", Level::Baseline, "latest").await;
}

#[tokio::test]
async fn older_rules_are_judged_as_the_api_server_judges_them() {
    // v1.18: seccomp by annotation, no drop-ALL or runAsUser rule yet.
    the_server_and_the_port_agree("older_rules_are_judged_as_the_api_server_judges_them", Level::Restricted, "v1.18")
        .await;
}

#[test]
fn workloads_in_an_enforcing_namespace_are_found_before_they_are_applied() {
    let manifests = [
        Manifest {
            file: "00-namespace.yaml".into(),
            order: 0,
            content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: v1.33\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: open\n".into(),
        },
        Manifest {
            file: "10-workloads.yaml".into(),
            order: 1,
            content: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: app\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: api, image: x}]\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: app\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n          containers: [{name: job, image: x, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: elsewhere\n  namespace: open\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      hostNetwork: true\n      containers: [{name: x, image: x}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: app\n".into(),
        },
    ];
    let rejected = pod_security::check(&manifests).unwrap();
    // The compliant CronJob passes; the namespace without a level admits anything.
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(
        rejected[0].to_string(),
        "Deployment app/api (10-workloads.yaml): its pods would be forbidden: violates PodSecurity \"restricted:v1.33\": \
         allowPrivilegeEscalation != false (container \"api\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"api\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"api\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"api\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn a_level_admission_would_refuse_is_named() {
    let manifest = Manifest {
        file: "00-namespace.yaml".into(),
        order: 0,
        content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n  labels:\n    pod-security.kubernetes.io/enforce: strict\n".into(),
    };
    let error = pod_security::check(&[manifest]).unwrap_err().to_string();
    assert_eq!(
        error,
        "namespace app: pod-security.kubernetes.io/enforce=\"strict\" is not a valid value: privileged, baseline or restricted"
    );
}
