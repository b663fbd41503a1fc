//! kind-parity: the `kind-parity` binary's library, for the binary, `cargo xtask` and embedders.
//!
//! [`run`] executes parsed arguments and returns the exit code; the binary and xtask both call
//! it. This crate is the only one that prints: results go to stdout (YAML, JSON, reports),
//! messages for people go to stderr.
//!
//! Exit codes: 0 success; 1 the command failed (`render --drift` found drift, a probe failed);
//! 2 bad arguments or an invalid config; 3 the command is not available in this version; 130
//! (SIGINT, Ctrl-C) and 143 (SIGTERM): a command that changes the environment was interrupted.

#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
mod cluster;
mod images;
mod interrupt;
mod logs;
pub mod state;
mod validate;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
pub use args::{Cli, ColorChoice, Command, GlobalArgs, OutputFormat};
use kind_parity_render::{ImageRefs, LoadOptions, Loaded, Override, Templates};
use state::State;

/// Exit code: bad arguments or an invalid config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the command is not available in this version.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// An error that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// What to tell the user.
    pub message: String,
    /// What to do next.
    pub help: Option<String>,
    /// The process exit code.
    pub code: u8,
}

/// Sets up logging to stderr; `-v` shows debug, `-vv` trace, `-q` only errors.
pub fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Other crates' logs are raw: kube's client logs every failed request at ERROR
    // (`kube_client::client::builder: failed with error …`) before the error reaches us, and the
    // error we print says it with the server's address and the fix. `-v` shows their warnings.
    let others = if global.verbose == 0 || global.quiet { "off" } else { "warn" };
    let ours = ["kind_parity", "kind_parity_render", "kind_parity_images", "kind_parity_cluster", "kind_parity_probes"];
    let default = std::iter::once(others.to_owned())
        .chain(ours.iter().map(|c| format!("{c}={level}")))
        .collect::<Vec<_>>()
        .join(",");
    let filter = tracing_subscriber::EnvFilter::try_from_env("KIND_PARITY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // handlebars logs every value it renders at debug level, secrets included: never let it.
    let filter = filter.add_directive("handlebars=warn".parse().expect("a valid directive"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_color(global.color))
        .without_time()
        .try_init();
}

pub(crate) fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Runs a parsed command line and returns the exit code, printing errors with their causes.
pub fn run(cli: Cli) -> ExitCode {
    let color = use_color(cli.global.color);
    match execute(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let (red, bold, reset) = if color { ("\x1b[31m", "\x1b[1m", "\x1b[0m") } else { ("", "", "") };
            eprintln!("{red}{bold}error{reset}{bold}:{reset} {error}");
            for cause in causes(&error) {
                eprintln!("  caused by: {cause}");
            }
            let code = match error.downcast_ref::<Exit>() {
                Some(exit) => {
                    if let Some(help) = &exit.help {
                        eprintln!("  next: {help}");
                    }
                    exit.code
                }
                None if is_config_error(&error) => EXIT_USAGE,
                None => 1,
            };
            ExitCode::from(code)
        }
    }
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

fn is_config_error(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| matches!(e.downcast_ref::<kind_parity_render::Error>(), Some(kind_parity_render::Error::Config(_))))
}

