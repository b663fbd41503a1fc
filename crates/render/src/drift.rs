//! The drift between the compose and kind modes of one config: per service, env keys present
//! in one mode only, and values whose meaning differs (more than scheme, host or port).
//!
//! Values written once with contract references mean the same in both modes by construction;
//! drift can only come from per-mode overrides (`compose.env`, `kind.env`), which are compared
//! after resolution. Secrets are resolved to placeholders: the report never holds a secret.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::refs::Mode;
use crate::render::resolve_env;
use crate::secrets::Secrets;

/// The drift of a whole config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Services with drift; services without any are left out.
    pub services: Vec<ServiceDrift>,
}

/// The drift of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceDrift {
    /// The service.
    pub service: String,
    /// Keys set in compose mode only.
    pub only_compose: Vec<String>,
    /// Keys set in kind mode only.
    pub only_kind: Vec<String>,
    /// Keys whose values differ in meaning.
    pub differing: Vec<ValueDrift>,
}

/// One key whose value differs in more than transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueDrift {
    /// The env key.
    pub key: String,
    /// Its compose value (secrets shown as placeholders).
    pub compose: String,
    /// Its kind value (secrets shown as placeholders).
    pub kind: String,
}

impl DriftReport {
    /// Whether the two modes agree.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no drift: every service's environment means the same in compose and kind");
        }
        for s in &self.services {
            writeln!(f, "{}:", s.service)?;
            for k in &s.only_compose {
                writeln!(f, "  {k}: set in compose only")?;
            }
            for k in &s.only_kind {
                writeln!(f, "  {k}: set in kind only")?;
            }
            for d in &s.differing {
                writeln!(
                    f,
                    "  {}: differs beyond scheme/host/port\n    compose: {}\n    kind:    {}",
                    d.key, d.compose, d.kind
                )?;
            }
        }
        Ok(())
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
        let raw = |overrides: &indexmap::IndexMap<String, String>, key: &str| {
            overrides.get(key).or_else(|| service.env.get(key)).cloned()
        };
        let compose = resolve_env(config, name, Mode::Compose, &placeholders)?;
        let kind = resolve_env(config, name, Mode::Kind, &placeholders)?;
        let (compose_all, kind_all) = (compose.all(), kind.all());
        let keys: BTreeSet<&str> = compose_all.keys().chain(kind_all.keys()).copied().collect();
        let mut d = ServiceDrift { service: name.clone(), ..ServiceDrift::default() };
        for key in keys {
            match (compose_all.get(key), kind_all.get(key)) {
                (Some(_), None) => d.only_compose.push(key.to_owned()),
                (None, Some(_)) => d.only_kind.push(key.to_owned()),
                (Some(c), Some(k)) => {
                    let same_text = raw(&service.compose.env, key) == raw(&service.kind.env, key);
                    if !same_text && !same_meaning(c, k) {
                        d.differing.push(ValueDrift {
                            key: key.to_owned(),
                            compose: (*c).to_owned(),
                            kind: (*k).to_owned(),
                        });
                    }
                }
                (None, None) => {}
            }
        }
        if !(d.only_compose.is_empty() && d.only_kind.is_empty() && d.differing.is_empty()) {
            report.services.push(d);
        }
    }
    Ok(report)
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
    use super::same_meaning;

    #[test]
    fn urls_differing_only_in_transport_mean_the_same() {
        assert!(same_meaning("http://localhost:8081/realms/dev", "https://auth.localtest.me/realms/dev"));
        assert!(same_meaning("http://localhost:3000/", "https://web.localtest.me"));
        assert!(!same_meaning("http://localhost:8081/realms/dev", "https://auth.localtest.me/auth/realms/dev"));
        assert!(!same_meaning("postgres://app:x@localhost/app", "postgres://app:x@db/other"));
        assert!(!same_meaning("true", "false"));
    }
}
