//! The effective compose project mapped onto the config: services with their builds, images,
//! ports, env, depends_on and healthchecks; the platform containers (Postgres, Redis, Keycloak,
//! NATS) as the components they are; everything else reported with the reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use super::{ComposeService, Project, dotenv, parent};
use crate::init::starter::relative_to;
use crate::init::{Error, InitOptions, Result, Starter, Unmapped, environment_name, schema_line, service_name};

/// The platform components an image can be, with the container port each listens on and the
/// repository of the official image the config's default runs.
const COMPONENTS: &[(&str, u16, &str)] = &[
    ("postgres", 5432, "docker.io/library/postgres"),
    ("redis", 6379, "docker.io/library/redis"),
    ("keycloak", 8080, "quay.io/keycloak/keycloak"),
    ("nats", 4222, "docker.io/library/nats"),
];

/// The component an image is, by its repository's last name (`postgres:17`,
/// `docker.io/library/redis:7`, `quay.io/keycloak/keycloak:26.3`, `postgis/postgis:17-3.5`).
fn component_of(image: &str) -> Option<&'static str> {
    let (repository, _) = split_image(image);
    match repository.rsplit('/').next()? {
        "postgres" | "postgis" => Some("postgres"),
        "redis" | "redis-stack" | "redis-stack-server" => Some("redis"),
        "keycloak" => Some("keycloak"),
        "nats" => Some("nats"),
        _ => None,
    }
}

/// An image's repository and its tag (or digest), when it has one.
fn split_image(image: &str) -> (&str, Option<&str>) {
    if let Some((repository, digest)) = image.split_once('@') {
        return (
            repository.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(repository, |(r, _)| r),
            Some(digest),
        );
    }
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (image, None),
    }
}

/// The image with its registry and `library/` spelled out, as the config's defaults are.
fn full_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry = image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, image.contains('/')) {
        (true, _) => image.to_owned(),
        (false, true) => format!("docker.io/{image}"),
        (false, false) => format!("docker.io/library/{image}"),
    }
}

/// What a compose service became.
#[derive(Debug, Clone)]
enum Target {
    Component(&'static str),
    Service(String),
}

/// One published port.
#[derive(Debug, Clone, PartialEq)]
struct Port {
    target: u16,
    published: Option<u16>,
    host_ip: Option<String>,
    udp: bool,
    /// The long syntax's `name`.
    name: Option<String>,
}

/// A service's imported port: its name in the config and its index in the compose list.
#[derive(Debug, Clone, PartialEq)]
struct NamedPort {
    name: String,
    index: usize,
    port: Port,
}

/// The ports of the config from a service's compose ports: each container port once (per
/// protocol), named by its long syntax's `name` when that is a Kubernetes port name, else the
/// first TCP one `http` (the name of the `port` shorthand's) and the others `tcp-<port>` or
/// `udp-<port>`; with the index of each port that was left out and why.
fn named_ports(list: &[Port]) -> (Vec<NamedPort>, Vec<(usize, String)>) {
    let mut out: Vec<NamedPort> = Vec::new();
    let mut skipped = Vec::new();
    for (index, port) in list.iter().enumerate() {
        if let Some(first) = out.iter().find(|p| p.port.target == port.target && p.port.udp == port.udp) {
            skipped.push((
                index,
                format!(
                    "publishes container port {} again (ports[{}] does): the config publishes each port once",
                    port.target, first.index
                ),
            ));
            continue;
        }
        let taken = |name: &str| out.iter().any(|p| p.name == name);
        let protocol = if port.udp { "udp" } else { "tcp" };
        let name = match port.name.as_deref().filter(|n| kind_parity_render::config::is_port_name(n) && !taken(n)) {
            Some(name) => name.to_owned(),
            None if out.is_empty() && !port.udp && !taken("http") => "http".to_owned(),
            None if taken(&format!("{protocol}-{}", port.target)) => format!("{protocol}-{}-{index}", port.target),
            None => format!("{protocol}-{}", port.target),
        };
        out.push(NamedPort { name, index, port: port.clone() });
    }
    (out, skipped)
}

struct Mapper<'a> {
    notes: Vec<Unmapped>,
    base: &'a Path,
    project_dir: PathBuf,
    variables: IndexMap<String, String>,
    targets: IndexMap<String, Target>,
    /// Each imported service's ports by name, the main one first, for its healthcheck and
    /// `{{ service.NAME.internal_url }}`; a service with only `expose` has its first one, unnamed.
    service_ports: IndexMap<String, Vec<(String, u16, bool)>>,
    databases: IndexMap<String, Option<String>>,
    postgres_password: Option<String>,
}

