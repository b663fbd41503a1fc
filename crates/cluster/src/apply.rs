//! Server-side apply of rendered manifests, in phases, with prune.
//!
//! Order: CustomResourceDefinitions and Namespaces first (then wait for the CRDs to be
//! Established and run discovery again, so custom resources of the same render resolve), then
//! the render phases in order. Objects of one step are applied concurrently.
//!
//! Change detection: a server-side apply that changes nothing is not written, so the object's
//! resourceVersion stays. Each object's metadata alone is read just before its apply (a small
//! request), and the versions before and after say created / configured / unchanged. (Neither
//! `managedFields` timestamps, with their one-second resolution, nor versions remembered from the
//! previous apply, which controllers' status writes move, can say it exactly.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{ENVIRONMENT_LABEL, FIELD_MANAGER, ObjectRef};

/// A manifest file to apply: this layer's own input, so that an embedder who applies and waits
/// needs no renderer (`kind-parity-lifecycle` makes these from `kind_parity_render::Manifest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its file name, named in errors and in [`PlannedObject::file`].
    pub file: String,
    /// Its place in apply order, lower first (the render phase: foundation 0, platform 1,
    /// apps 2); CRDs and Namespaces go before every order whatever their manifest's.
    pub order: u8,
    /// Its YAML documents.
    pub content: String,
}

/// How many objects of one step are applied at once.
const CONCURRENCY: usize = 16;
/// How long CRDs may take to become Established.
const CRD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the previous apply left: every object it applied, with the resourceVersion it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The environment the objects belong to.
    pub environment: String,
    /// The kubeconfig context they were applied to (unknown in inventories older than it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Applied objects and their resourceVersion after the apply.
    #[serde(with = "entries")]
    pub objects: BTreeMap<ObjectRef, String>,
}

impl Inventory {
    /// This inventory with `objects` added (those it lacks with no resourceVersion yet): what an
    /// apply of them may leave in the cluster, recorded before it starts, so that an apply that
    /// fails or is stopped half-way forgets neither what it created nor what it was to prune.
    pub fn with_objects(&self, environment: &str, objects: impl IntoIterator<Item = ObjectRef>) -> Self {
        let mut merged = self.clone();
        environment.clone_into(&mut merged.environment);
        for object in objects {
            merged.objects.entry(object).or_default();
        }
        merged
    }
}

/// JSON maps need string keys: the inventory is stored as a list of entries.
mod entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    use crate::ObjectRef;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Entry {
        #[serde(flatten)]
        object: ObjectRef,
        resource_version: String,
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<ObjectRef, String>, s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<Entry> =
            map.iter().map(|(o, v)| Entry { object: o.clone(), resource_version: v.clone() }).collect();
        entries.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<ObjectRef, String>, D::Error> {
        Ok(Vec::<Entry>::deserialize(d)?.into_iter().map(|e| (e.object, e.resource_version)).collect())
    }
}

/// What an apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// It did not exist in the inventory.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and nothing changed.
    Unchanged,
}

/// The outcome of one apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Every applied object with what happened to it, in apply order.
    pub applied: Vec<(ObjectRef, Change)>,
    /// Objects deleted because they are no longer rendered.
    pub pruned: Vec<ObjectRef>,
    /// The inventory to store for the next apply.
    pub inventory: Inventory,
}

impl ApplyReport {
    /// How many objects had each kind of change.
    pub fn count(&self, change: Change) -> usize {
        self.applied.iter().filter(|(_, c)| *c == change).count()
    }
}

/// Options of an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The environment's name (its objects carry it in [`ENVIRONMENT_LABEL`]).
    pub environment: String,
    /// Take ownership of fields another manager owns.
    pub force: bool,
    /// Delete objects of the previous inventory that are no longer rendered.
    pub prune: bool,
}

