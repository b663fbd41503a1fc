//! The engine: dependency order, a failure blocking what depends on it (root cause first),
//! fail-closed timeouts and panics, skips, bad suites refused; and the three report forms.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt as _};
use kind_parity_probes::{Check, Error, Failure, Next, Outcome, Probe, ProbeResult, Report, suite};

/// A check that waits `delay`, records that it ran, and passes or fails as told.
struct Scripted {
    name: &'static str,
    delay: Duration,
    pass: bool,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Check for Scripted {
    fn target(&self) -> String {
        format!("{}.test:443", self.name)
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        async move {
            tokio::time::sleep(self.delay).await;
            self.log.lock().unwrap().push(self.name);
            if self.name == "panics" {
                panic!("scripted panic");
            }
            if self.pass { Ok("fine".into()) } else { Err(Failure::new("broken", "mend it")) }
        }
        .boxed()
    }
}

fn probe(log: &Arc<Mutex<Vec<&'static str>>>, name: &'static str, ms: u64, pass: bool) -> Probe {
    Probe::new(name, "test", Scripted { name, delay: Duration::from_millis(ms), pass, log: Arc::clone(log) })
}

fn by_id<'a>(report: &'a Report, id: &str) -> &'a ProbeResult {
    report.results.iter().find(|r| r.id == id).unwrap()
}

#[tokio::test]
async fn dependencies_run_first_and_a_failure_blocks_what_follows_from_it() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let probes = vec![
        probe(&log, "route", 0, true).after(["tls"]),
        probe(&log, "oidc", 0, true).after(["route"]),
        probe(&log, "tls", 50, false),
        probe(&log, "dns", 10, true),
        Probe::skipped("nats", "nats", "nats is switched off"),
        probe(&log, "nats-stream", 0, true).after(["nats"]),
    ];
    let heard = Mutex::new(Vec::new());
    let report = suite::run(probes, &|r| heard.lock().unwrap().push(r.id.clone())).await.unwrap();

    // Only what could run ran; route and oidc never started.
    assert_eq!(*log.lock().unwrap(), ["dns", "tls"]);
    assert_eq!(heard.lock().unwrap().len(), 6);
    assert!(!report.passed);

    // Root cause first, then what it blocked (in dependency order), then passes and skips.
    let order: Vec<(&str, Outcome)> = report.results.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
    assert_eq!(
        order,
        [
            ("tls", Outcome::Fail),
            ("route", Outcome::Blocked),
            ("oidc", Outcome::Blocked),
            ("dns", Outcome::Pass),
            ("nats", Outcome::Skipped),
            ("nats-stream", Outcome::Skipped),
        ]
    );
    // A blocked probe names the root cause, not the probe in between.
    assert_eq!(by_id(&report, "oidc").blocked_by.as_deref(), Some("tls"));
    assert_eq!(by_id(&report, "oidc").found, "not run: `tls` failed");
    assert_eq!(by_id(&report, "tls").remediation.as_deref(), Some("mend it"));
    assert_eq!(by_id(&report, "nats-stream").found, "needs `nats`, which was skipped: nats is switched off");
}

#[tokio::test]
async fn independent_probes_run_concurrently() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let probes: Vec<Probe> = ["a", "b", "c", "d", "e"].into_iter().map(|n| probe(&log, n, 300, true)).collect();
    let report = suite::run(probes, &|_| {}).await.unwrap();
    assert!(report.passed);
    // Five 300 ms probes one after another would take 1.5 s.
    assert!(report.duration_ms < 1000, "{}", report.duration_ms);
}

#[tokio::test]
async fn a_timeout_or_a_panic_fails_closed_and_an_advisory_failure_does_not_fail_the_suite() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let probes = vec![
        probe(&log, "slow", 5_000, true).timeout(Duration::from_millis(100)),
        probe(&log, "panics", 0, true),
        probe(&log, "meh", 0, false).advisory(),
    ];
    let report = suite::run(probes, &|_| {}).await.unwrap();
    let slow = by_id(&report, "slow");
    assert_eq!((slow.outcome, slow.found.as_str()), (Outcome::Fail, "no answer within 100ms"));
    assert_eq!(slow.remediation.as_deref(), Some("check that slow.test:443 is running and reachable"));
    assert_eq!(by_id(&report, "panics").found, "the probe panicked");
    assert!(!report.passed);

    let report = suite::run(vec![probe(&log, "meh", 0, false).advisory()], &|_| {}).await.unwrap();
    assert!(report.passed, "an advisory failure is reported, not fatal");
    let table = report.table(&Next::to_string);
    assert!(table.starts_with("WARN "), "{table}");
}

