//! CPU stress end to end: CPU use read from the container's own cgroup accounting over
//! the fault window, for both strategies, with and without a CPU limit.

mod support;

use std::time::Duration;

use support::*;

/// The container's CPU time in nanoseconds, from its cgroup (v1 cpuacct or v2 cpu.stat).
fn cpu_ns(id: &str) -> u64 {
    for p in [
        format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage"),
    ] {
        if let Ok(v) = std::fs::read_to_string(&p) {
            return v.trim().parse().unwrap();
        }
    }
    for p in [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat"),
        format!("/sys/fs/cgroup/docker/{id}/cpu.stat"),
    ] {
        if let Ok(s) = std::fs::read_to_string(&p) {
            let usec: u64 = s
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            return usec * 1000;
        }
    }
    panic!("no CPU accounting found for container {id}");
}

/// Stressors anywhere on the host (this test runs one measurement at a time) or inside
/// the container.
fn stressors_left(name: &str) -> usize {
    host_processes(STRESS_MARKER).len() + stressors_inside(name)
}

/// Runs a cpu_stress fault and returns the container's CPU use in percent of one core,
/// measured over the middle of the fault window.
fn measured_share(strategy: &str, workers: u32, load: u32, limit: Option<&str>) -> f64 {
    // One measurement at a time: two would compete for this machine's two cores.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
    let t = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let b = cpu_ns(&id);
    let share = (b - a) as f64 / t.elapsed().as_nanos() as f64 * 100.0;
    run.wait().expect(0);
    assert_eq!(stressors_left(&web), 0, "a stressor survived the revert");
    share
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