/// One object to apply, with the step it belongs to.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    /// 0 for CRDs and namespaces, then 1 + the render phase.
    pub step: usize,
    /// The object.
    pub object: DynamicObject,
    /// Its reference.
    pub reference: ObjectRef,
    /// The manifest file it came from.
    pub file: String,
}

/// Parses manifests into objects, each with its apply step.
pub fn plan(manifests: &[Manifest]) -> Result<Vec<PlannedObject>> {
    let mut out = Vec::new();
    for m in manifests {
        for doc in serde_yaml_ng::Deserializer::from_str(&m.content) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc)
                .map_err(|source| Error::Manifest { file: m.file.clone(), source })?;
            if value.is_null() {
                continue;
            }
            let object: DynamicObject = serde_json::from_value(value).map_err(|e| Error::Manifest {
                file: m.file.clone(),
                source: serde::de::Error::custom(e.to_string()),
            })?;
            let types = object.types.clone().unwrap_or_default();
            let first = matches!(types.kind.as_str(), "CustomResourceDefinition" | "Namespace");
            let step = if first { 0 } else { 1 + usize::from(m.order) };
            let reference = ObjectRef {
                api_version: types.api_version,
                kind: types.kind,
                namespace: object.metadata.namespace.clone(),
                name: object.metadata.name.clone().unwrap_or_default(),
            };
            out.push(PlannedObject { step, object, reference, file: m.file.clone() });
        }
    }
    out.sort_by_key(|p| p.step);
    Ok(out)
}

/// Applies the manifests step by step and prunes, returning what changed.
pub async fn apply(
    client: &kube::Client,
    manifests: &[Manifest],
    previous: &Inventory,
    options: &ApplyOptions,
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    apply_into(client, manifests, previous, options, &mut report).await?;
    Ok(report)
}