#[tokio::test]
async fn a_suite_with_a_missing_dependency_a_cycle_or_a_duplicate_is_refused() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let err = suite::run(vec![probe(&log, "a", 0, true).after(["ghost"])], &|_| {}).await.unwrap_err();
    assert_eq!(err.to_string(), "probe `a` depends on `ghost`, which is not in the suite");
    let cycle = vec![probe(&log, "a", 0, true).after(["b"]), probe(&log, "b", 0, true).after(["a"])];
    let err = suite::run(cycle, &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Cycle(_)));
    assert_eq!(err.to_string(), "probe dependencies form a cycle: a -> b -> a");
    let twice = vec![probe(&log, "a", 0, true), probe(&log, "a", 0, true)];
    assert_eq!(
        suite::run(twice, &|_| {}).await.unwrap_err().to_string(),
        "two probes are named `a`; probe ids must be unique"
    );
    assert!(log.lock().unwrap().is_empty(), "nothing runs from a refused suite");
}

/// A report with fixed durations, for the rendered forms.
fn fixed_report() -> Report {
    let result =
        |id: &str, outcome, found: &str, fix: Option<(&str, Vec<Next>)>, blocked: Option<&str>, ms| ProbeResult {
            id: id.into(),
            component: id.split('.').next().unwrap().into(),
            outcome,
            critical: true,
            duration_ms: ms,
            checked: format!("https://{id}.localtest.me/"),
            found: found.into(),
            remediation: fix.as_ref().map(|(text, _)| (*text).into()),
            next: fix.map(|(_, next)| next).unwrap_or_default(),
            blocked_by: blocked.map(Into::into),
        };
    Report::new(
        vec![
            result(
                "tls.auth",
                Outcome::Fail,
                "the certificate expired on 2026-11-01 00:00 UTC",
                Some(("bringing the environment up renews the certificate and re-applies it", vec![Next::Up])),
                None,
                12,
            ),
            result(
                "oidc.issuer",
                Outcome::Blocked,
                "not run: `tls.auth` failed",
                Some(("fix `tls.auth` first", vec![])),
                Some("tls.auth"),
                0,
            ),
            result("route.api", Outcome::Pass, "HTTP 200 OK from api", None, None, 8),
            result("nats", Outcome::Skipped, "nats is switched off", None, None, 0),
        ],
        Duration::from_millis(40),
    )
}

/// A caller's words for the actions, as the `kind-parity` binary words them.
fn commands(next: &Next) -> String {
    match next {
        Next::Up => "`kind-parity up`".into(),
        other => format!("`kind-parity {other:?}`"),
    }
}

#[test]
fn the_table_says_what_was_checked_found_and_what_to_do() {
    insta::assert_snapshot!(fixed_report().table(&commands));
}

#[test]
fn the_table_words_the_actions_as_its_caller_says() {
    // Regression (issue 11): the library's remediations named the CLI's commands.
    let plain = fixed_report().table(&Next::to_string);
    assert!(
        plain.contains(
            "fix: bringing the environment up renews the certificate and re-applies it (bring the environment up)\n"
        ),
        "{plain}"
    );
    assert!(!plain.contains("kind-parity"), "{plain}");
}

#[test]
fn the_json_report_is_for_scripts() {
    let json: serde_json::Value = serde_json::from_str(&fixed_report().json()).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["results"][0]["id"], "tls.auth");
    assert_eq!(json["results"][0]["outcome"], "fail");
    assert_eq!(json["results"][1]["blocked_by"], "tls.auth");
    assert!(json["results"][2].get("remediation").is_none());
    assert_eq!(json["results"][0]["next"], serde_json::json!([{"action": "up"}]));
    assert!(json["results"][1].get("next").is_none(), "a blocked probe's action is its root cause's");
    insta::assert_yaml_snapshot!(json);
}

#[test]
fn the_junit_report_has_the_structure_ci_tools_read() {
    let xml = fixed_report().junit("kind-parity validate", &commands).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(
        (root.attribute("tests"), root.attribute("failures"), root.attribute("errors")),
        (Some("4"), Some("1"), Some("1"))
    );
    let suite = root.children().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(suite.attribute("name"), Some("kind-parity validate"));
    assert_eq!((suite.attribute("tests"), suite.attribute("skipped")), (Some("4"), Some("1")));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 4);
    let case = |name: &str| *cases.iter().find(|c| c.attribute("name") == Some(name)).unwrap();
    let failure = case("tls.auth").children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("the certificate expired on 2026-11-01 00:00 UTC"));
    assert!(
        failure
            .text()
            .unwrap()
            .contains("fix: bringing the environment up renews the certificate and re-applies it (`kind-parity up`)"),
        "{xml}"
    );
    assert_eq!(case("tls.auth").attribute("classname"), Some("tls"));
    assert_eq!(case("tls.auth").attribute("time"), Some("0.012"));
    let error = case("oidc.issuer").children().find(|n| n.has_tag_name("error")).unwrap();
    assert_eq!(error.attribute("type"), Some("blocked"));
    assert!(case("nats").children().any(|n| n.has_tag_name("skipped")));
    assert!(case("route.api").children().all(|n| !n.has_tag_name("failure") && !n.has_tag_name("error")));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.xml");
    fixed_report().write_junit("kind-parity validate", &path, &commands).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), xml);
}
