//! `init --from-compose`: an existing compose project read as compose reads it, then mapped onto
//! the config.
//!
//! [`load`] gives the project's effective services: each file interpolated (`${VAR}`,
//! `${VAR:-default}`, … from the caller's environment and the `.env` beside the first file), its
//! `extends` resolved (in the same file or another one, whose relative paths stay its own), the
//! files merged in order (later ones override earlier ones: mappings merge, `ports`,
//! `volumes`, `env_file` and the other lists add up, `command`, `entrypoint` and a healthcheck's
//! `test` replace, `!reset` and `!override` as compose reads them), and the services of profiles
//! that are not enabled left out. [`import`] maps them (`map`).
//!
//! The files are read as YAML trees with serde_yaml_ng, not with a typed compose crate
//! (docker-compose-types, the one on crates.io, is built on the unmaintained serde_yaml and does
//! not interpolate, merge or extend): each of those steps works on the untyped tree, as
//! compose-go's do, and the few fields the config has an equivalent for are read from it after.

mod interpolate;
mod map;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

pub(crate) use interpolate::dotenv;

use super::{Error, InitOptions, Result, Starter, Unmapped};

/// One service of the effective project.
#[derive(Debug, Clone)]
pub struct ComposeService {
    /// Its compose definition after interpolation, `extends` and merging; relative build
    /// contexts and env files made absolute.
    pub definition: Mapping,
    /// The file that defined it first, for messages.
    pub file: PathBuf,
}

/// The effective compose project: its active services, in the order the files list them.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// The active services.
    pub services: IndexMap<String, ComposeService>,
    /// What loading it left out or could not read (a profile that is not enabled, an unset
    /// variable), for the report.
    pub notes: Vec<Unmapped>,
    /// The variables interpolation read: the caller's environment over the `.env` file.
    pub variables: IndexMap<String, String>,
}

