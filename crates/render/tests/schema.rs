//! The JSON Schema of `kind-parity.yaml`: the committed `schema/kind-parity.schema.json` is the
//! model's, the demo and every test config pass it and load, and it refuses what the loader
//! refuses for shape (unknown keys, wrong types, unknown values).

mod common;

use std::path::{Path, PathBuf};

use kind_parity_render::{LoadOptions, json_schema, load};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn committed_schema_path() -> PathBuf {
    repo().join("schema/kind-parity.schema.json")
}

/// The demo and the test configs: the committed files a team's editor would check.
fn configs() -> Vec<PathBuf> {
    let mut configs = vec![repo().join("examples/demo/kind-parity.yaml")];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/configs exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty(), "no test configs in {}", dir.display());
    configs.extend(fixtures);
    configs
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&json_schema()).expect("the generated schema compiles")
}

fn errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let instance: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("the config is YAML");
    validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[test]
fn the_committed_schema_is_the_models() {
    let committed = std::fs::read_to_string(committed_schema_path()).expect("schema/kind-parity.schema.json exists");
    let generated = format!("{}\n", serde_json::to_string_pretty(&json_schema()).unwrap());
    assert!(
        committed == generated,
        "schema/kind-parity.schema.json is stale: run `cargo run -p kind-parity -- schema > schema/kind-parity.schema.json`"
    );
}

#[test]
fn the_demo_and_every_test_config_pass_the_schema_and_load() {
    let validator = validator();
    for path in configs() {
        let text = std::fs::read_to_string(&path).unwrap();
        let errors = errors(&validator, &text);
        assert!(errors.is_empty(), "{}:\n{}", path.display(), errors.join("\n"));
        let dir = path.parent().unwrap().to_path_buf();
        let options = LoadOptions { config: Some(path.clone()), dir, ..Default::default() };
        if let Err(e) = load(&options) {
            panic!("{} passes the schema but does not load: {e}", path.display());
        }
    }
}

#[test]
fn each_config_names_the_committed_schema_for_editors() {
    for path in configs() {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{} does not start with the yaml-language-server line", path.display()));
        let resolved = path.parent().unwrap().join(target);
        assert_eq!(
            std::fs::canonicalize(&resolved).ok(),
            std::fs::canonicalize(committed_schema_path()).ok(),
            "{}: {target} is not schema/kind-parity.schema.json",
            path.display()
        );
    }
}

#[test]
fn the_schema_refuses_what_the_loader_refuses_for_shape() {
    let validator = validator();
    for (yaml, why) in [
        ("services: {api: {imgae: x:1}}", "an unknown key"),
        ("ports: {https: 70000}", "a port out of range"),
        ("services: {api: {compose: {runs: vm}}}", "an unknown place to run"),
        ("services: {api: {replicas: two}}", "a string for a number"),
        ("ingress: {controller: haproxy}", "an unknown controller"),
        ("services: {api: {resources: {cpu: [1]}}}", "a list for a quantity"),
        ("services: {api: {ports: {dns: {port: 53, protocol: udp}}}}", "a protocol not spelt as Kubernetes does"),
        ("services: {api: {ports: {http: {compose_port: 80}}}}", "a named port without its port"),
        ("services: {api: {ports: {http: http}}}", "a port that is no number"),
    ] {
        assert!(!errors(&validator, yaml).is_empty(), "{why} passed: {yaml}");
    }
    // Quantities may be numbers, as Kubernetes takes them.
    assert_eq!(errors(&validator, "services: {api: {resources: {cpu: 1, memory: 1e9}}}"), Vec::<String>::new());
    // A named port is a number or its long form.
    assert_eq!(
        errors(&validator, "services: {api: {ports: {http: 80, dns: {port: 53, protocol: UDP}}}}"),
        Vec::<String>::new()
    );
}
