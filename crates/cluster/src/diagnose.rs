//! Why a workload's pods are not becoming ready, when waiting will not fix it: the pod, the
//! reason, its events and last log lines, and what to check.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, LogParams};

use crate::ObjectRef;

/// Container waiting reasons that waiting does not cure, with what to check: in words that name
/// no command; the lifecycle's hint says which one to run.
const STUCK: &[(&str, &str)] = &[
    (
        "ErrImageNeverPull",
        "the image is not in the node: check the tag in the manifest, and that the image was built and loaded into every node",
    ),
    (
        "ImagePullBackOff",
        "the image cannot be pulled: check its name and tag, and that the registry is reachable from the node",
    ),
    (
        "ErrImagePull",
        "the image cannot be pulled: check its name and tag, and that the registry is reachable from the node",
    ),
    ("CrashLoopBackOff", "the container keeps exiting: read the log lines above and the service's env"),
    ("CreateContainerConfigError", "a referenced Secret, ConfigMap or key is missing: check the events above"),
    ("InvalidImageName", "the image reference is malformed: fix it in kind-parity.yaml"),
];

/// A stuck pod, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The workload.
    pub object: ObjectRef,
    /// The pod.
    pub pod: String,
    /// The container, when the reason is a container's.
    pub container: Option<String>,
    /// `CrashLoopBackOff`, `Unschedulable`, …
    pub reason: String,
    /// The message that came with it.
    pub message: String,
    /// The pod's recent events, oldest first.
    pub events: Vec<String>,
    /// The container's last log lines, or why they are unavailable.
    pub logs: Vec<String>,
    /// What to check.
    pub hint: String,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.pod_details())
    }
}

impl Diagnosis {
    /// The diagnosis without the workload it belongs to: the pod, its reason, events, last log
    /// lines and what to check, for a message that already names the workload.
    pub fn pod_details(&self) -> String {
        PodDetails(self).to_string()
    }
}

struct PodDetails<'a>(&'a Diagnosis);

impl fmt::Display for PodDetails<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "pod {}", d.pod)?;
        if let Some(c) = &d.container {
            write!(f, " container {c}")?;
        }
        write!(f, " is {}", d.reason)?;
        if !d.message.is_empty() {
            write!(f, ": {}", d.message)?;
        }
        if !d.events.is_empty() {
            write!(f, "\n  events:")?;
            for e in &d.events {
                write!(f, "\n    {e}")?;
            }
        }
        if !d.logs.is_empty() {
            write!(f, "\n  last log lines:")?;
            for l in &d.logs {
                write!(f, "\n    {l}")?;
            }
        }
        write!(f, "\n  check: {}", d.hint)
    }
}

/// A pod condition or container state that explains why a pod is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The container, when the reason is a container's.
    pub container: Option<String>,
    /// The reason.
    pub reason: String,
    /// Its message.
    pub message: String,
    /// What to check.
    pub hint: String,
    /// Whether it is final at once (a stuck container) or only after a grace period (unschedulable).
    pub immediate: bool,
}

/// Reads one pod's status for a reason it will not become ready.
pub fn inspect(pod: &Pod) -> Option<Finding> {
    let status = pod.status.as_ref()?;
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    for c in containers {
        let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
        let reason = waiting.reason.clone().unwrap_or_default();
        if let Some((_, hint)) = STUCK.iter().find(|(r, _)| *r == reason) {
            return Some(Finding {
                container: Some(c.name.clone()),
                reason,
                message: waiting.message.clone().unwrap_or_default(),
                hint: (*hint).to_owned(),
                immediate: true,
            });
        }
    }
    let unschedulable =
        status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })?;
    Some(Finding {
        container: None,
        reason: "Unschedulable".into(),
        message: unschedulable.message.clone().unwrap_or_default(),
        hint: "no node can run the pod: check that the cluster has Ready nodes (kubectl get nodes), their taints, and the pod's resource requests".into(),
        immediate: false,
    })
}

/// Why a pod is not Ready yet, whatever the reason, for a wait that ran out of time or for
/// progress: a stuck or unschedulable pod as [`inspect`] reads it, else its first container that
/// is not ready (waiting, running but failing its readiness, exited), else its phase. `None`
/// for a Ready pod.
pub fn not_ready(pod: &Pod) -> Option<Finding> {
    if let Some(finding) = inspect(pod) {
        return Some(finding);
    }
    let status = pod.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_ref());
    let condition = |type_: &str| conditions.into_iter().flatten().find(|c| c.type_ == type_);
    if condition("Ready").is_some_and(|c| c.status == "True") {
        return None;
    }
    let hint = "the pod did not become ready in time: its events and log lines say what it waits for".to_owned();
    let found = |container: &str, reason: String, message: String| Finding {
        container: Some(container.to_owned()),
        reason,
        message,
        hint: hint.clone(),
        immediate: false,
    };
    let containers = status
        .into_iter()
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()));
    for c in containers.filter(|c| !c.ready) {
        let state = c.state.clone().unwrap_or_default();
        if let Some(waiting) = state.waiting {
            let reason = waiting.reason.unwrap_or_else(|| "waiting".into());
            return Some(found(&c.name, reason, waiting.message.unwrap_or_default()));
        }
        if state.running.is_some() {
            let message = condition("Ready").and_then(|r| r.message.clone()).unwrap_or_default();
            return Some(found(&c.name, "running, not ready".into(), message));
        }
        if let Some(done) = state.terminated {
            // A finished init container is ready's opposite but done: the next one is the reason.
            if done.exit_code == 0
                && status.is_some_and(|s| s.init_container_statuses.iter().flatten().any(|i| i.name == c.name))
            {
                continue;
            }
            let reason = done.reason.unwrap_or_else(|| "terminated".into());
            return Some(found(&c.name, reason, format!("exit code {}", done.exit_code)));
        }
    }
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
    let message = match condition("PodScheduled") {
        Some(c) if c.status == "True" => condition("Ready").and_then(|r| r.message.clone()).unwrap_or_default(),
        _ => "not scheduled to a node yet".into(),
    };
    Some(Finding { container: None, reason: phase, message, hint, immediate: false })
}

