//! kind-parity-probes: the fail-closed parity suite behind `kind-parity validate`.
//!
//! A [`Probe`] checks one thing a browser or a service will rely on: an ingress route
//! ([`http`]), the certificate it is served with ([`tls`]), that a host name resolves ([`dns`]),
//! that Keycloak's issuer is the browser-facing URL exactly ([`http::OidcIssuer`]), the config
//! contract in the running cluster ([`cluster`]), and the dependencies at protocol level
//! ([`deps`]: Postgres, Redis, NATS with its declared streams, Temporal's gRPC health, Vault's declared paths). [`suite::derive`] builds the suite from the config (what
//! is enabled); [`suite::run`] runs it concurrently in dependency order: a probe whose
//! dependency failed is blocked by it, not a second failure. [`report`] prints the result as a
//! table, JSON or JUnit XML.
//!
//! What a failed probe says to do names no command of any tool: its remediation is text, and
//! the actions it refers to are [`Next`] values (bring the environment up, read its status or
//! its logs, reset it, read the rendered manifests or the drift report, give a component's
//! address), which the caller words in its own terms. The `kind-parity` binary words them as
//! its commands; [`Report::table`] and [`Report::junit`] take the caller's words, and the JSON
//! form carries each result's `next` as `{"action": "up"}`, `{"action": "logs", "of": "vault"}`,
//! `{"action": "address", "component": "postgres"}`.
//!
//! Fail closed: a probe that cannot decide (a timeout, a refused connection, an answer it does
//! not understand) fails with the reason. Only a switched-off component makes a probe skip.

pub mod cluster;
pub mod deps;
mod derive;
pub mod dns;
mod error;
pub mod forward;
pub mod http;
pub mod login;
mod probe;
pub mod report;
pub mod suite;
pub mod tls;

/// The client the cluster and port-forward probes take, re-exported so an embedder passes the
/// version this crate was built with.
pub use kube;

pub use error::{Error, Result};
pub use probe::{Check, Failure, Next, Outcome, Probe, ProbeResult, worded};
pub use report::Report;
