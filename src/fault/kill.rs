//! `kill`: sends a signal to the container (Docker) or deletes the pod (Kubernetes). A
//! one-shot fault: there is nothing to revert; the restart policy or controller decides
//! whether the target comes back.

use crate::experiment::model::KillFault;
use crate::platform::{Platform, PlatformError, Target};

pub async fn inject(
    platform: &dyn Platform,
    k: &KillFault,
    target: &Target,
) -> Result<(), PlatformError> {
    platform.kill(target, k.signal, k.grace_period).await
}