impl Mapper<'_> {
    fn note(&mut self, service: &ComposeService, compose_name: &str, key: &str, why: impl Into<String>) {
        let what = if key.is_empty() {
            format!("{}: services.{compose_name}", service.file.display())
        } else {
            format!("{}: services.{compose_name}.{key}", service.file.display())
        };
        self.notes.push(Unmapped { what, why: why.into(), profile: None });
    }
}

pub(crate) fn map(project: Project, base: &Path, options: &InitOptions) -> Result<Starter> {
    let mut m = Mapper {
        notes: project.notes,
        base,
        project_dir: parent(&options.compose_files[0]),
        variables: project.variables,
        targets: IndexMap::new(),
        service_ports: IndexMap::new(),
        databases: IndexMap::new(),
        postgres_password: None,
    };

    // Which compose service is which: the first container of a component's image is it.
    let mut taken = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (name, service) in &project.services {
        let image = service.definition.get("image").and_then(Value::as_str);
        let component = image
            .filter(|_| !service.definition.contains_key("build"))
            .and_then(component_of)
            .filter(|c| taken.insert(*c));
        let target = match component {
            Some(component) => Target::Component(component),
            None => {
                let base_name = service_name(name);
                let mut unique = base_name.clone();
                for n in 2.. {
                    if names.insert(unique.clone()) {
                        break;
                    }
                    unique = format!("{base_name}-{n}");
                }
                Target::Service(unique)
            }
        };
        m.targets.insert(name.clone(), target);
    }
    for (name, service) in &project.services {
        if let Some(Target::Service(own)) = m.targets.get(name) {
            let mut named: Vec<(String, u16, bool)> = match ports(&service.definition) {
                Ok(list) => named_ports(&list).0.into_iter().map(|p| (p.name, p.port.target, p.port.udp)).collect(),
                Err(_) => Vec::new(),
            };
            if named.is_empty()
                && let Some(port) = expose(&service.definition)
            {
                named.push((kind_parity_render::config::DEFAULT_PORT_NAME.to_owned(), port, false));
            }
            m.service_ports.insert(own.clone(), named);
        }
    }

    let mut root = Mapping::new();
    root.insert("name".into(), environment_name(options).into());
    let mut component_sections: IndexMap<&'static str, Mapping> = IndexMap::new();
    let mut enabled = Vec::new();
    for (name, service) in &project.services {
        if let Some(Target::Component(component)) = m.targets.get(name).cloned() {
            let section = component_section(&mut m, component, name, service);
            component_sections.insert(component, section);
            enabled.push(component.to_owned());
        }
    }
    let mut services = Mapping::new();
    let mut service_names = Vec::new();
    for (name, service) in &project.services {
        if let Some(Target::Service(own)) = m.targets.get(name).cloned()
            && let Some(section) = service_section(&mut m, name, &own, service)?
        {
            services.insert(own.clone().into(), Value::Mapping(section));
            service_names.push(own);
        }
    }

    // Keycloak keeps its data in the platform's Postgres.
    if enabled.iter().any(|c| c == "keycloak") && !enabled.iter().any(|c| c == "postgres") {
        m.notes.push(Unmapped {
            what: "postgres".into(),
            why: "enabled for keycloak, which keeps its data in the platform's postgres".into(),
            profile: None,
        });
        enabled.push("postgres".into());
        component_sections.insert("postgres", Mapping::new());
    }
    if !m.databases.is_empty() {
        let section = component_sections.entry("postgres").or_default();
        let mut databases = Mapping::new();
        for (db, owner) in &m.databases {
            let mut spec = Mapping::new();
            if let Some(owner) = owner {
                spec.insert("owner".into(), owner.clone().into());
            }
            databases.insert(db.clone().into(), Value::Mapping(spec));
        }
        section.insert("databases".into(), Value::Mapping(databases));
    }
    for (component, _, _) in COMPONENTS {
        let on = enabled.iter().any(|c| c == component);
        let mut section = Mapping::new();
        section.insert("enabled".into(), on.into());
        if let Some(rest) = component_sections.swap_remove(component).filter(|_| on) {
            section.extend(rest);
        }
        // NATS is off by default: a config without it needs no section.
        if on || *component != "nats" {
            root.insert((*component).into(), Value::Mapping(section));
        }
    }
    root.insert("services".into(), Value::Mapping(services));

    let yaml = serde_yaml_ng::to_string(&root)
        .map_err(|source| Error::ComposeYaml { path: options.compose_files[0].clone(), source })?;
    let mut text = schema_line(options);
    let files: Vec<String> = options.compose_files.iter().map(|f| f.display().to_string()).collect();
    text.push_str(&format!(
        "# kind-parity.yaml imported by `kind-parity init --from-compose` from {}.\n\
         # Every key is described in docs/config.md; `kind-parity config` checks the file.\n",
        files.join(", ")
    ));
    if !m.notes.is_empty() {
        text.push_str("# Not imported (what, and why):\n");
        for note in &m.notes {
            text.push_str(&format!("#   {note}\n"));
        }
    }
    text.push_str(&yaml);
    Ok(Starter { text, services: service_names, components: enabled, unmapped: m.notes })
}

