//! Rendering one config into a [`Plan`]: the kind cluster config, the manifests in apply
//! order, a kustomization, and the compose env files. Pure and deterministic: the same config,
//! inputs, secrets and image references give byte-identical output.

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use handlebars::{Handlebars, handlebars_helper};
use include_dir::{Dir, include_dir};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{self, Config, IngressController, Inputs};
use crate::error::{Error, Result};
use crate::refs::{self, Mode, Piece};
use crate::secrets::Secrets;

static EMBEDDED_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../templates");

/// When a manifest is applied: foundation (namespaces, CRDs) first, then platform, then apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Namespaces, CRDs, the TLS secret and CA: what everything else needs to exist.
    Foundation,
    /// The ingress controller and platform components.
    Platform,
    /// The team's services, in `depends_on` order.
    Apps,
}

impl Phase {
    /// Its place in apply order, lower first (`kind_parity_cluster::apply::Manifest::order`).
    pub fn order(self) -> u8 {
        match self {
            Self::Foundation => 0,
            Self::Platform => 1,
            Self::Apps => 2,
        }
    }
}

/// One rendered manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// File name under `manifests/`, `NN-<component>.yaml`, sorted in apply order.
    pub file: String,
    /// The component (`postgres`, `app-api`).
    pub component: String,
    /// When it is applied.
    pub phase: Phase,
    /// Components and services it waits for (from `depends_on` and built-in needs).
    pub depends_on: Vec<String>,
    /// The YAML documents.
    pub content: String,
}

/// Everything one render produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `kind-config.yaml` (kind.x-k8s.io/v1alpha4).
    pub kind_config: String,
    /// The manifests, in apply order.
    pub manifests: Vec<Manifest>,
    /// `manifests/kustomization.yaml`, listing the manifests in order.
    pub kustomization: String,
    /// `compose.env`: images and published ports, for `docker compose --env-file`.
    pub compose_env: String,
    /// `compose/<service>.env`: each service's environment resolved for compose (`env_file:`).
    pub compose_service_env: BTreeMap<String, String>,
    /// `compose.yaml`: the platform components and the services in containers, reading the env
    /// files beside it (`docker compose -f compose.yaml --env-file compose.env up`).
    pub compose_file: String,
    /// The platform containers' files beside it, by path in the output folder:
    /// `compose/<component>.env` (their environment, secrets included) and their config files.
    pub compose_component_files: BTreeMap<String, String>,
}

impl Plan {
    /// Every output file, relative to the output folder, in a stable order.
    pub fn files(&self) -> Vec<(String, &str)> {
        let mut files = vec![("kind-config.yaml".to_owned(), self.kind_config.as_str())];
        for m in &self.manifests {
            files.push((format!("manifests/{}", m.file), m.content.as_str()));
        }
        files.push(("manifests/kustomization.yaml".to_owned(), self.kustomization.as_str()));
        files.push(("compose.env".to_owned(), self.compose_env.as_str()));
        for (svc, env) in &self.compose_service_env {
            files.push((format!("compose/{svc}.env"), env.as_str()));
        }
        files.push(("compose.yaml".to_owned(), self.compose_file.as_str()));
        for (path, content) in &self.compose_component_files {
            files.push((path.clone(), content.as_str()));
        }
        files
    }

    /// Every container image the manifests name (containers and init containers of every pod
    /// template, Jobs' included), each once, in a stable order.
    pub fn images(&self) -> Vec<String> {
        fn walk(value: &serde_yaml_ng::Value, out: &mut std::collections::BTreeSet<String>) {
            match value {
                serde_yaml_ng::Value::Mapping(map) => {
                    for (key, value) in map {
                        let pods = matches!(key.as_str(), Some("containers" | "initContainers"));
                        if let (true, serde_yaml_ng::Value::Sequence(containers)) = (pods, value) {
                            out.extend(containers.iter().filter_map(|c| c.get("image")?.as_str().map(str::to_owned)));
                        }
                        walk(value, out);
                    }
                }
                serde_yaml_ng::Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut images = std::collections::BTreeSet::new();
        for manifest in &self.manifests {
            for doc in serde_yaml_ng::Deserializer::from_str(&manifest.content) {
                if let Ok(value) = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc) {
                    walk(&value, &mut images);
                }
            }
        }
        images.into_iter().collect()
    }
}

/// The image each service runs, decided by the caller: a built image's name comes from its
/// build (the images layer tags it by its context's content), so render cannot know it alone.
/// `kind_parity_lifecycle::images::image_refs` is the one place that names them all, for a
/// render and for `up` alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRefs(pub BTreeMap<String, String>);

impl ImageRefs {
    /// References for a render before any build: prebuilt images as configured; each built one
    /// as `<service>:unbuilt` until the caller gives its build's tag ([`ImageRefs::with_build`]).
    /// No name is made up for a build: one that looked like a content tag would name an image
    /// that `up` never applies.
    pub fn from_config(config: &Config) -> Self {
        let refs = config
            .services
            .iter()
            .map(|(name, service)| {
                let image = match &service.image {
                    Some(image) => image.clone(),
                    None => format!("{name}:unbuilt"),
                };
                (name.clone(), image)
            })
            .collect();
        Self(refs)
    }

