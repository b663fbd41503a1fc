//! Contract references in service environments: `{{ postgres.url "app" }}`, resolved per mode;
//! `{{ "text" }}` is literal text, so `{{ "{{" }}` writes `{{`.
//!
//! A small dedicated parser rather than handlebars: references must be checked when the config
//! loads (unknown names get a "did you mean", unknown databases and secrets are errors) and each
//! resolves to two values, one per mode, with a flag for values that carry a secret.

use std::fmt;

use crate::config::Config;
use crate::config::Runs;

/// A piece of an environment value: literal text or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A `{{ … }}` reference.
    Ref(Reference),
}

/// A parsed `{{ name "arg" … }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The dotted name (`postgres.url`, `service.api.url`, `secret`).
    pub name: String,
    /// Quoted arguments.
    pub args: Vec<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{ {}", self.name)?;
        for a in &self.args {
            write!(f, " {a:?}")?;
        }
        f.write_str(" }}")
    }
}

/// Parses an environment value into text and references; the error says what is malformed.
pub fn parse(value: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("`{{{{` at byte {start} is never closed with `}}}}`"))?;
        let inner = after[..end].trim();
        // `{{ "text" }}` is literal text: the one way to write `{{` itself (`{{ "{{" }}`).
        match inner.strip_prefix('"').and_then(|quoted| quoted.strip_suffix('"')) {
            Some(text) if !text.contains('"') => pieces.push(Piece::Text(text.to_owned())),
            _ => pieces.push(Piece::Ref(parse_reference(inner)?)),
        }
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

fn parse_reference(inner: &str) -> Result<Reference, String> {
    let name_end = inner.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(inner.len());
    let name = &inner[..name_end];
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || !name.chars().all(valid) || name.starts_with('.') || name.ends_with('.') {
        return Err(format!(
            "`{{{{ {inner} }}}}` is not a reference; write a name such as `{{{{ keycloak.issuer }}}}`"
        ));
    }
    let mut args = Vec::new();
    let mut rest = inner[name_end..].trim_start();
    while !rest.is_empty() {
        let Some(body) = rest.strip_prefix('"') else {
            return Err(format!("arguments of `{name}` must be quoted: `{{{{ {name} \"value\" }}}}`"));
        };
        let close = body.find('"').ok_or_else(|| format!("an argument of `{name}` is missing its closing quote"))?;
        args.push(body[..close].to_owned());
        rest = body[close + 1..].trim_start();
    }
    Ok(Reference { name: name.to_owned(), args })
}

/// A checked reference to one contract value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contract {
    /// `postgres.url "db"`: a connection URL with the owner's credentials.
    PostgresUrl(String),
    /// `postgres.host`.
    PostgresHost,
    /// `postgres.port`.
    PostgresPort,
    /// `postgres.user "db"`: the database's owner.
    PostgresUser(String),
    /// `postgres.password "db"`: the owner's password.
    PostgresPassword(String),
    /// `redis.url`, with the password.
    RedisUrl,
    /// `redis.host`.
    RedisHost,
    /// `redis.port`.
    RedisPort,
    /// `redis.password`.
    RedisPassword,
    /// `keycloak.issuer`: the browser-facing issuer URL of the realm.
    KeycloakIssuer,
    /// `keycloak.url`: the browser-facing base URL.
    KeycloakUrl,
    /// `keycloak.realm`.
    KeycloakRealm,
    /// `nats.url`.
    NatsUrl,
    /// `temporal.address`: host:port of the frontend.
    TemporalAddress,
    /// `vault.addr`.
    VaultAddr,
    /// `service.NAME.url`: the browser-facing URL of a service with an ingress.
    ServiceUrl(String),
    /// `service.NAME.internal_url ["PORT"]`: the `http://` URL other services reach it by, on
    /// its main port or the named one (service, port name).
    ServiceInternalUrl(String, String),
    /// `service.NAME.address ["PORT"]`: `host:port` of its main port or the named one (service,
    /// port name), for what is not HTTP (gRPC, a UDP listener).
    ServiceAddress(String, String),
    /// `secret "name"`: a generated secret.
    Secret(String),
    /// `domain`.
    Domain,
}

