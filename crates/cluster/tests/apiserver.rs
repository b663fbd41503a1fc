//! Apply, prune, conflicts, readiness and diagnosis against the test bed's real kube-apiserver
//! (`KIND_PARITY_TEST_KUBECONFIG`) and its controllers. The Deployments here select no node, so
//! their pods stay unschedulable whatever nodes the cluster has, and the states a kubelet cannot
//! be made to produce (a stale generation, a paused rollout past its deadline) are written
//! through the status subresource. Real rollouts on the test bed's node are in `pods.rs`;
//! one test here runs a real pod too (a deadline that names a running pod).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kind_parity_cluster::apply::{self, ApplyOptions, Change, Inventory, Manifest};
use kind_parity_cluster::wait::{Progress, WaitOptions, wait_ready};
use kind_parity_cluster::{Error, ObjectRef, Target, connect};
use kind_parity_render::{ImageRefs, LoadOptions, Override, Secrets, Templates};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rand::SeedableRng;
use serde_json::json;

async fn client(test: &str) -> Option<kube::Client> {
    let path = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test)?;
    let target = Target { kubeconfig: Some(path.into()), context: None };
    Some(connect(&target).await.expect("test bed reachable").0)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u16>())
}

/// The environment every test renders: objects shared by all environments of a cluster (the
/// ingress controller) then carry the same label whichever test applies them last.
const ENVIRONMENT: &str = "kp-test";

/// Secrets made once per process, as an environment's stored secrets are.
fn secrets() -> &'static Secrets {
    static SECRETS: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut config = kind_parity_render::Config { name: ENVIRONMENT.into(), ..Default::default() };
        config.postgres.databases.insert("app".into(), Default::default());
        config.secrets.insert("session-key".into(), Default::default());
        // The demo's keycloak.login: its test user's password.
        config.keycloak.login = Some(Default::default());
        let mut secrets = Secrets::default();
        secrets.ensure(&config, &mut rand::rngs::StdRng::seed_from_u64(3), time::OffsetDateTime::now_utc()).unwrap();
        secrets
    })
}

