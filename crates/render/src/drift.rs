//! The drift between the compose and kind modes of one config: per service, env keys present
//! in one mode only, and values whose meaning differs (more than scheme, host or port), each
//! either declared or not.
//!
//! A difference is declared when a per-mode override (`compose.env`, `kind.env`) sets the key:
//! someone decided the modes differ there (docs/modes.md), so it is listed, and it passes. A
//! value written once in `env` is the same text in both modes, so only its contract references
//! can make it differ; each must mean the same in both modes (a URL may change its scheme, host
//! and port, a host or port may change, nothing else may). When one does not, nobody declared
//! that difference: that is drift, and it fails. Secrets are resolved to placeholders: the
//! report never holds a secret.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::error::{Diagnostic, Diagnostics, Error};
use crate::refs::{self, Consumer, Contract, Mode, Piece};
use crate::render::resolve_env;
use crate::secrets::Secrets;

/// The drift of a whole config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Services whose env differs between the modes; services without any are left out.
    pub services: Vec<ServiceDrift>,
}

/// The differences of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceDrift {
    /// The service.
    pub service: String,
    /// Its env keys that differ, by key.
    pub differences: Vec<Difference>,
}

/// One env key whose value differs in more than transport, or that one mode does not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The env key.
    pub key: String,
    /// Its compose value (secrets shown as placeholders); `None` when compose does not set it.
    pub compose: Option<String>,
    /// Its kind value (secrets shown as placeholders); `None` when kind does not set it.
    pub kind: Option<String>,
    /// The overrides that declare the difference (`services.worker.kind.env.WORKER_CONCURRENCY`);
    /// empty when nothing declares it, which makes it drift.
    pub declared_by: Vec<String>,
}

impl Difference {
    /// Whether a per-mode override declares this difference.
    pub fn is_declared(&self) -> bool {
        !self.declared_by.is_empty()
    }
}

/// One line: `KEY: set in kind only`, `KEY: compose `2`, kind `8``.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.compose, &self.kind) {
            (Some(_), None) => write!(f, "{}: set in compose only", self.key),
            (None, Some(_)) => write!(f, "{}: set in kind only", self.key),
            (Some(c), Some(k)) => write!(f, "{}: compose `{c}`, kind `{k}`", self.key),
            (None, None) => write!(f, "{}: set in neither mode", self.key),
        }
    }
}

impl DriftReport {
    /// Whether the two modes agree everywhere, declared differences included.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The differences nothing declares, with their service: the drift that fails.
    pub fn undeclared(&self) -> impl Iterator<Item = (&str, &Difference)> {
        self.all().filter(|(_, d)| !d.is_declared())
    }

    /// The differences a per-mode override declares, with their service.
    pub fn declared(&self) -> impl Iterator<Item = (&str, &Difference)> {
        self.all().filter(|(_, d)| d.is_declared())
    }

    /// Whether the config passes: every difference is declared.
    pub fn passes(&self) -> bool {
        self.undeclared().next().is_none()
    }

    fn all(&self) -> impl Iterator<Item = (&str, &Difference)> {
        self.services.iter().flat_map(|s| s.differences.iter().map(move |d| (s.service.as_str(), d)))
    }

    fn write_group<'a>(
        f: &mut fmt::Formatter<'_>,
        differences: impl Iterator<Item = (&'a str, &'a Difference)>,
    ) -> fmt::Result {
        let mut service = None;
        for (name, d) in differences {
            if service != Some(name) {
                writeln!(f, "  {name}:")?;
                service = Some(name);
            }
            let declared =
                if d.is_declared() { format!(" (declared in {})", d.declared_by.join(", ")) } else { String::new() };
            match (&d.compose, &d.kind) {
                (Some(c), Some(k)) => {
                    writeln!(f, "    {}: differs beyond scheme/host/port{declared}", d.key)?;
                    writeln!(f, "      compose: {c}")?;
                    writeln!(f, "      kind:    {k}")?;
                }
                _ => writeln!(f, "    {d}{declared}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no drift: every service's environment means the same in compose and kind");
        }
        if self.declared().next().is_some() {
            writeln!(f, "declared differences (compose.env / kind.env overrides: decisions, not drift):")?;
            Self::write_group(f, self.declared())?;
        }
        if self.passes() {
            writeln!(f, "no undeclared drift: everything else means the same in compose and kind")
        } else {
            writeln!(f, "undeclared drift (written once in env, yet meaning differs between the modes):")?;
            Self::write_group(f, self.undeclared())
        }
    }
}

