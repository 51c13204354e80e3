//! `process_pause`: stops (SIGSTOP) the processes inside the target whose command line
//! matches `process`, and continues them (SIGCONT) at revert: a hung process (a GC pause,
//! a deadlock) while the container and its other processes keep running.
//!
//! The processes are found as `kill`'s `process` finds them ([`kill::list_processes`]):
//! from this host through the target's cgroups (host PIDs), else through exec inside it
//! (its own PIDs; always on Kubernetes). The undo record names each one by PID and start
//! time (`/proc/PID/stat` field 22), so that a revert long after a crash never signals a
//! process that reused the PID.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::kill::{self, Listed};
use super::{FaultEffects, FaultKind, Prepared, Reported, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, ProcessPauseFault, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target};
use crate::report::ProcessRef;

/// What a revert needs: where the PIDs are seen and which processes were stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedRecord {
    pub via: Via,
    pub processes: Vec<PausedProcess>,
}

/// How the target's processes are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// From this host (a local Docker daemon): host PIDs, signalled directly.
    Host,
    /// Through exec inside the target: PIDs of its own PID namespace.
    Exec,
}

/// One process the fault stops: `start_time` (clock ticks after boot) tells it from a
/// later process with the same PID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedProcess {
    pub pid: i64,
    pub start_time: u64,
    pub command: String,
}

impl PausedProcess {
    fn named(&self) -> String {
        format!("process {} (`{}`)", self.pid, self.command)
    }

    fn as_ref(&self) -> ProcessRef {
        ProcessRef {
            pid: self.pid,
            command: self.command.clone(),
        }
    }
}

/// The fields of `/proc/PID/stat` the fault reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    /// Field 3: `R`, `S`, `T` (stopped), `t` (stopped by a tracer), ...
    state: char,
    /// Field 22: when the process started, in clock ticks after boot.
    start_time: u64,
}

/// The PID and fields of one `/proc/PID/stat` line. The command name (field 2, in
/// parentheses) may hold spaces and parentheses itself: fields are counted after the last `)`.
fn parse_stat(line: &str) -> Option<(i64, Stat)> {
    let (pid, rest) = line.trim().split_once(' ')?;
    let rest = &rest[rest.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 to 21 lie between the state and the start time.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((pid.parse().ok()?, Stat { state, start_time }))
}

impl FaultSpec for ProcessPauseFault {
    fault_timing!("process_pause");

    fn describe(&self) -> String {
        format!(
            "pause processes matching /{}/ for {}",
            self.process, self.duration
        )
    }

    fn describe_on(&self, target: &TargetSpec) -> String {
        if target.kubernetes.is_some() {
            return format!("{}, inside the target container (exec)", self.describe());
        }
        self.describe()
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        if self.process.is_empty() {
            p.err_at(
                "process",
                "`process` is empty, which matches every process: name the process to stop, or use `pause` to freeze the whole container",
            );
        } else if let Err(e) = regex::Regex::new(&self.process) {
            p.err_at(
                "process",
                format!("`process` is not a valid regular expression: {e}"),
            );
        }
    }
}

#[async_trait]
impl FaultKind for ProcessPauseFault {
    /// The processes are reached from this host (a local Docker daemon) or through exec:
    /// a platform with neither is refused before anything is touched.
    async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
        if platform.can_exec() {
            return Ok(());
        }
        Err(format!(
            "`process_pause` stops processes inside the target from this host (a local Docker daemon) or through exec, and {} offers neither",
            platform.kind()
        ))
    }

    /// Finds the matching processes and their start times: the record is journaled
    /// before any of them is stopped. Refused when none matches, when one is already
    /// stopped (by someone else: continuing it at revert would undo their action), and,
    /// through exec, for the container's init process, which ignores SIGSTOP sent from
    /// inside its own PID namespace.
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let re = regex::Regex::new(&self.process)
            .map_err(|e| PlatformError::Refused(format!("`process`: {e}")))?;
        let (via, found) = match kill::list_processes(platform, target).await? {
            Listed::Host(ps) => (Via::Host, kill::matching(&ps, &re, target)?),
            Listed::Inside(ps) => (Via::Exec, kill::matching(&ps, &re, target)?),
        };
        let pids: Vec<i64> = found.iter().map(|p| p.pid).collect();
        let stats = read_stats(platform, target, via, &pids).await?;
        let mut processes = Vec::new();
        for p in found {
            // One that ended since it was listed is not paused.
            let Some(stat) = stats.get(&p.pid) else {
                continue;
            };
            let process = PausedProcess {
                pid: p.pid,
                start_time: stat.start_time,
                command: p.command,
            };
            if matches!(stat.state, 'T' | 't') {
                return Err(PlatformError::Refused(format!(
                    "{} in `{}` is already stopped (state {}) by someone else; refusing to take it over",
                    process.named(),
                    target.name,
                    stat.state
                )));
            }
            if via == Via::Exec && process.pid == 1 {
                return Err(PlatformError::Refused(format!(
                    "{} is the init process of `{}`, which ignores SIGSTOP sent from inside its container (faultline reaches it only from the host of a local Docker daemon, as root); match another process",
                    process.named(),
                    target.name
                )));
            }
            processes.push(process);
        }
        if processes.is_empty() {
            return Err(PlatformError::Refused(format!(
                "every process in `{}` matching /{}/ ended before it could be paused",
                target.name, self.process
            )));
        }
        Ok(Some(Undo::new(UndoRecord::ResumeProcesses {
            target: target.clone(),
            paused: PausedRecord { via, processes },
        })))
    }

    /// Stops the recorded processes whose start time still matches, and confirms each is
    /// stopped. A failure here leaves the continuing to the revert the run then does.
    async fn inject_reporting(
        &self,
        platform: &dyn Platform,
        target: &Target,
        undo: Option<&Undo>,
    ) -> Reported {
        let paused = super::undo_part!(undo, ResumeProcesses { paused }, self);
        let sent = send(platform, target, paused, Signal::Stop).await?;
        let stopped = signalled(&sent);
        if stopped.is_empty() {
            return Err(PlatformError::Refused(format!(
                "every process in `{}` matching /{}/ ended before it could be paused",
                target.name, self.process
            )));
        }
        let unstopped = settle(platform, target, paused.via, &stopped, true).await?;
        if let Some((p, state)) = unstopped.first() {
            return Err(PlatformError::Refused(format!(
                "{} in `{}` is not stopped after SIGSTOP (state {state})",
                p.named(),
                target.name
            )));
        }
        Ok(Some(FaultEffects {
            signalled: stopped.iter().map(|p| p.as_ref()).collect(),
            ..Default::default()
        }))
    }

    /// Exec into the target container (listing /proc, signalling there).
    fn rbac(&self) -> &'static [Permission] {
        rbac::EXEC_IN_TARGET
    }
}

