//! Loading the config in layers, keeping where each value came from.
//!
//! built-in defaults < `kind-parity.yaml` < `kind-parity.local.yaml` < `KIND_PARITY_*` < flags.
//! Each file is type-checked on its own first, so its errors carry its own line and column;
//! the layers are then merged as YAML trees (mappings merge, scalars and sequences replace)
//! and the result is type-checked again for what the variables and flags added. serde stops at
//! its first error, so each check drops the value an error is about and tries again until the
//! rest fits: every type error and unknown key is reported at once, with the semantic checks
//! on what is left (except those about a dropped value), in file and line order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path as FsPath, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::path::{Path, Seg};
use super::spans::{self, SpanIndex};
use super::{Config, Inputs, validate};
use crate::error::{Diagnostic, Diagnostics, Error, Location, Result, did_you_mean};

/// The main config file's name.
pub const CONFIG_FILE: &str = "kind-parity.yaml";
/// The optional, gitignored overlay beside it.
pub const LOCAL_FILE: &str = "kind-parity.local.yaml";
/// The prefix of the environment variables that override config values.
pub const ENV_PREFIX: &str = "KIND_PARITY_";
/// `KIND_PARITY_*` variables that are not config values: the test bed's, and the tool's own.
const RESERVED_ENV: &[&str] = &["KIND_PARITY_TEST", "KIND_PARITY_TESTBED", "KIND_PARITY_LOG", "KIND_PARITY_CONFIG"];

/// Where one value of the effective config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// The embedded demo stack (no config file was found).
    Embedded {
        /// Line in the embedded file.
        line: usize,
    },
    /// A config file, at a position.
    File(Location),
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command-line flag.
    Flag {
        /// The flag as written (`--name`, `--set services.api.replicas=2`).
        flag: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Embedded { line } => write!(f, "embedded demo kind-parity.yaml:{line}"),
            Self::File(loc) => write!(f, "{loc}"),
            Self::Env { var } => write!(f, "env {var}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// A value set on the command line: `--set path=value` or a dedicated flag such as `--name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The flag as the user wrote it, for `--explain` and errors.
    pub flag: String,
    /// The config path it sets.
    pub path: String,
    /// The value, parsed as a YAML scalar.
    pub value: String,
}

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// An explicit config file; when unset, `kind-parity.yaml` in `dir`, else the embedded demo.
    pub config: Option<PathBuf>,
    /// The folder to look for the config file in (the working directory).
    pub dir: PathBuf,
    /// Environment variables to consider (only `KIND_PARITY_*` ones are read).
    pub env: Vec<(String, String)>,
    /// Command-line overrides, applied last.
    pub overrides: Vec<Override>,
}

impl LoadOptions {
    /// Options for `dir` with the process's environment.
    pub fn from_process(config: Option<PathBuf>, dir: PathBuf, overrides: Vec<Override>) -> Self {
        Self { config, dir, env: std::env::vars().collect(), overrides }
    }
}

/// The origin of every value set by a layer; values no layer set are defaults.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<Path, Source>);

impl Origins {
    /// Where the value at `path` (or its nearest set ancestor) came from.
    pub fn source(&self, path: &Path) -> Source {
        let mut p = path.clone();
        loop {
            if let Some(s) = self.0.get(&p) {
                return s.clone();
            }
            if p.0.is_empty() {
                return Source::Default;
            }
            p.pop();
        }
    }

    /// Where exactly `path` was set; `Source::Default` when no layer set it (even when a layer
    /// set the mapping around it).
    pub fn exact(&self, path: &Path) -> Source {
        self.0.get(path).cloned().unwrap_or(Source::Default)
    }

    /// Where `path` was set, as text for a diagnostic; `None` for defaults.
    pub fn describe(&self, path: &Path) -> Option<String> {
        match self.source(path) {
            Source::Default => None,
            other => Some(other.to_string()),
        }
    }

