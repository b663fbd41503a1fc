//! The kind-parity gate in a team's CI: the commands a job runs, in order, as docs/ci.md's
//! GitHub Actions and GitLab CI jobs and the project's own `gate` workflow run them.
//! `cargo xtask e2e` runs these same command lines among its steps, so what the gate runs is
//! what the e2e checks on real kind; `tests/ci_docs.rs` checks that the docs and the workflows
//! run exactly these.

/// The prerequisites first, so a runner without Docker, kind, free ports 80/443 or disk space
/// fails in seconds with the fix instead of in the middle of `up`.
pub const DOCTOR: &[&str] = &["doctor"];

/// Creates the cluster and brings the stack up. A CI runner starts cold (the node image and
/// every stack image are pulled), so the wait is longer than the interactive default of 10m.
pub const UP: &[&str] = &["up", "--timeout", "15m"];

/// The parity suite, with the JUnit report the CI system shows.
pub const VALIDATE: &[&str] = &["validate", "--junit", "report.xml"];

/// On failure only: the diagnostics bundle (pods, logs, events, kind's node logs; secrets
/// redacted) into a folder the job publishes.
pub const LOGS: &[&str] = &["logs", "--out", "diagnostics"];

/// Always, last: the cluster goes, whatever failed. `--yes` because there is no one to ask.
pub const DOWN: &[&str] = &["down", "--yes"];

/// Every command of the gate, in the order a job runs them.
pub const GATE: [&[&str]; 5] = [DOCTOR, UP, VALIDATE, LOGS, DOWN];