fn component_section(m: &mut Mapper<'_>, component: &'static str, name: &str, service: &ComposeService) -> Mapping {
    let def = &service.definition;
    let mut section = Mapping::new();
    let (_, container_port, official) =
        COMPONENTS.iter().find(|(c, _, _)| *c == component).copied().unwrap_or_default();
    let image = def.get("image").and_then(Value::as_str).unwrap_or_default();
    let full = full_image(image);
    let (repository, tag) = split_image(&full);
    let keycloak_too_old = component == "keycloak"
        && tag.and_then(|t| t.split('.').next()?.parse::<u32>().ok()).is_some_and(|major| major < 26);
    if repository == official && tag.is_some_and(|t| t != "latest") && !keycloak_too_old {
        section.insert("image".into(), full.clone().into());
    } else {
        let why = if keycloak_too_old {
            "kind-parity runs Keycloak 26's options: its pinned default image is used".to_owned()
        } else {
            format!("not {official} with a version: kind-parity's pinned default image of {component} is used")
        };
        m.note(service, name, "image", why);
    }
    if let Ok(list) = ports(def)
        && let Some(port) = list.iter().find(|p| p.target == container_port && !p.udp).and_then(|p| p.published)
    {
        section.insert("compose_port".into(), u64::from(port).into());
    }
    let env = environment(m, name, service, false);
    match component {
        "postgres" => {
            let user = env.get("POSTGRES_USER").cloned();
            let db = env.get("POSTGRES_DB").cloned().or_else(|| user.clone());
            m.postgres_password = env.get("POSTGRES_PASSWORD").cloned();
            if let Some(db) = db.filter(|db| db != "postgres") {
                if is_sql_identifier(&db) {
                    let owner = user.filter(|u| u != "postgres" && *u != db && is_sql_identifier(u));
                    m.databases.insert(db, owner);
                } else {
                    m.note(service, name, "environment.POSTGRES_DB", format!("`{db}` is not a name kind-parity creates a database with: use lowercase letters, digits and '_'"));
                }
            }
            for key in env.keys().filter(|k| !matches!(k.as_str(), "POSTGRES_USER" | "POSTGRES_DB")) {
                let why = if key == "POSTGRES_PASSWORD" {
                    "passwords are generated per environment: a service reads its role's with `{{ postgres.password \"DB\" }}`"
                } else {
                    "kind-parity configures its postgres itself"
                };
                m.note(service, name, &format!("environment.{key}"), why);
            }
        }
        "redis" if def.contains_key("command") => {
            m.note(
                service,
                name,
                "command",
                "kind-parity's redis runs with its own config file and a generated password (`{{ redis.password }}`)",
            );
        }
        "nats" => {
            let words = command_words(def.get("command"));
            let jetstream = words.iter().any(|w| w == "-js" || w == "--jetstream");
            section.insert("jetstream".into(), jetstream.into());
            if words.iter().any(|w| w == "--user" || w == "--pass" || w == "--auth") {
                section.insert("auth".into(), true.into());
                m.note(
                    service,
                    name,
                    "command",
                    "clients authenticate as user `app` with a generated password (`{{ nats.url }}` carries it)",
                );
            }
        }
        "keycloak" => {
            for key in env.keys() {
                let why = if key.contains("ADMIN") {
                    "the admin's password is generated per environment"
                } else if key.starts_with("KC_DB") {
                    "keycloak keeps its data in the platform's postgres"
                } else {
                    "kind-parity configures its keycloak itself (its host is auth.<domain>)"
                };
                m.note(service, name, &format!("environment.{key}"), why);
            }
        }
        _ => {}
    }
    // Volumes: Keycloak's realm import is the config's `realm_file`; data stays the component's.
    if let Some(Value::Sequence(volumes)) = def.get("volumes") {
        for (i, volume) in volumes.iter().enumerate() {
            let (source, target) = volume_parts(volume);
            if component == "keycloak"
                && target.as_deref().is_some_and(|t| t.starts_with("/opt/keycloak/data/import"))
                && let Some(realm) = source.as_deref().and_then(|s| realm_file(m, s))
            {
                let (file, realm_name) = realm;
                section.insert("realm_file".into(), file.to_string_lossy().into_owned().into());
                if let Some(realm_name) = realm_name {
                    section.insert("realm".into(), realm_name.into());
                }
                continue;
            }
            m.note(
                service,
                name,
                &format!("volumes[{i}]"),
                format!("kind-parity keeps {component}'s data in its own volume"),
            );
        }
    }
    if def.contains_key("healthcheck") {
        m.note(service, name, "healthcheck", format!("kind-parity checks {component}'s readiness itself"));
    }
    section
}

