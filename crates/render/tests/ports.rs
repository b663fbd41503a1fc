//! Several named ports per service (issue 13): container ports, Service ports, the Ingress
//! backend and the probes by name in kind; every port published, with its own `KP_*` variable,
//! in compose; references to a named port resolved in both modes; the `port` shorthand
//! rendering as it always did.

mod common;

use common::{fixed_tls, load_config, load_demo, render_loaded, secrets_for};
use kind_parity_render::Plan;
use serde_json::{Value, json};

fn plan(overrides: &[(&str, &str)]) -> Plan {
    let loaded = load_config("ports", overrides);
    let mut secrets = secrets_for(&loaded);
    fixed_tls(&mut secrets);
    render_loaded(&loaded, &secrets)
}

fn documents(plan: &Plan, component: &str) -> Vec<Value> {
    let manifest = plan.manifests.iter().find(|m| m.component == component).expect("the service is rendered");
    serde_yaml_ng::Deserializer::from_str(&manifest.content)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_service_manifest_names_every_port() {
    let plan = plan(&[]);
    let manifest = plan.manifests.iter().find(|m| m.component == "app-gateway").unwrap();
    insta::assert_snapshot!(manifest.content);
}

#[test]
fn container_and_service_ports_carry_names_and_protocols() {
    let docs = documents(&plan(&[]), "app-gateway");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["ports"],
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "grpc", "containerPort": 9090, "protocol": "TCP"},
            {"name": "admin", "containerPort": 9901, "protocol": "TCP"},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        ])
    );
    assert_eq!(
        of_kind(&docs, "Service")["spec"]["ports"][3],
        json!({"name": "dns", "port": 5353, "targetPort": "dns", "protocol": "UDP"})
    );
}

#[test]
fn the_probes_and_the_ingress_use_the_ports_they_name() {
    let docs = documents(&plan(&[]), "app-gateway");
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    // Readiness on the main port (the ingress's, through which `validate` calls it), the
    // liveness and startup checks on the admin port they name.
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["startupProbe"]["httpGet"]["port"], "admin");
    let backend = &of_kind(&docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"];
    assert_eq!(backend["service"]["port"]["name"], "http");

    // `validate` calls the health path through the route: both move together.
    let docs = documents(
        &plan(&[("services.gateway.ingress.port", "grpc"), ("services.gateway.health_port", "grpc")]),
        "app-gateway",
    );
    let backend = &of_kind(&docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"];
    assert_eq!(backend["service"]["port"]["name"], "grpc");
}

#[test]
fn a_health_port_moves_the_checks_of_a_service_without_a_route() {
    // Its main port is UDP: the HTTP check names the TCP port that serves it.
    let docs = documents(
        &plan(&[
            ("services.metrics.health_path", "/health"),
            ("services.metrics.health_port", "admin"),
            ("services.metrics.readiness_command", "[]"),
        ]),
        "app-metrics",
    );
    let container = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"], json!({"path": "/health", "port": "admin"}));
}

#[test]
fn compose_publishes_every_port_on_its_host_port() {
    let plan = plan(&[]);
    let compose: Value = serde_yaml_ng::from_str(&plan.compose_file).unwrap();
    assert_eq!(
        compose["services"]["gateway"]["ports"],
        json!(["127.0.0.1:8080:8080", "127.0.0.1:19090:9090", "127.0.0.1:9901:9901", "127.0.0.1:5353:5353/udp"])
    );
    assert_eq!(compose["services"]["metrics"]["ports"], json!(["127.0.0.1:8125:8125/udp", "127.0.0.1:8126:8126"]));
}

#[test]
fn each_port_has_its_own_compose_variable() {
    let env = plan(&[]).compose_env;
    for line in [
        "KP_GATEWAY_PORT=8080\n",
        "KP_GATEWAY_GRPC_PORT=19090\n",
        "KP_GATEWAY_ADMIN_PORT=9901\n",
        "KP_GATEWAY_DNS_PORT=5353\n",
        "KP_METRICS_PORT=8125\n",
        "KP_METRICS_ADMIN_PORT=8126\n",
    ] {
        assert!(env.contains(line), "{line} in\n{env}");
    }
    // The main port has only the service's variable.
    assert!(!env.contains("KP_GATEWAY_HTTP_PORT"), "{env}");
}

#[test]
fn references_to_a_named_port_resolve_in_both_modes() {
    let loaded = load_config("ports", &[]);
    let secrets = secrets_for(&loaded);
    let plan = render_loaded(&loaded, &secrets);
    let compose = &plan.compose_service_env["client"];
    for line in [
        "GATEWAY_URL=http://gateway:8080\n",
        "GATEWAY_GRPC=gateway:9090\n",
        "GATEWAY_ADMIN=http://gateway:9901\n",
        "STATSD=metrics:8125\n",
    ] {
        assert!(compose.contains(line), "{line} in\n{compose}");
    }
    let kind =
        kind_parity_render::resolve_env(&loaded.config, "client", kind_parity_render::refs::Mode::Kind, &secrets)
            .unwrap();
    assert_eq!(kind.plain["GATEWAY_GRPC"], "gateway.ports.svc.cluster.local:9090");
    assert_eq!(kind.plain["STATSD"], "metrics.ports.svc.cluster.local:8125");

    // A host process reaches each port on its own host port.
    let loaded = load_config("ports", &[("services.client.compose.runs", "host")]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    assert!(plan.compose_service_env["client"].contains("GATEWAY_GRPC=localhost:19090\n"));
}

#[test]
fn the_port_shorthand_is_a_port_named_http() {
    // Regression guard: `port` + `compose.port` and `ports.http` render the same bytes.
    let render = |overrides: &[(&str, &str)]| {
        let loaded = load_demo(overrides);
        let mut secrets = secrets_for(&loaded);
        fixed_tls(&mut secrets);
        common::plan_text(&render_loaded(&loaded, &secrets))
    };
    let shorthand = render(&[
        ("services.gateway.image", "ghcr.io/example/gateway:1.4.0"),
        ("services.gateway.port", "8090"),
        ("services.gateway.compose.port", "3090"),
        ("services.gateway.health_path", "/healthz"),
        ("services.gateway.ingress.host", "gateway"),
    ]);
    let named = render(&[
        ("services.gateway.image", "ghcr.io/example/gateway:1.4.0"),
        ("services.gateway.ports", "{http: {port: 8090, compose_port: 3090}}"),
        ("services.gateway.health_path", "/healthz"),
        ("services.gateway.ingress.host", "gateway"),
    ]);
    assert_eq!(shorthand, named);
}
