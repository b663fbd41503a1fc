//! Why a workload's pods are not becoming ready, when waiting will not fix it: the pod, the
//! reason, its events and last log lines, and what to check.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};

use crate::ObjectRef;

/// Container waiting reasons that waiting does not cure, with what to check.
const STUCK: &[(&str, &str)] = &[
    (
        "ErrImageNeverPull",
        "the image is not in the node: `kind-parity up` builds and loads the services' images; check the tag in the manifest",
    ),
    (
        "ImagePullBackOff",
        "the image cannot be pulled: check its name and tag, and that the registry is reachable from the node",
    ),
    (
        "ErrImagePull",
        "the image cannot be pulled: check its name and tag, and that the registry is reachable from the node",
    ),
    (
        "CrashLoopBackOff",
        "the container keeps exiting: read the log lines above and the service's env (kind-parity render --drift)",
    ),
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
        write!(f, "{}: pod {}", self.object, self.pod)?;
        if let Some(c) = &self.container {
            write!(f, " container {c}")?;
        }
        write!(f, " is {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.events.is_empty() {
            write!(f, "\n  events:")?;
            for e in &self.events {
                write!(f, "\n    {e}")?;
            }
        }
        if !self.logs.is_empty() {
            write!(f, "\n  last log lines:")?;
            for l in &self.logs {
                write!(f, "\n    {l}")?;
            }
        }
        write!(f, "\n  check: {}", self.hint)
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
