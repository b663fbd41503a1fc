//! One probe: what it checks, what it needs first, how long it may take, and what it found.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

/// The check a probe runs. `Ok` says what was found when it is as expected; `Err` says what
/// was found instead and what to do. A check that cannot decide returns `Err`: fail closed.
pub trait Check: Send + Sync {
    /// What is checked, for the report: a URL, `host:port`, an object.
    fn target(&self) -> String;
    /// Runs the check once.
    fn run(&self) -> BoxFuture<'_, Result<String, Failure>>;
    /// What to do when the check gets no answer in time.
    fn on_timeout(&self) -> String {
        format!("check that {} is running and reachable", self.target())
    }
}

/// What a failed check found, and what to do about it: the remediation in words that name no
/// command of any tool, and the [`Next`] actions it refers to, which the caller words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was found instead of what was expected.
    pub found: String,
    /// What to check or do, naming no command: the actions are in [`Failure::next`].
    pub remediation: String,
    /// The actions the remediation refers to, in its order.
    pub next: Vec<Next>,
}

impl Failure {
    /// A failure with its remediation, and no action of the environment's to take.
    pub fn new(found: impl Into<String>, remediation: impl Into<String>) -> Self {
        Self { found: found.into(), remediation: remediation.into(), next: Vec::new() }
    }

    /// The remediation also refers to `next` (after the actions added before).
    #[must_use]
    pub fn then(mut self, next: Next) -> Self {
        self.next.push(next);
        self
    }
}

/// An action on the environment that a failed probe's remediation refers to. A value, not
/// words: the `kind-parity` binary words each as its command (`Up` as `kind-parity up`), an
/// embedder as its own API (`Up` as `Environment::up`). The remediation's text says why, in
/// words that name no command ("bring the environment up again: it re-applies the Secret").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Next {
    /// Bring the environment up (again): it creates what is missing, builds and loads the
    /// images, applies every object from the current config and files (Secrets, artifacts,
    /// certificates renewed), re-runs its setup jobs, and explains a stuck pod while it waits.
    Up,
    /// Look at the environment's status: its nodes, each workload's readiness, the endpoints.
    Status,
    /// Read the logs: the environment's diagnostics bundle, with every pod's logs and events.
    Logs {
        /// Whose logs say why, when one's do: a service, or a component (its jobs' included).
        #[serde(skip_serializing_if = "Option::is_none")]
        of: Option<String>,
    },
    /// Recreate the environment from the current config: delete it, its data and generated
    /// credentials included, and bring it up again.
    Reset,
    /// Read the rendered manifests (the objects the environment applies).
    Render,
    /// Read the drift report: each env value that differs between compose and kind.
    Drift,
    /// Reach the component at an address the caller gives, instead of through the cluster.
    Address {
        /// The component: `postgres`, `redis`, `nats`, `temporal`.
        component: String,
    },
}

impl Next {
    /// Read the logs of `of`, a service or a component.
    pub fn logs_of(of: impl Into<String>) -> Self {
        Self::Logs { of: Some(of.into()) }
    }
}

/// The action in plain words, naming no command: for a caller without words of its own.
impl fmt::Display for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Up => f.write_str("bring the environment up"),
            Self::Status => f.write_str("see the environment's status"),
            Self::Logs { of: Some(of) } => write!(f, "read the logs of {of}"),
            Self::Logs { of: None } => f.write_str("read the environment's logs"),
            Self::Reset => f.write_str("recreate the environment"),
            Self::Render => f.write_str("read the rendered manifests"),
            Self::Drift => f.write_str("read the drift report"),
            Self::Address { component } => write!(f, "give the address of {component}"),
        }
    }
}