/// Renders the demo stack into namespace `ns` with extra `--set` overrides.
fn render_demo(ns: &str, overrides: &[(&str, &str)]) -> Vec<Manifest> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let mut all: Vec<(&str, &str)> = vec![("namespace", ns), ("name", ENVIRONMENT)];
    all.extend_from_slice(overrides);
    let options = LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo,
        env: vec![],
        overrides: all
            .iter()
            .map(|(p, v)| Override { flag: "--set".into(), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    let loaded = kind_parity_render::load(&options).expect("demo loads");
    let plan = kind_parity_render::render(
        &loaded.config,
        &loaded.inputs,
        secrets(),
        &ImageRefs::from_config(&loaded.config),
        &Templates::embedded().unwrap(),
    )
    .unwrap();
    plan.manifests.into_iter().map(|m| Manifest { file: m.file, order: m.phase.order(), content: m.content }).collect()
}

async fn delete_namespace(client: &kube::Client, ns: &str) {
    let _ = Api::<Namespace>::all(client.clone()).delete(ns, &DeleteParams::background()).await;
}

#[tokio::test]
async fn apply_is_idempotent_and_prunes_what_is_no_longer_rendered() {
    let Some(client) = client("apply_is_idempotent_and_prunes_what_is_no_longer_rendered").await else { return };
    let ns = unique("kp-apply");
    let options = ApplyOptions { environment: ENVIRONMENT.into(), force: false, prune: true };

    let first =
        apply::apply(&client, &render_demo(&ns, &[]), &Inventory::default(), &options).await.expect("first apply");
    assert!(first.applied.len() > 30, "{} objects", first.applied.len());
    // Everything of this namespace is new; the shared ingress controller may exist from other tests.
    let own: Vec<&(ObjectRef, Change)> =
        first.applied.iter().filter(|(r, _)| r.namespace.as_deref() == Some(ns.as_str()) || r.name == ns).collect();
    assert!(own.len() > 20 && own.iter().all(|(_, c)| *c == Change::Created), "{own:?}");
    // Namespaces come first, the apps last.
    assert_eq!(first.applied[0].0.kind, "Namespace");
    assert_eq!(first.applied.last().unwrap().0.name, "web");

    let second = apply::apply(&client, &render_demo(&ns, &[]), &first.inventory, &options).await.expect("re-apply");
    let changed: Vec<_> =
        second.applied.iter().filter(|(_, c)| *c != Change::Unchanged).map(|(r, _)| r.to_string()).collect();
    assert!(changed.is_empty(), "a re-apply changed {changed:#?}");
    assert!(second.pruned.is_empty());

    let third =
        apply::apply(&client, &render_demo(&ns, &[("services.api.replicas", "2")]), &second.inventory, &options)
            .await
            .unwrap();
    let configured: Vec<String> =
        third.applied.iter().filter(|(_, c)| *c == Change::Configured).map(|(r, _)| r.to_string()).collect();
    assert_eq!(configured, vec![format!("Deployment {ns}/api")]);

    let fourth = apply::apply(
        &client,
        &render_demo(
            &ns,
            &[
                ("redis.enabled", "false"),
                ("services.api.env.REDIS_URL", "none"),
                ("services.api.depends_on", "[postgres, keycloak]"),
                ("services.api.replicas", "2"),
            ],
        ),
        &third.inventory,
        &options,
    )
    .await
    .unwrap();
    let mut pruned: Vec<String> = fourth.pruned.iter().map(ToString::to_string).collect();
    pruned.sort();
    assert_eq!(
        pruned,
        vec![format!("Deployment {ns}/redis"), format!("Secret {ns}/redis"), format!("Service {ns}/redis")]
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(deployments.get_opt("redis").await.unwrap().is_none());
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_job_whose_pod_template_changes_is_replaced_not_patched() {
    // Regression (issue 10 #3): a Job's spec.template is immutable (ValidateJobSpecUpdate), and
    // postgres-init's name hashed only its databases: a new postgres image was a 422 on `up`.
    use k8s_openapi::api::batch::v1::Job;
    let test = "a_job_whose_pod_template_changes_is_replaced_not_patched";
    let Some(client) = client(test).await else { return };
    let ns = unique("kp-job");
    let options = ApplyOptions { environment: ENVIRONMENT.into(), force: false, prune: true };
    let first =
        apply::apply(&client, &render_demo(&ns, &[]), &Inventory::default(), &options).await.expect("first apply");
    let bumped = render_demo(&ns, &[("postgres.image", "docker.io/library/postgres:17.7")]);
    let second = apply::apply(&client, &bumped, &first.inventory, &options).await.expect("a new image applies");
    let pruned: Vec<String> = second.pruned.iter().filter(|r| r.kind == "Job").map(|r| r.name.clone()).collect();
    assert_eq!(pruned.len(), 1, "the old Job is pruned: {:?}", second.pruned);
    assert!(pruned[0].starts_with("postgres-init-"), "{pruned:?}");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let params = kube::api::ListParams::default().labels("app.kubernetes.io/name=postgres-init");
    let live: Vec<String> = jobs
        .list(&params)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .filter_map(|j| j.metadata.name)
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live[0], pruned[0]);
    delete_namespace(&client, &ns).await;
}

fn crd_manifests(ns: &str, group: &str) -> Vec<Manifest> {
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\n  labels: {{kind-parity.dev/environment: {ns}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {{type: object, properties: {{size: {{type: integer}}}}}}\n"
    );
    let namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{kind-parity.dev/environment: {ns}}}\n"
    );
    let config = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  labels: {{kind-parity.dev/environment: {ns}}}\n"
    );
    // Files in the wrong order on purpose: ordering is the applier's job, not the file names'.
    vec![
        Manifest { file: "00-settings.yaml".into(), order: 0, content: config },
        Manifest { file: "01-crd.yaml".into(), order: 1, content: format!("{crd}---\n{namespace}") },
    ]
}

#[test]
fn custom_resources_are_planned_after_their_crd() {
    let mut manifests = crd_manifests("ns", "example.test");
    manifests.insert(
        0,
        Manifest {
            file: "00-widget.yaml".into(),
            order: 0,
            content: "apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: one\n  namespace: ns\n".into(),
        },
    );
    let planned = apply::plan(&manifests).unwrap();
    let order: Vec<(usize, &str)> = planned.iter().map(|p| (p.step, p.reference.kind.as_str())).collect();
    assert_eq!(order, vec![(0, "CustomResourceDefinition"), (0, "Namespace"), (1, "Widget"), (1, "ConfigMap")]);
}

