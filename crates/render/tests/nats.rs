//! The rendered NATS config against the test bed's real `nats-server`: the generated password,
//! read from the environment as the pod reads it, parses.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kind_parity_render::{Plan, Secrets};
use rand::SeedableRng;

/// The `nats.conf` of the rendered ConfigMap.
fn nats_conf(plan: &Plan) -> String {
    let nats = plan.manifests.iter().find(|m| m.component == "nats").expect("nats is rendered");
    let config_map: serde_json::Value =
        serde::Deserialize::deserialize(serde_yaml_ng::Deserializer::from_str(&nats.content).next().unwrap()).unwrap();
    config_map["data"]["nats.conf"].as_str().unwrap().to_owned()
}

/// `nats-server -t`: parses the config (its `$NATS_PASSWORD` from the environment) and exits.
fn server_accepts(server: &Path, conf: &str, password: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nats.conf");
    std::fs::write(&file, conf).unwrap();
    let out = Command::new(server).arg("-c").arg(&file).arg("-t").env("NATS_PASSWORD", password).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn a_stored_password_nats_cannot_parse_is_replaced_on_the_next_up() {
    // Regression (issue 10 #4): nats-server re-parses an env value as a config value
    // (conf/parse.go) and lexes one that begins with digits as a number (conf/lex.go): about 1 in
    // 150 generated passwords stopped the server, and the environment stayed broken.
    let test = "a_stored_password_nats_cannot_parse_is_replaced_on_the_next_up";
    let Some(server) = kind_parity_testkit::require_program("nats-server", test) else { return };
    let loaded = load_demo(&[("nats.enabled", "true"), ("nats.auth", "true")]);
    let mut secrets: Secrets = secrets_for(&loaded);
    let broken = "3K9rTq2ZbW8mNcV4xYpL6sDfGhJkA1eU";
    secrets.values.insert("nats-password".into(), broken.into());
    let conf = nats_conf(&render_loaded(&loaded, &secrets));
    let refused = server_accepts(&server, &conf, broken).expect_err("the real server refuses a digit-first password");
    assert!(refused.contains("NATS_PASSWORD"), "{refused}");

    // The next `up` ensures the secrets again: the stored value is replaced, and the server
    // reads the new one as the same string.
    let now = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    let changes = secrets.ensure(&loaded.config, &mut rand::rngs::StdRng::seed_from_u64(7), now).unwrap();
    assert_eq!(changes.replaced.len(), 1, "{changes:?}");
    let password = secrets.get("nats-password").unwrap().to_owned();
    assert_ne!(password, broken);
    let conf = nats_conf(&render_loaded(&loaded, &secrets));
    server_accepts(&server, &conf, &password).unwrap_or_else(|e| panic!("nats-server refused {password}: {e}"));
}

#[test]
fn generated_passwords_parse_in_the_real_server() {
    let test = "generated_passwords_parse_in_the_real_server";
    let Some(server) = kind_parity_testkit::require_program("nats-server", test) else { return };
    let loaded = load_demo(&[("nats.enabled", "true"), ("nats.auth", "true")]);
    let mut secrets = secrets_for(&loaded);
    // The password reaches the server only through the environment: one config serves all.
    let conf = nats_conf(&render_loaded(&loaded, &secrets));
    let now = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    // A sample: the unit test in secrets.rs checks 20,000 values against the lexer's rule.
    for seed in 0..100 {
        secrets.values.remove("nats-password");
        secrets.ensure(&loaded.config, &mut rand::rngs::StdRng::seed_from_u64(seed), now).unwrap();
        let password = secrets.get("nats-password").unwrap();
        server_accepts(&server, &conf, password).unwrap_or_else(|e| panic!("seed {seed}: {password}: {e}"));
    }
}