fn execute(cli: &Cli) -> Result<u8> {
    let global = &cli.global;
    match &cli.command {
        Command::Render(args) => render(global, args),
        Command::Config(args) => config(global, args),
        Command::Apply(args) => changing("apply", cluster::apply(global, args)).map(|()| 0),
        Command::Up(args) => changing("up", cluster::up(global, args)).map(|()| 0),
        Command::Doctor => runtime()?.block_on(cluster::doctor(global)),
        Command::Down(args) => changing("down", cluster::down(global, args)).map(|()| 0),
        Command::Reset(args) => changing("reset", cluster::reset(global, args)).map(|()| 0),
        Command::Status(args) => runtime()?.block_on(cluster::status(global, args)),
        Command::Validate(args) => runtime()?.block_on(validate::validate(global, args)),
        Command::Build(args) => changing("build", images::build(global, args)),
        Command::Logs(args) => runtime()?.block_on(logs::logs(global, args)),
        Command::Load(args) => changing("load", images::load(global, args)),
        Command::Completions(args) => {
            completions(args.shell, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Schema => {
            schema(&mut std::io::stdout().lock())?;
            Ok(0)
        }
    }
}

/// Writes the JSON Schema of `kind-parity.yaml` (generated from the config model) to `out`.
pub fn schema(out: &mut dyn std::io::Write) -> Result<()> {
    let text = serde_json::to_string_pretty(&kind_parity_render::json_schema()).context("serializing the schema")?;
    writeln!(out, "{text}").context("writing the schema")
}

/// Writes the completion script of `shell` for the `kind-parity` command line to `out`,
/// generated from the same clap definitions the binary parses with.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> Result<()> {
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
pub fn load_config(global: &GlobalArgs) -> Result<Loaded> {
    let mut overrides = Vec::new();
    if let Some(name) = &global.name {
        overrides.push(Override { flag: format!("--name {name}"), path: "name".into(), value: name.clone() });
    }
    for set in &global.set {
        let (path, value) = set.split_once('=').ok_or_else(|| Exit {
            message: format!("`--set {set}` has no value"),
            help: Some("write `--set path=value`, e.g. `--set services.api.replicas=2`".into()),
            code: EXIT_USAGE,
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

/// The result of rendering into a folder.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The folder written.
    pub out: PathBuf,
    /// The files written, relative to it.
    pub files: Vec<String>,
    /// The environment's state.
    pub state: State,
    /// What was rendered.
    pub plan: kind_parity_render::Plan,
    /// The services' image builds, their contexts read and tagged by content (the tags the
    /// manifests reference).
    pub builds: Vec<kind_parity_images::build::Prepared>,
}

/// Loads, ensures secrets and renders into `out` (the state folder's `rendered/` by default).
pub fn render_to(global: &GlobalArgs, out: Option<&Path>, templates: Option<&Path>) -> Result<(Loaded, Rendered)> {
    let loaded = load_config(global)?;
    let state = State::new(&global.state_dir, &loaded.config.name);
    let (secrets, changes) = state.ensure_secrets(&loaded.config)?;
    if !changes.generated.is_empty() {
        tracing::info!(
            count = changes.generated.len(),
            "generated secrets (stored in {}, mode 0600)",
            state.secrets_file().display()
        );
    }
    for (name, why) in &changes.replaced {
        tracing::warn!("replaced the stored secret {name} ({why}); the components that read it restart");
    }
    if let Some(reason) = &changes.issued_cert {
        tracing::info!("issued the ingress certificate ({reason})");
    }
    let templates = match templates {
        Some(dir) => {
            Templates::with_overrides(dir).with_context(|| format!("loading templates from {}", dir.display()))?
        }
        None => Templates::embedded()?,
    };
    // Each context is read and hashed here, once: `up` builds from these.
    let builds = build_specs(&loaded, &state)?
        .iter()
        .map(kind_parity_images::build::BuildSpec::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    let mut images = ImageRefs::from_config(&loaded.config);
    for build in &builds {
        let tag = build.tag().to_owned();
        // With the local registry, nodes pull the image by its registry name.
        let reference =
            if loaded.config.registry.enabled { images::registry(&loaded.config).reference(&tag) } else { tag };
        images.0.insert(build.spec().service.clone(), reference);
    }
    let plan = kind_parity_render::render(&loaded.config, &loaded.inputs, &secrets, &images, &templates)?;
    let mut options = state::WriteOptions { adopt_unmarked: out.is_none(), ..Default::default() };
    options.protected.extend(loaded.files.iter().map(|file| (file.clone(), "config file")));
    options.protected.push((state.secrets_file(), "secrets file"));
    options.protected.push((std::env::current_dir().context("reading the working directory")?, "working directory"));
    let out = out.map_or_else(|| state.rendered(), Path::to_path_buf);
    let files = state::write_plan(&plan, &out, &options).map_err(|error| match error {
        state::StateError::Out(refused) => anyhow::Error::new(Exit {
            message: refused.to_string(),
            help: Some("pick an empty or new folder for --out: kind-parity replaces it whole on every render".into()),
            code: EXIT_USAGE,
        }),
        other => other.into(),
    })?;
    Ok((loaded, Rendered { out, files, state, plan, builds }))
}

/// The image builds of the config's services, with their contexts on disk. The embedded demo's
/// files are written into the state folder first (`<state>/demo/`), so a fresh clone or an
/// installed binary can build it too.
pub fn build_specs(loaded: &Loaded, state: &State) -> Result<Vec<kind_parity_images::build::BuildSpec>> {
    let base = match loaded.inputs.base_dir() {
        Some(dir) => dir.to_path_buf(),
        None => {
            let dir = state.root().join("demo");
            kind_parity_render::Inputs::embedded_demo()
                .extract(&dir)
                .with_context(|| format!("writing the embedded demo stack into {}", dir.display()))?;
            dir
        }
    };
    Ok(loaded
        .config
        .services
        .iter()
        .filter_map(|(name, service)| {
            let build = service.build.as_ref()?;
            Some(kind_parity_images::build::BuildSpec {
                service: name.clone(),
                context: base.join(&build.context),
                dockerfile: build
                    .dockerfile
                    .as_ref()
                    .map_or_else(|| "Dockerfile".into(), |d| d.to_string_lossy().into_owned()),
                args: build.args.clone(),
                target: build.target.clone(),
            })
        })
        .collect())
}

fn source_text(loaded: &Loaded) -> String {
    match loaded.files.first() {
        Some(file) => file.display().to_string(),
        None => "the embedded demo stack".into(),
    }
}

fn render(global: &GlobalArgs, args: &args::RenderArgs) -> Result<u8> {
    if args.drift {
        let loaded = load_config(global)?;
        let report = kind_parity_render::drift(&loaded.config)?;
        match global.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "passed": report.passes(),
                    "services": report.services,
                }))?
            ),
            OutputFormat::Human => print!("{report}"),
        }
        // Declared differences are decisions (docs/modes.md); only undeclared drift fails.
        return Ok(u8::from(!report.passes()));
    }
    let (loaded, rendered) = render_to(global, args.out.as_deref(), args.templates.as_deref())?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "environment": loaded.config.name,
                "out": rendered.out,
                "files": rendered.files,
                "ca": rendered.state.ca_file(),
            }))?
        ),
        OutputFormat::Human if !global.quiet => {
            eprintln!(
                "rendered {} files from {} into {}",
                rendered.files.len(),
                source_text(&loaded),
                rendered.out.display()
            );
            for file in &rendered.files {
                eprintln!("  {file}");
            }
            eprintln!(
                "local CA: {} (trust it to open https://*.{} without warnings)",
                rendered.state.ca_file().display(),
                loaded.config.domain
            );
        }
        OutputFormat::Human => {}
    }
    Ok(0)
}

fn config(global: &GlobalArgs, args: &args::ConfigArgs) -> Result<u8> {
    let loaded = load_config(global)?;
    match (global.output, args.explain) {
        (OutputFormat::Json, _) => println!("{}", serde_json::to_string_pretty(&loaded.config)?),
        (OutputFormat::Human, true) => {
            println!("# effective config of {}: each value with where it came from", source_text(&loaded));
            print!("{}", kind_parity_render::explain(&loaded));
        }
        (OutputFormat::Human, false) => print!("{}", serde_yaml_ng::to_string(&loaded.config)?),
    }
    Ok(0)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Runs a command that changes the environment (or its images) so that Ctrl-C and SIGTERM stop
/// it with a message saying what was under way (see [`interrupt`]).
fn changing<T>(command: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = runtime()?;
    let result = runtime.block_on(interrupt::interruptible(command, work));
    // Blocking work still running (a render writing its files atomically) gets a moment to end;
    // the runtime's drop would wait for it without limit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}

#[cfg(test)]
mod tests {
    use super::causes;

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
