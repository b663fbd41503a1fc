//! The shared config's types: what `kind-parity.yaml` may say, with the built-in defaults.
//!
//! Every field has a default so that an overlay file (`kind-parity.local.yaml`) that sets one
//! value type-checks on its own; what is really required is checked after layering, in
//! `validate`, where the error can say which layer to fix.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The effective configuration of one environment, shared by the compose and kind modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The environment's name: the kind cluster's name and the state folder `.kind-parity/<name>/`.
    pub name: String,
    /// The Kubernetes namespace of the stack; the environment's name when unset.
    pub namespace: Option<String>,
    /// The browser-facing base domain; hosts are `<host>.<domain>`.
    pub domain: String,
    /// The host address that the ingress ports bind to.
    pub listen_address: IpAddr,
    /// Host ports of the ingress.
    pub ports: HostPorts,
    /// TLS for the browser-facing hosts.
    pub tls: Tls,
    /// The ingress controller; the Ingress objects are the contract, the controller is pluggable.
    pub ingress: Ingress,
    /// The kind cluster.
    pub cluster: Cluster,
    /// PostgreSQL.
    pub postgres: Postgres,
    /// Redis.
    pub redis: Redis,
    /// Keycloak, the identity provider.
    pub keycloak: Keycloak,
    /// NATS with JetStream (phase 2).
    pub nats: Nats,
    /// Temporal (phase 2).
    pub temporal: Temporal,
    /// A local OCI registry on the kind network (phase 3).
    pub registry: Registry,
    /// Vault (phase 3).
    pub vault: Vault,
    /// Extra generated secrets the services reference with `{{ secret "name" }}`.
    pub secrets: IndexMap<String, SecretSpec>,
    /// The team's own services, in the order they are listed.
    pub services: IndexMap<String, Service>,
    /// Bootstrap artifacts: files of the repository delivered into the cluster, each in its own
    /// ConfigMap, with their digest, size and source published in `kind-parity-artifacts`.
    pub artifacts: IndexMap<String, Artifact>,
}

/// One bootstrap artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Artifact {
    /// The file, relative to the config file.
    pub path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "kind-parity".into(),
            namespace: None,
            domain: "localtest.me".into(),
            listen_address: IpAddr::from([127, 0, 0, 1]),
            ports: HostPorts::default(),
            tls: Tls::default(),
            ingress: Ingress::default(),
            cluster: Cluster::default(),
            postgres: Postgres::default(),
            redis: Redis::default(),
            keycloak: Keycloak::default(),
            nats: Nats::default(),
            temporal: Temporal::default(),
            registry: Registry::default(),
            vault: Vault::default(),
            secrets: IndexMap::new(),
            services: IndexMap::new(),
            artifacts: IndexMap::new(),
        }
    }
}

impl Config {
    /// The config with each default that follows from other values written out, as the
    /// renderer resolves it: the namespace (the name), the ingress image (the controller's
    /// pinned one), each build's Dockerfile (`Dockerfile`), each service's compose port (its
    /// `port`), each database's owner (its name). What `kind-parity config` shows, instead of
    /// `null` for what is in fact decided.
    pub fn resolved(&self) -> Self {
        let mut config = self.clone();
        config.namespace = Some(self.namespace().to_owned());
        config.ingress.image = Some(self.ingress.image().to_owned());
        for service in config.services.values_mut() {
            if let Some(build) = &mut service.build {
                build.dockerfile.get_or_insert_with(|| PathBuf::from(DEFAULT_DOCKERFILE));
            }
            if service.ports.is_empty() {
                service.compose.port = service.compose_port();
            }
            for port in service.ports.values_mut() {
                port.compose_port.get_or_insert(port.port);
            }
        }
        for (name, database) in &mut config.postgres.databases {
            database.owner.get_or_insert_with(|| name.clone());
        }
        config
    }

