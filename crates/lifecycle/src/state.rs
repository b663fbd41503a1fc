//! The environment's state folder `.kind-parity/<name>/`, owned by this module alone: every path
//! in it is named here, and nothing else writes into it.
//!
//! ```text
//! <state_dir>/<name>/
//!   secrets.json               generated secrets and the local CA's key (0600)
//!   ca.crt                     the local CA certificate, for users to trust
//!   rendered/                  the last render (replaced whole, holds a marker file)
//!   inventory.json             the objects the last apply applied, and the running one will
//!                              have (written before it starts), with their context (prune, down)
//!   kind-config.applied.yaml   the kind config the cluster was created from
//!   kind-create.pending        present while `kind create cluster` runs (an interrupted create)
//!   kubeconfig                 the environment's own kubeconfig (never ~/.kube/config)
//!   demo/                      the embedded demo stack's files, when it is the config
//!   logs/                      `kind export logs` after a failed create or wait
//!   diagnostics/<UTC time>/    the bundles of `logs`
//! <state_dir>/<name>.lock      the environment's advisory lock (beside the folder `down` deletes)
//! ```
//!
//! Writes are atomic and durable: a file is written beside its target, flushed to disk, renamed
//! over it, and the folder is flushed; a folder is built beside its target, flushed, and swapped
//! in, so an interrupted or failed run (or a power cut) leaves the previous content as it was. A rendered folder holds a marker file, and only such a folder (or an empty
//! one) is ever replaced: `render --out` never deletes what kind-parity did not write. Everything holding a secret is created with mode 0600 (folders 0700).

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
    /// The output folder is not one `render` may replace.
    #[error(transparent)]
    Out(#[from] OutError),
    /// The stored secrets do not parse.
    #[error("reading the stored secrets in {path}")]
    Secrets {
        /// The secrets file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kind_parity_render::Error,
    },
    /// The stored inventory does not parse.
    #[error("reading the inventory {path}")]
    Inventory {
        /// The inventory file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
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

    /// The kind config the environment's cluster was created from.
    pub fn applied_kind_config(&self) -> PathBuf {
        self.root.join("kind-config.applied.yaml")
    }

    /// Present while `kind create cluster` runs: a cluster that exists with it present was left
    /// half-created by an interrupted command, and the next `up` recreates it.
    pub fn creating_marker(&self) -> PathBuf {
        self.root.join("kind-create.pending")
    }

    /// Marks that a create of the kind cluster began.
    pub fn mark_creating(&self) -> Result<(), StateError> {
        write_atomic(&self.creating_marker(), b"kind create cluster started; removed once it succeeded\n", 0o600)
    }

    /// Removes the mark of [`State::mark_creating`] once the create succeeded.
    pub fn unmark_creating(&self) -> Result<(), StateError> {
        let path = self.creating_marker();
        match fs::remove_file(&path) {
            // Flushed: a marker that comes back after a power cut would have the next `up`
            // delete a cluster that was created whole.
            Ok(()) => sync_dir(&self.root).map_err(|source| StateError::Write { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Write { path, source }),
        }
    }

    /// The inventory of applied objects.
    pub fn inventory_file(&self) -> PathBuf {
        self.root.join("inventory.json")
    }

    /// Where `kind export logs` writes after a failure.
    pub fn kind_logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Where the embedded demo stack's files are written to be built.
    pub fn demo(&self) -> PathBuf {
        self.root.join("demo")
    }

    /// Where the diagnostics bundles of `logs` go by default, one folder per run.
    pub fn diagnostics(&self) -> PathBuf {
        self.root.join("diagnostics")
    }

    /// Whether `up` created a kind cluster for this state folder: kind wrote its kubeconfig, the
    /// kind config it was created from was recorded, or a create began.
    pub fn created_a_cluster(&self) -> bool {
        self.kubeconfig().exists() || self.applied_kind_config().exists() || self.creating_marker().exists()
    }

    /// The inventory of the last apply; empty when nothing was applied yet.
    pub fn read_inventory(&self) -> Result<kind_parity_cluster::apply::Inventory, StateError> {
        let path = self.inventory_file();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| StateError::Inventory { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Stores the inventory of an apply (0600).
    pub fn write_inventory(&self, inventory: &kind_parity_cluster::apply::Inventory) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(inventory).expect("an inventory serializes");
        write_atomic(&self.inventory_file(), text.as_bytes(), 0o600)
    }

    /// The kind config recorded when the cluster was created, if any.
    pub fn read_applied_kind_config(&self) -> Option<String> {
        fs::read_to_string(self.applied_kind_config()).ok()
    }

    /// Records the kind config the cluster was created from (0600).
    pub fn write_applied_kind_config(&self, kind_config: &str) -> Result<(), StateError> {
        write_atomic(&self.applied_kind_config(), kind_config.as_bytes(), 0o600)
    }

    /// Deletes the whole state folder; `false` when there was none.
    pub fn remove(&self) -> Result<bool, StateError> {
        match fs::remove_dir_all(&self.root) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StateError::Write { path: self.root.clone(), source }),
        }
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
        }
        if let Some(tls) = &secrets.tls {
            self.ensure_ca_file(&tls.ca_cert)?;
        }
        Ok((secrets, changes))
    }

    /// Writes `ca.crt` from the kept CA unless it already holds it: users are told to trust that
    /// file, so one deleted or edited by hand (or never written, a crash between the secrets and
    /// it) is written again rather than named while missing.
    fn ensure_ca_file(&self, ca_cert: &str) -> Result<(), StateError> {
        let path = self.ca_file();
        match fs::read_to_string(&path) {
            Ok(text) if text == ca_cert => return Ok(()),
            Ok(_) => tracing::warn!("{} differs from the kept CA: writing it again", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Read { path, source }),
        }
        create_private_dir(&self.root)?;
        write_atomic(&path, ca_cert.as_bytes(), 0o644)
    }
}

