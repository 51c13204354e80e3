//! Faults: one file per fault. Each implements [`FaultSpec`] (name, timing, description,
//! validation) and [`FaultKind`] (what it needs, its undo record, inject, and the RBAC
//! rules it needs on Kubernetes), composing the platform's primitives. This module only
//! dispatches.
//!
//! A reversible injection has an [`Undo`] record, known before the fault is applied:
//! exactly what a revert needs, serializable so that a later process (`faultline
//! recover`) reverts through the same code path.
//!
//! Adding a fault: its parameters as a variant of [`Fault`] in the model (and its arm in
//! `Fault::spec`), its file here with both traits, its arm in [`kind`], and, when it is
//! reversible, its record in [`UndoRecord`] and its arm in [`revert`] / [`release`].

pub mod command;
pub mod cpu_stress;
pub mod disk_fill;
pub mod dns;
pub mod http;
pub mod http_call;
pub mod http_proxy;
pub mod ifb;
pub mod io_stress;
pub mod kill;
pub mod memory_stress;
pub mod net_scope;
pub mod network;
pub mod nfqueue;
pub mod pause;
pub mod process_pause;
pub mod resolve;
pub mod stop;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::experiment::model::Fault;
pub use crate::experiment::model::FaultSpec;
use crate::platform::kubernetes::rbac::Permission;
use crate::platform::{Platform, PlatformError, Target};
pub use crate::report::FaultEffects;

/// What [`FaultKind::prepare`] answers: the undo record of a reversible fault.
pub type Prepared = Result<Option<Undo>, PlatformError>;
/// What [`FaultKind::inject`] answers.
pub type Injected = Result<(), PlatformError>;
/// What [`FaultKind::inject_reporting`] answers: what the report should name.
pub type Reported = Result<Option<FaultEffects>, PlatformError>;

/// What a fault does to a platform. Implemented in the fault's own file.
#[async_trait]
pub trait FaultKind: FaultSpec + Send + Sync {
    /// Whether it can run against this platform at all; checked for every fault before
    /// anything is touched, so that a run never half-applies an experiment. Said by
    /// `plan` and `doctor` too.
    async fn preflight(&self, _platform: &dyn Platform) -> Result<(), String> {
        Ok(())
    }

    /// Gets ready to inject into one target: the undo record of a reversible fault (and
    /// any helper it needs), known before the fault is applied so that it is journaled
    /// first. `None` for a one-shot fault.
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared;

    /// Applies the fault to one target. A fault implements this or
    /// [`FaultKind::inject_reporting`] (each defaults to the other).
    async fn inject(
        &self,
        platform: &dyn Platform,
        target: &Target,
        undo: Option<&Undo>,
    ) -> Injected {
        self.inject_reporting(platform, target, undo)
            .await
            .map(|_| ())
    }

    /// Applies the fault like [`FaultKind::inject`] and says what it did that the report
    /// should name (the processes a `kill` signalled). Faults with nothing to add keep
    /// this default.
    async fn inject_reporting(&self, p: &dyn Platform, t: &Target, u: Option<&Undo>) -> Reported {
        self.inject(p, t, u).await.map(|()| None)
    }

    /// For a one-shot fault, once it is applied: whether it took effect. A kill whose
    /// target keeps running says so here.
    async fn settle(
        &self,
        _platform: &dyn Platform,
        _target: &Target,
        _injected_at: chrono::DateTime<chrono::Utc>,
    ) -> Settled {
        Settled::Done { gone_at: None }
    }

    /// Whether it runs once for the whole fault rather than once per target (a command
    /// on faultline's own host); it is then recorded against [`command::host_target`].
    fn once(&self) -> bool {
        false
    }

    /// What `plan` says beyond the description, resolved now on the chosen targets
    /// without touching them (a scoped network fault's peers and their addresses).
    async fn plan_notes(&self, _platform: &dyn Platform, _targets: &[Target]) -> Vec<String> {
        Vec::new()
    }

    /// The Kubernetes permissions it needs (`faultline rbac`, `doctor`).
    fn rbac(&self) -> &'static [Permission];

    /// What it asks of the target namespace beyond RBAC (its Pod Security level), as
    /// comment lines for `faultline rbac`.
    fn kubernetes_note(&self) -> Option<&'static str> {
        None
    }

    /// What the fault caused in the target while it was active (the OOM killer acting),
    /// read just before it is reverted; `None` when there is nothing to say.
    async fn effects(&self, _platform: &dyn Platform, _undo: &Undo) -> Option<FaultEffects> {
        None
    }
}

