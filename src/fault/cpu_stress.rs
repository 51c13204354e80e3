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

use serde::{Deserialize, Serialize};

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

/// Seconds since the epoch when a stressor of `duration` must have stopped on its own.
pub fn deadline(duration: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + duration + DEADLINE_MARGIN).as_secs()
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

/// A shell program that kills every process whose command line holds `marker` and prints
/// how many remain. The marker is split in the program text so that it does not match
/// itself.
pub fn exec_kill_script(marker: &str) -> String {
    let (a, b) = marker.split_at(MARKER_PREFIX.len());
    format!(
        "m1='{a}'; m2='{b}'; for round in 1 2 3; do n=0; for d in /proc/[0-9]*; do \
         c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) kill -9 \"${{d#/proc/}}\" 2>/dev/null; n=$((n + 1));; esac; done; \
         [ $n -eq 0 ] && break; sleep 0.1; done; \
         n=0; for d in /proc/[0-9]*; do c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) n=$((n + 1));; esac; done; echo \"remaining=$n\""
    )
}

/// Host PIDs whose command line contains `marker` (this machine's stressors).
pub fn host_pids_with_marker(marker: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .collect()
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

    #[test]
    fn the_kill_script_does_not_match_itself() {
        let marker = "faultline-stress-00000000deadbeef";
        let s = exec_kill_script(marker);
        assert!(!s.contains(marker));
        assert!(s.contains("00000000deadbeef"));
    }
}
