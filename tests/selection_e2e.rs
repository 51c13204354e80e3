//! What a selection tells the user (issue 18): fewer matches than requested is said in
//! every report, `select.min` refuses to run on too few, and `plan` exits with the code
//! the run would start with. Against the real Docker engine; effects checked with the
//! docker CLI.

mod support;

use support::*;

fn experiment(fleet: &Fleet, select: &str) -> String {
    format!(
        "version: 1\nname: short-selection\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {select}\nfaults:\n  - pause: {{duration: 300ms}}\n",
        fleet.label()
    )
}

#[test]
fn count_5_with_3_matches_says_3_of_5_requested_and_min_4_refuses_to_run() {
    assert!(
        docker_available(),
        "this test needs the Docker engine (`docker info` failed)"
    );
    let mut fleet = Fleet::new("short");
    for _ in 0..3 {
        fleet.web(&[]);
    }
    let dir = tempfile::tempdir().unwrap();

    // Without min the run goes ahead on the 3, and says so.
    let file = write(
        dir.path(),
        "short.yaml",
        &experiment(&fleet, "{mode: count, value: 5}"),
    );
    let r = Run::new(["run"])
        .arg(&file)
        .json_report()
        .args(["--report", "table"])
        .output()
        .expect(0)
        .stdout_has("(3 of 5 requested)")
        .report();
    assert_eq!(r["selection"]["mode"], "count");
    assert_eq!(r["selection"]["requested"], 5);
    assert_eq!(r["selection"]["matched"], 3);
    assert_eq!(r["selection"]["selected"], 3);
    let mut names: Vec<String> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut expected = fleet.names.clone();
    expected.sort();
    assert_eq!(names, expected, "the 3 matches were taken");

    // With min: 4 the run stops before touching anything: exit 3.
    let file = write(
        dir.path(),
        "min.yaml",
        &experiment(&fleet, "{mode: count, value: 5, min: 4}"),
    );
    let started: Vec<String> = fleet
        .names
        .iter()
        .map(|n| docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", n]))
        .collect();
    let r = Run::new(["run"])
        .arg(&file)
        .json_on_stdout()
        .expect_report(3);
    assert_eq!(r["verdict"], "no_targets");
    assert!(r["faults"].as_array().unwrap().is_empty());
    let why = event_message(&r, "verdict");
    assert!(
        why.starts_with("only 3 of 5 requested targets matched") && why.contains("select.min 4"),
        "{why}"
    );
    // Nothing was touched: no container was paused or restarted, and Docker logged no pause.
    for (name, started) in fleet.names.iter().zip(&started) {
        assert!(!paused(name));
        assert_eq!(
            &docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", name]),
            started
        );
    }
    let events = docker_events(
        r["started_at"].as_str().unwrap(),
        &[
            format!("label=fltest.group={}", fleet.label()),
            "event=pause".to_string(),
        ],
    );
    assert!(events.is_empty(), "{events:?}");

    // `plan` agrees with the run: exit 3, and says why.
    plan(&file)
        .expect(3)
        .stdout_has("fewer than select.min 4")
        .stdout_has("exit 3");
    // ... and so does `run --dry-run`.
    Run::new(["run", "--dry-run"]).arg(&file).output().expect(3);
    // A plan that can run says how short it is, and exits 0.
    let file = write(
        dir.path(),
        "short.yaml",
        &experiment(&fleet, "{mode: count, value: 5}"),
    );
    plan(&file)
        .expect(0)
        .stdout_has("3 of 3 matching target(s) (3 of 5 requested)");
}

/// Regression: `plan` exited 0 when no target matched.
#[test]
fn plan_of_a_selector_that_matches_nothing_exits_3() {
    assert!(
        docker_available(),
        "this test needs the Docker engine (`docker info` failed)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = Experiment::no_match().write(dir.path());
    plan(&file)
        .expect(3)
        .stdout_has("no target matched")
        .stdout_has("`no_targets` (exit 3)");
}

/// Regression: `plan` exited 0 when the platform could not be reached. Needs no Docker.
#[test]
fn plan_against_an_unreachable_daemon_exits_4_and_still_shows_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = Experiment::new("unreachable")
        .docker("host: \"unix:///nonexistent/docker.sock\"")
        .on_label("app", "web")
        .fault("pause: {duration: 1s}")
        .write(dir.path());
    plan(&file)
        .expect(4)
        .stdout_has("targets not resolved")
        .stdout_has("pause for 1s")
        .stderr_has("exit 4");
}

/// `faultline plan FILE`, run to the end.
fn plan(file: &std::path::Path) -> Outcome {
    Run::new(["plan"]).arg(file).output()
}

#[test]
fn an_already_paused_container_is_reported_skipped_and_why_not_unmatched() {
    if !require_docker() {
        return;
    }
    let mut fleet = Fleet::new("paused");
    let webs = fleet.webs(2, &[]);
    docker_ok(&["pause", &webs[0]]);

    // Both match; the paused one is skipped and every report says so.
    let exp = fleet
        .experiment("one-paused")
        .select("{mode: all}")
        .fault("pause: {duration: 300ms}");
    let skipped = format!("skipped: {} (paused", webs[0]);
    let r = Run::experiment(&exp)
        .json_report()
        .args(["--report", "table"])
        .output()
        .expect(0)
        .stdout_has(&skipped)
        .report();
    assert_eq!(r["selection"]["selected"], 1);
    assert_eq!(r["selection"]["skipped"][0]["name"], webs[0].as_str());
    assert_eq!(r["targets"][0]["name"], webs[1].as_str());
    assert!(paused(&webs[0]), "faultline left the user's pause alone");

    // Only the paused one matches: exit 3, saying it was skipped and why, not "no
    // target matched"; `plan` says the same with the same exit code.
    let exp = fleet
        .experiment("only-paused")
        .only(&webs[0])
        .fault("pause: {duration: 300ms}");
    let r = Run::experiment(&exp).json_on_stdout().expect_report(3);
    let why = event_message(&r, "verdict");
    assert!(
        why.starts_with("no eligible target matched") && why.contains(&skipped),
        "{why}"
    );
    let dir = tempfile::tempdir().unwrap();
    Run::new(["plan"])
        .arg(exp.write(dir.path()))
        .output()
        .expect(3)
        .stdout_has(&skipped);
    assert!(paused(&webs[0]));
}
