//! The `kind-parity` binary: arguments, output, exit codes, and what it writes.

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use common::kind_parity;
use predicates::prelude::*;

fn demo_config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/kind-parity.yaml")
}

fn read_tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn render_on_a_fresh_folder_uses_the_embedded_demo() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path())
        .arg("render")
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: no kind-parity.yaml here: using the embedded demo stack"))
        .stderr(predicate::str::contains("rendered 17 files from the embedded demo stack"));
    let root = dir.path().join(".kind-parity/kp-demo");
    for file in [
        "rendered/kind-config.yaml",
        "rendered/manifests/kustomization.yaml",
        "rendered/compose/api.env",
        "rendered/compose.yaml",
        "secrets.json",
        "ca.crt",
    ] {
        assert!(root.join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("secrets.json"), 0o600);
        assert_eq!(mode("rendered/manifests/20-postgres.yaml"), 0o600);
        assert_eq!(mode("rendered"), 0o700);
    }
}

#[test]
fn rendering_again_keeps_secrets_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let first = read_tree(&dir.path().join(".kind-parity/kp-demo"));
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let second = read_tree(&dir.path().join(".kind-parity/kp-demo"));
    assert_eq!(first, second);
}

#[test]
fn a_failed_render_leaves_the_output_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    kind_parity(dir.path()).args(["render", "-q", "--out"]).arg(&out).assert().success();
    let before = read_tree(&out);
    kind_parity(dir.path())
        .args(["render", "--set", "services.api.depends_on=[nope]", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("services.api.depends_on[0]: `nope` is not a service or a component"));
    // A template error happens after secrets and loading succeeded, right before writing.
    let templates = dir.path().join("templates/postgres");
    fs::create_dir_all(&templates).unwrap();
    fs::write(templates.join("postgres.yaml.hbs"), "kind: [broken\n").unwrap();
    kind_parity(dir.path())
        .args(["render", "--templates"])
        .arg(dir.path().join("templates"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("template postgres/postgres.yaml.hbs produced invalid YAML for postgres"));
    assert_eq!(read_tree(&out), before);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().starts_with(".rendered")), "{leftovers:?}");
}

#[test]
fn templates_can_be_overridden_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates/redis");
    fs::create_dir_all(&templates).unwrap();
    fs::write(
        templates.join("redis.yaml.hbs"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team-redis\n  namespace: {{env.namespace}}\n",
    )
    .unwrap();
    kind_parity(dir.path()).args(["render", "-q", "--templates"]).arg(dir.path().join("templates")).assert().success();
    let redis = fs::read_to_string(dir.path().join(".kind-parity/kp-demo/rendered/manifests/21-redis.yaml")).unwrap();
    assert_eq!(redis, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team-redis\n  namespace: kp-demo\n");
}

#[test]
fn config_explain_names_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(demo_config(), dir.path().join("kind-parity.yaml")).unwrap();
    for sub in ["api", "web", "keycloak"] {
        let from = demo_config().parent().unwrap().join(sub);
        fs::create_dir(dir.path().join(sub)).unwrap();
        for f in fs::read_dir(from).unwrap() {
            let f = f.unwrap();
            fs::copy(f.path(), dir.path().join(sub).join(f.file_name())).unwrap();
        }
    }
    fs::write(dir.path().join("kind-parity.local.yaml"), "services:\n  api:\n    replicas: 2\n").unwrap();
    kind_parity(dir.path())
        .env("KIND_PARITY_PORTS__HTTPS", "8443")
        .args(["config", "--explain", "--name", "mine"])
        .assert()
        .success()
        .stdout(predicate::str::contains("name: mine  # flag --name mine"))
        .stdout(predicate::str::contains("https: 8443  # env KIND_PARITY_PORTS__HTTPS"))
        .stdout(
            predicate::str::contains("replicas: 2  # kind-parity.local.yaml:3:5")
                .or(predicate::str::contains("kind-parity.local.yaml:3:5")),
        )
        .stdout(
            predicate::str::contains("domain: localtest.me  # ").and(predicate::str::contains("kind-parity.yaml:6:1")),
        )
        .stdout(predicate::str::contains("http: 80  # default"));
}