impl State {
    /// The environment's lock file, `<state_dir>/<name>.lock`: beside the state folder, not in
    /// it, since `down` deletes the folder while it holds the lock. It is never deleted: a
    /// command waiting on the old file and one creating a new one would both hold "the" lock.
    pub fn lock_file(&self) -> PathBuf {
        let mut name = self.root.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        self.root.with_file_name(name)
    }

    /// Takes the environment's advisory lock for `command` if no other process holds it, and
    /// writes who holds it into the lock file; when another does, says who that is.
    pub fn try_lock(&self, command: &str) -> Result<TryLock, StateError> {
        use std::io::{Read as _, Seek as _};
        let path = self.lock_file();
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let err = |source| StateError::Write { path: path.clone(), source };
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(err)?;
        // fs4's, called by path: std's inherent `File::try_lock` of the same name would win.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Unreadable (or not written yet by a holder that just took it): an unknown holder.
                let _ = file.read_to_string(&mut text);
                return Ok(TryLock::Busy(Holder::parse(&text)));
            }
            Err(fs4::TryLockError::Error(source)) => return Err(err(source)),
        }
        file.set_len(0).map_err(err)?;
        file.rewind().map_err(err)?;
        writeln!(file, "{} {command}", std::process::id()).map_err(err)?;
        Ok(TryLock::Acquired(Lock { _file: file }))
    }
}

/// An environment's advisory lock (`flock` on Unix), held while a command changes it. Dropping it
/// closes the file, which releases the lock; so does the end of the process, however it ends
/// (Ctrl-C, SIGKILL, a crash), so a lock is never left held by a process that is gone.
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
}

/// Who holds an environment's lock, as the holder wrote it into the lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id, when the file says.
    pub pid: Option<u32>,
    /// The command it runs (`up`, `down`), when the file says.
    pub command: Option<String>,
}

impl Holder {
    fn parse(text: &str) -> Self {
        let mut words = text.split_whitespace();
        let pid = words.next().and_then(|w| w.parse().ok());
        let command = pid.and(words.next()).map(str::to_owned);
        Self { pid, command }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.command, self.pid) {
            (Some(command), Some(pid)) => write!(f, "`{command}` (pid {pid})"),
            (None, Some(pid)) => write!(f, "pid {pid}"),
            _ => f.write_str("another command"),
        }
    }
}

