//! `kind-parity init --from-compose`: real compose projects of different shapes (tests/fixtures/
//! compose/), imported into a config that the project's own loader accepts.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kind_parity_lifecycle::init::{InitOptions, InitReport, init};
use kind_parity_render::{Config, LoadOptions};

fn fixture(project: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose").join(project)
}

/// What importing `files` of the fixture `project` wrote (in a new folder), loaded.
struct Imported {
    config: Config,
    report: InitReport,
    text: String,
    _dir: tempfile::TempDir,
}

fn import(project: &str, files: &[&str], profiles: &[&str], env: &[(&str, &str)]) -> Imported {
    let dir = tempfile::tempdir().unwrap();
    let options = InitOptions {
        dir: dir.path().to_path_buf(),
        name: Some("imported".into()),
        compose_files: files.iter().map(|f| fixture(project).join(f)).collect(),
        profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..InitOptions::default()
    };
    let report = init(&options).unwrap();
    let text = fs::read_to_string(&report.path).unwrap();
    let load = LoadOptions { config: None, dir: dir.path().to_path_buf(), env: Vec::new(), overrides: Vec::new() };
    let config = match kind_parity_render::load(&load) {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("{error}\n---\n{text}"),
    };
    Imported { config, report, text, _dir: dir }
}

fn webapp() -> Imported {
    import("webapp", &["compose.yaml"], &[], &[])
}

fn has_note(imported: &Imported, what: &str, why: &str) -> bool {
    imported.report.unmapped.iter().any(|u| u.what.ends_with(what) && u.why.contains(why))
}

#[test]
fn built_services_keep_their_contexts_and_build_args() {
    let imported = webapp();
    let web = imported.config.services["web"].build.as_ref().unwrap();
    assert!(imported.config.services["api"].build.as_ref().unwrap().context.ends_with("webapp/api"));
    assert!(web.context.ends_with("webapp/web"));
    assert_eq!(web.args["NODE_ENV"], "development");
}

#[test]
fn published_ports_become_the_services_port() {
    let imported = webapp();
    assert_eq!(imported.config.services["api"].port, Some(8000));
    assert_eq!(imported.config.services["api"].compose_port(), Some(8000));
}

#[test]
fn database_and_cache_containers_become_the_platform_components() {
    let imported = webapp();
    assert_eq!(imported.report.components, ["postgres", "redis"]);
    assert!(!imported.config.services.contains_key("db") && !imported.config.services.contains_key("cache"));
    assert_eq!(imported.config.postgres.image, "docker.io/library/postgres:16-alpine");
    assert_eq!(imported.config.postgres.compose_port, 5433);
    assert!(!imported.config.keycloak.enabled);
}

#[test]
fn postgres_env_declares_the_database_and_its_owner() {
    let imported = webapp();
    assert!(imported.config.postgres.databases.contains_key("app"));
    assert!(has_note(&imported, "db.environment.POSTGRES_PASSWORD", "generated per environment"));
}

