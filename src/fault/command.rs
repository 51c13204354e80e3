//! `command`: any action with a rollback. `run` is executed where faultline runs (`where:
//! host`, once) or inside each selected target (`where: target`, the platform's exec);
//! `rollback` is journaled before `run` starts and runs when the fault's duration ends
//! (without one, when the other faults have ended), on abort, on a signal, and by
//! `recover` after a crash: exactly once, through [`revert`].

use std::process::Stdio;
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{FaultEffects, FaultKind, Prepared, Reported, Undo, UndoRecord};
use crate::experiment::model::{
    CommandFault, CommandPlace, FaultProblems, FaultSpec, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target};
pub use crate::report::CommandRun;

/// How much of a command's output the report keeps.
const OUTPUT_KEPT: usize = 2000;

/// The rollback as the journal keeps it: everything [`revert`] needs, in a later process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub argv: Vec<String>,
    #[serde(rename = "where")]
    pub place: CommandPlace,
    pub timeout_ms: u64,
}

/// The target a `where: host` command is recorded against: this machine, not a target of
/// the platform.
pub fn host_target() -> Target {
    Target {
        platform: "host".into(),
        id: "host".into(),
        name: "host".into(),
        labels: Default::default(),
    }
}

fn words(argv: &[String]) -> String {
    argv.join(" ")
}

impl FaultSpec for CommandFault {
    fault_timing!("command", optional);

    fn describe(&self) -> String {
        let place = match self.place {
            CommandPlace::Host => "on this host",
            CommandPlace::Target => "in each target",
        };
        let mut s = format!("command `{}` {place}", words(&self.run));
        if let Some(r) = &self.rollback {
            s.push_str(&format!(", rollback `{}`", words(r)));
            match self.duration {
                Some(d) => s.push_str(&format!(" after {d}")),
                None => s.push_str(" when the other faults end"),
            }
        }
        s
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        if self.run.is_empty() && self.rollback.as_ref().is_some_and(|r| !r.is_empty()) {
            p.err(
                "a `rollback` without a `run`: add the command the rollback undoes, as an argv list, e.g. run: [touch, /tmp/flag]",
            );
        } else if self.run.is_empty() || self.run[0].trim().is_empty() {
            p.err_at(
                "run",
                "`run` is empty: give the command as an argv list, e.g. [curl, -X, POST, \"http://flags/api/off\"]",
            );
        }
        if let Some(r) = &self.rollback {
            if r.is_empty() || r[0].trim().is_empty() {
                p.err_at(
                    "rollback",
                    "`rollback` is empty: give the command that undoes `run` as an argv list, or remove the key",
                );
            }
        }
        check_timing(
            p,
            (self.duration, self.timeout),
            self.rollback.is_some(),
            "the rollback runs",
        );
    }
}

/// A `duration` says when the rollback happens (`when`): there must be one; both
/// `duration` and `timeout` must be positive.
pub(super) fn check_timing(
    p: &mut FaultProblems,
    (duration, timeout): (
        Option<crate::experiment::units::Duration>,
        crate::experiment::units::Duration,
    ),
    rollback: bool,
    when: &str,
) {
    if let Some(d) = duration {
        if !rollback {
            p.err_at(
                "duration",
                format!("`duration` says when {when}, but there is no `rollback`: add one, or remove `duration`"),
            );
        }
        p.positive("duration", d);
    }
    p.positive("timeout", timeout);
}

#[async_trait]
impl FaultKind for CommandFault {
    async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
        if self.place == CommandPlace::Target && !platform.can_exec() {
            return Err(format!(
                "a command `where: target` runs inside each target, which {} cannot do; use `where: host`",
                platform.kind()
            ));
        }
        Ok(())
    }

    async fn prepare(&self, _: &dyn Platform, target: &Target) -> Prepared {
        Ok(self.rollback.as_ref().map(|argv| {
            Undo::new(UndoRecord::RunRollback {
                target: target.clone(),
                rollback: RollbackRecord {
                    argv: argv.clone(),
                    place: self.place,
                    timeout_ms: self.timeout.as_millis(),
                },
            })
        }))
    }

    async fn inject_reporting(&self, p: &dyn Platform, t: &Target, _: Option<&Undo>) -> Reported {
        let ran = execute(p, t, &self.run, self.place, self.timeout.std()).await?;
        if ran.exit_code != Some(0) {
            return Err(PlatformError::Refused(failed("run", &ran)));
        }
        Ok(Some(FaultEffects {
            run: Some(ran),
            ..Default::default()
        }))
    }

    /// `where: host` runs once for the whole fault, not once per target.
    fn once(&self) -> bool {
        self.place == CommandPlace::Host
    }

    fn rbac(&self) -> &'static [Permission] {
        match self.place {
            CommandPlace::Host => &[],
            CommandPlace::Target => rbac::EXEC_IN_TARGET,
        }
    }
}