#[test]
fn config_prints_json_for_tools() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        kind_parity(dir.path()).args(["config", "--output", "json"]).assert().success().get_output().stdout.clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["name"], "kp-demo");
    assert_eq!(json["services"]["api"]["ingress"]["host"], "api");
}

#[test]
fn drift_lists_declared_differences_and_passes_them() {
    // Regression: a kind.env override made `render --drift` exit 1, though it is a declared decision.
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path())
        .args(["render", "--drift"])
        .assert()
        .success()
        .stdout("no drift: every service's environment means the same in compose and kind\n");
    kind_parity(dir.path())
        .args(["render", "--drift", "--set", "services.api.kind.env.LOG_LEVEL=debug"])
        .assert()
        .success()
        .stdout(
            "declared differences (compose.env / kind.env overrides: decisions, not drift):\n  api:\n    LOG_LEVEL: differs beyond scheme/host/port (declared in services.api.kind.env.LOG_LEVEL)\n      compose: info\n      kind:    debug\nno undeclared drift: everything else means the same in compose and kind\n",
        );
    let json = kind_parity(dir.path())
        .args(["render", "--drift", "--output", "json", "--set", "services.api.kind.env.LOG_LEVEL=debug"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["services"][0]["differences"][0]["declared_by"][0], "services.api.kind.env.LOG_LEVEL");
}

#[test]
fn usage_errors_and_failures_have_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path())
        .args(["render", "--set", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: `--set nope` has no value"));
    kind_parity(dir.path()).args(["frobnicate"]).assert().code(2);
    kind_parity(dir.path())
        .args(["--config", "missing.yaml", "render"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: reading missing.yaml\n  caused by: No such file or directory"));
    // `validate` checks a running environment: without state it says what to run first.
    kind_parity(dir.path()).arg("validate").assert().code(1).stderr(predicate::str::contains(
        "error: environment kp-demo has no state in .kind-parity/kp-demo\n  next: run `kind-parity up` first",
    ));
    kind_parity(dir.path()).args(["validate", "--ingress", "nowhere"]).assert().code(2);
    // An invalid config is a usage error whatever the command, as the runbook's table says.
    for command in ["status", "doctor", "logs", "down", "load", "validate", "render", "config"] {
        let mut args = vec![command, "--set", "services.api.depends_on=[nope]"];
        if command == "load" {
            args.push("api:latest");
        }
        kind_parity(dir.path())
            .args(&args)
            .env("PATH", dir.path())
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid config"));
    }
    // The default provider is kind; without it on PATH, `up` says how to install it.
    kind_parity(dir.path())
        .arg("up")
        .env("PATH", dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("fail  kind: not found on PATH\n      fix: install kind v0.29.0 or newer (node image kindest/node:v1.33.1@sha256:"))
        .stderr(
            predicate::str::is_match(r"error: \d+ preflight check\(s\) failed\n  next: fix what the lines above say")
                .unwrap(),
        );
}

#[test]
fn secrets_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let assert = kind_parity(dir.path()).args(["render", "-v"]).assert().success();
    let secrets: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join(".kind-parity/kp-demo/secrets.json")).unwrap())
            .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&assert.get_output().stdout),
        String::from_utf8_lossy(&assert.get_output().stderr)
    );
    for (name, value) in secrets["values"].as_object().unwrap() {
        assert!(!output.contains(value.as_str().unwrap()), "{name} was printed");
    }
}

#[test]
fn with_the_local_registry_manifests_name_images_by_their_registry_reference() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "--set", "registry.enabled=true"]).assert().success();
    let manifests = dir.path().join(".kind-parity/kp-demo/rendered/manifests");
    let api = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-app-api.yaml"))
        .unwrap();
    let text = std::fs::read_to_string(api).unwrap();
    assert!(predicate::str::is_match(r#"image: "localhost:5001/api:kp-[0-9a-f]{12}""#).unwrap().eval(&text), "{text}");
}

#[test]
fn status_and_validate_before_up_say_the_environment_has_no_cluster_yet() {
    // Regression: after `render`, both said `loading kubeconfig …/kubeconfig` and the missing file twice.
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    for command in ["status", "validate"] {
        kind_parity(dir.path())
            .arg(command)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "error: environment kp-demo has no cluster yet (.kind-parity/kp-demo/kubeconfig does not exist)\n  next: `kind-parity up` creates it",
            ))
            .stderr(predicate::str::contains("No such file").not());
    }
}

