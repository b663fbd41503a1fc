//! The cluster part of a diagnostics bundle: for each namespace, every pod's description (its
//! status and spec as YAML), each container's log (current, and previous when it restarted),
//! and the namespace's events in time order; the nodes. Written as plain files into a folder,
//! so the bundle can be read with `less` and attached to an issue.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, LogParams};

use crate::error::{Error, Result};

/// How many log lines per container.
const LOG_LINES: i64 = 2000;

/// What [`collect`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Files written, relative to the folder.
    pub files: Vec<PathBuf>,
    /// What could not be read, and why (a log of a container that never started, say).
    pub unavailable: Vec<String>,
}

fn write(dir: &Path, relative: PathBuf, text: &str, collected: &mut Collected) -> Result<()> {
    let path = dir.join(&relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_owned(), source })?;
    }
    std::fs::write(&path, text).map_err(|source| Error::Write { path: path.clone(), source })?;
    collected.files.push(relative);
    Ok(())
}

fn api_error(action: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Api { action, source }
}

/// Writes the nodes, and the pods, logs and events of each of `namespaces`, into `dir`.
pub async fn collect(client: &kube::Client, namespaces: &[String], dir: &Path) -> Result<Collected> {
    let mut collected = Collected::default();
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("listing nodes".into()))?;
    let text = serde_yaml_ng::to_string(&nodes.items).unwrap_or_default();
    write(dir, "nodes.yaml".into(), &text, &mut collected)?;
    for ns in namespaces {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = pods.list(&ListParams::default()).await.map_err(api_error(format!("listing the pods of {ns}")))?;
        for pod in &list.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let mut described = pod.clone();
            described.metadata.managed_fields = None;
            let text = serde_yaml_ng::to_string(&described).unwrap_or_default();
            write(dir, PathBuf::from(ns).join(&name).join("pod.yaml"), &text, &mut collected)?;
            let statuses = pod
                .status
                .iter()
                .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()));
            for status in statuses {
                let mut wanted = vec![(false, format!("{}.log", status.name))];
                if status.restart_count > 0 {
                    wanted.push((true, format!("{}.previous.log", status.name)));
                }
                for (previous, file) in wanted {
                    let params = LogParams {
                        container: Some(status.name.clone()),
                        previous,
                        tail_lines: Some(LOG_LINES),
                        ..LogParams::default()
                    };
                    match pods.logs(&name, &params).await {
                        Ok(text) => write(dir, PathBuf::from(ns).join(&name).join(file), &text, &mut collected)?,
                        Err(e) => collected.unavailable.push(format!("{ns}/{name} {file}: {e}")),
                    }
                }
            }
        }
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let mut items =
            events.list(&ListParams::default()).await.map_err(api_error(format!("listing the events of {ns}")))?.items;
        items.sort_by_key(|e| e.last_timestamp.clone().or_else(|| e.first_timestamp.clone()).map(|t| t.0));
        let lines: Vec<String> = items
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {} {}/{}: {}",
                    e.last_timestamp.map(|t| t.0.to_string()).unwrap_or_default(),
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.involved_object.kind.unwrap_or_default(),
                    e.involved_object.name.unwrap_or_default(),
                    e.message.unwrap_or_default().trim()
                )
            })
            .collect();
        write(dir, PathBuf::from(ns).join("events.txt"), &(lines.join("\n") + "\n"), &mut collected)?;
    }
    Ok(collected)
}
