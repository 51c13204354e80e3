//! `memory_stress`: memory allocated and touched inside the target's memory cgroup, so that
//! it counts against the container's own limit, held for the fault's duration.
//!
//! - `host`: faultline's own binary (`faultline memhog`, hidden), started stopped, moved
//!   into every cgroup the container's init process is in, then continued. It allocates
//!   evenly over `ramp`, writes every page (an untouched page is not charged), holds it,
//!   and ends at its own deadline or when it is killed at revert; it has a parent-death
//!   signal.
//! - `exec`: `dd` inside the container fills its own buffer from /dev/zero, then blocks
//!   writing it into a pipe that a marked shell never reads; killing the shell at revert
//!   ends `dd` with SIGPIPE. Needs only `sh` and `dd` in the image.
//!
//! The OOM killer's count in the container's memory cgroup is read when the fault is
//! prepared and again before it is reverted; when it rose, the report says so and names
//! the victims from the kernel log (host access only).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use super::cpu_stress::revert;
use super::cpu_stress::{CpuAccess, StressorCommand, StressorRef, script_deadline, start_stressor};
use super::{FaultEffects, FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, MemoryStressFault, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Placement, Platform, PlatformError, Target, host};
use crate::report::ProcessRef;

/// Prefix of every memory stressor's marker.
pub const MARKER_PREFIX: &str = "faultline-memory-";

/// The exec strategy allocates in `dd` buffers of this size.
const EXEC_CHUNK: u64 = 16 << 20;

/// The host allocator grows by this much at a time.
const HOST_CHUNK: usize = 4 << 20;

/// What revert (and the report) needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRecord {
    pub marker: String,
    pub access: CpuAccess,
    /// The bytes it holds (a `percent` resolved against the limit).
    pub bytes: u64,
    /// The OOM killer's count in the target's memory cgroup before the fault.
    #[serde(default)]
    pub oom_kills_before: Option<u64>,
    /// The kernel log's last record before the fault (host access): OOM reports after it
    /// that name the target's cgroup are this fault's.
    #[serde(default)]
    pub kernel_log_after: Option<u64>,
}

impl StressorRef for MemoryRecord {
    fn stressor(&self) -> (&str, Placement) {
        (&self.marker, self.access.in_container())
    }
}

/// A memory cgroup's limit and OOM count, from its files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupMemory {
    /// `None`: no limit (v2 `max`, or v1's page-rounded i64::MAX).
    pub limit: Option<u64>,
    pub oom_kills: Option<u64>,
}

/// A limit as written in `memory.max` (v2) or `memory.limit_in_bytes` (v1).
pub fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    // v1 writes "no limit" as i64::MAX rounded down to a page.
    (v < 1 << 62).then_some(v)
}

/// `oom_kill N` of `memory.events` (v2) or `memory.oom_control` (v1).
pub fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the memory cgroup among a target's cgroup directories (v2 first, then v1).
fn read_cgroup_memory(dirs: &[std::path::PathBuf]) -> Option<CgroupMemory> {
    for d in dirs {
        if let Ok(max) = std::fs::read_to_string(d.join("memory.max")) {
            let events = std::fs::read_to_string(d.join("memory.events")).unwrap_or_default();
            return Some(CgroupMemory {
                limit: parse_limit(&max),
                oom_kills: parse_oom_kills(&events),
            });
        }
        if let Ok(limit) = std::fs::read_to_string(d.join("memory.limit_in_bytes")) {
            let control = std::fs::read_to_string(d.join("memory.oom_control")).unwrap_or_default();
            return Some(CgroupMemory {
                limit: parse_limit(&limit),
                oom_kills: parse_oom_kills(&control),
            });
        }
    }
    None
}

/// The shell program that prints the container's own memory cgroup files (its cgroup is
/// what /sys/fs/cgroup shows inside it, on v1 and on v2 with a cgroup namespace).
const READ_INSIDE: &str = "d=/sys/fs/cgroup; \
    if [ -f $d/memory.max ]; then echo limit=$(cat $d/memory.max); f=$d/memory.events; \
    else echo limit=$(cat $d/memory/memory.limit_in_bytes); f=$d/memory/memory.oom_control; fi; \
    while read k v; do [ \"$k\" = oom_kill ] && echo oom_kill=$v; done < $f; true";

/// What [`READ_INSIDE`] printed.
pub fn parse_inside(stdout: &str) -> CgroupMemory {
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::to_string))
    };
    CgroupMemory {
        limit: value("limit=").as_deref().and_then(parse_limit),
        oom_kills: value("oom_kill=").and_then(|v| v.parse().ok()),
    }
}

