//! Checks after layering: what types cannot say (names, uniqueness, references, files).
//!
//! Every check adds a diagnostic instead of returning early, so one run lists every problem.

use std::collections::{BTreeMap, HashSet};

use super::{Config, Inputs, Origins, Path};
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

    fn pinned(&mut self, path: &Path, image: &str) {
        let last = image.rsplit('/').next().unwrap_or(image);
        let pinned =
            image.contains('@') || last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
        if !pinned {
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

/// The largest artifact: a ConfigMap is at most 1 MiB, and `binaryData` is base64 (4/3 larger).
pub const MAX_ARTIFACT_BYTES: usize = 700 * 1024;

pub(crate) fn validate(config: &Config, origins: &Origins, inputs: &Inputs) -> Vec<Diagnostic> {
    let mut c = Checker { origins, out: Vec::new() };
    let root = Path::default();

    c.dns_label(&root.key("name"), &config.name, "environment name");
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
    let mut compose_ports: BTreeMap<u16, Path> = BTreeMap::new();
    let mut claim = |c: &mut Checker<'_>, port: u16, path: Path| {
        if let Some(first) = compose_ports.get(&port) {
            c.report(
                &path,
                format!("host port {port} is already used by {first}"),
                "give each published port its own number",
            );
        } else {
            compose_ports.insert(port, path);
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
            claim(&mut c, port, root.key(name).key("compose_port"));
        }
    }
    if config.registry.enabled {
        claim(&mut c, config.registry.host_port, root.key("registry").key("host_port"));
    }
    for (name, service) in &config.services {
        let path = if service.compose.port.is_some() {
            root.key("services").key(name).key("compose").key("port")
        } else {
            root.key("services").key(name).key("port")
        };
        claim(&mut c, service.compose_port(), path);
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
            c.pinned(&root.key(name).key("image"), image);
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
        c.pinned(&root.key("temporal").key("ui_image"), &config.temporal.ui_image);
    }
    if let Some(image) = &config.ingress.image {
        c.pinned(&root.key("ingress").key("image"), image);
    }
    let node_image = config.cluster.node_image.clone();
    c.pinned(&root.key("cluster").key("node_image"), &node_image);

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
    for name in config.secrets.keys() {
        if !is_secret_name(name) {
            c.report(
                &root.key("secrets").key(name),
                format!("`{name}` is not a valid secret name"),
                "use lowercase letters, digits, '-' and '_'",
            );
        }
    }
    let known_targets: Vec<&str> =
        config.services.keys().map(String::as_str).chain(components(config).into_iter().map(|(n, _)| n)).collect();

    for (name, service) in &config.services {
        let sp = root.key("services").key(name);
        c.dns_label(&sp, name, "service name");
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
            (None, Some(image)) => c.pinned(&sp.key("image"), image),
            (Some(build), None) => {
                if !inputs.is_dir(&build.context) {
                    c.report(
                        &sp.key("build").key("context"),
                        format!("build context `{}` does not exist", build.context.display()),
                        "give a folder relative to the config file",
                    );
                } else {
                    let dockerfile = build.context.join(build.dockerfile.as_deref().unwrap_or("Dockerfile".as_ref()));
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
        if service.port == 0 {
            c.report(&sp.key("port"), "port 0 is not a usable container port", "use the port the service listens on");
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
            if !is_quantity(value) {
                c.report(
                    &sp.key("resources").key(key),
                    format!("`{value}` is not a Kubernetes quantity"),
                    "write e.g. `100m` for CPU or `256Mi` for memory",
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

/// RFC 1123 label: what Kubernetes object names, kind cluster names and host labels accept.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
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

fn is_quantity(s: &str) -> bool {
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix)
}
