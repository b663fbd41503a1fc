//! Pod Security Standards, evaluated before anything is applied: a port of the checks the API
//! server's PodSecurity admission runs (`k8s.io/pod-security-admission` v0.33.0, `policy/`,
//! the version Kubernetes v1.33 ships), with its levels, its per-version rules and its wording.
//!
//! Why evaluate them here: admission enforces a namespace's level on pods only. A Deployment,
//! StatefulSet or Job that would violate it is admitted with a warning
//! (`admission/admission.go`, `ValidatePodController` evaluates with `enforce=false`); its
//! controller's pod creations are then refused, and the rollout stalls with nothing but a
//! `FailedCreate` event. [`check`] finds those workloads in the rendered manifests instead, and
//! says what the API server would say: `violates PodSecurity "restricted:v1.33": …`, reasons in
//! the server's order (baseline checks by ID, then restricted ones) and words.
//!
//! Not evaluated, as admission does not: what the kubelet refuses itself (`runAsNonRoot` with an
//! image whose user is root or not numeric), the cluster's admission configuration
//! (exemptions, defaults for unlabelled namespaces: kind sets none, so an unlabelled namespace
//! admits everything), and the user-namespace relaxation (feature gate
//! `UserNamespacesPodSecurityStandards`, off by default in v1.33).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Deserialize as _;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::ObjectRef;
use crate::apply::Manifest;

/// The namespace label that sets the level admission enforces (`api/constants.go`).
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The namespace label that sets the version of the enforced level's rules.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// The minor version of the newest rules this port holds: v0.33.0 registers no check revision
/// after v1.32, so its registry clamps every newer version, `latest` included, to the rules of
/// v1.32 (`policy/registry.go`, `EvaluatePod`), which v1.33 enforces unchanged.
pub const NEWEST_RULES: u32 = 32;

/// Errors of the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rendered document is not YAML this module can read.
    #[error("{file}: a document is not valid YAML: {source}")]
    Yaml {
        /// The manifest file.
        file: String,
        /// What the parser said.
        source: serde_yaml_ng::Error,
    },
    /// A workload's pod template is not a pod template.
    #[error("{object} in {file}: its pod template cannot be read: {source}")]
    PodTemplate {
        /// The workload.
        object: Box<ObjectRef>,
        /// The manifest file.
        file: String,
        /// What deserializing it said.
        source: serde_json::Error,
    },
    /// A namespace's level or version label holds a value admission refuses.
    #[error("namespace {namespace}: {label}={value:?} is not a valid value: {expected}")]
    Label {
        /// The namespace.
        namespace: String,
        /// The label.
        label: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
}

/// A Pod Security Standard level (`api/constants.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Unrestricted: nothing is checked.
    Privileged,
    /// Known privilege escalations are refused.
    Baseline,
    /// Pod hardening best practice.
    Restricted,
}

impl Level {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(()),
        }
    }
}

/// The version of a level's rules, as a namespace labels it (`api/helpers.go`, `Version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `latest`: the newest rules the API server holds (the default when unlabelled).
    Latest,
    /// `v1.N`, by its minor version.
    Minor(u32),
}

impl Version {
    /// `latest` or `v1.N`, as `ParseVersion` reads them.
    pub fn parse(value: &str) -> Option<Version> {
        // `^v1\.([0-9]|[1-9][0-9]*)$`
        if value == "latest" {
            return Some(Version::Latest);
        }
        let minor = value.strip_prefix("v1.")?;
        if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) || (minor.len() > 1 && minor.starts_with('0'))
        {
            return None;
        }
        minor.parse().ok().map(Version::Minor)
    }

    /// The minor version whose rules apply: newer ones, and `latest`, are clamped to the newest
    /// rules this port holds, as the registry clamps them (`registry.go`, `EvaluatePod`).
    fn rules(self) -> u32 {
        match self {
            Version::Latest => NEWEST_RULES,
            Version::Minor(minor) => minor.min(NEWEST_RULES),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(minor) => write!(f, "v1.{minor}"),
        }
    }
}

