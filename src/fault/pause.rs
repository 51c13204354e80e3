//! `pause`: freezes every process of the target (the cgroup freezer), and thaws it at revert.

use async_trait::async_trait;

use super::{FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, PauseFault, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target};

impl FaultSpec for PauseFault {
    fault_timing!("pause");

    fn describe(&self) -> String {
        format!("pause for {}", self.duration)
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
    }
}

#[async_trait]
impl FaultKind for PauseFault {
    /// A rootless engine on cgroup v1 has no freezer: refused before anything is touched.
    async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
        platform.freeze_support().await
    }

    async fn prepare(&self, _platform: &dyn Platform, target: &Target) -> Prepared {
        Ok(Some(Undo::new(UndoRecord::Unpause {
            target: target.clone(),
        })))
    }

    /// The freeze is bounded where a helper holds it (Kubernetes): it thaws by itself
    /// after the fault's lifetime even if faultline died. A target someone else paused is
    /// refused by the platform (thawing it at revert would undo their action).
    async fn inject(
        &self,
        platform: &dyn Platform,
        target: &Target,
        _undo: Option<&Undo>,
    ) -> Injected {
        let lifetime = super::helper_lifetime(self.duration.std());
        match platform.freeze(target, lifetime).await {
            // The call failed, but the freeze may have taken (a daemon that answered after
            // the timeout). A target frozen now is ours, since one frozen already is
            // refused; frozen or unknown, it counts as injected, so that the run thaws it
            // (and the journal keeps it for `recover` until then).
            Err(PlatformError::Unavailable(e))
                if !matches!(platform.is_frozen(target).await, Ok(false)) =>
            {
                tracing::warn!(
                    "the pause of `{}` failed ({e}) but may have taken: it is reverted like one that did",
                    target.name
                );
                Ok(())
            }
            other => other,
        }
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# pause creates a privileged helper pod (hostPID, hostPath /sys/fs/cgroup) on the\n\
             # target's node: the namespace's Pod Security level must be `privileged`.\n",
        )
    }

    fn rbac(&self) -> &'static [Permission] {
        &[rbac::GET_PODS, rbac::CREATE_PODS, rbac::DELETE_PODS]
    }
}

/// Thaws the target. The platform's thaw returns once it has answered for the thaw:
/// asking the engine's state afterwards would only read its view, which can lag behind
/// the unpause. (A pause that timed out but is still on its way cannot land after the
/// unpause: the Docker daemon takes the container's lock for each.)
pub async fn revert(platform: &dyn Platform, target: &Target) -> Result<(), PlatformError> {
    platform.thaw(target).await
}