/// One line for progress: `pod api-7d9f container api is ContainerCreating`.
pub fn summary(pod: &Pod, finding: &Finding) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut line = format!("pod {name}");
    if let Some(c) = &finding.container {
        line.push_str(&format!(" container {c}"));
    }
    line.push_str(&format!(" is {}", finding.reason));
    if !finding.message.is_empty() {
        line.push_str(&format!(": {}", finding.message));
    }
    line
}

/// The pods of a workload, by its selector's matchLabels.
pub async fn pods(
    client: &kube::Client,
    namespace: &str,
    match_labels: &BTreeMap<String, String>,
) -> kube::Result<Vec<Pod>> {
    let selector = match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    Ok(api.list(&ListParams::default().labels(&selector)).await?.items)
}

/// When the last run of `container` (the one that exited) began.
pub fn last_run_started(pod: &Pod, container: &str) -> Option<Time> {
    let status = pod.status.as_ref()?;
    let statuses = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    let c = statuses.into_iter().find(|c| c.name == container)?;
    c.last_state.as_ref()?.terminated.as_ref()?.started_at.clone()
}

/// When the pods matching `match_labels` have been ready since: the latest Ready transition
/// of those that are ready, `None` when none is.
pub async fn ready_since(
    client: &kube::Client,
    namespace: &str,
    match_labels: &BTreeMap<String, String>,
) -> kube::Result<Option<Time>> {
    let since = pods(client, namespace, match_labels)
        .await?
        .iter()
        .filter_map(|p| {
            let ready = p.status.as_ref()?.conditions.iter().flatten().find(|c| c.type_ == "Ready")?;
            (ready.status == "True").then(|| ready.last_transition_time.clone()).flatten()
        })
        .max();
    Ok(since)
}

/// Builds the full diagnosis of a stuck pod: its events and last log lines.
pub async fn explain(client: &kube::Client, object: &ObjectRef, pod: &Pod, finding: Finding) -> Diagnosis {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let events_api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let events = match events_api.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await {
        Ok(list) => {
            let mut items = list.items;
            items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            let lines = items.into_iter().map(|e| {
                let message = e.message.unwrap_or_default();
                format!("{} {}: {}", e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), message.trim())
            });
            // The same event repeated is one line with a count, so the last five say five things.
            let mut collapsed: Vec<(String, usize)> = Vec::new();
            for line in lines {
                match collapsed.last_mut() {
                    Some((last, n)) if *last == line => *n += 1,
                    _ => collapsed.push((line, 1)),
                }
            }
            let skip = collapsed.len().saturating_sub(5);
            collapsed.into_iter().skip(skip).map(|(l, n)| if n > 1 { format!("{l} (x{n})") } else { l }).collect()
        }
        Err(e) => vec![format!("events unavailable: {e}")],
    };
    let logs = match &finding.container {
        Some(container) => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            // A crash-looping container is between runs (waiting for its back-off): its current
            // log is empty, and the run that exited is the one that says why.
            let previous = finding.reason == "CrashLoopBackOff";
            let params = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(10),
                previous,
                ..LogParams::default()
            };
            match pods.logs(&name, &params).await {
                Ok(text) if text.trim().is_empty() => vec!["(no log output)".to_owned()],
                Ok(text) => text.lines().map(str::to_owned).collect(),
                // The API's own message ("container c is waiting to start: …"), not its whole Status.
                Err(kube::Error::Api(status)) => vec![format!("logs unavailable: {}", status.message)],
                Err(e) => vec![format!("logs unavailable: {e}")],
            }
        }
        None => Vec::new(),
    };
    Diagnosis {
        object: object.clone(),
        pod: name,
        container: finding.container,
        reason: finding.reason,
        message: finding.message,
        events,
        logs,
        hint: finding.hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "api-1"}, "status": status})).unwrap()
    }

    #[test]
    fn a_pod_that_is_not_ready_says_why() {
        let running = pod(serde_json::json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "message": "containers with unready status: [api]"}],
            "containerStatuses": [{"name": "api", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"running": {}}}]}));
        let finding = not_ready(&running).unwrap();
        assert_eq!(
            summary(&running, &finding),
            "pod api-1 container api is running, not ready: containers with unready status: [api]"
        );
        assert!(!finding.immediate);

        // A finished init container is not the reason; the one still waiting is.
        let creating = pod(serde_json::json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "wait-db", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "api", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "PodInitializing"}}}]}));
        assert_eq!(summary(&creating, &not_ready(&creating).unwrap()), "pod api-1 container api is PodInitializing");

        let ready = pod(serde_json::json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(not_ready(&ready), None);
    }
}