/// `` `run` exited 3 in 12ms: output `` for errors.
pub(super) fn failed(which: &str, ran: &CommandRun) -> String {
    let status = match (ran.exit_code, ran.status) {
        (Some(c), _) => format!("exited {c}"),
        (None, Some(s)) => format!("answered {s}"),
        (None, None) => "did not finish".into(),
    };
    let mut s = format!("`{which}` {status} after {}ms", ran.duration_ms);
    if !ran.output.is_empty() {
        s.push_str(&format!(": {}", ran.output));
    }
    s
}

/// Runs the rollback and confirms it exited 0. A rollback that fails leaves the journal
/// entry open (`recover` runs it again).
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    rollback: &RollbackRecord,
) -> Result<Option<FaultEffects>, PlatformError> {
    let ran = execute(
        platform,
        target,
        &rollback.argv,
        rollback.place,
        StdDuration::from_millis(rollback.timeout_ms),
    )
    .await?;
    if ran.exit_code != Some(0) {
        return Err(PlatformError::Refused(failed("rollback", &ran)));
    }
    Ok(Some(FaultEffects {
        rollback: Some(ran),
        ..Default::default()
    }))
}

/// Runs `argv` where the fault says, within `timeout`.
async fn execute(
    platform: &dyn Platform,
    target: &Target,
    argv: &[String],
    place: CommandPlace,
    timeout: StdDuration,
) -> Result<CommandRun, PlatformError> {
    let start = Instant::now();
    let elapsed = |start: Instant| start.elapsed().as_millis() as u64;
    match place {
        CommandPlace::Target => {
            match tokio::time::timeout(timeout, platform.exec(target, argv)).await {
                Err(_) => Ok(CommandRun {
                    exit_code: None,
                    status: None,
                    output: format!("timed out after {}ms", timeout.as_millis()),
                    duration_ms: elapsed(start),
                }),
                Ok(r) => {
                    let out = r?;
                    Ok(CommandRun {
                        exit_code: Some(out.code),
                        status: None,
                        output: trimmed(&out.stdout, &out.stderr),
                        duration_ms: elapsed(start),
                    })
                }
            }
        }
        CommandPlace::Host => on_host(argv, timeout).await,
    }
}

/// Runs `argv` here in its own process group, killed whole on timeout.
async fn on_host(argv: &[String], timeout: StdDuration) -> Result<CommandRun, PlatformError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(PlatformError::Refused("the command is empty".into()));
    };
    let start = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| PlatformError::Refused(format!("cannot start `{program}`: {e}")))?;
    let group = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            if let Some(g) = group {
                let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
            }
            Ok(CommandRun {
                exit_code: None,
                status: None,
                output: format!("timed out after {}ms; killed", timeout.as_millis()),
                duration_ms: start.elapsed().as_millis() as u64,
            })
        }
        Ok(Err(e)) => Err(PlatformError::Refused(format!(
            "`{program}` could not be waited for: {e}"
        ))),
        Ok(Ok(out)) => Ok(CommandRun {
            exit_code: Some(out.status.code().map_or(-1, i64::from)),
            status: None,
            output: trimmed(
                &String::from_utf8_lossy(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
            ),
            duration_ms: start.elapsed().as_millis() as u64,
        }),
    }
}

/// stdout and stderr, trimmed, joined, and cut to [`OUTPUT_KEPT`] characters.
pub(super) fn trimmed(stdout: &str, stderr: &str) -> String {
    let parts: Vec<&str> = [stdout.trim(), stderr.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let all = parts.join("\n");
    if all.chars().count() <= OUTPUT_KEPT {
        return all;
    }
    let cut: String = all.chars().take(OUTPUT_KEPT).collect();
    format!("{cut}… ({} characters in all)", all.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_trimmed_and_cut() {
        assert_eq!(trimmed("  ok\n", ""), "ok");
        assert_eq!(trimmed("out\n", "\nerr\n"), "out\nerr");
        let long = "x".repeat(OUTPUT_KEPT + 10);
        let t = trimmed(&long, "");
        assert!(t.ends_with(&format!("… ({} characters in all)", OUTPUT_KEPT + 10)));
    }

    #[tokio::test]
    async fn a_host_command_reports_status_output_and_time_and_is_killed_on_timeout() {
        let argv = |a: &[&str]| a.iter().map(ToString::to_string).collect::<Vec<_>>();
        let ok = on_host(
            &argv(&["sh", "-c", "echo hi; echo oops >&2; exit 3"]),
            StdDuration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!((ok.exit_code, ok.output.as_str()), (Some(3), "hi\noops"));
        let start = Instant::now();
        let slow = on_host(&argv(&["sleep", "5"]), StdDuration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(slow.exit_code, None);
        assert!(start.elapsed() < StdDuration::from_secs(2));
        assert!(
            on_host(&argv(&["/nonexistent/x"]), StdDuration::from_secs(1))
                .await
                .is_err()
        );
    }
}