/// Computes the drift of a loaded config.
pub fn drift(config: &Config) -> crate::Result<DriftReport> {
    let mut placeholders = Secrets::default();
    for name in config.secret_names() {
        placeholders.values.insert(name.clone(), format!("secret-{name}"));
    }
    let mut report = DriftReport::default();
    for (name, service) in &config.services {
        let compose = resolve_env(config, name, Mode::Compose, &placeholders)?;
        let kind = resolve_env(config, name, Mode::Kind, &placeholders)?;
        let (compose_all, kind_all) = (compose.all(), kind.all());
        let keys: BTreeSet<&str> = compose_all.keys().chain(kind_all.keys()).copied().collect();
        let mut differences = Vec::new();
        for key in keys {
            let declared_by: Vec<String> = [("compose", &service.compose.env), ("kind", &service.kind.env)]
                .into_iter()
                .filter(|(_, overrides)| overrides.contains_key(key))
                .map(|(mode, _)| format!("services.{name}.{mode}.env.{key}"))
                .collect();
            let (c, k) = (compose_all.get(key).copied(), kind_all.get(key).copied());
            let differs = match (c, k) {
                (Some(c), Some(k)) if declared_by.is_empty() => {
                    !shared_value_means_the_same(config, name, key, &service.env[key], &placeholders)? && c != k
                }
                (Some(c), Some(k)) => {
                    let raw = |overrides: &indexmap::IndexMap<String, String>| {
                        overrides.get(key).or_else(|| service.env.get(key)).cloned()
                    };
                    raw(&service.compose.env) != raw(&service.kind.env) && !same_meaning(c, k)
                }
                (None, None) => false,
                _ => true,
            };
            if differs {
                differences.push(Difference {
                    key: key.to_owned(),
                    compose: c.map(str::to_owned),
                    kind: k.map(str::to_owned),
                    declared_by,
                });
            }
        }
        if !differences.is_empty() {
            report.services.push(ServiceDrift { service: name.clone(), differences });
        }
    }
    Ok(report)
}

