//! `kill`: sends a signal to the container (Docker) or deletes the pod (Kubernetes). A
//! one-shot fault: there is nothing to revert; the restart policy or controller decides
//! whether the target comes back.
//!
//! With `process` (Docker), only the processes inside the container whose command line
//! matches are signalled: found through the container's cgroups from this host (their
//! `cgroup.procs`), or by listing /proc inside it through exec when the host cannot reach
//! them. Nothing matching is refused; the report lists what was signalled.

use async_trait::async_trait;

use super::{FaultEffects, FaultKind, Settled};
use crate::experiment::model::{
    FaultProblems, FaultSpec, KillExpect, KillFault, Target as TargetSpec, fault_timing,
};
use crate::experiment::units::{Duration, Signal};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target, host};
use crate::report::{ContainerRestarts, ProcessRef};

/// How long a Docker container has to end after the signal, by default.
const DEFAULT_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl FaultSpec for KillFault {
    fault_timing!("kill", |f| f.every.and(f.duration));

    fn describe(&self) -> String {
        let mut s = match (&self.process, &self.container) {
            (Some(p), _) => format!("kill processes matching /{p}/ with {}", self.signal),
            (None, Some(c)) => format!("kill container `{c}` with {}", self.signal),
            (None, None) => format!("kill with {}", self.signal),
        };
        if let Some(g) = self.grace_period {
            s.push_str(&format!(", grace period {g}"));
        }
        if let (Some(every), Some(d)) = (self.every, self.duration) {
            s.push_str(&format!(", every {every} for {d}"));
        }
        s
    }

    /// On Kubernetes a kill deletes the pod; say so, and what the grace period means.
    fn describe_on(&self, target: &TargetSpec) -> String {
        if target.kubernetes.is_none() {
            return self.describe();
        }
        if self.process.is_some() {
            return format!("{}, inside the target container (exec)", self.describe());
        }
        if let Some(c) = &self.container {
            let mut s = format!(
                "kill container `{c}` with {} (every process of it, from a helper on its node; the kubelet restarts it)",
                self.signal
            );
            if let (Some(every), Some(d)) = (self.every, self.duration) {
                s.push_str(&format!(", every {every} for {d}"));
            }
            return s;
        }
        let mut s = match self.grace_period {
            Some(g) if !g.std().is_zero() => {
                format!("delete pod (grace {g}: the image's stop signal, SIGKILL after {g})")
            }
            _ => "delete pod (grace 0 s, force)".to_string(),
        };
        if let (Some(every), Some(d)) = (self.every, self.duration) {
            s.push_str(&format!(", every {every} for {d}"));
        }
        s
    }

    fn validate(&self, target: &TargetSpec, p: &mut FaultProblems) {
        match (self.every, self.duration) {
            (Some(every), Some(d)) => {
                p.positive("every", every);
                if every > d {
                    p.err_at(
                        "every",
                        format!("`every` ({every}) is longer than `duration` ({d}): the kill would run once"),
                    );
                }
            }
            (Some(_), None) => p.err_at("every", "`every` needs `duration`: how long to keep killing"),
            (None, Some(_)) => p.err_at(
                "duration",
                "a single kill has no duration: add `every` to repeat it over `duration`, or remove `duration`",
            ),
            (None, None) => {}
        }
        if let Some(Err(e)) = self.process.as_deref().map(regex::Regex::new) {
            p.err_at(
                "process",
                format!("`process` is not a valid regular expression: {e}"),
            );
        }
        let kubernetes = target.kubernetes.is_some();
        let (process, container) = (self.process.is_some(), self.container.is_some());
        let grace = self.grace_period.is_some();
        // The settings that do not go together, or not on this platform: (whether they
        // are given, the key refused, why).
        let conflicts = [
            (
                process && grace && kubernetes,
                "grace_period",
                "`grace_period` is the pod's termination grace; a kill with `process` signals processes inside the pod: remove it",
            ),
            (
                container && !kubernetes,
                "container",
                "`container` names one container of a pod (Kubernetes); on Docker each target is one container: select it with the target block",
            ),
            (
                container && process,
                "container",
                "`container` and `process` cannot be combined: remove one",
            ),
            (
                container && grace && kubernetes,
                "grace_period",
                "`grace_period` is the pod's termination grace; a kill with `container` signals the container directly: remove it",
            ),
            (
                self.expect != KillExpect::Exit && kubernetes,
                "expect",
                "a kill on Kubernetes deletes the pod, which always ends it: `expect` applies to Docker",
            ),
        ];
        for (given, key, why) in conflicts {
            if given {
                p.err_at(key, why);
            }
        }
    }
}

