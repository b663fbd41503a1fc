//! The `contract.drift` probe on the demo config: per-mode overrides are declared differences,
//! which pass and are listed, on one readable line.

use std::path::Path;

use kind_parity_probes::Check;
use kind_parity_probes::cluster::NoDrift;
use kind_parity_render::{LoadOptions, Override};

fn demo(overrides: &[(&str, &str)]) -> kind_parity_render::Config {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let options = LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo,
        env: vec![],
        overrides: overrides
            .iter()
            .map(|(p, v)| Override { flag: "--set".into(), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    kind_parity_render::load(&options).expect("demo loads").config
}

#[tokio::test]
async fn declared_differences_pass_and_are_listed_on_one_line() {
    // Regression: any compose.env/kind.env override failed the gate, so every such `up` ended
    // "up, but the parity check failed", with the report's lines joined into `api:;   …;     compose: 2`.
    let config = demo(&[
        ("services.api.compose.env.WORKER_CONCURRENCY", "\"2\""),
        ("services.api.kind.env.WORKER_CONCURRENCY", "\"8\""),
        ("services.web.kind.env.FEATURE_X", "on"),
    ]);
    let found = NoDrift::new(config).run().await.expect("declared differences pass");
    assert_eq!(
        found,
        "2 services mean the same in both modes, apart from 2 declared difference(s): \
         api.WORKER_CONCURRENCY: compose `2`, kind `8`; web.FEATURE_X: set in kind only"
    );
}

#[tokio::test]
async fn without_overrides_the_demo_has_no_difference_at_all() {
    let found = NoDrift::new(demo(&[])).run().await.expect("no drift");
    assert_eq!(found, "2 services mean the same in both modes");
}
