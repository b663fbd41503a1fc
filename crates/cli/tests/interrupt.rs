//! Ctrl-C during `up`: the command says what it was doing and exits 130, and the next `up`
//! converges from what it left. Here `kind create cluster` is interrupted; a scripted `kind`
//! (a stand-in that records its calls and lists the cluster once its create began, as kind does
//! once the node container exists) stands for kind, and the test bed's Docker Engine answers
//! the preflight. The e2e (`cargo xtask e2e`) interrupts a real create and a real wait.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `kind` that says it is v0.29.0, lists `cluster` once a create began, and whose create
/// never ends by itself.
fn scripted_kind(bin: &Path, state: &Path, cluster: &str) {
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> "{state}/calls.log"
case "$1 $2" in
  "version "*) echo "kind v0.29.0 go1.24.2 linux/amd64" ;;
  "get clusters") test -f "{state}/created" && echo "{cluster}"; exit 0 ;;
  "get nodes") exit 0 ;;
  "create cluster") touch "{state}/created"; exec sleep 600 ;;
  "delete cluster") rm -f "{state}/created"; echo "Deleting cluster \"{cluster}\" ..." >&2 ;;
  *) exit 0 ;;
esac
"#,
        state = state.display()
    );
    std::fs::create_dir_all(bin).unwrap();
    let kind = bin.join("kind");
    std::fs::write(&kind, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Kills the command's process group, whatever happens.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // Usually gone already: the interrupted command ended and took its children with it.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).stderr(Stdio::null()).status();
        let _ = self.0.wait();
    }
}

/// Starts `kind-parity up` in its own process group, waits for a stderr line holding `line`,
/// sends the group SIGINT as a terminal's Ctrl-C does, and returns the exit code and stderr.
fn up_interrupted_at(dir: &Path, path: &std::ffi::OsStr, line: &str) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("kind-parity"));
    command.current_dir(dir).env("NO_COLOR", "1").env("PATH", path).env_remove("KIND_PARITY_CONFIG");
    let child = command
        .args(["up", "--timeout", "2m"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut group = Group(child);
    let stderr = group.0.stderr.take().unwrap();
    let mut text = String::new();
    let mut lines = BufReader::new(stderr).lines();
    let mut interrupted = false;
    for next in lines.by_ref() {
        let next = next.unwrap();
        text.push_str(&next);
        text.push('\n');
        if next.contains(line) {
            // The create is under way once the scripted kind has been called.
            std::thread::sleep(Duration::from_millis(500));
            let pid = group.0.id().to_string();
            assert!(Command::new("kill").args(["-INT", "--", &format!("-{pid}")]).status().unwrap().success());
            interrupted = true;
            break;
        }
    }
    assert!(interrupted, "up ended before printing `{line}`:\n{text}");
    for next in lines {
        text.push_str(&next.unwrap());
        text.push('\n');
    }
    let code = group.0.wait().unwrap().code();
    (code, text)
}

#[test]
fn an_interrupted_create_is_reported_and_the_next_up_recreates_the_cluster() {
    let test = "an_interrupted_create_is_reported_and_the_next_up_recreates_the_cluster";
    // The preflight needs a Docker Engine: the test bed's (its node image names it).
    if kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!("kp-interrupt-{}", std::process::id());
    // Nothing to build, and ingress ports no other test holds.
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        format!(
            "name: {cluster}\nports: {{http: 18980, https: 18943}}\npostgres: {{enabled: false}}\nredis: {{enabled: false}}\nkeycloak: {{enabled: false}}\n"
        ),
    )
    .unwrap();
    let kind_state = dir.path().join("kind-state");
    std::fs::create_dir(&kind_state).unwrap();
    scripted_kind(&dir.path().join("bin"), &kind_state, &cluster);
    let path = std::env::join_paths(
        std::iter::once(dir.path().join("bin")).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let (code, text) = up_interrupted_at(dir.path(), &path, "creating kind cluster");
    assert_eq!(code, Some(130), "{text}");
    assert!(
        text.contains(&format!(
            "`up` was interrupted by Ctrl-C (SIGINT) while: creating kind cluster {cluster} (kind v0.29.0)"
        )),
        "{text}"
    );
    assert!(text.contains("next: run `kind-parity up` again"), "{text}");
    let marker = dir.path().join(".kind-parity").join(&cluster).join("kind-create.pending");
    assert!(marker.exists(), "the half-created cluster is marked as such");

    // The scripted kind now lists the cluster, as kind lists one whose node exists.
    let (code, text) = up_interrupted_at(dir.path(), &path, "creating kind cluster");
    assert_eq!(code, Some(130), "{text}");
    assert!(
        text.contains(&format!(
            "kind cluster {cluster} was being created when an earlier command stopped: deleting it to create it anew"
        )),
        "{text}"
    );
    assert!(!text.contains(&format!("kind cluster {cluster} exists")), "{text}");
    let calls = std::fs::read_to_string(kind_state.join("calls.log")).unwrap();
    assert!(calls.contains(&format!("delete cluster --name {cluster}")), "{calls}");
}
