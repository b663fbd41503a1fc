//! kind-parity: the `kind-parity` binary's library, for the binary, `cargo xtask` and the man
//! pages.
//!
//! This crate is the thin layer over the libraries: it parses arguments (clap), turns them into
//! the lifecycle's option structs, opens a [`kind_parity_lifecycle::Environment`], and draws the
//! lifecycle's events (`reporter`) and reports. It is the only crate that prints: results go to
//! stdout (YAML, JSON, reports), messages for people go to stderr; with `--output json`, stdout
//! holds only JSON, a failure included ([`Failure::json`]). Embedders use
//! `kind-parity-lifecycle` directly; [`run`] builds a tokio runtime and is for the binary only.
//!
//! Exit codes ([`ExitStatus`]): 0 success; 1 the command failed (`render --drift` found drift,
//! a probe failed); 2 bad arguments or an invalid config; 3 the command is not available in this
//! version; 130 (SIGINT, Ctrl-C) and 143 (SIGTERM): a command that changes the environment was
//! interrupted.

#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
pub mod ci;
mod cluster;
mod images;
mod init;
mod interrupt;
mod logs;
mod reporter;
mod validate;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
pub use args::{Cli, ColorChoice, Command, GlobalArgs, OutputFormat};
use kind_parity_lifecycle::{Environment, Hint, RenderOptions};
use kind_parity_render::{LoadOptions, Loaded, Override};

/// How the binary exits; every failure that ends a command maps to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The command did what it was asked.
    Success = 0,
    /// The command failed: a step failed, drift was found, a probe failed.
    Failure = 1,
    /// Bad arguments or an invalid config.
    Usage = 2,
    /// The command is not available in this version.
    Unavailable = 3,
    /// A command that changes the environment was interrupted by Ctrl-C (SIGINT), as shells
    /// report it.
    Interrupted = 130,
    /// A command that changes the environment was stopped by SIGTERM, as shells report it.
    Terminated = 143,
}

impl ExitStatus {
    /// The word `--output json` names the status with (`"kind"` of an error).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Usage => "usage",
            Self::Unavailable => "unavailable",
            Self::Interrupted => "interrupted",
            Self::Terminated => "terminated",
        }
    }
}

impl ExitStatus {
    /// [`ExitStatus::Failure`] when `failed` (drift found, a probe or a check failed), else
    /// [`ExitStatus::Success`].
    pub fn failed_if(failed: bool) -> Self {
        if failed { Self::Failure } else { Self::Success }
    }
}

impl From<ExitStatus> for u8 {
    fn from(status: ExitStatus) -> Self {
        status as u8
    }
}

/// Exit code: bad arguments or an invalid config.
pub const EXIT_USAGE: u8 = ExitStatus::Usage as u8;
/// Exit code: the command is not available in this version.
pub const EXIT_UNAVAILABLE: u8 = ExitStatus::Unavailable as u8;

/// An error of the binary's own (a flag's value it cannot use), with what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// What to tell the user.
    pub message: String,
    /// What to do next.
    pub help: Option<String>,
    /// How the process exits.
    pub status: ExitStatus,
}

/// A failure that ends a command: the error with its causes, what to do next, the exit status.
#[derive(Debug)]
pub struct Failure {
    /// What failed, with its causes.
    pub error: anyhow::Error,
    /// What to do next (`next: …`).
    pub hint: Option<String>,
    /// How the process exits.
    pub status: ExitStatus,
}

impl Failure {
    /// The failure as `--output json` prints it, one object:
    /// `{"error": {"message", "causes", "hint", "exit_code", "kind"}}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.error.to_string(),
                "causes": causes(&self.error),
                "hint": self.hint,
                "exit_code": u8::from(self.status),
                "kind": self.status.kind(),
            }
        })
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { error, hint: None, status: ExitStatus::Failure }
    }
}

impl From<Exit> for Failure {
    fn from(exit: Exit) -> Self {
        Self { hint: exit.help.clone(), status: exit.status, error: exit.into() }
    }
}

impl From<kind_parity_lifecycle::Error> for Failure {
    fn from(error: kind_parity_lifecycle::Error) -> Self {
        let status = if error.is_usage() { ExitStatus::Usage } else { ExitStatus::Failure };
        Self { hint: error.hint().map(|hint| hint_text(&hint)), status, error: error.into() }
    }
}

impl From<kind_parity_render::Error> for Failure {
    fn from(error: kind_parity_render::Error) -> Self {
        kind_parity_lifecycle::Error::from(error).into()
    }
}