/// A level at a version: what a namespace enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The level.
    pub level: Level,
    /// The version of its rules.
    pub version: Version,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `LevelVersion.String()`: the version as labelled, not as clamped.
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// One failed check: the API server's forbidden reason and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check's ID (`allowPrivilegeEscalation`, `hostPorts`…).
    pub check: &'static str,
    /// `allowPrivilegeEscalation != false`.
    pub reason: String,
    /// `container "api" must set securityContext.allowPrivilegeEscalation=false`.
    pub detail: String,
}

/// The checks of `policy` that the pod `spec` (with its `metadata`) fails, in the order the API
/// server reports them.
pub fn evaluate(policy: Policy, metadata: &ObjectMeta, spec: &PodSpec) -> Vec<Violation> {
    let v = policy.version.rules();
    let restricted = policy.level == Level::Restricted;
    let mut checks: Vec<(&'static str, CheckFn)> = Vec::new();
    match policy.level {
        Level::Privileged => return Vec::new(),
        Level::Baseline | Level::Restricted => {
            // Baseline checks sorted by ID, as `populate` orders them; a restricted check that
            // overrides one at this version takes its place in the restricted list.
            checks.push(("appArmorProfile", app_armor_profile));
            if !(restricted && v >= 22) {
                checks.push(("capabilities_baseline", capabilities_baseline));
            }
            checks.push(("hostNamespaces", host_namespaces));
            if !restricted {
                checks.push(("hostPathVolumes", host_path_volumes));
            }
            checks.push(("hostPorts", host_ports));
            checks.push(("privileged", privileged));
            checks.push(("procMount", proc_mount));
            checks.push(("seLinuxOptions", se_linux_options));
            if !(restricted && v >= 19) {
                checks.push(("seccompProfile_baseline", seccomp_profile_baseline));
            }
            checks.push(("sysctls", sysctls));
            checks.push(("windowsHostProcess", windows_host_process));
        }
    }
    if restricted {
        if v >= 8 {
            checks.push(("allowPrivilegeEscalation", allow_privilege_escalation));
        }
        if v >= 22 {
            checks.push(("capabilities_restricted", capabilities_restricted));
        }
        checks.push(("restrictedVolumes", restricted_volumes));
        checks.push(("runAsNonRoot", run_as_non_root));
        if v >= 23 {
            checks.push(("runAsUser", run_as_user));
        }
        if v >= 19 {
            checks.push(("seccompProfile_restricted", seccomp_profile_restricted));
        }
    }
    let pod = Pod { metadata, spec, version: v };
    checks
        .into_iter()
        .filter_map(|(check, f)| f(&pod).map(|(reason, detail)| Violation { check, reason, detail }))
        .collect()
}

/// What the API server says of a pod that fails `violations` of `policy`
/// (`admission.go`, `forbiddenResponse`; `AggregateCheckResult.ForbiddenDetail`).
pub fn message(policy: Policy, violations: &[Violation]) -> String {
    let reasons: Vec<String> = violations
        .iter()
        .map(|v| if v.detail.is_empty() { v.reason.clone() } else { format!("{} ({})", v.reason, v.detail) })
        .collect();
    format!("violates PodSecurity \"{policy}\": {}", reasons.join(", "))
}

/// A workload of the manifests whose pods its namespace's enforced level would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The workload.
    pub object: ObjectRef,
    /// The manifest file it is in.
    pub file: String,
    /// The policy its namespace enforces.
    pub policy: Policy,
    /// What its pods fail.
    pub violations: Vec<Violation>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): its pods would be forbidden: {}",
            self.object,
            self.file,
            message(self.policy, &self.violations)
        )
    }
}

/// The kinds admission evaluates (`admission.go`, `defaultPodSpecResources` and the pod itself),
/// with where each holds its pod template.
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &[],
        "PodTemplate" => &["template"],
        "ReplicationController" | "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
            &["spec", "template"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        _ => return None,
    })
}

