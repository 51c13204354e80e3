//! `cpu_stress`: burns CPU that counts against the target's own cgroup limits.
//!
//! A stressor beside the container tests nothing, so the stress runs inside it:
//! - `host`: faultline's own binary (`faultline stress`, hidden), started stopped, moved
//!   into every cgroup the container's init process is in, then continued; it has a
//!   parent-death signal and its own deadline.
//! - `exec`: a shell loop inside the container through the exec API (any daemon; needs
//!   only `sh`), with its own deadline.
//!
//! Each worker alternates busy and idle in short slices so that it uses `load`% of one
//! core. Every stressor carries a marker in its command line; revert kills by that marker
//! (never by a broad process name) and confirms that none is left.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    CpuStrategy, CpuStressFault, FaultProblems, FaultSpec, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Placement, Platform, PlatformError, Target, host};

/// How long a busy/idle cycle lasts: short enough that a limit's accounting period
/// (100ms by default) sees the intended ratio.
const SLICE: Duration = Duration::from_millis(20);

/// A stressor outlives its fault by this much before its own deadline ends it, so that a
/// normal revert is always the one that stops it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// A stressor's command before its deadline and marker are added: the arguments of one of
/// faultline's host subcommands, or the shell script to run inside the target, written
/// for the seconds it runs.
pub(crate) enum StressorCommand<'a> {
    Host(Vec<String>),
    Exec(Box<dyn FnOnce(u64) -> String + Send + 'a>),
}

impl<'a> StressorCommand<'a> {
    /// faultline's host subcommand `name` with its options, as (flag, value) pairs.
    pub(crate) fn host(name: &str, options: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let mut args = vec![name.to_string()];
        for (flag, value) in options {
            args.extend([flag.to_string(), value]);
        }
        StressorCommand::Host(args)
    }

    /// The shell script `script` writes for the seconds the stressor runs.
    pub(crate) fn exec(script: impl FnOnce(u64) -> String + Send + 'a) -> Self {
        StressorCommand::Exec(Box::new(script))
    }
}

/// Starts the stressor of `record` where it says, found again by its marker: the host
/// subcommand gets `--until DEADLINE --marker MARKER`, the script gets the marker as its
/// `$0`. Either ends by itself `duration` + [`DEADLINE_MARGIN`] from now if nobody stops
/// it.
pub(crate) async fn start_stressor(
    platform: &dyn Platform,
    target: &Target,
    record: &(impl StressorRef + Sync),
    command: StressorCommand<'_>,
    duration: Duration,
) -> Result<(), PlatformError> {
    let (marker, placement) = record.stressor();
    let lifetime = duration + DEADLINE_MARGIN;
    let argv: Vec<String> = match command {
        StressorCommand::Host(mut args) => {
            args.extend([
                "--until".into(),
                host::deadline(lifetime).to_string(),
                "--marker".into(),
                marker.into(),
            ]);
            args
        }
        StressorCommand::Exec(script) => {
            let script = script(duration.as_secs().max(1));
            vec!["sh".into(), "-c".into(), script, marker.into()]
        }
    };
    platform
        .start_process(target, placement, &argv, marker, lifetime)
        .await
}

/// The start of a stressor's shell script: `$end`, the deadline `seconds` from now in
/// centiseconds of /proc/uptime (busybox `date` has no sub-second format).
pub(crate) fn script_deadline(seconds: u64) -> String {
    format!(
        "read u _ </proc/uptime; end=$(( ${{u%.*}}${{u#*.}} + {} ));",
        seconds * 100
    )
}

/// The undo record of a stressor that [`start_stressor`] started: how it is found again.
pub trait StressorRef {
    /// The marker on its command line, and where it runs.
    fn stressor(&self) -> (&str, Placement);
}

/// Stops every process of the stressor `record` found (`memory_stress`: the memory goes
/// with them) and confirms none is left.
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    record: &(impl StressorRef + Sync),
) -> Result<(), PlatformError> {
    let (marker, placement) = record.stressor();
    platform
        .stop_process(target, placement, marker, false)
        .await
}