/// The realm export a Keycloak import volume's source names (a file, or the one JSON file of a
/// folder), relative to the config, with the realm it defines.
fn realm_file(m: &Mapper<'_>, source: &str) -> Option<(PathBuf, Option<String>)> {
    let path = m.project_dir.join(source);
    let file = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.into_iter().next()?
    } else {
        path
    };
    let realm = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json.get("realm").and_then(|r| r.as_str()).map(str::to_owned));
    Some((relative_to(m.base, &file), realm))
}

fn service_section(m: &mut Mapper<'_>, name: &str, own: &str, service: &ComposeService) -> Result<Option<Mapping>> {
    let def = &service.definition;
    let mut section = Mapping::new();
    if own != name {
        m.note(
            service,
            name,
            "",
            format!("imported as `{own}`: a service's name is a DNS label that names no platform component"),
        );
    }
    let image = def.get("image").and_then(Value::as_str);
    match (def.get("build"), image) {
        (Some(Value::Mapping(build)), _) => {
            let context = build.get("context").and_then(Value::as_str).unwrap_or(".");
            if context.contains("://") || context.starts_with("git@") {
                if let Some(image) = image {
                    m.note(
                        service,
                        name,
                        "build.context",
                        "a remote build context is not built by kind-parity: the image is used",
                    );
                    section.insert("image".into(), image.into());
                } else {
                    m.note(
                        service,
                        name,
                        "",
                        "left out: its build context is a remote repository, which kind-parity does not build",
                    );
                    return Ok(None);
                }
            } else {
                let mut out = Mapping::new();
                let relative = relative_to(m.base, Path::new(context));
                out.insert("context".into(), relative.to_string_lossy().into_owned().into());
                for (key, value) in build {
                    let key_name = key.as_str().unwrap_or_default();
                    match (key_name, value) {
                        ("context", _) => {}
                        ("dockerfile" | "target", Value::String(s)) => {
                            out.insert(key_name.into(), s.clone().into());
                        }
                        ("args", Value::Mapping(args)) => {
                            let mut mapped = Mapping::new();
                            for (k, v) in args {
                                let k = k.as_str().unwrap_or_default().to_owned();
                                match scalar_text(v).or_else(|| m.variables.get(&k).cloned()) {
                                    Some(v) => {
                                        mapped.insert(k.into(), v.into());
                                    }
                                    None => m.note(
                                        service,
                                        name,
                                        &format!("build.args.{k}"),
                                        "has no value and the variable is not set",
                                    ),
                                }
                            }
                            if !mapped.is_empty() {
                                out.insert("args".into(), Value::Mapping(mapped));
                            }
                        }
                        _ => m.note(
                            service,
                            name,
                            &format!("build.{key_name}"),
                            "has no equivalent in the config's build",
                        ),
                    }
                }
                section.insert("build".into(), Value::Mapping(out));
                if let Some(image) = image {
                    m.note(
                        service,
                        name,
                        "image",
                        format!(
                            "`{image}` is the tag compose gives the build; kind-parity tags builds by their content"
                        ),
                    );
                }
            }
        }
        (_, Some(image)) => {
            let (_, tag) = split_image(image);
            if tag.is_none_or(|t| t == "latest") {
                m.note(
                    service,
                    name,
                    "image",
                    format!("`{image}` is not pinned: give it a version tag or a digest, or the config does not load"),
                );
            }
            section.insert("image".into(), image.into());
        }
        _ => {
            m.note(service, name, "", "left out: it has neither `build` nor `image`");
            return Ok(None);
        }
    }

    let known = m.service_ports.get(own).cloned().unwrap_or_default();
    match ports(def) {
        Ok(list) => {
            let (named, skipped) = named_ports(&list);
            for (i, why) in skipped {
                m.note(service, name, &format!("ports[{i}]"), why);
            }
            for p in &named {
                if let Some(ip) = p.port.host_ip.as_deref().filter(|ip| *ip != "127.0.0.1") {
                    m.note(service, name, &format!("ports[{}]", p.index), format!("bound to {ip}: kind-parity binds every host port to `listen_address` (127.0.0.1 by default)"));
                }
            }
            match named.as_slice() {
                [] => {
                    if let Some((_, port, _)) = known.first() {
                        section.insert("port".into(), u64::from(*port).into());
                    }
                }
                // One TCP port named as the shorthand's: `port`, and `compose.port` its host port.
                [only] if !only.port.udp && only.name == kind_parity_render::config::DEFAULT_PORT_NAME => {
                    section.insert("port".into(), u64::from(only.port.target).into());
                    if let Some(published) = only.port.published.filter(|p| *p != only.port.target) {
                        let mut compose = Mapping::new();
                        compose.insert("port".into(), u64::from(published).into());
                        section.insert("compose".into(), Value::Mapping(compose));
                    }
                }
                several => {
                    let mut map = Mapping::new();
                    for p in several {
                        let published = p.port.published.filter(|published| *published != p.port.target);
                        let value = if !p.port.udp && published.is_none() {
                            u64::from(p.port.target).into()
                        } else {
                            let mut spec = Mapping::new();
                            spec.insert("port".into(), u64::from(p.port.target).into());
                            if p.port.udp {
                                spec.insert("protocol".into(), "UDP".into());
                            }
                            if let Some(published) = published {
                                spec.insert("compose_port".into(), u64::from(published).into());
                            }
                            Value::Mapping(spec)
                        };
                        map.insert(p.name.clone().into(), value);
                    }
                    section.insert("ports".into(), Value::Mapping(map));
                }
            }
        }
        Err((i, why)) => m.note(service, name, &format!("ports[{i}]"), why),
    }

    let words = |value: Option<&Value>| -> Vec<String> { command_words(value) };
    for (compose_key, key) in [("entrypoint", "command"), ("command", "args")] {
        let list = words(def.get(compose_key));
        if list.iter().any(|w| w.contains("{{")) {
            m.note(service, name, compose_key, "holds `{{`, which the config's arguments cannot: put the value in env");
        } else if !list.is_empty() {
            section.insert(key.into(), Value::Sequence(list.into_iter().map(Value::String).collect()));
        }
    }

    if let Some(Value::Mapping(health)) = def.get("healthcheck") {
        healthcheck(m, name, service, health, &known, &mut section);
    }
    if let Some(replicas) = def.get("deploy").and_then(|d| d.get("replicas")).and_then(Value::as_u64) {
        section.insert("replicas".into(), replicas.into());
    }

    if let Some(Value::Mapping(depends)) = def.get("depends_on") {
        let mut list = Vec::new();
        for (target, spec) in depends {
            let target = target.as_str().unwrap_or_default();
            match m.targets.get(target).cloned() {
                Some(Target::Component(c)) => list.push(Value::String(c.into())),
                Some(Target::Service(s)) => list.push(Value::String(s)),
                None => m.note(
                    service,
                    name,
                    &format!("depends_on.{target}"),
                    "names a service that is not imported (another profile's, or left out)",
                ),
            }
            if spec.get("condition").and_then(Value::as_str) == Some("service_completed_successfully") {
                m.note(
                    service,
                    name,
                    &format!("depends_on.{target}"),
                    "waits for a run to complete: kind-parity's services are long-running, so it waits for readiness",
                );
            }
        }
        if !list.is_empty() {
            section.insert("depends_on".into(), Value::Sequence(list));
        }
    }

    let env = environment(m, name, service, true);
    if !env.is_empty() {
        let mut mapped = Mapping::new();
        for (key, value) in env {
            if !is_env_key(&key) {
                m.note(
                    service,
                    name,
                    &format!("environment.{key}"),
                    "is not a variable name the config takes (letters, digits, '_')",
                );
                continue;
            }
            let value = rewrite(m, &key, &value);
            mapped.insert(key.into(), value.into());
        }
        section.insert("env".into(), Value::Mapping(mapped));
    }

    if let Some(Value::Sequence(volumes)) = def.get("volumes") {
        let context = def.get("build").and_then(|b| b.get("context")).and_then(Value::as_str).map(PathBuf::from);
        let mut files = Vec::new();
        for (i, volume) in volumes.iter().enumerate() {
            let (source, target) = volume_parts(volume);
            let why = match (source, target) {
                (Some(s), _) if s.starts_with('~') => {
                    "a bind mount of a path in the home folder, outside the repository"
                }
                (Some(s), Some(target)) if s.starts_with(['.', '/']) => {
                    match bind_mount(m, &s, &target, context.as_deref()) {
                        Ok(file) => {
                            if !read_only(volume) {
                                m.note(service, name, &format!("volumes[{i}]"), "imported read-only: kind mounts files from a ConfigMap, which a process cannot write");
                            }
                            files.push(Value::Mapping(file));
                            continue;
                        }
                        Err(why) => why,
                    }
                }
                (Some(s), None) if s.starts_with(['.', '/']) => "a bind mount without a target",
                (Some(_), _) => {
                    "a named volume: the config's services keep no state of their own; keep it in a platform component"
                }
                (None, _) => "an anonymous volume: the config has no volumes",
            };
            m.note(service, name, &format!("volumes[{i}]"), why);
        }
        if !files.is_empty() {
            section.insert("files".into(), Value::Sequence(files));
        }
    }
    for key in def.keys().filter_map(Value::as_str) {
        let why = match key {
            "build" | "image" | "ports" | "expose" | "entrypoint" | "command" | "healthcheck" | "depends_on"
            | "environment" | "env_file" | "volumes" | "profiles" => continue,
            "deploy"
                if def
                    .get("deploy")
                    .and_then(Value::as_mapping)
                    .is_some_and(|d| d.keys().all(|k| k.as_str() == Some("replicas"))) =>
            {
                continue;
            }
            "restart" => "kind-parity restarts containers itself (a Deployment on kind)",
            "networks" | "network_mode" => "an environment's services share one network",
            "container_name" | "hostname" => "services are reached by their service name",
            "deploy" => "only `deploy.replicas` has an equivalent (`replicas`)",
            _ => "has no equivalent in kind-parity.yaml",
        };
        m.note(service, name, key, why);
    }
    Ok(Some(section))
}