/// Every reference name, for "did you mean" and for the docs.
pub const NAMES: &[&str] = &[
    "postgres.url",
    "postgres.host",
    "postgres.port",
    "postgres.user",
    "postgres.password",
    "redis.url",
    "redis.host",
    "redis.port",
    "redis.password",
    "keycloak.issuer",
    "keycloak.url",
    "keycloak.realm",
    "nats.url",
    "temporal.address",
    "vault.addr",
    "service.NAME.url",
    "service.NAME.internal_url",
    "service.NAME.address",
    "secret",
    "domain",
];

/// Why a reference cannot be resolved: what is wrong and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: Option<String>,
}

impl RefError {
    fn new(message: String, help: Option<String>) -> Self {
        Self { message, help }
    }
}

/// Checks a reference against the config: the name exists, its component is on, its argument
/// names something defined.
pub fn classify(r: &Reference, config: &Config, secrets: &[String]) -> Result<Contract, RefError> {
    let arity = |n: usize, example: &str| -> Result<(), RefError> {
        if r.args.len() == n {
            Ok(())
        } else {
            Err(RefError::new(
                format!("`{}` takes {n} argument(s), got {}", r.name, r.args.len()),
                Some(format!("write `{example}`")),
            ))
        }
    };
    let component = |enabled: bool, name: &str| -> Result<(), RefError> {
        if enabled {
            Ok(())
        } else {
            Err(RefError::new(
                format!("`{}` refers to {name}, which is disabled", r.name),
                Some(format!("set `{name}.enabled: true` or remove the reference")),
            ))
        }
    };
    let database = |example: &str| -> Result<String, RefError> {
        arity(1, example)?;
        let db = &r.args[0];
        if config.databases().contains_key(db.as_str()) {
            Ok(db.clone())
        } else {
            let known: Vec<String> = config.databases().keys().cloned().collect();
            Err(RefError::new(
                format!("database `{db}` is not declared"),
                Some(format!("declare it under `postgres.databases` (declared: {})", list(&known))),
            ))
        }
    };
    let name = r.name.as_str();
    let contract = match name {
        "postgres.url" | "postgres.user" | "postgres.password" => {
            component(config.postgres.enabled, "postgres")?;
            let db = database(&format!("{{{{ {name} \"app\" }}}}"))?;
            match name {
                "postgres.url" => Contract::PostgresUrl(db),
                "postgres.user" => Contract::PostgresUser(db),
                _ => Contract::PostgresPassword(db),
            }
        }
        "postgres.host" | "postgres.port" => {
            component(config.postgres.enabled, "postgres")?;
            arity(0, &format!("{{{{ {name} }}}}"))?;
            if name == "postgres.host" { Contract::PostgresHost } else { Contract::PostgresPort }
        }
        "redis.url" | "redis.host" | "redis.port" | "redis.password" => {
            component(config.redis.enabled, "redis")?;
            arity(0, &format!("{{{{ {name} }}}}"))?;
            match name {
                "redis.url" => Contract::RedisUrl,
                "redis.host" => Contract::RedisHost,
                "redis.port" => Contract::RedisPort,
                _ => Contract::RedisPassword,
            }
        }
        "keycloak.issuer" | "keycloak.url" | "keycloak.realm" => {
            component(config.keycloak.enabled, "keycloak")?;
            arity(0, &format!("{{{{ {name} }}}}"))?;
            match name {
                "keycloak.issuer" => Contract::KeycloakIssuer,
                "keycloak.url" => Contract::KeycloakUrl,
                _ => Contract::KeycloakRealm,
            }
        }
        "nats.url" => {
            component(config.nats.enabled, "nats")?;
            arity(0, "{{ nats.url }}")?;
            Contract::NatsUrl
        }
        "temporal.address" => {
            component(config.temporal.enabled, "temporal")?;
            arity(0, "{{ temporal.address }}")?;
            Contract::TemporalAddress
        }
        "vault.addr" => {
            component(config.vault.enabled, "vault")?;
            arity(0, "{{ vault.addr }}")?;
            Contract::VaultAddr
        }
        "domain" => {
            arity(0, "{{ domain }}")?;
            Contract::Domain
        }
        "secret" => {
            arity(1, "{{ secret \"session-key\" }}")?;
            let s = &r.args[0];
            if !secrets.iter().any(|k| k == s) {
                let help = match crate::error::did_you_mean(s, secrets.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("declare it under `secrets:` (known: {})", list(secrets)),
                };
                return Err(RefError::new(format!("secret `{s}` is not defined"), Some(help)));
            }
            Contract::Secret(s.clone())
        }
        _ if name.starts_with("service.") => {
            let parts: Vec<&str> = name.split('.').collect();
            let (svc, field) = match parts.as_slice() {
                ["service", svc, field] => (*svc, *field),
                _ => {
                    return Err(RefError::new(
                        format!("`{name}` is not a service reference"),
                        Some("write `{{ service.NAME.url }}` or `{{ service.NAME.internal_url }}`".into()),
                    ));
                }
            };
            match field {
                "url" => arity(0, &format!("{{{{ service.{svc}.url }}}}"))?,
                "internal_url" | "address" if r.args.len() > 1 => {
                    return Err(RefError::new(
                        format!("`{name}` takes at most one argument, the name of a port"),
                        Some(format!("write `{{{{ {name} }}}}` for its main port or `{{{{ {name} \"grpc\" }}}}`")),
                    ));
                }
                _ => {}
            }
            let Some(service) = config.services.get(svc) else {
                let names: Vec<&str> = config.services.keys().map(String::as_str).collect();
                let help = match crate::error::did_you_mean(svc, names.iter().copied()) {
                    Some(best) => format!("did you mean `service.{best}.{field}`?"),
                    None => format!("services are: {}", names.join(", ")),
                };
                return Err(RefError::new(format!("service `{svc}` is not defined"), Some(help)));
            };
            if matches!(field, "url" | "internal_url" | "address") && service.main_port().is_none() {
                return Err(RefError::new(
                    format!("service `{svc}` has no `port`, so it serves nothing to call"),
                    Some(format!("give `services.{svc}.port` the port it listens on, or remove the reference")),
                ));
            }
            // The port `internal_url` and `address` name: the argument's, or the main port.
            let port = || {
                let named = match r.args.first() {
                    Some(name) => service.named_port(name),
                    None => service.main_port(),
                };
                named.ok_or_else(|| {
                    let name = r.args.first().map(String::as_str).unwrap_or_default();
                    let ports: Vec<&str> = service.named_ports().iter().map(|p| p.name).collect();
                    let help = match crate::error::did_you_mean(name, ports.iter().copied()) {
                        Some(best) => format!("did you mean `{{{{ service.{svc}.{field} \"{best}\" }}}}`?"),
                        None => format!("its ports are: {}", ports.join(", ")),
                    };
                    RefError::new(format!("service `{svc}` has no port `{name}`"), Some(help))
                })
            };
            match field {
                "url" if service.ingress.is_none() => {
                    return Err(RefError::new(
                        format!("service `{svc}` has no ingress, so it has no browser-facing url"),
                        Some(format!("use `{{{{ service.{svc}.internal_url }}}}` or give it an `ingress.host`")),
                    ));
                }
                "url" => Contract::ServiceUrl(svc.to_owned()),
                "internal_url" => {
                    let port = port()?;
                    if port.protocol == crate::config::Protocol::Udp {
                        return Err(RefError::new(
                            format!("port `{}` of service `{svc}` is UDP, which no `http://` URL reaches", port.name),
                            Some(format!(
                                "write `{{{{ service.{svc}.address \"{}\" }}}}` for its host:port",
                                port.name
                            )),
                        ));
                    }
                    Contract::ServiceInternalUrl(svc.to_owned(), port.name.to_owned())
                }
                "address" => Contract::ServiceAddress(svc.to_owned(), port()?.name.to_owned()),
                other => {
                    return Err(RefError::new(
                        format!("services have no `{other}`"),
                        Some(format!(
                            "write `service.{svc}.url`, `service.{svc}.internal_url` or `service.{svc}.address`"
                        )),
                    ));
                }
            }
        }
        _ => {
            let help = match crate::error::did_you_mean(name, NAMES.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("known references: {}", NAMES.join(", ")),
            };
            return Err(RefError::new(format!("`{name}` is not a contract value"), Some(help)));
        }
    };
    Ok(contract)
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

/// Which mode a value is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// docker compose on the developer's machine: compose service names for containers,
    /// `localhost:<port>` for host processes, the browser's `http://localhost:<port>` URLs.
    Compose,
    /// The kind parity lane: in-cluster DNS and browser-facing `https://<host>.<domain>`.
    Kind,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Compose => "compose",
            Self::Kind => "kind",
        })
    }
}

