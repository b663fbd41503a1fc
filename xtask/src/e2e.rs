//! `cargo xtask e2e`: the end-to-end tier on a real kind cluster (machines with Docker, kind and
//! a registry to pull base images from). In an empty folder, so the embedded demo stack runs
//! whole (ingress, Postgres, Redis, Keycloak, the api and web built and loaded): doctor, up,
//! status, validate, an idempotent second up, logs, reset, validate again, down. Writes a JUnit
//! report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

struct Step {
    name: &'static str,
    seconds: f64,
    failure: Option<String>,
}

pub fn run(rest: &[String]) -> Result<()> {
    let report = rest.iter().position(|a| a == "--junit").and_then(|i| rest.get(i + 1)).map(PathBuf::from);
    if Command::new("kind").arg("version").output().is_err() {
        bail!(
            "kind is not installed: the e2e tier needs Docker and kind (https://kind.sigs.k8s.io); it cannot run on the test bed"
        );
    }
    // No kind-parity.yaml: the embedded demo stack, as on a fresh clone.
    let work = tempfile::tempdir().context("creating the e2e work folder")?;
    let binary = build_binary()?;
    let mut steps = Vec::new();
    let plan: [(&str, &[&str]); 9] = [
        ("doctor", &["doctor"]),
        ("up", &["up", "--timeout", "15m"]),
        ("status", &["status"]),
        ("validate", &["validate", "--junit", "validate.xml"]),
        ("up again (idempotent)", &["up", "--timeout", "5m"]),
        ("logs", &["logs", "--out", "diagnostics"]),
        ("reset", &["reset", "--yes", "--timeout", "15m"]),
        ("validate after reset", &["validate"]),
        ("down", &["down", "--yes"]),
    ];
    for (name, args) in plan {
        let started = Instant::now();
        let out = Command::new(&binary)
            .current_dir(work.path())
            .args(args)
            .output()
            .with_context(|| format!("running {name}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("== {name}\n{text}");
        let failure = (!out.status.success()).then(|| text.clone());
        let idempotent_failed = name.starts_with("up again") && !text.contains(" 0 created, 0 configured,");
        let failure = failure.or_else(|| idempotent_failed.then(|| format!("the second up changed objects:\n{text}")));
        steps.push(Step { name, seconds: started.elapsed().as_secs_f64(), failure });
    }
    if let Some(path) = &report {
        std::fs::write(path, junit(&steps)).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("JUnit report: {}", path.display());
    }
    let failed: Vec<&str> = steps.iter().filter(|s| s.failure.is_some()).map(|s| s.name).collect();
    if !failed.is_empty() {
        bail!("e2e failed at: {}", failed.join(", "));
    }
    eprintln!(
        "e2e passed: {}",
        steps.iter().map(|s| format!("{} ({:.0}s)", s.name, s.seconds)).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

fn build_binary() -> Result<PathBuf> {
    let root = crate::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--package", "kind-parity"])
        .status()
        .context("building kind-parity")?;
    if !status.success() {
        bail!("building kind-parity failed");
    }
    Ok(Path::new(&root).join("target/debug/kind-parity"))
}

fn junit(steps: &[Step]) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let failures = steps.iter().filter(|s| s.failure.is_some()).count();
    let total: f64 = steps.iter().map(|s| s.seconds).sum();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n  <testsuite name=\"kind-parity e2e\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n",
        steps.len(),
        steps.len()
    );
    for s in steps {
        xml.push_str(&format!("    <testcase classname=\"e2e\" name=\"{}\" time=\"{:.3}\"", escape(s.name), s.seconds));
        match &s.failure {
            None => xml.push_str("/>\n"),
            Some(f) => xml.push_str(&format!(
                ">\n      <failure message=\"step failed\">{}</failure>\n    </testcase>\n",
                escape(f)
            )),
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