/// What a one-shot fault did once applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// It took effect; `gone_at` when the platform confirmed the target gone (a deleted
    /// pod left the API): recovery is timed from then.
    Done {
        gone_at: Option<tokio::time::Instant>,
    },
    /// The target kept running; `expected` when the experiment said it would.
    Survived { note: String, expected: bool },
}

/// The fault's behaviour.
pub fn kind(fault: &Fault) -> &dyn FaultKind {
    crate::experiment::model::each_fault!(fault, f => f)
}

/// The Kubernetes permissions a fault needs to inject and revert, in the target's namespace.
pub fn rbac_rules(fault: &Fault) -> Vec<Permission> {
    kind(fault).rbac().to_vec()
}

/// Everything an experiment needs on Kubernetes, by scope (`faultline rbac`, `doctor`).
pub fn kubernetes_needs(
    e: &crate::experiment::model::Experiment,
) -> crate::platform::kubernetes::rbac::Needs {
    crate::platform::kubernetes::rbac::needs(e, rbac_rules)
}

/// The version of the undo records this faultline writes. Records without one are
/// version 1 (before the field existed) and read the same.
pub const UNDO_FORMAT_VERSION: u32 = 2;

fn undo_v1() -> u32 {
    1
}

/// What must be done to revert one injection, as it is written to the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    #[serde(default = "undo_v1")]
    pub format_version: u32,
    #[serde(flatten)]
    pub record: UndoRecord,
}

/// One record per reversible fault, each defined in the fault's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum UndoRecord {
    Unpause {
        target: Target,
    },
    ResumeProcesses {
        target: Target,
        paused: process_pause::PausedRecord,
    },
    RemoveQdisc {
        target: Target,
        qdisc: network::QdiscRecord,
    },
    StopStressor {
        target: Target,
        stressor: cpu_stress::StressorRecord,
    },
    FreeMemory {
        target: Target,
        memory: memory_stress::MemoryRecord,
    },
    RemoveFile {
        target: Target,
        fill: disk_fill::FillRecord,
    },
    RemoveIoFiles {
        target: Target,
        io: io_stress::IoRecord,
    },
    StartTarget {
        target: Target,
    },
    RunRollback {
        target: Target,
        rollback: command::RollbackRecord,
    },
    HttpRollback {
        target: Target,
        request: http_call::RequestRecord,
    },
    RemoveHttpProxy {
        target: Target,
        proxy: http::ProxyRecord,
    },
}

impl Undo {
    pub fn new(record: UndoRecord) -> Undo {
        Undo {
            format_version: UNDO_FORMAT_VERSION,
            record,
        }
    }

    pub fn target(&self) -> &Target {
        match &self.record {
            UndoRecord::Unpause { target }
            | UndoRecord::ResumeProcesses { target, .. }
            | UndoRecord::RemoveQdisc { target, .. }
            | UndoRecord::StopStressor { target, .. }
            | UndoRecord::FreeMemory { target, .. }
            | UndoRecord::RemoveFile { target, .. }
            | UndoRecord::RemoveIoFiles { target, .. }
            | UndoRecord::StartTarget { target }
            | UndoRecord::RunRollback { target, .. }
            | UndoRecord::HttpRollback { target, .. }
            | UndoRecord::RemoveHttpProxy { target, .. } => target,
        }
    }
}

/// How long one revert may keep trying before it counts as unconfirmed.
pub const REVERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A helper or stressor outlives its fault by this margin, then cleans up on its own:
/// a normal revert is always the one that ends it.
pub fn helper_lifetime(duration: std::time::Duration) -> std::time::Duration {
    duration + REVERT_TIMEOUT * 2
}

/// Whether the fault can run here at all; see [`FaultKind::preflight`].
pub async fn preflight(fault: &Fault, platform: &dyn Platform) -> Result<(), String> {
    kind(fault).preflight(platform).await
}

/// See [`FaultKind::prepare`].
pub async fn prepare(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
) -> Result<Option<Undo>, PlatformError> {
    kind(fault).prepare(platform, target).await
}

/// See [`FaultKind::inject`].
pub async fn inject(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
    undo: Option<&Undo>,
) -> Result<(), PlatformError> {
    kind(fault).inject(platform, target, undo).await
}

/// Like [`inject`], with what the fault says it did ([`FaultKind::inject_reporting`]).
pub async fn inject_reporting(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
    undo: Option<&Undo>,
) -> Result<Option<FaultEffects>, PlatformError> {
    kind(fault).inject_reporting(platform, target, undo).await
}