    fn set_layer(&mut self, value: &Value, at: &Path, source: &dyn Fn(&Path) -> Source) {
        // A layer that sets a scalar or a sequence replaces everything an earlier layer set below it.
        if !matches!(value, Value::Mapping(_)) {
            self.0.retain(|p, _| !p.starts_with(at) || p == at);
        }
        if !at.0.is_empty() {
            self.0.insert(at.clone(), source(at));
        }
        match value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    if let Some(k) = key_text(k) {
                        self.set_layer(v, &at.key(&k), source);
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.set_layer(v, &at.index(i), source);
                }
            }
            _ => {}
        }
    }
}

/// A loaded, layered, validated config with the provenance of its values.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective config.
    pub config: Config,
    /// Where each value came from.
    pub origins: Origins,
    /// Where relative paths in the config (build contexts, the realm file) are read from.
    pub inputs: Inputs,
    /// The files that were read, in layering order (empty for the embedded demo).
    pub files: Vec<PathBuf>,
}

/// The embedded demo stack's config, used when no config file is found.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../../examples/demo/kind-parity.yaml");

/// Loads and validates the config; on failure every problem found is returned at once.
pub fn load(options: &LoadOptions) -> Result<Loaded> {
    let (main, inputs) = match &options.config {
        Some(path) => (Some(path.clone()), Inputs::Dir(parent_dir(path))),
        None => {
            let candidate = options.dir.join(CONFIG_FILE);
            if candidate.is_file() {
                (Some(candidate), Inputs::Dir(options.dir.clone()))
            } else {
                tracing::info!("no {CONFIG_FILE} in {}: using the embedded demo stack", options.dir.display());
                (None, Inputs::Embedded)
            }
        }
    };

    let mut merged = Value::Mapping(Mapping::new());
    let mut origins = Origins::default();
    let mut layers = Layers::default();
    let mut files = Vec::new();

    match &main {
        Some(path) => {
            let text = read(path)?;
            files.push(path.clone());
            if text
                .trim_start_matches('\u{feff}')
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                layers.diagnostics.push(
                    Diagnostic::new("the config file is empty")
                        .origin(LayerName::File(path).source((1, 1)).to_string())
                        .help("describe the stack in it (docs/config.md), or delete it to use the embedded demo stack"),
                );
                layers.broken = true;
            } else {
                layers.apply_file(&text, LayerName::File(path), &mut merged, &mut origins);
            }
        }
        None => layers.apply_file(EMBEDDED_CONFIG, LayerName::Embedded, &mut merged, &mut origins),
    }
    let local = match &main {
        Some(path) => parent_dir(path).join(LOCAL_FILE),
        None => options.dir.join(LOCAL_FILE),
    };
    if local.is_file() {
        let text = read(&local)?;
        files.push(local.clone());
        layers.apply_file(&text, LayerName::File(&local), &mut merged, &mut origins);
    }

    for (var, raw) in options.env.iter().filter(|(k, _)| is_config_var(k)) {
        let Some(path) = env_path(var) else {
            layers.diagnostics.push(
                Diagnostic::new(format!("{var} does not name a config value"))
                    .origin(format!("env {var}"))
                    .help("nest keys with a double underscore: KIND_PARITY_SERVICES__API__REPLICAS=2"),
            );
            continue;
        };
        let source = Source::Env { var: var.clone() };
        set_path(&mut merged, &mut origins, &path, scalar(raw), source);
    }
    for o in &options.overrides {
        let Some(path) = Path::parse(&o.path) else {
            layers.diagnostics.push(
                Diagnostic::new(format!("`{}` is not a config path", o.path))
                    .origin(format!("flag {}", o.flag))
                    .help("write a dotted path such as services.api.replicas=2"),
            );
            continue;
        };
        set_path(&mut merged, &mut origins, &path, scalar(&o.value), Source::Flag { flag: o.flag.clone() });
    }

    // What the variables and flags added: the files' own values are already known to fit.
    let (merged, removed) = type_check(merged, &mut layers.diagnostics, &|at| origins.describe(at));
    layers.removed.extend(removed);
    let config: Config = match serde_path_to_error::deserialize(merged) {
        Ok(config) => config,
        // type_check left only what deserializes; a tree it could not clean is reported already.
        Err(_) => return Err(Error::Config(Diagnostics(sorted(layers.diagnostics, &files)))),
    };

    let mut diagnostics = layers.diagnostics;
    // A file that is not YAML is missing from the config whole: what is left would be judged
    // without it. Otherwise the semantic checks run on what type-checked, and leave out what
    // concerns a value that was dropped (a service without its `build` would have neither
    // `build` nor `image`).
    if !layers.broken {
        let removed: Vec<String> = layers.removed.iter().map(Path::to_string).collect();
        diagnostics.extend(
            validate::validate(&config, &origins, &inputs)
                .into_iter()
                .filter(|d| d.path.as_deref().is_none_or(|p| !removed.iter().any(|r| overlaps(p, r)))),
        );
    }
    if !diagnostics.is_empty() {
        return Err(Error::Config(Diagnostics(sorted(diagnostics, &files))));
    }
    Ok(Loaded { config, origins, inputs, files })
}