/// Continues the recorded processes that are still the same processes (their start time
/// matches) and still stopped, and confirms none of them is stopped any more. A process
/// that ended meanwhile (or was continued by someone else) is said in the report, not an
/// error.
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    paused: &PausedRecord,
) -> Result<Option<FaultEffects>, PlatformError> {
    let mut notes = Vec::new();
    for attempt in 0..3 {
        let sent = send(platform, target, paused, Signal::Cont).await?;
        let continued = signalled(&sent);
        if attempt == 0 {
            for (p, outcome) in &sent {
                match outcome {
                    Sent::Ended => notes.push(format!("{} ended while paused", p.named())),
                    Sent::NotStopped => {
                        notes.push(format!("{} was no longer stopped at revert", p.named()));
                    }
                    Sent::Signalled => {}
                }
            }
        }
        let still = settle(platform, target, paused.via, &continued, false).await?;
        match still.first() {
            None => {
                return Ok((!notes.is_empty()).then(|| FaultEffects {
                    caveat: Some(notes.join("; ")),
                    ..Default::default()
                }));
            }
            Some((p, _)) if attempt == 2 => {
                return Err(PlatformError::Refused(format!(
                    "{} in `{}` is still stopped after SIGCONT",
                    p.named(),
                    target.name
                )));
            }
            Some(_) => {}
        }
    }
    unreachable!("the last attempt returns")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Stop,
    Cont,
}

/// What became of one recorded process when it was to be signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Signalled,
    /// Gone, or its PID now belongs to another process: not signalled.
    Ended,
    /// SIGCONT only: it was not stopped (any more), so it was left alone.
    NotStopped,
}

/// The processes of [`send`]'s answer that were signalled.
fn signalled<'r>(sent: &[(&'r PausedProcess, Sent)]) -> Vec<&'r PausedProcess> {
    sent.iter()
        .filter(|(_, o)| *o == Sent::Signalled)
        .map(|(p, _)| *p)
        .collect()
}