/// A lifecycle's hint in the binary's terms: its commands and flags.
pub(crate) fn hint_text(hint: &Hint) -> String {
    match hint {
        Hint::FixPreflight => "fix what the lines above say, then run `kind-parity up` again".into(),
        Hint::FixPreflightThenReset => {
            "nothing was deleted: fix what the lines above say, then run `kind-parity reset` again".into()
        }
        Hint::Reset => "run `kind-parity reset` to recreate it from the current config".into(),
        Hint::UpFirst => "run `kind-parity up` first (validate checks a running environment)".into(),
        Hint::UpCreatesCluster => "`kind-parity up` creates it".into(),
        Hint::LongerTimeout { .. } => {
            "the pod above says what it waited for; if it was only slow, raise `--timeout` (e.g. `--timeout 20m`)"
                .into()
        }
        Hint::LoadImages => "on kind, run `kind-parity up` (it builds the services' images and loads them into every node) or `kind-parity load IMAGE`; on an existing cluster, give the service a pushed `image:`".into(),
        Hint::Drift => "`kind-parity render --drift` shows where the service's env differs between compose and kind".into(),
        Hint::FixParity => "fix the first root cause above; `kind-parity validate` runs the check again".into(),
        Hint::StartDockerForDown => "start Docker and run `kind-parity down` again, or install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation); the state folder was kept".into(),
        Hint::OtherOutFolder => {
            "pick an empty or new folder for --out: kind-parity replaces it whole on every render".into()
        }
        Hint::KnownServices { known } => format!(
            "services with a `build`: {}",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ),
        Hint::BuildOrPull => "build it (`kind-parity build`) or pull it first".into(),
        Hint::Render => "run `kind-parity render` to write the environment's secrets and CA again".into(),
        Hint::Force => "another manager changed these fields of this environment's own object: rerun with --force to take them back (--force never takes over an object of another tool or environment)".into(),
        Hint::NotOurs { object, environment } => format!(
            "kind-parity takes over no object it did not create: delete {object} if nothing needs it, or hand it to this environment with the label kind-parity.dev/environment={environment}; a cluster's own ingress controller (k3s and k3d install Traefik with IngressClass `traefik`) is best disabled for a parity environment (k3s `--disable traefik`)"
        ),
        Hint::AnotherEnvironments { environment } => format!(
            "give this environment another `name` or `namespace`, or run `kind-parity down` in the checkout of {environment} first"
        ),
        Hint::OtherEnvironment { namespace } => format!(
            "give this environment another `name` (or `namespace`), or run `kind-parity down` in the checkout that brought {namespace} up; if that state folder is gone for good, `kind-parity down` here deletes a kind cluster, and on an existing cluster `kubectl delete namespace {namespace}` frees it"
        ),
        Hint::AllowContext { context } => {
            format!("add it to `cluster.allowed_contexts` or pass `--allow-context {context}`")
        }
        Hint::ObjectsRemain => "`kubectl get` them to see what holds them (a finalizer, a webhook, permissions), then run `kind-parity down` again: the state folder was kept".into(),
        Hint::DownKind => "run `kind-parity down` first (it deletes the kind cluster its objects are in), or give this environment another --state-dir".into(),
        Hint::DownExisting { context } => format!(
            "run `kind-parity down --cluster existing --context {context}` first (add --kubeconfig FILE if it is not in your default kubeconfig)"
        ),
        Hint::Busy { pid } => {
            let stop = pid.map_or_else(String::new, |pid| format!(" (`kill {pid}`: it stops cleanly on SIGTERM)"));
            format!("wait for it to finish, or stop it{stop}; `--lock-timeout 10m` waits longer")
        }
        _ => "see docs/runbook.md".into(),
    }
}

/// A probe's next action in the binary's terms: the command that takes it. The probes library
/// says what to do in words that name no command, and which [`kind_parity_probes::Next`]
/// actions it refers to.
pub(crate) fn next_command(next: &kind_parity_probes::Next) -> String {
    use kind_parity_probes::Next;
    match next {
        Next::Up => "`kind-parity up`".into(),
        Next::Status => "`kind-parity status`".into(),
        Next::Logs { .. } => "`kind-parity logs`".into(),
        Next::Reset => "`kind-parity reset`".into(),
        Next::Render => "`kind-parity render`".into(),
        Next::Drift => "`kind-parity render --drift`".into(),
        Next::Address { component } => format!("`kind-parity validate --{component} HOST:PORT`"),
        other => other.to_string(),
    }
}