/// Prefix of every stressor's marker.
pub const MARKER_PREFIX: &str = "faultline-stress-";

/// How the stressor was started, which is how it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuAccess {
    Host,
    Exec,
}

/// Refuses the setting `key` when its `value` is outside `range`; `note` follows the range
/// in the message (what the number counts).
pub(crate) fn within(
    p: &mut FaultProblems,
    (key, value): (&'static str, u32),
    range: std::ops::RangeInclusive<u32>,
    note: &str,
) {
    if !range.contains(&value) {
        let (low, high) = range.into_inner();
        p.err_at(key, format!("{key} {value} is outside {low}..{high}{note}"));
    }
}

/// What the host strategy does, by the fault that has one, said when it cannot be used.
const HOST_STRATEGIES: [(&str, &str); 4] = [
    ("cpu_stress", "moves a stressor into the target's cgroups"),
    (
        "memory_stress",
        "moves an allocator into the target's memory cgroup",
    ),
    (
        "disk_fill",
        "writes through the target's root from this host",
    ),
    (
        "io_stress",
        "moves an I/O stressor into the target's cgroups",
    ),
];

impl CpuAccess {
    /// The access `strategy` asks for on `target`: `host` where this machine reaches the
    /// target's cgroups and root, else (`auto`) `exec`. An explicit `host` that cannot be
    /// had is refused, saying what it does for the fault named `fault` ([`HOST_STRATEGIES`])
    /// and why not.
    pub async fn chosen(
        strategy: CpuStrategy,
        platform: &dyn Platform,
        target: &Target,
        fault: &str,
    ) -> Result<CpuAccess, PlatformError> {
        let does = HOST_STRATEGIES
            .iter()
            .find(|(name, _)| *name == fault)
            .map_or("runs on this host", |(_, does)| does);
        match (strategy, platform.host_reach(target).await) {
            (CpuStrategy::Exec, _) | (CpuStrategy::Auto, Err(_)) => Ok(CpuAccess::Exec),
            (CpuStrategy::Host | CpuStrategy::Auto, Ok(())) => Ok(CpuAccess::Host),
            (CpuStrategy::Host, Err(why)) => Err(PlatformError::Refused(format!(
                "strategy `host` {does}, which cannot be done here: {why}; use `strategy: exec`"
            ))),
        }
    }

    /// Where a stressor that must be charged to the target container itself runs (memory,
    /// io): a host process attached to its cgroups, or inside the container, on its
    /// filesystem.
    pub fn in_container(self) -> Placement {
        match self {
            CpuAccess::Host => Placement::Host {
                netns: false,
                cgroups: true,
            },
            CpuAccess::Exec => Placement::InContainer,
        }
    }

    fn placement(self) -> Placement {
        match self {
            CpuAccess::Host => Placement::Host {
                netns: false,
                cgroups: true,
            },
            CpuAccess::Exec => Placement::IN_TARGET,
        }
    }
}

/// What revert needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StressorRecord {
    pub marker: String,
    pub access: CpuAccess,
}

impl StressorRef for StressorRecord {
    fn stressor(&self) -> (&str, Placement) {
        (&self.marker, self.access.placement())
    }
}

/// A marker unique to one injection.
pub fn new_marker() -> String {
    format!("{MARKER_PREFIX}{:016x}", rand::random::<u64>())
}

/// The busy part of a slice for `load` percent.
pub fn busy_per_slice(load: u32) -> Duration {
    SLICE * load.min(100) / 100
}

/// How much CPU time a worker that fell behind may make up in later slices.
const CATCH_UP: Duration = Duration::from_millis(100);

