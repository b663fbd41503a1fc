//! Checks after layering: what types cannot say (names, uniqueness, references, files).
//!
//! Every check adds a diagnostic instead of returning early, so one run lists every problem.

use std::collections::{BTreeMap, HashSet};

use super::{Config, Inputs, Origins, Path, Protocol};
use crate::error::{Diagnostic, did_you_mean};
use crate::refs::{self, Piece};

/// Components a service may depend on, by the name `depends_on` uses.
pub(crate) fn components(config: &Config) -> Vec<(&'static str, bool)> {
    vec![
        ("postgres", config.postgres.enabled),
        ("redis", config.redis.enabled),
        ("keycloak", config.keycloak.enabled),
        ("nats", config.nats.enabled),
        ("temporal", config.temporal.enabled),
        ("vault", config.vault.enabled),
    ]
}

struct Checker<'a> {
    origins: &'a Origins,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, path: &Path, message: impl Into<String>, help: impl Into<String>) {
        let mut d = Diagnostic::new(message).at(path.to_string()).help(help);
        d.origin = self.origins.describe(path);
        self.out.push(d);
    }

    fn dns_label(&mut self, path: &Path, value: &str, what: &str) {
        if !is_dns_label(value) {
            self.report(
                path,
                format!("`{value}` is not a valid {what}"),
                "use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        }
    }

    /// An image reference by the distribution grammar (oci-spec's parser, as Docker and
    /// containerd read them), with a tag other than `latest` or a digest.
    fn image(&mut self, path: &Path, image: &str) {
        let reference = match image.parse::<oci_spec::distribution::Reference>() {
            Ok(reference) => reference,
            Err(e) => {
                let (name, rest) = split_reference(image);
                let help = if image.contains(char::is_whitespace) {
                    "an image reference has no spaces: write `registry/name:tag` alone".to_owned()
                } else if name != name.to_ascii_lowercase()
                    && format!("{}{rest}", name.to_ascii_lowercase())
                        .parse::<oci_spec::distribution::Reference>()
                        .is_ok()
                {
                    format!("repository names are lowercase: `{}{rest}`", name.to_ascii_lowercase())
                } else {
                    "write `registry/name:tag` or `registry/name@sha256:<64 hex digits>`".to_owned()
                };
                self.report(path, format!("`{image}` is not an image reference: {e}"), help);
                return;
            }
        };
        if reference.digest().is_none() && reference.tag().is_none_or(|tag| tag == "latest") {
            self.report(
                path,
                format!("image `{image}` is not pinned"),
                format!("add a version tag or a digest, e.g. `{}:1.2.3`", image.trim_end_matches(":latest")),
            );
        }
    }
}

/// `keycloak.login.client` is a public client of the realm file with the standard flow, and the
/// test user is not one the file declares (the import would replace it).
fn login_client(
    c: &mut Checker<'_>,
    path: &Path,
    login: &super::KeycloakLogin,
    realm: &serde_json::Value,
    file: &std::path::Path,
) {
    let clients = realm["clients"].as_array().map(Vec::as_slice).unwrap_or_default();
    match clients.iter().find(|cl| cl["clientId"] == login.client.as_str()) {
        None => c.report(
            &path.key("client"),
            format!("realm file `{}` has no client `{}`", file.display(), login.client),
            "name the public client the web app uses",
        ),
        Some(client) => {
            if client["publicClient"] != true || client["standardFlowEnabled"] == false {
                c.report(
                    &path.key("client"),
                    format!("client `{}` is not a public client with the standard flow", login.client),
                    "set `publicClient: true` and `standardFlowEnabled: true` in the realm file (the login runs as a browser app)",
                );
            }
        }
    }
    if realm["users"].as_array().is_some_and(|u| u.iter().any(|u| u["username"] == login.user.as_str())) {
        c.report(
            &path.key("user"),
            format!("realm file `{}` already declares user `{}`", file.display(), login.user),
            "pick another name: kind-parity adds this user with a generated password",
        );
    }
}

/// kind's longest cluster name: "Typical host name max limit is 64 characters … We append
/// -control-plane (14 characters) to the cluster name on the control plane container"
/// (kubernetes-sigs/kind `pkg/cluster/internal/create/create.go`, `clusterNameMax`).
pub const KIND_CLUSTER_NAME_MAX: usize = 50;

/// Names a service cannot take, enabled or not: each names a platform component's Service
/// (and its workload and Secret) in the same namespace, and the components' `KP_<NAME>_*` compose
/// variables; `depends_on` also reads a component's name as the component. `postgres-init` is the
/// compose service of Postgres's roles and databases script, `postgres-guard` the one that clears
/// an interrupted first initdb (`compose.yaml`, [`crate::POSTGRES_GUARD`]).
pub const RESERVED_SERVICE_NAMES: &[&str] =
    &["postgres", "postgres-init", "postgres-guard", "redis", "keycloak", "nats", "temporal", "temporal-ui", "vault"];

/// An IPv4 range.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Range {
    /// The first address.
    pub network: std::net::Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Ipv4Range {
    fn mask(self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0)
    }

    /// Whether `ip` is in the range.
    pub fn contains(self, ip: std::net::Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// What the address is taken by, for an address of the range a Service cannot have.
    fn reserved(self, ip: std::net::Ipv4Addr) -> Option<&'static str> {
        let offset = u32::from(ip) - u32::from(self.network);
        match offset {
            0 => Some("the Service range's network address"),
            _ if offset == !self.mask() => Some("the Service range's broadcast address"),
            // The API server takes the first address for the `kubernetes` Service, and kubeadm
            // (so kind) the tenth for kube-dns.
            1 => Some("the `kubernetes` Service's address (the API server)"),
            10 => Some("the cluster DNS's address (kube-dns)"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The kind cluster's Service range (`networking.serviceSubnet` of the rendered kind config;
/// kind's default, `pkg/apis/config/v1alpha4/default.go`).
pub const SERVICE_SUBNET: Ipv4Range = Ipv4Range { network: std::net::Ipv4Addr::new(10, 96, 0, 0), prefix: 16 };

/// The lengths a declared secret may have. At least 16 alphanumeric characters (95 bits), so a
/// secret is never guessable and never so short that redacting it from a diagnostics bundle
/// would hit ordinary text; at most 1024, since generating one is done at every load and a
/// Secret holds 1 MiB in all (a length of 100,000,000 took 51 s and 806 MB before this bound).
pub const SECRET_LENGTHS: std::ops::RangeInclusive<usize> = 16..=1024;

/// The largest realm file: it travels in the Secret `keycloak-realm`, which holds at most 1 MiB
/// (kubernetes `pkg/apis/core/validation` `ValidateSecret`, `MaxSecretSize`) and is sent
/// base64-encoded (4/3 larger) in a request etcd caps at 1.5 MiB; the same bound as an artifact's.
pub const MAX_REALM_BYTES: usize = MAX_ARTIFACT_BYTES;

/// The largest artifact: a ConfigMap is at most 1 MiB, and `binaryData` is base64 (4/3 larger).
pub const MAX_ARTIFACT_BYTES: usize = 700 * 1024;

pub(crate) fn validate(config: &Config, origins: &Origins, inputs: &Inputs) -> Vec<Diagnostic> {
    let mut c = Checker { origins, out: Vec::new() };
    let root = Path::default();

    c.dns_label(&root.key("name"), &config.name, "environment name");
    if is_dns_label(&config.name) && config.name.len() > KIND_CLUSTER_NAME_MAX {
        c.report(
            &root.key("name"),
            format!(
                "`{}` has {} characters; kind allows at most {KIND_CLUSTER_NAME_MAX} in a cluster name",
                config.name,
                config.name.len()
            ),
            "use a shorter name (kind appends `-control-plane` to it for its node's host name)",
        );
    }
    let ingress_ip = root.key("ingress").key("cluster_ip");
    match config.ingress.cluster_ip {
        std::net::IpAddr::V4(ip) if !SERVICE_SUBNET.contains(ip) => c.report(
            &ingress_ip,
            format!("{ip} is outside the cluster's Service range {SERVICE_SUBNET}"),
            "pick an address in it that nothing else takes, e.g. the default 10.96.0.200",
        ),
        std::net::IpAddr::V4(ip) if SERVICE_SUBNET.reserved(ip).is_some() => c.report(
            &ingress_ip,
            format!("{ip} is {}", SERVICE_SUBNET.reserved(ip).unwrap_or_default()),
            "pick another address of the range, e.g. the default 10.96.0.200",
        ),
        std::net::IpAddr::V4(_) => {}
        std::net::IpAddr::V6(ip) => c.report(
            &ingress_ip,
            format!("{ip} is outside the cluster's Service range {SERVICE_SUBNET}"),
            "the kind cluster is IPv4: pick an address such as the default 10.96.0.200",
        ),
    }
    if let Some(ns) = &config.namespace {
        c.dns_label(&root.key("namespace"), ns, "namespace");
    }
    if config.domain.is_empty() || !config.domain.split('.').all(is_dns_label) {
        c.report(
            &root.key("domain"),
            format!("`{}` is not a valid domain", config.domain),
            "use dot-separated DNS labels, e.g. localtest.me (which resolves to 127.0.0.1)",
        );
    }

    // Host ports: the ingress pair, the registry, and everything compose publishes.
    let ports = root.key("ports");
    for (key, port) in [("http", config.ports.http), ("https", config.ports.https)] {
        if port == 0 {
            c.report(&ports.key(key), "port 0 is not a usable host port", "use a port between 1 and 65535");
        }
    }
    if config.ports.http == config.ports.https {
        c.report(
            &ports.key("https"),
            format!("http and https both use host port {}", config.ports.http),
            "give them different ports, e.g. 8080 and 8443",
        );
    }
    // TCP and UDP host ports are apart: a DNS server may publish 53 of each.
    let mut compose_ports: BTreeMap<(u16, Protocol), Path> = BTreeMap::new();
    let mut claim = |c: &mut Checker<'_>, port: u16, protocol: Protocol, path: Path| {
        if let Some(first) = compose_ports.get(&(port, protocol)) {
            let port = match protocol {
                Protocol::Tcp => port.to_string(),
                Protocol::Udp => format!("{port}/udp"),
            };
            c.report(
                &path,
                format!("host port {port} is already used by {first}"),
                "give each published port its own number",
            );
        } else {
            compose_ports.insert((port, protocol), path);
        }
    };
    let component_ports = [
        ("postgres", config.postgres.enabled, config.postgres.compose_port),
        ("redis", config.redis.enabled, config.redis.compose_port),
        ("keycloak", config.keycloak.enabled, config.keycloak.compose_port),
        ("nats", config.nats.enabled, config.nats.compose_port),
        ("temporal", config.temporal.enabled, config.temporal.compose_port),
        ("vault", config.vault.enabled, config.vault.compose_port),
    ];
    for (name, enabled, port) in component_ports {
        if enabled {
            claim(&mut c, port, Protocol::Tcp, root.key(name).key("compose_port"));
        }
    }
    if config.registry.enabled {
        claim(&mut c, config.registry.host_port, Protocol::Tcp, root.key("registry").key("host_port"));
    }
    for (name, service) in &config.services {
        let sp = root.key("services").key(name);
        for port in service.named_ports() {
            // The key that decides the host port: where a clash is fixed.
            let path = match service.ports.get(port.name) {
                Some(spec) if spec.compose_port.is_some() => sp.key("ports").key(port.name).key("compose_port"),
                Some(_) => sp.key("ports").key(port.name),
                None if service.compose.port.is_some() => sp.key("compose").key("port"),
                None => sp.key("port"),
            };
            claim(&mut c, port.compose_port, port.protocol, path);
        }
    }

    // Images are pinned, so two developers (and CI) run the same bits.
    let images = [
        ("postgres", config.postgres.enabled, &config.postgres.image),
        ("redis", config.redis.enabled, &config.redis.image),
        ("keycloak", config.keycloak.enabled, &config.keycloak.image),
        ("nats", config.nats.enabled, &config.nats.image),
        ("temporal", config.temporal.enabled, &config.temporal.image),
        ("registry", config.registry.enabled, &config.registry.image),
        ("vault", config.vault.enabled, &config.vault.image),
    ];
    for (name, enabled, image) in images {
        if enabled {
            c.image(&root.key(name).key("image"), image);
        }
    }
    if config.temporal.enabled {
        // Temporal's own rule for namespace names; it also keeps them safe in the setup job's shell.
        let valid = |n: &str| {
            !n.is_empty() && n.len() <= 255 && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        for (i, namespace) in config.temporal.namespaces.iter().enumerate() {
            if !valid(namespace) {
                c.report(
                    &root.key("temporal").key("namespaces").index(i),
                    format!("`{namespace}` is not a valid Temporal namespace name"),
                    "use letters, digits, '.', '_' and '-'",
                );
            }
        }
    }
    if config.temporal.enabled && config.temporal.ui {
        c.image(&root.key("temporal").key("ui_image"), &config.temporal.ui_image);
    }
    if let Some(image) = &config.ingress.image {
        c.image(&root.key("ingress").key("image"), image);
    }
    let node_image = config.cluster.node_image.clone();
    c.image(&root.key("cluster").key("node_image"), &node_image);

    // Components that need another one.
    for (name, enabled) in [("keycloak", config.keycloak.enabled), ("temporal", config.temporal.enabled)] {
        if enabled && !config.postgres.enabled {
            c.report(
                &root.key(name).key("enabled"),
                format!("{name} keeps its data in postgres, which is disabled"),
                format!("enable postgres or set `{name}.enabled: false`"),
            );
        }
    }
    for (db, spec) in &config.postgres.databases {
        let path = root.key("postgres").key("databases").key(db);
        if !is_sql_identifier(db) {
            c.report(
                &path,
                format!("`{db}` is not a valid database name"),
                "use lowercase letters, digits and '_', starting with a letter",
            );
        }
        if let Some(owner) = &spec.owner
            && !is_sql_identifier(owner)
        {
            c.report(
                &path.key("owner"),
                format!("`{owner}` is not a valid role name"),
                "use lowercase letters, digits and '_', starting with a letter",
            );
        }
    }

    // Keycloak's realm: the file exists, parses, and defines the realm the issuer names.
    if config.keycloak.enabled {
        c.dns_label(&root.key("keycloak").key("host"), &config.keycloak.host, "host label");
        if let Some(file) = &config.keycloak.realm_file {
            let path = root.key("keycloak").key("realm_file");
            match inputs.read(file) {
                Err(_) => c.report(
                    &path,
                    format!("realm file `{}` does not exist", file.display()),
                    "give a path relative to the config file, or remove `realm_file` to start with an empty realm",
                ),
                Ok(text) if text.len() > MAX_REALM_BYTES => c.report(
                    &path,
                    format!(
                        "realm file `{}` is {} bytes; its Secret holds at most {MAX_REALM_BYTES}",
                        file.display(),
                        text.len()
                    ),
                    "keep the realm file to its settings and clients (a partial export) and create bulk data such as users at runtime",
                ),
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Err(e) => c.report(
                        &path,
                        format!("realm file `{}` is not valid JSON: {e}", file.display()),
                        "export the realm again from Keycloak (Realm settings → Action → Partial export)",
                    ),
                    Ok(json) => {
                        if let Some(login) = &config.keycloak.login {
                            login_client(&mut c, &root.key("keycloak").key("login"), login, &json, file);
                        }
                        let realm = json.get("realm").and_then(|r| r.as_str()).unwrap_or_default();
                        if realm != config.keycloak.realm {
                            c.report(
                                &root.key("keycloak").key("realm"),
                                format!(
                                    "realm file `{}` defines realm `{realm}`, not `{}`",
                                    file.display(),
                                    config.keycloak.realm
                                ),
                                format!("set `keycloak.realm: {realm}` or import the right file"),
                            );
                        }
                    }
                },
            }
        }
    }

    // The login probe's services exist and are reached through the ingress.
    if let (true, Some(login)) = (config.keycloak.enabled, &config.keycloak.login) {
        let path = root.key("keycloak").key("login");
        c.dns_label(&path.key("user"), &login.user, "user name");
        let mut named = vec![(path.key("redirect"), login.redirect.as_str())];
        if let Some(api) = &login.api {
            named.push((path.key("api").key("service"), api.service.as_str()));
            if !api.path.starts_with('/') {
                c.report(
                    &path.key("api").key("path"),
                    format!("`{}` is not a path", api.path),
                    "start it with `/`, e.g. `/me`",
                );
            }
        }
        for (p, service) in named {
            match config.services.get(service) {
                None => c.report(&p, format!("there is no service `{service}`"), "name a service of `services`"),
                Some(s) if s.ingress.is_none() => c.report(
                    &p,
                    format!("service `{service}` has no ingress host, so a browser cannot reach it"),
                    format!("give `services.{service}.ingress.host`"),
                ),
                Some(_) => {}
            }
        }
    }

    // Browser-facing hosts are unique: two Ingress rules for one host would route by accident.
    let mut hosts: BTreeMap<String, Path> = BTreeMap::new();
    if config.keycloak.enabled {
        hosts.insert(config.keycloak.host.clone(), root.key("keycloak").key("host"));
    }
    if config.temporal.enabled && config.temporal.ui {
        let path = root.key("temporal").key("ui_host");
        if let Some(first) = hosts.get(&config.temporal.ui_host) {
            let first = first.to_string();
            c.report(
                &path,
                format!("host `{}` is already used by {first}", config.temporal.ui_host),
                "give each browser-facing host its own name",
            );
        } else {
            hosts.insert(config.temporal.ui_host.clone(), path);
        }
    }

    let secret_names = config.secret_names();
    for (name, spec) in &config.secrets {
        if !is_secret_name(name) {
            c.report(
                &root.key("secrets").key(name),
                format!("`{name}` is not a valid secret name"),
                "use lowercase letters, digits, '-' and '_'",
            );
        }
        if !SECRET_LENGTHS.contains(&spec.length) {
            c.report(
                &root.key("secrets").key(name).key("length"),
                format!("a secret of {} characters is not allowed", spec.length),
                format!("use {} to {} characters (the default is 32)", SECRET_LENGTHS.start(), SECRET_LENGTHS.end()),
            );
        }
    }
    let known_targets: Vec<&str> =
        config.services.keys().map(String::as_str).chain(components(config).into_iter().map(|(n, _)| n)).collect();

    for (name, service) in &config.services {
        let sp = root.key("services").key(name);
        if !is_dns_1035_label(name) {
            c.report(
                &sp,
                format!("`{name}` is not a valid service name"),
                "use 1-63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (it names a Kubernetes Service)",
            );
        } else if RESERVED_SERVICE_NAMES.contains(&name.as_str()) {
            let compose = if components(config).iter().any(|(component, _)| component == name) {
                format!(" and of the compose variables KP_{}_*", name.to_ascii_uppercase())
            } else {
                String::new()
            };
            c.report(
                &sp,
                format!("`{name}` is the name of the platform's {name} Service{compose}"),
                format!("rename the service, e.g. `{name}-app`"),
            );
        }
        if i32::try_from(service.replicas).is_err() {
            c.report(
                &sp.key("replicas"),
                format!("{} replicas is more than a Deployment holds ({})", service.replicas, i32::MAX),
                "use a number of replicas a kind cluster can run, e.g. 1 to 3",
            );
        }
        match (&service.build, &service.image) {
            (None, None) => c.report(
                &sp,
                "the service has neither `build` nor `image`",
                "add `build: { context: path/to/app }` to build it, or `image: registry/app:1.2.3` to run a prebuilt one",
            ),
            (Some(_), Some(_)) => c.report(
                &sp.key("image"),
                "the service has both `build` and `image`",
                "keep one: `build` to build from source, `image` to run a prebuilt image",
            ),
            (None, Some(image)) => c.image(&sp.key("image"), image),
            (Some(build), None) => {
                if !inputs.is_dir(&build.context) {
                    c.report(
                        &sp.key("build").key("context"),
                        format!("build context `{}` does not exist", build.context.display()),
                        "give a folder relative to the config file",
                    );
                } else if let Some(file) = build.dockerfile.as_deref().filter(|file| !stays_inside(file)) {
                    c.report(
                        &sp.key("build").key("dockerfile"),
                        format!("the Dockerfile `{}` is outside the build context `{}`", file.display(), build.context.display()),
                        "Docker reads the Dockerfile from the context it is sent: move it into the context, or make the context a folder that holds both",
                    );
                } else {
                    let dockerfile = build.context.join(build.dockerfile.as_deref().unwrap_or(super::DEFAULT_DOCKERFILE.as_ref()));
                    if !inputs.is_file(&dockerfile) {
                        c.report(
                            &sp.key("build").key(if build.dockerfile.is_some() { "dockerfile" } else { "context" }),
                            format!("no Dockerfile at `{}`", dockerfile.display()),
                            "add one, or set `build.dockerfile` to its path relative to the context",
                        );
                    }
                }
            }
        }
        for (key, list) in [("command", &service.command), ("args", &service.args)] {
            // A reference would put a contract value, often a secret, into a process's
            // arguments, which every user of the node can read: values travel in env.
            if let Some((i, _)) = list.iter().enumerate().find(|(_, a)| a.contains("{{")) {
                c.report(
                    &sp.key(key).index(i),
                    format!("`{key}` takes no references: arguments are passed literally"),
                    "put the value in `env` and read it in the process (or `sh -c '… \"$VAR\"'`)",
                );
            }
        }
        for (key, probe) in [("liveness", &service.liveness), ("startup", &service.startup)] {
            let Some(probe) = probe else { continue };
            let at = sp.key(key);
            match (&probe.path, probe.command.is_empty()) {
                (Some(_), false) | (None, true) => c.report(
                    &at,
                    format!("`{key}` needs exactly one of `path` and `command`"),
                    "give `path` for a service that answers HTTP on its port, `command` for one that does not",
                ),
                (Some(path), true) if !path.starts_with('/') => {
                    c.report(&at.key("path"), format!("`{path}` does not start with '/'"), format!("write `/{path}`"))
                }
                (Some(_), true) if service.named_ports().is_empty() => c.report(
                    &at.key("path"),
                    format!("`{key}.path` is checked on the service's port, and it has no `port`"),
                    "set `port`, or check with a `command`",
                ),
                (None, false) if probe.port.is_some() => c.report(
                    &at.key("port"),
                    format!("`{key}.port` is the port of an HTTP `path` check, and this check is a `command`"),
                    "remove `port`, or check a `path` instead",
                ),
                (Some(_), true) => {
                    let port = probe.port.as_deref().map(|p| (p, at.key("port")));
                    http_port(&mut c, service, port, service.probe_port(probe), &at.key("path"), &format!("`{key}`"));
                }
                _ => {}
            }
            for (field, value) in
                [("period_seconds", probe.period_seconds), ("failure_threshold", probe.failure_threshold)]
            {
                if value == 0 {
                    c.report(&at.key(field), format!("`{field}` is 0"), "use 1 or more (Kubernetes refuses 0)");
                }
            }
        }
        if service.port == Some(0) {
            c.report(&sp.key("port"), "port 0 is not a usable container port", "use the port the service listens on");
        }
        service_ports(&mut c, &sp, service);
        if service.named_ports().is_empty() {
            // What needs a port to reach: the route, the HTTP health check, a compose host port.
            let needs = [
                ("ingress", service.ingress.is_some(), "a route"),
                ("health_path", service.health_path.is_some(), "an HTTP health check"),
                ("compose", service.compose.port.is_some(), "a compose host port"),
            ];
            for (key, set, what) in needs {
                if set {
                    let at = if key == "compose" { sp.key("compose").key("port") } else { sp.key(key) };
                    c.report(
                        &at,
                        format!("the service has {what} but no `port`"),
                        "set `port` to the container port it listens on (it was 8080 by default before ports became optional)",
                    );
                }
            }
        }
        if let Some(path) = &service.health_path
            && !path.starts_with('/')
        {
            c.report(&sp.key("health_path"), format!("`{path}` does not start with '/'"), format!("write `/{path}`"));
        }
        if service.health_path.is_some() && !service.readiness_command.is_empty() {
            c.report(
                &sp.key("readiness_command"),
                "`health_path` and `readiness_command` are both set",
                "keep one: `health_path` for a service that answers HTTP, `readiness_command` for a worker",
            );
        }
        if let Some(ingress) = &service.ingress {
            let port = ingress.port.as_deref().map(|p| (p, sp.key("ingress").key("port")));
            http_port(&mut c, service, port, service.ingress_port(), &sp.key("ingress"), "the route");
        }
        match (&service.health_path, &service.health_port) {
            (None, Some(_)) => c.report(
                &sp.key("health_port"),
                "`health_port` is the port of `health_path`, which is unset",
                "set `health_path`, or remove `health_port`",
            ),
            (Some(_), name) => {
                let port = name.as_deref().map(|p| (p, sp.key("health_port")));
                http_port(&mut c, service, port, service.health_port(), &sp.key("health_path"), "`health_path`");
            }
            (None, None) => {}
        }
        if let (Some(_), Some(_), Some(route), Some(health)) =
            (&service.ingress, &service.health_path, service.ingress_port(), service.health_port())
            && route.name != health.name
        {
            // The parity suite calls the health path through the Ingress (`route.<host>`).
            c.report(
                &sp.key(if service.health_port.is_some() { "health_port" } else { "health_path" }),
                format!(
                    "`health_path` is checked through the Ingress, which leads to port `{}`, but it is served on `{}`",
                    route.name, health.name
                ),
                "serve the health check on the routed port, or route `ingress.port` to the one that serves it",
            );
        }
        if let (Some(ingress), Some(health)) = (&service.ingress, &service.health_path) {
            // The parity suite calls the health path through the Ingress, which routes only its
            // Prefix path (by whole path elements: `/api` covers `/api` and `/api/…`).
            if ingress.path.starts_with('/') && health.starts_with('/') && !prefix_covers(&ingress.path, health) {
                let under = format!("{}/{}", ingress.path.trim_end_matches('/'), health.trim_start_matches('/'));
                c.report(
                    &sp.key("health_path"),
                    format!("the Ingress routes only `{}` to this service, so `{health}` cannot be probed through it", ingress.path),
                    format!("serve the health check under the route and write `health_path: {under}`, or route the whole host with `ingress.path: /`"),
                );
            }
        }
        if let Some(ingress) = &service.ingress {
            let ip = sp.key("ingress");
            c.dns_label(&ip.key("host"), &ingress.host, "host label");
            if !ingress.path.starts_with('/') {
                c.report(
                    &ip.key("path"),
                    format!("`{}` does not start with '/'", ingress.path),
                    format!("write `/{}`", ingress.path),
                );
            }
            if let Some(first) = hosts.get(&ingress.host) {
                let first = first.to_string();
                c.report(
                    &ip.key("host"),
                    format!("host `{}.{}` is already used by {first}", ingress.host, config.domain),
                    "give each browser-facing host its own name",
                );
            } else {
                hosts.insert(ingress.host.clone(), ip.key("host"));
            }
        }
        for (key, value) in [("cpu", &service.resources.cpu), ("memory", &service.resources.memory)] {
            if let Some(why) = super::quantity::problem(value) {
                c.report(
                    &sp.key("resources").key(key),
                    format!("`{value}` is not a Kubernetes quantity: {why}"),
                    "write e.g. `100m` or `1` for CPU, `256Mi` or `1e9` for memory",
                );
            }
        }
        for (i, target) in service.depends_on.iter().enumerate() {
            let dp = sp.key("depends_on").index(i);
            if target == name {
                c.report(&dp, format!("`{name}` depends on itself"), "remove the entry");
            } else if let Some((_, enabled)) = components(config).into_iter().find(|(n, _)| n == target) {
                if !enabled {
                    c.report(
                        &dp,
                        format!("`{target}` is disabled"),
                        format!("set `{target}.enabled: true` or remove the dependency"),
                    );
                }
            } else if !config.services.contains_key(target) {
                let help = match did_you_mean(target, known_targets.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("depend on a service or a component: {}", known_targets.join(", ")),
                };
                c.report(&dp, format!("`{target}` is not a service or a component"), help);
            }
        }
        files(&mut c, &sp, service, inputs, &secret_names);
        let envs = [
            (sp.key("env"), &service.env),
            (sp.key("compose").key("env"), &service.compose.env),
            (sp.key("kind").key("env"), &service.kind.env),
        ];
        for (ep, env) in envs {
            for (key, value) in env {
                let kp = ep.key(key);
                if !is_env_key(key) {
                    c.report(
                        &kp,
                        format!("`{key}` is not a valid environment variable name"),
                        "use letters, digits and '_', not starting with a digit",
                    );
                }
                match refs::parse(value) {
                    Err(message) => c.report(&kp, message, "see the reference list in docs/config.md"),
                    Ok(pieces) => {
                        for piece in pieces {
                            if let Piece::Ref(r) = piece
                                && let Err(e) = refs::classify(&r, config, &secret_names)
                            {
                                let help = e.help.unwrap_or_else(|| "see the reference list in docs/config.md".into());
                                c.report(&kp, e.message, help);
                            }
                        }
                    }
                }
            }
        }
    }
    for (vpath, keys) in &config.vault.paths {
        // The seed sidecar passes paths and keys to a shell in double quotes: no `$`, `"` or '`'.
        let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
        if !safe(vpath) || vpath.starts_with('/') {
            c.report(
                &root.key("vault").key("paths").key(vpath),
                format!("`{vpath}` is not a usable Vault KV path"),
                "use letters, digits, '/', '_', '.' and '-', starting with the mount (`secret/app`)",
            );
        }
        for key in keys.keys().filter(|k| !safe(k)) {
            c.report(
                &root.key("vault").key("paths").key(vpath).key(key),
                format!("`{key}` is not a usable Vault key name"),
                "use letters, digits, '_', '.' and '-'",
            );
        }
        for (key, secret) in keys {
            if !secret_names.contains(secret) {
                c.report(
                    &root.key("vault").key("paths").key(vpath).key(key),
                    format!("secret `{secret}` is not defined"),
                    "declare it under `secrets:`",
                );
            }
        }
    }

    for (name, artifact) in &config.artifacts {
        let ap = root.key("artifacts").key(name);
        c.dns_label(&ap, name, "artifact name");
        let size = inputs.read_bytes(&artifact.path).map(|b| b.len());
        match size {
            Err(_) => c.report(
                &ap.key("path"),
                format!("no file at `{}`", artifact.path.display()),
                "give a file's path relative to the config file",
            ),
            Ok(size) if size > MAX_ARTIFACT_BYTES => c.report(
                &ap.key("path"),
                format!(
                    "`{}` is {size} bytes; a ConfigMap holds at most {MAX_ARTIFACT_BYTES}",
                    artifact.path.display()
                ),
                "deliver large files as an image or from a registry instead",
            ),
            Ok(_) => {}
        }
    }
    // `compose.env`'s port variables: `KP_A_B_PORT` is port `b` of `a` and the main port of `a-b`.
    let mut variables: BTreeMap<String, Path> = BTreeMap::new();
    for (name, service) in &config.services {
        let sp = root.key("services").key(name);
        for (var, port) in service.port_variables(name) {
            let at = if service.ports.is_empty() { sp.key("port") } else { sp.key("ports").key(port.name) };
            if let Some(first) = variables.get(&var) {
                let first = first.to_string();
                c.report(
                    &at,
                    format!("its compose variable {var} is already {first}'s"),
                    "rename the port or the service",
                );
            } else {
                variables.insert(var, at);
            }
        }
    }
    if let Some(cycle) = find_cycle(config) {
        let path = root.key("services").key(&cycle[0]).key("depends_on");
        c.report(
            &path,
            format!("dependency cycle: {}", cycle.join(" → ")),
            "remove one of these dependencies; startup order must be a chain, not a loop",
        );
    }

    c.out.sort_by_key(|d| d.origin.clone());
    c.out
}

/// A service's `files`: each at its own absolute path in the container, from exactly one of a
/// repository file or folder that exists (and fits a ConfigMap) and a defined secret, its
/// variable a valid name the service's env does not set too.
fn files(c: &mut Checker<'_>, sp: &Path, service: &super::Service, inputs: &Inputs, secrets: &[String]) {
    let mut paths: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0usize;
    for (i, file) in service.files.iter().enumerate() {
        let fp = sp.key("files").index(i);
        let normal = file.path.starts_with('/')
            && file.path.len() > 1
            && !file.path.ends_with('/')
            && file.path.split('/').skip(1).all(|part| !part.is_empty() && part != "." && part != "..");
        if !normal {
            c.report(
                &fp.key("path"),
                format!("`{}` is not an absolute path in the container", file.path),
                "write the path the process reads, e.g. `/etc/app/config.yaml` (no `.`, `..` or trailing `/`)",
            );
        } else if file.path == "/etc/kind-parity" || file.path.starts_with("/etc/kind-parity/") {
            c.report(
                &fp.key("path"),
                format!("`{}` is where the local CA is mounted", file.path),
                "mount it somewhere else: /etc/kind-parity holds the environment's CA",
            );
        }
        if let Some(first) = paths.get(file.path.as_str()) {
            c.report(
                &fp.key("path"),
                format!("`{}` is already mounted by files[{first}]", file.path),
                "mount each path once",
            );
        } else {
            paths.insert(&file.path, i);
        }
        match (&file.source, &file.secret) {
            (Some(_), Some(_)) | (None, None) => c.report(
                &fp,
                "a mount needs exactly one of `source` and `secret`",
                "give `source` for a repository file or folder, `secret` for a generated secret",
            ),
            (Some(source), None) => {
                if inputs.is_dir(source) {
                    match inputs.files_under(source) {
                        Ok(list) if list.is_empty() => c.report(
                            &fp.key("source"),
                            format!("the folder `{}` holds no file", source.display()),
                            "mount a folder with files, or remove the entry",
                        ),
                        Ok(list) => {
                            total += list
                                .iter()
                                .map(|f| inputs.read_bytes(&source.join(f)).map_or(0, |b| b.len()))
                                .sum::<usize>();
                        }
                        Err(e) => c.report(
                            &fp.key("source"),
                            format!("`{}` cannot be read: {e}", source.display()),
                            "check its permissions",
                        ),
                    }
                } else {
                    match inputs.read_bytes(source) {
                        Ok(bytes) => total += bytes.len(),
                        Err(_) => c.report(
                            &fp.key("source"),
                            format!("no file or folder at `{}`", source.display()),
                            "give a path relative to the config file",
                        ),
                    }
                }
            }
            (None, Some(secret)) => {
                if !secrets.contains(secret) {
                    let help = match did_you_mean(secret, secrets.iter().map(String::as_str)) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => "declare it under `secrets:`".to_owned(),
                    };
                    c.report(&fp.key("secret"), format!("secret `{secret}` is not defined"), help);
                }
                if service.compose.runs == super::Runs::Host {
                    c.report(
                        &fp.key("secret"),
                        "a process on the host (`compose.runs: host`) has no container to mount a secret into",
                        "pass the secret in `env` with `{{ secret \"NAME\" }}`, or run the service in a container",
                    );
                }
            }
        }
        if let Some(var) = &file.env {
            if !is_env_key(var) {
                c.report(
                    &fp.key("env"),
                    format!("`{var}` is not a valid environment variable name"),
                    "use letters, digits and '_', not starting with a digit",
                );
            } else if service.env.contains_key(var)
                || service.compose.env.contains_key(var)
                || service.kind.env.contains_key(var)
            {
                c.report(
                    &fp.key("env"),
                    format!("`{var}` is also set in the service's env"),
                    "keep one: `files[].env` sets it to the mounted path in both modes",
                );
            } else if service.files[..i].iter().any(|f| f.env.as_deref() == Some(var)) {
                c.report(
                    &fp.key("env"),
                    format!("`{var}` already names another mount"),
                    "give each mount its own variable",
                );
            }
        }
    }
    if total > MAX_ARTIFACT_BYTES {
        c.report(
            &sp.key("files"),
            format!(
                "the mounted repository files are {total} bytes; their ConfigMap holds at most {MAX_ARTIFACT_BYTES}"
            ),
            "mount less (build large files into the image instead)",
        );
    }
}

/// A service's `ports`: exclusive with `port`, each named as Kubernetes names a container port,
/// usable, and no container port twice (a Service refuses a port twice).
fn service_ports(c: &mut Checker<'_>, sp: &Path, service: &super::Service) {
    if service.ports.is_empty() {
        return;
    }
    if service.port.is_some() {
        c.report(
            &sp.key("ports"),
            "the service has both `port` and `ports`",
            "keep one: `port: N` for a single port, `ports` to name several",
        );
    }
    if service.compose.port.is_some() {
        let main = service.ports.keys().next().map(String::as_str).unwrap_or_default();
        c.report(
            &sp.key("compose").key("port"),
            "`compose.port` is the host port of the `port` shorthand; with `ports`, each port has its own",
            format!("write `ports.{main}.compose_port` instead"),
        );
    }
    let mut seen: BTreeMap<(u16, Protocol), &str> = BTreeMap::new();
    for (name, spec) in &service.ports {
        let pp = sp.key("ports").key(name);
        if !is_port_name(name) {
            c.report(
                &pp,
                format!("`{name}` is not a valid port name"),
                "use at most 15 lowercase letters, digits and '-', with a letter, no '-' first, last or twice in a row (Kubernetes names container ports so)",
            );
        }
        if spec.port == 0 {
            c.report(&pp.key("port"), "port 0 is not a usable container port", "use the port the service listens on");
        }
        if spec.compose_port == Some(0) {
            c.report(&pp.key("compose_port"), "port 0 is not a usable host port", "use a port between 1 and 65535");
        }
        match seen.get(&(spec.port, spec.protocol)) {
            Some(first) => c.report(
                &pp.key("port"),
                format!("container port {}/{} is already port `{first}`", spec.port, spec.protocol.as_str()),
                "give each port its own number: a Service cannot have one twice",
            ),
            None => {
                seen.insert((spec.port, spec.protocol), name);
            }
        }
    }
}

/// A port that an HTTP check or the route uses: `named` (the name and where the config says
/// it) must be one of the service's ports, and the port used a TCP one.
fn http_port(
    c: &mut Checker<'_>,
    service: &super::Service,
    named: Option<(&str, Path)>,
    port: Option<super::NamedPort<'_>>,
    usage: &Path,
    what: &str,
) {
    match (named, port) {
        (Some((name, at)), None) => {
            let names: Vec<&str> = service.named_ports().iter().map(|p| p.name).collect();
            let help = match did_you_mean(name, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => "declare it under `ports`".to_owned(),
                None => format!("its ports are: {}", names.join(", ")),
            };
            c.report(&at, format!("the service has no port `{name}`"), help);
        }
        (named, Some(port)) if port.protocol == Protocol::Udp => {
            let at = named.map_or_else(|| usage.clone(), |(_, at)| at);
            c.report(
                &at,
                format!("{what} needs a TCP port, and port `{}` is UDP", port.name),
                "name a TCP port of the service (the main port, the first listed, is used when none is named)",
            );
        }
        _ => {}
    }
}

/// Kubernetes' name of a container port (`IsValidPortName`, an IANA service name): at most 15
/// lowercase letters, digits and '-', at least one letter, no '-' at either end or next to
/// another.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The first `depends_on` cycle among services, as names from start back to start.
pub(crate) fn find_cycle(config: &Config) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        config: &'a Config,
        stack: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        if let Some(service) = config.services.get(node) {
            for dep in &service.depends_on {
                if dep != node
                    && config.services.contains_key(dep.as_str())
                    && let Some(cycle) = visit(dep, config, stack, done)
                {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        None
    }
    let mut done = HashSet::new();
    config.services.keys().find_map(|name| visit(name, config, &mut Vec::new(), &mut done))
}

/// Whether an Ingress path of type Prefix matches `path`: element by element, so `/api` covers
/// `/api` and `/api/health` but not `/apihealth`.
pub(crate) fn prefix_covers(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// An image reference split into its name and what follows it (`:tag`, `@digest`), for a hint.
fn split_reference(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let end = image[last_slash..].find([':', '@']).map_or(image.len(), |i| last_slash + i);
    image.split_at(end)
}

/// RFC 1123 label: what Kubernetes object names, kind cluster names and host labels accept.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// RFC 1035 label: what a Kubernetes Service name accepts (a letter first).
pub(crate) fn is_dns_1035_label(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Whether a relative path stays inside the folder it is relative to (no absolute path, no
/// `..` that climbs out).
fn stays_inside(path: &std::path::Path) -> bool {
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if depth > 0 => depth -= 1,
            _ => return false,
        }
    }
    true
}

fn is_sql_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_env_key(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
