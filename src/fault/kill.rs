//! `kill`: sends a signal to the container (Docker) or deletes the pod (Kubernetes). A
//! one-shot fault: there is nothing to revert; the restart policy or controller decides
//! whether the target comes back.

use async_trait::async_trait;

use super::FaultKind;
use crate::experiment::model::{FaultProblems, FaultSpec, KillFault, Target as TargetSpec};
use crate::experiment::units::Duration;
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target};

impl FaultSpec for KillFault {
    fn name(&self) -> &'static str {
        "kill"
    }

    fn after(&self) -> Duration {
        self.after
    }

    fn duration(&self) -> Option<Duration> {
        self.every.and(self.duration)
    }

    fn describe(&self) -> String {
        let mut s = format!("kill with {}", self.signal);
        if let Some(g) = self.grace_period {
            s.push_str(&format!(", grace period {g}"));
        }
        if let (Some(every), Some(d)) = (self.every, self.duration) {
            s.push_str(&format!(", every {every} for {d}"));
        }
        s
    }

    fn validate(&self, target: &TargetSpec, p: &mut FaultProblems) {
        match (self.every, self.duration) {
            (Some(every), Some(d)) => {
                p.positive("every", every);
                if every > d {
                    p.err_at(
                        "every",
                        format!("`every` ({every}) is longer than `duration` ({d}): the kill would run once"),
                    );
                }
            }
            (Some(_), None) => p.err_at("every", "`every` needs `duration`: how long to keep killing"),
            (None, Some(_)) => p.err_at(
                "duration",
                "a single kill has no duration: add `every` to repeat it over `duration`, or remove `duration`",
            ),
            (None, None) => {}
        }
        if self.grace_period.is_some() && target.docker.is_some() {
            p.err_at(
                "grace_period",
                "`grace_period` applies to Kubernetes pods; for Docker choose the `signal` (e.g. SIGTERM)",
            );
        }
    }
}

#[async_trait]
impl FaultKind for KillFault {
    async fn prepare(
        &self,
        _platform: &dyn Platform,
        _target: &Target,
    ) -> Result<Option<super::Undo>, PlatformError> {
        Ok(None)
    }

    async fn inject(
        &self,
        platform: &dyn Platform,
        target: &Target,
        _undo: Option<&super::Undo>,
    ) -> Result<(), PlatformError> {
        platform
            .signal(target, self.signal, self.grace_period)
            .await
    }

    fn rbac(&self) -> &'static [Permission] {
        &[rbac::DELETE_PODS]
    }
}
