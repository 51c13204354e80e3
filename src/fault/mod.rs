//! Faults: one file per fault, each with its inject and revert. An injection returns an
//! [`Undo`] record: exactly what a revert needs, serializable so that a later process can
//! revert through the same code path.

pub mod kill;
pub mod pause;

use serde::{Deserialize, Serialize};

use crate::experiment::model::Fault;
use crate::target::{Platform, PlatformError, Target};

/// What must be done to revert one injection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    Unpause { target: Target },
}

impl Undo {
    pub fn target(&self) -> &Target {
        match self {
            Undo::Unpause { target } => target,
        }
    }
}

/// Whether this build can inject the fault on the platform; checked before anything is
/// touched so that a run never half-applies an experiment.
pub fn supported(fault: &Fault, platform: &dyn Platform) -> Result<(), String> {
    match fault {
        Fault::Kill(_) | Fault::Pause(_) => Ok(()),
        Fault::Network(_) | Fault::CpuStress(_) => Err(format!(
            "the `{}` fault is not available on {} in this build of faultline",
            fault.type_name(),
            platform.kind()
        )),
    }
}

/// The undo record of a reversible fault on a target, known before it is applied so that
/// it can be journaled first.
pub fn undo_for(fault: &Fault, target: &Target) -> Option<Undo> {
    match fault {
        Fault::Pause(_) => Some(Undo::Unpause {
            target: target.clone(),
        }),
        Fault::Kill(_) | Fault::Network(_) | Fault::CpuStress(_) => None,
    }
}

/// Applies a fault to one target.
pub async fn inject(
    platform: &dyn Platform,
    fault: &Fault,
    target: &Target,
) -> Result<(), PlatformError> {
    match fault {
        Fault::Kill(k) => kill::inject(platform, k, target).await,
        Fault::Pause(_) => pause::inject(platform, target).await,
        Fault::Network(_) | Fault::CpuStress(_) => Err(PlatformError::Refused(
            supported(fault, platform).expect_err("checked before the run"),
        )),
    }
}

/// Reverts an injection and confirms the target is back to normal. `Gone` means the
/// target no longer exists, so nothing of the fault is left on it either.
pub async fn revert(platform: &dyn Platform, undo: &Undo) -> Result<(), PlatformError> {
    match undo {
        Undo::Unpause { target } => pause::revert(platform, target).await,
    }
}
