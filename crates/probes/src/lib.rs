//! kind-parity-probes: the fail-closed parity suite behind `kind-parity validate`.
//!
//! Planned surface (not implemented yet): probes derived from the config (ingress routing, TLS
//! against the local CA, DNS, OIDC issuer equality, the config contract, protocol-level checks
//! of Postgres, Redis, NATS, Temporal), run concurrently in dependency order, reported as a
//! table, JSON or JUnit. A probe that cannot decide fails with its reason; it never passes.

use std::fmt;

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Checked, and as expected.
    Pass,
    /// Checked and wrong, or could not be checked (timeout, refused): fail closed.
    Fail,
    /// Not run because a probe it depends on failed.
    Blocked,
    /// Not run because its component is switched off.
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Blocked => "blocked",
            Self::Skipped => "skipped",
        })
    }
}