#[tokio::test]
async fn crds_are_established_and_discovered_before_their_custom_resources() {
    let Some(client) = client("crds_are_established_and_discovered_before_their_custom_resources").await else {
        return;
    };
    let ns = unique("kp-crd");
    let group = format!("{}.kind-parity.test", ns.replace('-', ""));
    let options = ApplyOptions { environment: ns.clone(), force: false, prune: true };
    let mut manifests = crd_manifests(&ns, &group);
    // A custom resource in the same apply: it can be sent only once its CRD is established and
    // discovered.
    manifests.push(Manifest {
        file: "00-widget.yaml".into(),
        order: 0,
        content: format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: one\n  namespace: {ns}\n  labels: {{kind-parity.dev/environment: {ns}}}\nspec: {{size: 3}}\n"
        ),
    });
    let report = apply::apply(&client, &manifests, &Inventory::default(), &options).await.expect("CRD first");
    let mut kinds: Vec<&str> = report.applied.iter().map(|(r, _)| r.kind.as_str()).collect();
    kinds[2..].sort();
    assert_eq!(kinds, vec!["CustomResourceDefinition", "Namespace", "ConfigMap", "Widget"]);
    let discovery = kube::discovery::Discovery::new(client.clone()).run().await.unwrap();
    let (resource, _) = discovery.resolve_gvk(&kube::core::GroupVersionKind::gvk(&group, "v1", "Widget")).unwrap();
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    assert_eq!(widgets.get("one").await.unwrap().data["spec"]["size"], 3);
    // Pruning everything removes the CRD too.
    let empty = apply::apply(&client, &[], &report.inventory, &options).await.unwrap();
    assert_eq!(empty.pruned.len(), 4);
}

/// Deletes namespace `name` when dropped, whatever the test did.
struct DeleteOnDrop(String);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.0);
    }
}

#[tokio::test]
async fn a_pruned_namespace_created_again_meanwhile_does_not_hold_the_apply() {
    // Regression: the wait for a pruned namespace polled its name, so a namespace created again
    // under that name (another uid) kept the apply waiting until its 180 s timeout.
    let Some(client) = client("a_pruned_namespace_created_again_meanwhile_does_not_hold_the_apply").await else {
        return;
    };
    let ns = unique("kp-again");
    let _cleanup = DeleteOnDrop(ns.clone());
    let options = ApplyOptions { environment: ns.clone(), force: false, prune: true };
    let namespace = Manifest {
        file: "00-namespace.yaml".into(),
        order: 0,
        content: format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{kind-parity.dev/environment: {ns}}}\n"
        ),
    };
    let first = apply::apply(&client, &[namespace], &Inventory::default(), &options).await.expect("namespace applied");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let old_uid = namespaces.get(&ns).await.unwrap().metadata.uid.unwrap();

    // Another client takes the name again as soon as the pruned namespace is gone.
    let again = {
        let (namespaces, ns) = (namespaces.clone(), ns.clone());
        tokio::spawn(async move {
            let gone = kube::runtime::wait::await_condition(
                namespaces.clone(),
                &ns,
                kube::runtime::wait::conditions::is_deleted(&old_uid),
            );
            tokio::time::timeout(Duration::from_secs(120), gone).await.expect("pruned in time").unwrap();
            let fresh: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
            namespaces.create(&PostParams::default(), &fresh).await.expect("the name is free again")
        })
    };
    let pruned = tokio::time::timeout(Duration::from_secs(150), apply::apply(&client, &[], &first.inventory, &options))
        .await
        .expect("the prune does not wait for the namespace created again")
        .expect("prune");
    assert_eq!(pruned.pruned.iter().map(ToString::to_string).collect::<Vec<_>>(), vec![format!("Namespace {ns}")]);
    let fresh = again.await.unwrap();
    assert!(namespaces.get_opt(&ns).await.unwrap().is_some_and(|n| n.metadata.uid == fresh.metadata.uid));
}

