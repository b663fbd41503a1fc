//! A build context as Docker sees it: the files `.dockerignore` leaves, a digest of everything
//! that decides the image (files, modes, Dockerfile path, build args, target), so an unchanged
//! context gets the same tag and skips the build, and a deterministic tar of them.
//!
//! [`Snapshot::read`] reads every file once, in chunks, to hash it; [`Snapshot::tar_stream`]
//! reads them a second time, as the engine takes the tar, on a blocking thread through a small
//! bounded channel: the tar is never whole in memory, and a file that changed since it was hashed
//! stops the stream, so an image never holds content other than its tag says.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// Bytes of tar gathered before they are handed to the engine.
const TAR_CHUNK_BYTES: usize = 256 * 1024;
/// Chunks the channel to the engine holds: the most the reading thread runs ahead.
const TAR_CHANNEL_CHUNKS: usize = 4;

/// One file of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the context, with `/` separators.
    pub path: String,
    /// Where it is on disk.
    pub source: PathBuf,
    /// Unix permission bits (0o644, 0o755).
    pub mode: u32,
}

/// `.dockerignore` rules.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Parses `.dockerignore` text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            // Docker cleans patterns like filepath.Clean and anchors them at the context root.
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
            let glob = GlobBuilder::new(pattern).literal_separator(true).build().map_err(|source| {
                Error::IgnorePattern { file: file.to_path_buf(), line: i + 1, pattern: raw.to_owned(), source }
            })?;
            rules.push((glob.compile_matcher(), exception));
        }
        Ok(Self { rules })
    }

    /// Whether `path` (relative, `/`-separated) is excluded: the last rule matching the path or
    /// one of its parent folders decides.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (glob, exception) in &self.rules {
            let mut candidate = Some(path);
            let mut hit = false;
            while let Some(p) = candidate {
                if glob.is_match(p) {
                    hit = true;
                    break;
                }
                candidate = p.rfind('/').map(|i| &p[..i]);
            }
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

/// Collects the files of the context at `dir`, sorted by path. The Dockerfile and
/// `.dockerignore` are always included, as Docker does.
pub fn collect(dir: &Path, dockerfile: &str) -> Result<Vec<Entry>> {
    let ignore_file = dir.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_file) {
        Ok(text) => Ignore::parse(&text, &ignore_file)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(source) => return Err(Error::ReadContext { path: ignore_file, source }),
    };
    if !dir.join(dockerfile).is_file() {
        return Err(Error::MissingDockerfile { path: dir.join(dockerfile) });
    }
    let mut entries = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let folder = dir.join(&rel);
        let read = std::fs::read_dir(&folder).map_err(|source| Error::ReadContext { path: folder.clone(), source })?;
        for item in read {
            let item = item.map_err(|source| Error::ReadContext { path: folder.clone(), source })?;
            let rel_path = rel.join(item.file_name());
            let key = rel_path.to_string_lossy().replace('\\', "/");
            let meta = item.metadata().map_err(|source| Error::ReadContext { path: item.path(), source })?;
            let always = key == dockerfile || key == ".dockerignore";
            if meta.is_dir() {
                // Descend even into excluded folders: an exception may bring a file back.
                stack.push(rel_path);
            } else if meta.is_file() && (always || !ignore.excludes(&key)) {
                entries.push(Entry { path: key, source: item.path(), mode: mode_of(&meta) });
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0o644
}

/// A build context read once: the files to send and the digest that names the image.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The files, sorted by path.
    pub entries: Vec<Entry>,
    /// The digest of everything that decides the image, as [`digest`] computes it.
    pub digest: String,
    /// Each entry's length and SHA-256 when it was hashed, to check the tar against.
    files: Vec<(u64, [u8; 32])>,
}

impl Snapshot {
    /// Collects the context at `dir` and hashes it with the Dockerfile path, the build args and
    /// the target, reading every file once. Blocking IO: async code runs it on a blocking thread.
    pub fn read(dir: &Path, dockerfile: &str, args: &BTreeMap<String, String>, target: Option<&str>) -> Result<Self> {
        Self::hash(collect(dir, dockerfile)?, dockerfile, args, target)
    }

