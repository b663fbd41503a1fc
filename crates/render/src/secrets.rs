//! Generated secrets and the local CA of one environment.
//!
//! Generated once by the caller (randomness and clocks stay out of `render`), stored in the
//! environment's state folder with mode 0600, and passed to `render`, which stays deterministic.
//! [`Secrets::ensure`] only adds what is missing: passwords never rotate behind a running
//! database's back, and the CA the user trusted stays the same; only the leaf certificate is
//! re-issued when the hosts change or it nears expiry.

use std::collections::BTreeMap;
use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData as _,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::config::Config;
use crate::error::{Error, Result};

/// A leaf certificate is re-issued when it would expire within this time.
const RENEW_BEFORE: Duration = Duration::days(30);

/// The secrets of one environment. `Debug` never shows values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// Generated values by name.
    pub values: BTreeMap<String, String>,
    /// The local CA and the ingress certificate.
    pub tls: Option<TlsMaterial>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("tls", &self.tls.as_ref().map(|t| &t.hosts))
            .finish()
    }
}

/// The local CA and the certificate the ingress serves for every browser-facing host.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsMaterial {
    /// CA certificate, PEM: what users trust.
    pub ca_cert: String,
    /// CA private key, PEM.
    pub ca_key: String,
    /// Leaf certificate, PEM.
    pub cert: String,
    /// Leaf private key, PEM.
    pub key: String,
    /// The host names the leaf covers.
    pub hosts: Vec<String>,
    /// When the leaf expires, as a Unix timestamp.
    pub not_after: i64,
}

impl TlsMaterial {
    /// Each certificate parses as an X.509 certificate in PEM and each key as a PEM private key
    /// of its certificate, so a hand-edited file is refused here rather than rendered into the
    /// ingress's Secret as is.
    fn check(&self) -> Result<()> {
        let invalid = |field: &str, problem: &str| Error::SecretsFormat {
            at: format!("tls.{field}"),
            problem: problem.to_owned(),
        };
        for (cert_field, cert, key_field, key) in
            [("ca_cert", &self.ca_cert, "ca_key", &self.ca_key), ("cert", &self.cert, "key", &self.key)]
        {
            let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes())
                .map_err(|_| invalid(cert_field, "not a PEM certificate"))?;
            let parsed = pem.parse_x509().map_err(|_| invalid(cert_field, "not a PEM certificate"))?;
            let key = KeyPair::from_pem(key).map_err(|_| invalid(key_field, "not a PEM private key"))?;
            if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
                return Err(invalid(key_field, &format!("not the key of tls.{cert_field}")));
            }
        }
        Ok(())
    }
}

/// Where in the stored secrets a JSON error is: the keys leading to it, and its line and column.
fn format_at(path: &str, error: &serde_json::Error) -> String {
    let position = format!("line {} column {}", error.line(), error.column());
    if path.is_empty() { position } else { format!("{path} ({position})") }
}

/// What is wrong, without the value: serde_json's syntax messages are fixed texts, but its data
/// messages quote what they found.
fn json_problem(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            let text = error.to_string();
            text.find(" at line ").map_or(text.clone(), |i| text[..i].to_owned())
        }
        Category::Data => {
            let text = error.to_string();
            // `missing field `ca_key`` names a key, not a value.
            match text.strip_prefix("missing field ") {
                Some(rest) => format!("missing field {}", rest.find(" at line ").map_or(rest, |i| &rest[..i])),
                None => "a value of the wrong type".to_owned(),
            }
        }
    }
}

/// What [`Secrets::ensure`] changed, for the caller to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Names of newly generated values (replaced ones included).
    pub generated: Vec<String>,
    /// Stored values replaced because their consumer cannot read them, with why.
    pub replaced: Vec<(String, String)>,
    /// Whether a CA was created.
    pub created_ca: bool,
    /// Why the leaf was (re-)issued, when it was.
    pub issued_cert: Option<String>,
}

impl Changes {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.generated.is_empty() && self.replaced.is_empty() && !self.created_ca && self.issued_cert.is_none()
    }
}

