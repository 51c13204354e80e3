//! The typed model of spec sections 1-3 and 7. Field names are the YAML keys.
//!
//! Structures that accept "exactly one of" several blocks (a target's platform, a probe's
//! kind) are modelled as optional fields and checked in `validate`, which gives a clearer
//! message ("a probe needs exactly one kind, found http and tcp") than a serde enum could.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::{ByteSize, CountExpr, Duration, NameMatch, Percent, Rate, Signal, StatusSpec};

fn one() -> u32 {
    1
}
fn hundred() -> u32 {
    100
}
fn eth0() -> String {
    "eth0".into()
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}
fn millis<const N: u64>() -> Duration {
    Duration::from_millis(N)
}

/// An experiment file (spec section 1).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Format version; 1 is the only one so far.
    pub version: u32,
    /// `experiment` (the default) or `scenario`.
    pub kind: Option<DocumentKind>,
    /// `[a-z0-9][a-z0-9-]*`, at most 63 characters.
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Default values for `${name}`; `--var name=value` overrides them.
    #[serde(default)]
    pub vars: BTreeMap<String, VarValue>,
    /// The one target of every fault. Either this or `targets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Named targets, possibly on different platforms: each fault names its own with
    /// `target: NAME` (required when there are several). Either this or `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<BTreeMap<String, Target>>,
    /// The hypothesis: every probe must pass before injection and again after.
    #[serde(default)]
    pub steady_state: Vec<ProbeSpec>,
    pub during: Option<During>,
    pub faults: Vec<Fault>,
    pub recovery: Option<Recovery>,
}

impl Experiment {
    /// Every target with its name (`""` for the single unnamed `target`), by name.
    pub fn named_targets(&self) -> Vec<(&str, &Target)> {
        match &self.target {
            Some(t) => vec![("", t)],
            None => self
                .targets
                .iter()
                .flatten()
                .map(|(n, t)| (n.as_str(), t))
                .collect(),
        }
    }

    /// Which of [`Experiment::named_targets`] a fault acts on: the one it names, else the
    /// only one. `None` only in an experiment `validate` refuses.
    pub fn target_index(&self, f: &Fault) -> Option<usize> {
        let all = self.named_targets();
        match f.spec().target() {
            Some(name) => all.iter().position(|(n, _)| *n == name),
            None => (all.len() == 1).then_some(0),
        }
    }

    /// The target a fault acts on, with its name (see [`Experiment::target_index`]).
    pub fn target_of(&self, f: &Fault) -> Option<(&str, &Target)> {
        let i = self.target_index(f)?;
        self.named_targets().get(i).copied()
    }

