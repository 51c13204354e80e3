//! The run's result, which *is* the JSON report of spec section 6, and its renderers.
//! Every renderer reads this one model.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod metrics;
pub mod summary;
pub mod table;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Exit;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub format_version: u32,
    pub tool: Tool,
    pub experiment: ExperimentRef,
    pub verdict: Verdict,
    pub exit_code: u8,
    #[serde(with = "millis_utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "millis_utc")]
    pub ended_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The seed selection used, so a run can be repeated with `--seed`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// How `target.select` chose the targets: requested, matched and selected counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// With named targets (`targets:`): how each one's `select` chose, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selections: BTreeMap<String, Selection>,
    pub targets: Vec<TargetRef>,
    pub faults: Vec<FaultRecord>,
    pub phases: Phases,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "faultline".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExperimentRef {
    pub name: String,
    pub file: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    NotSteady,
    NoTargets,
    Error,
    Interrupted,
    RevertIncomplete,
}

impl Verdict {
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Passed => Exit::Passed,
            Verdict::Failed => Exit::Failed,
            Verdict::NotSteady | Verdict::NoTargets => Exit::NotRun,
            Verdict::Error => Exit::Error,
            Verdict::Interrupted => Exit::Interrupted,
            Verdict::RevertIncomplete => Exit::RevertIncomplete,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotSteady => "not_steady",
            Verdict::NoTargets => "no_targets",
            Verdict::Error => "error",
            Verdict::Interrupted => "interrupted",
            Verdict::RevertIncomplete => "revert_incomplete",
        }
    }
}

/// How the targets were chosen, and how many there were.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    /// `one`, `all`, `count` or `percent`.
    pub mode: String,
    /// How many targets the mode asked for: 1 for `one`, every match for `all`, `value`
    /// for `count`, `value`% of the matches (rounded up) for `percent`.
    pub requested: u64,
    /// How many targets matched the platform block.
    pub matched: u64,
    /// How many were taken: `requested`, or every match when fewer matched.
    pub selected: u64,
    /// `target.select.min`: the run stops with `no_targets` (exit 3) when fewer are selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Matches that were not eligible (a paused container), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::platform::PassedOver>,
}

impl Selection {
    /// The counts of a selection: requested, matched, selected, min.
    pub fn of(
        select: &crate::experiment::model::Select,
        matched: usize,
        selected: usize,
    ) -> Selection {
        use crate::experiment::model::SelectMode;
        let requested = match select.mode {
            SelectMode::One => 1,
            SelectMode::All => matched as u64,
            SelectMode::Count => select.value.unwrap_or(1),
            SelectMode::Percent => {
                let p = select.value.unwrap_or(100) as usize;
                matched.saturating_mul(p).div_ceil(100).max(1) as u64
            }
        };
        Selection {
            mode: match select.mode {
                SelectMode::One => "one",
                SelectMode::All => "all",
                SelectMode::Count => "count",
                SelectMode::Percent => "percent",
            }
            .into(),
            requested,
            matched: matched as u64,
            selected: selected as u64,
            min: select.min,
            skipped: Vec::new(),
        }
    }

    /// The same counts, with the matches that were passed over.
    pub fn passing_over(mut self, skipped: Vec<crate::platform::PassedOver>) -> Selection {
        self.skipped = skipped;
        self
    }