#[test]
fn urls_of_the_platform_containers_become_references() {
    let env = &webapp().config.services["api"].env;
    assert_eq!(env["DATABASE_URL"], r#"{{ postgres.url "app" }}"#);
    assert_eq!(env["REDIS_URL"], "{{ redis.url }}");
    assert_eq!(env["DB_PASSWORD"], r#"{{ postgres.password "app" }}"#);
}

#[test]
fn a_url_of_another_service_becomes_its_internal_url() {
    assert_eq!(webapp().config.services["web"].env["API_URL"], "{{ service.api.internal_url }}");
}

#[test]
fn env_files_are_read_under_the_environment() {
    let env = &webapp().config.services["api"].env;
    assert_eq!(env["LOG_LEVEL"], "debug");
    assert_eq!(env["FEATURE_FLAGS"], "search,export");
}

#[test]
fn depends_on_names_the_components_for_their_containers() {
    assert_eq!(webapp().config.services["api"].depends_on, ["postgres", "redis"]);
}

#[test]
fn a_curl_healthcheck_on_the_services_port_is_its_health_path() {
    assert_eq!(webapp().config.services["api"].health_path.as_deref(), Some("/healthz"));
}

#[test]
fn a_command_string_is_split_into_arguments() {
    assert_eq!(webapp().config.services["web"].args, ["npm", "run", "start", "--", "--port", "3000"]);
}

#[test]
fn what_has_no_equivalent_is_reported_with_the_reason() {
    let imported = webapp();
    assert!(has_note(&imported, "api.volumes[0]", "bind mount"));
    assert!(has_note(&imported, "api.restart", "restarts containers itself"));
    assert!(has_note(&imported, "api.healthcheck", "interval, retries are not imported"));
    // The file says it too, as comments above the config.
    assert!(imported.text.contains("#   ") && imported.text.contains("api.volumes[0]: a bind mount"));
}

#[test]
fn the_imported_config_is_valid_by_the_schema_it_names() {
    for imported in [
        webapp(),
        import("auth-events", &["compose.yaml"], &[], &[]),
        import("layered", &["compose.yaml"], &["debug"], &[]),
    ] {
        let validator = jsonschema::validator_for(&kind_parity_render::json_schema()).unwrap();
        let instance: serde_json::Value = serde_yaml_ng::from_str(&imported.text).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:?}\n{}", imported.text);
    }
}

#[test]
fn keycloak_and_nats_containers_become_the_components() {
    let imported = import("auth-events", &["compose.yaml"], &[], &[]);
    let config = &imported.config;
    assert!(config.keycloak.enabled && config.nats.enabled && config.nats.jetstream);
    assert_eq!(config.keycloak.compose_port, 8081);
    assert_eq!(config.services.keys().collect::<Vec<_>>(), ["events"]);
}

#[test]
fn keycloaks_import_volume_is_the_realm_file() {
    let config = import("auth-events", &["compose.yaml"], &[], &[]).config;
    assert!(config.keycloak.realm_file.unwrap().ends_with("realm/shop.json"));
    assert_eq!(config.keycloak.realm, "shop");
}

#[test]
fn keycloak_brings_postgres_for_its_data() {
    let imported = import("auth-events", &["compose.yaml"], &[], &[]);
    assert!(imported.config.postgres.enabled);
    assert!(has_note(&imported, "postgres", "keeps its data in the platform's postgres"));
}

#[test]
fn issuer_and_nats_urls_become_references() {
    let env = &import("auth-events", &["compose.yaml"], &[], &[]).config.services["events"].env;
    assert_eq!(env["OIDC_ISSUER"], "{{ keycloak.issuer }}");
    assert_eq!(env["NATS_URL"], "{{ nats.url }}");
    assert_eq!(env["WORKERS"], "4");
}

#[test]
fn a_healthcheck_command_is_the_readiness_command() {
    let config = import("auth-events", &["compose.yaml"], &[], &[]).config;
    assert_eq!(config.services["events"].readiness_command, ["/bin/events-worker", "health"]);
}

#[test]
fn extends_in_the_same_file_inherits_the_base() {
    let api = &import("layered", &["compose.yaml"], &[], &[]).config.services["api"];
    assert_eq!(api.image.as_deref(), Some("ghcr.io/acme/api:1.4.0"));
    assert_eq!(api.env["TZ"], "UTC");
    assert_eq!(api.health_path.as_deref(), Some("/ready"));
}

#[test]
fn extends_of_another_file_keeps_that_files_relative_paths() {
    let worker = &import("layered", &["compose.yaml"], &[], &[]).config.services["worker"];
    let build = worker.build.as_ref().unwrap();
    assert!(build.context.ends_with("layered/worker"), "{}", build.context.display());
    assert_eq!(build.dockerfile.as_deref(), Some(Path::new("Dockerfile.worker")));
    assert_eq!(worker.args, ["python", "-m", "worker"]);
}

#[test]
fn interpolation_reads_dot_env_and_defaults() {
    let imported = import("layered", &["compose.yaml"], &[], &[]);
    let api = &imported.config.services["api"];
    assert_eq!(api.env["LOG_LEVEL"], "debug");
    assert_eq!(api.compose_port(), Some(9100));
    assert_eq!(imported.config.services["worker"].env["QUEUE"], "jobs");
    assert_eq!(api.env["PRICE"], "$5");
}

#[test]
fn the_callers_environment_wins_over_dot_env() {
    let imported = import("layered", &["compose.yaml"], &[], &[("LOG_LEVEL", "warn"), ("API_TAG", "2.0.1")]);
    let api = &imported.config.services["api"];
    assert_eq!(api.env["LOG_LEVEL"], "warn");
    assert_eq!(api.image.as_deref(), Some("ghcr.io/acme/api:2.0.1"));
}

#[test]
fn a_profile_that_is_not_enabled_leaves_its_services_out() {
    let imported = import("layered", &["compose.yaml"], &[], &[]);
    assert!(!imported.config.services.contains_key("mailpit"));
    assert!(has_note(&imported, "services.mailpit", "enable profile `debug` to import it"));
    // Regression (issue 11): the library's note named the CLI's `--profile`; the profile is a value its caller words.
    let note = imported.report.unmapped.iter().find(|u| u.what.ends_with("services.mailpit")).unwrap();
    assert_eq!(note.profile.as_deref(), Some("debug"));
}

#[test]
fn an_enabled_profile_imports_its_services() {
    let config = import("layered", &["compose.yaml"], &["debug"], &[]).config;
    assert_eq!(config.services["mailpit"].port, Some(8025));
}

#[test]
fn compose_profiles_enables_profiles_too() {
    let config = import("layered", &["compose.yaml"], &[], &[("COMPOSE_PROFILES", "debug")]).config;
    assert!(config.services.contains_key("mailpit"));
}

#[test]
fn a_later_file_overrides_values_of_an_earlier_one() {
    let api = &import("multi", &["compose.yaml", "compose.override.yaml"], &[], &[]).config.services["api"];
    assert_eq!(api.env["MODE"], "development");
    assert_eq!(api.env["WORKERS"], "4");
    assert_eq!(api.env["DEBUG"], "1");
    assert_eq!(api.args, ["serve", "--reload"]);
}

#[test]
fn ports_of_several_files_add_up() {
    // Regression (issue 13): the second port was reported as not imported.
    let imported = import("multi", &["compose.yaml", "compose.override.yaml"], &[], &[]);
    let api = &imported.config.services["api"];
    let ports: Vec<(&str, u16)> = api.named_ports().iter().map(|p| (p.name, p.port)).collect();
    assert_eq!(ports, [("http", 8080), ("tcp-9229", 9229)]);
    assert!(!imported.report.unmapped.iter().any(|u| u.what.contains(".ports[")), "{:?}", imported.report.unmapped);
}

#[test]
fn several_ports_and_udp_ones_are_imported_by_name() {
    let imported = import("ports", &["compose.yaml"], &[], &[]);
    let gateway = &imported.config.services["gateway"];
    let ours: Vec<(&str, u16, u16, &str)> =
        gateway.named_ports().iter().map(|p| (p.name, p.port, p.compose_port, p.protocol.as_str())).collect();
    assert_eq!(
        ours,
        [
            ("http", 8080, 8080, "TCP"),
            ("tcp-9090", 9090, 19090, "TCP"),
            ("admin", 9901, 9901, "TCP"),
            ("udp-5353", 5353, 5353, "UDP")
        ],
        "{}",
        imported.text
    );
    // The healthcheck calls the admin port: the health path is served there.
    assert_eq!(gateway.health_path.as_deref(), Some("/ready"));
    assert_eq!(gateway.health_port.as_deref(), Some("admin"));
    let statsd: Vec<(&str, &str)> =
        imported.config.services["statsd"].named_ports().iter().map(|p| (p.name, p.protocol.as_str())).collect();
    assert_eq!(statsd, [("udp-8125", "UDP")]);
    // A URL on another of the gateway's ports names it.
    let client = &imported.config.services["client"];
    assert_eq!(client.env["GATEWAY_URL"], "{{ service.gateway.internal_url }}");
    assert_eq!(client.env["GATEWAY_ADMIN"], "{{ service.gateway.internal_url \"admin\" }}/admin");
    assert!(!imported.report.unmapped.iter().any(|u| u.what.contains(".ports[")), "{:?}", imported.report.unmapped);

    // What compose-go reads of the ports is what was imported.
    let Some(project) = compose_go_project(&[fixture("ports").join("compose.yaml")], &[], &[]) else { return };
    let theirs: Vec<(u16, u16, String)> = project["services"]["gateway"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let published: u16 = p["published"].as_str().unwrap().parse().unwrap();
            (
                u16::try_from(p["target"].as_u64().unwrap()).unwrap(),
                published,
                p["protocol"].as_str().unwrap().to_uppercase(),
            )
        })
        .collect();
    let ours: Vec<(u16, u16, String)> =
        gateway.named_ports().iter().map(|p| (p.port, p.compose_port, p.protocol.as_str().to_owned())).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn bind_mounts_of_project_files_and_folders_become_files() {
    let imported = import("ports", &["compose.yaml"], &[], &[]);
    let mounts = |service: &str| -> Vec<(String, String)> {
        imported.config.services[service]
            .files
            .iter()
            .map(|f| (f.path.clone(), f.source.as_ref().unwrap().display().to_string()))
            .collect()
    };
    let root = fixture("ports");
    let source = |p: &str| std::fs::canonicalize(root.join(p)).unwrap();
    let gateway = mounts("gateway");
    assert_eq!(gateway[0].0, "/etc/gateway/conf.d");
    // Relative to the written file, which the loader accepted: it names the fixture's folder.
    assert!(gateway[0].1.ends_with("ports/gateway-conf"), "{gateway:?}");
    assert!(source("gateway-conf").is_dir());
    assert_eq!(mounts("client")[0].0, "/etc/client/config.yaml");
    // A writable bind is imported read-only, and says so.
    assert!(has_note(&imported, "gateway.volumes[0]", "imported read-only"));
    assert!(!imported.report.unmapped.iter().any(|u| u.what.ends_with("client.volumes[0]")));
}

#[test]
fn a_services_own_source_mounted_for_live_reload_stays_in_compose() {
    assert!(has_note(&webapp(), "api.volumes[0]", "live reload"));
}

#[test]
fn the_base_file_alone_is_what_it_says() {
    let api = &import("multi", &["compose.yaml"], &[], &[]).config.services["api"];
    assert_eq!(api.env["MODE"], "production");
    assert_eq!(api.args, ["serve"]);
}

#[test]
fn components_the_project_lacks_are_disabled() {
    let config = import("multi", &["compose.yaml"], &[], &[]).config;
    assert!(config.postgres.enabled && !config.redis.enabled && !config.keycloak.enabled && !config.nats.enabled);
    assert!(config.postgres.databases.contains_key("orders"));
}

#[test]
fn the_binary_prints_what_it_could_not_map_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir.path()).env_remove("COMPOSE_PROFILES").env_remove("KIND_PARITY_CONFIG");
    let output = cmd
        .args(["--output", "json", "init", "--from-compose"])
        .arg(fixture("webapp").join("compose.yaml"))
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    assert_eq!(report["services"], serde_json::json!(["web", "api"]));
    let unmapped = report["unmapped"].as_array().unwrap();
    assert!(unmapped.iter().any(|u| u["what"].as_str().unwrap().ends_with("services.api.volumes[0]")));
}

