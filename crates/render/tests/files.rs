//! Files and mounts (issue 13): a repository file or folder, or a generated secret, mounted at
//! one path in both modes (a ConfigMap or Secret volume in kind, a bind mount in compose), the
//! variable that names it resolved per mode, and a content hash that rolls the pods.

mod common;

use common::{fixed_tls, load_config, render_loaded, secrets_for};
use kind_parity_render::Plan;
use serde_json::{Value, json};

fn plan(overrides: &[(&str, &str)]) -> Plan {
    let loaded = load_config("files", overrides);
    let mut secrets = secrets_for(&loaded);
    fixed_tls(&mut secrets);
    render_loaded(&loaded, &secrets)
}

fn manifest(plan: &Plan) -> &str {
    &plan.manifests.iter().find(|m| m.component == "app-web").expect("the service is rendered").content
}

fn documents(plan: &Plan) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(manifest(plan))
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_service_manifest_mounts_its_files() {
    insta::assert_snapshot!(manifest(&plan(&[])));
}

#[test]
fn kind_mounts_a_file_by_sub_path_a_folder_whole_and_a_secret_from_a_secret() {
    let docs = documents(&plan(&[]));
    let pod = &find(&docs, "Deployment", "web")["spec"]["template"]["spec"];
    let mounts = &pod["containers"][0]["volumeMounts"];
    assert_eq!(
        mounts[1],
        json!({"name": "files-0", "mountPath": "/etc/app/config.yaml", "subPath": "config.yaml", "readOnly": true})
    );
    assert_eq!(mounts[2], json!({"name": "files-1", "mountPath": "/etc/nginx/conf.d", "readOnly": true}));
    assert_eq!(pod["volumes"][2]["configMap"]["items"][1], json!({"key": "1-1-gzip.conf", "path": "gzip.conf"}));
    assert_eq!(pod["volumes"][3]["secret"]["secretName"], "web-files");
    let files = find(&docs, "ConfigMap", "web-files");
    assert_eq!(files["binaryData"]["0-0-config.yaml"], "bGlzdGVuOiA4MDgwCmxvZzogaW5mbwo=");
    let loaded = load_config("files", &[]);
    let value = secrets_for(&loaded).get("signing-key").unwrap().to_owned();
    let secret = find(&docs, "Secret", "web-files");
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.decode(secret["data"]["2-0-signing-key"].as_str().unwrap());
    assert_eq!(data.unwrap(), value.as_bytes());
    // The variable names the path in the container.
    assert_eq!(find(&docs, "ConfigMap", "web-env")["data"]["APP_CONFIG"], "/etc/app/config.yaml");
}

#[test]
fn an_edited_file_rolls_the_pods() {
    let dir = tempfile::tempdir().unwrap();
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    std::fs::copy(configs.join("files.yaml"), dir.path().join("kind-parity.yaml")).unwrap();
    for file in ["app.yaml", "nginx/default.conf", "nginx/gzip.conf"] {
        let to = dir.path().join("files/config").join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(configs.join("files/config").join(file), to).unwrap();
    }
    let hash = || {
        let options = kind_parity_render::LoadOptions { dir: dir.path().to_path_buf(), ..Default::default() };
        let loaded = kind_parity_render::load(&options).unwrap();
        let plan = render_loaded(&loaded, &secrets_for(&loaded));
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(manifest(&plan))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        find(&docs, "Deployment", "web")["spec"]["template"]["metadata"]["annotations"]["kind-parity.dev/files-hash"]
            .clone()
    };
    let before = hash();
    std::fs::write(dir.path().join("files/config/nginx/gzip.conf"), "gzip off;\n").unwrap();
    assert_ne!(before, hash(), "an edit of a mounted folder's file changes the pod template");
}

#[test]
fn compose_binds_the_same_paths() {
    let plan = plan(&[]);
    let compose: Value = serde_yaml_ng::from_str(&plan.compose_file).unwrap();
    let volumes: Vec<String> = compose["services"]["web"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let configs = std::path::absolute(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")).unwrap();
    assert_eq!(
        volumes,
        [
            format!("{}/files/config/app.yaml:/etc/app/config.yaml:ro", configs.display()),
            format!("{}/files/config/nginx:/etc/nginx/conf.d:ro", configs.display()),
            "./compose/files/web/2-signing-key:/run/secrets/signing-key:ro".to_owned(),
        ]
    );
    // The secret is in a rendered file beside compose.yaml (written 0600), never in compose.yaml.
    let loaded = load_config("files", &[]);
    let value = secrets_for(&loaded).get("signing-key").unwrap().to_owned();
    assert_eq!(plan.compose_component_files["compose/files/web/2-signing-key"].len(), value.len());
    assert!(!plan.compose_file.contains(&value));
    assert!(plan.compose_service_env["web"].contains("APP_CONFIG=/etc/app/config.yaml\n"));
}

#[test]
fn a_process_on_the_host_reads_the_repository_file_itself() {
    let loaded = load_config(
        "files",
        &[
            ("services.web.files", "[{path: /etc/app/config.yaml, source: files/config/app.yaml, env: APP_CONFIG}]"),
            ("services.web.compose.runs", "host"),
        ],
    );
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let configs = std::path::absolute(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")).unwrap();
    let expected = format!("APP_CONFIG={}/files/config/app.yaml\n", configs.display());
    assert!(plan.compose_service_env["web"].contains(&expected), "{}", plan.compose_service_env["web"]);
}