/// The workloads of `manifests` that the level their namespace enforces would refuse. A
/// namespace's level comes from its `pod-security.kubernetes.io/enforce` label in the manifests;
/// a namespace the manifests do not declare, or leave unlabelled, is taken as `privileged`, as a
/// cluster without an admission configuration (kind's) takes it.
pub fn check(manifests: &[Manifest]) -> Result<Vec<Rejected>, Error> {
    let mut documents = Vec::new();
    for manifest in manifests {
        for document in serde_yaml_ng::Deserializer::from_str(&manifest.content) {
            let value = serde_json::Value::deserialize(document)
                .map_err(|source| Error::Yaml { file: manifest.file.clone(), source })?;
            if value.is_object() {
                documents.push((manifest.file.as_str(), value));
            }
        }
    }
    let str_at = |value: &serde_json::Value, path: &[&str]| -> Option<String> {
        path.iter().try_fold(value, |v, key| v.get(key)).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for (_, value) in &documents {
        if str_at(value, &["kind"]).as_deref() != Some("Namespace") {
            continue;
        }
        let Some(name) = str_at(value, &["metadata", "name"]) else { continue };
        let Some(labels) = value.pointer("/metadata/labels") else { continue };
        let label = |key: &str| labels.get(key).and_then(|v| v.as_str());
        let Some(level) = label(ENFORCE_LABEL) else { continue };
        let level = level.parse().map_err(|()| Error::Label {
            namespace: name.clone(),
            label: ENFORCE_LABEL,
            value: level.to_owned(),
            expected: "privileged, baseline or restricted",
        })?;
        let version = match label(ENFORCE_VERSION_LABEL) {
            None => Version::Latest,
            Some(value) => Version::parse(value).ok_or_else(|| Error::Label {
                namespace: name.clone(),
                label: ENFORCE_VERSION_LABEL,
                value: value.to_owned(),
                expected: "latest or v1.N",
            })?,
        };
        policies.insert(name, Policy { level, version });
    }
    let mut rejected = Vec::new();
    for (file, value) in &documents {
        let Some(kind) = str_at(value, &["kind"]) else { continue };
        let Some(path) = template_path(&kind) else { continue };
        let Some(namespace) = str_at(value, &["metadata", "namespace"]) else { continue };
        let Some(&policy) = policies.get(&namespace) else { continue };
        let object = ObjectRef {
            api_version: str_at(value, &["apiVersion"]).unwrap_or_default(),
            kind,
            namespace: Some(namespace),
            name: str_at(value, &["metadata", "name"]).unwrap_or_default(),
        };
        let template = path.iter().try_fold(value, |v, key| v.get(key)).cloned().unwrap_or_default();
        let template: PodTemplateSpec = serde_json::from_value(template).map_err(|source| Error::PodTemplate {
            object: Box::new(object.clone()),
            file: (*file).to_owned(),
            source,
        })?;
        let metadata = template.metadata.unwrap_or_default();
        let spec = template.spec.unwrap_or_default();
        let violations = evaluate(policy, &metadata, &spec);
        if !violations.is_empty() {
            rejected.push(Rejected { object, file: (*file).to_owned(), policy, violations });
        }
    }
    Ok(rejected)
}

/// What a check reads.
struct Pod<'a> {
    metadata: &'a ObjectMeta,
    spec: &'a PodSpec,
    /// The minor version of the rules.
    version: u32,
}

