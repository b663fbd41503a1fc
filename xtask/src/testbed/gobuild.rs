//! Go programs built from the Go module proxy through a wrapper module, cached by version.
//!
//! `go install M@V` refuses a module whose go.mod has replace directives, and module zips omit
//! folders with their own go.mod (go.dev/ref/mod, "zip files"): Kubernetes replaces its staging
//! modules with `./staging/src/k8s.io/*`, etcd's server replaces its siblings with `../api` and
//! so on. A wrapper module requires the program's module at its version, copies its
//! requirements, and maps each replaced module to its published version
//! (kubernetes/kubernetes#79384 describes the pattern). Replace directives of a dependency are
//! ignored by Go, so a wrapper needs them only where the module's own requirements say `v0.0.0`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use super::{Testbed, proc, say, write_file};

/// The stamp a finished build leaves in its cache folder.
pub const COMPLETE: &str = ".complete";

/// What a wrapper module takes over from the go.mod of the module it builds. Go applies
/// `replace` and `exclude` only in the main module (go.dev/ref/mod, "replace directive"), so
/// whatever of them the build needs must be the wrapper's own.
#[derive(Clone, Copy)]
pub enum Wrap<'a> {
    /// Only require the module: its replaces are not needed once it is a dependency (etcd's
    /// server replaces its siblings with `../api`…, which its requirements name at the same version).
    Require,
    /// Copy its requirements, replaces and excludes. Local replaces (`./staging/src/k8s.io/api`)
    /// become the replaced module at `local_at`, the version it is published at (`v0.33.1` for
    /// Kubernetes' staging); others (Traefik's forks) are kept as they are.
    Copy {
        /// The version of the modules a local replace points at.
        local_at: Option<&'a str>,
    },
}

/// One Go module's programs, built with one wrapper module.
pub struct GoBuild<'a> {
    /// The cache folder's name, without the version (`kubernetes`).
    pub name: &'a str,
    /// The module the programs live in (`k8s.io/kubernetes`).
    pub module: &'a str,
    /// Its version, with the `v`.
    pub version: &'a str,
    /// What the wrapper takes over from the module's own go.mod.
    pub wrap: Wrap<'a>,
    /// `(package, binary name)` pairs.
    pub programs: &'a [(&'a str, &'a str)],
    /// `-ldflags` (version stamps).
    pub ldflags: String,
    /// How long the cold build takes here, for the message that announces it.
    pub expected: &'a str,
}

impl GoBuild<'_> {
    /// The folder with the built programs, building them first when the cache lacks them.
    pub fn ensure(&self, tb: &Testbed) -> Result<PathBuf> {
        let dir = tb.cache(&format!("{}-{}", self.name, self.version));
        let bin = dir.join("bin");
        if dir.join(COMPLETE).exists() && self.programs.iter().all(|(_, b)| bin.join(b).is_file()) {
            return Ok(bin);
        }
        let go = super::which("go").context(
            "go is not installed: the test bed builds Kubernetes, etcd and CoreDNS from the Go module proxy; install Go 1.24 or newer (https://go.dev/doc/install)",
        )?;
        std::fs::create_dir_all(&bin)?;
        let log = tb.log(&format!("build-{}", self.name));
        say(format!(
            "building {} {} from the Go module proxy (cold: about {} on 2 cores; cached after; log {})",
            self.module,
            self.version,
            self.expected,
            log.display()
        ));
        write_file(&dir.join("go.mod"), self.go_mod(&go, &dir)?.as_bytes(), 0o644)?;
        let started = Instant::now();
        for (package, binary) in self.programs {
            let step = Instant::now();
            let out = bin.join(format!("{binary}.tmp"));
            proc::logged(
                Command::new(&go)
                    .current_dir(&dir)
                    .env("CGO_ENABLED", "0")
                    .env("GOFLAGS", "-mod=mod")
                    .args(["build", "-trimpath", "-ldflags", &self.ldflags, "-o"])
                    .arg(&out)
                    .arg(package),
                &log,
                &format!("go build {package}@{}", self.version),
            )?;
            std::fs::rename(&out, bin.join(binary))?;
            say(format!("  built {binary} in {:.0}s", step.elapsed().as_secs_f64()));
        }
        std::fs::write(dir.join(COMPLETE), format!("{:.0}s\n", started.elapsed().as_secs_f64()))?;
        Ok(bin)
    }

    /// The wrapper's go.mod.
    fn go_mod(&self, go: &Path, dir: &Path) -> Result<String> {
        wrapper(self.name, self.module, self.version, &self.upstream_go_mod(go, dir)?, self.wrap)
    }

    /// The module's own go.mod, through `go mod download` (the proxy and its checksum database).
    fn upstream_go_mod(&self, go: &Path, dir: &Path) -> Result<String> {
        let json = proc::output(
            Command::new(go)
                .current_dir(dir)
                .env("GOFLAGS", "-mod=mod")
                .args(["mod", "download", "-json"])
                .arg(format!("{}@{}", self.module, self.version)),
        )
        .with_context(|| format!("downloading {}@{} from the Go module proxy", self.module, self.version))?;
        let path = json
            .lines()
            .find_map(|l| l.trim().strip_prefix("\"GoMod\": \"").and_then(|r| r.strip_suffix("\",")))
            .with_context(|| format!("`go mod download` named no go.mod for {}: {json}", self.module))?;
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
    }
}