fn healthcheck(
    m: &mut Mapper<'_>,
    name: &str,
    service: &ComposeService,
    health: &Mapping,
    ports: &[(String, u16, bool)],
    section: &mut Mapping,
) {
    if health.get("disable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let command: Vec<String> = match health.get("test") {
        Some(Value::String(shell)) => vec!["sh".into(), "-c".into(), shell.clone()],
        Some(Value::Sequence(list)) => {
            let list: Vec<String> = list.iter().filter_map(scalar_text).collect();
            match list.split_first() {
                Some((first, rest)) if first == "CMD" => rest.to_vec(),
                Some((first, rest)) if first == "CMD-SHELL" => vec!["sh".into(), "-c".into(), rest.join(" ")],
                Some((first, _)) if first == "NONE" => return,
                _ => list,
            }
        }
        _ => return,
    };
    // `curl -f http://localhost:PORT/path` on the service's own port is its health path.
    let url = command.iter().flat_map(|w| w.split_whitespace()).find_map(|w| {
        let w = w.trim_matches(['\'', '"']);
        let rest = w.strip_prefix("http://localhost").or_else(|| w.strip_prefix("http://127.0.0.1"))?;
        let (url_port, path) = match rest.strip_prefix(':') {
            Some(r) => {
                let end = r.find('/').unwrap_or(r.len());
                (r[..end].parse::<u16>().ok(), &r[end..])
            }
            None => (Some(80), rest),
        };
        Some((url_port, if path.is_empty() { "/".to_owned() } else { path.to_owned() }))
    });
    let prober = command.iter().any(|w| w.contains("curl") || w.contains("wget"));
    // The TCP port the URL calls, when it is one of the service's: the main one needs no name.
    let called = url.as_ref().and_then(|(url_port, _)| {
        ports.iter().position(|(_, port, udp)| !udp && Some(*port) == *url_port).map(|i| (i, &ports[i].0))
    });
    match (url, called) {
        (Some((_, path)), Some((i, port_name))) if prober => {
            section.insert("health_path".into(), path.into());
            if i > 0 {
                section.insert("health_port".into(), port_name.clone().into());
            }
        }
        _ => {
            section
                .insert("readiness_command".into(), Value::Sequence(command.into_iter().map(Value::String).collect()));
        }
    }
    let timing: Vec<&str> = ["interval", "timeout", "retries", "start_period", "start_interval"]
        .into_iter()
        .filter(|k| health.contains_key(*k))
        .collect();
    if !timing.is_empty() {
        m.note(
            service,
            name,
            "healthcheck",
            format!("its {} are not imported: kind-parity's readiness checks keep their own timing", timing.join(", ")),
        );
    }
}

