//! When a workload is ready: kubectl's rollout-status rules, as pure functions.
//!
//! Status is only trusted once the controller has observed the current generation; before that
//! every count may describe the previous spec (kube-rs' `is_deployment_completed` alone can pass
//! on such stale status).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;

/// A workload's readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Rolled out and available.
    Ready,
    /// Not yet; the text says what it waits for.
    Waiting(String),
    /// It will not become ready by waiting.
    Failed(String),
}

fn observed(generation: Option<i64>, observed: Option<i64>) -> Option<Readiness> {
    match (generation, observed) {
        (Some(g), Some(o)) if o >= g => None,
        (Some(g), o) => Some(Readiness::Waiting(format!(
            "the controller has not observed generation {g} yet (observed {})",
            o.map_or("none".into(), |o| o.to_string())
        ))),
        (None, _) => None,
    }
}

/// kubectl's Deployment rules, plus ready replicas as wanted.
pub fn deployment(d: &Deployment) -> Readiness {
    if let Some(waiting) = observed(d.metadata.generation, d.status.as_ref().and_then(|s| s.observed_generation)) {
        return waiting;
    }
    let status = d.status.clone().unwrap_or_default();
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if let Some(c) = status.conditions.iter().flatten().find(|c| c.type_ == "Progressing")
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Readiness::Failed(format!("exceeded its progress deadline: {}", c.message.clone().unwrap_or_default()));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    if updated < wanted {
        Readiness::Waiting(format!("{updated} of {wanted} replicas updated"))
    } else if total > updated {
        Readiness::Waiting(format!("{} old replicas pending termination", total - updated))
    } else if available < updated {
        Readiness::Waiting(format!("{available} of {updated} updated replicas available"))
    } else if ready < wanted {
        Readiness::Waiting(format!("{ready} of {wanted} replicas ready"))
    } else {
        Readiness::Ready
    }
}

/// kubectl's StatefulSet rules (RollingUpdate), with the partition honoured.
pub fn statefulset(s: &StatefulSet) -> Readiness {
    if let Some(waiting) = observed(s.metadata.generation, s.status.as_ref().and_then(|st| st.observed_generation)) {
        return waiting;
    }
    let status = s.status.clone().unwrap_or_default();
    let spec = s.spec.clone().unwrap_or_default();
    let wanted = spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < wanted {
        return Readiness::Waiting(format!("{ready} of {wanted} replicas ready"));
    }
    let strategy = spec.update_strategy.unwrap_or_default();
    if strategy.type_.as_deref().is_some_and(|t| t != "RollingUpdate") {
        return Readiness::Ready;
    }
    let partition = strategy.rolling_update.and_then(|r| r.partition).unwrap_or(0);
    if partition > 0 {
        let updated = status.updated_replicas.unwrap_or(0);
        let wanted_updated = wanted - partition;
        return if updated < wanted_updated {
            Readiness::Waiting(format!("{updated} of {wanted_updated} partitioned replicas updated"))
        } else {
            Readiness::Ready
        };
    }
    match (status.current_revision, status.update_revision) {
        (Some(current), Some(update)) if current == update => Readiness::Ready,
        (current, update) => Readiness::Waiting(format!(
            "rolling update in progress (current revision {}, update revision {})",
            current.unwrap_or_default(),
            update.unwrap_or_default()
        )),
    }
}

/// A Job is ready when Complete; Failed is final.
pub fn job(j: &Job) -> Readiness {
    let conditions = j.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if let Some(c) = conditions.iter().find(|c| c.type_ == "Failed" && c.status == "True") {
        return Readiness::Failed(format!(
            "{}: {}",
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default()
        ));
    }
    if conditions.iter().any(|c| c.type_ == "Complete" && c.status == "True") {
        return Readiness::Ready;
    }
    let status = j.status.clone().unwrap_or_default();
    Readiness::Waiting(format!(
        "not complete ({} active, {} succeeded, {} failed)",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    ))
}