    /// The namespace the stack is deployed to.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(&self.name)
    }

    /// The browser-facing origin of `host` in kind mode: `https://<host>.<domain>[:port]`.
    pub fn kind_origin(&self, host: &str) -> String {
        match self.ports.https {
            443 => format!("https://{host}.{}", self.domain),
            port => format!("https://{host}.{}:{port}", self.domain),
        }
    }

    /// Every browser-facing fully qualified host name, for the TLS certificate and DNS checks.
    pub fn browser_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .services
            .values()
            .filter_map(|s| s.ingress.as_ref())
            .map(|i| format!("{}.{}", i.host, self.domain))
            .collect();
        if self.keycloak.enabled {
            hosts.push(format!("{}.{}", self.keycloak.host, self.domain));
        }
        if self.temporal.enabled && self.temporal.ui {
            hosts.push(format!("{}.{}", self.temporal.ui_host, self.domain));
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

impl Config {
    /// Every browser-facing endpoint in kind mode with its path, as `status` shows them: each
    /// routed service at its Ingress path, Keycloak's issuer, the Temporal UI.
    pub fn endpoints(&self) -> Vec<String> {
        let mut endpoints: Vec<String> = self
            .services
            .values()
            .filter_map(|s| s.ingress.as_ref())
            .map(|i| format!("{}{}", self.kind_origin(&i.host), i.path))
            .collect();
        if self.keycloak.enabled {
            endpoints.push(format!("{}/realms/{}", self.kind_origin(&self.keycloak.host), self.keycloak.realm));
        }
        if self.temporal.enabled && self.temporal.ui {
            endpoints.push(format!("{}/", self.kind_origin(&self.temporal.ui_host)));
        }
        endpoints.sort();
        endpoints
    }
}

impl Service {
    /// The host port of its main port in compose mode; none when it serves nothing.
    pub fn compose_port(&self) -> Option<u16> {
        self.main_port().map(|p| p.compose_port)
    }

    /// Its ports in order, the main port first: `ports`, or the `port` shorthand as `http`
    /// (with `compose.port` as its host port).
    pub fn named_ports(&self) -> Vec<NamedPort<'_>> {
        if self.ports.is_empty() {
            return self
                .port
                .map(|port| NamedPort {
                    name: DEFAULT_PORT_NAME,
                    port,
                    protocol: Protocol::Tcp,
                    compose_port: self.compose.port.unwrap_or(port),
                })
                .into_iter()
                .collect();
        }
        self.ports
            .iter()
            .map(|(name, p)| NamedPort {
                name,
                port: p.port,
                protocol: p.protocol,
                compose_port: p.compose_port.unwrap_or(p.port),
            })
            .collect()
    }

    /// The port of that name.
    pub fn named_port(&self, name: &str) -> Option<NamedPort<'_>> {
        self.named_ports().into_iter().find(|p| p.name == name)
    }

    /// Its main port: the first one.
    pub fn main_port(&self) -> Option<NamedPort<'_>> {
        self.named_ports().into_iter().next()
    }

    /// The port a port name of the config names, or the main port for none.
    fn port_or_main(&self, name: Option<&str>) -> Option<NamedPort<'_>> {
        match name {
            Some(name) => self.named_port(name),
            None => self.main_port(),
        }
    }

    /// The port its Ingress routes to.
    pub fn ingress_port(&self) -> Option<NamedPort<'_>> {
        self.port_or_main(self.ingress.as_ref().and_then(|i| i.port.as_deref()))
    }

    /// The port its `health_path` is served on.
    pub fn health_port(&self) -> Option<NamedPort<'_>> {
        self.port_or_main(self.health_port.as_deref())
    }

    /// The `compose.env` variable of each of its ports, as the service `name`: `KP_<NAME>_PORT`
    /// for the main port, `KP_<NAME>_<PORT>_PORT` for each other one (upper case, `-` as `_`).
    pub fn port_variables(&self, name: &str) -> Vec<(String, NamedPort<'_>)> {
        let upper = |s: &str| s.to_ascii_uppercase().replace('-', "_");
        self.named_ports()
            .into_iter()
            .enumerate()
            .map(|(i, port)| {
                let var = match i {
                    0 => format!("KP_{}_PORT", upper(name)),
                    _ => format!("KP_{}_{}_PORT", upper(name), upper(port.name)),
                };
                (var, port)
            })
            .collect()
    }

    /// The port a liveness or startup check's path is served on.
    pub fn probe_port(&self, probe: &ProbeSpec) -> Option<NamedPort<'_>> {
        match &probe.port {
            Some(name) => self.named_port(name),
            None => self.health_port(),
        }
    }
}

/// Host ports of the ingress controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HostPorts {
    /// Plain HTTP.
    pub http: u16,
    /// HTTPS.
    pub https: u16,
}

impl Default for HostPorts {
    fn default() -> Self {
        Self { http: 80, https: 443 }
    }
}

/// How the browser-facing hosts get their certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The TLS mode.
    pub mode: TlsMode,
}

/// TLS modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A certificate authority generated once per environment, kept in its state folder.
    #[default]
    LocalCa,
}

