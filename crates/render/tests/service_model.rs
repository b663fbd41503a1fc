//! The service model beyond image and port: `command`/`args` in both modes, a ServiceAccount
//! of its own per service, and no port for a service that serves nothing.

mod common;

use common::{load_demo, render_loaded, secrets_for};
use serde_json::Value;

fn documents(overrides: &[(&str, &str)], component: &str) -> (Vec<Value>, Value) {
    let loaded = load_demo(overrides);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let manifest = plan.manifests.iter().find(|m| m.component == component).expect("the service is rendered");
    let docs = serde_yaml_ng::Deserializer::from_str(&manifest.content)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect();
    (docs, serde_yaml_ng::from_str(&plan.compose_file).expect("compose.yaml parses"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

const COMMAND: &[(&str, &str)] =
    &[("services.api.command", "[/bin/api, serve]"), ("services.api.args", "[--price, $(PRICE), '$HOME']")];

#[test]
fn command_and_args_reach_the_container_literally_in_kind() {
    let (docs, _) = documents(COMMAND, "app-api");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], serde_json::json!(["/bin/api", "serve"]));
    // The kubelet expands `$(VAR)`; `$$` keeps the text as written, as compose passes it.
    assert_eq!(container["args"], serde_json::json!(["--price", "$$(PRICE)", "$$HOME"]));
}

#[test]
fn command_and_args_are_compose_entrypoint_and_command() {
    let (_, compose) = documents(COMMAND, "app-api");
    let api = &compose["services"]["api"];
    assert_eq!(api["entrypoint"], serde_json::json!(["/bin/api", "serve"]));
    // compose interpolates `$VAR`; `$$` is a literal `$`.
    assert_eq!(api["command"], serde_json::json!(["--price", "$$(PRICE)", "$$HOME"]));
}

#[test]
fn without_command_the_image_decides() {
    let (docs, compose) = documents(&[], "app-api");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("command").is_none() && container.get("args").is_none(), "{container:#}");
    assert!(compose["services"]["api"].get("entrypoint").is_none());
}

#[test]
fn each_service_runs_as_its_own_service_account_without_an_api_token() {
    for service in ["api", "web"] {
        let (docs, _) = documents(&[], &format!("app-{service}"));
        let account = of_kind(&docs, "ServiceAccount");
        assert_eq!(account["metadata"]["name"], service);
        assert_eq!(account["automountServiceAccountToken"], false);
        let pod = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], service);
    }
}

const WORKER: &[(&str, &str)] = &[
    ("services.mailer.image", "ghcr.io/example/mailer:2.0.1"),
    ("services.mailer.readiness_command", "[/app/mailer, --check]"),
    ("services.mailer.depends_on", "[redis]"),
];

#[test]
fn a_worker_without_a_port_gets_no_container_port_service_or_port_variable() {
    // Regression (issue 13): a worker got containerPort 8080, a Service and KP_WORKER_PORT.
    let (docs, compose) = documents(WORKER, "app-mailer");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("ports").is_none(), "{container:#}");
    assert!(docs.iter().all(|d| d["kind"] != "Service"), "a Service for a worker");
    assert!(compose["services"]["mailer"].get("ports").is_none());
    let loaded = load_demo(WORKER);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    assert!(plan.compose_env.contains("KP_MAILER_IMAGE="), "{}", plan.compose_env);
    assert!(!plan.compose_env.contains("KP_MAILER_PORT"), "{}", plan.compose_env);
}

#[test]
fn liveness_and_startup_probes_beside_readiness() {
    let (docs, _) = documents(&[("services.api.liveness.path", "/livez")], "app-api");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"],
        serde_json::json!({"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3})
    );
    assert!(container.get("readinessProbe").is_some() && container.get("startupProbe").is_none());

    let worker = [
        WORKER,
        &[
            ("services.mailer.startup.command", "[test, -f, /tmp/started]"),
            ("services.mailer.startup.period_seconds", "2"),
            ("services.mailer.startup.failure_threshold", "30"),
        ],
    ]
    .concat();
    let (docs, compose) = documents(&worker, "app-mailer");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["startupProbe"],
        serde_json::json!({"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 2, "failureThreshold": 30})
    );
    // compose: the startup probe's allowance is the healthcheck's start period.
    assert_eq!(compose["services"]["mailer"]["healthcheck"]["start_period"], "60s");
}
