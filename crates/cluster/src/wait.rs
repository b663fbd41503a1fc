//! Waiting for workloads to be ready: one deadline for the whole wait, a budget per object,
//! watches that re-establish with backoff, and an early stop with a diagnosis when a pod is
//! stuck. A timeout is an error, never a warning, and names the pod that was not ready, with
//! its reason, events and last log lines. While it waits, the caller hears every state change
//! and, every few seconds, what is still pending ([`Progress`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    /// How often the caller hears what is still pending ([`Progress::Pending`]); zero: never.
    pub report_every: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(600),
            per_object: Duration::from_secs(300),
            unschedulable_grace: Duration::from_secs(60),
            inspect_every: Duration::from_secs(2),
            report_every: Duration::from_secs(5),
        }
    }
}

/// What a wait tells its caller while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A workload's readiness changed.
    Changed(&'a ObjectRef, &'a Readiness),
    /// Every [`WaitOptions::report_every`]: the workloads not ready yet.
    Pending {
        /// How long the wait has run.
        waited: Duration,
        /// The workloads not ready yet, in order, with what each waits for.
        pending: &'a [Pending],
    },
}

/// A workload that is not ready yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The workload.
    pub object: ObjectRef,
    /// Its last known state, and its first pod that is not ready when one was inspected
    /// (`0 of 1 replicas ready; pod postgres-0 container postgres is ContainerCreating`).
    pub state: String,
}

/// The state of every workload still pending, shared by the waits that update it and the
/// ticker that reports it.
struct Tracker<'a> {
    pending: Mutex<BTreeMap<ObjectRef, (String, Option<String>)>>,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

