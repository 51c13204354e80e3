//! Resource faults end to end on real containers, each measured independently of
//! faultline's report: memory in the container's own memory cgroup, disk with `df` inside
//! the container, stop/restart with `docker inspect` and HTTP, process kill with `ps`.

mod support;

use std::time::Duration;

use support::*;

const MIB: f64 = 1024.0 * 1024.0;

/// One memory measurement at a time: two would disturb each other's baselines.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file of the container's memory cgroup (v1 under /sys/fs/cgroup/memory, or v2).
fn memory_file(id: &str, v1: &str, v2: &str) -> String {
    for p in [
        format!("/sys/fs/cgroup/memory/docker/{id}/{v1}"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/{v2}"),
        format!("/sys/fs/cgroup/docker/{id}/{v2}"),
    ] {
        if let Ok(v) = std::fs::read_to_string(&p) {
            return v;
        }
    }
    panic!("no memory cgroup found for container {id}");
}

/// The container's memory use in bytes, as its cgroup accounts it.
fn usage(id: &str) -> f64 {
    memory_file(id, "memory.usage_in_bytes", "memory.current")
        .trim()
        .parse()
        .unwrap()
}

/// How many times the OOM killer acted in the container's memory cgroup.
fn oom_kills(id: &str) -> u64 {
    memory_file(id, "memory.oom_control", "memory.events")
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .map(|v| v.trim().parse().unwrap())
        .expect("the kernel counts OOM kills per cgroup (4.13 and later)")
}

const MEMORY_MARKER: &str = "faultline-memory-";

/// Memory stressors anywhere on this host or inside the container.
fn allocators_left(name: &str) -> usize {
    let inside = docker(&[
        "exec",
        name,
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline 2>/dev/null",
    ]);
    host_processes(MEMORY_MARKER).len()
        + String::from_utf8_lossy(&inside.stdout)
            .matches(MEMORY_MARKER)
            .count()
}

/// Runs a memory_stress fault on a container limited to 512 MiB and returns (baseline,
/// usage at the end of the ramp, usage after revert) and the run's report.
fn measure(fault: &str, ramp: Duration) -> (f64, f64, f64, serde_json::Value) {
    let _serial = serial();
    let mut fleet = Fleet::new("memory");
    let web = fleet.web(&["--memory", "512m", "--memory-swap", "512m"]);
    let id = fleet.id(&web);
    // Running a tool in the container the first time brings the parts of its binary it
    // uses into the page cache, charged to the container and kept: the exec strategy and
    // the checks here run `sh`, `dd`, `cat` and `sleep`, so they are run once before the
    // baseline is taken.
    docker_ok(&[
        "exec",
        &web,
        "sh",
        "-c",
        "dd if=/dev/zero bs=1M count=1 2>/dev/null | cat >/dev/null; cat /proc/[0-9]*/cmdline >/dev/null; read u _ </proc/uptime; sleep 0.01",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = usage(&id);
    let exp = Experiment::new("memory").on(&fleet).fault(fault);
    let run = Run::experiment(&exp).json_report().spawn();
    // Within the ramp: the start of the run (targets, journal) plus the ramp, plus a
    // moment for the last chunk.
    std::thread::sleep(ramp + Duration::from_millis(1500));
    let held = usage(&id);
    let out = run.wait();
    out.expect(0);
    let report = out.report();
    assert_eq!(report["faults"][0]["status"], "reverted");
    // The memory is given back as the allocator ends; the kernel may take a moment.
    let mut after = usage(&id);
    wait_until(Duration::from_secs(5), || {
        after = usage(&id);
        (after - baseline).abs() <= back_to_baseline(baseline)
    });
    assert_eq!(allocators_left(&web), 0, "an allocator survived the revert");
    (baseline, held, after, report)
}

/// How close to its baseline the usage must come back: 5%, but no less than 512 KiB. A
/// busybox container uses about 2 MiB, and the page cache and kernel objects that merely
/// running `docker exec` and reading /proc charge to it move by 0.1-0.6 MiB (measured).
fn back_to_baseline(baseline: f64) -> f64 {
    (baseline * 0.05).max(0.5 * MIB)
}

#[track_caller]
fn assert_rise(baseline: f64, held: f64, after: f64, want: f64) {
    let rise = held - baseline;
    assert!(
        (rise - want).abs() <= want * 0.10,
        "usage rose by {:.1} MiB, want {:.1} MiB ±10% (baseline {:.1} MiB)",
        rise / MIB,
        want / MIB,
        baseline / MIB
    );
    assert!(
        (after - baseline).abs() <= back_to_baseline(baseline),
        "after revert usage is {:.2} MiB, baseline {:.2} MiB (±5%, at least 512 KiB)",
        after / MIB,
        baseline / MIB
    );
}

#[test]
fn memory_size_is_charged_to_the_container_and_given_back() {
    if !require_docker() {
        return;
    }
    let (baseline, held, after, report) = measure(
        "memory_stress: {size: 256MiB, ramp: 3s, duration: 8s}",
        Duration::from_secs(3),
    );
    assert_rise(baseline, held, after, 256.0 * MIB);
    assert!(report["faults"][0].get("effects").is_none(), "no OOM kill");
}

#[test]
fn memory_percent_is_of_the_container_limit() {
    if !require_docker() {
        return;
    }
    let (baseline, held, after, _) = measure(
        "memory_stress: {percent: 80, ramp: 3s, duration: 8s}",
        Duration::from_secs(3),
    );
    assert_rise(baseline, held, after, 0.8 * 512.0 * MIB);
}

#[test]
fn memory_exec_strategy_allocates_inside_the_container() {
    if !require_docker() {
        return;
    }
    let (baseline, held, after, _) = measure(
        "memory_stress: {size: 256MiB, ramp: 3s, duration: 8s, strategy: exec}",
        Duration::from_secs(3),
    );
    assert_rise(baseline, held, after, 256.0 * MIB);
}

#[test]
fn memory_above_the_limit_meets_the_oom_killer_of_that_container_only() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    let mut fleet = Fleet::new("memory-oom");
    let web = fleet.web(&["--memory", "512m", "--memory-swap", "512m"]);
    let bystander = fleet.web(&["--memory", "512m", "--memory-swap", "512m"]);
    let (id, other) = (fleet.id(&web), fleet.id(&bystander));
    let before = (oom_kills(&id), oom_kills(&other));
    let exp = Experiment::new("memory-oom")
        .on(&fleet)
        .only(&web)
        .fault("memory_stress: {size: 700MiB, ramp: 2s, duration: 5s}");
    let out = Run::experiment(&exp).json_report().output();
    out.expect(0);
    let report = out.report();
    // Measured by the kernel's own per-cgroup counter.
    assert!(
        oom_kills(&id) > before.0,
        "the OOM killer did not act in {web}"
    );
    assert_eq!(oom_kills(&other), before.1, "the bystander saw an OOM kill");
    assert!(running(&web) && running(&bystander));
    assert!(
        http_ok(&fleet.url(&web)),
        "the container's own server survived"
    );
    // And the report says so, naming the victim.
    let fx = &report["faults"][0]["effects"];
    assert!(fx["oom_kills"].as_u64().unwrap() >= 1, "{report:#}");
    let killed = fx["oom_killed"].as_array().expect("the victims are named");
    assert!(
        killed.iter().any(|p| p["command"] == "faultline"),
        "the allocator was the victim: {fx}"
    );
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "fault_effect")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        events.iter().any(|m| m.contains("OOM killer")),
        "{events:?}"
    );
    assert_eq!(allocators_left(&web), 0);
}