impl Pod<'_> {
    /// Init containers, containers, then ephemeral containers (`visitor.go`, `visitContainers`),
    /// each as its name and security context.
    fn containers(&self) -> Vec<(&str, Option<&k8s_openapi::api::core::v1::SecurityContext>)> {
        let spec = self.spec;
        fn plain(c: &Container) -> (&str, Option<&k8s_openapi::api::core::v1::SecurityContext>) {
            (c.name.as_str(), c.security_context.as_ref())
        }
        let mut all: Vec<_> = spec.init_containers.iter().flatten().map(plain).collect();
        all.extend(spec.containers.iter().map(plain));
        all.extend(spec.ephemeral_containers.iter().flatten().map(|c| (c.name.as_str(), c.security_context.as_ref())));
        all
    }

    /// Every container's ports, in the same order.
    fn ports(&self) -> Vec<(&str, Vec<i32>)> {
        let spec = self.spec;
        let host = |ports: &Option<Vec<k8s_openapi::api::core::v1::ContainerPort>>| {
            ports.iter().flatten().filter_map(|p| p.host_port).filter(|p| *p != 0).collect::<Vec<_>>()
        };
        let mut all: Vec<_> =
            spec.init_containers.iter().flatten().map(|c| (c.name.as_str(), host(&c.ports))).collect();
        all.extend(spec.containers.iter().map(|c| (c.name.as_str(), host(&c.ports))));
        all.extend(spec.ephemeral_containers.iter().flatten().map(|c| (c.name.as_str(), host(&c.ports))));
        all
    }

    /// `spec.os.name: windows`, which restricted exempts from Linux-only checks from v1.25.
    fn windows_exempt(&self) -> bool {
        self.version >= 25 && self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }
}

type CheckFn = fn(&Pod<'_>) -> Option<(String, String)>;

fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("\"{}\"", s.as_ref())).collect();
    quoted.join(", ")
}

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

/// Go's `%q` of a string, for the plain strings these checks quote.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn forbid(reason: impl Into<String>, detail: impl Into<String>) -> Option<(String, String)> {
    Some((reason.into(), detail.into()))
}

// Each check below follows the file of the same name in `policy/`, at v0.33.0.

/// The deprecated per-container AppArmor annotation, before the container's name.
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// check_appArmorProfile.go
fn app_armor_profile(pod: &Pod<'_>) -> Option<(String, String)> {
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(profile) = pod.spec.security_context.as_ref().and_then(|s| s.app_armor_profile.as_ref())
        && !allowed_type(&profile.type_)
    {
        setters.push("pod".to_owned());
        values.insert(profile.type_.clone());
    }
    let mut bad = Vec::new();
    for (name, context) in pod.containers() {
        // Before admission sees a pod, the API server copies a container's deprecated AppArmor
        // annotation into its field where the field is unset (pkg/registry/core/pod/strategy.go,
        // applyAppArmorVersionSkew; `runtime/default`, `localhost/…`, `unconfined`), so the
        // container is named as setting it, as the server names it.
        let from_annotation = || {
            let value = pod.metadata.annotations.as_ref()?.get(&format!("{APPARMOR_ANNOTATION}{name}"))?;
            Some(match value.as_str() {
                "runtime/default" => "RuntimeDefault".to_owned(),
                "unconfined" => "Unconfined".to_owned(),
                v if v.starts_with("localhost/") => "Localhost".to_owned(),
                _ => return None,
            })
        };
        let type_ = match context.and_then(|c| c.app_armor_profile.as_ref()) {
            Some(profile) => Some(profile.type_.clone()),
            None => from_annotation(),
        };
        if let Some(type_) = type_
            && !allowed_type(&type_)
        {
            bad.push(name);
            values.insert(type_);
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations: Vec<String> = pod
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION)
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len()),
        format!("{} must not set AppArmor profile type to {}", setters.join(" and "), join_quote(&values)),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// check_capabilities_baseline.go
fn capabilities_baseline(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    let mut capabilities = BTreeSet::new();
    for (name, context) in pod.containers() {
        let Some(caps) = context.and_then(|c| c.capabilities.as_ref()) else { continue };
        let mut valid = true;
        for cap in caps.add.iter().flatten() {
            if !BASELINE_CAPABILITIES.contains(&cap.as_str()) {
                valid = false;
                capabilities.insert(cap.as_str());
            }
        }
        if !valid {
            bad.push(name);
        }
    }
    if bad.is_empty() {
        return None;
    }
    forbid(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&capabilities)
        ),
    )
}