/// A service's environment as compose gives it: its env files in order, then `environment`,
/// a bare key's value from the variables.
fn environment(
    m: &mut Mapper<'_>,
    name: &str,
    service: &ComposeService,
    note_missing: bool,
) -> IndexMap<String, String> {
    let mut env = IndexMap::new();
    if let Some(Value::Sequence(files)) = service.definition.get("env_file") {
        for file in files {
            let (path, required) = match file {
                Value::String(p) => (p.clone(), true),
                Value::Mapping(spec) => (
                    spec.get("path").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    spec.get("required").and_then(Value::as_bool).unwrap_or(true),
                ),
                _ => continue,
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => env.extend(dotenv(&text)),
                Err(_) if !required => {}
                Err(e) => m.note(service, name, "env_file", format!("{path} could not be read ({e})")),
            }
        }
    }
    if let Some(Value::Mapping(map)) = service.definition.get("environment") {
        for (key, value) in map {
            let key = key.as_str().unwrap_or_default().to_owned();
            match scalar_text(value).or_else(|| m.variables.get(&key).cloned()) {
                Some(value) => {
                    env.insert(key, value);
                }
                None if note_missing => {
                    m.note(
                        service,
                        name,
                        &format!("environment.{key}"),
                        "has no value and the variable is not set, so compose leaves it out too",
                    );
                }
                None => {}
            }
        }
    }
    env
}

