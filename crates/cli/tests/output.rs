//! What `--output` promises: with `json`, every command writes only JSON on stdout, its
//! failures included, with the documented exit code; with `human`, a command's result goes to
//! stdout and messages to stderr. And `config` shows what defaults resolve to, not `null`.

mod common;

use std::path::Path;

use common::kind_parity;

/// Runs `args` in `dir` and returns the exit code and stdout parsed as one JSON value (the
/// test fails when stdout is anything else).
fn json(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let output = kind_parity(dir).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no JSON ({e}):\n{stdout}\nstderr:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().expect("an exit code"), value)
}

#[test]
fn a_failure_is_one_json_object_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["--config", "missing.yaml", "render", "--output", "json"]);
    assert_eq!(code, 1);
    let error = &value["error"];
    assert_eq!(error["message"], "reading missing.yaml", "{value}");
    assert!(error["causes"][0].as_str().unwrap().contains("No such file"), "{value}");
    assert_eq!((error["exit_code"].as_u64(), error["kind"].as_str()), (Some(1), Some("failure")), "{value}");
}

#[test]
fn a_usage_error_is_json_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["config", "--output", "json", "--set", "nope"]);
    assert_eq!(code, 2);
    assert_eq!(value["error"]["message"], "`--set nope` has no value", "{value}");
    assert_eq!(value["error"]["kind"], "usage", "{value}");
    assert!(value["error"]["hint"].as_str().unwrap().contains("--set path=value"), "{value}");
}

#[test]
fn a_command_line_clap_refuses_is_json_too() {
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["status", "--force", "--output", "json"]);
    assert_eq!(code, 2);
    assert_eq!(value["error"]["message"], "unexpected argument '--force' found", "{value}");
    assert_eq!((value["error"]["exit_code"].as_u64(), value["error"]["kind"].as_str()), (Some(2), Some("usage")));
    // `--output=json` is the same flag.
    let (code, value) = json(dir.path(), &["frobnicate", "--output=json"]);
    assert_eq!((code, value["error"]["kind"].as_str()), (2, Some("usage")), "{value}");
}

#[test]
fn a_lifecycle_error_keeps_its_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["validate", "--output", "json"]);
    assert_eq!(code, 1);
    assert_eq!(value["error"]["message"], "environment kp-demo has no state in .kind-parity/kp-demo", "{value}");
    assert!(value["error"]["hint"].as_str().unwrap().starts_with("run `kind-parity up` first"), "{value}");
}

#[test]
fn logs_names_its_bundle_in_json() {
    let dir = tempfile::tempdir().unwrap();
    kind_parity(dir.path()).args(["render", "-q"]).assert().success();
    let out = dir.path().join("bundle");
    let out_text = out.to_str().unwrap();
    let (code, value) = json(
        dir.path(),
        &["logs", "--output", "json", "--cluster", "existing", "--kubeconfig", "missing-kubeconfig", "--out", out_text],
    );
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["bundle"], out_text, "{value}");
    assert!(value["files"].as_u64().unwrap() > 0, "{value}");
    assert!(!value["unavailable"].as_array().unwrap().is_empty(), "no cluster: {value}");
}

