//! Finds the test bed's components for integration tests (see ../shared/testbed/README.md).
//!
//! Each component is named by a `KIND_PARITY_TEST_*` variable. When it is unset, the test skips
//! loudly (a line on stderr naming the variable and how to start the test bed), except under
//! `CI=true`, where a missing component is a failure: CI must never pass by skipping.

#![allow(clippy::print_stderr)]

/// The test bed's kubeconfig (a real kube-apiserver).
pub const KUBECONFIG: &str = "KIND_PARITY_TEST_KUBECONFIG";
/// The test bed's PostgreSQL, `host:port`.
pub const POSTGRES: &str = "KIND_PARITY_TEST_POSTGRES";
/// The test bed's Redis, `host:port`.
pub const REDIS: &str = "KIND_PARITY_TEST_REDIS";
/// The test bed's NATS, `host:port`.
pub const NATS: &str = "KIND_PARITY_TEST_NATS";
/// The kind-node stand-in image (a real containerd).
pub const NODE_IMAGE: &str = "KIND_PARITY_TEST_NODE_IMAGE";

/// Whether this run is CI's (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The value of a component's variable; `None` (after a loud skip line) when it is unset
/// outside CI. Panics under CI, so a missing component fails the run.
pub fn require(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if in_ci() => panic!(
            "{test}: {var} is not set and CI=true: start the test bed (../shared/testbed/up) and source its env file"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: {var} is not set; start the test bed (../shared/testbed/up; . \"$(../shared/testbed/up --print-env-file)\") to run it"
            );
            None
        }
    }
}

/// `--set` overrides that switch every optional component of the demo stack on (phases 2 and 3).
pub const ALL_COMPONENTS_ON: &[(&str, &str)] = &[
    ("nats.enabled", "true"),
    ("temporal.enabled", "true"),
    ("temporal.ui", "true"),
    ("registry.enabled", "true"),
    ("vault.enabled", "true"),
    ("vault.paths.secret/app.session", "session-key"),
];

/// `--set` overrides that leave the demo stack with its two services and no platform component.
pub const PLATFORM_OFF: &[(&str, &str)] = &[
    ("postgres.enabled", "false"),
    ("redis.enabled", "false"),
    ("keycloak.enabled", "false"),
    ("services.api.env", "{}"),
    ("services.api.depends_on", "[]"),
    ("services.web.env.OIDC_ISSUER", "none"),
];