/// The ingress controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Ingress {
    /// Which controller serves the Ingress objects.
    pub controller: IngressController,
    /// The controller image; the pinned default of the controller when unset.
    pub image: Option<String>,
    /// The fixed cluster IP of the controller's Service. Pods resolve the browser-facing hosts to
    /// it (hostAliases), so a service calling `https://auth.<domain>` from inside the cluster goes
    /// through the same ingress and TLS as a browser does.
    pub cluster_ip: IpAddr,
}

impl Default for Ingress {
    fn default() -> Self {
        Self { controller: IngressController::default(), image: None, cluster_ip: IpAddr::from([10, 96, 0, 200]) }
    }
}

impl Ingress {
    /// The controller image to run.
    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(match self.controller {
            IngressController::Traefik => "docker.io/library/traefik:v3.5.3",
            IngressController::IngressNginx => "registry.k8s.io/ingress-nginx/controller:v1.13.3",
        })
    }
}

/// Supported ingress controllers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IngressController {
    /// Traefik with its Kubernetes Ingress provider (the default).
    #[default]
    Traefik,
    /// ingress-nginx, kind's variant. The project was retired in March 2026; kept for teams that
    /// still run it in their shared environment.
    IngressNginx,
}

impl IngressController {
    /// The IngressClass name the rendered Ingress objects use.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Traefik => "traefik",
            Self::IngressNginx => "nginx",
        }
    }
}

/// The kind cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// The kind node image, pinned (by digest, as kind's release notes list them).
    pub node_image: String,
    /// Worker nodes besides the control plane.
    pub workers: u8,
    /// Kubeconfig contexts of existing clusters that commands which change a cluster may target.
    pub allowed_contexts: Vec<String>,
}

/// The default node image: kind v0.29.0's, pinned by the digest its release lists
/// (kubernetes-sigs/kind `pkg/apis/config/defaults/image.go` at v0.29.0). Built for that kind
/// release (containerd 2.x config); an older kind cannot boot it.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f";
/// The kind release [`DEFAULT_NODE_IMAGE`] belongs to.
pub const DEFAULT_NODE_IMAGE_KIND: &str = "v0.29.0";

impl Default for Cluster {
    fn default() -> Self {
        Self { node_image: DEFAULT_NODE_IMAGE.into(), workers: 0, allowed_contexts: Vec::new() }
    }
}

/// PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Postgres {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The image, pinned.
    pub image: String,
    /// Databases to create, each with its owning role.
    pub databases: IndexMap<String, Database>,
    /// Size of the data volume.
    pub storage: String,
    /// The host port compose publishes it on.
    pub compose_port: u16,
}

impl Default for Postgres {
    fn default() -> Self {
        Self {
            enabled: true,
            image: "docker.io/library/postgres:17.6".into(),
            databases: IndexMap::new(),
            storage: "1Gi".into(),
            compose_port: 5432,
        }
    }
}

/// One database and its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// The owning role; the database's name when unset.
    pub owner: Option<String>,
}

/// Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The image, pinned.
    pub image: String,
    /// The host port compose publishes it on.
    pub compose_port: u16,
}

impl Default for Redis {
    fn default() -> Self {
        Self { enabled: true, image: "docker.io/library/redis:7.4.5".into(), compose_port: 6379 }
    }
}

/// Keycloak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Keycloak {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The image, pinned.
    pub image: String,
    /// The realm export to import, relative to the config file; its `realm` names the issuer.
    pub realm_file: Option<PathBuf>,
    /// The realm whose issuer the services use; the realm file must define it.
    pub realm: String,
    /// The browser-facing host label (`auth` gives `auth.<domain>`).
    pub host: String,
    /// The host port compose publishes it on.
    pub compose_port: u16,
    /// A real login that `validate` performs, as a browser does; off when absent.
    pub login: Option<KeycloakLogin>,
}

/// `keycloak.login`: `validate` logs in as a test user through the ingress (authorization code
/// with PKCE), then calls the API with the token. The user is added to the realm at import, with
/// a password generated into `secrets.json` (`keycloak-login-password`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeycloakLogin {
    /// The realm's public client with the standard flow that the web app uses.
    pub client: String,
    /// The test user's name; the realm file must not declare it.
    pub user: String,
    /// The service whose URL (with a trailing `/`) is the redirect URI the login asks for.
    pub redirect: String,
    /// The API call that must accept the access token, if any.
    pub api: Option<LoginApi>,
}