#[test]
fn validate_with_junit_writes_a_report_when_the_suite_cannot_start() {
    // Regression: a CI gate reading the report found no file when validate stopped before its probes.
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let validate = |extra: &[&str], code: i32| {
        let _ = fs::remove_file(&junit);
        kind_parity(dir.path()).arg("validate").arg("--junit").arg(&junit).args(extra).assert().code(code);
        fs::read_to_string(&junit).expect("a JUnit report was written")
    };
    let no_state = validate(&[], 1);
    assert!(no_state.contains(r#"<testsuite name="kind-parity validate kp-demo" tests="1""#), "{no_state}");
    assert!(no_state.contains(r#"<testcase name="validate.start" classname="kind-parity""#), "{no_state}");
    assert!(
        no_state.contains(r#"<failure message="environment kp-demo has no state in .kind-parity/kp-demo""#),
        "{no_state}"
    );
    assert!(no_state.contains("fix: run `kind-parity up` first"), "{no_state}");

    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let no_cluster = validate(&[], 1);
    assert!(no_cluster.contains("environment kp-demo has no cluster yet"), "{no_cluster}");
    assert!(no_cluster.contains("fix: `kind-parity up` creates it"), "{no_cluster}");

    // A config that does not load names no environment; the report still says why.
    let bad_config = validate(&["--set", "services.api.depends_on=[nope]"], 2);
    assert!(bad_config.contains("validate.start") && bad_config.contains("invalid config"), "{bad_config}");
}

/// `kind-parity down --yes` of a uniquely named environment, with no `kind` on PATH.
fn down_without_kind(dir: &Path, name: &str) -> Command {
    let mut cmd = kind_parity(dir);
    cmd.env("PATH", dir.join("no-programs-here")).args(["down", "--yes", "--name", name]);
    cmd
}

#[test]
fn down_without_kind_succeeds_when_nothing_exists() {
    // Regression: `down` failed with "kind is not installed" although there was nothing to delete.
    let dir = tempfile::tempdir().unwrap();
    let name = format!("kp-down-{}", std::process::id());
    kind_parity(dir.path()).args(["render", "-q", "--name", &name]).assert().success();
    down_without_kind(dir.path(), &name)
        .assert()
        .success()
        .stderr(predicate::str::contains("kind is not installed"))
        .stderr(predicate::str::contains(format!("removed .kind-parity/{name}")));
    assert!(!dir.path().join(".kind-parity").join(&name).exists());
}

#[test]
fn down_without_kind_or_docker_names_the_cluster_up_created_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("kp-down-kept-{}", std::process::id());
    kind_parity(dir.path()).args(["render", "-q", "--name", &name]).assert().success();
    let state = dir.path().join(".kind-parity").join(&name);
    // What `kind create cluster` leaves in the state folder.
    fs::write(state.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    down_without_kind(dir.path(), &name)
        .env("DOCKER_HOST", format!("unix://{}", dir.path().join("no-docker.sock").display()))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: kind cluster {name} may still exist (.kind-parity/{name} says `up` created it), and neither kind nor Docker is here to delete it"
        )))
        .stderr(predicate::str::contains("next: start Docker and run `kind-parity down` again"));
    assert!(state.join("kubeconfig").is_file(), "the state folder was kept");
}

/// Every file and folder under `dir` (names relative to it), `.git` and hidden ones included.
fn list_tree(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The names in `dir` that a swap or a staging folder left behind.
fn staging_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".rendered"))
        .collect()
}

#[test]
fn render_out_of_the_project_folder_refuses_and_deletes_nothing() {
    // Regression: `render --out "$PWD"` deleted the project (config, code, .git) and exited 0.
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    fs::create_dir_all(project.join(".git")).unwrap();
    fs::write(project.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(project.join("main.rs"), "fn main() {}\n").unwrap();
    fs::write(project.join("kind-parity.yaml"), "name: kp-project\n").unwrap();
    let before = list_tree(&project);
    kind_parity(&project)
        .args(["render", "--config", "kind-parity.yaml", "--state-dir", "../state", "--out"])
        .arg(&project)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("it holds the config file"))
        .stderr(predicate::str::contains("pick an empty or new folder"));
    assert_eq!(list_tree(&project), before);
    assert!(staging_leftovers(outer.path()).is_empty(), "{:?}", staging_leftovers(outer.path()));
}