/// Whether one config path is the other or lies beneath it.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long == short
            || short.is_empty()
            || long.strip_prefix(short).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    under(a, b) || under(b, a)
}

/// Diagnostics in the order of the files they point into, then by line and column; those from
/// variables, flags and defaults after.
fn sorted(mut diagnostics: Vec<Diagnostic>, files: &[PathBuf]) -> Vec<Diagnostic> {
    let key = |d: &Diagnostic| -> (usize, usize, usize, String) {
        let origin = d.origin.clone().unwrap_or_default();
        let position = origin.rsplitn(3, ':').collect::<Vec<_>>();
        if let [column, line, file] = position[..]
            && let (Ok(line), Ok(column)) = (line.parse(), column.parse())
        {
            let index = files.iter().position(|f| f.display().to_string() == file).unwrap_or(0);
            return (index, line, column, String::new());
        }
        if let Some(line) = origin.strip_prefix("embedded demo kind-parity.yaml:").and_then(|l| l.parse().ok()) {
            return (0, line, 0, String::new());
        }
        (usize::MAX, 0, 0, origin)
    };
    diagnostics.sort_by_key(key);
    diagnostics
}

/// The problems of every layer, and what was dropped to type-check the rest.
#[derive(Default)]
struct Layers {
    diagnostics: Vec<Diagnostic>,
    /// Paths whose values did not type-check and were left out of the config.
    removed: Vec<Path>,
    /// A file that is not YAML (or is empty) was left out whole.
    broken: bool,
}

/// Which layer a file is, for positions in diagnostics.
#[derive(Clone, Copy)]
enum LayerName<'a> {
    File(&'a FsPath),
    Embedded,
}

impl LayerName<'_> {
    fn source(self, pos: (usize, usize)) -> Source {
        match self {
            Self::File(p) => Source::File(Location { file: p.to_path_buf(), line: pos.0, column: pos.1 }),
            Self::Embedded => Source::Embedded { line: pos.0 },
        }
    }
}

impl Layers {
    /// Type-checks one file on its own, so its errors carry its own positions, and merges what
    /// type-checks into `merged`.
    fn apply_file(&mut self, text: &str, layer: LayerName<'_>, merged: &mut Value, origins: &mut Origins) {
        // A byte order mark at the start is allowed (YAML 1.2, 5.2); positions count without it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = match serde_yaml_ng::from_str(text) {
            Ok(Value::Null) => Value::Mapping(Mapping::new()),
            Ok(v) => v,
            Err(e) => {
                let pos = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                let (pos, diagnostic) = syntax_diagnostic(text, pos, &strip_position(&e.to_string()));
                self.diagnostics.push(diagnostic.origin(layer.source(pos).to_string()));
                self.broken = true;
                return;
            }
        };
        let spans = spans::index(text);
        let (value, removed) =
            type_check(value, &mut self.diagnostics, &|at| spans.get(at).map(|pos| layer.source(pos).to_string()));
        self.removed.extend(removed);
        let source = |p: &Path| layer.source(position(&spans, p));
        origins.set_layer(&value, &Path::default(), &source);
        merge(merged, value);
    }
}

