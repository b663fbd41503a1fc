//! What would break on a real cluster (issue 10), checked on the rendered manifests: each test
//! names the upstream behaviour it relies on where the manifests alone cannot show it.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use kind_parity_render::refs::Mode;
use kind_parity_render::{Plan, resolve_env};
use serde_json::Value;

fn plan_of(overrides: &[(&str, &str)]) -> Plan {
    let loaded = load_demo(overrides);
    render_loaded(&loaded, &secrets_for(&loaded))
}

/// Every YAML document of every manifest.
fn documents(plan: &Plan) -> Vec<Value> {
    plan.manifests
        .iter()
        .flat_map(|m| {
            serde_yaml_ng::Deserializer::from_str(&m.content).map(|d| serde::Deserialize::deserialize(d).unwrap())
        })
        .filter(|d: &Value| !d.is_null())
        .collect()
}

fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn objects_named<'a>(docs: &'a [Value], kind: &str, prefix: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

fn container<'a>(pod_template: &'a Value, list: &str, name: &str) -> &'a Value {
    pod_template["spec"][list]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {list} {name} in {pod_template:#}"))
}

fn args(c: &Value) -> Vec<&str> {
    c["args"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn env_value<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    c["env"].as_array()?.iter().find(|e| e["name"] == key)?["value"].as_str()
}

#[test]
fn every_pod_side_url_is_a_port_of_the_ingress_service() {
    // Regression (issue 10 #1): with ports.https 8443, pods called https://auth.<domain>:8443
    // through hostAliases, but the ingress Service answered only on 80 and 443.
    for controller in ["traefik", "ingress-nginx"] {
        for (http, https) in [("80", "443"), ("8080", "8443"), ("80", "8443"), ("8000", "443"), ("443", "8443")] {
            let overrides = [("ingress.controller", controller), ("ports.http", http), ("ports.https", https)];
            let loaded = load_demo(&overrides);
            let secrets = secrets_for(&loaded);
            let plan = render_loaded(&loaded, &secrets);
            let docs = documents(&plan);
            let service = object(&docs, "Service", "ingress");
            let deployment = docs
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["namespace"] == "kind-parity-ingress")
                .unwrap();
            let controller_ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
            // What a Service port reaches: the container port its targetPort names.
            let reaches = |port: u16| -> Option<u64> {
                let entry = service["spec"]["ports"].as_array()?.iter().find(|p| p["port"] == port)?;
                let target = entry["targetPort"].as_str()?;
                controller_ports.as_array()?.iter().find(|p| p["name"] == target)?["containerPort"].as_u64()
            };
            let mut urls: Vec<String> = Vec::new();
            for name in loaded.config.services.keys() {
                let env = resolve_env(&loaded.config, name, Mode::Kind, &secrets).unwrap();
                urls.extend(env.all().values().filter(|v| v.starts_with("https://")).map(|v| (*v).to_owned()));
            }
            let keycloak = object(&docs, "Deployment", "keycloak");
            let keycloak = container(&keycloak["spec"]["template"], "containers", "keycloak");
            urls.push(env_value(keycloak, "KC_HOSTNAME").unwrap().to_owned());
            assert!(urls.len() >= 4, "{urls:?}");
            for url in urls {
                let url = url::Url::parse(&url).unwrap();
                assert!(
                    loaded.config.browser_hosts().contains(&url.host_str().unwrap().to_owned()),
                    "{url} is a browser-facing host"
                );
                let port = url.port_or_known_default().unwrap();
                // The controllers terminate TLS on container port 443.
                assert_eq!(
                    reaches(port),
                    Some(443),
                    "{controller} {http}/{https}: {url} reaches no HTTPS port of {service:#}"
                );
            }
            if http != "443" {
                assert_eq!(reaches(http.parse().unwrap()), Some(80), "{controller}: plain HTTP on host port {http}");
            }
        }
    }
}

