//! `kind-parity up|apply --cluster existing` against the test bed's real API server. It has no
//! nodes, so `up` must get through render and apply, then stop at the readiness step with the
//! "unschedulable" diagnosis instead of hanging.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

/// `kind-parity <command> --cluster existing --kubeconfig K <args…>` in `dir`, without inherited
/// `KIND_PARITY_*` config variables.
fn kind_parity(dir: &Path, command: &str, kubeconfig: &str, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("KIND_PARITY_") {
            cmd.env_remove(key);
        }
    }
    cmd.args([command, "--cluster", "existing", "--kubeconfig", kubeconfig]).args(args);
    cmd.timeout(std::time::Duration::from_secs(150));
    cmd
}

#[test]
fn changing_a_context_that_is_not_allowed_is_refused() {
    let test = "changing_a_context_that_is_not_allowed_is_refused";
    let Some(kubeconfig) = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test) else { return };
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path(), "apply", &kubeconfig, &[]).assert().code(1).stderr(predicate::str::contains(
        "error: context `kind-parity-testbed` is not allowed for commands that change the cluster\n  next: add it to `cluster.allowed_contexts` or pass `--allow-context kind-parity-testbed`",
    ));
}

#[test]
fn apply_with_output_json_streams_its_events_as_json_lines() {
    let test = "apply_with_output_json_streams_its_events_as_json_lines";
    let Some(kubeconfig) = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test) else { return };
    let dir = tempfile::tempdir().unwrap();
    // The context is not allowed: the command stops after render and connect, before it changes anything.
    let output = kind_parity(dir.path(), "apply", &kubeconfig, &["--output", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))).collect();
    // The events, then the error as the stream's last line (nothing for people on stderr).
    assert_eq!(
        events,
        [
            serde_json::json!({
                "event": "step_finished",
                "step": "render",
                "message": "rendered kp-demo into .kind-parity/kp-demo/rendered",
            }),
            serde_json::json!({"error": {
                "message": "context `kind-parity-testbed` is not allowed for commands that change the cluster",
                "causes": [],
                "hint": "add it to `cluster.allowed_contexts` or pass `--allow-context kind-parity-testbed`",
                "exit_code": 1,
                "kind": "failure",
            }}),
        ]
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("rendered kp-demo") && !stderr.contains("error:"), "{stderr}");
}

