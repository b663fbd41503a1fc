//! The CI gate as documented is the gate as run: every `kind-parity …` line of docs/ci.md and of
//! the workflows parses with the binary's own clap definition, and docs/ci.md's GitHub and
//! GitLab jobs and the project's `gate` workflow job run exactly `kind_parity::ci::GATE`, the
//! command lines `cargo xtask e2e` runs among its steps (xtask's own test checks that side).

use std::path::{Path, PathBuf};

use clap::Parser as _;
use kind_parity::{Cli, ci};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde_yaml_ng::Value;

/// A `kind-parity` command: its arguments after the program name.
type Args = Vec<String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn yaml(path: &str, text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// Words that end a simple command; what follows starts a new one.
const SEPARATORS: &[&str] = &["&&", "||", ";", "|", "&"];
/// Reserved words after which a command starts.
const KEYWORDS: &[&str] = &["if", "then", "else", "elif", "while", "until", "do", "!", "{"];

/// The `kind-parity` commands of a shell script, each as its arguments after the program name:
/// words in command position named `kind-parity`, up to a separator or a redirection.
fn invocations(script: &str) -> Vec<Args> {
    let mut found = Vec::new();
    // A line continued with a backslash is one command line.
    for line in script.replace("\\\n", " ").lines() {
        let words = shlex::split(line).unwrap_or_else(|| panic!("not a shell line: {line}"));
        let mut command_position = true;
        let mut current: Option<Args> = None;
        for word in words {
            let (word, separated) = match word.strip_suffix(';') {
                Some(before) if !before.is_empty() => (before.to_owned(), true),
                _ => (word, false),
            };
            if SEPARATORS.contains(&word.as_str()) {
                found.extend(current.take());
                command_position = true;
                continue;
            }
            if word.starts_with('>') || word.starts_with('<') || word.starts_with("2>") {
                found.extend(current.take());
                command_position = false;
            } else if let Some(args) = &mut current {
                args.push(word);
            } else if command_position && word == "kind-parity" {
                current = Some(Vec::new());
            } else {
                command_position = KEYWORDS.contains(&word.as_str());
            }
            if separated {
                found.extend(current.take());
                command_position = true;
            }
        }
        found.extend(current);
    }
    found
}

/// The `kind-parity` commands of a GitHub Actions job, from its steps' `run`, in order.
fn github_job(job: &Value) -> Vec<Args> {
    let steps = job["steps"].as_sequence().expect("a job has steps");
    steps.iter().filter_map(|s| s["run"].as_str()).flat_map(invocations).collect()
}

/// The `kind-parity` commands of a GitLab CI job, from its scripts, in the order they run.
fn gitlab_job(job: &Value) -> Vec<Args> {
    ["before_script", "script", "after_script"]
        .iter()
        .flat_map(|key| match &job[*key] {
            Value::String(line) => vec![line.as_str()],
            Value::Sequence(lines) => lines.iter().map(|l| l.as_str().expect("a script line is a string")).collect(),
            _ => Vec::new(),
        })
        .flat_map(invocations)
        .collect()
}

/// docs/ci.md's fenced code blocks (info string, text) and its inline code.
fn markdown(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let (mut blocks, mut spans) = (Vec::new(), Vec::new());
    let mut open: Option<(String, String)> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => open = Some((info.to_string(), String::new())),
            Event::Text(body) if open.is_some() => open.as_mut().expect("open").1.push_str(&body),
            Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            Event::Code(code) => spans.push(code.to_string()),
            _ => {}
        }
    }
    (blocks, spans)
}

/// The `kind-parity` commands of a CI file: a GitHub workflow (it has `jobs`) or a GitLab CI
/// file (its jobs have a `script`); `None` for other YAML.
fn ci_file(document: &Value) -> Option<CiFile> {
    if let Some(jobs) = document["jobs"].as_mapping() {
        return Some(CiFile { system: System::GitHub, commands: jobs.values().flat_map(github_job).collect() });
    }
    let mapping = document.as_mapping()?;
    mapping
        .values()
        .any(|job| job.get("script").is_some())
        .then(|| CiFile { system: System::GitLab, commands: mapping.values().flat_map(gitlab_job).collect() })
}