#[tokio::test]
async fn a_field_owned_by_another_manager_is_a_conflict_until_forced() {
    let Some(client) = client("a_field_owned_by_another_manager_is_a_conflict_until_forced").await else { return };
    let ns = unique("kp-conflict");
    let manifests = render_demo(&ns, kind_parity_testkit::PLATFORM_OFF);
    let options = ApplyOptions { environment: ENVIRONMENT.into(), force: false, prune: false };
    let first = apply::apply(&client, &manifests, &Inventory::default(), &options).await.unwrap();
    // Someone scales the api by hand with their own apply.
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let scale =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"}, "spec": {"replicas": 3}});
    api.patch("api", &PatchParams::apply("someone-else").force(), &Patch::Apply(&scale)).await.unwrap();

    let err = apply::apply(&client, &manifests, &first.inventory, &options).await.expect_err("conflict");
    let text = err.to_string();
    match &err {
        Error::Conflict { object, .. } => assert_eq!(object.to_string(), format!("Deployment {ns}/api")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The message names the fields and their manager; the flag that forces is the CLI's hint (issue 11).
    assert!(text.contains("someone-else") && text.contains(".spec.replicas") && !text.contains("--force"), "{text}");

    let forced = ApplyOptions { force: true, ..options };
    apply::apply(&client, &manifests, &first.inventory, &forced).await.expect("forced apply");
    assert_eq!(api.get("api").await.unwrap().spec.unwrap().replicas, Some(1));
    delete_namespace(&client, &ns).await;
}

/// Creates Deployment `name` in `ns` with one replica that no node is selected for.
async fn deployment_in(client: &kube::Client, ns: &str, name: &str) -> (Api<Deployment>, ObjectRef) {
    deployment_with(client, ns, name, json!({"replicas": 1})).await
}

/// Creates Deployment `name` in `ns`, `spec` merged over the defaults. Its pods select a node
/// label no node has, so they stay unschedulable whether the test bed has nodes or not, and
/// only the test writes their status.
async fn deployment_with(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
) -> (Api<Deployment>, ObjectRef) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut d = json!({
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "nodeSelector": {"kind-parity.test/node": "none"},
                     "containers": [{"name": "c", "image": "example.test/c:1"}]}}}
    });
    for (key, value) in spec.as_object().unwrap() {
        d["spec"][key] = value.clone();
    }
    let d: Deployment = serde_json::from_value(d).unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    (
        api,
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(ns.into()),
            name: name.into(),
        },
    )
}

fn quick(per_object: Duration) -> WaitOptions {
    WaitOptions {
        deadline: Duration::from_secs(60),
        per_object,
        unschedulable_grace: Duration::from_secs(3600),
        inspect_every: Duration::from_secs(3600),
        report_every: Duration::ZERO,
    }
}

/// Writes `status` a moment after the wait has started watching.
async fn write_status_soon(api: Api<Deployment>, name: &str, status: serde_json::Value) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let generation = api.get(name).await.unwrap().metadata.generation.unwrap();
    let mut status = status;
    if status.get("observedGeneration") == Some(&json!("current")) {
        status["observedGeneration"] = json!(generation);
    }
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await.unwrap();
}

