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

use super::{FaultKind, Undo, UndoRecord};
use crate::experiment::model::{
    CpuStrategy, CpuStressFault, FaultProblems, FaultSpec, Target as TargetSpec,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Placement, Platform, PlatformError, Target, host};

/// How long a busy/idle cycle lasts: short enough that a limit's accounting period
/// (100ms by default) sees the intended ratio.
const SLICE: Duration = Duration::from_millis(20);

/// A stressor outlives its fault by this much before its own deadline ends it, so that a
/// normal revert is always the one that stops it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Prefix of every stressor's marker.
pub const MARKER_PREFIX: &str = "faultline-stress-";

/// How the stressor was started, which is how it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuAccess {
    Host,
    Exec,
}

impl CpuAccess {
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

/// A marker unique to one injection.
pub fn new_marker() -> String {
    format!("{MARKER_PREFIX}{:016x}", rand::random::<u64>())
}

/// The busy part of a slice for `load` percent.
pub fn busy_per_slice(load: u32) -> Duration {
    SLICE * load.min(100) / 100
}

/// Burns `workers` threads at `load`% of a core each until the epoch second `until`.
/// The body of the hidden `faultline stress` command.
pub fn burn(workers: u32, load: u32, until: u64) {
    let busy = busy_per_slice(load);
    let handles: Vec<_> = (0..workers.max(1))
        .map(|_| {
            std::thread::spawn(move || {
                loop {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    if now.as_secs() >= until {
                        return;
                    }
                    let start = Instant::now();
                    while start.elapsed() < busy {
                        std::hint::spin_loop();
                    }
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

/// The shell program of the `exec` strategy: `workers` background loops, each busy for
/// `load`% of a 200ms slice, reading time from /proc/uptime (centiseconds; busybox `date`
/// has no sub-second format), until `seconds` have passed. `$0` carries the marker.
pub fn exec_script(workers: u32, load: u32, seconds: u64) -> String {
    // Slices of 20 centiseconds: busy B, idle 20-B.
    let busy = (load.min(100) * 20).div_ceil(100);
    let idle = 20 - busy;
    let sleep = if idle == 0 {
        String::new()
    } else {
        format!("sleep 0.{}{};", idle / 10, idle % 10)
    };
    format!(
        "read u _ </proc/uptime; end=$(( ${{u%.*}}${{u#*.}} + {cs} )); \
         w() {{ while :; do read u _ </proc/uptime; n=${{u%.*}}${{u#*.}}; [ \"$n\" -ge \"$end\" ] && exit 0; \
         t=$((n + {busy})); while :; do read u _ </proc/uptime; n=${{u%.*}}${{u#*.}}; [ \"$n\" -ge \"$t\" ] && break; done; {sleep} done; }}; \
         i=0; while [ $i -lt {workers} ]; do w & i=$((i + 1)); done; wait",
        cs = seconds * 100,
    )
}

impl FaultSpec for CpuStressFault {
    fn name(&self) -> &'static str {
        "cpu_stress"
    }

    fn after(&self) -> crate::experiment::units::Duration {
        self.after
    }

    fn duration(&self) -> Option<crate::experiment::units::Duration> {
        Some(self.duration)
    }

    fn describe(&self) -> String {
        format!(
            "cpu_stress {} worker(s) at {}% for {}",
            self.workers, self.load, self.duration
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        if self.workers == 0 || self.workers > 1024 {
            p.err_at(
                "workers",
                format!("workers {} is outside 1..1024", self.workers),
            );
        }
        if !(1..=100).contains(&self.load) {
            p.err_at(
                "load",
                format!(
                    "load {} is outside 1..100 (percent of one core per worker)",
                    self.load
                ),
            );
        }
    }
}

#[async_trait]
impl FaultKind for CpuStressFault {
    async fn prepare(
        &self,
        platform: &dyn Platform,
        target: &Target,
    ) -> Result<Option<Undo>, PlatformError> {
        let reach = platform.host_reach(target).await;
        let access = match (self.strategy, reach) {
            (CpuStrategy::Exec, _) => CpuAccess::Exec,
            (CpuStrategy::Host, Ok(())) | (CpuStrategy::Auto, Ok(())) => CpuAccess::Host,
            (CpuStrategy::Auto, Err(_)) => CpuAccess::Exec,
            (CpuStrategy::Host, Err(why)) => {
                return Err(PlatformError::Refused(format!(
                    "strategy `host` moves a stressor into the target's cgroups, which cannot be done here: {why}; use `strategy: exec`"
                )));
            }
        };
        Ok(Some(Undo::new(UndoRecord::StopStressor {
            target: target.clone(),
            stressor: StressorRecord {
                marker: new_marker(),
                access,
            },
        })))
    }

    async fn inject(
        &self,
        platform: &dyn Platform,
        target: &Target,
        undo: Option<&Undo>,
    ) -> Result<(), PlatformError> {
        let Some(UndoRecord::StopStressor { stressor, .. }) = undo.map(|u| &u.record) else {
            return Err(super::mismatched(self));
        };
        let duration = self.duration.std();
        let argv: Vec<String> = match stressor.access {
            CpuAccess::Host => vec![
                "stress".into(),
                "--workers".into(),
                self.workers.to_string(),
                "--load".into(),
                self.load.to_string(),
                "--until".into(),
                host::deadline(duration + DEADLINE_MARGIN).to_string(),
                "--marker".into(),
                stressor.marker.clone(),
            ],
            // `$0` carries the marker.
            CpuAccess::Exec => vec![
                "sh".into(),
                "-c".into(),
                exec_script(self.workers, self.load, duration.as_secs().max(1)),
                stressor.marker.clone(),
            ],
        };
        platform
            .start_process(
                target,
                stressor.access.placement(),
                &argv,
                &stressor.marker,
                duration + DEADLINE_MARGIN,
            )
            .await
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

/// Stops every stressor of the injection and confirms none is left.
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    stressor: &StressorRecord,
) -> Result<(), PlatformError> {
    platform
        .stop_process(target, stressor.access.placement(), &stressor.marker, false)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_of_a_slice() {
        assert_eq!(busy_per_slice(100), SLICE);
        assert_eq!(busy_per_slice(50), SLICE / 2);
        assert_eq!(busy_per_slice(1), SLICE / 100);
    }

    #[test]
    fn exec_script_has_the_right_duty_cycle() {
        let s = exec_script(2, 50, 10);
        assert!(s.contains("t=$((n + 10))"), "{s}");
        assert!(s.contains("sleep 0.10;"), "{s}");
        assert!(s.contains("-lt 2 ]"));
        assert!(s.contains("+ 1000 ))"), "10s in centiseconds");
        let full = exec_script(1, 100, 5);
        assert!(!full.contains("sleep"), "no idle at 100%: {full}");
    }
}