    /// `; skipped: web-2 (paused ...)`, or nothing.
    fn skipped_text(&self) -> String {
        if self.skipped.is_empty() {
            return String::new();
        }
        let each: Vec<String> = self
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.name, s.why))
            .collect();
        format!("; skipped: {}", each.join(", "))
    }

    /// Why a selection is too small to run: nothing matched, or fewer than `select.min`.
    /// `what` describes the target block (see [`crate::plan::describe_target`]).
    pub fn too_few(&self, what: &str) -> Option<String> {
        if self.selected == 0 {
            return Some(if self.skipped.is_empty() {
                format!("no target matched {what}")
            } else {
                format!("no eligible target matched {what}{}", self.skipped_text())
            });
        }
        match self.min {
            Some(min) if self.selected < min => Some(format!(
                "only {} of {} requested targets matched {what}, fewer than select.min {min}{}",
                self.selected,
                self.requested,
                self.skipped_text()
            )),
            _ => None,
        }
    }

    /// `3 of 5 requested` when fewer were selected than requested, and the matches that
    /// were skipped.
    pub fn shortfall(&self) -> Option<String> {
        let short = (self.selected < self.requested)
            .then(|| format!("{} of {} requested", self.selected, self.requested));
        match (short, self.skipped.is_empty()) {
            (s, true) => s,
            (Some(s), false) => Some(format!("{s}{}", self.skipped_text())),
            (None, false) => Some(self.skipped_text().trim_start_matches("; ").to_string()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetRef {
    pub platform: String,
    pub id: String,
    pub name: String,
    /// The named target (`targets:`) it was selected for; absent for the unnamed `target`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_name: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultStatus {
    Reverted,
    Completed,
    Failed,
    Active,
    /// A one-shot fault landed but the target kept running (a signal it ignores).
    Survived,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    /// The named target (`targets:`) the fault acts on; absent for the unnamed `target`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_name: String,
    #[serde(with = "millis_utc_opt")]
    pub injected_at: Option<DateTime<Utc>>,
    #[serde(with = "millis_utc_opt")]
    pub reverted_at: Option<DateTime<Utc>>,
    pub status: FaultStatus,
    pub error: Option<String>,
    /// The fault's parameters in words, e.g. "pause for 5s".
    #[serde(default)]
    pub description: String,
    /// What the fault caused or did in the target beyond its parameters (the OOM
    /// killer's victims, the processes a `kill` signalled). Absent when there is nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effects: Option<FaultEffects>,
}

/// What a fault observed in its target, for the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FaultEffects {
    /// How many times the kernel's OOM killer acted in the target's memory cgroup while
    /// the fault was active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// The processes the OOM killer killed, as the kernel named them (when its log is
    /// readable from here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oom_killed: Vec<ProcessRef>,
    /// The processes the fault signalled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signalled: Vec<ProcessRef>,
    /// What the way the fault was applied means beyond it (a kill through a remote
    /// Docker daemon's API: the container's restart policy does not restart it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
    /// Bytes the target's blkio/io cgroup read from block devices while the fault was
    /// active, by the cgroup's own counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_read_bytes: Option<u64>,
    /// Bytes the target's blkio/io cgroup wrote to block devices while the fault was
    /// active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_written_bytes: Option<u64>,
    /// The restart count of the container a `kill` with `container` signalled, before the
    /// signal and once the kubelet restarted it (or when faultline stopped waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_restarts: Option<ContainerRestarts>,
    /// A command fault's `run`: its exit status, output and duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<CommandRun>,
    /// A command fault's `rollback`, once it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<CommandRun>,
    /// The packets a scoped network fault or partition touched, with every peer and
    /// host resolved to its addresses (`to 172.18.0.3/32 tcp port 8080`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// The peers (containers, hosts) those scopes named, with the addresses they had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerRef>,
    /// What an `http` fault's proxy did to the requests it saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCounts>,
}

/// Requests an `http` fault's proxy saw, by outcome: `matched` met the fault's
/// conditions (of those, `aborted`, `delayed` and `replaced`; a delayed one may also be
/// aborted or replaced); `passed` were forwarded untouched; `not_http` connections were
/// passed through as raw TCP.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HttpCounts {
    pub matched: u64,
    pub aborted: u64,
    pub delayed: u64,
    pub replaced: u64,
    pub passed: u64,
    /// Connections that were not HTTP/1.1 (HTTPS among them): passed through as raw TCP,
    /// not inspected.
    #[serde(default)]
    pub not_http: u64,
}

/// One container's restart count around a kill.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerRestarts {
    pub container: String,
    pub before: i32,
    pub after: i32,
}

/// One command (or HTTP request) a fault ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommandRun {
    /// A command's exit status; `null` when it did not finish within its timeout (it was
    /// killed) and for an HTTP request.
    pub exit_code: Option<i64>,
    /// An HTTP request's response status (`http_call`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// stdout and stderr, trimmed and joined, at most 2000 characters; values from
    /// `${env:...}` are redacted.
    pub output: String,
    pub duration_ms: u64,
}

impl CommandRun {
    /// How it ended, in words: `exited 3`, `answered 503`, `did not finish`.
    pub fn outcome(&self) -> String {
        match (self.exit_code, self.status) {
            (Some(c), _) => format!("exited {c}"),
            (None, Some(s)) => format!("answered {s}"),
            (None, None) => "did not finish".into(),
        }
    }

