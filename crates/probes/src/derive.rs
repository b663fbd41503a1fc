//! The suite a config implies: a probe for everything enabled, a skip for every component that
//! is switched off, and the dependencies between them, so that a root cause blocks what follows
//! from it instead of failing it a second time.

use std::net::SocketAddr;
use std::time::Duration;

use kind_parity_cluster::ObjectRef;
use kind_parity_render::{Config, Secrets};
use url::Url;

use crate::cluster::{ApiReachable, ArtifactMatches, EnvContract, NoDrift, NodesReady, WorkloadReady};
use crate::deps::{Endpoint, Login, Nats, Postgres, Redis, Temporal, Vault};
use crate::dns::Resolves;
use crate::error::{Error, Result};
use crate::forward::ServicePort;
use crate::http::{OidcIssuer, Route, UnknownHost};
use crate::login::{LoginSpec, OidcLogin};
use crate::probe::{Check, Failure, Next, Probe};
use crate::tls::Certificate;

/// How the dependency probes reach Postgres, Redis and NATS.
#[derive(Debug, Clone, Default)]
pub enum Endpoints {
    /// Through a port-forward to each component's Service (needs the cluster).
    #[default]
    Forward,
    /// At declared `host:port` addresses; a component without one is reached by port-forward.
    Addresses {
        /// Postgres.
        postgres: Option<String>,
        /// Redis.
        redis: Option<String>,
        /// NATS.
        nats: Option<String>,
        /// Temporal's frontend.
        temporal: Option<String>,
    },
}

/// What the suite is derived from.
#[derive(Clone)]
pub struct Context<'a> {
    /// The effective config.
    pub config: &'a Config,
    /// The environment's secrets (credentials and the local CA).
    pub secrets: &'a Secrets,
    /// The cluster, with its context name, when there is one to check.
    pub cluster: Option<(kube::Client, String)>,
    /// The workloads the last apply created (from the inventory).
    pub workloads: Vec<ObjectRef>,
    /// How dependencies are reached.
    pub endpoints: Endpoints,
    /// Where the ingress's HTTPS port is reached; the config's listen address and port when unset.
    pub ingress: Option<SocketAddr>,
    /// The bootstrap artifacts as the repository has them now ([`kind_parity_render::artifacts`]).
    pub artifacts: Vec<kind_parity_render::ArtifactFile>,
}

const COMPONENTS: [&str; 5] = ["postgres", "redis", "nats", "temporal", "vault"];

/// `auth.login`: the login as a browser does it, after the issuer and the routes it crosses.
fn login_probe(
    config: &Config,
    context: &Context<'_>,
    login: &kind_parity_render::config::KeycloakLogin,
    issuer: Url,
    connect: SocketAddr,
    ca: &str,
) -> Result<Probe> {
    let service_origin = |name: &str| -> Result<Url> {
        let host =
            config.services.get(name).and_then(|s| s.ingress.as_ref()).map(|i| i.host.clone()).ok_or_else(|| {
                Error::LoginSetup(format!("keycloak.login names service `{name}`, which has no ingress host"))
            })?;
        Ok(Url::parse(&format!("{}/", config.kind_origin(&host))).expect("a kind origin is a URL"))
    };
    let redirect_uri = service_origin(&login.redirect)?;
    let api = match &login.api {
        Some(call) => Some(service_origin(&call.service)?.join(&call.path).expect("a path joins a URL")),
        None => None,
    };
    let password = context
        .secrets
        .get(kind_parity_render::config::KEYCLOAK_LOGIN_PASSWORD)
        .ok_or_else(|| Error::NotGenerated { what: kind_parity_render::config::KEYCLOAK_LOGIN_PASSWORD.into() })?
        .to_owned();
    let mut after = vec!["oidc.issuer".to_owned(), format!("route.{}", login.redirect)];
    if let Some(call) = &login.api {
        after.push(format!("route.{}", call.service));
    }
    let spec = LoginSpec {
        issuer,
        client_id: login.client.clone(),
        redirect_uri,
        username: login.user.clone(),
        password,
        api,
    };
    Ok(Probe::new("auth.login", "keycloak", OidcLogin::new(spec, Some(connect), Some(ca))?)
        .after(after)
        .timeout(Duration::from_secs(30)))
}

