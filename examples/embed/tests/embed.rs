//! The embedding example against the test bed: a small environment (one service built from a
//! two-line Dockerfile, no Postgres, Redis or Keycloak) brought up on the test bed's kind
//! stand-in, validated and taken down, all through `kind-parity-lifecycle`.

use std::path::Path;
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The stand-in's folder first on PATH, so the lifecycle's `kind` is the test bed's.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path))).unwrap()
}

#[test]
fn an_embedder_renders_brings_up_validates_and_takes_down_an_environment() {
    let test = "an_embedder_renders_brings_up_validates_and_takes_down_an_environment";
    let Some(kind) = kind_parity_testkit::require(kind_parity_testkit::KIND, test) else { return };
    let Some(base_image) = kind_parity_testkit::require(kind_parity_testkit::POD_IMAGE, test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = format!("kp-embed-{}", std::process::id());
    std::fs::create_dir(dir.path().join("hello")).unwrap();
    std::fs::write(dir.path().join("hello/index.html"), "hello\n").unwrap();
    std::fs::write(dir.path().join("hello/healthz"), "ok\n").unwrap();
    std::fs::write(
        dir.path().join("hello/Dockerfile"),
        format!("FROM {base_image}\nCOPY . /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
    )
    .unwrap();
    // Host `web`: the test bed's /etc/hosts resolves the demo's hosts as public DNS resolves
    // localtest.me, and only those.
    let config = format!(
        "name: {name}\ndomain: localtest.me\nports:\n  http: {}\n  https: {}\npostgres:\n  enabled: false\nredis:\n  enabled: false\nkeycloak:\n  enabled: false\nservices:\n  hello:\n    build:\n      context: hello\n    port: 8080\n    health_path: /healthz\n    ingress:\n      host: web\n",
        free_port(),
        free_port()
    );
    std::fs::write(dir.path().join("kind-parity.yaml"), config).unwrap();
    let mut embed = Command::new(env!("CARGO_BIN_EXE_embed"));
    embed.current_dir(dir.path()).env("PATH", path_with(Path::new(&kind).parent().unwrap()));
    for (key, _) in std::env::vars() {
        if key.starts_with("KIND_PARITY_") && !key.starts_with("KIND_PARITY_TEST") {
            embed.env_remove(key);
        }
    }
    let output = embed.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "embed failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("validate: ") && stdout.contains(" 0 failed"), "{stdout}");
    assert!(stdout.contains("down: cluster deleted true, state removed true"), "{stdout}");
    assert!(stderr.contains("[embed] Apply: applying to context kind-"), "{stderr}");
}
