//! The dead-man's switch: a detached `faultline recover` that outlives a killed run.

use std::process::Stdio;

use super::Records;
use crate::journal::state_dir;

/// Starts a detached `faultline recover --run RUN --after-pid PID`: when this process
/// dies, even by SIGKILL, it reverts whatever this run left open. After a clean run it
/// finds nothing to do.
pub(super) fn spawn(records: &Records) {
    // Tests of `faultline recover` itself switch it off.
    if std::env::var_os("FAULTLINE_NO_DEAD_MANS_SWITCH").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir().join("dead-mans-switch.log"));
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "recover",
        "--run",
        &records.run_id,
        "--after-pid",
        &std::process::id().to_string(),
    ])
    .arg("--audit-log")
    .arg(records.audit.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log.map(Stdio::from).unwrap_or_else(|_| Stdio::null()));
    // Its own session: a Ctrl-C or a kill of faultline's process group must not take it down.
    if let Err(e) = crate::platform::host::spawn_in_own_session(&mut cmd) {
        tracing::warn!(
            "cannot start the dead-man's switch: {e}; after a crash run `faultline recover`"
        );
    }
}