/// Sends `signal` to each recorded process that is still the same process (its start time
/// matches); SIGCONT only to those stopped (state `T`).
async fn send<'r>(
    platform: &dyn Platform,
    target: &Target,
    paused: &'r PausedRecord,
    signal: Signal,
) -> Result<Vec<(&'r PausedProcess, Sent)>, PlatformError> {
    let outcomes = match paused.via {
        Via::Host => send_on_host(&paused.processes, signal)?,
        Via::Exec => send_inside(platform, target, &paused.processes, signal).await?,
    };
    Ok(paused.processes.iter().zip(outcomes).collect())
}

fn send_on_host(processes: &[PausedProcess], signal: Signal) -> Result<Vec<Sent>, PlatformError> {
    use nix::sys::signal::{Signal as Sig, kill};
    let sig = match signal {
        Signal::Stop => Sig::SIGSTOP,
        Signal::Cont => Sig::SIGCONT,
    };
    processes
        .iter()
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid))
                .ok()
                .and_then(|l| parse_stat(&l));
            match stat {
                Some((_, s)) if s.start_time == p.start_time => {
                    if signal == Signal::Cont && s.state != 'T' {
                        return Ok(Sent::NotStopped);
                    }
                    match kill(nix::unistd::Pid::from_raw(p.pid as i32), sig) {
                        Ok(()) => Ok(Sent::Signalled),
                        Err(nix::errno::Errno::ESRCH) => Ok(Sent::Ended),
                        Err(e) => Err(PlatformError::Refused(format!(
                            "cannot send {sig} to {}: {e}",
                            p.named()
                        ))),
                    }
                }
                _ => Ok(Sent::Ended),
            }
        })
        .collect()
}

/// The same inside the target: one shell reads each process's stat, compares its start
/// time (field 22: the 20th word after the command name) and signals it, saying which.
async fn send_inside(
    platform: &dyn Platform,
    target: &Target,
    processes: &[PausedProcess],
    signal: Signal,
) -> Result<Vec<Sent>, PlatformError> {
    let script = signal_script(processes, signal);
    let out = platform
        .exec(target, &["sh".into(), "-c".into(), script])
        .await?;
    let said: BTreeMap<i64, &str> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (word, pid) = l.trim().split_once(' ')?;
            Some((pid.parse().ok()?, word))
        })
        .collect();
    processes
        .iter()
        .map(|p| match said.get(&p.pid).copied() {
            Some("sent") => Ok(Sent::Signalled),
            Some("ended") => Ok(Sent::Ended),
            Some("running") => Ok(Sent::NotStopped),
            Some("failed") => Err(PlatformError::Refused(format!(
                "`kill` inside `{}` could not signal {} (the exec's user may not signal it)",
                target.name,
                p.named()
            ))),
            _ => Err(PlatformError::Refused(format!(
                "signalling {} inside `{}` said nothing about it ({}{})",
                p.named(),
                target.name,
                out.stdout.trim(),
                out.stderr.trim()
            ))),
        })
        .collect()
}

/// The shell loop of [`send_inside`]: `WORD PID` per process, WORD one of `sent`,
/// `ended`, `running` (SIGCONT to one not stopped) or `failed`.
fn signal_script(processes: &[PausedProcess], signal: Signal) -> String {
    let entries: Vec<String> = processes
        .iter()
        .map(|p| format!("{}:{}", p.pid, p.start_time))
        .collect();
    let (name, only_stopped) = match signal {
        Signal::Stop => ("STOP", ""),
        Signal::Cont => ("CONT", "elif [ \"$1\" != T ]; then echo \"running $p\"; "),
    };
    format!(
        "for e in {}; do p=${{e%:*}}; t=${{e#*:}}; \
         s=$(cat /proc/$p/stat 2>/dev/null) || {{ echo \"ended $p\"; continue; }}; \
         set -- ${{s##*)}}; \
         if [ \"${{20}}\" != \"$t\" ]; then echo \"ended $p\"; \
         {only_stopped}elif kill -{name} $p 2>/dev/null; then echo \"sent $p\"; \
         else echo \"failed $p\"; fi; done; true",
        entries.join(" ")
    )
}

/// The stat of each of `pids` that still exists, read where the PIDs are seen.
async fn read_stats(
    platform: &dyn Platform,
    target: &Target,
    via: Via,
    pids: &[i64],
) -> Result<BTreeMap<i64, Stat>, PlatformError> {
    let lines = match via {
        Via::Host => pids
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .collect::<Vec<_>>()
            .join("\n"),
        Via::Exec => {
            let pids: Vec<String> = pids.iter().map(i64::to_string).collect();
            let script = format!(
                "for p in {}; do cat /proc/$p/stat 2>/dev/null; done; true",
                pids.join(" ")
            );
            platform
                .exec(target, &["sh".into(), "-c".into(), script])
                .await?
                .stdout
        }
    };
    Ok(lines.lines().filter_map(parse_stat).collect())
}

