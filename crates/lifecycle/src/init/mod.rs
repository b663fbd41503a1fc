//! `init`: a starter `kind-parity.yaml` for a repository, written once.
//!
//! [`init`] writes the file: a commented starter that proposes a service per Dockerfile found in
//! the repository's top folders ([`starter`]), or the import of an existing compose project
//! ([`compose`]), whose services, healthchecks and platform containers become the config's
//! services and components and whose remainder is reported as [`Unmapped`]. The file is never
//! replaced unless asked, and the text written is one [`kind_parity_render::load`] accepts for
//! what the import could map (an unpinned image or a context that is missing stays for the user
//! to fix, with the loader's `file:line` errors).

pub mod compose;
mod starter;

use std::path::{Path, PathBuf};

pub use starter::starter;

/// A result whose error defaults to this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the starter's first line points editors for the config's JSON Schema: the committed
/// `schema/kind-parity.schema.json` (what `kind-parity schema` prints) of this release's
/// repository, so an editor checks the file without anything else installed.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/kind-parity/kind-parity/main/schema/kind-parity.schema.json";

/// What `init` can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config file exists and replacing it was not asked for.
    #[error("{} exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file or folder of the repository or of the compose project could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A compose file is not YAML, or not a compose file's shape.
    #[error("{} is not a compose file", path.display())]
    ComposeYaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A compose file is YAML but says something compose itself refuses.
    #[error("{}: {problem}", path.display())]
    Compose {
        /// The file.
        path: PathBuf,
        /// What is wrong (an `extends` of a service that does not exist, a `${VAR:?message}`
        /// whose variable is unset, a cycle of `extends`).
        problem: String,
    },
}

/// What `init` writes, and from what.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The repository: where the top folders are looked at for Dockerfiles.
    pub dir: PathBuf,
    /// The file to write; `kind-parity.yaml` in `dir` when unset.
    pub output: Option<PathBuf>,
    /// Replace the file when it exists.
    pub force: bool,
    /// The environment's name; the repository folder's, made a DNS label, when unset.
    pub name: Option<String>,
    /// Compose files to import, in order (later ones override earlier ones, as compose merges
    /// them); none for the Dockerfile starter.
    pub compose_files: Vec<PathBuf>,
    /// Compose profiles to enable (besides those `COMPOSE_PROFILES` in `env` names).
    pub profiles: Vec<String>,
    /// The environment compose interpolates `${VAR}` from (the process's, for the binary); the
    /// `.env` beside the first compose file fills in what it lacks.
    pub env: Vec<(String, String)>,
    /// Where the `$schema` line points; [`SCHEMA_URL`] when unset.
    pub schema: Option<String>,
}

impl InitOptions {
    /// The file `init` writes.
    pub fn output(&self) -> PathBuf {
        self.output.clone().unwrap_or_else(|| self.dir.join(kind_parity_render::config::CONFIG_FILE))
    }
}

/// What could not be carried into the config, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmapped {
    /// Where it is: `compose.yaml: services.api.volumes[0]`.
    pub what: String,
    /// Why it was left out, and what to do about it, naming no command or flag.
    pub why: String,
    /// The compose profile that imports it when enabled ([`InitOptions::profiles`]; the binary's
    /// `--profile`), when that is what would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// The text of a config and what it holds, before it is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Starter {
    /// The whole file.
    pub text: String,
    /// The services it declares, in order.
    pub services: Vec<String>,
    /// The platform components it enables.
    pub components: Vec<String>,
    /// What an import could not map.
    pub unmapped: Vec<Unmapped>,
}

/// What [`init`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InitReport {
    /// The file written.
    pub path: PathBuf,
    /// Whether it replaced an existing file.
    pub replaced: bool,
    /// The services it declares.
    pub services: Vec<String>,
    /// The platform components it enables.
    pub components: Vec<String>,
    /// What an import could not map.
    pub unmapped: Vec<Unmapped>,
}