/// [`apply`], filling `report` as it goes: when it fails, `report` holds what it did until then
/// (every object of the failed step that was applied included), for the caller to keep.
pub async fn apply_into(
    client: &kube::Client,
    manifests: &[Manifest],
    previous: &Inventory,
    options: &ApplyOptions,
    report: &mut ApplyReport,
) -> Result<()> {
    let planned = plan(manifests)?;
    let groups: BTreeSet<String> = planned
        .iter()
        .map(|p| &p.reference)
        .chain(previous.objects.keys())
        .map(|r| group_of(&r.api_version).to_owned())
        .collect();
    let mut discovery = discover(client, &groups).await?;
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = options.force;
    *report = ApplyReport {
        inventory: Inventory { environment: options.environment.clone(), ..Inventory::default() },
        ..ApplyReport::default()
    };

    let steps: BTreeSet<usize> = planned.iter().map(|p| p.step).collect();
    for step in steps {
        let batch: Vec<&PlannedObject> = planned.iter().filter(|p| p.step == step).collect();
        let started = Instant::now();
        // Every object of the step is tried, and each one applied is reported, even when another
        // failed: the caller keeps them in its inventory.
        let results: Vec<Result<(ObjectRef, String, Change)>> =
            futures::stream::iter(batch.iter().map(|p| apply_one(client, &discovery, p, &params)))
                .buffered(CONCURRENCY)
                .collect()
                .await;
        tracing::debug!(step, objects = results.len(), elapsed = ?started.elapsed(), "applied step");
        let mut failed = None;
        for result in results {
            match result {
                Ok((reference, version, change)) => {
                    report.applied.push((reference.clone(), change));
                    report.inventory.objects.insert(reference, version);
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
        let crds: Vec<&PlannedObject> =
            batch.iter().copied().filter(|p| p.reference.kind == "CustomResourceDefinition").collect();
        if !crds.is_empty() {
            for crd in &crds {
                wait_established(client, &crd.reference.name).await?;
            }
            discovery = discover(client, &groups).await?;
        }
    }

    if options.prune {
        // The reverse of the apply's order: objects one by one first, then CRDs, namespaces last.
        // Deleting a namespace would take its objects along, but through a collection delete that
        // (on Kubernetes 1.20) leaves a Service's cluster IP allocated until a repair loop runs, so
        // a `reset` could not take it again. Deleting a CRD first would have its cleanup finalizer
        // race the prune for its custom resources, which then might or might not be reported.
        let mut stale: Vec<&ObjectRef> =
            previous.objects.keys().filter(|r| !report.inventory.objects.contains_key(*r)).collect();
        stale.sort_by_key(|r| prune_rank(r));
        let mut pruned_namespaces = Vec::new();
        for reference in stale {
            if let Some(uid) = prune_one(client, &discovery, reference, &options.environment).await? {
                if reference.kind == "Namespace" && reference.namespace.is_none() {
                    pruned_namespaces.push((reference.name.clone(), uid));
                }
                report.pruned.push(reference.clone());
            }
        }
        // A namespace takes a while to go (its contents first); an apply right after (`reset`)
        // would be refused while it terminates, so return only once pruned namespaces are gone.
        for (name, uid) in &pruned_namespaces {
            wait_gone(client, name, uid).await?;
        }
    }
    Ok(())
}

/// An object found by [`find_owned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The object.
    pub reference: ObjectRef,
    /// Whether its deletion began (it waits for finalizers).
    pub deleting: bool,
}

/// Every object of the cluster that `environment` applied: it carries [`ENVIRONMENT_LABEL`]
/// valued with the environment's name, and [`FIELD_MANAGER`] manages fields of it (so a label
/// copied by hand, or onto the pods a Deployment makes, does not count). What `down` deletes
/// when the inventory is gone, and what it checks is gone afterwards. Kinds the client may not
/// list (403) or the server cannot list now (an aggregated API that is down) are skipped, with
/// a warning.
pub async fn find_owned(client: &kube::Client, environment: &str) -> Result<Vec<Owned>> {
    // One request where the server has aggregated discovery (Kubernetes 1.30), one per group before.
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(discovery) => discovery,
        Err(_) => Discovery::new(client.clone())
            .run()
            .await
            .map_err(|source| Error::Api { action: "discovering the API server's resources".into(), source })?,
    };
    let selector = format!("{ENVIRONMENT_LABEL}={environment}");
    let params = kube::api::ListParams::default().labels(&selector);
    let mut seen = BTreeSet::new();
    let mut owned = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let list = match api.list_metadata(&params).await {
                Ok(list) => list,
                Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404 | 405 | 503) => {
                    tracing::warn!("not looking for {} of {environment}: {}", resource.plural, status.message);
                    continue;
                }
                Err(source) => {
                    return Err(Error::Api {
                        action: format!("listing {} labelled {selector}", resource.plural),
                        source,
                    });
                }
            };
            for item in list.items {
                let meta = item.metadata;
                let ours = meta.managed_fields.iter().flatten().any(|f| f.manager.as_deref() == Some(FIELD_MANAGER));
                // The same object may be served by two groups (events in `v1` and `events.k8s.io`).
                if !ours || !seen.insert(meta.uid.clone().unwrap_or_default()) {
                    continue;
                }
                owned.push(Owned {
                    reference: ObjectRef {
                        api_version: resource.api_version.clone(),
                        kind: resource.kind.clone(),
                        namespace: meta.namespace.clone(),
                        name: meta.name.clone().unwrap_or_default(),
                    },
                    deleting: meta.deletion_timestamp.is_some(),
                });
            }
        }
    }
    owned.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(owned)
}