/// The suite for `context`.
pub fn derive(context: &Context<'_>) -> Result<Vec<Probe>> {
    let config = context.config;
    let ns = config.namespace().to_owned();
    let mut probes = Vec::new();
    let ready_id = |o: &ObjectRef| format!("ready.{}/{}", o.kind.to_lowercase(), o.name);
    let find = |kind: &str, name: &str| {
        context.workloads.iter().find(|o| o.kind == kind && o.name == name && o.namespace.as_deref() == Some(&ns))
    };
    let ready_of = |kind: &str, name: &str| find(kind, name).map(ready_id).into_iter().collect::<Vec<_>>();

    // The cluster: API, nodes, then each workload.
    if let Some((client, context_name)) = &context.cluster {
        probes.push(Probe::new("cluster.api", "cluster", ApiReachable::new(client.clone(), context_name.clone())));
        probes.push(Probe::new("cluster.nodes", "cluster", NodesReady::new(client.clone())).after(["cluster.api"]));
        // The workloads a name in `depends_on` stands for: a service's Deployment, or a
        // component's workloads (Postgres with the job that creates its databases).
        let of_dependency = |name: &str| -> Vec<String> {
            context
                .workloads
                .iter()
                .filter(|o| o.namespace.as_deref() == Some(&ns))
                .filter(|o| {
                    o.name == name || (name == "postgres" && o.kind == "Job" && o.name.starts_with("postgres-init"))
                })
                .map(ready_id)
                .collect()
        };
        for object in &context.workloads {
            let component = object.namespace.clone().unwrap_or_default();
            let mut after = vec!["cluster.nodes".to_owned()];
            // A service waits for what it depends on, so a dependency that is not ready blocks
            // it instead of failing it a second time with a less useful reason.
            if object.kind == "Deployment"
                && object.namespace.as_deref() == Some(&ns)
                && let Some(service) = config.services.get(&object.name)
            {
                after.extend(service.depends_on.iter().flat_map(|d| of_dependency(d)));
            }
            probes.push(
                Probe::new(ready_id(object), component, WorkloadReady::new(client.clone(), object.clone()))
                    .after(after),
            );
        }
    }

    probes.push(Probe::new("contract.drift", "config", NoDrift::new(config.clone())));
    if let Some((client, _)) = &context.cluster {
        // ConfigMaps need no node: only the API.
        for artifact in &context.artifacts {
            let check = ArtifactMatches::new(
                client.clone(),
                ns.clone(),
                artifact.configmap.clone(),
                artifact.file.clone(),
                artifact.digest.clone(),
            );
            probes.push(Probe::new(format!("artifact.{}", artifact.name), "artifacts", check).after(["cluster.api"]));
        }
    }
    if let Some((client, _)) = &context.cluster {
        for (name, service) in &config.services {
            let keys: Vec<String> = service.env.keys().chain(service.kind.env.keys()).cloned().collect();
            let selector = format!("app.kubernetes.io/name={name},app.kubernetes.io/instance={}", config.name);
            let after = match ready_of("Deployment", name) {
                ready if ready.is_empty() => vec!["cluster.nodes".to_owned()],
                ready => ready,
            };
            probes.push(
                Probe::new(
                    format!("contract.{name}"),
                    name.clone(),
                    EnvContract::new(client.clone(), ns.clone(), name.clone(), selector, keys),
                )
                .after(after),
            );
        }
    }

    // What a browser sees: DNS, TLS, routes, the identity provider.
    let connect = context.ingress.unwrap_or_else(|| SocketAddr::new(config.listen_address, config.ports.https));
    let ca = context.secrets.tls.as_ref().map(|t| t.ca_cert.as_str());
    for host in config.browser_hosts() {
        probes.push(Probe::new(format!("dns.{host}"), "dns", Resolves::new(host.clone(), config.listen_address)));
        if let Some(ca) = ca {
            probes.push(Probe::new(format!("tls.{host}"), "ingress", Certificate::new(host.clone(), connect, ca)?));
        }
    }
    let Some(ca) = ca else {
        return Err(Error::NotGenerated { what: "local CA".into() });
    };
    let origin = |host: &str| Url::parse(&config.kind_origin(host)).expect("a kind origin is a URL");
    let mut first_route = None;
    for (name, service) in &config.services {
        let Some(ingress) = &service.ingress else { continue };
        let path = service.health_path.clone().unwrap_or_else(|| ingress.path.clone());
        let url = origin(&ingress.host).join(&path).expect("a path joins a URL");
        let id = format!("route.{name}");
        let mut after = vec![format!("tls.{}.{}", ingress.host, config.domain)];
        after.extend(ready_of("Deployment", name));
        // Longer than the route's settle window (http.rs), so a route that never appears is
        // reported by what the ingress answers, not as a timeout.
        let route = Route::new(name.clone(), url, connect, ca)?;
        probes.push(Probe::new(id.clone(), name.clone(), route).after(after).timeout(Duration::from_secs(20)));
        first_route.get_or_insert(id);
    }
    if let Some(first) = first_route {
        let url = origin("kind-parity-unknown-host");
        probes.push(Probe::new("route.unknown-host", "ingress", UnknownHost::new(url, connect, ca)?).after([first]));
    }
    if config.keycloak.enabled {
        let issuer =
            Url::parse(&format!("{}/realms/{}", config.kind_origin(&config.keycloak.host), config.keycloak.realm))
                .expect("an issuer is a URL");
        let mut after = vec![format!("tls.{}.{}", config.keycloak.host, config.domain)];
        after.extend(ready_of("Deployment", "keycloak"));
        probes.push(
            Probe::new("oidc.issuer", "keycloak", OidcIssuer::new(issuer.clone(), connect, ca)?)
                .after(after)
                .timeout(Duration::from_secs(20)),
        );
        if let Some(login) = &config.keycloak.login {
            probes.push(login_probe(config, context, login, issuer, connect, ca)?);
        }
    } else {
        probes.push(Probe::skipped("oidc.issuer", "keycloak", "keycloak is switched off"));
    }

    // The dependencies, at protocol level.
    let declared = |component: &str| match &context.endpoints {
        Endpoints::Addresses { postgres, redis, nats, temporal } => match component {
            "postgres" => postgres.clone(),
            "redis" => redis.clone(),
            "nats" => nats.clone(),
            "temporal" => temporal.clone(),
            _ => None,
        },
        Endpoints::Forward => None,
    };
    for component in COMPONENTS {
        let (enabled, kind, port) = match component {
            "postgres" => (config.postgres.enabled, "StatefulSet", 5432),
            "redis" => (config.redis.enabled, "Deployment", 6379),
            "nats" => (config.nats.enabled, "StatefulSet", 4222),
            "temporal" => (config.temporal.enabled, "Deployment", 7233),
            _ => (config.vault.enabled, "Deployment", 8200),
        };
        if !enabled {
            probes.push(Probe::skipped(component, component, format!("{component} is switched off")));
            continue;
        }
        let endpoint = match (declared(component), &context.cluster) {
            (Some(addr), _) => Endpoint::Address(addr),
            (None, Some((client, _))) => {
                Endpoint::Service(ServicePort::new(client.clone(), ns.clone(), component, port))
            }
            (None, None) => {
                // An enabled component nobody can reach is a failure: leaving it out would let a
                // suite pass without ever having checked it.
                probes.push(Probe::new(component, component, Unreachable { component }));
                continue;
            }
        };
        let mut after = ready_of(kind, component);
        if after.is_empty() && matches!(endpoint, Endpoint::Service(_)) {
            // A port-forward needs a running pod: without its workload's probe, at least nodes.
            after.push("cluster.nodes".to_owned());
        }
        // The jobs that prepare what the probe checks: the databases and roles it logs in with,
        // the Temporal namespaces it describes.
        let job = match component {
            "postgres" => Some("postgres-init"),
            "temporal" => Some("temporal-namespaces"),
            _ => None,
        };
        if let Some(job) = job {
            after.extend(
                context
                    .workloads
                    .iter()
                    .filter(|o| o.kind == "Job" && o.name.starts_with(job) && o.namespace.as_deref() == Some(&ns))
                    .map(ready_id),
            );
        }
        let probe = match component {
            "postgres" => {
                let logins = config
                    .databases()
                    .into_iter()
                    .map(|(database, user)| {
                        let password = context
                            .secrets
                            .get(&Config::postgres_password_secret(&user))
                            .unwrap_or_default()
                            .to_owned();
                        Login { database, user, password }
                    })
                    .collect();
                Probe::new(component, component, Postgres::new(endpoint, logins))
            }
            "redis" => {
                let password = context.secrets.get(kind_parity_render::config::REDIS_PASSWORD).map(str::to_owned);
                Probe::new(component, component, Redis::new(endpoint, password))
            }
            "nats" => Probe::new(component, component, {
                let nats = Nats::new(endpoint, config.nats.jetstream).with_streams(config.nats.streams.clone());
                match context.secrets.get(kind_parity_render::config::NATS_PASSWORD).filter(|_| config.nats.auth) {
                    Some(password) => nats.with_credentials(kind_parity_render::config::NATS_USER, password),
                    None => nats,
                }
            }),
            "temporal" => Probe::new(
                component,
                component,
                Temporal::new(endpoint).with_namespaces(config.temporal.namespaces.clone()),
            )
            .timeout(Duration::from_secs(20)),
            _ => {
                let token = context.secrets.get(kind_parity_render::config::VAULT_ROOT_TOKEN).unwrap_or_default();
                let paths =
                    config.vault.paths.iter().map(|(p, keys)| (p.clone(), keys.keys().cloned().collect())).collect();
                Probe::new(component, component, Vault::new(endpoint, token, paths))
            }
        };
        probes.push(probe.after(after));
    }
    Ok(probes)
}

/// The check of an enabled component with neither a cluster to port-forward through nor an
/// address: it fails at once, saying so.
struct Unreachable {
    component: &'static str,
}

impl Check for Unreachable {
    fn target(&self) -> String {
        format!("{} (no cluster, no address)", self.component)
    }

    fn run(&self) -> futures::future::BoxFuture<'_, Result<String, Failure>> {
        let component = self.component;
        let failure = if component == "vault" {
            Failure::new(found(component), "start the environment: vault is reached through the cluster only")
                .then(Next::Up)
        } else {
            Failure::new(found(component), "start the environment, or give its address")
                .then(Next::Up)
                .then(Next::Address { component: component.into() })
        };
        Box::pin(std::future::ready(Err(failure)))
    }
}

/// What [`Unreachable`] found.
fn found(component: &str) -> String {
    format!("{component} is switched on, but there is no cluster to reach it through and no address for it")
}
