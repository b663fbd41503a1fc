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
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The config file [default: ./kind-parity.yaml, else the embedded demo stack]
    #[arg(long, global = true, env = "KIND_PARITY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The environment's name (overrides `name` in the config)
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,
    /// Set a config value, e.g. `--set services.api.replicas=2` (repeatable; wins over everything)
    #[arg(long = "set", global = true, value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Where environments keep their state
    #[arg(long, global = true, default_value = ".kind-parity", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Output format of results on stdout
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// When to use colors on stderr
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// More detail (-v: debug, -vv: trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people, on stderr.
    Human,
    /// JSON on stdout, for tools.
    Json,
}

/// Color choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colors when stderr is a terminal and NO_COLOR is unset.
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
    Apply(ClusterArgs),
    /// Create and bootstrap the environment
    Up(ClusterArgs),
    /// Check the prerequisites: Docker, kind, free ports, disk, inotify, cluster drift
    Doctor,
    /// Show the environment's state and endpoints
    Status(ClusterArgs),
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
    Reset(DownArgs),
}

/// Options of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write the bundle [default: .kind-parity/<name>/diagnostics/<UTC time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Options of `build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The services to build [default: every service with a `build`]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Options of `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Local images to load, e.g. `api:kp-0123456789ab`
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// Options of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
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

/// Options of the commands that change a cluster.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The cluster
    #[command(flatten)]
    pub target: TargetArgs,
    /// Allow changing this context, besides `cluster.allowed_contexts` (repeatable)
    #[arg(long = "allow-context", value_name = "NAME")]
    pub allow_context: Vec<String>,
    /// How long to wait for everything to be ready, e.g. 10m, 90s
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// How long pods may stay unschedulable before that is an error
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub unschedulable_grace: std::time::Duration,
    /// Take ownership of fields another field manager owns
    #[arg(long)]
    pub force: bool,
    /// Apply without waiting for readiness (and, for `up`, without the parity check)
    #[arg(long)]
    pub no_wait: bool,
    /// `up` only: skip the short parity check after everything is ready
    #[arg(long)]
    pub skip_validate: bool,
    /// Also merge the kind cluster's context into your own kubeconfig (it is never touched otherwise)
    #[arg(long)]
    pub export_kubeconfig: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}` has an unknown unit; use s, m or h")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// Options of `down` and `reset`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The cluster to use, as for `up`
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `render` options.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The output folder [default: .kind-parity/<name>/rendered]
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
    /// Show where each value came from (default, file:line, variable, flag)
    #[arg(long)]
    pub explain: bool,
}