#[tokio::test]
async fn readiness_follows_the_status_the_controllers_write() {
    // Ready from the kubelet's own status: pods.rs.
    let Some(client) = client("readiness_follows_the_status_the_controllers_write").await else { return };
    let ns = unique("kp-ready");
    let none = |_: Progress<'_>| {};

    // ProgressDeadlineExceeded fails at once (paused, so no pods and nothing deeper to report).
    let (api, stuck) = deployment_with(&client, &ns, "deadline", json!({"paused": true})).await;
    let status = json!({"observedGeneration": "current", "replicas": 1, "updatedReplicas": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]});
    let (waited, ()) = tokio::join!(
        wait_ready(&client, std::slice::from_ref(&stuck), quick(Duration::from_secs(20)), &none),
        write_status_soon(api, "deadline", status)
    );
    let err = waited.expect_err("deadline exceeded");
    assert!(matches!(err, Error::Failed { .. }) && err.to_string().contains("exceeded its progress deadline"), "{err}");

    // A stale generation never counts as ready, however good the counts look: a timeout.
    let (api, stale) = deployment_in(&client, &ns, "stale").await;
    let status = json!({"observedGeneration": 0, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1});
    let (waited, ()) = tokio::join!(
        wait_ready(&client, std::slice::from_ref(&stale), quick(Duration::from_secs(3)), &none),
        write_status_soon(api, "stale", status)
    );
    let err = waited.expect_err("stale status is not ready");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("Deployment {ns}/stale was not ready after 3")), "{err}");
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn stuck_pods_are_explained() {
    let Some(client) = client("stuck_pods_are_explained").await else { return };
    let ns = unique("kp-stuck");
    let none = |_: Progress<'_>| {};
    let inspect = WaitOptions {
        deadline: Duration::from_secs(60),
        per_object: Duration::from_secs(45),
        unschedulable_grace: Duration::ZERO,
        inspect_every: Duration::from_millis(500),
        report_every: Duration::ZERO,
    };

    // No node matches the pod's selector: the scheduler marks it Unschedulable.
    let (_, unschedulable) = deployment_in(&client, &ns, "nowhere").await;
    let err =
        wait_ready(&client, std::slice::from_ref(&unschedulable), inspect, &none).await.expect_err("unschedulable");
    let text = err.to_string();
    assert!(matches!(err, Error::Stuck(_)), "{text}");
    assert!(
        text.contains(&format!("Deployment {ns}/nowhere: pod nowhere-")) && text.contains(" is Unschedulable"),
        "{text}"
    );
    assert!(text.contains("check: no node can run the pod"), "{text}");

    // When the controller gives up first (the progress deadline passed while the pod waited for
    // a node, as with an environment left on a cluster that lost its nodes), the pod's reason is
    // the report, not "exceeded its progress deadline".
    let patient = WaitOptions { unschedulable_grace: Duration::from_secs(3600), ..inspect };
    let (_, late) = deployment_with(&client, &ns, "late", json!({"progressDeadlineSeconds": 1})).await;
    let err = wait_ready(&client, std::slice::from_ref(&late), patient, &none).await.expect_err("deadline");
    let text = err.to_string();
    assert!(matches!(err, Error::Stuck(_)), "{text}");
    assert!(text.contains(&format!("Deployment {ns}/late: pod late-")) && text.contains(" is Unschedulable"), "{text}");

    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_workload_is_inspected_only_after_what_it_depends_on() {
    let Some(client) = client("a_workload_is_inspected_only_after_what_it_depends_on").await else { return };
    let ns = unique("kp-order");
    let (_, db) = deployment_in(&client, &ns, "db").await;
    let (_, app) = deployment_in(&client, &ns, "app").await;
    let heard = std::sync::Mutex::new(Vec::new());
    let progress = |event: Progress<'_>| {
        if let Progress::Changed(o, _) = event {
            heard.lock().unwrap().push(o.name.clone());
        }
    };
    let options = WaitOptions {
        deadline: Duration::from_secs(60),
        per_object: Duration::from_secs(45),
        unschedulable_grace: Duration::ZERO,
        inspect_every: Duration::from_millis(300),
        report_every: Duration::ZERO,
    };
    let depends_on = std::collections::HashMap::from([(app.clone(), vec![db.clone()])]);
    // `app` is listed first; both are unschedulable, but only `db` is inspected and reported.
    let err = kind_parity_cluster::wait::wait_ready_ordered(&client, &[app, db], &depends_on, options, &progress)
        .await
        .expect_err("db cannot be scheduled");
    let text = err.to_string();
    assert!(text.contains(&format!("Deployment {ns}/db: pod db-")) && text.contains(" is Unschedulable"), "{text}");
    assert!(!heard.lock().unwrap().iter().any(|n| n == "app"), "app was not waited for before db: {heard:?}");
    delete_namespace(&client, &ns).await;
}

/// Waits for `object` with a short deadline, collecting every "still pending" report.
async fn wait_collecting_pending(
    client: &kube::Client,
    object: &ObjectRef,
    deadline: Duration,
) -> (Error, Vec<(Duration, Vec<String>)>) {
    let reports = std::sync::Mutex::new(Vec::new());
    let progress = |event: Progress<'_>| {
        if let Progress::Pending { waited, pending } = event {
            let lines = pending.iter().map(|p| format!("{}: {}", p.object, p.state)).collect();
            reports.lock().unwrap().push((waited, lines));
        }
    };
    let options = WaitOptions {
        deadline,
        per_object: deadline,
        unschedulable_grace: Duration::from_secs(3600),
        inspect_every: Duration::from_millis(300),
        report_every: Duration::from_secs(1),
    };
    let err = wait_ready(client, std::slice::from_ref(object), options, &progress).await.expect_err("never ready");
    (err, reports.into_inner().unwrap())
}

#[tokio::test]
async fn a_long_wait_reports_what_is_pending_and_its_deadline_names_the_pod() {
    // Regression: 39 s of silence in a 40 s wait, then only "was not ready after 40.0s: 0 of 1 replicas ready".
    let Some(client) = client("a_long_wait_reports_what_is_pending_and_its_deadline_names_the_pod").await else {
        return;
    };
    let ns = unique("kp-pending");
    // No node has this label: the pod stays Pending, a reason the wait does not stop for here.
    let (_, nowhere) = deployment_with(
        &client,
        &ns,
        "nowhere",
        json!({"template": {"metadata": {"labels": {"app": "nowhere"}}, "spec": {
            "nodeSelector": {"kind-parity.dev/test": "no-such-node"},
            "containers": [{"name": "c", "image": "example.test/c:1"}]}}}),
    )
    .await;
    let (err, reports) = wait_collecting_pending(&client, &nowhere, Duration::from_secs(5)).await;
    delete_namespace(&client, &ns).await;

    assert!(reports.len() >= 3, "a report every second of a 5 s wait: {reports:?}");
    let last = &reports.last().unwrap().1;
    assert_eq!(last.len(), 1, "{reports:?}");
    assert!(
        last[0].starts_with(&format!("Deployment {ns}/nowhere: ")) && last[0].contains("; pod nowhere-"),
        "the pending line names the pod: {last:?}"
    );
    let text = err.to_string();
    assert!(matches!(err, Error::Timeout { pod: Some(_), .. }), "{text}");
    assert!(text.starts_with(&format!("Deployment {ns}/nowhere was not ready after 5")), "{text}");
    assert!(text.contains("\n  pod nowhere-") && text.contains(" is Unschedulable: "), "{text}");
    assert!(text.contains("\n  events:\n    Warning FailedScheduling"), "{text}");
}

