//! Compose mode: references resolved per consumer (a container on the compose network, a
//! process on the host), the env files read back by compose's own dotenv parser, and the
//! rendered `compose.yaml` checked against the compose-spec schema and by real compose
//! implementations where they exist here (compose-go's loader, which `docker compose config`
//! runs, built with Go; `docker-compose config`).

#![allow(clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{demo_dir, load_demo, render_loaded, secrets_for};
use kind_parity_render::Plan;

fn plan_of(overrides: &[(&str, &str)]) -> (Plan, kind_parity_render::Secrets) {
    let loaded = load_demo(overrides);
    let secrets = secrets_for(&loaded);
    (render_loaded(&loaded, &secrets), secrets)
}

#[test]
fn a_service_in_a_container_reaches_the_platform_by_compose_service_name() {
    // Regression (issue 13): every reference resolved to localhost, unreachable from a container.
    let (plan, secrets) = plan_of(&[]);
    let api = &plan.compose_service_env["api"];
    let password = secrets.get("postgres-app-password").unwrap();
    let redis = secrets.get("redis-password").unwrap();
    assert!(api.contains(&format!("DATABASE_URL=postgres://app:{password}@postgres:5432/app\n")), "{api}");
    assert!(api.contains(&format!("REDIS_URL=redis://default:{redis}@redis:6379\n")), "{api}");
    // Browser-facing values stay the browser's URLs.
    assert!(api.contains("OIDC_ISSUER=http://localhost:8081/realms/dev\n"), "{api}");
    assert!(api.contains("WEB_ORIGIN=http://localhost:3000\n"), "{api}");
}

#[test]
fn a_service_on_the_host_reaches_the_platform_on_published_ports() {
    let (plan, secrets) = plan_of(&[("services.api.compose.runs", "host"), ("postgres.compose_port", "15432")]);
    let api = &plan.compose_service_env["api"];
    let password = secrets.get("postgres-app-password").unwrap();
    assert!(api.contains(&format!("DATABASE_URL=postgres://app:{password}@localhost:15432/app\n")), "{api}");
    assert!(
        !plan.compose_file.contains("\n  api:\n"),
        "a host process is not a compose service:\n{}",
        plan.compose_file
    );
}

#[test]
fn internal_urls_follow_where_both_ends_run() {
    let internal = [("services.web.env.API_INTERNAL", "'{{ service.api.internal_url }}'")];
    let (plan, _) = plan_of(&internal);
    assert!(plan.compose_service_env["web"].contains("API_INTERNAL=http://api:8080\n"));

    let (plan, _) =
        plan_of(&[internal[0], ("services.api.compose.runs", "host"), ("services.api.compose.port", "9090")]);
    assert!(plan.compose_service_env["web"].contains("API_INTERNAL=http://host.docker.internal:9090\n"));
    assert!(plan.compose_file.contains("host.docker.internal:host-gateway"), "{}", plan.compose_file);

    let (plan, _) = plan_of(&[internal[0], ("services.web.compose.runs", "host")]);
    assert!(plan.compose_service_env["web"].contains("API_INTERNAL=http://localhost:8080\n"));
}

#[test]
fn drift_reports_no_difference_for_either_place_a_service_runs() {
    for runs in ["container", "host"] {
        let loaded = load_demo(&[("services.api.compose.runs", runs), ("services.web.compose.runs", runs)]);
        let report = kind_parity_render::drift(&loaded.config).unwrap();
        assert!(report.is_empty(), "runs: {runs}\n{report}");
    }
    // A real difference is still reported.
    let loaded = load_demo(&[("services.api.compose.env.OIDC_ISSUER", "http://localhost:8081/auth/realms/dev")]);
    assert!(!kind_parity_render::drift(&loaded.config).unwrap().is_empty());
}

