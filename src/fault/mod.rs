//! Faults: one file per fault, each with its inject and revert. A reversible injection
//! has an [`Undo`] record, known before the fault is applied: exactly what a revert needs,
//! serializable so that a later process (`faultline recover`) reverts through the same
//! code path.

pub mod cpu_stress;
pub mod kill;
pub mod network;
pub mod nfqueue;
pub mod pause;

use serde::{Deserialize, Serialize};

use crate::experiment::model::{Fault, NetworkEngine, NetworkStrategy};
use crate::platform::{Platform, PlatformError, Target};

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
    StopStressor {
        target: Target,
        stressor: cpu_stress::StressorRecord,
    },
}

impl Undo {
    pub fn target(&self) -> &Target {
        match self {
            Undo::Unpause { target }
            | Undo::RemoveQdisc { target, .. }
            | Undo::StopStressor { target, .. } => target,
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
            if !network::needs_netem(n) {
                return Ok(());
            }
            let has_netem = platform.netem_supported().await;
            match n.engine {
                NetworkEngine::Netem if has_netem == Some(false) => Err(network::netem_missing_message()),
                NetworkEngine::Auto if has_netem == Some(false) && n.strategy == NetworkStrategy::Sidecar => Err(format!(
                    "{}; the nfqueue engine, which works without it, needs `strategy: host`",
                    network::netem_missing_message()
                )),
                NetworkEngine::Nfqueue if n.strategy == NetworkStrategy::Sidecar => {
                    Err("the nfqueue engine runs its delayer from the host: use `strategy: host` (or auto)".into())
                }
                _ => Ok(()),
            }
        }
        Fault::CpuStress(_) => Ok(()),
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
            let engine = match n.engine {
                NetworkEngine::Netem => network::Engine::Netem,
                NetworkEngine::Nfqueue => network::Engine::Nfqueue,
                NetworkEngine::Auto
                    if network::needs_netem(n)
                        && platform.netem_supported().await == Some(false) =>
                {
                    network::Engine::Nfqueue
                }
                NetworkEngine::Auto => network::Engine::Netem,
            };
            let nfq = engine == network::Engine::Nfqueue && network::needs_netem(n);
            // The delayer runs from the host, so nfqueue means host access.
            let strategy = if nfq {
                NetworkStrategy::Host
            } else {
                n.strategy
            };
            let access = platform
                .net_access(
                    target,
                    strategy,
                    n.tc_image.as_deref(),
                    &n.interface,
                    lifetime,
                )
                .await?;
            let delayer = if nfq {
                let cat = ["cat", "/proc/net/netfilter/nfnetlink_queue"].map(String::from);
                let listing = platform.net_exec(target, &access, &cat).await?;
                Some(nfqueue::DelayerRecord {
                    queue: nfqueue::pick_queue(&nfqueue::bound_queues(&listing.stdout)),
                    marker: format!("faultline-net-{:016x}", rand::random::<u64>()),
                })
            } else {
                None
            };
            Ok(Some(Undo::RemoveQdisc {
                target: target.clone(),
                qdisc: network::QdiscRecord {
                    interface: n.interface.clone(),
                    access,
                    tc: network::needs_tc(n, engine),
                    delayer,
                },
            }))
        }
        Fault::CpuStress(c) => {
            let access = platform.cpu_access(target, c.strategy).await?;
            Ok(Some(Undo::StopStressor {
                target: target.clone(),
                stressor: cpu_stress::StressorRecord {
                    marker: cpu_stress::new_marker(),
                    access,
                },
            }))
        }
    }
}

/// Gives back what [`prepare`] set up when the fault was not applied after all.
pub async fn release(platform: &dyn Platform, undo: &Undo) {
    let released = match undo {
        Undo::RemoveQdisc { qdisc, .. } => platform.net_release(&qdisc.access).await,
        // A stressor that failed to start fully may still have some of its workers.
        Undo::StopStressor { target, stressor } => {
            platform
                .stress_stop(target, stressor.access, &stressor.marker)
                .await
        }
        Undo::Unpause { .. } => Ok(()),
    };
    if let Err(e) = released {
        tracing::warn!(
            "cannot release what was prepared for {}: {e}",
            undo.target().name
        );
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
        (Fault::Pause(p), _) => {
            pause::inject(platform, target, p.duration.std() + REVERT_TIMEOUT * 2).await
        }
        (Fault::Network(n), Some(Undo::RemoveQdisc { qdisc, .. })) => {
            network::inject(platform, n, target, qdisc).await
        }
        (Fault::CpuStress(c), Some(Undo::StopStressor { stressor, .. })) => {
            platform
                .stress_start(
                    target,
                    stressor.access,
                    c.workers,
                    c.load,
                    c.duration.std(),
                    &stressor.marker,
                )
                .await
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
        Undo::StopStressor { target, stressor } => {
            platform
                .stress_stop(target, stressor.access, &stressor.marker)
                .await
        }
    }
}
