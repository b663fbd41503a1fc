//! Command-line arguments, parsed by clap and resolved into one struct before any library runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A production-shaped local environment on kind: one config, rendered for compose and kind.
#[derive(Debug, Parser)]
#[command(name = "kind-parity", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Options every command takes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The config, also before the command (`kind-parity --set k=v render`), for the commands
    /// that load one.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder, also before the command, for the commands that use one.
    #[command(flatten)]
    pub state: StateArgs,
}

impl Cli {
    /// The options the command runs with: those given before it and its own (which win; `--set`s
    /// add up, in order), and `KIND_PARITY_CONFIG` when no `--config` is given.
    pub fn global(&self) -> GlobalArgs {
        let (source, state) = self.command.source_and_state();
        let none = SourceArgs::default();
        let own = source.unwrap_or(&none);
        let config = own
            .config
            .clone()
            .or_else(|| self.source.config.clone())
            .or_else(|| std::env::var_os("KIND_PARITY_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
        let state_dir = state.and_then(|s| s.state_dir.clone()).or_else(|| self.state.state_dir.clone());
        GlobalArgs {
            config,
            name: own.name.clone().or_else(|| self.source.name.clone()),
            set: self.source.set.iter().chain(&own.set).cloned().collect(),
            state_dir: state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            output: self.common.output,
            color: self.common.color,
            verbose: self.common.verbose,
            quiet: self.common.quiet,
            lock_timeout: self.common.lock_timeout,
        }
    }
}

impl Command {
    /// The command's own config and state options, when it takes them.
    fn source_and_state(&self) -> (Option<&SourceArgs>, Option<&StateArgs>) {
        match self {
            Self::Render(a) => (Some(&a.source), Some(&a.state)),
            Self::Config(a) => (Some(&a.source), None),
            Self::Apply(a) => (Some(&a.source), Some(&a.state)),
            Self::Up(a) => (Some(&a.apply.source), Some(&a.apply.state)),
            Self::Doctor(a) => (Some(&a.source), Some(&a.state)),
            Self::Status(a) => (Some(&a.source), Some(&a.state)),
            Self::Logs(a) => (Some(&a.source), Some(&a.state)),
            Self::Build(a) => (Some(&a.source), Some(&a.state)),
            Self::Load(a) => (Some(&a.source), None),
            Self::Validate(a) => (Some(&a.source), Some(&a.state)),
            Self::Down(a) => (Some(&a.source), Some(&a.state)),
            Self::Reset(a) => (Some(&a.up.apply.source), Some(&a.up.apply.state)),
            // `init` writes a config rather than loading one: its `--config` and `--name` are its own.
            Self::Init(_) | Self::Completions(_) | Self::Schema => (None, None),
        }
    }
}

/// Where environments keep their state when `--state-dir` is not given.
pub const DEFAULT_STATE_DIR: &str = ".kind-parity";

/// What a command runs with, resolved from the command line ([`Cli::global`]).
#[derive(Debug, Clone)]
pub struct GlobalArgs {
    /// The config file; `None`: ./kind-parity.yaml, else the embedded demo stack.
    pub config: Option<PathBuf>,
    /// The environment's name, over the config's.
    pub name: Option<String>,
    /// `--set PATH=VALUE`s, in order.
    pub set: Vec<String>,
    /// Where environments keep their state.
    pub state_dir: PathBuf,
    /// The output format.
    pub output: OutputFormat,
    /// When to use colors.
    pub color: ColorChoice,
    /// How many `-v`.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// How long a command that changes the environment waits for another one's lock.
    pub lock_timeout: std::time::Duration,
}

/// Which config, and what overrides it: the commands that load one.
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// The config file [default: KIND_PARITY_CONFIG, else ./kind-parity.yaml, else the embedded demo stack]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The environment's name (overrides `name` in the config)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set a config value, e.g. `--set services.api.replicas=2` (repeatable; wins over everything)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// The state folder: the commands that read or write an environment's state.
#[derive(Debug, Args, Clone, Default)]
pub struct StateArgs {
    /// Where environments keep their state [default: .kind-parity]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// How results are written: for people, or JSON on stdout for tools (errors too)
    ///
    /// human: a command's result on stdout (`config`, `status`, `render --drift`, `build`'s
    /// tags, `logs`' folder, `doctor`'s checks, `validate`'s table); progress, messages and
    /// errors on stderr. json: only JSON on stdout, one object per command, or one JSON line per
    /// event for `up`, `apply`, `down` and `reset`; a failure is one more object,
    /// `{"error": {"message", "causes", "hint", "exit_code", "kind"}}`, with the same exit code.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// When to use colors (auto: on a terminal)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// More detail: -v kind-parity's debug logs, -vv its trace and the Kubernetes and Docker clients' debug
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// How long a command that changes the environment waits for another one to finish, e.g. 30s, 10m
    #[arg(long, global = true, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub lock_timeout: std::time::Duration,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: results on stdout, progress and messages on stderr.
    Human,
    /// JSON on stdout, for tools, errors included.
    Json,
}

/// Color choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colors on a terminal (the stream written to is one) when NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the kind config, the manifests and the compose env files
    Render(RenderArgs),
    /// Show the effective config
    Config(ConfigArgs),
    /// Render, apply phase by phase, prune and wait: the apply step of `up`
    Apply(ApplyArgs),
    /// Create and bootstrap the environment
    Up(UpArgs),
    /// Check the prerequisites: Docker, kind, free ports, disk, inotify, cluster drift
    Doctor(DoctorArgs),
    /// Show the environment's state and endpoints
    Status(StatusArgs),
    /// Collect a diagnostics bundle (status, pods, logs, events, kind's node logs, the rendered files; secrets redacted)
    Logs(LogsArgs),
    /// Build the services' images through the Docker API (skipped when unchanged)
    Build(BuildArgs),
    /// Load local images into the nodes of the environment's kind cluster
    Load(LoadArgs),
    /// Run the parity suite: routes, TLS, DNS, OIDC issuer, env contract, dependencies
    Validate(ValidateArgs),
    /// Delete the environment and what was created for it
    Down(DownArgs),
    /// Delete and recreate the environment from zero
    Reset(ResetArgs),
    /// Print a completion script for a shell, e.g. `kind-parity completions bash > /etc/bash_completion.d/kind-parity`
    Completions(CompletionsArgs),
    /// Write a commented starter kind-parity.yaml for this repository (a service per Dockerfile found), or import a compose project
    Init(InitArgs),
    /// Print the JSON Schema of kind-parity.yaml, for editors: `kind-parity schema > kind-parity.schema.json`
    Schema,
}

/// Options of `init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The file to write [default: ./kind-parity.yaml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The environment's name [default: the working directory's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace the config file when it exists
    #[arg(long)]
    pub force: bool,
    /// Import an existing compose project instead: its files in order (later ones override earlier ones, as compose merges them)
    #[arg(long = "from-compose", value_name = "FILE", num_args = 1..)]
    pub from_compose: Vec<PathBuf>,
    /// With --from-compose: enable a compose profile (repeatable; COMPOSE_PROFILES is read too)
    #[arg(long = "profile", value_name = "NAME", requires = "from_compose")]
    pub profiles: Vec<String>,
    /// Where the file's `$schema` line points editors [default: the schema of this release's repository]
    #[arg(long, value_name = "URL|PATH")]
    pub schema: Option<String>,
}