#[async_trait]
impl FaultKind for KillFault {
    async fn prepare(
        &self,
        _platform: &dyn Platform,
        _target: &Target,
    ) -> Result<Option<super::Undo>, PlatformError> {
        Ok(None)
    }

    async fn inject_reporting(
        &self,
        platform: &dyn Platform,
        target: &Target,
        _undo: Option<&super::Undo>,
    ) -> Result<Option<FaultEffects>, PlatformError> {
        if let Some(container) = &self.container {
            // A repeated kill waits no longer than its interval.
            let wait = self
                .every
                .map_or(RESTART_WAIT, |e| e.std().min(RESTART_WAIT));
            return container_kill(platform, target, container, self.signal, wait)
                .await
                .map(Some);
        }
        let Some(pattern) = &self.process else {
            let caveat = platform.signal_caveat(target).await;
            platform
                .signal(target, self.signal, self.grace_period)
                .await?;
            return Ok(caveat.map(|c| FaultEffects {
                caveat: Some(c),
                ..Default::default()
            }));
        };
        let re = regex::Regex::new(pattern)
            .map_err(|e| PlatformError::Refused(format!("`process`: {e}")))?;
        let signalled = match list_processes(platform, target).await? {
            Listed::Host(own) => signal_on_host(&own, &re, self.signal, target)?,
            Listed::Inside(processes) => {
                signal_inside(platform, target, &processes, &re, self.signal).await?
            }
        };
        Ok(Some(FaultEffects {
            signalled,
            ..Default::default()
        }))
    }