#[test]
fn doctor_prints_its_checks_in_json() {
    let dir = tempfile::tempdir().unwrap();
    // Without kind on PATH the kind check fails, so doctor exits 1 with its checks, not an error.
    let output = kind_parity(dir.path())
        .env("PATH", dir.path().join("no-programs-here"))
        .args(["doctor", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(value["passed"], false, "{value}");
    let kind = value["checks"].as_array().unwrap().iter().find(|c| c["name"] == "kind").expect("a kind check");
    assert_eq!((kind["status"].as_str(), kind["found"].as_str()), (Some("fail"), Some("not found on PATH")), "{kind}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("fail  kind"), "the checks are not drawn too");
}

#[test]
fn completions_in_json_hold_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["completions", "bash", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(value["shell"], "bash");
    assert!(value["script"].as_str().unwrap().contains("_kind__parity"), "{value}");
}

#[test]
fn config_explain_in_json_keeps_each_values_origin() {
    // Regression (issue 11): `config --explain --output json` printed the config without origins.
    let dir = tempfile::tempdir().unwrap();
    let (code, value) = json(dir.path(), &["config", "--explain", "--output", "json", "--name", "mine"]);
    assert_eq!(code, 0);
    assert_eq!(value["config"]["name"], "mine", "{value}");
    let origins = &value["origins"];
    assert_eq!(origins["name"], "flag --name mine", "{origins}");
    assert_eq!(origins["ports.http"], "default", "{origins}");
    assert!(origins["domain"].as_str().unwrap().starts_with("embedded demo kind-parity.yaml:"), "{origins}");
    assert_eq!(origins["namespace"], "default", "{origins}");
}

#[test]
fn config_shows_resolved_defaults_not_null() {
    // Regression (issue 11): namespace, ingress.image, build.dockerfile and compose.port were null.
    let dir = tempfile::tempdir().unwrap();
    let (_, value) = json(dir.path(), &["config", "--output", "json", "--name", "mine"]);
    assert_eq!(value["namespace"], "mine", "the name's");
    assert!(value["ingress"]["image"].as_str().unwrap().starts_with("docker.io/library/traefik:"), "{value}");
    let api = &value["services"]["api"];
    assert_eq!(api["build"]["dockerfile"], "Dockerfile", "{api}");
    assert_eq!(api["compose"]["port"], api["port"], "{api}");
    let explained = kind_parity(dir.path()).args(["config", "--explain"]).output().unwrap();
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(text.contains("namespace: kp-demo  # default"), "{text}");
    assert!(text.contains("dockerfile: Dockerfile  # default"), "{text}");
}

#[test]
fn human_results_go_to_stdout_and_messages_to_stderr() {
    // As `--output`'s help says: the config is the result (stdout); the demo-stack warning is a message.
    let dir = tempfile::tempdir().unwrap();
    let output = kind_parity(dir.path()).arg("config").output().unwrap();
    assert!(output.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("name: kp-demo\n"), "{stdout}");
    assert_eq!(stderr, "warning: no kind-parity.yaml here: using the embedded demo stack (examples/demo)\n");
}

#[test]
fn doctors_checks_are_its_result_on_stdout() {
    // Regression (issue 11): `doctor`'s checks went to stderr, though `--output`'s help said results go to stdout.
    let dir = tempfile::tempdir().unwrap();
    let output =
        kind_parity(dir.path()).env("PATH", dir.path().join("no-programs-here")).arg("doctor").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "the kind check fails without kind on PATH");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("fail  kind: not found on PATH\n      fix: install kind"), "{stdout}");
    assert!(!stderr.contains("fail  kind"), "{stderr}");
    // With -q, only what failed.
    let quiet = kind_parity(dir.path())
        .env("PATH", dir.path().join("no-programs-here"))
        .args(["doctor", "-q"])
        .output()
        .unwrap();
    let quiet = String::from_utf8_lossy(&quiet.stdout);
    assert!(quiet.contains("fail  kind: ") && !quiet.contains("ok    "), "{quiet}");
}

#[test]
fn the_help_says_where_results_and_progress_go() {
    // Regression (issue 11): the help said `validate`'s table went to stderr, and `human` that results go to stdout.
    let dir = tempfile::tempdir().unwrap();
    let output = kind_parity(dir.path()).args(["validate", "--help"]).output().unwrap();
    // Words, not lines: clap wraps the help to the terminal's width.
    let help = String::from_utf8_lossy(&output.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("`doctor`'s checks, `validate`'s table); progress, messages and errors on stderr"), "{help}");
    assert!(help.contains("results on stdout, progress and messages on stderr"), "{help}");
}

#[test]
fn a_streaming_command_that_fails_ends_its_json_lines_with_the_error() {
    // `up` streams its events as JSON lines; its failure (kind is not on PATH: a preflight
    // check fails) is the last line, so a reader of the stream sees why it stopped.
    let dir = tempfile::tempdir().unwrap();
    let output = kind_parity(dir.path())
        .env("PATH", dir.path().join("no-programs-here"))
        .args(["up", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["event"] == "preflight_check" && l["name"] == "kind"), "{lines:?}");
    let error = &lines.last().expect("lines")["error"];
    assert!(error["message"].as_str().unwrap().contains("preflight check(s) failed"), "{error}");
    assert_eq!((error["exit_code"].as_u64(), error["kind"].as_str()), (Some(1), Some("failure")), "{error}");
}
