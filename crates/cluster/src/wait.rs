//! Waiting for workloads to be ready: one deadline for the whole wait, a budget per object,
//! watches that re-establish with backoff, and an early stop with a diagnosis when a pod is
//! stuck. A timeout is an error, never a warning.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde::de::DeserializeOwned;

use crate::ObjectRef;
use crate::diagnose;
use crate::error::{Error, Result};
use crate::readiness::{self, Readiness};

/// How long to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// The whole wait ends at this deadline, however many objects remain.
    pub deadline: Duration,
    /// No single object may take longer than this.
    pub per_object: Duration,
    /// How long pods may stay unschedulable before that is an error (nodes can join late).
    pub unschedulable_grace: Duration,
    /// How often pods are inspected for a stuck reason.
    pub inspect_every: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(600),
            per_object: Duration::from_secs(300),
            unschedulable_grace: Duration::from_secs(60),
            inspect_every: Duration::from_secs(2),
        }
    }
}

/// Whether `reference` names a workload kind this module waits for.
pub fn is_workload(reference: &ObjectRef) -> bool {
    matches!(
        (reference.api_version.as_str(), reference.kind.as_str()),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch/v1", "Job")
    )
}

/// Waits until every workload among `objects` is ready; `progress` hears each state change.
/// Objects are waited for concurrently; the first failure ends the wait.
pub async fn wait_ready(
    client: &kube::Client,
    objects: &[ObjectRef],
    options: WaitOptions,
    progress: &(dyn Fn(&ObjectRef, &Readiness) + Sync),
) -> Result<()> {
    wait_ready_ordered(client, objects, &HashMap::new(), options, progress).await
}

/// [`wait_ready`], where a workload is inspected only once the workloads it depends on
/// (`depends_on`) are ready: a service that crash-loops while its database starts is not a
/// failure, and a dependency that fails is the one reported. Dependencies that are not among
/// `objects` are not waited for.
pub async fn wait_ready_ordered(
    client: &kube::Client,
    objects: &[ObjectRef],
    depends_on: &HashMap<ObjectRef, Vec<ObjectRef>>,
    options: WaitOptions,
    progress: &(dyn Fn(&ObjectRef, &Readiness) + Sync),
) -> Result<()> {
    let deadline = Instant::now() + options.deadline;
    let workloads: Vec<&ObjectRef> = objects.iter().filter(|r| is_workload(r)).collect();
    // Each workload announces whether it became ready; dependents wait for that first.
    let done: HashMap<&ObjectRef, tokio::sync::watch::Sender<Option<bool>>> =
        workloads.iter().map(|r| (*r, tokio::sync::watch::channel(None).0)).collect();
    let waits = workloads.iter().map(|&r| {
        let done = &done;
        async move {
            for dependency in depends_on.get(r).into_iter().flatten() {
                let Some(sender) = done.get(dependency) else { continue };
                let mut receiver = sender.subscribe();
                let ready = matches!(receiver.wait_for(Option::is_some).await.as_deref(), Ok(Some(true)));
                if !ready {
                    done[r].send_replace(Some(false));
                    return Err(Error::Blocked {
                        object: Box::new(r.clone()),
                        dependency: Box::new(dependency.clone()),
                    });
                }
            }
            let result = wait_one(client, r, options, deadline, progress).await;
            done[r].send_replace(Some(result.is_ok()));
            result
        }
    });
    // Every wait runs at once: a bounded buffer could fill with dependents waiting for
    // dependencies it never starts.
    futures::future::try_join_all(waits).await.map(drop)
}