    /// The platform block a fault acts on, for describing it in that platform's words.
    pub fn describe_fault(&self, f: &Fault) -> String {
        match self.target_of(f) {
            Some((_, t)) => f.describe_for(t),
            None => f.describe(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Experiment,
    Scenario,
}

/// A var's default: any scalar, used as text (as written: `1.10` stays `1.10`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum VarValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for VarValue {
    /// Asks for a string, so that the experiment deserializer hands over the scalar as
    /// written; numbers and booleans from other formats are kept as they are.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = VarValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar (text, number or boolean)")
            }
            fn visit_str<E>(self, v: &str) -> Result<VarValue, E> {
                Ok(VarValue::Str(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<VarValue, E> {
                Ok(VarValue::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<VarValue, E> {
                Ok(i64::try_from(v).map_or_else(|_| VarValue::Str(v.to_string()), VarValue::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<VarValue, E> {
                Ok(VarValue::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<VarValue, E> {
                Ok(VarValue::Bool(v))
            }
        }
        d.deserialize_str(V)
    }
}

impl VarValue {
    pub fn as_text(&self) -> String {
        match self {
            VarValue::Str(s) => s.clone(),
            VarValue::Int(i) => i.to_string(),
            VarValue::Float(f) => f.to_string(),
            VarValue::Bool(b) => b.to_string(),
        }
    }
}

/// Where the faults go: exactly one platform block, and how many of its matches to pick.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Target {
    pub docker: Option<DockerTarget>,
    pub kubernetes: Option<KubernetesTarget>,
    pub select: Select,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DockerTarget {
    /// Docker endpoint; overrides DOCKER_HOST, DOCKER_CONTEXT and the docker CLI's
    /// current context. Default: those, in that order, then the local socket.
    pub host: Option<String>,
    /// TLS material for a `tcp://` host (the daemon's certificate is always verified).
    pub tls: Option<DockerTls>,
    /// A fleet: several Docker endpoints (each like `host`, with its own `tls`). Targets
    /// are discovered on every one at once and selected across all of them; each fault is
    /// injected and reverted on its target's own host. Not together with `host`.
    #[serde(default)]
    pub hosts: Vec<DockerHost>,
    /// With `hosts`: the fewest reachable hosts the run accepts; an unreachable host is
    /// then skipped (and named in the report). Default: every host must answer.
    #[serde(default)]
    pub min_hosts: Option<usize>,
    /// Every pair must match the container's labels.
    pub labels: BTreeMap<String, String>,
    /// A Compose project's containers (and one service's): shorthand for the labels
    /// `com.docker.compose.project` and `com.docker.compose.service`.
    pub compose: Option<ComposeService>,
    /// Exact container name, or /regex/.
    pub name: Option<NameMatch>,
    /// Select among every container on the host. Required when neither `labels` nor
    /// `name` is given, so that an empty selector is never an accident.
    pub all_containers: bool,
}

/// One Docker endpoint of a fleet (`target.docker.hosts`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerHost {
    /// `unix://…`, `tcp://…`, `ssh://…`, as `target.docker.host`.
    pub host: String,
    /// TLS material for a `tcp://` host.
    #[serde(default)]
    pub tls: Option<DockerTls>,
}

/// The label Compose puts on every container of a project.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label Compose puts on every container of a service.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

/// A Compose project, and optionally one of its services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeService {
    /// The project name (`docker compose -p`, else the directory's name).
    pub project: String,
    /// The service name in the compose file; default: every service of the project.
    pub service: Option<String>,
}

impl DockerTarget {
    /// `labels` with `compose` spelt out as the labels Compose sets.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut all = self.labels.clone();
        if let Some(c) = &self.compose {
            all.insert(COMPOSE_PROJECT_LABEL.into(), c.project.clone());
            if let Some(s) = &c.service {
                all.insert(COMPOSE_SERVICE_LABEL.into(), s.clone());
            }
        }
        all
    }
}

/// Files of a TLS connection to a Docker daemon, as the docker CLI's `--tlscacert`,
/// `--tlscert` and `--tlskey` (PEM).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerTls {
    /// The CA that signed the daemon's certificate.
    pub ca: String,
    /// faultline's client certificate (with `key`), when the daemon verifies clients.
    pub cert: Option<String>,
    /// The client certificate's private key.
    pub key: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// kubeconfig context; default: the current one, or in-cluster.
    pub context: Option<String>,
    pub namespace: String,
    /// Kubernetes label-selector syntax: `app=api,tier!=canary`.
    pub selector: Option<String>,
    /// Kubernetes field-selector syntax: `status.phase=Running`.
    pub field_selector: Option<String>,
    /// Container for container-level faults; default: the pod's first.
    pub container: Option<String>,
    /// Allow targets in kube-system, kube-public and kube-node-lease.
    #[serde(default)]
    pub allow_protected_namespaces: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Select {
    pub mode: SelectMode,
    /// With `count`: how many; with `percent`: 1..100.
    pub value: Option<u64>,
    /// Same seed and same candidates give the same choice.
    pub seed: Option<u64>,
    /// The fewest targets the run accepts: when fewer are selected (e.g. `count: 5` with 3
    /// matches), the run stops with `no_targets` (exit 3) and touches nothing.
    pub min: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectMode {
    #[default]
    One,
    All,
    Count,
    Percent,
}

/// A probe: a name plus exactly one kind.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub name: String,
    /// Steady state only: extra attempts before the probe counts as failed.
    #[serde(default)]
    pub retries: u32,
    /// Steady state only: pause between attempts.
    #[serde(default = "secs::<1>")]
    pub retry_interval: Duration,
    /// During only: the success ratio this probe must keep (0.0..1.0, default 1.0).
    pub min_success: Option<f64>,
    /// During only: bounds on the latency percentiles of the window's samples, checked
    /// alongside `min_success`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyBounds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusProbe>,
}

/// The one kind a probe has, once validation has made sure there is exactly one.
#[derive(Clone, Copy, Debug)]
pub enum ProbeKind<'a> {
    Http(&'a HttpProbe),
    Tcp(&'a TcpProbe),
    Command(&'a CommandProbe),
    Docker(&'a DockerProbe),
    Kubernetes(&'a KubernetesProbe),
    Prometheus(&'a PrometheusProbe),
}

impl ProbeKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Command(_) => "command",
            ProbeKind::Docker(_) => "docker",
            ProbeKind::Kubernetes(_) => "kubernetes",
            ProbeKind::Prometheus(_) => "prometheus",
        }
    }
}

impl ProbeSpec {
    /// Every kind block present, in field order.
    pub fn kinds(&self) -> Vec<ProbeKind<'_>> {
        let mut kinds = Vec::new();
        if let Some(p) = &self.http {
            kinds.push(ProbeKind::Http(p));
        }
        if let Some(p) = &self.tcp {
            kinds.push(ProbeKind::Tcp(p));
        }
        if let Some(p) = &self.command {
            kinds.push(ProbeKind::Command(p));
        }
        if let Some(p) = &self.docker {
            kinds.push(ProbeKind::Docker(p));
        }
        if let Some(p) = &self.kubernetes {
            kinds.push(ProbeKind::Kubernetes(p));
        }
        if let Some(p) = &self.prometheus {
            kinds.push(ProbeKind::Prometheus(p));
        }
        kinds
    }

    /// The probe's kind. Validation guarantees exactly one on a loaded experiment.
    pub fn kind(&self) -> ProbeKind<'_> {
        self.kinds()[0]
    }

    pub fn min_success(&self) -> f64 {
        self.min_success.unwrap_or(1.0)
    }
}

/// Upper bounds on a during probe's latency percentiles over the window (nearest rank,
/// every sample counted, failed ones with the time they took).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyBounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<Duration>,
}

impl LatencyBounds {
    /// Every bound given, as (`p95`, the percentile as a fraction, the bound).
    pub fn bounds(&self) -> Vec<(&'static str, f64, Duration)> {
        [
            ("p50", 0.50, self.p50),
            ("p95", 0.95, self.p95),
            ("p99", 0.99, self.p99),
        ]
        .into_iter()
        .filter_map(|(name, q, d)| d.map(|d| (name, q, d)))
        .collect()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    pub url: String,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Accepted statuses; default 200..399.
    pub status: Option<Vec<StatusSpec>>,
    pub body_contains: Option<String>,
    pub max_latency: Option<Duration>,
    #[serde(default = "secs::<5>")]
    pub timeout: Duration,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub insecure: bool,
}

fn get() -> String {
    "GET".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    /// host:port
    pub address: String,
    #[serde(default = "secs::<5>")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CommandProbe {
    /// argv list, run without a shell.
    pub run: Option<Vec<String>>,
    /// One string for `sh -c`.
    pub shell: Option<String>,
    pub exit_code: i32,
    pub stdout_contains: Option<String>,
    #[serde(default = "secs::<30>")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DockerProbe {
    pub host: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub name: Option<NameMatch>,
    /// Count of matching running containers: `2`, `">= 2"`, `"== 1"`.
    pub running: Option<CountExpr>,
    /// Count of matching healthy containers.
    pub healthy: Option<CountExpr>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesProbe {
    pub context: Option<String>,
    pub namespace: String,
    pub selector: Option<String>,
    /// Count of Ready pods matching the selector.
    pub ready: Option<CountExpr>,
    pub deployment: Option<String>,
    /// Count of the deployment's available replicas.
    pub available: Option<CountExpr>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusProbe {
    pub url: String,
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(default = "secs::<5>")]
    pub timeout: Duration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct During {
    #[serde(default = "secs::<1>")]
    pub interval: Duration,
    /// Revert everything as soon as a probe falls below its bar.
    pub abort_on_failure: bool,
    /// When every fault is one-shot: how long to sample after the first injection.
    pub duration: Option<Duration>,
    pub probes: Vec<ProbeSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    #[serde(default = "secs::<30>")]
    pub timeout: Duration,
    #[serde(default = "millis::<500>")]
    pub interval: Duration,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            timeout: Duration::from_secs(30),
            interval: Duration::from_millis(500),
        }
    }
}

/// One fault: a list item with exactly one key naming its type.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Kill(KillFault),
    Pause(PauseFault),
    ProcessPause(ProcessPauseFault),
    Network(NetworkFault),
    CpuStress(CpuStressFault),
    MemoryStress(MemoryStressFault),
    DiskFill(DiskFillFault),
    IoStress(IoStressFault),
    Stop(StopFault),
    Restart(RestartFault),
    Command(CommandFault),
    HttpCall(HttpCallFault),
    Http(HttpFault),
}

/// The `name`, `after` and `duration` items of a [`FaultSpec`] whose parameters have
/// `after` and `duration` fields: `fault_timing!("pause");` inside the impl, or
/// `fault_timing!("restart", one_shot);` for a fault that has no duration,
/// `fault_timing!("command", optional);` for one whose `duration` is optional, or
/// `fault_timing!("kill", |f| f.every.and(f.duration));` to compute it.
macro_rules! fault_timing {
    ($name:literal) => {
        $crate::experiment::model::fault_timing!(@common $name);
        fn duration(&self) -> Option<$crate::experiment::units::Duration> {
            Some(self.duration)
        }
    };
    ($name:literal, one_shot) => {
        $crate::experiment::model::fault_timing!(@common $name);
        fn duration(&self) -> Option<$crate::experiment::units::Duration> {
            None
        }
    };
    ($name:literal, optional) => {
        $crate::experiment::model::fault_timing!(@common $name);
        fn duration(&self) -> Option<$crate::experiment::units::Duration> {
            self.duration
        }
    };
    ($name:literal, |$f:ident| $duration:expr) => {
        $crate::experiment::model::fault_timing!(@common $name);
        fn duration(&self) -> Option<$crate::experiment::units::Duration> {
            let $f = self;
            $duration
        }
    };
    (@common $name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn target(&self) -> Option<&str> {
            self.target.as_deref()
        }
        fn after(&self) -> $crate::experiment::units::Duration {
            self.after
        }
    };
}
pub(crate) use fault_timing;

/// What a fault says about itself without touching anything. Each fault implements it in
/// its own file under `fault/`, beside its inject and revert.
pub trait FaultSpec {
    /// The key that names it in a file: `kill`, `pause`, ...
    fn name(&self) -> &'static str;
    /// The named target it acts on, when it names one (`target: NAME`).
    fn target(&self) -> Option<&str>;
    fn after(&self) -> Duration;
    /// How long it stays active; `None` for a one-shot fault.
    fn duration(&self) -> Option<Duration>;
    /// A human summary of the parameters, for plans, tables and the journal.
    fn describe(&self) -> String;
    /// The same, in the words of the experiment's platform.
    fn describe_on(&self, _target: &Target) -> String {
        self.describe()
    }
    /// Checks beyond the types, against the experiment's target.
    fn validate(&self, target: &Target, problems: &mut FaultProblems);
}

/// What a fault's own checks found: messages, each at one of its keys or at the fault.
#[derive(Debug, Default)]
pub struct FaultProblems(pub Vec<(Option<&'static str>, String)>);

impl FaultProblems {
    pub fn err(&mut self, message: impl Into<String>) {
        self.0.push((None, message.into()));
    }

    pub fn err_at(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push((Some(key), message.into()));
    }

    /// `key` must name a directory inside the target: absolute, without `..`.
    pub fn target_dir(&mut self, key: &'static str, path: &str) {
        if !path.starts_with('/') {
            self.err_at(
                key,
                format!(
                    "`{key}` must be absolute (a directory inside the target), e.g. /{}",
                    path.trim_start_matches("./")
                ),
            );
        } else if path.split('/').any(|c| c == "..") {
            self.err_at(
                key,
                format!("`{key}` must not contain `..`: name the directory itself"),
            );
        }
    }

    /// `key` must be longer than zero.
    pub fn positive(&mut self, key: &'static str, d: Duration) {
        if d.as_millis() == 0 {
            self.err_at(key, format!("`{key}` must be longer than 0s"));
        }
    }
}

/// `$body` for the parameters `$f` of whichever kind `$fault` is: the one place that
/// lists every kind of fault (used by [`Fault::spec`] and `fault::kind`).
macro_rules! each_fault {
    ($fault:expr, $f:ident => $body:expr) => {{
        use $crate::experiment::model::Fault;
        match $fault {
            Fault::Kill($f) => $body,
            Fault::Pause($f) => $body,
            Fault::ProcessPause($f) => $body,
            Fault::Network($f) => $body,
            Fault::CpuStress($f) => $body,
            Fault::MemoryStress($f) => $body,
            Fault::DiskFill($f) => $body,
            Fault::IoStress($f) => $body,
            Fault::Stop($f) => $body,
            Fault::Restart($f) => $body,
            Fault::Command($f) => $body,
            Fault::HttpCall($f) => $body,
            Fault::Http($f) => $body,
        }
    }};
}
pub(crate) use each_fault;

impl Fault {
    /// The fault's own answers.
    pub fn spec(&self) -> &dyn FaultSpec {
        each_fault!(self, f => f)
    }

    /// The scopes of the fault that name peers (a network fault's `to`, `from` and
    /// `partition.with`, an http fault's `to`): their pods are resolved through the API.
    pub fn peer_scopes(&self) -> Vec<&NetScope> {
        match self {
            Fault::Network(n) => [
                n.to.as_deref(),
                n.from.as_deref(),
                n.partition.as_deref().map(|p| &p.with),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Fault::Http(h) => h.to.as_deref().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.spec().name()
    }

    pub fn after(&self) -> Duration {
        self.spec().after()
    }

    /// How long the fault stays active; `None` for a one-shot kill.
    pub fn duration(&self) -> Option<Duration> {
        self.spec().duration()
    }

    /// The summary as it applies to the experiment's platform (a Kubernetes kill is a
    /// pod delete).
    pub fn describe_for(&self, target: &Target) -> String {
        self.spec().describe_on(target)
    }

    /// A human summary of the parameters, for plans and tables.
    pub fn describe(&self) -> String {
        self.spec().describe()
    }

    /// A command or http_call with a rollback and no `duration`: it is rolled back when
    /// every other fault has ended.
    pub fn holds_for_the_others(&self) -> bool {
        match self {
            Fault::Command(c) => c.rollback.is_some() && c.duration.is_none(),
            Fault::HttpCall(c) => c.rollback.is_some() && c.duration.is_none(),
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KillFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    pub after: Duration,
    pub signal: Signal,
    /// Kubernetes: the pod's termination grace period (default 0s, a force delete).
    /// Docker: how long the container has to end after the signal before it counts as
    /// having survived it (default 5s).
    pub grace_period: Option<Duration>,
    /// Signal only the processes inside the target whose command line matches this
    /// regular expression (Docker), instead of the target itself.
    pub process: Option<String>,
    /// Kill only this container of the pod (Kubernetes): every process of it is signalled
    /// from a helper pod on its node, and the kubelet restarts it.
    pub container: Option<String>,
    /// Repeat the kill at this interval (selecting targets again each time) for `duration`.
    pub every: Option<Duration>,
    pub duration: Option<Duration>,
    /// Whether the target is expected to end (`exit`, the default: a target that keeps
    /// running is an error of the run) or to survive the signal (`survive`), or either.
    pub expect: KillExpect,
}

/// What a kill is expected to do to its target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillExpect {
    #[default]
    Exit,
    Survive,
    Either,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
}

/// Stops (SIGSTOP) the processes inside the target whose command line matches `process`
/// for `duration`, and continues them (SIGCONT) at revert: a hung process (a GC pause, a
/// deadlock) in a container that keeps running.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessPauseFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    /// A regular expression: the processes whose command line (arguments joined by
    /// spaces) matches are stopped.
    pub process: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    /// Percent of packets dropped: 5 or "5%".
    pub loss: Option<Percent>,
    /// Bandwidth limit, e.g. 1mbit (always applied with tbf).
    pub rate: Option<Rate>,
    /// Percent of packets with one bit flipped (the receiver's checksum drops them).
    pub corrupt: Option<Percent>,
    /// Percent of packets sent twice.
    pub duplicate: Option<Percent>,
    /// Packets sent at once, ahead of the delayed ones (needs `delay`), as netem does.
    pub reorder: Option<Box<Reorder>>,
    #[serde(default = "eth0")]
    pub interface: String,
    /// How delay, jitter and loss are applied.
    #[serde(default)]
    pub engine: NetworkEngine,
    /// How faultline enters the target's network namespace.
    #[serde(default)]
    pub strategy: NetworkStrategy,
    /// Image with `tc` for the sidecar strategy.
    pub tc_image: Option<String>,
    /// Only traffic with these peers as servers: their addresses, and ports on them.
    pub to: Option<Box<NetScope>>,
    /// Only traffic with these peers as clients: their addresses, and ports on the target.
    pub from: Option<Box<NetScope>>,
    /// Which packets are affected: leaving the target (`egress`, the default), arriving
    /// at it (`ingress`), or both.
    #[serde(default)]
    pub direction: NetDirection,
    /// Drops every packet between the target and a set of peers, in the chosen directions.
    pub partition: Option<Box<Partition>>,
    /// Makes the answers the target gets for some DNS names fail.
    pub dns: Option<Box<DnsFault>>,
}

/// `dns`: answers for matching names fail in the chosen way; other names resolve.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsFault {
    /// Names the fault applies to; `*` matches any run of characters (`*.example.com`).
    pub names: Vec<String>,
    pub mode: DnsMode,
    /// Share of matching answers that fail (default 100).
    #[serde(default = "all_percent")]
    pub percent: Percent,
}

fn all_percent() -> Percent {
    Percent(100.0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsMode {
    /// The answer says the name does not exist (rcode 3).
    Nxdomain,
    /// The answer says the server failed (rcode 2).
    Servfail,
    /// No answer arrives: the resolver times out.
    Timeout,
}

impl DnsMode {
    pub fn name(self) -> &'static str {
        match self {
            DnsMode::Nxdomain => "nxdomain",
            DnsMode::Servfail => "servfail",
            DnsMode::Timeout => "timeout",
        }
    }
}

/// `reorder`: `percent` of the packets (or, with `gap: N`, every Nth packet, taken with
/// that probability) skip the delay and overtake the delayed ones.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reorder {
    pub percent: Percent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<u32>,
}

/// Which traffic of the target a network fault affects. Every field narrows it: a packet
/// must match the addresses (any of `cidrs`, `containers`, `hosts`), the ports and the
/// protocol given.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetScope {
    /// IPv4 addresses or networks, e.g. `10.0.0.5/32` or `10.0.0.5`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Ports: a number or a range `"8000-8100"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// `tcp`, `udp` or `icmp`; with `ports` and no protocol, both tcp and udp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetProtocol>,
    /// Docker containers, resolved to their addresses when the fault is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<PeerSelector>,
    /// DNS names, resolved when the fault is injected by the target's own resolver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Kubernetes pods by label selector, resolved to their pod IPs through the API when
    /// the fault is injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodPeers>,
}

/// Peer pods: a label selector, in the target's namespace unless `namespace` says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodPeers {
    /// A label selector, e.g. `app=db`.
    pub selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Peers selected by name and/or labels (every label must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerSelector {
    /// Container names (exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A port or an inclusive range of ports.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PortSpec {
    One(u16),
    /// `"8000-8100"`.
    Range(String),
}

impl PortSpec {
    /// The inclusive range, or why it is not one.
    pub fn range(&self) -> Result<(u16, u16), String> {
        match self {
            PortSpec::One(0) => Err("port 0 is not a port".into()),
            PortSpec::One(p) => Ok((*p, *p)),
            PortSpec::Range(s) => {
                let parse = |t: &str| t.trim().parse::<u16>().ok().filter(|p| *p > 0);
                let (a, b) = match s.split_once('-') {
                    Some((a, b)) => (parse(a), parse(b)),
                    None => (parse(s), parse(s)),
                };
                match (a, b) {
                    (Some(a), Some(b)) if a <= b => Ok((a, b)),
                    _ => Err(format!(
                        "`{s}` is not a port range: write a port (5432) or `FIRST-LAST` (\"8000-8100\"), 1..65535"
                    )),
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetProtocol {
    Tcp,
    Udp,
    Icmp,
}

impl NetProtocol {
    pub fn name(self) -> &'static str {
        match self {
            NetProtocol::Tcp => "tcp",
            NetProtocol::Udp => "udp",
            NetProtocol::Icmp => "icmp",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetDirection {
    #[default]
    Egress,
    Ingress,
    Both,
}

/// `partition`: packets between the target and the peers in `with` are dropped.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// The peers: `cidrs`, `containers`, `hosts` (and optionally `ports`, `protocol`).
    pub with: NetScope,
    /// `both` (default): nothing passes either way; `to`: the target cannot send to the
    /// peers; `from`: the peers cannot send to the target.
    #[serde(default)]
    pub direction: PartitionDirection,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartitionDirection {
    #[default]
    Both,
    To,
    From,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkEngine {
    #[default]
    Auto,
    Netem,
    Nfqueue,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkStrategy {
    #[default]
    Auto,
    Host,
    Sidecar,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuStressFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    #[serde(default = "one")]
    pub workers: u32,
    /// Percent of one core each worker burns, 1..100.
    #[serde(default = "hundred")]
    pub load: u32,
    #[serde(default)]
    pub strategy: CpuStrategy,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CpuStrategy {
    #[default]
    Auto,
    Host,
    Exec,
}

/// Memory allocated and touched inside the target's memory cgroup, held for `duration`.
/// Exactly one of `size` and `percent`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryStressFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    /// How much memory: `256MiB`, `1GiB`.
    pub size: Option<ByteSize>,
    /// How much memory, in percent of the container's memory limit (refused without one).
    pub percent: Option<Percent>,
    /// The memory is allocated evenly over this time, then held. Default: 5s, or the
    /// duration when it is shorter.
    pub ramp: Option<Duration>,
    /// `host` moves faultline's own allocator into the target's cgroups; `exec` allocates
    /// with `dd` inside the target; `auto` picks host when it can.
    #[serde(default)]
    pub strategy: CpuStrategy,
}

fn tmp() -> String {
    "/tmp".into()
}

/// A file written into the target's filesystem at `path`, removed at revert. Exactly one
/// of `size` and `percent`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskFillFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    /// How much to write: `1GiB`, `500MB`.
    pub size: Option<ByteSize>,
    /// Fill the filesystem until it is this percent full, as `df` counts it.
    pub percent: Option<Percent>,
    /// An absolute directory inside the target; the file is written on its filesystem.
    #[serde(default = "tmp")]
    pub path: String,
    /// `host` writes through the container's root from this host; `exec` runs `dd` inside
    /// the target; `auto` picks host when it can.
    #[serde(default)]
    pub strategy: CpuStrategy,
}

fn io_size() -> ByteSize {
    "64MiB".parse().expect("a valid size")
}

/// Real block I/O inside the target's blkio (v1) / io (v2) cgroup: each worker passes
/// over a file of its own under `path` again and again, bypassing the page cache, until
/// the fault ends; the files are removed at revert.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IoStressFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    /// How many workers, each with a file of its own, 1..64.
    #[serde(default = "one")]
    pub workers: u32,
    /// The size of each worker's file, moved once per pass (rounded up to whole MiB):
    /// `64MiB` by default.
    #[serde(default = "io_size")]
    pub size: ByteSize,
    /// An absolute directory inside the target, on a filesystem with a block device
    /// behind it (a volume); default `/tmp`.
    #[serde(default = "tmp")]
    pub path: String,
    /// `write` (default), `read` (the file is written once, then read), or `mixed` (a
    /// write pass, then a read pass).
    #[serde(default)]
    pub mode: IoMode,
    /// `host` moves faultline's own stressor into the target's cgroups, working through
    /// the container's root; `exec` runs `dd` inside the target; `auto` picks host when
    /// it can.
    #[serde(default)]
    pub strategy: CpuStrategy,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IoMode {
    #[default]
    Write,
    Read,
    Mixed,
}

/// Stops the container, waits `duration`, starts it again (Docker).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    /// How long it stays stopped.
    pub duration: Duration,
    /// How long the stop waits after SIGTERM before SIGKILL.
    #[serde(default = "secs::<10>")]
    pub timeout: Duration,
}

/// Restarts the container in one operation (Docker); a one-shot fault.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    /// How long the stop waits after SIGTERM before SIGKILL.
    #[serde(default = "secs::<10>")]
    pub timeout: Duration,
}

/// Any action with a rollback: `run` is executed (on this host, or inside each selected
/// target), and `rollback` when `duration` ends (without one, when the other faults end),
/// on abort, on a signal, and by `recover` after a crash. The rollback is journaled before
/// `run` starts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    /// How long before the rollback runs; default: when the other faults have ended.
    pub duration: Option<Duration>,
    /// The command, an argv list run without a shell (required).
    #[serde(default)]
    pub run: Vec<String>,
    /// The command that undoes `run`, an argv list run without a shell.
    pub rollback: Option<Vec<String>>,
    /// `host`: where faultline runs (once); `target`: inside each selected target (exec).
    #[serde(default, rename = "where")]
    pub place: CommandPlace,
    /// How long `run` and `rollback` may each take; a command still running then is
    /// killed (on the host) and counts as failed.
    #[serde(default = "secs::<30>")]
    pub timeout: Duration,
}

/// Where a command fault runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandPlace {
    /// Where faultline runs, once for the whole fault.
    #[default]
    Host,
    /// Inside each selected container or pod (Docker exec; Kubernetes pods/exec).
    Target,
}

/// An admin API call with a rollback request, made where faultline runs (once): the
/// `command` fault without a shell. The rollback request is journaled before the call.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCallFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    /// How long before the rollback request; default: when the other faults have ended.
    pub duration: Option<Duration>,
    /// `POST` unless said otherwise.
    #[serde(default = "post")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Statuses that count as success; default 200-299.
    pub status: Option<Vec<StatusSpec>>,
    /// How long each request (the call, the rollback) may take.
    #[serde(default = "secs::<10>")]
    pub timeout: Duration,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub insecure: bool,
    /// The request that undoes the call.
    pub rollback: Option<HttpRequest>,
}

/// `http`: faultline's own transparent HTTP/1.1 proxy in the target's network namespace
/// aborts, delays or rewrites the requests that match, and passes the rest untouched. On
/// Kubernetes the proxy runs in an ephemeral container from the helper image
/// (`--tc-image`: `faultline`, `sh`, `iptables`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFault {
    /// The named target it acts on (required when `targets` names several).
    pub target: Option<String>,
    #[serde(default)]
    pub after: Duration,
    pub duration: Duration,
    /// The target's port whose requests are affected.
    pub port: u16,
    /// `inbound`: requests arriving at the target's `port` (the target is the server);
    /// `outbound`: requests the target makes to `port` on other hosts (the target is the
    /// client).
    #[serde(default)]
    pub direction: HttpDirection,
    /// With `direction: outbound`, only requests to these servers (`cidrs`, `hosts`; on
    /// Docker `containers`; on Kubernetes `pods`; resolved when the fault is injected);
    /// every other host when left out.
    #[serde(default)]
    pub to: Option<Box<NetScope>>,
    /// Which requests the fault acts on; every request when left out.
    #[serde(default, rename = "match")]
    pub matcher: HttpMatch,
    /// Answer matching requests with this status, or reset their connection, instead of
    /// passing them on.
    pub abort: Option<HttpAbort>,
    /// Hold matching requests this long before acting on them.
    pub delay: Option<Duration>,
    /// Replace parts of the server's answer to matching requests.
    pub replace: Option<HttpReplace>,
}

/// Which way the requests of an `http` fault go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpDirection {
    #[default]
    Inbound,
    Outbound,
}

/// The requests an `http` fault acts on: all of the given conditions hold.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpMatch {
    /// The request method (`GET`, `POST`, ...), any case.
    pub method: Option<String>,
    /// The path, without the query, as a glob: `*` any run of characters, `?` one.
    pub path: Option<String>,
    /// Headers the request carries with exactly these values (names in any case).
    pub headers: BTreeMap<String, String>,
    /// The share of the requests that meet the rest which the fault acts on; default 100.
    pub percent: Option<Percent>,
}

/// How an `http` fault answers a matching request instead of the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpAbort {
    /// The status answered (100..599), with an empty body.
    pub status: Option<u16>,
    /// Close the client's connection with a TCP reset, without an answer.
    pub reset: bool,
}

/// What replaces parts of the server's answer to a matching request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpReplace {
    pub status: Option<u16>,
    /// Headers set on the answer (replacing any of the same name).
    pub headers: BTreeMap<String, String>,
    /// The whole body of the answer.
    pub body: Option<String>,
}

fn post() -> String {
    "POST".into()
}

/// One HTTP request of an `http_call` fault's rollback.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// `POST` unless said otherwise.
    #[serde(default = "post")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Statuses that count as success; default 200-299.
    pub status: Option<Vec<StatusSpec>>,
}

/// A game-day suite (spec section 7).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub version: u32,
    pub kind: DocumentKind,
    pub name: String,
    pub description: Option<String>,
    pub experiments: Vec<ScenarioEntry>,
    /// Default false: stop at the first failed experiment.
    #[serde(default)]
    pub continue_on_failure: bool,
    /// Cron expression for `faultline gameday --schedule`.
    pub schedule: Option<String>,
    pub window: Option<Window>,
}

/// One step of a scenario: an experiment file, or a `parallel` group of them.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEntry {
    /// Path relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, VarValue>,
    /// Experiments started together; the step ends when all have ended, and the highest
    /// exit code among them is the step's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<ParallelEntry>>,
}

/// An experiment of a `parallel` group.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelEntry {
    /// Path relative to the scenario file.
    pub file: String,
    #[serde(default)]
    pub vars: BTreeMap<String, VarValue>,
}

impl ScenarioEntry {
    /// The experiments of this step, each with its path in the scenario (`[i]`, or
    /// `[i].parallel[j]`), in order.
    pub fn files(&self) -> Vec<(Vec<super::node::PathSeg>, &str, &BTreeMap<String, VarValue>)> {
        use super::node::PathSeg;
        match (&self.file, &self.parallel) {
            (Some(f), _) => vec![(Vec::new(), f.as_str(), &self.vars)],
            (None, Some(group)) => group
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    (
                        vec![PathSeg::Key("parallel".into()), PathSeg::Index(j)],
                        e.file.as_str(),
                        &e.vars,
                    )
                })
                .collect(),
            (None, None) => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Window {
    pub days: Vec<Weekday>,
    /// `HH:MM-HH:MM`; may span midnight (`22:00-06:00`).
    pub hours: Option<String>,
    /// IANA time zone, e.g. Europe/Berlin; default UTC.
    pub timezone: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// What a file holds: the JSON Schema's root accepts either.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Document {
    Experiment(Box<Experiment>),
    Scenario(Box<Scenario>),
}