#[tokio::test]
async fn a_deadline_names_a_running_pod_that_is_not_ready_with_its_log_lines() {
    let test = "a_deadline_names_a_running_pod_that_is_not_ready_with_its_log_lines";
    let Some(client) = client(test).await else { return };
    let Some(image) = kind_parity_testkit::require("KIND_PARITY_TEST_POD_IMAGE", test) else { return };
    let ns = unique("kp-unready");
    // Runs, logs a line, and never passes its readiness probe.
    let (_, unready) = deployment_with(
        &client,
        &ns,
        "unready",
        json!({"template": {"metadata": {"labels": {"app": "unready"}}, "spec": {"containers": [{
            "name": "c", "image": image, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo kp-waiting-for-nothing; exec sleep 3600"],
            "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}}]}}}),
    )
    .await;
    let (err, _) = wait_collecting_pending(&client, &unready, Duration::from_secs(25)).await;
    delete_namespace(&client, &ns).await;

    let text = err.to_string();
    assert!(matches!(err, Error::Timeout { pod: Some(_), .. }), "{text}");
    assert!(text.contains("\n  pod unready-") && text.contains(" container c is running, not ready"), "{text}");
    assert!(text.contains("Warning Unhealthy: Readiness probe failed"), "{text}");
    assert!(text.contains("\n  last log lines:\n    kp-waiting-for-nothing"), "{text}");
}

/// Deletes the test's namespace whatever happens.
struct NamespaceGuard(String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.0);
    }
}

async fn namespace_with(client: &kube::Client, ns: &str, identity: Option<&str>) -> NamespaceGuard {
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.to_owned());
    if let Some(identity) = identity {
        namespace.metadata.annotations =
            Some([(kind_parity_cluster::IDENTITY_ANNOTATION.to_owned(), identity.to_owned())].into());
    }
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.expect("namespace made");
    NamespaceGuard(ns.to_owned())
}

#[tokio::test]
async fn a_namespace_stamped_by_another_state_folder_is_refused() {
    let Some(client) = client("a_namespace_stamped_by_another_state_folder_is_refused").await else { return };
    let ns = unique("kp-identity-other");
    let _guard = namespace_with(&client, &ns, Some("sha256:theirs")).await;
    let err = kind_parity_cluster::check_identity(&client, &ns, "sha256:ours").await.expect_err("refused");
    let Error::OtherEnvironment { namespace, ours, theirs } = &err else { panic!("{err:?}") };
    assert_eq!((namespace.as_str(), ours.as_str(), theirs.as_str()), (ns.as_str(), "sha256:ours", "sha256:theirs"));
}

#[tokio::test]
async fn a_namespace_stamped_by_this_state_folder_passes() {
    let Some(client) = client("a_namespace_stamped_by_this_state_folder_passes").await else { return };
    let ns = unique("kp-identity-ours");
    let _guard = namespace_with(&client, &ns, Some("sha256:ours")).await;
    kind_parity_cluster::check_identity(&client, &ns, "sha256:ours").await.expect("ours");
}

#[tokio::test]
async fn an_unstamped_or_missing_namespace_passes() {
    // Made by hand, or by a kind-parity before it stamped namespaces: the apply stamps it.
    let Some(client) = client("an_unstamped_or_missing_namespace_passes").await else { return };
    let ns = unique("kp-identity-none");
    let _guard = namespace_with(&client, &ns, None).await;
    kind_parity_cluster::check_identity(&client, &ns, "sha256:ours").await.expect("unstamped");
    kind_parity_cluster::check_identity(&client, &unique("kp-identity-missing"), "sha256:ours").await.expect("missing");
}

/// Deletes IngressClass `name` when dropped, whatever the test did.
struct IngressClassGuard(String);

impl Drop for IngressClassGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let Ok(path) = std::env::var(kind_parity_testkit::KUBECONFIG) else { return };
                let target = Target { kubeconfig: Some(path.into()), context: None };
                let Ok((client, _)) = connect(&target).await else { return };
                let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::background()).await;
            })
        })
        .join();
    }
}

