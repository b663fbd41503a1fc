//! The make targets call cargo xtask, which calls the kind-parity library: check the chain.

// A test that cannot run says so on stderr (the loud skip line).
#![allow(clippy::print_stderr)]

use std::process::Command;

#[test]
fn make_targets_call_cargo_xtask() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if Command::new("make").arg("--version").output().is_err() {
        assert!(!kind_parity_testkit::in_ci(), "make is missing and CI=true");
        eprintln!("SKIPPED make_targets_call_cargo_xtask: make is not installed");
        return;
    }
    for (target, task) in [
        ("kind-parity-up", "parity-up"),
        ("kind-parity-status", "parity-status"),
        ("kind-parity-validate", "parity-validate"),
        ("kind-parity-down", "parity-down"),
        ("kind-parity-reset", "parity-reset"),
    ] {
        let out = Command::new("make").env_remove("CARGO").current_dir(&root).args(["-n", target]).output().unwrap();
        assert!(out.status.success(), "{target}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("cargo xtask {task}"));
    }
    let help = Command::new("make").current_dir(&root).arg("help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for target in
        ["kind-parity-up", "kind-parity-status", "kind-parity-validate", "kind-parity-down", "kind-parity-reset"]
    {
        assert!(help.contains(target), "make help does not list {target}:\n{help}");
    }
    let alias = std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
    assert!(alias.contains("xtask = \"run --quiet --package xtask --\""), "{alias}");
}