/// A CI file's system and its `kind-parity` commands, in order.
struct CiFile {
    system: System,
    commands: Vec<Args>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    GitHub,
    GitLab,
}

/// docs/ci.md's CI files (its YAML blocks, parsed), and the commands of its other code: inline
/// code and the other blocks, read as shell.
fn documented() -> (Vec<CiFile>, Vec<Args>) {
    let (blocks, spans) = markdown(&read("docs/ci.md"));
    let (mut files, mut others) = (Vec::new(), Vec::new());
    for (info, body) in &blocks {
        if info == "yaml" {
            files.extend(ci_file(&yaml(&format!("docs/ci.md ({info} block)"), body)));
        } else {
            others.extend(invocations(body));
        }
    }
    others.extend(spans.iter().filter(|s| s.starts_with("kind-parity ")).flat_map(|s| invocations(s)));
    (files, others)
}

fn gate() -> Vec<Args> {
    ci::GATE.iter().map(|command| command.iter().map(|w| (*w).to_owned()).collect()).collect()
}

fn parses(place: &str, args: &[String]) {
    if let Err(e) = Cli::try_parse_from(std::iter::once("kind-parity").chain(args.iter().map(String::as_str))) {
        panic!("{place}: `kind-parity {}` is not a command the CLI accepts:\n{e}", args.join(" "));
    }
}

#[test]
fn every_kind_parity_command_in_the_docs_and_workflows_parses() {
    let (files, others) = documented();
    let mut commands: Vec<(&str, Args)> = Vec::new();
    commands.extend(files.into_iter().flat_map(|f| f.commands).map(|c| ("docs/ci.md", c)));
    commands.extend(others.into_iter().map(|c| ("docs/ci.md", c)));
    for path in [".github/workflows/ci.yml", ".github/workflows/e2e.yml"] {
        let workflow = ci_file(&yaml(path, &read(path))).expect("a workflow");
        assert_eq!(workflow.system, System::GitHub, "{path}");
        commands.extend(workflow.commands.into_iter().map(|c| (path, c)));
    }
    // The two documented jobs and the gate workflow job at least.
    assert!(commands.len() >= 3 * ci::GATE.len(), "only {} kind-parity commands found", commands.len());
    for (place, args) in &commands {
        parses(place, args);
    }
}

#[test]
fn the_documented_github_and_gitlab_jobs_run_the_gate() {
    let (files, _) = documented();
    let systems: Vec<System> = files.iter().map(|f| f.system).collect();
    assert_eq!(
        systems,
        [System::GitHub, System::GitLab],
        "docs/ci.md has one GitHub workflow, then one GitLab CI file"
    );
    for file in &files {
        assert_eq!(file.commands, gate(), "docs/ci.md's {:?} job", file.system);
    }
}

#[test]
fn the_projects_gate_job_runs_what_the_docs_show() {
    let path = ".github/workflows/e2e.yml";
    let workflow = yaml(path, &read(path));
    assert_eq!(github_job(&workflow["jobs"]["gate"]), gate(), "e2e.yml's gate job");
    let e2e: Vec<&str> = workflow["jobs"]["e2e"]["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        e2e.iter().any(|run| shlex::split(run)
            .is_some_and(|w| w.starts_with(&["cargo", "xtask", "e2e", "--junit"].map(String::from)))),
        "e2e.yml's e2e job runs `cargo xtask e2e --junit …`: {e2e:?}"
    );
}

#[test]
fn invocations_are_found_in_command_position_only() {
    let script = "if kind-parity doctor &&\n  kind-parity up --timeout 15m\nthen gate=0\nelse kind-parity logs --out d || true\nfi\n\
                  cargo install --git u kind-parity # kind-parity render\nkind-parity down \\\n  --yes > /dev/null";
    let found: Vec<String> = invocations(script).iter().map(|a| a.join(" ")).collect();
    assert_eq!(found, ["doctor", "up --timeout 15m", "logs --out d", "down --yes"]);
}
