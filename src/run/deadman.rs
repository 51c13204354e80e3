//! The dead-man's switch: a detached `faultline recover` that outlives a killed run.

use std::process::Stdio;
use std::sync::OnceLock;

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

/// The run the switch of this process waited for, if it is one.
static WAITED: OnceLock<u32> = OnceLock::new();

/// When this process is a dead-man's switch (`recover --after-pid PID` as it is started
/// by [`spawn`]), waits until the run has ended, before anything else: before the
/// arguments are parsed and the state directory read, so that the switch's start-up takes
/// as little as it can from the run it guards (two cores may be all there is), and the pid
/// is opened while the run surely holds it.
pub(crate) fn wait_for_the_run(args: &[std::ffi::OsString]) {
    let Some(pid) = after_pid(args) else { return };
    crate::platform::host::wait_for_exit(pid, crate::journal::process_alive);
    let _ = WAITED.set(pid);
}

/// Whether this process has already waited for `pid` to end: it must not wait again, as
/// the pid may belong to another process by now.
pub(crate) fn waited_for(pid: u32) -> bool {
    WAITED.get() == Some(&pid)
}

/// `PID` of `faultline recover --run RUN --after-pid PID` as [`spawn`] starts it; any
/// other form (one typed by hand, with `--help`) is left to the argument parser.
fn after_pid(args: &[std::ffi::OsString]) -> Option<u32> {
    if args.get(1).and_then(|a| a.to_str()) != Some("recover")
        || !args.iter().any(|a| a == "--run")
        || args.iter().any(|a| a == "--help" || a == "-h")
    {
        return None;
    }
    let at = args.iter().position(|a| a == "--after-pid")?;
    args.get(at + 1)?.to_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    #[test]
    fn only_the_switch_s_own_command_line_waits() {
        let switch = "faultline recover --run r1 --after-pid 42 --audit-log /a";
        assert_eq!(after_pid(&args(switch)), Some(42));
        assert_eq!(after_pid(&args("faultline recover --run r1")), None);
        assert_eq!(
            after_pid(&args("faultline run --after-pid 42 x.yaml")),
            None
        );
        assert_eq!(
            after_pid(&args("faultline recover --run r1 --after-pid")),
            None
        );
        assert_eq!(
            after_pid(&args("faultline recover --run r1 --after-pid x")),
            None
        );
        assert_eq!(after_pid(&args("faultline recover --after-pid 42")), None);
        assert_eq!(after_pid(&args(&format!("{switch} --help"))), None);
    }
}
