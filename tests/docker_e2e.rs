//! End to end against the real Docker engine: the binary, real containers, and what a
//! user would observe (`docker inspect`, `docker events`, the JSON report).

mod support;

use std::time::{Duration, Instant};

use support::*;

/// The names of the report's targets.
fn target_names(r: &serde_json::Value) -> Vec<String> {
    r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn has_event(r: &serde_json::Value, kind: &str) -> bool {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == kind)
}

/// One web container, and an experiment named `test` that pauses it for `pause` while a
/// probe sampled every 100ms demands an answer within 200ms each time.
fn pause_under_a_strict_probe(test: &str, pause: &str) -> Option<(Fleet, String, Experiment)> {
    let mut fleet = docker_fleet(test)?;
    let web = fleet.web(&[]);
    let always = Probe::http(&fleet.url(&web)).timeout("200ms");
    let exp = fleet
        .experiment(test)
        .during("100ms", always.named("must always answer"))
        .fault(&format!("pause: {{duration: {pause}}}"));
    Some((fleet, web, exp))
}

#[test]
fn pausing_one_of_two_web_containers() {
    let Some(mut fleet) = docker_fleet("pause") else {
        return;
    };
    let [web1, web2] = [fleet.web(&[]), fleet.web(&[])];
    let url = fleet.url(&web1);
    let exp = fleet
        .experiment("pause-one-web")
        .only(&web1)
        .steady(
            Probe::http(&url)
                .with("status", "[200]")
                .timeout("1s")
                .named("web answers"),
        )
        .during(
            "100ms",
            Probe::http(&url)
                .timeout("200ms")
                .min_success(0.0)
                .named("paused web"),
        )
        .fault("pause: {duration: 2s}")
        .recovery("10s", "100ms");
    let run = Run::experiment(&exp).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web1)),
        "docker inspect never showed the target paused during the fault"
    );
    assert!(!paused(&web2), "only the selected container is paused");
    let out = run.wait();
    out.expect(0);
    assert!(!paused(&web1), "the target is unpaused after the run");
    assert!(running(&web1));
    let r = out.report();
    assert_eq!(r["verdict"], "passed");
    assert_eq!(r["targets"][0]["name"], web1.as_str());
    assert_eq!(r["faults"][0]["type"], "pause");
    assert_eq!(r["faults"][0]["status"], "reverted");
    let during = &r["phases"]["during"]["probes"][0];
    assert!(during["samples"].as_u64().unwrap() >= 5, "{during}");
    assert!(
        during["success_ratio"].as_f64().unwrap() < 1.0,
        "a paused server cannot answer: {during}"
    );
    assert!(r["phases"]["after"]["recovered_after_ms"].is_u64());
}

#[test]
fn a_failing_during_bar_fails_the_run_with_exit_1() {
    let Some((_fleet, web, exp)) = pause_under_a_strict_probe("pause-fails-bar", "1s") else {
        return;
    };
    let r = Run::experiment(&exp).json_report().expect_report(1);
    assert_eq!(r["verdict"], "failed");
    assert_eq!(r["phases"]["during"]["passed"], false);
    assert!(
        r["phases"]["before"].is_null(),
        "no steady_state: the phase is null"
    );
    assert!(!paused(&web));
}

#[test]
fn abort_on_failure_reverts_early() {
    let Some((_fleet, web, exp)) = pause_under_a_strict_probe("abort-early", "20s") else {
        return;
    };
    let exp = exp.abort_on_failure();
    let start = Instant::now();
    let out = Run::experiment(&exp).json_on_stdout().output();
    out.expect(1);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the 20s pause was not cut short"
    );
    let r = out.report();
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(has_event(&r, "abort"));
    assert!(!paused(&web));
}

