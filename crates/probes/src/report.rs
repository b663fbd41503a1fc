//! A suite's results: root causes first, then what they blocked, then what passed and what was
//! skipped. Printed as a table for people, JSON for scripts, JUnit XML for CI systems.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::probe::{Next, Outcome, ProbeResult};

/// The results of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether no critical probe failed or was blocked.
    pub passed: bool,
    /// How long the whole suite took, in milliseconds.
    pub duration_ms: u64,
    /// Results: failures in dependency order (the first is the first root cause), then blocked,
    /// passed and skipped probes.
    pub results: Vec<ProbeResult>,
}

impl Report {
    /// Orders `results` (given in dependency order) for reading: root causes first.
    pub fn new(results: Vec<ProbeResult>, elapsed: Duration) -> Self {
        let rank = |r: &ProbeResult| match r.outcome {
            Outcome::Fail => 0,
            Outcome::Blocked => 1,
            Outcome::Pass => 2,
            Outcome::Skipped => 3,
        };
        let mut results = results;
        // A stable sort keeps dependency order within each outcome.
        results.sort_by_key(|r| (rank(r), r.outcome == Outcome::Fail && !r.critical));
        Self {
            passed: !results.iter().any(ProbeResult::fails_suite),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            results,
        }
    }

    /// How many results have `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }

    /// The one-line summary: `12 probes: 9 passed, 1 failed, 1 blocked, 1 skipped in 0.8s`.
    pub fn summary(&self) -> String {
        let took = if self.duration_ms < 1000 {
            format!("{}ms", self.duration_ms)
        } else {
            format!("{:.1}s", Duration::from_millis(self.duration_ms).as_secs_f64())
        };
        format!(
            "{} probes: {} passed, {} failed, {} blocked, {} skipped in {took}",
            self.results.len(),
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Blocked),
            self.count(Outcome::Skipped),
        )
    }

    /// The human table: one line per probe, a `fix:` line under each failure (its actions
    /// worded by `word`, e.g. `&Next::to_string`), and the summary.
    pub fn table(&self, word: &dyn Fn(&Next) -> String) -> String {
        let id_width = self.results.iter().map(|r| r.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for r in &self.results {
            let outcome = match (r.outcome, r.critical) {
                (Outcome::Fail, false) => "WARN".to_owned(),
                (o, _) => o.to_string().to_uppercase(),
            };
            let took = if r.duration_ms > 0 || r.outcome == Outcome::Pass || r.outcome == Outcome::Fail {
                format!("{}ms", r.duration_ms)
            } else {
                String::new()
            };
            let _ = writeln!(out, "{outcome:<8} {:<id_width$} {took:>7}  {}: {}", r.id, r.checked, r.found);
            // A blocked probe's fix is its root cause's, printed with that one.
            if let Some(fix) = r.fix(word).filter(|_| r.outcome != Outcome::Blocked) {
                let _ = writeln!(out, "{:<8} {:<id_width$} {:>7}  fix: {fix}", "", "", "");
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The JSON form (`--output json`): each result's actions as `next`, typed, not worded.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// The JUnit XML form: one test suite, one test case per probe (classname = component). A
    /// failure is a `<failure>`, a blocked probe an `<error>` (it was not verified), a skipped
    /// one `<skipped>`; each carries what was found and the fix, its actions worded by `word`.
    pub fn junit(&self, name: &str, word: &dyn Fn(&Next) -> String) -> Result<String> {
        let mut suite = TestSuite::new(name);
        for r in &self.results {
            let mut status = match r.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
                Outcome::Blocked => TestCaseStatus::non_success(NonSuccessKind::Error),
                Outcome::Skipped => TestCaseStatus::skipped(),
            };
            let description = match r.fix(word) {
                Some(fix) => format!("checked: {}\nfound: {}\nfix: {fix}", r.checked, r.found),
                None => format!("checked: {}\nfound: {}", r.checked, r.found),
            };
            match &mut status {
                TestCaseStatus::NonSuccess { message, ty, description: d, .. } => {
                    *message = Some(r.found.clone().into());
                    *ty = Some(if r.outcome == Outcome::Blocked { "blocked" } else { "fail" }.into());
                    *d = Some(description.into());
                }
                TestCaseStatus::Skipped { message, .. } => *message = Some(r.found.clone().into()),
                TestCaseStatus::Success { .. } => {}
            }
            let mut case = TestCase::new(r.id.clone(), status);
            case.set_classname(r.component.clone()).set_time(Duration::from_millis(r.duration_ms));
            if r.outcome == Outcome::Pass {
                case.set_system_out(format!("checked: {}\nfound: {}", r.checked, r.found));
            }
            suite.add_test_case(case);
        }
        suite.set_time(Duration::from_millis(self.duration_ms));
        // quick-junit counts skips as `disabled`; Surefire's schema, which Jenkins and GitLab
        // read, calls them `skipped`.
        suite.extra.insert("skipped".into(), self.count(Outcome::Skipped).to_string().into());
        let mut report = JunitReport::new(name);
        report.add_test_suite(suite);
        report.to_string().map_err(Error::Junit)
    }

    /// Writes the JUnit XML ([`Report::junit`]) to `path`.
    pub fn write_junit(&self, name: &str, path: &Path, word: &dyn Fn(&Next) -> String) -> Result<()> {
        let xml = self.junit(name, word)?;
        std::fs::write(path, xml).map_err(|source| Error::WriteJunit { path: path.to_owned(), source })
    }
}
