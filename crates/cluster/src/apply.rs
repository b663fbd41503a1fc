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
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{ENVIRONMENT_LABEL, FIELD_MANAGER, ObjectRef, SHARED_LABEL, USER_ANNOTATION_PREFIX};

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
    /// Shared objects no longer rendered that the prune left, because other environments still
    /// use them: each with their names.
    pub kept: Vec<(ObjectRef, Vec<String>)>,
    /// IngressClasses applied without the default-class annotation they were rendered with,
    /// each with the cluster's default class that made it so.
    pub not_default: Vec<(ObjectRef, String)>,
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
    let mut planned = plan(manifests)?;
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
    report.not_default = yield_default_class(client, &mut planned).await?;

    let steps: BTreeSet<usize> = planned.iter().map(|p| p.step).collect();
    for step in steps {
        let batch: Vec<&PlannedObject> = planned.iter().filter(|p| p.step == step).collect();
        let started = Instant::now();
        // Every object of the step is tried, and each one applied is reported, even when another
        // failed: the caller keeps them in its inventory.
        let results: Vec<Result<(ObjectRef, String, Change)>> = futures::stream::iter(
            batch.iter().map(|p| apply_one(client, &discovery, p, &params, &options.environment)),
        )
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
            match prune_one(client, &discovery, reference, &options.environment).await? {
                Pruned::Deleted { uid } => {
                    if reference.kind == "Namespace" && reference.namespace.is_none() {
                        pruned_namespaces.push((reference.name.clone(), uid));
                    }
                    report.pruned.push(reference.clone());
                }
                Pruned::Kept { users } => report.kept.push((reference.clone(), users)),
                Pruned::Left => {}
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
/// copied by hand, or onto the pods a Deployment makes, does not count), and no other
/// environment marks it as a user ([`SHARED_LABEL`]: it stays theirs). What `down` deletes
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
                let ours = managed_by_us(&meta) && other_users(&meta, environment).is_empty();
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
    environment: &str,
) -> Result<(ObjectRef, String, Change)> {
    let reference = &planned.reference;
    let (resource, caps) = resolve(discovery, reference)?;
    let api = api_for(client, &resource, &caps, reference.namespace.as_deref());
    let before = api
        .get_metadata_opt(&reference.name)
        .await
        .map_err(|source| Error::Api { action: format!("reading {reference} before applying it"), source })?
        .map(|m| m.metadata);
    if let Some(before) = &before {
        check_takeover(reference, is_shared(&planned.object.metadata), before, environment)?;
    }
    let mut result = api.patch(&reference.name, params, &Patch::Apply(&planned.object)).await;
    // Another client created it between our read and our apply (409 AlreadyExists, or, for a
    // Service with a fixed cluster IP, 422 "already allocated"): apply again, now as an update.
    if before.is_none() && matches!(&result, Err(kube::Error::Api(s)) if lost_create_race(s)) {
        result = api.patch(&reference.name, params, &Patch::Apply(&planned.object)).await;
    }
    let mut applied = match result {
        Ok(applied) => applied,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            return Err(Error::Conflict { object: reference.clone(), message: status.message });
        }
        Err(source) => {
            return Err(Error::Api { action: format!("applying {reference} from {}", planned.file), source });
        }
    };
    if is_shared(&planned.object.metadata) && !users_of(&applied.metadata).iter().any(|u| u == environment) {
        applied = mark_user(&api, reference, environment, true).await?;
    }
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

/// The field manager of the environments' marks on shared objects. Not [`FIELD_MANAGER`]: a
/// server-side apply removes the fields its manager owned and no longer sets, so one
/// environment's apply would take the others' marks away.
const USERS_FIELD_MANAGER: &str = "kind-parity-users";

/// Adds (`used`) or removes environment's mark on a shared object, returning the object after.
async fn mark_user(
    api: &Api<DynamicObject>,
    reference: &ObjectRef,
    environment: &str,
    used: bool,
) -> Result<DynamicObject> {
    let key = format!("{USER_ANNOTATION_PREFIX}{environment}");
    let value = if used { serde_json::Value::from(environment) } else { serde_json::Value::Null };
    let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
    let params = PatchParams { field_manager: Some(USERS_FIELD_MANAGER.into()), ..PatchParams::default() };
    let action = if used { "marking" } else { "unmarking" };
    api.patch(&reference.name, &params, &Patch::Merge(&patch)).await.map_err(|source| Error::Api {
        action: format!("{action} {reference} as used by environment {environment}"),
        source,
    })
}

/// Whether an object is one the environments of a cluster share ([`SHARED_LABEL`]).
fn is_shared(meta: &ObjectMeta) -> bool {
    meta.labels.as_ref().is_some_and(|l| l.contains_key(SHARED_LABEL))
}

/// The environments whose mark a shared object carries.
fn users_of(meta: &ObjectMeta) -> Vec<String> {
    meta.annotations
        .iter()
        .flatten()
        .filter_map(|(key, _)| key.strip_prefix(USER_ANNOTATION_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// The environments other than `environment` whose mark a shared object carries.
fn other_users(meta: &ObjectMeta, environment: &str) -> Vec<String> {
    users_of(meta).into_iter().filter(|u| u != environment).collect()
}

/// Whether [`FIELD_MANAGER`] manages fields of the object.
fn managed_by_us(meta: &ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(|f| f.manager.as_deref() == Some(FIELD_MANAGER))
}

/// The object's field managers, sorted, each once.
fn managers_of(meta: &ObjectMeta) -> Vec<String> {
    let managers: BTreeSet<String> = meta.managed_fields.iter().flatten().filter_map(|f| f.manager.clone()).collect();
    managers.into_iter().collect()
}

/// The environment label's value on the object.
fn environment_of(meta: &ObjectMeta) -> Option<&str> {
    meta.labels.as_ref().and_then(|l| l.get(ENVIRONMENT_LABEL)).map(String::as_str)
}

/// Refuses to apply over an existing object that is not `environment`'s to change: one
/// kind-parity never managed (a cluster's own IngressClass, which its installer manages) unless
/// it carries the environment's label (an object handed over, or applied with kubectl from the
/// rendered files), and one of another environment unless the environments share it. A
/// forced apply is no exception: `force` takes fields, never objects.
fn check_takeover(reference: &ObjectRef, shared: bool, live: &ObjectMeta, environment: &str) -> Result<()> {
    let label = environment_of(live);
    if label == Some(environment) {
        return Ok(());
    }
    if !managed_by_us(live) {
        return Err(Error::NotOurs {
            object: Box::new(reference.clone()),
            managers: managers_of(live),
            environment: environment.to_owned(),
        });
    }
    match label {
        Some(other) if !shared => {
            Err(Error::AnotherEnvironments { object: reference.clone(), environment: other.to_owned() })
        }
        _ => Ok(()),
    }
}

/// The annotation that makes an IngressClass the cluster's default
/// (`k8s.io/api/networking/v1`, `AnnotationIsDefaultIngressClass`).
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

fn is_default_class(meta: &ObjectMeta) -> bool {
    meta.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).is_some_and(|v| v == "true")
}

/// Takes the default-class annotation off the planned IngressClasses when the cluster already
/// has another default: an Ingress without a class goes to the default, and a shared cluster's
/// Ingresses must not start going to ours (the environment's own name their class). Kubernetes'
/// DefaultIngressClass admission plugin (`plugin/pkg/admission/network/defaultingressclass`,
/// `getDefaultClass`) gives a class-less Ingress the newest of several defaults, which ours
/// would be, and before that refused it ("N default IngressClasses were found, only 1
/// allowed"), so a second default breaks someone's Ingresses either way. Returns the
/// classes it changed, each with the default that was there. A cluster whose IngressClasses
/// cannot be listed (403) cannot say, so ours is not made the default there either.
async fn yield_default_class(client: &kube::Client, planned: &mut [PlannedObject]) -> Result<Vec<(ObjectRef, String)>> {
    let ours: Vec<usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.reference.kind == "IngressClass"
                && p.reference.api_version.starts_with("networking.k8s.io/")
                && is_default_class(&p.object.metadata)
        })
        .map(|(i, _)| i)
        .collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let api: Api<IngressClass> = Api::all(client.clone());
    let defaults: Vec<String> = match api.list_metadata(&kube::api::ListParams::default()).await {
        Ok(list) => {
            list.items.into_iter().filter(|c| is_default_class(&c.metadata)).filter_map(|c| c.metadata.name).collect()
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            vec!["unknown (IngressClasses may not be listed)".into()]
        }
        Err(source) => return Err(Error::Api { action: "listing IngressClasses".into(), source }),
    };
    let mut changed = Vec::new();
    for index in ours {
        let planned = &mut planned[index];
        let Some(theirs) = defaults.iter().find(|d| **d != planned.reference.name) else { continue };
        if let Some(annotations) = planned.object.metadata.annotations.as_mut() {
            annotations.remove(DEFAULT_CLASS_ANNOTATION);
        }
        tracing::warn!("{} is not made the default IngressClass: the cluster's default is {theirs}", planned.reference);
        changed.push((planned.reference.clone(), theirs.clone()));
    }
    Ok(changed)
}

fn lost_create_race(status: &kube::core::Status) -> bool {
    (status.code == 409 && status.reason == "AlreadyExists")
        || (status.code == 422 && status.message.contains("provided IP is already allocated"))
}

/// Where `reference` comes in a prune: 0 for most objects, 1 for CRDs, 2 for namespaces.
fn prune_rank(reference: &ObjectRef) -> u8 {
    match (reference.kind.as_str(), reference.namespace.is_none()) {
        ("Namespace", true) => 2,
        ("CustomResourceDefinition", true) if reference.api_version.starts_with("apiextensions.k8s.io/") => 1,
        _ => 0,
    }
}

/// What [`prune_one`] did.
enum Pruned {
    /// It deleted the object, whose uid this is.
    Deleted { uid: String },
    /// A shared object that these other environments still use: only the mark was removed.
    Kept { users: Vec<String> },
    /// Nothing: the object is gone, or not the environment's (any more) to delete.
    Left,
}

/// Deletes an object of the previous apply, unless it is gone or not the environment's: no
/// field of it is [`FIELD_MANAGER`]'s (someone else made it, and an apply refused to take it
/// over), or it no longer carries the environment's label (someone else owns it now). A shared
/// object loses the environment's mark first, and is deleted only when no other environment's
/// mark is left (and only as it was then: one marked meanwhile stays).
async fn prune_one(
    client: &kube::Client,
    discovery: &Discovery,
    reference: &ObjectRef,
    environment: &str,
) -> Result<Pruned> {
    let Ok((resource, caps)) = resolve(discovery, reference) else {
        tracing::warn!("not pruning {reference}: the API server no longer serves its kind");
        return Ok(Pruned::Left);
    };
    let api = api_for(client, &resource, &caps, reference.namespace.as_deref());
    let current = api
        .get_metadata_opt(&reference.name)
        .await
        .map_err(|source| Error::Api { action: format!("reading {reference} before pruning it"), source })?;
    let Some(mut current) = current.map(|c| c.metadata) else { return Ok(Pruned::Left) };
    if !managed_by_us(&current) {
        let managers = managers_of(&current).join(", ");
        tracing::warn!("not pruning {reference}: kind-parity did not make it (its managers: {managers})");
        return Ok(Pruned::Left);
    }
    let marked = users_of(&current).iter().any(|u| u == environment);
    if marked {
        // The object as it is after the mark is gone says who else uses it: two environments'
        // downs at once cannot both see the other's mark.
        current = mark_user(&api, reference, environment, false).await?.metadata;
    }
    let others = other_users(&current, environment);
    if !others.is_empty() {
        tracing::info!("not deleting {reference}: environment(s) {} use it too", others.join(", "));
        return Ok(Pruned::Kept { users: others });
    }
    if !marked && environment_of(&current) != Some(environment) {
        tracing::warn!("not pruning {reference}: it no longer carries {ENVIRONMENT_LABEL}={environment}");
        return Ok(Pruned::Left);
    }
    let mut params = DeleteParams::background();
    if marked {
        // Only as it was when no other mark was left: another environment's apply may mark it now.
        params.preconditions =
            Some(Preconditions { resource_version: current.resource_version.clone(), uid: current.uid.clone() });
    }
    match api.delete(&reference.name, &params).await {
        Ok(_) => Ok(Pruned::Deleted { uid: current.uid.unwrap_or_default() }),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Pruned::Left),
        Err(kube::Error::Api(status)) if status.code == 409 && marked => {
            let users = api
                .get_metadata_opt(&reference.name)
                .await
                .ok()
                .flatten()
                .map(|c| other_users(&c.metadata, environment))
                .unwrap_or_default();
            if users.is_empty() { Ok(Pruned::Left) } else { Ok(Pruned::Kept { users }) }
        }
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

    /// Live metadata with `label` as the environment label and fields of `managers`.
    fn live(label: Option<&str>, managers: &[&str]) -> ObjectMeta {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        ObjectMeta {
            labels: label.map(|l| [(ENVIRONMENT_LABEL.to_owned(), l.to_owned())].into()),
            managed_fields: Some(
                managers
                    .iter()
                    .map(|m| ManagedFieldsEntry { manager: Some((*m).to_owned()), ..ManagedFieldsEntry::default() })
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn ingress_class() -> ObjectRef {
        ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "IngressClass".into(),
            namespace: None,
            name: "traefik".into(),
        }
    }

    #[test]
    fn an_object_another_manager_made_is_not_taken_over() {
        // Regression (issue 12): k3s's IngressClass `traefik`, managed by helm, was adopted, then deleted by `down`.
        let error = check_takeover(&ingress_class(), true, &live(None, &["helm-controller", "k3s"]), "kp-demo");
        let Err(Error::NotOurs { object, managers, environment }) = error else { panic!("{error:?}") };
        assert_eq!(
            (*object, managers, environment.as_str()),
            (ingress_class(), vec!["helm-controller".to_owned(), "k3s".to_owned()], "kp-demo")
        );
    }

    #[test]
    fn an_object_with_the_environments_label_or_manager_is_applied_over() {
        // Handed over with the label (or applied with kubectl from the rendered files), or ours.
        assert!(check_takeover(&ingress_class(), false, &live(Some("kp-demo"), &["kubectl"]), "kp-demo").is_ok());
        assert!(check_takeover(&ingress_class(), false, &live(None, &[FIELD_MANAGER]), "kp-demo").is_ok());
    }

    #[test]
    fn another_environments_object_is_refused_unless_shared() {
        // Regression (issue 12): one field manager for all environments, so no conflict, and even --force took it.
        let theirs = live(Some("kp-other"), &[FIELD_MANAGER]);
        let error = check_takeover(&ingress_class(), false, &theirs, "kp-demo");
        assert!(
            matches!(&error, Err(Error::AnotherEnvironments { environment, .. }) if environment == "kp-other"),
            "{error:?}"
        );
        assert!(check_takeover(&ingress_class(), true, &theirs, "kp-demo").is_ok());
    }

    #[test]
    fn a_shared_objects_users_are_its_marks() {
        let mut meta = live(Some("kp-a"), &[FIELD_MANAGER]);
        meta.annotations = Some(
            [
                (format!("{USER_ANNOTATION_PREFIX}kp-a"), "kp-a".to_owned()),
                (format!("{USER_ANNOTATION_PREFIX}kp-b"), "kp-b".to_owned()),
                ("unrelated.example/x".to_owned(), String::new()),
            ]
            .into(),
        );
        assert_eq!(users_of(&meta), ["kp-a", "kp-b"]);
        assert_eq!(other_users(&meta, "kp-a"), ["kp-b"]);
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
