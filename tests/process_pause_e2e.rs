//! `process_pause` end to end on real containers: one process of a container is stopped
//! while its web server keeps answering, measured independently of faultline's report
//! (the process's state in the host's /proc, the ticks it writes, HTTP), and continued at
//! revert, by `recover` after a crash, and by the dead-man's switch.

mod support;

use std::time::Duration;

use support::*;

/// The counter's script inside the container: a tick per 100 ms into /tmp/ticks.
const COUNTER: &str = "while :; do echo t >> /tmp/ticks; sleep 0.1; done";

/// A web container (httpd) with a second process, `sh /tmp/counter.sh`; returns the
/// fleet, the container and the counter's PID on this host.
fn web_with_counter(test: &str) -> Option<(Fleet, String, i32)> {
    let mut fleet = docker_fleet(test)?;
    let web = fleet.web(&[]);
    docker_ok(&[
        "exec",
        &web,
        "sh",
        "-c",
        &format!("echo '{COUNTER}' > /tmp/counter.sh"),
    ]);
    docker_ok(&["exec", "-d", &web, "sh", "/tmp/counter.sh"]);
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            pid = host_pid(&web, "sh /tmp/counter.sh");
            pid.is_some()
        }),
        "the counter did not start"
    );
    Some((fleet, web, pid.unwrap()))
}

/// The host PID of the container's process whose command line is `command`.
fn host_pid(name: &str, command: &str) -> Option<i32> {
    docker_ok(&["top", name, "-o", "pid,args"])
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().split_once(char::is_whitespace))
        .find(|(_, args)| args.trim() == command)
        .and_then(|(pid, _)| pid.parse().ok())
}

/// The process's state letter from the host's `/proc/PID/status` (`T` stopped, `S`
/// sleeping, `R` running).
fn state(pid: i32) -> char {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|s| s.trim().chars().next())
        .unwrap()
}

/// Ticks the counter has written so far, read inside the container.
fn ticks(web: &str) -> usize {
    docker_ok(&["exec", web, "sh", "-c", "cat /tmp/ticks 2>/dev/null"])
        .lines()
        .count()
}

/// Whether the counter writes ticks over half a second.
fn counting(web: &str) -> bool {
    let before = ticks(web);
    std::thread::sleep(Duration::from_millis(500));
    ticks(web) > before
}

fn pause_counter(fleet: &Fleet, duration: &str) -> Experiment {
    Experiment::new("process-pause").on(fleet).fault(&format!(
        "process_pause: {{process: \"^sh /tmp/counter\\\\.sh$\", duration: {duration}}}"
    ))
}

#[test]
fn only_the_matching_process_is_stopped_and_it_is_continued_at_revert() {
    let Some((fleet, web, pid)) = web_with_counter("process-pause") else {
        return;
    };
    let httpd = host_pid(&web, "httpd -f -p 80 -h /www").expect("httpd runs");
    assert!(counting(&web));
    let url = fleet.url(&web);
    let exp = pause_counter(&fleet, "4s").during("200ms", Probe::http(&url).min_success(1.0));
    let run = Run::experiment(&exp)
        .json_report()
        .spawn_until("the counter stopped", || state(pid) == 'T');
    // During the fault: the counter is stopped and writes nothing; httpd is not stopped
    // and answers.
    assert!(!counting(&web), "the stopped counter still writes ticks");
    assert_eq!(state(pid), 'T');
    assert_ne!(state(httpd), 'T');
    assert!(http_ok(&url), "the server does not answer during the fault");
    assert!(running(&web), "the container keeps running");
    let out = run.wait();
    out.expect(0);
    let report = out.report();
    assert_first_fault(&report, "process_pause", "reverted");
    let stopped = report["faults"][0]["effects"]["signalled"]
        .as_array()
        .unwrap();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["command"], "sh /tmp/counter.sh");
    assert_eq!(stopped[0]["pid"], i64::from(pid));
    // After: running again, and counting.
    assert!(matches!(state(pid), 'S' | 'R'), "state {}", state(pid));
    assert!(
        counting(&web),
        "the counter does not count after the revert"
    );
}

#[test]
fn nothing_matching_is_refused_naming_the_processes_there_are() {
    let Some((fleet, web, pid)) = web_with_counter("process-pause-nomatch") else {
        return;
    };
    let exp = Experiment::new("process-pause-nomatch")
        .on(&fleet)
        .fault("process_pause: {process: java, duration: 2s}");
    let error = Run::refusal(&exp);
    assert_contains(&error, &["no process in", "/java/", "httpd", "counter.sh"]);
    assert_ne!(state(pid), 'T');
    assert!(counting(&web));
}

#[test]
fn a_process_someone_else_stopped_is_not_taken_over() {
    let Some((fleet, web, pid)) = web_with_counter("process-pause-taken") else {
        return;
    };
    let stop = |sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    stop(nix::sys::signal::Signal::SIGSTOP);
    assert!(wait_until(Duration::from_secs(2), || state(pid) == 'T'));
    let error = Run::refusal(&pause_counter(&fleet, "2s"));
    assert_contains(&error, &["already stopped", "counter.sh", "refusing"]);
    // Neither continued at a revert nor by the refusal: still stopped, as its owner left it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(pid), 'T');
    stop(nix::sys::signal::Signal::SIGCONT);
    assert!(wait_until(Duration::from_secs(2), || counting(&web)));
}

#[test]
fn recover_continues_the_process_after_a_sigkill() {
    let Some((fleet, web, pid)) = web_with_counter("process-pause-recover") else {
        return;
    };
    let state_dir = Run::experiment(&pause_counter(&fleet, "60s"))
        .sigkilled_once("the counter stopped", || state(pid) == 'T');
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(pid), 'T', "SIGKILL left the process stopped");
    assert_eq!(state_dir.open_entries(), 1);
    let out = state_dir.recover();
    assert_ne!(
        state(pid),
        'T',
        "recover did not continue it:\n{}",
        out.stdout
    );
    assert!(counting(&web));
    assert!(state_dir.is_clean());
}

#[test]
fn the_dead_mans_switch_continues_the_process() {
    let Some((fleet, web, pid)) = web_with_counter("process-pause-deadman") else {
        return;
    };
    let state_dir = StateDir::new();
    let run = Run::experiment(&pause_counter(&fleet, "60s"))
        .state(&state_dir)
        .spawn_until("the counter stopped", || state(pid) == 'T');
    run.signal(nix::sys::signal::Signal::SIGKILL);
    run.wait();
    assert!(
        wait_until(Duration::from_secs(15), || state(pid) != 'T'),
        "the dead-man's switch did not continue the process"
    );
    assert!(wait_until(Duration::from_secs(5), || state_dir.is_clean()));
    assert!(counting(&web));
}

#[test]
fn process_pause_validation() {
    assert_invalid_fault(
        "process_pause: {process: \"(\", duration: 2s}",
        &["`process` is not a valid regular expression"],
    );
    assert_invalid_fault(
        "process_pause: {process: \"\", duration: 2s}",
        &["`process` is empty", "use `pause`"],
    );
}