#[test]
fn ingress_nginx_serves_the_environment_certificate_on_unknown_hosts() {
    // Regression (issue 10 #5): without --default-ssl-certificate, a host no Ingress names gets
    // the controller's self-signed certificate (ingress-nginx docs/user-guide/tls.md).
    let docs = documents(&plan_of(&[("ingress.controller", "ingress-nginx")]));
    let deployment = object(&docs, "Deployment", "ingress-nginx-controller");
    let controller = container(&deployment["spec"]["template"], "containers", "controller");
    assert!(args(controller).contains(&"--default-ssl-certificate=kp-demo/kind-parity-tls"), "{controller:#}");
    let tls = object(&docs, "Secret", "kind-parity-tls");
    assert_eq!(tls["metadata"]["namespace"], "kp-demo");
}

#[test]
fn ingress_nginx_buffers_keycloak_headers() {
    // Regression (issue 10 #7): the default proxy-buffer-size of 4k fails Keycloak's login with
    // "upstream sent too big header".
    let docs = documents(&plan_of(&[("ingress.controller", "ingress-nginx")]));
    assert_eq!(object(&docs, "ConfigMap", "ingress-nginx-controller")["data"]["proxy-buffer-size"], "16k");
}

#[test]
fn ingress_nginx_redirects_to_https_only_on_port_443() {
    // Regression (issue 10 #6): ssl-redirect and HSTS (both on by default) sent browsers to :443,
    // which is not mapped when HTTPS is on another host port.
    let data = |https: &str| {
        let docs = documents(&plan_of(&[("ingress.controller", "ingress-nginx"), ("ports.https", https)]));
        object(&docs, "ConfigMap", "ingress-nginx-controller")["data"].clone()
    };
    let other = data("8443");
    assert_eq!((&other["ssl-redirect"], &other["hsts"]), (&Value::from("false"), &Value::from("false")));
    let standard = data("443");
    assert!(standard.get("ssl-redirect").is_none() && standard.get("hsts").is_none(), "{standard:#}");
}

#[test]
fn temporal_waits_for_its_role_and_both_databases() {
    // Regression (issue 10 #2): auto-setup only `nc -z`-waits for the port before setup-schema
    // (temporalio/docker-builds docker/auto-setup.sh) and crash-looped while postgres-init ran.
    let docs = documents(&plan_of(&[("temporal.enabled", "true")]));
    let temporal = object(&docs, "Deployment", "temporal");
    let wait = container(&temporal["spec"]["template"], "initContainers", "wait-for-databases");
    let script = args(wait).join("\n");
    assert!(script.contains("for db in temporal temporal_visibility"), "{script}");
    assert!(script.contains("psql -h postgres -U temporal -d \"$db\""), "{script}");
    assert_eq!(wait["env"][0]["valueFrom"]["secretKeyRef"]["name"], "temporal");
}

#[test]
fn jobs_are_named_by_their_whole_pod_template() {
    // Regression (issue 10 #3): a Job's spec.template is immutable, and the names hashed only
    // the databases and namespaces: a new postgres image got a 422 on the next `up`.
    let job = |overrides: &[(&str, &str)], prefix: &str| {
        let mut all = vec![("temporal.enabled", "true")];
        all.extend_from_slice(overrides);
        let docs = documents(&plan_of(&all));
        let jobs = objects_named(&docs, "Job", prefix);
        assert_eq!(jobs.len(), 1, "{prefix}");
        (jobs[0]["metadata"]["name"].as_str().unwrap().to_owned(), jobs[0]["spec"]["template"].clone())
    };
    let (init, init_template) = job(&[], "postgres-init-");
    let (namespaces, _) = job(&[], "temporal-namespaces-");
    assert!(!init.contains("pending") && !namespaces.contains("pending"), "{init} {namespaces}");
    assert_eq!(job(&[], "postgres-init-").0, init, "the same template gives the same name");
    let (bumped, bumped_template) = job(&[("postgres.image", "docker.io/library/postgres:17.7")], "postgres-init-");
    assert_ne!(bumped, init);
    assert_ne!(bumped_template, init_template);
    assert_ne!(
        job(&[("temporal.image", "docker.io/temporalio/auto-setup:1.28.2")], "temporal-namespaces-").0,
        namespaces
    );
    assert_ne!(job(&[("temporal.namespaces", "[default, orders]")], "temporal-namespaces-").0, namespaces);
}