/// A resolved value, and whether it carries a secret (then it goes into a Secret, not a ConfigMap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The value.
    pub value: String,
    /// Whether any part of it is secret.
    pub sensitive: bool,
}

/// Who reads a resolved value in compose mode, which decides the addresses it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    /// The mode.
    pub mode: Mode,
    /// Where the reading service runs in compose mode (ignored in kind, where every service runs
    /// in a pod).
    pub runs: Runs,
}

impl Consumer {
    /// A service in kind.
    pub const KIND: Self = Self { mode: Mode::Kind, runs: Runs::Container };

    /// The consumer that `service` of `config` is in `mode`.
    pub fn of(config: &Config, service: &str, mode: Mode) -> Self {
        Self { mode, runs: config.services[service].compose.runs }
    }
}

/// The compose service names of the platform components: what a container on the compose
/// network reaches them by, and what the rendered `compose.yaml` calls them.
pub mod compose_names {
    /// PostgreSQL.
    pub const POSTGRES: &str = "postgres";
    /// Redis.
    pub const REDIS: &str = "redis";
    /// Keycloak.
    pub const KEYCLOAK: &str = "keycloak";
    /// NATS.
    pub const NATS: &str = "nats";
    /// Temporal's frontend.
    pub const TEMPORAL: &str = "temporal";
    /// Vault.
    pub const VAULT: &str = "vault";
    /// The name a container resolves to the host by (`extra_hosts: host.docker.internal:host-gateway`).
    pub const HOST: &str = "host.docker.internal";
}