/// A YAML syntax error, said plainly when it is a tab or a byte order mark, which editors do not
/// show: the position and the diagnostic.
fn syntax_diagnostic(text: &str, pos: (usize, usize), message: &str) -> ((usize, usize), Diagnostic) {
    if let Some((line, column)) =
        text.lines().enumerate().find_map(|(i, l)| l.find('\u{feff}').map(|c| (i + 1, l[..c].chars().count() + 1)))
    {
        return (
            (line, column),
            Diagnostic::new("a byte order mark (U+FEFF) inside the file")
                .help("save the file as UTF-8 without a BOM, or delete the invisible character at this position"),
        );
    }
    let line = text.lines().nth(pos.0.saturating_sub(1)).unwrap_or_default();
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    if let Some(tab) = indent.find('\t') {
        return (
            (pos.0, indent[..tab].chars().count() + 1),
            Diagnostic::new("a tab in the indentation")
                .help("YAML indents with spaces only: replace the tab with spaces"),
        );
    }
    (pos, Diagnostic::new(format!("not valid YAML: {message}")))
}

/// Deserializes `value` as a [`Config`] again and again, each time reporting the first error and
/// dropping the value it is about, until the rest type-checks: serde stops at the first error,
/// and a user should see every one at once. Returns what type-checks and the dropped paths (in
/// the paths of `value`, as the diagnostics name them).
fn type_check(
    mut value: Value,
    diagnostics: &mut Vec<Diagnostic>,
    origin: &dyn Fn(&Path) -> Option<String>,
) -> (Value, Vec<Path>) {
    let mut dropped = Dropped::default();
    // Each round drops one value, so the rounds end; the bound only guards against a bug.
    for _ in 0..10_000 {
        let error = match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(_) => break,
            Err(e) => e,
        };
        let message = strip_position(&error.inner().to_string());
        let current = Path::from(error.path());
        let (at, _) = type_diagnostic(&message, &current);
        let (original, mut d) = type_diagnostic(&message, &dropped.original(&current));
        d.origin = origin(&original);
        diagnostics.push(d);
        if !remove(&mut value, &at) {
            break;
        }
        dropped.record(&original);
    }
    (value, dropped.paths)
}

/// The values dropped so far, so that later errors, whose sequence indexes count without the
/// dropped items, are named by their place in the file.
#[derive(Default)]
struct Dropped {
    paths: Vec<Path>,
}

impl Dropped {
    fn record(&mut self, original: &Path) {
        self.paths.push(original.clone());
    }

    /// `current`, a path in the tree with values dropped, as a path in the original tree.
    fn original(&self, current: &Path) -> Path {
        let mut out = Path::default();
        for seg in &current.0 {
            match seg {
                Seg::Index(j) => {
                    // The j-th item that is still there.
                    let gone = |i: usize| self.paths.iter().any(|p| *p == out.index(i));
                    let mut index = 0;
                    let mut left = *j;
                    loop {
                        if !gone(index) {
                            if left == 0 {
                                break;
                            }
                            left -= 1;
                        }
                        index += 1;
                    }
                    out.push(Seg::Index(index));
                }
                key => out.push(key.clone()),
            }
        }
        out
    }
}

