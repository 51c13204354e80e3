//! Targets and the platforms that hold them. The run lifecycle talks to a [`Platform`]
//! only; Docker and Kubernetes differences live in their own folders.

pub mod docker;
pub mod kubernetes;
pub mod select;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::experiment::units::{Duration, Signal};
use crate::journal::PlatformRef;

/// One container or pod a fault can be applied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub platform: String,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What a platform says went wrong, in words a user can act on.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    /// The platform itself could not be reached or refused the request.
    #[error("{0}")]
    Unavailable(String),
    /// The target no longer exists (removed by someone else).
    #[error("target `{0}` no longer exists")]
    Gone(String),
    /// The operation was refused for this target.
    #[error("{0}")]
    Refused(String),
}

/// How faultline reaches a target's network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum NetAccess {
    /// From the host: setns into the target's namespace, then the host's `tc`.
    Host,
    /// A short-lived helper container sharing the namespace, with `tc` in its image.
    Sidecar { helper: String, image: String },
}

/// The result of a command run for a fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// The operations faults are built from.
#[async_trait]
pub trait Platform: Send + Sync {
    /// `docker` or `kubernetes`, as written in reports.
    fn kind(&self) -> &'static str;
    /// Where it is reached, for messages and the journal.
    fn endpoint(&self) -> String;
    /// What a later process needs to connect to it again.
    fn reference(&self) -> PlatformRef {
        PlatformRef {
            kind: self.kind().to_string(),
            endpoint: Some(self.endpoint()),
        }
    }
    /// Every eligible target that matches the experiment's target block (never a
    /// protected one nor a helper faultline created).
    async fn discover(&self) -> Result<Vec<Target>, PlatformError>;
    async fn kill(
        &self,
        target: &Target,
        signal: Signal,
        grace: Option<Duration>,
    ) -> Result<(), PlatformError>;
    async fn pause(&self, target: &Target) -> Result<(), PlatformError>;
    async fn unpause(&self, target: &Target) -> Result<(), PlatformError>;
    /// Like `pause`, for a fault that lasts at most `lifetime`: a platform whose freeze is
    /// held by a helper (Kubernetes) has it thaw by itself after that, even if faultline
    /// died.
    async fn pause_for(
        &self,
        target: &Target,
        _lifetime: std::time::Duration,
    ) -> Result<(), PlatformError> {
        self.pause(target).await
    }
    /// Whether the target is frozen now.
    async fn is_paused(&self, target: &Target) -> Result<bool, PlatformError>;

    /// Prepares access to the target's network namespace. A helper it starts removes
    /// faultline's qdisc (`interface`) by itself after `lifetime`, even if faultline died.
    async fn net_access(
        &self,
        _target: &Target,
        _strategy: crate::experiment::model::NetworkStrategy,
        _image: Option<&str>,
        _interface: &str,
        _lifetime: std::time::Duration,
    ) -> Result<NetAccess, PlatformError> {
        Err(PlatformError::Refused(format!(
            "network faults are not available on {}",
            self.kind()
        )))
    }

    /// Runs `argv` inside the target's network namespace.
    async fn net_exec(
        &self,
        _target: &Target,
        _access: &NetAccess,
        _argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        Err(PlatformError::Refused(format!(
            "network faults are not available on {}",
            self.kind()
        )))
    }

    /// Removes what `net_access` started (a helper); a no-op for host access.
    async fn net_release(&self, _access: &NetAccess) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Starts the nfqueue delayer for `queue` inside the target's network namespace; it
    /// ends by itself after `duration` (plus a margin) and when faultline dies.
    async fn start_delayer(
        &self,
        _target: &Target,
        _access: &NetAccess,
        _queue: u16,
        _shape: crate::fault::nfqueue::Shape,
        _duration: std::time::Duration,
        _marker: &str,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Refused(format!(
            "the nfqueue engine is not available on {}",
            self.kind()
        )))
    }

    /// Stops the delayer carrying `marker` and confirms it is gone.
    async fn stop_delayer(
        &self,
        _target: &Target,
        _access: &NetAccess,
        _marker: &str,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Refused(format!(
            "the nfqueue engine is not available on {}",
            self.kind()
        )))
    }

    /// How a stressor can run in the target for `strategy`.
    async fn cpu_access(
        &self,
        _target: &Target,
        _strategy: crate::experiment::model::CpuStrategy,
    ) -> Result<crate::fault::cpu_stress::CpuAccess, PlatformError> {
        Err(PlatformError::Refused(format!(
            "cpu_stress is not available on {}",
            self.kind()
        )))
    }

    /// Starts a stressor that counts against the target's own cgroup and ends by itself
    /// after `duration` (plus a margin).
    async fn stress_start(
        &self,
        _target: &Target,
        _access: crate::fault::cpu_stress::CpuAccess,
        _workers: u32,
        _load: u32,
        _duration: std::time::Duration,
        _marker: &str,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Refused(format!(
            "cpu_stress is not available on {}",
            self.kind()
        )))
    }

    /// Stops every stressor carrying `marker` and confirms none is left.
    async fn stress_stop(
        &self,
        _target: &Target,
        _access: crate::fault::cpu_stress::CpuAccess,
        _marker: &str,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Refused(format!(
            "cpu_stress is not available on {}",
            self.kind()
        )))
    }

    /// Whether the targets' kernel has netem; `None` when it cannot be told from here
    /// (a remote daemon): the add itself then says so.
    async fn netem_supported(&self) -> Option<bool> {
        None
    }
}

/// Settings of a platform that come from the command line rather than the experiment.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Image with `tc` for sidecar network faults (`--tc-image`, `FAULTLINE_TC_IMAGE`).
    pub tc_image: Option<String>,
}

/// Connects to the platform an experiment's target block names.
pub async fn connect(
    t: &crate::experiment::model::Target,
    opts: &ConnectOptions,
) -> Result<Box<dyn Platform>, PlatformError> {
    if let Some(d) = &t.docker {
        let p = docker::DockerPlatform::connect(d).await?;
        return Ok(Box::new(p.with_tc_image(opts.tc_image.clone())));
    }
    if let Some(k) = &t.kubernetes {
        let p = kubernetes::KubernetesPlatform::connect(k).await?;
        return Ok(Box::new(p.with_tc_image(opts.tc_image.clone())));
    }
    Err(PlatformError::Refused(
        "the target names no platform: add `docker:` or `kubernetes:`".into(),
    ))
}

/// Connects again to a platform recorded in the journal.
pub async fn reconnect(r: &PlatformRef) -> Result<Box<dyn Platform>, PlatformError> {
    match r.kind.as_str() {
        "docker" => {
            let spec = crate::experiment::model::DockerTarget {
                host: r.endpoint.clone(),
                ..Default::default()
            };
            let tc_image = std::env::var("FAULTLINE_TC_IMAGE").ok();
            Ok(Box::new(
                docker::DockerPlatform::connect(&spec)
                    .await?
                    .with_tc_image(tc_image),
            ))
        }
        "kubernetes" => {
            let endpoint = r.endpoint.as_deref().ok_or_else(|| {
                PlatformError::Refused("the journal entry names no Kubernetes namespace".into())
            })?;
            let tc_image = std::env::var("FAULTLINE_TC_IMAGE").ok();
            Ok(Box::new(
                kubernetes::KubernetesPlatform::reconnect(endpoint)
                    .await?
                    .with_tc_image(tc_image),
            ))
        }
        other => Err(PlatformError::Refused(format!(
            "this build of faultline cannot reach `{other}` platforms"
        ))),
    }
}