/// Writes the starter config (or the compose import, when `compose_files` are given).
///
/// ```no_run
/// use kind_parity_lifecycle::init::{InitOptions, init};
///
/// let report = init(&InitOptions { dir: ".".into(), ..InitOptions::default() })?;
/// println!("wrote {} with {}", report.path.display(), report.services.join(", "));
/// # Ok::<(), kind_parity_lifecycle::init::Error>(())
/// ```
pub fn init(options: &InitOptions) -> Result<InitReport> {
    let path = options.output();
    let exists = path.exists();
    if exists && !options.force {
        return Err(Error::Exists { path });
    }
    // The config's relative paths (build contexts) are relative to the file written.
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let starter = if options.compose_files.is_empty() {
        starter::starter(&options.dir, &base, options)?
    } else {
        compose::import(&base, options)?
    };
    write(&path, &starter.text, options.force)?;
    tracing::info!(path = %path.display(), services = starter.services.len(), "wrote the starter config");
    Ok(InitReport {
        path,
        replaced: exists,
        services: starter.services,
        components: starter.components,
        unmapped: starter.unmapped,
    })
}

/// Writes `text` to `path` through a file beside it, so a failed write leaves no half file; without
/// `force`, a file that appeared meanwhile is kept.
fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    use std::io::Write as _;
    let error = |source| Error::Write { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)?;
    if force {
        file.persist(path).map_err(|e| error(e.error))?;
    } else {
        file.persist_noclobber(path).map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists { path: path.to_path_buf() },
            _ => error(e.error),
        })?;
    }
    Ok(())
}

/// `text` as a DNS label (lowercase letters, digits and `-`, starting with a letter, at most
/// `max` characters), or `fallback` when nothing of it is left.
pub(crate) fn dns_label(text: &str, max: usize, fallback: &str) -> String {
    let mut label = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            label.push(c);
        } else if !label.is_empty() && !label.ends_with('-') {
            label.push('-');
        }
    }
    let label = label.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    let mut label: String = label.chars().take(max).collect();
    while label.ends_with('-') {
        label.pop();
    }
    if label.is_empty() { fallback.to_owned() } else { label }
}

/// A YAML scalar as it may stand in a block mapping (quoted when it must be).
pub(crate) fn scalar(text: &str) -> String {
    serde_yaml_ng::to_string(text).map(|s| s.trim_end().to_owned()).unwrap_or_else(|_| format!("{text:?}"))
}

/// The schema line every written config opens with.
pub(crate) fn schema_line(options: &InitOptions) -> String {
    format!("# yaml-language-server: $schema={}\n", options.schema.as_deref().unwrap_or(SCHEMA_URL))
}

/// The environment's name: the one asked for, else the repository folder's.
pub(crate) fn environment_name(options: &InitOptions) -> String {
    if let Some(name) = &options.name {
        return name.clone();
    }
    let dir = std::fs::canonicalize(&options.dir).unwrap_or_else(|_| options.dir.clone());
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dns_label(&folder, kind_parity_render::config::KIND_CLUSTER_NAME_MAX, "app")
}

/// A service name the config takes for `text`: a DNS-1035 label that is no platform component's.
pub(crate) fn service_name(text: &str) -> String {
    let name = dns_label(text, 63, "app");
    if kind_parity_render::config::RESERVED_SERVICE_NAMES.contains(&name.as_str()) {
        format!("{}-app", name.chars().take(59).collect::<String>())
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::dns_label;

    #[test]
    fn a_folder_name_becomes_a_dns_label() {
        assert_eq!(dns_label("My_Repo.v2", 40, "app"), "my-repo-v2");
        assert_eq!(dns_label("2fast", 40, "app"), "fast");
        assert_eq!(dns_label("___", 40, "app"), "app");
        assert_eq!(dns_label("abc-def", 4, "app"), "abc");
    }
}