/// How long a pruned namespace may take to disappear.
const NAMESPACE_GONE_TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until the namespace `name` whose uid was `uid` is gone: watched, not polled, and one
/// created again under the same name meanwhile (another uid) does not hold the wait.
async fn wait_gone(client: &kube::Client, name: &str, uid: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let started = Instant::now();
    let gone = kube::runtime::wait::await_condition(api, name, kube::runtime::wait::conditions::is_deleted(uid));
    match tokio::time::timeout(NAMESPACE_GONE_TIMEOUT, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(Error::Watch {
            action: format!("waiting for namespace {name} to be deleted"),
            source: Box::new(source),
        }),
        Err(_) => Err(Error::Timeout {
            object: Box::new(ObjectRef {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: name.into(),
            }),
            waited: started.elapsed(),
            last: "still terminating; `kubectl get namespace NAME -o yaml` shows what holds it (finalizers)".into(),
            pod: None,
        }),
    }
}

/// Discovers only the API groups the apply needs: fewer requests, and a group that another
/// client removes meanwhile (an operator's CRD) cannot fail the apply.
async fn discover(client: &kube::Client, groups: &BTreeSet<String>) -> Result<Discovery> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    Discovery::new(client.clone())
        .filter(&groups)
        .run()
        .await
        .map_err(|source| Error::Api { action: "discovering the API server's resources".into(), source })
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

fn resolve(discovery: &Discovery, reference: &ObjectRef) -> Result<(ApiResource, ApiCapabilities)> {
    let (group, version) = match reference.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", reference.api_version.as_str()),
    };
    discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, &reference.kind)).ok_or_else(|| Error::UnknownKind {
        object: reference.to_string(),
        api_version: reference.api_version.clone(),
        kind: reference.kind.clone(),
    })
}

fn api_for(
    client: &kube::Client,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match (caps.scope.clone(), namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, resource),
        _ => Api::all_with(client.clone(), resource),
    }
}

async fn apply_one(
    client: &kube::Client,
    discovery: &Discovery,
    planned: &PlannedObject,
    params: &PatchParams,
) -> Result<(ObjectRef, String, Change)> {
    let reference = &planned.reference;
    let (resource, caps) = resolve(discovery, reference)?;
    let api = api_for(client, &resource, &caps, reference.namespace.as_deref());
    let before = api
        .get_metadata_opt(&reference.name)
        .await
        .map_err(|source| Error::Api { action: format!("reading {reference} before applying it"), source })?
        .map(|m| m.metadata);
    let mut result = api.patch(&reference.name, params, &Patch::Apply(&planned.object)).await;
    // Another client created it between our read and our apply (409 AlreadyExists, or, for a
    // Service with a fixed cluster IP, 422 "already allocated"): apply again, now as an update.
    if before.is_none() && matches!(&result, Err(kube::Error::Api(s)) if lost_create_race(s)) {
        result = api.patch(&reference.name, params, &Patch::Apply(&planned.object)).await;
    }
    match result {
        Ok(applied) => {
            let after = &applied.metadata;
            let change = match &before {
                None => Change::Created,
                Some(b) if b.resource_version == after.resource_version => Change::Unchanged,
                // Objects with a generation: controllers write their status, and the API server may
                // rewrite field ownership without a change (1.20 does for StatefulSets); the spec
                // changed only if the generation did, the metadata only if labels or annotations did.
                Some(b)
                    if b.generation.is_some()
                        && b.generation == after.generation
                        && b.labels == after.labels
                        && b.annotations == after.annotations =>
                {
                    Change::Unchanged
                }
                Some(_) => Change::Configured,
            };
            Ok((reference.clone(), after.resource_version.clone().unwrap_or_default(), change))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Err(Error::Conflict { object: reference.clone(), message: status.message })
        }
        Err(source) => Err(Error::Api { action: format!("applying {reference} from {}", planned.file), source }),
    }
}

fn lost_create_race(status: &kube::core::Status) -> bool {
    (status.code == 409 && status.reason == "AlreadyExists")
        || (status.code == 422 && status.message.contains("provided IP is already allocated"))
}

