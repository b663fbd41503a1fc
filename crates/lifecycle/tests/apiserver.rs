//! The lifecycle against the test bed's real kube-apiserver (`KIND_PARITY_TEST_KUBECONFIG`): an
//! apply that stops part-way keeps every object it was to apply in the inventory, and `down` on
//! an existing cluster finds what the inventory does not name by the environment's label, and
//! keeps the state folder while anything the environment made remains.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kind_parity_cluster::{ENVIRONMENT_LABEL, FIELD_MANAGER, ObjectRef};
use kind_parity_lifecycle::{ApplyOptions, DownOptions, Environment, Error, Silent, Target};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// A client of the test bed, its kubeconfig and its context.
async fn test_bed(test: &str) -> Option<(kube::Client, String, String)> {
    let kubeconfig = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test)?;
    let target = kind_parity_cluster::Target { kubeconfig: Some(kubeconfig.clone().into()), context: None };
    let (client, context) = kind_parity_cluster::connect(&target).await.expect("test bed reachable");
    Some((client, kubeconfig, context))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u16>())
}

/// An environment named `name` in namespace `name` with no platform component (a namespace,
/// its TLS Secret and CA ConfigMap, the shared ingress), its state under `dir`.
fn environment(dir: &Path, name: &str) -> Environment {
    std::fs::write(
        dir.join("kind-parity.yaml"),
        format!(
            "name: {name}\nnamespace: {name}\npostgres: {{enabled: false}}\nredis: {{enabled: false}}\nkeycloak: {{enabled: false}}\n"
        ),
    )
    .unwrap();
    let loaded =
        kind_parity_render::load(&kind_parity_render::LoadOptions { dir: dir.to_path_buf(), ..Default::default() })
            .expect("the config loads");
    Environment::open(loaded, dir.join(".kind-parity"))
}

fn existing(kubeconfig: &str) -> Target {
    Target::Existing { kubeconfig: Some(kubeconfig.into()), context: None }
}

/// An apply to the test bed's context that returns once the objects are applied.
fn apply_without_wait(kubeconfig: &str, context: &str) -> ApplyOptions {
    ApplyOptions {
        target: existing(kubeconfig),
        allow_contexts: vec![context.to_owned()],
        no_wait: true,
        ..Default::default()
    }
}

/// Applies `object` with server-side apply as field manager `manager`.
async fn apply_as<K>(api: &Api<K>, manager: &str, name: &str, object: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(object)).await.expect("test setup applies");
}

/// Removes `held`'s finalizer, then deletes `namespace`, however the test ends: a finalizer left
/// would hold the namespace in the test bed for ever.
struct Cleanup {
    namespace: String,
    held: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(held) = self.held.clone() {
            let namespace = self.namespace.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let Ok(kubeconfig) = std::env::var(kind_parity_testkit::KUBECONFIG) else { return };
                    let target = kind_parity_cluster::Target { kubeconfig: Some(kubeconfig.into()), context: None };
                    let Ok((client, _)) = kind_parity_cluster::connect(&target).await else { return };
                    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
                    let patch = Patch::Merge(json!({"metadata": {"finalizers": null}}));
                    let _ = api.patch(&held, &PatchParams::default(), &patch).await;
                })
            })
            .join();
        }
        kind_parity_testkit::delete_namespace(&self.namespace);
    }
}

#[tokio::test]
async fn an_apply_that_stops_part_way_keeps_every_object_it_was_to_apply_in_the_inventory() {
    // Regression (issue 12): the inventory was written only after a whole apply, so what a failed one created was never pruned.
    let test = "an_apply_that_stops_part_way_keeps_every_object_it_was_to_apply_in_the_inventory";
    let Some((client, kubeconfig, context)) = test_bed(test).await else { return };
    let name = unique("kp-stop");
    let _cleanup = Cleanup { namespace: name.clone(), held: None };
    // Another manager made the namespace, for another environment, so the apply refuses to take
    // it over, in its first step.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labels = json!({ ENVIRONMENT_LABEL: "someone-else" });
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    apply_as(&namespaces, "someone-else", &name, namespace).await;
    let dir = tempfile::tempdir().unwrap();
    let environment = environment(dir.path(), &name);

    let options = apply_without_wait(&kubeconfig, &context);
    let error = environment.apply(&options, &Silent).await.unwrap_err();
    let Error::ApplyStopped { planned, applied, source, .. } = &error else { panic!("{error:?}") };
    assert!(
        matches!(source.as_ref(), kind_parity_cluster::Error::NotOurs { object, .. } if object.kind == "Namespace" && object.name == name),
        "{source:?}"
    );
    assert!(!applied.iter().any(|(object, _)| object.name == name), "{applied:?}");
    let inventory = environment.state().read_inventory().unwrap();
    assert_eq!(inventory.objects.len(), *planned, "{inventory:?}");
    let secret = ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(name.clone()),
        name: "kind-parity-tls".into(),
    };
    assert!(inventory.objects.contains_key(&secret), "{inventory:?}");
    assert_eq!(inventory.context.as_deref(), Some(context.as_str()));
}

