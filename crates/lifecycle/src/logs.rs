//! `logs`: a diagnostics bundle in one folder: the environment's status, the nodes, every
//! pod's description, logs and events in the environment's, the ingress's and kube-system's
//! namespaces, kind's own node logs (kind target), and the rendered files. Every stored secret
//! is redacted from every file, plain or base64, whatever its length, and every value of a
//! rendered Secret object (the realm export's client secrets are no generated value), so the
//! bundle can be shared; when the stored secrets cannot be read, the rendered files are left out.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use kind_parity_cluster::ObjectRef;
use kind_parity_cluster::kind::Kind;
use kind_parity_render::Secrets;
use serde::Serialize;

use crate::event::{Event, Reporter, Step};
use crate::{Environment, Error, LogsOptions, Result};

/// The ingress controller's namespace, shared by every environment of a cluster.
const INGRESS_NAMESPACE: &str = "kind-parity-ingress";

const REDACTED: &str = "<redacted by kind-parity>";

/// What [`Environment::logs`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LogsReport {
    /// The bundle's folder.
    pub dir: PathBuf,
    /// How many files it holds.
    pub files: usize,
    /// What could not be collected, and why (also in the bundle's `unavailable.txt`).
    pub unavailable: Vec<String>,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

impl Environment {
    /// Collects the diagnostics bundle. What cannot be collected (no cluster, no kind) is listed
    /// in the report, not an error: a bundle is most wanted when things are broken.
    pub async fn logs(&self, options: &LogsOptions, reporter: &dyn Reporter) -> Result<LogsReport> {
        let config = self.config();
        let state = &self.state;
        let dir = match &options.out {
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
                state.diagnostics().join(stamp)
            }
        };
        reporter
            .report(&Event::StepStarted { step: Step::Logs, message: format!("collecting into {}", dir.display()) });
        private_dir(&dir)?;
        let mut unavailable = Vec::new();