/// Whether a value written once in `env` means the same in both modes: its text is the same,
/// so each of its references must.
fn shared_value_means_the_same(
    config: &Config,
    service: &str,
    key: &str,
    raw: &str,
    secrets: &Secrets,
) -> crate::Result<bool> {
    let invalid = |message: String| {
        Error::Config(Diagnostics(vec![Diagnostic::new(message).at(format!("services.{service}.env.{key}"))]))
    };
    let names = config.secret_names();
    let lookup = |name: &str| secrets.get(name).map(str::to_owned);
    for piece in refs::parse(raw).map_err(invalid)? {
        let Piece::Ref(reference) = piece else { continue };
        let contract = refs::classify(&reference, config, &names).map_err(|e| invalid(e.message))?;
        let compose = refs::resolve(&contract, Consumer::of(config, service, Mode::Compose), config, &lookup)?.value;
        let kind = refs::resolve(&contract, Consumer::KIND, config, &lookup)?.value;
        if !reference_means_the_same(&contract, &compose, &kind) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What may differ between a contract value's two resolutions. Every contract is named, so a
/// new one has to be placed here.
fn reference_means_the_same(contract: &Contract, compose: &str, kind: &str) -> bool {
    match contract {
        // Where a thing is reached: the transport, which is what the modes differ in.
        Contract::PostgresHost
        | Contract::PostgresPort
        | Contract::RedisHost
        | Contract::RedisPort
        | Contract::TemporalAddress
        | Contract::ServiceAddress(..)
        | Contract::Domain => true,
        // URLs: scheme, host and port may differ; path, query, credentials may not.
        Contract::PostgresUrl(_)
        | Contract::RedisUrl
        | Contract::KeycloakIssuer
        | Contract::KeycloakUrl
        | Contract::NatsUrl
        | Contract::VaultAddr
        | Contract::ServiceUrl(_)
        | Contract::ServiceInternalUrl(..) => same_meaning(compose, kind),
        // Names and credentials are the same in every mode.
        Contract::PostgresUser(_)
        | Contract::PostgresPassword(_)
        | Contract::RedisPassword
        | Contract::KeycloakRealm
        | Contract::Secret(_) => compose == kind,
    }
}

/// URLs mean the same when only scheme, host and port differ; other values when equal.
fn same_meaning(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(x), Ok(y)) if a.contains("://") && b.contains("://") => {
            x.path().trim_end_matches('/') == y.path().trim_end_matches('/')
                && x.query() == y.query()
                && x.fragment() == y.fragment()
                && x.username() == y.username()
                && x.password() == y.password()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_differing_only_in_transport_mean_the_same() {
        assert!(same_meaning("http://localhost:8081/realms/dev", "https://auth.localtest.me/realms/dev"));
        assert!(same_meaning("http://localhost:3000/", "https://web.localtest.me"));
        assert!(!same_meaning("http://localhost:8081/realms/dev", "https://auth.localtest.me/auth/realms/dev"));
        assert!(!same_meaning("postgres://app:x@localhost/app", "postgres://app:x@db/other"));
        assert!(!same_meaning("true", "false"));
    }

    #[test]
    fn a_reference_may_change_its_transport_and_nothing_else() {
        assert!(reference_means_the_same(&Contract::PostgresHost, "localhost", "postgres.kp-demo.svc.cluster.local"));
        assert!(reference_means_the_same(
            &Contract::KeycloakIssuer,
            "http://localhost:8081/realms/dev",
            "https://auth.localtest.me/realms/dev"
        ));
        // An issuer that gained a base path in one mode: the kind of bug the gate is for.
        assert!(!reference_means_the_same(
            &Contract::KeycloakIssuer,
            "http://localhost:8081/realms/dev",
            "https://auth.localtest.me/auth/realms/dev"
        ));
        assert!(!reference_means_the_same(&Contract::KeycloakRealm, "dev", "prod"));
    }

    fn difference(key: &str, compose: &str, kind: &str, declared_by: &[&str]) -> Difference {
        Difference {
            key: key.into(),
            compose: Some(compose.into()),
            kind: Some(kind.into()),
            declared_by: declared_by.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn only_undeclared_differences_fail() {
        let declared = difference("WORKER_CONCURRENCY", "2", "8", &["services.worker.kind.env.WORKER_CONCURRENCY"]);
        let undeclared = difference(
            "OIDC_ISSUER",
            "http://localhost:8081/realms/dev",
            "https://auth.localtest.me/auth/realms/dev",
            &[],
        );
        let mut report = DriftReport {
            services: vec![ServiceDrift { service: "worker".into(), differences: vec![declared.clone()] }],
        };
        assert!(report.passes() && !report.is_empty());
        assert_eq!(report.declared().collect::<Vec<_>>(), [("worker", &declared)]);
        report.services.push(ServiceDrift { service: "web".into(), differences: vec![undeclared.clone()] });
        assert!(!report.passes());
        assert_eq!(report.undeclared().collect::<Vec<_>>(), [("web", &undeclared)]);
        assert_eq!(
            undeclared.to_string(),
            "OIDC_ISSUER: compose `http://localhost:8081/realms/dev`, kind `https://auth.localtest.me/auth/realms/dev`"
        );
    }
}