/// Waits (2 s at most) until each of `processes` is stopped (`stopped`) or no longer
/// stopped, or has ended; gives back those that are not, with their state.
async fn settle<'p>(
    platform: &dyn Platform,
    target: &Target,
    via: Via,
    processes: &[&'p PausedProcess],
    stopped: bool,
) -> Result<Vec<(&'p PausedProcess, char)>, PlatformError> {
    let pids: Vec<i64> = processes.iter().map(|p| p.pid).collect();
    let mut attempt = 0;
    loop {
        let stats = read_stats(platform, target, via, &pids).await?;
        let wrong: Vec<(&PausedProcess, char)> = processes
            .iter()
            .filter_map(|p| {
                let s = stats.get(&p.pid).filter(|s| s.start_time == p.start_time)?;
                ((s.state == 'T') != stopped).then_some((*p, s.state))
            })
            .collect();
        attempt += 1;
        if wrong.is_empty() || attempt == 20 {
            return Ok(wrong);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::model::Fault;

    fn fault(yaml: &str) -> Fault {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    fn problems(yaml: &str, target: &TargetSpec) -> Vec<String> {
        let mut p = FaultProblems::default();
        fault(yaml).spec().validate(target, &mut p);
        p.0.into_iter().map(|(_, m)| m).collect()
    }

    fn docker_target() -> TargetSpec {
        serde_json::from_value(serde_json::json!({"docker": {"labels": {"app": "web"}}})).unwrap()
    }

    fn kubernetes_target() -> TargetSpec {
        serde_json::from_value(
            serde_json::json!({"kubernetes": {"namespace": "shop", "selector": "app=api"}}),
        )
        .unwrap()
    }

    #[test]
    fn validation_needs_a_regex_naming_something_and_a_duration() {
        let docker = docker_target();
        assert!(
            problems(
                "process_pause: {process: \"^java \", duration: 5s}",
                &docker
            )
            .is_empty()
        );
        let bad = problems("process_pause: {process: \"(\", duration: 5s}", &docker);
        assert!(
            bad[0].contains("`process` is not a valid regular expression"),
            "{bad:?}"
        );
        let empty = problems("process_pause: {process: \"\", duration: 5s}", &docker);
        assert!(empty[0].contains("use `pause`"), "{empty:?}");
        let zero = problems("process_pause: {process: java, duration: 0s}", &docker);
        assert!(
            zero[0].contains("`duration` must be longer than 0s"),
            "{zero:?}"
        );
        // Both keys are required, and nothing else is accepted.
        for yaml in [
            "process_pause: {duration: 5s}",
            "process_pause: {process: java}",
            "process_pause: {process: java, duration: 5s, signal: SIGKILL}",
        ] {
            let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
            assert!(serde_json::from_value::<Fault>(v).is_err(), "{yaml}");
        }
    }

    #[test]
    fn description_names_the_processes_and_on_kubernetes_the_exec() {
        let f = fault("process_pause: {process: \"^java \", duration: 5s, after: 1s, target: api}");
        assert_eq!(f.type_name(), "process_pause");
        assert_eq!(f.describe(), "pause processes matching /^java / for 5s");
        assert_eq!(f.duration().map(|d| d.as_millis()), Some(5000));
        assert_eq!(f.after().as_millis(), 1000);
        assert_eq!(f.spec().target(), Some("api"));
        assert_eq!(
            f.describe_for(&kubernetes_target()),
            "pause processes matching /^java / for 5s, inside the target container (exec)"
        );
        assert_eq!(f.describe_for(&docker_target()), f.describe());
    }

    #[test]
    fn the_undo_record_names_each_process_by_pid_and_start_time() {
        let undo = Undo::new(UndoRecord::ResumeProcesses {
            target: Target {
                platform: "docker".into(),
                id: "abc".into(),
                name: "web-1".into(),
                labels: Default::default(),
            },
            paused: PausedRecord {
                via: Via::Exec,
                processes: vec![PausedProcess {
                    pid: 7,
                    start_time: 35852,
                    command: "sleep 1001".into(),
                }],
            },
        });
        let json = serde_json::to_value(&undo).unwrap();
        assert_eq!(json["undo"], "resume_processes");
        assert_eq!(json["target"]["name"], "web-1");
        assert_eq!(json["paused"]["via"], "exec");
        assert_eq!(
            json["paused"]["processes"][0],
            serde_json::json!({"pid": 7, "start_time": 35852, "command": "sleep 1001"})
        );
        let back: Undo = serde_json::from_str(&json.to_string()).unwrap();
        assert_eq!(back, undo);
        assert_eq!(back.target().name, "web-1");
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "7 (sleep) S 1 1 1 0 -1 4194304 58 0 1 0 0 0 0 0 20 0 1 0 35852 2322432 268";
        assert_eq!(
            parse_stat(line),
            Some((
                7,
                Stat {
                    state: 'S',
                    start_time: 35852
                }
            ))
        );
        // A name with spaces and a parenthesis of its own.
        let odd = "42 (a) b (c) T 1 1 1 0 -1 4194304 58 0 1 0 0 0 0 0 20 0 1 0 99 2322432 268";
        assert_eq!(
            parse_stat(odd),
            Some((
                42,
                Stat {
                    state: 'T',
                    start_time: 99
                }
            ))
        );
        assert_eq!(parse_stat("7 (sleep) S 1"), None);
    }

    /// A local `sleep 30`, its record, and the same record with another start time (as if
    /// its PID had been reused); killed on drop.
    struct Sleeper {
        child: std::process::Child,
        me: PausedProcess,
        recycled: PausedProcess,
    }

    impl Sleeper {
        fn start() -> Sleeper {
            let child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let pid = i64::from(child.id());
            let mut s = Sleeper {
                child,
                me: PausedProcess {
                    pid,
                    start_time: 0,
                    command: "sleep 30".into(),
                },
                recycled: PausedProcess {
                    pid,
                    start_time: 0,
                    command: "sleep 30".into(),
                },
            };
            s.me.start_time = s.stat().start_time;
            s.recycled.start_time = s.me.start_time + 1;
            s
        }

        fn stat(&self) -> Stat {
            let line = std::fs::read_to_string(format!("/proc/{}/stat", self.me.pid)).unwrap();
            parse_stat(&line).unwrap().1
        }

        /// Whether its state becomes `state` within a second.
        fn reaches(&self, state: char) -> bool {
            (0..50).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                self.stat().state == state
            })
        }

        fn end(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            self.end();
        }
    }

    /// The host path against a real process: a record whose start time is not the
    /// process's is not signalled, and SIGCONT goes only to a stopped process.
    #[test]
    fn on_the_host_only_the_same_process_is_signalled() {
        let mut s = Sleeper::start();
        let send =
            |p: &PausedProcess, signal| send_on_host(std::slice::from_ref(p), signal).unwrap()[0];
        assert_eq!(send(&s.recycled, Signal::Stop), Sent::Ended);
        assert!(!s.reaches('T'), "a reused PID is not stopped");
        assert_eq!(send(&s.me, Signal::Cont), Sent::NotStopped);
        assert_eq!(send(&s.me, Signal::Stop), Sent::Signalled);
        assert!(s.reaches('T'), "stopped");
        assert_eq!(send(&s.recycled, Signal::Cont), Sent::Ended);
        assert_eq!(s.stat().state, 'T', "a reused PID is not continued");
        assert_eq!(send(&s.me, Signal::Cont), Sent::Signalled);
        assert!(s.reaches('S'), "continued");
        s.end();
        assert_eq!(send(&s.me, Signal::Cont), Sent::Ended);
    }

    /// The shell loop of the exec path, run here against the same kind of process: it
    /// says which it signalled, and why not the others.
    #[test]
    fn the_signal_script_checks_the_start_time_before_signalling() {
        let mut s = Sleeper::start();
        let pid = s.me.pid;
        let run = |process: &PausedProcess, signal| {
            let script = signal_script(std::slice::from_ref(process), signal);
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(run(&s.recycled, Signal::Stop), format!("ended {pid}\n"));
        assert_eq!(run(&s.me, Signal::Cont), format!("running {pid}\n"));
        assert_eq!(run(&s.me, Signal::Stop), format!("sent {pid}\n"));
        assert!(s.reaches('T'), "stopped");
        assert_eq!(run(&s.recycled, Signal::Cont), format!("ended {pid}\n"));
        assert_eq!(s.stat().state, 'T', "a reused PID is not continued");
        assert_eq!(run(&s.me, Signal::Cont), format!("sent {pid}\n"));
        assert!(s.reaches('S'), "continued");
        s.end();
        assert_eq!(run(&s.me, Signal::Stop), format!("ended {pid}\n"));
    }
}