/// Keeps one worker at `load`% of a core by its own CPU time rather than the wall clock.
/// A worker that was preempted during its busy part (a busy host, a CFS quota) or slept
/// longer than asked (a coarse timer) burns the shortfall in the next slices, up to
/// `CATCH_UP`; a duty cycle by the wall clock alone loses that time for good, which CI
/// saw as 29% of a core for `load: 50`.
#[derive(Debug)]
pub struct DutyCycle {
    busy: Duration,
    debt: Duration,
}

impl DutyCycle {
    pub fn new(load: u32) -> Self {
        Self {
            busy: busy_per_slice(load),
            debt: Duration::ZERO,
        }
    }

    /// The CPU time the next slice should burn.
    pub fn want(&self) -> Duration {
        self.busy + self.debt
    }

    /// Records the CPU time a slice burnt.
    pub fn burnt(&mut self, got: Duration) {
        self.debt = self.want().saturating_sub(got).min(CATCH_UP);
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Burns `workers` threads at `load`% of a core each until the epoch second `until`.
/// The body of the hidden `faultline stress` command.
pub fn burn(workers: u32, load: u32, until: u64) {
    let handles: Vec<_> = (0..workers.max(1))
        .map(|_| {
            std::thread::spawn(move || {
                let mut cycle = DutyCycle::new(load);
                loop {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    if now.as_secs() >= until {
                        return;
                    }
                    let start = Instant::now();
                    let cpu0 = thread_cpu();
                    let want = cycle.want();
                    while thread_cpu() - cpu0 < want && start.elapsed() < SLICE {
                        std::hint::spin_loop();
                    }
                    cycle.burnt(thread_cpu() - cpu0);
                    let idle = SLICE.saturating_sub(start.elapsed());
                    if !idle.is_zero() {
                        std::thread::sleep(idle);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// The shell program of the `exec` strategy: `workers` background loops that keep
/// `load`% of a core each by the same rule as [`DutyCycle`], in slices of 20
/// centiseconds: wall time from /proc/uptime, the loop's own CPU time from
/// /proc/self/stat (utime + stime, in centiseconds), until `seconds` have passed
/// ([`script_deadline`]). `$0` carries the marker.
pub fn exec_script(workers: u32, load: u32, seconds: u64) -> String {
    let busy = (load.min(100) * 20).div_ceil(100);
    let catch_up = CATCH_UP.as_millis() / 10;
    // `read` is a builtin, so /proc/self is the worker subshell itself.
    let now = "read u _ </proc/uptime; n=${u%.*}${u#*.}";
    let cpu = "read -r _ _ _ _ _ _ _ _ _ _ _ _ _ a b _ </proc/self/stat; c=$((a + b))";
    let deadline = script_deadline(seconds);
    format!(
        "{deadline} \
         w() {{ d=0; while :; do {now}; [ \"$n\" -ge \"$end\" ] && exit 0; \
         t=$((n + 20)); want=$(({busy} + d)); {cpu}; c0=$c; \
         while [ $((c - c0)) -lt $want ]; do {now}; [ \"$n\" -ge \"$t\" ] && break; {cpu}; done; \
         {cpu}; d=$((want - c + c0)); [ $d -lt 0 ] && d=0; [ $d -gt {catch_up} ] && d={catch_up}; \
         {now}; r=$((t - n)); [ $r -gt 0 ] && sleep 0.$((r / 10))$((r % 10)); done; }}; \
         i=0; while [ $i -lt {workers} ]; do w & i=$((i + 1)); done; wait"
    )
}

impl FaultSpec for CpuStressFault {
    fault_timing!("cpu_stress");

    fn describe(&self) -> String {
        format!(
            "cpu_stress {} worker(s) at {}% for {}",
            self.workers, self.load, self.duration
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        within(p, ("workers", self.workers), 1..=1024, "");
        let per_worker = " (percent of one core per worker)";
        within(p, ("load", self.load), 1..=100, per_worker);
    }
}

#[async_trait]
impl FaultKind for CpuStressFault {
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let access = CpuAccess::chosen(self.strategy, platform, target, self.name()).await?;
        Ok(Some(Undo::new(UndoRecord::StopStressor {
            target: target.clone(),
            stressor: StressorRecord {
                marker: new_marker(),
                access,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let stressor = super::undo_part!(u, StopStressor { stressor }, self);
        let (workers, load) = (self.workers, self.load);
        let command = match stressor.access {
            CpuAccess::Host => StressorCommand::host(
                "stress",
                [
                    ("--workers", workers.to_string()),
                    ("--load", load.to_string()),
                ],
            ),
            CpuAccess::Exec => StressorCommand::exec(move |s| exec_script(workers, load, s)),
        };
        start_stressor(platform, target, stressor, command, self.duration.std()).await
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# cpu_stress adds an ephemeral container running the stressor (no privilege) to the\n\
             # target pod: it counts against the pod's cgroup.\n",
        )
    }

    /// An ephemeral container running the stressor; revert execs into it.
    fn rbac(&self) -> &'static [Permission] {
        &[
            rbac::GET_PODS,
            rbac::PATCH_EPHEMERAL,
            rbac::EXEC_CREATE,
            rbac::EXEC_GET,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused `strategy: host` says what it would have done, for every fault that has one.
    #[test]
    fn every_fault_with_a_host_strategy_says_what_it_does() {
        let faults = [
            "cpu_stress: {duration: 1s}",
            "memory_stress: {duration: 1s, size: 1MiB}",
            "disk_fill: {duration: 1s, size: 1MiB, path: /tmp}",
            "io_stress: {duration: 1s, path: /tmp}",
        ];
        for yaml in faults {
            let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
            let f: crate::experiment::model::Fault = serde_json::from_value(v).unwrap();
            let name = crate::fault::kind(&f).name();
            assert!(HOST_STRATEGIES.iter().any(|(n, _)| *n == name), "{name}");
        }
    }

    #[test]
    fn busy_share_of_a_slice() {
        assert_eq!(busy_per_slice(100), SLICE);
        assert_eq!(busy_per_slice(50), SLICE / 2);
        assert_eq!(busy_per_slice(1), SLICE / 100);
    }

    #[test]
    fn a_worker_that_fell_behind_catches_up_within_a_bound() {
        let mut c = DutyCycle::new(50);
        assert_eq!(c.want(), SLICE / 2);
        // Preempted for the whole slice: the next one burns two busy parts.
        c.burnt(Duration::ZERO);
        assert_eq!(c.want(), SLICE);
        // On schedule again: back to one busy part.
        c.burnt(SLICE);
        assert_eq!(c.want(), SLICE / 2);
        // A long stall is made up only to CATCH_UP, not all at once.
        for _ in 0..100 {
            c.burnt(Duration::ZERO);
        }
        assert_eq!(c.want(), SLICE / 2 + CATCH_UP);
        // Burning more than asked is no credit: the share never dips below the load.
        c.burnt(SLICE * 10);
        assert_eq!(c.want(), SLICE / 2);
    }

    /// CPU time of the children `sh` waited for, in centiseconds: run the script in a
    /// subshell, then read the shell's own cutime + cstime.
    fn exec_script_cpu_cs(script: &str) -> u64 {
        let wrapper = format!(
            "( {script} ); read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ cu cs _ </proc/self/stat; echo $((cu + cs))"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &wrapper])
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a number")
    }

    #[test]
    fn the_exec_script_burns_its_load_by_its_own_cpu_time() {
        // One worker at 50% for 2 s: 100 cs of CPU. The ±10-point accuracy is checked in
        // a container by tests/cpu_e2e.rs, one measurement at a time; here, beside the
        // other unit tests on a shared machine, the script must burn a real share and
        // never more than its load plus the catch-up.
        let used = exec_script_cpu_cs(&exec_script(1, 50, 2));
        assert!((25..=125).contains(&used), "used {used} cs of 100");
    }
}