/// What [`State::try_lock`] found.
#[derive(Debug)]
#[must_use]
pub enum TryLock {
    /// The lock is this process's until the [`Lock`] is dropped.
    Acquired(Lock),
    /// Another process holds it.
    Busy(Holder),
}

/// The file every folder `render` writes holds, so a later render knows the folder is its own.
pub const MARKER: &str = ".kind-parity-rendered";

const MARKER_TEXT: &str = "Written by `kind-parity render`: the next render replaces this folder whole.\n";

/// What [`write_plan`] must never replace.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Paths the output folder must neither be nor hold, with what each is (the config files,
    /// the working directory, the secrets file).
    pub protected: Vec<(PathBuf, &'static str)>,
    /// Take over a non-empty folder without the marker: the state folder's own `rendered/`,
    /// which versions before the marker wrote without one.
    pub adopt_unmarked: bool,
}

/// Why [`write_plan`] refused its output folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutError {
    /// The folder is, or holds, something the user keeps (the project, the config).
    #[error("refusing to replace {path}: it holds the {what} ({protected})")]
    HoldsProtected {
        /// The output folder.
        path: PathBuf,
        /// What it holds.
        what: &'static str,
        /// Where that is.
        protected: PathBuf,
    },
    /// The folder is not empty and has no marker: kind-parity did not write it.
    #[error("refusing to replace {path}: it is not empty and was not written by kind-parity (no {MARKER} in it)")]
    NotOurs {
        /// The output folder.
        path: PathBuf,
    },
    /// The path exists and is not a folder.
    #[error("refusing to replace {path}: it is not a folder")]
    NotAFolder {
        /// The output path.
        path: PathBuf,
    },
}

/// Writes every file of `plan` into `out`, replacing its previous content only once all are written.
///
/// `out` is replaced whole, so it must be new, empty, or a folder an earlier render wrote (it
/// holds [`MARKER`]); it must not hold anything in `options.protected`. The new folder is built
/// beside `out` and swapped in, so `out` always holds either the old or the new render, and a
/// failure leaves no staging folder (they hold secrets) behind.
pub fn write_plan(plan: &Plan, out: &Path, options: &WriteOptions) -> Result<Vec<String>, StateError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Write { path, source }
    };
    let out = resolve_out(out)?;
    check_out(&out, options)?;
    let parent = out.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    // Dropping the staging folder deletes it: on every error below, and after a swap, when it
    // holds the previous render.
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
    write_new(&staging.path().join(MARKER), MARKER_TEXT.as_bytes(), 0o644)?;
    for dir in
        walkdir::WalkDir::new(staging.path()).into_iter().filter_map(|e| e.ok()).filter(|e| e.file_type().is_dir())
    {
        sync_dir(dir.path()).map_err(write_err(dir.path()))?;
    }
    swap_in(staging.path(), &out, &parent).map_err(write_err(&out))?;
    sync_dir(&parent).map_err(write_err(&parent))?;
    drop(staging);
    Ok(written)
}

/// `out` as an absolute path without `.` or `..` or symlinks, so that `--out .` is the folder
/// itself (renaming `.` fails with EBUSY) and comparisons with the protected paths hold. Creates
/// the parent of a new folder.
fn resolve_out(out: &Path) -> Result<PathBuf, StateError> {
    let canonical =
        |path: &Path| fs::canonicalize(path).map_err(|source| StateError::Read { path: path.to_path_buf(), source });
    if fs::symlink_metadata(out).is_ok() {
        return canonical(out);
    }
    let name = out.file_name().ok_or_else(|| StateError::Write {
        path: out.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path does not name a folder"),
    })?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent)?;
    Ok(canonical(&parent)?.join(name))
}

