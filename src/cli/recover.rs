//! `faultline recover`, and the dead-man's switch a run leaves behind it.

use super::args::RecoverArgs;
use crate::error::{Error, Exit};
use crate::journal::{Journal, process_alive};
use crate::run::Records;
use crate::run::recover::{Outcome, recover};

/// Warns when an earlier run left faults recorded as active.
pub(super) fn warn_open_entries(journal: &Journal) {
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

pub(super) fn run(a: &RecoverArgs) -> Result<Exit, Error> {
    let records = Records::in_state_dir(a.audit_log.as_deref());
    if let Some(pid) = a.after_pid
        && !crate::run::deadman::waited_for(pid)
    {
        crate::platform::host::wait_for_exit(pid, process_alive);
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
