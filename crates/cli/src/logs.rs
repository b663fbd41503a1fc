//! `kind-parity logs`: a diagnostics bundle in one folder: the environment's status, the nodes,
//! every pod's description, logs and events in the environment's, the ingress's and
//! kube-system's namespaces, kind's own node logs (kind path), and the rendered files. Every
//! generated secret is redacted from every file, plain or base64, so the bundle can be shared.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::kind::Kind;
use kind_parity_render::Secrets;

use crate::args::{ClusterKind, GlobalArgs, LogsArgs};
use crate::cluster::{load_inventory, read_target};
use crate::state::State;

/// The ingress controller's namespace, shared by every environment of a cluster.
const INGRESS_NAMESPACE: &str = "kind-parity-ingress";

const REDACTED: &str = "<redacted by kind-parity>";

pub(crate) async fn logs(global: &GlobalArgs, args: &LogsArgs) -> Result<u8> {
    let loaded = crate::load_config(global)?;
    let config = &loaded.config;
    let state = State::new(&global.state_dir, &config.name);
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let now = time::OffsetDateTime::now_utc();
            let stamp = format!(
                "{:04}{:02}{:02}-{:02}{:02}{:02}",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            state.root().join("diagnostics").join(stamp)
        }
    };
    private_dir(&dir)?;
    let mut unavailable = Vec::new();

    // The cluster: status, nodes, pods, logs, events.
    let target = read_target(config, &state, &args.target);
    match kind_parity_cluster::connect(&target).await {
        Ok((client, context)) => {
            let inventory = load_inventory(&state)?;
            let objects: Vec<ObjectRef> = inventory.objects.keys().cloned().collect();
            match kind_parity_cluster::status::collect(&client, &objects).await {
                Ok(status) => {
                    let json = serde_json::json!({"environment": config.name, "context": context, "status": status});
                    std::fs::write(dir.join("status.json"), serde_json::to_string_pretty(&json)?)?;
                }
                Err(e) => unavailable.push(format!("status: {e}")),
            }
            let namespaces =
                vec![config.namespace().to_owned(), INGRESS_NAMESPACE.to_owned(), "kube-system".to_owned()];
            match kind_parity_cluster::bundle::collect(&client, &namespaces, &dir.join("cluster")).await {
                Ok(collected) => unavailable.extend(collected.unavailable),
                Err(e) => unavailable.push(format!("cluster: {e}")),
            }
        }
        Err(e) => unavailable.push(format!("cluster: {e}")),
    }

    // kind's own logs of the nodes (kubelet, containerd, journal).
    if args.target.cluster == ClusterKind::Kind {
        match Kind::detect().await {
            Ok(kind) => {
                if let Err(e) = kind.export_logs(&config.name, &dir.join("kind")).await {
                    unavailable.push(format!("kind export logs: {e}"));
                }
            }
            Err(e) => unavailable.push(format!("kind export logs: {e}")),
        }
    }

    // What was rendered.
    let rendered = state.rendered();
    if rendered.is_dir() {
        copy_tree(&rendered, &dir.join("rendered"))?;
    } else {
        unavailable.push(format!("rendered files: {} does not exist (run `kind-parity render`)", rendered.display()));
    }
    if !unavailable.is_empty() {
        std::fs::write(dir.join("unavailable.txt"), unavailable.join("\n") + "\n")?;
    }

    // Nothing secret leaves in the bundle.
    // Unreadable secrets cannot be redacted by value; the bundle is still written.
    let secrets = state.read_secrets().ok().flatten();
    let files = redact_tree(&dir, secrets.as_ref())?;
    if !global.quiet {
        for line in &unavailable {
            eprintln!("  unavailable: {line}");
        }
        eprintln!("wrote {files} files to {} (secrets redacted)", dir.display());
    }
    println!("{}", dir.display());
    Ok(0)
}

fn private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target: PathBuf = to.join(entry.path().strip_prefix(from).expect("walkdir stays under its root"));
        if entry.file_type().is_dir() {
            private_dir(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The strings to remove: each generated value and private key, as is and base64-encoded (as
/// Secret manifests hold them).
fn needles(secrets: &Secrets) -> Vec<String> {
    let mut values: Vec<&str> = secrets.values.values().map(String::as_str).collect();
    if let Some(tls) = &secrets.tls {
        values.extend([tls.ca_key.as_str(), tls.key.as_str()]);
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let mut needles: Vec<String> =
        values.iter().filter(|v| v.len() >= 8).flat_map(|v| [(*v).to_owned(), engine.encode(v.as_bytes())]).collect();
    // Longest first, so a value inside another is not half-replaced.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles
}

/// Redacts every secret from every file under `dir`, and makes the files private; returns how
/// many files there are.
fn redact_tree(dir: &Path, secrets: Option<&Secrets>) -> Result<usize> {
    let needles = secrets.map(needles).unwrap_or_default();
    let mut count = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        count += 1;
        let path = entry.path();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let mut redacted = text.clone();
        for needle in &needles {
            if redacted.contains(needle.as_str()) {
                redacted = redacted.replace(needle.as_str(), REDACTED);
            }
        }
        if redacted != text {
            std::fs::write(path, redacted).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(count)
}