#[test]
fn render_out_of_a_folder_holding_the_config_refuses() {
    // Regression: a folder holding the config was replaced whole by the rendered files.
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("kind-parity.yaml"), "name: kp-project\n").unwrap();
    kind_parity(outer.path())
        .args(["render", "--config", "project/kind-parity.yaml", "--out", "project"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds the config file"));
    assert_eq!(list_tree(&project), ["kind-parity.yaml"]);
}

#[test]
fn render_out_of_a_non_empty_folder_kind_parity_did_not_write_refuses() {
    // Regression: `render --out DIR` deleted whatever DIR held.
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("notes");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("todo.txt"), "keep me\n").unwrap();
    kind_parity(dir.path())
        .args(["render", "--out", "notes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("was not written by kind-parity"))
        .stderr(predicate::str::contains("pick an empty or new folder"));
    assert_eq!(list_tree(&foreign), ["todo.txt"]);
    assert!(staging_leftovers(dir.path()).is_empty(), "{:?}", staging_leftovers(dir.path()));
}

#[test]
fn render_out_again_into_its_own_folder_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q", "--out", "out"]).assert().success();
    assert!(dir.path().join("out/.kind-parity-rendered").is_file(), "the marker is written");
    let first = read_tree(&dir.path().join("out"));
    // An empty folder is taken as new.
    fs::create_dir_all(dir.path().join("empty")).unwrap();
    kind_parity(dir.path()).args(["render", "-q", "--out", "empty"]).assert().success();
    kind_parity(dir.path()).args(["render", "-q", "--out", "out"]).assert().success();
    assert_eq!(read_tree(&dir.path().join("out")), first);
    assert!(staging_leftovers(dir.path()).is_empty(), "{:?}", staging_leftovers(dir.path()));
}

#[test]
fn render_into_the_default_folder_of_an_older_version_adopts_it() {
    // The state folder's own `rendered/` was written without a marker before there was one.
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let rendered = dir.path().join(".kind-parity/kp-demo/rendered");
    fs::remove_file(rendered.join(".kind-parity-rendered")).unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    assert!(rendered.join(".kind-parity-rendered").is_file());
}

#[test]
fn render_out_dot_refuses_cleanly() {
    // Regression: `--out .` failed with EBUSY and left a `.rendered-*` folder holding secrets.
    let outer = tempfile::tempdir().unwrap();
    let empty = outer.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    kind_parity(&empty)
        .args(["render", "--state-dir", "../state", "--out", "."])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds the working directory"));
    assert!(list_tree(&empty).is_empty(), "{:?}", list_tree(&empty));
    assert!(staging_leftovers(outer.path()).is_empty(), "{:?}", staging_leftovers(outer.path()));
}

#[test]
fn an_overflowing_timeout_is_a_usage_error() {
    // Regression: `--timeout 99999999999999999h` panicked in the duration parser.
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path())
        .args(["apply", "--timeout", "99999999999999999h"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value '99999999999999999h' for '--timeout <TIMEOUT>'"))
        .stderr(predicate::str::contains("the longest wait is 365d"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn logs_leaves_the_rendered_files_out_when_the_secrets_cannot_be_read() {
    // Regression (issue 12): unreadable secrets could not be redacted by value, and the rendered
    // files, which resolve every one of them, went into the bundle in clear.
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let secrets_file = dir.path().join(".kind-parity/kp-demo/secrets.json");
    let stored = fs::read_to_string(&secrets_file).unwrap();
    fs::write(&secrets_file, stored.replacen('{', "{,", 1)).unwrap();
    let out = dir.path().join("bundle");
    kind_parity(dir.path())
        .args(["logs", "--cluster", "existing", "--kubeconfig", "missing-kubeconfig", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert!(!out.join("rendered").exists());
    let unavailable = fs::read_to_string(out.join("unavailable.txt")).unwrap();
    assert!(
        unavailable.contains("rendered files: left out, the stored secrets cannot be read to redact them by"),
        "{unavailable}"
    );
}

/// A kubeconfig with context `test` for an API server at 127.0.0.1:`port`.
fn kubeconfig_for(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\ncontexts:\n- name: test\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: test\n"),
    )
    .unwrap();
    path
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn an_unreachable_api_server_is_named_and_no_raw_log_line_shows() {
    // Regression (issue 12): `ERROR kube_client::client::builder: failed with error …`, then
    // "listing nodes" with no word of which server, under `-q` too.
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let kubeconfig = kubeconfig_for(dir.path(), port);
    for quiet in [false, true] {
        let mut cmd = kind_parity(dir.path());
        if quiet {
            cmd.arg("-q");
        }
        cmd.args(["status", "--cluster", "existing", "--kubeconfig"])
            .arg(&kubeconfig)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "error: connecting to the API server https://127.0.0.1:{port}/ of context test\n"
            )))
            .stderr(predicate::str::contains("kube_client").not());
    }
}

#[test]
fn an_unknown_context_lists_the_known_ones() {
    // Regression (issue 12): "failed to load current context: nope", and no list.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(dir.path(), closed_port());
    kind_parity(dir.path())
        .args(["status", "--cluster", "existing", "--context", "nope", "--kubeconfig"])
        .arg(&kubeconfig)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: context `nope` is not in kubeconfig {}; its contexts are: test\n",
            kubeconfig.display()
        )));
}

#[test]
fn validate_checks_its_junit_path_before_anything_runs() {
    // Regression (issue 12): a report path in a missing folder was found out after the suite.
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("missing/report.xml");
    kind_parity(dir.path())
        .args(["validate", "--junit"])
        .arg(&junit)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("error: --junit {}: cannot write in ", junit.display())))
        .stderr(predicate::str::contains("no state").not());
}