impl Default for KeycloakLogin {
    fn default() -> Self {
        Self { client: "web".into(), user: "parity-probe".into(), redirect: "web".into(), api: None }
    }
}

/// `keycloak.login.api`: a path of a service, called with `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginApi {
    /// The service.
    pub service: String,
    /// The path (`/me`).
    pub path: String,
}

impl Default for Keycloak {
    fn default() -> Self {
        Self {
            enabled: true,
            // 26.3.5, not 26.3.3: Maven Central serves no 26.3.2 or 26.3.3 of the Quarkus
            // distribution (org.keycloak:keycloak-quarkus-dist), which the test bed builds
            // this image from; 26.3.5 is the newest patch of 26.3.
            image: "quay.io/keycloak/keycloak:26.3.5".into(),
            realm_file: None,
            realm: "dev".into(),
            host: "auth".into(),
            compose_port: 8081,
            login: None,
        }
    }
}

/// NATS with JetStream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Nats {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The image, pinned.
    pub image: String,
    /// Whether JetStream is on.
    pub jetstream: bool,
    /// Whether clients authenticate (user `app`, a generated password in `nats.url`).
    pub auth: bool,
    /// Streams the services expect to exist.
    pub streams: Vec<String>,
    /// The host port compose publishes it on.
    pub compose_port: u16,
}

impl Default for Nats {
    fn default() -> Self {
        Self {
            enabled: false,
            image: "docker.io/library/nats:2.11.8".into(),
            jetstream: true,
            auth: false,
            streams: Vec::new(),
            compose_port: 4222,
        }
    }
}

/// Temporal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Temporal {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The server image, pinned.
    pub image: String,
    /// Namespaces to register.
    pub namespaces: Vec<String>,
    /// Whether the web UI is deployed behind the ingress.
    pub ui: bool,
    /// The UI image, pinned.
    pub ui_image: String,
    /// The UI's browser-facing host label.
    pub ui_host: String,
    /// The host port compose publishes the frontend on.
    pub compose_port: u16,
}

impl Default for Temporal {
    fn default() -> Self {
        Self {
            enabled: false,
            image: "docker.io/temporalio/auto-setup:1.28.1".into(),
            namespaces: vec!["default".into()],
            ui: false,
            ui_image: "docker.io/temporalio/ui:2.40.1".into(),
            ui_host: "temporal".into(),
            compose_port: 7233,
        }
    }
}

/// The local registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Registry {
    /// Whether a local registry is used instead of loading images into nodes.
    pub enabled: bool,
    /// The registry image, pinned.
    pub image: String,
    /// The loopback host port it is published on.
    pub host_port: u16,
}

impl Default for Registry {
    fn default() -> Self {
        Self { enabled: false, image: "docker.io/library/registry:2.8.3".into(), host_port: 5001 }
    }
}

/// Vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Vault {
    /// Whether the component is deployed.
    pub enabled: bool,
    /// The image, pinned.
    pub image: String,
    /// KV paths to seed, each mapping keys to generated secrets by name.
    pub paths: IndexMap<String, BTreeMap<String, String>>,
    /// The host port compose publishes it on.
    pub compose_port: u16,
}

impl Default for Vault {
    fn default() -> Self {
        Self {
            enabled: false,
            image: "docker.io/hashicorp/vault:1.20.3".into(),
            paths: IndexMap::new(),
            compose_port: 8200,
        }
    }
}

/// A generated secret the services may reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSpec {
    /// Length in characters (alphanumeric).
    pub length: usize,
}

impl Default for SecretSpec {
    fn default() -> Self {
        Self { length: 32 }
    }
}