#[test]
fn memory_percent_without_a_limit_is_refused_clearly() {
    if !require_docker() {
        return;
    }
    let mut fleet = Fleet::new("memory-nolimit");
    let web = fleet.web(&[]);
    let exp = Experiment::new("memory-nolimit")
        .on(&fleet)
        .fault("memory_stress: {percent: 50, duration: 2s}");
    // (the default ramp, 5s, is shortened to a shorter duration)
    let out = Run::experiment(&exp).json_report().output();
    out.expect(4);
    let report = out.report();
    let error = report["faults"][0]["error"].as_str().unwrap();
    assert_contains(error, &["has none", "--memory", "size"]);
    assert_eq!(allocators_left(&web), 0);
}

/// `faultline validate` on one fault: exit 2 and each message at its line and column.
fn invalid(fault: &str, messages: &[&str]) {
    let exp = Experiment::new("bad").on_label("app", "web").fault(fault);
    let dir = tempfile::tempdir().unwrap();
    let file = exp.write(dir.path());
    let out = Run::new(["validate"]).arg(&file).output();
    out.expect(2);
    for m in messages {
        out.stderr_has(m);
    }
}

#[test]
fn memory_validation_says_what_to_write() {
    invalid(
        "memory_stress: {size: 256, duration: 5s}",
        &[
            "bad.yaml:6:27: faults[0].memory_stress.size: size `256` has no unit",
            "256MiB",
        ],
    );
    invalid(
        "memory_stress: {percent: 120, duration: 5s}",
        &["bad.yaml:6:", "percentage 120 is outside 0..100"],
    );
    invalid("memory_stress: {duration: 5s}", &["needs how much memory"]);
    invalid(
        "memory_stress: {size: 1GiB, percent: 5, duration: 5s}",
        &["not both"],
    );
    invalid(
        "memory_stress: {size: 1GiB, ramp: 10s, duration: 5s}",
        &["`ramp` (10s) is longer than `duration` (5s)"],
    );
}