impl Secrets {
    /// The environment's identity: `sha256:` and the hex SHA-256 of its local CA's certificate,
    /// which each state folder generates for itself. Rendered as the namespace's
    /// `kind-parity.dev/identity` annotation, so that a second checkout with the same `name` on
    /// the same cluster is told apart from the first instead of replacing its passwords. `None`
    /// before [`Secrets::ensure`] made the CA.
    pub fn identity(&self) -> Option<String> {
        use sha2::{Digest as _, Sha256};
        let tls = self.tls.as_ref()?;
        let digest = Sha256::digest(tls.ca_cert.as_bytes());
        Some(format!("sha256:{}", crate::render::hex(&digest)))
    }

    /// Parses the stored form, and checks that its certificates and keys are PEM of their kind.
    ///
    /// The file holds the CA's private key: an error says where the file is wrong and how, never
    /// what it holds. serde's messages quote the offending value (`invalid type: string "-----BEGIN
    /// PRIVATE KEY-----…"`), so only their position and kind are kept.
    pub fn from_json(text: &str) -> Result<Self> {
        let invalid = |path: &str, error: &serde_json::Error| Error::SecretsFormat {
            at: format_at(path, error),
            problem: json_problem(error),
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let secrets: Self = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| invalid(&crate::config::Path::from(e.path()).to_string(), e.inner()))?;
        deserializer.end().map_err(|e| invalid("", &e))?;
        if let Some(tls) = &secrets.tls {
            tls.check()?;
        }
        Ok(secrets)
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("secrets serialize")
    }

    /// A value by name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Adds every secret the config needs and does not have yet, and a CA and leaf certificate
    /// covering the config's hosts. Values already present are kept, except a NATS password
    /// that nats-server cannot read as a string (see [`nats_reads_as_string`]): that environment
    /// could never start NATS, so it gets a new one (and NATS rolls, its Secret's hash changing).
    pub fn ensure(&mut self, config: &Config, rng: &mut impl Rng, now: OffsetDateTime) -> Result<Changes> {
        let mut changes = Changes::default();
        for (name, length) in config.secret_specs() {
            let unreadable = name == crate::config::NATS_PASSWORD
                && self.values.get(&name).is_some_and(|v| !nats_reads_as_string(v));
            if unreadable {
                changes.replaced.push((name.clone(), "nats-server reads it as a number, not a string".to_owned()));
            }
            if unreadable || !self.values.contains_key(&name) {
                self.values.insert(name.clone(), generate(rng, length));
                changes.generated.push(name);
            }
        }
        let mut hosts = config.browser_hosts();
        hosts.push(config.domain.clone());
        hosts.push(format!("*.{}", config.domain));
        hosts.sort();
        hosts.dedup();
        let reason = match &self.tls {
            None => Some("new environment".to_owned()),
            Some(t) if hosts.iter().any(|h| !t.hosts.contains(h)) => Some("the hosts changed".to_owned()),
            Some(t) if t.not_after - (now + RENEW_BEFORE).unix_timestamp() < 0 => {
                Some("it expires within 30 days".to_owned())
            }
            Some(_) => None,
        };
        if let Some(reason) = reason {
            let (ca_cert, ca_key) = match self.tls.take() {
                Some(t) => (t.ca_cert, t.ca_key),
                None => {
                    changes.created_ca = true;
                    new_ca(&config.name, now)?
                }
            };
            let (cert, key, not_after) = issue_leaf(&ca_cert, &ca_key, &hosts, now)?;
            self.tls = Some(TlsMaterial { ca_cert, ca_key, cert, key, hosts, not_after });
            changes.issued_cert = Some(reason);
        }
        Ok(changes)
    }
}

/// A generated value: alphanumeric, starting with a letter. Config parsers that type bare
/// values read one that starts with a digit as a number: nats-server parses an environment
/// variable's value as a config value (`conf/parse.go`, `lookupVariable`), and its lexer takes a
/// value that begins with a digit as a number, a size or a date (`conf/lex.go`, `lexValue`), so
/// about 1 in 150 alphanumeric passwords stopped the server.
pub(crate) fn generate(rng: &mut impl Rng, length: usize) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let first = (length > 0).then(|| char::from(LETTERS[rng.random_range(0..LETTERS.len())]));
    first.into_iter().chain(rng.sample_iter(Alphanumeric).take(length.saturating_sub(1)).map(char::from)).collect()
}

