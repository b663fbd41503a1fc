//! Running a suite: every probe concurrently, each as soon as the probes it depends on have
//! passed. A probe whose dependency failed is blocked by the root cause and does not run.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt as _, Shared};
use futures::stream::{FuturesUnordered, StreamExt as _};

use crate::error::{Error, Result};
use crate::probe::{Body, Failure, Outcome, Probe, ProbeResult};
use crate::report::Report;

pub use crate::derive::{Context, Endpoints, derive};

/// The probes in an order where each comes after its dependencies, input order kept otherwise.
/// Checks that ids are unique and every dependency exists, and that there is no cycle.
pub fn order(probes: &[Probe]) -> Result<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, p) in probes.iter().enumerate() {
        if index.insert(p.id.as_str(), i).is_some() {
            return Err(Error::DuplicateProbe(p.id.clone()));
        }
    }
    for p in probes {
        if let Some(missing) = p.depends_on.iter().find(|d| !index.contains_key(d.as_str())) {
            return Err(Error::UnknownDependency { probe: p.id.clone(), dependency: missing.clone() });
        }
    }
    // Depth-first, visiting dependencies in their declared order, so the result is stable.
    fn visit(
        i: usize,
        probes: &[Probe],
        index: &HashMap<&str, usize>,
        done: &mut HashSet<usize>,
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        if done.contains(&i) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|&p| p == i) {
            let mut cycle: Vec<String> = path[start..].iter().map(|&p| probes[p].id.clone()).collect();
            cycle.push(probes[i].id.clone());
            return Err(Error::Cycle(cycle));
        }
        path.push(i);
        for d in &probes[i].depends_on {
            visit(index[d.as_str()], probes, index, done, path, out)?;
        }
        path.pop();
        done.insert(i);
        out.push(i);
        Ok(())
    }
    let mut out = Vec::with_capacity(probes.len());
    let mut done = HashSet::new();
    for i in 0..probes.len() {
        visit(i, probes, &index, &mut done, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

type Pending = Shared<BoxFuture<'static, ProbeResult>>;

/// Runs `probes` concurrently in dependency order; `progress` hears each result as it comes.
/// The report lists root causes first.
pub async fn run(probes: Vec<Probe>, progress: &(dyn Fn(&ProbeResult) + Sync)) -> Result<Report> {
    let started = Instant::now();
    let order = order(&probes)?;
    let probes: Vec<Arc<Probe>> = probes.into_iter().map(Arc::new).collect();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    for &i in &order {
        let probe = Arc::clone(&probes[i]);
        let deps: Vec<Pending> = probe.depends_on.iter().map(|d| pending[d].clone()).collect();
        let future = async move { run_one(&probe, deps).await }.boxed().shared();
        pending.insert(probes[i].id.clone(), future);
    }
    let mut running: FuturesUnordered<Pending> = order.iter().map(|&i| pending[&probes[i].id].clone()).collect();
    let mut results: HashMap<String, ProbeResult> = HashMap::new();
    while let Some(result) = running.next().await {
        progress(&result);
        results.insert(result.id.clone(), result);
    }
    let in_order = order.iter().map(|&i| results.remove(&probes[i].id).expect("every probe ran")).collect();
    Ok(Report::new(in_order, started.elapsed()))
}

async fn run_one(probe: &Probe, deps: Vec<Pending>) -> ProbeResult {
    let mut result = ProbeResult {
        id: probe.id.clone(),
        component: probe.component.clone(),
        outcome: Outcome::Pass,
        critical: probe.critical,
        duration_ms: 0,
        checked: probe.target(),
        found: String::new(),
        remediation: None,
        next: Vec::new(),
        blocked_by: None,
    };
    let check = match &probe.body {
        Body::Skip { reason, .. } => {
            result.outcome = Outcome::Skipped;
            result.found = reason.clone();
            return result;
        }
        Body::Run(check) => Arc::clone(check),
    };
    for dep in futures::future::join_all(deps).await {
        match dep.outcome {
            Outcome::Pass => {}
            Outcome::Skipped => {
                result.outcome = Outcome::Skipped;
                result.found = format!("needs `{}`, which was skipped: {}", dep.id, dep.found);
                return result;
            }
            Outcome::Fail | Outcome::Blocked => {
                let root = dep.blocked_by.clone().unwrap_or_else(|| dep.id.clone());
                result.outcome = Outcome::Blocked;
                result.found = format!("not run: `{root}` failed");
                result.remediation = Some(format!("fix `{root}` first"));
                result.blocked_by = Some(root);
                return result;
            }
        }
    }
    let started = Instant::now();
    let verdict = tokio::time::timeout(probe.timeout, AssertUnwindSafe(check.run()).catch_unwind()).await;
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let verdict = match verdict {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(_)) => Err(Failure::new("the probe panicked", "this is a bug in kind-parity: please report it")),
        Err(_) => Err(Failure::new(format!("no answer within {:?}", probe.timeout), check.on_timeout())),
    };
    match verdict {
        Ok(found) => result.found = found,
        Err(failure) => {
            tracing::debug!(probe = %probe.id, found = %failure.found, "probe failed");
            result.outcome = Outcome::Fail;
            result.found = failure.found;
            result.remediation = Some(failure.remediation);
            result.next = failure.next;
        }
    }
    result
}