async fn cgroup_memory(
    platform: &dyn Platform,
    target: &Target,
    access: CpuAccess,
) -> Result<CgroupMemory, PlatformError> {
    match access {
        CpuAccess::Host => {
            let dirs = platform.cgroups(target).await?;
            read_cgroup_memory(&dirs).ok_or_else(|| {
                PlatformError::Refused(format!(
                    "`{}` has no memory cgroup visible from here (is the memory controller enabled?)",
                    target.name
                ))
            })
        }
        CpuAccess::Exec => {
            let argv = ["sh", "-c", READ_INSIDE].map(str::to_string);
            let out = platform.exec(target, &argv).await?;
            Ok(parse_inside(&out.stdout))
        }
    }
}

/// The OOM kills the kernel log reports in the container's memory cgroup after `after`:
/// `oom-kill:...,oom_memcg=/docker/ID,task_memcg=...,task=NAME,pid=PID,...`.
pub fn oom_victims(records: &[(u64, String)], container_id: &str) -> Vec<ProcessRef> {
    records
        .iter()
        .filter_map(|(_, m)| {
            let rest = m.strip_prefix("oom-kill:")?;
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k).map(str::to_string))
            };
            if !field("oom_memcg=")?.contains(container_id) {
                return None;
            }
            Some(ProcessRef {
                pid: field("pid=")?.parse().ok()?,
                command: field("task=")?,
            })
        })
        .collect()
}