fn check_out(out: &Path, options: &WriteOptions) -> Result<(), StateError> {
    for (protected, what) in &options.protected {
        // A protected path that cannot be resolved does not exist, and so cannot be inside `out`.
        let Ok(protected) = fs::canonicalize(protected) else { continue };
        if protected.starts_with(out) {
            return Err(OutError::HoldsProtected { path: out.to_path_buf(), what, protected }.into());
        }
    }
    let metadata = match fs::metadata(out) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StateError::Read { path: out.to_path_buf(), source }),
    };
    if !metadata.is_dir() {
        return Err(OutError::NotAFolder { path: out.to_path_buf() }.into());
    }
    if options.adopt_unmarked || out.join(MARKER).is_file() {
        return Ok(());
    }
    let mut entries = fs::read_dir(out).map_err(|source| StateError::Read { path: out.to_path_buf(), source })?;
    if entries.next().is_some() {
        return Err(OutError::NotOurs { path: out.to_path_buf() }.into());
    }
    Ok(())
}

/// Puts the folder `staged` at `out`; what `out` held is deleted, here or with `staged`.
fn swap_in(staged: &Path, out: &Path, parent: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(out).is_err() {
        return fs::rename(staged, out);
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        // One atomic exchange: `out` never stops existing. Some file systems do not support it.
        match renameat_with(CWD, staged, CWD, out, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Two renames: for a moment `out` does not exist, but it is never half written.
    let old = tempfile::Builder::new().prefix(".rendered-old-").tempdir_in(parent)?;
    fs::rename(out, old.path())?;
    if let Err(error) = fs::rename(staged, out) {
        let _ = fs::rename(old.path(), out);
        return Err(error);
    }
    // Dropping `old` deletes the previous render.
    Ok(())
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
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
    let err = |source| StateError::Write { path: path.to_path_buf(), source };
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    // Flushed before the folder is swapped in: a crash must not leave a render of empty files.
    file.sync_all().map_err(err)
}

/// Writes `path` durably and atomically, the one way every state file is written: a temporary
/// file beside it is written, flushed to disk (`fsync`), renamed over `path`, and the folder is
/// flushed too, so a crash or a power cut leaves either the old content or the new one, never an
/// empty or half-written file (a rename alone is not durable on ext4 or XFS until the folder's
/// entry reaches the disk).
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
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(dir).map_err(err)
}

/// Flushes a folder's entries (files created, renamed or removed in it) to disk. Windows has no
/// such call (and needs none: its renames are journaled with the file).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(dir: &Path) -> (State, Config) {
        let loaded =
            kind_parity_render::load(&kind_parity_render::LoadOptions { dir: dir.to_path_buf(), ..Default::default() })
                .unwrap();
        (State::new(&dir.join(".kind-parity"), &loaded.config.name), loaded.config)
    }

    #[test]
    fn a_deleted_ca_file_is_written_again_from_the_kept_ca() {
        // Regression (issue 12): a ca.crt deleted by hand was never written again, while render named it.
        let dir = tempfile::tempdir().unwrap();
        let (state, config) = demo(dir.path());
        let (secrets, _) = state.ensure_secrets(&config).unwrap();
        let ca = secrets.tls.expect("the demo has TLS").ca_cert;
        fs::remove_file(state.ca_file()).unwrap();
        let (_, changes) = state.ensure_secrets(&config).unwrap();
        assert!(changes.is_empty(), "nothing new was generated: {changes:?}");
        assert_eq!(fs::read_to_string(state.ca_file()).unwrap(), ca);
    }

    #[test]
    fn an_edited_ca_file_is_written_again_from_the_kept_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (state, config) = demo(dir.path());
        let (secrets, _) = state.ensure_secrets(&config).unwrap();
        fs::write(state.ca_file(), "not the CA\n").unwrap();
        state.ensure_secrets(&config).unwrap();
        assert_eq!(fs::read_to_string(state.ca_file()).unwrap(), secrets.tls.unwrap().ca_cert);
    }

    #[test]
    fn a_holder_is_read_from_the_lock_file() {
        let check = |text: &str, pid: Option<u32>, command: Option<&str>, shown: &str| {
            let holder = Holder::parse(text);
            assert_eq!(holder, Holder { pid, command: command.map(str::to_owned) }, "{text:?}");
            assert_eq!(holder.to_string(), shown, "{text:?}");
        };
        check("42 up\n", Some(42), Some("up"), "`up` (pid 42)");
        check("42\n", Some(42), None, "pid 42");
        check("", None, None, "another command");
        check("up 42", None, None, "another command");
    }
}