/// Whether nats-server reads `value`, given through an environment variable (`password:
/// $NATS_PASSWORD`), as the same string. Its lexer (`conf/lex.go` of nats-io/nats-server v2.11.8,
/// `lexValue` and `lexString`) reads a bare value as a string when it starts with a letter, holds
/// no character that ends or escapes a bare string, and is not one of the booleans.
pub fn nats_reads_as_string(value: &str) -> bool {
    let booleans = ["true", "false", "yes", "no", "on", "off"];
    value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !booleans.contains(&value.to_ascii_lowercase().as_str())
}

fn new_ca(environment: &str, now: OffsetDateTime) -> Result<(String, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
    params.distinguished_name.push(DnType::CommonName, format!("kind-parity {environment} local CA"));
    params.distinguished_name.push(DnType::OrganizationName, "kind-parity");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let key = KeyPair::generate().map_err(Error::Certificate)?;
    let cert = params.self_signed(&key).map_err(Error::Certificate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issue_leaf(ca_cert: &str, ca_key: &str, hosts: &[String], now: OffsetDateTime) -> Result<(String, String, i64)> {
    let ca_key = KeyPair::from_pem(ca_key).map_err(Error::Certificate)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key).map_err(Error::Certificate)?;
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(Error::Certificate)?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_default());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::hours(1);
    // Browsers reject leaf certificates valid for more than 398 days.
    let not_after = now + Duration::days(397);
    params.not_after = not_after;
    let key = KeyPair::generate().map_err(Error::Certificate)?;
    let cert = params.signed_by(&key, &issuer).map_err(Error::Certificate)?;
    Ok((cert.pem(), key.serialize_pem(), not_after.unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NATS_PASSWORD;
    use rand::SeedableRng;

    fn config() -> Config {
        crate::config::load(&crate::config::LoadOptions::default()).expect("demo loads").config
    }

    #[test]
    fn ensure_generates_once_and_keeps_values() {
        let config = config();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let now = OffsetDateTime::now_utc();
        let mut secrets = Secrets::default();
        let first = secrets.ensure(&config, &mut rng, now).unwrap();
        assert!(first.created_ca);
        assert!(first.generated.contains(&"postgres-app-password".to_owned()), "{first:?}");
        let before = secrets.clone();
        let second = secrets.ensure(&config, &mut rng, now).unwrap();
        assert!(second.is_empty(), "{second:?}");
        assert_eq!(before, secrets);
    }

    #[test]
    fn leaf_is_reissued_with_the_same_ca_when_hosts_change() {
        let mut config = config();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let now = OffsetDateTime::now_utc();
        let mut secrets = Secrets::default();
        secrets.ensure(&config, &mut rng, now).unwrap();
        let ca = secrets.tls.as_ref().unwrap().ca_cert.clone();
        config.domain = "example.test".into();
        let changes = secrets.ensure(&config, &mut rng, now).unwrap();
        assert_eq!(changes.issued_cert.as_deref(), Some("the hosts changed"));
        assert!(!changes.created_ca);
        assert_eq!(secrets.tls.as_ref().unwrap().ca_cert, ca);
        assert!(secrets.tls.as_ref().unwrap().hosts.contains(&"*.example.test".to_owned()));
        let later = now + Duration::days(380);
        let changes = secrets.ensure(&config, &mut rng, later).unwrap();
        assert_eq!(changes.issued_cert.as_deref(), Some("it expires within 30 days"));
    }

    #[test]
    fn generated_values_start_with_a_letter() {
        // Regression: a generated NATS password that began with digits stopped nats-server.
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for _ in 0..20_000 {
            let value = generate(&mut rng, 32);
            assert_eq!(value.len(), 32);
            assert!(nats_reads_as_string(&value), "{value}");
        }
    }

    #[test]
    fn a_stored_nats_password_nats_cannot_read_is_replaced_and_others_are_kept() {
        let mut config = config();
        config.nats.enabled = true;
        config.nats.auth = true;
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let now = OffsetDateTime::now_utc();
        let mut secrets = Secrets::default();
        secrets.ensure(&config, &mut rng, now).unwrap();
        secrets.values.insert(NATS_PASSWORD.into(), "3K9abcdefghijklmnopqrstuvwxyz012".into());
        secrets.values.insert("redis-password".into(), "9digitsfirstisfineforredis000000".into());
        let changes = secrets.ensure(&config, &mut rng, now).unwrap();
        assert_eq!(changes.generated, [NATS_PASSWORD]);
        assert_eq!(changes.replaced.len(), 1, "{changes:?}");
        assert!(nats_reads_as_string(secrets.get(NATS_PASSWORD).unwrap()));
        assert_eq!(secrets.get("redis-password"), Some("9digitsfirstisfineforredis000000"));
    }

    /// A valid stored form, as `ensure` writes it.
    fn stored() -> serde_json::Value {
        let mut secrets = Secrets::default();
        secrets.ensure(&config(), &mut rand::rngs::StdRng::seed_from_u64(6), OffsetDateTime::now_utc()).unwrap();
        serde_json::from_str(&secrets.to_json()).unwrap()
    }

    #[test]
    fn a_value_of_the_wrong_type_is_located_without_being_shown() {
        // Regression (issue 12): serde's message quoted the value, and so printed the CA's key.
        let mut json = stored();
        let key = json["tls"]["ca_key"].as_str().unwrap().to_owned();
        json["tls"]["not_after"] = key.clone().into();
        let error = Secrets::from_json(&serde_json::to_string_pretty(&json).unwrap()).unwrap_err().to_string();
        assert!(!error.contains("PRIVATE KEY"), "{error}");
        assert!(error.starts_with("the stored secrets are invalid at tls.not_after (line "), "{error}");
        assert!(error.contains(": a value of the wrong type; delete the file"), "{error}");
    }

    #[test]
    fn a_syntax_error_is_located_without_the_text_around_it() {
        let text = stored().to_string().replacen('{', "{,", 1);
        let error = Secrets::from_json(&text).unwrap_err().to_string();
        assert_eq!(
            error,
            "the stored secrets are invalid at line 1 column 2: key must be a string; delete the file to regenerate them (the local CA changes)"
        );
    }

    #[test]
    fn a_certificate_that_is_not_pem_is_refused() {
        // Regression (issue 12): `tls.cert: NOTPEM` was rendered into the ingress's Secret as is.
        let mut json = stored();
        json["tls"]["cert"] = "NOTPEM".into();
        let error = Secrets::from_json(&json.to_string()).unwrap_err().to_string();
        assert!(error.starts_with("the stored secrets are invalid at tls.cert: not a PEM certificate;"), "{error}");
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused() {
        let mut json = stored();
        json["tls"]["ca_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        let error = Secrets::from_json(&json.to_string()).unwrap_err().to_string();
        assert!(error.starts_with("the stored secrets are invalid at tls.ca_key: not a PEM private key;"), "{error}");
        assert!(!error.contains("AAAA"), "{error}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let mut json = stored();
        json["tls"]["key"] = json["tls"]["ca_key"].clone();
        let error = Secrets::from_json(&json.to_string()).unwrap_err().to_string();
        assert!(error.starts_with("the stored secrets are invalid at tls.key: not the key of tls.cert;"), "{error}");
    }

    #[test]
    fn the_stored_form_reads_back() {
        let json = stored();
        let secrets = Secrets::from_json(&json.to_string()).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&secrets.to_json()).unwrap(), json);
    }

    #[test]
    fn debug_never_shows_values() {
        let mut secrets = Secrets::default();
        secrets.values.insert("redis-password".into(), "hunter2hunter2".into());
        let shown = format!("{secrets:?}");
        assert!(shown.contains("redis-password") && !shown.contains("hunter2"), "{shown}");
    }
}
