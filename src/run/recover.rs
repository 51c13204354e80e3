//! `faultline recover`: reverts every fault a crashed or killed run left open in the
//! journal, through the same revert code as a normal run, and closes the entries.

use std::collections::HashMap;
use std::time::Duration;

use crate::fault;
use crate::journal::audit::AuditLog;
use crate::journal::{Entry, Journal, JournalError, PlatformRef, process_alive};
use crate::platform::{Platform, PlatformError};

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Reverted,
    /// The target no longer exists: nothing of the fault is left.
    Gone,
    /// Listed only (`--dry-run`).
    WouldRevert,
    /// The run that owns the entry is still alive; it reverts its own faults.
    Live(u32),
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct Recovered {
    pub entry: Entry,
    pub outcome: Outcome,
}

impl Recovered {
    pub fn line(&self) -> String {
        let e = &self.entry;
        // A named target's entry says which: `pause for 4s on cache: cache-1`.
        let target = match e.target.as_str() {
            "" => e.undo.target().name.clone(),
            name => format!("{name}: {}", e.undo.target().name),
        };
        let what = format!(
            "{} on {target} ({}, experiment `{}`, run {})",
            e.fault, e.platform.kind, e.experiment, e.run
        );
        match &self.outcome {
            Outcome::Reverted => format!("reverted: {what}"),
            Outcome::Gone => format!("closed: {what}: the target no longer exists"),
            Outcome::WouldRevert => format!("would revert: {what}"),
            Outcome::Live(pid) => format!("skipped: {what}: its run (pid {pid}) is still going"),
            Outcome::Failed(why) => format!("FAILED: {what}: {why}"),
        }
    }
}

/// Reverts (or lists, with `dry_run`) every open entry. Entries of runs still alive are
/// left to them unless `only_run` names that run (the dead-man's switch acts for it).
pub async fn recover(
    journal: &Journal,
    audit: Option<&AuditLog>,
    dry_run: bool,
    only_run: Option<&str>,
) -> Result<Vec<Recovered>, JournalError> {
    let entries = journal.open_entries()?;
    let mut platforms: HashMap<String, Result<Box<dyn Platform>, PlatformError>> = HashMap::new();
    let mut out = Vec::new();
    for entry in entries {
        if only_run.is_some_and(|r| r != entry.run) {
            continue;
        }
        let outcome = if only_run.is_none()
            && entry.pid != std::process::id()
            && process_alive(entry.pid)
        {
            Outcome::Live(entry.pid)
        } else if dry_run {
            Outcome::WouldRevert
        } else {
            let key = platform_key(&entry.platform);
            if !platforms.contains_key(&key) {
                platforms.insert(key.clone(), reconnect(&entry.platform).await);
            }
            match &platforms[&key] {
                Err(e) => Outcome::Failed(format!("cannot reach the platform: {e}")),
                Ok(p) => match fault::revert_until(p.as_ref(), &entry.undo, fault::REVERT_TIMEOUT)
                    .await
                {
                    Some(Ok(_)) => Outcome::Reverted,
                    Some(Err(PlatformError::Gone(_))) => match elsewhere(&entry.platform) {
                        // Not found on the daemon `-H` names: it may be on the one the run
                        // used, so the entry stays open rather than close unreverted.
                        Some(host) => Outcome::Failed(format!(
                            "not found through -H {host}, but the run may have used another daemon ({}): the entry stays open; run `faultline recover` with the endpoint the run used",
                            entry
                                .platform
                                .endpoint
                                .as_deref()
                                .unwrap_or("its DOCKER_HOST or context")
                        )),
                        None => Outcome::Gone,
                    },
                    Some(Err(e)) => Outcome::Failed(e.to_string()),
                    None => Outcome::Failed(format!(
                        "not confirmed within {}s",
                        fault::REVERT_TIMEOUT.as_secs()
                    )),
                },
            }
        };
        let note = match &outcome {
            Outcome::Reverted => Some("reverted by recover"),
            Outcome::Gone => Some("closed by recover: the target no longer exists"),
            _ => None,
        };
        if let Some(note) = note {
            journal.close(&entry.id, note)?;
        }
        if let Some(a) = audit {
            if !matches!(outcome, Outcome::WouldRevert | Outcome::Live(_)) {
                let result = match &outcome {
                    Outcome::Reverted => "ok".to_string(),
                    Outcome::Gone => "target no longer exists".to_string(),
                    Outcome::Failed(e) => format!("failed: {e}"),
                    _ => String::new(),
                };
                a.record(
                    "recover",
                    &entry.experiment,
                    &entry.undo.target().name,
                    &entry.fault,
                    &entry.fault,
                    &result,
                );
            }
        }
        out.push(Recovered { entry, outcome });
    }
    if !dry_run && journal.open_entries()?.is_empty() {
        journal.compact()?;
    }
    Ok(out)
}

/// Connects to a recorded platform, waiting for it while it is unreachable (a daemon
/// restarting is the usual reason a run died and left faults behind).
async fn reconnect(r: &PlatformRef) -> Result<Box<dyn Platform>, PlatformError> {
    let deadline = tokio::time::Instant::now() + fault::REVERT_TIMEOUT;
    loop {
        match crate::platform::reconnect(r).await {
            Err(PlatformError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                tracing::info!("waiting for the platform: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

fn platform_key(r: &PlatformRef) -> String {
    format!("{}|{}", r.kind, r.endpoint.as_deref().unwrap_or(""))
}

/// The `-H` host a Docker entry is reverted through when it is not the endpoint its run
/// recorded.
fn elsewhere(p: &PlatformRef) -> Option<String> {
    let host = crate::platform::docker_endpoint::flags().host?;
    (p.kind == "docker" && p.endpoint.as_deref() != Some(host.as_str())).then_some(host)
}
