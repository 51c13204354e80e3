//! Experiments that compose (issue 20), on real containers: latency SLOs over the fault
//! window, command faults with a journaled rollback.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// How long one GET to `url` takes, measured here (the independent check).
fn time_get(url: &str) -> Duration {
    let start = Instant::now();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", url])
        .status()
        .expect("curl runs");
    assert!(out.success(), "curl {url} failed");
    start.elapsed()
}

/// A p95 bound of 300 ms on the API while a 2 s pause freezes a container: aimed at the
/// API, the pause breaks the bound (exit 1, the measured p95 in the report) although every
/// sample succeeds; aimed at a container off the request path, the same experiment passes.
#[test]
fn a_p95_bound_the_fault_breaks_fails_the_run_and_holds_without_it() {
    let Some(mut fleet) = docker_fleet("slo") else {
        return;
    };
    let api = fleet.web(&[]);
    let elsewhere = fleet.web(&[]);
    let url = fleet.url(&api);
    let experiment = |name: &str, victim: &str| {
        fleet
            .experiment(name)
            .only(victim)
            .during(
                "200ms",
                Probe::http(&url)
                    .named("api fast")
                    .timeout("5s")
                    .setting("latency", "{p95: 300ms}"),
            )
            .fault("pause: {duration: 2s}")
    };

    // The fault on the request path: a request made here while it is paused takes until
    // the thaw.
    let run = Run::experiment(&experiment("slo-broken", &api))
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&api)),
        "the API container was never paused"
    );
    let seen_here = time_get(&url);
    let out = run.wait();
    let r = out.expect(1).report();
    assert!(
        seen_here >= Duration::from_millis(800),
        "a request during the pause took only {seen_here:?}"
    );
    let p = &r["phases"]["during"]["probes"][0];
    assert_eq!(p["success_ratio"], 1.0, "every sample answered: {p}");
    let bound = &p["latency_bounds"][0];
    assert_eq!(bound["percentile"], "p95");
    assert_eq!(bound["bound_ms"], 300);
    assert_eq!(bound["passed"], false);
    let measured = bound["measured_ms"].as_u64().unwrap();
    assert!(measured >= 800, "measured p95 {measured}ms: {p}");
    assert_eq!(p["latency_ms"]["p95"].as_u64(), Some(measured));
    // The measured value agrees with the samples the report lists.
    let mut lat: Vec<u64> = p["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["latency_ms"].as_u64().unwrap())
        .collect();
    lat.sort_unstable();
    let rank = ((0.95 * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
    assert_eq!(lat[rank], measured, "{lat:?}");
    assert_contains(
        &event_message(&r, "verdict"),
        &[&format!("`api fast`: p95 {measured}ms > 300ms")],
    );
    assert!(!paused(&api));

    // The same experiment with the pause off the request path passes.
    let r = Run::experiment(&experiment("slo-held", &elsewhere))
        .json_report()
        .expect_report(0);
    let p = &r["phases"]["during"]["probes"][0];
    assert!(p["samples"].as_u64().unwrap() >= 5, "{p}");
    let bound = &p["latency_bounds"][0];
    assert_eq!(bound["passed"], true, "{p}");
    assert!(bound["measured_ms"].as_u64().unwrap() <= 300, "{p}");
    assert!(!paused(&elsewhere));
}

/// Whether `path` exists inside container `name` (asked through `docker exec`).
fn exists_in(name: &str, path: &str) -> bool {
    docker(&["exec", name, "sh", "-c", &format!("[ -e {path} ]")])
        .status
        .success()
}

/// The lines of `path` inside container `name` (none when it does not exist).
fn lines_in(name: &str, path: &str) -> Vec<String> {
    let out = docker(&["exec", name, "cat", path]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(ToString::to_string)
        .collect()
}

/// A command fault inside each target: `run` creates a file, the rollback counts itself
/// and removes it.
const FLAG_FAULT: &str = "command: {where: target, duration: DURATION, \
    run: [sh, -c, \"echo run >> /tmp/runs; touch /tmp/flag; echo flag set\"], \
    rollback: [sh, -c, \"echo rollback >> /tmp/rollbacks; rm /tmp/flag\"]}";

fn flag_fault(duration: &str) -> String {
    FLAG_FAULT.replace("DURATION", duration)
}

/// `where: target` runs inside each selected container: the file is there while the
/// fault is active and gone after; `where: host` runs once, where faultline runs. Both
/// commands' status, output and time are in the report.
#[test]
fn a_target_command_creates_a_file_and_its_rollback_removes_it() {
    let Some(mut fleet) = docker_fleet("cmd-flag") else {
        return;
    };
    let webs = fleet.webs(2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let host_log = dir.path().join("host.log");
    let exp = fleet
        .experiment("command-flag")
        .select("{mode: all}")
        .fault(&flag_fault("3s"))
        .fault(&format!(
            "command: {{run: [sh, -c, \"echo on >> {l}\"], rollback: [sh, -c, \"echo off >> {l}\"]}}",
            l = host_log.display()
        ));
    let run = Run::experiment(&exp).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(10), || webs
            .iter()
            .all(|w| exists_in(w, "/tmp/flag"))),
        "the flag never appeared in every target"
    );
    let r = run.wait().expect(0).report();
    for w in &webs {
        assert!(!exists_in(w, "/tmp/flag"), "{w} still has the flag");
        assert_eq!(lines_in(w, "/tmp/runs"), ["run"]);
        assert_eq!(lines_in(w, "/tmp/rollbacks"), ["rollback"]);
    }
    // The host command ran once, and rolled back when the other fault ended.
    assert_eq!(
        std::fs::read_to_string(&host_log)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        ["on", "off"]
    );
    let faults = r["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 3, "{faults:?}");
    for f in faults {
        assert_eq!(f["type"], "command");
        assert_eq!(f["status"], "reverted", "{f}");
        assert_eq!(f["effects"]["run"]["exit_code"], 0, "{f}");
        assert_eq!(f["effects"]["rollback"]["exit_code"], 0, "{f}");
        assert!(f["effects"]["run"]["duration_ms"].is_u64());
    }
    let in_targets: Vec<&serde_json::Value> =
        faults.iter().filter(|f| f["target"] != "host").collect();
    assert_eq!(in_targets.len(), 2);
    assert!(
        in_targets
            .iter()
            .all(|f| f["effects"]["run"]["output"] == "flag set")
    );
}

/// SIGKILL of faultline while the fault is active: the dead-man's switch runs the
/// journaled rollback, exactly once; a `recover` after it finds nothing and runs nothing.
#[test]
fn after_sigkill_mid_fault_the_rollback_runs_exactly_once() {
    let Some(mut fleet) = docker_fleet("cmd-kill") else {
        return;
    };
    let web = fleet.web(&[]);
    let state = StateDir::new();
    let exp = fleet
        .experiment("command-sigkill")
        .fault(&flag_fault("30s"));
    let run = Run::experiment(&exp).state(&state).spawn();
    assert!(
        wait_until(Duration::from_secs(10), || exists_in(&web, "/tmp/flag")),
        "the flag never appeared"
    );
    std::thread::sleep(Duration::from_millis(300));
    run.signal(nix::sys::signal::Signal::SIGKILL);
    let out = run.wait();
    assert_eq!(out.code, None, "faultline was killed");
    assert!(
        wait_until(Duration::from_secs(20), || !exists_in(&web, "/tmp/flag")),
        "the dead-man's switch did not roll back"
    );
    assert!(wait_until(Duration::from_secs(10), || state.open_entries() == 0));
    state.recover();
    assert_eq!(lines_in(&web, "/tmp/runs"), ["run"]);
    assert_eq!(lines_in(&web, "/tmp/rollbacks"), ["rollback"]);
}

/// A `run` that fails: the run is an error (exit 4), its own rollback runs once (it may
/// have half-done something) and every other fault is reverted.
#[test]
fn a_failing_run_exits_4_with_every_other_fault_reverted() {
    let Some(mut fleet) = docker_fleet("cmd-fail") else {
        return;
    };
    let web = fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let rollbacks = dir.path().join("rollbacks");
    let exp = fleet
        .experiment("command-fails")
        .fault("pause: {duration: 2s}")
        .fault(&format!(
            "command: {{after: 500ms, duration: 2s, \
             run: [sh, -c, \"echo half-done; exit 3\"], \
             rollback: [sh, -c, \"echo rollback >> {}\"]}}",
            rollbacks.display()
        ));
    let run = Run::experiment(&exp).json_report().spawn();
    let was_paused = wait_until(Duration::from_secs(10), || paused(&web));
    let r = run.wait().expect(4).report();
    assert!(was_paused, "the other fault was never applied");
    assert!(!paused(&web), "the pause was not reverted");
    assert_eq!(
        std::fs::read_to_string(&rollbacks)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        ["rollback"]
    );
    let faults = r["faults"].as_array().unwrap();
    let cmd = faults.iter().find(|f| f["type"] == "command").unwrap();
    assert_eq!(cmd["status"], "failed");
    let err = cmd["error"].as_str().unwrap();
    assert_contains(err, &["`run` exited 3", "half-done"]);
    let pause = faults.iter().find(|f| f["type"] == "pause").unwrap();
    assert_eq!(pause["status"], "reverted");
    assert_contains(&event_message(&r, "verdict"), &["every fault was reverted"]);
}

/// A scenario whose one step is a `parallel` group of two experiments on different
/// containers, pausing one for 3 s and the other for 2 s: the game day takes about the
/// time of the longer one, the two runs overlap, both containers were paused at the same
/// moment, and the highest exit code wins.
#[test]
fn a_parallel_group_finishes_in_about_the_time_of_the_longer_experiment() {
    let Some(mut fleet) = docker_fleet("parallel") else {
        return;
    };
    let (a, b) = (fleet.web(&[]), fleet.web(&[]));
    let dir = tempfile::tempdir().unwrap();
    fleet
        .experiment("pause-a")
        .only(&a)
        .fault("pause: {duration: 3s}")
        .write(dir.path());
    // Fails on purpose (its during probe never answers in 100 ms): exit 1 must win.
    fleet
        .experiment("pause-b")
        .only(&b)
        .during(
            "200ms",
            Probe::http(&fleet.url(&b))
                .timeout("100ms")
                .named("b answers"),
        )
        .fault("pause: {duration: 2s}")
        .write(dir.path());
    let file = write(
        dir.path(),
        "together.yaml",
        "version: 1\nkind: scenario\nname: together\nexperiments:\n  - parallel:\n      - file: pause-a.yaml\n      - file: pause-b.yaml\n",
    );
    let out_dir = dir.path().join("out");
    let start = Instant::now();
    let run = Run::new(["gameday"])
        .arg(&file)
        .arg("--out-dir")
        .arg(&out_dir)
        .spawn();
    let both_paused = wait_until(Duration::from_secs(10), || paused(&a) && paused(&b));
    let out = run.wait();
    let took = start.elapsed();
    out.expect(1);
    assert!(both_paused, "the two containers were never paused at once");
    // One after the other would take 5 s of pauses alone.
    assert!(
        took < Duration::from_millis(4500),
        "the group took {took:?}"
    );
    assert!(took >= Duration::from_secs(3), "the group took {took:?}");
    let runs: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let report = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(runs[0].join(f)).unwrap()).unwrap()
    };
    let (ra, rb) = (report("01-pause-a.json"), report("02-pause-b.json"));
    assert_eq!(ra["verdict"], "passed");
    assert_eq!(rb["verdict"], "failed");
    let at = |r: &serde_json::Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(r[k].as_str().unwrap()).unwrap()
    };
    // The two runs overlap in time.
    assert!(at(&ra, "started_at") < at(&rb, "ended_at"));
    assert!(at(&rb, "started_at") < at(&ra, "ended_at"));
    assert!(!paused(&a) && !paused(&b));
}