    fn hash(
        entries: Vec<Entry>,
        dockerfile: &str,
        args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Self> {
        let mut hasher = Hasher::default();
        let mut files = Vec::with_capacity(entries.len());
        for entry in &entries {
            let (mut file, len) = open(entry)?;
            hasher.start_file(entry, len);
            let mut one = Sha256::new();
            let read = copy_exact(&mut file, len, entry, &mut |chunk| {
                hasher.content(chunk);
                one.update(chunk);
            })?;
            if read != len {
                return Err(Error::ContextChanged { path: entry.source.clone() });
            }
            files.push((len, one.finalize().into()));
        }
        let digest = hasher.finish(dockerfile, args, target);
        Ok(Self { entries, digest, files })
    }

    /// The context as a tar with fixed owners and times (the same files give the same bytes),
    /// written on a blocking thread as the returned stream is read. Each file is checked against
    /// what was hashed: one that changed fails the stream. The handle says how the writing
    /// ended; when the stream failed, it holds the error that says why.
    pub fn tar_stream(
        &self,
    ) -> (impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, tokio::task::JoinHandle<Result<()>>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(TAR_CHANNEL_CHUNKS);
        let snapshot = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let out = ChannelWriter { sender: sender.clone(), buffer: BytesMut::new(), poisoned: false };
            let result = snapshot.write_tar(out);
            if let Err(error) = &result {
                // The engine must not build from a tar cut short: the body fails instead of ending.
                let _ = sender.blocking_send(Err(std::io::Error::other(error.to_string())));
            }
            result
        });
        let body = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        (body, writer)
    }

    fn write_tar(&self, out: ChannelWriter) -> Result<()> {
        let mut builder = tar::Builder::new(out);
        let written = self.write_entries(&mut builder);
        if written.is_err() {
            // Dropping the builder writes the end of the archive: none of it may reach the engine.
            builder.get_mut().poisoned = true;
            return written;
        }
        let mut out = builder.into_inner().map_err(|source| tar_error(&self.entries, source))?;
        out.send_buffer().map_err(|source| tar_error(&self.entries, source))
    }

    fn write_entries(&self, builder: &mut tar::Builder<ChannelWriter>) -> Result<()> {
        for (entry, (len, sha)) in self.entries.iter().zip(&self.files) {
            let (file, now) = open(entry)?;
            if now != *len {
                return Err(Error::ContextChanged { path: entry.source.clone() });
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(*len);
            header.set_mode(entry.mode);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            let mut checked = Checked { inner: file.take(*len), sha: Sha256::new(), read: 0 };
            builder
                .append_data(&mut header, &entry.path, &mut checked)
                .map_err(|source| Error::ReadContext { path: entry.source.clone(), source })?;
            if checked.read != *len || <[u8; 32]>::from(checked.sha.finalize()) != *sha {
                return Err(Error::ContextChanged { path: entry.source.clone() });
            }
        }
        Ok(())
    }
}

fn tar_error(entries: &[Entry], source: std::io::Error) -> Error {
    let path = entries.last().map_or_else(|| PathBuf::from("(tar)"), |e| e.source.clone());
    Error::ReadContext { path, source }
}

