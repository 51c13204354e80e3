//! The run's result, which *is* the JSON report of spec section 6, and its renderers.
//! Every renderer reads this one model.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod metrics;
pub mod summary;
pub mod table;

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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetRef {
    pub platform: String,
    pub id: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultStatus {
    Reverted,
    Completed,
    Failed,
    Active,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
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
pub struct FaultEffects {
    /// How many times the kernel's OOM killer acted in the target's memory cgroup while
    /// the fault was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// The processes the OOM killer killed, as the kernel named them (when its log is
    /// readable from here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oom_killed: Vec<ProcessRef>,
    /// The processes the fault signalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signalled: Vec<ProcessRef>,
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
        parts.join("; ")
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
    /// After only: time from the last revert to the first full pass.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recovered_after_ms: Option<u64>,
    pub probes: Vec<ProbeOutcome>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProbeOutcome {
    pub name: String,
    pub kind: String,
    pub passed: bool,
    pub attempts: u32,
    pub duration_ms: u64,
    pub detail: String,
    /// The measured value of the last attempt, for probes that measure one (prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
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
    pub latency_ms: Latency,
    /// Every sample, for timelines: offset from the run's start, result, latency.
    #[serde(default)]
    pub timeline: Vec<SamplePoint>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: u64,
    pub p95: u64,
    pub max: u64,
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
            max: *v.last().unwrap(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SamplePoint {
    pub at_ms: u64,
    pub ok: bool,
    pub latency_ms: u64,
    /// The measured value, for probes that measure one (prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
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

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod millis_utc_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::millis_utc::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
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