/// check_hostNamespaces.go
fn host_namespaces(pod: &Pod<'_>) -> Option<(String, String)> {
    let spec = pod.spec;
    let set: Vec<&str> = [
        (spec.host_network == Some(true), "hostNetwork=true"),
        (spec.host_pid == Some(true), "hostPID=true"),
        (spec.host_ipc == Some(true), "hostIPC=true"),
    ]
    .into_iter()
    .filter_map(|(set, what)| set.then_some(what))
    .collect();
    if set.is_empty() { None } else { forbid("host namespaces", set.join(", ")) }
}

/// check_hostPathVolumes.go
fn host_path_volumes(pod: &Pod<'_>) -> Option<(String, String)> {
    let names: Vec<&str> =
        pod.spec.volumes.iter().flatten().filter(|v| v.host_path.is_some()).map(|v| v.name.as_str()).collect();
    if names.is_empty() {
        return None;
    }
    forbid("hostPath volumes", format!("{} {}", pluralize("volume", "volumes", names.len()), join_quote(&names)))
}

/// check_hostPorts.go
fn host_ports(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    // A set of strings, listed sorted as strings (`sets.String.List`).
    let mut ports = BTreeSet::new();
    for (name, host) in pod.ports() {
        if !host.is_empty() {
            bad.push(name);
            ports.extend(host.iter().map(i32::to_string));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    forbid(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// check_privileged.go
fn privileged(pod: &Pod<'_>) -> Option<(String, String)> {
    let bad: Vec<&str> = pod
        .containers()
        .into_iter()
        .filter(|(_, c)| c.and_then(|c| c.privileged) == Some(true))
        .map(|(n, _)| n)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid("privileged", format!("{} must not set securityContext.privileged=true", containers_phrase(&bad)))
}

/// check_procMount.go
fn proc_mount(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for (name, context) in pod.containers() {
        if let Some(mount) = context.and_then(|c| c.proc_mount.as_deref())
            && mount != "Default"
        {
            bad.push(name);
            types.insert(mount);
        }
    }
    if bad.is_empty() {
        return None;
    }
    forbid(
        "procMount",
        format!("{} must not set securityContext.procMount to {}", containers_phrase(&bad), join_quote(&types)),
    )
}

/// check_seLinuxOptions.go
fn se_linux_options(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if pod.version >= 31 {
        allowed.push("container_engine_t");
    }
    let mut types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |options: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut valid = true;
        let type_ = options.type_.as_deref().unwrap_or_default();
        if !allowed.contains(&type_) {
            valid = false;
            types.insert(type_.to_owned());
        }
        if !options.user.as_deref().unwrap_or_default().is_empty() {
            valid = false;
            set_user = true;
        }
        if !options.role.as_deref().unwrap_or_default().is_empty() {
            valid = false;
            set_role = true;
        }
        valid
    };
    let mut setters = Vec::new();
    if let Some(options) = pod.spec.security_context.as_ref().and_then(|s| s.se_linux_options.as_ref())
        && !valid(options)
    {
        setters.push("pod".to_owned());
    }
    let mut bad = Vec::new();
    for (name, context) in pod.containers() {
        if let Some(options) = context.and_then(|c| c.se_linux_options.as_ref())
            && !valid(options)
        {
            bad.push(name);
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!("{} {}", pluralize("type", "types", types.len()), join_quote(&types)));
    }
    if set_user {
        data.push("user may not be set".to_owned());
    }
    if set_role {
        data.push("role may not be set".to_owned());
    }
    forbid(
        "seLinuxOptions",
        format!("{} set forbidden securityContext.seLinuxOptions: {}", setters.join(" and "), data.join("; ")),
    )
}

fn valid_seccomp(type_: &str) -> bool {
    type_ == "Localhost" || type_ == "RuntimeDefault"
}

/// check_seccompProfile_baseline.go: annotations up to v1.18, fields from v1.19.
fn seccomp_profile_baseline(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.version < 19 {
        const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
        const CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
        let valid = |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
        let annotations = pod.metadata.annotations.as_ref();
        let mut forbidden = BTreeSet::new();
        if let Some(value) = annotations.and_then(|a| a.get(POD))
            && !valid(value)
        {
            forbidden.insert(format!("{POD}={}", go_quote(value)));
        }
        for (name, _) in pod.containers() {
            let key = format!("{CONTAINER}{name}");
            if let Some(value) = annotations.and_then(|a| a.get(&key))
                && !valid(value)
            {
                forbidden.insert(format!("{key}={}", go_quote(value)));
            }
        }
        if forbidden.is_empty() {
            return None;
        }
        let forbidden: Vec<String> = forbidden.into_iter().collect();
        return forbid(
            "seccompProfile",
            format!("forbidden {} {}", pluralize("annotation", "annotations", forbidden.len()), forbidden.join(", ")),
        );
    }
    seccomp_fields(pod, false)
}

/// check_seccompProfile_restricted.go
fn seccomp_profile_restricted(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.windows_exempt() {
        return None;
    }
    seccomp_fields(pod, true)
}

/// The seccomp profile type fields: a bad type is refused at both levels; restricted also wants
/// one set, on the pod or on every container.
fn seccomp_fields(pod: &Pod<'_>, required: bool) -> Option<(String, String)> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(profile) = pod.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
        if valid_seccomp(&profile.type_) {
            pod_set = true;
        } else {
            setters.push("pod".to_owned());
            values.insert(profile.type_.as_str());
        }
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for (name, context) in pod.containers() {
        match context.and_then(|c| c.seccomp_profile.as_ref()) {
            Some(profile) if !valid_seccomp(&profile.type_) => {
                explicit.push(name);
                values.insert(profile.type_.as_str());
            }
            Some(_) => {}
            None if !pod_set => implicit.push(name),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return forbid(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if required && !implicit.is_empty() {
        return forbid(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

/// check_sysctls.go
fn sysctls(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if pod.version >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if pod.version >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if pod.version >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let forbidden: Vec<&str> = pod
        .spec
        .security_context
        .iter()
        .flat_map(|s| s.sysctls.iter().flatten())
        .map(|s| s.name.as_str())
        .filter(|name| !allowed.contains(name))
        .collect();
    if forbidden.is_empty() { None } else { forbid("forbidden sysctls", forbidden.join(", ")) }
}

/// check_windowsHostProcess.go
fn windows_host_process(pod: &Pod<'_>) -> Option<(String, String)> {
    let host = |o: Option<&k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        o.and_then(|o| o.host_process) == Some(true)
    };
    let bad: Vec<&str> = pod
        .containers()
        .into_iter()
        .filter(|(_, c)| host(c.and_then(|c| c.windows_options.as_ref())))
        .map(|(n, _)| n)
        .collect();
    let mut setters = Vec::new();
    if host(pod.spec.security_context.as_ref().and_then(|s| s.windows_options.as_ref())) {
        setters.push("pod".to_owned());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        "hostProcess",
        format!("{} must not set securityContext.windowsOptions.hostProcess=true", setters.join(" and ")),
    )
}

/// check_allowPrivilegeEscalation.go
fn allow_privilege_escalation(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.windows_exempt() {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers()
        .into_iter()
        .filter(|(_, c)| c.and_then(|c| c.allow_privilege_escalation) != Some(false))
        .map(|(n, _)| n)
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "allowPrivilegeEscalation != false",
        format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_phrase(&bad)),
    )
}

/// check_capabilities_restricted.go
fn capabilities_restricted(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.windows_exempt() {
        return None;
    }
    let (mut missing_drop_all, mut adding) = (Vec::new(), Vec::new());
    let mut forbidden = BTreeSet::new();
    for (name, context) in pod.containers() {
        let Some(caps) = context.and_then(|c| c.capabilities.as_ref()) else {
            missing_drop_all.push(name);
            continue;
        };
        if !caps.drop.iter().flatten().any(|c| c == "ALL") {
            missing_drop_all.push(name);
        }
        let mut added = false;
        for cap in caps.add.iter().flatten() {
            if cap != "NET_BIND_SERVICE" {
                added = true;
                forbidden.insert(cap.as_str());
            }
        }
        if added {
            adding.push(name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() { None } else { forbid("unrestricted capabilities", details.join("; ")) }
}

/// check_restrictedVolumes.go
fn restricted_volumes(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for volume in pod.spec.volumes.iter().flatten() {
        let allowed = volume.config_map.is_some()
            || volume.csi.is_some()
            || volume.downward_api.is_some()
            || volume.empty_dir.is_some()
            || volume.ephemeral.is_some()
            || volume.image.is_some()
            || volume.persistent_volume_claim.is_some()
            || volume.projected.is_some()
            || volume.secret.is_some();
        if allowed {
            continue;
        }
        bad.push(volume.name.as_str());
        let type_ = [
            (volume.host_path.is_some(), "hostPath"),
            (volume.gce_persistent_disk.is_some(), "gcePersistentDisk"),
            (volume.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
            (volume.git_repo.is_some(), "gitRepo"),
            (volume.nfs.is_some(), "nfs"),
            (volume.iscsi.is_some(), "iscsi"),
            (volume.glusterfs.is_some(), "glusterfs"),
            (volume.rbd.is_some(), "rbd"),
            (volume.flex_volume.is_some(), "flexVolume"),
            (volume.cinder.is_some(), "cinder"),
            (volume.cephfs.is_some(), "cephfs"),
            (volume.flocker.is_some(), "flocker"),
            (volume.fc.is_some(), "fc"),
            (volume.azure_file.is_some(), "azureFile"),
            (volume.vsphere_volume.is_some(), "vsphereVolume"),
            (volume.quobyte.is_some(), "quobyte"),
            (volume.azure_disk.is_some(), "azureDisk"),
            (volume.photon_persistent_disk.is_some(), "photonPersistentDisk"),
            (volume.portworx_volume.is_some(), "portworxVolume"),
            (volume.scale_io.is_some(), "scaleIO"),
            (volume.storageos.is_some(), "storageos"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
        .unwrap_or("unknown");
        types.insert(type_);
    }
    if bad.is_empty() {
        return None;
    }
    forbid(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("restricted volume type", "restricted volume types", types.len()),
            join_quote(&types)
        ),
    )
}

/// check_runAsNonRoot.go
fn run_as_non_root(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut setters = Vec::new();
    let mut pod_non_root = false;
    match pod.spec.security_context.as_ref().and_then(|s| s.run_as_non_root) {
        Some(false) => setters.push("pod".to_owned()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for (name, context) in pod.containers() {
        match context.and_then(|c| c.run_as_non_root) {
            Some(false) => explicit.push(name),
            Some(true) => {}
            None if !pod_non_root => implicit.push(name),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!("{} must not set securityContext.runAsNonRoot=false", setters.join(" and ")),
        );
    }
    if !implicit.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!("pod or {} must set securityContext.runAsNonRoot=true", containers_phrase(&implicit)),
        );
    }
    None
}

/// check_runAsUser.go
fn run_as_user(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut setters = Vec::new();
    if pod.spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        setters.push("pod".to_owned());
    }
    let bad: Vec<&str> = pod
        .containers()
        .into_iter()
        .filter(|(_, c)| c.and_then(|c| c.run_as_user) == Some(0))
        .map(|(n, _)| n)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    forbid("runAsUser=0", format!("{} must not set runAsUser=0", setters.join(" and ")))
}
