//! Finds the test bed's components for integration tests (`cargo xtask testbed up`; see the
//! README's Tests section).
//!
//! Each component is named by a `KIND_PARITY_TEST_*` variable. When it is unset, the test skips
//! loudly (a line on stderr naming the variable and how to start the test bed), except under
//! `CI=true`, where a missing component is a failure: CI must never pass by skipping.

#![allow(clippy::print_stderr)]

pub mod standin;

/// The test bed's kubeconfig (a real kube-apiserver).
pub const KUBECONFIG: &str = "KIND_PARITY_TEST_KUBECONFIG";
/// The test bed's PostgreSQL, `host:port`.
pub const POSTGRES: &str = "KIND_PARITY_TEST_POSTGRES";
/// The test bed's Redis, `host:port`.
pub const REDIS: &str = "KIND_PARITY_TEST_REDIS";
/// The test bed's NATS, `host:port`.
pub const NATS: &str = "KIND_PARITY_TEST_NATS";
/// The test bed's Temporal (the CLI's development server), its frontend's `host:port`; it has
/// the namespaces `default` and `orders`.
pub const TEMPORAL: &str = "KIND_PARITY_TEST_TEMPORAL";
/// The kind-node stand-in image (a real containerd).
pub const NODE_IMAGE: &str = "KIND_PARITY_TEST_NODE_IMAGE";
/// The kind cluster name of the test bed's node that runs pods (its container carries kind's
/// labels; the API server of [`KUBECONFIG`] schedules onto it).
pub const CLUSTER: &str = "KIND_PARITY_TEST_CLUSTER";
/// An image in that node from its start, for pods with `imagePullPolicy: Never`: busybox with
/// every applet (`sh`, `httpd`, `nc`, `sleep`…). Set with [`CLUSTER`].
pub const POD_IMAGE: &str = "KIND_PARITY_TEST_POD_IMAGE";
/// A Keycloak (`start-dev`) on loopback, its URL; the login probe's tests make realms in it.
pub const KEYCLOAK: &str = "KIND_PARITY_TEST_KEYCLOAK";
/// Its bootstrap admin, `admin:PASSWORD`.
pub const KEYCLOAK_ADMIN: &str = "KIND_PARITY_TEST_KEYCLOAK_ADMIN";
/// The kind stand-in (`bin/kind` of the test bed), for tests that create kind clusters.
pub const KIND: &str = "KIND_PARITY_TEST_KIND";

/// Deletes namespace `namespace` of the test bed's cluster (`KUBECONFIG`), for a test's drop
/// guard: on a thread with its own runtime and its own client, since a drop cannot await and the
/// test's client drives its connection on the test's runtime, which the drop blocks. Errors are
/// ignored: the namespace may be gone, or the cluster with it.
pub fn delete_namespace(namespace: &str) {
    let namespace = namespace.to_owned();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let Ok(path) = std::env::var(KUBECONFIG) else { return };
            let Ok(kubeconfig) = kube::config::Kubeconfig::read_from(path) else { return };
            let options = kube::config::KubeConfigOptions::default();
            let Ok(config) = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await else { return };
            let Ok(client) = kube::Client::try_from(config) else { return };
            let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
            let _ = namespaces.delete(&namespace, &kube::api::DeleteParams::background()).await;
        })
    })
    .join();
}

/// Whether this run is CI's (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A loud skip of test `test` for `why` (a line on stderr), or, under CI, a failure: for what
/// the test bed provides beyond a variable or a program (a user to run a server as…). Returns
/// `None` so a test's guard reads `return kind_parity_testkit::skip(test, "…")`.
pub fn skip<T>(test: &str, why: &str) -> Option<T> {
    assert!(!in_ci(), "{test}: {why}, and CI=true: the test bed provides it (cargo xtask testbed up)");
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// The value of a component's variable; `None` (after a loud skip line) when it is unset
/// outside CI. Panics under CI, so a missing component fails the run.
pub fn require(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if in_ci() => panic!(
            "{test}: {var} is not set and CI=true: start the test bed (cargo xtask testbed up) and load its env file (eval \"$(cargo xtask testbed env)\")"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: {var} is not set; start the test bed (cargo xtask testbed up; eval \"$(cargo xtask testbed env)\") to run it"
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

/// The path of a server program the test bed installs (`redis-server`, `nats-server`, Postgres's
/// `initdb`), for tests that need a private instance with other settings than the shared one.
/// Looked for on `PATH`, then in `/usr/sbin` and `/usr/lib/postgresql/*/bin`. Missing: a loud
/// skip, or a failure under CI.
pub fn require_program(name: &str, test: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/sbin".into());
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<std::path::PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev());
    }
    match dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!(
                "{test}: `{name}` is not installed and CI=true: the test bed installs it (cargo xtask testbed up services)"
            )
        }
        None => {
            eprintln!(
                "SKIPPED {test}: `{name}` is not installed; the test bed installs it (cargo xtask testbed up services)"
            );
            None
        }
    }
}
