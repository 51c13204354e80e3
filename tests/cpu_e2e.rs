//! CPU stress end to end: CPU use read from the container's own cgroup accounting over
//! the fault window, for both strategies, with and without a CPU limit.

mod support;

use std::time::Duration;

use support::*;

/// Stressors anywhere on the host (this test runs one measurement at a time) or inside
/// the container.
fn stressors_left(name: &str) -> usize {
    host_processes(STRESS_MARKER).len() + stressors_inside(name)
}

/// One test at a time: two measurements would compete for this machine's two cores, and
/// stressors are looked for host-wide.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a cpu_stress fault and returns the container's CPU use in percent of one core,
/// measured over the middle of the fault window.
fn measured_share(strategy: &str, workers: u32, load: u32, limit: Option<&str>) -> f64 {
    let _serial = serial();
    let mut fleet = Fleet::new(&format!("cpu-{strategy}-{load}"));
    let web = match limit {
        Some(l) => fleet.web(&["--cpus", l]),
        None => fleet.web(&[]),
    };
    let id = fleet.id(&web);
    let exp = Experiment::new("cpu").on(&fleet).fault(&format!(
        "cpu_stress: {{workers: {workers}, load: {load}, duration: 6s, strategy: {strategy}}}"
    ));
    let run = Run::experiment(&exp).spawn();
    std::thread::sleep(Duration::from_millis(1500));
    let a = cpu_ns(&id);
    let host_a = host_cpu();
    let t = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let b = cpu_ns(&id);
    let host_b = host_cpu();
    let share = (b - a) as f64 / t.elapsed().as_nanos() as f64 * 100.0;
    run.wait().expect(0);
    assert_eq!(stressors_left(&web), 0, "a stressor survived the revert");
    // Said with a failure: a machine with no idle CPU cannot give the stressor its share.
    let (busy, total) = (host_b.0 - host_a.0, host_b.1 - host_a.1);
    eprintln!(
        "{strategy}: {share:.1}% of a core; the host was {:.0}% busy over the window (load {})",
        busy as f64 / total.max(1) as f64 * 100.0,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    share
}

/// The host's busy and total CPU time in ticks, from /proc/stat.
fn host_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .expect("the cpu line")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    // idle and iowait
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn half_a_core(strategy: &str) {
    if !require_docker() {
        return;
    }
    let share = measured_share(strategy, 1, 50, None);
    assert!(
        (40.0..=60.0).contains(&share),
        "{strategy}: workers 1, load 50 used {share:.1}% of a core"
    );
}

fn capped_by_the_limit(strategy: &str) {
    if !require_docker() {
        return;
    }
    let share = measured_share(strategy, 2, 100, Some("0.5"));
    assert!(
        (38.0..=56.0).contains(&share),
        "{strategy}: 2 workers at 100% under --cpus 0.5 used {share:.1}%"
    );
}

#[test]
fn host_strategy_burns_half_a_core() {
    half_a_core("host");
}

#[test]
fn exec_strategy_burns_half_a_core() {
    half_a_core("exec");
}

#[test]
fn host_strategy_counts_against_the_container_limit() {
    capped_by_the_limit("host");
}

#[test]
fn exec_strategy_counts_against_the_container_limit() {
    capped_by_the_limit("exec");
}

/// Seconds between two RFC 3339 timestamps of a report.
fn seconds_between(from: &serde_json::Value, to: &serde_json::Value) -> f64 {
    let at = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
            .expect("RFC 3339")
            .timestamp_millis()
    };
    (at(to) - at(from)) as f64 / 1000.0
}

/// Regression (issue 18): a CPU stress overlapping a pause was reverted only after the
/// unpause (7.06 s for 6 s). Each fault ends on its own schedule: the stressor is gone
/// while the container is still paused.
fn stress_ends_inside_a_pause(strategy: &str) {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    let mut fleet = Fleet::new(&format!("cpu-pause-{strategy}"));
    let web = fleet.web(&[]);
    let exp = Experiment::new("cpu-in-pause")
        .on(&fleet)
        .fault(&format!(
            "cpu_stress: {{workers: 1, load: 50, duration: 3s, strategy: {strategy}}}"
        ))
        .fault("pause: {after: 1s, duration: 5s}");
    let run = Run::experiment(&exp).json_report().spawn();
    std::thread::sleep(Duration::from_millis(4500));
    assert!(paused(&web), "the pause still holds at 4.5 s");
    assert!(
        host_processes(STRESS_MARKER).is_empty(),
        "{strategy}: the stressor outlived its 3 s inside the pause"
    );
    let r = run.wait().expect(0).report();
    let cpu = &r["faults"][0];
    assert_eq!(cpu["type"], "cpu_stress");
    assert_eq!(cpu["status"], "reverted");
    let held = seconds_between(&cpu["injected_at"], &cpu["reverted_at"]);
    assert!(
        (2.9..3.8).contains(&held),
        "{strategy}: cpu_stress held {held:.2}s for 3s"
    );
    assert!(!paused(&web), "the pause was reverted too");
    assert_eq!(stressors_left(&web), 0);
}

#[test]
fn host_stress_ends_on_its_own_schedule_inside_a_pause() {
    stress_ends_inside_a_pause("host");
}

#[test]
fn exec_stress_ends_on_its_own_schedule_inside_a_pause() {
    stress_ends_inside_a_pause("exec");
}
