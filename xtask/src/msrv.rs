//! The workspace's declared `rust-version` holds for its dependencies: cargo refuses to build a
//! package that declares a newer Rust than the toolchain's, so a dependency that needs more than
//! the workspace declares makes the declaration false (kube 5 needed 1.89 while it said 1.88).
//! The workspace's own code is checked by clippy's `incompatible_msrv`.

use std::process::Command;

/// `1.89` or `1.89.0` as comparable numbers.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().expect("a numeric rust-version")).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_the_workspace_declares() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(crate::project_root())
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: Vec<&str> =
        metadata["workspace_members"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
    let declared = packages
        .iter()
        .find(|p| p["name"] == "kind-parity")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the workspace declares a rust-version");
    let newer: Vec<String> = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            let (name, found) = (p["name"].as_str()?, p["version"].as_str()?);
            (version(needs) > version(declared)).then(|| format!("{name} {found} needs {needs}"))
        })
        .collect();
    assert!(newer.is_empty(), "rust-version {declared} is false: {newer:#?}");
}
