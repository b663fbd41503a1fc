//! The binary's reporters of the lifecycle's events: [`Human`] draws them on stderr (a spinner
//! per build and a bar per node on a terminal, lines otherwise), [`Json`] writes each as one
//! JSON line on stdout, for IDEs and CI. Events are what a command does while it runs; its
//! result (a table, a report) each command prints on stdout itself.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kind_parity_lifecycle::{CheckStatus, Event, ReadinessState, Reporter};

use crate::args::GlobalArgs;

/// Whether to draw live progress: stderr is a terminal, not CI, not quiet.
pub(crate) fn live_progress(global: &GlobalArgs) -> bool {
    !global.quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Lines (and bars) for people, on stderr.
pub(crate) struct Human {
    quiet: bool,
    verbose: bool,
    live: bool,
    /// Rewrite one line per probe answer (`validate` on a terminal).
    probe_line: bool,
    spinner: Mutex<Option<ProgressBar>>,
    bars: Mutex<Option<(MultiProgress, HashMap<String, ProgressBar>)>>,
    probe_line_drawn: std::sync::atomic::AtomicBool,
}

impl Human {
    pub(crate) fn new(global: &GlobalArgs) -> Self {
        Self {
            quiet: global.quiet,
            verbose: global.verbose > 0,
            live: live_progress(global),
            probe_line: false,
            spinner: Mutex::new(None),
            bars: Mutex::new(None),
            probe_line_drawn: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Also draws a live line of the probes as they answer (`validate` in human output).
    pub(crate) fn with_probe_line(mut self) -> Self {
        self.probe_line = self.live;
        self
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Removes whatever is still drawn (a spinner or bars of a step that failed, the probe line).
    pub(crate) fn clear(&self) {
        if let Some(bar) = self.spinner.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
        if let Some((multi, _)) = self.bars.lock().expect("not poisoned").take() {
            let _ = multi.clear();
        }
        if self.probe_line_drawn.swap(false, std::sync::atomic::Ordering::Relaxed) {
            eprint!("\r\x1b[2K");
        }
    }

    fn load_progress(&self, event: &Event) {
        if !self.live {
            return;
        }
        let mut bars = self.bars.lock().expect("not poisoned");
        let (multi, by_node) =
            bars.get_or_insert_with(|| (MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), HashMap::new()));
        match event {
            Event::NodeChecked { node, present, retag, send } => {
                let style = ProgressStyle::with_template("  {prefix:<32} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}")
                    .expect("a valid template");
                let bar = multi.add(ProgressBar::new(0).with_style(style).with_prefix(node.clone()));
                bar.set_message(format!("{send} to send, {present} present, {retag} to re-tag"));
                by_node.insert(node.clone(), bar);
            }
            Event::NodeSent { node, bytes, estimated_total } => {
                if let Some(bar) = by_node.get(node) {
                    bar.set_length((*estimated_total).max(*bytes));
                    bar.set_position(*bytes);
                }
            }
            Event::NodeVerified { node } => {
                if let Some(bar) = by_node.get(node) {
                    bar.finish_with_message("verified");
                }
            }
            _ => {}
        }
    }
}

impl Reporter for Human {
    fn report(&self, event: &Event) {
        crate::interrupt::record(event);
        match event {
            // `logs` says where it wrote when it is done.
            Event::StepStarted { step: kind_parity_lifecycle::Step::Logs, .. } => {}
            Event::StepStarted { message, .. } | Event::StepFinished { message, .. } | Event::Info { message, .. } => {
                self.say(message);
            }
            Event::Warning { message } => self.say(&format!("warning: {message}")),
            Event::PreflightCheck { name, status, found, fix, recreate } => {
                let text = check_text(name, *status, found, fix.as_deref(), *recreate);
                match status {
                    // A failure is said even with `-q`: it stops the command.
                    CheckStatus::Fail => eprintln!("{text}"),
                    _ => self.say(&text),
                }
            }
            Event::BuildStarted { service } if self.live => {
                let bar = ProgressBar::new_spinner().with_message(format!("building {service}"));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                *self.spinner.lock().expect("not poisoned") = Some(bar);
            }
            Event::BuildOutput { service, line } => {
                let spinner = self.spinner.lock().expect("not poisoned");
                if self.verbose {
                    match &*spinner {
                        Some(bar) => bar.println(format!("    {line}")),
                        None => eprintln!("    {line}"),
                    }
                } else if let Some(bar) = &*spinner {
                    bar.set_message(format!("building {service}: {}", line.chars().take(80).collect::<String>()));
                }
            }
            Event::ImageBuilt { tag, built, .. } => {
                if let Some(bar) = self.spinner.lock().expect("not poisoned").take() {
                    bar.finish_and_clear();
                }
                self.say(&format!("image {tag}: {}", if *built { "built" } else { "unchanged" }));
            }
            Event::ImagePushed { reference } => self.say(&format!("  pushed {reference}")),
            Event::NodeChecked { .. } | Event::NodeSent { .. } | Event::NodeVerified { .. } => {
                self.load_progress(event);
            }
            Event::NodeLoaded { node, images, bytes_sent, elapsed_ms } => {
                // Every node is done: the summary lines replace the bars.
                if let Some((multi, _)) = self.bars.lock().expect("not poisoned").take() {
                    let _ = multi.clear();
                }
                let outcomes: Vec<String> = images
                    .iter()
                    .map(|i| match &i.retagged_from {
                        Some(from) => format!("{} re-tagged from {from}", i.image),
                        None => format!("{} {}", i.image, i.outcome),
                    })
                    .collect();
                self.say(&format!(
                    "  {node}: {}; {:.1} MB sent in {:.1?}",
                    outcomes.join(", "),
                    *bytes_sent as f64 / 1e6,
                    std::time::Duration::from_millis(*elapsed_ms)
                ));
            }
            Event::ObjectsApplied { applied, created, configured, unchanged, pruned, .. } => {
                self.say(&format!(
                    "applied {applied} objects: {created} created, {configured} configured, {unchanged} unchanged; pruned {}",
                    pruned.len()
                ));
                for object in pruned {
                    self.say(&format!("  pruned {object}"));
                }
            }
            Event::Readiness { object, state, detail } => match state {
                ReadinessState::Ready => self.say(&format!("  ready: {object}")),
                ReadinessState::Waiting => self.say(&format!("  waiting: {object}: {detail}")),
                ReadinessState::Failed => self.say(&format!("  failed: {object}: {detail}")),
            },
            // Every few seconds, so a long wait is never silent: what is left, and why.
            Event::StillWaiting { waited_secs, deadline_secs, pending } => {
                let mut lines =
                    vec![format!("  still waiting after {waited_secs}s of {deadline_secs}s for {}:", pending.len())];
                lines.extend(pending.iter().map(|p| format!("    {}: {}", p.object, p.state)));
                self.say(&lines.join("\n"));
            }
            Event::ProbeFinished { done, total, result } if self.probe_line => {
                // One line, rewritten: the table follows when everything has answered.
                eprint!("\r\x1b[2K  [{done}/{total}] {} {}", result.outcome, result.id);
                self.probe_line_drawn.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Event::KindLogsExported { environment, path } => {
                eprintln!("kind's logs of {environment} are in {}", path.display());
            }
            _ => {}
        }
    }
}

/// A preflight check as its line says it (`ok    docker: 27.1`), and its `fix:` line under it
/// when it did not pass (a fix that recreates the environment names `reset`): for `up`'s
/// progress on stderr and `doctor`'s result on stdout.
pub(crate) fn check_text(name: &str, status: CheckStatus, found: &str, fix: Option<&str>, recreate: bool) -> String {
    let fix = match (fix.unwrap_or(""), recreate) {
        (fix, true) => format!("{fix} (`kind-parity reset`)"),
        (fix, false) => fix.to_owned(),
    };
    match status {
        CheckStatus::Pass => format!("ok    {name}: {found}"),
        CheckStatus::Warn => format!("warn  {name}: {found}\n      fix: {fix}"),
        CheckStatus::Fail => format!("fail  {name}: {found}\n      fix: {fix}"),
    }
}

/// Each event as one JSON line on stdout.
pub(crate) struct Json;

impl Reporter for Json {
    fn report(&self, event: &Event) {
        crate::interrupt::record(event);
        line(&serde_json::to_value(event).expect("an event serializes"));
    }
}

/// Writes one JSON value as a line on stdout, flushed: a reader sees each as it happens.
pub(crate) fn line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
