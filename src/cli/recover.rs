//! `faultline recover`, and the dead-man's switch a run leaves behind it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::args::RecoverArgs;
use crate::error::{Error, Exit};
use crate::journal::audit::AuditLog;
use crate::journal::{Journal, process_alive, state_dir};
use crate::run::Records;
use crate::run::recover::{Outcome, recover};

/// The journal and audit log of this machine's state directory.
pub fn records(audit_log: Option<&Path>) -> Records {
    let dir = state_dir();
    let audit = audit_log
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("audit.jsonl"));
    Records::new(Journal::at(&dir), AuditLog::at(&audit))
}

/// Warns when an earlier run left faults recorded as active.
pub fn warn_open_entries(journal: &Journal) {
    match journal.open_entries() {
        Ok(open) => {
            let stale: Vec<_> = open.iter().filter(|e| !process_alive(e.pid)).collect();
            if !stale.is_empty() {
                eprintln!(
                    "faultline: warning: {} fault(s) from an earlier run may still be active (journal {}); run `faultline recover`",
                    stale.len(),
                    journal.path().display()
                );
            }
        }
        Err(e) => eprintln!("faultline: warning: cannot read the journal: {e}"),
    }
}

/// Starts a detached `faultline recover --run RUN --after-pid PID`: when this process
/// dies, even by SIGKILL, it reverts whatever this run left open. After a clean run it
/// finds nothing to do.
pub fn spawn_dead_mans_switch(records: &Records) {
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

pub fn run(a: &RecoverArgs) -> Result<Exit, Error> {
    let records = records(a.audit_log.as_deref());
    if let Some(pid) = a.after_pid {
        while process_alive(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let rt = super::run::runtime();
    let results = rt
        .block_on(recover(
            &records.journal,
            Some(&records.audit),
            a.dry_run,
            a.run.as_deref(),
        ))
        .map_err(|e| Error::Platform(e.to_string()))?;
    if results.is_empty() {
        if a.run.is_none() {
            println!(
                "Nothing to recover: the journal ({}) has no open entries.",
                records.journal.path().display()
            );
        }
        return Ok(Exit::Passed);
    }
    let mut failed = 0;
    for r in &results {
        println!("{}", r.line());
        if matches!(r.outcome, Outcome::Failed(_)) {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!(
            "faultline: {failed} fault(s) could not be reverted; fix the cause and run `faultline recover` again"
        );
        return Ok(Exit::RevertIncomplete);
    }
    Ok(Exit::Passed)
}