/// Gives back what [`prepare`] set up when the fault was not applied after all.
///
/// Returns false when what was prepared may still be in effect and must stay in the
/// journal for `recover`: a command's rollback that did not succeed (its `run` may have
/// half-done something). Everything else counts as released, as before.
pub async fn release(platform: &dyn Platform, undo: &Undo) -> bool {
    let released = match &undo.record {
        UndoRecord::RemoveQdisc { qdisc, .. } => network::release(platform, qdisc).await,
        UndoRecord::Unpause { .. } => Ok(()),
        // The rest undo what was half done like a revert: a stressor that started only
        // some of its workers, a file partly written, a stop half-done.
        _ => revert(platform, undo).await,
    };
    match released {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                "cannot release what was prepared for {}: {e}",
                undo.target().name
            );
            !matches!(
                undo.record,
                UndoRecord::RunRollback { .. } | UndoRecord::HttpRollback { .. }
            )
        }
    }
}

/// Reverts like [`revert`], retrying while the platform is unreachable (a daemon being
/// restarted, a flaky API server) until `timeout`. Returns `None` when it timed out.
pub async fn revert_until(
    platform: &dyn Platform,
    undo: &Undo,
    timeout: std::time::Duration,
) -> Option<Result<Option<FaultEffects>, PlatformError>> {
    let attempts = async {
        loop {
            match revert_reporting(platform, undo).await {
                Err(PlatformError::Unavailable(e)) => {
                    tracing::info!(
                        "revert of {} waits for the platform: {e}",
                        undo.target().name
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    };
    tokio::time::timeout(timeout, attempts).await.ok()
}

/// Reverts an injection and confirms the target is back to normal. `Gone` means the
/// target no longer exists, so nothing of the fault is left on it either.
pub async fn revert(platform: &dyn Platform, undo: &Undo) -> Result<(), PlatformError> {
    revert_reporting(platform, undo).await.map(|_| ())
}

/// Like [`revert`], with what the revert itself did that the report should name (a
/// command fault's rollback: its status, output and duration).
pub async fn revert_reporting(
    platform: &dyn Platform,
    undo: &Undo,
) -> Result<Option<FaultEffects>, PlatformError> {
    let reverted = match &undo.record {
        UndoRecord::RunRollback { target, rollback } => {
            return command::revert(platform, target, rollback).await;
        }
        UndoRecord::HttpRollback { request, .. } => return http_call::revert(request).await,
        UndoRecord::RemoveHttpProxy { target, proxy } => {
            return http::revert(platform, target, proxy).await;
        }
        UndoRecord::ResumeProcesses { target, paused } => {
            return process_pause::revert(platform, target, paused).await;
        }
        UndoRecord::Unpause { target } => pause::revert(platform, target).await,
        UndoRecord::RemoveQdisc { target, qdisc } => network::revert(platform, target, qdisc).await,
        UndoRecord::StopStressor { target, stressor } => {
            cpu_stress::revert(platform, target, stressor).await
        }
        UndoRecord::FreeMemory { target, memory } => {
            memory_stress::revert(platform, target, memory).await
        }
        UndoRecord::RemoveFile { target, fill } => disk_fill::revert(platform, target, fill).await,
        UndoRecord::RemoveIoFiles { target, io } => io_stress::revert(platform, target, io).await,
        UndoRecord::StartTarget { target } => stop::revert(platform, target).await,
    };
    reverted.map(|()| None)
}

/// The part of its undo record a fault's `inject` works from:
/// `undo_part!(u, StopStressor { stressor }, self)` is the record's `stressor`; a record of
/// another fault (or none) returns the error for it.
macro_rules! undo_part {
    ($u:expr, $variant:ident { $field:ident }, $fault:expr) => {
        match $u.map(|u| &u.record) {
            Some($crate::fault::UndoRecord::$variant { $field, .. }) => $field,
            _ => return Err($crate::fault::mismatched($fault)),
        }
    };
}
pub(crate) use undo_part;

/// The error for an undo record that does not belong to the fault given it.
fn mismatched(fault: &dyn FaultSpec) -> PlatformError {
    PlatformError::Refused(format!(
        "the `{}` fault cannot be applied here",
        fault.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kubernetes::rbac;

    fn experiment(yaml: &str) -> crate::experiment::model::Experiment {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// What an experiment on pods in `shop` needs; `rest` follows its `target`.
    fn needs_on_shop(rest: &str) -> rbac::Needs {
        let head =
            "version: 1\nname: x\ntarget: {kubernetes: {namespace: shop, selector: app=api}}\n";
        kubernetes_needs(&experiment(&format!("{head}{rest}")))
    }

    /// What is needed in namespace `ns` (of the current context), as (resource, verb).
    fn verbs_in<'a>(needs: &'a rbac::Needs, ns: &str) -> Vec<(&'a str, &'a str)> {
        let scope = rbac::Scope {
            context: None,
            namespace: ns.into(),
        };
        needs[&scope].keys().map(|p| (p.resource, p.verb)).collect()
    }

    /// Namespace `ns` needs only to list pods, for `why`.
    #[track_caller]
    fn only_listed_in(needs: &rbac::Needs, ns: &str, why: &str) {
        let scope = rbac::Scope {
            context: None,
            namespace: ns.into(),
        };
        let perms: Vec<(&Permission, Vec<&String>)> = needs[&scope]
            .iter()
            .map(|(p, whys)| (p, whys.iter().collect()))
            .collect();
        assert_eq!(perms, [(&rbac::LIST_PODS, vec![&why.to_string()])]);
    }

    #[test]
    fn kubernetes_needs_follow_the_faults_and_probes() {
        let needs = needs_on_shop(
            r#"
steady_state:
  - name: d
    kubernetes: {namespace: shop, deployment: api, available: ">= 1"}
  - name: r
    kubernetes: {namespace: front, selector: app=web, ready: 1}
faults:
  - kill: {}
  - pause: {duration: 5s}
"#,
        );
        assert_eq!(
            verbs_in(&needs, "shop"),
            [
                ("pods", "create"),
                ("pods", "delete"),
                ("pods", "get"),
                ("pods", "list"),
                ("deployments", "get"),
            ]
        );
        only_listed_in(&needs, "front", "probe `r`");
    }

    #[test]
    fn named_targets_need_the_union_of_what_each_kubernetes_target_needs() {
        let e = experiment(
            r#"
version: 1
name: x
targets:
  api: {docker: {labels: {app: api}}}
  cache: {kubernetes: {namespace: shop, selector: app=cache}}
  queue: {kubernetes: {namespace: jobs, selector: app=queue}}
faults:
  - pause: {target: api, duration: 5s}
  - kill: {target: cache}
  - command: {target: queue, where: target, run: [touch, /f], rollback: [rm, /f], duration: 1s}
"#,
        );
        let needs = kubernetes_needs(&e);
        assert_eq!(needs.len(), 2, "{needs:?}");
        // The pause is on the Docker target: no pod is created for it.
        assert_eq!(
            verbs_in(&needs, "shop"),
            [("pods", "delete"), ("pods", "get"), ("pods", "list")]
        );
        assert_eq!(
            verbs_in(&needs, "jobs"),
            [
                ("pods", "get"),
                ("pods", "list"),
                ("pods/exec", "create"),
                ("pods/exec", "get"),
            ]
        );
    }

    #[test]
    fn a_command_inside_pods_needs_exec_and_one_on_the_host_needs_nothing() {
        let needs = needs_on_shop(
            "faults:\n  - command: {where: target, run: [touch, /f], rollback: [rm, /f], duration: 1s}\n  - command: {run: [\"true\"]}\n",
        );
        assert_eq!(
            verbs_in(&needs, "shop"),
            [
                ("pods", "get"),
                ("pods", "list"),
                ("pods/exec", "create"),
                ("pods/exec", "get"),
            ]
        );
        let host_only: Fault =
            serde_json::from_value(serde_json::json!({"command": {"run": ["true"]}})).unwrap();
        assert!(rbac_rules(&host_only).is_empty());
    }

    #[test]
    fn peer_pods_in_another_namespace_are_listed_there() {
        let needs = needs_on_shop(
            "faults:\n  - network: {delay: 100ms, duration: 5s, to: {pods: {selector: app=db, namespace: data}}}\n",
        );
        only_listed_in(&needs, "data", "network peers");
        // The servers of an outbound http fault, by pod, the same way.
        let needs = needs_on_shop(
            "faults:\n  - http: {port: 80, direction: outbound, abort: {status: 503}, duration: 5s, to: {pods: {selector: app=pay, namespace: pay}}}\n",
        );
        only_listed_in(&needs, "pay", "http peers");
    }

    #[test]
    fn docker_experiments_need_nothing() {
        let e = experiment(
            "version: 1\nname: x\ntarget: {docker: {labels: {app: web}}}\nfaults: [{pause: {duration: 1s}}]\n",
        );
        assert!(kubernetes_needs(&e).is_empty());
    }

    #[test]
    fn undo_records_of_the_first_format_still_read() {
        let v1 = r#"{"undo":"unpause","target":{"platform":"docker","id":"abc","name":"web-1"}}"#;
        let undo: Undo = serde_json::from_str(v1).unwrap();
        assert_eq!(undo.format_version, 1);
        assert_eq!(undo.target().name, "web-1");
        let now = serde_json::to_value(Undo::new(undo.record.clone())).unwrap();
        assert_eq!(now["format_version"], UNDO_FORMAT_VERSION);
        assert_eq!(now["undo"], "unpause");
        let back: Undo = serde_json::from_value(now).unwrap();
        assert_eq!(back.record, undo.record);
    }
}