    fn summary(&self, which: &str) -> String {
        let mut s = format!("{which} {} in {}ms", self.outcome(), self.duration_ms);
        if !self.output.is_empty() {
            let first = self.output.lines().next().unwrap_or_default();
            s.push_str(&format!(" (`{first}`)"));
        }
        s
    }
}

/// A peer of a scoped network fault and the addresses it resolved to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerRef {
    pub name: String,
    pub addresses: Vec<String>,
}

/// One process of a target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRef {
    /// Its PID as seen from where faultline observed it (the host, or the target).
    pub pid: i64,
    /// Its command line (or the kernel's short name for it).
    pub command: String,
}

impl FaultEffects {
    /// One sentence for events and tables.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.oom_kills {
            let mut s = format!("the OOM killer acted {n} time(s) in the target's memory cgroup");
            if !self.oom_killed.is_empty() {
                s.push_str(&format!(", killing {}", names(&self.oom_killed)));
            }
            parts.push(s);
        }
        if !self.signalled.is_empty() {
            parts.push(format!("signalled {}", names(&self.signalled)));
        }
        if let Some(c) = &self.container_restarts {
            parts.push(if c.after > c.before {
                format!(
                    "container `{}` was restarted (restart count {} -> {})",
                    c.container, c.before, c.after
                )
            } else {
                format!(
                    "container `{}` was not restarted while faultline waited (restart count {})",
                    c.container, c.after
                )
            });
        }
        if let (Some(r), Some(w)) = (self.io_read_bytes, self.io_written_bytes) {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            parts.push(format!(
                "the target's cgroup read {:.1} MiB and wrote {:.1} MiB to block devices",
                mib(r),
                mib(w)
            ));
        }
        if let Some(r) = &self.run {
            parts.push(r.summary("run"));
        }
        if let Some(r) = &self.rollback {
            parts.push(r.summary("rollback"));
        }
        if let Some(h) = &self.http {
            let mut s = format!(
                "its proxy saw {} matching request(s) ({} aborted, {} delayed, {} replaced) and passed {} untouched",
                h.matched, h.aborted, h.delayed, h.replaced, h.passed
            );
            if h.not_http > 0 {
                s.push_str(&format!(
                    "; {} connection(s) were not HTTP/1.1 (HTTPS among them) and passed through uninspected",
                    h.not_http
                ));
            }
            parts.push(s);
        }
        if !self.scope.is_empty() {
            parts.push(format!("only packets {}", self.scope.join("; ")));
        }
        if !self.peers.is_empty() {
            let peers: Vec<String> = self
                .peers
                .iter()
                .map(|p| format!("{} ({})", p.name, p.addresses.join(", ")))
                .collect();
            parts.push(format!("peers {}", peers.join(", ")));
        }
        if let Some(c) = &self.caveat {
            parts.push(c.clone());
        }
        parts.join("; ")
    }

    /// Adds what `other` says to what this says (a fault's injection, then its revert).
    pub fn merge(&mut self, other: FaultEffects) {
        self.oom_kills = other.oom_kills.or(self.oom_kills);
        self.oom_killed.extend(other.oom_killed);
        self.signalled.extend(other.signalled);
        self.io_read_bytes = other.io_read_bytes.or(self.io_read_bytes);
        self.io_written_bytes = other.io_written_bytes.or(self.io_written_bytes);
        self.container_restarts = other.container_restarts.or(self.container_restarts.take());
        if !other.scope.is_empty() {
            self.scope = other.scope;
        }
        if !other.peers.is_empty() {
            self.peers = other.peers;
        }
        self.run = other.run.or(self.run.take());
        self.rollback = other.rollback.or(self.rollback.take());
        self.caveat = other.caveat.or(self.caveat.take());
    }

    /// The same with every command output passed through `redact` (secrets).
    pub fn redacted(mut self, redact: impl Fn(&str) -> String) -> FaultEffects {
        for r in [&mut self.run, &mut self.rollback].into_iter().flatten() {
            r.output = redact(&r.output);
        }
        self
    }
}

