//! Every rendered object is a valid Kubernetes object: it round-trips through its k8s-openapi
//! type without losing a field (a misspelled key would be dropped), and the test bed's real API
//! server accepts it in a server-side dry run.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

/// The configurations that together render every template (and a worker without HTTP).
const SCENARIOS: &[&[(&str, &str)]] = &[
    &[],
    &[("ingress.controller", "ingress-nginx"), ("ports.https", "8443")],
    kind_parity_testkit::ALL_COMPONENTS_ON,
    &[
        ("services.outbox.image", "ghcr.io/example/outbox:1.4.2"),
        ("services.outbox.port", "9090"),
        ("services.outbox.readiness_command", "[/app/outbox, --check]"),
        ("services.outbox.command", "[/app/outbox]"),
        ("services.outbox.args", "[--queue, orders, --price, $(PRICE)]"),
        ("services.outbox.depends_on", "[postgres]"),
        // A worker that serves nothing: no port, no Service.
        ("services.mailer.image", "ghcr.io/example/mailer:2.0.1"),
        ("services.mailer.readiness_command", "[/app/mailer, --check]"),
        ("services.mailer.liveness.command", "[/app/mailer, --alive]"),
        ("services.outbox.startup.path", "/started"),
        ("artifacts.realm.path", "keycloak/realm.json"),
        ("nats.enabled", "true"),
        ("nats.auth", "true"),
    ],
    // Several named ports, one of them UDP, the checks and the route by port name.
    &[
        ("services.gateway.image", "ghcr.io/example/gateway:1.4.0"),
        (
            "services.gateway.ports",
            "{http: {port: 8080, compose_port: 18080}, grpc: 9090, admin: 9901, dns: {port: 5353, protocol: UDP}}",
        ),
        ("services.gateway.ingress.host", "gateway"),
        ("services.gateway.health_path", "/healthz"),
        ("services.gateway.liveness.path", "/livez"),
        ("services.gateway.liveness.port", "admin"),
        ("services.statsd.image", "ghcr.io/example/statsd:0.10.2"),
        ("services.statsd.ports", "{statsd: {port: 8125, protocol: UDP}}"),
        ("services.statsd.readiness_command", "[/bin/statsd, --check]"),
    ],
    // Mounted files: a repository file by subPath, a folder whole, a generated secret.
    &[(
        "services.api.files",
        "[{path: /etc/realm/realm.json, source: keycloak/realm.json, env: REALM_FILE}, {path: /srv/web, source: web}, {path: /run/secrets/session, secret: session-key, env: SESSION_KEY_FILE}]",
    )],
];

fn documents(overrides: &[(&str, &str)]) -> Vec<(String, Value)> {
    let loaded = load_demo(overrides);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let mut docs = Vec::new();
    for m in &plan.manifests {
        for doc in serde_yaml_ng::Deserializer::from_str(&m.content) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("rendered YAML parses");
            if !value.is_null() {
                docs.push((m.file.clone(), value));
            }
        }
    }
    docs
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc:#}"));
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn every_object_round_trips_through_its_kubernetes_type() {
    let mut kinds = std::collections::BTreeSet::new();
    for overrides in SCENARIOS {
        for (file, doc) in documents(overrides) {
            let kind = doc["kind"].as_str().unwrap().to_owned();
            let back = match kind.as_str() {
                "Namespace" => round_trip::<Namespace>(&doc),
                "Secret" => round_trip::<Secret>(&doc),
                "ConfigMap" => round_trip::<ConfigMap>(&doc),
                "Service" => round_trip::<Service>(&doc),
                "ServiceAccount" => round_trip::<ServiceAccount>(&doc),
                "Deployment" => round_trip::<Deployment>(&doc),
                "StatefulSet" => round_trip::<StatefulSet>(&doc),
                "Job" => round_trip::<Job>(&doc),
                "Ingress" => round_trip::<Ingress>(&doc),
                "IngressClass" => round_trip::<IngressClass>(&doc),
                "ClusterRole" => round_trip::<ClusterRole>(&doc),
                "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&doc),
                other => panic!("{file}: no round-trip check for kind {other}; add it here"),
            };
            assert_eq!(back, doc, "{file}: {kind} {} lost or changed a field", doc["metadata"]["name"]);
            kinds.insert(kind);
        }
    }
    assert!(kinds.len() >= 12, "{kinds:?}");
}

#[test]
fn every_port_declares_its_protocol() {
    // Server-side apply needs `protocol` on every container and Service port (a list-map key).
    for overrides in SCENARIOS {
        for (file, doc) in documents(overrides) {
            let text = serde_json::to_string(&doc).unwrap();
            let ports = text.matches("\"containerPort\"").count() + text.matches("\"targetPort\"").count();
            let protocols = text.matches("\"protocol\"").count();
            assert!(protocols >= ports, "{file}: {ports} ports but {protocols} protocols");
        }
    }
}

#[tokio::test]
async fn the_api_server_accepts_every_object() {
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
    use kube::core::GroupVersionKind;
    use kube::discovery::{Discovery, Scope};

    let Some(path) =
        kind_parity_testkit::require(kind_parity_testkit::KUBECONFIG, "the_api_server_accepts_every_object")
    else {
        return;
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("test bed kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    let namespace = format!("kp-dry-run-{}", std::process::id());
    // The field manager the cluster layer uses, so this test never owns a field another apply then conflicts on.
    let params = PatchParams::apply("kind-parity").force();

    for overrides in SCENARIOS {
        let mut with_ns = overrides.to_vec();
        with_ns.push(("namespace", namespace.as_str()));
        let docs = documents(&with_ns);
        // Namespaced objects can only be dry-run in a namespace that exists: create those for real.
        for (_, doc) in docs.iter().filter(|(_, d)| d["kind"] == "Namespace") {
            let api: Api<Namespace> = Api::all(client.clone());
            let ns: Namespace = serde_json::from_value(doc.clone()).unwrap();
            let name = ns.metadata.name.clone().unwrap();
            api.patch(&name, &params, &Patch::Apply(&ns)).await.expect("namespace applies");
        }
        for (file, doc) in &docs {
            let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
            let types = obj.types.clone().unwrap();
            let gvk = GroupVersionKind::try_from(&types).unwrap();
            let (resource, caps) =
                discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("{file}: the API server does not serve {gvk:?}"));
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => {
                    Api::namespaced_with(client.clone(), obj.metadata.namespace.as_deref().unwrap(), &resource)
                }
                Scope::Cluster => Api::all_with(client.clone(), &resource),
            };
            let name = obj.metadata.name.clone().unwrap();
            api.patch(&name, &params.clone().dry_run(), &Patch::Apply(&obj))
                .await
                .unwrap_or_else(|e| panic!("{file}: {} {name} rejected: {e}", types.kind));
        }
    }
    // The shared ingress namespace stays: other tests may be using it, and it holds nothing.
    let _ = Api::<Namespace>::all(client).delete(&namespace, &DeleteParams::default()).await;
}
