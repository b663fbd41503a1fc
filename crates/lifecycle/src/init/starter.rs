//! The Dockerfile starter: a commented `kind-parity.yaml` with a service per build context found
//! in the repository's top folders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Error, InitOptions, Result, Starter, environment_name, scalar, schema_line, service_name};

/// Folders never searched for Dockerfiles: dependencies, build output and tools' state, whose
/// Dockerfiles are not the repository's services.
const SKIPPED: &[&str] = &["node_modules", "target", "vendor", "dist", "build", "third_party", "testdata"];

/// How deep below the repository Dockerfiles are looked for: the root, its folders (`api/`) and
/// theirs (`services/api/`), where repositories keep their services.
const DEPTH: usize = 2;

/// The names a build context's Dockerfile goes by, as Docker and Podman look for them.
const DOCKERFILES: &[&str] = &["Dockerfile", "Containerfile"];

/// One proposed service: its build context relative to the config file.
#[derive(Debug)]
struct Proposed {
    name: String,
    context: PathBuf,
    dockerfile: Option<&'static str>,
    port: u16,
    compose_port: Option<u16>,
}

/// The starter text for the repository at `dir`, written as a file in `base`.
pub fn starter(dir: &Path, base: &Path, options: &InitOptions) -> Result<Starter> {
    let mut contexts = Vec::new();
    find_contexts(dir, 0, &mut contexts)?;
    let mut names = BTreeSet::new();
    // Host ports compose publishes: the components' defaults are taken (Keycloak's too, so
    // enabling it as the starter suggests collides with nothing).
    let mut host_ports: BTreeSet<u16> = [5432, 6379, 8081, 4222].into();
    let mut proposed = Vec::new();
    for (folder, dockerfile) in contexts {
        let relative = folder.strip_prefix(dir).unwrap_or(&folder);
        let base_name = match relative.file_name() {
            Some(name) => service_name(&name.to_string_lossy()),
            None => service_name(&environment_name(options)),
        };
        let mut name = base_name.clone();
        for n in 2.. {
            if names.insert(name.clone()) {
                break;
            }
            name = format!("{base_name}-{n}");
        }
        let port = exposed_port(&folder.join(dockerfile)).unwrap_or(8080);
        // Two services listening on one container port each need their own host port in compose.
        let compose_port = if host_ports.insert(port) {
            None
        } else {
            let free = (8080..=u16::MAX).find(|p| !host_ports.contains(p)).unwrap_or(port);
            host_ports.insert(free);
            Some(free)
        };
        proposed.push(Proposed {
            name,
            context: relative_to(base, &folder),
            dockerfile: (dockerfile != "Dockerfile").then_some(dockerfile),
            port,
            compose_port,
        });
    }
    let text = text(&environment_name(options), &proposed, options);
    Ok(Starter {
        text,
        services: proposed.iter().map(|p| p.name.clone()).collect(),
        components: vec!["postgres".into(), "redis".into()],
        unmapped: Vec::new(),
    })
}

/// Folders under `dir` (itself included) holding a Dockerfile, in path order.
fn find_contexts(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, &'static str)>) -> Result<()> {
    if let Some(name) = DOCKERFILES.iter().find(|name| dir.join(name).is_file()) {
        out.push((dir.to_path_buf(), name));
    }
    if depth == DEPTH {
        return Ok(());
    }
    let read = |source| Error::Read { path: dir.to_path_buf(), source };
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || SKIPPED.contains(&name.as_str()) {
            continue;
        }
        if entry.file_type().map_err(read)?.is_dir() {
            folders.push(entry.path());
        }
    }
    folders.sort();
    for folder in folders {
        find_contexts(&folder, depth + 1, out)?;
    }
    Ok(())
}

/// The first port a Dockerfile's `EXPOSE` names, which is what its process listens on.
fn exposed_port(dockerfile: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(dockerfile).ok()?;
    text.lines()
        .map(str::trim)
        .filter_map(|line| {
            let (instruction, rest) = line.split_once(char::is_whitespace)?;
            instruction.eq_ignore_ascii_case("EXPOSE").then_some(rest)
        })
        .flat_map(str::split_whitespace)
        .find_map(|port| port.split('/').next()?.parse().ok().filter(|p| *p != 0))
}

/// `path` relative to `base`, as the config's paths are written (`.` for `base` itself).
pub(crate) fn relative_to(base: &Path, path: &Path) -> PathBuf {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (base, path) = (absolute(base), absolute(path));
    let common = base.components().zip(path.components()).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in base.components().skip(common) {
        relative.push("..");
    }
    for part in path.components().skip(common) {
        relative.push(part);
    }
    if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative }
}

fn text(name: &str, services: &[Proposed], options: &InitOptions) -> String {
    let mut out = schema_line(options);
    out.push_str(&format!(
        "\
# kind-parity.yaml: this repository's local environment, one config for compose and kind.
# Written by `kind-parity init`; every key is described in docs/config.md. Check it with
# `kind-parity config`, write the files with `kind-parity render`, start it with `kind-parity up`.
name: {name}
# Browser-facing hosts are <host>.<domain>; localtest.me resolves to 127.0.0.1.
domain: localtest.me

# The platform components. Each service reaches them through references in its env,
# resolved per mode ({{{{ postgres.url \"app\" }}}} is postgres:5432 in compose, the Service in kind).
postgres:
  enabled: true
  databases:
    # One database per service that keeps data, each with its own role.
    app:
      owner: app
redis:
  enabled: true
keycloak:
  # An identity provider with your realm export: set `realm_file: path/to/realm.json` and enable it.
  enabled: false
# nats:
#   enabled: true     # NATS with JetStream: {{{{ nats.url }}}}

"
    ));
    if services.is_empty() {
        out.push_str(
            "\
# No Dockerfile was found in the repository's top folders: declare each service, e.g.
# services:
#   api:
#     build:
#       context: api          # the folder with its Dockerfile, relative to this file
#     port: 8080              # the port it listens on; leave it out for a worker
#     health_path: /healthz   # answers 200 when it is ready
#     ingress:
#       host: api             # https://api.localtest.me
#     depends_on: [postgres]
#     env:
#       DATABASE_URL: '{{ postgres.url \"app\" }}'
services: {}
",
        );
        return out;
    }
    out.push_str("# A service per Dockerfile found; each is built from its folder, tagged by content.\nservices:\n");
    for (i, service) in services.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "  {}:\n    build:\n      context: {}\n",
            service.name,
            scalar(&service.context.to_string_lossy())
        ));
        if let Some(dockerfile) = service.dockerfile {
            out.push_str(&format!("      dockerfile: {dockerfile}\n"));
        }
        out.push_str(&format!(
            "    # The port it listens on (its Dockerfile's EXPOSE, else 8080); leave it out for a worker.\n    port: {}\n",
            service.port
        ));
        if let Some(port) = service.compose_port {
            out.push_str(&format!(
                "    compose:\n      # Another service listens on {} too; compose publishes this one here.\n      port: {port}\n",
                service.port
            ));
        }
        out.push_str(&format!(
            "    # health_path: /healthz   # an HTTP path that answers 200 when it is ready
    # ingress:
    #   host: {name}            # its browser-facing route: https://{name}.localtest.me
    # depends_on: [postgres, redis]
    # env:
    #   DATABASE_URL: '{{{{ postgres.url \"app\" }}}}'
    #   REDIS_URL: '{{{{ redis.url }}}}'
",
            name = service.name
        ));
    }
    out
}