/// A reader that hashes and counts what passes through it.
struct Checked<R> {
    inner: R,
    sha: Sha256,
    read: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Gathers the tar into chunks and sends them to the engine's side of the channel.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buffer: BytesMut,
    /// Set once the tar failed: nothing more is sent.
    poisoned: bool,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.poisoned {
            return Err(std::io::Error::other("the tar already failed"));
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        // The receiver is gone when the build stopped (an engine error, a cancelled command).
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading the context"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.poisoned {
            return Err(std::io::Error::other("the tar already failed"));
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= TAR_CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens an entry's file and says its length.
fn open(entry: &Entry) -> Result<(std::fs::File, u64)> {
    let read_error = |source| Error::ReadContext { path: entry.source.clone(), source };
    let file = std::fs::File::open(&entry.source).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    Ok((file, len))
}

/// Reads at most `len` bytes of `file` in chunks into `each`; returns how many there were.
fn copy_exact(file: &mut std::fs::File, len: u64, entry: &Entry, each: &mut dyn FnMut(&[u8])) -> Result<u64> {
    let mut limited = file.take(len);
    let mut buffer = vec![0; 64 * 1024];
    let mut read = 0;
    loop {
        let n = match limited.read(&mut buffer) {
            Ok(0) => return Ok(read),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::ReadContext { path: entry.source.clone(), source }),
        };
        each(&buffer[..n]);
        read += n as u64;
    }
}

/// The digest of a context, fed one file at a time.
#[derive(Default)]
struct Hasher(Sha256);

impl Hasher {
    fn start_file(&mut self, entry: &Entry, len: u64) {
        self.0.update(entry.path.as_bytes());
        self.0.update([0]);
        self.0.update(entry.mode.to_le_bytes());
        self.0.update(len.to_le_bytes());
    }