/// One of the team's services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Service {
    /// How to build its image; exclusive with `image`.
    pub build: Option<Build>,
    /// A prebuilt image, pinned; exclusive with `build`.
    pub image: Option<String>,
    /// The container port it listens on, the one-port shorthand of `ports: {http: PORT}`
    /// (exclusive with `ports`); none for a service that serves nothing (a worker): then it has
    /// no container port, no Service and no `KP_<NAME>_PORT`.
    pub port: Option<u16>,
    /// Its named ports (`http`, `grpc`, `metrics`), each a container port number (TCP) or
    /// `{port, protocol, compose_port}`; exclusive with `port`. The first listed is its main
    /// port: the one `ingress`, the health checks, `KP_<NAME>_PORT` and
    /// `{{ service.NAME.internal_url }}` use unless they name another.
    #[serde(deserialize_with = "named_ports")]
    #[schemars(with = "IndexMap<String, PortSchema>")]
    pub ports: IndexMap<String, ServicePort>,
    /// The container's entrypoint, replacing the image's (`ENTRYPOINT`); the image's when empty.
    /// Passed literally in both modes: no variable is expanded.
    pub command: Vec<String>,
    /// The entrypoint's arguments, replacing the image's `CMD`; the image's when empty (and
    /// `command` is empty too, as in Kubernetes and compose).
    pub args: Vec<String>,
    /// Its browser-facing route, when it has one; workers have none.
    pub ingress: Option<ServiceIngress>,
    /// The HTTP path that answers 200 when it is ready.
    pub health_path: Option<String>,
    /// The named port `health_path` is served on (and `liveness`'s and `startup`'s paths, unless
    /// they name their own); the main port when unset.
    pub health_port: Option<String>,
    /// A command that exits 0 when it is ready, run in its container (workers without an HTTP
    /// health path); exclusive with `health_path`.
    pub readiness_command: Vec<String>,
    /// A check that the process is alive; failing it restarts the container (kind).
    pub liveness: Option<ProbeSpec>,
    /// A check that the process has started; liveness and readiness wait for it (kind).
    pub startup: Option<ProbeSpec>,
    /// Replicas in kind mode.
    pub replicas: u32,
    /// Resource requests and limits.
    pub resources: Resources,
    /// Services and components that must be ready before it starts.
    pub depends_on: Vec<String>,
    /// Environment written once, with references to contract values resolved per mode.
    pub env: IndexMap<String, String>,
    /// Files and folders mounted into its container: a repository file or folder, or a
    /// generated secret, at a path (a ConfigMap or Secret volume in kind, a bind mount in
    /// compose); an edit rolls its pods.
    pub files: Vec<FileMount>,
    /// What differs in compose mode (transport only, never meaning), and where compose runs it.
    pub compose: ComposeOverrides,
    /// What differs in kind mode (transport only, never meaning).
    pub kind: KindOverrides,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            build: None,
            image: None,
            port: None,
            ports: IndexMap::new(),
            command: Vec::new(),
            args: Vec::new(),
            ingress: None,
            health_path: None,
            health_port: None,
            readiness_command: Vec::new(),
            liveness: None,
            startup: None,
            replicas: 1,
            resources: Resources::default(),
            depends_on: Vec::new(),
            env: IndexMap::new(),
            files: Vec::new(),
            compose: ComposeOverrides::default(),
            kind: KindOverrides::default(),
        }
    }
}

/// A liveness or startup check: an HTTP path on one of the service's ports, or a command in its
/// container (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeSpec {
    /// The HTTP path that answers 2xx or 3xx while the check passes.
    pub path: Option<String>,
    /// The named port the path is served on; the service's `health_port` (or main port) when unset.
    pub port: Option<String>,
    /// A command that exits 0 while the check passes.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub period_seconds: u32,
    /// Failed checks in a row that fail the probe.
    pub failure_threshold: u32,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self { path: None, port: None, command: Vec::new(), period_seconds: 10, failure_threshold: 3 }
    }
}

/// The Dockerfile of a build that names none, relative to its context (as `docker build`).
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// A service's image build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Build {
    /// The build context, relative to the config file.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context; `Dockerfile` when unset.
    pub dockerfile: Option<PathBuf>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// The target stage.
    pub target: Option<String>,
}

/// A service's browser-facing route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceIngress {
    /// The host label (`api` gives `api.<domain>`).
    pub host: String,
    /// The path prefix.
    pub path: String,
    /// The named port the route leads to; the service's main port when unset.
    pub port: Option<String>,
}

impl Default for ServiceIngress {
    fn default() -> Self {
        Self { host: String::new(), path: "/".into(), port: None }
    }
}

/// A file or folder in a service's container, written once for both modes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FileMount {
    /// The absolute path in the container.
    pub path: String,
    /// A file or folder of the repository, relative to the config file; exclusive with `secret`.
    pub source: Option<PathBuf>,
    /// A generated secret (`secrets:` or a platform one), mounted as a file holding its value;
    /// exclusive with `source`.
    pub secret: Option<String>,
    /// An environment variable set to where the process finds it: `path` in a container, the
    /// repository file's absolute path for a process on the host (compose).
    pub env: Option<String>,
}

/// The name of the port the `port` shorthand declares.
pub const DEFAULT_PORT_NAME: &str = "http";

/// One named port of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    /// The container port.
    pub port: u16,
    /// Its protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// The host port compose publishes it on (a container) or it listens on (a process on the
    /// host); the container port when unset.
    #[serde(default)]
    pub compose_port: Option<u16>,
}

