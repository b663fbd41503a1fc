//! The suite a config implies when there is no cluster: nothing enabled goes unchecked.

use std::path::Path;

use kind_parity_probes::suite::{self, Context, Endpoints};
use kind_parity_probes::{Next, Outcome, Probe};
use kind_parity_render::{LoadOptions, Secrets};

/// The embedded demo's config (Postgres and Redis on; NATS, Temporal and Vault off).
fn demo() -> kind_parity_render::Loaded {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    kind_parity_render::load(&LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo,
        env: vec![],
        overrides: vec![],
    })
    .unwrap()
}

fn derive_without_cluster(loaded: &kind_parity_render::Loaded, endpoints: Endpoints) -> Vec<Probe> {
    let mut secrets = Secrets::default();
    secrets.ensure(&loaded.config, &mut rand::rng(), time::OffsetDateTime::now_utc()).unwrap();
    let context = Context {
        config: &loaded.config,
        secrets: &secrets,
        cluster: None,
        workloads: vec![],
        endpoints,
        ingress: None,
        artifacts: vec![],
    };
    suite::derive(&context).unwrap()
}

#[tokio::test]
async fn an_enabled_component_without_a_cluster_or_an_address_is_a_failed_probe() {
    // Regression: with no cluster, `derive` left enabled components' probes out (`(None, None) => continue`).
    let loaded = demo();
    let probes = derive_without_cluster(&loaded, Endpoints::Forward);
    let ours: Vec<Probe> =
        probes.into_iter().filter(|p| ["postgres", "redis", "nats", "temporal", "vault"].contains(&p.id())).collect();
    let ids: Vec<&str> = ours.iter().map(Probe::id).collect();
    assert_eq!(ids, ["postgres", "redis", "nats", "temporal", "vault"]);
    let report = suite::run(ours, &|_| {}).await.unwrap();
    assert!(!report.passed);
    for id in ["postgres", "redis"] {
        let result = report.results.iter().find(|r| r.id == id).unwrap();
        assert_eq!(result.outcome, Outcome::Fail, "{id}");
        assert!(result.critical, "{id}");
        assert_eq!(result.checked, format!("{id} (no cluster, no address)"));
        assert_eq!(
            result.found,
            format!("{id} is switched on, but there is no cluster to reach it through and no address for it")
        );
        assert_eq!(result.remediation.as_deref(), Some("start the environment, or give its address"));
        // The actions are values the caller words (issue 11: the library named the CLI's commands).
        assert_eq!(result.next, [Next::Up, Next::Address { component: id.into() }]);
    }
    for id in ["nats", "temporal", "vault"] {
        let result = report.results.iter().find(|r| r.id == id).unwrap();
        assert_eq!(result.outcome, Outcome::Skipped, "{id}");
    }
}

#[test]
fn a_component_with_an_address_is_probed_there_without_a_cluster() {
    let loaded = demo();
    let endpoints =
        Endpoints::Addresses { postgres: None, redis: Some("127.0.0.1:6379".into()), nats: None, temporal: None };
    let probes = derive_without_cluster(&loaded, endpoints);
    let target = |id: &str| probes.iter().find(|p| p.id() == id).map(Probe::target).unwrap();
    assert_eq!(target("redis"), "redis at 127.0.0.1:6379");
    assert_eq!(target("postgres"), "postgres (no cluster, no address)");
}
