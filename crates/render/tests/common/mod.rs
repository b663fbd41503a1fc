//! Shared helpers of the render tests: a loaded demo config, fixed secrets, a render.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kind_parity_render::{ImageRefs, LoadOptions, Loaded, Override, Plan, Secrets, Templates, load, render};
use rand::SeedableRng;

/// The repository's examples/demo folder.
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo")
}

/// Loads the demo stack from disk with `--set` overrides and no environment variables.
pub fn load_demo(overrides: &[(&str, &str)]) -> Loaded {
    let options = LoadOptions {
        config: Some(demo_dir().join("kind-parity.yaml")),
        dir: demo_dir(),
        env: vec![],
        overrides: overrides
            .iter()
            .map(|(p, v)| Override { flag: format!("--set {p}={v}"), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    load(&options).unwrap_or_else(|e| panic!("demo loads: {e}"))
}

/// Loads the test config `tests/configs/<name>.yaml` with `--set` overrides.
pub fn load_config(name: &str, overrides: &[(&str, &str)]) -> Loaded {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let options = LoadOptions {
        config: Some(dir.join(format!("{name}.yaml"))),
        dir,
        env: vec![],
        overrides: overrides
            .iter()
            .map(|(p, v)| Override { flag: format!("--set {p}={v}"), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    load(&options).unwrap_or_else(|e| panic!("tests/configs/{name}.yaml loads: {e}"))
}

/// Secrets made from a fixed seed and a fixed clock, so snapshots are stable across runs.
/// Certificates still differ per run (the key generator is not seedable), so snapshot tests
/// replace them with `fixed_tls`.
pub fn secrets_for(loaded: &Loaded) -> Secrets {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let now = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    let mut secrets = Secrets::default();
    secrets.ensure(&loaded.config, &mut rng, now).expect("secrets");
    secrets
}

/// Replaces the certificate material with fixed text, for snapshots.
pub fn fixed_tls(secrets: &mut Secrets) {
    let tls = secrets.tls.as_mut().expect("tls");
    tls.ca_cert = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into();
    tls.cert = "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n".into();
    tls.key = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".into();
}

/// Renders a loaded config with the embedded templates.
pub fn render_loaded(loaded: &Loaded, secrets: &Secrets) -> Plan {
    let images = ImageRefs::from_config(&loaded.config);
    render(&loaded.config, &loaded.inputs, secrets, &images, &Templates::embedded().expect("templates"))
        .expect("render")
}

/// All files of a plan concatenated with headers, for one snapshot. Mozilla's roots in the CA
/// bundle (about 200 KB, from webpki-root-certs) show as one line, the demo folder's absolute
/// path (in compose.yaml) as `[DEMO]`.
pub fn plan_text(plan: &Plan) -> String {
    let roots: String = kind_parity_render::public_roots_pem().lines().map(|l| format!("    {l}\n")).collect();
    let demo = std::path::absolute(demo_dir()).expect("an absolute path").display().to_string();
    plan.files()
        .into_iter()
        .map(|(path, content)| {
            format!(
                "=== {path}\n{}",
                content.replace(&roots, "    (Mozilla's root certificates)\n").replace(&demo, "[DEMO]")
            )
        })
        .collect()
}
