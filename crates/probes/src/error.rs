//! The crate's error: what stops a suite from being built or run at all. A probe that fails is
//! not an error; it is a result.

use std::path::PathBuf;

/// A result whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that stops a suite before its probes decide anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two probes have the same id.
    #[error("two probes are named `{0}`; probe ids must be unique")]
    DuplicateProbe(String),
    /// A probe depends on one that is not in the suite.
    #[error("probe `{probe}` depends on `{dependency}`, which is not in the suite")]
    UnknownDependency {
        /// The probe.
        probe: String,
        /// The missing dependency.
        dependency: String,
    },
    /// The dependencies go round in a circle.
    #[error("probe dependencies form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The environment's local CA is not a usable certificate.
    #[error("the environment's CA certificate cannot be read: {0}")]
    BadCa(String),
    /// The environment's state lacks a value the suite needs that rendering generates (its
    /// local CA, the login probe's password): nothing rendered the environment yet.
    #[error("the environment has no {what} yet")]
    NotGenerated {
        /// What is missing: `local CA`, `keycloak-login-password`.
        what: String,
    },
    /// `keycloak.login` cannot be turned into a login probe.
    #[error("the login probe cannot be set up: {0}")]
    LoginSetup(String),
    /// The JUnit report could not be written.
    #[error("writing the JUnit report to {path}")]
    WriteJunit {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JUnit report could not be serialized.
    #[error("serializing the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
}
