//! The shared config: its model, layered loading with provenance, and validation.

mod load;
mod model;
mod path;
mod quantity;
mod spans;
mod validate;

use std::path::{Path as FsPath, PathBuf};

use include_dir::{Dir, include_dir};
use indexmap::IndexMap;

pub use load::{
    CONFIG_FILE, EMBEDDED_CONFIG, ENV_PREFIX, LOCAL_FILE, LoadOptions, Loaded, Origins, Override, Source, explain,
    load, origins,
};
pub use model::*;
pub use path::{Path, Seg};
pub(crate) use validate::SERVICE_SUBNET;
pub use validate::{KIND_CLUSTER_NAME_MAX, RESERVED_SERVICE_NAMES, is_port_name};

use crate::error::{Error, Result};

/// The generated password of Redis.
pub const REDIS_PASSWORD: &str = "redis-password";
/// The generated NATS password of user [`NATS_USER`], when `nats.auth` is on.
pub const NATS_PASSWORD: &str = "nats-password";
/// The NATS user the services authenticate as.
pub const NATS_USER: &str = "app";
/// The generated password of the Postgres superuser.
pub const POSTGRES_SUPERUSER_PASSWORD: &str = "postgres-superuser-password";
/// The generated password of Keycloak's bootstrap admin.
pub const KEYCLOAK_ADMIN_PASSWORD: &str = "keycloak-admin-password";
/// The password of `keycloak.login`'s test user.
pub const KEYCLOAK_LOGIN_PASSWORD: &str = "keycloak-login-password";
/// The generated root token of the dev Vault.
pub const VAULT_ROOT_TOKEN: &str = "vault-root-token";

static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/demo");

/// Where the config's relative paths (build contexts, the realm file) are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// A folder on disk: the config file's.
    Dir(PathBuf),
    /// The embedded demo stack (examples/demo, compiled in).
    Embedded,
}

impl Inputs {
    /// Reads a file relative to the inputs.
    pub fn read(&self, rel: &FsPath) -> Result<String> {
        match self {
            Self::Dir(base) => {
                let path = base.join(rel);
                std::fs::read_to_string(&path).map_err(|source| Error::ReadInput { path, source })
            }
            Self::Embedded => {
                DEMO.get_file(rel).and_then(|f| f.contents_utf8()).map(str::to_owned).ok_or_else(|| Error::ReadInput {
                    path: rel.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the embedded demo stack"),
                })
            }
        }
    }

    /// Reads a file relative to the inputs as bytes (artifacts need not be text).
    pub fn read_bytes(&self, rel: &FsPath) -> Result<Vec<u8>> {
        match self {
            Self::Dir(base) => {
                let path = base.join(rel);
                std::fs::read(&path).map_err(|source| Error::ReadInput { path, source })
            }
            Self::Embedded => DEMO.get_file(rel).map(|f| f.contents().to_vec()).ok_or_else(|| Error::ReadInput {
                path: rel.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the embedded demo stack"),
            }),
        }
    }

    /// Whether a file exists relative to the inputs.
    pub fn is_file(&self, rel: &FsPath) -> bool {
        match self {
            Self::Dir(base) => base.join(rel).is_file(),
            Self::Embedded => DEMO.get_file(rel).is_some(),
        }
    }

    /// Whether a folder exists relative to the inputs.
    pub fn is_dir(&self, rel: &FsPath) -> bool {
        match self {
            Self::Dir(base) => base.join(rel).is_dir(),
            Self::Embedded => rel.as_os_str().is_empty() || rel == FsPath::new(".") || DEMO.get_dir(rel).is_some(),
        }
    }