/// Removes the value at `path`; false when there is none (the root, or a path serde made up).
fn remove(value: &mut Value, path: &Path) -> bool {
    let Some((last, parents)) = path.0.split_last() else { return false };
    let mut node = value;
    for seg in parents {
        node = match (seg, node) {
            (Seg::Key(k), Value::Mapping(map)) => match map.get_mut(k.as_str()) {
                Some(child) => child,
                None => return false,
            },
            (Seg::Index(i), Value::Sequence(items)) => match items.get_mut(*i) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Seg::Key(k), Value::Mapping(map)) => {
            let key = map.keys().find(|key| key_text(key).as_deref() == Some(k.as_str())).cloned();
            key.is_some_and(|key| map.remove(&key).is_some())
        }
        (Seg::Index(i), Value::Sequence(items)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

fn position(spans: &SpanIndex, path: &Path) -> (usize, usize) {
    spans.get(path).unwrap_or((1, 1))
}

/// Turns a serde message into a diagnostic at the right path, with a fix where one is known.
/// Returns the path the diagnostic belongs to (for an unknown field, the field itself).
fn type_diagnostic(message: &str, path: &Path) -> (Path, Diagnostic) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut at = path.clone();
        // serde_path_to_error ends the path at the unknown key itself; do not add it twice.
        if at.0.last() != Some(&Seg::Key(field.to_owned())) {
            at.push(Seg::Key(field.to_owned()));
        }
        let mut parent = at.clone();
        parent.pop();
        let mut d = Diagnostic::new(format!("unknown key `{field}`"));
        if !parent.0.is_empty() {
            d = d.at(parent.to_string());
        }
        d = match did_you_mean(field, candidates.iter().copied()) {
            Some(best) => d.help(format!("did you mean `{best}`?")),
            None if candidates.is_empty() => d.help("this section takes no keys"),
            None => d.help(format!("expected one of: {}", candidates.join(", "))),
        };
        return (at, d);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (variant, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let d = Diagnostic::new(format!("unknown value `{variant}`")).at(path.to_string());
        let d = match did_you_mean(variant, candidates.iter().copied()) {
            Some(best) => d.help(format!("did you mean `{best}`?")),
            None => d.help(format!("expected one of: {}", candidates.join(", "))),
        };
        return (path.clone(), d);
    }
    let mut d = Diagnostic::new(message.to_owned());
    if !path.0.is_empty() {
        d = d.at(path.to_string());
    }
    (path.clone(), d)
}

/// serde_yaml_ng appends " at line L column C" to its messages; the diagnostic shows the position itself.
/// serde_yaml_ng also starts messages of nested values with their path (`services.api: …`).
fn strip_position(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    match message.split_once(": ") {
        Some((head, rest)) if !head.contains(char::is_whitespace) && !head.contains('`') => rest.to_owned(),
        _ => message.to_owned(),
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(merged: &mut Value, origins: &mut Origins, path: &Path, value: Value, source: Source) {
    let mut node = merged;
    for seg in &path.0 {
        node = match seg {
            Seg::Key(k) => {
                if !matches!(node, Value::Mapping(_)) {
                    *node = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(map) = node else { unreachable!("just made a mapping") };
                map.entry(Value::String(k.clone())).or_insert(Value::Null)
            }
            Seg::Index(i) => {
                if !matches!(node, Value::Sequence(_)) {
                    *node = Value::Sequence(Vec::new());
                }
                let Value::Sequence(items) = node else { unreachable!("just made a sequence") };
                if items.len() <= *i {
                    items.resize(i + 1, Value::Null);
                }
                &mut items[*i]
            }
        };
    }
    origins.set_layer(&value, path, &|_| source.clone());
    *node = value;
}

fn scalar(raw: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(raw) {
        Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Sequence(_) | Value::Mapping(_))) => v,
        _ => Value::String(raw.to_owned()),
    }
}

fn is_config_var(name: &str) -> bool {
    name.starts_with(ENV_PREFIX) && !RESERVED_ENV.iter().any(|r| name.starts_with(r))
}

/// `KIND_PARITY_SERVICES__API__REPLICAS` → `services.api.replicas`. Config keys are lowercase;
/// the names a user chooses in any case keep the variable's: an environment variable's
/// (`KIND_PARITY_SERVICES__API__ENV__LOG_LEVEL` sets `LOG_LEVEL`) and a build argument's.
fn env_path(var: &str) -> Option<Path> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    let mut path = Path::default();
    for part in rest.split("__") {
        if part.is_empty() {
            return None;
        }
        let key = if keeps_case(&path) { part.to_owned() } else { part.to_ascii_lowercase() };
        path.push(Seg::Key(key));
    }
    Some(path)
}

/// Whether the keys of the mapping at `parent` are names whose case matters.
fn keeps_case(parent: &Path) -> bool {
    let keys: Vec<&str> = parent.0.iter().map(|s| if let Seg::Key(k) = s { k.as_str() } else { "" }).collect();
    matches!(
        keys.as_slice(),
        ["services", _, "env"] | ["services", _, "compose" | "kind", "env"] | ["services", _, "build", "args"]
    )
}

fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn read(path: &FsPath) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadInput { path: path.to_path_buf(), source })
}

