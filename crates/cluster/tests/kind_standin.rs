//! The kind provider against a stand-in `kind` script that records its arguments: detection,
//! version checks, command lines and error paths. Real kind runs in `cargo xtask e2e`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kind_parity_cluster::Error;
use kind_parity_cluster::kind::{Kind, Version};

/// Writes an executable `kind` into `dir` that logs its arguments and runs `body` (sh).
fn stand_in(dir: &Path, body: &str) -> PathBuf {
    let script = format!("#!/bin/sh\necho \"$@\" >> \"{}/calls.log\"\n{body}\n", dir.display());
    let path = dir.join("kind");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}

const GOOD: &str = r#"case "$1" in
  version) echo "kind v0.29.0 go1.24.2 linux/amd64" ;;
  get) echo "kp-demo"; echo "other" ;;
  create) echo "Creating cluster \"$3\" ..." >&2 ;;
  delete) echo "Deleting cluster \"$3\" ..." >&2 ;;
  export) if [ "$2" = logs ]; then mkdir -p "$3"; fi ;;
esac"#;

async fn detects_kind_and_lists_clusters() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path(), GOOD);
    let kind = Kind::detect_in(dir.path()).await.unwrap();
    assert_eq!(kind.version(), Version(0, 29, 0));
    assert_eq!(kind.clusters().await.unwrap(), vec!["kp-demo", "other"]);
    assert_eq!(calls(dir.path()), vec!["version", "get clusters"]);
}

async fn create_uses_the_environments_own_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path(), GOOD);
    let kind = Kind::detect_in(dir.path()).await.unwrap();
    let state = dir.path().join("state");
    kind.create(
        "kp-demo",
        &state.join("kind-config.yaml"),
        "kindest/node:v1.33.1",
        &state.join("kubeconfig"),
        Duration::from_secs(180),
    )
    .await
    .unwrap();
    kind.delete("kp-demo", &state.join("kubeconfig")).await.unwrap();
    kind.export_logs("kp-demo", &state.join("logs")).await.unwrap();
    kind.export_kubeconfig("kp-demo").await.unwrap();
    kind.load_docker_images("kp-demo", &["api:kp-0123456789ab".into(), "web:kp-ba9876543210".into()]).await.unwrap();
    let s = state.display();
    assert_eq!(
        calls(dir.path())[1..],
        [
            format!(
                "create cluster --name kp-demo --config {s}/kind-config.yaml --image kindest/node:v1.33.1 --kubeconfig {s}/kubeconfig --wait 180s"
            ),
            format!("delete cluster --name kp-demo --kubeconfig {s}/kubeconfig"),
            format!("export logs {s}/logs --name kp-demo"),
            "export kubeconfig --name kp-demo".to_owned(),
            "load docker-image --name kp-demo api:kp-0123456789ab web:kp-ba9876543210".to_owned(),
        ]
    );
}

async fn a_failed_command_names_the_command_its_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(
        dir.path(),
        r#"case "$1" in
  version) echo "kind v0.29.0 go1.24.2 linux/amd64" ;;
  create) echo "Creating cluster ..." >&2; echo 'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "kp-demo"' >&2; exit 1 ;;
esac"#,
    );
    let kind = Kind::detect_in(dir.path()).await.unwrap();
    let err = kind
        .create("kp-demo", Path::new("c.yaml"), "kindest/node:v1.33.1", Path::new("kc"), Duration::from_secs(60))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Command { .. }), "{text}");
    assert!(
        text.starts_with(&format!("`{}/kind create cluster --name kp-demo --config c.yaml", dir.path().display())),
        "{text}"
    );
    assert!(
        text.contains(
            "failed (exit status: 1): Creating cluster ...\nERROR: failed to create cluster: node(s) already exist"
        ),
        "{text}"
    );
}

async fn missing_or_old_kind_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let err = Kind::detect_in(empty.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "kind is not installed (not found on PATH); install kind v0.29.0 or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    );

    let old = tempfile::tempdir().unwrap();
    stand_in(old.path(), r#"echo "kind v0.17.0 go1.19.4 linux/amd64""#);
    let err = Kind::detect_in(old.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "kind v0.17.0 is too old; install kind v0.29.0 or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    );

    let odd = tempfile::tempdir().unwrap();
    stand_in(odd.path(), r#"echo "something else""#);
    assert_eq!(
        Kind::detect_in(odd.path()).await.unwrap_err().to_string(),
        "cannot read the version of kind from `something else`"
    );
}

// One test, cases in sequence: writing an executable while another test thread forks can make
// exec fail with ETXTBSY ("text file busy") on Linux.
#[tokio::test]
async fn kind_provider() {
    detects_kind_and_lists_clusters().await;
    create_uses_the_environments_own_kubeconfig().await;
    a_failed_command_names_the_command_its_status_and_stderr().await;
    missing_or_old_kind_says_what_to_install().await;
}