/// Options of `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Options of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write the bundle [default: .kind-parity/NAME/diagnostics/TIME, TIME in UTC]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Options of `build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The services to build [default: every service with a `build`]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Options of `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// Local images to load, e.g. `api:kp-0123456789ab`
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// Options of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also write the results as JUnit XML, for CI systems
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Where the ingress's HTTPS port is reached [default: listen_address:ports.https]
    #[arg(long, value_name = "IP:PORT")]
    pub ingress: Option<std::net::SocketAddr>,
    /// Reach Postgres at HOST:PORT instead of through a port-forward
    #[arg(long, value_name = "HOST:PORT")]
    pub postgres: Option<String>,
    /// Reach Redis at HOST:PORT instead of through a port-forward
    #[arg(long, value_name = "HOST:PORT")]
    pub redis: Option<String>,
    /// Reach NATS at HOST:PORT instead of through a port-forward
    #[arg(long, value_name = "HOST:PORT")]
    pub nats: Option<String>,
    /// Reach Temporal's frontend at HOST:PORT instead of through a port-forward
    #[arg(long, value_name = "HOST:PORT")]
    pub temporal: Option<String>,
}

/// Which cluster, and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Which cluster to use
    #[arg(long, value_enum, default_value_t = ClusterKind::Kind)]
    pub cluster: ClusterKind,
    /// The kubeconfig of an existing cluster [default: KUBECONFIG, then ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context of an existing cluster [default: the kubeconfig's current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Which cluster to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterKind {
    /// A kind cluster named after the environment (`up` creates it when missing).
    Kind,
    /// A cluster reachable through a kubeconfig context (k3d, a dev cluster, …).
    Existing,
}

/// Which contexts a command that changes a cluster may change.
#[derive(Debug, Clone, Args)]
pub struct AllowArgs {
    /// Allow changing this context, besides `cluster.allowed_contexts` (repeatable)
    #[arg(long = "allow-context", value_name = "NAME")]
    pub allow_context: Vec<String>,
}