#[test]
fn schema_prints_the_committed_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = kind_parity(dir.path()).arg("schema").assert().success().get_output().stdout.clone();
    let committed =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/kind-parity.schema.json")).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), committed);
}

#[test]
fn kind_parity_config_names_the_config_and_a_flag_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path())
        .env("KIND_PARITY_CONFIG", "missing.yaml")
        .arg("config")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: reading missing.yaml"));
    for args in [&["config", "--config", "also-missing.yaml"][..], &["--config", "also-missing.yaml", "config"][..]] {
        kind_parity(dir.path())
            .env("KIND_PARITY_CONFIG", "missing.yaml")
            .args(args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("error: reading also-missing.yaml"));
    }
}

/// Takes the lock of environment `name` under `dir/.kind-parity` as a command `up` would.
fn hold_lock(dir: &Path, name: &str) -> kind_parity_lifecycle::Lock {
    let state = kind_parity_lifecycle::State::new(&dir.join(".kind-parity"), name);
    match state.try_lock("up").unwrap() {
        kind_parity_lifecycle::state::TryLock::Acquired(lock) => lock,
        kind_parity_lifecycle::state::TryLock::Busy(holder) => panic!("{holder} holds a fresh lock"),
    }
}

#[test]
fn a_command_that_changes_the_environment_waits_for_the_lock_then_names_its_holder() {
    // Regression (issue 12): two commands on one environment at once interleaved their writes.
    let dir = tempfile::tempdir().unwrap();
    let _held = hold_lock(dir.path(), "kp-demo");
    let pid = std::process::id();
    kind_parity(dir.path())
        .args(["render", "--lock-timeout", "1s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "waiting up to 1s for `up` (pid {pid}) to finish with kp-demo (it holds .kind-parity/kp-demo.lock)"
        )))
        .stderr(predicate::str::contains(format!(
            "error: environment kp-demo is busy: `up` (pid {pid}) holds .kind-parity/kp-demo.lock (waited 1s)"
        )))
        .stderr(predicate::str::contains(format!(
            "next: wait for it to finish, or stop it (`kill {pid}`: it stops cleanly on SIGTERM); `--lock-timeout 10m` waits longer"
        )));
    assert!(!dir.path().join(".kind-parity/kp-demo/rendered").exists(), "nothing was rendered");
}

#[test]
fn a_read_only_command_does_not_wait_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _held = hold_lock(dir.path(), "kp-demo");
    kind_parity(dir.path())
        .args(["status", "--lock-timeout", "0s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: environment kp-demo has no cluster yet"));
}