fn names(ps: &[ProcessRef]) -> String {
    ps.iter()
        .map(|p| format!("`{}` (pid {})", p.command, p.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Phases {
    pub before: Option<SteadyPhase>,
    pub during: Option<DuringPhase>,
    pub after: Option<SteadyPhase>,
}

/// The before and after phases: every steady-state probe's last attempt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SteadyPhase {
    pub passed: bool,
    /// After only: time from the end of the faults to the first full pass.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recovered_after_ms: Option<u64>,
    /// After only: the moment recovery is measured from: `last_revert`, or
    /// `last_injection` when every fault is one-shot (a kill).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub measured_from: Option<RecoveryStart>,
    pub probes: Vec<ProbeOutcome>,
}

/// What recovery time is measured from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStart {
    /// The last revert of a reversible fault.
    LastRevert,
    /// The last one-shot injection (a kill), when no fault was reversible.
    LastInjection,
    /// The moment the killed targets were gone from the platform (deleted pods).
    TargetsGone,
}

impl RecoveryStart {
    /// How a report says it: "after the last revert".
    pub fn words(self) -> &'static str {
        match self {
            RecoveryStart::LastRevert => "after the last revert",
            RecoveryStart::LastInjection => "after the kill",
            RecoveryStart::TargetsGone => "after the killed pods were gone",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProbeOutcome {
    pub name: String,
    pub kind: String,
    pub passed: bool,
    pub attempts: u32,
    pub duration_ms: u64,
    pub detail: String,
    /// What the last attempt measured (`detail` gives an http response's time to its last
    /// byte, `ttfb_ms` its first).
    #[serde(flatten)]
    pub measured: Measured,
}

/// What one probe attempt measured beyond its result, when the probe measures it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    /// The measured value, for probes that measure one (prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Time to the first byte of the response (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DuringPhase {
    pub passed: bool,
    pub probes: Vec<DuringProbe>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DuringProbe {
    pub name: String,
    pub kind: String,
    pub samples: u32,
    pub successes: u32,
    pub success_ratio: f64,
    pub min_success: f64,
    pub passed: bool,
    /// Time to the whole response (http: to the last byte of the body).
    pub latency_ms: Latency,
    /// Time to the first byte of the response (http), when the probe measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<Latency>,
    /// The probe's `latency` bounds, each against the window's measured percentile.
    /// Absent when the probe sets none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_bounds: Vec<LatencyCheck>,
    /// Every sample, for timelines: offset from the run's start, result, latency.
    #[serde(default)]
    pub timeline: Vec<SamplePoint>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: u64,
    pub p95: u64,
    /// Absent in reports written before p99 was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<u64>,
    pub max: u64,
}

/// One `latency` bound of a during probe against what the window measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LatencyCheck {
    /// `p50`, `p95` or `p99`.
    pub percentile: String,
    /// The bound, in milliseconds.
    pub bound_ms: u64,
    /// The window's percentile, in milliseconds (nearest rank over every sample).
    pub measured_ms: u64,
    /// Whether the measured value is within the bound (`measured_ms <= bound_ms`).
    pub passed: bool,
}

impl LatencyCheck {
    /// `p95 812ms > 300ms` or `p95 120ms <= 300ms`.
    pub fn words(&self) -> String {
        format!(
            "{} {}ms {} {}ms",
            self.percentile,
            self.measured_ms,
            if self.passed { "<=" } else { ">" },
            self.bound_ms
        )
    }
}

impl Latency {
    /// Nearest-rank percentiles of millisecond latencies.
    pub fn of(values: &[u64]) -> Latency {
        if values.is_empty() {
            return Latency::default();
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Latency {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: Some(rank(0.99)),
            max: *v.last().unwrap(),
        }
    }

    /// The nearest-rank percentile `q` (0.0..=1.0) of millisecond latencies; 0 for none.
    pub fn percentile(values: &[u64], q: f64) -> u64 {
        if values.is_empty() {
            return 0;
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SamplePoint {
    pub at_ms: u64,
    pub ok: bool,
    /// Time to the whole response (http: to the last byte of the body).
    pub latency_ms: u64,
    #[serde(flatten)]
    pub measured: Measured,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(with = "millis_utc")]
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub message: String,
}

/// What happened during a run; written as its snake_case name in the JSON report.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TargetsSelected,
    FaultInjected,
    FaultFailed,
    FaultReverted,
    TargetVanished,
    RevertFailed,
    TargetSurvived,
    Abort,
    NoTargets,
    Recovered,
    NotRecovered,
    Verdict,
    /// What a fault caused in its target (the OOM killer acting, processes signalled).
    FaultEffect,
    /// A kind this faultline does not know (a report written by a newer one).
    #[serde(other)]
    Other,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TargetsSelected => "targets_selected",
            EventKind::FaultInjected => "fault_injected",
            EventKind::FaultFailed => "fault_failed",
            EventKind::FaultReverted => "fault_reverted",
            EventKind::TargetVanished => "target_vanished",
            EventKind::RevertFailed => "revert_failed",
            EventKind::TargetSurvived => "target_survived",
            EventKind::Abort => "abort",
            EventKind::NoTargets => "no_targets",
            EventKind::Recovered => "recovered",
            EventKind::NotRecovered => "not_recovered",
            EventKind::Verdict => "verdict",
            EventKind::FaultEffect => "fault_effect",
            EventKind::Other => "other",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3339 with milliseconds and `Z`, as in the spec's example.
mod millis_utc {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod millis_utc_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::millis_utc::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let l = Latency::of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
        assert_eq!(
            l,
            Latency {
                p50: 5,
                p95: 100,
                p99: Some(100),
                max: 100
            }
        );
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn verdicts_agree_with_exit_codes() {
        assert_eq!(Verdict::NotSteady.exit().code(), 3);
        assert_eq!(Verdict::RevertIncomplete.exit().code(), 5);
        assert_eq!(
            serde_json::to_string(&Verdict::NoTargets).unwrap(),
            "\"no_targets\""
        );
    }
}

#[cfg(test)]
mod selection_tests {
    use super::Selection;
    use crate::experiment::model::{Select, SelectMode};
    use crate::platform::select::fixtures::{sel, targets};
    use crate::platform::{Target, select::select};

    fn select_counted(
        c: Vec<Target>,
        s: &Select,
        seed: Option<u64>,
    ) -> (Vec<Target>, u64, Selection) {
        let matched = c.len();
        let (chosen, seed) = select(c, s, seed);
        let counts = Selection::of(s, matched, chosen.len());
        (chosen, seed, counts)
    }

    /// Regression: `count: 5` with 3 matches silently took 3.
    #[test]
    fn a_short_selection_says_so_and_min_refuses_it() {
        let mut s = sel(SelectMode::Count, Some(5));
        let (chosen, _, counts) = select_counted(targets(3), &s, Some(1));
        assert_eq!(chosen.len(), 3);
        assert_eq!(
            (counts.requested, counts.matched, counts.selected),
            (5, 3, 3)
        );
        assert_eq!(counts.shortfall().as_deref(), Some("3 of 5 requested"));
        assert_eq!(counts.too_few("x"), None, "without min, 3 of 5 still runs");
        s.min = Some(4);
        let (_, _, counts) = select_counted(targets(3), &s, Some(1));
        assert_eq!(
            counts.too_few("x").as_deref(),
            Some("only 3 of 5 requested targets matched x, fewer than select.min 4")
        );
        s.min = Some(3);
        assert_eq!(select_counted(targets(3), &s, Some(1)).2.too_few("x"), None);
        // min with the other modes counts the selected targets too.
        let mut all = sel(SelectMode::All, None);
        all.min = Some(3);
        assert!(
            select_counted(targets(2), &all, None)
                .2
                .too_few("x")
                .is_some()
        );
        assert_eq!(select_counted(targets(4), &all, None).2.shortfall(), None);
        let (_, _, none) = select_counted(targets(0), &all, None);
        assert_eq!(none.too_few("x").as_deref(), Some("no target matched x"));
    }

    /// Regression: an already-paused container was reported as "no target matched".
    #[test]
    fn a_skipped_match_is_named_with_why() {
        let paused = vec![crate::platform::PassedOver {
            name: "web-2".into(),
            why: "paused".into(),
        }];
        let all = sel(SelectMode::All, None);
        let (_, _, none) = select_counted(targets(0), &all, None);
        let none = none.passing_over(paused.clone());
        assert_eq!(
            none.too_few("x").as_deref(),
            Some("no eligible target matched x; skipped: web-2 (paused)")
        );
        let (_, _, one) = select_counted(targets(1), &all, None);
        let one = one.passing_over(paused.clone());
        assert_eq!(one.too_few("x"), None);
        assert_eq!(one.shortfall().as_deref(), Some("skipped: web-2 (paused)"));
        let (_, _, short) = select_counted(targets(1), &sel(SelectMode::Count, Some(2)), Some(1));
        assert_eq!(
            short.passing_over(paused).shortfall().as_deref(),
            Some("1 of 2 requested; skipped: web-2 (paused)")
        );
    }
}