    fn content(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    fn finish(mut self, dockerfile: &str, args: &BTreeMap<String, String>, target: Option<&str>) -> String {
        self.0.update(b"\0dockerfile\0");
        self.0.update(dockerfile.as_bytes());
        for (k, v) in args {
            self.0.update(b"\0arg\0");
            self.0.update(k.as_bytes());
            self.0.update([0]);
            self.0.update(v.as_bytes());
        }
        self.0.update(b"\0target\0");
        self.0.update(target.unwrap_or_default().as_bytes());
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The digest that names an image: the files (path, mode, content), the Dockerfile path, the
/// build args and the target, as lowercase hex. Reads every file once, in chunks.
pub fn digest(
    entries: &[Entry],
    dockerfile: &str,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<String> {
    Snapshot::hash(entries.to_vec(), dockerfile, args, target).map(|snapshot| snapshot.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rules: &str, path: &str, excluded: bool) {
        let ignore = Ignore::parse(rules, Path::new(".dockerignore")).unwrap();
        assert_eq!(ignore.excludes(path), excluded, "rules {rules:?} on {path}");
    }

    #[test]
    fn dockerignore_follows_dockers_rules() {
        check("*.pyc", "a.pyc", true);
        // Unlike .gitignore, patterns are anchored at the context root.
        check("*.pyc", "pkg/a.pyc", false);
        check("**/*.pyc", "pkg/deep/a.pyc", true);
        check("node_modules", "node_modules/x/y.js", true);
        check("/build/", "build/out.o", true);
        check("docs\n!docs/keep.md", "docs/keep.md", false);
        check("docs\n!docs/keep.md", "docs/drop.md", true);
        check("!keep\n*", "keep", true);
        check("# comment\n\n", "anything", false);
        check("src/*/gen", "src/a/gen/file.rs", true);
        check("src/*/gen", "src/a/b/gen/file.rs", false);
    }

    /// A context with a nested folder, an executable, an ignored file and an exception.
    fn sample_context() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str, mode: u32| {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("Dockerfile", "FROM scratch\nCOPY . /app/\n", 0o644);
        write(".dockerignore", "*.log\n!keep.log\n", 0o644);
        write("bin/run.sh", "#!/bin/sh\nexec app\n", 0o755);
        write("src/main.txt", "hello\n", 0o644);
        write("debug.log", "noise", 0o644);
        write("keep.log", "kept", 0o600);
        dir
    }

    #[test]
    fn the_digest_of_a_context_stays_what_it_was() {
        // Content tags name images already built and loaded into nodes: the same files, modes,
        // Dockerfile, args and target must keep giving the same digest, or every image is
        // rebuilt and sent again. This value is the one the first implementation gave.
        let dir = sample_context();
        let entries = collect(dir.path(), "Dockerfile").unwrap();
        let args = BTreeMap::from([("VERSION".to_owned(), "1".to_owned())]);
        assert_eq!(
            digest(&entries, "Dockerfile", &args, Some("runtime")).unwrap(),
            "16f2a6993bf91e152df43ac27c83f61fc71ddcbe7280223f1e24e7dc70c1d1f0"
        );
        let snapshot = Snapshot::read(dir.path(), "Dockerfile", &args, Some("runtime")).unwrap();
        assert_eq!(snapshot.digest, "16f2a6993bf91e152df43ac27c83f61fc71ddcbe7280223f1e24e7dc70c1d1f0");
    }

    /// The whole tar a snapshot streams, each chunk's size, and how the writing ended.
    async fn streamed(snapshot: &Snapshot) -> (Vec<u8>, Vec<usize>, Result<()>) {
        use futures::StreamExt as _;
        let (stream, writer) = snapshot.tar_stream();
        let chunks: Vec<std::io::Result<Bytes>> = stream.collect().await;
        let mut tar = Vec::new();
        let mut sizes = Vec::new();
        for chunk in chunks {
            let Ok(chunk) = chunk else { break };
            sizes.push(chunk.len());
            tar.extend_from_slice(&chunk);
        }
        (tar, sizes, writer.await.unwrap())
    }

    #[tokio::test]
    async fn the_tar_holds_the_files_with_fixed_owners_and_times() {
        let dir = sample_context();
        let snapshot = Snapshot::read(dir.path(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        let (tar, _, written) = streamed(&snapshot).await;
        written.unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!((header.mtime().unwrap(), header.uid().unwrap(), header.gid().unwrap()), (0, 0, 0));
            let (path, mode) = (entry.path().unwrap().display().to_string(), header.mode().unwrap());
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            found.push((path, mode, text));
        }
        let expected = [
            (".dockerignore", 0o644, "*.log\n!keep.log\n"),
            ("Dockerfile", 0o644, "FROM scratch\nCOPY . /app/\n"),
            ("bin/run.sh", 0o755, "#!/bin/sh\nexec app\n"),
            ("keep.log", 0o600, "kept"),
            ("src/main.txt", 0o644, "hello\n"),
        ];
        let expected: Vec<(String, u32, String)> =
            expected.iter().map(|(p, m, t)| ((*p).to_owned(), *m, (*t).to_owned())).collect();
        assert_eq!(found, expected);
    }

    #[tokio::test]
    async fn the_same_files_give_the_same_tar() {
        let dir = sample_context();
        let first = Snapshot::read(dir.path(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        let second = Snapshot::read(dir.path(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        assert_eq!(streamed(&first).await.0, streamed(&second).await.0);
    }

    #[tokio::test]
    async fn the_tar_arrives_in_bounded_chunks() {
        // Regression: the whole tar was built in memory before the engine got a byte of it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY blob /blob\n").unwrap();
        std::fs::write(dir.path().join("blob"), vec![7u8; 8 * TAR_CHUNK_BYTES]).unwrap();
        let snapshot = Snapshot::read(dir.path(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        let (tar, sizes, written) = streamed(&snapshot).await;
        written.unwrap();
        assert!(tar.len() > 8 * TAR_CHUNK_BYTES, "{} bytes", tar.len());
        assert!(sizes.len() >= 8 && sizes.iter().all(|&n| n < 2 * TAR_CHUNK_BYTES), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_file_changed_since_it_was_hashed_fails_the_stream() {
        let dir = sample_context();
        let snapshot = Snapshot::read(dir.path(), "Dockerfile", &BTreeMap::new(), None).unwrap();
        // Same length, other content: only the check against the hash can tell.
        std::fs::write(dir.path().join("src/main.txt"), "HELLO\n").unwrap();
        let (stream, writer) = snapshot.tar_stream();
        let chunks: Vec<std::io::Result<Bytes>> = futures::StreamExt::collect(stream).await;
        assert!(chunks.last().is_some_and(Result::is_err), "the body fails instead of ending");
        let error = writer.await.unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{} changed while its build context was read", dir.path().join("src/main.txt").display())
        );
    }

    #[test]
    fn a_bad_pattern_names_the_line() {
        let err = Ignore::parse("ok\n[unclosed", Path::new("ctx/.dockerignore")).unwrap_err();
        assert!(err.to_string().starts_with("ctx/.dockerignore: line 2 `[unclosed` is not a valid pattern"), "{err}");
    }
}