/// A port's protocol, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// TCP.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// `TCP` or `UDP`, as a Kubernetes port's `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// A named port: its container port number (TCP), or the port with its protocol and compose
/// host port.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PortSchema {
    /// The container port (TCP).
    Number(u16),
    /// The port, its protocol and its compose host port.
    Spec(ServicePort),
}

/// `ports`: each value a container port number or a `{port, protocol, compose_port}` mapping.
/// A visitor instead of an untagged enum, so that an unknown key or a wrong type in the mapping
/// is reported as such, at its own path.
fn named_ports<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<IndexMap<String, ServicePort>, D::Error> {
    struct Entry(ServicePort);
    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = ServicePort;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a port number or `{port, protocol, compose_port}`")
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ServicePort, E> {
                    let port = u16::try_from(v)
                        .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &"a port (0 to 65535)"))?;
                    Ok(ServicePort { port, protocol: Protocol::Tcp, compose_port: None })
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ServicePort, E> {
                    match u64::try_from(v) {
                        Ok(v) => self.visit_u64(v),
                        Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &"a port (0 to 65535)")),
                    }
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ServicePort, A::Error> {
                    ServicePort::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                }
            }
            deserializer.deserialize_any(Visitor).map(Entry)
        }
    }
    let entries = IndexMap::<String, Entry>::deserialize(deserializer)?;
    Ok(entries.into_iter().map(|(name, Entry(port))| (name, port)).collect())
}

/// One port of a service with everything both modes need of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedPort<'a> {
    /// Its name: the container port's, the Service port's and the Ingress backend's.
    pub name: &'a str,
    /// The container port.
    pub port: u16,
    /// Its protocol.
    pub protocol: Protocol,
    /// The host port in compose mode.
    pub compose_port: u16,
}

/// Resource requests and limits, in Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// CPU request.
    #[serde(deserialize_with = "quantity")]
    #[schemars(with = "QuantitySchema")]
    pub cpu: String,
    /// Memory request and limit.
    #[serde(deserialize_with = "quantity")]
    #[schemars(with = "QuantitySchema")]
    pub memory: String,
}

/// What the schema says a quantity is: a string (`100m`, `256Mi`) or a number, as `quantity`
/// reads it; its grammar is checked at load.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum QuantitySchema {
    /// `100m`, `256Mi`.
    Text(String),
    /// `1`, `0.5`, `1e9`.
    Number(f64),
}

/// A quantity as text, written as a string or as a YAML number: Kubernetes takes both
/// (`cpu: 1`, `memory: 1e9`; the schema of `Quantity` is a string or a number).
fn quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a quantity such as `100m`, `1` or `256Mi`")]
    enum Text {
        String(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
    }
    Ok(match Text::deserialize(deserializer)? {
        Text::String(s) => s,
        Text::Unsigned(n) => n.to_string(),
        Text::Signed(n) => n.to_string(),
        // Rust writes floats without an exponent (1e9 is `1000000000`), which is a quantity.
        Text::Float(n) => n.to_string(),
    })
}

impl Default for Resources {
    fn default() -> Self {
        Self { cpu: "50m".into(), memory: "128Mi".into() }
    }
}

/// A service's compose mode: its host port, its environment overrides, and where it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ComposeOverrides {
    /// The host port the `port` shorthand's port is published on (container) or listens on
    /// (host); `port` when unset. With `ports`, each port's `compose_port` says it instead.
    pub port: Option<u16>,
    /// Environment entries added or replaced in compose; shown by the drift report.
    pub env: IndexMap<String, String>,
    /// Where the service's process runs in compose mode, which decides how it reaches the others.
    pub runs: Runs,
}

/// Where a service runs in compose mode.
///
/// A process in a container reaches the platform components and the other containers by their
/// compose service names on the compose network (`postgres:5432`); a process on the host
/// reaches them on the ports compose publishes (`localhost:5432`). Browser-facing values are the
/// URLs a browser uses in both cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Runs {
    /// In a container of the rendered `compose.yaml` (or of the team's own compose file, with
    /// `env_file: compose/<name>.env`): what a team adopting compose has.
    #[default]
    Container,
    /// As a process on the host (`cargo run`, `npm run dev`), reading `compose/<name>.env`.
    Host,
}

/// A service's kind mode differences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KindOverrides {
    /// Environment entries added or replaced in kind; shown by the drift report.
    pub env: IndexMap<String, String>,
}