    /// Every file under a folder relative to the inputs, as paths relative to that folder,
    /// sorted; hidden files and folders (`.git`) left out.
    pub fn files_under(&self, rel: &FsPath) -> Result<Vec<PathBuf>> {
        let hidden = |p: &FsPath| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        let mut out = Vec::new();
        match self {
            Self::Dir(base) => {
                let root = base.join(rel);
                let mut stack = vec![root.clone()];
                while let Some(folder) = stack.pop() {
                    let entries = std::fs::read_dir(&folder)
                        .map_err(|source| Error::ReadInput { path: folder.clone(), source })?;
                    for entry in entries {
                        let path = entry.map_err(|source| Error::ReadInput { path: folder.clone(), source })?.path();
                        if hidden(&path) {
                            continue;
                        }
                        if path.is_dir() {
                            stack.push(path);
                        } else {
                            out.push(path.strip_prefix(&root).unwrap_or(&path).to_path_buf());
                        }
                    }
                }
            }
            Self::Embedded => {
                fn walk(dir: &Dir<'static>, root: &FsPath, out: &mut Vec<PathBuf>) {
                    for entry in dir.entries() {
                        if entry.path().file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                            continue;
                        }
                        match entry {
                            include_dir::DirEntry::Dir(d) => walk(d, root, out),
                            include_dir::DirEntry::File(f) => {
                                out.push(f.path().strip_prefix(root).unwrap_or(f.path()).to_path_buf());
                            }
                        }
                    }
                }
                let dir = DEMO.get_dir(rel).ok_or_else(|| Error::ReadInput {
                    path: rel.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the embedded demo stack"),
                })?;
                walk(dir, rel, &mut out);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The folder on disk, when the inputs are on disk.
    pub fn base_dir(&self) -> Option<&FsPath> {
        match self {
            Self::Dir(base) => Some(base),
            Self::Embedded => None,
        }
    }

    /// The embedded demo stack's files, for callers that need them on disk (image builds).
    pub fn embedded_demo() -> &'static Dir<'static> {
        &DEMO
    }
}

impl Config {
    /// Every database to create, with its owner: the declared ones plus those of the components.
    pub fn databases(&self) -> IndexMap<String, String> {
        let mut dbs: IndexMap<String, String> = self
            .postgres
            .databases
            .iter()
            .map(|(name, db)| (name.clone(), db.owner.clone().unwrap_or_else(|| name.clone())))
            .collect();
        if self.keycloak.enabled {
            dbs.entry("keycloak".into()).or_insert_with(|| "keycloak".into());
        }
        if self.temporal.enabled {
            dbs.entry("temporal".into()).or_insert_with(|| "temporal".into());
            dbs.entry("temporal_visibility".into()).or_insert_with(|| "temporal".into());
        }
        dbs
    }

    /// The name of the generated secret holding a Postgres role's password.
    pub fn postgres_password_secret(owner: &str) -> String {
        format!("postgres-{}-password", owner.replace('_', "-"))
    }

    /// Every secret the environment needs generated, with its length.
    pub fn secret_specs(&self) -> IndexMap<String, usize> {
        let mut specs = IndexMap::new();
        if self.postgres.enabled {
            specs.insert(POSTGRES_SUPERUSER_PASSWORD.to_owned(), 32);
            for owner in self.databases().values() {
                specs.insert(Self::postgres_password_secret(owner), 32);
            }
        }
        if self.redis.enabled {
            specs.insert(REDIS_PASSWORD.to_owned(), 32);
        }
        if self.nats.enabled && self.nats.auth {
            specs.insert(NATS_PASSWORD.to_owned(), 32);
        }
        if self.keycloak.enabled {
            specs.insert(KEYCLOAK_ADMIN_PASSWORD.to_owned(), 24);
            if self.keycloak.login.is_some() {
                specs.insert(KEYCLOAK_LOGIN_PASSWORD.to_owned(), 24);
            }
        }
        if self.vault.enabled {
            specs.insert(VAULT_ROOT_TOKEN.to_owned(), 32);
        }
        for (name, spec) in &self.secrets {
            specs.insert(name.clone(), spec.length);
        }
        specs
    }

    /// The names of every secret a reference may name.
    pub fn secret_names(&self) -> Vec<String> {
        self.secret_specs().into_keys().collect()
    }
}

/// The JSON Schema of `kind-parity.yaml`, generated from the model (schemars), for editors
/// (`# yaml-language-server: $schema=…`) and CI. It says what types and keys a file may have;
/// the checks across values (ports unique, references defined) are made at load.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Config)).expect("a schema serializes");
    schema["title"] = serde_json::json!("kind-parity.yaml");
    schema
}
