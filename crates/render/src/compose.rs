//! The compose mode's own file: a `compose.yaml` rendered from the same config as the kind
//! manifests, beside the env files it reads (`compose/<name>.env`).
//!
//! The platform components run with the images kind runs, each with a healthcheck, and
//! `depends_on` waits for health (`service_healthy`) or for an init job to finish
//! (`service_completed_successfully`), as kind's readiness ordering does. The team's services in
//! containers (`compose.runs: container`) get their build context and image, their env file and
//! their port published on the listen address; services on the host are not in it. Secrets reach
//! the containers only through env files, never through this file, so it can be shown.
//!
//! Built as typed values and written by serde_yaml_ng rather than from a template: its shape is
//! checked against the compose-spec JSON schema in the tests, and every string that compose
//! would interpolate (`$`) is escaped in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::{self, Config, Inputs, Runs};
use crate::error::{Error, Result};
use crate::refs::compose_names as names;
use crate::render::{ImageRefs, env_file, start_order};
use crate::secrets::Secrets;

/// The rendered compose project: `compose.yaml` and the env files of the platform components.
pub(crate) struct ComposeFiles {
    /// `compose.yaml`.
    pub file: String,
    /// `compose/<component>.env`: each platform container's environment, secrets included.
    pub component_env: BTreeMap<String, String>,
    /// Other files the containers mount, by their path in the output folder (`compose/nats.conf`).
    pub extra_files: BTreeMap<String, String>,
}

/// The project's name comes from `COMPOSE_PROJECT_NAME` in `compose.env` rather than a top-level
/// `name:`, which docker-compose v1 (still Debian 12's) refuses.
#[derive(Serialize)]
struct File {
    services: IndexMap<String, ComposeService>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    volumes: IndexMap<String, Volume>,
}

#[derive(Serialize, Default)]
struct Volume {}

#[derive(Serialize, Default)]
struct ComposeService {
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<BuildSection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_file: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    depends_on: IndexMap<String, DependsOn>,
}

#[derive(Serialize)]
struct BuildSection {
    context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dockerfile: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

#[derive(Serialize)]
struct Healthcheck {
    test: Vec<String>,
    interval: &'static str,
    timeout: &'static str,
    retries: u32,
    start_period: String,
}

impl Healthcheck {
    fn new(test: Vec<String>) -> Self {
        Self { test, interval: "5s", timeout: "5s", retries: 60, start_period: "10s".into() }
    }

    fn cmd(args: &[&str]) -> Self {
        Self::new(std::iter::once("CMD").chain(args.iter().copied()).map(str::to_owned).collect())
    }