/// An env value with what it says about a platform component or another service written as
/// the config's reference to it, so it resolves per mode; other text is kept (braces escaped).
fn rewrite(m: &mut Mapper<'_>, key: &str, value: &str) -> String {
    let component = |host: &str| match m.targets.get(host) {
        Some(Target::Component(c)) => Some(*c),
        _ => None,
    };
    if let Some((scheme, rest)) = value.split_once("://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.split(':').next().unwrap_or_default()), host),
            None => (None, authority),
        };
        let host = host_port.split(':').next().unwrap_or_default();
        match (scheme, component(host)) {
            ("postgres" | "postgresql", Some("postgres")) => {
                let db = path.trim_start_matches('/').split('?').next().unwrap_or_default().to_owned();
                if is_sql_identifier(&db) {
                    let owner =
                        user.filter(|u| *u != "postgres" && *u != db && is_sql_identifier(u)).map(str::to_owned);
                    m.databases.entry(db.clone()).or_insert(owner);
                    return format!("{{{{ postgres.url \"{db}\" }}}}");
                }
            }
            ("redis" | "rediss", Some("redis")) => return "{{ redis.url }}".into(),
            ("nats", Some("nats")) => return "{{ nats.url }}".into(),
            ("http" | "https", Some("keycloak")) => {
                return match path.strip_prefix("/realms/") {
                    Some(_) => "{{ keycloak.issuer }}".into(),
                    None => format!("{{{{ keycloak.url }}}}{}", escape(path)),
                };
            }
            ("http" | "https", None) => {
                if let Some(Target::Service(s)) = m.targets.get(host)
                    && let Some(ports) = m.service_ports.get(s).filter(|p| !p.is_empty())
                {
                    // A URL on another of its TCP ports names that port; else the main one.
                    let url_port = host_port.split_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
                    let named =
                        ports.iter().enumerate().skip(1).find(|(_, (_, port, udp))| !udp && Some(*port) == url_port);
                    return match named {
                        Some((_, (port_name, _, _))) => {
                            format!("{{{{ service.{s}.internal_url \"{port_name}\" }}}}{}", escape(path))
                        }
                        None => format!("{{{{ service.{s}.internal_url }}}}{}", escape(path)),
                    };
                }
            }
            _ => {}
        }
    }
    match component(value) {
        Some("postgres") => return "{{ postgres.host }}".into(),
        Some("redis") => return "{{ redis.host }}".into(),
        _ => {}
    }
    if key.contains("PASSWORD")
        && m.postgres_password.as_deref() == Some(value)
        && let Some(db) = m.databases.keys().next()
    {
        return format!("{{{{ postgres.password \"{db}\" }}}}");
    }
    escape(value)
}

/// Text with `{{` written so that the config reads it literally.
fn escape(text: &str) -> String {
    text.replace("{{", "{{ \"{{\" }}")
}

/// Every published port of a service, or the index and reason of the first one the config
/// cannot take.
fn ports(def: &Mapping) -> std::result::Result<Vec<Port>, (usize, String)> {
    let Some(Value::Sequence(list)) = def.get("ports") else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let port = match entry {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()).map(|target| Port {
                target,
                published: None,
                host_ip: None,
                udp: false,
                name: None,
            }),
            Value::String(text) => {
                let (text, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
                let udp = match protocol {
                    "tcp" => false,
                    "udp" => true,
                    other => return Err((i, format!("a {other} port: the config's ports are TCP or UDP"))),
                };
                if text.contains('-') {
                    return Err((i, "a port range: the config names each port on its own".into()));
                }
                let mut parts: Vec<&str> = text.rsplitn(3, ':').collect();
                parts.reverse();
                let (ip, published, target) = match parts.as_slice() {
                    [target] => (None, None, *target),
                    [published, target] => (None, Some(*published), *target),
                    [ip, published, target] => (Some(ip.trim_matches(['[', ']'])), Some(*published), *target),
                    _ => return Err((i, "not a port compose reads".into())),
                };
                let published = match published.filter(|p| !p.is_empty()) {
                    Some(p) => Some(p.parse().map_err(|_| (i, format!("`{p}` is not a port")))?),
                    None => None,
                };
                target.parse().ok().map(|target| Port {
                    target,
                    published,
                    host_ip: ip.map(str::to_owned),
                    udp,
                    name: None,
                })
            }
            Value::Mapping(long) => {
                let udp = match long.get("protocol").and_then(Value::as_str).unwrap_or("tcp") {
                    "tcp" => false,
                    "udp" => true,
                    other => return Err((i, format!("a {other} port: the config's ports are TCP or UDP"))),
                };
                let number = |v: Option<&Value>| {
                    v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).and_then(|n| u16::try_from(n).ok())
                };
                number(long.get("target")).map(|target| Port {
                    target,
                    published: number(long.get("published")),
                    host_ip: long.get("host_ip").and_then(Value::as_str).map(str::to_owned),
                    udp,
                    name: long.get("name").and_then(Value::as_str).map(str::to_owned),
                })
            }
            _ => None,
        };
        out.push(port.ok_or((i, "not a port compose reads".to_owned()))?);
    }
    Ok(out)
}