#[tokio::test]
async fn down_finds_the_environments_objects_by_its_label_when_the_inventory_is_gone() {
    // Regression (issue 12): without inventory.json, `down --cluster existing` deleted 0 objects, exited 0 and removed the state.
    let test = "down_finds_the_environments_objects_by_its_label_when_the_inventory_is_gone";
    let Some((client, kubeconfig, context)) = test_bed(test).await else { return };
    let name = unique("kp-label");
    let _cleanup = Cleanup { namespace: name.clone(), held: None };
    let bystander = format!("{name}-bystander");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let defaults: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let labels = json!({ ENVIRONMENT_LABEL: name });
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    apply_as(&Api::<Namespace>::all(client.clone()), FIELD_MANAGER, &name, namespace).await;
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config", "labels": labels}});
    apply_as(&configmaps, FIELD_MANAGER, "config", config).await;
    // The label alone does not make an object the environment's: someone else made this one.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": bystander, "labels": labels}});
    apply_as(&defaults, "someone-else", &bystander, other).await;
    let dir = tempfile::tempdir().unwrap();
    let environment = environment(dir.path(), &name);
    environment.state().ensure_secrets(environment.config()).unwrap();

    let options = DownOptions { target: existing(&kubeconfig), allow_contexts: vec![context] };
    let report = environment.down(&options, &Silent).await;
    let bystander_left = defaults.get_opt(&bystander).await.unwrap();
    let _ = defaults.delete(&bystander, &Default::default()).await;
    let report = report.unwrap();
    assert_eq!(report.deleted_objects, 2, "{report:?}");
    assert_eq!(report.removed_state.as_deref(), Some(environment.state().root()));
    assert!(Api::<Namespace>::all(client).get_opt(&name).await.unwrap().is_none(), "the namespace is gone");
    assert!(bystander_left.is_some(), "an object someone else made stays");
}

#[tokio::test]
async fn down_keeps_the_state_while_an_object_of_the_environment_remains() {
    // Regression (issue 12): `down` removed the state folder whatever it left in the cluster.
    let test = "down_keeps_the_state_while_an_object_of_the_environment_remains";
    let Some((client, kubeconfig, context)) = test_bed(test).await else { return };
    let name = unique("kp-held");
    let _cleanup = Cleanup { namespace: name.clone(), held: Some("held".into()) };
    // The namespace is not the environment's (it stays); a finalizer nobody removes holds the ConfigMap.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    apply_as(&Api::<Namespace>::all(client.clone()), "someone-else", &name, namespace).await;
    let held = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "labels": { ENVIRONMENT_LABEL: name }, "finalizers": ["kind-parity.dev/test-hold"]},
    });
    apply_as(&Api::<ConfigMap>::namespaced(client.clone(), &name), FIELD_MANAGER, "held", held).await;
    let dir = tempfile::tempdir().unwrap();
    let environment = environment(dir.path(), &name);
    environment.state().ensure_secrets(environment.config()).unwrap();

    let options = DownOptions { target: existing(&kubeconfig), allow_contexts: vec![context] };
    let error = environment.down(&options, &Silent).await.unwrap_err();
    let Error::ObjectsRemain { remaining, root, .. } = &error else { panic!("{error:?}") };
    let held = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(name.clone()),
        name: "held".into(),
    };
    assert_eq!(remaining, &[(held, true)]);
    assert!(error.to_string().contains(&format!("ConfigMap {name}/held (being deleted)")), "{error}");
    assert_eq!(root, environment.state().root());
    assert!(environment.state().secrets_file().is_file(), "the state folder was kept");
}

