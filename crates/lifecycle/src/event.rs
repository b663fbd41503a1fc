//! What the lifecycle reports while it works: [`Event`]s sent to the caller's [`Reporter`], the
//! way nextest's runner sends its events to a reporter. The library never prints; the caller
//! decides what an event looks like (the `kind-parity` binary draws bars on a terminal, lines
//! otherwise, or writes each event as a JSON line).

use std::path::PathBuf;

use kind_parity_cluster::ObjectRef;
use kind_parity_probes::ProbeResult;
use serde::Serialize;

/// Receives the lifecycle's events, in the order they happen. Called from the task doing the
/// work (and, for per-node progress, from concurrent ones): keep it quick and do not block.
pub trait Reporter: Send + Sync {
    /// One event.
    fn report(&self, event: &Event);
}

/// Any closure taking an event is a reporter.
impl<F: Fn(&Event) + Send + Sync> Reporter for F {
    fn report(&self, event: &Event) {
        self(event);
    }
}

/// A reporter that drops every event, for callers that want only the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: &Event) {}
}

/// The steps of the lifecycle, as named in [`Event::StepStarted`] and [`Event::StepFinished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Rendering the config into the state folder.
    Render,
    /// The preflight checks (Docker, kind, ports, disk, drift of the kind config).
    Preflight,
    /// Building the services' images.
    Build,
    /// Creating (or finding) the kind cluster.
    Cluster,
    /// Pushing images to the local registry.
    Push,
    /// Loading images into the nodes.
    Load,
    /// Server-side apply of the rendered objects, with prune.
    Apply,
    /// Waiting for the workloads to be ready.
    Wait,
    /// The parity suite (`validate`, and the short check at the end of `up`).
    Validate,
    /// Deleting the cluster, or the objects applied to an existing one.
    Delete,
    /// Collecting a diagnostics bundle.
    Logs,
}

/// A preflight check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Passed.
    Pass,
    /// Works, but something should be fixed.
    Warn,
    /// Blocks `up`.
    Fail,
}

/// A workload's readiness, as [`Event::Readiness`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessState {
    /// Rolled out and available.
    Ready,
    /// Not yet.
    Waiting,
    /// It will not become ready by waiting.
    Failed,
}

/// How one image reached a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeImage {
    /// The image.
    pub image: String,
    /// `loaded`, `already present` or `re-tagged`.
    pub outcome: String,
    /// For a re-tag, the reference it was re-tagged from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retagged_from: Option<String>,
}

/// A workload still pending, with what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingWorkload {
    /// The workload.
    pub object: ObjectRef,
    /// Its last known state.
    pub state: String,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A step began.
    StepStarted {
        /// Which.
        step: Step,
        /// What it does, for people (`applying to context kind-demo`).
        message: String,
    },
    /// A step is done.
    StepFinished {
        /// Which.
        step: Step,
        /// What it did, for people (`kind cluster demo exists`).
        message: String,
    },
    /// Something a step did along the way, for people (`removing the local registry demo-registry`).
    Info {
        /// The step.
        step: Step,
        /// What.
        message: String,
    },
    /// Something that did not stop the command but should be read.
    Warning {
        /// What.
        message: String,
    },
    /// One preflight check's result.
    PreflightCheck {
        /// What was checked (`docker`, `port 443`).
        name: String,
        /// The verdict.
        status: CheckStatus,
        /// What was found.
        found: String,
        /// What to do when it did not pass, naming no command.
        #[serde(skip_serializing_if = "Option::is_none")]
        fix: Option<String>,
        /// Whether the fix is to recreate the environment from the current config (the
        /// binary's `reset`), for the caller to name.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        recreate: bool,
    },
    /// An image build begins (or is found unchanged).
    BuildStarted {
        /// The service.
        service: String,
    },
    /// A line of an image build's output.
    BuildOutput {
        /// The service.
        service: String,
        /// The line.
        line: String,
    },
    /// An image is ready under its content tag.
    ImageBuilt {
        /// The service.
        service: String,
        /// Its content tag.
        tag: String,
        /// `false` when the tag existed and nothing was built.
        built: bool,
    },
    /// An image was pushed to the local registry.
    ImagePushed {
        /// The reference nodes pull.
        reference: String,
    },
    /// A node was checked before loading.
    NodeChecked {
        /// The node container.
        node: String,
        /// Images it already has.
        present: usize,
        /// Images it has under another reference only.
        retag: usize,
        /// Images that will be sent.
        send: usize,
    },
    /// Bytes streamed into a node so far.
    NodeSent {
        /// The node container.
        node: String,
        /// Bytes sent so far.
        bytes: u64,
        /// About the size of the whole export.
        estimated_total: u64,
    },
    /// A node has every image, verified.
    NodeVerified {
        /// The node container.
        node: String,
    },
    /// What loading did in one node, once every node is done.
    NodeLoaded {
        /// The node container.
        node: String,
        /// Each image and how it got there.
        images: Vec<NodeImage>,
        /// Bytes streamed into it.
        bytes_sent: u64,
        /// How long it took, in milliseconds.
        elapsed_ms: u64,
    },
    /// The apply is done.
    ObjectsApplied {
        /// The kubeconfig context.
        context: String,
        /// Objects applied.
        applied: usize,
        /// Of which created.
        created: usize,
        /// Of which changed.
        configured: usize,
        /// Of which unchanged.
        unchanged: usize,
        /// Objects of the previous inventory deleted.
        pruned: Vec<ObjectRef>,
    },
    /// A workload's readiness changed.
    Readiness {
        /// The workload.
        object: ObjectRef,
        /// Its new state.
        state: ReadinessState,
        /// What it waits for, or why it failed (empty when ready).
        detail: String,
    },
    /// Every few seconds of a wait: what is still pending.
    StillWaiting {
        /// Seconds waited so far.
        waited_secs: u64,
        /// The whole wait's budget, in seconds.
        deadline_secs: u64,
        /// The workloads not ready yet.
        pending: Vec<PendingWorkload>,
    },
    /// One probe of the parity suite answered.
    ProbeFinished {
        /// How many have answered, this one included.
        done: usize,
        /// How many there are.
        total: usize,
        /// What it found.
        result: ProbeResult,
    },
    /// `kind export logs` wrote the nodes' logs after a failure.
    KindLogsExported {
        /// The environment.
        environment: String,
        /// Where.
        path: PathBuf,
    },
}