    /// Names `service`'s image by the reference its build gives (its content tag, or that tag
    /// in the local registry).
    pub fn with_build(mut self, service: impl Into<String>, reference: impl Into<String>) -> Self {
        self.0.insert(service.into(), reference.into());
        self
    }
}

/// The handlebars templates: the embedded set, optionally overridden file by file.
#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// The templates compiled into the binary (the repository's `templates/`).
    pub fn embedded() -> Result<Self> {
        let mut registry = new_registry();
        register_dir(&mut registry, &EMBEDDED_TEMPLATES)?;
        Ok(Self { registry })
    }

    /// The embedded templates, with every `*.hbs` file under `dir` replacing the embedded one of
    /// the same relative name (`postgres/postgres.yaml.hbs`), for teams with their own.
    ///
    /// A file that replaces no embedded template (a misspelt folder or name) is an error, and so
    /// is a folder without any: an override that is silently ignored would look applied.
    pub fn with_overrides(dir: &FsPath) -> Result<Self> {
        let mut this = Self::embedded()?;
        let mut known: Vec<String> = this.registry.get_templates().keys().cloned().collect();
        known.sort();
        let mut overridden = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(folder) = stack.pop() {
            let entries =
                std::fs::read_dir(&folder).map_err(|source| Error::ReadInput { path: folder.clone(), source })?;
            for entry in entries {
                let path = entry.map_err(|source| Error::ReadInput { path: folder.clone(), source })?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "hbs") {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|source| Error::ReadInput { path: path.clone(), source })?;
                    let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                    if !known.contains(&name) {
                        let closest = crate::error::did_you_mean(&name, known.iter().map(String::as_str));
                        return Err(Error::UnknownTemplate {
                            path,
                            name,
                            closest: closest.map(str::to_owned),
                            known: known.clone(),
                        });
                    }
                    this.register(&name, &text)?;
                    overridden += 1;
                }
            }
        }
        if overridden == 0 {
            return Err(Error::NoTemplates { dir: dir.to_path_buf() });
        }
        Ok(this)
    }

    fn register(&mut self, name: &str, text: &str) -> Result<()> {
        self.registry
            .register_template_string(name, text)
            .map_err(|source| Error::Template { name: name.to_owned(), source: Box::new(source) })
    }

    fn render(&self, name: &str, component: &str, ctx: &Value) -> Result<String> {
        let text = self.registry.render(name, ctx).map_err(|source| Error::RenderTemplate {
            name: name.to_owned(),
            component: component.to_owned(),
            source: Box::new(source),
        })?;
        // A template bug shows up here, naming the template, instead of at the API server.
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc).map_err(|source| Error::RenderedYaml {
                name: name.to_owned(),
                component: component.to_owned(),
                source,
            })?;
        }
        Ok(tidy(&text))
    }
}

/// What a template writes where a Job's name takes the hash of its pod template (`{{job_hash}}`).
const JOB_HASH_PENDING: &str = "job-hash-pending";
/// What a template writes where the hash of its own ConfigMaps and Secrets goes (`{{config_hash}}`).
const CONFIG_HASH_PENDING: &str = "config-hash-pending";

impl Templates {
    /// Renders a template that names hashes of its own output, which only a first render gives:
    /// - `{{job_hash}}`: a Job named `<base>-{{job_hash}}` gets a hash of its whole rendered pod
    ///   template. A Job's `spec.template` is immutable (kubernetes `pkg/apis/batch/validation`,
    ///   `ValidateJobSpecUpdate`), so any change to it (an image, the script, an env entry) must
    ///   be a new Job, which the apply's prune replaces the old one with.
    /// - `{{config_hash}}`: a hash of the `data` of every ConfigMap and Secret the template
    ///   renders, for a pod template annotation: a process that reads its config or environment
    ///   only at start restarts when they change.
    ///
    /// Neither a Job's name nor an annotation's value is part of what it hashes.
    fn render_hashed(&self, name: &str, component: &str, mut ctx: Value) -> Result<String> {
        ctx["job_hash"] = json!(JOB_HASH_PENDING);
        ctx["config_hash"] = json!(CONFIG_HASH_PENDING);
        let first = self.render(name, component, &ctx)?;
        let docs = serde_yaml_ng::Deserializer::from_str(&first)
            .map(serde::Deserialize::deserialize)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|source| Error::RenderedYaml { name: name.to_owned(), component: component.to_owned(), source })?;
        // serde_json's maps are sorted by key: the same content always hashes the same.
        let canonical = |v: &Value| serde_json::to_string(v).expect("json values serialize");
        let config: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap" || d["kind"] == "Secret")
            .map(|d| canonical(&json!([d["metadata"]["name"], d["data"]])))
            .collect();
        let mut text =
            first.replace(CONFIG_HASH_PENDING, &short_hash(&config.iter().map(String::as_str).collect::<Vec<_>>()));
        let pending = format!("-{JOB_HASH_PENDING}");
        for doc in docs.iter().filter(|d| d["kind"] == "Job") {
            let Some(job) = doc["metadata"]["name"].as_str().filter(|n| n.ends_with(&pending)) else { continue };
            let named =
                format!("{}-{}", job.trim_end_matches(&pending), short_hash(&[&canonical(&doc["spec"]["template"])]));
            text = text.replace(job, &named);
        }
        Ok(text)
    }
}