impl Tracker<'_> {
    fn set(&self, object: &ObjectRef, state: Option<String>, pod: Option<Option<String>>) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = pending.get_mut(object) {
            if let Some(state) = state {
                entry.0 = state;
            }
            if let Some(pod) = pod {
                entry.1 = pod;
            }
        }
    }

    fn changed(&self, object: &ObjectRef, state: &Readiness) {
        match state {
            Readiness::Ready | Readiness::Failed(_) => {
                self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(object);
            }
            Readiness::Waiting(why) => self.set(object, Some(why.clone()), None),
        }
        (self.progress)(Progress::Changed(object, state));
    }

    fn report(&self, waited: Duration) {
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(object, (state, pod))| Pending {
                object: object.clone(),
                state: match pod {
                    Some(pod) => format!("{state}; {pod}"),
                    None => state.clone(),
                },
            })
            .collect();
        if !pending.is_empty() {
            (self.progress)(Progress::Pending { waited, pending: &pending });
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

/// Waits until every workload among `objects` is ready; `progress` hears each state change and
/// what is still pending. Objects are waited for concurrently; the first failure ends the wait.
pub async fn wait_ready(
    client: &kube::Client,
    objects: &[ObjectRef],
    options: WaitOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
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
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<()> {
    let started = Instant::now();
    let deadline = started + options.deadline;
    let workloads: Vec<&ObjectRef> = objects.iter().filter(|r| is_workload(r)).collect();
    let tracker = Tracker {
        pending: Mutex::new(
            workloads.iter().map(|r| ((*r).clone(), ("no status seen yet".to_owned(), None))).collect(),
        ),
        progress,
    };
    // Each workload announces whether it became ready; dependents wait for that first.
    let done: HashMap<&ObjectRef, tokio::sync::watch::Sender<Option<bool>>> =
        workloads.iter().map(|r| (*r, tokio::sync::watch::channel(None).0)).collect();
    let waits = workloads.iter().map(|&r| {
        let (done, tracker) = (&done, &tracker);
        async move {
            for dependency in depends_on.get(r).into_iter().flatten() {
                let Some(sender) = done.get(dependency) else { continue };
                tracker.set(r, Some(format!("waiting for {dependency}, which it depends on")), None);
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
            tracker.set(r, Some("no status seen yet".into()), None);
            let dependencies = depends_on.get(r).map(Vec::as_slice).unwrap_or_default();
            let result = wait_one(client, r, dependencies, options, deadline, tracker).await;
            done[r].send_replace(Some(result.is_ok()));
            result
        }
    });
    // Every wait runs at once: a bounded buffer could fill with dependents waiting for
    // dependencies it never starts.
    let all = futures::future::try_join_all(waits);
    let ticker = async {
        if options.report_every.is_zero() {
            return std::future::pending().await;
        }
        let mut every = tokio::time::interval_at((started + options.report_every).into(), options.report_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            tracker.report(started.elapsed());
        }
    };
    // The ticker never ends (its output type is only there to match): the waits end the wait.
    tokio::select! {
        result = all => result.map(drop),
        never = ticker => never,
    }
}

async fn wait_one(
    client: &kube::Client,
    reference: &ObjectRef,
    dependencies: &[ObjectRef],
    options: WaitOptions,
    deadline: Instant,
    progress: &Tracker<'_>,
) -> Result<()> {
    let ns = reference.namespace.clone().unwrap_or_default();
    let c = client.clone();
    match reference.kind.as_str() {
        "Deployment" => {
            watch::<Deployment>(
                c,
                &ns,
                reference,
                dependencies,
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
                dependencies,
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
                dependencies,
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
                dependencies,
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
    dependencies: &[ObjectRef],
    rule: fn(&K) -> Readiness,
    selector: fn(&K) -> Option<BTreeMap<String, String>>,
    options: WaitOptions,
    deadline: Instant,
    progress: &Tracker<'_>,
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
                        progress.changed(reference, &state);
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
                None => return Err(Error::Timeout { object: Box::new(reference.clone()), waited: started.elapsed(), last: "the watch ended".into(), pod: None }),
            },
            _ = tick.tick() => {
                let Some(labels) = &labels else { continue };
                let pods = match diagnose::pods(&client, namespace, labels).await {
                    Ok(p) => p,
                    Err(e) => { tracing::debug!(object = %reference, error = %e, "listing pods"); continue }
                };
                // What progress shows: the first pod that is not ready, and why.
                let first = pods.iter().find_map(|p| diagnose::not_ready(p).map(|f| diagnose::summary(p, &f)));
                progress.set(reference, None, Some(first));
                let mut saw_unschedulable = false;
                for pod in &pods {
                    let Some(finding) = diagnose::inspect(pod) else { continue };
                    if finding.reason == "CrashLoopBackOff"
                        && let Some(why) = crashed_while_a_dependency_was_down(&client, pod, &finding, dependencies).await
                    {
                        progress.set(reference, None, Some(Some(why)));
                        continue;
                    }
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
                // "0 of 1 replicas ready" says that, not why: the pod that is not ready says why.
                let pod = match &labels {
                    Some(labels) => not_ready_pod(&client, namespace, reference, labels).await.map(Box::new),
                    None => None,
                };
                return Err(Error::Timeout { object: Box::new(reference.clone()), waited: started.elapsed(), last, pod });
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

/// The diagnosis of the first of a workload's pods that is not ready, for any reason.
async fn not_ready_pod(
    client: &kube::Client,
    namespace: &str,
    reference: &ObjectRef,
    labels: &BTreeMap<String, String>,
) -> Option<diagnose::Diagnosis> {
    let pods = match diagnose::pods(client, namespace, labels).await {
        Ok(pods) => pods,
        Err(e) => {
            tracing::debug!(object = %reference, error = %e, "listing pods at the deadline");
            return None;
        }
    };
    let (pod, finding) = pods.iter().find_map(|p| diagnose::not_ready(p).map(|f| (p, f)))?;
    Some(diagnose::explain(client, reference, pod, finding).await)
}

/// Why a crash-looping container is not stuck yet: a workload it depends on is not ready, or
/// became ready again only after the run that exited began (a database that restarted under
/// it). The next run decides. `None`: every dependency was ready all through that run, so the
/// crash is the container's own.
async fn crashed_while_a_dependency_was_down(
    client: &kube::Client,
    pod: &k8s_openapi::api::core::v1::Pod,
    finding: &diagnose::Finding,
    dependencies: &[ObjectRef],
) -> Option<String> {
    let started = finding.container.as_deref().and_then(|c| diagnose::last_run_started(pod, c));
    for dependency in dependencies {
        let namespace = dependency.namespace.clone().unwrap_or_default();
        let selector = match dependency.kind.as_str() {
            "Deployment" => Api::<Deployment>::namespaced(client.clone(), &namespace)
                .get(&dependency.name)
                .await
                .ok()
                .and_then(|d| d.spec?.selector.match_labels),
            "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), &namespace)
                .get(&dependency.name)
                .await
                .ok()
                .and_then(|s| s.spec?.selector.match_labels),
            "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), &namespace)
                .get(&dependency.name)
                .await
                .ok()
                .and_then(|d| d.spec?.selector.match_labels),
            // A Job that completed stays complete.
            _ => continue,
        };
        let Some(selector) = selector else { continue };
        match diagnose::ready_since(client, &namespace, &selector).await {
            Ok(since) => {
                if let Some(why) = dependency_explains_crash(started.as_ref(), since.as_ref()) {
                    return Some(format!("crash-looping while {dependency}, which it depends on, {why}"));
                }
            }
            Err(e) => tracing::debug!(%dependency, error = %e, "reading a dependency's pods"),
        }
    }
    None
}

/// Whether a dependency ready since `ready_since` (`None`: not ready) may have caused the
/// exit of a run that began at `run_started`, and how to say so.
fn dependency_explains_crash(run_started: Option<&Time>, ready_since: Option<&Time>) -> Option<&'static str> {
    match (run_started, ready_since) {
        (_, None) => Some("is not ready"),
        (Some(run), Some(since)) if run < since => {
            Some("became ready again after the last run began: waiting for the next run")
        }
        // The run began with the dependency ready, and it stayed ready.
        (Some(_), Some(_)) => None,
        // No record of when the exited run began: the dependency is ready now, so it is the
        // container's own.
        (None, Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::dependency_explains_crash;

    fn at(rfc3339: &str) -> Time {
        Time(rfc3339.parse().unwrap())
    }

    #[test]
    fn a_crash_while_a_dependency_is_not_ready_is_not_final() {
        assert_eq!(dependency_explains_crash(Some(&at("2026-12-02T04:00:00Z")), None), Some("is not ready"));
    }

    #[test]
    fn a_run_that_began_before_its_dependency_was_ready_again_gets_another_run() {
        let run = at("2026-12-02T04:00:00Z");
        let back = at("2026-12-02T04:00:07Z");
        assert!(dependency_explains_crash(Some(&run), Some(&back)).is_some_and(|why| why.contains("ready again")));
    }

    #[test]
    fn a_run_that_began_with_its_dependency_ready_crashed_on_its_own() {
        let since = at("2026-12-02T03:00:00Z");
        let run = at("2026-12-02T04:00:00Z");
        assert_eq!(dependency_explains_crash(Some(&run), Some(&since)), None);
    }
}