/// Resolves a checked contract value for a consumer; `secret` looks up generated secrets.
///
/// Server-side addresses depend on where the consumer runs: in kind, cluster DNS; in compose, a
/// container gets the compose service name and the container port (`postgres:5432`), a host
/// process `localhost` and the published port. Browser-facing values (`keycloak.issuer`,
/// `keycloak.url`, `service.NAME.url`) are the URLs a browser uses, whoever reads them: they
/// must equal what the browser sees (an issuer is compared to the token's).
pub fn resolve(
    contract: &Contract,
    consumer: Consumer,
    config: &Config,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, crate::Error> {
    use compose_names as names;
    let need = |name: &str| secret(name).ok_or_else(|| crate::Error::MissingSecret { name: name.to_owned() });
    let ns = config.namespace();
    let in_container = consumer.runs == Runs::Container;
    // host:port of a platform component: its name and container port in kind and for a compose
    // container, localhost and the published port for a compose host process.
    let address = |kind_name: &str, compose_name: &str, port: u16, compose_port: u16| match consumer.mode {
        Mode::Kind => (format!("{kind_name}.{ns}.svc.cluster.local"), port),
        Mode::Compose if in_container => (compose_name.to_owned(), port),
        Mode::Compose => ("localhost".to_owned(), compose_port),
    };
    let plain = |value: String| Ok(Resolved { value, sensitive: false });
    let hidden = |value: String| Ok(Resolved { value, sensitive: true });
    let (pg_host, pg_port) = address("postgres", names::POSTGRES, 5432, config.postgres.compose_port);
    let (redis_host, redis_port) = address("redis", names::REDIS, 6379, config.redis.compose_port);
    // host:port of a service's named port, by where the consumer and the service run.
    let service_address = |name: &str, port: &str| {
        let service = &config.services[name];
        let port = service.named_port(port).expect("classify checked the port");
        let (number, compose_port) = (port.port, port.compose_port);
        match (consumer.mode, consumer.runs, service.compose.runs) {
            (Mode::Kind, _, _) => format!("{name}.{ns}.svc.cluster.local:{number}"),
            // Container to container: the compose network, the container port.
            (Mode::Compose, Runs::Container, Runs::Container) => format!("{name}:{number}"),
            // A container calling a process on the host: through the host gateway, which
            // the rendered compose.yaml maps for such a consumer.
            (Mode::Compose, Runs::Container, Runs::Host) => format!("{}:{compose_port}", names::HOST),
            // A host process: the published port, or the port the other host process listens on.
            (Mode::Compose, Runs::Host, _) => format!("localhost:{compose_port}"),
        }
    };
    let keycloak_url = || match consumer.mode {
        Mode::Compose => format!("http://localhost:{}", config.keycloak.compose_port),
        Mode::Kind => config.kind_origin(&config.keycloak.host),
    };
    match contract {
        Contract::PostgresUrl(db) => {
            let owner = config.databases()[db.as_str()].clone();
            let password = need(&Config::postgres_password_secret(&owner))?;
            hidden(format!("postgres://{owner}:{password}@{pg_host}:{pg_port}/{db}"))
        }
        Contract::PostgresHost => plain(pg_host),
        Contract::PostgresPort => plain(pg_port.to_string()),
        Contract::PostgresUser(db) => plain(config.databases()[db.as_str()].clone()),
        Contract::PostgresPassword(db) => {
            hidden(need(&Config::postgres_password_secret(&config.databases()[db.as_str()]))?)
        }
        Contract::RedisUrl => {
            let password = need(crate::config::REDIS_PASSWORD)?;
            hidden(format!("redis://default:{password}@{redis_host}:{redis_port}"))
        }
        Contract::RedisHost => plain(redis_host),
        Contract::RedisPort => plain(redis_port.to_string()),
        Contract::RedisPassword => hidden(need(crate::config::REDIS_PASSWORD)?),
        Contract::KeycloakIssuer => plain(format!("{}/realms/{}", keycloak_url(), config.keycloak.realm)),
        Contract::KeycloakUrl => plain(keycloak_url()),
        Contract::KeycloakRealm => plain(config.keycloak.realm.clone()),
        Contract::NatsUrl => {
            let (host, port) = address("nats", names::NATS, 4222, config.nats.compose_port);
            if config.nats.auth {
                let password = need(crate::config::NATS_PASSWORD)?;
                hidden(format!("nats://{}:{password}@{host}:{port}", crate::config::NATS_USER))
            } else {
                plain(format!("nats://{host}:{port}"))
            }
        }
        Contract::TemporalAddress => {
            let (host, port) = address("temporal", names::TEMPORAL, 7233, config.temporal.compose_port);
            plain(format!("{host}:{port}"))
        }
        Contract::VaultAddr => {
            let (host, port) = address("vault", names::VAULT, 8200, config.vault.compose_port);
            plain(format!("http://{host}:{port}"))
        }
        Contract::ServiceUrl(name) => {
            let service = &config.services[name.as_str()];
            // The browser's compose URL is the host port of the port the Ingress routes to.
            let compose_port = service.ingress_port().expect("validation checked the port").compose_port;
            let ingress = service.ingress.as_ref().expect("classify checked the ingress");
            let origin = match consumer.mode {
                Mode::Compose => format!("http://localhost:{compose_port}"),
                Mode::Kind => config.kind_origin(&ingress.host),
            };
            plain(format!("{origin}{}", ingress.path.trim_end_matches('/')))
        }
        Contract::ServiceInternalUrl(name, port) => plain(format!("http://{}", service_address(name, port))),
        Contract::ServiceAddress(name, port) => plain(service_address(name, port)),
        Contract::Secret(name) => hidden(need(name)?),
        Contract::Domain => plain(match consumer.mode {
            Mode::Compose => "localhost".to_owned(),
            Mode::Kind => config.domain.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = match parse(input) {
            Ok(pieces) => pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => format!("text({t})"),
                    Piece::Ref(r) => format!("ref({} {:?})", r.name, r.args),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn parses_text_and_references() {
        check("plain", "text(plain)");
        check("{{ keycloak.issuer }}", "ref(keycloak.issuer [])");
        check("{{postgres.url \"app\"}}", "ref(postgres.url [\"app\"])");
        check("x={{ secret \"a\" }};y", "text(x=) ref(secret [\"a\"]) text(;y)");
        check("{{ service.api.url }}/v1", "ref(service.api.url []) text(/v1)");
    }

    #[test]
    fn a_quoted_text_is_literal_and_writes_braces() {
        // Regression (issue 12): a value could not hold `{{` at all.
        check("{{ \"{{\" }}.Values }}", "text({{) text(.Values }})");
        check("a{{\"x\"}}b", "text(a) text(x) text(b)");
    }

    #[test]
    fn rejects_malformed_references() {
        check("{{ keycloak.issuer", "error: `{{` at byte 0 is never closed with `}}`");
        check(
            "{{ postgres.url app }}",
            "error: arguments of `postgres.url` must be quoted: `{{ postgres.url \"value\" }}`",
        );
        check("{{ }}", "error: `{{  }}` is not a reference; write a name such as `{{ keycloak.issuer }}`");
        check("{{ secret \"x }}", "error: an argument of `secret` is missing its closing quote");
    }
}