/// Deletes an object of the previous apply, unless it is gone or no longer carries our label
/// (then someone else owns it now, and it is left alone). Returns the uid of the object it
/// deleted, `None` when it deleted nothing.
/// Where `reference` comes in a prune: 0 for most objects, 1 for CRDs, 2 for namespaces.
fn prune_rank(reference: &ObjectRef) -> u8 {
    match (reference.kind.as_str(), reference.namespace.is_none()) {
        ("Namespace", true) => 2,
        ("CustomResourceDefinition", true) if reference.api_version.starts_with("apiextensions.k8s.io/") => 1,
        _ => 0,
    }
}

async fn prune_one(
    client: &kube::Client,
    discovery: &Discovery,
    reference: &ObjectRef,
    environment: &str,
) -> Result<Option<String>> {
    let Ok((resource, caps)) = resolve(discovery, reference) else {
        tracing::warn!("not pruning {reference}: the API server no longer serves its kind");
        return Ok(None);
    };
    let api = api_for(client, &resource, &caps, reference.namespace.as_deref());
    let current = api
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::Api { action: format!("reading {reference} before pruning it"), source })?;
    let Some(current) = current else { return Ok(None) };
    if current.metadata.labels.as_ref().and_then(|l| l.get(ENVIRONMENT_LABEL)).map(String::as_str) != Some(environment)
    {
        tracing::warn!("not pruning {reference}: it no longer carries {ENVIRONMENT_LABEL}={environment}");
        return Ok(None);
    }
    match api.delete(&reference.name, &DeleteParams::background()).await {
        Ok(_) => Ok(Some(current.metadata.uid.unwrap_or_default())),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(source) => Err(Error::Api { action: format!("pruning {reference}"), source }),
    }
}

async fn wait_established(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = kube::runtime::wait::conditions::is_crd_established();
    match tokio::time::timeout(CRD_TIMEOUT, kube::runtime::wait::await_condition(api, name, established)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(Error::Watch { action: format!("waiting for CRD {name}"), source: Box::new(source) }),
        Err(_) => Err(Error::CrdNotEstablished { name: name.to_owned(), timeout: CRD_TIMEOUT }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_deletes_objects_then_crds_then_namespaces() {
        let object = |api_version: &str, kind: &str, namespace: Option<&str>| ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: "x".into(),
        };
        // Sorted as the inventory holds them: the CRD and the namespace come first.
        let mut stale = [
            object("apiextensions.k8s.io/v1", "CustomResourceDefinition", None),
            object("v1", "Namespace", None),
            object("example.test/v1", "Widget", Some("ns")),
            object("v1", "ConfigMap", Some("ns")),
        ];
        stale.sort_by_key(prune_rank);
        let kinds: Vec<&str> = stale.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["Widget", "ConfigMap", "CustomResourceDefinition", "Namespace"]);
    }

    #[test]
    fn the_inventory_round_trips_through_json() {
        let mut inventory = Inventory { environment: "e".into(), ..Inventory::default() };
        let reference = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("n".into()),
            name: "s".into(),
        };
        inventory.objects.insert(reference, "42".into());
        let text = serde_json::to_string(&inventory).unwrap();
        assert_eq!(
            text,
            r#"{"environment":"e","objects":[{"api_version":"v1","kind":"Secret","namespace":"n","name":"s","resource_version":"42"}]}"#
        );
        assert_eq!(serde_json::from_str::<Inventory>(&text).unwrap(), inventory);
    }

    #[test]
    fn objects_to_apply_are_added_to_the_inventory_without_losing_its_own() {
        let object = |name: &str| ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("n".into()),
            name: name.into(),
        };
        let mut previous = Inventory::default();
        previous.objects.insert(object("kept"), "7".into());
        previous.objects.insert(object("again"), "8".into());
        let merged = previous.with_objects("e", [object("again"), object("new")]);
        assert_eq!(merged.environment, "e");
        let entries: Vec<(&str, &str)> = merged.objects.iter().map(|(o, v)| (o.name.as_str(), v.as_str())).collect();
        assert_eq!(entries, [("again", "8"), ("kept", "7"), ("new", "")]);
    }
}