/// Allocates `bytes` evenly over `ramp`, writing every page, and holds them until the
/// epoch second `until`. The body of the hidden `faultline memhog` command.
pub fn hold(bytes: u64, ramp: Duration, until: u64) {
    let start = Instant::now();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut allocated = 0u64;
    while allocated < bytes && !host::past(until) {
        let due = if ramp.is_zero() {
            bytes
        } else {
            let share = (start.elapsed().as_secs_f64() / ramp.as_secs_f64()).min(1.0);
            (bytes as f64 * share) as u64
        };
        while allocated < due {
            let n = (bytes - allocated).min(HOST_CHUNK as u64) as usize;
            let mut chunk = vec![0u8; n];
            // A zeroed allocation is not charged until its pages are written.
            for page in chunk.iter_mut().step_by(4096) {
                *page = 1;
            }
            held.push(std::hint::black_box(chunk));
            allocated += n as u64;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    while !host::past(until) {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(held);
}

/// The shell program of the `exec` strategy: `dd` processes of [`EXEC_CHUNK`] bytes each
/// (the last one smaller), started evenly over `ramp_cs` centiseconds, each held by a
/// reader that never reads until `seconds` have passed ([`script_deadline`]). `$0`
/// carries the marker.
pub fn exec_script(bytes: u64, ramp_cs: u64, seconds: u64) -> String {
    let full = bytes / EXEC_CHUNK;
    let rest = bytes % EXEC_CHUNK;
    let chunks = full + u64::from(rest > 0);
    let step = ramp_cs / chunks.max(1);
    let sleep = if step == 0 {
        String::new()
    } else {
        format!("sleep {}.{:02};", step / 100, step % 100)
    };
    let deadline = script_deadline(seconds);
    format!(
        "{deadline} \
         hold() {{ while :; do read u _ </proc/uptime; n=${{u%.*}}${{u#*.}}; [ \"$n\" -ge \"$end\" ] && exit 0; sleep 1; done; }}; \
         i=0; while [ $i -lt {chunks} ]; do bs={EXEC_CHUNK}; [ $i -eq {full} ] && bs={rest}; \
         dd if=/dev/zero bs=$bs count=1 2>/dev/null | hold & i=$((i + 1)); {sleep} done; wait"
    )
}

impl MemoryStressFault {
    /// The ramp in effect: as written, else 5s or the whole duration when it is shorter.
    pub fn ramp(&self) -> crate::experiment::units::Duration {
        self.ramp
            .unwrap_or_else(|| crate::experiment::units::Duration::from_secs(5).min(self.duration))
    }

    fn amount(&self) -> String {
        let of_limit = |p| format!("{p} of the memory limit");
        super::disk_fill::amount(self.size.as_ref(), self.percent, of_limit)
    }
}

impl FaultSpec for MemoryStressFault {
    fault_timing!("memory_stress");

    fn describe(&self) -> String {
        format!(
            "memory_stress {} over {}, held for {}",
            self.amount(),
            self.ramp(),
            self.duration
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        super::disk_fill::validate_amount(
            p,
            "memory_stress",
            (self.size.as_ref(), self.percent),
            "needs how much memory: `size: 256MiB`, or `percent: 80` of the container's memory limit",
        );
        if let Some(ramp) = self.ramp.filter(|r| *r > self.duration) {
            p.err_at(
                "ramp",
                format!(
                    "`ramp` ({ramp}) is longer than `duration` ({}): the memory would never be held in full",
                    self.duration
                ),
            );
        }
    }
}

#[async_trait]
impl FaultKind for MemoryStressFault {
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let access = CpuAccess::chosen(self.strategy, platform, target, self.name()).await?;
        let memory = cgroup_memory(platform, target, access).await?;
        let bytes = match (&self.size, self.percent) {
            (Some(size), _) => size.bytes,
            (None, Some(pc)) => {
                let limit = memory.limit.ok_or_else(|| {
                    PlatformError::Refused(format!(
                        "`percent` is of the container's memory limit, and `{}` has none: set `size` instead, or give the container a limit (docker run --memory)",
                        target.name
                    ))
                })?;
                (limit as f64 * pc.0 / 100.0) as u64
            }
            (None, None) => return Err(super::mismatched(self)),
        };
        let kernel_log_after = match access {
            CpuAccess::Host => host::kernel_log(None)
                .ok()
                .and_then(|r| r.last().map(|(seq, _)| *seq)),
            CpuAccess::Exec => None,
        };
        Ok(Some(Undo::new(UndoRecord::FreeMemory {
            target: target.clone(),
            memory: MemoryRecord {
                marker: format!("{MARKER_PREFIX}{:016x}", rand::random::<u64>()),
                access,
                bytes,
                oom_kills_before: memory.oom_kills,
                kernel_log_after,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let memory = super::undo_part!(u, FreeMemory { memory }, self);
        let (bytes, ramp_ms) = (memory.bytes, self.ramp().as_millis());
        let command = match memory.access {
            CpuAccess::Host => StressorCommand::host(
                "memhog",
                [
                    ("--bytes", bytes.to_string()),
                    ("--ramp-ms", ramp_ms.to_string()),
                ],
            ),
            CpuAccess::Exec => StressorCommand::exec(move |s| exec_script(bytes, ramp_ms / 10, s)),
        };
        start_stressor(platform, target, memory, command, self.duration.std()).await
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# memory_stress runs in the target container itself through exec (strategy exec), so that it\n\
             # is charged to that container's cgroups: its image needs `sh`, `dd` and `sleep`.\n",
        )
    }

    /// The target pod read for its container, and exec into it (start, read the
    /// cgroup's counters, stop).
    fn rbac(&self) -> &'static [Permission] {
        rbac::EXEC_IN_TARGET
    }

    async fn effects(&self, platform: &dyn Platform, undo: &Undo) -> Option<FaultEffects> {
        let UndoRecord::FreeMemory { target, memory } = &undo.record else {
            return None;
        };
        let now = cgroup_memory(platform, target, memory.access).await.ok();
        let kills = match (memory.oom_kills_before, now.and_then(|m| m.oom_kills)) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        let victims = match (memory.access, memory.kernel_log_after) {
            (CpuAccess::Host, Some(after)) => host::kernel_log(Some(after))
                .map(|r| oom_victims(&r, &target.id))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let kills = kills.max(victims.len() as u64);
        (kills > 0).then(|| FaultEffects {
            oom_kills: Some(kills),
            oom_killed: victims,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_oom_counts_from_both_cgroup_versions() {
        assert_eq!(parse_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("max\n"), None);
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kills(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(v2), Some(2));
        assert_eq!(
            parse_inside("limit=536870912\noom_kill=1\n"),
            CgroupMemory {
                limit: Some(512 << 20),
                oom_kills: Some(1)
            }
        );
        assert_eq!(parse_inside("limit=max\n").limit, None);
    }

    #[test]
    fn oom_victims_are_those_of_the_container() {
        let id = "3f2a9c0d11e4";
        let log = vec![
            (10, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg=/docker/3f2a9c0d11e4aa,task_memcg=/docker/3f2a9c0d11e4aa,task=faultline,pid=4242,uid=0".to_string()),
            (11, "Memory cgroup out of memory: Killed process 4242 (faultline)".to_string()),
            (12, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=y,mems_allowed=0,oom_memcg=/docker/other,task_memcg=/docker/other,task=java,pid=7,uid=0".to_string()),
        ];
        assert_eq!(
            oom_victims(&log, id),
            vec![ProcessRef {
                pid: 4242,
                command: "faultline".into()
            }]
        );
    }

    #[test]
    fn the_exec_script_splits_the_memory_into_dd_buffers() {
        let s = exec_script((40 << 20) + 5, 500, 10);
        assert!(s.contains("-lt 3 ]"), "two full chunks and a rest: {s}");
        assert!(
            s.contains("[ $i -eq 2 ] && bs=8388613;"),
            "8 MiB + 5 B left: {s}"
        );
        assert!(s.contains("sleep 1.66;"), "5s over 3 chunks: {s}");
        assert!(s.contains("+ 1000 ))"), "10s in centiseconds");
        assert!(!exec_script(16 << 20, 0, 1).contains("sleep 0"));
    }
}