/// The script that runs before PostgreSQL in both modes (kind's `init-guard` initContainer,
/// compose's `postgres-guard` service), with `PGDATA` set and the data volume mounted. The
/// image's entrypoint takes a data directory with `PG_VERSION` as initialised for ever, so a
/// first initialisation killed part-way (initdb, or the temporary server that runs the init
/// scripts) would leave a server without its users and passwords (docker-library/postgres#1207).
/// The script marks a first initialisation next to the data directory and, at the next start,
/// removes what a killed one left: no `postmaster.opts`, or the temporary server's (started
/// with `-c listen_addresses=''`, docker-entrypoint.sh `docker_temp_server_start`). A data
/// directory it did not see initialised carries no marker and is never touched.
pub(crate) const POSTGRES_INIT_GUARD: &str = r#"set -eu
marker="$(dirname "$PGDATA")/.kind-parity-initialising"
if [ -e "$marker" ]; then
  if [ ! -e "$PGDATA/postmaster.opts" ] || grep -qF '"listen_addresses="' "$PGDATA/postmaster.opts"; then
    echo "the first initialisation of $PGDATA was interrupted: removing what it left, to initialise again"
    rm -rf "$PGDATA"
  fi
  rm -f "$marker"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then touch "$marker"; fi
"#;

handlebars_helper!(json_helper: |v: Json| serde_json::to_string(v).expect("json values serialize"));
handlebars_helper!(join_helper: |v: array| v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","));
handlebars_helper!(b64_helper: |s: str| B64.encode(s));
handlebars_helper!(indent_helper: |n: u64, s: str| {
    let pad = " ".repeat(n as usize);
    s.lines().map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect::<Vec<_>>().join("\n")
});

fn new_registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("json", Box::new(json_helper));
    hb.register_helper("b64", Box::new(b64_helper));
    hb.register_helper("join", Box::new(join_helper));
    hb.register_helper("indent", Box::new(indent_helper));
    hb
}

fn register_dir(hb: &mut Handlebars<'static>, dir: &Dir<'static>) -> Result<()> {
    for entry in dir.entries() {
        match entry {
            include_dir::DirEntry::Dir(d) => register_dir(hb, d)?,
            include_dir::DirEntry::File(f) if f.path().extension().is_some_and(|e| e == "hbs") => {
                let name = f.path().to_string_lossy().replace('\\', "/");
                let text = f.contents_utf8().unwrap_or_default();
                hb.register_template_string(&name, text)
                    .map_err(|source| Error::Template { name: name.clone(), source: Box::new(source) })?;
            }
            include_dir::DirEntry::File(_) => {}
        }
    }
    Ok(())
}

/// Drops blank lines left by template conditionals and ends the file with one newline.
fn tidy(text: &str) -> String {
    let mut out: String = text.lines().filter(|l| !l.trim().is_empty()).flat_map(|l| [l, "\n"]).collect();
    if out.is_empty() {
        out.push('\n');
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())[..12].to_owned()
}

/// The ports of the ingress Service: 80 and 443, and the host ports when they differ. Pods
/// resolve every browser-facing host to this Service (hostAliases) and call the same URL a
/// browser does, port included (`https://auth.<domain>:8443`), so the Service must answer on the
/// host ports too; each maps to the controller's container port of its scheme.
fn ingress_service_ports(config: &Config) -> Vec<Value> {
    // The host ports first: when one collides with 80 or 443, the URLs pods call win.
    let mut ports: Vec<(u16, bool, Option<&str>)> = Vec::new();
    let wanted = [
        (config.ports.https, true, Some("host-https")),
        (config.ports.http, false, Some("host-http")),
        (443, true, None),
        (80, false, None),
    ];
    for (port, https, name) in wanted {
        if !ports.iter().any(|(p, _, _)| *p == port) {
            // A host port equal to its scheme's standard port is the standard entry.
            let name = if (port, https) == (443, true) || (port, https) == (80, false) { None } else { name };
            ports.push((port, https, name));
        }
    }
    ports.sort_by_key(|(port, _, _)| *port);
    ports.into_iter().map(|(port, https, name)| json!({ "port": port, "https": https, "host_name": name })).collect()
}

/// Mozilla's root certificates (webpki-root-certs) as PEM, one after another. With the local CA
/// in front they are `/etc/kind-parity/ca-bundle.crt`: `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE`
/// replace a runtime's default roots, so the bundle must still trust public hosts.
pub fn public_roots_pem() -> &'static str {
    static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let mut pem = String::new();
        for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = B64.encode(cert.as_ref());
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    })
}

/// Where the local CA reaches every service's TLS stack, by the variable each runtime reads,
/// each only when the service's own environment does not set it. Node adds
/// `NODE_EXTRA_CA_CERTS` to its roots; OpenSSL (Python's `ssl`, Ruby, curl, PHP) and Go read
/// `SSL_CERT_FILE` instead of theirs, as Python's requests does `REQUESTS_CA_BUNDLE`, so those
/// get the bundle with the public roots.
const CA_ENV: &[(&str, &str)] = &[
    ("SSL_CERT_FILE", "/etc/kind-parity/ca-bundle.crt"),
    ("REQUESTS_CA_BUNDLE", "/etc/kind-parity/ca-bundle.crt"),
    ("NODE_EXTRA_CA_CERTS", "/etc/kind-parity/ca.crt"),
];

