//! The `kind` provider: detection, version check, create, delete, export logs.
//!
//! Every command gets `--kubeconfig <state>/kubeconfig`, so the user's `~/.kube/config` is never
//! touched; merging into it is a separate, explicit step.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command;
use crate::error::{Error, Result};

/// The oldest kind supported: the release of the pinned node image [`NODE_IMAGE`]. Node images
/// are built for their kind release (v0.29.0's carry containerd 2.x), and an older kind cannot
/// boot them.
pub const MINIMUM: Version = Version(0, 29, 0);

/// The node image of kind [`MINIMUM`], pinned by the digest its release lists
/// (kubernetes-sigs/kind `pkg/apis/config/defaults/image.go` at v0.29.0): the renderer's default
/// (`kind_parity_render::config::DEFAULT_NODE_IMAGE`, kept equal by a test of the lifecycle,
/// which depends on both; this layer depends on no renderer).
pub const NODE_IMAGE: &str =
    "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f";

/// A kind version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Reads `kind v0.29.0 go1.24.2 linux/amd64` (or `kind v0.30.0-alpha+abc …`).
pub fn parse_version(output: &str) -> Option<Version> {
    let word =
        output.split_whitespace().find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let core = word[1..].split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some(Version(parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// A detected `kind` binary.
#[derive(Debug, Clone)]
pub struct Kind {
    program: PathBuf,
    version: Version,
}

impl Kind {
    /// Finds `kind` on the process's PATH and checks its version.
    pub async fn detect() -> Result<Self> {
        Self::detect_in(std::env::var_os("PATH").unwrap_or_default()).await
    }

    /// Finds `kind` on the given PATH (tests use a folder with a stand-in script).
    pub async fn detect_in(path: impl AsRef<OsStr>) -> Result<Self> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let program = which::which_in("kind", Some(path), cwd)
            .map_err(|_| Error::KindMissing { minimum: MINIMUM.to_string() })?;
        Self::at(program).await
    }

    /// Uses the `kind` binary at `program`, checking its version.
    pub async fn at(program: PathBuf) -> Result<Self> {
        let out = command::run(&program, &[OsStr::new("version")]).await?;
        let text = out.stdout.trim().to_owned();
        let version = parse_version(&text).ok_or(Error::KindVersion { output: text })?;
        if version < MINIMUM {
            return Err(Error::KindTooOld { found: version.to_string(), minimum: MINIMUM.to_string() });
        }
        tracing::debug!(%version, program = %program.display(), "found kind");
        Ok(Self { program, version })
    }

    /// The version found.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The names of the clusters kind knows.
    pub async fn clusters(&self) -> Result<Vec<String>> {
        let out = command::run(&self.program, &[OsStr::new("get"), OsStr::new("clusters")]).await?;
        // "No kind clusters found." goes to stderr; stdout holds one name per line.
        Ok(out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
    }

    /// The arguments of `kind create cluster`.
    pub fn create_args(
        name: &str,
        config: &Path,
        node_image: &str,
        kubeconfig: &Path,
        wait: Duration,
    ) -> Vec<OsString> {
        vec![
            "create".into(),
            "cluster".into(),
            "--name".into(),
            name.into(),
            "--config".into(),
            config.into(),
            "--image".into(),
            node_image.into(),
            "--kubeconfig".into(),
            kubeconfig.into(),
            "--wait".into(),
            format!("{}s", wait.as_secs()).into(),
        ]
    }

    /// Creates the cluster from the rendered kind config, writing only the given kubeconfig.
    pub async fn create(
        &self,
        name: &str,
        config: &Path,
        node_image: &str,
        kubeconfig: &Path,
        wait: Duration,
    ) -> Result<()> {
        let args = Self::create_args(name, config, node_image, kubeconfig, wait);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        command::run(&self.program, &args).await.map(drop)
    }

    /// Deletes the cluster; its kubeconfig entry is removed from the given file only.
    pub async fn delete(&self, name: &str, kubeconfig: &Path) -> Result<()> {
        let args: [&OsStr; 6] = [
            "delete".as_ref(),
            "cluster".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
        ];
        command::run(&self.program, &args).await.map(drop)
    }

    /// Loads local images into every node (`kind load docker-image`). The interim loader: the
    /// images layer's own (one export streamed to all nodes, skip by digest) replaces it.
    pub async fn load_docker_images(&self, name: &str, images: &[String]) -> Result<()> {
        let mut args: Vec<&OsStr> = vec!["load".as_ref(), "docker-image".as_ref(), "--name".as_ref(), name.as_ref()];
        args.extend(images.iter().map(|i| OsStr::new(i.as_str())));
        command::run(&self.program, &args).await.map(drop)
    }

    /// Merges the cluster's context into the user's kubeconfig (`KUBECONFIG`, else
    /// `~/.kube/config`): only when the user asks for it (`--export-kubeconfig`).
    pub async fn export_kubeconfig(&self, name: &str) -> Result<()> {
        let args: [&OsStr; 4] = ["export".as_ref(), "kubeconfig".as_ref(), "--name".as_ref(), name.as_ref()];
        command::run(&self.program, &args).await.map(drop)
    }

    /// Writes the cluster's logs (`kind export logs`) into `dir`, for a failed create or up.
    pub async fn export_logs(&self, name: &str, dir: &Path) -> Result<()> {
        let args: [&OsStr; 5] = ["export".as_ref(), "logs".as_ref(), dir.as_os_str(), "--name".as_ref(), name.as_ref()];
        command::run(&self.program, &args).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kind_versions() {
        assert_eq!(parse_version("kind v0.29.0 go1.24.2 linux/amd64"), Some(Version(0, 29, 0)));
        assert_eq!(parse_version("kind v0.30.0-alpha+1f2e3d go1.25 darwin/arm64"), Some(Version(0, 30, 0)));
        assert_eq!(parse_version("kind version 0.8.1"), None);
        assert_eq!(parse_version("garbage"), None);
        assert!(Version(0, 28, 9) < MINIMUM && MINIMUM <= Version(0, 29, 0));
    }
}