#[test]
fn killing_a_container_with_restart_policy_always_reports_recovery() {
    let Some(mut fleet) = docker_fleet("kill") else {
        return;
    };
    let web = fleet.web(&["--restart", "always"]);
    let id_before = fleet.id(&web);
    let exp = fleet
        .experiment("kill-restarts")
        .steady(Probe::running(&fleet, 1).named("one running"))
        .fault("kill: {signal: SIGKILL}")
        .recovery("20s", "100ms");
    let r = Run::experiment(&exp).json_report().expect_report(0);
    assert_eq!(r["faults"][0]["type"], "kill");
    assert_eq!(r["faults"][0]["status"], "completed");
    assert_eq!(
        inspect(&web, "{{.RestartCount}}"),
        "1",
        "the container was really killed and restarted"
    );
    assert_eq!(fleet.id(&web), id_before);
    let recovered = r["phases"]["after"]["recovered_after_ms"]
        .as_u64()
        .expect("recovery time reported");
    assert!(recovered < 20_000);
}

#[test]
fn steady_state_failing_before_touches_nothing() {
    let Some((fleet, web)) = one_web("notsteady") else {
        return;
    };
    assert!(!docker_ok(&["version", "-f", "{{.Server.Version}}"]).is_empty());
    let start = now_secs();
    let impossible = Probe::command("[sh, -c, \"exit 1\"]")
        .named("impossible")
        .setting("retries", "1")
        .setting("retry_interval", "100ms");
    let exp = fleet
        .experiment("not-steady")
        .steady(impossible)
        .fault("pause: {duration: 1s}")
        .fault("kill: {}");
    let r = Run::experiment(&exp).json_on_stdout().expect_report(3);
    assert_eq!(r["verdict"], "not_steady");
    assert_eq!(r["phases"]["before"]["probes"][0]["attempts"], 2);
    assert!(r["faults"].as_array().unwrap().is_empty());
    assert!(r["phases"]["during"].is_null() && r["phases"]["after"].is_null());
    assert!(running(&web) && !paused(&web));
    let touched: Vec<String> = docker_events(&start, &[format!("container={web}")])
        .into_iter()
        .filter(|a| ["pause", "kill", "die", "stop"].contains(&a.as_str()))
        .collect();
    assert!(touched.is_empty(), "the target was touched: {touched:?}");
}

#[test]
fn a_selector_that_matches_nothing_is_no_targets() {
    if !require_docker() {
        return;
    }
    let exp = Experiment::new("no-match")
        .on_nothing()
        .fault("pause: {duration: 1s}");
    let r = Run::experiment(&exp).json_on_stdout().expect_report(3);
    assert_eq!(r["verdict"], "no_targets");
    assert!(r["targets"].as_array().unwrap().is_empty());
}

#[test]
fn count_percent_and_seed_select_the_same_containers_each_time() {
    let Some(mut fleet) = docker_fleet("seed") else {
        return;
    };
    fleet.webs(5, &[]);
    let chosen = |select: &str, seed: u64| -> Vec<String> {
        let exp = fleet
            .experiment("seeded")
            .select(select)
            .fault("pause: {duration: 100ms}");
        let seed_arg = seed.to_string();
        let r = Run::experiment(&exp)
            .args(["--seed", &seed_arg, "--report", "json"])
            .expect_report(0);
        assert_eq!(r["seed"], seed);
        target_names(&r)
    };
    let a = chosen("{mode: count, value: 2}", 11);
    assert_eq!(a.len(), 2);
    assert_eq!(chosen("{mode: count, value: 2}", 11), a);
    let p = chosen("{mode: percent, value: 50}", 5);
    assert_eq!(p.len(), 3, "50% of 5 rounds up to 3");
    assert_eq!(chosen("{mode: percent, value: 50}", 5), p);
    let differs = (12..20).any(|seed| chosen("{mode: count, value: 2}", seed) != a);
    assert!(differs, "another seed picks other containers");
}