#[tokio::test]
async fn a_second_state_folder_with_the_same_name_neither_applies_over_nor_deletes_the_first() {
    // Regression (issue 12): two checkouts with the same name replaced each other's passwords,
    // and the second one's `down` found the first one's objects by their shared label.
    let test = "a_second_state_folder_with_the_same_name_neither_applies_over_nor_deletes_the_first";
    let Some((client, kubeconfig, context)) = test_bed(test).await else { return };
    let name = unique("kp-twin");
    let _cleanup = Cleanup { namespace: name.clone(), held: None };
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (environment(first_dir.path(), &name), environment(second_dir.path(), &name));
    let options = apply_without_wait(&kubeconfig, &context);
    first.apply(&options, &Silent).await.expect("the first applies");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &name);
    let before = secrets.get("kind-parity-tls").await.expect("the first's TLS secret").data;

    let error = second.apply(&options, &Silent).await.unwrap_err();
    assert!(
        matches!(&error, Error::Cluster(e) if matches!(e.as_ref(), kind_parity_cluster::Error::OtherEnvironment { .. })),
        "{error:?}"
    );
    let down = DownOptions { target: existing(&kubeconfig), allow_contexts: vec![context.clone()] };
    let error = second.down(&down, &Silent).await.unwrap_err();
    assert!(
        matches!(&error, Error::Cluster(e) if matches!(e.as_ref(), kind_parity_cluster::Error::OtherEnvironment { .. })),
        "{error:?}"
    );
    let after = secrets.get("kind-parity-tls").await.expect("the first's TLS secret is still there").data;
    assert_eq!(before, after, "the second changed the first's certificate");

    first.down(&down, &Silent).await.expect("the first's own down");
}

#[tokio::test]
async fn an_apply_to_another_context_than_the_inventorys_is_refused_and_forgets_nothing() {
    // Regression (issue 12): applying to a second cluster replaced the inventory, and the first
    // cluster's objects were never found again.
    let test = "an_apply_to_another_context_than_the_inventorys_is_refused_and_forgets_nothing";
    let Some((_client, kubeconfig, context)) = test_bed(test).await else { return };
    let name = unique("kp-elsewhere");
    let _cleanup = Cleanup { namespace: name.clone(), held: None };
    let dir = tempfile::tempdir().unwrap();
    let environment = environment(dir.path(), &name);
    let options = apply_without_wait(&kubeconfig, &context);
    environment.apply(&options, &Silent).await.expect("the first apply");
    // As if that apply had gone to another cluster: this one is now "another context".
    let mut inventory = environment.state().read_inventory().unwrap();
    inventory.context = Some("the-first-cluster".into());
    environment.state().write_inventory(&inventory).unwrap();

    let error = environment.apply(&options, &Silent).await.unwrap_err();
    assert!(
        matches!(&error, Error::InventoryElsewhere { recorded, context: to, objects, .. }
            if recorded == "the-first-cluster" && *to == context && *objects == inventory.objects.len()),
        "{error:?}"
    );
    assert_eq!(environment.state().read_inventory().unwrap(), inventory, "the inventory was kept as it was");
}

#[tokio::test]
async fn one_environments_down_leaves_the_ingress_another_one_uses() {
    // Regression (issue 12): the first `down` of two environments on one cluster deleted the
    // shared ingress (namespace kind-parity-ingress) the other one still used.
    let test = "one_environments_down_leaves_the_ingress_another_one_uses";
    let Some((client, kubeconfig, context)) = test_bed(test).await else { return };
    let (first_name, second_name) = (unique("kp-first"), unique("kp-second"));
    let _first_cleanup = Cleanup { namespace: first_name.clone(), held: None };
    let _second_cleanup = Cleanup { namespace: second_name.clone(), held: None };
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = environment(first_dir.path(), &first_name);
    let second = environment(second_dir.path(), &second_name);
    let options = apply_without_wait(&kubeconfig, &context);
    first.apply(&options, &Silent).await.expect("the first applies");
    second.apply(&options, &Silent).await.expect("the second applies");
    let mark = |name: &str| format!("{}{name}", kind_parity_cluster::USER_ANNOTATION_PREFIX);
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "kind-parity-ingress");

    let down = DownOptions { target: existing(&kubeconfig), allow_contexts: vec![context.clone()] };
    let report = first.down(&down, &Silent).await.expect("the first's down");
    assert!(report.kept_shared.iter().any(|o| o.kind == "Deployment" && o.name == "traefik"), "{report:?}");
    let traefik = deployments.get_opt("traefik").await.unwrap().expect("the second's ingress is still there");
    let annotations = traefik.metadata.annotations.unwrap_or_default();
    assert!(annotations.contains_key(&mark(&second_name)), "{annotations:?}");
    assert!(!annotations.contains_key(&mark(&first_name)), "{annotations:?}");
    assert!(
        Api::<Namespace>::all(client.clone()).get_opt(&first_name).await.unwrap().is_none(),
        "the first's own namespace is gone"
    );

    second.down(&down, &Silent).await.expect("the second's down");
    // Deleted now, unless environments of other tests on the test bed use it too.
    if let Some(traefik) = deployments.get_opt("traefik").await.unwrap() {
        assert!(!traefik.metadata.annotations.unwrap_or_default().contains_key(&mark(&second_name)));
    }
}
