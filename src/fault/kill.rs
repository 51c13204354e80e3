//! `kill`: sends a signal to the container (Docker) or deletes the pod (Kubernetes). A
//! one-shot fault: there is nothing to revert; the restart policy or controller decides
//! whether the target comes back.

use async_trait::async_trait;

use super::FaultKind;
use super::Settled;
use crate::experiment::model::{
    FaultProblems, FaultSpec, KillExpect, KillFault, Target as TargetSpec,
};
use crate::experiment::units::Duration;
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target};

/// How long a Docker container has to end after the signal, by default.
const DEFAULT_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

    /// On Kubernetes a kill deletes the pod; say so, and what the grace period means.
    fn describe_on(&self, target: &TargetSpec) -> String {
        if target.kubernetes.is_none() {
            return self.describe();
        }
        let mut s = match self.grace_period {
            Some(g) if !g.std().is_zero() => {
                format!("delete pod (grace {g}: the image's stop signal, SIGKILL after {g})")
            }
            _ => "delete pod (grace 0 s, force)".to_string(),
        };
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
        if self.expect != KillExpect::Exit && target.kubernetes.is_some() {
            p.err_at(
                "expect",
                "a kill on Kubernetes deletes the pod, which always ends it: `expect` applies to Docker",
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

    /// Waits up to the grace period for the target to end (or be restarted: its process
    /// then started after the kill). One still running with the same start time
    /// survived the signal, e.g. a PID 1 without a handler for SIGTERM.
    async fn settle(
        &self,
        platform: &dyn Platform,
        target: &Target,
        injected_at: chrono::DateTime<chrono::Utc>,
    ) -> Settled {
        let grace = self.grace_period.map_or(DEFAULT_EXIT_WAIT, Duration::std);
        // A deleted pod: recovery starts once it has left the API (while it terminates,
        // its Deployment's status still counts it).
        match platform
            .until_gone(target, grace + super::REVERT_TIMEOUT)
            .await
        {
            Ok(true) => {
                return Settled::Done {
                    gone_at: Some(tokio::time::Instant::now()),
                };
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cannot tell when `{}` was gone: {e}", target.name);
                return Settled::Done { gone_at: None };
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match platform.running_since(target).await {
                // Gone, stopped, or a new process (restarted by its policy): it ended.
                Err(PlatformError::Gone(_)) | Ok(None) => return Settled::Done { gone_at: None },
                Ok(Some(since)) if since > injected_at => return Settled::Done { gone_at: None },
                // The platform cannot tell: nothing to check.
                Err(PlatformError::Refused(_)) => return Settled::Done { gone_at: None },
                Ok(Some(_)) | Err(PlatformError::Unavailable(_)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Settled::Survived {
            note: format!(
                "`{}` still runs {} after {} (a process that ignores the signal, e.g. a PID 1 without a handler for it)",
                target.name,
                Duration::from_millis(grace.as_millis() as u64),
                self.signal
            ),
            expected: self.expect != KillExpect::Exit,
        }
    }

    fn rbac(&self) -> &'static [Permission] {
        &[rbac::DELETE_PODS, rbac::GET_PODS]
    }
}