/// kubectl's DaemonSet rules.
pub fn daemonset(d: &DaemonSet) -> Readiness {
    if let Some(waiting) = observed(d.metadata.generation, d.status.as_ref().and_then(|s| s.observed_generation)) {
        return waiting;
    }
    let status = d.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        Readiness::Waiting(format!("{updated} of {desired} pods updated"))
    } else if available < desired {
        Readiness::Waiting(format!("{available} of {desired} updated pods available"))
    } else {
        Readiness::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check<T: serde::de::DeserializeOwned>(
        rule: fn(&T) -> Readiness,
        object: serde_json::Value,
        expected: Readiness,
    ) {
        let typed: T = serde_json::from_value(object.clone()).unwrap();
        assert_eq!(rule(&typed), expected, "for {object}");
    }

    fn dep(generation: i64, spec_replicas: i32, status: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "d", "generation": generation}, "spec": {"replicas": spec_replicas, "selector": {}, "template": {}}, "status": status})
    }

    #[test]
    fn deployments_follow_kubectl() {
        let full = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2});
        check(deployment, dep(2, 2, full.clone()), Readiness::Ready);
        // Stale status: all counts look done, but they describe generation 1.
        let mut stale = full.clone();
        stale["observedGeneration"] = json!(1);
        check(
            deployment,
            dep(2, 2, stale),
            Readiness::Waiting("the controller has not observed generation 2 yet (observed 1)".into()),
        );
        check(
            deployment,
            dep(2, 2, json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1})),
            Readiness::Waiting("1 of 2 replicas updated".into()),
        );
        check(
            deployment,
            dep(2, 2, json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2})),
            Readiness::Waiting("1 old replicas pending termination".into()),
        );
        check(
            deployment,
            dep(2, 2, json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})),
            Readiness::Waiting("1 of 2 updated replicas available".into()),
        );
        let mut deadline = full;
        deadline["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"d-1\" has timed out progressing."}]);
        check(
            deployment,
            dep(2, 2, deadline),
            Readiness::Failed("exceeded its progress deadline: ReplicaSet \"d-1\" has timed out progressing.".into()),
        );
    }

    #[test]
    fn statefulsets_need_ready_replicas_and_one_revision() {
        let sts = |status: serde_json::Value| json!({"metadata": {"name": "s", "generation": 1}, "spec": {"replicas": 1, "selector": {}, "serviceName": "s", "template": {}}, "status": status});
        check(
            statefulset,
            sts(
                json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "a"}),
            ),
            Readiness::Ready,
        );
        check(
            statefulset,
            sts(
                json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"}),
            ),
            Readiness::Waiting("rolling update in progress (current revision a, update revision b)".into()),
        );
        check(
            statefulset,
            sts(json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 0})),
            Readiness::Waiting("0 of 1 replicas ready".into()),
        );
    }

    #[test]
    fn jobs_complete_or_fail() {
        let job_with = |conditions: serde_json::Value| json!({"metadata": {"name": "j"}, "spec": {"template": {}}, "status": {"conditions": conditions, "active": 1}});
        check(job, job_with(json!([{"type": "Complete", "status": "True"}])), Readiness::Ready);
        check(
            job,
            job_with(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]),
            ),
            Readiness::Failed("BackoffLimitExceeded: Job has reached the specified backoff limit".into()),
        );
        check(job, job_with(json!([])), Readiness::Waiting("not complete (1 active, 0 succeeded, 0 failed)".into()));
    }

    #[test]
    fn daemonsets_need_every_pod_updated_and_available() {
        let ds = |status: serde_json::Value| json!({"metadata": {"name": "d", "generation": 1}, "spec": {"selector": {}, "template": {}}, "status": status});
        check(
            daemonset,
            ds(
                json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2, "updatedNumberScheduled": 2, "numberAvailable": 2}),
            ),
            Readiness::Ready,
        );
        check(
            daemonset,
            ds(
                json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}),
            ),
            Readiness::Waiting("1 of 2 updated pods available".into()),
        );
    }
}
