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

/// One Go module's programs, built with one wrapper module.
pub struct GoBuild<'a> {
    /// The cache folder's name, without the version (`kubernetes`).
    pub name: &'a str,
    /// The module the programs live in (`k8s.io/kubernetes`).
    pub module: &'a str,
    /// Its version, with the `v`.
    pub version: &'a str,
    /// Copy the module's own requirements and turn its local replaces into `dir => module version`:
    /// the version each replaced module is published at (`v0.33.1` for Kubernetes' staging).
    pub replaced_at: Option<&'a str>,
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
        let mut text = format!(
            "// A wrapper module written by `cargo xtask testbed`: builds {} {} from the Go module proxy.\nmodule kind-parity.local/testbed/{}\n\n",
            self.module, self.version, self.name
        );
        let upstream = self.upstream_go_mod(go, dir)?;
        // The upstream `go` and `godebug` lines keep the programs' run-time defaults.
        for line in upstream.lines().filter(|l| l.starts_with("go ") || l.starts_with("godebug ")) {
            writeln!(text, "{line}")?;
        }
        writeln!(text, "\nrequire {} {}", self.module, self.version)?;
        if let Some(at) = self.replaced_at {
            for block in blocks(&upstream, "require") {
                writeln!(text, "\nrequire (\n{block})")?;
            }
            writeln!(text, "\nreplace (")?;
            for line in blocks(&upstream, "replace").concat().lines() {
                if let Some((module, target)) = line.trim().split_once(" => ")
                    && (target.starts_with("./") || target.starts_with("../"))
                {
                    writeln!(text, "\t{module} => {module} {at}")?;
                }
            }
            writeln!(text, ")")?;
        }
        Ok(text)
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
    use super::blocks;

    #[test]
    fn blocks_are_the_bodies_of_their_keyword() {
        let go_mod = "module m\n\nrequire (\n\ta v1\n)\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\nrequire (\n\tb v2\n)\n";
        assert_eq!(blocks(go_mod, "require"), vec!["\ta v1\n".to_owned(), "\tb v2\n".to_owned()]);
        assert_eq!(blocks(go_mod, "replace"), vec!["\tk8s.io/api => ./staging/src/k8s.io/api\n".to_owned()]);
    }
}