/// Values that need each of the env file's quoting rules.
const AWKWARD: &[(&str, &str)] = &[
    ("APOSTROPHE", "it's"),
    ("DOLLAR", "pa$$word and $HOME"),
    ("HASH", "a #comment"),
    ("QUOTES", r#"say "hi" it's"#),
    ("BACKSLASH_END", r"C:\dir\"),
    ("BACKSLASHES", r"a\nb\\c\'d"),
    ("NEWLINE", "line one\nline two"),
    ("EMPTY", ""),
    ("BRACES", "{{ .Name }}"),
];

fn awkward_overrides() -> Vec<(String, String)> {
    // `--set` values are YAML scalars: each is written as a JSON string, which YAML reads as is.
    AWKWARD
        .iter()
        .map(|(k, v)| {
            (format!("services.web.env.{k}"), serde_json::to_string(&v.replace("{{", "{{ \"{{\" }}")).unwrap())
        })
        .collect()
}

#[test]
fn an_apostrophe_is_written_so_that_compose_reads_it_back() {
    // Regression (issue 13): `'it'\''s'` (the shell's way) ends at compose's second quote.
    let overrides = awkward_overrides();
    let refs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (plan, _) = plan_of(&refs);
    let web = &plan.compose_service_env["web"];
    assert!(web.contains("APOSTROPHE=\"it's\"\n"), "{web}");
    assert!(!web.contains(r"'\''"), "{web}");
}

/// The compose-go checker (tests/compose-go): compose-go v2.9.1's dotenv parser and project
/// loader, the code `docker compose` runs. `None` (with a loud line) where Go is missing.
fn compose_go() -> Option<PathBuf> {
    let Ok(go) = which::which("go") else {
        skip("go is not installed: compose-go's parser and loader are not run", true);
        return None;
    };
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose-go");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kp-compose-go");
        let status = Command::new(go)
            .args(["build", "-mod=mod", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .output()
            .map_err(|e| e.to_string())?;
        if status.status.success() { Ok(out) } else { Err(String::from_utf8_lossy(&status.stderr).into_owned()) }
    });
    match built {
        Ok(path) => Some(path.clone()),
        Err(e) => panic!("building the compose-go checker failed:\n{e}"),
    }
}

/// A loud skip; under `CI=true` a failure when the tool is `required_in_ci`.
fn skip(why: &str, required_in_ci: bool) {
    assert!(!required_in_ci || std::env::var("CI").as_deref() != Ok("true"), "CI: {why}");
    eprintln!("SKIP: {why}");
}

fn write_plan(plan: &Plan) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in plan.files() {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[test]
fn compose_reads_every_env_value_back_exactly() {
    let Some(checker) = compose_go() else { return };
    let overrides = awkward_overrides();
    let refs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (plan, _) = plan_of(&refs);
    let dir = write_plan(&plan);
    let out = Command::new(checker).arg("dotenv").arg(dir.path().join("compose/web.env")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    for (key, value) in AWKWARD {
        assert_eq!(read.get(*key).map(String::as_str), Some(*value), "{key} in\n{}", plan.compose_service_env["web"]);
    }
}

fn compose_value(plan: &Plan) -> serde_json::Value {
    serde_yaml_ng::from_str(&plan.compose_file).expect("compose.yaml is YAML")
}

#[test]
fn the_compose_file_is_valid_by_the_compose_spec_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("compose-spec/compose-spec.json")).expect("the vendored schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for overrides in [
        vec![],
        vec![("nats.enabled", "true"), ("nats.auth", "true"), ("temporal.enabled", "true"), ("vault.enabled", "true")],
        vec![("services.api.compose.runs", "host"), ("services.web.env.API", "'{{ service.api.internal_url }}'")],
    ] {
        let (plan, _) = plan_of(&overrides);
        let errors: Vec<String> =
            validator.iter_errors(&compose_value(&plan)).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{overrides:?}:\n{}\n{}", errors.join("\n"), plan.compose_file);
    }
}

#[test]
fn waits_for_health_and_for_the_init_job() {
    let (plan, _) = plan_of(&[]);
    let file = compose_value(&plan);
    let services = &file["services"];
    assert_eq!(services["keycloak"]["depends_on"]["postgres-init"]["condition"], "service_completed_successfully");
    assert_eq!(services["postgres-init"]["depends_on"]["postgres"]["condition"], "service_healthy");
    assert_eq!(services["api"]["depends_on"]["postgres-init"]["condition"], "service_completed_successfully");
    assert_eq!(services["api"]["depends_on"]["keycloak"]["condition"], "service_healthy");
    assert_eq!(services["api"]["ports"][0], "127.0.0.1:8080:8080");
    assert_eq!(services["web"]["ports"][0], "127.0.0.1:3000:8080");
    assert_eq!(services["postgres"]["image"], "docker.io/library/postgres:17.6");
    // No secret in the file itself: they are in the env files.
    let secrets = secrets_for(&load_demo(&[]));
    for name in ["postgres-superuser-password", "redis-password", "keycloak-admin-password"] {
        assert!(!plan.compose_file.contains(secrets.get(name).unwrap()), "{name} in compose.yaml");
    }
}

#[test]
fn compose_file_snapshot() {
    let (plan, _) = plan_of(&[("nats.enabled", "true"), ("nats.auth", "true"), ("vault.enabled", "true")]);
    let demo = std::path::absolute(demo_dir()).unwrap().display().to_string();
    let mut files = format!("=== compose.yaml\n{}", plan.compose_file.replace(&demo, "[DEMO]"));
    files.push_str(&format!("=== compose/nats.conf\n{}", plan.compose_component_files["compose/nats.conf"]));
    insta::assert_snapshot!(files);
}

#[test]
fn compose_go_loads_the_rendered_project() {
    let Some(checker) = compose_go() else { return };
    let (plan, _) = plan_of(&[("nats.enabled", "true"), ("temporal.enabled", "true"), ("vault.enabled", "true")]);
    let dir = write_plan(&plan);
    let out = Command::new(checker)
        .arg("config")
        .arg(dir.path().join("compose.yaml"))
        .arg(dir.path().join("compose.env"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), plan.compose_file);
    let loaded: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    // The loader resolved the env files: the api's environment is the one kind-parity rendered.
    assert_eq!(loaded["services"]["api"]["environment"]["LOG_LEVEL"], "info");
}

#[test]
fn compose_go_loads_several_named_ports_and_a_udp_one() {
    let Some(checker) = compose_go() else { return };
    let loaded = common::load_config("ports", &[]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("compose-spec/compose-spec.json")).expect("the vendored schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(&compose_value(&plan)).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{}\n{}", errors.join("\n"), plan.compose_file);
    let dir = write_plan(&plan);
    let out = Command::new(checker)
        .arg("config")
        .arg(dir.path().join("compose.yaml"))
        .arg(dir.path().join("compose.env"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), plan.compose_file);
    let loaded: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    // compose-go's reading of the short syntax: each port with its protocol and host port.
    let ports: Vec<(String, String, String)> = loaded["services"]["gateway"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let text = |k: &str| p[k].as_str().map(str::to_owned).unwrap_or_else(|| p[k].to_string());
            (text("target"), text("published"), text("protocol"))
        })
        .collect();
    let expected =
        [("8080", "8080", "tcp"), ("9090", "19090", "tcp"), ("9901", "9901", "tcp"), ("5353", "5353", "udp")];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect();
    assert_eq!(ports, expected, "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn compose_go_loads_bind_mounted_files() {
    let Some(checker) = compose_go() else { return };
    let loaded = common::load_config("files", &[]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("compose-spec/compose-spec.json")).expect("the vendored schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(&compose_value(&plan)).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{}\n{}", errors.join("\n"), plan.compose_file);
    let dir = write_plan(&plan);
    let out = Command::new(checker)
        .arg("config")
        .arg(dir.path().join("compose.yaml"))
        .arg(dir.path().join("compose.env"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), plan.compose_file);
    let loaded: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    // compose-go's reading: each a read-only bind of the file the render names.
    let volumes = loaded["services"]["web"]["volumes"].as_array().unwrap();
    let binds: Vec<(&str, &str, &str, bool)> = volumes
        .iter()
        .map(|v| {
            (
                v["type"].as_str().unwrap(),
                v["source"].as_str().unwrap(),
                v["target"].as_str().unwrap(),
                v["read_only"] == true,
            )
        })
        .collect();
    let secret = dir.path().join("compose/files/web/2-signing-key");
    assert_eq!(binds[2], ("bind", secret.to_str().unwrap(), "/run/secrets/signing-key", true), "{binds:?}");
    assert!(
        binds.iter().all(|(kind, source, _, ro)| *kind == "bind" && Path::new(source).exists() && *ro),
        "{binds:?}"
    );
}

#[test]
fn docker_compose_accepts_the_rendered_project() {
    let Ok(binary) = which::which("docker-compose") else {
        // Optional everywhere: compose-go above is the implementation `docker compose` runs.
        skip("docker-compose is not installed (apt-get install docker-compose): its `config` is not run", false);
        return;
    };
    let (plan, _) = plan_of(&[]);
    let dir = write_plan(&plan);
    let out = Command::new(binary)
        .arg("--project-directory")
        .arg(dir.path())
        .arg("-f")
        .arg(dir.path().join("compose.yaml"))
        .arg("--env-file")
        .arg(dir.path().join("compose.env"))
        .args(["config", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), plan.compose_file);
}
