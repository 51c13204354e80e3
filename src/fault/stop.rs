//! `stop`: stops the container (SIGTERM, then SIGKILL after `timeout`), keeps it stopped
//! for `duration`, and starts it again at revert (and `recover`). `restart`: stops and
//! starts it in one operation, a one-shot fault. Docker only for now.

use async_trait::async_trait;

use super::{FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, RestartFault, StopFault, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::Permission;
use crate::platform::{Platform, PlatformError, Target};

/// The [`FaultKind`] of `stop` and `restart`: Docker only (refused at preflight on
/// Kubernetes, so no rules there), `prepare` answers the record `$undo` makes of the
/// target (none for a one-shot fault), and `inject` is the platform's `$call` with the
/// fault's `timeout`.
macro_rules! docker_lifecycle_kind {
    ($fault:ty, $name:literal, $undo:expr, $call:ident) => {
        #[async_trait]
        impl FaultKind for $fault {
            async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
                if platform.kind() == "kubernetes" {
                    return Err(format!(
                        "{} is not available on Kubernetes in this build (Docker only): use `kill` to have the kubelet restart a pod's container",
                        $name
                    ));
                }
                Ok(())
            }

            async fn prepare(&self, _platform: &dyn Platform, target: &Target) -> Prepared {
                let undo: fn(&Target) -> Option<UndoRecord> = $undo;
                Ok(undo(target).map(Undo::new))
            }

            async fn inject(&self, platform: &dyn Platform, target: &Target, _: Option<&Undo>) -> Injected {
                platform.$call(target, self.timeout.std()).await
            }

            fn kubernetes_note(&self) -> Option<&'static str> {
                Some(concat!(
                    "# ",
                    $name,
                    " is not available on Kubernetes in this build: no rules for it.\n"
                ))
            }

            /// Refused at preflight on Kubernetes: no rules.
            fn rbac(&self) -> &'static [Permission] {
                &[]
            }
        }
    };
}

impl FaultSpec for StopFault {
    fault_timing!("stop");

    fn describe(&self) -> String {
        format!(
            "stop for {} (SIGKILL after {})",
            self.duration, self.timeout
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
    }
}

docker_lifecycle_kind!(
    StopFault,
    "stop",
    |target| Some(UndoRecord::StartTarget {
        target: target.clone()
    }),
    stop_target
);

/// Starts the target again and confirms it runs. A target that was started by someone
/// else (or its restart policy) already is where revert wants it.
pub async fn revert(platform: &dyn Platform, target: &Target) -> Result<(), PlatformError> {
    platform.start_target(target).await?;
    for _ in 0..20 {
        if platform.is_running(target).await? {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(PlatformError::Refused(format!(
        "container `{}` is not running after its start",
        target.name
    )))
}

impl FaultSpec for RestartFault {
    fault_timing!("restart", one_shot);

    fn describe(&self) -> String {
        format!("restart (SIGKILL after {})", self.timeout)
    }

    fn validate(&self, _target: &TargetSpec, _p: &mut FaultProblems) {}
}

docker_lifecycle_kind!(RestartFault, "restart", |_| None, restart_target);

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn the_docker_only_faults_are_refused_on_kubernetes_before_anything() {
        let faults = ["stop: {duration: 5s}", "restart: {}"];
        for yaml in faults {
            let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
            let f: crate::experiment::model::Fault = serde_json::from_value(v).unwrap();
            let kube = crate::platform::fake::Fake {
                kind: Some("kubernetes"),
                ..Default::default()
            };
            let why = crate::fault::preflight(&f, &kube).await.unwrap_err();
            assert!(kube.log.lock().unwrap().is_empty(), "nothing was touched");
            assert!(
                why.contains("not available on Kubernetes") && why.contains(f.type_name()),
                "{why}"
            );
            assert!(crate::fault::rbac_rules(&f).is_empty());
        }
    }
}