/// An IngressClass `name` of controller `example.test/ingress`, labelled for `environment`,
/// the cluster's default when `default`.
fn ingress_class_manifest(name: &str, environment: &str, default: bool) -> Manifest {
    let annotations =
        if default { "  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}\n" } else { "" };
    Manifest {
        file: "10-ingress-class.yaml".into(),
        order: 0,
        content: format!(
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\n  labels: {{kind-parity.dev/environment: {environment}, kind-parity.dev/shared: \"true\"}}\n{annotations}spec:\n  controller: example.test/ingress\n"
        ),
    }
}

/// Applies IngressClass `name` as field manager `manager` (not kind-parity), the default when `default`.
async fn ingress_class_as(client: &kube::Client, manager: &str, name: &str, default: bool) -> IngressClassGuard {
    let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let mut class = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name},
        "spec": {"controller": "example.test/theirs"},
    });
    if default {
        class["metadata"]["annotations"] = json!({"ingressclass.kubernetes.io/is-default-class": "true"});
    }
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(&class)).await.expect("test setup applies");
    IngressClassGuard(name.to_owned())
}

#[tokio::test]
async fn an_ingress_class_another_manager_made_is_not_taken_over_even_forced() {
    // Regression (issue 12): k3s's IngressClass `traefik`, managed by helm, was adopted, then deleted by `down`.
    let test = "an_ingress_class_another_manager_made_is_not_taken_over_even_forced";
    let Some(client) = client(test).await else { return };
    let name = unique("kp-helms");
    let _guard = ingress_class_as(&client, "helm-controller", &name, false).await;
    let options = ApplyOptions { environment: ENVIRONMENT.into(), force: true, prune: true };

    let manifests = [ingress_class_manifest(&name, ENVIRONMENT, false)];
    let err = apply::apply(&client, &manifests, &Inventory::default(), &options).await.expect_err("refused");
    let Error::NotOurs { object, managers, .. } = &err else { panic!("{err:?}") };
    assert_eq!((object.name.as_str(), managers.as_slice()), (name.as_str(), ["helm-controller".to_owned()].as_slice()));
    assert!(err.to_string().contains("managed by helm-controller"), "{err}");
    let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let live = api.get(&name).await.unwrap();
    assert_eq!(live.metadata.labels, None, "the apply changed it");
    assert_eq!(live.spec.unwrap().controller.as_deref(), Some("example.test/theirs"));
}

#[tokio::test]
async fn a_forced_apply_does_not_take_another_environments_object() {
    // Regression (issue 12): all environments apply as one field manager, so nothing conflicted,
    // and the conflict's advice (--force) took over another environment's objects anyway.
    let test = "a_forced_apply_does_not_take_another_environments_object";
    let Some(client) = client(test).await else { return };
    let ns = unique("kp-theirs");
    let _cleanup = DeleteOnDrop(ns.clone());
    let namespace = Manifest {
        file: "00-namespace.yaml".into(),
        order: 0,
        content: format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    };
    let config = |environment: &str| Manifest {
        file: "01-config.yaml".into(),
        order: 0,
        content: format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  labels: {{kind-parity.dev/environment: {environment}}}\ndata: {{owner: {environment}}}\n"
        ),
    };
    let theirs = ApplyOptions { environment: "kp-theirs".into(), force: false, prune: false };
    apply::apply(&client, &[namespace, config("kp-theirs")], &Inventory::default(), &theirs).await.unwrap();

    let ours = ApplyOptions { environment: "kp-ours".into(), force: true, prune: false };
    let err = apply::apply(&client, &[config("kp-ours")], &Inventory::default(), &ours).await.expect_err("refused");
    assert!(
        matches!(&err, Error::AnotherEnvironments { object, environment } if object.name == "settings" && environment == "kp-theirs"),
        "{err:?}"
    );
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &ns);
    let live = configmaps.get("settings").await.unwrap();
    assert_eq!(live.data.unwrap()["owner"], "kp-theirs");
}