/// How a command that applies waits for readiness.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// How long to wait for everything to be ready, e.g. 10m, 90s, 1m30s (at most 365d)
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// How long pods may stay unschedulable before that is an error
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub unschedulable_grace: std::time::Duration,
    /// Apply without waiting for readiness
    #[arg(long)]
    pub no_wait: bool,
}

/// Options of `apply`: render, apply phase by phase, prune, wait.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// The contexts it may change
    #[command(flatten)]
    pub allow: AllowArgs,
    /// The wait
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Take ownership of fields another field manager owns
    #[arg(long)]
    pub force: bool,
    /// Also merge the kind cluster's context into your own kubeconfig (it is never touched otherwise)
    #[arg(long)]
    pub export_kubeconfig: bool,
}

/// Options of `up`: those of `apply`, and the parity check after it.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// As for `apply`
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Skip the short parity check after everything is ready (`--no-wait` skips it too)
    #[arg(long)]
    pub skip_validate: bool,
}

/// Options of `doctor`: the config and state whose environment it checks.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
}

/// Options of `status`: only which cluster (it reads, and changes nothing).
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The longest wait `--timeout` and `--unschedulable-grace` accept: beyond any real wait, and
/// short enough that a deadline computed from it (`Instant::now() + timeout`) cannot overflow.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// A wait such as `90s`, `15m`, `1h`, `1m30s` or a bare number of seconds (humantime's forms).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // A bare number has always meant seconds here; humantime wants a unit.
        text.parse().map(std::time::Duration::from_secs).map_err(|_| too_long(text))?
    } else {
        humantime::parse_duration(text).map_err(|error| match error {
            humantime::DurationError::NumberOverflow => too_long(text),
            other => format!("`{text}` is not a duration ({other}); write e.g. 90s, 15m, 1h or 1m30s"),
        })?
    };
    if duration > LONGEST_WAIT {
        return Err(too_long(text));
    }
    Ok(duration)
}

fn too_long(text: &str) -> String {
    format!("`{text}` is too long; the longest wait is 365d")
}

/// Options of `down`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// The contexts it may change
    #[command(flatten)]
    pub allow: AllowArgs,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Options of `reset`: those of `up`, and the confirmation of `down`.
#[derive(Debug, Clone, Args)]
pub struct ResetArgs {
    /// As for `up`
    #[command(flatten)]
    pub up: UpArgs,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `render` options.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// The state folder
    #[command(flatten)]
    pub state: StateArgs,
    /// The output folder [default: .kind-parity/NAME/rendered]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Templates that replace the embedded ones, file by file (same layout as templates/)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Report the drift between the compose and kind modes instead of writing files; exits 1 on drift
    #[arg(long)]
    pub drift: bool,
}

/// `config` options.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config
    #[command(flatten)]
    pub source: SourceArgs,
    /// Show where each value came from (default, file:line, variable, flag)
    #[arg(long)]
    pub explain: bool,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    fn check(text: &str, expected: Result<Duration, &str>) {
        let parsed = parse_duration(text);
        match expected {
            Ok(duration) => assert_eq!(parsed, Ok(duration), "{text}"),
            Err(fragment) => {
                let message = parsed.expect_err(text);
                assert!(message.contains(fragment), "{text}: {message}");
            }
        }
    }

    #[test]
    fn durations_keep_their_forms() {
        check("90s", Ok(Duration::from_secs(90)));
        check("15m", Ok(Duration::from_secs(900)));
        check("10m", Ok(Duration::from_secs(600)));
        check("1h", Ok(Duration::from_secs(3600)));
        check("90", Ok(Duration::from_secs(90)));
        check("0s", Ok(Duration::ZERO));
    }

    #[test]
    fn durations_combine_units() {
        // Regression: `1m30s` was refused as an unknown unit `m30s`.
        check("1m30s", Ok(Duration::from_secs(90)));
        check("1h 15m", Ok(Duration::from_secs(4500)));
    }

    #[test]
    fn an_overflowing_duration_is_refused() {
        // Regression: `--timeout 99999999999999999h` panicked with an arithmetic overflow.
        check("99999999999999999h", Err("is too long; the longest wait is 365d"));
        check("99999999999999999999", Err("is too long"));
        // Fits a Duration, but `Instant::now() + timeout` would overflow.
        check("18446744073709551615s", Err("is too long"));
        check("366d", Err("is too long"));
        check("365d", Ok(Duration::from_secs(365 * 24 * 3600)));
    }

    #[test]
    fn a_duration_that_is_not_one_says_how_to_write_it() {
        check("ten minutes", Err("write e.g. 90s, 15m, 1h or 1m30s"));
        check("5parsecs", Err("unknown time unit"));
        check("", Err("write e.g."));
    }
}
