//! `cargo xtask e2e`: the end-to-end tier on a kind cluster. In an empty folder, so the embedded
//! demo stack runs whole (ingress, Postgres, Redis, Keycloak, the api and web built and loaded):
//! doctor, up, status, validate, an idempotent second up, logs, reset, validate again, down.
//! Writes a JUnit report.
//!
//! It runs the `kind` on PATH (a machine with Docker, kind and registries to pull from). Where
//! there is none and the test bed is up (`cargo xtask testbed up`), it runs on the test bed's
//! kind stand-in, whose clusters get the stack images the test bed built: the same commands,
//! nothing else changed.

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
    let path = search_path()?;
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
            .env("PATH", &path)
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
        std::fs::write(path, junit(&steps)?).with_context(|| format!("writing {}", path.display()))?;
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

/// The PATH the steps run with: the process's when it has a `kind`, else the test bed's stand-in first.
fn search_path() -> Result<std::ffi::OsString> {
    match crate::testbed::kind::path_with_standin()? {
        Some(path) => Ok(path),
        None => Ok(std::env::var_os("PATH").unwrap_or_default()),
    }
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

/// The steps as a JUnit report: a failed step is a `<failure>` carrying its output.
fn junit(steps: &[Step]) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("kind-parity e2e");
    for step in steps {
        let status = match &step.failure {
            None => TestCaseStatus::success(),
            Some(output) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message("step failed").set_description(output.as_str());
                status
            }
        };
        let mut case = TestCase::new(step.name, status);
        case.set_classname("e2e").set_time(std::time::Duration::from_secs_f64(step.seconds));
        suite.add_test_case(case);
    }
    suite.set_time(std::time::Duration::from_secs_f64(steps.iter().map(|s| s.seconds).sum()));
    let mut report = Report::new("kind-parity e2e");
    report.add_test_suite(suite);
    report.to_string().context("writing the JUnit report")
}

#[cfg(test)]
mod tests {
    use super::{Step, junit};

    #[test]
    fn a_failed_step_is_a_failure_with_its_output_escaped() {
        let steps = [
            Step { name: "doctor", seconds: 0.5, failure: None },
            Step { name: "up", seconds: 61.25, failure: Some("error: <traefik> & \"postgres\"".into()) },
        ];
        let xml = junit(&steps).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
        assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("2"), Some("1")));
        let up = doc.descendants().find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("up")).unwrap();
        let failure = up.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("message"), Some("step failed"));
        assert_eq!(failure.text(), Some("error: <traefik> & \"postgres\""));
    }
}
