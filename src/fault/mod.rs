//! Faults: one file per fault, each with its inject and revert. A reversible injection
//! has an [`Undo`] record, known before the fault is applied: exactly what a revert needs,
//! serializable so that a later process (`faultline recover`) reverts through the same
//! code path.

pub mod kill;
pub mod network;
pub mod pause;

use serde::{Deserialize, Serialize};

use crate::experiment::model::{Fault, NetworkEngine};
use crate::target::{Platform, PlatformError, Target};

/// What must be done to revert one injection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    Unpause {
        target: Target,
    },
    RemoveQdisc {
        target: Target,
        qdisc: network::QdiscRecord,
    },
}

impl Undo {
    pub fn target(&self) -> &Target {
        match self {
            Undo::Unpause { target } | Undo::RemoveQdisc { target, .. } => target,
        }
    }
}

/// How long one revert may keep trying before it counts as unconfirmed.
pub const REVERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the fault can run here at all; checked before anything is touched so that a
/// run never half-applies an experiment.
pub async fn preflight(fault: &Fault, platform: &dyn Platform) -> Result<(), String> {
    match fault {
        Fault::Kill(_) | Fault::Pause(_) => Ok(()),
        Fault::Network(n) => {
            if n.engine == NetworkEngine::Nfqueue {
                return Err(
                    "the `nfqueue` network engine is not available in this build of faultline; use `engine: netem`"
                        .into(),
                );
            }
            if network::needs_netem(n) && platform.netem_supported().await == Some(false) {
                return Err(network::netem_missing_message());
            }
            Ok(())
        }
        Fault::CpuStress(_) => Err(format!(
            "the `cpu_stress` fault is not available on {} in this build of faultline",
            platform.kind()
        )),
    }
}

/// Gets ready to inject: the undo record of a reversible fault (and any helper it needs),
/// known before the fault is applied so that it can be journaled first.
pub async fn prepare(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
) -> Result<Option<Undo>, PlatformError> {
    match fault {
        Fault::Kill(_) => Ok(None),
        Fault::Pause(_) => Ok(Some(Undo::Unpause {
            target: target.clone(),
        })),
        Fault::Network(n) => {
            // A helper outlives the fault by a margin, then cleans up on its own.
            let lifetime = n.duration.std() + REVERT_TIMEOUT * 2;
            let access = platform
                .net_access(
                    target,
                    n.strategy,
                    n.tc_image.as_deref(),
                    &n.interface,
                    lifetime,
                )
                .await?;
            Ok(Some(Undo::RemoveQdisc {
                target: target.clone(),
                qdisc: network::QdiscRecord {
                    interface: n.interface.clone(),
                    access,
                },
            }))
        }
        Fault::CpuStress(_) => Err(PlatformError::Refused(
            "cpu_stress is not available in this build of faultline".into(),
        )),
    }
}

/// Gives back what [`prepare`] set up when the fault was not applied after all.
pub async fn release(platform: &dyn Platform, undo: &Undo) {
    if let Undo::RemoveQdisc { qdisc, .. } = undo {
        if let Err(e) = platform.net_release(&qdisc.access).await {
            tracing::warn!("cannot remove the network helper: {e}");
        }
    }
}

/// Applies a fault to one target.
pub async fn inject(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
    undo: Option<&Undo>,
) -> Result<(), PlatformError> {
    match (fault, undo) {
        (Fault::Kill(k), _) => kill::inject(platform, k, target).await,
        (Fault::Pause(_), _) => pause::inject(platform, target).await,
        (Fault::Network(n), Some(Undo::RemoveQdisc { qdisc, .. })) => {
            network::inject(platform, n, target, &qdisc.access).await
        }
        _ => Err(PlatformError::Refused(format!(
            "the `{}` fault cannot be applied here",
            fault.type_name()
        ))),
    }
}

/// Reverts like [`revert`], retrying while the platform is unreachable (a daemon being
/// restarted, a flaky API server) until `timeout`. Returns `None` when it timed out.
pub async fn revert_until(
    platform: &dyn Platform,
    undo: &Undo,
    timeout: std::time::Duration,
) -> Option<Result<(), PlatformError>> {
    let attempts = async {
        loop {
            match revert(platform, undo).await {
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
    match undo {
        Undo::Unpause { target } => pause::revert(platform, target).await,
        Undo::RemoveQdisc { target, qdisc } => {
            let removed = network::revert(platform, target, qdisc).await;
            // The helper goes only once the qdisc is confirmed gone: it is the way in.
            if removed.is_ok() || matches!(removed, Err(PlatformError::Gone(_))) {
                platform.net_release(&qdisc.access).await?;
            }
            removed
        }
    }
}