#[test]
fn up_on_an_existing_cluster_that_cannot_pull_its_images_stops_with_a_diagnosis() {
    let test = "up_on_an_existing_cluster_that_cannot_pull_its_images_stops_with_a_diagnosis";
    let Some(kubeconfig) = kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, test) else { return };
    // The test bed's node runs the pods; no registry is reachable from it, so the platform
    // images (postgres, redis, traefik…) cannot be pulled, as on a cluster behind a firewall.
    if kind_parity_testkit::require(kind_parity_testkit::CLUSTER, test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let namespace = format!("namespace=kp-cli-{}", std::process::id());
    let _cleanup = DeleteNamespace { namespace: namespace["namespace=".len()..].to_owned() };
    // Its own environment name: `down` deletes whatever carries the environment's label, and
    // other tests on the test bed apply as `kp-test`.
    let env = format!("kp-test-{}", std::process::id());
    let env = env.as_str();
    let common = ["--name", env, "--allow-context", "kind-parity-testbed", "--set", namespace.as_str()];

    let up_args: Vec<&str> =
        common.iter().copied().chain(["--unschedulable-grace", "2s", "--timeout", "90s"]).collect();
    kind_parity(dir.path(), "up", &kubeconfig, &up_args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("applying to context kind-parity-testbed"))
        .stderr(
            predicate::str::is_match(r"applied \d+ objects: \d+ created, \d+ configured, \d+ unchanged; pruned 0")
                .unwrap(),
        )
        .stderr(predicate::str::is_match(r"container \S+ is (ErrImagePull|ImagePullBackOff): ").unwrap())
        .stderr(predicate::str::contains("check: the image cannot be pulled"));
    let inventory: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!(".kind-parity/{env}/inventory.json"))).unwrap(),
    )
    .unwrap();
    let ours =
        inventory["objects"].as_array().unwrap().iter().filter(|o| o["namespace"] == namespace["namespace=".len()..]);
    assert!(ours.count() > 20, "{inventory}");

    // Status reads the same state: the node, workloads waiting, the endpoints.
    kind_parity(dir.path(), "status", &kubeconfig, &["--name", env])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("environment {env} on context kind-parity-testbed")))
        .stdout(predicate::str::is_match(r"node kind-parity-testbed-control-plane +Ready v1\.33\.").unwrap())
        .stdout(
            predicate::str::is_match(r"waiting  Deployment kp-cli-\d+/api: 0 of 1 updated replicas available").unwrap(),
        )
        .stdout(predicate::str::contains("endpoint https://api.localtest.me/\n"))
        .stdout(predicate::str::contains("endpoint https://auth.localtest.me/realms/dev\n"));
    let json = kind_parity(dir.path(), "status", &kubeconfig, &["--name", env, "--output", "json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["ready"], false);
    assert!(json["workloads"].as_array().unwrap().len() >= 6, "{json}");

    // The parity suite: the API answers and the node is Ready; Postgres, whose image cannot be
    // pulled, is a root cause, and what needs it is blocked by it, not failed a second time.
    let junit = dir.path().join("probes.xml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let validate =
        ["--name", env, "--set", namespace.as_str(), "--ingress", &closed, "--junit", junit.to_str().unwrap()];
    // The table is the result, on stdout; the step line is progress, on stderr (issue 11).
    kind_parity(dir.path(), "validate", &kubeconfig, &validate)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("validating {env} on context kind-parity-testbed: ")))
        .stderr(predicate::str::contains("FAIL ").not())
        .stdout(predicate::str::is_match(r"(?m)^FAIL +ready.statefulset/postgres ").unwrap())
        // The probe's typed next actions, worded as the commands that take them.
        .stdout(predicate::str::is_match(r"(?m)^ +fix: .*\(`kind-parity up`, `kind-parity (status|logs)`\)$").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^BLOCKED +postgres +postgres at svc/postgres:5432 in kp-cli-\d+: not run: `ready.statefulset/postgres` failed$").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^PASS +cluster.api ").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^PASS +cluster.nodes +\d+ms  nodes: 1 Ready").unwrap())
        .stdout(predicate::str::contains("first root cause: "));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!("<testsuite name=\"kind-parity validate {env}\"")), "{xml}");
    let mut colored = validate.to_vec();
    colored.extend(["--color", "always"]);
    kind_parity(dir.path(), "validate", &kubeconfig, &colored)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("\u{1b}[31;1mFAIL\u{1b}[0m     ready.statefulset/postgres"))
        .stdout(predicate::str::contains("\u{1b}[32mPASS\u{1b}[0m     cluster.api"));
    let mut json_args = validate.to_vec();
    json_args.extend(["--output", "json"]);
    let json = kind_parity(dir.path(), "validate", &kubeconfig, &json_args).output().unwrap();
    assert_eq!(json.status.code(), Some(1));
    // stdout holds the one JSON object and nothing else; the step line went to stderr.
    let progress = String::from_utf8_lossy(&json.stderr).into_owned();
    assert!(progress.contains(&format!("validating {env} on context ")), "{progress}");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["results"][0]["outcome"], "fail", "{json}");
    // The typed action, not a command: an embedder's and a script's to word.
    assert_eq!(json["results"][0]["next"][0], serde_json::json!({"action": "up"}), "{json}");
    assert!(!json["results"][0]["remediation"].as_str().unwrap().contains("kind-parity"), "{json}");

    // The diagnostics bundle: status, pods, events, the rendered files, and no secret in any file.
    let bundle = dir.path().join("bundle");
    kind_parity(
        dir.path(),
        "logs",
        &kubeconfig,
        &["--name", env, "--set", namespace.as_str(), "--out", bundle.to_str().unwrap()],
    )
    .assert()
    .success()
    .stderr(predicate::str::is_match(r"wrote \d+ files to .*bundle \(secrets redacted\)").unwrap());
    let ns = &namespace["namespace=".len()..];
    assert!(bundle.join("status.json").is_file());
    assert!(bundle.join("cluster/nodes.yaml").is_file());
    // The scheduler's event comes at once; the kubelet's pull failures may not have come yet.
    let events = std::fs::read_to_string(bundle.join(format!("cluster/{ns}/events.txt"))).unwrap();
    assert!(events.contains(" Normal Scheduled Pod/"), "{events}");
    let pod_dirs = std::fs::read_dir(bundle.join(format!("cluster/{ns}")))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert!(pod_dirs >= 5, "{pod_dirs} pods described");
    assert!(bundle.join("rendered/kind-config.yaml").is_file());
    let secrets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!(".kind-parity/{env}/secrets.json"))).unwrap(),
    )
    .unwrap();
    let values: Vec<String> =
        secrets["values"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_owned()).collect();
    let mut redactions = 0;
    for entry in walkdir::WalkDir::new(&bundle) {
        let entry = entry.unwrap();
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        redactions += text.matches("<redacted by kind-parity>").count();
        for value in &values {
            assert!(!text.contains(value.as_str()), "a secret is in {}", entry.path().display());
        }
        assert!(!text.contains("PRIVATE KEY"), "a private key is in {}", entry.path().display());
    }
    assert!(redactions > 0, "the rendered Secrets were redacted");

    // Applying again changes nothing.
    let again: Vec<&str> = common.iter().copied().chain(["--no-wait"]).collect();
    kind_parity(dir.path(), "apply", &kubeconfig, &again).assert().success().stderr(
        predicate::str::is_match(r"applied \d+ objects: 0 created, 0 configured, \d+ unchanged; pruned 0").unwrap(),
    );

    // Turning a component off prunes it.
    let off: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--no-wait", "--set", "redis.enabled=false", "--set", "services.api.env.REDIS_URL=none"])
        .chain(["--set", "services.api.depends_on=[postgres, keycloak]"])
        .collect();
    kind_parity(dir.path(), "apply", &kubeconfig, &off)
        .assert()
        .success()
        .stderr(predicate::str::contains("pruned 3"))
        .stderr(predicate::str::contains("  pruned Deployment kp-cli-"));

    // `down` on an existing cluster deletes what the tool applied, then its state folder.
    let down: Vec<&str> = vec!["--name", env, "--allow-context", "kind-parity-testbed", "--yes"];
    kind_parity(dir.path(), "down", &kubeconfig, &down)
        .assert()
        .success()
        .stderr(predicate::str::is_match(r"deleted \d+ objects from context kind-parity-testbed").unwrap())
        .stderr(predicate::str::contains(format!("removed .kind-parity/{env}")));
    assert!(!dir.path().join(".kind-parity").join(env).exists());
}

/// Deletes the test's namespace when the test ends, however it ends: its pods run on the test
/// bed's node and would hold its CPU for every later run.
struct DeleteNamespace {
    namespace: String,
}

impl Drop for DeleteNamespace {
    fn drop(&mut self) {
        kind_parity_testkit::delete_namespace(&self.namespace);
    }
}
