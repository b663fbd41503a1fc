//! The environment's state folder `.kind-parity/<name>/`: secrets, the local CA, rendered files.
//!
//! Writes are atomic: a file is written beside its target and renamed over it; a folder is
//! built beside its target and swapped in, so an interrupted or failed run leaves the previous
//! content as it was. Everything holding a secret is created with mode 0600 (folders 0700).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kind_parity_render::{Config, Plan, Secrets};

/// Errors of the state folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file or folder could not be written.
    #[error("writing {path}")]
    Write {
        /// What was being written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("reading {path}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The stored secrets do not parse.
    #[error("reading the stored secrets in {path}")]
    Secrets {
        /// The secrets file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kind_parity_render::Error,
    },
}

/// The state folder of one environment.
#[derive(Debug, Clone)]
pub struct State {
    root: PathBuf,
}

impl State {
    /// The state of environment `name` under `state_dir`.
    pub fn new(state_dir: &Path, name: &str) -> Self {
        Self { root: state_dir.join(name) }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where rendered files go by default.
    pub fn rendered(&self) -> PathBuf {
        self.root.join("rendered")
    }

    /// The generated secrets and local CA (0600).
    pub fn secrets_file(&self) -> PathBuf {
        self.root.join("secrets.json")
    }

    /// The local CA certificate, for users to trust (not secret).
    pub fn ca_file(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    /// The environment's own kubeconfig; the user's ~/.kube/config is never touched.
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }

    /// The stored secrets, or `None` when the environment has none yet. Never generates.
    pub fn read_secrets(&self) -> Result<Option<Secrets>, StateError> {
        let path = self.secrets_file();
        match fs::read_to_string(&path) {
            Ok(text) => {
                Secrets::from_json(&text).map(Some).map_err(|source| StateError::Secrets { path: path.clone(), source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Loads the stored secrets, adds what the config needs, stores them if anything changed.
    pub fn ensure_secrets(&self, config: &Config) -> Result<(Secrets, kind_parity_render::Changes), StateError> {
        let path = self.secrets_file();
        let mut secrets = self.read_secrets()?.unwrap_or_default();
        let changes = secrets
            .ensure(config, &mut rand::rng(), time::OffsetDateTime::now_utc())
            .map_err(|source| StateError::Secrets { path: path.clone(), source })?;
        if !changes.is_empty() {
            create_private_dir(&self.root)?;
            write_atomic(&path, secrets.to_json().as_bytes(), 0o600)?;
            if let Some(tls) = &secrets.tls {
                write_atomic(&self.ca_file(), tls.ca_cert.as_bytes(), 0o644)?;
            }
        }
        Ok((secrets, changes))
    }
}

/// Writes every file of `plan` into `out`, replacing its previous content only once all are written.
pub fn write_plan(plan: &Plan, out: &Path) -> Result<Vec<String>, StateError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent)?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Write { path, source }
    };
    let staging = tempfile::Builder::new().prefix(".rendered-").tempdir_in(&parent).map_err(write_err(&parent))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700)).map_err(write_err(staging.path()))?;
    }
    let mut written = Vec::new();
    for (rel, content) in plan.files() {
        let path = staging.path().join(&rel);
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        write_new(&path, content.as_bytes(), 0o600)?;
        written.push(rel);
    }
    let staged = staging.keep();
    let old = parent.join(format!(".rendered-old-{}", std::process::id()));
    let had_old = out.exists();
    if had_old {
        fs::rename(out, &old).map_err(write_err(out))?;
    }
    if let Err(source) = fs::rename(&staged, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(StateError::Write { path: out.to_path_buf(), source });
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(written)
}

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StateError::Write { path: dir.to_path_buf(), source })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| StateError::Write { path: path.to_path_buf(), source })?;
    file.write_all(bytes).map_err(|source| StateError::Write { path: path.to_path_buf(), source })
}

/// Writes `path` atomically with the given mode (for the inventory and other state files).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    write_atomic(path, bytes, mode)
}

/// Writes `path` through a temporary file beside it, so readers never see half a file.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |source| StateError::Write { path: path.to_path_buf(), source };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