fn parent_dir(path: &FsPath) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The effective config as YAML, each value followed by where it came from.
pub fn explain(loaded: &Loaded) -> String {
    let value = serde_yaml_ng::to_value(&loaded.config).unwrap_or(Value::Null);
    let mut out = String::new();
    explain_value(&value, &Path::default(), 0, &loaded.origins, &mut out);
    out
}

/// Where each value of the effective config came from, by its path (`services.api.replicas`,
/// a sequence as a whole): what [`explain`] writes beside each value, for tools
/// (`config --explain --output json`).
pub fn origins(loaded: &Loaded) -> BTreeMap<String, String> {
    let value = serde_yaml_ng::to_value(&loaded.config).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    collect_origins(&value, &Path::default(), &loaded.origins, &mut out);
    out
}

fn collect_origins(value: &Value, path: &Path, origins: &Origins, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                if let Some(k) = key_text(k) {
                    collect_origins(v, &path.key(&k), origins, out);
                }
            }
        }
        _ if path.0.is_empty() => {}
        _ => {
            out.insert(path.to_string(), origins.exact(path).to_string());
        }
    }
}

fn explain_value(value: &Value, path: &Path, indent: usize, origins: &Origins, out: &mut String) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let Some(k) = key_text(k) else { continue };
                let child = path.key(&k);
                let key = yaml_scalar(&Value::String(k));
                match v {
                    Value::Mapping(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        explain_value(v, &child, indent + 1, origins, out);
                    }
                    Value::Sequence(s) if !s.is_empty() => {
                        out.push_str(&format!("{pad}{key}:  # {}\n", origins.exact(&child)));
                        explain_value(v, &child, indent + 1, origins, out);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}  # {}\n", yaml_scalar(v), origins.exact(&child))),
                }
            }
        }
        Value::Sequence(items) => {
            for v in items {
                match v {
                    Value::Mapping(_) => {
                        out.push_str(&format!("{pad}-\n"));
                        explain_value(v, path, indent + 1, origins, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", yaml_scalar(v))),
                }
            }
        }
        _ => {}
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        _ => serde_yaml_ng::to_string(v).map(|s| s.trim_end().to_owned()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_keeps_the_case_of_an_environment_key() {
        // Regression (issue 12): `…__ENV__LOG_LEVEL` added `log_level` beside `LOG_LEVEL`.
        assert_eq!(env_path("KIND_PARITY_SERVICES__API__ENV__LOG_LEVEL"), Path::parse("services.api.env.LOG_LEVEL"));
        assert_eq!(
            env_path("KIND_PARITY_SERVICES__API__KIND__ENV__LOG_LEVEL"),
            Path::parse("services.api.kind.env.LOG_LEVEL")
        );
        assert_eq!(
            env_path("KIND_PARITY_SERVICES__API__BUILD__ARGS__VERSION"),
            Path::parse("services.api.build.args.VERSION")
        );
    }

    #[test]
    fn a_variable_names_config_keys_in_lowercase() {
        assert_eq!(env_path("KIND_PARITY_SERVICES__API__REPLICAS"), Path::parse("services.api.replicas"));
        assert_eq!(env_path("KIND_PARITY_POSTGRES__ENABLED"), Path::parse("postgres.enabled"));
    }

    #[test]
    fn a_variable_sets_the_environment_key_it_names() {
        let options = LoadOptions {
            env: vec![("KIND_PARITY_SERVICES__API__ENV__LOG_LEVEL".into(), "debug".into())],
            ..LoadOptions::default()
        };
        let loaded = load(&options).unwrap();
        let env = &loaded.config.services["api"].env;
        assert_eq!(env.get("LOG_LEVEL").map(String::as_str), Some("debug"));
        assert!(!env.contains_key("log_level"), "{env:?}");
    }
}