/// What a command returns: how it exits, or the failure that ended it.
pub(crate) type Outcome = Result<ExitStatus, Failure>;

/// Sets up logging to stderr at the level [`log_filter`] makes of `-v`/`-q` (or
/// `KIND_PARITY_LOG`).
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KIND_PARITY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(global.quiet, global.verbose)));
    // handlebars logs every value it renders at debug level, secrets included: never let it.
    let filter = filter.add_directive("handlebars=warn".parse().expect("a valid directive"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_color(global.color))
        .without_time()
        .try_init();
}

/// The crates of kind-parity, whose logs `-v` raises first.
const OUR_CRATES: [&str; 6] = [
    "kind_parity",
    "kind_parity_lifecycle",
    "kind_parity_render",
    "kind_parity_images",
    "kind_parity_cluster",
    "kind_parity_probes",
];

/// The clients whose requests `-vv` shows: the Kubernetes API's and the Docker Engine's.
const CLIENT_CRATES: [&str; 4] = ["kube", "kube_client", "kube_runtime", "bollard"];

/// The tracing filter of `-q` and each count of `-v`: none shows errors only; the default is
/// kind-parity's warnings; `-v` its debug lines and the other crates' warnings; `-vv` its trace
/// lines and the Kubernetes and Docker clients' debug lines (each request), and more `v`s no
/// more than that. Other crates stay quiet by default: kube's client logs every failed request at ERROR
/// (`kube_client::client::builder: failed with error …`) before the error reaches us, and the
/// error we print says it with the server's address and the fix.
pub fn log_filter(quiet: bool, verbose: u8) -> String {
    let (ours, clients, others) = match (quiet, verbose) {
        (true, _) => ("error", "off", "off"),
        (false, 0) => ("warn", "off", "off"),
        (false, 1) => ("debug", "warn", "warn"),
        // Not trace for the clients: theirs holds request bodies, applied Secrets among them.
        (false, _) => ("trace", "debug", "warn"),
    };
    std::iter::once(others.to_owned())
        .chain(CLIENT_CRATES.iter().map(|c| format!("{c}={clients}")))
        .chain(OUR_CRATES.iter().map(|c| format!("{c}={ours}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether to color what goes to stderr.
pub(crate) fn use_color(choice: ColorChoice) -> bool {
    use_color_on(choice, std::io::stderr().is_terminal())
}

/// Whether to color what goes to a stream that is a `terminal` or not (`auto` colors a terminal
/// only, and never with `NO_COLOR` set).
pub(crate) fn use_color_on(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Runs a parsed command line and returns the exit code, printing errors with their causes (on
/// stderr; with `--output json`, as one JSON object on stdout, [`Failure::json`]).
/// Builds the tokio runtime the commands run on: for the binary and xtask, not for async callers
/// (they use `kind-parity-lifecycle`).
pub fn run(cli: Cli) -> ExitCode {
    let global = cli.global();
    let color = use_color(global.color);
    match execute(&cli.command, &global) {
        Ok(status) => ExitCode::from(u8::from(status)),
        Err(failure) if global.output == OutputFormat::Json => {
            // One line: after the JSON lines of `up` and the others it is the stream's last.
            reporter::line(&failure.json());
            ExitCode::from(u8::from(failure.status))
        }
        Err(failure) => {
            let (red, bold, reset) = if color { ("\x1b[31m", "\x1b[1m", "\x1b[0m") } else { ("", "", "") };
            eprintln!("{red}{bold}error{reset}{bold}:{reset} {}", failure.error);
            for cause in causes(&failure.error) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(hint) = &failure.hint {
                eprintln!("  next: {hint}");
            }
            ExitCode::from(u8::from(failure.status))
        }
    }
}

/// Ends a command line clap refused (or `--help`, `--version`): printed as clap prints it, or,
/// when the command line asks for `--output json`, as the same JSON object as any other error
/// ([`Failure::json`]), on stdout; exit 2 for a refusal ([`ExitStatus::Usage`]), 0 for help.
pub fn refused(error: &clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    // `--help` and `--version` end well; anything else clap refuses is a usage error.
    let status = if error.use_stderr() { ExitStatus::Usage } else { ExitStatus::Success };
    if !error.use_stderr() || !asks_for_json(args) {
        let _ = error.print();
        return ExitCode::from(u8::from(status));
    }
    let text = error.render().to_string();
    let message = text.lines().next().unwrap_or_default().trim_start_matches("error: ").trim().to_owned();
    let hint = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .map_or_else(|| "run with --help to see what the command takes".to_owned(), str::to_owned);
    let failure = Failure { error: anyhow::anyhow!(message), hint: Some(hint), status };
    reporter::line(&failure.json());
    ExitCode::from(u8::from(status))
}

/// Whether a command line clap could not parse says `--output json` (`--output=json`).
fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    args.iter().any(|a| a == "--output=json") || args.windows(2).any(|w| w[0] == "--output" && w[1] == "json")
}

/// The causes of `error` worth printing under it: a cause whose text the one above already
/// holds is left out. Some errors (kube's kubeconfig errors, io errors wrapped by their callers)
/// repeat their source in their own message, and the user would read it twice.
pub(crate) fn causes(error: &anyhow::Error) -> Vec<String> {
    let mut above = error.to_string();
    let mut out = Vec::new();
    for cause in error.chain().skip(1) {
        let text = match cause.downcast_ref::<kube::Error>() {
            // kube writes the API server's answer with its whole Debug form after it, which
            // repeats the message once more per cause of the object's invalidity.
            Some(kube::Error::Api(status)) => status.to_string(),
            _ => cause.to_string(),
        };
        if !above.contains(&text) {
            out.push(text.clone());
        }
        above = text;
    }
    out
}

fn execute(command: &Command, global: &GlobalArgs) -> Outcome {
    match command {
        Command::Render(args) => render(global, args),
        Command::Config(args) => config(global, args),
        Command::Apply(args) => changing("apply", cluster::apply(global, args)),
        Command::Up(args) => changing("up", cluster::up(global, args)),
        Command::Doctor(_) => runtime()?.block_on(cluster::doctor(global)),
        Command::Down(args) => changing("down", cluster::down(global, args)),
        Command::Reset(args) => changing("reset", cluster::reset(global, args)),
        Command::Status(args) => runtime()?.block_on(cluster::status(global, args)),
        Command::Validate(args) => runtime()?.block_on(validate::validate(global, args)),
        Command::Build(args) => changing("build", images::build(global, args)),
        Command::Logs(args) => runtime()?.block_on(logs::logs(global, args)),
        Command::Load(args) => changing("load", images::load(global, args)),
        Command::Completions(args) if global.output == OutputFormat::Json => {
            let mut script = Vec::new();
            completions(args.shell, &mut script)?;
            let script = String::from_utf8_lossy(&script);
            reporter::line(&serde_json::json!({ "shell": args.shell.to_string(), "script": script }));
            Ok(ExitStatus::Success)
        }
        Command::Completions(args) => {
            completions(args.shell, &mut std::io::stdout().lock())?;
            Ok(ExitStatus::Success)
        }
        Command::Init(args) => init::init(global, args),
        Command::Schema => {
            schema(&mut std::io::stdout().lock())?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Writes the JSON Schema of `kind-parity.yaml` (generated from the config model) to `out`.
pub fn schema(out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&kind_parity_render::json_schema()).context("serializing the schema")?;
    writeln!(out, "{text}").context("writing the schema")
}

/// Writes the completion script of `shell` for the `kind-parity` command line to `out`,
/// generated from the same clap definitions the binary parses with.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kind-parity", &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 spells the case labels of a hyphenated binary's commands otherwise
        // than the state it matches them with (`kind__subcmd__parity__subcmd__up` against
        // `kind__parity__subcmd__up`), so no command's options complete (clap-rs/clap#6421).
        // Spelling them as the state is spelt is a no-op once the generator is fixed.
        script = String::from_utf8_lossy(&script).replace("kind__subcmd__parity", "kind__parity").into_bytes();
    }
    out.write_all(&script).context("writing the completion script")
}

/// Loads the layered config the way every command does: flags on top of everything.
pub fn load_config(global: &GlobalArgs) -> Result<Loaded, Failure> {
    let mut overrides = Vec::new();
    if let Some(name) = &global.name {
        overrides.push(Override { flag: format!("--name {name}"), path: "name".into(), value: name.clone() });
    }
    for set in &global.set {
        let (path, value) = set.split_once('=').ok_or_else(|| Exit {
            message: format!("`--set {set}` has no value"),
            help: Some("write `--set path=value`, e.g. `--set services.api.replicas=2`".into()),
            status: ExitStatus::Usage,
        })?;
        overrides.push(Override { flag: format!("--set {set}"), path: path.trim().into(), value: value.into() });
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let options = LoadOptions::from_process(global.config.clone(), cwd, overrides);
    let loaded = kind_parity_render::load(&options)?;
    if loaded.files.is_empty() && !global.quiet {
        eprintln!("warning: no kind-parity.yaml here: using the embedded demo stack (examples/demo)");
    }
    Ok(loaded)
}

/// Loads the config and opens its environment in `--state-dir`.
pub(crate) fn open(global: &GlobalArgs) -> Result<Environment, Failure> {
    Ok(Environment::open(load_config(global)?, &global.state_dir))
}

/// Says that `command` waits for the holder of the environment's lock, unless `-q`.
fn waiting(global: &GlobalArgs, environment: &Environment) -> impl FnOnce(&kind_parity_lifecycle::Holder) {
    let quiet = global.quiet;
    let timeout = humantime::format_duration(global.lock_timeout).to_string();
    let (name, file) = (environment.name().to_owned(), environment.state().lock_file());
    move |holder: &kind_parity_lifecycle::Holder| {
        if !quiet {
            eprintln!("waiting up to {timeout} for {holder} to finish with {name} (it holds {})", file.display());
        }
    }
}

/// Takes the environment's lock for a command that changes it (render, up, apply, down, reset,
/// build), waiting up to `--lock-timeout`; held until the returned lock is dropped, which an
/// interrupted command's future does too.
pub(crate) async fn lock(
    global: &GlobalArgs,
    environment: &Environment,
    command: &str,
) -> Result<kind_parity_lifecycle::Lock, Failure> {
    crate::interrupt::step(&format!("waiting for the lock of {}", environment.name()));
    Ok(environment.lock(command, global.lock_timeout, waiting(global, environment)).await?)
}

fn source_text(loaded: &Loaded) -> String {
    match loaded.files.first() {
        Some(file) => file.display().to_string(),
        None => "the embedded demo stack".into(),
    }
}

fn render(global: &GlobalArgs, args: &args::RenderArgs) -> Outcome {
    if args.drift {
        let loaded = load_config(global)?;
        let report = kind_parity_render::drift(&loaded.config)?;
        match global.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "passed": report.passes(),
                    "services": report.services,
                }))
                .map_err(anyhow::Error::from)?
            ),
            OutputFormat::Human => print!("{report}"),
        }
        // Declared differences are decisions (docs/modes.md); only undeclared drift fails.
        return Ok(ExitStatus::failed_if(!report.passes()));
    }
    let environment = open(global)?;
    let _lock = environment.lock_blocking("render", global.lock_timeout, waiting(global, &environment))?;
    let options = RenderOptions { out: args.out.clone(), templates: args.templates.clone() };
    let rendered = environment.render(&options)?;
    let (loaded, state) = (environment.loaded(), environment.state());
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "environment": loaded.config.name,
                "out": rendered.out,
                "files": rendered.files,
                "ca": state.ca_file(),
            }))
            .map_err(anyhow::Error::from)?
        ),
        OutputFormat::Human if !global.quiet => {
            eprintln!(
                "rendered {} files from {} into {}",
                rendered.files.len(),
                source_text(loaded),
                rendered.out.display()
            );
            for file in &rendered.files {
                eprintln!("  {file}");
            }
            eprintln!(
                "local CA: {} (trust it to open https://*.{} without warnings)",
                state.ca_file().display(),
                loaded.config.domain
            );
        }
        OutputFormat::Human => {}
    }
    Ok(ExitStatus::Success)
}

