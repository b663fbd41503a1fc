//! `kind-parity init`: the starter config it writes for a repository, which the project's own
//! loader accepts, and the file it never replaces unasked.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use kind_parity_render::{Config, LoadOptions};

/// The binary, run in `dir` with no inherited `KIND_PARITY_*` config variables.
fn kind_parity(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("KIND_PARITY_") || key.starts_with("COMPOSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `files` (path, content) written under a new folder.
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// The config in `dir`, through the loader every command uses; panics with its diagnostics.
fn load(dir: &Path) -> Config {
    let options = LoadOptions { config: None, dir: dir.to_path_buf(), env: Vec::new(), overrides: Vec::new() };
    match kind_parity_render::load(&options) {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("{error}\n---\n{}", fs::read_to_string(dir.join("kind-parity.yaml")).unwrap()),
    }
}

#[test]
fn a_service_is_proposed_per_dockerfile_in_the_top_folders() {
    let repo = repository(&[
        ("api/Dockerfile", "FROM python:3.13-slim\nEXPOSE 3000\n"),
        ("services/worker/Containerfile", "FROM alpine:3.22\n"),
        ("node_modules/pkg/Dockerfile", "FROM scratch\n"),
        (".devcontainer/Dockerfile", "FROM scratch\n"),
    ]);
    kind_parity(repo.path()).arg("init").assert().success();
    let config = load(repo.path());
    let services: Vec<&str> = config.services.keys().map(String::as_str).collect();
    assert_eq!(services, ["api", "worker"]);
    assert_eq!(config.services["api"].build.as_ref().unwrap().context, Path::new("api"));
    assert_eq!(
        config.services["worker"].build.as_ref().unwrap().dockerfile.as_deref(),
        Some(Path::new("Containerfile"))
    );
}

#[test]
fn a_services_port_is_its_dockerfiles_expose() {
    let repo = repository(&[("api/Dockerfile", "FROM python:3.13-slim\nEXPOSE 3000/tcp 9090\n")]);
    kind_parity(repo.path()).arg("init").assert().success();
    assert_eq!(load(repo.path()).services["api"].port, Some(3000));
}

#[test]
fn services_on_one_container_port_get_their_own_compose_ports() {
    let repo = repository(&[("api/Dockerfile", "FROM alpine:3.22\n"), ("web/Dockerfile", "FROM alpine:3.22\n")]);
    kind_parity(repo.path()).arg("init").assert().success();
    let config = load(repo.path());
    assert_eq!(config.services["api"].compose_port(), Some(8080));
    assert_eq!(config.services["web"].compose_port(), Some(8082));
}

#[test]
fn a_dockerfile_at_the_root_is_a_service_named_after_the_repository() {
    let repo = repository(&[("Dockerfile", "FROM alpine:3.22\n")]);
    let config = load_after_init(repo.path(), &["--name", "shop"]);
    assert_eq!(config.services.keys().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(config.services["shop"].build.as_ref().unwrap().context, Path::new("."));
}

#[test]
fn a_repository_without_dockerfiles_gets_a_starter_that_loads() {
    let repo = repository(&[("README.md", "# empty\n")]);
    let config = load_after_init(repo.path(), &[]);
    assert!(config.services.is_empty());
    assert!(config.postgres.enabled && config.redis.enabled && !config.keycloak.enabled);
}

#[test]
fn the_first_line_points_editors_at_the_schema() {
    let repo = repository(&[]);
    kind_parity(repo.path()).arg("init").assert().success();
    let text = fs::read_to_string(repo.path().join("kind-parity.yaml")).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first, format!("# yaml-language-server: $schema={}", kind_parity_lifecycle::init::SCHEMA_URL));
    // The URL names the committed schema, which `kind-parity schema` prints (tests/schema.rs).
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/kind-parity.schema.json");
    assert!(first.ends_with("/schema/kind-parity.schema.json") && committed.is_file());
}

#[test]
fn an_existing_config_is_kept_without_force() {
    let repo = repository(&[("kind-parity.yaml", "name: mine\n")]);
    kind_parity(repo.path())
        .arg("init")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("kind-parity.yaml exists").and(predicates::str::contains("--force")));
    assert_eq!(fs::read_to_string(repo.path().join("kind-parity.yaml")).unwrap(), "name: mine\n");
}

#[test]
fn force_replaces_an_existing_config() {
    let repo = repository(&[("kind-parity.yaml", "name: mine\n"), ("api/Dockerfile", "FROM alpine:3.22\n")]);
    kind_parity(repo.path()).args(["init", "--force"]).assert().success();
    assert!(load(repo.path()).services.contains_key("api"));
}

#[test]
fn json_output_lists_what_was_written() {
    let repo = repository(&[("api/Dockerfile", "FROM alpine:3.22\n")]);
    let output = kind_parity(repo.path()).args(["--output", "json", "init"]).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    assert_eq!(report["services"], serde_json::json!(["api"]));
    assert_eq!(report["replaced"], serde_json::json!(false));
}

#[test]
fn the_starter_is_valid_by_the_schema_it_names() {
    let repo =
        repository(&[("api/Dockerfile", "FROM alpine:3.22\nEXPOSE 3000\n"), ("web/Dockerfile", "FROM alpine:3.22\n")]);
    kind_parity(repo.path()).arg("init").assert().success();
    let text = fs::read_to_string(repo.path().join("kind-parity.yaml")).unwrap();
    let validator = jsonschema::validator_for(&kind_parity_render::json_schema()).unwrap();
    let instance: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn load_after_init(dir: &Path, args: &[&str]) -> Config {
    kind_parity(dir).args(args).arg("init").assert().success();
    load(dir)
}

use predicates::prelude::PredicateBooleanExt as _;