/// A service's environment resolved in one mode, split into plain and secret entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedEnv {
    /// Values without secrets (a ConfigMap in kind).
    pub plain: BTreeMap<String, String>,
    /// Values that carry a secret (a Secret in kind).
    pub secret: BTreeMap<String, String>,
}

impl ResolvedEnv {
    /// Every entry, secret or not.
    pub fn all(&self) -> BTreeMap<&str, &str> {
        self.plain.iter().chain(&self.secret).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

/// Resolves a service's environment in a mode: `env` with the mode's overrides on top, each
/// reference resolved for the service as its consumer (in compose, where it runs:
/// `services.<name>.compose.runs`).
pub fn resolve_env(config: &Config, service: &str, mode: Mode, secrets: &Secrets) -> Result<ResolvedEnv> {
    let svc = &config.services[service];
    let consumer = refs::Consumer::of(config, service, mode);
    let overrides = match mode {
        Mode::Compose => &svc.compose.env,
        Mode::Kind => &svc.kind.env,
    };
    let names = config.secret_names();
    let lookup = |name: &str| secrets.get(name).map(str::to_owned);
    let mut out = ResolvedEnv::default();
    for (key, raw) in svc.env.iter().filter(|(k, _)| !overrides.contains_key(*k)).chain(overrides) {
        let pieces = refs::parse(raw).map_err(|m| invalid(format!("services.{service}.env.{key}"), m))?;
        let mut value = String::new();
        let mut sensitive = false;
        for piece in pieces {
            match piece {
                Piece::Text(t) => value.push_str(&t),
                Piece::Ref(r) => {
                    let contract = refs::classify(&r, config, &names)
                        .map_err(|e| invalid(format!("services.{service}.env.{key}"), e.message))?;
                    let resolved = refs::resolve(&contract, consumer, config, &lookup)?;
                    sensitive |= resolved.sensitive;
                    value.push_str(&resolved.value);
                }
            }
        }
        let slot = if sensitive { &mut out.secret } else { &mut out.plain };
        slot.insert(key.clone(), value);
    }
    Ok(out)
}

fn invalid(path: String, message: String) -> Error {
    Error::Config(crate::error::Diagnostics(vec![crate::error::Diagnostic::new(message).at(path)]))
}

/// Services in start order: each after everything it depends on, otherwise in config order.
pub fn start_order(config: &Config) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    let mut pending: Vec<&String> = config.services.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|name| {
            let ready = config.services[name.as_str()]
                .depends_on
                .iter()
                .all(|d| !config.services.contains_key(d) || done.contains(d));
            if ready {
                done.push((*name).clone());
            }
            !ready
        });
        if pending.len() == before {
            // A cycle; validation rejects it, so this only keeps a bad caller from looping forever.
            done.extend(pending.drain(..).cloned());
        }
    }
    done
}

/// One bootstrap artifact, read and digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Its name in the config.
    pub name: String,
    /// The ConfigMap that carries it (`kp-artifact-<name>`).
    pub configmap: String,
    /// Its key in the ConfigMap: the file's name.
    pub file: String,
    /// Its path in the repository, as the config gives it.
    pub source: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: usize,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// One file of a service's mount, as both modes deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountedFile {
    /// Its key in the service's `<name>-files` ConfigMap or Secret.
    pub key: String,
    /// Its path under the mount (a folder's file) or its file name (a file).
    pub item: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A service's `files` entry, read: what kind's volume and compose's bind mount carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The path in the container.
    pub path: String,
    /// Its files (one for a file or a secret, each file of a folder).
    pub files: Vec<MountedFile>,
    /// Whether the source is a folder (mounted whole) rather than one file (mounted by subPath).
    pub folder: bool,
    /// Whether it is a generated secret (a Secret in kind, a rendered 0600 file in compose).
    pub secret: bool,
}

