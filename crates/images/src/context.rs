//! A build context as Docker sees it: the files `.dockerignore` leaves, a deterministic tar of
//! them, and a digest of everything that decides the image (files, modes, Dockerfile path,
//! build args, target), so an unchanged context gets the same tag and skips the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

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

/// A tar of the entries with fixed owners and times, so the same files give the same bytes.
pub fn tar(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let data = std::fs::read(&e.source).map_err(|source| Error::ReadContext { path: e.source.clone(), source })?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(e.mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &e.path, data.as_slice())
            .map_err(|source| Error::ReadContext { path: e.source.clone(), source })?;
    }
    builder.into_inner().map_err(|source| Error::ReadContext { path: PathBuf::from("(tar)"), source })
}

/// The digest that names an image: the files (path, mode, content), the Dockerfile path, the
/// build args and the target, as lowercase hex.
pub fn digest(
    entries: &[Entry],
    dockerfile: &str,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<String> {
    let mut h = Sha256::new();
    for e in entries {
        let data = std::fs::read(&e.source).map_err(|source| Error::ReadContext { path: e.source.clone(), source })?;
        h.update(e.path.as_bytes());
        h.update([0]);
        h.update(e.mode.to_le_bytes());
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    h.update(b"\0dockerfile\0");
    h.update(dockerfile.as_bytes());
    for (k, v) in args {
        h.update(b"\0arg\0");
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.update(b"\0target\0");
    h.update(target.unwrap_or_default().as_bytes());
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
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

    #[test]
    fn a_bad_pattern_names_the_line() {
        let err = Ignore::parse("ok\n[unclosed", Path::new("ctx/.dockerignore")).unwrap_err();
        assert!(err.to_string().starts_with("ctx/.dockerignore: line 2 `[unclosed` is not a valid pattern"), "{err}");
    }
}