fn config(global: &GlobalArgs, args: &args::ConfigArgs) -> Outcome {
    let mut loaded = load_config(global)?;
    // A value the renderer derives when it is unset (the namespace from the name, …) is shown
    // as derived, not as `null`; no layer set it, so its origin is `default`.
    loaded.config = loaded.config.resolved();
    match (global.output, args.explain) {
        (OutputFormat::Json, false) => {
            println!("{}", serde_json::to_string_pretty(&loaded.config).map_err(anyhow::Error::from)?);
        }
        (OutputFormat::Json, true) => {
            let explained = serde_json::json!({
                "source": source_text(&loaded),
                "config": loaded.config,
                "origins": kind_parity_render::origins(&loaded),
            });
            println!("{}", serde_json::to_string_pretty(&explained).map_err(anyhow::Error::from)?);
        }
        (OutputFormat::Human, true) => {
            println!("# effective config of {}: each value with where it came from", source_text(&loaded));
            print!("{}", kind_parity_render::explain(&loaded));
        }
        (OutputFormat::Human, false) => {
            print!("{}", serde_yaml_ng::to_string(&loaded.config).map_err(anyhow::Error::from)?);
        }
    }
    Ok(ExitStatus::Success)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Runs a command that changes the environment (or its images) so that Ctrl-C and SIGTERM stop
/// it with a message saying what was under way (see [`interrupt`]).
fn changing(command: &str, work: impl std::future::Future<Output = Outcome>) -> Outcome {
    let runtime = runtime()?;
    let result = runtime.block_on(interrupt::interruptible(command, work));
    // Blocking work still running (a render writing its files atomically) gets a moment to end;
    // the runtime's drop would wait for it without limit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}

#[cfg(test)]
mod tests {
    use super::{causes, log_filter, next_command};

    #[test]
    fn a_probes_next_action_is_worded_as_the_command_that_takes_it() {
        use kind_parity_probes::Next;
        let cases = [
            (Next::Up, "`kind-parity up`"),
            (Next::Status, "`kind-parity status`"),
            (Next::logs_of("vault"), "`kind-parity logs`"),
            (Next::Reset, "`kind-parity reset`"),
            (Next::Render, "`kind-parity render`"),
            (Next::Drift, "`kind-parity render --drift`"),
            (Next::Address { component: "redis".into() }, "`kind-parity validate --redis HOST:PORT`"),
        ];
        for (next, command) in cases {
            assert_eq!(next_command(&next), command, "{next:?}");
        }
        assert_eq!(
            kind_parity_probes::worded("read its log", &[Next::logs_of("vault")], &next_command),
            "read its log (`kind-parity logs`)"
        );
    }

    /// The directive `filter` holds for `target` (`target=level`), or its default level.
    fn level_of(filter: &str, target: &str) -> String {
        let directives: Vec<&str> = filter.split(',').collect();
        directives.iter().find_map(|d| d.strip_prefix(&format!("{target}="))).unwrap_or(directives[0]).to_owned()
    }

    #[test]
    fn each_verbosity_shows_more_than_the_one_before() {
        // Regression (issue 11): -vv showed what -v showed.
        let levels = |verbose| {
            let filter = log_filter(false, verbose);
            assert!(tracing_subscriber::EnvFilter::try_new(&filter).is_ok(), "{filter}");
            (level_of(&filter, "kind_parity_cluster"), level_of(&filter, "kube_client"), level_of(&filter, "hyper"))
        };
        assert_eq!(levels(0), ("warn".into(), "off".into(), "off".into()));
        assert_eq!(levels(1), ("debug".into(), "warn".into(), "warn".into()));
        assert_eq!(levels(2), ("trace".into(), "debug".into(), "warn".into()));
        assert_eq!(levels(3), levels(2), "-vvv shows what -vv shows: the clients' trace would hold Secrets");
        assert_eq!(level_of(&log_filter(false, 2), "bollard"), "debug");
    }

    #[test]
    fn quiet_shows_only_our_errors() {
        let filter = log_filter(true, 0);
        assert_eq!(level_of(&filter, "kind_parity"), "error");
        assert_eq!(level_of(&filter, "kube_client"), "off");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read kubeconfig from \"k\": No such file or directory (os error 2)")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn the_api_servers_refusal_is_printed_once_without_its_debug_form() {
        // Regression (issue 12): a refused object's message came three times, in a Debug dump.
        let status = kube::core::Status {
            code: 422,
            message: "Service \"1worker\" is invalid: metadata.name: Invalid value: \"1worker\"".into(),
            reason: "Invalid".into(),
            ..Default::default()
        };
        let error = anyhow::Error::new(kube::Error::Api(Box::new(status))).context("applying v1 Service kp/1worker");
        assert_eq!(
            causes(&error),
            ["Service \"1worker\" is invalid: metadata.name: Invalid value: \"1worker\": Invalid"]
        );
    }

    #[test]
    fn a_cause_the_message_above_repeats_is_printed_once() {
        // Regression: `loading kubeconfig …` printed kube's error and then its io error, the same text twice.
        let error = anyhow::Error::new(Repeats(std::io::Error::from_raw_os_error(2))).context("loading kubeconfig k");
        assert_eq!(causes(&error), ["failed to read kubeconfig from \"k\": No such file or directory (os error 2)"]);
    }
}