/// The go.mod of the wrapper module `name` that builds `module` at `version`, whose own go.mod is
/// `upstream`.
fn wrapper(name: &str, module: &str, version: &str, upstream: &str, wrap: Wrap<'_>) -> Result<String> {
    let mut text = format!(
        "// A wrapper module written by `cargo xtask testbed`: builds {module} {version} from the Go module proxy.\nmodule kind-parity.local/testbed/{name}\n\n"
    );
    // The upstream `go` and `godebug` lines keep the programs' run-time defaults.
    for line in upstream.lines().filter(|l| l.starts_with("go ") || l.starts_with("godebug ")) {
        writeln!(text, "{line}")?;
    }
    writeln!(text, "\nrequire {module} {version}")?;
    let Wrap::Copy { local_at } = wrap else { return Ok(text) };
    writeln!(text, "\nrequire (")?;
    for line in statements(upstream, "require") {
        writeln!(text, "\t{line}")?;
    }
    writeln!(text, ")")?;
    let replaces = statements(upstream, "replace");
    if !replaces.is_empty() {
        writeln!(text, "\nreplace (")?;
        for line in replaces {
            let Some((from, to)) = line.split_once(" => ") else { continue };
            if to.starts_with("./") || to.starts_with("../") {
                let at = local_at.with_context(|| {
                    format!("{module} replaces `{from}` with the folder {to}: name the version it is published at")
                })?;
                let replaced = from.split_whitespace().next().unwrap_or(from);
                writeln!(text, "\t{replaced} => {replaced} {at}")?;
            } else {
                writeln!(text, "\t{from} => {to}")?;
            }
        }
        writeln!(text, ")")?;
    }
    for line in statements(upstream, "exclude") {
        writeln!(text, "\nexclude {line}")?;
    }
    Ok(text)
}

/// The statements of `keyword`, from its blocks and its one-line forms, trimmed.
fn statements(go_mod: &str, keyword: &str) -> Vec<String> {
    let mut out: Vec<String> = blocks(go_mod, keyword)
        .concat()
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let prefix = format!("{keyword} ");
    out.extend(
        go_mod
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter(|rest| !rest.trim_start().starts_with('('))
            .map(|rest| rest.trim().to_owned()),
    );
    out
}