fn expose(def: &Mapping) -> Option<u16> {
    let Some(Value::Sequence(list)) = def.get("expose") else { return None };
    list.iter().filter_map(scalar_text).find_map(|p| p.split('/').next()?.parse().ok())
}

/// A bind mount of a repository file or folder as a `files` entry, or why it stays a compose
/// matter: the service's own source (mounted for live reload: kind runs the built image), a
/// path that does not exist, or more than a ConfigMap holds.
fn bind_mount(
    m: &Mapper<'_>,
    source: &str,
    target: &str,
    context: Option<&Path>,
) -> std::result::Result<Mapping, &'static str> {
    let path = m.project_dir.join(source);
    let clean = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(context) = context
        && clean(&m.project_dir.join(context)).starts_with(clean(&path))
    {
        return Err("a bind mount of the service's own source, for live reload: kind runs the image built from it");
    }
    if !target.starts_with('/') {
        return Err("a bind mount whose target is not an absolute path");
    }
    let size = if path.is_dir() {
        walk_size(&path)
    } else {
        std::fs::metadata(&path).map_err(|_| "a bind mount of a path that does not exist")?.len()
    };
    // The largest a service's mounted repository files may be in all (a ConfigMap's share).
    if size > 700 * 1024 {
        return Err("a bind mount larger than a ConfigMap holds (700 KiB): build it into the image");
    }
    let mut file = Mapping::new();
    file.insert("path".into(), target.into());
    file.insert("source".into(), relative_to(m.base, &path).to_string_lossy().into_owned().into());
    Ok(file)
}

/// The bytes of every file under a folder.
fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { walk_size(&path) } else { e.metadata().map_or(0, |m| m.len()) }
        })
        .sum()
}

/// Whether a volume is mounted read-only (`:ro`, or `read_only: true` in the long syntax).
fn read_only(volume: &Value) -> bool {
    match volume {
        Value::String(text) => text.split(':').nth(2).is_some_and(|mode| mode.split(',').any(|o| o == "ro")),
        Value::Mapping(long) => long.get("read_only").and_then(Value::as_bool) == Some(true),
        _ => false,
    }
}

/// A volume's source and target, short (`src:dst[:mode]`) or long syntax.
fn volume_parts(volume: &Value) -> (Option<String>, Option<String>) {
    match volume {
        Value::String(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            match parts.as_slice() {
                [target] => (None, Some((*target).to_owned())),
                [source, target, ..] => (Some((*source).to_owned()), Some((*target).to_owned())),
                [] => (None, None),
            }
        }
        Value::Mapping(long) => (
            long.get("source").and_then(Value::as_str).map(str::to_owned),
            long.get("target").and_then(Value::as_str).map(str::to_owned),
        ),
        _ => (None, None),
    }
}

/// A command as compose reads it: a list, or a string split as a shell splits words.
fn command_words(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(list)) => list.iter().filter_map(scalar_text).collect(),
        Some(Value::String(text)) => shell_words(text),
        _ => Vec::new(),
    }
}

fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// A scalar as the text compose reads (numbers and booleans as written).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_sql_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_env_key(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_as_components_by_their_repository() {
        assert_eq!(component_of("postgres:16-alpine"), Some("postgres"));
        assert_eq!(component_of("docker.io/bitnami/redis:7.4"), Some("redis"));
        assert_eq!(component_of("quay.io/keycloak/keycloak:26.3.5"), Some("keycloak"));
        assert_eq!(component_of("nats@sha256:abc"), Some("nats"));
        assert_eq!(component_of("ghcr.io/acme/postgres-exporter:1"), None);
    }

    #[test]
    fn a_command_string_splits_as_a_shell_splits_it() {
        assert_eq!(shell_words(r#"sh -c 'echo "a b"' x\ y"#), ["sh", "-c", "echo \"a b\"", "x y"]);
    }
}