    /// Waits up to the grace period for the target to end (or be restarted: its process
    /// then started after the kill). One still running with the same start time
    /// survived the signal, e.g. a PID 1 without a handler for SIGTERM.
    async fn settle(
        &self,
        platform: &dyn Platform,
        target: &Target,
        injected_at: chrono::DateTime<chrono::Utc>,
    ) -> Settled {
        // A process kill ends processes inside the target, not the target: what it
        // signalled is in the report; the target keeps running by design.
        if self.process.is_some() || self.container.is_some() {
            return Settled::Done { gone_at: None };
        }
        let grace = self.grace_period.map_or(DEFAULT_EXIT_WAIT, Duration::std);
        // A deleted pod: recovery starts once it has left the API (while it terminates,
        // its Deployment's status still counts it).
        match platform
            .until_gone(target, grace + super::REVERT_TIMEOUT)
            .await
        {
            Ok(true) => {
                return Settled::Done {
                    gone_at: Some(tokio::time::Instant::now()),
                };
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cannot tell when `{}` was gone: {e}", target.name);
                return Settled::Done { gone_at: None };
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match platform.running_since(target).await {
                // Gone, stopped, or a new process (restarted by its policy): it ended.
                Err(PlatformError::Gone(_)) | Ok(None) => return Settled::Done { gone_at: None },
                Ok(Some(since)) if since > injected_at => return Settled::Done { gone_at: None },
                // The platform cannot tell: nothing to check.
                Err(PlatformError::Refused(_)) => return Settled::Done { gone_at: None },
                Ok(Some(_)) | Err(PlatformError::Unavailable(_)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Settled::Survived {
            note: format!(
                "`{}` still runs {} after {} (a process that ignores the signal, e.g. a PID 1 without a handler for it)",
                target.name,
                Duration::from_millis(grace.as_millis() as u64),
                self.signal
            ),
            expected: self.expect != KillExpect::Exit,
        }
    }

    /// A pod delete; with `process`, exec into the target container (listing /proc and
    /// signalling there); with `container`, a helper pod on the node instead (created, read
    /// until it ends, deleted) and the target pod read for its restart count.
    fn rbac(&self) -> &'static [Permission] {
        if self.container.is_some() {
            &[rbac::GET_PODS, rbac::CREATE_PODS, rbac::DELETE_PODS]
        } else if self.process.is_some() {
            rbac::EXEC_IN_TARGET
        } else {
            &[rbac::DELETE_PODS, rbac::GET_PODS]
        }
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        self.container.is_some().then_some(
            "# kill with `container` creates a privileged helper pod (hostPID, hostPath\n\
             # /sys/fs/cgroup) on the target's node: the namespace's Pod Security level must be\n\
             # `privileged`.\n",
        )
    }
}

/// How long a container kill waits for the kubelet to restart the container.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Signals every process of one container of the target and waits (up to `wait`) until
/// its restart count rises: the report shows both counts.
async fn container_kill(
    platform: &dyn Platform,
    target: &Target,
    container: &str,
    signal: Signal,
    wait: std::time::Duration,
) -> Result<FaultEffects, PlatformError> {
    let before = platform.signal_container(target, container, signal).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut after = before;
    loop {
        match platform.restart_count(target, container).await {
            Ok(n) => after = n,
            Err(PlatformError::Gone(n)) => return Err(PlatformError::Gone(n)),
            Err(e) => tracing::info!("restart count of `{container}`: {e}"),
        }
        if after > before || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(FaultEffects {
        container_restarts: Some(ContainerRestarts {
            container: container.to_string(),
            before,
            after,
        }),
        ..Default::default()
    })
}

/// The processes inside a target, as `(PID, command line)`, and where their PIDs are seen.
pub(crate) enum Listed {
    /// From this host, through the target's cgroups: host PIDs.
    Host(Vec<(i32, String)>),
    /// From the target's own /proc, through exec: PIDs of its PID namespace.
    Inside(Vec<(i32, String)>),
}

/// Lists the processes inside the target: through its cgroups from this host when it
/// reaches them, else from /proc inside it by exec (always on Kubernetes).
pub(crate) async fn list_processes(
    platform: &dyn Platform,
    target: &Target,
) -> Result<Listed, PlatformError> {
    match platform.cgroups(target).await {
        // Only processes whose own cgroup names the container: a hierarchy that left it
        // in a shared (or the root) cgroup must not widen the match.
        Ok(dirs) => Ok(Listed::Host(
            host::processes_in(&dirs)
                .into_iter()
                .filter(|(pid, _)| host::process_belongs_to(i64::from(*pid), &target.id))
                .collect(),
        )),
        Err(PlatformError::Gone(n)) => Err(PlatformError::Gone(n)),
        Err(_) => {
            let list = "echo \"self $$\"; for d in /proc/[0-9]*; do p=${d#/proc/}; \
                        c=$(tr '\\000' ' ' < $d/cmdline 2>/dev/null); [ -n \"$c\" ] && echo \"$p $c\"; done; true";
            let out = platform
                .exec(target, &["sh".into(), "-c".into(), list.into()])
                .await?;
            Ok(Listed::Inside(parse_listing(&out.stdout)))
        }
    }
}

/// The processes whose command line matches, or a refusal naming what there is.
pub(crate) fn matching(
    processes: &[(i32, String)],
    re: &regex::Regex,
    target: &Target,
) -> Result<Vec<ProcessRef>, PlatformError> {
    let found: Vec<ProcessRef> = processes
        .iter()
        .filter(|(_, cmd)| re.is_match(cmd))
        .map(|(pid, cmd)| ProcessRef {
            pid: i64::from(*pid),
            command: cmd.clone(),
        })
        .collect();
    if found.is_empty() {
        let seen: Vec<&str> = processes.iter().map(|(_, c)| c.as_str()).take(10).collect();
        return Err(PlatformError::Refused(format!(
            "no process in `{}` has a command line matching /{}/; its processes: {}",
            target.name,
            re.as_str(),
            seen.join(" | ")
        )));
    }
    Ok(found)
}

fn signal_on_host(
    processes: &[(i32, String)],
    re: &regex::Regex,
    signal: Signal,
    target: &Target,
) -> Result<Vec<ProcessRef>, PlatformError> {
    let sig = nix::sys::signal::Signal::try_from(signal.0)
        .map_err(|e| PlatformError::Refused(e.to_string()))?;
    let found = matching(processes, re, target)?;
    // A process that ended meanwhile was not signalled by faultline.
    Ok(found
        .into_iter()
        .filter(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), sig).is_ok())
        .collect())
}

/// Signals the matching ones of the target's processes listed from its own /proc (its
/// PIDs), inside it.
async fn signal_inside(
    platform: &dyn Platform,
    target: &Target,
    processes: &[(i32, String)],
    re: &regex::Regex,
    signal: Signal,
) -> Result<Vec<ProcessRef>, PlatformError> {
    let found = matching(processes, re, target)?;
    let pids: Vec<String> = found.iter().map(|p| p.pid.to_string()).collect();
    let kill = format!(
        "for p in {}; do kill -{} $p 2>/dev/null && echo $p; done; true",
        pids.join(" "),
        signal.0
    );
    let out = platform
        .exec(target, &["sh".into(), "-c".into(), kill])
        .await?;
    let done: Vec<i64> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    Ok(found
        .into_iter()
        .filter(|p| done.contains(&p.pid))
        .collect())
}

/// `PID COMMAND` lines, without the listing shell (`self PID`) and its own children
/// (`tr`, whose parent it is: their command lines are the shell's or `tr`).
pub fn parse_listing(stdout: &str) -> Vec<(i32, String)> {
    let me: Option<i32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("self "))
        .and_then(|p| p.trim().parse().ok());
    stdout
        .lines()
        .filter_map(|l| {
            let (pid, cmd) = l.split_once(' ')?;
            let pid: i32 = pid.parse().ok()?;
            let cmd = cmd.trim().to_string();
            let own = Some(pid) == me || cmd.starts_with("tr ") || cmd.contains("for d in /proc/");
            (!own && !cmd.is_empty()).then_some((pid, cmd))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            platform: "docker".into(),
            id: "x".into(),
            name: "web".into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn only_matching_command_lines_and_a_clear_refusal() {
        let ps = vec![
            (1, "httpd -f -p 80".to_string()),
            (7, "sleep 1001".to_string()),
            (9, "sleep 1002".to_string()),
        ];
        let re = regex::Regex::new("^sleep 1001$").unwrap();
        let found = matching(&ps, &re, &target()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, 7);
        let none = regex::Regex::new("java").unwrap();
        let e = matching(&ps, &none, &target()).unwrap_err().to_string();
        assert!(
            e.contains("no process in `web`") && e.contains("sleep 1002"),
            "{e}"
        );
    }

    #[test]
    fn the_listing_leaves_out_its_own_shell() {
        let out = "self 40\n1 httpd -f\n40 sh -c echo \"self $$\"; for d in /proc/[0-9]*; do\n41 tr \\000  \n7 sleep 1001\n";
        assert_eq!(
            parse_listing(out),
            vec![(1, "httpd -f".to_string()), (7, "sleep 1001".to_string())]
        );
    }
}