#[tokio::test]
async fn a_prune_leaves_an_object_kind_parity_did_not_make() {
    // Regression (issue 12): an inventory records what an apply is to apply before it runs, a
    // refused object included, and a prune deleted whatever carried the environment's label.
    let test = "a_prune_leaves_an_object_kind_parity_did_not_make";
    let Some(client) = client(test).await else { return };
    let ns = unique("kp-notmade");
    let _cleanup = DeleteOnDrop(ns.clone());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await
        .unwrap();
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &ns);
    let theirs = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "theirs", "labels": {"kind-parity.dev/environment": ns}},
    });
    configmaps.patch("theirs", &PatchParams::apply("someone-else"), &Patch::Apply(&theirs)).await.unwrap();
    let mut inventory = Inventory { environment: ns.clone(), ..Inventory::default() };
    let reference = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.clone()),
        name: "theirs".into(),
    };
    inventory.objects.insert(reference, String::new());

    let options = ApplyOptions { environment: ns.clone(), force: false, prune: true };
    let report = apply::apply(&client, &[], &inventory, &options).await.expect("prune");
    assert!(report.pruned.is_empty(), "{:?}", report.pruned);
    assert!(configmaps.get_opt("theirs").await.unwrap().is_some(), "someone else's object was deleted");
}

#[tokio::test]
async fn a_shared_object_is_deleted_only_by_the_last_environment_using_it() {
    // Regression (issue 12): one environment's `down` deleted the ingress another one used.
    let test = "a_shared_object_is_deleted_only_by_the_last_environment_using_it";
    let Some(client) = client(test).await else { return };
    let name = unique("kp-shared");
    let _guard = IngressClassGuard(name.clone());
    let (first, second) = (format!("{name}-a"), format!("{name}-b"));
    let options = |environment: &str| ApplyOptions { environment: environment.into(), force: false, prune: true };
    let first_applied =
        apply::apply(&client, &[ingress_class_manifest(&name, &first, false)], &Inventory::default(), &options(&first))
            .await
            .expect("the first applies");
    let second_applied = apply::apply(
        &client,
        &[ingress_class_manifest(&name, &second, false)],
        &Inventory::default(),
        &options(&second),
    )
    .await
    .expect("the second applies the same shared object");
    let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let users = |class: &k8s_openapi::api::networking::v1::IngressClass| -> Vec<String> {
        let mut users: Vec<String> = class
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix(kind_parity_cluster::USER_ANNOTATION_PREFIX).map(str::to_owned))
            .collect();
        users.sort();
        users
    };
    assert_eq!(users(&api.get(&name).await.unwrap()), [first.clone(), second.clone()]);

    let first_down = apply::apply(&client, &[], &first_applied.inventory, &options(&first)).await.unwrap();
    assert!(first_down.pruned.is_empty(), "{:?}", first_down.pruned);
    assert_eq!(first_down.kept.len(), 1, "{:?}", first_down.kept);
    assert_eq!(first_down.kept[0].1, [second.as_str()]);
    assert_eq!(users(&api.get(&name).await.expect("still there for the second")), [second.as_str()]);

    let second_down = apply::apply(&client, &[], &second_applied.inventory, &options(&second)).await.unwrap();
    assert_eq!(second_down.pruned.len(), 1, "the last user deletes it: {second_down:?}");
    assert!(api.get_opt(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn an_ingress_class_is_not_made_the_default_where_the_cluster_has_one() {
    // Regression (issue 12): ours was always the default, so a shared cluster's Ingresses without
    // a class went to it (or, before Kubernetes picked the newest of several, were refused).
    let test = "an_ingress_class_is_not_made_the_default_where_the_cluster_has_one";
    let Some(client) = client(test).await else { return };
    let theirs = unique("kp-their-default");
    let _their_guard = ingress_class_as(&client, "someone-else", &theirs, true).await;
    let ours = unique("kp-our-class");
    let _our_guard = IngressClassGuard(ours.clone());
    let options = ApplyOptions { environment: ENVIRONMENT.into(), force: false, prune: false };

    let report =
        apply::apply(&client, &[ingress_class_manifest(&ours, ENVIRONMENT, true)], &Inventory::default(), &options)
            .await
            .expect("applied");
    assert_eq!(report.not_default.len(), 1, "{:?}", report.not_default);
    assert_eq!(report.not_default[0].0.name, ours);
    let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let live = api.get(&ours).await.unwrap();
    let default = live.metadata.annotations.unwrap_or_default().remove("ingressclass.kubernetes.io/is-default-class");
    assert_eq!(default, None, "ours was made a second default");
}
