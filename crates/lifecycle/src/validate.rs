//! `validate`: derives the parity suite from the config and the environment's state, runs it,
//! and returns its report. Read-only.

use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::apply::Inventory;
use kind_parity_probes::suite::{self, Context, Endpoints};
use kind_parity_probes::{ProbeResult, Report};
use kind_parity_render::Secrets;

use crate::event::{Event, Reporter, Step};
use crate::{Environment, Error, Result, ValidateOptions};

impl Environment {
    /// Runs the parity suite against the running environment: routes, TLS, DNS, the OIDC
    /// issuer, the env contract, the dependencies. Each probe's result is an
    /// [`Event::ProbeFinished`]; the report holds them all, root causes first. A failed probe is
    /// no error: the report says `passed: false`.
    pub async fn validate(&self, options: &ValidateOptions, reporter: &dyn Reporter) -> Result<Report> {
        // Read, never generate: a suite that invents credentials would test nothing.
        let Some(secrets) = self.state.read_secrets()? else {
            return Err(Error::NoState { name: self.name().to_owned(), root: self.state.root().to_path_buf() });
        };
        let inventory = self.state.read_inventory()?;
        let cluster = self.connect_existing(&options.target).await?;
        let a = &options.addresses;
        let endpoints = if a.postgres.is_some() || a.redis.is_some() || a.nats.is_some() || a.temporal.is_some() {
            Endpoints::Addresses {
                postgres: a.postgres.clone(),
                redis: a.redis.clone(),
                nats: a.nats.clone(),
                temporal: a.temporal.clone(),
            }
        } else {
            Endpoints::Forward
        };
        self.run_suite(&secrets, &inventory, cluster, endpoints, options.ingress, true, reporter).await
    }

    /// Derives the suite and runs it; `announce` sends the step's start (`validate` does, the
    /// short check of `up` does not).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_suite(
        &self,
        secrets: &Secrets,
        inventory: &Inventory,
        cluster: (kube::Client, String),
        endpoints: Endpoints,
        ingress: Option<std::net::SocketAddr>,
        announce: bool,
        reporter: &dyn Reporter,
    ) -> Result<Report> {
        let config = self.config();
        let artifacts = kind_parity_render::artifacts(config, &self.loaded.inputs)?;
        let workloads: Vec<ObjectRef> =
            inventory.objects.keys().filter(|o| kind_parity_cluster::wait::is_workload(o)).cloned().collect();
        let context_name = cluster.1.clone();
        let context = Context { config, secrets, cluster: Some(cluster), workloads, endpoints, ingress, artifacts };
        let probes = suite::derive(&context)?;
        let total = probes.len();
        if announce {
            reporter.report(&Event::StepStarted {
                step: Step::Validate,
                message: format!("validating {} on context {context_name}: {total} probes", config.name),
            });
        }
        let done = std::sync::atomic::AtomicUsize::new(0);
        let progress = |r: &ProbeResult| {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tracing::debug!(probe = %r.id, outcome = %r.outcome, found = %r.found, "probe done");
            reporter.report(&Event::ProbeFinished { done: n, total, result: r.clone() });
        };
        Ok(suite::run(probes, &progress).await?)
    }
}