/// Reads every `files` entry of a service: each repository file or folder, or secret.
pub(crate) fn mounts(service: &config::Service, inputs: &Inputs, secrets: &Secrets) -> Result<Vec<Mount>> {
    // ConfigMap and Secret keys are `[-._a-zA-Z0-9]+`.
    let key = |i: usize, j: usize, item: &str| {
        let clean: String =
            item.chars().map(|c| if c.is_ascii_alphanumeric() || "-._".contains(c) { c } else { '_' }).collect();
        format!("{i}-{j}-{clean}")
    };
    let file_name = |path: &str| path.rsplit('/').next().unwrap_or(path).to_owned();
    service
        .files
        .iter()
        .enumerate()
        .map(|(i, mount)| {
            if let Some(name) = &mount.secret {
                let value = secrets.get(name).ok_or_else(|| Error::MissingSecret { name: name.clone() })?;
                let item = file_name(&mount.path);
                return Ok(Mount {
                    path: mount.path.clone(),
                    files: vec![MountedFile { key: key(i, 0, &item), item, bytes: value.as_bytes().to_vec() }],
                    folder: false,
                    secret: true,
                });
            }
            let source = mount.source.clone().unwrap_or_default();
            let (folder, files) = if inputs.is_dir(&source) {
                let files = inputs
                    .files_under(&source)?
                    .into_iter()
                    .enumerate()
                    .map(|(j, rel)| {
                        let item = rel.to_string_lossy().replace('\\', "/");
                        Ok(MountedFile { key: key(i, j, &item), item, bytes: inputs.read_bytes(&source.join(&rel))? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                (true, files)
            } else {
                let item = file_name(&mount.path);
                (false, vec![MountedFile { key: key(i, 0, &item), item, bytes: inputs.read_bytes(&source)? }])
            };
            Ok(Mount { path: mount.path.clone(), files, folder, secret: false })
        })
        .collect()
}

/// Reads and digests the config's bootstrap artifacts.
pub fn artifacts(config: &Config, inputs: &Inputs) -> Result<Vec<ArtifactFile>> {
    config
        .artifacts
        .iter()
        .map(|(name, artifact)| {
            let bytes = inputs.read_bytes(&artifact.path)?;
            let file = artifact.path.file_name().map_or_else(|| name.clone(), |f| f.to_string_lossy().into_owned());
            Ok(ArtifactFile {
                name: name.clone(),
                configmap: format!("kp-artifact-{name}"),
                file,
                source: artifact.path.display().to_string(),
                digest: format!("sha256:{:x}", Sha256::digest(&bytes)),
                size: bytes.len(),
                bytes,
            })
        })
        .collect()
}

/// Renders the config. `secrets` must hold every secret [`Config::secret_specs`] names and TLS
/// material ([`Secrets::ensure`] provides both).
pub fn render(
    config: &Config,
    inputs: &Inputs,
    secrets: &Secrets,
    images: &ImageRefs,
    templates: &Templates,
) -> Result<Plan> {
    let tls = secrets.tls.as_ref().ok_or_else(|| Error::MissingSecret { name: "tls (local CA)".into() })?;
    let need =
        |name: &str| secrets.get(name).map(str::to_owned).ok_or_else(|| Error::MissingSecret { name: name.to_owned() });
    let ns = config.namespace();
    let env_ctx = json!({
        "name": config.name,
        "namespace": ns,
        "domain": config.domain,
        "listen_address": config.listen_address.to_string(),
        "http_port": config.ports.http,
        "https_port": config.ports.https,
        "ingress_class": config.ingress.controller.class_name(),
        "ingress_cluster_ip": config.ingress.cluster_ip.to_string(),
        "service_subnet": config::SERVICE_SUBNET.to_string(),
        "browser_hosts": config.browser_hosts(),
        "node_image": config.cluster.node_image,
        "workers": (0..config.cluster.workers).collect::<Vec<_>>(),
        "registry": config.registry.enabled,
        "registry_host_port": config.registry.host_port,
        "registry_name": format!("{}-registry", config.name),
        "identity": secrets.identity(),
    });
    let ca_bundle = format!("{}{}", tls.ca_cert, public_roots_pem());
    let tls_ctx = json!({ "ca_cert": tls.ca_cert, "ca_bundle": ca_bundle, "cert": tls.cert, "key": tls.key });
    let base = |extra: Value| -> Value {
        let mut ctx = json!({ "env": env_ctx, "tls": tls_ctx });
        if let (Value::Object(a), Value::Object(b)) = (&mut ctx, extra) {
            a.extend(b);
        }
        ctx
    };

    let kind_config = templates.render("kind/kind-config.yaml.hbs", "kind", &base(json!({})))?;
    let mut manifests = Vec::new();
    let mut push = |file: &str, component: &str, phase: Phase, depends_on: Vec<String>, content: String| {
        manifests.push(Manifest { file: file.to_owned(), component: component.to_owned(), phase, depends_on, content });
    };

    push(
        "00-namespace.yaml",
        "namespace",
        Phase::Foundation,
        vec![],
        templates.render("namespace/namespace.yaml.hbs", "namespace", &base(json!({})))?,
    );

    let (ingress_template, ingress_component) = match config.ingress.controller {
        IngressController::Traefik => ("traefik/traefik.yaml.hbs", "traefik"),
        IngressController::IngressNginx => ("ingress-nginx/ingress-nginx.yaml.hbs", "ingress-nginx"),
    };
    let ingress_ctx = base(json!({ "ingress": {
        "image": config.ingress.image(),
        "redirect_https": config.ports.https == 443,
        "service_ports": ingress_service_ports(config),
        "default_certificate": format!("{ns}/kind-parity-tls"),
    } }));
    push(
        &format!("10-{ingress_component}.yaml"),
        ingress_component,
        Phase::Platform,
        vec![],
        templates.render(ingress_template, ingress_component, &ingress_ctx)?,
    );

    if config.postgres.enabled {
        let dbs = config.databases();
        let mut roles: Vec<&String> = dbs.values().collect();
        roles.sort();
        roles.dedup();
        let roles: Vec<Value> = roles
            .into_iter()
            .map(|owner| {
                let key = Config::postgres_password_secret(owner);
                Ok(json!({ "owner": owner, "key": key, "password": need(&key)?, "var": format!("PW_{}", owner.to_ascii_uppercase()) }))
            })
            .collect::<Result<_>>()?;
        let databases: Vec<Value> = dbs.iter().map(|(name, owner)| json!({ "name": name, "owner": owner })).collect();
        let superuser = need(config::POSTGRES_SUPERUSER_PASSWORD)?;
        let secrets_hash = short_hash(&[&superuser, &serde_json::to_string(&roles).unwrap_or_default()]);
        let ctx = base(json!({ "postgres": {
            "image": config.postgres.image, "storage": config.postgres.storage,
            "superuser_password": superuser, "roles": roles, "databases": databases, "secrets_hash": secrets_hash,
            "init_guard": POSTGRES_INIT_GUARD,
        }}));
        push(
            "20-postgres.yaml",
            "postgres",
            Phase::Platform,
            vec![],
            templates.render_hashed("postgres/postgres.yaml.hbs", "postgres", ctx)?,
        );
    }
    if config.redis.enabled {
        let password = need(config::REDIS_PASSWORD)?;
        let ctx = base(json!({ "redis": {
            "image": config.redis.image, "config": redis_config(&password), "password": password,
        } }));
        push(
            "21-redis.yaml",
            "redis",
            Phase::Platform,
            vec![],
            templates.render("redis/redis.yaml.hbs", "redis", &ctx)?,
        );
    }
    if config.nats.enabled {
        let password = if config.nats.auth { Some(need(crate::config::NATS_PASSWORD)?) } else { None };
        let ctx = base(json!({ "nats": {
            "image": config.nats.image, "jetstream": config.nats.jetstream,
            "user": crate::config::NATS_USER, "password": password,
        } }));
        push(
            "22-nats.yaml",
            "nats",
            Phase::Platform,
            vec![],
            templates.render_hashed("nats/nats.yaml.hbs", "nats", ctx)?,
        );
    }
    if config.keycloak.enabled {
        let realm_json = match &config.keycloak.realm_file {
            Some(file) => inputs.read(file)?,
            None => serde_json::to_string_pretty(&json!({ "realm": config.keycloak.realm, "enabled": true }))
                .unwrap_or_default(),
        };
        let realm_json = match &config.keycloak.login {
            Some(login) => crate::realm::with_test_user(
                &realm_json,
                &login.user,
                &need(config::KEYCLOAK_LOGIN_PASSWORD)?,
                &config.domain,
            )?,
            None => realm_json,
        };
        let db_key = Config::postgres_password_secret(&config.databases()["keycloak"]);
        let ctx = base(json!({ "keycloak": {
            "image": config.keycloak.image, "postgres_image": config.postgres.image,
            "host": format!("{}.{}", config.keycloak.host, config.domain),
            "hostname_url": config.kind_origin(&config.keycloak.host),
            "realm": config.keycloak.realm, "realm_json": realm_json,
            "realm_hash": short_hash(&[&realm_json]),
            "admin_password": need(config::KEYCLOAK_ADMIN_PASSWORD)?,
            "db_user": config.databases()["keycloak"], "db_password": need(&db_key)?,
        }}));
        push(
            "30-keycloak.yaml",
            "keycloak",
            Phase::Platform,
            vec!["postgres".into()],
            templates.render("keycloak/keycloak.yaml.hbs", "keycloak", &ctx)?,
        );
    }
    if config.temporal.enabled {
        let owner = config.databases()["temporal"].clone();
        let ctx = base(json!({ "temporal": {
            "image": config.temporal.image, "ui": config.temporal.ui, "ui_image": config.temporal.ui_image,
            "ui_host": format!("{}.{}", config.temporal.ui_host, config.domain),
            "namespaces": config.temporal.namespaces, "db_user": owner,
            "postgres_image": config.postgres.image,
            "db_password": need(&Config::postgres_password_secret(&config.databases()["temporal"]))?,
        }}));
        push(
            "31-temporal.yaml",
            "temporal",
            Phase::Platform,
            vec!["postgres".into()],
            templates.render_hashed("temporal/temporal.yaml.hbs", "temporal", ctx)?,
        );
    }
    if config.vault.enabled {
        let paths: Vec<Value> = config
            .vault
            .paths
            .iter()
            .map(|(path, keys)| {
                let kv: Vec<Value> =
                    keys.iter().map(|(k, s)| Ok(json!({ "key": k, "value": need(s)? }))).collect::<Result<_>>()?;
                Ok(json!({ "path": path, "keys": kv }))
            })
            .collect::<Result<_>>()?;
        // The seed sidecar's readiness: every declared path holds data.
        let seeded_check = config
            .vault
            .paths
            .keys()
            .map(|path| {
                format!("vault kv get {} >/dev/null", serde_json::to_string(path).expect("a string serializes"))
            })
            .collect::<Vec<_>>()
            .join(" && ");
        let ctx = base(json!({ "vault": {
            "image": config.vault.image, "root_token": need(config::VAULT_ROOT_TOKEN)?, "paths": paths,
            "seeded_check": seeded_check,
        } }));
        push(
            "32-vault.yaml",
            "vault",
            Phase::Platform,
            vec![],
            templates.render("vault/vault.yaml.hbs", "vault", &ctx)?,
        );
    }
    if !config.artifacts.is_empty() {
        let artifacts = artifacts(config, inputs)?;
        let index: Vec<Value> = artifacts
            .iter()
            .map(|a| json!({ "name": a.name, "digest": a.digest, "size": a.size, "source": a.source, "configmap": a.configmap, "key": a.file }))
            .collect();
        let items: Vec<Value> = artifacts
            .iter()
            .map(|a| json!({ "configmap": a.configmap, "file": a.file, "digest": a.digest, "size": a.size.to_string(), "source": a.source, "data": B64.encode(&a.bytes) }))
            .collect();
        let index_json = serde_json::to_string_pretty(&index).expect("the index serializes");
        push(
            "35-artifacts.yaml",
            "artifacts",
            Phase::Platform,
            vec![],
            templates.render(
                "artifacts/artifacts.yaml.hbs",
                "artifacts",
                &base(json!({ "artifacts": items, "artifacts_index": index_json })),
            )?,
        );
    }
    if config.registry.enabled {
        push(
            "33-registry.yaml",
            "registry",
            Phase::Platform,
            vec![],
            templates.render("registry/registry.yaml.hbs", "registry", &base(json!({})))?,
        );
    }

    let mut compose_service_env = BTreeMap::new();
    for (i, name) in start_order(config).iter().enumerate() {
        let service = &config.services[name.as_str()];
        let mut kind_env = resolve_env(config, name, Mode::Kind, secrets)?;
        // A variable that names a mounted file: its path in the container.
        for file in &service.files {
            if let Some(var) = &file.env {
                kind_env.plain.insert(var.clone(), file.path.clone());
            }
        }
        let mounts = mounts(service, inputs, secrets)?;
        let files_hash = short_hash(
            &mounts
                .iter()
                .flat_map(|m| {
                    m.files.iter().flat_map(move |f| [m.path.clone(), f.item.clone(), hex(&Sha256::digest(&f.bytes))])
                })
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let files_ctx: Vec<Value> = mounts
            .iter()
            .enumerate()
            .map(|(i, m)| {
                json!({
                    "volume": format!("files-{i}"), "path": m.path, "folder": m.folder, "secret": m.secret,
                    "sub_path": if m.folder { None } else { m.files.first().map(|f| f.item.clone()) },
                    "items": m.files.iter().map(|f| json!({ "key": f.key, "path": f.item })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let file_data = |secret: bool| -> Vec<Value> {
            mounts
                .iter()
                .filter(|m| m.secret == secret)
                .flat_map(|m| m.files.iter().map(|f| json!({ "key": f.key, "data": B64.encode(&f.bytes) })))
                .collect()
        };
        let kv =
            |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>();
        let env_hash = short_hash(&[
            &serde_json::to_string(&kind_env.plain).unwrap_or_default(),
            &serde_json::to_string(&kind_env.secret).unwrap_or_default(),
        ]);
        let own = kind_env.all();
        let ca_env: Vec<Value> = CA_ENV
            .iter()
            .filter(|(key, _)| !own.contains_key(key))
            .map(|(key, value)| json!({ "key": key, "value": value }))
            .collect();
        // A check with its port resolved to a name (an HTTP check's; none for a command).
        let probe = |probe: &Option<config::ProbeSpec>| {
            probe.as_ref().map(|p| {
                json!({
                    "path": p.path, "command": p.command, "port": service.probe_port(p).map(|port| port.name),
                    "period_seconds": p.period_seconds, "failure_threshold": p.failure_threshold,
                })
            })
        };
        let ctx = base(json!({ "service": {
            "ca_env": ca_env,
            "name": name, "image": images.0.get(name).cloned().unwrap_or_else(|| format!("{name}:unbuilt")),
            "ports": service.named_ports().iter().map(|p| json!({ "name": p.name, "port": p.port, "protocol": p.protocol.as_str() })).collect::<Vec<_>>(),
            "replicas": service.replicas, "health_path": service.health_path,
            "health_port": service.health_port().map(|p| p.name),
            "readiness_command": service.readiness_command,
            "liveness": probe(&service.liveness), "startup": probe(&service.startup),
            // `$(VAR)` in a container's command and args is expanded by the kubelet; `$$`
            // keeps it literal, as compose (which gets `$$` too) passes it.
            "command": service.command.iter().map(|a| a.replace('$', "$$")).collect::<Vec<_>>(),
            "args": service.args.iter().map(|a| a.replace('$', "$$")).collect::<Vec<_>>(),
            "cpu": service.resources.cpu, "memory": service.resources.memory,
            "ingress": service.ingress.as_ref().map(|ing| json!({
                "host": format!("{}.{}", ing.host, config.domain), "path": ing.path,
                "port": service.ingress_port().map(|p| p.name),
            })),
            "plain_env": kv(&kind_env.plain), "secret_env": kv(&kind_env.secret), "env_hash": env_hash,
            "depends_on": service.depends_on,
            "files": files_ctx, "files_hash": files_hash,
            "file_data": file_data(false), "secret_file_data": file_data(true),
        }}));
        let file = format!("{}-app-{name}.yaml", 50 + i);
        let component = format!("app-{name}");
        push(
            &file,
            &component,
            Phase::Apps,
            service.depends_on.clone(),
            templates.render("service/service.yaml.hbs", &component, &ctx)?,
        );
        let compose = resolve_env(config, name, Mode::Compose, secrets)?;
        let mut compose_env = compose.all();
        // The path in the container; a process on the host reads the repository's file itself.
        let file_paths: Vec<(String, String)> = service
            .files
            .iter()
            .filter_map(|file| {
                let var = file.env.clone()?;
                let path = match (service.compose.runs, &file.source, inputs) {
                    (config::Runs::Host, Some(source), Inputs::Dir(base)) => {
                        crate::compose::absolute(&base.join(source))
                    }
                    _ => file.path.clone(),
                };
                Some((var, path))
            })
            .collect();
        compose_env.extend(file_paths.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        compose_service_env.insert(name.clone(), env_file(&compose_env));
    }

    let kustomization = {
        let mut k = String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
        for m in &manifests {
            k.push_str(&format!("- {}\n", m.file));
        }
        k
    };
    let compose = crate::compose::render(config, inputs, secrets, images)?;
    let mut compose_component_files = compose.extra_files;
    for (component, env) in compose.component_env {
        compose_component_files.insert(format!("compose/{component}.env"), env);
    }
    Ok(Plan {
        kind_config,
        manifests,
        kustomization,
        compose_env: compose_env(config, images),
        compose_service_env,
        compose_file: compose.file,
        compose_component_files,
    })
}

/// The `redis.conf` of the Redis pod: the password, and no persistence (a dev cache).
fn redis_config(password: &str) -> String {
    format!("# rendered by kind-parity\nrequirepass {}\nsave \"\"\nappendonly no\n", redis_quoted(password))
}

/// `value` as a double-quoted string of Redis's config syntax (`sdssplitargs` in redis
/// `src/sds.c`: `\\`, `\"` and `\xHH` escapes), so a stored password is read back exactly.
fn redis_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for byte in value.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            other => out.push_str(&format!("\\x{other:02x}")),
        }
    }
    out.push('"');
    out
}

/// `KEY=value` lines in the syntax docker compose reads; values quoted when they need it.
pub(crate) fn env_file(entries: &BTreeMap<&str, &str>) -> String {
    let mut out = String::from("# generated by kind-parity; do not edit (change kind-parity.yaml instead)\n");
    for (k, v) in entries {
        out.push_str(&format!("{k}={}\n", dotenv_value(v)));
    }
    out
}

/// A value as compose's dotenv parser reads it back exactly (compose-spec/compose-go
/// `dotenv/parser.go` of v2.9.1, commit 75fb1ab, unchanged at e70e961: `extractVarValue` and
/// `expandEscapes`; `tests/compose.rs` reads the files back with that parser):
/// - unquoted, a value ends at the newline, loses what follows ` #` and trailing blanks, and
///   `$` interpolates: only values without such characters stay bare;
/// - in single quotes everything is literal except that a backslash before a `'` escapes it,
///   so `'it'\''s'` (the shell's way) ends at the second quote; a value with no `'` that does
///   not end in a backslash is written in single quotes, which a shell reads the same way;
/// - in double quotes `\\`, `\"`, `\$` (to `$$`, then a literal `$`), `\n`, `\r` and `\t`
///   are escapes and `$` interpolates: every other value is written so, escaping those.
pub(crate) fn dotenv_value(v: &str) -> String {
    let bare = !v.is_empty()
        && !v.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '#' | '"' | '\'' | '$' | '\\' | '`'));
    if bare {
        return v.to_owned();
    }
    if !v.contains('\'') && !v.ends_with('\\') {
        return format!("'{v}'");
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

fn compose_env(config: &Config, images: &ImageRefs) -> String {
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    let mut component = |name: &str, enabled: bool, image: &str, port: u16| {
        if enabled {
            let upper = name.to_ascii_uppercase();
            entries.insert(format!("KP_{upper}_IMAGE"), image.to_owned());
            entries.insert(format!("KP_{upper}_PORT"), port.to_string());
        }
    };
    component("postgres", config.postgres.enabled, &config.postgres.image, config.postgres.compose_port);
    component("redis", config.redis.enabled, &config.redis.image, config.redis.compose_port);
    component("keycloak", config.keycloak.enabled, &config.keycloak.image, config.keycloak.compose_port);
    component("nats", config.nats.enabled, &config.nats.image, config.nats.compose_port);
    component("temporal", config.temporal.enabled, &config.temporal.image, config.temporal.compose_port);
    component("vault", config.vault.enabled, &config.vault.image, config.vault.compose_port);
    for (name, service) in &config.services {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        if let Some(image) = images.0.get(name) {
            entries.insert(format!("KP_{upper}_IMAGE"), image.clone());
        }
        for (var, port) in service.port_variables(name) {
            entries.insert(var, port.compose_port.to_string());
        }
    }
    entries.insert("KP_KEYCLOAK_REALM".into(), config.keycloak.realm.clone());
    entries.insert("COMPOSE_PROJECT_NAME".into(), config.name.clone());
    env_file(&entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
}