#[test]
fn the_binary_prints_what_it_could_not_map_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir.path()).env_remove("COMPOSE_PROFILES").env_remove("KIND_PARITY_CONFIG").env("NO_COLOR", "1");
    cmd.args(["init", "--from-compose"])
        .arg(fixture("webapp").join("compose.yaml"))
        .assert()
        .success()
        .stderr(predicates::str::contains("warning: not imported:").and(predicates::str::contains("api.restart")));
}

use predicates::prelude::PredicateBooleanExt as _;

/// The compose-go checker (render's tests/compose-go, shared with its compose tests), built once: compose-go v2's loader, the one
/// `docker compose config` runs. `None` (a loud skip, a failure under CI) where Go is missing.
fn compose_go() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../render/tests/compose-go");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kp-compose-project");
            let built = std::process::Command::new("go")
                .args(["build", "-mod=mod", "-o"])
                .arg(&out)
                .arg(".")
                .current_dir(&src)
                .output();
            match built {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    kind_parity_testkit::skip("init_compose", "go is not installed: compose-go's loader is not run")
                }
                Err(e) => panic!("running go: {e}"),
                Ok(o) if !o.status.success() => {
                    panic!("building the compose-go checker failed:\n{}", String::from_utf8_lossy(&o.stderr))
                }
                Ok(_) => Some(out),
            }
        })
        .clone()
}