/// The bodies of `keyword ( … )` blocks of a go.mod.
fn blocks(go_mod: &str, keyword: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in go_mod.lines() {
        match &mut current {
            None if line.trim() == format!("{keyword} (") => current = Some(String::new()),
            Some(body) if line.trim() == ")" => {
                out.push(std::mem::take(body));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Fails when `binary --version`-style output does not name `version` (a build stamped wrong).
pub fn check_version(binary: &Path, args: &[&str], version: &str) -> Result<()> {
    let out = proc::output(Command::new(binary).args(args))?;
    if !out.contains(version) {
        bail!("{} reports `{}`, not {version}: remove its cache folder and rerun", binary.display(), out.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Wrap, blocks, wrapper};

    const KUBERNETES: &str = "module k8s.io/kubernetes\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nrequire (\n\tgithub.com/x/y v1.2.3\n\tk8s.io/api v0.0.0\n)\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n";
    const TRAEFIK: &str = "module github.com/traefik/traefik/v3\n\ngo 1.24.0\n\nrequire github.com/gorilla/mux v1.8.1\n\nrequire (\n\tgithub.com/a/b v1.0.0 // indirect\n)\n\nreplace (\n\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59\n)\n\nexclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible\n";

    #[test]
    fn kubernetes_staging_replaces_become_published_versions() {
        let go_mod =
            wrapper("kubernetes", "k8s.io/kubernetes", "v1.33.1", KUBERNETES, Wrap::Copy { local_at: Some("v0.33.1") })
                .unwrap();
        assert!(go_mod.contains("\ngo 1.24.0\ngodebug default=go1.24\n"), "{go_mod}");
        assert!(go_mod.contains("\nrequire k8s.io/kubernetes v1.33.1\n"), "{go_mod}");
        assert!(go_mod.contains("\tgithub.com/x/y v1.2.3\n"), "{go_mod}");
        assert!(go_mod.contains("\tk8s.io/api => k8s.io/api v0.33.1\n"), "{go_mod}");
        assert!(!go_mod.contains("./staging"), "{go_mod}");
    }

    #[test]
    fn a_local_replace_without_a_version_is_an_error() {
        let err = wrapper("k", "k8s.io/kubernetes", "v1.33.1", KUBERNETES, Wrap::Copy { local_at: None }).unwrap_err();
        assert!(err.to_string().contains("replaces `k8s.io/api` with the folder ./staging/src/k8s.io/api"), "{err}");
    }

    #[test]
    fn forks_and_excludes_are_kept_as_they_are() {
        let go_mod =
            wrapper("traefik", "github.com/traefik/traefik/v3", "v3.5.3", TRAEFIK, Wrap::Copy { local_at: None })
                .unwrap();
        assert!(
            go_mod
                .contains("\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59\n"),
            "{go_mod}"
        );
        assert!(
            go_mod.contains("\nexclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible\n"),
            "{go_mod}"
        );
        // Requirements of both forms, their `// indirect` marks dropped (they do not change the build).
        assert!(go_mod.contains("\tgithub.com/gorilla/mux v1.8.1\n"), "{go_mod}");
        assert!(go_mod.contains("\tgithub.com/a/b v1.0.0\n"), "{go_mod}");
    }

    #[test]
    fn require_only_takes_nothing_over() {
        let go_mod = wrapper("etcd", "go.etcd.io/etcd/server/v3", "v3.5.21", TRAEFIK, Wrap::Require).unwrap();
        assert!(go_mod.ends_with("\nrequire go.etcd.io/etcd/server/v3 v3.5.21\n"), "{go_mod}");
    }

    #[test]
    fn blocks_are_the_bodies_of_their_keyword() {
        let go_mod = "module m\n\nrequire (\n\ta v1\n)\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\nrequire (\n\tb v2\n)\n";
        assert_eq!(blocks(go_mod, "require"), vec!["\ta v1\n".to_owned(), "\tb v2\n".to_owned()]);
        assert_eq!(blocks(go_mod, "replace"), vec!["\tk8s.io/api => ./staging/src/k8s.io/api\n".to_owned()]);
    }
}