        // The cluster: status, nodes, pods, logs, events.
        let target = self.cluster_target(&options.target);
        match kind_parity_cluster::connect(&target).await {
            Ok((client, context)) => {
                let inventory = state.read_inventory()?;
                let objects: Vec<ObjectRef> = inventory.objects.keys().cloned().collect();
                match kind_parity_cluster::status::collect(&client, &objects).await {
                    Ok(status) => {
                        let json =
                            serde_json::json!({"environment": config.name, "context": context, "status": status});
                        let path = dir.join("status.json");
                        let text = serde_json::to_string_pretty(&json).expect("a status serializes");
                        std::fs::write(&path, text).map_err(io("writing", &path))?;
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
        if options.target.is_kind() {
            match Kind::detect().await {
                Ok(kind) => {
                    if let Err(e) = kind.export_logs(&config.name, &dir.join("kind")).await {
                        unavailable.push(format!("kind export logs: {e}"));
                    }
                }
                Err(e) => unavailable.push(format!("kind export logs: {e}")),
            }
        }

        // What was rendered: it holds every generated secret (the compose env files resolve
        // them), so it is left out when the secrets cannot be read to redact them by value.
        let secrets = state.read_secrets();
        let rendered = state.rendered();
        match &secrets {
            _ if !rendered.is_dir() => unavailable
                .push(format!("rendered files: {} does not exist (nothing was rendered yet)", rendered.display())),
            Ok(Some(_)) => {
                copy_tree(&rendered, &dir.join("rendered"))?;
                redact_secret_objects_in(&dir.join("rendered"))?;
            }
            Ok(None) => unavailable.push(format!(
                "rendered files: left out, {} does not exist to redact them by",
                state.secrets_file().display()
            )),
            Err(e) => unavailable
                .push(format!("rendered files: left out, the stored secrets cannot be read to redact them by ({e})")),
        }
        if !unavailable.is_empty() {
            let path = dir.join("unavailable.txt");
            std::fs::write(&path, unavailable.join("\n") + "\n").map_err(io("writing", &path))?;
        }

        // Nothing secret leaves in the bundle.
        let files = redact_tree(&dir, secrets.ok().flatten().as_ref())?;
        Ok(LogsReport { dir, files, unavailable })
    }
}

fn private_dir(dir: &Path) -> Result<()> {
    Ok(crate::state::create_private_dir(dir)?)
}

fn walk_error(dir: &Path) -> impl FnOnce(walkdir::Error) -> Error {
    let path = dir.to_path_buf();
    move |e| Error::Io { action: "reading", path, source: e.into() }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.map_err(walk_error(from))?;
        let target: PathBuf = to.join(entry.path().strip_prefix(from).expect("walkdir stays under its root"));
        if entry.file_type().is_dir() {
            private_dir(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).map_err(io("copying", entry.path()))?;
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
    // Every value, however short: the config refuses secrets shorter than 16 characters, so a
    // shorter one was written by hand, and is still a secret. Only an empty one has nothing to hide.
    let mut needles: Vec<String> =
        values.iter().filter(|v| !v.is_empty()).flat_map(|v| [(*v).to_owned(), engine.encode(v.as_bytes())]).collect();
    // Longest first, so a value inside another is not half-replaced.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    needles
}

/// Replaces the value of every key of every Secret's `data` and `stringData` in the rendered
/// manifests under `dir`. Values not generated by kind-parity travel in Secrets too (the realm
/// export with its clients' secrets): redacting by value alone would leave them in clear.
fn redact_secret_objects_in(dir: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(walk_error(dir))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(io("reading", path))?;
        let redacted = redact_secret_objects(&text);
        if redacted != text {
            std::fs::write(path, redacted).map_err(io("writing", path))?;
        }
    }
    Ok(())
}

/// `text` with the values of its Secret objects redacted; every other document kept byte for
/// byte. Documents are split at `---` lines, as the templates write them.
fn redact_secret_objects(text: &str) -> String {
    let mut documents: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else {
            documents.last_mut().expect("one document at least").push_str(line);
        }
    }
    documents
        .iter()
        .map(|document| {
            let Ok(mut value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(document) else {
                // Not YAML: nothing can say which parts are secret, so none of it is kept.
                return format!("# {REDACTED}: a document that does not parse\n");
            };
            if value.get("kind").and_then(serde_yaml_ng::Value::as_str) != Some("Secret") {
                return document.clone();
            }
            for field in ["data", "stringData"] {
                if let Some(serde_yaml_ng::Value::Mapping(entries)) = value.get_mut(field) {
                    for (_, v) in entries.iter_mut() {
                        *v = serde_yaml_ng::Value::String(REDACTED.to_owned());
                    }
                }
            }
            serde_yaml_ng::to_string(&value).unwrap_or_else(|_| format!("# {REDACTED}\n"))
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Redacts every secret from every file under `dir`, and makes the files private; returns how
/// many files there are.
fn redact_tree(dir: &Path, secrets: Option<&Secrets>) -> Result<usize> {
    let needles = secrets.map(needles).unwrap_or_default();
    let mut count = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(walk_error(dir))?;
        if !entry.file_type().is_file() {
            continue;
        }
        count += 1;
        let path = entry.path();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io("writing", path))?;
        }
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let mut redacted = text.clone();
        for needle in &needles {
            if redacted.contains(needle.as_str()) {
                redacted = redacted.replace(needle.as_str(), REDACTED);
            }
        }
        if redacted != text {
            std::fs::write(path, redacted).map_err(io("writing", path))?;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_stored_secret_is_redacted_too() {
        // Regression (issue 12): values shorter than 8 characters were left in clear.
        let mut secrets = Secrets::default();
        secrets.values.insert("pin".into(), "4711".into());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.env"), "PIN=4711\nB64=NDcxMQ==\n").unwrap();
        redact_tree(dir.path(), Some(&secrets)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("compose.env")).unwrap();
        assert_eq!(text, format!("PIN={REDACTED}\nB64={REDACTED}\n"));
    }

    #[test]
    fn every_value_of_a_secret_object_is_redacted_and_other_documents_are_kept() {
        // Regression (issue 12): the realm export's client secrets are no generated value, so
        // redacting by value left them in the bundle.
        let text = "# a comment\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: keycloak-realm\ndata:\n  realm.json: eyJzZWNyZXQiOiJ4In0=\nstringData:\n  other: plain\n";
        let redacted = redact_secret_objects(text);
        assert_eq!(
            redacted,
            format!(
                "# a comment\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: keycloak-realm\ndata:\n  realm.json: {REDACTED}\nstringData:\n  other: {REDACTED}\n"
            )
        );
    }
}