/// The project as compose-go loads it, with `env` as the whole environment.
fn compose_go_project(files: &[PathBuf], profiles: &[&str], env: &[(&str, &str)]) -> Option<serde_json::Value> {
    let checker = compose_go()?;
    let mut command = std::process::Command::new(checker);
    command.env_clear().envs(env.iter().copied()).arg("project");
    for profile in profiles {
        command.args(["--profile", profile]);
    }
    let output = command.args(files).output().unwrap();
    assert!(output.status.success(), "compose-go refused the project: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// What `init` reads of the fixture's project equals what compose-go reads: the same services,
/// and for each its image, build, ports, command, entrypoint and environment entries.
fn reads_as_compose_does(project: &str, files: &[&str], profiles: &[&str], env: &[(&str, &str)]) {
    use kind_parity_lifecycle::init::compose;
    let files: Vec<PathBuf> = files.iter().map(|f| fixture(project).join(f)).collect();
    let Some(expected) = compose_go_project(&files, profiles, env) else { return };
    let options = InitOptions {
        compose_files: files.clone(),
        profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..InitOptions::default()
    };
    let ours = compose::load(&files, &options).unwrap();
    let theirs = expected["services"].as_object().unwrap();
    let mut names: Vec<&String> = ours.services.keys().collect();
    names.sort();
    assert_eq!(names, theirs.keys().collect::<Vec<_>>(), "{project}: services");
    let yaml = |v: Option<&serde_yaml_ng::Value>| -> serde_json::Value {
        v.map(|v| serde_json::to_value(v).unwrap()).unwrap_or(serde_json::Value::Null)
    };
    for (name, service) in &ours.services {
        let def = &service.definition;
        let them = &theirs[name.as_str()];
        let at = format!("{project}: services.{name}");
        assert_eq!(yaml(def.get("image")), them["image"], "{at}.image");
        if let Some(build) = def.get("build") {
            assert_eq!(yaml(build.get("context")), them["build"]["context"], "{at}.build.context");
            if let Some(dockerfile) = build.get("dockerfile") {
                assert_eq!(yaml(Some(dockerfile)), them["build"]["dockerfile"], "{at}.build.dockerfile");
            }
        }
        for key in ["command", "entrypoint"] {
            if let Some(serde_yaml_ng::Value::Sequence(list)) = def.get(key) {
                assert_eq!(yaml(Some(&serde_yaml_ng::Value::Sequence(list.clone()))), them[key], "{at}.{key}");
            }
        }
        let ports: Vec<String> = def
            .get("ports")
            .and_then(serde_yaml_ng::Value::as_sequence)
            .map(|l| l.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let their_ports: Vec<String> = them["ports"]
            .as_array()
            .map(|l| l.iter().map(|p| format!("{}:{}", p["published"].as_str().unwrap_or(""), p["target"])).collect())
            .unwrap_or_default();
        assert_eq!(ports, their_ports, "{at}.ports");
        if let Some(serde_yaml_ng::Value::Mapping(environment)) = def.get("environment") {
            for (key, value) in environment {
                if let serde_yaml_ng::Value::String(value) = value {
                    assert_eq!(
                        them["environment"][key.as_str().unwrap()],
                        serde_json::json!(value),
                        "{at}.environment"
                    );
                }
            }
        }
    }
}

#[test]
fn the_web_app_project_reads_as_compose_reads_it() {
    reads_as_compose_does("webapp", &["compose.yaml"], &[], &[]);
}

#[test]
fn the_keycloak_and_nats_project_reads_as_compose_reads_it() {
    reads_as_compose_does("auth-events", &["compose.yaml"], &[], &[]);
}

#[test]
fn extends_and_interpolation_read_as_compose_reads_them() {
    reads_as_compose_does("layered", &["compose.yaml"], &[], &[("LOG_LEVEL", "warn")]);
}

#[test]
fn profiles_read_as_compose_reads_them() {
    reads_as_compose_does("layered", &["compose.yaml"], &["debug"], &[]);
}

#[test]
fn several_files_merge_as_compose_merges_them() {
    reads_as_compose_does("multi", &["compose.yaml", "compose.override.yaml"], &[], &[]);
}

/// `init --from-compose` of one compose file's `text`, in a new folder.
fn import_text(text: &str) -> kind_parity_lifecycle::init::Result<InitReport> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("compose.yaml"), text).unwrap();
    init(&InitOptions {
        dir: dir.path().to_path_buf(),
        compose_files: vec![dir.path().join("compose.yaml")],
        ..InitOptions::default()
    })
}

#[test]
fn a_required_variable_that_is_unset_stops_the_import() {
    let error = import_text("services:\n  api:\n    image: ghcr.io/acme/api:${TAG:?set TAG}\n").unwrap_err();
    assert!(error.to_string().ends_with("required variable TAG is missing a value: set TAG"), "{error}");
}

#[test]
fn an_extends_of_a_service_that_does_not_exist_is_an_error() {
    let error = import_text("services:\n  api:\n    extends: base\n    image: ghcr.io/acme/api:1\n").unwrap_err();
    assert!(error.to_string().ends_with("services.api extends `base`, which the file does not define"), "{error}");
}

#[test]
fn an_unpinned_image_is_imported_and_reported() {
    let report = import_text("services:\n  proxy:\n    image: nginx\n").unwrap();
    assert!(report.unmapped.iter().any(|u| u.what.ends_with("services.proxy.image") && u.why.contains("not pinned")));
}
