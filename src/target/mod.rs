//! Targets and the platforms that hold them. The run lifecycle talks to a [`Platform`]
//! only; Docker and Kubernetes differences live in their own folders.

pub mod docker;
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
    /// Whether the target is frozen now.
    async fn is_paused(&self, target: &Target) -> Result<bool, PlatformError>;
}

/// Connects to the platform an experiment's target block names.
pub async fn connect(
    t: &crate::experiment::model::Target,
) -> Result<Box<dyn Platform>, PlatformError> {
    if let Some(d) = &t.docker {
        return Ok(Box::new(docker::DockerPlatform::connect(d).await?));
    }
    Err(PlatformError::Unavailable(
        "Kubernetes targets are not supported by this build of faultline yet".into(),
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
            Ok(Box::new(docker::DockerPlatform::connect(&spec).await?))
        }
        other => Err(PlatformError::Unavailable(format!(
            "this build of faultline cannot reach `{other}` platforms"
        ))),
    }
}