    fn shell(script: &str) -> Self {
        Self::new(vec!["CMD-SHELL".into(), script.into()])
    }
}

#[derive(Serialize)]
struct DependsOn {
    condition: &'static str,
}

/// What a service waits for: `service_healthy` for a component with a healthcheck,
/// `service_completed_successfully` for an init job, `service_started` otherwise.
const HEALTHY: DependsOn = DependsOn { condition: "service_healthy" };
const COMPLETED: DependsOn = DependsOn { condition: "service_completed_successfully" };
const STARTED: DependsOn = DependsOn { condition: "service_started" };

/// The compose service that clears a killed first initialisation of PostgreSQL's volume before
/// the server starts, with the script kind's `init-guard` initContainer runs.
pub const POSTGRES_GUARD: &str = "postgres-guard";

/// The compose service that runs PostgreSQL's roles and databases script once the server is up.
pub const POSTGRES_INIT: &str = "postgres-init";

/// Escapes `$` as `$$`: compose interpolates `$VAR` in every string of the file (compose-spec
/// `spec.md`, "Interpolation"), and a script's own `$` must reach the container.
fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// Renders the compose project of `config`.
pub(crate) fn render(config: &Config, inputs: &Inputs, secrets: &Secrets, images: &ImageRefs) -> Result<ComposeFiles> {
    let need =
        |name: &str| secrets.get(name).map(str::to_owned).ok_or_else(|| Error::MissingSecret { name: name.to_owned() });
    let publish =
        |host_port: u16, container_port: u16| format!("{}:{host_port}:{container_port}", config.listen_address);
    let env_path = |name: &str| format!("compose/{name}.env");
    let mut services: IndexMap<String, ComposeService> = IndexMap::new();
    let mut volumes = IndexMap::new();
    let mut component_env = BTreeMap::new();
    let mut extra_files = BTreeMap::new();
    let mut env_of = |name: &str, entries: Vec<(&str, String)>| {
        let map: BTreeMap<&str, &str> = entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
        component_env.insert(name.to_owned(), env_file(&map));
        vec![env_path(name)]
    };

    if config.postgres.enabled {
        let superuser = need(config::POSTGRES_SUPERUSER_PASSWORD)?;
        volumes.insert("postgres-data".to_owned(), Volume::default());
        // The same guard as kind's initContainer, on the same volume, before the server starts.
        services.insert(
            POSTGRES_GUARD.into(),
            ComposeService {
                image: Some(config.postgres.image.clone()),
                command: vec!["sh".into(), "-c".into(), literal(crate::render::POSTGRES_INIT_GUARD)],
                environment: BTreeMap::from([("PGDATA".to_owned(), "/var/lib/postgresql/data/pgdata".to_owned())]),
                volumes: vec!["postgres-data:/var/lib/postgresql/data".into()],
                ..ComposeService::default()
            },
        );
        services.insert(
            names::POSTGRES.into(),
            ComposeService {
                image: Some(config.postgres.image.clone()),
                env_file: env_of(
                    names::POSTGRES,
                    vec![
                        ("POSTGRES_USER", "postgres".into()),
                        ("POSTGRES_PASSWORD", superuser.clone()),
                        ("PGDATA", "/var/lib/postgresql/data/pgdata".into()),
                    ],
                ),
                ports: vec![publish(config.postgres.compose_port, 5432)],
                volumes: vec!["postgres-data:/var/lib/postgresql/data".into()],
                healthcheck: Some(Healthcheck::cmd(&["pg_isready", "-U", "postgres", "-h", "127.0.0.1"])),
                depends_on: IndexMap::from([(POSTGRES_GUARD.to_owned(), COMPLETED)]),
                ..ComposeService::default()
            },
        );
        let dbs = config.databases();
        let mut owners: Vec<&String> = dbs.values().collect();
        owners.sort();
        owners.dedup();
        let var = |owner: &str| format!("PW_{}", owner.to_ascii_uppercase());
        let mut env =
            vec![("PGHOST", names::POSTGRES.to_owned()), ("PGUSER", "postgres".to_owned()), ("PGPASSWORD", superuser)];
        let vars: Vec<(String, String)> = owners
            .iter()
            .map(|owner| Ok((var(owner), need(&Config::postgres_password_secret(owner))?)))
            .collect::<Result<_>>()?;
        env.extend(vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
        // The same idempotent script as kind's postgres-init Job; the passwords reach psql
        // through its environment (`\getenv`), never as arguments.
        let mut sql = String::new();
        for owner in &owners {
            sql.push_str(&format!("\\getenv {0} {0}\n", var(owner)));
        }
        for owner in &owners {
            sql.push_str(&format!(
                "SELECT 'CREATE ROLE \"{owner}\" LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}')\\gexec\nALTER ROLE \"{owner}\" WITH LOGIN PASSWORD :'{}';\n",
                var(owner)
            ));
        }
        for (db, owner) in &dbs {
            sql.push_str(&format!(
                "SELECT 'CREATE DATABASE \"{db}\" OWNER \"{owner}\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}')\\gexec\n"
            ));
        }
        services.insert(
            POSTGRES_INIT.into(),
            ComposeService {
                image: Some(config.postgres.image.clone()),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    literal(&format!("set -eu\npsql -v ON_ERROR_STOP=1 <<'SQL'\n{sql}SQL\n")),
                ],
                env_file: env_of(POSTGRES_INIT, env),
                depends_on: IndexMap::from([(names::POSTGRES.to_owned(), HEALTHY)]),
                ..ComposeService::default()
            },
        );
    }
    if config.redis.enabled {
        // The password goes from the env file into a config file inside the container by the
        // shell's builtin printf, so it is in no process's arguments; then the image's
        // entrypoint drops to the redis user as it does for `redis-server`.
        let script = "umask 077 && printf 'requirepass %s\\nsave \"\"\\nappendonly no\\n' \"$REDISCLI_AUTH\" > /tmp/redis.conf && chown redis /tmp/redis.conf && exec docker-entrypoint.sh redis-server /tmp/redis.conf";
        services.insert(
            names::REDIS.into(),
            ComposeService {
                image: Some(config.redis.image.clone()),
                command: vec!["sh".into(), "-c".into(), literal(script)],
                // redis-cli reads the password from REDISCLI_AUTH, so the healthcheck needs no argument.
                env_file: env_of(names::REDIS, vec![("REDISCLI_AUTH", need(config::REDIS_PASSWORD)?)]),
                ports: vec![publish(config.redis.compose_port, 6379)],
                healthcheck: Some(Healthcheck::shell("redis-cli ping | grep -q PONG")),
                ..ComposeService::default()
            },
        );
    }
    if config.nats.enabled {
        // nats-server takes no secret from its arguments' variables, but its config file reads
        // `$NATS_PASSWORD` from the environment: the file holds no secret, the env file does.
        // The image runs the server as root, which reads the 0600 file of the rendered folder.
        let mut conf = String::from("# rendered by kind-parity\nport: 4222\n");
        if config.nats.jetstream {
            conf.push_str("jetstream {\n  store_dir: /data\n}\n");
        }
        let mut env = vec![];
        if config.nats.auth {
            conf.push_str(&format!(
                "authorization {{\n  user: {}\n  password: $NATS_PASSWORD\n}}\n",
                config::NATS_USER
            ));
            env.push(("NATS_PASSWORD", need(config::NATS_PASSWORD)?));
        }
        extra_files.insert("compose/nats.conf".to_owned(), conf);
        services.insert(
            names::NATS.into(),
            ComposeService {
                image: Some(config.nats.image.clone()),
                command: vec!["--config".into(), "/etc/nats/nats.conf".into()],
                env_file: if env.is_empty() { vec![] } else { env_of(names::NATS, env) },
                ports: vec![publish(config.nats.compose_port, 4222)],
                volumes: vec!["./compose/nats.conf:/etc/nats/nats.conf:ro".into()],
                // The nats image is a scratch image with no shell or client for a healthcheck.
                ..ComposeService::default()
            },
        );
    }
    if config.keycloak.enabled {
        let owner = config.databases()["keycloak"].clone();
        let mut mounts = vec![];
        let mut command = vec!["start-dev".to_owned()];
        if let (Some(realm_file), Inputs::Dir(base)) = (&config.keycloak.realm_file, inputs) {
            mounts.push(format!("{}:/opt/keycloak/data/import/realm.json:ro", absolute(&base.join(realm_file))));
            command.push("--import-realm".into());
        }
        services.insert(
            names::KEYCLOAK.into(),
            ComposeService {
                image: Some(config.keycloak.image.clone()),
                command,
                env_file: env_of(
                    names::KEYCLOAK,
                    vec![
                        // The issuer is the browser-facing URL, as in kind.
                        ("KC_HOSTNAME", format!("http://localhost:{}", config.keycloak.compose_port)),
                        ("KC_HTTP_ENABLED", "true".into()),
                        ("KC_HEALTH_ENABLED", "true".into()),
                        ("KC_DB", "postgres".into()),
                        ("KC_DB_URL_HOST", names::POSTGRES.into()),
                        ("KC_DB_URL_DATABASE", "keycloak".into()),
                        ("KC_DB_USERNAME", owner.clone()),
                        ("KC_DB_PASSWORD", need(&Config::postgres_password_secret(&owner))?),
                        ("KC_BOOTSTRAP_ADMIN_USERNAME", "admin".into()),
                        ("KC_BOOTSTRAP_ADMIN_PASSWORD", need(config::KEYCLOAK_ADMIN_PASSWORD)?),
                    ],
                ),
                ports: vec![publish(config.keycloak.compose_port, 8080)],
                volumes: mounts,
                // The image has bash but no HTTP client: the management port's readiness
                // through bash's /dev/tcp.
                healthcheck: Some(Healthcheck::shell(&literal(
                    "exec 3<>/dev/tcp/127.0.0.1/9000 && printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '\"UP\"' <&3",
                ))),
                depends_on: IndexMap::from([(POSTGRES_INIT.to_owned(), COMPLETED)]),
                ..ComposeService::default()
            },
        );
    }
    if config.temporal.enabled {
        let owner = config.databases()["temporal"].clone();
        services.insert(
            names::TEMPORAL.into(),
            ComposeService {
                image: Some(config.temporal.image.clone()),
                env_file: env_of(
                    names::TEMPORAL,
                    vec![
                        ("DB", "postgres12".into()),
                        ("DB_PORT", "5432".into()),
                        ("POSTGRES_SEEDS", names::POSTGRES.into()),
                        ("POSTGRES_USER", owner.clone()),
                        ("POSTGRES_PWD", need(&Config::postgres_password_secret(&owner))?),
                        ("DBNAME", "temporal".into()),
                        ("VISIBILITY_DBNAME", "temporal_visibility".into()),
                        ("SKIP_DB_CREATE", "true".into()),
                        ("DEFAULT_NAMESPACE", config.temporal.namespaces.first().cloned().unwrap_or_default()),
                        ("TEMPORAL_ADDRESS", "127.0.0.1:7233".into()),
                    ],
                ),
                ports: vec![publish(config.temporal.compose_port, 7233)],
                healthcheck: Some(Healthcheck::shell("temporal operator cluster health | grep -q SERVING")),
                depends_on: IndexMap::from([(POSTGRES_INIT.to_owned(), COMPLETED)]),
                ..ComposeService::default()
            },
        );
    }
    if config.vault.enabled {
        services.insert(
            names::VAULT.into(),
            ComposeService {
                image: Some(config.vault.image.clone()),
                command: vec!["server".into(), "-dev".into(), "-dev-listen-address=0.0.0.0:8200".into()],
                env_file: env_of(
                    names::VAULT,
                    vec![
                        ("VAULT_DEV_ROOT_TOKEN_ID", need(config::VAULT_ROOT_TOKEN)?),
                        ("VAULT_ADDR", "http://127.0.0.1:8200".into()),
                        ("SKIP_SETCAP", "true".into()),
                    ],
                ),
                ports: vec![publish(config.vault.compose_port, 8200)],
                healthcheck: Some(Healthcheck::cmd(&["vault", "status"])),
                ..ComposeService::default()
            },
        );
    }

    for name in start_order(config) {
        let service = &config.services[name.as_str()];
        if service.compose.runs == Runs::Host {
            continue;
        }
        let build = match (&service.build, inputs) {
            (Some(build), Inputs::Dir(base)) => Some(BuildSection {
                context: absolute(&base.join(&build.context)),
                dockerfile: build.dockerfile.as_ref().map(|d| d.display().to_string()),
                args: build.args.iter().map(|(k, v)| (k.clone(), literal(v))).collect(),
                target: build.target.clone(),
            }),
            // The embedded demo has no folder on disk: compose runs the image `build` made.
            _ => None,
        };
        let depends_on = service
            .depends_on
            .iter()
            .filter_map(|dep| {
                let condition = match config.services.get(dep) {
                    // A service on the host is not in this file; compose cannot wait for it.
                    Some(other) if other.compose.runs == Runs::Host => return None,
                    // Only a readiness command becomes a compose healthcheck (below).
                    Some(other) if !other.readiness_command.is_empty() => HEALTHY,
                    Some(_) => STARTED,
                    None if dep == names::POSTGRES => {
                        // Its roles and databases exist once the init job completed.
                        return Some((POSTGRES_INIT.to_owned(), COMPLETED));
                    }
                    None if dep == names::NATS => STARTED,
                    None => HEALTHY,
                };
                Some((dep.clone(), condition))
            })
            .collect();
        // A container that calls a service on the host needs the host's gateway by name.
        let calls_host = service.env.values().chain(service.compose.env.values()).any(|raw| {
            crate::refs::parse(raw).unwrap_or_default().iter().any(|piece| match piece {
                crate::refs::Piece::Ref(r) => r
                    .name
                    .strip_prefix("service.")
                    .and_then(|rest| rest.strip_suffix(".internal_url").or_else(|| rest.strip_suffix(".address")))
                    .and_then(|other| config.services.get(other))
                    .is_some_and(|other| other.compose.runs == Runs::Host),
                crate::refs::Piece::Text(_) => false,
            })
        });
        // The readiness command kind runs, as the same exec; a health path has none: whether
        // the image has an HTTP client to call it with is unknown.
        let healthcheck = (!service.readiness_command.is_empty()).then(|| {
            let mut check = Healthcheck::new(
                std::iter::once("CMD".to_owned()).chain(service.readiness_command.iter().map(|a| literal(a))).collect(),
            );
            // The time kind's startup probe allows: compose does not count failures in it.
            // (A liveness check has no compose counterpart: compose restarts no unhealthy container.)
            if let Some(startup) = &service.startup {
                check.start_period =
                    format!("{}s", u64::from(startup.period_seconds) * u64::from(startup.failure_threshold));
            }
            check
        });
        // `files`: a repository file or folder bound read-only from the repository (absolute:
        // compose resolves paths from the rendered folder); a secret from a rendered 0600 file
        // beside compose.yaml. The embedded demo has no folder to bind from.
        let mut binds = Vec::new();
        for (i, file) in service.files.iter().enumerate() {
            match (&file.source, &file.secret, inputs) {
                (Some(source), _, Inputs::Dir(base)) => {
                    binds.push(format!("{}:{}:ro", absolute(&base.join(source)), literal(&file.path)));
                }
                (_, Some(secret), _) => {
                    let rendered = format!("compose/files/{name}/{i}-{secret}");
                    extra_files.insert(rendered.clone(), need(secret)?);
                    binds.push(format!("./{rendered}:{}:ro", literal(&file.path)));
                }
                _ => {}
            }
        }
        services.insert(
            name.clone(),
            ComposeService {
                image: Some(images.0.get(&name).cloned().unwrap_or_else(|| format!("{name}:unbuilt"))),
                volumes: binds,
                build,
                // Kubernetes' command is compose's entrypoint, its args compose's command.
                entrypoint: service.command.iter().map(|a| literal(a)).collect(),
                command: service.args.iter().map(|a| literal(a)).collect(),
                env_file: vec![env_path(&name)],
                // Every named port, on its own host port; compose's default protocol is tcp.
                ports: service
                    .named_ports()
                    .iter()
                    .map(|p| match p.protocol {
                        config::Protocol::Tcp => publish(p.compose_port, p.port),
                        config::Protocol::Udp => format!("{}/udp", publish(p.compose_port, p.port)),
                    })
                    .collect(),
                extra_hosts: if calls_host { vec![format!("{}:host-gateway", names::HOST)] } else { vec![] },
                healthcheck,
                depends_on,
                ..ComposeService::default()
            },
        );
    }

    let file = File { services, volumes };
    let yaml = serde_yaml_ng::to_string(&file).expect("the compose file serializes");
    Ok(ComposeFiles {
        file: format!("# generated by kind-parity; do not edit (change kind-parity.yaml instead)\n{yaml}"),
        component_env,
        extra_files,
    })
}

/// The path as compose needs it: compose resolves a relative path against the compose file's
/// folder (the rendered output), not the config's, so repository paths are written absolute.
/// Only the working directory is read, for a config loaded by a relative path.
pub(crate) fn absolute(path: &Path) -> String {
    let path: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    path.display().to_string()
}