/// A remediation with its actions worded by `word`: `read its log (`kind-parity logs`)`, the
/// actions in parentheses after the text, in its order. Without actions, the text alone.
pub fn worded(remediation: &str, next: &[Next], word: &dyn Fn(&Next) -> String) -> String {
    if next.is_empty() {
        return remediation.to_owned();
    }
    let actions: Vec<String> = next.iter().map(word).collect();
    format!("{remediation} ({})", actions.join(", "))
}

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// Checked, and as expected.
    Pass,
    /// Checked and wrong, or could not be checked (timeout, refused): fail closed.
    Fail,
    /// Not run because a probe it depends on failed.
    Blocked,
    /// Not run because its component is switched off.
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Blocked => "blocked",
            Self::Skipped => "skipped",
        })
    }
}

pub(crate) enum Body {
    Run(Arc<dyn Check>),
    Skip { target: String, reason: String },
}

/// A probe: an id, the component it checks, the probes it needs to pass first, a timeout, and
/// whether its failure fails the suite.
pub struct Probe {
    pub(crate) id: String,
    pub(crate) component: String,
    pub(crate) depends_on: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) critical: bool,
    pub(crate) body: Body,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("id", &self.id)
            .field("component", &self.component)
            .field("depends_on", &self.depends_on)
            .field("timeout", &self.timeout)
            .field("critical", &self.critical)
            .field("target", &self.target())
            .finish()
    }
}

impl Probe {
    /// The default time a probe may take.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A critical probe of `component` that runs `check`, with the default timeout.
    pub fn new(id: impl Into<String>, component: impl Into<String>, check: impl Check + 'static) -> Self {
        Self {
            id: id.into(),
            component: component.into(),
            depends_on: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            critical: true,
            body: Body::Run(Arc::new(check)),
        }
    }

    /// A probe that is reported as skipped: its component is switched off.
    pub fn skipped(id: impl Into<String>, component: impl Into<String>, reason: impl Into<String>) -> Self {
        let component = component.into();
        Self {
            id: id.into(),
            depends_on: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            critical: false,
            body: Body::Skip { target: component.clone(), reason: reason.into() },
            component,
        }
    }

    /// Runs only after each of `ids` passed.
    #[must_use]
    pub fn after<I: Into<String>>(mut self, ids: impl IntoIterator<Item = I>) -> Self {
        self.depends_on.extend(ids.into_iter().map(Into::into));
        self
    }

    /// May take at most `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A failure is reported but does not fail the suite.
    #[must_use]
    pub fn advisory(mut self) -> Self {
        self.critical = false;
        self
    }

    /// The probe's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ids it depends on.
    pub fn depends_on(&self) -> &[String] {
        &self.depends_on
    }

    /// What it checks.
    pub fn target(&self) -> String {
        match &self.body {
            Body::Run(check) => check.target(),
            Body::Skip { target, .. } => target.clone(),
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    /// The probe's id.
    pub id: String,
    /// The component it checks.
    pub component: String,
    /// Pass, fail, blocked or skipped.
    pub outcome: Outcome,
    /// Whether a failure fails the suite.
    pub critical: bool,
    /// How long it ran, in milliseconds (0 when it did not run).
    pub duration_ms: u64,
    /// What was checked: a URL, `host:port`, an object.
    pub checked: String,
    /// What was found.
    pub found: String,
    /// What to do, when it did not pass, naming no command: the actions are in `next`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// The actions the remediation refers to, for the caller to word ([`Next`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<Next>,
    /// The failed probe that is the root cause, when blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

impl ProbeResult {
    /// Whether this result fails the suite: a critical probe that failed or could not run.
    pub fn fails_suite(&self) -> bool {
        self.critical && matches!(self.outcome, Outcome::Fail | Outcome::Blocked)
    }

    /// The remediation with its actions worded by `word` ([`worded`]), when it did not pass.
    pub fn fix(&self, word: &dyn Fn(&Next) -> String) -> Option<String> {
        self.remediation.as_deref().map(|remediation| worded(remediation, &self.next, word))
    }
}

/// An error with its causes, which many errors keep out of their own message.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