/// Reads the compose project made of `files` (in order) as compose would.
pub fn load(files: &[PathBuf], options: &InitOptions) -> Result<Project> {
    let first = files
        .first()
        .ok_or_else(|| Error::Compose { path: PathBuf::new(), problem: "no compose file was given".into() })?;
    let project_dir = parent(first);
    let mut variables: IndexMap<String, String> = IndexMap::new();
    let dot_env = project_dir.join(".env");
    if dot_env.is_file() {
        let text = std::fs::read_to_string(&dot_env).map_err(|source| Error::Read { path: dot_env.clone(), source })?;
        variables.extend(dotenv(&text));
    }
    // The caller's environment wins over `.env`, as in compose.
    variables.extend(options.env.iter().cloned());
    let mut loader = Loader { variables: &variables, notes: Vec::new() };

    let mut merged: IndexMap<String, ComposeService> = IndexMap::new();
    for file in files {
        // Every file of a project resolves its relative paths from the first file's folder.
        let services = loader.file_services(file, &project_dir, &mut Vec::new())?;
        for (name, definition) in services {
            match merged.get_mut(&name) {
                Some(service) => service.definition = merge(&service.definition, &definition),
                None => {
                    merged.insert(name, ComposeService { definition, file: file.clone() });
                }
            }
        }
    }

    let mut profiles: Vec<String> = options.profiles.clone();
    if let Some(list) = variables.get("COMPOSE_PROFILES") {
        profiles.extend(list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
    }
    let mut notes = loader.notes;
    let mut project = Project { services: IndexMap::new(), notes: Vec::new(), variables: variables.clone() };
    for (name, service) in merged {
        let own: Vec<String> = match service.definition.get("profiles") {
            Some(Value::Sequence(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let active = own.is_empty() || profiles.iter().any(|p| p == "*" || own.contains(p));
        if active {
            project.services.insert(name, service);
        } else {
            notes.push(Unmapped {
                what: format!("{}: services.{name}", service.file.display()),
                why: format!(
                    "left out: its profiles ({}) are not enabled; enable profile `{}` to import it",
                    own.join(", "),
                    own[0]
                ),
                profile: Some(own[0].clone()),
            });
        }
    }
    project.notes = notes;
    Ok(project)
}

/// Imports the compose project of `options.compose_files` as a config written in `base`.
pub fn import(base: &Path, options: &InitOptions) -> Result<Starter> {
    let project = load(&options.compose_files, options)?;
    map::map(project, base, options)
}

struct Loader<'a> {
    variables: &'a IndexMap<String, String>,
    notes: Vec<Unmapped>,
}

impl Loader<'_> {
    /// The services of one file, interpolated, with relative paths made absolute from `dir`, and
    /// their `extends` resolved. `stack` holds the (file, service) pairs being extended, to
    /// refuse a cycle.
    fn file_services(
        &mut self,
        file: &Path,
        dir: &Path,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<IndexMap<String, Mapping>> {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read { path: file.to_path_buf(), source })?;
        let document: Value =
            serde_yaml_ng::from_str(&text).map_err(|source| Error::ComposeYaml { path: file.to_path_buf(), source })?;
        let document = interpolate::value(document, self.variables, file, &mut self.notes)?;
        let mut raw: IndexMap<String, Mapping> = IndexMap::new();
        match document.get("services") {
            Some(Value::Mapping(services)) => {
                for (name, definition) in services {
                    let name = name.as_str().unwrap_or_default().to_owned();
                    let definition = match definition {
                        Value::Mapping(m) => m.clone(),
                        Value::Null => Mapping::new(),
                        _ => {
                            return Err(Error::Compose {
                                path: file.to_path_buf(),
                                problem: format!("services.{name} is not a mapping"),
                            });
                        }
                    };
                    raw.insert(name, absolute_paths(normalize(definition), dir));
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(Error::Compose { path: file.to_path_buf(), problem: "`services` is not a mapping".into() });
            }
        }
        let mut resolved = IndexMap::new();
        for name in raw.keys() {
            let service = self.extended(file, dir, &raw, name, stack)?;
            resolved.insert(name.clone(), service);
        }
        Ok(resolved)
    }

    /// `name` of `raw` (the services of `file`) with its `extends` chain merged under it.
    fn extended(
        &mut self,
        file: &Path,
        dir: &Path,
        raw: &IndexMap<String, Mapping>,
        name: &str,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<Mapping> {
        let mut service = raw[name].clone();
        let Some(extends) = service.remove("extends") else { return Ok(service) };
        let (base_name, base_file) = match &extends {
            Value::String(s) => (s.clone(), None),
            Value::Mapping(m) => (
                m.get("service").and_then(Value::as_str).unwrap_or_default().to_owned(),
                m.get("file").and_then(Value::as_str).map(|f| dir.join(f)),
            ),
            _ => {
                return Err(Error::Compose {
                    path: file.to_path_buf(),
                    problem: format!("services.{name}.extends is neither a service name nor a mapping"),
                });
            }
        };
        let key = (base_file.clone().unwrap_or_else(|| file.to_path_buf()), base_name.clone());
        if stack.contains(&key) {
            return Err(Error::Compose {
                path: file.to_path_buf(),
                problem: format!("services.{name} extends {base_name}, which extends it again"),
            });
        }
        stack.push(key);
        let base = match base_file {
            None => {
                if !raw.contains_key(&base_name) {
                    return Err(Error::Compose {
                        path: file.to_path_buf(),
                        problem: format!("services.{name} extends `{base_name}`, which the file does not define"),
                    });
                }
                self.extended(file, dir, raw, &base_name, stack)?
            }
            Some(other) => {
                // Another file's relative paths are relative to its own folder.
                let mut services = self.file_services(&other, &parent(&other), stack)?;
                services.swap_remove(&base_name).ok_or_else(|| Error::Compose {
                    path: file.to_path_buf(),
                    problem: format!(
                        "services.{name} extends `{base_name}`, which {} does not define",
                        other.display()
                    ),
                })?
            }
        };
        stack.pop();
        Ok(merge(&base, &service))
    }
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The short forms compose accepts made the long ones, so that merging works key by key:
/// `build: dir`, `environment: [K=V]`, `depends_on: [a]`, `env_file: f`, `build.args: [K=V]`.
fn normalize(mut service: Mapping) -> Mapping {
    if let Some(Value::String(context)) = service.get("build") {
        let mut build = Mapping::new();
        build.insert("context".into(), Value::String(context.clone()));
        service.insert("build".into(), Value::Mapping(build));
    }
    if let Some(env) = service.get("environment").cloned() {
        service.insert("environment".into(), Value::Mapping(key_values(env)));
    }
    if let Some(Value::Mapping(build)) = service.get_mut("build")
        && let Some(args) = build.get("args").cloned()
    {
        build.insert("args".into(), Value::Mapping(key_values(args)));
    }
    if let Some(Value::Sequence(list)) = service.get("depends_on").cloned() {
        let mut map = Mapping::new();
        for name in list {
            let mut condition = Mapping::new();
            condition.insert("condition".into(), "service_started".into());
            map.insert(name, Value::Mapping(condition));
        }
        service.insert("depends_on".into(), Value::Mapping(map));
    }
    if let Some(file @ (Value::String(_) | Value::Mapping(_))) = service.get("env_file").cloned() {
        service.insert("env_file".into(), Value::Sequence(vec![file]));
    }
    service
}

/// `[K=V, K]` or `{K: V}` as a mapping (a bare `K` is `K: null`: its value comes from the
/// environment).
fn key_values(value: Value) -> Mapping {
    match value {
        Value::Mapping(m) => m,
        Value::Sequence(list) => list
            .into_iter()
            .filter_map(|item| {
                let item = item.as_str()?.to_owned();
                Some(match item.split_once('=') {
                    Some((k, v)) => (Value::String(k.to_owned()), Value::String(v.to_owned())),
                    None => (Value::String(item), Value::Null),
                })
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// The build context and env files made absolute from `dir` (a context that is a Git URL stays).
fn absolute_paths(mut service: Mapping, dir: &Path) -> Mapping {
    let absolute = |p: &str| -> String {
        if p.contains("://") || p.starts_with("git@") || Path::new(p).is_absolute() {
            p.to_owned()
        } else {
            clean(&dir.join(p)).to_string_lossy().into_owned()
        }
    };
    if let Some(Value::Mapping(build)) = service.get_mut("build")
        && let Some(Value::String(context)) = build.get("context").cloned()
    {
        build.insert("context".into(), Value::String(absolute(&context)));
    }
    if let Some(Value::Sequence(files)) = service.get_mut("env_file") {
        for file in files.iter_mut() {
            match file {
                Value::String(path) => *path = absolute(path),
                Value::Mapping(m) => {
                    if let Some(Value::String(path)) = m.get("path").cloned() {
                        m.insert("path".into(), Value::String(absolute(&path)));
                    }
                }
                _ => {}
            }
        }
    }
    service
}

/// `path` without `.` and with each `..` taking off the folder before it, as compose-go writes
/// the paths it resolves (lexically: a symbolic link is not followed).
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Lists whose later value replaces the earlier one instead of adding to it.
const REPLACED_LISTS: &[&str] = &["command", "entrypoint", "test", "profiles"];

/// `over` merged onto `base`, as compose merges a later file or an extending service: mappings
/// key by key, most lists added up (without repeats), a few replaced, scalars replaced; the
/// tags `!reset` (remove the value) and `!override` (replace it whole) as compose reads them.
pub(crate) fn merge(base: &Mapping, over: &Mapping) -> Mapping {
    let mut out = base.clone();
    for (key, value) in over {
        let name = key.as_str().unwrap_or_default();
        match value {
            Value::Tagged(tagged) if tagged.tag == "reset" => {
                out.remove(key);
            }
            Value::Tagged(tagged) if tagged.tag == "override" => {
                out.insert(key.clone(), tagged.value.clone());
            }
            _ => {
                let merged = match (out.get(key), value) {
                    (Some(Value::Mapping(a)), Value::Mapping(b)) => Value::Mapping(merge(a, b)),
                    (Some(Value::Sequence(a)), Value::Sequence(b)) if !REPLACED_LISTS.contains(&name) => {
                        let mut list = a.clone();
                        for item in b {
                            if !list.contains(item) {
                                list.push(item.clone());
                            }
                        }
                        Value::Sequence(list)
                    }
                    _ => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
        }
    }
    out
}