async fn wait_one(
    client: &kube::Client,
    reference: &ObjectRef,
    options: WaitOptions,
    deadline: Instant,
    progress: &(dyn Fn(&ObjectRef, &Readiness) + Sync),
) -> Result<()> {
    let ns = reference.namespace.clone().unwrap_or_default();
    let c = client.clone();
    match reference.kind.as_str() {
        "Deployment" => {
            watch::<Deployment>(
                c,
                &ns,
                reference,
                readiness::deployment,
                |d| d.spec.as_ref().and_then(|s| s.selector.match_labels.clone()),
                options,
                deadline,
                progress,
            )
            .await
        }
        "StatefulSet" => {
            watch::<StatefulSet>(
                c,
                &ns,
                reference,
                readiness::statefulset,
                |s| s.spec.as_ref().and_then(|s| s.selector.match_labels.clone()),
                options,
                deadline,
                progress,
            )
            .await
        }
        "DaemonSet" => {
            watch::<DaemonSet>(
                c,
                &ns,
                reference,
                readiness::daemonset,
                |d| d.spec.as_ref().and_then(|s| s.selector.match_labels.clone()),
                options,
                deadline,
                progress,
            )
            .await
        }
        "Job" => {
            watch::<Job>(
                c,
                &ns,
                reference,
                readiness::job,
                |j| Some(BTreeMap::from([("job-name".to_owned(), j.metadata.name.clone().unwrap_or_default())])),
                options,
                deadline,
                progress,
            )
            .await
        }
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn watch<K>(
    client: kube::Client,
    namespace: &str,
    reference: &ObjectRef,
    rule: fn(&K) -> Readiness,
    selector: fn(&K) -> Option<BTreeMap<String, String>>,
    options: WaitOptions,
    deadline: Instant,
    progress: &(dyn Fn(&ObjectRef, &Readiness) + Sync),
) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let started = Instant::now();
    let until = deadline.min(started + options.per_object);
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", reference.name));
    let mut stream = watcher(api, config).default_backoff().applied_objects().boxed();
    let mut last = Readiness::Waiting("no status seen yet".into());
    let mut labels: Option<BTreeMap<String, String>> = None;
    let mut unschedulable_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(options.inspect_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(object)) => {
                    labels = selector(&object).or(labels);
                    let state = rule(&object);
                    if state != last {
                        progress(reference, &state);
                    }
                    match &state {
                        Readiness::Ready => return Ok(()),
                        Readiness::Failed(reason) => {
                            // "Exceeded its progress deadline" says that, not why: a stuck pod
                            // (unschedulable, crashing, no image) is the cause, so it is the report.
                            let cause = match &labels {
                                Some(labels) => root_cause(&client, namespace, reference, labels).await,
                                None => None,
                            };
                            if let Some(diagnosis) = cause {
                                return Err(Error::Stuck(Box::new(diagnosis)));
                            }
                            return Err(Error::Failed { object: reference.clone(), reason: reason.clone() });
                        }
                        Readiness::Waiting(_) => last = state,
                    }
                }
                // The watcher re-establishes itself with backoff; an error here is a retry.
                Some(Err(e)) => tracing::debug!(object = %reference, error = %e, "watch interrupted; retrying"),
                None => return Err(Error::Timeout { object: reference.clone(), waited: started.elapsed(), last: "the watch ended".into() }),
            },
            _ = tick.tick() => {
                let Some(labels) = &labels else { continue };
                let pods = match diagnose::pods(&client, namespace, labels).await {
                    Ok(p) => p,
                    Err(e) => { tracing::debug!(object = %reference, error = %e, "listing pods"); continue }
                };
                let mut saw_unschedulable = false;
                for pod in &pods {
                    let Some(finding) = diagnose::inspect(pod) else { continue };
                    let grace_over = unschedulable_since.is_some_and(|t| t.elapsed() >= options.unschedulable_grace);
                    if finding.immediate || grace_over {
                        return Err(Error::Stuck(Box::new(diagnose::explain(&client, reference, pod, finding).await)));
                    }
                    saw_unschedulable = true;
                }
                unschedulable_since = if saw_unschedulable { unschedulable_since.or(Some(Instant::now())) } else { None };
            }
            _ = tokio::time::sleep_until(until.into()) => {
                let last = match last { Readiness::Waiting(w) | Readiness::Failed(w) => w, Readiness::Ready => String::new() };
                return Err(Error::Timeout { object: reference.clone(), waited: started.elapsed(), last });
            }
        }
    }
}

/// The diagnosis of the first of a workload's pods with a reason it will not become ready,
/// whatever its grace period.
async fn root_cause(
    client: &kube::Client,
    namespace: &str,
    reference: &ObjectRef,
    labels: &BTreeMap<String, String>,
) -> Option<diagnose::Diagnosis> {
    let pods = diagnose::pods(client, namespace, labels).await.ok()?;
    let (pod, finding) = pods.iter().find_map(|p| diagnose::inspect(p).map(|f| (p, f)))?;
    Some(diagnose::explain(client, reference, pod, finding).await)
}
