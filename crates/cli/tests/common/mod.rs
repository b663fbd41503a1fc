//! What the binary's tests share.

use std::path::Path;

use assert_cmd::Command;

/// The binary, run in `dir` with no inherited `KIND_PARITY_*` config variables.
pub fn kind_parity(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kind-parity").unwrap();
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("KIND_PARITY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}
