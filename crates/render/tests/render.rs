//! Render snapshots of the demo stack and of each component toggle, and determinism.

mod common;

use common::*;
use kind_parity_render::Templates;

fn snapshot_of(overrides: &[(&str, &str)]) -> String {
    let loaded = load_demo(overrides);
    let mut secrets = secrets_for(&loaded);
    fixed_tls(&mut secrets);
    plan_text(&render_loaded(&loaded, &secrets))
}

#[test]
fn demo_stack() {
    insta::assert_snapshot!(snapshot_of(&[]));
}

#[test]
fn ingress_nginx_on_non_default_ports() {
    let text = snapshot_of(&[("ingress.controller", "ingress-nginx"), ("ports.http", "8080"), ("ports.https", "8443")]);
    // The issuer and every browser-facing URL carry the port: the bug class this tool exists for.
    assert!(text.contains("https://auth.localtest.me:8443"), "{text}");
    assert!(text.contains("OIDC_ISSUER: \"https://auth.localtest.me:8443/realms/dev\""), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn phase_two_and_three_components() {
    insta::assert_snapshot!(snapshot_of(&[
        ("nats.enabled", "true"),
        ("nats.streams", "[orders]"),
        ("temporal.enabled", "true"),
        ("temporal.ui", "true"),
        ("registry.enabled", "true"),
        ("vault.enabled", "true"),
        ("vault.paths.secret/app.session", "session-key"),
        ("cluster.workers", "2"),
    ]));
}

#[test]
fn platform_components_off() {
    let loaded = common::load_demo(kind_parity_testkit::PLATFORM_OFF);
    let mut secrets = secrets_for(&loaded);
    fixed_tls(&mut secrets);
    let plan = render_loaded(&loaded, &secrets);
    let files: Vec<String> = plan.files().into_iter().map(|(p, _)| p).collect();
    assert!(!files.iter().any(|f| ["postgres", "redis", "keycloak"].iter().any(|c| f.contains(c))), "{files:?}");
    assert!(secrets.get("postgres-app-password").is_none() && secrets.get("redis-password").is_none());
    insta::assert_snapshot!(plan_text(&plan));
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let loaded = load_demo(&[("nats.enabled", "true"), ("temporal.enabled", "true"), ("vault.enabled", "true")]);
    let secrets = secrets_for(&loaded);
    let first = render_loaded(&loaded, &secrets);
    let second = render_loaded(
        &load_demo(&[("nats.enabled", "true"), ("temporal.enabled", "true"), ("vault.enabled", "true")]),
        &secrets,
    );
    assert_eq!(plan_text(&first), plan_text(&second));
}

#[test]
fn manifests_are_in_apply_order_with_phases() {
    let loaded = load_demo(&[]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let order: Vec<(&str, kind_parity_render::Phase)> =
        plan.manifests.iter().map(|m| (m.file.as_str(), m.phase)).collect();
    use kind_parity_render::Phase::*;
    assert_eq!(
        order,
        vec![
            ("00-namespace.yaml", Foundation),
            ("10-traefik.yaml", Platform),
            ("20-postgres.yaml", Platform),
            ("21-redis.yaml", Platform),
            ("30-keycloak.yaml", Platform),
            ("50-app-api.yaml", Apps),
            ("51-app-web.yaml", Apps),
        ]
    );
    assert!(plan.kustomization.contains("- 00-namespace.yaml\n- 10-traefik.yaml\n"));
}

#[test]
fn secrets_go_to_secrets_and_never_to_config_maps() {
    let loaded = load_demo(&[]);
    let secrets = secrets_for(&loaded);
    let plan = render_loaded(&loaded, &secrets);
    let password = secrets.get("postgres-app-password").unwrap();
    for m in &plan.manifests {
        assert!(!m.content.contains(password), "{} holds a password in clear text", m.file);
    }
    let api = plan.manifests.iter().find(|m| m.component == "app-api").unwrap();
    assert!(api.content.contains("  DATABASE_URL: "), "DATABASE_URL is in the api's Secret");
    assert!(api.content.contains("  OIDC_ISSUER: \"https://auth.localtest.me/realms/dev\""));
}

#[test]
fn a_literal_pair_of_braces_reaches_both_modes() {
    // Regression (issue 12): there was no way to write `{{` in a value.
    let loaded = load_demo(&[("services.web.env.GREETING", r#"'{{ "{{" }} .Name }}'"#)]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    assert!(
        plan.compose_service_env["web"].contains("GREETING='{{ .Name }}'\n"),
        "{}",
        plan.compose_service_env["web"]
    );
    let web = plan.manifests.iter().find(|m| m.component == "app-web").unwrap();
    assert!(web.content.contains("  GREETING: \"{{ .Name }}\"\n"), "{}", web.content);
}

#[test]
fn compose_env_resolves_browser_urls_to_localhost() {
    let loaded = load_demo(&[]);
    let secrets = secrets_for(&loaded);
    let plan = render_loaded(&loaded, &secrets);
    let web = &plan.compose_service_env["web"];
    assert!(web.contains("API_URL=http://localhost:8080\n"), "{web}");
    assert!(web.contains("OIDC_ISSUER=http://localhost:8081/realms/dev\n"), "{web}");
    assert!(plan.compose_env.contains("KP_POSTGRES_IMAGE=docker.io/library/postgres:17.6\n"));
}

#[test]
fn drift_is_empty_for_the_demo_and_names_overrides_that_change_meaning() {
    let loaded = load_demo(&[]);
    assert!(kind_parity_render::drift(&loaded.config).unwrap().is_empty());

    let loaded = load_demo(&[
        ("services.web.compose.env.OIDC_ISSUER", "http://localhost:8081/auth/realms/dev"),
        ("services.web.kind.env.FEATURE_X", "on"),
        ("services.api.compose.env.WEB_ORIGIN", "http://localhost:3000"),
    ]);
    let report = kind_parity_render::drift(&loaded.config).unwrap();
    // Overrides are decisions: listed, and they pass.
    assert!(report.passes());
    insta::assert_snapshot!(report.to_string(), @r"
    declared differences (compose.env / kind.env overrides: decisions, not drift):
      web:
        FEATURE_X: set in kind only (declared in services.web.kind.env.FEATURE_X)
        OIDC_ISSUER: differs beyond scheme/host/port (declared in services.web.compose.env.OIDC_ISSUER)
          compose: http://localhost:8081/auth/realms/dev
          kind:    https://auth.localtest.me/realms/dev
    no undeclared drift: everything else means the same in compose and kind
    ");
}

#[test]
fn embedded_demo_matches_the_repository_copy() {
    let embedded = kind_parity_render::load(&kind_parity_render::LoadOptions {
        dir: std::env::temp_dir().join("kind-parity-no-config-here"),
        ..Default::default()
    })
    .expect("embedded demo loads");
    assert_eq!(embedded.inputs, kind_parity_render::Inputs::Embedded);
    let on_disk = load_demo(&[]);
    assert_eq!(embedded.config, on_disk.config);
    let secrets = secrets_for(&on_disk);
    // compose.yaml names the folders of build contexts and the realm file, which only a config
    // on disk has; everything else is the same.
    let without_compose_file = |mut plan: kind_parity_render::Plan| {
        plan.compose_file.clear();
        plan_text(&plan)
    };
    assert_eq!(
        without_compose_file(render_loaded(&embedded, &secrets)),
        without_compose_file(render_loaded(&on_disk, &secrets))
    );
}

#[test]
fn a_worker_is_ready_by_its_command_and_starts_after_its_dependencies() {
    let loaded = load_demo(&[
        ("nats.enabled", "true"),
        ("services.outbox.image", "ghcr.io/example/outbox:1.4.2"),
        ("services.outbox.port", "9090"),
        ("services.outbox.readiness_command", "[/app/outbox, --check]"),
        ("services.outbox.depends_on", "[postgres, nats]"),
        ("services.outbox.env.NATS_URL", "\"{{ nats.url }}\""),
    ]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let worker = plan.manifests.iter().find(|m| m.component == "app-outbox").expect("the worker is rendered");
    assert_eq!(worker.depends_on, ["postgres", "nats"]);
    assert!(
        worker.content.contains(
            "        readinessProbe:\n          exec:\n            command:\n            - \"/app/outbox\"\n            - \"--check\"\n"
        ),
        "{}",
        worker.content
    );
    assert!(!worker.content.contains("httpGet"), "{}", worker.content);
    assert!(!worker.content.contains("kind: Ingress"), "a worker has no route");
    // Workers start after what they depend on: the apps phase lists them after their dependencies.
    let order: Vec<&str> = plan.manifests.iter().map(|m| m.component.as_str()).collect();
    let position = |c: &str| order.iter().position(|o| *o == c).unwrap_or_else(|| panic!("{c} in {order:?}"));
    assert!(position("app-outbox") > position("nats") && position("app-outbox") > position("postgres"), "{order:?}");
}

#[test]
fn bootstrap_artifacts_travel_in_config_maps_with_their_digest() {
    let loaded = load_demo(&[("artifacts.realm.path", "keycloak/realm.json")]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let manifest = plan.manifests.iter().find(|m| m.component == "artifacts").expect("rendered");
    let bytes = std::fs::read(demo_dir().join("keycloak/realm.json")).unwrap();
    let digest = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
    };
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&manifest.content)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    let index: serde_json::Value = serde_json::from_str(docs[0]["data"]["artifacts.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        index,
        serde_json::json!([{"name": "realm", "digest": digest, "size": bytes.len(), "source": "keycloak/realm.json",
            "configmap": "kp-artifact-realm", "key": "realm.json"}])
    );
    let carrier = &docs[1];
    assert_eq!(carrier["metadata"]["name"], "kp-artifact-realm");
    assert_eq!(carrier["metadata"]["annotations"]["kind-parity.dev/artifact-digest"], digest.as_str());
    let data = carrier["binaryData"]["realm.json"].as_str().unwrap();
    use base64::Engine as _;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), bytes);
}

#[test]
fn nats_with_auth_takes_its_password_from_a_secret_and_the_url_carries_it() {
    let loaded = load_demo(&[
        ("nats.enabled", "true"),
        ("nats.auth", "true"),
        ("services.api.env.NATS_URL", "\"{{ nats.url }}\""),
    ]);
    let secrets = secrets_for(&loaded);
    let password = secrets.get("nats-password").expect("generated").to_owned();
    let plan = render_loaded(&loaded, &secrets);
    let nats = plan.manifests.iter().find(|m| m.component == "nats").unwrap();
    assert!(
        nats.content.contains("    authorization {\n      user: \"app\"\n      password: $NATS_PASSWORD\n    }"),
        "{}",
        nats.content
    );
    assert!(!nats.content.contains(&password), "the password is only base64 in the Secret");
    assert!(nats.content.contains(
        "        - name: NATS_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: nats"
    ));
    // The URL carries the credentials, so it is a secret value in both modes.
    let api = plan.manifests.iter().find(|m| m.component == "app-api").unwrap();
    let config_map = api.content.split("---").next().unwrap();
    assert!(!config_map.contains("NATS_URL"), "NATS_URL is in the Secret, not the ConfigMap");
    let kind =
        kind_parity_render::resolve_env(&loaded.config, "api", kind_parity_render::refs::Mode::Kind, &secrets).unwrap();
    assert!(kind.secret["NATS_URL"].starts_with(&format!("nats://app:{password}@nats.")), "{:?}", kind.secret.keys());
    let compose =
        kind_parity_render::resolve_env(&loaded.config, "api", kind_parity_render::refs::Mode::Compose, &secrets)
            .unwrap();
    assert_eq!(compose.secret["NATS_URL"], format!("nats://app:{password}@nats:4222"));
}

#[test]
fn hashes_in_annotations_are_always_strings() {
    // A hex hash can be all digits (CI once rendered env-hash 93635834100): unquoted, YAML reads
    // a number, and the API server refuses the annotation.
    let loaded = load_demo(&[]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let text: String = plan.manifests.iter().map(|m| m.content.as_str()).collect();
    for key in ["kind-parity.dev/env-hash", "kind-parity.dev/realm-hash"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with(key)).collect();
        assert!(!lines.is_empty(), "{key} is rendered");
        assert!(lines.iter().all(|l| l.contains(&format!("{key}: \""))), "{lines:?}");
    }
}

#[test]
fn a_template_override_that_replaces_nothing_is_an_error() {
    // Regression (issue 12): a misspelt folder (`postgress/`) was registered and never used.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("postgress")).unwrap();
    std::fs::write(dir.path().join("postgress/postgres.yaml.hbs"), "kind: ConfigMap\n").unwrap();
    let error = Templates::with_overrides(dir.path()).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{} replaces no template: did you mean postgres/postgres.yaml.hbs?",
            dir.path().join("postgress/postgres.yaml.hbs").display()
        )
    );
}

#[test]
fn a_templates_folder_without_templates_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "notes\n").unwrap();
    let error = Templates::with_overrides(dir.path()).unwrap_err().to_string();
    assert_eq!(error, format!("{} holds no template (no `<component>/<file>.hbs` file)", dir.path().display()));
}

#[test]
fn the_plan_names_every_image_its_pods_run() {
    let loaded = load_demo(&[]);
    let mut secrets = secrets_for(&loaded);
    fixed_tls(&mut secrets);
    let images = render_loaded(&loaded, &secrets).images();
    // The platform's, its init containers' (Keycloak waits with the Postgres image) and the
    // services' built ones, each once.
    for wanted in [
        "docker.io/library/traefik:v3.5.3",
        "docker.io/library/postgres:17.6",
        "docker.io/library/redis:7.4.5",
        "quay.io/keycloak/keycloak:26.3.5",
    ] {
        assert!(images.iter().any(|i| i == wanted), "{wanted} in {images:?}");
    }
    assert_eq!(images.iter().filter(|i| i.starts_with("api:") || i.starts_with("web:")).count(), 2, "{images:?}");
    let mut unique = images.clone();
    unique.dedup();
    assert_eq!(unique, images);
}