#[test]
fn plan_and_dry_run_resolve_real_targets_and_touch_nothing() {
    let Some((_fleet, web, exp)) = one_web_with("dry", "pause: {duration: 30s}") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = exp.write(dir.path());
    for args in [vec!["plan"], vec!["run", "--dry-run"]] {
        Run::new(&args)
            .arg(&file)
            .output()
            .expect(0)
            .stdout_has(&web)
            .stdout_has("Nothing was touched");
        assert!(!paused(&web));
    }
}

#[test]
fn an_unreachable_daemon_is_exit_4_and_nothing_is_touched() {
    let exp = Experiment::new("unreachable")
        .docker("host: \"unix:///nonexistent/docker.sock\", labels: {app: web}")
        .fault("pause: {duration: 1s}");
    Run::experiment(&exp)
        .output()
        .expect(4)
        .stderr_has("cannot reach Docker at unix:///nonexistent/docker.sock")
        .stderr_has("nothing was touched");
}

#[test]
fn a_container_removed_mid_fault_is_reported_not_a_crash() {
    let Some((_fleet, web, exp)) = one_web_with("vanish", "pause: {duration: 3s}") else {
        return;
    };
    let state = StateDir::new();
    let run = Run::experiment(&exp).json_on_stdout().state(&state).spawn();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    docker_ok(&["rm", "-f", &web]);
    let out = run.wait();
    let r = out.report();
    out.expect(0);
    let error = r["faults"][0]["error"].as_str().unwrap();
    assert!(error.contains("vanished"), "{}", r["faults"][0]);
    assert!(has_event(&r, "target_vanished"));
    assert!(state.is_clean(), "the journal entry stayed open");
}

#[test]
fn a_large_blast_radius_needs_yes() {
    let Some(mut fleet) = docker_fleet("blast") else {
        return;
    };
    fleet.webs(4, &[]);
    let exp = fleet
        .experiment("all-four")
        .select("{mode: all}")
        .fault("pause: {duration: 200ms}");
    let start = now_secs();
    Run::experiment(&exp)
        .output()
        .expect(2)
        .stderr_has("needs confirmation: pass --yes")
        .stderr_has("nothing was touched");
    let group = format!("label=fltest.group={}", fleet.label());
    let events = docker_events(&start, &[group, "event=pause".into()]);
    assert!(events.is_empty(), "a container was paused: {events:?}");
    let r = Run::experiment(&exp)
        .args(["--yes", "--report", "json"])
        .expect_report(0);
    assert_eq!(r["faults"].as_array().unwrap().len(), 4);
}

#[test]
fn protected_containers_are_never_selected() {
    let Some(mut fleet) = docker_fleet("protected") else {
        return;
    };
    let open = fleet.web(&[]);
    let guarded = fleet.web(&["--label", "faultline.protected=true"]);
    let exp = fleet
        .experiment("protected")
        .select("{mode: all}")
        .fault("pause: {duration: 100ms}");
    let r = Run::experiment(&exp).json_on_stdout().expect_report(0);
    let names = target_names(&r);
    assert_eq!(names, vec![open.clone()]);
    assert!(!names.contains(&guarded));
}

#[test]
fn the_audit_log_records_every_action_and_no_secret() {
    let Some(mut fleet) = docker_fleet("audit") else {
        return;
    };
    fleet.webs(2, &["--restart", "always"]);
    let exp = fleet
        .experiment("audited")
        .select("{mode: all}")
        .fault("pause: {duration: 200ms}")
        // busybox httpd as PID 1 has no handler for SIGTERM: the containers survive it,
        // which the kill now reports (status `survived`) instead of passing as completed.
        .fault("kill: {signal: \"${env:FAULTLINE_TEST_SIGNAL}\", after: 300ms, grace_period: 1s, expect: survive}");
    let (state, dir) = (StateDir::new(), tempfile::tempdir().unwrap());
    let audit = dir.path().join("audit.jsonl");
    Run::experiment(&exp)
        .arg("--audit-log")
        .arg(&audit)
        .env("FAULTLINE_TEST_SIGNAL", "SIGTERM")
        .state(&state)
        .output()
        .expect(0);
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |action: &str, fault: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["fault"] == fault)
            .count()
    };
    assert_eq!(count("inject", "pause"), 2);
    assert_eq!(count("revert", "pause"), 2);
    assert_eq!(count("inject", "kill"), 2);
    for r in &records {
        for key in [
            "at",
            "user",
            "host",
            "experiment",
            "target",
            "parameters",
            "result",
        ] {
            assert!(r[key].is_string(), "audit record lacks {key}: {r}");
        }
    }
    assert!(
        !text.contains("SIGTERM"),
        "a value from the environment reached the audit log: {text}"
    );
    assert!(text.contains("kill with ***"));
}