#[test]
fn nats_rolls_when_its_config_or_password_changes() {
    // Regression (issue 10 #11): turning JetStream on changed the ConfigMap only, and nats-server
    // reads its config once, at start.
    let hash = |overrides: &[(&str, &str)], password: Option<&str>| {
        let mut all = vec![("nats.enabled", "true")];
        all.extend_from_slice(overrides);
        let loaded = load_demo(&all);
        let mut secrets = secrets_for(&loaded);
        if let Some(p) = password {
            secrets.values.insert("nats-password".into(), p.into());
        }
        let docs = documents(&render_loaded(&loaded, &secrets));
        let nats = object(&docs, "StatefulSet", "nats");
        nats["spec"]["template"]["metadata"]["annotations"]["kind-parity.dev/config-hash"].as_str().unwrap().to_owned()
    };
    let on = hash(&[], None);
    assert_ne!(hash(&[("nats.jetstream", "false")], None), on);
    assert_eq!(hash(&[], None), on);
    let auth = [("nats.auth", "true")];
    assert_ne!(hash(&auth, Some("Kfirstpassword")), hash(&auth, Some("Ksecondpassword")));
}

#[test]
fn keycloak_imports_the_realm_file_with_override_before_it_starts() {
    // Regression (issue 10 #8): `start --import-realm` skips a realm that exists, so edits to
    // realm_file never reached a running environment.
    let docs = documents(&plan_of(&[]));
    let keycloak = object(&docs, "Deployment", "keycloak");
    let template = &keycloak["spec"]["template"];
    let import = container(template, "initContainers", "import-realm");
    // Where the realm is in the database already, the import overrides it; where it is not, the
    // start imports it (one Keycloak start fewer on a new environment).
    let script = args(import).last().cloned().unwrap_or_default();
    assert!(
        script.contains("if [ -e /realm-state/exists ]; then\n  exec /opt/keycloak/bin/kc.sh import --file /opt/keycloak/data/import/realm.json --override true\nfi"),
        "{script}"
    );
    let wait = container(template, "initContainers", "wait-for-database");
    assert!(args(wait).last().is_some_and(|s| s.contains("touch /realm-state/exists")));
    assert_eq!(import["volumeMounts"][0]["mountPath"], "/opt/keycloak/data/import");
    assert_eq!(env_value(import, "KC_DB_URL_DATABASE"), Some("keycloak"));
    let init_names: Vec<&str> =
        template["spec"]["initContainers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(init_names, ["wait-for-database", "import-realm"], "the import runs once the database exists");
    let keycloak_container = container(template, "containers", "keycloak");
    assert_eq!(args(keycloak_container), ["start", "--import-realm"]);
    assert_eq!(keycloak_container["volumeMounts"][0]["mountPath"], "/opt/keycloak/data/import");
    // An override import needs every Keycloak node stopped: no old pod beside the new one.
    assert_eq!(keycloak["spec"]["strategy"]["type"], "Recreate");
    // The realm file's hash is on the pod template, so an edit starts a new pod and its import.
    let hash = |file: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("realm.json"), file).unwrap();
        let path = dir.path().join("realm.json").display().to_string();
        let docs = documents(&plan_of(&[("keycloak.realm_file", path.as_str())]));
        object(&docs, "Deployment", "keycloak")["spec"]["template"]["metadata"]["annotations"]["kind-parity.dev/realm-hash"]
            .clone()
    };
    // The demo's keycloak.login needs its public client `web` in any realm file.
    let web = r#""clients": [{"clientId": "web", "publicClient": true}]"#;
    assert_ne!(
        hash(&format!(r#"{{"realm": "dev", "enabled": true, {web}}}"#)),
        hash(&format!(r#"{{"realm": "dev", "enabled": true, "sslRequired": "none", {web}}}"#))
    );
}

#[test]
fn the_realm_export_travels_in_a_secret() {
    // Regression (issue 12): the realm export, confidential clients' secrets included, was a
    // ConfigMap, readable by anyone who may read the namespace's ConfigMaps.
    let dir = tempfile::tempdir().unwrap();
    // With the demo's `web` client: its keycloak.login needs it.
    let realm = r#"{"realm": "dev", "clients": [{"clientId": "api", "secret": "Kclientsecret0123456789"}, {"clientId": "web", "publicClient": true}]}"#;
    std::fs::write(dir.path().join("realm.json"), realm).unwrap();
    let path = dir.path().join("realm.json").display().to_string();
    let docs = documents(&plan_of(&[("keycloak.realm_file", path.as_str())]));
    for map in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
        assert!(!map.to_string().contains("Kclientsecret0123456789"), "{map}");
    }
    let secret = object(&docs, "Secret", "keycloak-realm");
    let data = secret["data"]["realm.json"].as_str().unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&B64.decode(data).unwrap()).unwrap();
    let file: serde_json::Value = serde_json::from_str(realm).unwrap();
    assert_eq!(sent["clients"], file["clients"], "the file's clients, secrets included, travel as they are");
    // keycloak.login's test user, with its password, travels in the same Secret.
    assert_eq!(sent["users"][0]["username"], "parity-probe");
    let keycloak = object(&docs, "Deployment", "keycloak");
    let volumes = &keycloak["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0], serde_json::json!({"name": "realm", "secret": {"secretName": "keycloak-realm"}}));
}

#[test]
fn keycloak_memory_follows_the_sizing_guide() {
    // Regression (issue 10 #12): a 1 GiB limit left about 300 MB beside a 70 % heap. Keycloak's
    // sizing guide: 1250 MB requested, limit (1250 - 300) / 0.7.
    let docs = documents(&plan_of(&[]));
    let template = &object(&docs, "Deployment", "keycloak")["spec"]["template"];
    for c in [container(template, "containers", "keycloak"), container(template, "initContainers", "import-realm")] {
        assert_eq!(c["resources"]["requests"]["memory"], "1250Mi", "{}", c["name"]);
        assert_eq!(c["resources"]["limits"]["memory"], "1360Mi", "{}", c["name"]);
    }
}

#[test]
fn local_registry_hosting_names_the_host_the_nodes_pull_through() {
    // Regression (issue 10 #9): hostFromContainerRuntime named `<env>-registry:5000`, for which no
    // node has a hosts.toml, so tools following it pulled over HTTPS from an HTTP registry.
    let docs = documents(&plan_of(&[("registry.enabled", "true"), ("registry.host_port", "5002")]));
    let hosting = object(&docs, "ConfigMap", "local-registry-hosting");
    let text = hosting["data"]["localRegistryHosting.v1"].as_str().unwrap();
    let value: Value = serde_yaml_ng::from_str(text).unwrap();
    assert_eq!(value["hostFromContainerRuntime"], "localhost:5002");
    assert_eq!(value["host"], "localhost:5002");
}

#[test]
fn vault_reseeds_after_a_restart_and_is_ready_only_once_seeded() {
    // Regression (issue 10 #10): dev-mode Vault loses its data when its container restarts, and
    // the sidecar seeded once; the pod was Ready before seeding ended.
    let docs = documents(&plan_of(&[
        ("vault.enabled", "true"),
        ("vault.paths.secret/app.session", "session-key"),
        ("vault.paths.secret/web.token", "session-key"),
    ]));
    let template = &object(&docs, "Deployment", "vault")["spec"]["template"];
    let seed = container(template, "containers", "seed");
    let script = args(seed).join("\n");
    assert!(script.contains("while true; do"), "{script}");
    assert!(script.contains("if vault status >/dev/null 2>&1 && ! seeded; then"), "{script}");
    assert!(!script.contains("exec sleep"), "{script}");
    let check = seed["readinessProbe"]["exec"]["command"][2].as_str().unwrap();
    assert_eq!(check, r#"vault kv get "secret/app" >/dev/null && vault kv get "secret/web" >/dev/null"#);
}

#[test]
fn vault_seeds_each_value_from_a_file_of_its_secret() {
    // Regression (issue 12): `vault kv put path key="$SEED_0_0"` put every seeded secret in the
    // process list, every few seconds while a path was missing.
    let docs = documents(&plan_of(&[
        ("vault.enabled", "true"),
        ("vault.paths.secret/app.session", "session-key"),
        ("vault.paths.secret/app.other", "session-key"),
    ]));
    let template = &object(&docs, "Deployment", "vault")["spec"]["template"];
    let seed = container(template, "containers", "seed");
    let script = args(seed).join("\n");
    assert!(
        script.contains(
            r#"vault kv put "secret/app" "other"=@/etc/vault-seed/seed-0-0 "session"=@/etc/vault-seed/seed-0-1"#
        ),
        "{script}"
    );
    assert!(!script.contains("$SEED"), "{script}");
    let env: Vec<&str> = seed["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(env, ["VAULT_ADDR", "VAULT_TOKEN"]);
    assert_eq!(seed["volumeMounts"][0]["mountPath"], "/etc/vault-seed");
    let volume = &template["spec"]["volumes"][0];
    assert_eq!(volume["secret"]["secretName"], "vault");
    let items: Vec<&str> =
        volume["secret"]["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(items, ["seed-0-0", "seed-0-1"]);
}

#[test]
fn the_node_image_is_pinned_by_digest() {
    // Regression (issue 10 #13): `kindest/node:v1.33.1` by tag; kind's release notes pin by digest.
    let plan = plan_of(&[]);
    assert!(
        plan.kind_config.contains(
            "image: \"kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f\""
        ),
        "{}",
        plan.kind_config
    );
}

#[test]
fn status_endpoints_carry_their_path() {
    // Regression (issue 10 #19): status showed hosts only, hiding which path a route serves.
    let loaded = load_demo(&[("services.api.ingress.path", "/api"), ("services.api.health_path", "/api/healthz")]);
    assert_eq!(
        loaded.config.endpoints(),
        ["https://api.localtest.me/api", "https://auth.localtest.me/realms/dev", "https://web.localtest.me/"]
    );
}

#[test]
fn services_point_tls_stacks_at_the_local_ca_unless_they_set_their_own() {
    // Regression (issue 10 #20): the CA was mounted at /etc/kind-parity but no runtime read it.
    let docs = documents(&plan_of(&[("services.web.env.SSL_CERT_FILE", "/etc/ssl/mine.pem")]));
    let app =
        |name: &str| container(&object(&docs, "Deployment", name)["spec"]["template"], "containers", name).clone();
    let api = app("api");
    assert_eq!(env_value(&api, "SSL_CERT_FILE"), Some("/etc/kind-parity/ca-bundle.crt"));
    assert_eq!(env_value(&api, "REQUESTS_CA_BUNDLE"), Some("/etc/kind-parity/ca-bundle.crt"));
    assert_eq!(env_value(&api, "NODE_EXTRA_CA_CERTS"), Some("/etc/kind-parity/ca.crt"));
    assert_eq!(api["volumeMounts"][0]["mountPath"], "/etc/kind-parity");
    // `env` wins over `envFrom`: a value the user set must not be shadowed by ours.
    let web = app("web");
    assert_eq!(env_value(&web, "SSL_CERT_FILE"), None);
    assert_eq!(env_value(&web, "NODE_EXTRA_CA_CERTS"), Some("/etc/kind-parity/ca.crt"));
    // The bundle is the local CA then public roots, so calls to public hosts still verify.
    let ca = object(&docs, "ConfigMap", "kind-parity-ca");
    let bundle = ca["data"]["ca-bundle.crt"].as_str().unwrap();
    assert!(bundle.starts_with(ca["data"]["ca.crt"].as_str().unwrap()));
    assert!(bundle.matches("-----BEGIN CERTIFICATE-----").count() > 100);
    assert!(bundle.len() < 900 * 1024, "a ConfigMap holds at most 1 MiB");
}
