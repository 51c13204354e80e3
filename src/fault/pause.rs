//! `pause`: freezes every process of the target (the cgroup freezer), and thaws it at revert.

use super::Undo;
use crate::target::{Platform, PlatformError, Target};

pub async fn inject(platform: &dyn Platform, target: &Target) -> Result<Undo, PlatformError> {
    if platform.is_paused(target).await? {
        // Someone else froze it; unpausing it at revert would undo their action.
        return Err(PlatformError::Refused(format!(
            "container `{}` is already paused by someone else; refusing to take it over",
            target.name
        )));
    }
    platform.pause(target).await?;
    Ok(Undo::Unpause {
        target: target.clone(),
    })
}

pub async fn revert(platform: &dyn Platform, target: &Target) -> Result<(), PlatformError> {
    platform.unpause(target).await?;
    match platform.is_paused(target).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(PlatformError::Refused(format!(
            "container `{}` is still paused after unpause",
            target.name
        ))),
        Err(e) => Err(e),
    }
}
