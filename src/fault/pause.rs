//! `pause`: freezes every process of the target (the cgroup freezer), and thaws it at revert.

use crate::platform::{Platform, PlatformError, Target};

/// `lifetime` bounds the freeze where a helper holds it (Kubernetes): it thaws by itself
/// after that even if faultline died.
pub async fn inject(
    platform: &dyn Platform,
    target: &Target,
    lifetime: std::time::Duration,
) -> Result<(), PlatformError> {
    if platform.is_paused(target).await? {
        // Someone else froze it; unpausing it at revert would undo their action.
        return Err(PlatformError::Refused(format!(
            "container `{}` is already paused by someone else; refusing to take it over",
            target.name
        )));
    }
    platform.pause_for(target, lifetime).await
}

/// Thaws the target and confirms it. The engine's state can lag a moment behind the
/// unpause (a pending kill landing, a restart), so the check is retried briefly.
pub async fn revert(platform: &dyn Platform, target: &Target) -> Result<(), PlatformError> {
    platform.unpause(target).await?;
    for attempt in 0..20 {
        if !platform.is_paused(target).await? {
            return Ok(());
        }
        if attempt % 5 == 4 {
            platform.unpause(target).await?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(PlatformError::Refused(format!(
        "container `{}` is still paused after unpause",
        target.name
    )))
}
