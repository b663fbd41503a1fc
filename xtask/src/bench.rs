//! `cargo xtask bench [NAME]`: runs the benchmarks in release mode; each prints its figures and
//! its ratio against the target or reference it is measured with.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

const BENCHES: &[(&str, &str)] = &[
    ("render", "kind-parity-render"),
    ("apply", "kind-parity-cluster"),
    ("images", "kind-parity-images"),
    ("probes", "kind-parity-probes"),
    ("registry", "kind-parity-images"),
];

pub fn run(rest: &[String]) -> Result<()> {
    let wanted: Vec<&str> = rest.iter().map(String::as_str).collect();
    for (name, package) in BENCHES.iter().filter(|(n, _)| wanted.is_empty() || wanted.contains(n)) {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(crate::project_root())
            .args(["bench", "--package", package, "--bench", name])
            .status()
            .with_context(|| format!("running bench {name}"))?;
        if !status.success() {
            bail!("bench {name} failed");
        }
    }
    Ok(())
}