#[test]
fn a_third_interrupt_quits_and_recover_finishes_the_job() {
    let Some((_fleet, web, exp)) = one_web_with("sigint3", "pause: {duration: 30s}") else {
        return;
    };
    let state = StateDir::new();
    let run = Run::experiment(&exp)
        .state(&state)
        .no_dead_mans_switch()
        .spawn();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    for _ in 0..3 {
        run.interrupt();
        std::thread::sleep(Duration::from_millis(5));
    }
    run.wait()
        .expect(130)
        .stderr_has("reverting every active fault");
    state.recover();
    assert!(!paused(&web), "recover left the container paused");
    assert!(state.is_clean());
}

#[test]
fn notifications_and_metrics_never_change_the_verdict() {
    let Some(mut fleet) = docker_fleet("notify") else {
        return;
    };
    fleet.web(&[]);
    let exp = fleet
        .experiment("notified")
        .fault("pause: {duration: 200ms}");
    let hooks = Receiver::start();
    let url = format!("{}/hook", hooks.url);
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("faultline.prom");
    Run::experiment(&exp)
        .args(["--notify", &url, "--notify", "http://127.0.0.1:1/down"])
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--pushgateway", "http://127.0.0.1:1"])
        .output()
        .expect(0);
    let got = hooks.received();
    let events: Vec<&str> = got
        .iter()
        .map(|r| r.body["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["run_started", "run_finished"]);
    let finished = &got[1].body;
    assert_eq!(finished["verdict"], "passed");
    assert!(finished["text"].as_str().unwrap().contains("notified"));
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("faultline_run_exit_code{experiment=\"notified\"} 0"),
        "{text}"
    );
}

#[test]
fn the_demo_runs_and_removes_itself() {
    if !require_docker() {
        return;
    }
    let state = StateDir::new();
    Run::new(["demo"])
        .state(&state)
        .output()
        .expect(0)
        .stdout_has("Verdict: PASSED")
        .stdout_has("pause for 3s");
    let left = docker_ok(&["ps", "-aq", "--filter", "label=faultline.demo=true"]);
    assert!(left.is_empty(), "the demo left containers: {left}");
    let networks = docker_ok(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=faultline.demo=true",
    ]);
    assert!(networks.is_empty(), "the demo left its network");
}

/// A container someone else paused is no candidate: the run stops with no target (exit
/// 3) and leaves it paused, since unpausing it would undo their action. (A pause between
/// selection and injection is refused by the platform's freeze, tested in the library.)
#[test]
fn a_container_paused_by_someone_else_is_passed_over_and_left_paused() {
    let Some(mut fleet) = docker_fleet("pause-taken") else {
        return;
    };
    let web = fleet.web(&[]);
    docker_ok(&["pause", &web]);
    let exp = fleet
        .experiment("pause-taken")
        .only(&web)
        .fault("pause: {duration: 2s}");
    let out = Run::experiment(&exp).json_report().output();
    out.expect(3);
    assert_eq!(out.report()["verdict"], "no_targets");
    assert!(
        paused(&web),
        "faultline unpaused a container it did not pause"
    );
    docker_ok(&["unpause", &web]);
}
